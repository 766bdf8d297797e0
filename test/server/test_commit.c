/* Two-phase commit, invalidations, read conflicts, protocol misuse and the
 * invalidation queue (spec sections 8-10); the commit locks are test_lock.c's. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

static th_server srv;

static void start(void)
{
    cr_assert_eq(th_start(&srv, NULL), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_commit, .init = start, .fini = stop, .timeout = 60);

static void client(tc *c, proto_enc enc)
{
    cr_assert_eq(tc_connect(c, srv.port, enc, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

static zv *load(tc *c, uint64_t oid)
{
    int64_t flag;
    zv *r = tc_load_current(c, oid, &flag);
    cr_assert(r && flag == 0, "loadBefore failed");
    return r;
}

Test(server_commit, commit_cycle_info_before_reply_and_invalidation)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_MSGPACK);
    tc_begin_store(&a, 139929097891024LL, 0, 0, "root-v1");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 139929097891024LL)), &flag);
    cr_assert(v && flag == 0);
    cr_expect_eq(v->type, a.enc == PROTO_PICKLE ? ZV_LIST : ZV_TUPLE);
    cr_expect_eq(v->u.seq.n, 0);
    zv *t = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 139929097891024LL)), &flag);
    cr_assert(t && flag == 0);
    uint64_t tid = tv_u64(t);
    cr_expect_neq(tid, 0);
    /* info came before the reply (it was queued while waiting for it). */
    cr_assert_eq(a.n_async, 1);
    cr_expect_str_eq(a.asyncs[0].name, "info");
    cr_expect(zv_dict_get(a.asyncs[0].args->u.seq.items[0], "length"));

    zv *inv = tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv, "the other client got no invalidation");
    cr_expect_eq(tv_u64(inv->u.seq.items[0]), tid);
    cr_expect_eq(inv->u.seq.items[1]->u.seq.n, 1);
    cr_expect_eq(tv_u64(inv->u.seq.items[1]->u.seq.items[0]), 0);

    zv *r = load(&b, 0);
    cr_expect_eq(r->u.seq.items[0]->u.s.len, 7);
    cr_expect(!memcmp(r->u.seq.items[0]->u.s.p, "root-v1", 7));
    cr_expect_eq(tv_u64(r->u.seq.items[1]), tid);
    cr_expect_eq(r->u.seq.items[2]->type, ZV_NONE);
    zv *last = tc_call(&b, "lastTransaction", zv_tuple(b.a, 0), &flag);
    cr_expect_eq(tv_u64(last), tid);
    /* The committer gets no invalidation for its own transaction. */
    cr_expect_null(tc_wait_async(&a, "invalidateTransaction", 200));
    tc_close(&a);
    tc_close(&b);
}

Test(server_commit, read_conflict_fails_the_vote_and_frees_the_lock)
{
    tc a, b;
    client(&a, PROTO_MSGPACK);
    client(&b, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 8, 0, "x1");
    uint64_t t2 = tc_commit_one(&a, 2, 8, t1, "x2");
    cr_assert(t1 && t2);
    tc_begin_store(&b, 4, 9, 0, "y");
    tc_send(&b, NULL, 1, "checkCurrentSerialInTransaction",
            tv_tuple(b.a, 3, tv_oid(b.a, 8), tv_oid(b.a, t1), tv_int(b.a, 4)));
    int64_t flag;
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 4)), &flag);
    cr_assert(v);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "ZODB.POSException.ReadConflictError");
    const zv *d = v->u.seq.items[1];
    cr_expect_eq(tv_u64(zv_dict_get(d, "oid")), 8);
    cr_expect(zv_dict_get(d, "message") && zv_dict_get(d, "serials"));
    /* The transaction is gone: tpc_abort is a no-op, and A can commit. */
    zv *n = tc_call(&b, "tpc_abort", tv_tuple(b.a, 1, tv_int(b.a, 4)), &flag);
    cr_expect(n && n->type == ZV_NONE);
    cr_expect_neq(tc_commit_one(&a, 3, 10, 0, "z"), 0);
    tc_close(&a);
    tc_close(&b);
}

