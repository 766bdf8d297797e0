/* client_int.h: what the files of src/client share; not for other modules. */
#ifndef ZEOLITE_CLIENT_INT_H
#define ZEOLITE_CLIENT_INT_H

#include <stdio.h>

#include <openssl/ssl.h>

#include "client/client.h"

/* ---- cache (cache.c) ---------------------------------------------------- */

typedef struct zcl_cache zcl_cache;

zcl_cache *zcl__cache_new(size_t limit);
void zcl__cache_free(zcl_cache *k);
/* 1 and *out (borrowed until the next cache change) when a cached revision
 * answers loadBefore(oid, before), else 0. */
int zcl__cache_lookup(zcl_cache *k, uint64_t oid, uint64_t before, zcl_rev *out);
/* Remember revision [start, end) of oid (end 0: current). Failures to
 * allocate only mean the revision is not cached. */
void zcl__cache_store(zcl_cache *k, uint64_t oid, uint64_t start, uint64_t end,
                      const void *data, size_t len);
/* tid committed a change of oid: its current revision now ends at tid. With
 * tid 0 the current revision is dropped (end unknown). */
void zcl__cache_invalidate(zcl_cache *k, uint64_t oid, uint64_t tid);
void zcl__cache_clear(zcl_cache *k);
int zcl__cache_is_empty(const zcl_cache *k);
void zcl__cache_stats(const zcl_cache *k, zcl_cache_stats *st);

/* ---- pending calls (calls.c) ------------------------------------------- */

typedef struct zcl_pending zcl_pending;
/* Internal reply handler: status 0 with the reply value, or an error with the
 * exception payload (or NULL result on a lost connection). */
typedef void (*zcl_handler)(zcl_client *c, zcl_pending *p, int status, const zv *result,
                            const zerr *err);

struct zcl_pending {
    int64_t msgid;       /* 0: free slot */
    zcl_handler handler;
    void *cb;            /* the user's callback, cast by the handler */
    void *data;
    uint64_t oid, tid;   /* loads and blob downloads */
};

typedef struct zcl_pending_table {
    zcl_pending *slots;  /* indexed by msgid & mask */
    size_t mask;
    size_t count;
    int64_t next_id;
} zcl_pending_table;

void zcl__pending_free(zcl_pending_table *t);
/* Encode and queue a sync call; 0 or ZE_NOMEM/ZE_INVAL (encoding failed). */
int zcl__send_call(zcl_client *c, const char *method, const zv *args, zcl_handler h,
                   void *cb, void *data, uint64_t oid, uint64_t tid);
/* Dispatch one decoded reply. */
void zcl__on_reply(zcl_client *c, const proto_msg *m);
/* Fail every pending call with status (ZE_CLOSED on a lost connection). */
void zcl__fail_pending(zcl_client *c, int status, const zerr *err);

/* ---- transport (conn.c, tls.c) ------------------------------------------ */

enum zcl_state {
    ZCL_ST_IDLE,        /* not connected */
    ZCL_ST_CONNECTING,  /* resolving / TCP connect / TLS handshake */
    ZCL_ST_HELLO,       /* waiting for the protocol announcement */
    ZCL_ST_SESSION,     /* register, verification, get_info in flight */
    ZCL_ST_READY,
};

/* One transport attempt; outlives the client's interest in it until libuv
 * closes its handle, so late callbacks find link->c == NULL. */
typedef struct zcl_link {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;
    zcl_client *c;
    SSL *ssl;
    BIO *rbio, *wbio;      /* network side of the TLS engine */
    int tls_done;          /* TLS handshake finished */
    int resolving;         /* getaddrinfo in flight */
    int closing;
} zcl_link;

/* Start the transport to c->addr; on success the state becomes HELLO and
 * frames flow into zcl__on_frame. Failure ends in zcl__conn_lost. */
int zcl__conn_start(zcl_client *c);
/* Hand c->out to libuv (through TLS when on). */
void zcl__conn_flush(zcl_client *c);
/* Flush c->out before the loop next waits for I/O, so that the calls made in
 * one loop iteration go out in one write. */
void zcl__conn_want_flush(zcl_client *c);
/* Close the transport: pending calls fail with status; the session moves to
 * IDLE and maybe schedules a reconnect. */
void zcl__conn_lost(zcl_client *c, int status, const char *why);

int zcl__tls_ctx_new(const zcl_opts *o, SSL_CTX **out, zerr *err);
int zcl__tls_attach(zcl_client *c, zcl_link *l);
/* Feed ciphertext; plaintext goes to zcl__on_bytes. 0 or an error code. */
int zcl__tls_on_read(zcl_client *c, zcl_link *l, const char *p, size_t n);
/* Encrypt n plaintext bytes into out (ciphertext to write). */
int zcl__tls_encrypt(zcl_link *l, const uint8_t *p, size_t n, zbuf *out);
/* Drain pending TLS output (handshake records) into out. */
int zcl__tls_drain(zcl_link *l, zbuf *out);

