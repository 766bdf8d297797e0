/* Hostile clients against the server's bounds (issue 10): iterators cannot
 * take the reader slots commits need, oids never wrap, a forged tid is
 * refused, a conflicted transaction cannot hold its locks for ever, and an
 * async tpc_finish gets no reply. Each attack is sent as raw frames; a
 * well-behaved connection then commits, and the oid and tid cases restart
 * the server and check what it hands out next. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/ztid.h"
#include "helpers.h"

static th_server srv;

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_bounds, .fini = stop, .timeout = 120);

static void start(const char *const *extra)
{
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

/* Stop the server and start it again on the same database and port. */
static void restart(const char *const *extra)
{
    cr_assert_eq(th_stop(&srv), 0, "the server did not stop cleanly");
    cr_assert_eq(th_restart(&srv, extra), 0, "the server did not restart");
}

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

static uint64_t last_transaction(tc *c)
{
    int64_t flag;
    zv *r = tc_call(c, "lastTransaction", zv_tuple(c->a, 0), &flag);
    cr_assert(r && flag == 0, "lastTransaction failed");
    return tv_u64(r);
}

/* new_oids(n): the reply (a list, or an error with *flag 2). */
static zv *new_oids(tc *c, int n, int64_t *flag)
{
    zv *r = tc_call(c, "new_oids", tv_tuple(c->a, 1, tv_int(c->a, n)), flag);
    cr_assert(r, "no new_oids reply");
    return r;
}

static int alive(tc *c)
{
    int64_t flag;
    zv *r = tc_call(c, "ping", zv_tuple(c->a, 0), &flag);
    return r && flag == 0;
}

/* The tid of the server's clock secs from now (the test shares its clock). */
static uint64_t tid_in(double secs)
{
    uint64_t tid = 0;
    cr_assert_eq(ztid_from_time((double)time(NULL) + secs, &tid), 0);
    return tid;
}

/* A tid the server made just now: after last, and near the clock. */
static void expect_sane_tid(uint64_t tid, uint64_t last)
{
    cr_expect_gt(tid, last, "tid %016llx is not after %016llx", (unsigned long long)tid,
                 (unsigned long long)last);
    cr_expect_lt(tid, tid_in(3600), "tid %016llx is far in the future", (unsigned long long)tid);
}

/* ---- iterators ---------------------------------------------------------- */

/* iterator_start(): its id (>= 0), or -1 with the error class in cls. */
static int64_t iterator_start(tc *c, char *cls, size_t cap)
{
    int64_t flag, id = -1;
    zv *r = tc_call(c, "iterator_start", tv_tuple(c->a, 2, tv_none(c->a), tv_none(c->a)), &flag);
    cr_assert(r, "no iterator_start reply");
    if (flag == 0 && zv_get_int(r, &id))
        return id;
    snprintf(cls, cap, "%s", tv_error_class(r));
    return -1;
}

/* iterator_next(id): the transaction's tid, or 0 at the end. */
static uint64_t iterator_next(tc *c, int64_t id)
{
    int64_t flag;
    zv *r = tc_call(c, "iterator_next", tv_tuple(c->a, 1, tv_int(c->a, id)), &flag);
    cr_assert(r && flag == 0, "iterator_next failed: %s", r ? tv_error_class(r) : "no reply");
    return r->type == ZV_NONE ? 0 : tv_u64(r->u.seq.items[0]);
}

