/* blob.c: blob upload (storeBlobStart/Chunk/End, storeBlobShared) and
 * download (sendBlob streaming receiveBlobStart/Chunk/Stop), spec section 13.
 *
 * An upload goes to a temporary file in the store's blob folder, which the
 * store takes over at storeBlobEnd. A download is streamed as the connection
 * drains (zsrv__blob_out_pump), so a large blob never sits in memory; the
 * connection reads no further requests until it is done, which keeps the
 * callbacks ahead of the reply without interleaving other replies. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOB_CHUNK 59000   /* what ZEO sends */

void zsrv__blob_upload_discard(zsrv_conn *c)
{
    if (c->blob_fd >= 0) {
        close(c->blob_fd);
        c->blob_fd = -1;
    }
    if (c->blob_tmp[0]) {
        store_blob_discard(c->stor->st, c->blob_tmp);
        c->blob_tmp[0] = 0;
    }
}

/* A blob that cannot be written (a full disk) or that the store refuses (a
 * link in a shared folder) fails its transaction's vote, as a bad argument
 * of a queued call does: closing the connection would reach the application
 * as ClientDisconnected. */
static int fail_vote(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_txn *x = &c->txn;
    zsrv__log(ZSRV_LOG_ERROR, "%s: %s", c->peer, call->err.msg);
    if (!x->active)
        return call->err.code;
    if (!x->deferred.code)
        x->deferred = call->err;   /* ZE_IO, ZE_FULL or ZE_CORRUPT: a StorageError */
    return 0;
}

/* fail_vote for an upload, whose rest is dropped. */
static int upload_failed(zsrv_call *call)
{
    zsrv__blob_upload_discard(call->c);
    int rc = fail_vote(call);
    call->c->txn.blob_failed = call->c->txn.active;
    return rc;
}

int zsrv__m_store_blob_start(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    if (!c->txn.active)
        return zerr_set(&call->err, ZE_TXN, "storeBlobStart outside a transaction");
    c->txn.blob_failed = 0;
    if (c->blob_fd >= 0)
        return zerr_set(&call->err, ZE_PROTO, "storeBlobStart while another upload is open");
    return store_blob_tmpfile(c->stor->st, c->blob_tmp, sizeof c->blob_tmp, &c->blob_fd,
                              &call->err);
}

int zsrv__m_store_blob_chunk(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zslice chunk;
    int rc = proto_arg_bytes(call->args, 0, &chunk, &call->err);
    if (rc < 0)
        return rc;
    if (c->txn.blob_failed)
        return 0;
    if (c->blob_fd < 0)
        return zerr_set(&call->err, ZE_PROTO, "storeBlobChunk without storeBlobStart");
    while (chunk.len) {
        ssize_t n = write(c->blob_fd, chunk.p, chunk.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            zerr_sys(&call->err, errno, "cannot write the blob file %s", c->blob_tmp);
            return upload_failed(call);
        }
        chunk.p += n;
        chunk.len -= (size_t)n;
    }
    return 0;
}

int zsrv__m_store_blob_end(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    uint64_t oid, serial;
    zslice data;
    int rc;
    if ((rc = proto_args_store(call->args, &oid, &serial, &data, &call->err)) < 0)
        return rc;
    if (c->txn.blob_failed) {
        c->txn.blob_failed = 0;   /* the vote reports it */
        return 0;
    }
    if (c->blob_fd < 0)
        return zerr_set(&call->err, ZE_PROTO, "storeBlobEnd without storeBlobStart");
    zsrv_txn *x = zsrv__txn_open(call, call->argv[3]);
    if (!x)
        return call->err.code;
    if (close(c->blob_fd) < 0) {
        c->blob_fd = -1;
        zerr_sys(&call->err, errno, "cannot write the blob file %s", c->blob_tmp);
        return upload_failed(call);
    }
    c->blob_fd = -1;
    c->stor->stats.stores++;
    rc = store_txn_store_blob(x->t, oid, serial, data.p, data.len, c->blob_tmp, &call->err);
    if (rc < 0)
        return upload_failed(call);
    c->blob_tmp[0] = 0;   /* the store owns the file now */
    return 0;
}

/* ZEO's rule for a shared-folder upload: a plain name ending in .tmp (or
 * .tmp and one more character), inside the oid's folder. */
static int shared_name_ok(zslice name)
{
    if (!name.len || name.len > 255 || memchr(name.p, '/', name.len) ||
        memchr(name.p, 0, name.len))
        return 0;
    for (size_t tail = 4; tail <= 5; tail++)
        if (name.len > tail && !memcmp(name.p + name.len - tail, ".tmp", 4))
            return 1;
    return 0;
}

int zsrv__m_store_blob_shared(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    uint64_t oid, serial;
    zslice data, name;
    int rc;
    if ((rc = proto_args_store(call->args, &oid, &serial, &data, &call->err)) < 0 ||
        (rc = proto_arg_str(call->args, 3, &name, &call->err)) < 0)
        return rc;
    zsrv_txn *x = zsrv__txn_open(call, call->argv[4]);
    if (!x)
        return call->err.code;
    if (!shared_name_ok(name))
        return zerr_set(&call->err, ZE_INVAL, "bad blob file name");
    char file[256];
    snprintf(file, sizeof file, "%.*s", (int)name.len, (const char *)name.p);
    c->stor->stats.stores++;
    /* ZEO takes the file at vote: one missing, or refused, fails the vote. */
    rc = store_txn_store_blob_shared(x->t, oid, serial, data.p, data.len, file, &call->err);
    if (rc == ZE_NOTFOUND)   /* a missing file, not a missing object: no POSKeyError */
        call->err.code = ZE_IO;
    return rc < 0 ? fail_vote(call) : 0;
}

