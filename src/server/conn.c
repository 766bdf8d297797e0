/* conn.c: one client connection: accept, the handshake of spec section 2.4,
 * framing with bounded input and output, flushing, closing.
 *
 * Input is processed frame by frame; a connection stops reading while its
 * queued output is over ZSRV_OUT_HIGH or a sendBlob is streaming, while its
 * next frame waits for request memory, or while the output of every
 * connection is over output-memory and it holds a share of it (budget.c),
 * so neither direction can grow without bound. Output is collected in
 * c->out and written once per loop iteration (zsrv__flush_dirty, from a
 * uv_check handle), which batches many replies into one write; the replies
 * to what a connection sent go out at the end of its read. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

static void conn_pump(zsrv_conn *c);

static void process_frames(zsrv_conn *c);
static void conn_flush(zsrv_conn *c);

static int conn_paused(const zsrv_conn *c)
{
    /* One test for the flags: this runs for every frame. */
    return c->blob_out || (c->close_after_flush | c->in_link.queued | c->jobs_hold) ||
           zsrv__out_paused(c);
}

/* ---- freeing ----------------------------------------------------------- */

static void conn_free(zsrv_conn *c)
{
    proto_framer_free(&c->fr);
    zv_arena_free(c->arena);
    zbuf_free(&c->out);
    zbuf_free(&c->wbuf);
    zbuf_free(&c->tls_out);
    zbuf_free(&c->deferred);
    zsrv__tls_free(c->tls);
    free(c->label);
    free(c);
}

/* A connection is freed once its handles are closed and its jobs ended. */
static void handle_closed(uv_handle_t *h)
{
    zsrv_conn *c = h->data;
    if (--c->open_handles == 0 && !c->n_jobs)
        conn_free(c);
}

void zsrv__conn_job_end(zsrv_conn *c)
{
    if (c->state == ZSRV_CONN_CLOSING) {
        if (!c->n_jobs && !c->open_handles)
            conn_free(c);
        return;
    }
    /* What paused it (a call waiting for a job, ZSRV_JOBS_MAX, a sendBlob
     * whose file could not be opened) may be gone. */
    c->job_wait = 0;
    zsrv__jobs_hold(c);
    if (!c->reading)
        zsrv__conn_resume(c);
}

static void unlink_dirty(zsrv_conn *c)
{
    if (!c->dirty)
        return;
    for (zsrv_conn **pp = &c->srv->dirty; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == c) {
            *pp = c->dirty_next;
            break;
        }
    }
    c->dirty = 0;
}

/* Everything the connection holds in the storage: transaction, lock,
 * registration, iterators, blob files. */
static void release_session(zsrv_conn *c)
{
    zsrv__txn_drop(c);
    zsrv__pack_detach(c);
    zsrv_storage *st = c->stor;
    zsrv__slots_free(c);
    zsrv__jobs_parked_free(c);
    c->loop_reads = 0;
    if (st) {
        if (c->deferred.len)
            st->n_deferred--;
        if (c->sprev)
            c->sprev->snext = c->snext;
        else
            st->conns = c->snext;
        if (c->snext)
            c->snext->sprev = c->sprev;
        st->n_conns--;
        c->stor = NULL;
    }
    zsrv__iters_free(c);
    zsrv__blob_upload_discard(c);
    zsrv__blob_out_free(c);
}

void zsrv__conn_close(zsrv_conn *c, int level, const char *why)
{
    if (c->state == ZSRV_CONN_CLOSING)
        return;
    zsrv__log(level, "%s%s%s: closing: %s", c->peer, c->label ? " " : "",
             c->label ? c->label : "", why);
    zsrv__budget_forget(c);
    c->state = ZSRV_CONN_CLOSING;
    release_session(c);
    unlink_dirty(c);
    zsrv *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close(&c->h.handle, handle_closed);
}

/* ---- output ------------------------------------------------------------ */

