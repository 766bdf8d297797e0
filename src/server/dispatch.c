/* dispatch.c: the method table, the per-state allowed set (spec section 2.4),
 * argument validation and the mapping of errors to replies.
 *
 * Every argument is checked for type and size here or in the handler before
 * anything reaches the store, so no request can leave a storage in a state
 * that hurts other clients. A failing sync call gets an error reply; a failing
 * async call closes the connection (spec section 6.3), except a bad argument
 * in a call of the open transaction, which fails that transaction's vote. */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BEFORE_REGISTER = 1, IN_TXN = 2 };

typedef struct method {
    const char *name;
    zsrv_handler fn;
    unsigned char min_args, max_args;
    unsigned char flags;
} method;

static const method methods[] = {
    {"register", zsrv_m_register, 1, 2, BEFORE_REGISTER},
    {"loadBefore", zsrv_m_load_before, 2, 2, 0},
    {"storea", zsrv_m_storea, 4, 4, IN_TXN},
    {"tpc_begin", zsrv_m_tpc_begin, 4, 6, 0},
    {"vote", zsrv_m_vote, 1, 1, 0},
    {"tpc_finish", zsrv_m_tpc_finish, 1, 1, 0},
    {"tpc_abort", zsrv_m_tpc_abort, 1, 1, 0},
    {"new_oids", zsrv_m_new_oids, 0, 1, 0},
    {"get_info", zsrv_m_get_info, 0, 0, 0},
    {"lastTransaction", zsrv_m_last_transaction, 0, 0, 0},
    {"getInvalidations", zsrv_m_get_invalidations, 1, 1, 0},
    {"loadSerial", zsrv_m_load_serial, 2, 2, 0},
    {"getTid", zsrv_m_get_tid, 1, 1, 0},
    {"new_oid", zsrv_m_new_oid, 0, 255, 0},
    {"checkCurrentSerialInTransaction", zsrv_m_check_current, 3, 3, IN_TXN},
    {"restorea", zsrv_m_restorea, 5, 5, IN_TXN},
    {"deleteObject", zsrv_m_delete_object, 3, 3, IN_TXN},
    {"history", zsrv_m_history, 1, 2, 0},
    {"record_iternext", zsrv_m_record_iternext, 0, 1, 0},
    {"undoLog", zsrv_m_undo_log, 0, 2, 0},
    {"undoInfo", zsrv_m_undo_info, 0, 3, 0},
    {"undoa", zsrv_m_undoa, 2, 2, IN_TXN},
    {"pack", zsrv_m_pack, 1, 2, 0},
    {"iterator_start", zsrv_m_iterator_start, 0, 2, 0},
    {"iterator_next", zsrv_m_iterator_next, 1, 1, 0},
    {"iterator_record_start", zsrv_m_iterator_record_start, 2, 2, 0},
    {"iterator_record_next", zsrv_m_iterator_record_next, 1, 1, 0},
    {"iterator_gc", zsrv_m_iterator_gc, 1, 1, 0},
    {"storeBlobStart", zsrv_m_store_blob_start, 0, 0, 0},
    {"storeBlobChunk", zsrv_m_store_blob_chunk, 1, 1, 0},
    {"storeBlobEnd", zsrv_m_store_blob_end, 4, 4, IN_TXN},
    {"storeBlobShared", zsrv_m_store_blob_shared, 5, 5, IN_TXN},
    {"sendBlob", zsrv_m_send_blob, 2, 2, 0},
    {"server_status", zsrv_m_server_status, 0, 0, 0},
    {"set_client_label", zsrv_m_set_client_label, 1, 1, 0},
    {"ping", zsrv_m_ping, 0, 0, 0},
};

static const method *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

/* ---- arguments --------------------------------------------------------- */

static int type_error(zsrv_call *call, size_t i, const char *want)
{
    char *repr = NULL;
    if (i < call->argc)
        zv_repr(call->argv[i], &repr);
    call->err_class = "builtins.TypeError";
    zerr_set(&call->err, ZE_INVAL, "%s: argument %zu must be %s, not %.60s", call->m->name, i + 1,
             want, repr ? repr : "nothing");
    free(repr);
    return ZE_INVAL;
}

