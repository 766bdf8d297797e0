/* load.c: loadBefore through the cache, and loadSerial. */
#include "client/client_int.h"

#include <string.h>

/* (data, start, end|None) -> rev; 0, or ZE_PROTO for another shape. */
static int parse_load(const zv *v, zcl_rev *rev)
{
    if (!v || !zv_is_seq(v) || v->u.seq.n != 3)
        return ZE_PROTO;
    const zv *data = v->u.seq.items[0], *end = v->u.seq.items[2];
    if (data->type != ZV_BYTES || !zv_get_u64be(v->u.seq.items[1], &rev->start))
        return ZE_PROTO;
    rev->data = data->u.s.p;
    rev->len = data->u.s.len;
    rev->end = 0;
    if (end->type != ZV_NONE && !zv_get_u64be(end, &rev->end))
        return ZE_PROTO;
    return 0;
}

static void on_load(zcl_client *c, zcl_pending *p, int status, const zv *result,
                    const zerr *err)
{
    zcl_load_cb cb = (zcl_load_cb)p->cb;
    zcl_rev rev = {0};
    zerr e;
    if (status == 0 && (!result || result->type == ZV_NONE)) {
        status = zerr_set(&e, ZE_NOREV, "no revision of %016llx before %016llx",
                          (unsigned long long)p->oid, (unsigned long long)p->tid);
        err = &e;
    } else if (status == 0 && parse_load(result, &rev) < 0) {
        status = zerr_set(&e, ZE_PROTO, "malformed loadBefore reply");
        err = &e;
    } else if (status == 0) {
        zcl__cache_store(c->cache, p->oid, rev.start, rev.end, rev.data, rev.len);
    }
    cb(c, status, status == 0 ? &rev : NULL, err, p->data);
}

int zcl_load_before(zcl_client *c, uint64_t oid, uint64_t before, zcl_rev *hit,
                    zcl_load_cb cb, void *data)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    if (c->cache && hit && zcl__cache_lookup(c->cache, oid, before, hit))
        return 1;
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zcl__tid(c, oid), zcl__tid(c, before));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl__send_call(c, "loadBefore", args, on_load, (void *)cb, data, oid, before);
}

static void on_prefetched(zcl_client *c, int status, const zcl_rev *rev, const zerr *err,
                          void *data)
{
    /* on_load has cached the result; errors just leave the cache as it was. */
}

int zcl_prefetch(zcl_client *c, const uint64_t *oids, size_t n, uint64_t before)
{
    if (!c->cache)
        return zerr_set(&c->err, ZE_INVAL, "prefetch needs a client cache");
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        zcl_rev hit;
        int rc = zcl_load_before(c, oids[i], before, &hit, on_prefetched, NULL);
        if (rc < 0)
            return rc;
        sent += rc == 0;
    }
    return sent;
}

typedef struct load_wait {
    int done, status;
    zbuf *data;
    uint64_t start, end;
    zerr err;
} load_wait;

static int take_rev(load_wait *w, const zcl_rev *rev)
{
    w->start = rev->start;
    w->end = rev->end;
    return zbuf_set(w->data, rev->data, rev->len);
}

static void on_load_sync(zcl_client *c, int status, const zcl_rev *rev, const zerr *err,
                         void *data)
{
    load_wait *w = data;
    w->done = 1;
    w->status = status == 0 ? take_rev(w, rev) : zcl__err_copy(&w->err, err, status);
}

int zcl_load_before_sync(zcl_client *c, uint64_t oid, uint64_t before, zbuf *data,
                         uint64_t *start, uint64_t *end, zerr *err)
{
    load_wait w = {.data = data};
    zcl_rev hit;
    int rc = zcl_load_before(c, oid, before, &hit, on_load_sync, &w);
    if (rc == 1) /* a cache hit: no call was made */
        rc = take_rev(&w, &hit);
    else
        rc = zcl__sync_finish(c, rc, &w.done, &w.status, &w.err, err);
    if (rc < 0)
        return rc;
    if (start)
        *start = w.start;
    if (end)
        *end = w.end;
    return 0;
}

int zcl_load_serial_sync(zcl_client *c, uint64_t oid, uint64_t serial, zbuf *data,
                         zerr *err)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zcl__tid(c, oid), zcl__tid(c, serial));
    zv *res = NULL;
    int rc = args ? zcl_call_sync(c, "loadSerial", args, a, &res, err) : ZE_NOMEM;
    if (rc == 0 && (!res || res->type != ZV_BYTES))
        rc = zerr_set(err, ZE_PROTO, "malformed loadSerial reply");
    if (rc == 0)
        rc = zbuf_set(data, res->u.s.p, res->u.s.len);
    zv_arena_free(a);
    return rc;
}
