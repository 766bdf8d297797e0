/* read.c: registration and the read-only methods, served on the loop thread
 * from the storage's reader (refreshed after every durable commit), or on a
 * worker (zsrv__offload) as of the snapshot the call was dispatched at.
 *
 * A worker's reader may see transactions newer than that snapshot (the
 * call's visible tid), whose invalidations the client may not have been
 * sent when its reply's place was taken: the "as of" helpers below answer
 * as a reader of exactly that snapshot would, from any newer one. Records
 * are only ever added after a snapshot (pack aside), so bounding each read
 * by the tid gives what the snapshot held; the one thing a bound cannot
 * give back is an object deleted after it, which record_iternext (the
 * store skips deleted objects) then skips too. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"
#include "common/ztid.h"

static zv *tid_value(zv_arena *a, uint64_t tid)
{
    return zv_oid(a, tid);
}

static int nomem(zsrv_call *call)
{
    return zerr_set(&call->err, ZE_NOMEM, "out of memory");
}

int zsrv__m_register(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zslice name;
    int rc = proto_arg_str(call->args, 0, &name, &call->err);
    if (rc < 0)
        return rc;
    int read_only = call->argc > 1 && zv_truthy(call->argv[1]);
    zsrv_storage *st = zsrv__find_storage(c->srv, (const char *)name.p, name.len);
    if (!st)   /* a ValueError */
        return zerr_set(&call->err, ZE_INVAL, "unknown storage: %.*s", (int)name.len,
                        (const char *)name.p);
    if (!read_only && (c->srv->cfg->read_only || st->read_only))
        return zerr_set(&call->err, ZE_READONLY, "read-only storage");
    if (st->feed_state)   /* its data could be stale (feed.c) */
        return zerr_set(&call->err, ZE_IO, "storage %s is not served %s: %s", st->name,
                        st->feed_state == ZSRV_FEED_DEAD ? "any more" : "for now",
                        st->feed_msg);
    c->stor = st;
    c->read_only = read_only || c->srv->cfg->read_only || st->read_only;
    c->sprev = NULL;
    c->snext = st->conns;
    if (st->conns)
        st->conns->sprev = c;
    st->conns = c;
    st->n_conns++;
    c->state = ZSRV_CONN_REGISTERED;
    c->loop_reads = !st->offloop;
    zsrv__log(ZSRV_LOG_DEBUG, "%s: registered on storage %s%s", c->peer, st->name,
             c->read_only ? " (read-only)" : "");
    /* Registered first: every commit after the tid answered is invalidated. */
    if (zsrv__sync_needed(st, call))
        return zsrv__sync_reply(call);
    zv *tid = tid_value(call->a, st->visible);
    return tid ? zsrv__reply(call, tid) : nomem(call);
}

static zv *interfaces(zv_arena *a)
{
    static const char *const names[] = {
        "IBlobStorageRestoreable", "IBlobStorage", "IStorageRestoreable",
        "IStorageIteration", "IStorageUndoable", "IStorageCurrentRecordIteration",
        "IExternalGC", "IStorage",
    };
    size_t n = sizeof names / sizeof names[0];
    zv *t = zv_tuple(a, n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        zv *m = zv_cstr(a, "ZODB.interfaces"), *nm = zv_cstr(a, names[i]);
        if (!m || !nm || !(t->u.seq.items[i] = zv_tuple2(a, m, nm)))
            return NULL;
    }
    zv *m = zv_cstr(a, "zope.interface"), *nm = zv_cstr(a, "Interface");
    if (!m || !nm || !(t->u.seq.items[n] = zv_tuple2(a, m, nm)))
        return NULL;
    return t;
}

int zsrv__m_get_info(zsrv_call *call)
{
    zsrv_storage *st = call->c->stor;
    zv_arena *a = call->a;
    zv *d = zv_dict(a, 6);
    if (!d)
        return nomem(call);
    zv **it = d->u.seq.items;
    it[0] = zv_cstr(a, "length");
    it[1] = zv_int(a, (int64_t)store_object_count(st->st));
    it[2] = zv_cstr(a, "size");
    it[3] = zv_int(a, (int64_t)store_size_bytes(st->st));
    it[4] = zv_cstr(a, "name");
    /* ZEO gives the storage's getName(): a FileStorage's file, so here the
     * folder; a conninfo may hold a password, so a PostgreSQL storage is
     * named by its backend. */
    const zsrv_storage_cfg *sc = &call->c->srv->cfg->storages[st - call->c->srv->storages];
    it[5] = zv_cstr(a, sc->path ? sc->path : "PostgreSQL");
    it[6] = zv_cstr(a, "supportsUndo");
    it[7] = zv_bool(a, 1);
    it[8] = zv_cstr(a, "supports_record_iternext");
    it[9] = zv_bool(a, 1);
    it[10] = zv_cstr(a, "interfaces");
    it[11] = interfaces(a);
    for (int i = 0; i < 12; i++)
        if (!it[i])
            return nomem(call);
    return zsrv__reply(call, d);
}

