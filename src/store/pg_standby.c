/* pg_standby.c: reads from a hot standby (store.h: "Reads from a standby").
 *
 * With opt.read_dsn the read pool's work (store__pg_read: loads, history,
 * the undo log, record_iternext, changes_since, resumable iterators, blob
 * loads) goes to connections of the standby's own pool; votes, commits,
 * new_oids, pack, the feed and what the feed reads before an own commit
 * stay on the primary.
 *
 * What is told is visible: before a tid is told (an own commit's callback,
 * a feed event, and with them store_last_tid and reader snapshots),
 * store__pg_standby_wait checks that the standby shows it. The check is
 * the standby's last tid (Q_LAST_TID, the newest row of zeolite.txns):
 * tids commit in increasing order under the COMMIT lock and a standby
 * replays commits in the primary's order, so a standby whose last tid is
 * T shows every tid up to T, and one query answers for every tid waiting
 * (the highest seen is kept: later tids up to it pass without a query),
 * asked on a session of its own so that a commit never queues behind
 * reads for a connection.
 * LSNs would say the same one step removed (the commit's LSN must first be
 * read on the primary); the tid is what a reader is bounded by anyway.
 * A commit that is not shown yet is asked again after 0.2 ms, doubling to
 * 50 ms: that poll runs only while a tid waits. With synchronous_commit
 * remote_apply the first answer shows it.
 *
 * Falling back: when the standby has not shown a waiting tid after
 * read_max_lag seconds, or cannot be reached (a connection fails twice in a
 * row, or a query fails for another reason than a recovery conflict),
 * reads move to the primary (one WARNING saying why and how far behind),
 * and tids are told at once. A prober thread, which sleeps while reads are
 * on the standby, then asks the standby every PROBE_EVERY for its last
 * tid; once it shows the highest tid told or given as a snapshot bound
 * (sb->told), reads move back (INFO). sb->told and the switch back are
 * under sb->mu, and a tid told while reads are on the primary raises it
 * under that lock, so reads never go back to a standby behind what a
 * reader may already be bounded by.
 *
 * The committer does not wait: it hands each finished commit to the
 * publisher thread (a FIFO, so callbacks keep the tid order) and goes on
 * with the next, so that commits are not spaced by the standby's replay.
 * The standby is asked without the feed's lock held: a commit takes that
 * lock under the database's COMMIT lock, which must never wait for a
 * standby.
 *
 * Recovery conflicts: a standby query cancelled because replay needed what
 * it held (SQLSTATE 40001, or 40P01 for a deadlock with the startup
 * process; the session may have been ended with it) is run again, on a
 * new connection when needed, and never reaches the caller; one that keeps
 * being cancelled for retry_seconds sends reads to the primary.
 *
 * Lock order: sb->mu before s->mu; nothing takes sb->mu under s->mu. */
#include "store/pg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ztid.h"

#define PROBE_EVERY 0.2          /* seconds between the prober's questions */
#define WAIT_FIRST 0.0002        /* a waiting tid is asked again after this */
#define WAIT_MAX 0.05
#define CONFLICT_PAUSE 0.01      /* before a cancelled query runs again */
#define CONFLICT_LOG_EVERY 60.0
#define LAG_DEFAULT 5.0

struct stpg_standby {
    char *dsn;              /* opt.read_dsn, copied */
    char *shown;            /* it, without a password */
    double max_lag;
    pthread_mutex_t mu;
    pthread_cond_t cond;    /* a connection came back; reads left the standby;
                               closing */
    stpg_conn *free;        /* idle connections to the standby */
    int n_out, max;
    int primary;            /* reads are on the primary */
    uint64_t seen;          /* the standby has shown every tid up to this */
    uint64_t told;          /* the highest tid told, or given as a bound */
    uint64_t conflicts;     /* queries cancelled by recovery conflicts */
    double conflict_logged;
    int stopping;
    pthread_t prober;
    int prober_running;
    /* what a waiting tid asks through: a session of its own, so that a
     * commit never waits for a read pool busy with long reads */
    pthread_mutex_t ask_mu;
    stpg_conn *ask;
    /* the publisher: finished commits waiting to be told, in order */
    pthread_cond_t pub_cond;    /* one was queued, or told; stopping */
    struct pub *pub_head, *pub_tail;
    int pub_busy, pub_stopping;
    pthread_t publisher;
    int publisher_running;
};

