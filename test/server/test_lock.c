/* The commit locks: a vote locks the oids its transaction touches, so
 * disjoint transactions vote side by side while overlapping ones queue first
 * come, first served; undo waits to be alone; the lock is kept while a client
 * resolves conflicts, and released by the transaction timeout or a
 * disconnect. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static th_server srv;

/* No transaction timeout where a test holds a vote open on purpose: on a
 * loaded machine a second can pass between two steps of a test, and the
 * timeout would then break the lock the test is about. */
static void start(void)
{
    cr_assert_eq(th_start(&srv, NULL), 0, "server did not start");
}

/* The timeout's own tests: 3 s, long enough for the step a test makes in
 * time, short enough to wait out. */
static void start_with_timeout(void)
{
    const char *extra[] = {"-t", "3", NULL};
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_lock, .init = start, .fini = stop, .timeout = 60);
TestSuite(server_lock_timeout, .init = start_with_timeout, .fini = stop, .timeout = 60);

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

/* Connect and register n clients (tc * arguments). */
static void clients(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        client(va_arg(ap, tc *));
    va_end(ap);
}

static void close_all(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        tc_close(va_arg(ap, tc *));
    va_end(ap);
}

static int64_t send_vote(tc *c, int64_t txn)
{
    return tc_send(c, NULL, 0, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)));
}

