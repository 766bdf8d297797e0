/* test_pg_standby.c: reads from a hot standby (store.h, "Reads from a
 * standby"), on a private primary and its streaming standby per test
 * (test/pg/cluster.sh start + standby): loads and the other reads go to
 * the standby and none to the primary (counted by PostgreSQL on each side
 * and by the store); a commit is told only once the standby shows it; a
 * standby whose replay is paused, or which is stopped, sends reads to the
 * primary and they come back; a read cancelled by a recovery conflict is
 * run again; store_sync waits for the feed and the standby. */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "pgs.h"
#include "pgtest.h"
#include "testutil.h"

static char pdir[64], sdir[64];

/* One primary and standby for the whole suite (pgtest.h). */
ReportHook(PRE_ALL)(struct criterion_test_set *set) { (void)set; tu_pg_pair_begin(); }
ReportHook(POST_ALL)(struct criterion_global_stats *stats) { (void)stats; tu_pg_pair_end(); }

static void pair_up(void)
{
    tu_pg_pair_take(pdir, sdir, sizeof pdir);
}

static void dump_logs(void);

static void pair_down(void)
{
    dump_logs();
}

TestSuite(pg_standby, .init = pair_up, .fini = pair_down);

/* ---- helpers ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the store logged. */
typedef struct logbuf {
    pthread_mutex_t mu;
    char lines[64][600];
    int n;
} logbuf;

static logbuf logs = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};

static void log_fn(void *d, int level, const char *msg)
{
    logbuf *l = d;
    pthread_mutex_lock(&l->mu);
    if (l->n < 64)
        snprintf(l->lines[l->n++], sizeof l->lines[0], "%c %s",
                 level == STORE_LOG_WARNING ? 'W' : level == STORE_LOG_ERROR ? 'E' : 'I', msg);
    pthread_mutex_unlock(&l->mu);
}

static void dump_logs(void)
{
    pthread_mutex_lock(&logs.mu);
    for (int i = 0; i < logs.n; i++)
        cr_log_info("store: %s", logs.lines[i]);
    pthread_mutex_unlock(&logs.mu);
}

/* Lines that begin with level and hold needle. */
static int logged(char level, const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&logs.mu);
    for (int i = 0; i < logs.n; i++)
        n += logs.lines[i][0] == level && strstr(logs.lines[i], needle) != NULL;
    pthread_mutex_unlock(&logs.mu);
    return n;
}

static store *open_store(const char *uri, const char *read_dsn, double max_lag, int shared)
{
    store *s;
    zerr e;
    store_options opt = {.create = 1, .shared = shared, .read_dsn = read_dsn,
                         .read_max_lag = max_lag, .log = log_fn, .log_data = &logs,
                         .retry_seconds = 5};
    cr_assert_eq(store_open(&s, uri, &opt, &e), 0, "open: %s", e.msg);
    return s;
}

static store_stats stats(store *s)
{
    store_stats st;
    store_get_stats(s, &st);
    return st;
}

/* The current data of oid through r (refreshed), as a string. */
static char *load_str(store_reader *r, uint64_t oid)
{
    static char out[256];
    zbuf b = ZBUF_INIT;
    zerr e;
    uint64_t start, end;
    cr_assert_eq(store_reader_refresh(r, &e), 0, "refresh: %s", e.msg);
    int rc = store_load_before(r, oid, STORE_TID_MAX, &b, &start, &end, &e);
    cr_assert_eq(rc, 0, "load %llu: %s", (unsigned long long)oid, e.msg);
    snprintf(out, sizeof out, "%.*s", (int)b.len, (const char *)b.data);
    zbuf_free(&b);
    return out;
}

static uint64_t commit1(store *s, uint64_t oid, uint64_t serial, const char *data)
{
    uint64_t tid = 0;
    zerr e;
    cr_assert_eq(pgs_commit(s, oid, serial, data, &tid, &e), 0, "commit: %s", e.msg);
    return tid;
}

/* sql on the standby's postgres database: the first value as a number. */
static long long on_standby(const char *sql)
{
    char *uri = NULL;
    cr_assert(asprintf(&uri, "postgresql:///postgres?host=%s&user=postgres", sdir) > 0);
    long long n = tu_pg_num(uri, sql);
    free(uri);
    return n;
}

