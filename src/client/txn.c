/* txn.c: the client side of the two-phase commit. */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"

void zcl__txn_reset(zcl_txn *t)
{
    t->open = 0;
    zbuf_reset(&t->data);
    t->nstored = 0;
    t->nresolved = 0;
}

void zcl__txn_free(zcl_txn *t)
{
    zbuf_free(&t->data);
    free(t->stored);
    free(t->resolved);
    memset(t, 0, sizeof *t);
}

int zcl_in_transaction(const zcl_client *c)
{
    return c->txn.open;
}

static zv *txn_id(zcl_client *c)
{
    return zv_int(c->tmp_arena, c->txn.id);
}

static int need_txn(zcl_client *c)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    if (!c->txn.open)
        return zerr_set(&c->err, ZE_TXN, "no transaction in progress");
    return 0;
}

int zcl_tpc_begin(zcl_client *c, const char *user, const char *description,
                  const zv *extension)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    if (c->txn.open)
        return zerr_set(&c->err, ZE_TXN, "a transaction is already in progress");
    zcl__txn_reset(&c->txn);
    c->txn.id = ++c->next_txn_id;
    zv_arena *a = c->tmp_arena;
    zv_arena_reset(a);
    user = user ? user : "";
    description = description ? description : "";
    zv *ext = extension ? zv_copy(a, extension) : zv_dict(a, 0);
    zv *args = zcl__args(c, 6, txn_id(c), zv_bytes(a, user, strlen(user)),
                         zv_bytes(a, description, strlen(description)), ext, zv_none(a),
                         zv_cstr(a, " "));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    int rc = zcl_call_async(c, "tpc_begin", args);
    if (rc == 0)
        c->txn.open = 1;
    return rc;
}

/* Remember a stored record so the cache can take it after tpc_finish. */
static int remember(zcl_txn *t, uint64_t oid, const void *data, size_t len, int cache)
{
    zcl_stored *room = zarray_room(t->stored, t->nstored, &t->cap, sizeof *room, 16);
    if (!room)
        return ZE_NOMEM;
    t->stored = room;
    zcl_stored *s = &t->stored[t->nstored];
    s->oid = oid;
    s->off = t->data.len;
    s->len = SIZE_MAX;
    if (cache && data) {
        if (zbuf_append(&t->data, data, len) < 0)
            return ZE_NOMEM;
        s->len = len;
    }
    t->nstored++;
    return 0;
}

