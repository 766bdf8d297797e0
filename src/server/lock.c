/* lock.c: the commit locks of a storage, one per oid.
 *
 * ZEO has one commit lock per storage, held from the vote until tpc_finish:
 * every commit then waits one client round trip for the one before it. Here
 * a vote locks only the oids its transaction writes (alone) or checks with
 * readCurrent (shared with other checkers: BTrees check every node above the
 * bucket they change), so transactions that write different oids vote and
 * finish side by side (their votes stay true whatever the others commit:
 * store_txn_vote), while one that needs a held oid waits until the holder's
 * commit is handed to the writer, or until tpc_abort, disconnect or the
 * transaction timeout. An undo or an explicit tid (store_txn_exclusive) waits
 * until it can be alone.
 * RelStorage locks objects at vote in the same way; what ZODB needs is that
 * overlapping commits are serialised, and tids follow the finishes.
 *
 * Waiters are served first come, first served (ZEO's own lock lets busy
 * writers starve the rest): a waiter may not take an oid an earlier waiter
 * is waiting to write, nor write one an earlier waiter is waiting to check,
 * nor pass an earlier exclusive one. A holder whose vote
 * returned conflicts keeps its oids while its client resolves them, so the
 * re-vote cannot meet yet another commit.
 *
 * Two bounds free the oids of a client that stalls, both by closing its
 * connection (which aborts the transaction): the transaction timeout, from
 * when a holder took its locks (when one is set), and, always, the
 * conflict-resolution bound of store.h, from when a holder's vote first
 * returned conflicts until it votes again successfully. One timer serves
 * both: holders are listed in the order they took their locks, resolvers in
 * the order they got conflicts back, so each list's first is its next due. */
#include "server/server_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>

#include "common/zarray.h"

static void txn_timeout(uv_timer_t *timer);

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* ---- the oid set of a transaction ----------------------------------------- */

/* One oid a vote locks: written (the writer alone holds it) or only checked
 * (readCurrent: other checkers may hold it too, a writer may not). */
typedef struct zsrv_oidlock {
    uint64_t oid;
    int writes;
} zsrv_oidlock;

static int push_lock(uint64_t oid, int writes, void *ud)
{
    zsrv_txn *x = ud;
    zsrv_oidlock *p = zarray_room(x->locks, x->n_locks, &x->cap_locks, sizeof *p, 16);
    if (!p)
        return ZE_NOMEM;
    x->locks = p;
    x->locks[x->n_locks++] = (zsrv_oidlock){oid, writes};
    return 0;
}

static int by_oid(const void *a, const void *b)
{
    uint64_t x = ((const zsrv_oidlock *)a)->oid, y = ((const zsrv_oidlock *)b)->oid;
    return (x > y) - (x < y);
}

/* What the coming vote locks, one entry per oid (writing wins over checking),
 * read again for every vote: the client may have stored more while
 * resolving conflicts. */
static int collect_locks(zsrv_txn *x)
{
    x->n_locks = 0;
    x->exclusive = store_txn_exclusive(x->t);
    int rc = store_txn_each_oid(x->t, push_lock, x);
    if (rc || !x->n_locks)
        return rc;
    qsort(x->locks, x->n_locks, sizeof *x->locks, by_oid);
    size_t n = 1;
    for (size_t i = 1; i < x->n_locks; i++) {
        if (x->locks[i].oid == x->locks[n - 1].oid)
            x->locks[n - 1].writes |= x->locks[i].writes;
        else
            x->locks[n++] = x->locks[i];
    }
    x->n_locks = n;
    return 0;
}

/* st->locked holds, per oid, its writer (a pointer: even) or 2 * checkers + 1. */
#define CHECKERS(v) ((v) & 1)

static void unlock_one(zsrv_storage *st, zsrv_conn *c, const zsrv_oidlock *l)
{
    uint64_t *v = oidmap_ref(&st->locked, l->oid);
    if (!v)
        return;
    if (!l->writes && CHECKERS(*v) && *v > 3)
        *v -= 2;
    else if (l->writes ? *v == (uint64_t)(uintptr_t)c : CHECKERS(*v))
        oidmap_del(&st->locked, l->oid);
}

static int lock_one(zsrv_storage *st, zsrv_conn *c, const zsrv_oidlock *l)
{
    uint64_t *v = oidmap_ref(&st->locked, l->oid);
    if (v && !l->writes) {
        *v += 2;   /* one more checker (may_vote saw checkers only) */
        return 0;
    }
    return oidmap_put(&st->locked, l->oid, l->writes ? (uint64_t)(uintptr_t)c : 3);
}

static void unlock_oids(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    for (size_t i = 0; i < x->n_locked; i++)
        unlock_one(st, c, &x->locks[i]);
    x->n_locked = 0;
}

/* Lock every oid of c for c. ZE_NOMEM leaves none of them locked. */
static int lock_oids(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    for (x->n_locked = 0; x->n_locked < x->n_locks; x->n_locked++) {
        if (lock_one(st, c, &x->locks[x->n_locked]) < 0) {
            unlock_oids(st, c);
            return ZE_NOMEM;
        }
    }
    return 0;
}