Test(server_bounds, open_iterators_do_not_lock_out_commits)
{
    start(NULL);
    enum { CONNS = 8, EACH = 64 };
    tc a[CONNS], good;
    client(&good);
    uint64_t t1 = tc_commit_one(&good, 1, 0, 0, "root");
    cr_assert(t1);
    int64_t first_id[CONNS];
    int opened = 0, refused = 0;
    char cls[128] = "";
    for (int i = 0; i < CONNS; i++) {
        client(&a[i]);
        first_id[i] = -1;
        for (int k = 0; k < EACH; k++) {
            int64_t id = iterator_start(&a[i], cls, sizeof cls);
            if (id >= 0 && first_id[i] < 0)
                first_id[i] = id;
            opened += id >= 0;
            refused += id < 0;
            tc_reset(&a[i]);
        }
    }
    cr_log_info("%d iterators opened, %d refused (%s)", opened, refused, cls);
    cr_expect_eq(opened, 256, "the server-wide cap is 256 open iterators");
    cr_expect_eq(refused, CONNS * EACH - 256);
    cr_expect_str_eq(cls, "ZODB.POSException.StorageError");
    for (int i = 0; i < CONNS; i++)
        cr_expect(alive(&a[i]), "a refused iterator_start closed connection %d", i);

    /* The well-behaved client votes and commits while they are all open. */
    uint64_t t2 = tc_commit_one(&good, 2, 0, t1, "root2");
    cr_expect_neq(t2, 0, "a commit failed while iterators were open");
    /* An iterator lists what was committed when it started, not later. */
    cr_assert_geq(first_id[0], 0);
    cr_expect_eq(iterator_next(&a[0], first_id[0]), t1);
    cr_expect_eq(iterator_next(&a[0], first_id[0]), 0, "t2 came after the iterator started");

    /* Closing some (iterator_gc) makes room for others. */
    zv *ids = zv_list(a[1].a, EACH);
    for (int k = 0; k < EACH; k++)
        ids->u.seq.items[k] = tv_int(a[1].a, first_id[1] + k);
    int64_t flag;
    cr_assert(tc_call(&a[1], "iterator_gc", tv_tuple(a[1].a, 1, ids), &flag) && flag == 0);
    int64_t id = iterator_start(&a[7], cls, sizeof cls);
    cr_assert_geq(id, 0, "no room after iterator_gc: %s", cls);
    cr_expect_eq(iterator_next(&a[7], id), t1);
    cr_expect_eq(iterator_next(&a[7], id), t2);
    cr_expect_eq(iterator_next(&a[7], id), 0);
    cr_expect_gt(tc_commit_one(&good, 3, 0, t2, "root3"), t2);
    for (int i = 0; i < CONNS; i++)
        tc_close(&a[i]);
    tc_close(&good);
}

Test(server_bounds, max_iterators_is_configurable)
{
    const char *extra[] = {"--max-iterators", "3", NULL};
    start(extra);
    tc a, b;
    client(&a);
    client(&b);
    char cls[128] = "";
    for (int k = 0; k < 2; k++)
        cr_expect_geq(iterator_start(&a, cls, sizeof cls), 0);
    cr_expect_geq(iterator_start(&b, cls, sizeof cls), 0);
    cr_expect_lt(iterator_start(&a, cls, sizeof cls), 0, "a fourth iterator passed the cap");
    cr_expect_lt(iterator_start(&b, cls, sizeof cls), 0);
    /* A's iterators die with its connection; B gets their room. */
    tc_close(&a);
    int64_t id = -1;
    for (int waited = 0; waited < TC_TIMEOUT && id < 0; waited += 10) {
        id = iterator_start(&b, cls, sizeof cls);
        if (id < 0)
            usleep(10 * 1000);   /* the server has not seen A's close yet */
    }
    cr_expect_geq(id, 0, "a closed connection's iterators still count");
    cr_expect_eq(iterator_next(&b, id), 0, "the database is empty");
    tc_close(&b);
}

/* ---- oids --------------------------------------------------------------- */

/* Every oid new_oids gave is above `above` (so not one in use), or it failed
 * with a StorageError. Returns 1 when it gave oids. */
static int oids_above(tc *c, int n, uint64_t above)
{
    int64_t flag;
    zv *r = new_oids(c, n, &flag);
    if (flag != 0) {
        cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.StorageError");
        return 0;
    }
    cr_assert(zv_is_seq(r) && r->u.seq.n == (size_t)n);
    for (size_t i = 0; i < r->u.seq.n; i++)
        cr_expect_gt(tv_u64(r->u.seq.items[i]), above, "new_oids gave %016llx",
                     (unsigned long long)tv_u64(r->u.seq.items[i]));
    return 1;
}

Test(server_bounds, new_oids_does_not_wrap_past_the_last_oid)
{
    start(NULL);
    tc a;
    client(&a);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    uint64_t t2 = tc_commit_one(&a, 2, UINT64_MAX - 1, 0, "high");
    cr_assert(t1 && t2);
    int64_t flag;
    zv *r = new_oids(&a, 5, &flag);
    cr_expect_eq(flag, 2, "new_oids(5) above fffffffffffffffe must fail");
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.StorageError");
    cr_expect(alive(&a));
    tc_close(&a);

    restart(NULL);
    client(&a);
    cr_expect_eq(last_transaction(&a), t2);
    cr_expect_eq(oids_above(&a, 1, UINT64_MAX - 1), 0, "the oid space stays exhausted");
    uint64_t t3 = tc_commit_one(&a, 3, 0, t1, "root2");
    expect_sane_tid(t3, t2);
    cr_expect_eq(last_transaction(&a), t3);
    tc_close(&a);
}

