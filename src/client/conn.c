/* conn.c: the transport under a client: TCP or Unix socket, optional TLS,
 * batched writes, and the single place a connection is torn down. */
#define _GNU_SOURCE /* EAI_NODATA, EAI_ADDRFAMILY */
#include "client/client_int.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 65536

typedef struct write_req {
    uv_write_t req;
    zbuf buf;
    zcl_link *link;
} write_req;

static void link_free(zcl_link *l)
{
    if (l->ssl)
        SSL_free(l->ssl); /* frees both BIOs */
    free(l);
}

static void on_link_closed(uv_handle_t *h)
{
    link_free(h->data);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    zcl_link *l = w->link;
    zbuf_free(&w->buf);
    free(w);
    if (status < 0 && l->c)
        zcl__conn_lost(l->c, ZE_IO, uv_strerror(status));
}

/* Write buf's bytes; buf is left empty (its memory kept when everything
 * went out at once). A direct write first: when the socket takes it all, no
 * request, no allocation and no poller change are needed; the rest, if any,
 * is queued with libuv. */
static int link_write(zcl_link *l, zbuf *buf)
{
    size_t done = 0;
    if (uv_stream_get_write_queue_size(&l->h.stream) == 0) {
        uv_buf_t b = uv_buf_init((char *)buf->data, (unsigned)buf->len);
        int n = uv_try_write(&l->h.stream, &b, 1);
        if (n < 0 && n != UV_EAGAIN)
            return ZE_IO;
        done = n > 0 ? (size_t)n : 0;
    }
    if (done == buf->len) {
        zbuf_reset(buf);
        return 0;
    }
    write_req *w = malloc(sizeof *w);
    if (!w)
        return ZE_NOMEM;
    memmove(buf->data, buf->data + done, buf->len - done);
    buf->len -= done;
    w->buf = *buf;
    *buf = (zbuf)ZBUF_INIT;
    w->link = l;
    uv_buf_t b = uv_buf_init((char *)w->buf.data, (unsigned)w->buf.len);
    int rc = uv_write(&w->req, &l->h.stream, &b, 1, on_write);
    if (rc < 0) {
        zbuf_free(&w->buf);
        free(w);
        return ZE_IO;
    }
    return 0;
}

/* Ciphertext the TLS engine produced on its own (handshake, alerts). */
static int link_write_tls_output(zcl_link *l)
{
    zbuf out = ZBUF_INIT;
    int rc = zcl__tls_drain(l, &out);
    if (rc == 0 && out.len)
        rc = link_write(l, &out);
    zbuf_free(&out);
    return rc;
}

void zcl__conn_flush(zcl_client *c)
{
    zcl_link *l = c->link;
    if (!l || l->closing || !c->out.len)
        return;
    int rc;
    if (l->ssl) {
        zbuf enc = ZBUF_INIT;
        rc = zcl__tls_encrypt(l, c->out.data, c->out.len, &enc);
        if (rc == 0)
            rc = link_write(l, &enc);
        zbuf_free(&enc);
        zbuf_reset(&c->out);
    } else {
        rc = link_write(l, &c->out);
    }
    if (rc < 0)
        zcl__conn_lost(c, rc, "write failed");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static __thread char chunk[READ_CHUNK]; /* consumed before the callback returns */
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    zcl_link *l = s->data;
    zcl_client *c = l->c;
    if (!c || nread == 0)
        return;
    if (nread < 0) {
        zcl__conn_lost(c, ZE_CLOSED,
                       nread == UV_EOF ? "server closed the connection" : uv_strerror((int)nread));
        return;
    }
    int rc;
    if (l->ssl) {
        rc = zcl__tls_on_read(c, l, buf->base, (size_t)nread);
        if (rc == 0 && l->c)
            rc = link_write_tls_output(l);
    } else {
        rc = zcl__on_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
    }
    if (rc < 0 && l->c)
        zcl__conn_lost(c, rc, c->err.msg[0] ? c->err.msg : "bad data from server");
}

/* libuv's getaddrinfo codes back to the EAI_* ones, which gai_strerror and
 * Python's socket.gaierror word. */
static int eai_code(int uv_status)
{
    static const struct { int uv, eai; } map[] = {
        {UV_EAI_NONAME, EAI_NONAME}, {UV_EAI_AGAIN, EAI_AGAIN}, {UV_EAI_FAIL, EAI_FAIL},
        {UV_EAI_NODATA, EAI_NODATA}, {UV_EAI_FAMILY, EAI_FAMILY}, {UV_EAI_SERVICE, EAI_SERVICE},
        {UV_EAI_MEMORY, EAI_MEMORY}, {UV_EAI_ADDRFAMILY, EAI_ADDRFAMILY},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].uv == uv_status)
            return map[i].eai;
    return EAI_FAIL;
}

