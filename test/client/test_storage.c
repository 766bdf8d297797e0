/* test_storage.c: the rest of the storage API: blobs, undo, iteration,
 * pack, server status. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "common/ztid.h"
#include "testutil.h"

TestSuite(client_storage, .init = th_serve, .fini = th_unserve);

static zcl_client *blob_client(const char *sub)
{
    char *dir = NULL;
    cr_assert_geq(asprintf(&dir, "%s/%s", th_srv.dir, sub), 0);
    zcl_opts o;
    zcl_opts_init(&o);
    o.blob_dir = dir;
    zcl_client *c = th_connect(&th_srv, &o);
    free(dir); /* the client keeps its own copy */
    return c;
}

Test(client_storage, blob_upload_and_download)
{
    zcl_client *a = blob_client("blobs-a"), *b = blob_client("blobs-b");
    /* Three chunks and a bit: the upload is split at ZCL_BLOB_CHUNK. */
    size_t size = 3 * ZCL_BLOB_CHUNK + 123;
    uint8_t *content = malloc(size);
    for (size_t i = 0; i < size; i++)
        content[i] = (uint8_t)(i * 31 + 7);
    char *src = NULL;
    cr_assert_geq(asprintf(&src, "%s/upload.bin", th_srv.dir), 0);
    cr_assert_eq(tu_write_file(src, content, size), 0);

    uint64_t oid = th_new_oid(a);
    zbuf rec = ZBUF_INIT;
    th_record(&rec, "blob holder");
    zerr err = {0};
    cr_assert_eq(zcl_tpc_begin(a, "", "blob", NULL), 0);
    cr_assert_eq(zcl_store_blob(a, oid, 0, rec.data, rec.len, src, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_vote_sync(a, NULL, NULL, &err), 0, "%s", err.msg);
    uint64_t tid;
    cr_assert_eq(zcl_tpc_finish_sync(a, &tid, &err), 0, "%s", err.msg);

    char *path = NULL;
    cr_assert_eq(zcl_load_blob_sync(b, oid, tid, &path, &err), 0, "%s", err.msg);
    size_t got_len = 0;
    uint8_t *got = tu_read_file(path, &got_len);
    cr_assert_not_null(got);
    cr_expect_eq(got_len, size);
    cr_expect_eq(memcmp(got, content, size), 0);
    char *expect_path = zcl_blob_path(b, oid, tid);
    cr_expect_str_eq(path, expect_path);
    free(path);
    cr_expect_eq(zcl_load_blob_sync(b, oid, tid + 1, &path, &err), ZE_NOTFOUND);
    cr_expect_null(path);
    free(expect_path);
    free(got);
    free(path);
    free(src);
    free(content);
    zbuf_free(&rec);
    zcl_free(a);
    zcl_free(b);
}

/* Shared blob dir: the client writes into the server's blob folder itself
 * and reads from it without a download. */
Test(client_storage, shared_blob_dir)
{
    char *dir = NULL, *src = NULL;
    /* zeolite keeps blobs in DB/blobs; the runzeo wrapper in DIR/blobs. */
    cr_assert_geq(asprintf(&dir, getenv("ZCL_TEST_SERVER") ? "%s/blobs" : "%s/db/blobs",
                           th_srv.dir), 0);
    zcl_opts o;
    zcl_opts_init(&o);
    o.blob_dir = dir;
    o.shared_blob_dir = 1;
    zcl_client *a = th_connect(&th_srv, &o), *b = th_connect(&th_srv, &o);
    cr_assert_geq(asprintf(&src, "%s/shared.bin", th_srv.dir), 0);
    cr_assert_eq(tu_write_file(src, "shared blob", 11), 0);
    uint64_t oid = th_new_oid(a), tid;
    zbuf rec = ZBUF_INIT;
    th_record(&rec, "shared holder");
    zerr err = {0};
    cr_assert_eq(zcl_tpc_begin(a, "", "", NULL), 0);
    cr_assert_eq(zcl_store_blob(a, oid, 0, rec.data, rec.len, src, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_vote_sync(a, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_finish_sync(a, &tid, &err), 0, "%s", err.msg);
    char *path = NULL;
    cr_assert_eq(zcl_load_blob_sync(b, oid, tid, &path, &err), 0, "%s", err.msg);
    size_t len = 0;
    uint8_t *got = tu_read_file(path, &len);
    cr_assert_not_null(got, "no file at %s", path);
    cr_expect_eq(len, 11);
    cr_expect_eq(memcmp(got, "shared blob", 11), 0);
    free(got);
    free(path);
    free(src);
    free(dir);
    zbuf_free(&rec);
    zcl_free(a);
    zcl_free(b);
}

Test(client_storage, undo_log_and_undo)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    uint64_t oid = th_new_oid(c);
    uint64_t t1 = th_commit(c, &oid, NULL, 1, "v1");
    uint64_t t2 = th_commit(c, &oid, &t1, 1, "v2");
    zv_arena *a = zv_arena_new();
    zv *log = NULL;
    zerr err = {0};
    cr_assert_eq(zcl_undo_log_sync(c, 0, -20, a, &log, &err), 0, "%s", err.msg);
    cr_assert_geq(log->u.seq.n, 2);
    const zv *id = zv_dict_get(log->u.seq.items[0], "id");
    cr_assert(id && id->type == ZV_BYTES);

    cr_assert_eq(zcl_tpc_begin(c, "", "undo", NULL), 0);
    cr_assert_eq(zcl_undo(c, id->u.s.p, id->u.s.len), 0);
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
    uint64_t t3;
    cr_assert_eq(zcl_tpc_finish_sync(c, &t3, &err), 0, "%s", err.msg);
    cr_expect_gt(t3, t2);
    zbuf data = ZBUF_INIT;
    uint64_t start;
    cr_assert_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, &data, &start, NULL, &err), 0);
    cr_expect(th_record_has(&data, "v1"), "undo of t2 brings back v1");
    cr_expect_eq(start, t3);
    zbuf_free(&data);
    zv_arena_free(a);
    zcl_free(c);
}