/* A commit the committer finished, for the publisher to tell. */
typedef struct pub {
    stpg_txn *t;
    int rc;
    zerr err;
    struct pub *next;
} pub;

static void sleep_for(double d)
{
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void set_reading_primary(stpg_store *s, int on)
{
    pthread_mutex_lock(&s->mu);
    s->stats.reading_primary = on;
    pthread_mutex_unlock(&s->mu);
}

static void count_read(stpg_store *s, int standby)
{
    pthread_mutex_lock(&s->mu);
    if (standby)
        s->stats.reads_standby++;
    else
        s->stats.reads_primary++;
    pthread_mutex_unlock(&s->mu);
}

/* Reads move to the primary (once per episode: the first reason is logged).
 * tid, when not 0, is told from now on: the standby must show it before
 * reads come back. */
static void fall_back(stpg_store *s, uint64_t tid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fall_back(stpg_store *s, uint64_t tid, const char *fmt, ...)
{
    stpg_standby *sb = s->standby;
    char why[ZERR_MSG_MAX + 256];
    pthread_mutex_lock(&sb->mu);
    int first = !sb->primary;
    sb->primary = 1;
    if (tid > sb->told)
        sb->told = tid;
    pthread_cond_broadcast(&sb->cond);
    pthread_mutex_unlock(&sb->mu);
    if (!first)
        return;
    set_reading_primary(s, 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    store__pg_log(s, STORE_LOG_WARNING, "reads go to the primary (%s): the standby (%s) %s",
                  s->shown, sb->shown, why);
}

static int on_primary(stpg_standby *sb)
{
    pthread_mutex_lock(&sb->mu);
    int p = sb->primary;
    pthread_mutex_unlock(&sb->mu);
    return p;
}

/* ---- the standby's pool ---------------------------------------------------------- */

static int sb_acquire(stpg_store *s, stpg_conn **out, zerr *err)
{
    stpg_standby *sb = s->standby;
    *out = NULL;
    pthread_mutex_lock(&sb->mu);
    for (;;) {
        if (sb->free) {
            stpg_conn *c = sb->free;
            sb->free = c->next;
            if (store__pg_alive(c)) {
                pthread_mutex_unlock(&sb->mu);
                c->state[0] = '\0';
                *out = c;
                return 0;
            }
            sb->n_out--;
            store__pg_disconnect(c);
            continue;
        }
        if (sb->n_out < sb->max)
            break;
        pthread_cond_wait(&sb->cond, &sb->mu);
    }
    sb->n_out++;
    pthread_mutex_unlock(&sb->mu);
    int rc = store__pg_connect_to(s, sb->dsn, sb->shown, STPG_STANDBY, out, err);
    if (rc) {
        pthread_mutex_lock(&sb->mu);
        sb->n_out--;
        pthread_cond_broadcast(&sb->cond);
        pthread_mutex_unlock(&sb->mu);
    }
    return rc;
}

static void sb_release(stpg_store *s, stpg_conn *c)
{
    stpg_standby *sb = s->standby;
    if (!c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        c->broken = 1;
    pthread_mutex_lock(&sb->mu);
    if (c->broken || sb->stopping) {
        sb->n_out--;
        store__pg_disconnect(c);
    } else {
        c->next = sb->free;
        sb->free = c;
    }
    pthread_cond_broadcast(&sb->cond);
    pthread_mutex_unlock(&sb->mu);
}

/* A query the standby cancelled for replay's sake (the session may have
 * been ended with it). */
static int recovery_conflict(const stpg_conn *c)
{
    return !strcmp(c->state, "40001") || !strcmp(c->state, "40P01");
}

static void note_conflict(stpg_store *s, const zerr *e)
{
    stpg_standby *sb = s->standby;
    double now = store__pg_now();
    pthread_mutex_lock(&sb->mu);
    sb->conflicts++;
    uint64_t n = sb->conflicts;
    int log = now - sb->conflict_logged >= CONFLICT_LOG_EVERY || n == 1;
    if (log)
        sb->conflict_logged = now;
    pthread_mutex_unlock(&sb->mu);
    if (log)
        store__pg_log(s, STORE_LOG_INFO, "a read on the standby (%s) was cancelled by a "
                      "recovery conflict and runs again (%llu so far): %s", sb->shown,
                      (unsigned long long)n, e->msg);
}

/* fn on the standby: 1 and *rc its result; 0 when reads must go to the
 * primary (fall_back done). Conflicts and a lost session are retried. */
static int on_standby(stpg_store *s, stpg_read_fn fn, void *ud, int *rc, zerr *err)
{
    double until = store__pg_now() + s->retry_seconds;
    int lost = 0;
    for (;;) {
        stpg_conn *c;
        zerr e = {0};
        if (sb_acquire(s, &c, &e)) {
            fall_back(s, 0, "cannot be reached: %s", e.msg);
            return 0;
        }
        *rc = fn(s, c, ud, &e);
        int broken = c->broken, conflict = recovery_conflict(c);
        sb_release(s, c);
        if (!broken && !conflict) {
            if (*rc && err)
                *err = e;
            return 1;
        }
        if (conflict) {
            note_conflict(s, &e);
            if (store__pg_now() < until) {
                sleep_for(CONFLICT_PAUSE);
                continue;
            }
            fall_back(s, 0, "cancels reads by recovery conflicts for %.0f s: %s",
                      s->retry_seconds, e.msg);
            return 0;
        }
        if (++lost < 2)
            continue;
        fall_back(s, 0, "lost the connection: %s", e.msg);
        return 0;
    }
}

int store__pg_read(stpg_store *s, stpg_read_fn fn, void *ud, zerr *err)
{
    stpg_standby *sb = s->standby;
    if (!sb)
        return store__pg_read_primary(s, fn, ud, err);
    int rc;
    if (!on_primary(sb) && on_standby(s, fn, ud, &rc, err)) {
        count_read(s, 1);
        return rc;
    }
    rc = store__pg_read_primary(s, fn, ud, err);
    count_read(s, 0);
    return rc;
}

/* ---- what the standby shows ------------------------------------------------------ */

static int last_run(stpg_store *s, stpg_conn *c, void *ud, zerr *err)
{
    return store__pg_fetch_last_tid(s, c, ud, err);
}

/* The standby's last tid, on *c (opened when NULL, closed when it broke),
 * a lost session or a conflict retried: 0, or why it cannot say. */
static int standby_last(stpg_store *s, stpg_conn **c, uint64_t *tid, zerr *err)
{
    stpg_standby *sb = s->standby;
    for (int tries = 0;; tries++) {
        int rc = *c ? 0 : store__pg_connect_to(s, sb->dsn, sb->shown, STPG_OWN, c, err);
        if (rc)
            return rc;
        (*c)->state[0] = '\0';
        rc = store__pg_fetch_last_tid(s, *c, tid, err);
        int again = (*c)->broken || recovery_conflict(*c);
        if (rc && (*c)->broken) {
            store__pg_disconnect(*c);
            *c = NULL;
        }
        if (!rc || !again || tries >= 3)
            return rc;
    }
}

static void saw(stpg_standby *sb, uint64_t tid)
{
    pthread_mutex_lock(&sb->mu);
    if (tid > sb->seen)
        sb->seen = tid;
    pthread_mutex_unlock(&sb->mu);
}

/* How far the standby's replay is behind tid, in the seconds of the tids. */
static double behind(uint64_t tid, uint64_t have)
{
    return have ? ztid_time(tid) - ztid_time(have) : 0.0;
}

/* Wait for the standby to show tid, at most until (monotonic): 0 once it
 * does or reads are on the primary (told = tid then), ZE_TIMEOUT at until
 * (nothing changed). read_max_lag past the start moves reads to the
 * primary. */
static int wait_shown(stpg_store *s, uint64_t tid, double until)
{
    stpg_standby *sb = s->standby;
    pthread_mutex_lock(&sb->mu);
    int done = sb->primary || tid <= sb->seen;
    if (done && tid > sb->told)
        sb->told = tid;
    pthread_mutex_unlock(&sb->mu);
    if (done)
        return 0;
    double start = store__pg_now(), delay = WAIT_FIRST;
    for (;;) {
        uint64_t have = 0;
        zerr e = {0};
        pthread_mutex_lock(&sb->ask_mu);
        int rc = standby_last(s, &sb->ask, &have, &e);
        pthread_mutex_unlock(&sb->ask_mu);
        if (rc) {
            fall_back(s, tid, "cannot be read: %s", e.msg);
            return 0;
        }
        saw(sb, have);
        if (have >= tid)
            break;
        double now = store__pg_now(), lag_end = start + sb->max_lag;
        if (now >= lag_end) {
            fall_back(s, tid, "lags more than %g s behind commit %016llx: it has replayed up "
                      "to %016llx, a commit %.3f s older", sb->max_lag,
                      (unsigned long long)tid, (unsigned long long)have, behind(tid, have));
            return 0;
        }
        if (now >= until)
            return ZE_TIMEOUT;
        double end = lag_end < until ? lag_end : until;
        sleep_for(delay < end - now ? delay : end - now);
        delay = delay * 2 < WAIT_MAX ? delay * 2 : WAIT_MAX;
    }
    pthread_mutex_lock(&sb->mu);
    if (tid > sb->told)
        sb->told = tid;
    pthread_mutex_unlock(&sb->mu);
    return 0;
}

void store__pg_standby_wait(stpg_store *s, uint64_t tid)
{
    if (s->standby && tid)
        wait_shown(s, tid, 1e300);
}

int store__pg_read_last_tid(stpg_store *s, uint64_t *tid, zerr *err)
{
    *tid = 0;
    int rc = store__pg_read(s, last_run, tid, err);
    stpg_standby *sb = s->standby;
    if (rc || !sb)
        return rc;
    /* a bound read on the primary: the standby must show it before reads
     * go back there (one read on the standby only raises it to what that
     * standby shows) */
    pthread_mutex_lock(&sb->mu);
    if (*tid > sb->told)
        sb->told = *tid;
    pthread_mutex_unlock(&sb->mu);
    return 0;
}

/* ---- the prober ------------------------------------------------------------------------ */

/* Once the standby shows every tid told, reads go back to it. */
static void probe(stpg_store *s, stpg_conn **c)
{
    stpg_standby *sb = s->standby;
    zerr e = {0};
    uint64_t have = 0;
    if (standby_last(s, c, &have, &e))
        return;
    pthread_mutex_lock(&sb->mu);
    int back = sb->primary && have >= sb->told;
    if (have > sb->seen)
        sb->seen = have;
    if (back)
        sb->primary = 0;
    pthread_mutex_unlock(&sb->mu);
    if (!back)
        return;
    set_reading_primary(s, 0);
    store__pg_log(s, STORE_LOG_INFO, "reads are back on the standby (%s): it has replayed up "
                  "to %016llx", sb->shown, (unsigned long long)have);
}

static void timed_wait(stpg_standby *sb, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_nsec / 1e9 + seconds;
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    pthread_cond_timedwait(&sb->cond, &sb->mu, &ts);
}

static void *prober_main(void *arg)
{
    stpg_store *s = arg;
    stpg_standby *sb = s->standby;
    stpg_conn *c = NULL;
    pthread_mutex_lock(&sb->mu);
    while (!sb->stopping) {
        if (!sb->primary) {
            /* nothing to ask while reads are on the standby */
            store__pg_disconnect(c);
            c = NULL;
            pthread_cond_wait(&sb->cond, &sb->mu);
            continue;
        }
        pthread_mutex_unlock(&sb->mu);
        probe(s, &c);
        pthread_mutex_lock(&sb->mu);
        if (sb->primary && !sb->stopping)
            timed_wait(sb, PROBE_EVERY);
    }
    pthread_mutex_unlock(&sb->mu);
    store__pg_disconnect(c);
    return NULL;
}

/* ---- the publisher ------------------------------------------------------------------------ */

/* With a standby a commit's callback waits for its replay; the committer
 * hands the finished commit to this thread and goes on with the next one,
 * so that commits are not spaced by the standby's replay. One thread, a
 * FIFO: callbacks keep the committer's order (tid order). */
static void *publisher_main(void *arg)
{
    stpg_store *s = arg;
    stpg_standby *sb = s->standby;
    pthread_mutex_lock(&sb->mu);
    for (;;) {
        while (!sb->pub_head && !sb->pub_stopping)
            pthread_cond_wait(&sb->pub_cond, &sb->mu);
        pub *p = sb->pub_head;
        if (!p)
            break;
        sb->pub_head = p->next;
        if (!sb->pub_head)
            sb->pub_tail = NULL;
        sb->pub_busy = 1;
        pthread_mutex_unlock(&sb->mu);
        store__pg_feed_own_end(s, p->t, p->rc, p->rc ? &p->err : NULL);
        free(p);
        pthread_mutex_lock(&sb->mu);
        sb->pub_busy = 0;
        pthread_cond_broadcast(&sb->pub_cond);
    }
    pthread_mutex_unlock(&sb->mu);
    return NULL;
}

void store__pg_standby_drain(stpg_store *s)
{
    stpg_standby *sb = s->standby;
    if (!sb)
        return;
    pthread_mutex_lock(&sb->mu);
    while (sb->pub_head || sb->pub_busy)
        pthread_cond_wait(&sb->pub_cond, &sb->mu);
    pthread_mutex_unlock(&sb->mu);
}

void store__pg_standby_publish(stpg_store *s, stpg_txn *t, int rc, const zerr *err)
{
    stpg_standby *sb = s->standby;
    pub *p = sb && sb->publisher_running ? malloc(sizeof *p) : NULL;
    if (!p) {
        /* no publisher (or no memory for its queue): told here, in order */
        store__pg_standby_drain(s);
        store__pg_feed_own_end(s, t, rc, err);
        return;
    }
    *p = (pub){.t = t, .rc = rc, .err = err ? *err : (zerr){0}};
    pthread_mutex_lock(&sb->mu);
    if (sb->pub_tail)
        sb->pub_tail->next = p;
    else
        sb->pub_head = p;
    sb->pub_tail = p;
    pthread_cond_broadcast(&sb->pub_cond);
    pthread_mutex_unlock(&sb->mu);
}

/* ---- open and close -------------------------------------------------------------------- */

int store__pg_standby_open(stpg_store *s, zerr *err)
{
    if (!s->opt.read_dsn || !*s->opt.read_dsn) {
        s->opt.read_dsn = NULL;
        return 0;
    }
    stpg_standby *sb = calloc(1, sizeof *sb);
    if (!sb)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    pthread_mutex_init(&sb->mu, NULL);
    pthread_mutex_init(&sb->ask_mu, NULL);
    pthread_cond_init(&sb->cond, NULL);
    pthread_cond_init(&sb->pub_cond, NULL);
    sb->max_lag = s->opt.read_max_lag > 0 ? s->opt.read_max_lag : LAG_DEFAULT;
    sb->max = s->rpool.max;
    s->standby = sb;
    sb->dsn = strdup(s->opt.read_dsn);
    s->opt.read_dsn = sb->dsn;   /* the caller's string is not kept */
    if (!sb->dsn)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    zerr e = {0};
    if (store__pg_describe(sb->dsn, &sb->shown, &e))
        return zerr_set(err, e.code, "the standby for reads (read_dsn): %s", e.msg);
    if (pthread_create(&sb->prober, NULL, prober_main, s))
        return zerr_set(err, ZE_NOMEM, "cannot start the standby's prober thread");
    sb->prober_running = 1;
    if (!s->opt.read_only) {
        if (pthread_create(&sb->publisher, NULL, publisher_main, s))
            return zerr_set(err, ZE_NOMEM, "cannot start the standby's publisher thread");
        sb->publisher_running = 1;
    }
    /* readers made from now on are bounded by the last tid read at open */
    store__pg_standby_wait(s, store__pg_last_tid((store *)(void *)s));
    if (!on_primary(sb))
        store__pg_log(s, STORE_LOG_INFO, "reads go to the standby (%s)", sb->shown);
    return 0;
}

void store__pg_standby_close(stpg_store *s)
{
    stpg_standby *sb = s->standby;
    if (!sb)
        return;
    pthread_mutex_lock(&sb->mu);
    sb->stopping = 1;
    sb->pub_stopping = 1;   /* its queue is empty: store__pg_committer_stop drained it */
    pthread_cond_broadcast(&sb->cond);
    pthread_cond_broadcast(&sb->pub_cond);
    pthread_mutex_unlock(&sb->mu);
    if (sb->prober_running)
        pthread_join(sb->prober, NULL);
    if (sb->publisher_running)
        pthread_join(sb->publisher, NULL);
    while (sb->free) {
        stpg_conn *c = sb->free;
        sb->free = c->next;
        store__pg_disconnect(c);
    }
    store__pg_disconnect(sb->ask);
    pthread_cond_destroy(&sb->cond);
    pthread_cond_destroy(&sb->pub_cond);
    pthread_mutex_destroy(&sb->ask_mu);
    pthread_mutex_destroy(&sb->mu);
    free(sb->dsn);
    free(sb->shown);
    free(sb);
    s->standby = NULL;
    s->opt.read_dsn = NULL;
}

/* ---- store_sync ------------------------------------------------------------------------ */

/* Wait until the feed's sequence has told target (its event or callback
 * has returned; they wait for the read side first), until until. */
static int wait_told(stpg_store *s, uint64_t target, double until)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double left = until - store__pg_now(), t = (double)ts.tv_nsec / 1e9 + (left > 0 ? left : 0);
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (s->told_tid < target && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    int ok = s->told_tid >= target;
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : ZE_TIMEOUT;
}

int store__pg_sync(store *ss, uint32_t timeout_ms, uint64_t *tid, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    *tid = store__pg_last_tid(ss);
    if (!s->opt.shared)
        return 0;
    double until = store__pg_now() + timeout_ms / 1000.0;
    stpg_conn *c;
    uint64_t target = 0;
    zerr e = {0};
    int rc = store__pg_acquire(s, STPG_POOL_READ, until, &c, &e);
    if (!rc) {
        rc = store__pg_fetch_last_tid(s, c, &target, &e);
        store__pg_release(s, c);
    }
    if (rc)
        return zerr_set(err, rc == ZE_CORRUPT ? rc : ZE_IO, "sync: cannot ask the primary "
                        "for its last tid: %s", e.msg);
    if (atomic_load(&s->feed)) {
        store__pg_feed_kick(s);
        rc = wait_told(s, target, until);
    } else if (!(rc = s->standby ? wait_shown(s, target, until) : 0)) {
        /* no feed: the store's own commits and the database's bound */
        store__pg_note_tid(s, target);
    }
    *tid = store__pg_last_tid(ss);
    if (rc)
        return zerr_set(err, ZE_TIMEOUT, "sync: %016llx, the primary's last tid, is not known "
                        "here after %u ms (known up to %016llx)", (unsigned long long)target,
                        timeout_ms, (unsigned long long)*tid);
    return 0;
}