int zcl__txn_store(zcl_client *c, const char *method, uint64_t oid, uint64_t serial,
                   const void *data, size_t len)
{
    int rc = need_txn(c);
    if (rc < 0)
        return rc;
    zv_arena *a = c->tmp_arena;
    zv_arena_reset(a);
    zv *args = data ? zcl__args(c, 4, zcl__tid(c, oid), zcl__tid(c, serial),
                                zv_bytes(a, data, len), txn_id(c))
                    : zcl__args(c, 3, zcl__tid(c, oid), zcl__tid(c, serial), txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    rc = remember(&c->txn, oid, data, len, c->cache != NULL);
    if (rc == 0)
        rc = zcl_call_async(c, method, args);
    return rc;
}

int zcl_store(zcl_client *c, uint64_t oid, uint64_t serial, const void *data, size_t len)
{
    return zcl__txn_store(c, "storea", oid, serial, data, len);
}

int zcl_delete_object(zcl_client *c, uint64_t oid, uint64_t serial)
{
    return zcl__txn_store(c, "deleteObject", oid, serial, NULL, 0);
}

int zcl_check_current(zcl_client *c, uint64_t oid, uint64_t serial)
{
    int rc = need_txn(c);
    if (rc < 0)
        return rc;
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 3, zcl__tid(c, oid), zcl__tid(c, serial), txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl_call_async(c, "checkCurrentSerialInTransaction", args);
}

int zcl_undo(zcl_client *c, const void *undo_id, size_t len)
{
    int rc = need_txn(c);
    if (rc < 0)
        return rc;
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zv_bytes(c->tmp_arena, undo_id, len), txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl_call_async(c, "undoa", args);
}

/* ---- vote ------------------------------------------------------------------ */

/* A conflict dict (vote list item or ConflictError payload) into out: 1, or
 * 0 when d is not one. */
static int parse_conflict(const zv *d, zcl_conflict *out)
{
    proto_conflict pc;
    int ok = proto_conflict_parse(d, &pc);
    *out = (zcl_conflict){.oid = pc.oid, .committed = pc.current, .serial = pc.sent,
                          .data = pc.data.p, .len = pc.data.len};
    return ok;
}

static int note_resolved(zcl_txn *t, uint64_t oid)
{
    uint64_t *r = zarray_room(t->resolved, t->nresolved, &t->rcap, sizeof *r, 8);
    if (!r)
        return ZE_NOMEM;
    t->resolved = r;
    t->resolved[t->nresolved++] = oid;
    return 0;
}

/* The vote's list: oids (resolved on the server) and conflict dicts. The
 * resolved oids add up over the votes of one transaction, as ZEO's client
 * keeps them: a server may list one in an earlier round only. */
static int parse_vote(zcl_client *c, const zv *v, zcl_vote_result *res, zerr *e)
{
    memset(res, 0, sizeof *res);
    if (!v || v->type == ZV_NONE)
        return 0;
    if (!zv_is_seq(v))
        return zerr_set(e, ZE_PROTO, "malformed vote reply");
    size_t n = v->u.seq.n;
    zcl_conflict *conf = zv_alloc(c->msg_arena, (n + 1) * sizeof *conf);
    if (!conf)
        return zerr_set(e, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const zv *item = v->u.seq.items[i];
        uint64_t oid;
        if (zv_get_u64be(item, &oid)) {
            if (note_resolved(&c->txn, oid) < 0)
                return zerr_set(e, ZE_NOMEM, "out of memory");
        } else if (parse_conflict(item, &conf[res->nconflicts])) {
            res->nconflicts++;
        } else {
            return zerr_set(e, ZE_PROTO, "malformed item in vote reply");
        }
    }
    res->conflicts = conf;
    res->resolved = c->txn.resolved;
    res->nresolved = c->txn.nresolved;
    if (res->nconflicts)
        return zerr_set(e, ZE_CONFLICT, "%zu write conflict(s)", res->nconflicts);
    return 0;
}

static void on_vote(zcl_client *c, zcl_pending *p, int status, const zv *result,
                    const zerr *err)
{
    zcl_vote_cb cb = (zcl_vote_cb)p->cb;
    zcl_vote_result res = {0};
    zcl_conflict one;
    zerr e;
    if (status == 0) {
        status = parse_vote(c, result, &res, &e);
        err = &e;
    } else if ((status == ZE_CONFLICT || status == ZE_READCONFLICT) &&
               parse_conflict(result, &one)) {
        res.conflicts = &one;
        res.nconflicts = 1;
    }
    cb(c, status, &res, err, p->data);
}

int zcl_tpc_vote(zcl_client *c, zcl_vote_cb cb, void *data)
{
    int rc = need_txn(c);
    if (rc < 0)
        return rc;
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 1, txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl__send_call(c, "vote", args, on_vote, (void *)cb, data, 0, 0);
}

/* ---- finish / abort ------------------------------------------------------------ */

static int was_resolved(const zcl_txn *t, uint64_t oid)
{
    for (size_t i = 0; i < t->nresolved; i++)
        if (t->resolved[i] == oid)
            return 1;
    return 0;
}

/* Our own commit: no invalidation comes for it, so the cache learns here.
 * The oids the vote listed (resolved in the server, or changed by an undo)
 * are dropped, as ZEO's client drops them: what the server wrote is not
 * what was sent, or was never sent. */
static void cache_commit(zcl_client *c, uint64_t tid)
{
    zcl_txn *t = &c->txn;
    for (size_t i = 0; i < t->nstored; i++)
        zcl__cache_invalidate(c->cache, t->stored[i].oid, tid);
    for (size_t i = 0; i < t->nresolved; i++)
        zcl__cache_invalidate(c->cache, t->resolved[i], tid);
    /* A later store of the same oid wins: walk backwards, keep the first. */
    for (size_t i = t->nstored; i-- > 0;) {
        zcl_stored *s = &t->stored[i];
        if (s->len == SIZE_MAX || was_resolved(t, s->oid))
            continue;
        /* Earlier stores of this oid find this one and are ignored. */
        zcl__cache_store(c->cache, s->oid, tid, 0, t->data.data + s->off, s->len);
    }
}

static void on_finish(zcl_client *c, zcl_pending *p, int status, const zv *result,
                      const zerr *err)
{
    zcl_tid_cb cb = (zcl_tid_cb)p->cb;
    uint64_t tid = 0;
    zerr e;
    if (status == 0 && !zv_get_u64be(result, &tid)) {
        status = zerr_set(&e, ZE_PROTO, "tpc_finish returned no tid");
        err = &e;
    }
    if (status == 0) {
        if (c->cache)
            cache_commit(c, tid);
        if (tid > c->last_tid)
            c->last_tid = tid;
    }
    if (c->txn.id == (int64_t)p->tid)
        zcl__txn_reset(&c->txn);
    if (cb)
        cb(c, status, tid, err, p->data);
}

int zcl_tpc_finish(zcl_client *c, zcl_tid_cb cb, void *data)
{
    int rc = need_txn(c);
    if (rc < 0)
        return rc;
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 1, txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl__send_call(c, "tpc_finish", args, on_finish, (void *)cb, data, 0,
                          (uint64_t)c->txn.id);
}

static void on_abort(zcl_client *c, zcl_pending *p, int status, const zv *result,
                     const zerr *err)
{
    zcl_done_cb cb = (zcl_done_cb)p->cb;
    if (cb)
        cb(c, status, p->data);
}

int zcl_tpc_abort(zcl_client *c, zcl_done_cb cb, void *data)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 1, txn_id(c));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    int rc = zcl__send_call(c, "tpc_abort", args, on_abort, (void *)cb, data, 0, 0);
    if (rc == 0)
        zcl__txn_reset(&c->txn);
    return rc;
}

