/* pg_feed.c: the change feed of a shared store (store.h: "Several stores on
 * one database"): the commits of other stores, each once, in tid order,
 * in one sequence with this store's own commit callbacks.
 *
 * What is delivered comes only from the catch-up query (the transactions
 * after the last tid delivered, with their oids); notifications only say
 * when to run it. The query's snapshot is complete up to the newest tid it
 * sees: tids are chosen under the COMMIT lock, held through COMMIT, and a
 * transaction is visible before it releases that lock, so a snapshot that
 * sees a tid sees every smaller one. LISTEN comes before each catch-up, so
 * a commit after the catch-up's snapshot is always notified.
 *
 * Order: an own commit joins the pending list when it chooses its tid (under
 * the COMMIT lock, so the list is in tid order); the listener delivers
 * nothing at or after the first pending tid. When the commit ends, its
 * thread delivers the others' commits before its tid (all committed before
 * it chose it) and then calls back. Deliveries and commit callbacks all run
 * under f->mu, which makes them one sequence. */
#define _GNU_SOURCE   /* pipe2 */
#include "store/pg.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/oidmap.h"
#include "common/zarray.h"

#define FEED_BATCH 1000          /* transactions per catch-up query */
#define FEED_IDLE_CHECK 10.0     /* seconds between catch-ups while nothing is heard */
#define FEED_BACKOFF_FIRST 0.05
#define FEED_BACKOFF_MAX 2.0

struct stpg_feed {
    stpg_store *s;
    store_feed_fn fn;
    void *ud;
    pthread_mutex_t mu;     /* deliveries and commit callbacks run under it */
    pthread_cond_t cond;    /* the pending list changed */
    uint64_t delivered;     /* the last tid of the sequence */
    stpg_txn *pending;      /* own commits with a tid and no callback yet */
    int lost;               /* a LOST (ZE_IO) was told, and no BACK yet */
    _Atomic int dead;       /* a final LOST was told */
    _Atomic int stopping;
    int wake[2];            /* a byte wakes the listener */
    pthread_t thread;
    int running;
    stpg_conn *conn;        /* the listener's session */
};

/* ---- telling the caller (f->mu held) ------------------------------------------------ */

/* tid's event or callback has returned (store_sync waits for it on s->cond:
 * f->mu may stay held by the next delivery meanwhile). */
