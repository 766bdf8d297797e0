/* vote.c: the vote of spec section 9.2.
 *
 * The store's resolver (resolve.c) has merged the conflicts it could; the
 * rest go back to the client as a list of dicts while the
 * connection keeps its oid locks; its re-stores and re-vote are then
 * checked against the same committed state. Any other failure aborts the
 * transaction and releases its locks. A storage whose store calls may
 * block votes on a worker (ZSRV_VOTE_RUNNING meanwhile): the transaction
 * keeps its locks, and a tpc_abort, a disconnect or a timeout in between
 * leaves the store transaction to the vote's job, which aborts it when it
 * is back.
 *
 * A reply that names a tid (conflict dicts, conflict errors) must not reach
 * the client before that tid's invalidation. What a vote saw may include
 * commits handed to the writer and not yet complete (the store's vote
 * checks against them), whose tids may not even be known yet (a store that
 * delivers the tid in its commit callback): such a reply waits in
 * c->deferred until every commit handed off before it has completed, and
 * the newest tid it names is visible. */
#include "server/server_int.h"
#include "pickle/record.h"

#include <stdlib.h>
#include <string.h>

/* A vote's reply: a passed vote's list of oids names no tid (reveals 0):
 * a conflict resolved in the server against a commit not yet durable is
 * answered at once, so commits of a hot object share the writer's syncs. */
void zsrv__reply_ordered(zsrv_conn *c, const zv *msgid, const proto_exc *e, const zv *value,
                         int reveals, uint64_t names)
{
    zsrv_storage *st = c->stor;
    int ready = st->seq_done >= st->seq_handed && names <= st->visible;
    /* A reply already held back keeps its place: later ones queue behind it. */
    if (!c->deferred.len && (!reveals || ready)) {
        if (e)
            zsrv__send_error(c, msgid, e);
        else
            zsrv__send_reply(c, msgid, value);
        return;
    }
    zerr err = {0};
    int first = !c->deferred.len;
    int rc = e ? proto_encode_error(c->enc, &c->deferred, msgid, e, &err)
               : proto_encode_reply(c->enc, &c->deferred, msgid, value, &err);
    if (rc < 0) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot encode a vote reply");
        return;
    }
    /* Both only grow: the conditions of earlier replies are covered. */
    c->deferred_seq = st->seq_handed;
    if (names > c->deferred_tid)
        c->deferred_tid = names;
    if (first)
        st->n_deferred++;
}

void zsrv__release_deferred(zsrv_storage *st)
{
    if (!st->n_deferred)
        return;
    for (zsrv_conn *c = st->conns; c; c = c->snext) {
        if (!c->deferred.len || st->seq_done < c->deferred_seq || st->visible < c->deferred_tid)
            continue;
        if (zbuf_append(zsrv__out_tail(c), c->deferred.data, c->deferred.len) < 0) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
            continue;   /* closing already unregistered it and fixed n_deferred */
        }
        zbuf_reset(&c->deferred);
        c->deferred_seq = c->deferred_tid = 0;
        st->n_deferred--;
        zsrv__slots_count(c);
        zsrv__conn_mark_dirty(c);
    }
}

/* The newest committed tid the vote's conflicts name. */
static uint64_t names_of(const store_vote_result *res)
{
    uint64_t newest = 0;
    for (size_t i = 0; i < res->n_conflicts; i++)
        if (res->conflicts[i].committed > newest)
            newest = res->conflicts[i].committed;
    return newest;
}

/* The store's conflict as the protocol states it. */
static proto_conflict proto_view(const store_conflict *k)
{
    return (proto_conflict){.read = k->read_conflict, .oid = k->oid, .current = k->committed,
                            .sent = k->expected, .data = k->data};
}

static int all_resolvable(const store_vote_result *res)
{
    if (!res->n_conflicts)
        return 0;
    for (size_t i = 0; i < res->n_conflicts; i++)
        if (res->conflicts[i].read_conflict || res->conflicts[i].delete_conflict)
            return 0;
    return 1;
}

/* The vote's list: the oids an undo changed, then those the server resolved
 * (each a plain oid, as ZEO lists them), so the client drops its copies. */