void zsrv__conn_mark_dirty(zsrv_conn *c)
{
    zsrv__out_update(c);
    if (c->dirty || c->state == ZSRV_CONN_CLOSING)
        return;
    c->dirty = 1;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

/* Connections that waited for memory are taken up here too, after the
 * writes that freed it, never from inside another connection's call. */
void zsrv__flush_dirty(zsrv *s)
{
    do {
        while (s->dirty) {
            zsrv_conn *c = s->dirty;
            s->dirty = c->dirty_next;
            c->dirty = 0;
            conn_flush(c);
        }
    } while (zsrv__budget_wake(s));
}

/* b's bytes are all out: a large reply or a blob download leaves a large
 * buffer behind, give it back. */
static void output_done(zbuf *b)
{
    if (b->cap > ZSRV_OUT_KEEP)
        zbuf_free(b);
    zbuf_reset(b);
}

static void on_write(uv_write_t *req, int status)
{
    zsrv_conn *c = req->data;
    c->writing = 0;
    if (c->state == ZSRV_CONN_CLOSING)
        return;
    if (status < 0) {
        zsrv__conn_close(c, ZSRV_LOG_INFO, uv_strerror(status));
        return;
    }
    output_done(&c->wbuf);
    zsrv__out_update(c);
    conn_pump(c);
    if (c->state != ZSRV_CONN_CLOSING)
        conn_flush(c);
}

/* The queued output goes to the socket directly first: when it takes it
 * all, as it does for replies to an idle client, libuv needs no write
 * request and the poller no write interest (no epoll_ctl pair per reply).
 * Only a remainder is handed to uv_write, completed in on_write. */
static void conn_flush(zsrv_conn *c)
{
    if (c->writing || c->state == ZSRV_CONN_CLOSING)
        return;
    if (c->tls && c->out.len) {
        zerr err = {0};
        if (zsrv__tls_write(c->tls, c->out.data, c->out.len, &c->tls_out, &err) < 0) {
            zsrv__conn_close(c, ZSRV_LOG_WARNING, err.msg);
            return;
        }
        zbuf_reset(&c->out);
    }
    zbuf *src = c->tls ? &c->tls_out : &c->out;
    if (!src->len) {
        if (c->close_after_flush)
            zsrv__conn_close(c, ZSRV_LOG_DEBUG, "done");
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)src->data, (unsigned)src->len);
    /* A blob download keeps going through on_write, one buffer per loop
     * iteration: written directly, a fast reader could hold the loop for
     * the whole blob while other clients wait. */
    int n = c->blob_out ? UV_EAGAIN : uv_try_write(&c->h.stream, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
        zsrv__conn_close(c, ZSRV_LOG_INFO, uv_strerror(n));
        return;
    }
    zsrv__mx_bytes(c, 0, src->len);   /* to the kernel now, or through uv_write */
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == src->len) {
        output_done(src);
        zsrv__out_update(c);
        /* Resume what waited for the output to drain; the connection comes
         * back to this function through the dirty list. */
        if (c->close_after_flush || !c->reading) {
            conn_pump(c);
            zsrv__conn_mark_dirty(c);
        }
        return;
    }
    zbuf tmp = c->wbuf;
    c->wbuf = *src;
    *src = tmp;
    buf = uv_buf_init((char *)c->wbuf.data + done, (unsigned)(c->wbuf.len - done));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, &c->h.stream, &buf, 1, on_write);
    if (rc < 0) {
        zsrv__conn_close(c, ZSRV_LOG_INFO, uv_strerror(rc));
        return;
    }
    c->writing = 1;
    zsrv__out_update(c);
}