static zv *vote(tc *c, int64_t txn)
{
    int64_t flag;
    zv *v = tc_call(c, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    cr_assert(v && flag == 0, "vote failed");
    return v;
}

static uint64_t finish(tc *c, int64_t txn)
{
    int64_t flag;
    zv *t = tc_call(c, "tpc_finish", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    cr_assert(t && flag == 0, "tpc_finish failed");
    return tv_u64(t);
}

/* No reply for a while: the vote is queued. */
static void expect_waiting(tc *c, const char *why)
{
    proto_msg m;
    int rc;
    while ((rc = tc_recv(c, &m, 300)) == 1 && strcmp(m.name, ".reply") != 0)
        ;   /* invalidations may come meanwhile */
    cr_expect_eq(rc, -1, "%s", why);
}

/* The reply to vote_id, skipping (and counting) the invalidations of tid
 * that come before it. Conflicts name tid, so its invalidation must come
 * first; a success vote reveals no tid and may come before it. */
static zv *vote_reply(tc *c, int64_t vote_id, uint64_t tid, int *invalidated)
{
    for (;;) {
        proto_msg m;
        cr_assert_eq(tc_recv(c, &m, TC_TIMEOUT), 1, "no vote reply");
        int64_t id;
        if (!strcmp(m.name, "invalidateTransaction")) {
            *invalidated += tv_u64(m.args->u.seq.items[0]) == tid;
            continue;
        }
        cr_assert(!strcmp(m.name, ".reply") && zv_get_int(m.msgid, &id) && id == vote_id);
        cr_assert_eq(m.flag, 0, "the vote failed");
        return m.args;
    }
}

static int64_t status_int(tc *c, const char *key)
{
    int64_t flag, v = -1;
    zv *st = tc_call(c, "server_status", zv_tuple(c->a, 0), &flag);
    cr_assert(st && flag == 0);
    zv_get_int(zv_dict_get(st, key), &v);
    return v;
}

/* A votes a store of new oid 1; B stores oid 1 too, and its vote waits.
 * Returns B's vote msgid (A's txn is 1, B's 2). */
static int64_t b_waits_for_a(tc *a, tc *b)
{
    tc_begin_store(a, 1, 1, 0, "a");
    vote(a, 1);
    tc_begin_store(b, 2, 1, 0, "b");
    int64_t bvote = send_vote(b, 2);
    expect_waiting(b, "B voted while A held oid 1");
    return bvote;
}

Test(server_lock, disjoint_transactions_vote_side_by_side)
{
    tc a, b;
    clients(2, &a, &b);
    tc_begin_store(&a, 1, 1, 0, "a");
    cr_expect_eq(vote(&a, 1)->u.seq.n, 0);
    /* B touches other oids: its vote is answered while A is voted. */
    tc_begin_store(&b, 2, 2, 0, "b");
    cr_expect_eq(vote(&b, 2)->u.seq.n, 0);
    cr_expect_eq(status_int(&b, "waiting"), 0);
    /* Finished in the other order: tids follow the finishes. */
    uint64_t tb = finish(&b, 2);
    uint64_t ta = finish(&a, 1);
    cr_expect_gt(ta, tb, "tids increase in finish order");
    zv *inv = tc_wait_async(&a, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv);
    cr_expect_eq(tv_u64(inv->u.seq.items[0]), tb);
    inv = tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv);
    cr_expect_eq(tv_u64(inv->u.seq.items[0]), ta);
    int64_t flag;
    zv *last = tc_call(&b, "lastTransaction", zv_tuple(b.a, 0), &flag);
    cr_expect_eq(tv_u64(last), ta);
    close_all(2, &a, &b);
}

Test(server_lock, a_voter_waits_for_the_holder_of_its_oid)
{
    tc a, b;
    clients(2, &a, &b);
    /* B stores the same new oid: it waits for A's commit, then meets it as
     * a conflict that names A's tid. */
    int64_t bvote = b_waits_for_a(&a, &b);
    cr_expect_eq(status_int(&b, "waiting"), 1);
    uint64_t ta = finish(&a, 1);
    int invalidated = 0;
    zv *v = vote_reply(&b, bvote, ta, &invalidated);
    cr_expect_eq(invalidated, 1, "the invalidation of A's commit came before the conflict");
    cr_assert_eq(v->u.seq.n, 1);
    const zv *serials = zv_dict_get(v->u.seq.items[0], "serials");
    cr_expect_eq(tv_u64(serials->u.seq.items[0]), ta);
    cr_expect_eq(tv_u64(serials->u.seq.items[1]), 0);
    /* B resolves against A's tid and commits after it. */
    tc_store(&b, 2, 1, ta, "b-resolved");
    cr_expect_eq(vote(&b, 2)->u.seq.n, 0);
    cr_expect_gt(finish(&b, 2), ta);
    close_all(2, &a, &b);
}

Test(server_lock, waiters_are_served_first_come_first_served)
{
    tc a, b, c;
    clients(3, &a, &b, &c);
    tc_begin_store(&a, 1, 1, 0, "a");
    vote(&a, 1);
    /* B waits for oid 1 and wants oid 2 too; C wants only oid 2, which is
     * free, but B asked first. */
    tc_begin_store(&b, 2, 1, 0, "b1");
    tc_store(&b, 2, 2, 0, "b2");
    int64_t bvote = send_vote(&b, 2);
    tc_begin_store(&c, 3, 2, 0, "c");
    int64_t cvote = send_vote(&c, 3);
    expect_waiting(&c, "C passed B, which waited first for oid 2");
    cr_expect_eq(status_int(&a, "waiting"), 2);
    uint64_t ta = finish(&a, 1);
    int inv = 0;
    zv *v = vote_reply(&b, bvote, ta, &inv);
    cr_assert_eq(v->u.seq.n, 1, "B conflicts on oid 1 only");
    /* B holds oids 1 and 2 while it resolves: C still waits. */
    expect_waiting(&c, "C voted while B resolved conflicts");
    tc_store(&b, 2, 1, ta, "b1-resolved");
    cr_expect_eq(vote(&b, 2)->u.seq.n, 0);
    uint64_t tb = finish(&b, 2);
    v = vote_reply(&c, cvote, tb, &inv);
    cr_assert_eq(v->u.seq.n, 1, "C meets B's commit of oid 2");
    cr_expect_eq(tv_u64(zv_dict_get(v->u.seq.items[0], "oid")), 2);
    close_all(3, &a, &b, &c);
}

static void check_current(tc *c, int64_t txn, uint64_t oid, uint64_t serial)
{
    tc_send(c, NULL, 1, "checkCurrentSerialInTransaction",
            tv_tuple(c->a, 3, tv_oid(c->a, oid), tv_oid(c->a, serial), tv_int(c->a, txn)));
}

Test(server_lock, checkers_share_an_oid_and_a_writer_waits_for_them)
{
    tc a, b, c, d;
    clients(4, &a, &b, &c, &d);
    uint64_t t9 = tc_commit_one(&a, 1, 9, 0, "nine");
    cr_assert_neq(t9, 0);
    /* A and B both read oid 9 as current (as BTrees do with the nodes above
     * the bucket they change) and write other oids: they vote side by side. */
    tc_begin_store(&a, 2, 2, 0, "a");
    check_current(&a, 2, 9, t9);
    cr_expect_eq(vote(&a, 2)->u.seq.n, 0);
    tc_begin_store(&b, 3, 3, 0, "b");
    check_current(&b, 3, 9, t9);
    cr_expect_eq(vote(&b, 3)->u.seq.n, 0, "B waited for A although both only check oid 9");
    /* C writes oid 9: it waits for both checkers. D checks oid 9 after C
     * asked to write it: D waits behind C. */
    tc_begin_store(&c, 4, 9, t9, "nine-2");
    int64_t cvote = send_vote(&c, 4);
    expect_waiting(&c, "C wrote oid 9 while others checked it");
    tc_begin_store(&d, 5, 4, 0, "d");
    check_current(&d, 5, 9, t9);
    int64_t dvote = send_vote(&d, 5);
    expect_waiting(&d, "D passed C, which waited first for oid 9");
    uint64_t ta = finish(&a, 2);
    expect_waiting(&c, "C wrote oid 9 while B still checked it");
    uint64_t tb = finish(&b, 3);
    cr_expect_gt(tb, ta);
    int inv = 0;
    zv *v = vote_reply(&c, cvote, tb, &inv);
    cr_expect_eq(v->u.seq.n, 0, "oid 9 did not change under C");
    uint64_t tc9 = finish(&c, 4);
    /* D read oid 9 at t9; C changed it: a read conflict, not resolvable. */
    for (;;) {
        proto_msg m;
        cr_assert_eq(tc_recv(&d, &m, TC_TIMEOUT), 1, "no vote reply for D");
        if (strcmp(m.name, ".reply"))
            continue;
        int64_t id;
        cr_assert(zv_get_int(m.msgid, &id) && id == dvote);
        cr_expect_eq(m.flag, 2);
        cr_expect_str_eq(tv_error_class(m.args), "ZODB.POSException.ReadConflictError");
        const zv *serials = zv_dict_get(m.args->u.seq.items[1], "serials");
        cr_expect(serials && tv_u64(serials->u.seq.items[0]) == tc9);
        break;
    }
    close_all(4, &a, &b, &c, &d);
}

Test(server_lock, a_checker_does_not_pass_an_earlier_writer)
{
    tc a, b, c, d;
    clients(4, &a, &b, &c, &d);
    uint64_t tr = tc_commit_one(&a, 1, 9, 0, "r");
    cr_assert_neq(tr, 0);
    /* A holds oid 1. B checks oid 9 but waits for oid 1; C, to write oid 9,
     * waits behind B's check; D only checks oid 9, which nobody holds, but
     * C asked to write it first. */
    tc_begin_store(&a, 2, 1, 0, "a");
    vote(&a, 2);
    tc_begin_store(&b, 3, 1, 0, "b");
    check_current(&b, 3, 9, tr);
    send_vote(&b, 3);
    tc_begin_store(&c, 4, 9, tr, "c");
    send_vote(&c, 4);
    tc_begin_store(&d, 5, 2, 0, "d");
    check_current(&d, 5, 9, tr);
    send_vote(&d, 5);
    expect_waiting(&b, "B took oid 1 from A");
    expect_waiting(&c, "C wrote oid 9 before B checked it");
    expect_waiting(&d, "D checked oid 9 before C, which asked first, wrote it");
    cr_expect_eq(status_int(&a, "waiting"), 3);
    close_all(4, &a, &b, &c, &d);
}

Test(server_lock, undo_waits_to_be_alone_and_others_wait_behind_it)
{
    tc a, b, c;
    clients(3, &a, &b, &c);
    uint64_t t0 = tc_commit_one(&a, 1, 7, 0, "seven");
    cr_assert_neq(t0, 0);
    tc_begin_store(&a, 2, 1, 0, "a");
    vote(&a, 2);
    /* B undoes t0 (oid 7, not locked by A): undo still waits for A. */
    int64_t flag;
    uint8_t raw[8];
    zbe64_put(raw, t0);
    zv *id = zv_bytes(b.a, raw, 8);
    tc_send(&b, NULL, 1, "tpc_begin",
            tv_tuple(b.a, 4, tv_int(b.a, 3), tv_bytes(b.a, "u"), tv_bytes(b.a, "d"),
                     tv_dict0(b.a)));
    tc_send(&b, NULL, 1, "undoa", tv_tuple(b.a, 2, id, tv_int(b.a, 3)));
    int64_t bvote = send_vote(&b, 3);
    expect_waiting(&b, "an undo voted beside another voter");
    /* C touches a third oid, but nobody passes the waiting undo. */
    tc_begin_store(&c, 4, 9, 0, "c");
    int64_t cvote = send_vote(&c, 4);
    expect_waiting(&c, "C passed the waiting undo");
    uint64_t ta = finish(&a, 2);
    int inv = 0;
    zv *v = vote_reply(&b, bvote, ta, &inv);
    cr_assert_eq(v->u.seq.n, 1, "the undo changes oid 7");
    cr_expect_eq(tv_u64(v->u.seq.items[0]), 7);
    expect_waiting(&c, "C voted beside the undo");
    uint64_t tb = finish(&b, 3);
    cr_expect_gt(tb, ta);
    v = vote_reply(&c, cvote, tb, &inv);
    cr_expect_eq(v->u.seq.n, 0);
    cr_expect_gt(finish(&c, 4), tb);
    zv *r = tc_load_current(&a, 7, &flag);
    cr_assert(r);
    cr_expect_eq(flag, 2, "oid 7 was created by t0: undone, it is gone");
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.POSKeyError");
    close_all(3, &a, &b, &c);
}

Test(server_lock, conflicts_go_back_and_the_oids_stay_locked_for_the_revote)
{
    tc a, b, c;
    clients(3, &a, &b, &c);
    uint64_t t1 = tc_commit_one(&a, 1, 5, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 5, t1, "v2");
    cr_assert(t1 && t2);
    for (int i = 0; i < 2; i++)
        cr_assert(tc_wait_async(&c, "invalidateTransaction", TC_TIMEOUT));
    /* B stores against the stale t1: the vote returns a conflict dict. */
    tc_begin_store(&b, 7, 5, t1, "b-stale");
    zv *v = vote(&b, 7);
    cr_assert_eq(v->u.seq.n, 1, "a resolvable conflict is not an error");
    const zv *d = v->u.seq.items[0];
    cr_expect_eq(tv_u64(zv_dict_get(d, "oid")), 5);
    const zv *serials = zv_dict_get(d, "serials");
    cr_expect_eq(tv_u64(serials->u.seq.items[0]), t2);
    cr_expect_eq(tv_u64(serials->u.seq.items[1]), t1);
    cr_expect_eq(zv_dict_get(d, "data")->u.s.len, 7);
    /* The committed state is there for the client's resolver. */
    int64_t flag;
    zv *old = tc_call(&b, "loadSerial", tv_tuple(b.a, 2, tv_oid(b.a, 5), tv_oid(b.a, t2)), &flag);
    cr_expect(old && flag == 0 && old->u.s.len == 2);
    /* C's vote on oid 5 waits: B keeps it while it resolves. */
    tc_begin_store(&c, 9, 5, t2, "c");
    int64_t cvote = send_vote(&c, 9);
    expect_waiting(&c, "C voted while B held oid 5");
    /* B re-stores against t2 and votes again: accepted, not 'Already voting'. */
    tc_store(&b, 7, 5, t2, "resolved");
    cr_expect_eq(vote(&b, 7)->u.seq.n, 0);
    uint64_t t3 = finish(&b, 7);
    int inv = 0;
    v = vote_reply(&c, cvote, t3, &inv);
    cr_expect_eq(inv, 1);
    cr_expect_eq(v->u.seq.n, 1, "C meets B's resolved commit");
    zv *r = tc_load_current(&a, 5, &flag);
    cr_assert(r && flag == 0);
    cr_expect(r->u.seq.items[0]->u.s.len == 8 && !memcmp(r->u.seq.items[0]->u.s.p, "resolved", 8));
    close_all(3, &a, &b, &c);
}

Test(server_lock, a_revote_that_needs_a_held_oid_queues_again)
{
    tc a, b, c;
    clients(3, &a, &b, &c);
    uint64_t t1 = tc_commit_one(&a, 1, 5, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 5, t1, "v2");
    cr_assert(t1 && t2);
    tc_begin_store(&b, 3, 5, t1, "b-stale");
    cr_assert_eq(vote(&b, 3)->u.seq.n, 1);
    /* C holds oid 6 meanwhile; B's resolution also stores oid 6. */
    tc_begin_store(&c, 4, 6, 0, "c");
    cr_expect_eq(vote(&c, 4)->u.seq.n, 0);
    tc_store(&b, 3, 5, t2, "b-resolved");
    tc_store(&b, 3, 6, 0, "b6");
    int64_t bvote = send_vote(&b, 3);
    expect_waiting(&b, "B's re-vote took oid 6 from C");
    uint64_t tc6 = finish(&c, 4);
    int inv = 0;
    zv *v = vote_reply(&b, bvote, tc6, &inv);
    cr_assert_eq(v->u.seq.n, 1, "B meets C's commit of oid 6");
    cr_expect_eq(tv_u64(zv_dict_get(v->u.seq.items[0], "oid")), 6);
    tc_store(&b, 3, 6, tc6, "b6-resolved");
    cr_expect_eq(vote(&b, 3)->u.seq.n, 0);
    cr_expect_gt(finish(&b, 3), tc6);
    close_all(3, &a, &b, &c);
}

Test(server_lock_timeout, stalled_voter_times_out_and_releases_its_oids)
{
    tc a, b;
    clients(2, &a, &b);
    int64_t bvote = b_waits_for_a(&a, &b);
    /* A never finishes: after the 3 s timeout it is closed and B votes. */
    int inv = 0;
    zv *v = vote_reply(&b, bvote, 0, &inv);
    cr_expect_eq(v->u.seq.n, 0, "A's stores were aborted: no conflict");
    cr_expect(tc_wait_closed(&a, TC_TIMEOUT), "the stalled voter must be disconnected");
    cr_expect_neq(finish(&b, 2), 0);
    int64_t flag;
    zv *r = tc_load_current(&b, 1, &flag);
    cr_assert(r && flag == 0);
    cr_expect(r->u.seq.items[0]->u.s.len == 1 && r->u.seq.items[0]->u.s.p[0] == 'b');
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "Transaction timeout"));
    free(log);
    close_all(2, &a, &b);
}

