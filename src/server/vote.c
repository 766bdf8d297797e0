/* vote.c: the vote of spec section 9.2 in client-conflict-resolution mode.
 *
 * Write conflicts go back to the client as a list of dicts while the
 * connection keeps its oid locks; its re-stores and re-vote are then
 * checked against the same committed state. Any other failure aborts the
 * transaction and releases its locks.
 *
 * A reply that names a tid (conflict dicts, conflict errors) must not reach
 * the client before that tid's invalidation, and a tid handed to the writer
 * becomes visible (and invalidated) only once durable: such a reply waits in
 * c->deferred until the storage's reader has caught up. */
#include "server/server_int.h"
#include "pickle/record.h"

#include <stdio.h>
#include <string.h>

/* Queue the vote reply, or hold it back until the newest handed-off commit
 * is visible. */
static void vote_answer(zsrv_conn *c, const zv *msgid, const char *err_cls, const zv *value)
{
    zsrv_storage *st = c->stor;
    uint64_t visible = store_reader_last_tid(st->rd);
    int reveals = err_cls || value->type != ZV_LIST || value->u.seq.n != 0;
    /* A reply already held back keeps its place: later ones queue behind it. */
    if (!c->deferred.len && (!reveals || st->handed_tid <= visible)) {
        if (err_cls)
            zsrv_send_error(c, msgid, err_cls, value);
        else
            zsrv_send_reply(c, msgid, value);
        return;
    }
    zerr err = {0};
    size_t mark = c->deferred.len;
    int rc = err_cls ? proto_encode_error(c->enc, &c->deferred, msgid, err_cls, value, &err)
                     : proto_encode_reply(c->enc, &c->deferred, msgid, value, &err);
    if (rc < 0) {
        c->deferred.len = mark;
        zsrv_conn_close(c, ZSRV_LOG_ERROR, "cannot encode a vote reply");
        return;
    }
    c->deferred_tid = st->handed_tid;   /* tids only grow: covers earlier ones */
    if (!mark)
        st->n_deferred++;
}

void zsrv_release_deferred(zsrv_storage *st)
{
    if (!st->n_deferred)
        return;
    uint64_t visible = store_reader_last_tid(st->rd);
    for (zsrv_conn *c = st->conns; c; c = c->snext) {
        if (!c->deferred.len || c->deferred_tid > visible)
            continue;
        if (zbuf_append(&c->out, c->deferred.data, c->deferred.len) < 0) {
            zsrv_conn_close(c, ZSRV_LOG_ERROR, "out of memory");
            continue;   /* closing already unregistered it and fixed n_deferred */
        }
        zbuf_reset(&c->deferred);
        st->n_deferred--;
        zsrv_conn_mark_dirty(c);
    }
}

static zv *conflict_dict(zv_arena *a, const store_conflict *k)
{
    zv *d = zv_dict(a, 3);
    if (!d)
        return NULL;
    zv **it = d->u.seq.items;
    it[0] = zv_cstr(a, "oid");
    it[1] = zv_oid(a, k->oid);
    it[2] = zv_cstr(a, "serials");
    zv *c = zv_oid(a, k->committed), *e = zv_oid(a, k->expected);
    it[3] = c && e ? zv_tuple2(a, c, e) : NULL;
    it[4] = zv_cstr(a, "data");
    it[5] = zv_bytes(a, k->data.p, k->data.len);
    for (int i = 0; i < 6; i++)
        if (!it[i])
            return NULL;
    return d;
}

/* The ConflictError / ReadConflictError attribute dict the client rebuilds
 * (spec section 11.2): message, oid, serials, class_name. */