Test(server_commit, read_conflict_error_names_the_read_oid_not_a_write_conflict)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    uint64_t w1 = tc_commit_one(&a, 1, 5, 0, "w1");
    uint64_t r1 = tc_commit_one(&a, 2, 8, 0, "r1");
    uint64_t w2 = tc_commit_one(&a, 3, 5, w1, "w2");
    uint64_t r2 = tc_commit_one(&a, 4, 8, r1, "r2");
    cr_assert(w1 && r1 && w2 && r2);
    /* A resolvable write conflict on 5 is queued before the read conflict on
     * 8; the error must name 8, the oid the client has to drop from its cache. */
    tc_begin_store(&b, 6, 5, w1, "stale");
    tc_send(&b, NULL, 1, "checkCurrentSerialInTransaction",
            tv_tuple(b.a, 3, tv_oid(b.a, 8), tv_oid(b.a, r1), tv_int(b.a, 6)));
    int64_t flag;
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 6)), &flag);
    cr_assert(v);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "ZODB.POSException.ReadConflictError");
    const zv *d = v->u.seq.items[1];
    cr_expect_eq(tv_u64(zv_dict_get(d, "oid")), 8);
    const zv *serials = zv_dict_get(d, "serials");
    cr_assert(serials && serials->u.seq.n == 2);
    cr_expect_eq(tv_u64(serials->u.seq.items[0]), r2);
    cr_expect_eq(tv_u64(serials->u.seq.items[1]), r1);
    tc_close(&a);
    tc_close(&b);
}

/* Why r is not e, for a failure message (static buffer). */
static const char *diff(const zv *r, const proto_exc *e)
{
    static char buf[1024];
    char *got = NULL, *want = NULL;
    zv_repr(r, &got);
    zv_repr(e->payload, &want);
    snprintf(buf, sizeof buf, "got %s, want %s %s", got ? got : "?", e->class_path,
             want ? want : "?");
    free(got);
    free(want);
    return buf;
}

/* A write conflict the client resolves, a delete conflict and a read
 * conflict: each reply is exactly what proto builds from the store's
 * structured conflict (oid, serials, data), in the reference's key order. */
Test(server_commit, conflict_replies_are_the_protocol_s)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 20, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 20, t1, "v2");
    uint64_t r1 = tc_commit_one(&a, 3, 21, 0, "r1");
    uint64_t r2 = tc_commit_one(&a, 4, 21, r1, "r2");
    cr_assert(t1 && t2 && r1 && r2);
    zv_arena *x = zv_arena_new();
    int64_t flag;

    /* write conflict: the vote lists {'oid', 'serials', 'data'} */
    tc_begin_store(&b, 5, 20, t1, "mine");
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 5)), &flag);
    cr_assert(v && flag == 0 && zv_is_seq(v) && v->u.seq.n == 1);
    cr_expect_eq(v->type, b.enc == PROTO_PICKLE ? ZV_LIST : ZV_TUPLE);
    proto_conflict w = {.oid = 20, .current = t2, .sent = t1,
                        .data = {(const uint8_t *)"mine", 4}};
    zv *item;
    cr_assert_eq(proto_conflict_item(&item, x, &w), 0);
    cr_expect(tv_equal_as(&b, v->u.seq.items[0], item), "the vote's conflict dict");
    tc_call(&b, "tpc_abort", tv_tuple(b.a, 1, tv_int(b.a, 5)), &flag);

    /* delete conflict: ConflictError, no class name (no record sent) */
    tc_send(&b, NULL, 1, "tpc_begin",
            tv_tuple(b.a, 6, tv_int(b.a, 6), tv_bytes(b.a, ""), tv_bytes(b.a, ""),
                     tv_dict0(b.a), tv_none(b.a), tv_str(b.a, " ")));
    tc_send(&b, NULL, 1, "deleteObject",
            tv_tuple(b.a, 3, tv_oid(b.a, 20), tv_oid(b.a, t1), tv_int(b.a, 6)));
    v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 6)), &flag);
    cr_assert(v);
    cr_expect_eq(flag, 2);
    proto_exc e;
    proto_conflict d = {.oid = 20, .current = t2, .sent = t1};
    cr_assert_eq(proto_exc_conflict(&e, x, &d), 0);
    cr_expect(tv_is_exc_as(&b, v, &e), "%s", diff(v, &e));

    /* read conflict: ReadConflictError */
    tc_begin_store(&b, 7, 22, 0, "new");
    tc_send(&b, NULL, 1, "checkCurrentSerialInTransaction",
            tv_tuple(b.a, 3, tv_oid(b.a, 21), tv_oid(b.a, r1), tv_int(b.a, 7)));
    v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 7)), &flag);
    cr_assert(v);
    cr_expect_eq(flag, 2);
    proto_conflict rc = {.read = 1, .oid = 21, .current = r2, .sent = r1};
    cr_assert_eq(proto_exc_conflict(&e, x, &rc), 0);
    cr_expect(tv_is_exc_as(&b, v, &e), "%s", diff(v, &e));
    zv_arena_free(x);
    tc_close(&a);
    tc_close(&b);
}

