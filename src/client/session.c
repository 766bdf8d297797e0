/* session.c: from a connected socket to a ready client (announcement,
 * register, cache verification, get_info), and the server's async calls. */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>

static void finish_connect(zcl_client *c, int status)
{
    zcl_done_cb cb = c->connect_cb;
    c->connect_cb = NULL;
    if (cb)
        cb(c, status, c->connect_data);
}

static void on_heartbeat(uv_timer_t *t)
{
    zcl_client *c = t->data;
    if (proto_encode_heartbeat(c->enc, &c->out, NULL) == 0)
        zcl__conn_want_flush(c);
}

static void on_info(zcl_client *c, zcl_pending *p, int status, const zv *result,
                    const zerr *err)
{
    if (status < 0) {
        if (c->link)
            zcl__conn_lost(c, status, err ? err->msg : "get_info failed");
        return;
    }
    zv_arena_reset(c->info_arena);
    c->info = result && result->type == ZV_DICT ? zv_copy(c->info_arena, result) : NULL;
    c->state = ZCL_ST_READY;
    c->ever_ready = 1;
    uv_timer_start(&c->heartbeat, on_heartbeat, 60000, 60000);
    finish_connect(c, 0);
}

static int send_get_info(zcl_client *c)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zv_tuple(c->tmp_arena, 0);
    if (!args)
        return ZE_NOMEM;
    return zcl__send_call(c, "get_info", args, on_info, NULL, NULL, 0, 0);
}

static void on_invalidations(zcl_client *c, zcl_pending *p, int status, const zv *result,
                             const zerr *err)
{
    if (status < 0) {
        if (c->link)
            zcl__conn_lost(c, status, err ? err->msg : "getInvalidations failed");
        return;
    }
    uint64_t tid;
    const zv *oids;
    if (result && zv_is_seq(result) && result->u.seq.n == 2 &&
        zv_get_u64be(result->u.seq.items[0], &tid) && zv_is_seq(result->u.seq.items[1])) {
        oids = result->u.seq.items[1];
        for (size_t i = 0; i < oids->u.seq.n; i++) {
            uint64_t oid;
            if (zv_get_u64be(oids->u.seq.items[i], &oid))
                zcl__cache_invalidate(c->cache, oid, 0);
        }
        if (tid > c->last_tid)
            c->last_tid = tid;
    } else {
        /* None (or anything false): too far behind to tell what changed. */
        zcl__cache_clear(c->cache);
    }
    int rc = send_get_info(c);
    if (rc < 0)
        zcl__conn_lost(c, rc, "cannot send get_info");
}

/* The cache is only as good as the last tid it saw; bring it up to the
 * server's before any load can be served from it. */
static int verify_cache(zcl_client *c)
{
    uint64_t ct = c->last_tid, st = c->register_tid;
    if (!c->cache || zcl__cache_is_empty(c->cache) || ct == 0 || ct == st) {
        if (st > c->last_tid)
            c->last_tid = st;
        return send_get_info(c);
    }
    if (ct > st)
        return zerr_set(&c->err, ZE_CORRUPT,
                        "server's last transaction %016llx is older than the client "
                        "cache's %016llx", (unsigned long long)st, (unsigned long long)ct);
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 1, zcl__tid(c, ct));
    if (!args)
        return ZE_NOMEM;
    return zcl__send_call(c, "getInvalidations", args, on_invalidations, NULL, NULL, 0, 0);
}

static int send_register(zcl_client *c, int read_only);

static void on_register(zcl_client *c, zcl_pending *p, int status, const zv *result,
                        const zerr *err)
{
    if (!c->link)
        return;
    int rc = status;
    if (status == ZE_READONLY && c->opts.read_only_fallback && !p->oid) {
        rc = send_register(c, 1);
    } else if (status == 0) {
        uint64_t tid = 0;
        if (result && result->type != ZV_NONE && !zv_get_u64be(result, &tid))
            rc = zerr_set(&c->err, ZE_PROTO, "register returned no tid");
        else {
            c->register_tid = tid;
            rc = verify_cache(c);
        }
    } else {
        zcl__err_copy(&c->err, err, status);
    }
    if (rc < 0)
        zcl__conn_lost(c, rc, c->err.msg);
}

/* p->oid of the pending call remembers that this is the read-only retry. */
static int send_register(zcl_client *c, int read_only)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zv_cstr(c->tmp_arena, c->opts.storage),
                         zv_bool(c->tmp_arena, read_only));
    if (!args)
        return ZE_NOMEM;
    return zcl__send_call(c, "register", args, on_register, NULL, NULL,
                          (uint64_t)(read_only && !c->opts.read_only), 0);
}

/* The announcement: an encoding letter and the version, which must be 5. */
static int on_announcement(zcl_client *c, const uint8_t *p, size_t len)
{
    if (len < 2 || (p[0] != 'Z' && p[0] != 'M') || p[1] < '5')
        return zerr_set(&c->err, ZE_PROTO, "server announced an unsupported protocol '%.*s'",
                        (int)(len > 16 ? 16 : len), (const char *)p);
    c->enc = c->opts.encoding ? (proto_enc)c->opts.encoding : (proto_enc)p[0];
    c->state = ZCL_ST_SESSION;
    c->reached.stage = ZCL_STAGE_SESSION;
    const char *reply = c->probe ? "ruok" : proto_announcement(c->enc);
    int rc = proto_frame_append(&c->out, reply, strlen(reply));
    if (rc < 0 || c->probe) {
        zcl__conn_want_flush(c);
        return rc;
    }
    return send_register(c, c->opts.read_only);
}