Test(server_lock_timeout, each_holder_has_its_own_timeout)
{
    tc a, b;
    clients(2, &a, &b);
    tc_begin_store(&a, 1, 1, 0, "a");
    vote(&a, 1);
    tc_begin_store(&b, 2, 2, 0, "b");
    vote(&b, 2);
    /* B finishes in time; A stalls and is closed alone. */
    cr_expect_neq(finish(&b, 2), 0);
    cr_expect(tc_wait_closed(&a, TC_TIMEOUT), "the stalled voter must be disconnected");
    cr_expect_eq(status_int(&b, "active_txns"), 0);
    close_all(2, &a, &b);
}

Test(server_lock, disconnect_mid_commit_releases_the_oids)
{
    tc a, b;
    clients(2, &a, &b);
    int64_t bvote = b_waits_for_a(&a, &b);
    tc_close(&a);
    proto_msg m;
    cr_assert_eq(tc_recv(&b, &m, 800), 1, "B's vote must follow A's disconnect promptly");
    int64_t id;
    cr_expect(zv_get_int(m.msgid, &id) && id == bvote);
    cr_expect_eq(m.args->u.seq.n, 0, "A left nothing behind to conflict with");
    cr_expect_neq(finish(&b, 2), 0);
    cr_expect_eq(status_int(&b, "active_txns"), 0, "nothing left behind");
    cr_expect_eq(status_int(&b, "aborts"), 1);
    tc_close(&b);
}