int zsrv__m_last_transaction(zsrv_call *call)
{
    if (zsrv__sync_needed(call->st, call))
        return zsrv__sync_reply(call);
    zv *tid = tid_value(call->a, call->st->visible);
    return tid ? zsrv__reply(call, tid) : nomem(call);
}

/* ---- reads as of a snapshot ---------------------------------------------- */

/* rd sees exactly v (a reader never sees less than its call's snapshot). */
static int exact(store_reader *rd, uint64_t v)
{
    return store_reader_last_tid(rd) <= v;
}

/* loadBefore(oid, before) as a reader of snapshot v answers it. */
static int load_asof(store_reader *rd, uint64_t v, uint64_t oid, uint64_t before, zbuf *data,
                     uint64_t *start, uint64_t *end, zerr *err)
{
    if (exact(rd, v))
        return store_load_before(rd, oid, before, data, start, end, err);
    uint64_t bound = before > v + 1 ? v + 1 : before;
    int rc = store_load_before(rd, oid, bound, data, start, end, err);
    if (rc == 0 && *end > v)
        *end = 0;   /* its successor came after the snapshot */
    if (rc == ZE_NOREV && bound != v + 1) {
        /* None before `before`: but does the object exist by v? */
        zbuf tmp = ZBUF_INIT;
        uint64_t s2, e2;
        int r2 = store_load_before(rd, oid, v + 1, &tmp, &s2, &e2, err);
        zbuf_free(&tmp);
        if (r2 == ZE_NOREV)
            rc = ZE_NOTFOUND;
    } else if (rc == ZE_NOREV) {
        rc = ZE_NOTFOUND;   /* every revision came after the snapshot */
    }
    if (rc == ZE_NOTFOUND)
        zerr_set(err, ZE_NOTFOUND, "no object %016llx", (unsigned long long)oid);
    return rc;
}

/* The oid's current tid as of v (getTid): ZE_NOTFOUND as store_current_tid. */
static int current_asof(store_reader *rd, uint64_t v, uint64_t oid, uint64_t *tid, zerr *err)
{
    if (exact(rd, v))
        return store_current_tid(rd, oid, tid, err);
    zbuf data = ZBUF_INIT;
    uint64_t end;
    int rc = load_asof(rd, v, oid, v + 1, &data, tid, &end, err);
    zbuf_free(&data);
    return rc == ZE_NOREV ? ZE_NOTFOUND : rc;
}

/* Map a store read failure for oid onto the call. */
static int read_error(zsrv_call *call, int rc, uint64_t oid, zerr *err)
{
    if (rc == ZE_NOTFOUND)
        return zsrv__fail_poskey(call, oid);
    call->err = *err;
    return rc;
}

/* A larger zsrv.load_data is given back after use. */
#define LOAD_KEEP (1u << 20)

/* Answer loadBefore(oid, before) on c, unless async: the data goes from the
 * store into the server's scratch buffer and from there straight into the
 * reply frame (no values built, nothing allocated once the buffer has
 * grown). A store error (ZE_NOREV, ZE_NOTFOUND...) is returned with nothing
 * sent, and ZSRV_RETRY when the reply must wait for output memory (the call
 * changes nothing: it runs again later). */
static int answer_load(zsrv_conn *c, const zv *msgid, int async, uint64_t oid, uint64_t before,
                       zerr *err)
{
    zbuf *data = &c->srv->load_data;
    uint64_t start, end;
    int rc = store_load_before(c->stor->rd, oid, before, data, &start, &end, err);
    /* At most the data, two tids and the framing, and the msgid: a copy of
     * it takes more than its encoding. */
    size_t most = data->len + 64 + zv_copy_cost(msgid, SIZE_MAX - 1);
    if (rc == 0 && !async && zsrv__out_must_wait(c, most))
        rc = ZSRV_RETRY;
    else if (rc == 0 && !async && c->state != ZSRV_CONN_CLOSING) {
        zerr eerr;
        if (proto_encode_load_reply(c->enc, &c->out, msgid, data->data, data->len, start, end,
                                    &eerr) == 0) {
            zsrv__conn_mark_dirty(c);
        } else {
            /* As zsrv__send_reply answers a reply it cannot encode. */
            zsrv__log(ZSRV_LOG_ERROR, "%s: cannot encode a reply: %s", c->peer, eerr.msg);
            zsrv__send_error_msg(c, msgid, PROTO_EXC_VALUE, "Couldn't pickle response");
        }
    }
    if (data->cap > LOAD_KEEP)
        zbuf_free(data);
    return rc;
}

