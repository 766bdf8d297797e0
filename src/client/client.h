/* client.h: a ZEO 5 client for C programs (zeolite's own tools, the bench).
 *
 * One zcl_client is one connection to one storage of a ZEO server (zeolite or
 * the Python ZEO 5/6 server), over TCP, a Unix socket or TLS. It speaks the
 * encoding the server announces (Z5 pickle or M5 msgpack) unless told
 * otherwise, pipelines requests (any number in flight, replies matched by
 * msgid), keeps an optional MVCC client cache bounded by size, applies the
 * server's invalidations to it and catches up with getInvalidations after a
 * reconnect.
 *
 * Two ways to drive it:
 *  - async: give zcl_new() your uv_loop_t; every zcl_* call that takes a
 *    callback queues a request. On 0 the callback runs exactly once, later,
 *    from the loop; on a negative ZE_* code it never runs.
 *  - blocking: give zcl_new() a NULL loop; the client owns a private loop and
 *    the *_sync functions run it until their reply arrives. The *_sync
 *    functions also work on a client on your loop, provided that loop is not
 *    running (never call them from inside a callback).
 *
 * Thread-safety: none inside one client. A zcl_client and everything it hands
 * out must be used from the one thread that runs its loop. Different clients
 * on different loops may live in different threads; they share nothing.
 *
 * Values: results that are Python data (dicts of history, undo log, server
 * status...) come as zv trees. In callbacks they live in the connection's
 * arena and are valid only during the callback; the *_sync variants copy them
 * into an arena the caller gives.
 *
 * Example (blocking; error handling shortened):
 *     zcl_opts o;
 *     zcl_opts_init(&o);
 *     o.cache_size = 64 << 20;
 *     zcl_client *c;
 *     zerr err;
 *     if (zcl_open_sync("localhost:8100", &o, &c, &err) < 0)
 *         die(err.msg);
 *     uint64_t oid, tid;
 *     size_t got;
 *     zcl_new_oids_sync(c, 1, &oid, &got, &err);
 *     zcl_tpc_begin(c, "me", "first", NULL);
 *     zcl_store(c, oid, 0, record, record_len);   (0: a new object)
 *     zcl_tpc_vote_sync(c, NULL, NULL, &err);     (ZE_CONFLICT: abort, retry)
 *     zcl_tpc_finish_sync(c, &tid, &err);
 *     zcl_free(c);
 *
 * Errors: server exceptions map to ZE_* codes: POSKeyError -> ZE_NOTFOUND,
 * ConflictError/BTreesConflictError -> ZE_CONFLICT, ReadConflictError ->
 * ZE_READCONFLICT, ReadOnlyError -> ZE_READONLY, StorageTransactionError ->
 * ZE_TXN, UndoError/MultipleUndoErrors -> ZE_UNDO, TypeError -> ZE_TYPE, any
 * other class -> ZE_INVAL (proto_exc_code).
 * The class path and payload are in the zerr message. A lost connection fails
 * every pending call with ZE_CLOSED.
 */
#ifndef ZEOLITE_CLIENT_H
#define ZEOLITE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/zbuf.h"
#include "common/zerr.h"
#include "common/zvalue.h"
#include "proto/proto.h"

#define ZCL_MAXTID 0x7fffffffffffffffULL /* loadBefore(oid, ZCL_MAXTID): current */
#define ZCL_BLOB_CHUNK 59000             /* upload chunk size, as ZEO's client */

/* ---- addresses --------------------------------------------------------- */

enum { ZCL_ADDR_TCP, ZCL_ADDR_UNIX };

typedef struct zcl_addr {
    int kind;            /* ZCL_ADDR_TCP or ZCL_ADDR_UNIX */
    char host[256];      /* TCP: name or address, without brackets */
    int port;            /* TCP */
    char path[108];      /* UNIX: socket path */
    char storage[64];    /* optional trailing ":STORAGE", "" when absent */
} zcl_addr;

/* Parse "HOST:PORT", "[V6ADDR]:PORT", "PORT" (localhost), "unix:PATH" or a
 * path containing '/'. With allow_storage, a trailing ":NAME" after the port
 * or path is the storage name (zeopack's host:port:storage). 0 or ZE_INVAL. */
