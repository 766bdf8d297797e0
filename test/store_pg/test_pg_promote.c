/* test_pg_promote.c: failover by promotion of a hot standby (issue 13). A
 * store opened on "host=PRIMARY,STANDBY target_session_attrs=read-write"
 * goes on by itself once the primary is gone and the standby promoted:
 * with synchronous replication every acknowledged commit is there, a
 * commit in flight fails cleanly (or, when the standby had its WAL, is
 * reported done), the same store commits again, and a shared store's feed
 * follows the others' commits on the new primary. A standby promoted
 * without a commit the store served is refused, naming both tids (the
 * server suite, test/server/test_pg_promote.c, meets one behind it). Each
 * test runs a primary and a streaming standby of its own
 * (test/pg/cluster.sh). */
#define _GNU_SOURCE   /* asprintf */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgs.h"
#include "pgtest.h"
#include "store/store.h"

static tu_pg_pair pair;

static void pair_down(void) { tu_pg_pair_down(&pair); }

TestSuite(pg_promote, .fini = pair_down, .timeout = 180);

static store *open_on(const char *uri, int shared)
{
    store *s;
    zerr e;
    store_options opt = {.create = 1, .shared = shared, .retry_seconds = 5,
                         .lock_timeout_ms = 2000};
    cr_assert_eq(store_open_postgresql(&s, uri, &opt, &e), 0, "open %s: %s", uri, e.msg);
    return s;
}

static void promote(void)
{
    cr_assert_eq(tu_pg_script("halt %s", pair.pdir), 0);
    cr_assert_eq(tu_pg_script("promote %s", pair.sdir), 0, "promote %s", pair.sdir);
}

/* Up to a minute for sql (on uri) to give want. */
static int wait_num(const char *uri, const char *sql, long long want)
{
    for (int i = 0; i < 600; i++) {
        char err[256];
        char *v = tu_pg_exec(uri, sql, err, sizeof err);
        long long n = v && *v ? strtoll(v, NULL, 10) : -1;
        free(v);
        if (n == want)
            return 1;
        usleep(100000);
    }
    return 0;
}

static void expect_state(store *s, uint64_t oid, uint64_t tid, const char *data)
{
    store_reader *r;
    zerr e;
    zbuf d = ZBUF_INIT;
    uint64_t start, end;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(store_load_before(r, oid, STORE_TID_MAX, &d, &start, &end, &e), 0,
                 "oid %llu: %s", (unsigned long long)oid, e.msg);
    cr_assert_eq(start, tid, "oid %llu: an acknowledged commit is lost",
                 (unsigned long long)oid);
    cr_assert(d.len == strlen(data) && !memcmp(d.data, data, d.len));
    store_reader_free(r);
    zbuf_free(&d);
}

/* A commit handed to the committer: its callback's outcome. */
typedef struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, rc;
    uint64_t tid;
    zerr err;
} outcome;

static void on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    outcome *o = ud;
    (void)t;
    pthread_mutex_lock(&o->mu);
    o->rc = rc;
    o->tid = tid;
    if (err)
        o->err = *err;
    o->done = 1;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->mu);
}

/* Hand a transaction storing data in oid to the committer, and wait until
 * its COMMIT waits for the synchronous standby on the primary: it is in
 * flight. The transaction, for store_txn_free once o is done. */
static store_txn *commit_in_flight(store *s, uint64_t oid, const char *data, outcome *o)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0);
    cr_assert_eq(store_txn_store(t, oid, 0, data, strlen(data), &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_commit(t, NULL, on_commit, o, &e), 0, "%s", e.msg);
    char *admin = NULL;
    cr_assert(asprintf(&admin, "postgresql:///postgres?host=%s&user=postgres", pair.pdir) > 0);
    cr_assert(wait_num(admin, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = "
                       "'SyncRep'", 1), "the commit never waited for the standby");
    free(admin);
    return t;
}