/* ---- input ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    zsrv_conn *c = h->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void stop_reading(zsrv_conn *c)
{
    if (c->reading)
        uv_read_stop(&c->h.stream);
    c->reading = 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void start_reading(zsrv_conn *c)
{
    if (c->reading || c->state == ZSRV_CONN_CLOSING)
        return;
    int rc = uv_read_start(&c->h.stream, on_alloc, on_read);
    if (rc < 0) {
        zsrv__conn_close(c, ZSRV_LOG_INFO, uv_strerror(rc));
        return;
    }
    c->reading = 1;
}

static void handshake(zsrv_conn *c, const uint8_t *p, uint32_t len)
{
    switch (proto_parse_hello(p, len)) {
    case PROTO_HELLO_Z5:
        c->enc = PROTO_PICKLE;
        break;
    case PROTO_HELLO_M5:
        c->enc = PROTO_MSGPACK;
        break;
    case PROTO_HELLO_RUOK: {
        zbuf json = ZBUF_INIT;
        if (zsrv__status_json(c->srv, &json) < 0 ||
            proto_frame_append(&c->out, json.data, json.len) < 0) {
            zbuf_free(&json);
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory for ruok");
            return;
        }
        zbuf_free(&json);
        c->close_after_flush = 1;
        zsrv__conn_mark_dirty(c);
        return;
    }
    default:
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "bad handshake");
        return;
    }
    c->state = ZSRV_CONN_UNREGISTERED;
    uv_timer_stop(&c->timer);
}

static void on_timer(uv_timer_t *t)
{
    zsrv_conn *c = t->data;
    if (c->state == ZSRV_CONN_HANDSHAKE)
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "handshake timeout");
    else if (proto_framer_pending(&c->fr))
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "stalled in the middle of a message");
}

/* A handshake, or a message begun, must progress; registered clients may
 * idle for ever (ZEO clients send a heartbeat only once a minute), and a
 * connection we stopped reading is waiting for us, not stalling. */
static void arm_stall_timer(zsrv_conn *c)
{
    double secs = c->srv->cfg->handshake_timeout;
    if (secs <= 0)
        return;
    if (!conn_paused(c) && (c->state == ZSRV_CONN_HANDSHAKE || proto_framer_pending(&c->fr)))
        uv_timer_start(&c->timer, on_timer, (uint64_t)(secs * 1000), 0);
    else
        uv_timer_stop(&c->timer);
}

/* The next frame, once its memory is admitted: 1 with p and len set, 0
 * when it is not all in or must wait, -1 when the connection closed. */
static int next_frame(zsrv_conn *c, const uint8_t **p, uint32_t *len)
{
    int r = proto_framer_peek(&c->fr, len);
    if (r == 0)
        return 0;
    if (r < 0) {
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "frame over the size limit (--max-frame)");
        return -1;
    }
    if (!c->in_admitted && (r = zsrv__in_admit(c, *len)) <= 0)
        return r;
    return proto_framer_next(&c->fr, p, len);
}

/* Frames are handled until input runs out or the connection must wait for
 * its peer to read or for memory (see conn_paused). */
