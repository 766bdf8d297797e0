/* lock.c: the commit lock of a storage: one voter at a time, the others
 * served first come, first served (ZEO's own lock lets busy writers starve
 * the rest). The holder keeps the lock from its vote until the commit is
 * handed to the writer, or until tpc_abort, disconnect or the transaction
 * timeout; a holder whose vote returned conflicts keeps it while its client
 * resolves them, so the re-vote cannot meet yet another commit. */
#include "server/server_int.h"

#include <sys/time.h>

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void acquire(zsrv_storage *st, zsrv_conn *c)
{
    st->lock_holder = c;
    st->lock_time = now();
    double secs = st->srv->cfg->txn_timeout;
    if (secs > 0)
        uv_timer_start(&st->timeout_timer, zsrv_txn_timeout, (uint64_t)(secs * 1000), 0);
}

void zsrv_lock_request(zsrv_conn *c)
{
    zsrv_storage *st = c->stor;
    if (!st->lock_holder) {
        acquire(st, c);
        zsrv_vote_run(c);
        return;
    }
    c->txn.vote = VOTE_WAITING;
    c->txn.wait_next = NULL;
    if (st->wait_tail)
        st->wait_tail->txn.wait_next = c;
    else
        st->wait_head = c;
    st->wait_tail = c;
    st->n_waiting++;
}

void zsrv_lock_unqueue(zsrv_conn *c)
{
    zsrv_storage *st = c->stor;
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

void zsrv_lock_release(zsrv_storage *st)
{
    st->lock_holder = NULL;
    st->lock_time = 0;
    uv_timer_stop(&st->timeout_timer);
    /* A waiter whose vote fails releases the lock again: loop, not recurse. */
    while (!st->lock_holder && st->wait_head) {
        zsrv_conn *c = st->wait_head;
        st->wait_head = c->txn.wait_next;
        if (!st->wait_head)
            st->wait_tail = NULL;
        st->n_waiting--;
        c->txn.wait_next = NULL;
        acquire(st, c);
        zsrv_vote_run(c);
    }
}

void zsrv_txn_timeout(uv_timer_t *timer)
{
    zsrv_storage *st = timer->data;
    zsrv_conn *c = st->lock_holder;
    if (!c)
        return;
    char why[96];
    snprintf(why, sizeof why, "Transaction timeout after %g seconds", st->srv->cfg->txn_timeout);
    /* Closing drops the transaction, which aborts it and releases the lock
     * (unlike ZEO 6, whose timed-out connection keeps the lock for ever). */
    zsrv_conn_close(c, ZSRV_LOG_CRITICAL, why);
}