/* Set a setting on the standby and wait until a new session sees it. */
static void standby_set(const char *name, const char *value, const char *shown)
{
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER SYSTEM SET %s = '%s'", name, value);
    on_standby(sql);
    on_standby("SELECT pg_reload_conf()::int");
    snprintf(sql, sizeof sql, "SELECT (current_setting('%s') = '%s')::int", name, shown);
    int ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        ok = on_standby(sql) == 1;
        if (!ok)
            usleep(10000);
    }
    cr_assert(ok, "the standby does not take %s = %s", name, value);
}

/* A counter of database db in pg_stat_database on the cluster of host. */
static long long db_stat(const char *host, const char *db, const char *col)
{
    char *uri = NULL, sql[256];
    cr_assert(asprintf(&uri, "postgresql:///postgres?host=%s&user=postgres", host) > 0);
    snprintf(sql, sizeof sql, "SELECT %s FROM pg_stat_database WHERE datname = '%s'", col, db);
    long long n = tu_pg_num(uri, sql);
    free(uri);
    return n;
}

/* Wait up to seconds for the store's reads to be on (standby 1) or off the
 * standby. */
static int wait_reading(store *s, int standby, double seconds)
{
    double end = now_s() + seconds;
    while (now_s() < end) {
        if (stats(s).reading_primary == !standby)
            return 1;
        usleep(20000);
    }
    return 0;
}

static int count_txn(const store_txn_info *info, void *ud)
{
    (void)info;
    ++*(int *)ud;
    return 0;
}

static int count_oid(uint64_t oid, void *ud)
{
    (void)oid;
    ++*(int *)ud;
    return 0;
}

/* A new database with the schema (and oid 1 committed as first, unless
 * NULL), replayed on the standby: its URI, and the standby's in *suri. */
static char *fresh_db(const char *first, char **suri)
{
    char *uri = tu_pg_newdb(pdir);
    *suri = tu_pg_uri_on(uri, sdir);
    store *w = open_store(uri, NULL, 0, 0);
    if (first)
        commit1(w, 1, 0, first);
    store_close(w);
    tu_pg_wait_replay(uri, sdir);
    return uri;
}

/* ---- reads go to the standby ------------------------------------------------------ */