static void on_connected(uv_connect_t *req, int status)
{
    zcl_link *l = req->data;
    zcl_client *c = l->c;
    if (!c)
        return;
    if (status < 0) {
        char where[300], msg[400];
        zcl_addr_format(&c->addr, where, sizeof where);
        snprintf(msg, sizeof msg, "cannot connect to %s: %s", where, uv_strerror(status));
        c->reached.sys_err = -status;   /* libuv's codes are -errno */
        zcl__conn_lost(c, ZE_IO, msg);
        return;
    }
    c->reached.stage = l->ssl ? ZCL_STAGE_TLS : ZCL_STAGE_HELLO;
    if (c->addr.kind == ZCL_ADDR_TCP)
        uv_tcp_nodelay(&l->h.tcp, 1);
    if (uv_read_start(&l->h.stream, on_alloc, on_read) < 0) {
        zcl__conn_lost(c, ZE_IO, "cannot read from the socket");
        return;
    }
    if (!l->ssl) {
        zcl__on_transport_ready(c);
        return;
    }
    /* Kick off the TLS handshake: ClientHello goes out now. */
    int rc = zcl__tls_on_read(c, l, NULL, 0);
    if (rc == 0 && l->c)
        rc = link_write_tls_output(l);
    if (rc < 0 && l->c)
        zcl__conn_lost(c, rc, c->err.msg);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    zcl_link *l = req->data;
    zcl_client *c = l->c;
    l->resolving = 0;
    if (!c) {
        /* The link was given up while resolving: close its handle now. */
        uv_freeaddrinfo(res);
        uv_close(&l->h.handle, on_link_closed);
        return;
    }
    int rc = status;
    if (rc < 0)
        c->reached.sys_err = eai_code(rc);
    else
        c->reached.stage = ZCL_STAGE_CONNECT;
    if (rc == 0)
        rc = uv_tcp_connect(&l->connect_req, &l->h.tcp, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot connect to %s:%d: %s", c->addr.host, c->addr.port,
                 uv_strerror(rc));
        zcl__conn_lost(c, ZE_IO, msg);
    }
}

int zcl__conn_start(zcl_client *c)
{
    zcl_link *l = calloc(1, sizeof *l);
    if (!l)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    l->c = c;
    l->h.handle.data = l;
    l->connect_req.data = l;
    l->gai_req.data = l;
    int rc = c->addr.kind == ZCL_ADDR_TCP ? uv_tcp_init(c->loop, &l->h.tcp)
                                          : uv_pipe_init(c->loop, &l->h.pipe, 0);
    if (rc < 0) {
        free(l);
        return zerr_set(&c->err, ZE_IO, "socket: %s", uv_strerror(rc));
    }
    c->link = l;
    if (c->ssl_ctx && (rc = zcl__tls_attach(c, l)) < 0) {
        zcl__conn_lost(c, rc, c->err.msg);
        return rc;
    }
    c->state = ZCL_ST_CONNECTING;
    c->reached = (zcl_conn_fail){
        .stage = c->addr.kind == ZCL_ADDR_UNIX ? ZCL_STAGE_CONNECT : ZCL_STAGE_RESOLVE};
    if (c->addr.kind == ZCL_ADDR_UNIX) {
        uv_pipe_connect(&l->connect_req, &l->h.pipe, c->addr.path, on_connected);
        return 0;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", c->addr.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    rc = uv_getaddrinfo(c->loop, &l->gai_req, on_resolved, c->addr.host, port, &hints);
    if (rc < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot resolve %s: %s", c->addr.host, uv_strerror(rc));
        c->reached.sys_err = eai_code(rc);
        zcl__conn_lost(c, ZE_IO, msg);
        return ZE_IO;
    }
    l->resolving = 1; /* until on_resolved, which closes the handle if given up */
    return 0;
}

/* Detach the link from c and close its handle (or let on_resolved do it). */
static void link_drop(zcl_client *c)
{
    zcl_link *l = c->link;
    c->link = NULL;
    l->c = NULL;
    l->closing = 1;
    if (!l->resolving)
        uv_close(&l->h.handle, on_link_closed);
}

void zcl__conn_lost(zcl_client *c, int status, const char *why)
{
    if (!c->link)
        return;
    if (why && why != c->err.msg)
        zerr_set(&c->err, status, "%s", why);
    else if (!why)
        zerr_set(&c->err, status, "connection closed");
    int was_ready = c->state == ZCL_ST_READY;
    link_drop(c);
    uv_timer_stop(&c->heartbeat);
    c->state = ZCL_ST_IDLE;
    proto_framer_free(&c->framer);
    proto_framer_init(&c->framer, c->opts.max_frame);
    zbuf_reset(&c->out);
    zcl__blob_dl_abort(c);
    zcl__txn_reset(&c->txn);
    zcl__fail_pending(c, ZE_CLOSED, &c->err);
    zcl__session_ended(c, status);
    if (was_ready && c->opts.on_disconnect)
        c->opts.on_disconnect(c, status, c->opts.cb_data);
    zcl__schedule_retry(c);
}

static void on_flush_prep(uv_prepare_t *p)
{
    zcl_client *c = p->data;
    uv_prepare_stop(p);
    c->flush_armed = 0;
    zcl__conn_flush(c);
}

void zcl__conn_want_flush(zcl_client *c)
{
    if (c->flush_armed)
        return;
    c->flush_armed = 1;
    uv_prepare_start(&c->flush_prep, on_flush_prep);
}