int zcl_addr_parse(const char *s, int allow_storage, zcl_addr *out, zerr *err);
/* "host:port" or the socket path, for messages. */
void zcl_addr_format(const zcl_addr *a, char *buf, size_t size);

/* ---- options ----------------------------------------------------------- */

typedef struct zcl_client zcl_client;

/* Invalidation hook: tid committed by another client and the oids it wrote
 * (borrowed, valid during the call; may contain duplicates). Called after the
 * cache has been updated. */
typedef void (*zcl_invalidate_cb)(zcl_client *c, uint64_t tid, const uint64_t *oids,
                                  size_t n, void *data);
/* Called when the connection is lost (status ZE_CLOSED or the error that
 * closed it); pending calls have already failed. */
typedef void (*zcl_disconnect_cb)(zcl_client *c, int status, void *data);

typedef struct zcl_opts {
    const char *storage;      /* storage name to register; default "1" */
    int read_only;            /* register read-only */
    int read_only_fallback;   /* on ReadOnlyError, register again read-only */
    int encoding;             /* 0: follow the server; or PROTO_PICKLE / PROTO_MSGPACK */
    size_t cache_size;        /* client cache bound in bytes; 0: no cache */
    const char *blob_dir;     /* blob cache directory (downloads land here) */
    int shared_blob_dir;      /* blob_dir is the server's own (bushy layout) */
    uint32_t max_frame;       /* largest reply accepted; 0: PROTO_DEFAULT_MAX_FRAME */
    unsigned reconnect_ms;    /* >0: reconnect automatically this long after a loss */
    unsigned timeout_ms;      /* *_sync calls give up with ZE_TIMEOUT; 0: 30 s */
    /* TLS: enabled when tls is set. ca: server CA file (verification on);
     * without ca the server certificate is not verified. */
    int tls;
    const char *tls_ca;
    const char *tls_cert;     /* client certificate, optional */
    const char *tls_key;
    const char *tls_server_name; /* SNI / hostname to check; default: addr host */
    zcl_invalidate_cb on_invalidate;
    zcl_disconnect_cb on_disconnect;
    void *cb_data;
} zcl_opts;

/* Defaults as documented above. */
void zcl_opts_init(zcl_opts *o);

/* ---- lifecycle --------------------------------------------------------- */

/* Create a client for addr (copied) with opts (copied, strings too). loop NULL:
 * a private loop for the blocking API. Does not connect. 0, ZE_NOMEM, or
 * ZE_INVAL (TLS setup failed: bad cert/key/CA file). */
int zcl_new(uv_loop_t *loop, const zcl_addr *addr, const zcl_opts *opts,
            zcl_client **out, zerr *err);

/* Close the connection (pending calls fail with ZE_CLOSED, their callbacks
 * run before this returns on a private loop, or from the loop otherwise) and
 * free the client once libuv is done with its handles. NULL is fine. */
void zcl_free(zcl_client *c);

typedef void (*zcl_done_cb)(zcl_client *c, int status, void *data);

/* Connect, handshake, register, verify the cache (getInvalidations from the
 * cache's last tid, or a flush when the server answers None) and get_info.
 * cb gets 0 when the client is ready for calls. Also used to reconnect a
 * disconnected client (the cache is kept and verified). ZE_INVAL when already
 * connected or connecting. Connect errors reach cb: ZE_IO (unreachable),
 * ZE_PROTO (bad handshake), the register error (ZE_READONLY, ZE_INVAL), or
 * ZE_CORRUPT when the server's last tid is older than the cache's (a server
 * that lost transactions: the client refuses it, as ZEO's does). */
int zcl_connect(zcl_client *c, zcl_done_cb cb, void *data);
int zcl_connect_sync(zcl_client *c, zerr *err);

/* Convenience for tools: parse addr (with an optional ":STORAGE", which
 * overrides opts->storage), create a client with a private loop, connect.
 * On failure nothing is left to free. */
int zcl_open_sync(const char *addr, const zcl_opts *opts, zcl_client **out, zerr *err);

/* Drop the connection now (as a network failure would, but without
 * automatic reconnection). */
void zcl_disconnect(zcl_client *c);

