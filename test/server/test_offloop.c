/* A vote off the loop (ZEOLITE_OFFLOOP, as a network store's) runs on a
 * worker while its connection goes on: a tpc_abort, or the client going
 * away, in between leaves the store transaction to the vote's job, which
 * aborts it when it is back. Nothing is left locked or open, and nothing
 * leaks (the sanitizer builds run this too).
 *
 * ZEOLITE_OFFLOOP_HOLD_WRITES keeps each vote on its worker for the hold's
 * bound (no commit completes meanwhile), so the abort or the close, sent
 * with the vote, always meets it running. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

static th_server srv;

static void start(void)
{
    setenv("ZEOLITE_OFFLOOP", "1", 1);
    setenv("ZEOLITE_OFFLOOP_HOLD_MS", "300", 1);
    setenv("ZEOLITE_OFFLOOP_HOLD_WRITES", "1", 1);
    cr_assert_eq(th_start(&srv, NULL), 0);
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_offloop, .init = start, .fini = stop, .timeout = 60);

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

/* Poll an int of zeolite_memory / server_status on c until it is want. */
static int64_t until(tc *c, const char *call, const char *key, int64_t want)
{
    int64_t v = -1;
    for (int i = 0; i < 5000; i++) {
        int64_t flag;
        zv *d = tc_call(c, call, tv_tuple(c->a, 0), &flag);
        const zv *x = d && flag == 0 ? zv_dict_get(d, key) : NULL;
        if (!x || !zv_get_int(x, &v))
            return -1;
        tc_reset(c);
        if (v == want)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return v;
}

/* tpc_begin, a store of oid and the vote, sent at once; the vote's msgid. */
static int64_t begin_vote(tc *c, int64_t txn, uint64_t oid)
{
    tc_begin_store(c, txn, oid, 0, "data");
    return tc_send(c, NULL, 0, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)));
}

Test(server_offloop, a_tpc_abort_while_the_vote_runs_leaves_it_to_the_vote)
{
    tc a, w;
    client(&a);
    client(&w);
    int64_t vote = begin_vote(&a, 1, 7);
    int64_t flag;
    zv *r = tc_call(&a, "tpc_abort", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag);
    cr_assert(r && flag == 0 && r->type == ZV_NONE, "tpc_abort was not answered");
    /* The abort is answered at once; the vote, dropped with its transaction,
     * is not (as a vote waiting for its locks is not, on the loop). */
    cr_expect_eq(until(&w, "server_status", "aborts", 1), 1);
    cr_expect_eq(until(&w, "server_status", "active_txns", 0), 0);
    cr_expect_eq(until(&w, "zeolite_memory", "jobs", 0), 0, "the vote's job never ended");
    /* Whatever a was sent comes before this reply. */
    cr_assert(tc_call(&a, "ping", tv_tuple(a.a, 0), &flag));
    for (size_t i = 0; i < a.n_async; i++) {
        int64_t id;
        cr_expect(strcmp(a.asyncs[i].name, ".reply") || !zv_get_int(a.asyncs[i].msgid, &id) ||
                  id != vote, "the dropped vote was answered");
    }
    tc_reset(&a);
    /* Its oid is free: the same client, then another, commit it. */
    cr_expect_neq(tc_commit_one(&a, 2, 7, 0, "a"), 0, "the aborted vote left oid 7 locked");
    zv *cur = tc_load_current(&w, 7, &flag);
    cr_assert(cur && flag == 0);
    cr_expect_neq(tc_commit_one(&w, 3, 7, tv_u64(cur->u.seq.items[1]), "w"), 0);
    tc_close(&a);
    tc_close(&w);
}

Test(server_offloop, a_client_that_goes_while_its_vote_runs_leaves_nothing_behind)
{
    tc a, w;
    client(&a);
    client(&w);
    begin_vote(&a, 1, 8);
    tc_close(&a);
    cr_expect_eq(until(&w, "server_status", "active_txns", 0), 0);
    cr_expect_eq(until(&w, "zeolite_memory", "jobs", 0), 0, "the vote's job never ended");
    cr_expect_eq(until(&w, "server_status", "connections", 1), 1);
    cr_expect_neq(tc_commit_one(&w, 2, 8, 0, "w"), 0, "the gone client left oid 8 locked");
    cr_expect_eq(th_stop(&srv), 0, "the server did not stop cleanly");
    tc_close(&w);
}

/* Calls on one iterator, sent together: each waits for the one before it
 * (a job owns the iterator while it runs), and the replies come in order. */
Test(server_offloop, pipelined_calls_on_one_iterator_wait_for_each_other)
{
    tc w;
    client(&w);
    uint64_t tids[4];
    for (int i = 0; i < 4; i++) {
        char data[16];
        snprintf(data, sizeof data, "v%d", i);
        zv *cur = NULL;
        int64_t flag;
        if (i)
            cur = tc_load_current(&w, 9, &flag);
        tids[i] = tc_commit_one(&w, 10 + i, 9, cur ? tv_u64(cur->u.seq.items[1]) : 0, data);
        cr_assert_neq(tids[i], 0);
        tc_reset(&w);
    }
    int64_t flag;
    zv *id = tc_call(&w, "iterator_start", tv_tuple(w.a, 0), &flag);
    int64_t iid;
    cr_assert(id && flag == 0 && zv_get_int(id, &iid));
    int64_t sent[5];
    for (int i = 0; i < 5; i++)
        sent[i] = tc_send(&w, NULL, 0, "iterator_next", tv_tuple(w.a, 1, tv_int(w.a, iid)));
    for (int i = 0; i < 5; i++) {
        proto_msg m;
        do
            cr_assert_eq(tc_recv(&w, &m, TC_TIMEOUT), 1);
        while (strcmp(m.name, ".reply"));
        int64_t got;
        cr_assert(zv_get_int(m.msgid, &got));
        cr_expect_eq(got, sent[i], "reply %lld came in place of %lld", (long long)got,
                     (long long)sent[i]);
        cr_assert_eq(m.flag, 0);
        if (i < 4)
            cr_expect_eq(tv_u64(m.args->u.seq.items[0]), tids[i]);
        else
            cr_expect_eq(m.args->type, ZV_NONE, "the iterator did not end");
    }
    tc_close(&w);
}