/* ---- many clients at once ------------------------------------------------------ */

enum { STRESS_CLIENTS = 4, STRESS_COMMITS = 120, STRESS_OIDS = 6 };

/* The current value (a decimal counter) and tid of oid; 0 on success. */
static int read_counter(tc *c, uint64_t oid, long *value, uint64_t *tid)
{
    int64_t flag;
    zv *r = tc_load_current(c, oid, &flag);
    if (!r || flag != 0 || !zv_is_seq(r) || r->u.seq.n != 3)
        return -1;
    char buf[32];
    size_t n = r->u.seq.items[0]->u.s.len < sizeof buf - 1 ? r->u.seq.items[0]->u.s.len
                                                           : sizeof buf - 1;
    memcpy(buf, r->u.seq.items[0]->u.s.p, n);
    buf[n] = '\0';
    *value = strtol(buf, NULL, 10);
    *tid = tv_u64(r->u.seq.items[1]);
    return 0;
}

/* One transaction: add 1 to one or two counters, readCurrent a third. 1 when
 * it committed, 0 when it met a conflict (and aborted), -1 on failure. */
static int increment(tc *c, int64_t txn, unsigned *seed, int counts[STRESS_OIDS])
{
    uint64_t w1 = (uint64_t)(rand_r(seed) % STRESS_OIDS), w2 = (uint64_t)(rand_r(seed) % STRESS_OIDS);
    uint64_t chk = (uint64_t)(rand_r(seed) % STRESS_OIDS);
    int two = w2 != w1 && rand_r(seed) % 2;
    long v1, v2, vc;
    uint64_t t1, t2, tchk;
    if (read_counter(c, w1, &v1, &t1) || (two && read_counter(c, w2, &v2, &t2)) ||
        read_counter(c, chk, &vc, &tchk))
        return -1;
    char d1[32], d2[32];
    snprintf(d1, sizeof d1, "%ld", v1 + 1);
    snprintf(d2, sizeof d2, "%ld", two ? v2 + 1 : 0);
    tc_begin_store(c, txn, w1, t1, d1);
    if (two)
        tc_store(c, txn, w2, t2, d2);
    if (chk != w1 && (!two || chk != w2))
        check_current(c, txn, chk, tchk);
    int64_t flag;
    zv *v = tc_call(c, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    if (!v)
        return -1;
    if (flag != 0 || v->u.seq.n != 0) {
        /* A conflict (resolvable or not): give up this one, as an
         * application without resolution would. */
        tc_call(c, "tpc_abort", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
        return 0;
    }
    zv *t = tc_call(c, "tpc_finish", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    if (!t || flag != 0)
        return -1;
    counts[w1]++;
    if (two)
        counts[w2]++;
    return 1;
}

/* A child process: STRESS_COMMITS committed increments; their counts per oid
 * go to fd. Exit status 0, or 1 on failure. */
static void stress_child(int port, int index, int fd)
{
    tc c;
    int counts[STRESS_OIDS] = {0};
    unsigned seed = (unsigned)index * 7919u + 1;
    if (tc_connect(&c, port, index % 2 ? PROTO_MSGPACK : PROTO_PICKLE, NULL) < 0 ||
        tc_register(&c) < 0)
        _exit(1);
    for (int done = 0, txn = 1; done < STRESS_COMMITS; txn++) {
        int rc = increment(&c, txn, &seed, counts);
        if (rc < 0)
            _exit(1);
        done += rc;
        tc_reset(&c);
    }
    ssize_t n = write(fd, counts, sizeof counts);
    _exit(n == (ssize_t)sizeof counts ? 0 : 1);
}

Test(server_lock, concurrent_increments_lose_nothing)
{
    tc a;
    client(&a);
    for (uint64_t oid = 0; oid < STRESS_OIDS; oid++)
        cr_assert_neq(tc_commit_one(&a, (int64_t)oid + 1, oid, 0, "0"), 0);
    int fds[STRESS_CLIENTS][2];
    pid_t pids[STRESS_CLIENTS];
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        cr_assert_eq(pipe(fds[i]), 0);
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            stress_child(srv.port, i, fds[i][1]);
        close(fds[i][1]);
    }
    int total[STRESS_OIDS] = {0};
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        int counts[STRESS_OIDS], status;
        ssize_t n = read(fds[i][0], counts, sizeof counts);
        close(fds[i][0]);
        waitpid(pids[i], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == (ssize_t)sizeof counts,
                  "client %d failed", i);
        for (int k = 0; k < STRESS_OIDS; k++)
            total[k] += counts[k];
    }
    /* Every committed increment is there, none twice. */
    for (uint64_t oid = 0; oid < STRESS_OIDS; oid++) {
        long value;
        uint64_t tid;
        cr_assert_eq(read_counter(&a, oid, &value, &tid), 0);
        cr_expect_eq(value, total[oid], "oid %llu: %ld, but %d increments committed",
                     (unsigned long long)oid, value, total[oid]);
    }
    cr_expect_eq(status_int(&a, "active_txns"), 0);
    tc_close(&a);
}
