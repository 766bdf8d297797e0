/* finish.c: tpc_finish and the return of durable commits to the loop.
 *
 * tpc_finish hands the voted transaction to the store's writer thread and
 * releases its oid locks at once, so the next voter overlaps this commit's
 * sync (group commit). The writer's callback only queues the commit and
 * wakes the loop. On the loop, once a commit is durable: send
 * invalidateTransaction to every other client, move the storage's visible
 * tid, then info and the tid to the committer. Commits are completed in the
 * order they were handed off (which is tid order); the tid comes with the
 * callback (a store may choose it only when it commits). A storage read on
 * the loop refreshes its reader here too, and a commit whose tid was known
 * at hand-off and that became visible through that refresh before its own
 * callback arrived is completed then, so no reply can show data whose
 * invalidation has not gone out. */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

static void commit_cb(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud);

static void commit_free(zsrv_commit *cm)
{
    store_txn_free(cm->t);
    zv_arena_free(cm->arena);
    free(cm);
}

void zsrv__send_info(zsrv_conn *c)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return;
    zv *d = zv_dict(a, 2), *args = zv_tuple(a, 1);
    if (d && args) {
        d->u.seq.items[0] = zv_cstr(a, "length");
        d->u.seq.items[1] = zv_int(a, (int64_t)store_object_count(c->stor->st));
        d->u.seq.items[2] = zv_cstr(a, "size");
        d->u.seq.items[3] = zv_int(a, (int64_t)store_size_bytes(c->stor->st));
        args->u.seq.items[0] = d;
        int ok = 1;
        for (int i = 0; i < 4; i++)
            ok &= d->u.seq.items[i] != NULL;
        if (ok)
            zsrv__send_async(c, "info", args);
    }
    zv_arena_free(a);
}

int zsrv__m_tpc_finish(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_txn *x = &c->txn;
    zsrv_storage *st = c->stor;
    if (!x->active || !zv_equal(x->id, call->argv[0])) {
        /* ZEO answers None to an unknown txn; so do we. */
        zsrv__log(ZSRV_LOG_INFO, "%s: tpc_finish for an unknown transaction", c->peer);
        return zsrv__reply(call, zv_none(call->a));
    }
    if (x->vote != ZSRV_VOTE_OK) {
        zerr_set(&call->err, ZE_TXN, "tpc_finish without a successful vote");
        return zsrv__fail_as(call, PROTO_EXC_ASSERTION);
    }
    /* An async tpc_finish is answered with nothing, as any async call. */
    zsrv_commit *cm = calloc(1, sizeof *cm);
    if (!cm || (!call->m->async && !(cm->msgid = zsrv__keep_msgid(call, &cm->arena)))) {
        free(cm);
        return call->err.code ? call->err.code : zerr_set(&call->err, ZE_NOMEM, "out of memory");
    }
    cm->stor = st;
    cm->conn = c;
    cm->t = x->t;
    uint64_t tid = 0;
    int rc = store_txn_commit(x->t, &tid, commit_cb, cm, &call->err);
    if (rc < 0) {
        cm->t = NULL;
        commit_free(cm);
        zsrv__log(ZSRV_LOG_ERROR, "%s: commit failed: %s", c->peer, call->err.msg);
        zerr saved = call->err;
        zsrv__txn_drop(c);
        call->err = saved;
        return rc;
    }
    cm->tid = tid;   /* 0: the store tells it in its callback */
    cm->t0 = zsrv__mx_take(c);
    cm->seq = ++st->seq_handed;
    zsrv_commit **pp = &st->inflight;
    while (*pp)
        pp = &(*pp)->next;
    *pp = cm;
    x->vote = ZSRV_VOTE_FINISHING;
    zsrv__lock_release(c);
    return 0;
}

/* The store's commit callback (writer thread): queue cm for the loop. */
static void commit_cb(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    zsrv_commit *cm = ud;
    zsrv *s = cm->stor->srv;
    cm->rc = rc;
    cm->cb_tid = tid;
    if (rc < 0 && err)
        cm->err = *err;
    (void)zsrv__done_push(s, cm);   /* commits all end before the loop stops */
}

