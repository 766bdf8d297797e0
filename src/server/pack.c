/* pack.c: pack(t, wait), run on libuv's thread pool so the loop keeps
 * serving; the store packs concurrently with loads and commits. When it is
 * done every client of the storage gets info({length, size}). */
#include "server/server_int.h"

#include <stdlib.h>

typedef struct zsrv_pack {
    uv_work_t work;
    zsrv_storage *stor;
    zsrv_conn *conn;         /* waiting for the reply; NULL if not (or gone) */
    zv_arena *arena;
    zv *msgid;
    double when;
    int rc;
    zerr err;
    store_pack_stats stats;
    uint64_t t0;             /* the call's arrival (metrics), or 0 */
} zsrv_pack;

static void pack_work(uv_work_t *w)
{
    zsrv_pack *p = w->data;
    p->rc = store_pack(p->stor->st, p->when, p->stor->pack_gc, &p->stats, &p->err);
}

static void pack_done(uv_work_t *w, int status)
{
    zsrv_pack *p = w->data;
    zsrv_storage *st = p->stor;
    st->packing = NULL;
    zsrv__mx_reply(st, "pack", p->t0);
    if (p->rc == 0) {
        st->mx.packs++;
        zsrv__log(ZSRV_LOG_INFO, "storage %s packed: %llu records, %llu objects, %llu blobs removed",
                 st->name, (unsigned long long)p->stats.records_removed,
                 (unsigned long long)p->stats.objects_removed,
                 (unsigned long long)p->stats.blobs_removed);
        zsrv__storage_sync(st);
        for (zsrv_conn *c = st->conns; c; c = c->snext)
            zsrv__send_info(c);
    } else {
        zsrv__log(ZSRV_LOG_ERROR, "storage %s: pack failed: %s", st->name, p->err.msg);
    }
    if (p->conn) {
        if (p->rc == 0) {
            zv *none = zv_none(p->arena);
            if (none)
                zsrv__send_reply(p->conn, p->msgid, none);
        } else {
            zsrv__send_error_msg(p->conn, p->msgid, PROTO_EXC_STORAGE,
                                p->err.msg);
        }
    }
    zv_arena_free(p->arena);
    free(p);
}

void zsrv__pack_detach(zsrv_conn *c)
{
    zsrv_storage *st = c->stor;
    if (st && st->packing && st->packing->conn == c)
        st->packing->conn = NULL;
}

int zsrv__m_pack(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_storage *st = c->stor;
    double when;
    int rc;
    if ((rc = proto_arg_float(call->args, 0, &when, &call->err)) < 0)
        return rc;
    int wait = call->argc < 2 || zv_truthy(call->argv[1]);
    if (st->packing)
        return zerr_set(&call->err, ZE_BUSY, "Already packing");
    zsrv_pack *p = calloc(1, sizeof *p);
    if (!p || !(p->msgid = zsrv__keep_msgid(call, &p->arena))) {
        free(p);
        return call->err.code ? call->err.code : zerr_set(&call->err, ZE_NOMEM, "out of memory");
    }
    p->stor = st;
    p->when = when;
    p->conn = wait && !call->m->async ? c : NULL;
    p->work.data = p;
    if ((rc = uv_queue_work(c->srv->loop, &p->work, pack_work, pack_done)) < 0) {
        zv_arena_free(p->arena);
        free(p);
        return zerr_set(&call->err, ZE_IO, "cannot start the pack: %s", uv_strerror(rc));
    }
    st->packing = p;
    if (!p->conn)
        return zsrv__reply(call, zv_none(call->a));
    p->t0 = zsrv__mx_take(c);
    return 0;
}