/* An undo the store cannot do fails the vote with FileStorage's
 * MultipleUndoErrors, each oid in turn with its reason, taken from the
 * store's vote result; an undo of no transaction, or an id that names
 * none, with UndoError as the reference sends it. */
Test(server_commit, undo_errors_name_every_oid)
{
    tc a;
    client(&a, PROTO_PICKLE);
    int64_t flag;
    zv *r;
    /* one transaction writes 30 and 31; later ones change both */
    tc_begin_store(&a, 1, 30, 0, "a30");
    tc_store(&a, 1, 31, 0, "a31");
    r = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(r && flag == 0);
    r = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(r && flag == 0);
    uint64_t t1 = tv_u64(r);
    uint64_t t2 = tc_commit_one(&a, 2, 30, t1, "b30");
    uint64_t t3 = tc_commit_one(&a, 3, 31, t1, "b31");
    uint64_t t4 = tc_commit_one(&a, 4, 30, t2, "c30");
    cr_assert(t1 && t2 && t3 && t4);
    zv_arena *x = zv_arena_new();
    proto_exc e;

    /* undo t1, which created both oids: both were changed since */
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(a.a, 6, tv_int(a.a, 5), tv_bytes(a.a, ""), tv_bytes(a.a, ""),
                     tv_dict0(a.a), tv_none(a.a), tv_str(a.a, " ")));
    tc_send(&a, NULL, 1, "undoa", tv_tuple(a.a, 2, tv_oid(a.a, t1), tv_int(a.a, 5)));
    r = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 5)), &flag);
    cr_assert(r, "the connection was closed");
    cr_expect_eq(flag, 2);
    static const proto_undo_error both[2] = {
        {30, "Can't undo an add transaction followed by conflicting transactions."},
        {31, "Can't undo an add transaction followed by conflicting transactions."},
    };
    cr_assert_eq(proto_exc_undo(&e, x, "", both, 2), 0);
    cr_expect(tv_is_exc_as(&a, r, &e), "%s", diff(r, &e));

    /* undo of a tid that is no transaction */
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(a.a, 6, tv_int(a.a, 6), tv_bytes(a.a, ""), tv_bytes(a.a, ""),
                     tv_dict0(a.a), tv_none(a.a), tv_str(a.a, " ")));
    tc_send(&a, NULL, 1, "undoa", tv_tuple(a.a, 2, tv_oid(a.a, t4 + 1), tv_int(a.a, 6)));
    r = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 6)), &flag);
    cr_assert(r, "the connection was closed");
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), PROTO_EXC_UNDO);
    const zv *p = r->u.seq.items[1];
    cr_assert(p->type == ZV_DICT && p->u.seq.n == 2);
    cr_expect_str_eq((const char *)p->u.seq.items[0]->u.s.p, "_reason");
    cr_expect(strstr((const char *)p->u.seq.items[1]->u.s.p, "to undo"));
    cr_expect_str_eq((const char *)p->u.seq.items[2]->u.s.p, "_oid");
    cr_expect_eq(p->u.seq.items[3]->type, ZV_NONE);

    /* an id that is no tid at all: queued as ZEO queues it, the vote fails */
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(a.a, 6, tv_int(a.a, 7), tv_bytes(a.a, ""), tv_bytes(a.a, ""),
                     tv_dict0(a.a), tv_none(a.a), tv_str(a.a, " ")));
    tc_send(&a, NULL, 1, "undoa", tv_tuple(a.a, 2, tv_bytes(a.a, "xyz"), tv_int(a.a, 7)));
    r = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 7)), &flag);
    cr_assert(r, "the connection was closed");
    cr_expect_eq(flag, 2);
    zerr why = {.code = ZE_UNDO, .msg = "undo id is not a transaction id"};
    cr_assert_eq(proto_exc_from_err(&e, x, &why), 0);
    cr_expect(tv_is_exc_as(&a, r, &e), "%s", diff(r, &e));
    /* the connection still commits */
    cr_expect_neq(tc_commit_one(&a, 8, 32, 0, "fine"), 0);
    zv_arena_free(x);
    tc_close(&a);
}

