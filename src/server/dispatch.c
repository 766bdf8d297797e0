/* dispatch.c: the method table, the per-state allowed set (spec section 2.4),
 * the argument count, and the error reply of a failed call.
 *
 * Every argument is checked for type and size, with proto's checks, here or
 * in the handler before anything reaches the store, so no request can leave
 * a storage in a state that hurts other clients. A failing sync call gets the
 * error reply proto builds (the handler's exception, else the one of its
 * error code); a failing
 * async call closes the connection (spec section 6.3), except a bad argument
 * in a call of the open transaction, which fails that transaction's vote. */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

/* RETRY: the call changes nothing before it replies, so a reply that must
 * wait for output memory can be dropped and the call run again later. */
enum { BEFORE_REGISTER = 1, IN_TXN = 2, RETRY = 4 };

typedef struct method {
    const char *name;
    zsrv_handler fn;
    unsigned char min_args, max_args;
    unsigned char flags;
} method;

static const method methods[] = {
    {"register", zsrv__m_register, 1, 2, BEFORE_REGISTER},
    {"loadBefore", zsrv__m_load_before, 2, 2, RETRY},
    {"storea", zsrv__m_storea, 4, 4, IN_TXN},
    {"tpc_begin", zsrv__m_tpc_begin, 4, 6, 0},
    {"vote", zsrv__m_vote, 1, 1, 0},
    {"tpc_finish", zsrv__m_tpc_finish, 1, 1, 0},
    {"tpc_abort", zsrv__m_tpc_abort, 1, 1, 0},
    {"new_oids", zsrv__m_new_oids, 0, 1, 0},
    {"get_info", zsrv__m_get_info, 0, 0, RETRY},
    {"lastTransaction", zsrv__m_last_transaction, 0, 0, RETRY},
    {"getInvalidations", zsrv__m_get_invalidations, 1, 1, RETRY},
    {"loadSerial", zsrv__m_load_serial, 2, 2, RETRY},
    {"getTid", zsrv__m_get_tid, 1, 1, RETRY},
    {"new_oid", zsrv__m_new_oid, 0, 255, 0},
    {"checkCurrentSerialInTransaction", zsrv__m_check_current, 3, 3, IN_TXN},
    {"restorea", zsrv__m_restorea, 5, 5, IN_TXN},
    {"deleteObject", zsrv__m_delete_object, 3, 3, IN_TXN},
    {"history", zsrv__m_history, 1, 2, RETRY},
    {"record_iternext", zsrv__m_record_iternext, 0, 1, RETRY},
    {"undoLog", zsrv__m_undo_log, 0, 2, RETRY},
    {"undoInfo", zsrv__m_undo_info, 0, 3, RETRY},
    {"undoa", zsrv__m_undoa, 2, 2, IN_TXN},
    {"pack", zsrv__m_pack, 1, 2, 0},
    {"iterator_start", zsrv__m_iterator_start, 0, 2, 0},
    {"iterator_next", zsrv__m_iterator_next, 1, 1, 0},
    {"iterator_record_start", zsrv__m_iterator_record_start, 2, 2, 0},
    {"iterator_record_next", zsrv__m_iterator_record_next, 1, 1, 0},
    {"iterator_gc", zsrv__m_iterator_gc, 1, 1, 0},
    {"storeBlobStart", zsrv__m_store_blob_start, 0, 0, 0},
    {"storeBlobChunk", zsrv__m_store_blob_chunk, 1, 1, 0},
    {"storeBlobEnd", zsrv__m_store_blob_end, 4, 4, IN_TXN},
    {"storeBlobShared", zsrv__m_store_blob_shared, 5, 5, IN_TXN},
    {"sendBlob", zsrv__m_send_blob, 2, 2, 0},
    {"server_status", zsrv__m_server_status, 0, 0, RETRY},
    {"zeolite_memory", zsrv__m_memory_status, 0, 0, RETRY},
    {"set_client_label", zsrv__m_set_client_label, 1, 1, 0},
    {"ping", zsrv__m_ping, 0, 0, RETRY},
};

static const method *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

size_t zsrv__method_count(void)
{
    return sizeof methods / sizeof methods[0];
}

const char *zsrv__method_name(size_t i)
{
    return methods[i].name;
}

/* ---- replies and errors ------------------------------------------------ */

int zsrv__fail_poskey(zsrv_call *call, uint64_t oid)
{
    if (proto_exc_poskey(&call->exc, call->a, oid) < 0)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return zerr_set(&call->err, ZE_NOTFOUND, "no object %016llx", (unsigned long long)oid);
}

int zsrv__fail_as(zsrv_call *call, const char *class_path)
{
    if (proto_exc_msg(&call->exc, call->a, class_path, call->err.msg) < 0)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return call->err.code;
}

/* What is kept of a request lives as long as its connection's session;
 * with the decoding's bound it keeps a request within 8 bytes a byte and
 * 1 MiB (proto.h). */
zv *zsrv__keep(zsrv_call *call, zv_arena *a, const zv *v, const char *what)
{
    size_t cost = zv_copy_cost(v, ZSRV_KEEP_MAX);
    if (cost > ZSRV_KEEP_MAX) {
        zerr_set(&call->err, ZE_TOOBIG, "%s of more than %u bytes cannot be kept for a later "
                 "reply", what, ZSRV_KEEP_MAX);
        return NULL;
    }
    size_t before = zv_arena_bytes(a);
    zv *copy = zv_copy(a, v);
    if (!copy)
        zerr_set(&call->err, ZE_NOMEM, "out of memory");
    call->kept += zv_arena_bytes(a) - before;
    return copy;
}

