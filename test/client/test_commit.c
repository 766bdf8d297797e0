/* test_commit.c: the two-phase commit and loads against a live server, in
 * both encodings. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "helpers.h"

/* Commit two new objects, load them back from the server and check what
 * lastTransaction, history and loadBefore say about the tids. */
static void full_commit(proto_enc want)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    cr_expect_eq(zcl_encoding(c), want);
    zerr err = {0};
    uint64_t oids[2] = {th_new_oid(c), th_new_oid(c)};
    cr_expect_neq(oids[0], oids[1]);
    uint64_t t1 = th_commit(c, oids, NULL, 2, "first");
    uint64_t last = 0;
    cr_assert_eq(zcl_last_transaction_sync(c, &last, &err), 0, "%s", err.msg);
    cr_expect_eq(last, t1);
    cr_expect_eq(zcl_last_tid(c), t1);

    uint64_t serials[1] = {t1};
    uint64_t t2 = th_commit(c, oids, serials, 1, "second");
    cr_expect_gt(t2, t1);

    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    cr_assert_eq(zcl_load_before_sync(c, oids[0], ZCL_MAXTID, &data, &start, &end, &err), 0,
                 "%s", err.msg);
    cr_expect(th_record_has(&data, "second"));
    cr_expect_eq(start, t2);
    cr_expect_eq(end, 0);
    cr_assert_eq(zcl_load_before_sync(c, oids[0], t2, &data, &start, &end, &err), 0);
    cr_expect(th_record_has(&data, "first"));
    cr_expect_eq(start, t1);
    cr_expect_eq(end, t2);
    cr_expect_eq(zcl_load_before_sync(c, oids[0], t1, &data, &start, &end, &err), ZE_NOREV);
    cr_expect_eq(zcl_load_before_sync(c, 0x7777777, ZCL_MAXTID, &data, &start, &end, &err),
                 ZE_NOTFOUND);
    cr_assert_eq(zcl_load_serial_sync(c, oids[0], t1, &data, &err), 0, "%s", err.msg);
    cr_expect(th_record_has(&data, "first"));

    zv_arena *a = zv_arena_new();
    zv *hist = NULL;
    cr_assert_eq(zcl_history_sync(c, oids[0], 10, a, &hist, &err), 0, "%s", err.msg);
    cr_assert_eq(hist->u.seq.n, 2);
    uint64_t h0;
    cr_expect(zv_get_u64be(zv_dict_get(hist->u.seq.items[0], "tid"), &h0));
    cr_expect_eq(h0, t2);
    zv_arena_free(a);
    zbuf_free(&data);

    /* The server's info() after each commit keeps length current. */
    int64_t length = -1;
    cr_expect(zv_get_int(zv_dict_get(zcl_info(c), "length"), &length));
    cr_expect_geq(length, 2, "length %lld after committing two objects", (long long)length);
    zcl_free(c);
}

Test(client_commit, full_two_phase_commit_z5, .init = th_serve, .fini = th_unserve)
{
    full_commit(PROTO_PICKLE);
}

Test(client_commit, full_two_phase_commit_m5, .init = th_serve_m5, .fini = th_unserve)
{
    full_commit(PROTO_MSGPACK);
}

static void start_unix(void)
{
    cr_assert_eq(ts_server_start(&th_srv, "unix"), 0, "server did not start");
}

Test(client_commit, full_two_phase_commit_unix_socket, .init = start_unix, .fini = th_unserve)
{
    full_commit(PROTO_PICKLE);
}

/* A client may answer an M5 server in Z5 (the server follows the client). */
Test(client_commit, client_picks_encoding, .init = th_serve_m5, .fini = th_unserve)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.encoding = PROTO_PICKLE;
    zcl_client *c = th_connect(&th_srv, &o);
    cr_expect_eq(zcl_encoding(c), PROTO_PICKLE);
    uint64_t oid = th_new_oid(c);
    cr_expect_neq(th_commit(c, &oid, NULL, 1, "x"), 0);
    zcl_free(c);
}

Test(client_commit, abort_discards_stores, .init = th_serve, .fini = th_unserve)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    zerr err = {0};
    uint64_t oid = th_new_oid(c);
    zbuf rec = ZBUF_INIT;
    th_record(&rec, "never");
    cr_assert_eq(zcl_tpc_begin(c, "", "", NULL), 0);
    cr_assert_eq(zcl_store(c, oid, 0, rec.data, rec.len), 0);
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_abort_sync(c, &err), 0, "%s", err.msg);
    cr_expect(!zcl_in_transaction(c));
    zbuf data = ZBUF_INIT;
    cr_expect_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, &data, NULL, NULL, &err),
                 ZE_NOTFOUND);
    /* The connection is still good for another transaction. */
    cr_expect_neq(th_commit(c, &oid, NULL, 1, "after"), 0);
    zbuf_free(&rec);
    zbuf_free(&data);
    zcl_free(c);
}

/* Requests pipelined on one connection: many loads in flight at once, each
 * reply matched to its own request. */
typedef struct fanout {
    int left, bad;
    uint64_t tid;
} fanout;

static void on_fanout_load(zcl_client *c, int status, const zcl_rev *rev, const zerr *err,
                           void *data)
{
    fanout *f = data;
    f->left--;
    if (status != 0 || rev->start != f->tid)
        f->bad++;
}

Test(client_commit, pipelined_loads, .init = th_serve, .fini = th_unserve)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    uint64_t oids[20];
    for (int i = 0; i < 20; i++)
        oids[i] = th_new_oid(c);
    fanout f = {.tid = th_commit(c, oids, NULL, 20, "fan")};
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 20; i++) {
            cr_assert_eq(zcl_load_before(c, oids[i], ZCL_MAXTID, NULL, on_fanout_load, &f), 0);
            f.left++;
        }
    while (f.left > 0)
        uv_run(zcl_loop(c), UV_RUN_ONCE);
    cr_expect_eq(f.bad, 0);
    zcl_free(c);
}

static void start_read_only(void)
{
    cr_assert_eq(ts_server_start(&th_srv, "--read-only"), 0, "server did not start");
}

/* A read-only server refuses a writable register; with read_only_fallback
 * the client registers read-only on the same connection and can load. */
Test(client_commit, read_only_server_and_fallback, .init = start_read_only, .fini = th_unserve)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.timeout_ms = 10000;
    zcl_client *c = NULL;
    zerr err = {0};
    cr_expect_eq(zcl_open_sync(th_srv.addr, &o, &c, &err), ZE_READONLY, "%s", err.msg);
    o.read_only_fallback = 1;
    c = th_connect(&th_srv, &o);
    uint64_t oid;
    size_t got;
    cr_expect_eq(zcl_new_oids_sync(c, 1, &oid, &got, &err), ZE_READONLY);
    cr_expect_eq(zcl_ping_sync(c, &err), 0, "still connected after the error reply");
    zcl_free(c);
}