Test(server_bounds, a_restart_does_not_move_the_oid_counter_back)
{
    start(NULL);
    tc a;
    client(&a);
    int64_t flag;
    zv *r = new_oids(&a, 1, &flag);
    cr_assert(flag == 0 && r->u.seq.n == 1);
    uint64_t oid = tv_u64(r->u.seq.items[0]);
    uint64_t t1 = tc_commit_one(&a, 1, oid, 0, "in use");
    uint64_t t2 = tc_commit_one(&a, 2, UINT64_MAX, 0, "last oid");
    cr_assert(t1 && t2);
    tc_close(&a);

    restart(NULL);
    client(&a);
    cr_expect_eq(oids_above(&a, 5, UINT64_MAX), 0, "oids in use handed out again");
    cr_expect_eq(last_transaction(&a), t2);
    uint64_t t3 = tc_commit_one(&a, 3, oid, t1, "still works");
    expect_sane_tid(t3, t2);
    tc_close(&a);
}

Test(server_bounds, new_oids_counts_on_after_restored_oids)
{
    start(NULL);
    tc a;
    client(&a);
    cr_assert(tc_commit_one(&a, 1, 5000, 0, "explicit"));
    cr_expect_eq(oids_above(&a, 3, 5000), 1);
    tc_close(&a);
    restart(NULL);
    client(&a);
    cr_expect_eq(oids_above(&a, 3, 5000), 1);
    tc_close(&a);
}

/* ---- tids --------------------------------------------------------------- */

/* tpc_begin with an explicit tid, a store of oid, and the vote: the vote's
 * reply (flag in *flag). */
static zv *begin_with_tid(tc *c, int64_t txn, uint64_t tid, uint64_t oid, int64_t *flag)
{
    zv_arena *a = c->a;
    tc_send(c, NULL, 1, "tpc_begin",
            tv_tuple(a, 6, tv_int(a, txn), tv_bytes(a, ""), tv_bytes(a, ""), tv_dict0(a),
                     tv_oid(a, tid), tv_str(a, " ")));
    tc_store(c, txn, oid, 0, "forged");
    zv *r = tc_call(c, "vote", tv_tuple(a, 1, tv_int(a, txn)), flag);
    cr_assert(r, "no vote reply");
    return r;
}

/* A tid that must be refused: the vote fails with a ValueError naming it,
 * the connection stays, and after a restart the next commit, new_oids and
 * lastTransaction are right. */
static void forged_tid_is_refused(uint64_t forged)
{
    start(NULL);
    tc a;
    client(&a);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    cr_assert(t1);
    int64_t flag;
    zv *r = begin_with_tid(&a, 2, forged, 1, &flag);
    cr_expect_eq(flag, 2, "the forged tid %016llx was accepted", (unsigned long long)forged);
    if (flag == 0) {
        zv *t = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
        cr_log_info("forged tid committed as %016llx", (unsigned long long)tv_u64(t));
    } else {
        cr_expect_str_eq(tv_error_class(r), "builtins.ValueError");
    }
    cr_expect(alive(&a));
    uint64_t t2 = tc_commit_one(&a, 3, 0, t1, "root2");
    expect_sane_tid(t2, t1);
    tc_close(&a);

    restart(NULL);
    client(&a);
    cr_expect_eq(last_transaction(&a), t2);
    uint64_t t3 = tc_commit_one(&a, 4, 0, t2, "root3");
    expect_sane_tid(t3, t2);
    cr_expect_eq(last_transaction(&a), t3);
    cr_expect_eq(oids_above(&a, 3, 0), 1);
    tc_close(&a);
}

Test(server_bounds, the_last_tid_is_refused)
{
    forged_tid_is_refused(UINT64_MAX);
}

Test(server_bounds, a_tid_past_zodbs_maxtid_is_refused)
{
    forged_tid_is_refused(0x7ffffffffffffffeULL);
}

Test(server_bounds, a_tid_past_the_future_bound_is_refused)
{
    forged_tid_is_refused(tid_in(3600 + 60));
}