/* The probe's answer: JSON text, neither pickled nor msgpacked. */
static int on_probe_answer(zcl_client *c, const uint8_t *p, uint32_t len)
{
    free(c->probe_json);
    c->probe_json = malloc((size_t)len + 1);
    if (!c->probe_json)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    memcpy(c->probe_json, p, len);
    c->probe_json[len] = '\0';
    finish_connect(c, 0);
    zcl__conn_lost(c, ZE_CLOSED, "probe done");
    return 0;
}

/* A server call whose arguments proto refused is the server's error. */
int zcl__malformed(zcl_client *c, const char *name)
{
    char why[ZERR_MSG_MAX];
    memcpy(why, c->err.msg, sizeof why);
    return zerr_set(&c->err, ZE_PROTO, "malformed %s from server: %s", name, why);
}

static int on_invalidate_call(zcl_client *c, const zv *args)
{
    uint64_t tid;
    const zv *list;
    if (proto_args_count(args, 2, 2, &c->err) < 0 ||
        proto_arg_tid(args, 0, &tid, &c->err) < 0 || proto_arg_seq(args, 1, &list, &c->err) < 0)
        return zcl__malformed(c, "invalidateTransaction");
    uint64_t *oids = zv_alloc(c->msg_arena, (list->u.seq.n + 1) * sizeof *oids);
    if (!oids)
        return ZE_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < list->u.seq.n; i++) {
        if (!zv_get_u64be(list->u.seq.items[i], &oids[n]))
            return zerr_set(&c->err, ZE_PROTO, "malformed oid in invalidateTransaction");
        if (c->cache)
            zcl__cache_invalidate(c->cache, oids[n], tid);
        n++;
    }
    if (tid > c->last_tid)
        c->last_tid = tid;
    if (c->opts.on_invalidate)
        c->opts.on_invalidate(c, tid, oids, n, c->opts.cb_data);
    return 0;
}

/* info({'length': L, 'size': S}) after commits and packs: update the ints
 * of the get_info dict in place (no allocation, so no growth over a long
 * session). Keys get_info did not have are ignored. */
static int on_info_update(zcl_client *c, const zv *args)
{
    const zv *d;
    if (proto_args_count(args, 1, 1, &c->err) < 0 || proto_arg_dict(args, 0, &d, &c->err) < 0)
        return zcl__malformed(c, "info");
    for (size_t i = 0; c->info && i < d->u.seq.n; i++) {
        const zv *k = d->u.seq.items[2 * i], *v = d->u.seq.items[2 * i + 1];
        for (size_t j = 0; k->type == ZV_STR && j < c->info->u.seq.n; j++) {
            zv *ok = c->info->u.seq.items[2 * j], *ov = c->info->u.seq.items[2 * j + 1];
            if (ok->type == ZV_STR && ok->u.s.len == k->u.s.len &&
                !memcmp(ok->u.s.p, k->u.s.p, k->u.s.len) && ov->type == ZV_INT &&
                v->type == ZV_INT)
                ov->u.i = v->u.i;
        }
    }
    return 0;
}

/* Server -> client async calls (spec section 6.4). */
static int on_server_call(zcl_client *c, const proto_msg *m)
{
    if (!strcmp(m->name, "invalidateTransaction"))
        return on_invalidate_call(c, m->args);
    if (!strcmp(m->name, "info"))
        return on_info_update(c, m->args);
    if (!strncmp(m->name, "receiveBlob", 11))
        return zcl__blob_callback(c, m->name, m->args);
    return zerr_set(&c->err, ZE_PROTO, "unexpected call '%s' from server", m->name);
}

static int on_frame(zcl_client *c, const uint8_t *p, uint32_t len)
{
    if (c->state == ZCL_ST_HELLO)
        return on_announcement(c, p, len);
    if (c->probe)
        return on_probe_answer(c, p, len);
    proto_msg m;
    zv_arena_reset(c->msg_arena);
    int rc = proto_decode(c->enc, p, len, c->msg_arena, &m, &c->err);
    if (rc < 0)
        return rc;
    if (proto_is_heartbeat(&m))
        return 0;
    if (!strcmp(m.name, ".reply")) {
        zcl__on_reply(c, &m);
        return 0;
    }
    return on_server_call(c, &m);
}

int zcl__on_bytes(zcl_client *c, const uint8_t *p, size_t n)
{
    zcl_link *l = c->link;
    int rc = proto_framer_feed(&c->framer, p, n);
    while (rc == 0 && c->link == l) {
        const uint8_t *payload;
        uint32_t len;
        rc = proto_framer_next(&c->framer, &payload, &len);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return zerr_set(&c->err, rc, "bad frame from server (%s)", zerr_name(rc));
        rc = on_frame(c, payload, len);
    }
    return rc;
}

void zcl__on_transport_ready(zcl_client *c)
{
    c->state = ZCL_ST_HELLO;
    c->reached.stage = ZCL_STAGE_HELLO;
}

void zcl__session_ended(zcl_client *c, int status)
{
    finish_connect(c, status < 0 ? status : ZE_CLOSED);
}

int zcl_connect(zcl_client *c, zcl_done_cb cb, void *data)
{
    if (c->state != ZCL_ST_IDLE || c->freeing)
        return zerr_set(&c->err, ZE_INVAL, "already connected or connecting");
    uv_timer_stop(&c->retry);
    zerr_clear(&c->err);
    /* Set after the start: a failure inside it must not reach cb. */
    c->connect_cb = NULL;
    int rc = zcl__conn_start(c);
    if (rc < 0)
        return rc;
    c->connect_cb = cb;
    c->connect_data = data;
    return 0;
}

int zcl_connect_sync(zcl_client *c, zerr *err)
{
    zcl__done_wait w = {0, 0};
    int rc = zcl_connect(c, zcl__on_done_sync, &w);
    return zcl__sync_finish(c, rc, &w.done, &w.status, &c->err, err);
}
