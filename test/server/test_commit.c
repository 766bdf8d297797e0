/* Two-phase commit, the commit lock, invalidations, conflicts resolved by the
 * client with the lock kept, timeouts and disconnects (spec sections 8-10). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "helpers.h"

static th_server srv;

static void start_with_timeout(void)
{
    const char *extra[] = {"-t", "1", NULL};
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_commit, .init = start_with_timeout, .fini = stop, .timeout = 60);

static void client(tc *c, proto_enc enc)
{
    cr_assert_eq(tc_connect(c, srv.port, enc, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

static void begin_store(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data)
{
    zv_arena *a = c->a;
    zv *id = tv_int(a, txn);
    tc_send(c, NULL, 1, "tpc_begin",
            tv_tuple(a, 6, id, tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a), tv_none(a),
                     tv_str(a, " ")));
    tc_send(c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_oid(a, oid), tv_oid(a, serial), tv_bytes(a, data), id));
}

static zv *load(tc *c, uint64_t oid)
{
    int64_t flag;
    zv *r = tc_call(c, "loadBefore",
                    tv_tuple(c->a, 2, tv_oid(c->a, oid), tv_oid(c->a, 0x7fffffffffffffffULL)),
                    &flag);
    cr_assert(r && flag == 0, "loadBefore failed");
    return r;
}

/* A queued voter gets its vote reply and the invalidation of the commit that
 * held the lock. A success vote reveals no tid, so it may come first: that
 * commit is not durable (nor visible to anyone) yet when the waiter votes,
 * which is what lets the two syncs overlap. */
static void expect_vote_and_invalidation(tc *c, int64_t vote_id, uint64_t tid)
{
    int got_vote = 0, got_inv = 0;
    for (int i = 0; i < 2; i++) {
        proto_msg m;
        cr_assert_eq(tc_recv(c, &m, TC_TIMEOUT), 1);
        int64_t id;
        if (!strcmp(m.name, "invalidateTransaction")) {
            got_inv = 1;
            cr_expect_eq(tv_u64(m.args->u.seq.items[0]), tid);
        } else {
            got_vote = !strcmp(m.name, ".reply") && zv_get_int(m.msgid, &id) && id == vote_id &&
                       m.flag == 0;
        }
    }
    cr_expect(got_vote, "no vote reply");
    cr_expect(got_inv, "no invalidation");
}

Test(server_commit, commit_cycle_info_before_reply_and_invalidation)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_MSGPACK);
    begin_store(&a, 139929097891024LL, 0, 0, "root-v1");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 139929097891024LL)), &flag);
    cr_assert(v && flag == 0);
    cr_expect_eq(v->type, ZV_LIST);
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

Test(server_commit, second_voter_waits_for_the_lock)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    uint64_t t0 = tc_commit_one(&a, 1, 1, 0, "one");
    cr_assert_neq(t0, 0);
    cr_assert(tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT));
    tc_reset(&a);
    tc_reset(&b);
    begin_store(&a, 2, 2, 0, "a");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    cr_assert(v && flag == 0);
    begin_store(&b, 3, 3, 0, "b");
    int64_t bvote = tc_send(&b, NULL, 0, "vote", tv_tuple(b.a, 1, tv_int(b.a, 3)));
    /* B is queued: its ping is answered, its vote is not. */
    zv *st = tc_call(&b, "server_status", zv_tuple(b.a, 0), &flag);
    cr_assert(st && flag == 0);
    int64_t waiting = -1;
    zv_get_int(zv_dict_get(st, "waiting"), &waiting);
    cr_expect_eq(waiting, 1);
    cr_expect_neq(zv_dict_get(st, "lock_time")->type, ZV_NONE);
    zv *t = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    cr_assert(t && flag == 0);
    expect_vote_and_invalidation(&b, bvote, tv_u64(t));
    zv *bt = tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    cr_expect_gt(tv_u64(bt), tv_u64(t), "tids increase");
    cr_expect_eq(b.n_async, 1, "only info before B's finish reply");
    tc_close(&a);
    tc_close(&b);
}

