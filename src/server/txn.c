/* txn.c: tpc_begin, the queued operations of a transaction (storea,
 * restorea, checkCurrentSerialInTransaction, deleteObject), tpc_abort, and
 * dropping a transaction when its connection goes away.
 *
 * tpc_begin's metadata is validated here as FileStorage requires (user,
 * description and extension at most 65,535 bytes, user and description
 * bytes, the extension a dict, status ' ' or 'p', a tid of 8 bytes), so no
 * client can write a record that another tool could not read back. An
 * explicit tid must also pass ztid_check_client against the clock and
 * max-future-tid: one far ahead would hand every later commit a tid ZODB
 * cannot load. */
#include "server/server_int.h"

#include <string.h>
#include <time.h>

#include "common/ztid.h"

zsrv_txn *zsrv__txn_check(zsrv_call *call, const zv *txn)
{
    zsrv_txn *x = &call->c->txn;
    if (x->active && zv_equal(x->id, txn))
        return x;
    if (proto_exc_txn_mismatch(&call->exc, call->a, x->active ? x->id : NULL, txn) < 0)
        zerr_set(&call->err, ZE_NOMEM, "out of memory");
    else
        zerr_set(&call->err, ZE_TXN, "transaction mismatch");
    return NULL;
}

zsrv_txn *zsrv__txn_open(zsrv_call *call, const zv *txn)
{
    zsrv_txn *x = zsrv__txn_check(call, txn);
    if (x && x->vote != ZSRV_VOTE_NONE && x->vote != ZSRV_VOTE_CONFLICT) {
        zerr_set(&call->err, ZE_TXN, "%s after the transaction was voted", call->m->name);
        return NULL;
    }
    return x;
}

static int check_meta(zsrv_call *call, zslice *user, zslice *desc, zslice *tidb, int *has_tid,
                      char *status)
{
    int rc;
    if ((rc = proto_arg_text(call->args, 1, user, &call->err)) < 0 ||
        (rc = proto_arg_text(call->args, 2, desc, &call->err)) < 0)
        return rc;
    /* The extension: a dict, or what TransactionMetaData also takes. */
    const zv *ext = call->argv[3];
    if (ext->type != ZV_NONE && ext->type != ZV_BYTES &&
        (rc = proto_arg_dict(call->args, 3, &ext, &call->err)) < 0)
        return rc;
    uint64_t tid;
    if ((rc = proto_arg_optional_tid(call->args, 4, &tid, has_tid, &call->err)) < 0)
        return rc;
    if (*has_tid) {
        tidb->p = call->argv[4]->u.s.p;
        tidb->len = 8;
    }
    *status = ' ';
    if (call->argc > 5) {
        zslice st;
        if ((rc = proto_arg_str(call->args, 5, &st, &call->err)) < 0)
            return rc;
        if (st.len != 1 || (st.p[0] != ' ' && st.p[0] != 'p'))
            return zerr_set(&call->err, ZE_INVAL, "tpc_begin: bad transaction status");
        *status = (char)st.p[0];
    }
    if (user->len > STORE_META_MAX || desc->len > STORE_META_MAX)
        return zerr_set(&call->err, ZE_TOOBIG, "tpc_begin: user or description over %d bytes",
                        STORE_META_MAX);
    return 0;
}

/* The extension as stored: a dict is pickled as ZODB does; bytes (what
 * TransactionMetaData also accepts) must already be such a pickle. */
static int extension_bytes(zsrv_call *call, const zv *ext, zbuf *out)
{
    if (ext->type != ZV_BYTES)
        return proto_extension_encode(ext, out, &call->err);
    zv *dict;
    if (proto_extension_decode(ext->u.s.p, ext->u.s.len, call->a, &dict, &call->err) < 0)
        return zerr_set(&call->err, ZE_INVAL, "tpc_begin: the extension is not a pickled dict");
    return zbuf_append(out, ext->u.s.p, ext->u.s.len);
}

/* The explicit tid a client sent: 0, or call->err set. */
static int check_tid(zsrv_call *call, uint64_t tid)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return ztid_check_client(tid, now, call->c->srv->cfg->max_future_tid, &call->err);
}