static void vote_ok(zsrv_conn *c, zv_arena *a, const store_vote_result *res)
{
    zsrv_txn *x = &c->txn;
    x->vote = ZSRV_VOTE_OK;
    zsrv__lock_resolving(c, 0);
    if (x->had_conflicts)
        c->stor->stats.conflicts_resolved++;
    c->stor->stats.conflicts_resolved_server += res->n_resolved + res->n_undo_resolved;
    size_t n = res->n_changed + res->n_resolved;
    zv *l = zv_list(a, n);
    for (size_t i = 0; l && i < n; i++) {
        uint64_t oid = i < res->n_changed ? res->changed[i] : res->resolved[i - res->n_changed];
        if (!(l->u.seq.items[i] = zv_oid(a, oid)))
            l = NULL;
    }
    if (!l) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    zsrv__reply_ordered(c, x->vote_msgid, NULL, l, 0, 0);
}

static void vote_conflicts(zsrv_conn *c, zv_arena *a, const store_vote_result *res)
{
    zsrv_txn *x = &c->txn;
    x->vote = ZSRV_VOTE_CONFLICT;
    x->had_conflicts = 1;
    zsrv__lock_resolving(c, 1);
    c->stor->stats.conflicts += res->n_conflicts;
    zv *l = zv_list(a, res->n_conflicts);
    for (size_t i = 0; l && i < res->n_conflicts; i++) {
        proto_conflict pc = proto_view(&res->conflicts[i]);
        if (proto_conflict_item(&l->u.seq.items[i], a, &pc) < 0)
            l = NULL;
    }
    if (!l) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    zsrv__reply_ordered(c, x->vote_msgid, NULL, l, 1, names_of(res));
}

/* The conflict the error reports: the client drops that oid from its cache,
 * so it must be the one that made the vote fail (a read or delete conflict),
 * not a resolvable write conflict listed before it. */
static const store_conflict *failing_conflict(const store_vote_result *res)
{
    for (size_t i = 0; i < res->n_conflicts; i++)
        if (res->conflicts[i].read_conflict || res->conflicts[i].delete_conflict)
            return &res->conflicts[i];
    return res->n_conflicts ? &res->conflicts[0] : NULL;
}

/* The exception of a failed vote, from the store's structured result. */
static int vote_exc(proto_exc *e, zv_arena *a, int rc, const store_vote_result *res,
                    const zerr *err)
{
    const store_conflict *k = failing_conflict(res);
    if (rc == ZE_READCONFLICT || rc == ZE_CONFLICT || (k && k->read_conflict)) {
        char cls[256];
        proto_conflict pc = {.no_oid = 1};
        if (k)
            pc = proto_view(k);
        pc.read |= rc == ZE_READCONFLICT;
        /* The reference names the record's class for write conflicts only. */
        if (k && !pc.read && k->data.len &&
            record_class_name(k->data.p, k->data.len, cls, sizeof cls) == 0)
            pc.class_name = cls;
        return proto_exc_conflict(e, a, &pc);
    }
    if (rc == ZE_UNDO) {
        proto_undo_error *errs = zv_alloc(a, (res->n_undo_failures + 1) * sizeof *errs);
        if (!errs)
            return ZE_NOMEM;
        for (size_t i = 0; i < res->n_undo_failures; i++)
            errs[i] = (proto_undo_error){res->undo_failures[i].oid, res->undo_failures[i].reason};
        return proto_exc_undo(e, a, err->msg, errs, res->n_undo_failures);
    }
    return proto_exc_from_err(e, a, err);
}

/* Answer the failed vote, then forget the transaction. */
static void vote_failed(zsrv_conn *c, zv_arena *a, int rc, const store_vote_result *res,
                        zerr *err)
{
    err->code = rc;
    if (rc == ZE_CONFLICT || rc == ZE_READCONFLICT || res->n_conflicts)
        c->stor->stats.conflicts++;
    else
        zsrv__log(ZSRV_LOG_INFO, "%s: vote failed: %s", c->peer, err->msg);
    proto_exc e;
    int built = vote_exc(&e, a, rc, res, err);
    /* The reply goes out after the drop: the msgid lives in the txn arena. */
    zv *msgid = c->txn.vote_msgid ? zv_copy(a, c->txn.vote_msgid) : NULL;
    uint64_t names = names_of(res);   /* res goes with the transaction */
    zsrv__txn_drop(c);
    if (built < 0 || !msgid) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    zsrv__reply_ordered(c, msgid, &e, NULL, 1, names);
}