/* Change the *_sync timeout (ms); 0: wait as long as it takes. */
void zcl_set_timeout(zcl_client *c, unsigned timeout_ms);

int zcl_is_ready(const zcl_client *c);
uv_loop_t *zcl_loop(const zcl_client *c);
proto_enc zcl_encoding(const zcl_client *c);
/* Newest tid known to the client: register's answer, then every
 * invalidation and own commit. */
uint64_t zcl_last_tid(const zcl_client *c);
/* The get_info dict of the last connection, or NULL before the first, with
 * the integer values (length, size) the server's later info() calls update.
 * Owned by the client; valid until the next reconnect. */
const zv *zcl_info(const zcl_client *c);
/* Why the last operation failed on a connection level (message of the error
 * that closed it, or of the connect failure). */
const zerr *zcl_last_error(const zcl_client *c);

/* ---- generic calls ----------------------------------------------------- */

/* status 0: result is the reply value. status < 0: result is the exception
 * payload (dict or tuple) or NULL when the connection failed; err says why.
 * Both live only during the callback. */
typedef void (*zcl_reply_cb)(zcl_client *c, int status, const zv *result,
                             const zerr *err, void *data);

/* Send a synchronous call; args is a TUPLE, encoded before return (the caller
 * may free it then). ZE_CLOSED when not connected. */
int zcl_call(zcl_client *c, const char *method, const zv *args, zcl_reply_cb cb,
             void *data);
/* Send an async call (no reply; the server closes the connection on error). */
int zcl_call_async(zcl_client *c, const char *method, const zv *args);
/* Blocking call; on 0 *result (if non-NULL) is a copy in arena a. On a server
 * exception, *result is the payload copy too. */
int zcl_call_sync(zcl_client *c, const char *method, const zv *args, zv_arena *a,
                  zv **result, zerr *err);

/* ---- loads and the cache ----------------------------------------------- */

typedef struct zcl_rev {
    const uint8_t *data; /* record bytes (borrowed, see each call) */
    size_t len;
    uint64_t start;      /* tid that wrote it */
    uint64_t end;        /* tid of the next revision; 0 when current */
} zcl_rev;

/* status 0 and rev; ZE_NOREV (no revision before the tid); ZE_NOTFOUND. */
typedef void (*zcl_load_cb)(zcl_client *c, int status, const zcl_rev *rev,
                            const zerr *err, void *data);

/* loadBefore(oid, before). When the cache holds the answer, returns 1 with
 * *hit filled (data borrowed until the next call into this client or return
 * to the loop) and cb never runs; else sends the request and returns 0.
 * With hit NULL the cache is not consulted (every load is a round trip).
 * Results from the server are stored in the cache. */
int zcl_load_before(zcl_client *c, uint64_t oid, uint64_t before, zcl_rev *hit,
                    zcl_load_cb cb, void *data);
/* Blocking form; the record is copied into *data. */
int zcl_load_before_sync(zcl_client *c, uint64_t oid, uint64_t before, zbuf *data,
                         uint64_t *start, uint64_t *end, zerr *err);
/* loadSerial(oid, serial) (exact revision) into *data. */
int zcl_load_serial_sync(zcl_client *c, uint64_t oid, uint64_t serial, zbuf *data,
                         zerr *err);

/* Prefetch: send loadBefore(oid, before) for each oid the cache cannot
 * answer, all at once, to fill the cache; returns how many were sent, or
 * ZE_CLOSED / ZE_NOMEM. Needs a cache (ZE_INVAL without one). Completion is
 * silent: later loads find the cache filled or wait like any other load. */
int zcl_prefetch(zcl_client *c, const uint64_t *oids, size_t n, uint64_t before);

/* Drop everything cached (the last tid is kept). */
void zcl_cache_clear(zcl_client *c);
typedef struct zcl_cache_stats {
    uint64_t hits, misses, evictions, invalidations;
    size_t bytes, entries;
} zcl_cache_stats;
void zcl_cache_stats_get(const zcl_client *c, zcl_cache_stats *st);

/* ---- storage methods (blocking) ---------------------------------------- */

