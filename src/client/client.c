/* client.c: creating and freeing a client, its timers, and the blocking
 * machinery the *_sync calls share. */
#include "client/client_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_TIMERS 4 /* flush_prep, heartbeat, retry, deadline */

void zcl_opts_init(zcl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->storage = "1";
}

static int dup_opt(const char *s, char **copy, const char **field)
{
    if (!s)
        return 0;
    *copy = strdup(s);
    if (!*copy)
        return ZE_NOMEM;
    *field = *copy;
    return 0;
}

static int copy_opts(zcl_client *c, const zcl_opts *o)
{
    c->opts = *o;
    if (!c->opts.storage)
        c->opts.storage = "1";
    if (!c->opts.max_frame)
        c->opts.max_frame = PROTO_DEFAULT_MAX_FRAME;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = 30000;
    if (dup_opt(c->opts.storage, &c->storage, &c->opts.storage) < 0 ||
        dup_opt(o->blob_dir, &c->blob_dir, &c->opts.blob_dir) < 0 ||
        dup_opt(o->tls_ca, &c->tls_ca, &c->opts.tls_ca) < 0 ||
        dup_opt(o->tls_cert, &c->tls_cert, &c->opts.tls_cert) < 0 ||
        dup_opt(o->tls_key, &c->tls_key, &c->opts.tls_key) < 0 ||
        dup_opt(o->tls_server_name, &c->tls_server_name, &c->opts.tls_server_name) < 0)
        return ZE_NOMEM;
    return 0;
}

static void release(zcl_client *c)
{
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    zcl__cache_free(c->cache);
    zcl__txn_free(&c->txn);
    zcl__pending_free(&c->pend);
    proto_framer_free(&c->framer);
    zbuf_free(&c->out);
    zv_arena_free(c->msg_arena);
    zv_arena_free(c->tmp_arena);
    zv_arena_free(c->info_arena);
    free(c->probe_json);
    free(c->storage);
    free(c->blob_dir);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_server_name);
    free(c);
}

static void on_retry(uv_timer_t *t)
{
    zcl_client *c = t->data;
    if (c->state == ZCL_ST_IDLE && zcl_connect(c, NULL, NULL) < 0)
        zcl__schedule_retry(c);
}

void zcl__schedule_retry(zcl_client *c)
{
    if (c->opts.reconnect_ms && c->ever_ready && !c->freeing && !c->no_retry)
        uv_timer_start(&c->retry, on_retry, c->opts.reconnect_ms, 0);
}

static void init_timer(zcl_client *c, uv_timer_t *t)
{
    uv_timer_init(c->loop, t);
    t->data = c;
    c->timers_open++;
}

int zcl_new(uv_loop_t *loop, const zcl_addr *addr, const zcl_opts *opts, zcl_client **out,
            zerr *err)
{
    zcl_opts defaults;
    if (!opts) {
        zcl_opts_init(&defaults);
        opts = &defaults;
    }
    zcl_client *c = calloc(1, sizeof *c);
    if (!c)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    c->addr = *addr;
    int rc = copy_opts(c, opts);
    if (rc == 0 && opts->tls)
        rc = zcl__tls_ctx_new(&c->opts, &c->ssl_ctx, err);
    c->msg_arena = zv_arena_new();
    c->tmp_arena = zv_arena_new();
    c->info_arena = zv_arena_new();
    if (rc == 0 && (!c->msg_arena || !c->tmp_arena || !c->info_arena))
        rc = ZE_NOMEM;
    if (rc == 0 && opts->cache_size && !(c->cache = zcl__cache_new(opts->cache_size)))
        rc = ZE_NOMEM;
    if (rc == 0 && !loop && uv_loop_init(&c->own_loop) < 0)
        rc = zerr_set(err, ZE_IO, "cannot create an event loop");
    if (rc < 0) {
        if (rc == ZE_NOMEM)
            zerr_set(err, rc, "out of memory");
        release(c);
        return rc;
    }
    c->owns_loop = !loop;
    c->loop = loop ? loop : &c->own_loop;
    proto_framer_init(&c->framer, c->opts.max_frame);
    c->enc = PROTO_PICKLE;
    uv_prepare_init(c->loop, &c->flush_prep);
    c->flush_prep.data = c;
    c->timers_open++;
    init_timer(c, &c->heartbeat);
    init_timer(c, &c->retry);
    init_timer(c, &c->deadline);
    *out = c;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    zcl_client *c = h->data;
    if (--c->timers_open == 0 && !c->owns_loop)
        release(c);
}

void zcl_free(zcl_client *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = 1;
    zcl_disconnect(c);
    uv_close((uv_handle_t *)&c->flush_prep, on_timer_closed);
    uv_close((uv_handle_t *)&c->heartbeat, on_timer_closed);
    uv_close((uv_handle_t *)&c->retry, on_timer_closed);
    uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
    if (!c->owns_loop)
        return; /* released by the last close callback */
    uv_run(&c->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->own_loop);
    release(c);
}