static void told(stpg_store *s, uint64_t tid)
{
    pthread_mutex_lock(&s->mu);
    if (tid > s->told_tid)
        s->told_tid = tid;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void tell_commit(stpg_feed *f, uint64_t tid, const uint64_t *oids, size_t n)
{
    /* told only once the read side shows it (already asked without f->mu:
     * this passes at once but where that asking gave up) */
    store__pg_standby_wait(f->s, tid);
    store__pg_note_tid(f->s, tid);
    for (size_t i = 0; i < n; i++)
        store__pg_oid_foreign(f->s, oids[i]);
    f->delivered = tid;
    store_feed_event ev = {.kind = STORE_FEED_COMMIT, .tid = tid, .oids = oids, .n_oids = n};
    f->fn(&ev, f->ud);
    told(f->s, tid);
}

static void tell_lost(stpg_feed *f, int rc, int final, const char *msg)
{
    if (f->dead || (f->lost && !final))
        return;
    f->lost = 1;
    f->dead = final;
    store__pg_log(f->s, STORE_LOG_ERROR, "change feed of PostgreSQL (%s)%s: %s", f->s->shown,
                  final ? " stopped" : " lost", msg);
    store_feed_event ev = {.kind = STORE_FEED_LOST, .tid = f->delivered, .rc = rc,
                           .final = final, .msg = msg};
    f->fn(&ev, f->ud);
}

static void tell_back(stpg_feed *f)
{
    if (!f->lost || f->dead)
        return;
    f->lost = 0;
    store__pg_log(f->s, STORE_LOG_INFO, "change feed of PostgreSQL (%s) is back", f->s->shown);
    store_feed_event ev = {.kind = STORE_FEED_BACK, .tid = f->delivered};
    f->fn(&ev, f->ud);
}

static uint64_t first_pending(const stpg_feed *f)
{
    return f->pending ? f->pending->tid : UINT64_MAX;
}

/* ---- the catch-up query ------------------------------------------------------------------ */

/* Transactions with after < tid <= upto, FEED_BATCH at most, with their
 * oids (Q_CHANGES). */
static PGresult *fetch(stpg_store *s, stpg_conn *c, uint64_t after, uint64_t upto, zerr *err)
{
    stpg_params p = {0};
    stpg_p_id(&p, after);
    stpg_p_id(&p, upto);
    stpg_p_i32(&p, FEED_BATCH);
    return store__pg_exec(s, c, Q_CHANGES, &p, err);
}

typedef struct batch {
    int txns;               /* transactions in the result */
    uint64_t stopped;       /* the tid delivery stopped at (below), or 0 */
} batch;

/* Deliver the transactions of res after f->delivered and before below
 * (f->mu held): 0, or ZE_NOMEM. */
static int deliver(stpg_feed *f, PGresult *res, uint64_t below, batch *b, zerr *err)
{
    oidmap seen = OIDMAP_INIT;
    uint64_t *oids = NULL, one;
    size_t n = 0, cap = 0;
    int rows = PQntuples(res), rc = 0;
    b->txns = 0;
    b->stopped = 0;
    for (int i = 0; i < rows && !rc && !b->stopped && !f->dead;) {
        uint64_t tid = stpg_get_id(PQgetvalue(res, i, 0));
        b->txns++;
        oidmap_clear(&seen);
        n = 0;
        for (; i < rows && stpg_get_id(PQgetvalue(res, i, 0)) == tid && !rc; i++) {
            if (PQgetisnull(res, i, 1))
                continue;
            uint64_t oid = stpg_get_id(PQgetvalue(res, i, 1));
            if (oidmap_get(&seen, oid, &one))
                continue;
            uint64_t *p = zarray_room(oids, n, &cap, sizeof *oids, 16);
            if (!p || oidmap_put(&seen, oid, 1))
                rc = zerr_set(err, ZE_NOMEM, "out of memory");
            if (p)
                oids = p;
            if (!rc)
                oids[n++] = oid;
        }
        if (rc || tid <= f->delivered)
            continue;
        if (tid >= below)
            b->stopped = tid;
        else
            tell_commit(f, tid, oids, n);
    }
    oidmap_free(&seen);
    free(oids);
    return rc;
}

/* The listener's catch-up on its own session: everything committed by
 * others, waiting for own commits in progress to call back first. */
static int catch_up(stpg_feed *f, zerr *err)
{
    for (;;) {
        pthread_mutex_lock(&f->mu);
        uint64_t after = f->delivered;
        pthread_mutex_unlock(&f->mu);
        PGresult *r = fetch(f->s, f->conn, after, UINT64_MAX, err);
        if (!r)
            return f->conn->rc;
        /* the read side is asked for the whole batch at once, and without
         * f->mu: a commit of ours, which takes it under the COMMIT lock,
         * never waits for a standby */
        if (PQntuples(r))
            store__pg_standby_wait(f->s, stpg_get_id(PQgetvalue(r, PQntuples(r) - 1, 0)));
        batch b;
        pthread_mutex_lock(&f->mu);
        int rc = deliver(f, r, first_pending(f), &b, err);
        while (!rc && b.stopped && f->pending && f->pending->tid <= b.stopped &&
               !f->stopping)
            pthread_cond_wait(&f->cond, &f->mu);
        pthread_mutex_unlock(&f->mu);
        PQclear(r);
        if (rc || f->stopping || f->dead || (!b.stopped && b.txns < FEED_BATCH))
            return rc;
    }
}

typedef struct before_args {
    stpg_feed *f;
    uint64_t tid;           /* the own commit's */
    batch b;
} before_args;

static int before_run(stpg_store *s, stpg_conn *c, void *ud, zerr *err)
{
    before_args *a = ud;
    PGresult *r = fetch(s, c, a->f->delivered, a->tid - 1, err);
    if (!r)
        return c->rc;
    int rc = deliver(a->f, r, a->tid, &a->b, err);
    PQclear(r);
    return rc;
}

/* The others' commits before own tid (f->mu held): they are all committed,
 * since they held the COMMIT lock before this commit chose its tid. */
static int catch_up_before(stpg_feed *f, uint64_t tid, zerr *err)
{
    before_args a = {f, tid, {0, 0}};
    int rc;
    do
        rc = store__pg_read_primary(f->s, before_run, &a, err);
    while (!rc && a.b.txns == FEED_BATCH);
    return rc;
}

/* ---- own commits ---------------------------------------------------------------------------- */

void store__pg_feed_own_begin(stpg_store *s, stpg_txn *t)
{
    stpg_feed *f = atomic_load(&s->feed);
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    stpg_txn **p = &f->pending;
    while (*p)
        p = &(*p)->feed_next;
    t->feed_next = NULL;
    *p = t;
    t->feed_pending = 1;
    pthread_mutex_unlock(&f->mu);
}

static void unlink_pending(stpg_feed *f, stpg_txn *t)
{
    for (stpg_txn **p = &f->pending; *p; p = &(*p)->feed_next)
        if (*p == t) {
            *p = t->feed_next;
            break;
        }
    t->feed_pending = 0;
    pthread_cond_broadcast(&f->cond);
}

void store__pg_feed_own_end(stpg_store *s, stpg_txn *t, int rc, const zerr *err)
{
    stpg_feed *f = atomic_load(&s->feed);
    store_commit_cb cb = t->cb;
    void *ud = t->ud;
    uint64_t tid = t->tid;
    store_txn *st = (store_txn *)(void *)t;
    /* told once the read side shows it (and so every tid before it); asked
     * before f->mu is taken, as catch_up does */
    if (!rc && !s->bulk)
        store__pg_standby_wait(s, tid);
    if (!f) {
        if (!rc && !s->bulk)
            store__pg_note_tid(s, tid);
        if (cb)
            cb(st, rc, rc ? 0 : tid, rc ? err : NULL, ud);
        return;
    }
    pthread_mutex_lock(&f->mu);
    while (t->feed_pending && f->pending != t)
        pthread_cond_wait(&f->cond, &f->mu);
    if (!rc && !f->dead && t->prev_tid > f->delivered && tid > f->delivered) {
        zerr e = {0};
        if (catch_up_before(f, tid, &e)) {
            char msg[ZERR_MSG_MAX + 96];
            snprintf(msg, sizeof msg, "the commits of other stores before %016llx could not be "
                     "read: %s", (unsigned long long)tid, e.msg);
            tell_lost(f, ZE_IO, 1, msg);
        }
    }
    if (!rc && tid > f->delivered)
        f->delivered = tid;
    if (!rc)
        store__pg_note_tid(s, tid);
    if (t->feed_pending)
        unlink_pending(f, t);
    if (cb)   /* the caller may free t from here on */
        cb(st, rc, rc ? 0 : tid, rc ? err : NULL, ud);
    if (!rc)
        told(s, tid);
    pthread_mutex_unlock(&f->mu);
}

/* ---- the listener ---------------------------------------------------------------------------- */

static int listen_on(stpg_feed *f, zerr *err)
{
    stpg_conn *c;
    int rc = store__pg_connect(f->s, STPG_OWN, &c, err);
    if (!rc)
        rc = store__pg_command(f->s, c, "SET application_name = 'zeolite feed'; "
                               "LISTEN " STPG_CHANNEL, err);
    /* a database behind what was delivered (a standby promoted before it
     * had replayed it) stops the feed for good (pg_history.c) */
    zerr why = {0};
    int behind = 0;
    if (!rc && (rc = store__pg_check_history(f->s, c, &why))) {
        behind = rc == ZE_CORRUPT;
        if (err)
            *err = why;
    }
    if (rc) {
        store__pg_disconnect(c);
        if (behind) {
            pthread_mutex_lock(&f->mu);
            tell_lost(f, ZE_CORRUPT, 1, why.msg);
            pthread_mutex_unlock(&f->mu);
        }
        return rc;
    }
    f->conn = c;
    return 0;
}

static void drop_conn(stpg_feed *f)
{
    store__pg_disconnect(f->conn);
    f->conn = NULL;
}

/* Wait up to seconds for the listener's session or a wake-up: 1 when the
 * session has something to read, 0 otherwise. */
static int wait_input(stpg_feed *f, double seconds)
{
    struct pollfd p[2] = {{.fd = f->wake[0], .events = POLLIN},
                          {.fd = f->conn ? PQsocket(f->conn->pg) : -1, .events = POLLIN}};
    int n = poll(p, f->conn ? 2 : 1, (int)(seconds * 1000));
    if (n > 0 && (p[0].revents & POLLIN)) {
        char buf[16];
        while (read(f->wake[0], buf, sizeof buf) > 0)
            ;
    }
    return n > 0 && f->conn && p[1].revents;
}

/* 1 when a notification names a tid this feed has not delivered (nor will
 * its own commit's callback). */
static int news(stpg_feed *f, const char *payload)
{
    char *end;
    uint64_t tid = strtoull(payload, &end, 16);
    if (*end || end == payload)
        return 1;
    pthread_mutex_lock(&f->mu);
    int own = 0;
    for (stpg_txn *t = f->pending; t && !own; t = t->feed_next)
        own = t->tid == tid;
    int r = tid > f->delivered && !own;
    pthread_mutex_unlock(&f->mu);
    return r;
}

/* Read what the session sent: 1 to catch up, 0 not, <0 when it is lost. */
static int read_notifies(stpg_feed *f)
{
    if (!PQconsumeInput(f->conn->pg) || PQstatus(f->conn->pg) != CONNECTION_OK)
        return -1;
    int need = 0;
    for (PGnotify *n; (n = PQnotifies(f->conn->pg));) {
        need |= news(f, n->extra);
        PQfreemem(n);
    }
    return need;
}

static void *listener_main(void *arg)
{
    stpg_feed *f = arg;
    stpg_store *s = f->s;
    double down_since = 0, backoff = FEED_BACKOFF_FIRST;
    int need = 0;
    while (!f->stopping && !f->dead) {
        zerr e = {0};
        if (!f->conn) {
            if (!down_since)
                down_since = store__pg_now();
            int rc = listen_on(f, &e);
            if (rc == ZE_CORRUPT)
                break;
            if (!rc) {
                need = 1;
                backoff = FEED_BACKOFF_FIRST;
                continue;
            }
            if (store__pg_now() - down_since >= s->retry_seconds) {
                pthread_mutex_lock(&f->mu);
                tell_lost(f, ZE_IO, 0, e.msg);
                pthread_mutex_unlock(&f->mu);
            }
            wait_input(f, backoff);
            backoff = backoff * 2 < FEED_BACKOFF_MAX ? backoff * 2 : FEED_BACKOFF_MAX;
            continue;
        }
        if (need) {
            if (catch_up(f, &e)) {
                drop_conn(f);
                continue;
            }
            need = 0;
            down_since = 0;
            pthread_mutex_lock(&f->mu);
            tell_back(f);
            pthread_mutex_unlock(&f->mu);
            /* A notification that came while the catch-up's query ran was
             * read with its result into libpq's queue: the socket will not
             * say so again. */
            int r = read_notifies(f);
            if (r < 0)
                drop_conn(f);
            need = r > 0;
            continue;
        }
        if (!wait_input(f, FEED_IDLE_CHECK)) {
            /* nothing heard for a while: catch up anyway, which also checks
             * the session (a wake-up only stops the loop) */
            need = !f->stopping;
            continue;
        }
        int r = read_notifies(f);
        if (r < 0)
            drop_conn(f);
        else
            need = r;
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------------- */

static void feed_free(stpg_feed *f)
{
    drop_conn(f);
    if (f->wake[0] >= 0)
        close(f->wake[0]);
    if (f->wake[1] >= 0)
        close(f->wake[1]);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int store__pg_feed_start(store *ss, store_feed_fn fn, void *ud, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    if (!s->opt.shared || s->opt.read_only || !fn)
        return zerr_set(err, ZE_INVAL, "a change feed needs a store opened shared, not "
                        "read-only, and a callback");
    if (atomic_load(&s->feed))
        return zerr_set(err, ZE_TXN, "the change feed of PostgreSQL (%s) runs already",
                        s->shown);
    stpg_feed *f = calloc(1, sizeof *f);
    if (!f)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    f->s = s;
    f->fn = fn;
    f->ud = ud;
    f->wake[0] = f->wake[1] = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->delivered = store__pg_last_tid(ss);
    told(s, f->delivered);
    int rc = pipe2(f->wake, O_CLOEXEC | O_NONBLOCK)
                 ? zerr_set(err, ZE_IO, "change feed: cannot make a pipe") : 0;
    /* LISTEN, then catch up: nothing committed in between is missed */
    if (!rc)
        rc = listen_on(f, err);
    if (!rc)
        rc = catch_up(f, err);
    if (!rc) {
        atomic_store(&s->feed, f);
        if (pthread_create(&f->thread, NULL, listener_main, f)) {
            atomic_store(&s->feed, NULL);
            rc = zerr_set(err, ZE_NOMEM, "cannot start the change feed's thread");
        }
    }
    if (rc) {
        feed_free(f);
        return rc;
    }
    f->running = 1;
    return 0;
}

void store__pg_feed_kick(stpg_store *s)
{
    stpg_feed *f = atomic_load(&s->feed);
    if (f && write(f->wake[1], "k", 1) < 0) {
        /* the pipe is full: the listener wakes anyway */
    }
}


void store__pg_feed_stop(stpg_store *s)
{
    stpg_feed *f = atomic_load(&s->feed);
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    if (write(f->wake[1], "x", 1) < 0) {
        /* the pipe is full: the listener wakes anyway */
    }
    if (f->running)
        pthread_join(f->thread, NULL);
    atomic_store(&s->feed, NULL);
    feed_free(f);
}
