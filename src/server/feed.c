/* feed.c: a storage whose PostgreSQL database other zeolite servers serve
 * too (`shared`): what they commit reaches this server's clients.
 *
 * The store's feed (store.h: "several stores on one database") calls back
 * on a thread of the store, one event at a time, in one tid order with the
 * store's own commit callbacks. Each event is copied into a zsrv_commit
 * and queued on the same FIFO as those callbacks, so the loop handles both
 * in that order: another server's commit is invalidated here before any
 * later commit of ours is answered, and the visible tid (which bounds
 * every reply, lastTransaction and register's tid) moves with it.
 * While the feed cannot say what the others commit, clients could read
 * stale data: the storage's clients are closed and new ones refused until
 * it is back, or for good when the feed has stopped (the server then stops
 * once none of its storages can be served, for a supervisor to restart
 * it). A store that refuses its database (store_refused: a standby
 * promoted behind what it served), shared or not, ends its storage the
 * same way. */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void feed_free(zsrv_commit *cm)
{
    free(cm->oids);
    free(cm);
}

/* The store's thread: copy the event (valid during the call only). */
static void on_feed(const store_feed_event *ev, void *ud)
{
    zsrv_storage *st = ud;
    zsrv_commit *cm = calloc(1, sizeof *cm);
    if (cm && ev->kind == STORE_FEED_COMMIT && ev->n_oids &&
        !(cm->oids = malloc(ev->n_oids * sizeof *cm->oids))) {
        free(cm);
        cm = NULL;
    }
    if (!cm) {
        atomic_store(&st->feed_nomem, 1);
        uv_async_send(&st->srv->commit_async);
        return;
    }
    cm->stor = st;
    cm->feed = (int)ev->kind;
    cm->tid = ev->tid;
    cm->rc = ev->rc;
    cm->final = ev->final;
    if (cm->oids) {
        memcpy(cm->oids, ev->oids, ev->n_oids * sizeof *cm->oids);
        cm->n_oids = ev->n_oids;
    }
    if (ev->kind == STORE_FEED_LOST)
        zerr_set(&cm->err, ev->rc, "%s", ev->msg ? ev->msg : "the change feed is lost");
    if (ev->kind == STORE_FEED_COMMIT && st->feed_hold_ms) {   /* a test hook */
        zsrv__log(ZSRV_LOG_INFO, "storage %s: holding the commit %016llx of another server "
                  "for %u ms (ZEOLITE_FEED_HOLD_MS)", st->name, (unsigned long long)ev->tid,
                  st->feed_hold_ms);
        struct timespec ts = {st->feed_hold_ms / 1000, (long)(st->feed_hold_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    if (zsrv__done_push(st->srv, cm) < 0)
        feed_free(cm);
}

int zsrv__feed_start(zsrv_storage *st, zerr *err)
{
    const char *hold = getenv("ZEOLITE_FEED_HOLD_MS");
    st->feed_hold_ms = hold ? (unsigned)strtoul(hold, NULL, 10) : 0;
    int rc = store_feed_start(st->st, on_feed, st, err);
    if (rc < 0)
        return zerr_set(err, rc, "storage %s: cannot follow the other servers' commits: %s",
                        st->name, err->msg);
    return 0;
}

static void close_clients(zsrv_storage *st, const char *why)
{
    for (zsrv_conn *c = st->conns, *next; c; c = next) {
        next = c->snext;
        zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
    }
}

/* The storage can no longer be served (cause: what went wrong, why: the
 * store's message): close it, and stop the server when none of its
 * storages can be. */
static void storage_dead(zsrv_storage *st, const char *cause, const char *why)
{
    int was = st->feed_state;
    st->feed_state = ZSRV_FEED_DEAD;
    snprintf(st->feed_msg, sizeof st->feed_msg, "%s", why);
    if (was != ZSRV_FEED_DEAD)
        zsrv__log(ZSRV_LOG_CRITICAL, "storage %s: no longer served (%s: %s); restart the "
                  "server once the database is sound", st->name, cause, why);
    close_clients(st, "storage no longer served");
    zsrv *s = st->srv;
    for (size_t i = 0; i < s->n_storages; i++)
        if (s->storages[i].feed_state != ZSRV_FEED_DEAD)
            return;
    zsrv__stop(s, "stopping: no storage can be served", 1);
}

static void feed_dead(zsrv_storage *st, const char *why)
{
    storage_dead(st, "the other servers' commits cannot be followed", why);
}

static void feed_commit(zsrv_storage *st, const zsrv_commit *cm)
{
    if (cm->tid <= st->visible)   /* the start's catch-up, already in the snapshot */
        return;
    zsrv__invalidate(st, NULL, cm->tid, cm->oids, cm->n_oids);
    zsrv__invq_push(st, cm->tid);
    st->visible = cm->tid;
    atomic_fetch_add(&st->completed, 1);
    zsrv__release_deferred(st);
}

void zsrv__feed_event(zsrv_commit *cm)
{
    zsrv_storage *st = cm->stor;
    if (st->feed_state == ZSRV_FEED_DEAD) {
        feed_free(cm);
        return;
    }
    switch (cm->feed) {
    case STORE_FEED_COMMIT:
        feed_commit(st, cm);
        break;
    case STORE_FEED_LOST:
        if (cm->final) {
            feed_dead(st, cm->err.msg);
            break;
        }
        if (st->feed_state != ZSRV_FEED_LOST)
            zsrv__log(ZSRV_LOG_ERROR, "storage %s: closing its clients and refusing new ones "
                      "until the other servers' commits can be followed again: %s", st->name,
                      cm->err.msg);
        st->feed_state = ZSRV_FEED_LOST;
        snprintf(st->feed_msg, sizeof st->feed_msg, "%s", cm->err.msg);
        close_clients(st, "the other servers' commits cannot be followed");
        break;
    case STORE_FEED_BACK:
        if (st->feed_state == ZSRV_FEED_LOST)
            zsrv__log(ZSRV_LOG_INFO, "storage %s: following the other servers' commits again "
                      "(up to %016llx): clients are accepted", st->name,
                      (unsigned long long)cm->tid);
        st->feed_state = 0;
        break;
    default:
        break;
    }
    feed_free(cm);
}

void zsrv__feed_check(zsrv_storage *st)
{
    zerr why;
    if (st->feed_state == ZSRV_FEED_DEAD)
        return;
    if (atomic_load(&st->feed_nomem))
        feed_dead(st, "out of memory queueing a commit of another server");
    else if (store_refused(st->st, &why))   /* e.g. a standby promoted behind it */
        storage_dead(st, "its database is not the one it served", why.msg);
}

void zsrv__feed_drop(zsrv_commit *list)
{
    while (list) {
        zsrv_commit *cm = list;
        list = cm->done_next;
        if (cm->feed)
            feed_free(cm);
    }
}