/* ---- download ---------------------------------------------------------- */

void zsrv__blob_out_free(zsrv_conn *c)
{
    zsrv_blob_out *b = c->blob_out;
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    zv_arena_free(b->arena);
    free(b);
    c->blob_out = NULL;
}

static int blob_callback(zsrv_conn *c, const char *name, const uint8_t *chunk, size_t len)
{
    zsrv_blob_out *b = c->blob_out;
    zv_arena *a = zv_arena_new();
    if (!a)
        return ZE_NOMEM;
    zv *args = zv_tuple(a, chunk ? 3 : 2);
    int rc = ZE_NOMEM;
    if (args && (args->u.seq.items[0] = zv_oid(a, b->oid)) &&
        (args->u.seq.items[1] = zv_oid(a, b->serial)) &&
        (!chunk || (args->u.seq.items[2] = zv_bytes(a, chunk, len))))
        rc = zsrv__send_async(c, name, args);
    zv_arena_free(a);
    return rc;
}

int zsrv__blob_out_pump(zsrv_conn *c)
{
    zsrv_blob_out *b = c->blob_out;
    uint8_t buf[BLOB_CHUNK];
    if (b->fd < 0)
        return 1;   /* its file is being opened off the loop */
    while (c->state != ZSRV_CONN_CLOSING && !zsrv__out_paused(c)) {
        ssize_t n = read(b->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot read a blob file");
            return 0;
        }
        if (n == 0) {
            zv *none = zv_none(b->arena);
            if (blob_callback(c, "receiveBlobStop", NULL, 0) < 0 || !none ||
                zsrv__send_reply(c, b->msgid, none) < 0)
                zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot send a blob");
            return 0;
        }
        if (blob_callback(c, "receiveBlobChunk", buf, (size_t)n) < 0) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot send a blob");
            return 0;
        }
    }
    return c->state != ZSRV_CONN_CLOSING;
}

static int missing_blob(zsrv_call *call, const char *path, uint64_t oid, uint64_t serial)
{
    if (proto_exc_no_blob(&call->exc, call->a, path, oid, serial) < 0)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return zerr_set(&call->err, ZE_NOTFOUND, "no blob for %016llx", (unsigned long long)oid);
}

int zsrv__blob_out_start(zsrv_conn *c)
{
    if (blob_callback(c, "receiveBlobStart", NULL, 0) < 0) {
        zsrv__blob_out_free(c);
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        return ZE_NOMEM;
    }
    if (!zsrv__blob_out_pump(c))
        zsrv__blob_out_free(c);
    return c->state == ZSRV_CONN_CLOSING ? ZE_CLOSED : 0;
}

typedef struct blob_ctx {
    uint64_t oid, serial;
    int fd;
} blob_ctx;

/* Open the revision's blob file (off the loop, the store may fetch it). */
static int send_blob_body(zsrv_call *call)
{
    blob_ctx *x = call->ctx;
    char path[4096];
    zerr err = {0};
    int rc = x->serial > call->visible
                 ? ZE_NOTFOUND   /* committed after the snapshot */
                 : store_open_blob(call->rd, x->oid, x->serial, path, sizeof path, &x->fd, &err);
    if (rc == ZE_CORRUPT)   /* a link in a shared folder: never served */
        zsrv__log(ZSRV_LOG_WARNING, "%s: sendBlob: %s", call->c->peer, err.msg);
    if (rc < 0) {
        x->fd = -1;
        if (store_blob_path(call->st->st, x->oid, x->serial, path, sizeof path) < 0)
            path[0] = 0;
        return missing_blob(call, path, x->oid, x->serial);
    }
    return 0;
}

/* The file is open: stream it (at the call's slot, off the loop), or the
 * reply has said why not. */
static void send_blob_after(zsrv_call *call, int rc)
{
    blob_ctx *x = call->ctx;
    zsrv_conn *c = call->c;
    if (c->state == ZSRV_CONN_CLOSING || rc < 0) {
        if (x->fd >= 0)
            close(x->fd);
        zsrv__blob_out_free(c);
        return;
    }
    c->blob_out->fd = x->fd;
    if (call->job)
        zsrv__job_slot_blob(call);
    else
        zsrv__blob_out_start(c);
}

/* The connection takes no request until its blob is sent: later replies
 * must not pass the stream. */
int zsrv__m_send_blob(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    blob_ctx x = {.fd = -1};
    int rc;
    if ((rc = proto_args_oid_serial(call->args, &x.oid, &x.serial, &call->err)) < 0)
        return rc;
    zsrv_blob_out *b = calloc(1, sizeof *b);
    if (!b || !(b->msgid = zsrv__keep_msgid(call, &b->arena))) {
        free(b);
        return call->err.code ? call->err.code : zerr_set(&call->err, ZE_NOMEM, "out of memory");
    }
    b->fd = -1;
    b->oid = x.oid;
    b->serial = x.serial;
    c->blob_out = b;
    return zsrv__offload(call, ZSRV_LANE_READ, send_blob_body, send_blob_after, &x, sizeof x);
}