Test(server_bounds, a_near_future_tid_is_kept_and_later_tids_follow_it)
{
    start(NULL);
    tc a;
    client(&a);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    uint64_t ahead = tid_in(600);
    int64_t flag;
    begin_with_tid(&a, 2, ahead, 1, &flag);
    cr_assert_eq(flag, 0, "a tid ten minutes ahead is within the bound");
    zv *t = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    cr_assert(t && flag == 0);
    cr_expect_eq(tv_u64(t), ahead);
    tc_close(&a);

    /* With a tighter bound the store is now past it: a warning, and the
     * server goes on with tids after the last. */
    const char *tight[] = {"--max-future-tid", "10", NULL};
    restart(tight);
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "WARNING") && strstr(log, "past the server's clock"),
              "no warning about the future last tid");
    free(log);
    client(&a);
    cr_expect_eq(last_transaction(&a), ahead);
    uint64_t t2 = tc_commit_one(&a, 3, 0, t1, "root2");
    cr_expect_gt(t2, ahead);
    cr_expect_lt(t2, tid_in(1200));
    cr_expect_eq(oids_above(&a, 2, 1), 1);
    tc_close(&a);
}

/* ---- locks of a conflicted transaction ---------------------------------- */

Test(server_bounds, a_conflicted_transaction_cannot_hold_its_locks_for_ever)
{
    /* No transaction timeout: only the conflict-resolution bound applies. */
    const char *extra[] = {"--conflict-timeout", "1", NULL};
    start(extra);
    tc a, b, c;
    client(&a);
    client(&b);
    client(&c);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "v2");
    cr_assert(t1 && t2);
    /* B stores against the stale t1, gets the conflict back, never re-votes. */
    tc_begin_store(&b, 3, 0, t1, "b-stale");
    int64_t flag;
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    cr_assert(v && flag == 0 && v->u.seq.n == 1, "no conflict list");
    /* C's vote on the same oid waits for B, then goes through. */
    tc_begin_store(&c, 4, 0, t2, "c");
    v = tc_call(&c, "vote", tv_tuple(c.a, 1, tv_int(c.a, 4)), &flag);
    cr_assert(v, "C's vote never came: B holds oid 0 for ever");
    cr_expect(flag == 0 && v->u.seq.n == 0, "C's vote failed");
    zv *t = tc_call(&c, "tpc_finish", tv_tuple(c.a, 1, tv_int(c.a, 4)), &flag);
    cr_expect(t && flag == 0 && tv_u64(t) > t2);
    /* B got what a transaction timeout gives: its connection closed. */
    cr_expect(tc_wait_closed(&b, TC_TIMEOUT), "the stalled resolver must be disconnected");
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "Transaction timeout"), "no timeout in the log");
    free(log);
    tc_close(&a);
    tc_close(&b);
    tc_close(&c);
}

Test(server_bounds, a_resolver_that_votes_again_in_time_keeps_its_locks)
{
    const char *extra[] = {"--conflict-timeout", "2", NULL};
    start(extra);
    tc a, b;
    client(&a);
    client(&b);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "v2");
    cr_assert(t1 && t2);
    tc_begin_store(&b, 3, 0, t1, "b-stale");
    int64_t flag;
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    cr_assert(v && flag == 0 && v->u.seq.n == 1, "no conflict list");
    tc_store(&b, 3, 0, t2, "resolved");
    v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    cr_assert(v && flag == 0 && v->u.seq.n == 0, "the re-vote failed");
    /* Resolved: the bound no longer runs (no transaction timeout is set). */
    sleep(3);
    zv *t = tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    cr_expect(t && flag == 0 && tv_u64(t) > t2, "the resolved transaction was dropped");
    tc_close(&a);
    tc_close(&b);
}

/* ---- async tpc_finish --------------------------------------------------- */

Test(server_bounds, an_async_tpc_finish_gets_no_reply)
{
    start(NULL);
    tc a, b;
    client(&a);
    client(&b);
    tc_begin_store(&a, 1, 0, 0, "root");
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(v && flag == 0);
    tc_send(&a, NULL, 1, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 1)));
    /* info goes out just before the reply a sync finish gets: wait for it,
     * then a ping's reply must be the next reply. */
    cr_assert(tc_wait_async(&a, "info", TC_TIMEOUT), "the commit did not complete");
    cr_assert(alive(&a));
    for (size_t i = 0; i < a.n_async; i++)
        cr_expect_str_neq(a.asyncs[i].name, ".reply", "an async tpc_finish was answered");
    /* The commit itself went through. */
    zv *inv = tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv, "no invalidation of the commit");
    cr_expect_eq(last_transaction(&b), tv_u64(inv->u.seq.items[0]));
    tc_close(&a);
    tc_close(&b);
}