typedef struct load_ctx {
    uint64_t oid, before;
} load_ctx;

/* A loadBefore run off the loop: loaded as of its snapshot, its reply
 * encoded from the data as answer_load's is. */
static int load_job(zsrv_call *call, const load_ctx *x, zerr *err)
{
    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    int rc = load_asof(call->rd, call->visible, x->oid, x->before, &data, &start, &end, err);
    if (rc == 0 && !call->m->async &&
        zsrv__job_would_wait(call, data.len + 64 + zv_copy_cost(call->m->msgid, SIZE_MAX - 1)))
        rc = ZSRV_RETRY;
    else if (rc == 0 && !call->m->async) {
        zerr eerr;
        proto_exc e;
        if (proto_encode_load_reply(call->c->enc, zsrv__job_out(call), call->m->msgid,
                                    data.data, data.len, start, end, &eerr) < 0)
            zsrv__job_encode(call, NULL, proto_exc_msg(&e, call->a, PROTO_EXC_VALUE,
                                                       "Couldn't pickle response") < 0 ? NULL : &e);
    }
    zbuf_free(&data);
    return rc;
}

static int load_body(zsrv_call *call)
{
    const load_ctx *x = call->ctx;
    zerr err = {0};
    int rc = call->job ? load_job(call, x, &err)
                       : answer_load(call->c, call->m->msgid, call->m->async, x->oid, x->before,
                                     &err);
    if (rc == ZSRV_RETRY)
        return rc;
    if (rc == ZE_NOREV) {
        zv *none = zv_none(call->a);
        return none ? zsrv__reply(call, none) : nomem(call);
    }
    return rc < 0 ? read_error(call, rc, x->oid, &err) : 0;
}

static void count_load(zsrv_call *call, int rc)
{
    if (rc != ZSRV_RETRY)
        call->st->stats.loads++;
}

int zsrv__m_load_before(zsrv_call *call)
{
    load_ctx x;
    int rc;
    if ((rc = proto_arg_oid(call->args, 0, &x.oid, &call->err)) < 0 ||
        (rc = proto_arg_tid(call->args, 1, &x.before, &call->err)) < 0)
        return rc;
    return zsrv__offload(call, ZSRV_LANE_READ, load_body, count_load, &x, sizeof x);
}

int zsrv__load_fast(zsrv_conn *c, const uint8_t *p, size_t len)
{
    proto_load_call call;
    /* Registered on a storage read on the loop: its connections hold no
     * reply slot, so the reply goes to c->out. */
    if (!c->loop_reads || !proto_decode_load_call(c->enc, p, len, &call))
        return 0;
    int rc = answer_load(c, &call.msgid, 0, call.oid, call.before, NULL);
    if (rc < 0 || rc == ZSRV_RETRY)
        return rc < 0 ? 0 : rc;
    c->stor->stats.loads++;
    return 1;
}

static int load_serial_body(zsrv_call *call)
{
    uint64_t oid, serial;
    int rc;
    if ((rc = proto_args_oid_serial(call->args, &oid, &serial, &call->err)) < 0)
        return rc;
    zbuf data = ZBUF_INIT;
    zerr err = {0};
    rc = serial > call->visible ? ZE_NOTFOUND   /* committed after the snapshot */
                                : store_load_serial(call->rd, oid, serial, &data, &err);
    if (rc < 0) {
        zbuf_free(&data);
        return read_error(call, rc, oid, &err);
    }
    zv *v = zv_bytes(call->a, data.data, data.len);
    zbuf_free(&data);
    return v ? zsrv__reply(call, v) : nomem(call);
}

int zsrv__m_load_serial(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, load_serial_body, NULL, NULL, 0);
}

static int get_tid_body(zsrv_call *call)
{
    uint64_t oid, tid;
    zerr err = {0};
    int rc = proto_arg_oid(call->args, 0, &oid, &call->err);
    if (rc < 0)
        return rc;
    if ((rc = current_asof(call->rd, call->visible, oid, &tid, &err)) < 0)
        return read_error(call, rc, oid, &err);
    zv *v = tid_value(call->a, tid);
    return v ? zsrv__reply(call, v) : nomem(call);
}