static void outcome_wait(outcome *o)
{
    pthread_mutex_lock(&o->mu);
    while (!o->done)
        pthread_cond_wait(&o->cond, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

#define N_ACKED 10

Test(pg_promote, sync_replication_keeps_every_acknowledged_commit_and_the_store_goes_on)
{
    tu_pg_pair *p = &pair;
    tu_pg_pair_up(p, 1);
    store *s = open_on(p->both, 0);
    uint64_t tids[N_ACKED];
    zerr e;
    for (int i = 0; i < N_ACKED; i++) {
        char data[16];
        snprintf(data, sizeof data, "acked %d", i);
        cr_assert_eq(pgs_commit(s, 1 + (uint64_t)i, 0, data, &tids[i], &e), 0, "%s", e.msg);
    }
    /* a commit in flight: the standby stopped, the primary's COMMIT waits
     * for it (synchronous replication) when the primary dies */
    cr_assert_eq(tu_pg_script("halt %s", pair.sdir), 0);
    outcome o = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    store_txn *t = commit_in_flight(s, 100, "in flight", &o);
    cr_assert_eq(tu_pg_script("halt %s", pair.pdir), 0);
    /* no host answers: a vote fails, naming each host on one line */
    uint64_t tid;
    int rc = pgs_commit(s, 101, 0, "no host", &tid, &e);
    cr_assert_eq(rc, ZE_IO, "%s: %s", zerr_name(rc), e.msg);
    cr_assert(strstr(e.msg, pair.pdir) && strstr(e.msg, pair.sdir) && !strchr(e.msg, '\n'),
              "%s", e.msg);
    cr_assert_eq(tu_pg_script("resume %s", pair.sdir), 0);
    cr_assert_eq(tu_pg_script("promote %s", pair.sdir), 0);
    /* its outcome is asked of the new primary, which never had it */
    outcome_wait(&o);
    cr_assert_eq(o.rc, ZE_IO, "%s: %s", zerr_name(o.rc), o.err.msg);
    cr_assert(strstr(o.err.msg, "nothing was committed"), "%s", o.err.msg);
    store_txn_free(t);
    /* every acknowledged commit is on the new primary, read through the
     * same store, and nothing of the one in flight */
    for (int i = 0; i < N_ACKED; i++) {
        char data[16];
        snprintf(data, sizeof data, "acked %d", i);
        expect_state(s, 1 + (uint64_t)i, tids[i], data);
    }
    cr_assert_eq(tu_pg_num(p->standby, "SELECT count(*) FROM zeolite.txns"), N_ACKED);
    cr_assert_eq(tu_pg_num(p->standby, "SELECT count(*) FROM zeolite.records WHERE oid = "
                           "(100 # -9223372036854775808)"), 0);
    /* the same store commits on the new primary, after the last tid */
    cr_assert_eq(pgs_commit(s, 100, 0, "after", &tid, &e), 0, "%s", e.msg);
    cr_assert_gt(tid, tids[N_ACKED - 1]);
    expect_state(s, 100, tid, "after");
    /* pack's own sessions reach the new primary too */
    store_pack_stats ps;
    cr_assert_eq(store_pack(s, (double)time(NULL) + 60, 0, &ps, &e), 0, "pack: %s", e.msg);
    expect_state(s, 100, tid, "after");
    /* it holds the DATABASE lock there again: a second writer is refused */
    store *s2;
    store_options w = {.lock_timeout_ms = 1000};
    cr_assert_eq(store_open(&s2, p->standby, &w, &e), ZE_BUSY, "%s", e.msg);
    cr_assert_eq(store_refused(s, &e), 0);
    store_close(s);
}

/* What a feed delivers. */
typedef struct feedlog {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n, kinds[16];
    uint64_t tids[16];
} feedlog;

static void on_feed(const store_feed_event *ev, void *ud)
{
    feedlog *f = ud;
    pthread_mutex_lock(&f->mu);
    if (f->n < 16) {
        f->kinds[f->n] = ev->kind;
        f->tids[f->n++] = ev->tid;
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static int feed_wait(feedlog *f, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&f->mu);
    while (f->n < n && pthread_cond_timedwait(&f->cond, &f->mu, &until) == 0)
        ;
    int ok = f->n >= n;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

Test(pg_promote, a_shared_store_follows_the_others_on_the_promoted_standby)
{
    tu_pg_pair *p = &pair;
    tu_pg_pair_up(p, 1);
    feedlog f = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    store *a = open_on(p->both, 1), *b = open_on(p->both_kv, 1);   /* both forms */
    zerr e;
    cr_assert_eq(store_feed_start(a, on_feed, &f, &e), 0, "%s", e.msg);
    uint64_t t1, t2, t3;
    /* remote_apply, the database's setting, holds in the store's sessions:
     * a commit waits while the standby's replay is paused */
    char *v = tu_pg_exec(p->standby, "SELECT pg_wal_replay_pause()", e.msg, sizeof e.msg);
    cr_assert(v, "%s", e.msg);
    free(v);
    outcome o = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    store_txn *t = commit_in_flight(b, 1, "before", &o);
    /* the primary dies with that COMMIT unanswered; the standby has its WAL
     * and, promoted, replays it: asked of the new primary, the commit is
     * reported done, and A's feed, back on its own, delivers it */
    promote();
    outcome_wait(&o);
    cr_assert_eq(o.rc, 0, "%s", o.err.msg);
    t1 = o.tid;
    store_txn_free(t);
    cr_assert(feed_wait(&f, 1), "the feed did not follow the promotion");
    expect_state(b, 1, t1, "before");
    /* B commits on the new primary; A's feed delivers it */
    cr_assert_eq(pgs_commit(b, 2, 0, "after", &t2, &e), 0, "%s", e.msg);
    cr_assert(feed_wait(&f, 2), "the feed did not deliver a commit after the promotion");
    cr_assert_eq(f.kinds[0], STORE_FEED_COMMIT);
    cr_assert_eq(f.tids[0], t1);
    cr_assert_eq(f.kinds[1], STORE_FEED_COMMIT, "event %d", f.kinds[1]);
    cr_assert_eq(f.tids[1], t2);
    /* A commits too, after both */
    cr_assert_eq(pgs_commit(a, 3, 0, "a after", &t3, &e), 0, "%s", e.msg);
    cr_assert_gt(t3, t2);
    cr_assert_eq(store_last_tid(a), t3);
    expect_state(a, 2, t2, "after");
    /* both hold the DATABASE lock shared there: an exclusive opener is refused */
    store *x;
    store_options w = {.lock_timeout_ms = 1000};
    cr_assert_eq(store_open(&x, p->standby, &w, &e), ZE_BUSY, "%s", e.msg);
    store_close(b);
    store_close(a);
    cr_assert_eq(f.n, 2, "%d events", f.n);
}

Test(pg_promote, a_standby_promoted_without_a_served_commit_is_refused_naming_both_tids)
{
    tu_pg_pair *p = &pair;
    tu_pg_pair_up(p, 0);
    store *s = open_on(p->both, 0);
    zerr e;
    uint64_t t1, t2, t3;
    cr_assert_eq(pgs_commit(s, 1, 0, "replayed", &t1, &e), 0, "%s", e.msg);
    cr_assert(wait_num(p->standby, "SELECT count(*) FROM zeolite.txns", 1));
    /* the standby stops before t2 reaches it (asynchronous replication: t2
     * is acknowledged by the primary alone), the primary dies, and the
     * standby, started again, is promoted without it. (Pausing the
     * standby's replay is not enough: PostgreSQL 15 promoted while paused
     * still replays the WAL the standby has received.) */
    cr_assert_eq(tu_pg_script("halt %s", pair.sdir), 0);
    cr_assert_eq(pgs_commit(s, 2, 0, "not replicated", &t2, &e), 0, "%s", e.msg);
    cr_assert_eq(tu_pg_script("halt %s", pair.pdir), 0);
    cr_assert_eq(tu_pg_script("resume %s", pair.sdir), 0);
    cr_assert_eq(tu_pg_script("promote %s", pair.sdir), 0);
    cr_assert_eq(tu_pg_num(p->standby, "SELECT count(*) FROM zeolite.txns"), 1);
    /* another store takes the new primary past t2 first: its history goes
     * on from t1, without t2 */
    store *other = open_on(p->standby, 0);
    uint64_t past;
    cr_assert_eq(pgs_commit(other, 4, 0, "other", &past, &e), 0, "%s", e.msg);
    cr_assert_gt(past, t2);
    store_close(other);
    /* the store refuses it: no commit, no read, saying why with both tids */
    char h2[17], hp[17];
    snprintf(h2, sizeof h2, "%016llx", (unsigned long long)t2);
    snprintf(hp, sizeof hp, "%016llx", (unsigned long long)past);
    int rc = pgs_commit(s, 3, 0, "refused", &t3, &e);
    cr_assert_eq(rc, ZE_CORRUPT, "%s: %s", zerr_name(rc), e.msg);
    cr_assert(strstr(e.msg, h2) && strstr(e.msg, hp), "%s", e.msg);
    cr_assert(strstr(e.msg, "another history"), "%s", e.msg);
    store_reader *r;
    rc = store_reader_new(s, &r, &e);
    cr_assert_eq(rc, ZE_CORRUPT, "a reader on another history: %s", zerr_name(rc));
    zerr why;
    cr_assert_eq(store_refused(s, &why), 1);
    cr_assert_eq(why.code, ZE_CORRUPT);
    cr_assert(strstr(why.msg, h2) && strstr(why.msg, hp), "%s", why.msg);
    /* for good */
    cr_assert_eq(pgs_commit(s, 3, 0, "refused", &t3, &e), ZE_CORRUPT, "%s", e.msg);
    cr_assert_eq(tu_pg_num(p->standby, "SELECT count(*) FROM zeolite.txns"), 2,
                 "a refused store wrote");
    store_close(s);
}