static void process_frames(zsrv_conn *c)
{
    if (c->in_dispatch)
        return;
    c->in_dispatch = 1;
    while (c->state != ZSRV_CONN_CLOSING && !conn_paused(c)) {
        const uint8_t *p;
        uint32_t len;
        if (next_frame(c, &p, &len) <= 0)
            break;
        int retry = 0;
        if (c->state == ZSRV_CONN_HANDSHAKE)
            handshake(c, p, len);
        else
            retry = zsrv__dispatch(c, p, len) == ZSRV_RETRY;
        zv_arena_reset(c->arena);
        if (retry) {
            /* Its reply waits for output memory: the frame, still admitted,
             * runs again when zsrv__budget_wake resumes the connection. */
            proto_framer_unget(&c->fr, len);
            break;
        }
        zsrv__in_release(c);
    }
    c->in_dispatch = 0;
    if (c->state == ZSRV_CONN_CLOSING)
        return;
    if (conn_paused(c))
        stop_reading(c);
    else
        start_reading(c);
    arm_stall_timer(c);
    zsrv__conn_mark_dirty(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    zsrv_conn *c = stream->data;
    if (nread == 0 || c->state == ZSRV_CONN_CLOSING)
        return;
    if (nread < 0) {
        zsrv__conn_close(c, ZSRV_LOG_INFO,
                        nread == UV_EOF ? "disconnected" : uv_strerror((int)nread));
        return;
    }
    zsrv__mx_bytes(c, (size_t)nread, 0);
    int rc;
    zerr err;
    err.msg[0] = '\0';   /* set in full only when TLS fails: not per read */
    if (c->tls) {
        zbuf plain = ZBUF_INIT;
        rc = zsrv__tls_read(c->tls, buf->base, (size_t)nread, &plain, &c->tls_out, &err);
        if (rc == 0 && plain.len)
            rc = proto_framer_feed(&c->fr, plain.data, plain.len);
        zbuf_free(&plain);
        zsrv__conn_mark_dirty(c);   /* handshake records */
    } else {
        rc = proto_framer_feed(&c->fr, buf->base, (size_t)nread);
    }
    if (rc == ZE_CLOSED) {   /* close_notify: TLS's clean disconnect, as EOF is */
        zsrv__conn_close(c, ZSRV_LOG_INFO, "disconnected");
        return;
    }
    if (rc < 0) {
        zsrv__conn_close(c, ZSRV_LOG_WARNING, err.msg[0] ? err.msg : "out of memory");
        return;
    }
    process_frames(c);
    /* The replies to what was just read go out now, not after every other
     * ready connection has been read: the client works on them while this
     * loop serves the others (the two sides overlap instead of alternating
     * by batches). */
    if (c->state != ZSRV_CONN_CLOSING)
        conn_flush(c);
}

/* Continue a paused connection: sendBlob streaming, held input. */
static void conn_pump(zsrv_conn *c)
{
    if (c->state == ZSRV_CONN_CLOSING)
        return;
    if (c->blob_out && !zsrv__blob_out_pump(c))
        zsrv__blob_out_free(c);
    if (c->state != ZSRV_CONN_CLOSING && !conn_paused(c))
        process_frames(c);
}

void zsrv__conn_resume(zsrv_conn *c)
{
    zsrv__jobs_unpark(c);
    conn_pump(c);
    zsrv__conn_mark_dirty(c);
}

/* ---- accept ------------------------------------------------------------ */

static void peer_name(zsrv_conn *c, int is_pipe)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (is_pipe || uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(c->peer, sizeof c->peer, "unix:%p", (void *)c);
        return;
    }
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", host,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
}

void zsrv__conn_accept(zsrv *s, uv_stream_t *server, int is_pipe)
{
    zsrv_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->arena = zv_arena_new())) {
        free(c);
        zsrv__log(ZSRV_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    c->srv = s;
    c->blob_fd = -1;
    c->h.handle.data = c;
    c->timer.data = c;
    if (is_pipe)
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->h.tcp);
    uv_timer_init(s->loop, &c->timer);
    c->open_handles = 2;
    proto_framer_init(&c->fr, s->cfg->max_frame);
    int over = s->n_conns >= (size_t)s->cfg->max_connections;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->accepted++;

    if (uv_accept(server, &c->h.stream) < 0) {
        zsrv__conn_close(c, ZSRV_LOG_WARNING, "accept failed");
        return;
    }
    if (!is_pipe)
        uv_tcp_nodelay(&c->h.tcp, 1);
    peer_name(c, is_pipe);
    if (s->stopping) {
        zsrv__conn_close(c, ZSRV_LOG_INFO, "server is stopping");
        return;
    }
    if (!over) {
        s->over_max_logged = 0;
    } else {
        /* One warning a burst: a flood of connections must not flood the log. */
        zsrv__conn_close(c, s->over_max_logged ? ZSRV_LOG_DEBUG : ZSRV_LOG_WARNING,
                         "too many connections (max-connections)");
        s->over_max_logged = 1;
        return;
    }
    if (s->ssl_ctx && !(c->tls = zsrv__tls_new(s))) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot start TLS");
        return;
    }
    zsrv__log(ZSRV_LOG_DEBUG, "%s: connected", c->peer);
    const char *hello = proto_announcement(s->cfg->msgpack ? PROTO_MSGPACK : PROTO_PICKLE);
    if (proto_frame_append(&c->out, hello, strlen(hello)) < 0) {
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return;
    }
    c->state = ZSRV_CONN_HANDSHAKE;
    zsrv__conn_mark_dirty(c);
    arm_stall_timer(c);
    start_reading(c);
}