int zsrv__m_get_tid(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, get_tid_body, NULL, NULL, 0);
}

static int new_oids_body(zsrv_call *call)
{
    int64_t n = *(const int64_t *)call->ctx;
    uint64_t oids[100];
    int rc;
    if ((rc = store_new_oids(call->st->st, (int)n, oids, &call->err)) < 0)
        return rc;
    zv *l = zv_list(call->a, (size_t)n);
    if (!l)
        return nomem(call);
    for (int64_t i = 0; i < n; i++)
        if (!(l->u.seq.items[i] = zv_oid(call->a, oids[i])))
            return nomem(call);
    return zsrv__reply(call, l);
}

int zsrv__m_new_oids(zsrv_call *call)
{
    int64_t n = 100;
    int rc;
    if ((rc = proto_arg_optional_int(call->args, 0, &n, &call->err)) < 0)
        return rc;
    if (call->c->read_only)
        return zerr_set(&call->err, ZE_READONLY, "read-only connection");
    n = n <= 0 ? 1 : n > 100 ? 100 : n;
    return zsrv__offload(call, ZSRV_LANE_WRITE, new_oids_body, NULL, &n, sizeof n);
}

int zsrv__m_new_oid(zsrv_call *call)
{
    /* Listed in ZEO's method table but not implemented there either. */
    zerr_set(&call->err, ZE_INVAL, "'ZEOStorage' object has no attribute 'new_oid'");
    return zsrv__fail_as(call, PROTO_EXC_ATTRIBUTE);
}

/* ---- history ----------------------------------------------------------- */

int zsrv__vec_push(zsrv_vec *v, zv *x)
{
    if (!x)
        return ZE_NOMEM;
    zv **items = zarray_room(v->items, v->n, &v->cap, sizeof *items, 16);
    if (!items)
        return ZE_NOMEM;
    v->items = items;
    v->items[v->n++] = x;
    return 0;
}

zv *zsrv__vec_list(zsrv_vec *v, zv_arena *a)
{
    zv *l = zv_list(a, v->n);
    if (l && v->n)
        memcpy(l->u.seq.items, v->items, v->n * sizeof(zv *));
    free(v->items);
    memset(v, 0, sizeof *v);
    return l;
}

/* The extension's keys come last: they win when the client decodes, as
 * ZODB merges them over the standard ones. */
zv *zsrv__txn_dict(zv_arena *a, const store_txn_info *info, const char *id_key, zv *id)
{
    zv *ext = NULL;
    zerr err = {0};
    if (info->extension.len &&
        proto_extension_decode(info->extension.p, info->extension.len, a, &ext, &err) < 0)
        ext = NULL;   /* unreadable extension: the standard keys still go out */
    size_t n_ext = ext && ext->type == ZV_DICT ? ext->u.seq.n : 0;
    zv *d = zv_dict(a, 5 + n_ext);
    if (!d || !id)
        return NULL;
    zv **it = d->u.seq.items;
    it[0] = zv_cstr(a, "time");
    it[1] = zv_float(a, ztid_time(info->tid));
    it[2] = zv_cstr(a, "user_name");
    it[3] = zv_bytes(a, info->user.p, info->user.len);
    it[4] = zv_cstr(a, "description");
    it[5] = zv_bytes(a, info->description.p, info->description.len);
    it[6] = zv_cstr(a, id_key);
    it[7] = id;
    it[8] = zv_cstr(a, "size");
    it[9] = zv_int(a, (int64_t)info->size);
    for (int i = 0; i < 10; i++)
        if (!it[i])
            return NULL;
    if (n_ext)
        memcpy(it + 10, ext->u.seq.items, 2 * n_ext * sizeof(zv *));
    return d;
}

typedef struct hist_ctx {
    zv_arena *a;
    zsrv_vec out;
    uint64_t visible;              /* revisions after it are not listed */
    size_t want, skipped;
} hist_ctx;

#define HIST_FULL 1

static int history_cb(const store_txn_info *info, void *ud)
{
    hist_ctx *h = ud;
    if (info->tid > h->visible) {
        h->skipped++;
        return 0;
    }
    int rc = zsrv__vec_push(&h->out, zsrv__txn_dict(h->a, info, "tid", zv_oid(h->a, info->tid)));
    return rc < 0 ? rc : h->out.n == h->want ? HIST_FULL : 0;
}

