/* test_pg_feed.c: the change feed of a shared store (store.h, "Several
 * stores on one database"): other stores' commits arrive in tid order with
 * their oids, in one sequence with the store's own commit callbacks; none
 * is lost when notifications are merged, when they are missed because the
 * feed's session was killed (pg_terminate_backend) while commits went on,
 * or when PostgreSQL goes away for a while (LOST, then BACK); a database
 * whose history is behind what was delivered stops the feed for good. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "pgtest.h"
#include "testutil.h"

TestSuite(pg_feed);

#define MAX_EVENTS 256
#define MAX_OIDS 8

typedef struct seen_event {
    int kind;               /* STORE_FEED_* or 0 for an own commit's callback */
    uint64_t tid;
    uint64_t oids[MAX_OIDS];
    size_t n_oids;
    int rc, final;
} seen_event;

/* What a feed and the commit callbacks told, in the order they told it. */
typedef struct collector {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    seen_event ev[MAX_EVENTS];
    int n;
    int block_next;         /* the next COMMIT event waits until released */
    int blocked, release;
} collector;

static void col_init(collector *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
}

static void col_push(collector *c, const seen_event *e)
{
    pthread_mutex_lock(&c->mu);
    if (c->n < MAX_EVENTS)
        c->ev[c->n++] = *e;
    pthread_cond_broadcast(&c->cond);
    if (e->kind == STORE_FEED_COMMIT && c->block_next) {
        c->block_next = 0;
        c->blocked = 1;
        pthread_cond_broadcast(&c->cond);
        while (!c->release)
            pthread_cond_wait(&c->cond, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_feed(const store_feed_event *ev, void *ud)
{
    seen_event e = {.kind = ev->kind, .tid = ev->tid, .rc = ev->rc, .final = ev->final};
    for (size_t i = 0; i < ev->n_oids && i < MAX_OIDS; i++)
        e.oids[i] = ev->oids[i];
    e.n_oids = ev->n_oids;
    col_push(ud, &e);
}

static void on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    (void)t;
    (void)err;
    seen_event e = {.kind = 0, .tid = tid, .rc = rc};
    col_push(ud, &e);
}

/* Wait (up to a minute) until the collector holds n events: 1, or 0. */
static int col_wait(collector *c, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (c->n < n && pthread_cond_timedwait(&c->cond, &c->mu, &until) == 0)
        ;
    int ok = c->n >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static store *open_shared(const char *uri, double retry)
{
    store *s;
    zerr e;
    store_options opt = {.create = 1, .shared = 1, .retry_seconds = retry};
    cr_assert_eq(store_open(&s, uri, &opt, &e), 0, "open shared: %s", e.msg);
    return s;
}

static store *open_with_feed(const char *uri, double retry, collector *c)
{
    store *s = open_shared(uri, retry);
    zerr e;
    cr_assert_eq(store_feed_start(s, on_feed, c, &e), 0, "feed: %s", e.msg);
    cr_assert_eq(store_feed_start(s, on_feed, c, &e), ZE_TXN);
    return s;
}

/* A transaction storing each of oids (new objects): its tid. */
static uint64_t commit_oids(store *s, const uint64_t *oids, size_t n)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    zerr e;
    uint64_t tid;
    cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(store_txn_store(t, oids[i], 0, "x", 1, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "%s", e.msg);
    store_txn_free(t);
    return tid;
}

static uint64_t commit_oid(store *s, uint64_t oid) { return commit_oids(s, &oid, 1); }

static void expect_commit(collector *c, int i, uint64_t tid, uint64_t oid)
{
    cr_assert_eq(c->ev[i].kind, STORE_FEED_COMMIT, "event %d: kind %d", i, c->ev[i].kind);
    cr_assert_eq(c->ev[i].tid, tid, "event %d: tid %016llx, not %016llx", i,
                 (unsigned long long)c->ev[i].tid, (unsigned long long)tid);
    cr_assert_eq(c->ev[i].n_oids, 1);
    cr_assert_eq(c->ev[i].oids[0], oid);
}

#define FEED_SESSIONS "SELECT count(*) FROM pg_stat_activity WHERE datname = " \
                      "current_database() AND application_name = 'zeolite feed'"

/* End the feed's session (as an administrator would) and wait until it is
 * gone (the feed may have a new one by then). */
static void kill_feed_session(const char *uri)
{
    char sql[256];
    long long pid = tu_pg_num(uri, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                 "current_database() AND application_name = 'zeolite feed'");
    cr_assert_gt(pid, 0, "no feed session");
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)::int", pid);
    cr_assert_eq(tu_pg_num(uri, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", pid);
    for (int i = 0; i < 600 && tu_pg_num(uri, sql) > 0; i++)
        usleep(50000);
}

Test(pg_feed, other_stores_commits_arrive_in_tid_order_between_own_callbacks, .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    collector c;
    col_init(&c);
    store *b = open_shared(uri, 5);
    uint64_t before = commit_oid(b, 100);   /* committed before A opens: not delivered */
    store *a = open_with_feed(uri, 5, &c);
    cr_assert_eq(store_last_tid(a), before);
    /* one transaction storing 1, 2 and 1 again: its oids, each once */
    uint64_t three[3] = {1, 2, 1};
    uint64_t t1 = commit_oids(b, three, 3);
    uint64_t t2 = commit_oid(b, 3);
    /* A's own commit comes after them, through its commit callback */
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    zerr e;
    uint64_t none;
    cr_assert_eq(store_txn_begin(a, &m, &t, &e), 0);
    cr_assert_eq(store_txn_store(t, 4, 0, "a", 1, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_commit(t, &none, on_commit, &c, &e), 0, "%s", e.msg);
    cr_assert(col_wait(&c, 3), "only %d events", c.n);
    store_txn_free(t);
    uint64_t t4 = commit_oid(b, 5);
    cr_assert(col_wait(&c, 4), "only %d events", c.n);
    cr_assert_eq(c.ev[0].kind, STORE_FEED_COMMIT);
    cr_assert_eq(c.ev[0].tid, t1);
    cr_assert_eq(c.ev[0].n_oids, 2);
    cr_assert_eq(c.ev[0].oids[0], 1);
    cr_assert_eq(c.ev[0].oids[1], 2);
    expect_commit(&c, 1, t2, 3);
    cr_assert_eq(c.ev[2].kind, 0, "A's own commit comes third");
    cr_assert_eq(c.ev[2].rc, 0);
    uint64_t t3 = c.ev[2].tid;
    cr_assert(t2 < t3 && t3 < t4);
    expect_commit(&c, 3, t4, 5);
    /* merged notifications: a burst of commits, each delivered once, in order */
    uint64_t burst[40];
    for (int i = 0; i < 40; i++)
        burst[i] = commit_oid(b, 1000 + (uint64_t)i);
    cr_assert(col_wait(&c, 44), "only %d events", c.n);
    for (int i = 0; i < 40; i++)
        expect_commit(&c, 4 + i, burst[i], 1000 + (uint64_t)i);
    cr_assert_eq(store_last_tid(a), burst[39]);
    /* a reader of A sees what the feed delivered */
    store_reader *r;
    zbuf d = ZBUF_INIT;
    uint64_t start, end;
    cr_assert_eq(store_reader_new(a, &r, &e), 0);
    cr_assert_eq(store_load_before(r, 1039, STORE_TID_MAX, &d, &start, &end, &e), 0);
    cr_assert_eq(start, burst[39]);
    zbuf_free(&d);
    store_reader_free(r);
    store_close(a);
    cr_assert_eq(c.n, 44, "nothing more, and nothing after close");
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

typedef struct own_args {
    store *s;
    collector *c;
    int n;
} own_args;

/* n commits through store_txn_commit, each waiting for its callback. */
static void *own_commits(void *arg)
{
    own_args *o = arg;
    for (int i = 0; i < o->n; i++) {
        store_txn_meta m = {.status = ' '};
        store_txn *t;
        zerr e;
        uint64_t none;
        cr_assert_eq(store_txn_begin(o->s, &m, &t, &e), 0);
        cr_assert_eq(store_txn_store(t, 5000 + (uint64_t)i, 0, "a", 1, &e), 0);
        cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
        pthread_mutex_lock(&o->c->mu);
        int before = o->c->n;
        pthread_mutex_unlock(&o->c->mu);
        cr_assert_eq(store_txn_commit(t, &none, on_commit, o->c, &e), 0, "%s", e.msg);
        /* wait for its callback: some event after those seen before */
        for (int done = 0; !done;) {
            pthread_mutex_lock(&o->c->mu);
            for (int k = before; k < o->c->n && !done; k++)
                done = o->c->ev[k].kind == 0;
            if (!done)
                pthread_cond_wait(&o->c->cond, &o->c->mu);
            pthread_mutex_unlock(&o->c->mu);
        }
        store_txn_free(t);
    }
    return NULL;
}

Test(pg_feed, own_commits_and_others_form_one_sequence_in_tid_order, .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    collector c;
    col_init(&c);
    store *a = open_with_feed(uri, 5, &c), *b = open_shared(uri, 5);
    own_args o = {a, &c, 60};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, own_commits, &o), 0);
    uint64_t theirs[60];
    for (int i = 0; i < 60; i++)
        theirs[i] = commit_oid(b, 1 + (uint64_t)i);
    pthread_join(th, NULL);
    cr_assert(col_wait(&c, 120), "only %d events", c.n);
    int own = 0, other = 0;
    for (int i = 0; i < c.n; i++) {
        cr_assert_eq(c.ev[i].rc, 0);
        if (i)
            cr_assert_gt(c.ev[i].tid, c.ev[i - 1].tid, "event %d goes back", i);
        if (c.ev[i].kind == 0) {
            own++;
            continue;
        }
        cr_assert_eq(c.ev[i].kind, STORE_FEED_COMMIT);
        cr_assert_eq(c.ev[i].tid, theirs[other], "their commit %d", other);
        cr_assert_eq(c.ev[i].oids[0], 1 + (uint64_t)other);
        other++;
    }
    cr_assert_eq(own, 60);
    cr_assert_eq(other, 60);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_feed, commits_made_while_the_feed_session_is_killed_are_caught_up, .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    collector c;
    col_init(&c);
    store *a = open_with_feed(uri, 5, &c), *b = open_shared(uri, 5);
    /* the feed is held inside its delivery of t1 while its session is
     * killed and three commits go by: their notifications reach nobody */
    pthread_mutex_lock(&c.mu);
    c.block_next = 1;
    pthread_mutex_unlock(&c.mu);
    uint64_t t[6];
    t[0] = commit_oid(b, 1);
    pthread_mutex_lock(&c.mu);
    while (!c.blocked)
        pthread_cond_wait(&c.cond, &c.mu);
    pthread_mutex_unlock(&c.mu);
    kill_feed_session(uri);
    for (int i = 1; i < 4; i++)
        t[i] = commit_oid(b, 1 + (uint64_t)i);
    /* A's readers see what A was told of, not what the database holds */
    store_reader *r;
    zbuf d = ZBUF_INIT;
    zerr e;
    uint64_t start, end;
    cr_assert_eq(store_last_tid(a), t[0]);
    cr_assert_eq(store_reader_new(a, &r, &e), 0);
    cr_assert_eq(store_reader_last_tid(r), t[0]);
    cr_assert_eq(store_load_before(r, 1, STORE_TID_MAX, &d, &start, &end, &e), 0);
    cr_assert_eq(store_load_before(r, 2, STORE_TID_MAX, &d, &start, &end, &e), ZE_NOTFOUND);
    pthread_mutex_lock(&c.mu);
    c.release = 1;
    pthread_cond_broadcast(&c.cond);
    pthread_mutex_unlock(&c.mu);
    cr_assert(col_wait(&c, 4), "only %d events", c.n);
    cr_assert_eq(tu_pg_num(uri, FEED_SESSIONS), 1, "the feed did not reconnect");
    cr_assert_eq(store_reader_refresh(r, &e), 0);
    cr_assert_eq(store_reader_last_tid(r), t[3]);
    cr_assert_eq(store_load_before(r, 2, STORE_TID_MAX, &d, &start, &end, &e), 0);
    cr_assert_eq(start, t[1]);
    store_reader_free(r);
    zbuf_free(&d);
    /* killed again while idle: later commits still arrive */
    kill_feed_session(uri);
    t[4] = commit_oid(b, 5);
    t[5] = commit_oid(b, 6);
    cr_assert(col_wait(&c, 6), "only %d events", c.n);
    for (int i = 0; i < 6; i++)
        expect_commit(&c, i, t[i], 1 + (uint64_t)i);
    cr_assert_eq(c.n, 6);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_feed, a_database_behind_what_was_delivered_stops_the_feed_for_good, .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    collector c;
    col_init(&c);
    store *a = open_with_feed(uri, 5, &c), *b = open_shared(uri, 5);
    uint64_t t1 = commit_oid(b, 1);
    cr_assert(col_wait(&c, 1));
    expect_commit(&c, 0, t1, 1);
    store_close(b);
    /* history rewound under the feed (a standby promoted before it had
     * replayed t1 looks the same) */
    char err[256];
    char *v = tu_pg_exec(uri, "WITH r AS (DELETE FROM zeolite.records), t AS (DELETE FROM "
                              "zeolite.txns) UPDATE zeolite.meta SET value = "
                              "-9223372036854775808 WHERE name = 'last_tid'", err, sizeof err);
    cr_assert(v, "%s", err);
    free(v);
    kill_feed_session(uri);
    cr_assert(col_wait(&c, 2), "only %d events", c.n);
    cr_assert_eq(c.ev[1].kind, STORE_FEED_LOST);
    cr_assert_eq(c.ev[1].rc, ZE_CORRUPT);
    cr_assert_eq(c.ev[1].final, 1);
    cr_assert_eq(c.ev[1].tid, t1);
    store_close(a);
    cr_assert_eq(c.n, 2);
    tu_pg_dropdb(uri);
    free(uri);
}

static char cluster[64];

static void cluster_down(void)
{
    if (*cluster)
        tu_pg_cluster("stop", cluster, 0);
    *cluster = '\0';
}

Test(pg_feed, postgresql_away_then_back_gives_lost_then_back_and_loses_nothing,
     .fini = cluster_down, .timeout = 240)
{
    snprintf(cluster, sizeof cluster, "/tmp/zlpgd-%d", (int)getpid());
    cr_assert_eq(tu_pg_cluster("start", cluster, 0), 0, "start %s", cluster);
    char *uri = tu_pg_newdb(cluster);
    collector c;
    col_init(&c);
    store *a = open_with_feed(uri, 1.0, &c), *b = open_shared(uri, 1.0);
    uint64_t t1 = commit_oid(b, 1);
    cr_assert(col_wait(&c, 1));
    cr_assert_eq(tu_pg_cluster("halt", cluster, 0), 0);
    cr_assert(col_wait(&c, 2), "no LOST while PostgreSQL is down");
    cr_assert_eq(c.ev[1].kind, STORE_FEED_LOST);
    cr_assert_eq(c.ev[1].rc, ZE_IO);
    cr_assert_eq(c.ev[1].final, 0);
    cr_assert_eq(c.ev[1].tid, t1);
    cr_assert_eq(tu_pg_cluster("resume", cluster, 0), 0);
    cr_assert(col_wait(&c, 3), "no BACK once PostgreSQL is up");
    cr_assert_eq(c.ev[2].kind, STORE_FEED_BACK);
    uint64_t t2 = commit_oid(b, 2);
    cr_assert(col_wait(&c, 4));
    expect_commit(&c, 0, t1, 1);
    expect_commit(&c, 3, t2, 2);
    store_close(a);
    store_close(b);
    free(uri);
}

Test(pg_feed, an_oid_another_store_commits_in_our_range_is_never_handed_out, .timeout = 60)
{
    char *uri = tu_pg_newdb(NULL);
    collector c;
    col_init(&c);
    store *a = open_with_feed(uri, 5, &c), *b = open_shared(uri, 5);
    uint64_t first, next[10];
    zerr e;
    cr_assert_eq(store_new_oids(a, 1, &first, &e), 0, "%s", e.msg);
    /* B commits an oid of A's reserved range (a client may store any oid) */
    uint64_t t1 = commit_oid(b, first + 5);
    cr_assert(col_wait(&c, 1));
    expect_commit(&c, 0, t1, first + 5);
    cr_assert_eq(store_new_oids(a, 10, next, &e), 0, "%s", e.msg);
    for (int i = 0; i < 10; i++)
        cr_assert_gt(next[i], first + 5, "oid %llu was handed out after it was committed",
                     (unsigned long long)next[i]);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}