static const zv *arg(zsrv_call *call, size_t i)
{
    return i < call->argc ? call->argv[i] : NULL;
}

int zsrv_arg_oid(zsrv_call *call, size_t i, uint64_t *out)
{
    const zv *v = arg(call, i);
    if (!v || !zv_get_u64be(v, out))
        return type_error(call, i, "8 bytes");
    return 0;
}

int zsrv_arg_serial(zsrv_call *call, size_t i, uint64_t *out)
{
    const zv *v = arg(call, i);
    /* ZODB's own tests store new objects with a serial of None, or the str
     * '\0' * 8, and ZEO's server takes both: None is z64, an 8-character
     * ASCII str its bytes. */
    if (v && v->type == ZV_NONE) {
        *out = 0;
        return 0;
    }
    if (v && v->type == ZV_STR && v->u.s.len == 8) {
        for (size_t k = 0; k < 8; k++)
            if (v->u.s.p[k] >= 0x80)
                return type_error(call, i, "8 bytes");
        *out = zbe64(v->u.s.p);
        return 0;
    }
    return zsrv_arg_oid(call, i, out);
}

int zsrv_arg_text(zsrv_call *call, size_t i, zslice *out)
{
    const zv *v = arg(call, i);
    if (!v || (v->type != ZV_BYTES && v->type != ZV_STR))
        return type_error(call, i, "bytes");
    out->p = v->u.s.p;
    out->len = v->u.s.len;
    return 0;
}

int zsrv_arg_tid_opt(zsrv_call *call, size_t i, uint64_t *out, int *present)
{
    const zv *v = arg(call, i);
    *present = 0;
    if (!v || v->type == ZV_NONE)
        return 0;
    if (!zv_get_u64be(v, out))
        return type_error(call, i, "8 bytes or None");
    *present = 1;
    return 0;
}

int zsrv_arg_bytes(zsrv_call *call, size_t i, zslice *out)
{
    const zv *v = arg(call, i);
    if (!v || v->type != ZV_BYTES)
        return type_error(call, i, "bytes");
    out->p = v->u.s.p;
    out->len = v->u.s.len;
    return 0;
}

int zsrv_arg_bytes_opt(zsrv_call *call, size_t i, zslice *out, int *present)
{
    const zv *v = arg(call, i);
    *present = 0;
    if (!v || v->type == ZV_NONE)
        return 0;
    *present = 1;
    return zsrv_arg_bytes(call, i, out);
}

int zsrv_arg_str(zsrv_call *call, size_t i, zslice *out)
{
    const zv *v = arg(call, i);
    if (!v || v->type != ZV_STR)
        return type_error(call, i, "str");
    out->p = v->u.s.p;
    out->len = v->u.s.len;
    return 0;
}

int zsrv_arg_int(zsrv_call *call, size_t i, int64_t *out)
{
    const zv *v = arg(call, i);
    if (!v || !zv_get_int(v, out))
        return type_error(call, i, "int");
    return 0;
}

int zsrv_arg_number(zsrv_call *call, size_t i, double *out)
{
    const zv *v = arg(call, i);
    int64_t n;
    if (v && v->type == ZV_FLOAT) {
        *out = v->u.f;
        return 0;
    }
    if (v && zv_get_int(v, &n)) {
        *out = (double)n;
        return 0;
    }
    return type_error(call, i, "a number");
}

int zsrv_fail_poskey(zsrv_call *call, uint64_t oid)
{
    zv *t = zv_tuple(call->a, 1);
    if (t && (t->u.seq.items[0] = zv_oid(call->a, oid)))
        call->err_payload = t;
    call->err_class = "ZODB.POSException.POSKeyError";
    return zerr_set(&call->err, ZE_NOTFOUND, "no object %016llx", (unsigned long long)oid);
}

int zsrv_reply(zsrv_call *call, const zv *result)
{
    if (!result)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    if (call->m->async)
        return 0;
    return zsrv_send_reply(call->c, call->m->msgid, result);
}