/* The newest `want` revisions as of the snapshot: the store is asked for
 * more as long as revisions after it took places. */
static int history_asof(zsrv_call *call, uint64_t oid, hist_ctx *h, zerr *err)
{
    size_t ask = h->want;
    for (;;) {
        int rc = store_history(call->rd, oid, (int)ask, history_cb, h, err);
        if (rc < 0 || rc == HIST_FULL || !h->skipped || h->out.n + h->skipped < ask)
            return rc < 0 ? rc : h->out.n || !h->skipped ? 0 : ZE_NOTFOUND;
        ask = h->want + h->skipped;
        h->out.n = 0;
        h->skipped = 0;
    }
}

static int history_body(zsrv_call *call)
{
    uint64_t oid;
    int64_t size = 1;
    int rc;
    if ((rc = proto_arg_oid(call->args, 0, &oid, &call->err)) < 0 ||
        (rc = proto_arg_optional_int(call->args, 1, &size, &call->err)) < 0)
        return rc;
    if (size < 1)
        size = 1;
    if (size > 1000000)
        size = 1000000;
    hist_ctx h = {.a = call->a, .visible = call->visible, .want = (size_t)size};
    zerr err = {0};
    rc = history_asof(call, oid, &h, &err);
    if (rc < 0) {
        free(h.out.items);
        return rc == ZE_NOMEM ? nomem(call) : read_error(call, rc, oid, &err);
    }
    zv *l = zsrv__vec_list(&h.out, call->a);
    return l ? zsrv__reply(call, l) : nomem(call);
}

int zsrv__m_history(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, history_body, NULL, NULL, 0);
}

/* record_iternext as of the snapshot: a record committed after it gives
 * way to the object's revision then, or to the next object. */
static int record_asof(zsrv_call *call, uint64_t from, uint64_t *oid, uint64_t *tid,
                       zbuf *data, uint64_t *next, int *has_next)
{
    for (;;) {
        int rc = store_record_iternext(call->rd, from, oid, tid, data, next, has_next,
                                       &call->err);
        if (rc <= 0 || *tid <= call->visible)
            return rc;
        uint64_t end;
        zerr err = {0};
        rc = load_asof(call->rd, call->visible, *oid, call->visible + 1, data, tid, &end, &err);
        if (rc == 0)
            return 1;
        if (rc != ZE_NOTFOUND && rc != ZE_NOREV) {
            call->err = err;
            return rc;
        }
        if (!*has_next)
            return 0;
        from = *next;
    }
}

static int record_iternext_body(zsrv_call *call)
{
    uint64_t from = 0, oid, tid, next;
    int present, has_next, rc;
    if ((rc = proto_arg_optional_tid(call->args, 0, &from, &present, &call->err)) < 0)
        return rc;
    zbuf data = ZBUF_INIT;
    rc = record_asof(call, from, &oid, &tid, &data, &next, &has_next);
    if (rc < 0) {
        zbuf_free(&data);
        return rc;
    }
    zv *res;
    if (rc == 0) {
        res = zv_none(call->a);
    } else if ((res = zv_tuple(call->a, 4))) {
        res->u.seq.items[0] = zv_oid(call->a, oid);
        res->u.seq.items[1] = zv_oid(call->a, tid);
        res->u.seq.items[2] = zv_bytes(call->a, data.data, data.len);
        res->u.seq.items[3] = has_next ? zv_oid(call->a, next) : zv_none(call->a);
        int ok = 1;
        for (int i = 0; i < 4; i++)
            ok &= res->u.seq.items[i] != NULL;
        if (!ok)
            res = NULL;
    }
    zbuf_free(&data);
    return res ? zsrv__reply(call, res) : nomem(call);
}

int zsrv__m_record_iternext(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, record_iternext_body, NULL, NULL, 0);
}

int zsrv__m_ping(zsrv_call *call)
{
    zv *none = zv_none(call->a);
    return none ? zsrv__reply(call, none) : nomem(call);
}

/* The label goes into every log line of the connection: cut, whatever was
 * sent. */
#define LABEL_MAX 200

int zsrv__m_set_client_label(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    const zv *v = call->argv[0];
    char *label = NULL;
    if (v->type == ZV_STR || v->type == ZV_BYTES)
        label = strndup((const char *)v->u.s.p, v->u.s.len > LABEL_MAX ? LABEL_MAX : v->u.s.len);
    else
        zv_repr_max(v, LABEL_MAX, &label);
    free(c->label);
    c->label = label;
    return zsrv__reply(call, zv_none(call->a));
}