int zcl_last_transaction_sync(zcl_client *c, uint64_t *tid, zerr *err);
/* Up to n (<= 100) new oids into oids[]; *got how many came back. */
int zcl_new_oids_sync(zcl_client *c, unsigned n, uint64_t *oids, size_t *got, zerr *err);
int zcl_ping_sync(zcl_client *c, zerr *err);
/* server_status() dict, copied into a. */
int zcl_server_status_sync(zcl_client *c, zv_arena *a, zv **status, zerr *err);
/* history(oid, size): list of dicts, copied into a. */
int zcl_history_sync(zcl_client *c, uint64_t oid, int size, zv_arena *a, zv **list,
                     zerr *err);
/* undoLog(first, last): list of dicts with 'id' (bytes) etc., copied into a. */
int zcl_undo_log_sync(zcl_client *c, int first, int last, zv_arena *a, zv **list,
                      zerr *err);
/* pack(t, wait=1) with t in seconds since the epoch. */
int zcl_pack_sync(zcl_client *c, double t, zerr *err);

/* Transaction iteration over start <= tid <= stop (0 for an open bound). */
typedef struct zcl_txn_rec {
    uint64_t tid;
    char status;
    const zv *user, *description, *extension; /* bytes, bytes, dict (in the arena) */
} zcl_txn_rec;
typedef struct zcl_data_rec {
    uint64_t oid, tid;
    const uint8_t *data; size_t len; /* data NULL: deletion/no data (in the arena) */
    uint64_t data_txn;               /* back pointer tid, 0 if none */
} zcl_data_rec;
int zcl_iter_start_sync(zcl_client *c, uint64_t start, uint64_t stop, int64_t *iid,
                        zerr *err);
/* 1 and *rec, 0 at the end (the server then forgets the iterator). */
int zcl_iter_next_sync(zcl_client *c, int64_t iid, zv_arena *a, zcl_txn_rec *rec,
                       zerr *err);
int zcl_iter_records_sync(zcl_client *c, int64_t iid, uint64_t tid, int64_t *riid,
                          zerr *err);
int zcl_iter_record_next_sync(zcl_client *c, int64_t riid, zv_arena *a, zcl_data_rec *rec,
                              zerr *err);
/* Forget iterators early (async iterator_gc). */
int zcl_iter_gc(zcl_client *c, const int64_t *iids, size_t n);

/* ---- two-phase commit -------------------------------------------------- */

/* One conflict reported by vote: committed is the tid now current on the
 * server, serial the one this client sent; data (may be NULL) the record
 * this client stored, which client-side resolution merges with the
 * revisions at serial and committed (as ZEO's conflict dict carries it). */
typedef struct zcl_conflict {
    uint64_t oid;
    uint64_t committed, serial;
    const uint8_t *data;
    size_t len;
} zcl_conflict;

/* Result of vote. status 0: voted (resolved[] lists oids whose stored state
 * differs from what was sent, from every vote of the transaction: resolved
 * in the server, or changed by an undo; the cache drops them at finish). status ZE_CONFLICT:
 * conflicts[] has one entry per object (the server returned them for
 * client-side resolution, or raised ConflictError for one of them); the
 * transaction is still open unless aborted. Other errors: the server has
 * already aborted the transaction. Arrays are valid during the callback. */
typedef struct zcl_vote_result {
    const zcl_conflict *conflicts;
    size_t nconflicts;
    const uint64_t *resolved;
    size_t nresolved;
} zcl_vote_result;
typedef void (*zcl_vote_cb)(zcl_client *c, int status, const zcl_vote_result *res,
                            const zerr *err, void *data);
typedef void (*zcl_tid_cb)(zcl_client *c, int status, uint64_t tid, const zerr *err,
                           void *data);

/* tpc_begin(user, description, extension dict or NULL). One transaction at a
 * time: ZE_TXN if one is open. */
int zcl_tpc_begin(zcl_client *c, const char *user, const char *description,
                  const zv *extension);
/* storea: serial is the tid the change is based on (0 for a new object). */
int zcl_store(zcl_client *c, uint64_t oid, uint64_t serial, const void *data, size_t len);
/* Store a blob object: the record, then the file at path uploaded in
 * ZCL_BLOB_CHUNK pieces; with shared_blob_dir, the file is instead copied
 * (copy_file_range: a reflink where the file system has them) into the
 * shared directory under a .tmp name and announced with storeBlobShared. The
 * caller keeps its file either way. ZE_IO if it can't
 * be read. */