/* Begin the store transaction. A tid the store or check_tid refuses fails
 * a sync tpc_begin; an async one (as ClientStorage sends it) begins without
 * the tid and fails its vote with the reason, which the client then sees. */
static int begin(zsrv_call *call, store_txn_meta *meta)
{
    zsrv_txn *x = &call->c->txn;
    store *st = call->c->stor->st;
    int rc = meta->tid ? check_tid(call, meta->tid) : 0;
    if (rc == 0)
        rc = store_txn_begin(st, meta, &x->t, &call->err);
    if (rc != ZE_INVAL || !meta->tid || !call->m->async)
        return rc;
    zerr refused = call->err;
    meta->tid = 0;
    if ((rc = store_txn_begin(st, meta, &x->t, &call->err)) < 0)
        return rc;
    x->deferred = refused;
    zsrv__log(ZSRV_LOG_INFO, "%s: tpc_begin: %s (its transaction's vote will fail)",
              call->c->peer, refused.msg);
    return 0;
}

int zsrv__m_tpc_begin(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_txn *x = &c->txn;
    const zv *id = call->argv[0];
    if (c->read_only)
        return zerr_set(&call->err, ZE_READONLY, "read-only connection");
    if (x->active) {
        if (zv_equal(x->id, id))
            return 0;   /* a repeated tpc_begin is ignored, as ZEO does */
        return zerr_set(&call->err, ZE_TXN,
                        "Multiple simultaneous tpc_begin requests from one client.");
    }
    zslice user, desc, tidb = {0};
    int has_tid, rc;
    char status = ' ';
    if ((rc = check_meta(call, &user, &desc, &tidb, &has_tid, &status)) < 0)
        return rc;
    zbuf ext = ZBUF_INIT;
    if ((rc = extension_bytes(call, call->argv[3], &ext)) < 0)
        goto out;
    if (ext.len > STORE_META_MAX) {
        rc = zerr_set(&call->err, ZE_TOOBIG, "tpc_begin: extension over %d bytes",
                      STORE_META_MAX);
        goto out;
    }
    store_txn_meta meta = {
        .user = user.p, .user_len = user.len,
        .description = desc.p, .description_len = desc.len,
        .extension = ext.data, .extension_len = ext.len,
        .status = status, .tid = has_tid ? zbe64(tidb.p) : 0,
    };
    if (!(x->arena = zv_arena_new())) {
        rc = zerr_set(&call->err, ZE_NOMEM, "out of memory");
        goto out;
    }
    if (!(x->id = zsrv__keep(call, x->arena, id, "a transaction id"))) {
        rc = call->err.code;
        goto out;
    }
    if ((rc = begin(call, &meta)) < 0)
        goto out;
    x->active = 1;
    x->vote = ZSRV_VOTE_NONE;
    c->stor->active_txns++;
out:
    zbuf_free(&ext);
    if (rc < 0) {
        zv_arena_free(x->arena);
        memset(x, 0, sizeof *x);
    }
    return rc;
}

int zsrv__m_storea(zsrv_call *call)
{
    uint64_t oid, serial;
    zslice data;
    int rc;
    if ((rc = proto_args_store(call->args, &oid, &serial, &data, &call->err)) < 0)
        return rc;
    zsrv_txn *x = zsrv__txn_open(call, call->argv[3]);
    if (!x)
        return call->err.code;
    call->c->stor->stats.stores++;
    return store_txn_store(x->t, oid, serial, data.p, data.len, &call->err);
}

int zsrv__storea_fast(zsrv_conn *c, const uint8_t *p, size_t len)
{
    proto_storea_call sa;
    zsrv_txn *x = &c->txn;
    if (c->state != ZSRV_CONN_REGISTERED || !proto_decode_storea_call(c->enc, p, len, &sa) ||
        !sa.async || !x->active || x->id->type != ZV_INT || x->id->u.i != sa.txn ||
        (x->vote != ZSRV_VOTE_NONE && x->vote != ZSRV_VOTE_CONFLICT) ||
        store_txn_store(x->t, sa.oid, sa.serial, sa.data.p, sa.data.len, NULL) < 0)
        return 0;
    c->stor->stats.stores++;
    return 1;
}