/* ---- session (session.c) ------------------------------------------------ */

/* Plaintext bytes from the transport. 0, or an error that closes it. */
int zcl__on_bytes(zcl_client *c, const uint8_t *p, size_t n);
/* The transport is up (after TLS): wait for the announcement. */
void zcl__on_transport_ready(zcl_client *c);
/* The session ended (link gone); finish connect with an error if needed. */
void zcl__session_ended(zcl_client *c, int status);
/* A server call (name) whose arguments proto refused, its reason in c->err:
 * ZE_PROTO, the server's error, which closes the connection. */
int zcl__malformed(zcl_client *c, const char *name);

/* ---- transactions, blobs ----------------------------------------------- */

typedef struct zcl_stored {
    uint64_t oid;
    size_t off, len;     /* into txn.data; len SIZE_MAX: not cacheable */
} zcl_stored;

typedef struct zcl_txn {
    int open;
    int64_t id;
    zbuf data;           /* stored records, kept for the cache */
    zcl_stored *stored;
    size_t nstored, cap;
    uint64_t *resolved;  /* oids the vote said differ from what we sent */
    size_t nresolved, rcap;
} zcl_txn;

void zcl__txn_reset(zcl_txn *t);
void zcl__txn_free(zcl_txn *t);
/* storea (data non-NULL: oid, serial, data, txn) or deleteObject-like
 * (oid, serial, txn) calls that also go to the cache after tpc_finish. */
int zcl__txn_store(zcl_client *c, const char *method, uint64_t oid, uint64_t serial,
                   const void *data, size_t len);

typedef struct zcl_blob_dl {
    FILE *f;
    uint64_t oid, serial;
    char *tmp;           /* path of the .dl file */
} zcl_blob_dl;

/* receiveBlobStart/Chunk/Stop. 0 or an error that closes the connection. */
int zcl__blob_callback(zcl_client *c, const char *name, const zv *args);
void zcl__blob_dl_abort(zcl_client *c);

/* ---- the client ----------------------------------------------------------- */

struct zcl_client {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int owns_loop;
    zcl_addr addr;
    zcl_opts opts;         /* strings point into the strdup'd copies below */
    char *storage, *blob_dir, *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    SSL_CTX *ssl_ctx;

    enum zcl_state state;
    zcl_link *link;
    proto_enc enc;
    proto_framer framer;
    zbuf out;              /* encoded frames not yet handed to libuv */
    zv_arena *msg_arena;   /* the message being dispatched */
    zv_arena *tmp_arena;   /* arguments being built */
    zcl_pending_table pend;

    uv_prepare_t flush_prep;
    int flush_armed;
    uv_timer_t heartbeat;
    uv_timer_t retry;      /* automatic reconnection */
    uv_timer_t deadline;   /* sync-call timeouts */
    int timers_open;       /* handles still to close before free */
    int freeing;
    int timed_out;
    int ever_ready;        /* automatic reconnection only after a first success */
    int no_retry;          /* set while zcl_disconnect tears down */

    zcl_done_cb connect_cb;
    void *connect_data;
    uint64_t register_tid;
    uint64_t last_tid;
    zv_arena *info_arena;
    zv *info;

    zcl_conn_fail reached; /* the stage the current attempt has reached */
    int probe;             /* ruok probe instead of a session */
    char *probe_json;      /* its answer (malloc'd, NUL-terminated) */

    zcl_cache *cache;
    zcl_txn txn;
    int64_t next_txn_id;
    zcl_blob_dl dl;
    zerr err;
};

/* Run c's loop until *done or the sync timeout (then the connection is
 * dropped and ZE_TIMEOUT returned). */
int zcl__wait(zcl_client *c, const int *done, zerr *err);
/* The tail every *_sync call shares. started is what the async call returned:
 * when negative, c->err explains it. Otherwise wait for *done (zcl__wait);
 * then a negative *status is the result, explained by why. Returns 0 or the
 * code, with its message copied into err. */
int zcl__sync_finish(zcl_client *c, int started, const int *done, const int *status,
                     const zerr *why, zerr *err);
/* What a *_sync call over a zcl_done_cb waits on, and that callback
 * (data: a zcl__done_wait; the message of a failure is in c->err). */
typedef struct zcl__done_wait {
    int done, status;
} zcl__done_wait;
void zcl__on_done_sync(zcl_client *c, int status, void *data);
/* Arm the reconnect timer when the options ask for it. */
void zcl__schedule_retry(zcl_client *c);
/* Copy of a zerr (NULL-safe) into dst, returns its code. */
int zcl__err_copy(zerr *dst, const zerr *src, int status);

/* Arg helpers over c->tmp_arena (reset by the caller before building). */
zv *zcl__tid(zcl_client *c, uint64_t v);
/* A tuple of n values; NULL when any of them is NULL (out of memory). */
zv *zcl__args(zcl_client *c, size_t n, ...);

#endif