/* ---- holders ---------------------------------------------------------------- */

/* When the first holder or the first resolver is due, or 0 for neither. */
static double next_due(const zsrv_storage *st)
{
    double secs = st->srv->cfg->txn_timeout, due = 0;
    if (secs > 0 && st->holders)
        due = st->holders->txn.lock_time + secs;
    if (st->resolvers) {
        double r = st->resolvers->txn.resolving_since + st->srv->cfg->conflict_timeout;
        due = due && due < r ? due : r;
    }
    return due;
}

static void arm_timeout(zsrv_storage *st)
{
    uv_timer_stop(&st->timeout_timer);
    double due = next_due(st);
    if (!due)
        return;
    double left = due - now();
    uint64_t ms = left > 0 ? (uint64_t)(left * 1000) + 1 : 0;
    uv_timer_start(&st->timeout_timer, txn_timeout, ms, 0);
}

/* c stops resolving conflicts: it voted again successfully, or lets go. */
static void resolver_unlink(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    if (!x->resolving_since)
        return;
    int was_first = st->resolvers == c;
    if (x->resolve_prev)
        x->resolve_prev->txn.resolve_next = x->resolve_next;
    else
        st->resolvers = x->resolve_next;
    if (x->resolve_next)
        x->resolve_next->txn.resolve_prev = x->resolve_prev;
    else
        st->resolvers_tail = x->resolve_prev;
    x->resolve_next = x->resolve_prev = NULL;
    x->resolving_since = 0;
    if (was_first)
        arm_timeout(st);
}

static int acquire(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    if (lock_oids(st, c) < 0)
        return ZE_NOMEM;
    x->holding = 1;
    x->lock_time = now();
    x->lock_prev = st->holders_tail;
    x->lock_next = NULL;
    if (st->holders_tail)
        st->holders_tail->txn.lock_next = c;
    else
        st->holders = c;
    st->holders_tail = c;
    st->n_holders++;
    if (x->exclusive)
        st->exclusive_holder = c;
    if (st->holders == c)
        arm_timeout(st);
    return 0;
}

static void drop_holder(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    resolver_unlink(st, c);
    unlock_oids(st, c);
    int was_oldest = st->holders == c;
    if (x->lock_prev)
        x->lock_prev->txn.lock_next = x->lock_next;
    else
        st->holders = x->lock_next;
    if (x->lock_next)
        x->lock_next->txn.lock_prev = x->lock_prev;
    else
        st->holders_tail = x->lock_prev;
    x->lock_next = x->lock_prev = NULL;
    x->holding = 0;
    st->n_holders--;
    if (st->exclusive_holder == c)
        st->exclusive_holder = NULL;
    if (was_oldest)
        arm_timeout(st);
}

/* ---- waiters ------------------------------------------------------------------ */

static void enqueue(zsrv_storage *st, zsrv_conn *c)
{
    c->txn.vote = ZSRV_VOTE_WAITING;
    c->txn.wait_next = NULL;
    c->txn.wait_t0 = zsrv__mx_clock(st->srv);
    if (st->wait_tail)
        st->wait_tail->txn.wait_next = c;
    else
        st->wait_head = c;
    st->wait_tail = c;
    st->n_waiting++;
}

static void unqueue(zsrv_storage *st, zsrv_conn *c)
{
    zsrv_conn *prev = NULL;
    for (zsrv_conn *w = st->wait_head; w; prev = w, w = w->txn.wait_next) {
        if (w != c)
            continue;
        if (prev)
            prev->txn.wait_next = w->txn.wait_next;
        else
            st->wait_head = w->txn.wait_next;
        if (st->wait_tail == w)
            st->wait_tail = prev;
        st->n_waiting--;
        w->txn.wait_next = NULL;
        return;
    }
}

/* What the waiters before a voter want of an oid (st->claimed). */
#define CLAIM_CHECK 1
#define CLAIM_WRITE 2

/* May c vote now? c holds none of its locks here; claimed holds what the
 * waiters before it want. */
static int may_vote(const zsrv_storage *st, const zsrv_conn *c, const oidmap *claimed)
{
    const zsrv_txn *x = &c->txn;
    if (st->exclusive_holder && st->exclusive_holder != c)
        return 0;
    if (x->exclusive)
        return st->n_holders == (x->holding ? 1u : 0u) && claimed->count == 0;
    for (size_t i = 0; i < x->n_locks; i++) {
        const zsrv_oidlock *l = &x->locks[i];
        uint64_t v;
        if (oidmap_get(&st->locked, l->oid, &v) && (l->writes || !CHECKERS(v)))
            return 0;
        if (oidmap_get(claimed, l->oid, &v) && (l->writes || (v & CLAIM_WRITE)))
            return 0;
    }
    return 1;
}

/* The first waiter that may vote now, or NULL. An exclusive waiter stops the
 * scan: nobody passes it. */