/* ---- blocking forms ------------------------------------------------------------ */

typedef struct txn_wait {
    int done, status;
    uint64_t tid;
    zcl_conflict *conf;
    size_t nconf;
    zerr err;
} txn_wait;

static void copy_conflicts(txn_wait *w, const zcl_vote_result *res)
{
    if (!res || !res->nconflicts)
        return;
    w->conf = calloc(res->nconflicts, sizeof *w->conf);
    if (!w->conf)
        return;
    for (size_t i = 0; i < res->nconflicts; i++) {
        w->conf[i] = res->conflicts[i];
        w->conf[i].data = NULL;
        if (res->conflicts[i].data && (w->conf[i].data = malloc(res->conflicts[i].len + 1)))
            memcpy((uint8_t *)w->conf[i].data, res->conflicts[i].data, res->conflicts[i].len);
        else
            w->conf[i].len = 0;
    }
    w->nconf = res->nconflicts;
}

static void on_vote_sync(zcl_client *c, int status, const zcl_vote_result *res,
                         const zerr *err, void *data)
{
    txn_wait *w = data;
    w->done = 1;
    w->status = status < 0 ? zcl__err_copy(&w->err, err, status) : 0;
    copy_conflicts(w, res);
}

void zcl_conflicts_free(zcl_conflict *conf, size_t n)
{
    for (size_t i = 0; conf && i < n; i++)
        free((void *)conf[i].data);
    free(conf);
}

int zcl_tpc_vote_sync(zcl_client *c, zcl_conflict **conf, size_t *nconf, zerr *err)
{
    txn_wait w = {0};
    int rc = zcl_tpc_vote(c, on_vote_sync, &w);
    rc = zcl__sync_finish(c, rc, &w.done, &w.status, &w.err, err);
    if (conf) {
        *conf = w.conf;
        *nconf = w.nconf;
    } else {
        zcl_conflicts_free(w.conf, w.nconf);
    }
    return rc;
}

static void on_tid_sync(zcl_client *c, int status, uint64_t tid, const zerr *err, void *data)
{
    txn_wait *w = data;
    w->done = 1;
    w->tid = tid;
    w->status = status < 0 ? zcl__err_copy(&w->err, err, status) : 0;
}

int zcl_tpc_finish_sync(zcl_client *c, uint64_t *tid, zerr *err)
{
    txn_wait w = {0};
    int rc = zcl_tpc_finish(c, on_tid_sync, &w);
    rc = zcl__sync_finish(c, rc, &w.done, &w.status, &w.err, err);
    if (rc == 0 && tid)
        *tid = w.tid;
    return rc;
}

int zcl_tpc_abort_sync(zcl_client *c, zerr *err)
{
    zcl__done_wait w = {0, 0};
    int rc = zcl_tpc_abort(c, zcl__on_done_sync, &w);
    return zcl__sync_finish(c, rc, &w.done, &w.status, &c->err, err);
}