int zsrv__m_restorea(zsrv_call *call)
{
    uint64_t oid, serial, prev = 0;
    zslice data = {0};
    int has_data, has_prev, rc;
    if ((rc = proto_args_oid_serial(call->args, &oid, &serial, &call->err)) < 0 ||
        (rc = proto_arg_optional_bytes(call->args, 2, &data, &has_data, &call->err)) < 0 ||
        (rc = proto_arg_optional_tid(call->args, 3, &prev, &has_prev, &call->err)) < 0)
        return rc;
    zsrv_txn *x = zsrv__txn_open(call, call->argv[4]);
    if (!x)
        return call->err.code;
    call->c->stor->stats.stores++;
    return store_txn_restore(x->t, oid, has_data ? data.p : NULL, data.len,
                             has_prev ? prev : 0, &call->err);
}

/* The (oid, serial, txn) arguments of checkCurrentSerialInTransaction and
 * deleteObject; NULL with call->err set when one is wrong. */
static zsrv_txn *oid_serial_txn(zsrv_call *call, uint64_t *oid, uint64_t *serial)
{
    if (proto_args_oid_serial(call->args, oid, serial, &call->err) < 0)
        return NULL;
    return zsrv__txn_open(call, call->argv[2]);
}

int zsrv__m_check_current(zsrv_call *call)
{
    uint64_t oid, serial;
    zsrv_txn *x = oid_serial_txn(call, &oid, &serial);
    if (!x)
        return call->err.code;
    return store_txn_check_current(x->t, oid, serial, &call->err);
}

int zsrv__m_delete_object(zsrv_call *call)
{
    uint64_t oid, serial;
    zsrv_txn *x = oid_serial_txn(call, &oid, &serial);
    if (!x)
        return call->err.code;
    call->c->stor->stats.stores++;
    return store_txn_delete(x->t, oid, serial, &call->err);
}

void zsrv__txn_drop(zsrv_conn *c)
{
    zsrv_txn *x = &c->txn;
    if (!x->active)
        return;
    zsrv_storage *st = c->stor;
    if (x->vote == ZSRV_VOTE_FINISHING) {
        /* The commit goes on without its client; the store owns the txn. */
        for (zsrv_commit *cm = st->inflight; cm; cm = cm->next)
            if (cm->conn == c)
                cm->conn = NULL;
    } else {
        if (x->vote == ZSRV_VOTE_RUNNING) {
            zsrv__vote_orphan(c);
        } else {   /* aborting never waits, not even on a network store */
            store_txn_abort(x->t);
            store_txn_free(x->t);
        }
        x->t = NULL;
        st->stats.aborts++;
        st->active_txns--;
    }
    zsrv__blob_upload_discard(c);
    /* Waiters may vote from here on: the transaction is gone for them. */
    zsrv__lock_release(c);
    zv_arena_free(x->arena);
    memset(x, 0, sizeof *x);
}

/* ZEO queues a transaction's calls unchecked, so a client that sent a bad
 * value and then aborts never notices; closing the connection instead would
 * break that client. The transaction's txn id is each such call's last
 * argument. */
int zsrv__txn_defer_error(zsrv_call *call, int rc)
{
    zsrv_txn *x = &call->c->txn;
    if ((rc != ZE_TYPE && rc != ZE_INVAL && rc != ZE_UNDO) || !x->active || call->argc == 0 ||
        !zv_equal(x->id, call->argv[call->argc - 1]) ||
        (x->vote != ZSRV_VOTE_NONE && x->vote != ZSRV_VOTE_CONFLICT))
        return 0;
    if (!x->deferred.code)
        x->deferred = call->err;
    zsrv__log(ZSRV_LOG_INFO, "%s: %s (its transaction's vote will fail)", call->c->peer,
             call->err.msg);
    return 1;
}

int zsrv__m_tpc_abort(zsrv_call *call)
{
    zsrv_txn *x = &call->c->txn;
    /* An unknown txn, or one already handed to the writer, is a no-op. */
    if (x->active && zv_equal(x->id, call->argv[0]) && x->vote != ZSRV_VOTE_FINISHING)
        zsrv__txn_drop(call->c);
    zv *none = zv_none(call->a);
    return none ? zsrv__reply(call, none) : zerr_set(&call->err, ZE_NOMEM, "out of memory");
}