/* Answer the vote the store has made (on the loop). */
static void vote_done(zsrv_conn *c, int rc, store_vote_result *res, zerr *err)
{
    zsrv_txn *x = &c->txn;
    zsrv_storage *st = c->stor;
    uint64_t t0 = x->vote_t0;
    x->vote_t0 = 0;
    zv_arena *a = zv_arena_new();
    if (!a) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    if (rc == 0)
        vote_ok(c, a, res);
    else if (rc == ZE_CONFLICT && all_resolvable(res))
        vote_conflicts(c, a, res);
    else
        vote_failed(c, a, rc, res, err);
    zv_arena_free(a);
    zsrv__mx_reply(st, "vote", t0);
}

/* A vote on a worker; c NULL once its transaction was dropped. */
typedef struct zsrv_vjob {
    zsrv_job job;
    zsrv_conn *c;
    store_txn *t;
    int rc;
    store_vote_result res;
    zerr err;
} zsrv_vjob;

static void vote_job_run(zsrv_job *job, store_reader *rd, const zerr *rd_err)
{
    zsrv_vjob *j = (zsrv_vjob *)job;
    j->rc = store_txn_vote(j->t, &j->res, &j->err);
}

static void vote_job_end(zsrv_job *job)
{
    zsrv_vjob *j = (zsrv_vjob *)job;
    zsrv_conn *c = j->c;
    if (!c) {   /* aborting never waits (store.h) */
        store_txn_abort(j->t);
        store_txn_free(j->t);
    } else {
        c->txn.vjob = NULL;
        c->txn.vote = ZSRV_VOTE_NONE;   /* the result decides */
        vote_done(c, j->rc, &j->res, &j->err);
    }
    free(j);
}

void zsrv__vote_orphan(zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    x->vjob->c = NULL;
    x->vjob = NULL;
    x->t = NULL;
}

void zsrv__vote_run(zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    zsrv_storage *st = c->stor;
    if (!st->offloop) {
        store_vote_result res;
        memset(&res, 0, sizeof res);
        zerr err = {0};
        int rc = store_txn_vote(x->t, &res, &err);
        vote_done(c, rc, &res, &err);
        return;
    }
    zsrv_vjob *j = calloc(1, sizeof *j);
    if (!j) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    j->c = c;
    j->t = x->t;
    j->job.run = vote_job_run;
    j->job.end = vote_job_end;
    x->vjob = j;
    x->vote = ZSRV_VOTE_RUNNING;
    zsrv__job_submit(st, &j->job, ZSRV_LANE_WRITE);
}

int zsrv__m_vote(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_txn *x = zsrv__txn_check(call, call->argv[0]);
    if (!x)
        return call->err.code;
    if (call->m->async)
        return zerr_set(&call->err, ZE_PROTO, "vote must be a synchronous call");
    switch (x->vote) {
    case ZSRV_VOTE_WAITING:
        return zerr_set(&call->err, ZE_TXN, "Already voting (waiting)");
    case ZSRV_VOTE_RUNNING:
    case ZSRV_VOTE_OK:
    case ZSRV_VOTE_FINISHING:
        return zerr_set(&call->err, ZE_TXN, "Already voting (locked)");
    default:
        break;
    }
    if (x->deferred.code) {
        /* Like every failed vote, this one aborts the transaction. */
        call->err = x->deferred;
        zsrv__txn_drop(c);
        return call->err.code;
    }
    if (!(x->vote_msgid = zsrv__keep(call, x->arena, call->m->msgid, "a message id")))
        return call->err.code;
    x->vote_t0 = zsrv__mx_take(c);
    zsrv__lock_request(c);
    return 0;
}