void zcl_disconnect(zcl_client *c)
{
    uv_timer_stop(&c->retry);
    c->no_retry = 1;
    zcl__conn_lost(c, ZE_CLOSED, "disconnected by the client");
    c->no_retry = 0;
}

void zcl_set_timeout(zcl_client *c, unsigned timeout_ms)
{
    c->opts.timeout_ms = timeout_ms;
}

int zcl_is_ready(const zcl_client *c)
{
    return c->state == ZCL_ST_READY;
}

uv_loop_t *zcl_loop(const zcl_client *c)
{
    return c->loop;
}

proto_enc zcl_encoding(const zcl_client *c)
{
    return c->enc;
}

uint64_t zcl_last_tid(const zcl_client *c)
{
    return c->last_tid;
}

const zv *zcl_info(const zcl_client *c)
{
    return c->info;
}

const zerr *zcl_last_error(const zcl_client *c)
{
    return &c->err;
}

static void on_deadline(uv_timer_t *t)
{
    zcl_client *c = t->data;
    c->timed_out = 1;
}

int zcl__wait(zcl_client *c, const int *done, zerr *err)
{
    c->timed_out = 0;
    if (c->opts.timeout_ms)
        uv_timer_start(&c->deadline, on_deadline, c->opts.timeout_ms, 0);
    while (!*done && !c->timed_out) {
        /* Nothing left that could answer: give up rather than spin. */
        if (uv_run(c->loop, UV_RUN_ONCE) == 0 && !*done && !c->link)
            break;
    }
    uv_timer_stop(&c->deadline);
    if (*done)
        return 0;
    /* What the system would have said had it given up first. */
    if (c->reached.stage == ZCL_STAGE_RESOLVE && !c->reached.sys_err)
        c->reached.sys_err = EAI_AGAIN;
    else if (c->reached.stage == ZCL_STAGE_CONNECT && !c->reached.sys_err)
        c->reached.sys_err = ETIMEDOUT;
    /* The reply may still come, but nobody waits for it: fail the call
     * (and everything else on this connection) now. */
    zcl__conn_lost(c, ZE_TIMEOUT, "timed out waiting for the server");
    return zerr_set(err, ZE_TIMEOUT, "timed out after %u ms waiting for the server",
                    c->opts.timeout_ms);
}

int zcl__sync_finish(zcl_client *c, int started, const int *done, const int *status,
                     const zerr *why, zerr *err)
{
    if (started < 0)
        return zcl__err_copy(err, &c->err, started);
    int rc = zcl__wait(c, done, err);
    if (rc < 0)
        return rc;
    return *status < 0 ? zcl__err_copy(err, why, *status) : 0;
}

void zcl__on_done_sync(zcl_client *c, int status, void *data)
{
    zcl__done_wait *w = data;
    (void)c;
    w->done = 1;
    w->status = status;
}

zv *zcl__tid(zcl_client *c, uint64_t v)
{
    return zv_oid(c->tmp_arena, v);
}

zv *zcl__args(zcl_client *c, size_t n, ...)
{
    zv *t = zv_tuple(c->tmp_arena, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        zv *v = va_arg(ap, zv *);
        if (t && !v)
            t = NULL;
        if (t)
            t->u.seq.items[i] = v;
    }
    va_end(ap);
    return t;
}

int zcl_ruok(const zcl_addr *addr, const zcl_opts *opts, unsigned timeout_ms, char **json,
             zcl_conn_fail *why, zerr *err)
{
    zcl_opts o;
    if (opts)
        o = *opts;
    else
        zcl_opts_init(&o);
    o.reconnect_ms = 0;
    o.cache_size = 0;
    o.timeout_ms = timeout_ms;
    zcl_client *c = NULL;
    int rc = zcl_new(NULL, addr, &o, &c, err);
    if (rc < 0)
        return rc;
    c->probe = 1;
    rc = zcl_connect_sync(c, err);
    if (rc == 0 && !c->probe_json)
        rc = zerr_set(err, ZE_PROTO, "no answer to ruok");
    if (rc == 0) {
        *json = c->probe_json;
        c->probe_json = NULL;
    }
    if (rc < 0 && why)
        *why = c->reached;
    zcl_free(c);
    return rc;
}

int zcl_open_sync(const char *addr, const zcl_opts *opts, zcl_client **out, zerr *err)
{
    zcl_addr a;
    int rc = zcl_addr_parse(addr, 1, &a, err);
    if (rc < 0)
        return rc;
    zcl_opts o = *opts;
    if (a.storage[0])
        o.storage = a.storage;
    zcl_client *c = NULL;
    if ((rc = zcl_new(NULL, &a, &o, &c, err)) < 0)
        return rc;
    if ((rc = zcl_connect_sync(c, err)) < 0) {
        zcl_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