int zsrv__done_push(zsrv *s, zsrv_commit *cm)
{
    pthread_mutex_lock(&s->done_lock);
    if (s->done_closed) {
        pthread_mutex_unlock(&s->done_lock);
        return -1;
    }
    cm->done_next = NULL;
    if (s->done_tail)
        s->done_tail->done_next = cm;
    else
        s->done_head = cm;
    s->done_tail = cm;
    pthread_mutex_unlock(&s->done_lock);
    uv_async_send(&s->commit_async);
    return 0;
}

/* The connection's transaction is over: it may begin the next one. */
static void txn_finished(zsrv_conn *c)
{
    zv_arena_free(c->txn.arena);
    memset(&c->txn, 0, sizeof c->txn);
}

/* failed: the callback reported an error (rc and err are read only after
 * the callback has run: the writer thread sets them). */
static void complete(zsrv_commit *cm, int failed)
{
    zsrv_storage *st = cm->stor;
    zsrv_conn *c = cm->conn;
    cm->processed = 1;
    st->seq_done = cm->seq;
    st->active_txns--;
    zsrv__mx_reply(st, "tpc_finish", cm->t0);   /* durable, or failed */
    if (failed) {
        /* A store that chooses the tid at commit never chose one. */
        if (cm->tid)
            zsrv__log(ZSRV_LOG_CRITICAL, "commit of %016llx failed: %s",
                      (unsigned long long)cm->tid, cm->err.msg);
        else
            zsrv__log(ZSRV_LOG_ERROR, "storage %s: a commit failed: %s", st->name, cm->err.msg);
        if (c) {
            txn_finished(c);
            if (cm->msgid)
                zsrv__send_error_msg(c, cm->msgid, PROTO_EXC_STORAGE, cm->err.msg);
            else   /* a failed async call closes its connection (spec 6.3) */
                zsrv__conn_close(c, ZSRV_LOG_ERROR, "async tpc_finish failed");
        }
        return;
    }
    size_t n;
    const uint64_t *oids = store_txn_oids(cm->t, &n);
    zsrv__invalidate(st, c, cm->tid, oids, n);
    zsrv__invq_push(st, cm->tid);
    if (cm->tid > st->visible)
        st->visible = cm->tid;
    atomic_fetch_add(&st->completed, 1);
    st->stats.commits++;
    if (c) {
        txn_finished(c);
        if (st->srv->stopping)
            c->close_after_flush = 1;
        zsrv__send_info(c);
        if (!cm->msgid)
            return;
        zv *tid = zv_oid(cm->arena, cm->tid);
        if (tid)
            zsrv__send_reply(c, cm->msgid, tid);
        else
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
    }
}

void zsrv__storage_sync(zsrv_storage *st)
{
    uint64_t seen = 0;
    if (st->rd) {
        zerr err = {0};
        if (store_reader_refresh(st->rd, &err) < 0)
            zsrv__log(ZSRV_LOG_ERROR, "storage %s: cannot refresh the reader: %s", st->name,
                      err.msg);
        seen = store_reader_last_tid(st->rd);
    }
    /* Oldest first: those whose callback came, and those visible now. */
    for (zsrv_commit *x = st->inflight; x; x = x->next) {
        if (x->processed)
            continue;
        int failed = x->cb_done && x->rc < 0;
        if (x->cb_done && !failed)
            x->tid = x->cb_tid;
        else if (!failed && !(x->tid && x->tid <= seen))
            break;
        complete(x, failed);
    }
    while (st->inflight && st->inflight->processed && st->inflight->cb_done) {
        zsrv_commit *x = st->inflight;
        st->inflight = x->next;
        commit_free(x);
    }
    zsrv__release_deferred(st);
}

void zsrv__commit_done(zsrv_commit *cm)
{
    cm->cb_done = 1;
    zsrv__storage_sync(cm->stor);
}