Test(server_commit, protocol_misuse_is_reported)
{
    tc a;
    client(&a, PROTO_PICKLE);
    int64_t flag;
    /* vote with no transaction: StorageTransactionError(None, txn) */
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 123)), &flag);
    cr_assert(v);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "ZODB.POSException.StorageTransactionError");
    /* tpc_finish / tpc_abort of an unknown txn: None */
    v = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 99)), &flag);
    cr_expect(v && flag == 0 && v->type == ZV_NONE);
    /* a second vote while voted: 'Already voting (locked)' */
    tc_begin_store(&a, 5, 1, 0, "x");
    v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 5)), &flag);
    cr_assert(v && flag == 0);
    v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 5)), &flag);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "ZODB.POSException.StorageTransactionError");
    v = tc_call(&a, "tpc_abort", tv_tuple(a.a, 1, tv_int(a.a, 5)), &flag);
    cr_expect(v && v->type == ZV_NONE);
    /* async storea without a transaction closes the connection */
    tc_send(&a, NULL, 1, "storea",
            tv_tuple(a.a, 4, tv_oid(a.a, 1), tv_oid(a.a, 0), tv_bytes(a.a, "x"), tv_int(a.a, 5)));
    cr_expect(tc_wait_closed(&a, TC_TIMEOUT));
    tc_close(&a);
}

/* getInvalidations (spec 7.24) with a queue of two transactions. */
Test(server_commit_invq, quick_verification_within_the_queue)
{
    th_server s2;
    const char *extra[] = {"--invalidation-queue-size", "2", NULL};
    cr_assert_eq(th_start(&s2, extra), 0);
    tc a;
    cr_assert_eq(tc_connect(&a, s2.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&a), 0);
    uint64_t t1 = tc_commit_one(&a, 1, 1, 0, "a");
    uint64_t t2 = tc_commit_one(&a, 2, 2, 0, "b");
    uint64_t t3 = tc_commit_one(&a, 3, 3, 0, "c");
    cr_assert(t1 && t2 && t3);
    int64_t flag;
    zv *r = tc_call(&a, "getInvalidations", tv_tuple(a.a, 1, tv_oid(a.a, t3)), &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r));
    cr_expect_eq(tv_u64(r->u.seq.items[0]), t3);
    cr_expect_eq(r->u.seq.items[1]->u.seq.n, 0, "nothing changed since the last tid");
    r = tc_call(&a, "getInvalidations", tv_tuple(a.a, 1, tv_oid(a.a, t2)), &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r));
    cr_expect_eq(tv_u64(r->u.seq.items[0]), t3);
    cr_assert_eq(r->u.seq.items[1]->u.seq.n, 1);
    cr_expect_eq(tv_u64(r->u.seq.items[1]->u.seq.items[0]), 3);
    /* t1 fell out of the two-transaction queue: the client must drop its cache. */
    r = tc_call(&a, "getInvalidations", tv_tuple(a.a, 1, tv_oid(a.a, t1)), &flag);
    cr_assert(r && flag == 0);
    cr_expect_eq(r->type, ZV_NONE);
    r = tc_call(&a, "getInvalidations", tv_tuple(a.a, 1, tv_oid(a.a, 0)), &flag);
    cr_expect(r && r->type == ZV_NONE);
    tc_close(&a);
    th_free(&s2);
}

/* The store's log is the server's: a pack's warning (a GC pack of a
 * database without a root object) is a WARNING line naming the storage. */
Test(server_commit, store_warnings_reach_the_server_log)
{
    tc a;
    client(&a, PROTO_PICKLE);
    cr_assert_neq(tc_commit_one(&a, 1, 5, 0, "no root"), 0);
    int64_t flag;
    zv *r = tc_call(&a, "pack", tv_tuple(a.a, 2, zv_float(a.a, (double)time(NULL) + 1e6),
                                         tv_int(a.a, 1)), &flag);
    cr_assert(r && flag == 0, "pack failed");
    tc_close(&a);
    char *log = th_log(&srv);
    cr_assert(log);
    char want[96];   /* the store's logger, the pid as runzeo writes it, the storage */
    snprintf(want, sizeof want, "WARNING zeolite.store (%d) storage 1: pack ", (int)srv.pid);
    cr_expect(strstr(log, want), "%s", log);
    cr_expect(strstr(log, "no root object (oid 0) at the pack time: garbage collection skipped"),
              "%s", log);
    free(log);
}