Test(pg_standby, reads_go_to_the_standby_and_the_primary_serves_none, .timeout = 120)
{
    char *uri = tu_pg_newdb(pdir), *suri = tu_pg_uri_on(uri, sdir), db[64];
    tu_pg_dbname(uri, db, sizeof db);
    store *w = open_store(uri, NULL, 0, 0);
    uint64_t tids[10];
    for (int i = 0; i < 10; i++) {
        char v[32];
        snprintf(v, sizeof v, "object %d", i + 1);
        tids[i] = commit1(w, (uint64_t)i + 1, 0, v);
    }
    store_close(w);
    tu_pg_wait_replay(uri, sdir);
    /* a standby's conninfo libpq cannot parse is refused at open */
    store *s;
    zerr e;
    store_options bad = {.read_dsn = "host='unterminated"};
    cr_assert_eq(store_open(&s, uri, &bad, &e), ZE_INVAL);
    cr_assert(strstr(e.msg, "read_dsn"), "%s", e.msg);

    long long p0 = db_stat(pdir, db, "xact_commit"), s0 = db_stat(sdir, db, "xact_commit");

    s = open_store(uri, suri, 0, 0);
    store_reader *r;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(store_reader_last_tid(r), tids[9]);
    for (int i = 0; i < 200; i++) {
        char v[32];
        snprintf(v, sizeof v, "object %d", i % 10 + 1);
        cr_assert_str_eq(load_str(r, (uint64_t)(i % 10) + 1), v);
    }
    /* the other reads of a reader, and a client's iterator */
    int n = 0;
    cr_assert_eq(store_history(r, 3, 10, count_txn, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 1);
    n = 0;
    cr_assert_eq(store_undo_log(r, 0, 20, NULL, NULL, count_txn, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 10);
    n = 0;
    cr_assert_eq(store_changes_since(r, tids[4], NULL, count_oid, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 5);
    store_iter *it;
    store_txn_info info;
    cr_assert_eq(store_iter_open_resumable(s, 0, 0, &it, &e), 0, "%s", e.msg);
    n = 0;
    while (store_iter_next_txn(it, &info, &e) == 1)
        n++;
    store_iter_close(it);
    cr_assert_eq(n, 10);

    store_stats st = stats(s);
    cr_assert_geq(st.reads_standby, 200, "the standby answered %llu reads",
                  (unsigned long long)st.reads_standby);
    cr_assert_eq(st.reads_primary, 0, "the primary answered %llu reads",
                 (unsigned long long)st.reads_primary);
    cr_assert_eq(st.reading_primary, 0);
    cr_assert_eq(logged('W', ""), 0, "a warning: %s", logs.lines[0]);
    store_reader_free(r);
    store_close(s);

    /* PostgreSQL's own count: a session's statistics reach pg_stat_database
     * when it ends, a moment after the close */
    long long sd = 0;
    for (int i = 0; i < 1500 && sd < 200; i++) {
        sd = db_stat(sdir, db, "xact_commit") - s0;
        if (sd < 200)
            usleep(10000);
    }
    long long pd = db_stat(pdir, db, "xact_commit") - p0;
    cr_log_info("transactions in the database: %lld on the standby, %lld on the primary", sd,
                pd);
    cr_assert_geq(sd, 200, "the standby counts %lld transactions for 200 loads", sd);
    /* the primary saw the open (schema, meta, lock) and the close only */
    cr_assert_lt(pd, 40, "the primary counts %lld transactions", pd);
    free(suri);
    free(uri);
}

/* ---- a commit is told once the standby shows it -------------------------------------- */

typedef struct told {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, rc;
    uint64_t tid;
} told;

static void on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    told *w = ud;
    (void)t;
    (void)err;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    w->tid = tid;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

Test(pg_standby, a_commit_is_told_once_the_standby_shows_it, .timeout = 120)
{
    /* the standby applies each commit 300 ms after the primary made it */
    standby_set("recovery_min_apply_delay", "300ms", "300ms");
    char *suri, *uri = fresh_db("v0", &suri);
    store *s = open_store(uri, suri, 30, 0);
    store_reader *r;
    zerr e;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    cr_assert_str_eq(load_str(r, 1), "v0");
    uint64_t serial = store_reader_last_tid(r);
    for (int i = 1; i <= 3; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        told w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
        store_txn_meta m = {.status = ' '};
        store_txn *t;
        cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0, "%s", e.msg);
        cr_assert_eq(store_txn_store(t, 1, serial, v, strlen(v), &e), 0, "%s", e.msg);
        cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
        double t0 = now_s();
        cr_assert_eq(store_txn_commit(t, NULL, on_commit, &w, &e), 0, "%s", e.msg);
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.mu);
        pthread_mutex_unlock(&w.mu);
        double waited = now_s() - t0;
        cr_assert_eq(w.rc, 0);
        /* right after the callback, through the standby: the new state */
        cr_assert_eq(store_last_tid(s), w.tid);
        cr_assert_str_eq(load_str(r, 1), v);
        cr_assert_eq(store_reader_last_tid(r), w.tid);
        /* the standby cannot have shown it before its delay */
        cr_assert_geq(waited, 0.25, "told after %.3f s, before the standby applied it", waited);
        serial = w.tid;
        store_txn_free(t);
    }
    /* a burst: the committer does not wait for each one's replay, and
     * the callbacks come in tid order, each once the standby shows it
     * (one after the other would take BURST x 0.3 s at least) */
    enum { BURST = 8 };
    told burst[BURST];
    store_txn *bt[BURST];
    double t0 = now_s();
    for (int i = 0; i < BURST; i++) {
        char v[16];
        snprintf(v, sizeof v, "b%d", i);
        burst[i] = (told){PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
        store_txn_meta m = {.status = ' '};
        cr_assert_eq(store_txn_begin(s, &m, &bt[i], &e), 0, "%s", e.msg);
        cr_assert_eq(store_txn_store(bt[i], 10 + (uint64_t)i, 0, v, strlen(v), &e), 0);
        cr_assert_eq(store_txn_vote(bt[i], NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(store_txn_commit(bt[i], NULL, on_commit, &burst[i], &e), 0, "%s", e.msg);
    }
    for (int i = 0; i < BURST; i++) {
        pthread_mutex_lock(&burst[i].mu);
        while (!burst[i].done)
            pthread_cond_wait(&burst[i].cond, &burst[i].mu);
        pthread_mutex_unlock(&burst[i].mu);
        cr_assert_eq(burst[i].rc, 0);
        if (i)
            cr_assert_gt(burst[i].tid, burst[i - 1].tid);
        char v[16];
        snprintf(v, sizeof v, "b%d", i);
        cr_assert_str_eq(load_str(r, 10 + (uint64_t)i), v);
        store_txn_free(bt[i]);
    }
    double all = now_s() - t0;
    cr_log_info("%d commits handed at once, told within %.3f s (the standby applies each "
                "0.3 s late)", BURST, all);
    cr_assert_lt(all, BURST * 0.3 - 0.4, "the commits waited for each other's replay");

    store_stats st = stats(s);
    cr_assert_eq(st.reads_primary, 0);
    cr_assert_eq(st.reading_primary, 0);
    cr_assert_geq(st.reads_standby, 4);
    store_reader_free(r);
    store_close(s);
    free(suri);
    free(uri);
}

/* ---- falling back to the primary and coming back ----------------------------------------- */

Test(pg_standby, a_paused_or_stopped_standby_sends_reads_to_the_primary_and_back,
     .timeout = 180)
{
    char *suri, *uri = fresh_db(NULL, &suri);
    store *s = open_store(uri, suri, 0.5, 0);
    store_reader *r;
    zerr e;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    uint64_t t1 = commit1(s, 1, 0, "v1");
    cr_assert_str_eq(load_str(r, 1), "v1");
    cr_assert_gt(stats(s).reads_standby, 0);
    cr_assert_eq(stats(s).reads_primary, 0);

    /* replay paused: the next commit waits read_max_lag, then reads move */
    on_standby("SELECT 1 FROM pg_wal_replay_pause()");
    double t0 = now_s();
    uint64_t t2 = commit1(s, 1, t1, "v2");
    double first = now_s() - t0;
    cr_assert_eq(stats(s).reading_primary, 1);
    cr_assert_eq(logged('W', "lags more than 0.5 s behind commit"), 1);
    cr_assert_str_eq(load_str(r, 1), "v2");
    uint64_t on_primary = stats(s).reads_primary;
    cr_assert_gt(on_primary, 0);
    t0 = now_s();
    uint64_t t3 = commit1(s, 1, t2, "v3");
    double second = now_s() - t0;
    cr_log_info("commits while the standby's replay is paused: the first told after %.3f s "
                "(read_max_lag 0.5 s), the next after %.3f s", first, second);
    cr_assert_geq(first, 0.45, "the first commit did not wait for the standby");
    cr_assert_eq(logged('W', "reads go to the primary"), 1, "one warning per episode");
    cr_assert_str_eq(load_str(r, 1), "v3");

    /* replay resumed: reads come back once the standby shows v3 */
    on_standby("SELECT 1 FROM pg_wal_replay_resume()");
    cr_assert(wait_reading(s, 1, 30), "reads did not come back to the standby");
    cr_assert_eq(logged('I', "reads are back on the standby"), 1);
    uint64_t sb = stats(s).reads_standby;
    on_primary = stats(s).reads_primary;
    cr_assert_str_eq(load_str(r, 1), "v3");
    cr_assert_gt(stats(s).reads_standby, sb);
    cr_assert_eq(stats(s).reads_primary, on_primary);

    /* the standby stopped: reads go to the primary at the next read */
    cr_assert_eq(tu_pg_cluster("halt", sdir, 0), 0);
    cr_assert_str_eq(load_str(r, 1), "v3");
    cr_assert_eq(stats(s).reading_primary, 1);
    cr_assert_eq(logged('W', "reads go to the primary"), 2);
    uint64_t t4 = commit1(s, 1, t3, "v4");
    cr_assert_str_eq(load_str(r, 1), "v4");
    /* a store opened meanwhile (read-only: s holds the database) opens,
     * reading from the primary */
    store *late;
    store_options ro = {.read_only = 1, .read_dsn = suri, .log = log_fn, .log_data = &logs};
    cr_assert_eq(store_open(&late, uri, &ro, &e), 0, "open: %s", e.msg);
    cr_assert_eq(stats(late).reading_primary, 1);
    cr_assert_eq(logged('W', "cannot be"), 2);
    /* started again: it replays v4, and reads come back, for both */
    cr_assert_eq(tu_pg_cluster("resume", sdir, 0), 0);
    cr_assert(wait_reading(s, 1, 60), "reads did not come back after the standby started");
    cr_assert(wait_reading(late, 1, 60), "nor for the store opened while it was down");
    store_close(late);
    cr_assert_eq(logged('I', "reads are back on the standby"), 3);
    sb = stats(s).reads_standby;
    on_primary = stats(s).reads_primary;
    cr_assert_str_eq(load_str(r, 1), "v4");
    cr_assert_eq(store_reader_last_tid(r), t4);
    cr_assert_gt(stats(s).reads_standby, sb);
    cr_assert_eq(stats(s).reads_primary, on_primary);
    store_reader_free(r);
    store_close(s);
    free(suri);
    free(uri);
}

/* ---- a recovery conflict ------------------------------------------------------------------ */

typedef struct hist_call {
    store_reader *r;
    int rc, n;
    zerr e;
} hist_call;

static void *history_thread(void *arg)
{
    hist_call *h = arg;
    h->rc = store_history(h->r, 1, 10, count_txn, &h->n, &h->e);
    return NULL;
}

/* sql on a session of its own (kept open: a transaction holding a lock). */
static PGconn *session(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

static void run_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
}

/* Poll sql on uri until it gives a number >= want (60 s at most). */
static void wait_for(const char *uri, const char *sql, long long want)
{
    long long v = -1;
    for (int i = 0; i < 6000 && v < want; i++) {
        v = tu_pg_num(uri, sql);
        if (v < want)
            usleep(10000);
    }
    cr_assert_geq(v, want, "%s: %lld", sql, v);
}

Test(pg_standby, a_read_cancelled_by_a_recovery_conflict_runs_again, .timeout = 180)
{
    /* replay cancels a conflicting standby query at once */
    standby_set("max_standby_streaming_delay", "0", "0");
    char *suri, *uri = fresh_db("v1", &suri);
    store *s = open_store(uri, suri, 30, 0);
    tu_pg_wait_replay(uri, sdir);
    store_reader *r;
    zerr e;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    cr_assert_str_eq(load_str(r, 1), "v1");

    /* 1. replay holds zeolite.txns: the history query (records, then txns)
     *    takes records and waits for txns */
    PGconn *p1 = session(uri), *p2 = session(uri);
    run_sql(p1, "BEGIN");
    run_sql(p1, "LOCK TABLE zeolite.txns IN ACCESS EXCLUSIVE MODE");
    free(tu_pg_exec(uri, "SELECT txid_current()", NULL, 0));   /* flushes the WAL */
    wait_for(suri, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                   "WHERE c.relname = 'txns' AND l.mode = 'AccessExclusiveLock' AND l.granted",
             1);
    hist_call h = {r, -1, 0, {0}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, history_thread, &h), 0);
    wait_for(suri, "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                   "JOIN pg_class c ON c.oid = l.relation WHERE a.application_name = 'zeolite' "
                   "AND a.wait_event_type = 'Lock' AND c.relname = 'records' AND l.granted",
             1);
    /* 2. replay wants zeolite.records, which the waiting query holds: with
     *    max_standby_streaming_delay 0 the query is cancelled at once */
    run_sql(p2, "BEGIN");
    run_sql(p2, "LOCK TABLE zeolite.records IN ACCESS EXCLUSIVE MODE");
    free(tu_pg_exec(uri, "SELECT txid_current()", NULL, 0));
    double end = now_s() + 60;
    while (!logged('I', "cancelled by a recovery conflict") && now_s() < end)
        usleep(10000);
    if (!logged('I', "cancelled by a recovery conflict")) {
        char *what = tu_pg_exec(suri, "SELECT string_agg(a.pid || ' ' || a.application_name || "
                                "' ' || coalesce(a.wait_event_type, '-') || ' ' || "
                                "coalesce(c.relname, l.locktype) || ' ' || l.mode || ' ' || "
                                "l.granted, '; ') FROM pg_locks l LEFT JOIN pg_stat_activity a "
                                "ON a.pid = l.pid LEFT JOIN pg_class c ON c.oid = l.relation",
                                NULL, 0);
        cr_assert_fail("no conflict was met; the standby's locks: %s", what ? what : "?");
    }
    /* 3. the locks go: the query that runs again answers */
    run_sql(p2, "ROLLBACK");
    run_sql(p1, "ROLLBACK");
    free(tu_pg_exec(uri, "SELECT txid_current()", NULL, 0));
    pthread_join(th, NULL);
    cr_assert_eq(h.rc, 0, "history: %s", h.e.msg);
    cr_assert_eq(h.n, 1);
    store_stats st = stats(s);
    cr_assert_eq(st.reading_primary, 0);
    cr_assert_eq(st.reads_primary, 0);
    PQfinish(p1);
    PQfinish(p2);
    store_reader_free(r);
    store_close(s);
    free(suri);
    free(uri);
}

/* ---- store_sync --------------------------------------------------------------------------- */

static void count_feed(const store_feed_event *ev, void *ud)
{
    if (ev->kind == STORE_FEED_COMMIT)
        atomic_fetch_add((_Atomic int *)ud, 1);
}

Test(pg_standby, store_sync_waits_for_the_feed_and_the_standby, .timeout = 120)
{
    standby_set("recovery_min_apply_delay", "300ms", "300ms");
    char *suri, *uri = fresh_db(NULL, &suri);
    store *a = open_store(uri, NULL, 0, 1);
    store *b = open_store(uri, suri, 30, 1);
    _Atomic int events = 0;
    zerr e;
    cr_assert_eq(store_feed_start(b, count_feed, &events, &e), 0, "%s", e.msg);
    store_reader *r;
    cr_assert_eq(store_reader_new(b, &r, &e), 0, "%s", e.msg);

    uint64_t t1 = commit1(a, 1, 0, "a1"), tid = 0;
    double t0 = now_s();
    cr_assert_eq(store_sync(b, 10000, &tid, &e), 0, "%s", e.msg);
    double waited = now_s() - t0;
    cr_assert_eq(tid, t1);
    cr_assert_eq(atomic_load(&events), 1);
    cr_assert_str_eq(load_str(r, 1), "a1");
    cr_assert_geq(waited, 0.1, "synced after %.3f s, before the standby applied it", waited);

    /* replay paused (and a lag bound far off): not in time */
    on_standby("SELECT 1 FROM pg_wal_replay_pause()");
    uint64_t t2 = commit1(a, 1, t1, "a2");
    cr_assert_eq(store_sync(b, 300, &tid, &e), ZE_TIMEOUT, "%s", e.msg);
    cr_assert_eq(tid, t1);
    cr_assert_str_eq(load_str(r, 1), "a1");
    on_standby("SELECT 1 FROM pg_wal_replay_resume()");
    cr_assert_eq(store_sync(b, 30000, &tid, &e), 0, "%s", e.msg);
    cr_assert_eq(tid, t2);
    cr_assert_str_eq(load_str(r, 1), "a2");
    cr_assert_eq(stats(b).reads_primary, 0);

    /* the primary away: it cannot be asked */
    cr_assert_eq(tu_pg_cluster("halt", pdir, 0), 0);
    cr_assert_eq(store_sync(b, 500, &tid, &e), ZE_IO);
    cr_assert(strstr(e.msg, "cannot ask the primary"), "%s", e.msg);
    cr_assert_eq(tid, t2);
    cr_assert_eq(tu_pg_cluster("resume", pdir, 0), 0);

    /* a store that is not shared knows every commit at once */
    store_close(a);
    store_reader_free(r);
    store_close(b);
    store *c = open_store(uri, suri, 30, 0);
    cr_assert_eq(store_sync(c, 0, &tid, &e), 0, "%s", e.msg);
    cr_assert_eq(tid, t2);
    store_close(c);
    free(suri);
    free(uri);
}