static zv *conflict_error(zv_arena *a, const store_conflict *k, const char *message)
{
    zv *d = zv_dict(a, 4);
    if (!d)
        return NULL;
    zv **it = d->u.seq.items;
    char cls[256];
    int have_cls = k && !k->read_conflict && k->data.len &&
                   record_class_name(k->data.p, k->data.len, cls, sizeof cls) == 0;
    it[0] = zv_cstr(a, "message");
    it[1] = zv_cstr(a, message);
    it[2] = zv_cstr(a, "oid");
    it[3] = k ? zv_oid(a, k->oid) : zv_none(a);
    it[4] = zv_cstr(a, "serials");
    if (k) {
        zv *c = zv_oid(a, k->committed), *e = zv_oid(a, k->expected);
        it[5] = c && e ? zv_tuple2(a, c, e) : NULL;
    } else {
        it[5] = zv_none(a);
    }
    it[6] = zv_cstr(a, "class_name");
    it[7] = have_cls ? zv_cstr(a, cls) : zv_none(a);
    for (int i = 0; i < 8; i++)
        if (!it[i])
            return NULL;
    return d;
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

static void vote_ok(zsrv_conn *c, zv_arena *a, const store_vote_result *res)
{
    zsrv_txn *x = &c->txn;
    x->vote = VOTE_OK;
    if (x->had_conflicts)
        c->stor->stats.conflicts_resolved++;
    zv *l = zv_list(a, res->n_changed);
    for (size_t i = 0; l && i < res->n_changed; i++)
        if (!(l->u.seq.items[i] = zv_oid(a, res->changed[i])))
            l = NULL;
    if (!l) {
        zsrv_conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    vote_answer(c, x->vote_msgid, NULL, l);
}

static void vote_conflicts(zsrv_conn *c, zv_arena *a, const store_vote_result *res)
{
    zsrv_txn *x = &c->txn;
    x->vote = VOTE_CONFLICT;
    x->had_conflicts = 1;
    c->stor->stats.conflicts += res->n_conflicts;
    zv *l = zv_list(a, res->n_conflicts);
    for (size_t i = 0; l && i < res->n_conflicts; i++)
        if (!(l->u.seq.items[i] = conflict_dict(a, &res->conflicts[i])))
            l = NULL;
    if (!l) {
        zsrv_conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    vote_answer(c, x->vote_msgid, NULL, l);
}

/* The MultipleUndoErrors FileStorage raises, which the ZEO client rebuilds
 * from {'_errs': [(oid, reason)]} (a plain UndoError would reach the
 * application as a ServerException). The store names the oid in its
 * message as "oid <16 hex digits>". */
static zv *undo_errors(zv_arena *a, const char *msg)
{
    const char *at = strstr(msg, "oid ");
    unsigned long long oid;
    zv *oidv = at && sscanf(at + 4, "%16llx", &oid) == 1 ? zv_oid(a, oid) : zv_none(a);
    zv *reason = zv_cstr(a, msg);
    zv *pair = oidv && reason ? zv_tuple2(a, oidv, reason) : NULL;
    zv *list = zv_list(a, 1), *d = zv_dict(a, 1);
    if (!pair || !list || !d || !(d->u.seq.items[0] = zv_cstr(a, "_errs")))
        return NULL;
    list->u.seq.items[0] = pair;
    d->u.seq.items[1] = list;
    return d;
}

/* Build the error for a failed vote, then forget the transaction. */
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

static void vote_failed(zsrv_conn *c, zv_arena *a, int rc, const store_vote_result *res,
                        const zerr *err)
{
    const store_conflict *k = failing_conflict(res);
    const char *cls;
    zv *payload;
    if (rc == ZE_READCONFLICT || (k && k->read_conflict)) {
        cls = "ZODB.POSException.ReadConflictError";
        payload = conflict_error(a, k, "database read conflict error");
    } else if (rc == ZE_CONFLICT) {
        cls = "ZODB.POSException.ConflictError";
        payload = conflict_error(a, k, "database conflict error");
    } else if (rc == ZE_UNDO) {
        cls = "ZODB.POSException.MultipleUndoErrors";
        payload = undo_errors(a, err->msg);
    } else {
        cls = rc == ZE_NOTFOUND ? "ZODB.POSException.POSKeyError"
              : rc == ZE_READONLY ? "ZODB.POSException.ReadOnlyError"
              : rc == ZE_TXN ? "ZODB.POSException.StorageTransactionError"
                             : "ZODB.POSException.StorageError";
        payload = zv_tuple(a, 1);
        if (payload && !(payload->u.seq.items[0] = zv_cstr(a, err->msg)))
            payload = NULL;
        zsrv_log(ZSRV_LOG_INFO, "%s: vote failed: %s", c->peer, err->msg);
    }
    if (k || rc == ZE_CONFLICT || rc == ZE_READCONFLICT)
        c->stor->stats.conflicts++;
    /* The reply goes out after the drop: the msgid lives in the txn arena. */
    zv *msgid = c->txn.vote_msgid ? zv_copy(a, c->txn.vote_msgid) : NULL;
    zsrv_txn_drop(c);
    if (!payload || !msgid) {
        zsrv_conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    vote_answer(c, msgid, cls, payload);
}

void zsrv_vote_run(zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    zv_arena *a = zv_arena_new();
    if (!a) {
        zsrv_conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    store_vote_result res;
    memset(&res, 0, sizeof res);
    zerr err = {0};
    int rc = store_txn_vote(x->t, &res, &err);
    if (rc == 0)
        vote_ok(c, a, &res);
    else if (rc == ZE_CONFLICT && all_resolvable(&res))
        vote_conflicts(c, a, &res);
    else
        vote_failed(c, a, rc, &res, &err);
    zv_arena_free(a);
}

int zsrv_m_vote(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_txn *x = zsrv_txn_check(call, call->argv[0]);
    if (!x)
        return call->err.code;
    if (call->m->async)
        return zerr_set(&call->err, ZE_PROTO, "vote must be a synchronous call");
    switch (x->vote) {
    case VOTE_WAITING:
        return zerr_set(&call->err, ZE_TXN, "Already voting (waiting)");
    case VOTE_OK:
    case VOTE_FINISHING:
        return zerr_set(&call->err, ZE_TXN, "Already voting (locked)");
    default:
        break;
    }
    if (x->deferred.code) {
        /* Like every failed vote, this one aborts the transaction. */
        call->err = x->deferred;
        call->err_class = x->deferred_class;
        zsrv_txn_drop(c);
        return call->err.code;
    }
    if (!(x->vote_msgid = zv_copy(x->arena, call->m->msgid)))
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    zsrv_lock_request(c);
    return 0;
}
