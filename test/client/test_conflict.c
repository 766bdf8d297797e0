/* test_conflict.c: write and read conflicts reported per object. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"

TestSuite(client_conflict, .init = th_serve, .fini = th_unserve);

Test(client_conflict, write_conflict_names_object_and_serials)
{
    zcl_client *a = th_connect(&th_srv, NULL), *b = th_connect(&th_srv, NULL);
    uint64_t oids[2] = {th_new_oid(a), th_new_oid(a)};
    uint64_t t1 = th_commit(a, oids, NULL, 2, "base");
    uint64_t serials[2] = {t1, t1};
    uint64_t t2 = th_commit(a, oids, serials, 1, "a wins");

    /* b changes both objects from t1: only oids[0] is stale. */
    zbuf rec = ZBUF_INIT;
    th_record(&rec, "b loses");
    cr_assert_eq(zcl_tpc_begin(b, "", "", NULL), 0);
    cr_assert_eq(zcl_store(b, oids[0], t1, rec.data, rec.len), 0);
    cr_assert_eq(zcl_store(b, oids[1], t1, rec.data, rec.len), 0);
    zcl_conflict *conf = NULL;
    size_t n = 0;
    zerr err = {0};
    cr_expect_eq(zcl_tpc_vote_sync(b, &conf, &n, &err), ZE_CONFLICT, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_expect_eq(conf[0].oid, oids[0]);
    cr_expect_eq(conf[0].committed, t2);
    cr_expect_eq(conf[0].serial, t1);
    zcl_conflicts_free(conf, n);
    cr_assert_eq(zcl_tpc_abort_sync(b, &err), 0, "%s", err.msg);

    /* Retrying with the committed serial works. */
    serials[0] = t2;
    cr_expect_gt(th_commit(b, oids, serials, 2, "b again"), t2);
    zbuf_free(&rec);
    zcl_free(a);
    zcl_free(b);
}

Test(client_conflict, read_conflict_from_check_current)
{
    zcl_client *a = th_connect(&th_srv, NULL), *b = th_connect(&th_srv, NULL);
    uint64_t oids[2] = {th_new_oid(a), th_new_oid(a)};
    uint64_t t1 = th_commit(a, oids, NULL, 2, "base");
    th_commit(a, oids, &t1, 1, "moved on");

    zbuf rec = ZBUF_INIT;
    th_record(&rec, "depends on oids[0] at t1");
    cr_assert_eq(zcl_tpc_begin(b, "", "", NULL), 0);
    cr_assert_eq(zcl_check_current(b, oids[0], t1), 0);
    cr_assert_eq(zcl_store(b, oids[1], t1, rec.data, rec.len), 0);
    zerr err = {0};
    cr_expect_eq(zcl_tpc_vote_sync(b, NULL, NULL, &err), ZE_READCONFLICT, "%s", err.msg);
    cr_expect_eq(zcl_tpc_abort_sync(b, &err), 0);
    zbuf_free(&rec);
    zcl_free(a);
    zcl_free(b);
}