int zcl_store_blob(zcl_client *c, uint64_t oid, uint64_t serial, const void *data,
                   size_t len, const char *path, zerr *err);
int zcl_check_current(zcl_client *c, uint64_t oid, uint64_t serial);
int zcl_delete_object(zcl_client *c, uint64_t oid, uint64_t serial);
/* undoa(undo_id): the oids it changes come back as resolved at vote. */
int zcl_undo(zcl_client *c, const void *undo_id, size_t len);
int zcl_tpc_vote(zcl_client *c, zcl_vote_cb cb, void *data);
/* Commit; cb gets the new tid. The cache takes the stored records as current. */
int zcl_tpc_finish(zcl_client *c, zcl_tid_cb cb, void *data);
/* Abort (also fine after a failed vote, or with no transaction). */
int zcl_tpc_abort(zcl_client *c, zcl_done_cb cb, void *data);
int zcl_in_transaction(const zcl_client *c);

/* Blocking forms. vote_sync copies conflicts into *conf (malloc'd, caller
 * frees each data and the array) when conf is non-NULL. */
int zcl_tpc_vote_sync(zcl_client *c, zcl_conflict **conf, size_t *nconf, zerr *err);
int zcl_tpc_finish_sync(zcl_client *c, uint64_t *tid, zerr *err);
int zcl_tpc_abort_sync(zcl_client *c, zerr *err);
void zcl_conflicts_free(zcl_conflict *conf, size_t n);

/* ---- blobs ------------------------------------------------------------- */

/* Path of the blob file of (oid, serial) under the blob dir: the ZEO cache
 * layout DIR/<oid % 997>/<oid / 997>.<tid hex>.blob, or the bushy layout
 * DIR/0x../0x../<tid hex>.blob in shared mode. malloc'd; NULL on ENOMEM or
 * when the path would pass PATH_MAX. */
char *zcl_blob_path(const zcl_client *c, uint64_t oid, uint64_t serial);
/* Make sure the blob is in the blob dir (sendBlob unless already there or
 * shared) and return its path in *path (malloc'd). ZE_NOTFOUND if the server
 * has none; ZE_INVAL without a blob_dir. */
int zcl_load_blob_sync(zcl_client *c, uint64_t oid, uint64_t serial, char **path,
                       zerr *err);
/* Async form: cb once the file is complete (or failed). */
int zcl_load_blob(zcl_client *c, uint64_t oid, uint64_t serial, zcl_done_cb cb,
                  void *data);

/* ---- without registering ------------------------------------------------ */

/* How far a connection attempt got before it failed, for tools that word
 * the failure themselves (zeo-nagios prints "[Errno 111] ..."). */
typedef enum zcl_stage {
    ZCL_STAGE_RESOLVE = 1,  /* resolving the host name; sys_err: a getaddrinfo EAI_* code */
    ZCL_STAGE_CONNECT,      /* connect(2); sys_err: its errno (ETIMEDOUT on our timeout) */
    ZCL_STAGE_TLS,          /* connected; the TLS handshake */
    ZCL_STAGE_HELLO,        /* connected; waiting for the ZEO announcement */
    ZCL_STAGE_SESSION,      /* announced; the exchange after it */
} zcl_stage;

typedef struct zcl_conn_fail {
    zcl_stage stage;
    int sys_err;            /* see zcl_stage; 0 when none applies */
    int plain_zeo;          /* TLS: the server sent a plain ZEO announcement instead */
} zcl_conn_fail;

/* The ruok probe: connect, read the announcement, send "ruok", return the
 * JSON status text (malloc'd, NUL-terminated) in *json. timeout_ms 0: 30 s.
 * ZE_IO when the server cannot be reached, ZE_TIMEOUT when it did not
 * answer in time, ZE_PROTO on a bad reply; on failure *why (may be NULL)
 * says how far the attempt got. */
int zcl_ruok(const zcl_addr *addr, const zcl_opts *opts, unsigned timeout_ms, char **json,
             zcl_conn_fail *why, zerr *err);

#endif