Test(client_storage, iterate_transactions_and_records)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    uint64_t oids[2] = {th_new_oid(c), th_new_oid(c)};
    uint64_t t1 = th_commit(c, oids, NULL, 2, "it");
    uint64_t t2 = th_commit(c, oids, &t1, 1, "it2");
    zerr err = {0};
    int64_t iid, riid;
    cr_assert_eq(zcl_iter_start_sync(c, 0, 0, &iid, &err), 0, "%s", err.msg);
    zv_arena *a = zv_arena_new();
    zcl_txn_rec t;
    uint64_t tids[4];
    size_t n = 0;
    size_t records_in_first = 0;
    while (n < 4 && zcl_iter_next_sync(c, iid, a, &t, &err) == 1) {
        tids[n++] = t.tid;
        if (t.tid != t1)
            continue;
        cr_assert_eq(zcl_iter_records_sync(c, iid, t.tid, &riid, &err), 0, "%s", err.msg);
        zcl_data_rec r;
        while (zcl_iter_record_next_sync(c, riid, a, &r, &err) == 1) {
            cr_expect(r.oid == oids[0] || r.oid == oids[1]);
            cr_expect_eq(r.tid, t1);
            records_in_first++;
        }
    }
    cr_expect_eq(n, 2);
    cr_expect_eq(tids[0], t1);
    cr_expect_eq(tids[1], t2);
    cr_expect_eq(records_in_first, 2);
    zv_arena_free(a);
    zcl_free(c);
}

Test(client_storage, pack_and_status)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    uint64_t root = 0;
    uint64_t t1 = th_commit(c, &root, NULL, 1, "old root");
    th_commit(c, &root, &t1, 1, "new root");
    zerr err = {0};
    cr_assert_eq(zcl_pack_sync(c, ztid_time(zcl_last_tid(c)) + 1, &err), 0, "%s", err.msg);
    zbuf data = ZBUF_INIT;
    cr_expect_neq(zcl_load_serial_sync(c, root, t1, &data, &err), 0,
                  "the old revision is gone after the pack");
    zv_arena *a = zv_arena_new();
    zv *st = NULL;
    cr_assert_eq(zcl_server_status_sync(c, a, &st, &err), 0, "%s", err.msg);
    int64_t commits;
    cr_expect(zv_get_int(zv_dict_get(st, "commits"), &commits) && commits >= 2);
    zv_arena_free(a);
    zbuf_free(&data);
    zcl_free(c);
}