zv *zsrv__keep_msgid(zsrv_call *call, zv_arena **arena)
{
    zv *msgid = NULL;
    if (!(*arena = zv_arena_new()))
        zerr_set(&call->err, ZE_NOMEM, "out of memory");
    else
        msgid = zsrv__keep(call, *arena, call->m->msgid, "a message id");
    if (!msgid) {
        zv_arena_free(*arena);
        *arena = NULL;
    }
    return msgid;
}

int zsrv__reply(zsrv_call *call, const zv *result)
{
    if (!result)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    if (call->m->async)
        return 0;
    if (call->job)
        return zsrv__job_encode(call, result, NULL);
    size_t size;
    if (call->retry && proto_reply_size(call->c->enc, call->m->msgid, result, &size, NULL) == 0 &&
        zsrv__out_must_wait(call->c, size))
        return ZSRV_RETRY;
    return zsrv__send_reply(call->c, call->m->msgid, result);
}

/* The handler's exception, or the one its error code is reported as. */
void zsrv__call_error(zsrv_call *call, int rc)
{
    proto_exc e = call->exc;
    call->err.code = rc;
    int built = e.class_path ? 0 : proto_exc_from_err(&e, call->a, &call->err);
    if (rc != ZE_NOTFOUND && rc != ZE_CONFLICT && rc != ZE_READCONFLICT)
        zsrv__log(ZSRV_LOG_INFO, "%s: %s failed: %s: %s", call->c->peer, call->m->name,
                 e.class_path ? e.class_path : proto_exc_class(rc), call->err.msg);
    if (built < 0 && !call->job) {
        zsrv__conn_close(call->c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    if (call->job)
        zsrv__job_encode(call, NULL, built < 0 ? NULL : &e);
    else
        zsrv__send_error(call->c, call->m->msgid, &e);
}

/* ---- dispatch ---------------------------------------------------------- */

static int method_allowed(const zsrv_conn *c, const method *md)
{
    if (!md)
        return 0;
    if (c->state == ZSRV_CONN_UNREGISTERED)
        return (md->flags & BEFORE_REGISTER) != 0;
    return c->state == ZSRV_CONN_REGISTERED && !(md->flags & BEFORE_REGISTER);
}

/* Decode and check a frame: a method to run, or the connection closed. */
static const method *decode_call(zsrv_conn *c, const uint8_t *p, size_t len, proto_msg *m)
{
    zerr err = {0};
    char why[ZERR_MSG_MAX + 64];
    if (proto_decode(c->enc, p, len, c->arena, m, &err) < 0) {
        snprintf(why, sizeof why, "undecodable message: %s", err.msg);
        zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
        return NULL;
    }
    if (proto_is_heartbeat(m))
        return NULL;
    const method *md = find_method(m->name);
    if (!method_allowed(c, md)) {
        snprintf(why, sizeof why, "Invalid method %.100s", m->name);
        zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
        return NULL;
    }
    if (!zv_is_seq(m->args)) {
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "arguments are not a tuple");
        return NULL;
    }
    return md;
}

int zsrv__dispatch(zsrv_conn *c, const uint8_t *p, size_t len)
{
    uint64_t t0 = zsrv__mx_clock(c->srv);
    /* The call sent most, answered without building its values. */
    int fast = zsrv__load_fast(c, p, len);
    if (fast == ZSRV_RETRY)
        return ZSRV_RETRY;
    if (fast) {
        if (t0)
            zsrv__mx_call(c->stor, (size_t)(find_method("loadBefore") - methods), t0);
        return 0;
    }
    /* Most of a big transaction, stored without its values. */
    if (zsrv__storea_fast(c, p, len)) {
        if (t0)
            zsrv__mx_call(c->stor, (size_t)(find_method("storea") - methods), t0);
        return 0;
    }
    proto_msg m;
    char why[ZERR_MSG_MAX + 64];
    const method *md = decode_call(c, p, len, &m);
    size_t decoded = zv_arena_bytes(c->arena);
    if (!md) {
        zsrv__note_decoded(c->srv, len, decoded);
        return 0;
    }
    zsrv_call call = {.c = c, .m = &m, .args = m.args, .argv = m.args->u.seq.items,
                      .argc = m.args->u.seq.n, .a = c->arena,
                      .retry = (md->flags & RETRY) && !m.async, .st = c->stor,
                      .method = (size_t)(md - methods)};
    int rc = proto_args_count(m.args, md->min_args, md->max_args, &call.err);
    c->call_t0 = t0;
    if (rc == 0)
        rc = md->fn(&call);
    zsrv__note_decoded(c->srv, len, decoded + call.kept);
    /* A handler that answers later (vote, tpc_finish) took the time along;
     * a call that runs again later is timed then. */
    uint64_t t = zsrv__mx_take(c);
    if (rc != ZSRV_RETRY)
        zsrv__mx_call(c->stor, (size_t)(md - methods), t);
    if (rc >= 0 || c->state == ZSRV_CONN_CLOSING)
        return rc == ZSRV_RETRY ? ZSRV_RETRY : 0;
    if (m.async) {
        if ((md->flags & IN_TXN) && zsrv__txn_defer_error(&call, rc))
            return 0;
        snprintf(why, sizeof why, "async %s failed: %s", md->name, call.err.msg);
        zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
        return 0;
    }
    zsrv__call_error(&call, rc);
    return 0;
}