static zsrv_conn *next_voter(zsrv_storage *st)
{
    oidmap_clear(&st->claimed);
    for (zsrv_conn *w = st->wait_head; w; w = w->txn.wait_next) {
        if (may_vote(st, w, &st->claimed))
            return w;
        if (w->txn.exclusive)
            return NULL;
        for (size_t i = 0; i < w->txn.n_locks; i++) {
            const zsrv_oidlock *l = &w->txn.locks[i];
            uint64_t *v = oidmap_ref(&st->claimed, l->oid);
            uint64_t want = l->writes ? CLAIM_WRITE : CLAIM_CHECK;
            if (v)
                *v |= want;
            else if (oidmap_put(&st->claimed, l->oid, want))
                return NULL;   /* out of memory: try again at the next release */
        }
    }
    return NULL;
}

static void run_vote(zsrv_storage *st, zsrv_conn *c)
{
    if (acquire(st, c) < 0) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    zsrv__mx_lock_wait(st, c->txn.wait_t0);
    c->txn.wait_t0 = 0;
    zsrv__vote_run(c);
}

/* Let waiters vote, oldest first. A vote that fails releases its oids from
 * inside this loop: loop, do not recurse. */
static void grant(zsrv_storage *st)
{
    if (st->granting || !st->wait_head)
        return;
    st->granting = 1;
    zsrv_conn *c;
    while ((c = next_voter(st))) {
        unqueue(st, c);
        run_vote(st, c);
    }
    st->granting = 0;
}

/* ---- the contract ---------------------------------------------------------------- */

void zsrv__lock_request(zsrv_conn *c)
{
    zsrv_storage *st = c->stor;
    zsrv_txn *x = &c->txn;
    unlock_oids(st, c);        /* a re-vote: its oid set is read again below */
    if (collect_locks(x) < 0) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    if (x->holding) {
        /* A re-vote after conflicts: it keeps its place if what it added
         * is free; waiting for another holder while holding its own oids
         * could deadlock, so otherwise it queues again like a new voter. */
        oidmap none = OIDMAP_INIT;
        if (may_vote(st, c, &none) && lock_oids(st, c) == 0) {
            if (x->exclusive)
                st->exclusive_holder = c;
            else if (st->exclusive_holder == c)
                st->exclusive_holder = NULL;
            zsrv__vote_run(c);
            grant(st);         /* oids it no longer touches are free */
            return;
        }
        drop_holder(st, c);
    }
    enqueue(st, c);
    grant(st);
}

void zsrv__lock_release(zsrv_conn *c)
{
    zsrv_storage *st = c->stor;
    zsrv_txn *x = &c->txn;
    if (x->holding)
        drop_holder(st, c);
    else if (x->vote == ZSRV_VOTE_WAITING)
        unqueue(st, c);
    free(x->locks);
    x->locks = NULL;
    x->n_locks = x->cap_locks = 0;
    grant(st);
}

void zsrv__lock_resolving(zsrv_conn *c, int resolving)
{
    zsrv_storage *st = c->stor;
    zsrv_txn *x = &c->txn;
    if (!resolving) {
        resolver_unlink(st, c);
        return;
    }
    if (x->resolving_since || !x->holding)
        return;   /* the bound runs from the first conflicts of this hold */
    x->resolving_since = now();
    x->resolve_prev = st->resolvers_tail;
    x->resolve_next = NULL;
    if (st->resolvers_tail)
        st->resolvers_tail->txn.resolve_next = c;
    else
        st->resolvers = c;
    st->resolvers_tail = c;
    if (st->resolvers == c)
        arm_timeout(st);
}

double zsrv__lock_oldest(const zsrv_storage *st)
{
    return st->holders ? st->holders->txn.lock_time : 0;
}

/* The storage's timeout timer fired: close every holder past the
 * transaction timeout and every resolver past the conflict bound. */
static void txn_timeout(uv_timer_t *timer)
{
    zsrv_storage *st = timer->data;
    double secs = st->srv->cfg->txn_timeout, bound = st->srv->cfg->conflict_timeout;
    char why[96];
    snprintf(why, sizeof why, "Transaction timeout after %g seconds", secs);
    /* Closing drops the transaction, which aborts it and releases its oids
     * (unlike ZEO 6, whose timed-out connection keeps the lock for ever). */
    zsrv_conn *c;
    while (secs > 0 && (c = st->holders) && c->txn.lock_time + secs <= now() + 0.001) {
        st->mx.lock_expired++;
        zsrv__conn_close(c, ZSRV_LOG_CRITICAL, why);
        if (st->holders == c)
            break;             /* already closing: its drop is under way */
    }
    snprintf(why, sizeof why, "Transaction timeout after %g seconds resolving conflicts",
             bound);
    while ((c = st->resolvers) && c->txn.resolving_since + bound <= now() + 0.001) {
        st->mx.resolve_expired++;
        zsrv__conn_close(c, ZSRV_LOG_CRITICAL, why);
        if (st->resolvers == c)
            break;
    }
    arm_timeout(st);
}