/* ---- errors ------------------------------------------------------------ */

static const char *class_for(int rc)
{
    switch (rc) {
    case ZE_NOTFOUND: return "ZODB.POSException.POSKeyError";
    case ZE_CONFLICT: return "ZODB.POSException.ConflictError";
    case ZE_READCONFLICT: return "ZODB.POSException.ReadConflictError";
    case ZE_UNDO: return "ZODB.POSException.UndoError";
    case ZE_READONLY: return "ZODB.POSException.ReadOnlyError";
    case ZE_TXN: return "ZODB.POSException.StorageTransactionError";
    case ZE_INVAL:
    case ZE_TOOBIG: return "builtins.ValueError";
    default: return "ZODB.POSException.StorageError";
    }
}

static void send_call_error(zsrv_call *call, int rc)
{
    const char *cls = call->err_class ? call->err_class : class_for(rc);
    zv *payload = call->err_payload;
    if (!payload) {
        /* ReadOnlyError() carries no args; the others carry the message. */
        payload = zv_tuple(call->a, rc == ZE_READONLY ? 0 : 1);
        if (payload && rc != ZE_READONLY &&
            !(payload->u.seq.items[0] = zv_cstr(call->a, call->err.msg)))
            payload = NULL;
    }
    if (rc != ZE_NOTFOUND && rc != ZE_CONFLICT && rc != ZE_READCONFLICT)
        zsrv_log(ZSRV_LOG_INFO, "%s: %s failed: %s: %s", call->c->peer, call->m->name, cls,
                 call->err.msg);
    if (!payload) {
        zsrv_conn_close(call->c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    zsrv_send_error(call->c, call->m->msgid, cls, payload);
}

/* ---- dispatch ---------------------------------------------------------- */

static int method_allowed(const zsrv_conn *c, const method *md)
{
    if (!md)
        return 0;
    if (c->state == CONN_UNREGISTERED)
        return (md->flags & BEFORE_REGISTER) != 0;
    return c->state == CONN_REGISTERED && !(md->flags & BEFORE_REGISTER);
}

void zsrv_dispatch(zsrv_conn *c, const uint8_t *p, size_t len)
{
    proto_msg m;
    zerr err = {0};
    char why[ZERR_MSG_MAX + 64];
    if (proto_decode(c->enc, p, len, c->arena, &m, &err) < 0) {
        snprintf(why, sizeof why, "undecodable message: %s", err.msg);
        zsrv_conn_close(c, ZSRV_LOG_WARNING, why);
        return;
    }
    if (proto_is_heartbeat(&m))
        return;
    const method *md = find_method(m.name);
    if (!method_allowed(c, md)) {
        snprintf(why, sizeof why, "Invalid method %.100s", m.name);
        zsrv_conn_close(c, ZSRV_LOG_WARNING, why);
        return;
    }
    if (!zv_is_seq(m.args)) {
        zsrv_conn_close(c, ZSRV_LOG_WARNING, "arguments are not a tuple");
        return;
    }
    zsrv_call call = {.c = c, .m = &m, .argv = m.args->u.seq.items, .argc = m.args->u.seq.n,
                      .a = c->arena};
    int rc;
    if (call.argc < md->min_args || call.argc > md->max_args) {
        call.err_class = "builtins.TypeError";
        rc = zerr_set(&call.err, ZE_INVAL, "%s takes %d to %d arguments, not %zu", md->name,
                      md->min_args, md->max_args, call.argc);
    } else {
        rc = md->fn(&call);
    }
    if (rc >= 0 || c->state == CONN_CLOSING)
        return;
    if (m.async) {
        if ((md->flags & IN_TXN) && rc == ZE_INVAL && zsrv_txn_defer_error(&call))
            return;
        snprintf(why, sizeof why, "async %s failed: %s", md->name, call.err.msg);
        zsrv_conn_close(c, ZSRV_LOG_WARNING, why);
        return;
    }
    send_call_error(&call, rc);
}