Test(server_commit, conflicts_go_back_and_the_lock_is_kept_for_the_revote)
{
    tc a, b, c;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    client(&c, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 5, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 5, t1, "v2");
    cr_assert(t1 && t2);
    for (int i = 0; i < 2; i++)
        cr_assert(tc_wait_async(&c, "invalidateTransaction", TC_TIMEOUT));
    /* B stores against the stale t1: the vote returns a conflict dict. */
    begin_store(&b, 7, 5, t1, "b-stale");
    int64_t flag;
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 7)), &flag);
    cr_assert(v && flag == 0, "a resolvable conflict is not an error");
    cr_assert_eq(v->u.seq.n, 1);
    const zv *d = v->u.seq.items[0];
    cr_expect_eq(tv_u64(zv_dict_get(d, "oid")), 5);
    const zv *serials = zv_dict_get(d, "serials");
    cr_expect_eq(tv_u64(serials->u.seq.items[0]), t2);
    cr_expect_eq(tv_u64(serials->u.seq.items[1]), t1);
    cr_expect_eq(zv_dict_get(d, "data")->u.s.len, 7);
    /* The committed state is there for the client's resolver. */
    zv *old = tc_call(&b, "loadSerial", tv_tuple(b.a, 2, tv_oid(b.a, 5), tv_oid(b.a, t2)), &flag);
    cr_expect(old && flag == 0 && old->u.s.len == 2);
    /* C's vote waits: B still holds the lock while it resolves. */
    begin_store(&c, 9, 6, 0, "c");
    int64_t cvote = tc_send(&c, NULL, 0, "vote", tv_tuple(c.a, 1, tv_int(c.a, 9)));
    proto_msg m;
    cr_expect_eq(tc_recv(&c, &m, 300), -1, "C voted while B held the lock");
    /* B re-stores against t2 and votes again: accepted, not 'Already voting'. */
    tc_send(&b, NULL, 1, "storea",
            tv_tuple(b.a, 4, tv_oid(b.a, 5), tv_oid(b.a, t2), tv_bytes(b.a, "resolved"),
                     tv_int(b.a, 7)));
    v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 7)), &flag);
    cr_assert(v && flag == 0);
    cr_expect_eq(v->u.seq.n, 0);
    zv *t3 = tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 7)), &flag);
    cr_assert(t3 && flag == 0);
    expect_vote_and_invalidation(&c, cvote, tv_u64(t3));
    zv *r = load(&a, 5);
    cr_expect(r->u.seq.items[0]->u.s.len == 8 && !memcmp(r->u.seq.items[0]->u.s.p, "resolved", 8));
    tc_close(&a);
    tc_close(&b);
    tc_close(&c);
}

Test(server_commit, read_conflict_fails_the_vote_and_frees_the_lock)
{
    tc a, b;
    client(&a, PROTO_MSGPACK);
    client(&b, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 8, 0, "x1");
    uint64_t t2 = tc_commit_one(&a, 2, 8, t1, "x2");
    cr_assert(t1 && t2);
    begin_store(&b, 4, 9, 0, "y");
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
    begin_store(&b, 6, 5, w1, "stale");
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

Test(server_commit, stalled_voter_times_out_and_releases_the_lock)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    begin_store(&a, 1, 1, 0, "a");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(v && flag == 0);
    begin_store(&b, 2, 2, 0, "b");
    /* A never finishes: after the 1 s timeout it is closed and B votes. */
    v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 2)), &flag);
    cr_assert(v, "B's vote never came: the lock was not released");
    cr_expect_eq(flag, 0);
    cr_expect(tc_wait_closed(&a, TC_TIMEOUT), "the stalled voter must be disconnected");
    cr_expect_neq(tv_u64(tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 2)), &flag)), 0);
    /* A's stores were aborted: oid 1 does not exist. */
    zv *r = tc_call(&b, "loadBefore",
                    tv_tuple(b.a, 2, tv_oid(b.a, 1), tv_oid(b.a, 0x7fffffffffffffffULL)), &flag);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.POSKeyError");
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "Transaction timeout"));
    free(log);
    tc_close(&a);
    tc_close(&b);
}

Test(server_commit, disconnect_mid_commit_releases_the_lock)
{
    tc a, b;
    client(&a, PROTO_PICKLE);
    client(&b, PROTO_PICKLE);
    begin_store(&a, 1, 1, 0, "a");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(v && flag == 0);
    begin_store(&b, 2, 2, 0, "b");
    int64_t bvote = tc_send(&b, NULL, 0, "vote", tv_tuple(b.a, 1, tv_int(b.a, 2)));
    tc_close(&a);
    proto_msg m;
    cr_assert_eq(tc_recv(&b, &m, 800), 1, "B's vote must follow A's disconnect promptly");
    int64_t id;
    cr_expect(zv_get_int(m.msgid, &id) && id == bvote);
    cr_expect_neq(tv_u64(tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 2)), &flag)), 0);
    zv *st = tc_call(&b, "server_status", zv_tuple(b.a, 0), &flag);
    int64_t active = -1, aborts = -1;
    zv_get_int(zv_dict_get(st, "active_txns"), &active);
    zv_get_int(zv_dict_get(st, "aborts"), &aborts);
    cr_expect_eq(active, 0, "nothing left behind");
    cr_expect_eq(aborts, 1);
    tc_close(&b);
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
    begin_store(&a, 5, 1, 0, "x");
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
