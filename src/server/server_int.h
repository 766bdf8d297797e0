/* server_int.h: what the files of src/server/ share. Not for other modules.
 *
 * Ownership in one picture: the zsrv owns its storages, listeners and every
 * connection (a doubly linked list); a connection owns its buffers, its
 * transaction, its iterators and its reply slots; a storage owns the commit
 * lock queue (links inside the connections), the list of commits in flight
 * and, when its store calls run off the loop, its worker threads (job.c).
 * Everything runs on the loop thread except the store's commit callback,
 * which only touches the mutex-protected done list and wakes the loop, a
 * pack (libuv's thread pool), whose store logs through log.c's lock, and
 * the body of a job (job.c), which touches only what its job owns.
 *
 * What a client may see, and when (spec section 8.1). A storage's visible
 * tid (zsrv_storage.visible) is the newest transaction whose invalidation
 * has been queued to every registered connection; nothing a reply says may
 * come from a later one. Reads on the loop use the loop's reader, whose
 * snapshot is the visible tid (finish.c refreshes and completes together).
 * A read off the loop reads as of the visible tid when it was dispatched
 * (read.c's "as of" helpers: a worker's reader may be newer) into a reply
 * slot reserved in the connection's output at dispatch, so invalidations
 * queued meanwhile go out after the reply whose snapshot precedes them, and
 * replies keep the order of their requests.
 *
 * Test hooks (environment of `zeolite serve`, read at start):
 *   ZEOLITE_OFFLOOP=1       every storage runs its store calls off the loop,
 *                           as one whose store may block (a network
 *                           database) does: loads, history, iteration, undo
 *                           logs, getInvalidations, blobs sent, new_oids
 *                           and votes on worker threads;
 *   ZEOLITE_OFFLOOP_HOLD_MS=N  a read off the loop waits on its worker until
 *                           a commit has completed after its dispatch, N
 *                           milliseconds at most, so that invalidations
 *                           meet the replies they must not overtake;
 *   ZEOLITE_OFFLOOP_HOLD_WRITES=1  votes and new_oids wait so too, so that a
 *                           client can abort or go while its vote runs;
 *   ZEOLITE_FEED_HOLD_MS=N  each commit of another server that a shared
 *                           storage's feed delivers reaches the loop N
 *                           milliseconds late (the store knows it at once,
 *                           and the log says so), as a server whose feed
 *                           lags would (sync.c).
 *
 * The data structures come first, then the functions each file shares, one
 * section a file ("conn.c --"), as Redis's server.h lists them. Cross-file
 * functions are zsrv__; the public ones (zsrv_) are in server.h.
 */
#ifndef ZEOLITE_SERVER_INT_H
#define ZEOLITE_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <uv.h>

#include "common/zbuf.h"
#include "common/oidmap.h"
#include "common/zerr.h"
#include "common/zvalue.h"
#include "proto/proto.h"
#include "server/server.h"
#include "store/store.h"

typedef struct zsrv zsrv;
typedef struct zsrv_conn zsrv_conn;
typedef struct zsrv_storage zsrv_storage;
typedef struct zsrv_tls zsrv_tls;

/* A queue of connections waiting for memory, in order (budget.c); each
 * connection has a link for each queue. */
typedef struct zsrv_waitlink {
    zsrv_conn *next;
    int queued;
} zsrv_waitlink;

typedef struct zsrv_waitq {
    zsrv_conn *head, *tail;
} zsrv_waitq;

/* ---- storages and the commit pipeline ---------------------------------- */

/* conflicts: conflicts sent back to the client (in a vote's list, or the
 * error of a failed vote); conflicts_resolved: votes that passed after the
 * client resolved; conflicts_resolved_server: conflicts merged in the
 * server (resolve.c), stores and undo records. */
typedef struct zsrv_counters {
    uint64_t loads, stores, commits, aborts, conflicts, conflicts_resolved;
    uint64_t conflicts_resolved_server;
} zsrv_counters;

/* A latency histogram (metrics.c): counts per bucket (not cumulative), the
 * last one past every bound. */
#define ZSRV_HIST_BOUNDS 19
typedef struct zsrv_hist {
    uint64_t counts[ZSRV_HIST_BOUNDS + 1];
    uint64_t n;
    double sum;                    /* seconds */
} zsrv_hist;

/* What only the metrics endpoint reports (metrics.c); the loop's alone. */
typedef struct zsrv_mx {
    uint64_t bytes_in, bytes_out;  /* of its registered connections */
    uint64_t packs;
    uint64_t lock_expired;         /* holders closed by the transaction timeout */
    uint64_t resolve_expired;      /* ... by the conflict-resolution bound */
    zsrv_hist lock_wait;           /* from a vote to its oids' locks */
    zsrv_hist *latency;            /* per dispatch method; NULL without metrics */
} zsrv_mx;

/* A transaction handed to the store's writer thread, until its callback
 * has been processed on the loop; or (feed != 0) an event of the store's
 * feed (feed.c), which travels the same FIFO so that both stay in the one
 * tid order the store gives them. */
typedef struct zsrv_commit {
    struct zsrv_commit *next;      /* the storage's in-flight list, oldest first */
    struct zsrv_commit *done_next; /* zsrv.done list (writer thread -> loop) */
    int cb_done;                   /* the store's callback has run */
    int processed;                 /* replies and invalidations have gone out */
    zsrv_storage *stor;
    zsrv_conn *conn;               /* NULL once the committer has disconnected */
    store_txn *t;
    zv_arena *arena;               /* holds msgid */
    zv *msgid;                     /* of tpc_finish, to reply with the tid;
                                      NULL for an async one (no reply) */
    uint64_t t0;                   /* tpc_finish's arrival (metrics), or 0 */
    uint64_t seq;                  /* its place among the storage's hand-offs */
    uint64_t tid;                  /* known at hand-off (0: not yet), else
                                      from the callback once it has run */
    int rc;                        /* rc, cb_tid, err: the writer's, read once */
    uint64_t cb_tid;               /* the callback has run */
    zerr err;
    /* a feed event: its kind (store_feed_kind), tid, oids (malloc'd),
     * and for LOST rc, final and the message in err */
    int feed;
    int final;
    uint64_t *oids;
    size_t n_oids;
} zsrv_commit;

struct zsrv_storage {
    zsrv *srv;
    const char *name;              /* borrowed from the config */
    store *st;
    store_reader *rd;              /* the loop thread's snapshot */
    int read_only;
    int pack_gc;
    /* registered connections (invalidation fan-out) */
    zsrv_conn *conns;
    size_t n_conns;
    /* commit locks (lock.c): the oids of voting transactions, FIFO waiters */
    oidmap locked;                 /* oid -> its writer (a zsrv_conn *), or
                                      2 * checkers + 1 (lock.c) */
    zsrv_conn *holders, *holders_tail;   /* oldest lock first */
    size_t n_holders;
    zsrv_conn *exclusive_holder;   /* a holder that must be alone, or NULL */
    zsrv_conn *wait_head, *wait_tail;
    size_t n_waiting;
    oidmap claimed;                /* scratch: oids of earlier waiters */
    int granting;                  /* waiters are being served: do not recurse */
    zsrv_conn *resolvers, *resolvers_tail;   /* holders resolving conflicts,
                                                first to get them first */
    uv_timer_t timeout_timer;      /* the next holder or resolver due (lock.c) */
    /* commits handed to the writer, oldest first */
    zsrv_commit *inflight;
    uint64_t visible;              /* newest tid invalidated everywhere (top) */
    uint64_t seq_handed;           /* commits handed to the writer so far */
    uint64_t seq_done;             /* ... and completed (in that order) */
    size_t n_deferred;             /* connections holding a deferred reply (vote, sync.c) */
    /* off the loop (job.c) */
    int offloop;                   /* store calls run on worker threads */
    struct zsrv_pool *pool;        /* the workers, or NULL */
    size_t n_readers;              /* its read workers (a PostgreSQL pool-size) */
    uv_async_t job_async;          /* jobs ended (job.c) */
    size_t jobs;                   /* jobs submitted whose end has not run */
    _Atomic uint64_t completed;    /* commits completed, ours and the feed's (the hold
                                      test hook) */
    /* invalidation queue: the newest invq_cap tids, oldest first (a ring) */
    uint64_t *invq;
    size_t invq_cap, invq_len, invq_head;
    zsrv_counters stats;
    size_t active_txns;
    time_t start;
    struct zsrv_pack *packing;     /* the pack running, if any */
    zsrv_mx mx;
    /* a shared database's feed (feed.c): 0 running (or none), else why
     * clients are refused: FEED_LOST until it is back, FEED_DEAD for good */
    int feed_state;
    char feed_msg[sizeof(((zerr *)0)->msg)];
    _Atomic int feed_nomem;        /* an event could not be queued */
    unsigned feed_hold_ms;         /* ZEOLITE_FEED_HOLD_MS (test hook) */
    int shared;                    /* other servers commit to its database */
    /* calls answered after a store_sync (sync.c): the round running, and
     * those that came after it began, oldest first */
    struct zsrv_syncwait *sync_round;
    struct zsrv_syncwait *sync_next, *sync_next_tail;
    int sync_running;
};

typedef struct zsrv_listener {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    zsrv *srv;
    char *unix_path;               /* removed at close */
    char name[INET6_ADDRSTRLEN + 16];   /* "HOST:PORT" or the path, for errors */
    char logged[INET6_ADDRSTRLEN + 16]; /* "HOST port PORT" or the path, for the log */
    struct zsrv_listener *next;
} zsrv_listener;

struct zsrv {
    const zsrv_config *cfg;
    uv_loop_t *loop;
    zsrv_storage *storages;
    size_t n_storages;
    zsrv_listener *listeners;
    zsrv_conn *conns;              /* every open connection */
    size_t n_conns;
    zsrv_conn *dirty;              /* connections with output to flush */
    size_t n_iters;                /* iterators open on every connection (iter.c) */
    uv_check_t flush_check;
    uv_async_t commit_async;
    pthread_mutex_t done_lock;
    zsrv_commit *done_head, *done_tail;
    int done_closed;               /* the loop is gone: done_push refuses */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr2;
    uv_timer_t stop_timer;
    uv_timer_t refresh_timer;
    void *ssl_ctx;                 /* SSL_CTX *, NULL without TLS */
    /* memory shared by the connections (budget.c) */
    uint64_t in_used;              /* request memory: the large frames admitted */
    uint64_t in_peak;              /* the most they and their decoding reserve took */
    zsrv_waitq in_wait;            /* frames waiting */
    uint64_t decoded_peak;         /* the largest request, decoded, with its copies */
    uint64_t decoded_peak_frame;   /* ... and its frame's length */
    uint64_t frames_refused;       /* could never fit request-memory */
    uint64_t out_total;            /* output held by all connections */
    uint64_t out_peak;
    zsrv_waitq out_wait;           /* replies waiting */
    uint64_t replies_waited;
    int out_over;                  /* out_total reached output-memory */
    /* out_total, or UINT64_MAX while replies wait: what a reply built off
     * the loop reads to know that it would wait (zsrv__job_would_wait) */
    _Atomic uint64_t out_busy;
    int wake;                      /* memory went back: look at the queues */
    int over_max_logged;           /* max-connections refusals are logged once a burst */
    int stopping;
    int exit_status;
    struct zsrv_metrics *metrics;  /* the Prometheus endpoint, or NULL */
    uint64_t accepted;             /* connections accepted */
    uint64_t unreg_bytes_in, unreg_bytes_out;   /* before a register */
    int log_open;                  /* the log file is open (after the bind) */
    int pid_written;               /* the pid file is ours to remove */
    char rbuf[65536];              /* read buffer shared by all connections */
    zbuf load_data;                /* a loaded object on its way to the reply (read.c) */
};

/* ---- connections ------------------------------------------------------- */

typedef enum zsrv_conn_state {
    ZSRV_CONN_HANDSHAKE,    /* announcement sent, waiting for Z5/M5/ruok */
    ZSRV_CONN_UNREGISTERED, /* only register allowed */
    ZSRV_CONN_REGISTERED,
    ZSRV_CONN_CLOSING,
} zsrv_conn_state;

typedef enum zsrv_vote_state {
    ZSRV_VOTE_NONE,         /* begun, not voted */
    ZSRV_VOTE_WAITING,      /* queued for its oids' locks */
    ZSRV_VOTE_CONFLICT,     /* holds its oids; conflicts returned, client resolving */
    ZSRV_VOTE_RUNNING,      /* holds its oids; the store votes on a worker */
    ZSRV_VOTE_OK,           /* holds its oids; voted */
    ZSRV_VOTE_FINISHING,    /* handed to the writer */
} zsrv_vote_state;

typedef struct zsrv_txn {
    int active;
    zv_arena *arena;               /* txn id, vote msgid */
    zv *id;                        /* the client's txn id, compared with zv_equal */
    store_txn *t;
    zsrv_vote_state vote;
    zv *vote_msgid;
    int had_conflicts;
    /* commit locks (lock.c) */
    struct zsrv_oidlock *locks;    /* what its vote locks, one entry per oid */
    size_t n_locks, cap_locks;
    size_t n_locked;               /* how many of them it holds now */
    int exclusive;                 /* store_txn_exclusive */
    int holding;                   /* its oids are locked for it */
    double lock_time;              /* when it took them */
    zsrv_conn *lock_prev, *lock_next;   /* zsrv_storage.holders */
    double resolving_since;        /* when its vote returned conflicts, while
                                      holding; 0 when not resolving */
    zsrv_conn *resolve_prev, *resolve_next;   /* zsrv_storage.resolvers */
    zsrv_conn *wait_next;          /* zsrv_storage.wait_head queue */
    zerr deferred;                 /* first bad argument of a queued call: fails the vote */
    uint64_t vote_t0;              /* the vote's arrival (metrics), or 0 */
    uint64_t wait_t0;              /* when it asked for its locks (metrics), or 0 */
    int blob_failed;               /* the blob upload under way could not be written */
    struct zsrv_vjob *vjob;        /* ZSRV_VOTE_RUNNING: the vote's job */
} zsrv_txn;

typedef struct zsrv_iter {
    struct zsrv_iter *next;
    int64_t id;
    store_iter *it;                /* NULL: an empty iterator */
    int is_record;                 /* record iterator (iterator_record_start) */
    uint64_t last_tid;             /* txn iterators: tid last returned */
    int has_last;
    int busy;                      /* a job uses it (it and the fields above
                                      are that job's until it ends) */
    int dead;                      /* forgotten while busy: freed by the job */
} zsrv_iter;

typedef struct zsrv_blob_out {     /* sendBlob in progress */
    int fd;                        /* -1: its file is being opened off the loop */
    uint64_t oid, serial;
    zv_arena *arena;
    zv *msgid;
} zsrv_blob_out;

struct zsrv_conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;              /* handshake timeout */
    uv_write_t wreq;
    zsrv *srv;
    int open_handles;              /* freed when both handles are closed */
    zsrv_conn_state state;
    proto_enc enc;
    proto_framer fr;
    zv_arena *arena;               /* one decoded message at a time */
    zbuf out;                      /* encoded output not yet written */
    zbuf wbuf;                     /* output being written */
    int writing;
    int dirty;
    zsrv_conn *dirty_next;
    int close_after_flush;
    int reading;                   /* uv_read_start is active */
    int in_dispatch;               /* guards re-entrant frame processing */
    zsrv_tls *tls;
    zbuf tls_out;                  /* TLS records waiting to be written */
    char peer[80];
    char *label;
    zsrv_conn *next, *prev;        /* zsrv.conns */
    /* registration */
    zsrv_storage *stor;
    zsrv_conn *snext, *sprev;      /* zsrv_storage.conns */
    int read_only;
    int loop_reads;                /* registered on a storage read on the loop */
    /* transaction */
    zsrv_txn txn;
    zbuf deferred;                 /* replies held back (votes, sync.c) until the commits
                                      handed off before them are complete
                                      (deferred_seq) and deferred_tid is visible */
    uint64_t deferred_seq, deferred_tid;
    /* reply slots (slot.c) and jobs off the loop (job.c) */
    struct zsrv_slot *slot_head, *slot_tail;
    size_t slot_bytes;             /* held in the slots (counted as output) */
    size_t n_jobs;                 /* jobs under way for it: it is freed after them */
    int job_wait;                  /* a call waits for one of its jobs to end */
    int jobs_hold;                 /* job_wait, or ZSRV_JOBS_MAX jobs: take no request */
    struct zsrv_cjob *parked;      /* jobs whose replies wait for output memory */
    /* blob upload */
    int blob_fd;
    char blob_tmp[4096];
    /* blob download */
    zsrv_blob_out *blob_out;
    /* iterators */
    zsrv_iter *iters;
    int64_t next_iter_id;
    /* metrics */
    uint64_t call_t0;              /* the call being dispatched arrived (0: no metrics) */
    /* shared memory (budget.c) */
    int in_admitted;               /* the next frame's header was admitted */
    uint32_t in_frame;             /* a large admitted frame's length, in in_used */
    zsrv_waitlink in_link;         /* in zsrv.in_wait */
    size_t out_held;               /* counted in out_total */
    size_t out_need;               /* a reply waiting for output memory: its size */
    int out_granted;               /* its turn came: the reply goes out */
    size_t out_mark;               /* output still to write at the last tick */
    uint64_t out_moved;            /* when (uv_now) it last changed */
    zsrv_waitlink out_link;        /* in zsrv.out_wait */
};

/* Output beyond which a connection stops reading until its peer catches up. */
#define ZSRV_OUT_HIGH (4u * 1024 * 1024)
/* Output buffers over this size are freed once written out. */
#define ZSRV_OUT_KEEP (64u * 1024)
/* Past output-memory, a connection holding this much takes no request, and
 * a reply larger than this waits (budget.c). */
#define ZSRV_OUT_SHARE (64u * 1024)
/* Frames up to this size are a connection's own, not request-memory's. */
#define ZSRV_IN_SMALL (64u * 1024)
/* The most a copy kept after its call (a msgid answered later, a
 * transaction id) may take (zv_copy_cost): real ones are ints or an (oid,
 * tid) pair. */
#define ZSRV_KEEP_MAX (8u * 1024)
/* Invalidations a client leaves unread beyond this close it: it is not
 * reading, and would otherwise hold the server's memory without bound
 * (budget.c closes it sooner while output memory is short). */
#define ZSRV_OUT_MAX (256u * 1024 * 1024)
/* Calls of one connection under way off the loop; past it, it takes no new
 * request until one ends (their replies wait in its slots). */
#define ZSRV_JOBS_MAX 32
/* Worker threads of a storage whose store calls run off the loop: reads
 * (loads, history, iteration...) and writes (votes, new_oids), so that
 * votes waiting in the database never hold up loads, nor the reverse. On
 * PostgreSQL there are as many read workers as the store's read
 * connections (pool-size), ZSRV_POOL_READERS by default. */
#define ZSRV_POOL_READERS 4
#define ZSRV_POOL_WRITERS 2

/* ---- calls ------------------------------------------------------------- */

/* One call being served. A handler either replies (sync calls), or returns a
 * negative ZE_* code with err filled; the dispatcher then sends the error
 * reply (exc when a handler built one, else proto_exc_from_err(err)) or, for
 * async calls, closes the connection. */
typedef struct zsrv_call {
    zsrv_conn *c;
    const proto_msg *m;
    const zv *args;                /* m->args: the arguments tuple, for proto_arg_* */
    zv *const *argv;
    size_t argc;
    zv_arena *a;
    proto_exc exc;                 /* class_path NULL: derived from err */
    zerr err;
    int retry;                     /* changes nothing: may wait for output memory */
    size_t kept;                   /* bytes kept of it past the call (zsrv__keep) */
    /* the store part of the call (zsrv__offload) */
    zsrv_storage *st;              /* c's storage at dispatch */
    store_reader *rd;              /* a reader seeing at least `visible` */
    uint64_t visible;              /* the snapshot the call reads as of */
    void *ctx;                     /* the handler's data for its body */
    struct zsrv_cjob *job;         /* run off the loop: its job, else NULL */
    size_t method;                 /* index in the method table (metrics) */
} zsrv_call;

typedef int (*zsrv_handler)(zsrv_call *call);

/* A growing array of values, turned into a list at the end (read.c). */
typedef struct zsrv_vec {
    zv **items;
    size_t n, cap;
} zsrv_vec;

/* ---- server.c: storages, the loop, start and stop ---------------------- */

/* The storage a client registers with, by name; NULL when none has it. */
zsrv_storage *zsrv__find_storage(zsrv *s, const char *name, size_t len);
/* During a shutdown: stop once nothing can still finish (after commits
 * and jobs end). */
void zsrv__stop_progress(zsrv *s);
/* Stop as SIGTERM does, exiting with status (a supervisor restarts it). */
void zsrv__stop(zsrv *s, const char *why, int status);
/* Queue cm (a commit's callback or a feed event) for the loop, in the
 * order of the calls, and wake the loop; any thread. -1 (cm not taken)
 * once the loop has stopped. */
int zsrv__done_push(zsrv *s, zsrv_commit *cm);

/* ---- feed.c: the other servers of a shared database -------------------- */

#define ZSRV_FEED_LOST 1
#define ZSRV_FEED_DEAD 2
/* Start st's feed (a shared PostgreSQL storage): before clients connect;
 * its catch-up is queued before this returns. */
int zsrv__feed_start(zsrv_storage *st, zerr *err);
/* A feed event reached the loop, in its place among the commits: send its
 * invalidations, or close and refuse the storage's clients while the feed
 * is lost. Frees cm. */
void zsrv__feed_event(zsrv_commit *cm);
/* Queued events failed for want of memory: the storage is treated as lost
 * for good (its clients could miss an invalidation); so is a store that
 * refuses its database (store_refused: a standby promoted behind what it
 * served). Called after each batch of commits and of calls run off the
 * loop. */
void zsrv__feed_check(zsrv_storage *st);
/* Free the feed events of a done list the loop never processed. */
void zsrv__feed_drop(zsrv_commit *list);

/* ---- sync.c: the last tid of a shared database, never behind ---------- */

/* How long a store_sync may wait before the server answers what it has. */
#define ZSRV_SYNC_MS 10000
/* 1 when the call's answer on st names the database's last tid only after
 * a store_sync (a shared storage whose store calls run off the loop). */
int zsrv__sync_needed(const zsrv_storage *st, const zsrv_call *call);
/* Answer the call (register, lastTransaction) with the last tid once the
 * storage knows every commit the database held when the call came, and
 * each one's invalidation has been queued to c: after a store_sync on a
 * worker. 0 (the reply will come), or a ZE_* with call->err set. */
int zsrv__sync_reply(zsrv_call *call);

/* ---- listen.c: TCP and Unix listeners ---------------------------------- */

/* A listening address, as -a or <zeo> address gives it: a Unix socket path
 * (it has a '/'), or HOST:PORT, [V6]:PORT, :PORT or PORT (host "" is every
 * IPv4 interface), the port in 1-65535. */
typedef struct zsrv_address {
    int is_unix;
    char host[256];
    char port[8];
} zsrv_address;

/* Parse an address; ZE_INVAL with a message naming it and what is wrong. */
int zsrv__address_parse(const char *address, zsrv_address *out, zerr *err);
/* The socket addresses a TCP address names (getaddrinfo's list: the caller
 * frees it with freeaddrinfo); ZE_INVAL naming the host when it does not
 * resolve. */
struct addrinfo;
int zsrv__address_resolve(const char *address, const zsrv_address *a, struct addrinfo **res,
                          zerr *err);
/* Bind every address the host resolves to (or the Unix socket), without
 * listening yet and without logging (the log may not be open yet). */
int zsrv__bind(zsrv *s, const char *address, zerr *err);
/* Listen on what zsrv__bind bound, logging each address. */
int zsrv__listen_start(zsrv *s, zerr *err);
void zsrv__listen_close(zsrv *s);

/* ---- preflight.c: what a start checks before it changes anything ------ */

/* The address resolves, the TLS files load (s->ssl_ctx is made), the pid
 * file's and the log file's folders are there and writable, and each
 * storage path is a zeolite database, or a folder that can be made one: not
 * a FileStorage (refused with the `zeolite import` line that converts it);
 * a PostgreSQL database is first reached when the storage opens. Creates
 * nothing on disk. */
int zsrv__preflight(zsrv *s, zerr *err);
/* --test: open each existing database read-only, as a start would open it
 * (PostgreSQL: reached, and its schema checked unless it has none yet). */
int zsrv__preflight_storages(zsrv *s, zerr *err);

/* ---- conn.c: connections, reading and writing -------------------------- */

void zsrv__conn_accept(zsrv *s, uv_stream_t *server, int is_pipe);
/* Close now (pending output is dropped), logging why at level. */
void zsrv__conn_close(zsrv_conn *c, int level, const char *why);
/* Mark for flushing at the end of this loop iteration. */
void zsrv__conn_mark_dirty(zsrv_conn *c);
void zsrv__flush_dirty(zsrv *s);
/* Take up a connection that waited (for memory): run its held frames and
 * read again if nothing else holds it. */
void zsrv__conn_resume(zsrv_conn *c);
/* One of c's jobs has ended (c->n_jobs counted it): free a closed c after
 * its last, or take up one that waited for it. */
void zsrv__conn_job_end(zsrv_conn *c);

/* ---- budget.c: request and output memory shared by all connections ----- */

/* c's next frame announces len bytes: 1 admitted (read it), 0 it waits (c
 * is queued and resumed later), -1 it never can fit (c was closed). */
int zsrv__in_admit(zsrv_conn *c, uint32_t len);
/* The largest frame request-memory can take (smaller ones are refused). */
uint64_t zsrv__in_largest_frame(const zsrv_config *cfg);
/* c's admitted frame was handled: its request memory goes back. */
void zsrv__in_release(zsrv_conn *c);
/* One request took bytes (decoded, with what was kept of it): for status. */
void zsrv__note_decoded(zsrv *s, size_t frame, size_t bytes);
/* Output c holds: queued, being written, TLS records. */
size_t zsrv__out_held(const zsrv_conn *c);
/* c's output changed: recount it (every append and write calls this). */
void zsrv__out_update(zsrv_conn *c);
/* c takes no new request because of its output, its own or everyone's. */
int zsrv__out_paused(const zsrv_conn *c);
/* A reply of size bytes to a call that can run again: 1 when it must wait
 * for output memory (c is queued; its frame is to be given back). */
int zsrv__out_must_wait(zsrv_conn *c, size_t size);
/* From any thread: 1 when a reply of size bytes would most likely have to
 * wait, as the budget stood last on the loop (zsrv__job_would_wait). */
int zsrv__out_busy_would_wait(zsrv *s, size_t size);
/* Resume the connections whose memory is there now; from the loop's flush
 * only. 1 when any was resumed. */
int zsrv__budget_wake(zsrv *s);
/* c closes: its memory goes back and it leaves the queues. */
void zsrv__budget_forget(zsrv_conn *c);
/* Once a second: while replies wait for output memory or the total is past
 * output-memory, a connection holding ZSRV_OUT_SHARE whose output has not
 * moved for handshake-timeout seconds is closed. */
void zsrv__budget_tick(zsrv *s);

/* ---- tls.c: TLS sessions ----------------------------------------------- */

int zsrv__tls_ctx_new(zsrv *s, const zsrv_config *cfg, zerr *err);
void zsrv__tls_ctx_free(zsrv *s);
zsrv_tls *zsrv__tls_new(zsrv *s);
void zsrv__tls_free(zsrv_tls *t);
/* Feed ciphertext; decrypted bytes are appended to plain, TLS records that
 * must go to the peer to cipher. ZE_PROTO when the TLS session failed. */
int zsrv__tls_read(zsrv_tls *t, const void *p, size_t n, zbuf *plain, zbuf *cipher, zerr *err);
/* Encrypt plaintext into cipher (held until the handshake is done). */
int zsrv__tls_write(zsrv_tls *t, const void *p, size_t n, zbuf *cipher, zerr *err);

/* ---- slot.c: the order of a connection's output ------------------------ */

/* A reply reserved at dispatch for a call that runs off the loop. Whatever
 * the connection is sent after the reservation (replies, invalidations,
 * info) collects behind it, and goes out only once the reply is in and
 * every slot before it has gone. */
typedef struct zsrv_slot {
    struct zsrv_slot *next;
    int done;
    zbuf reply;                    /* its reply, once done */
    zbuf after;                    /* output produced after it, up to the next slot */
    int blob;                      /* done: the connection's sendBlob starts here */
} zsrv_slot;

/* Where c's next output goes: behind its last slot, or straight out. */
static inline zbuf *zsrv__out_tail(zsrv_conn *c)
{
    return c->slot_tail ? &c->slot_tail->after : &c->out;
}
/* Reserve a slot at the tail; NULL when out of memory. */
zsrv_slot *zsrv__slot_reserve(zsrv_conn *c);
/* The slot's reply is in: move what may go out now to c->out. */
void zsrv__slot_done(zsrv_conn *c, zsrv_slot *sl);
/* c closes: its slots are dropped. */
void zsrv__slots_free(zsrv_conn *c);
/* Bytes c's slots hold. */
size_t zsrv__slots_held(const zsrv_conn *c);
/* Output may have gone behind c's slots: recount c->slot_bytes (before
 * zsrv__conn_mark_dirty counts it as c's output). The writers that may
 * meet slots call it; loads answered on the loop never do. */
static inline void zsrv__slots_count(zsrv_conn *c)
{
    if (c->slot_head)
        c->slot_bytes = zsrv__slots_held(c);
}

/* ---- job.c: store calls off the loop ------------------------------------- */

enum { ZSRV_LANE_READ, ZSRV_LANE_WRITE };

/* One piece of work for a storage's workers. run executes on a worker
 * thread (rd: that worker's reader, refreshed to see at least `visible`,
 * for the READ lane; NULL with rd_err set when it could not be had, and
 * always NULL on the WRITE lane); end runs afterwards on the loop, and
 * frees the job. */
typedef struct zsrv_job {
    struct zsrv_job *next;
    zsrv_storage *st;
    int lane;
    uint64_t visible;              /* the storage's visible tid at submission */
    uint64_t completed;            /* its commits completed then (hold hook) */
    void (*run)(struct zsrv_job *j, store_reader *rd, const zerr *rd_err);
    void (*end)(struct zsrv_job *j);
} zsrv_job;

/* Start (or not, for a storage read on the loop) st's workers. */
int zsrv__pool_start(zsrv_storage *st, zerr *err);
/* Stop and join them; only once no job is left (zsrv.jobs is 0). */
void zsrv__pool_stop(zsrv_storage *st);
/* Queue j (from the loop); its end is certain to run. */
void zsrv__job_submit(zsrv_storage *st, zsrv_job *j, int lane);

/* The body of a call: what it does with the store, and its reply. On the
 * loop, or on a worker where it must touch nothing but the call (its
 * arguments, st->st, rd, visible, ctx) and c's settings (enc, peer,
 * read_only, srv->cfg). Returns as a handler does. */
typedef int (*zsrv_body_fn)(zsrv_call *call);
/* What the loop does once the body ran (rc: its result), or NULL. c may be
 * closing by then (its storage is call->st). */
typedef void (*zsrv_after_fn)(zsrv_call *call, int rc);
/* Run body for a handler that has checked what needs the loop: now on the
 * loop from the loop's reader, or, when the storage runs its store calls
 * off the loop, on a worker into a slot of c's output (the handler then
 * returns 0: the reply will come). ctx (size bytes, at most ZSRV_CTX_MAX)
 * is copied for body and after. lane: ZSRV_LANE_*. */
int zsrv__offload(zsrv_call *call, int lane, zsrv_body_fn body, zsrv_after_fn after,
                  const void *ctx, size_t size);
#define ZSRV_CTX_MAX 64
/* c->n_jobs or c->job_wait changed: whether they hold c's requests. */
static inline void zsrv__jobs_hold(zsrv_conn *c)
{
    c->jobs_hold = c->job_wait || c->n_jobs >= ZSRV_JOBS_MAX;
}
/* Jobs parked for output memory run again (c is no longer waiting). */
void zsrv__jobs_unpark(zsrv_conn *c);
/* c closes: its parked jobs are dropped. */
void zsrv__jobs_parked_free(zsrv_conn *c);
/* In a body run off the loop: the buffer its reply is encoded into. */
zbuf *zsrv__job_out(zsrv_call *call);
/* In a body run off the loop, before it builds a reply of size bytes to a
 * call that can run again: 1 when that reply would wait for output memory
 * (the body then returns ZSRV_RETRY with nothing built, and the call is
 * parked or run again), so that the workers never hold large replies the
 * budget would refuse, as the loop sizes replies before building them. */
int zsrv__job_would_wait(zsrv_call *call, size_t size);
/* Encode the reply (result) or error (e not NULL) of a call run off the
 * loop into its job's buffer; neither: it could not be built (out of
 * memory: the connection closes at the job's end). ZSRV_RETRY, nothing
 * built, when the reply would wait (zsrv__job_would_wait). */
int zsrv__job_encode(zsrv_call *call, const zv *result, const proto_exc *e);
/* A call that must wait for one of c's jobs to end (an iterator in use):
 * ZSRV_RETRY, the frame is run again once one has ended. */
int zsrv__wait_job(zsrv_call *call);
/* In an after function: the sendBlob whose file the body opened streams
 * from the call's slot when its turn comes (blob.c). */
void zsrv__job_slot_blob(zsrv_call *call);

/* ---- output.c: replies, errors and callbacks onto a connection --------- */

int zsrv__send_reply(zsrv_conn *c, const zv *msgid, const zv *result);
int zsrv__send_error(zsrv_conn *c, const zv *msgid, const proto_exc *e);
int zsrv__send_async(zsrv_conn *c, const char *name, const zv *args);
/* Error reply class_path(message). */
int zsrv__send_error_msg(zsrv_conn *c, const zv *msgid, const char *cls, const char *msg);

/* ---- dispatch.c: the method table and failed calls --------------------- */

/* The error reply of a failed sync call (call->exc, or the class of rc),
 * onto the connection or into the call's job. */
void zsrv__call_error(zsrv_call *call, int rc);

/* Handle one frame payload received on an established connection: 0, or
 * ZSRV_RETRY when the frame must be given back and run again once output
 * memory allows (c is then queued). */
int zsrv__dispatch(zsrv_conn *c, const uint8_t *p, size_t len);
/* Set a POSKeyError(oid) on the call and return ZE_NOTFOUND. */
int zsrv__fail_poskey(zsrv_call *call, uint64_t oid);
/* Report call->err (already set) as class_path(message) instead of the
 * class of its code; returns its code. */
int zsrv__fail_as(zsrv_call *call, const char *class_path);
/* Reply on behalf of the handler. A call that changes nothing (RETRY in
 * the method table) whose reply must wait for output memory returns
 * ZSRV_RETRY: the handler returns it, and the call runs again later. */
int zsrv__reply(zsrv_call *call, const zv *result);
#define ZSRV_RETRY 2
/* A copy of v in a that outlives the call (what = "message id",
 * "transaction id"): NULL with call->err set when out of memory, or
 * ZE_TOOBIG when v is over ZSRV_KEEP_MAX. */
zv *zsrv__keep(zsrv_call *call, zv_arena *a, const zv *v, const char *what);
/* The call's msgid, for a reply sent after the handler returned: a
 * zsrv__keep copy in a new arena, *arena (the caller frees it). NULL with
 * call->err set and *arena NULL when it cannot be kept. */
zv *zsrv__keep_msgid(zsrv_call *call, zv_arena **arena);

/* The method table's size, and the name of entry i (metrics). */
size_t zsrv__method_count(void);
const char *zsrv__method_name(size_t i);

/* ---- read.c: register, loads, oids, history ---------------------------- */

int zsrv__m_register(zsrv_call *call);
int zsrv__m_get_info(zsrv_call *call);
int zsrv__m_last_transaction(zsrv_call *call);
int zsrv__m_load_before(zsrv_call *call);
/* Read and answer the frame payload p if it is a loadBefore call in the
 * reference clients' exact bytes on a registered connection and the object
 * has a revision before the tid: 1 then, or ZSRV_RETRY when the reply must
 * wait for output memory. 0 leaves the frame, untouched, to
 * zsrv__dispatch's general path (which answers errors as it always does). */
int zsrv__load_fast(zsrv_conn *c, const uint8_t *p, size_t len);
int zsrv__m_load_serial(zsrv_call *call);
int zsrv__m_get_tid(zsrv_call *call);
int zsrv__m_new_oids(zsrv_call *call);
int zsrv__m_new_oid(zsrv_call *call);
int zsrv__m_history(zsrv_call *call);
int zsrv__m_record_iternext(zsrv_call *call);
int zsrv__m_ping(zsrv_call *call);
int zsrv__m_set_client_label(zsrv_call *call);
/* Append x; ZE_NOMEM when x is NULL (a failed constructor) or on failure. */
int zsrv__vec_push(zsrv_vec *v, zv *x);
/* A list in a of the values; frees the array. NULL when out of memory. */
zv *zsrv__vec_list(zsrv_vec *v, zv_arena *a);
/* A history / undo-log entry dict: time, user_name, description, id_key: id,
 * size, then the transaction extension's keys. NULL when out of memory. */
zv *zsrv__txn_dict(zv_arena *a, const store_txn_info *info, const char *id_key, zv *id);

/* ---- txn.c: tpc_begin, the queued operations, tpc_abort ---------------- */

int zsrv__m_tpc_begin(zsrv_call *call);
int zsrv__m_storea(zsrv_call *call);
/* storea read in place (proto_decode_storea_call), stored when it is an
 * async call of the connection's open, unvoted transaction: 1 then. 0 leaves
 * the frame, untouched, to zsrv__dispatch's general path (errors included). */
int zsrv__storea_fast(zsrv_conn *c, const uint8_t *p, size_t len);
int zsrv__m_restorea(zsrv_call *call);
int zsrv__m_check_current(zsrv_call *call);
int zsrv__m_delete_object(zsrv_call *call);
int zsrv__m_tpc_abort(zsrv_call *call);
/* The connection's current transaction if txn matches, else NULL with a
 * StorageTransactionError set on the call. */
zsrv_txn *zsrv__txn_check(zsrv_call *call, const zv *txn);
/* As zsrv__txn_check, and the transaction still accepts operations (not
 * voted, or back from a conflict round). */
zsrv_txn *zsrv__txn_open(zsrv_call *call, const zv *txn);
/* Abort and forget the connection's transaction (disconnect, timeout). */
void zsrv__txn_drop(zsrv_conn *c);
/* An async call of the open transaction failed with rc: keep a bad
 * argument's error (ZE_TYPE, ZE_INVAL, ZE_UNDO) for the vote instead of
 * closing the connection. 1 when kept. */
int zsrv__txn_defer_error(zsrv_call *call, int rc);

/* ---- lock.c: per-oid commit locks, FIFO, the transaction timeout ------- */

/* Lock the oids of c's transaction and vote now, or queue it
 * (ZSRV_VOTE_WAITING) until no other voter holds them. Also for the re-vote
 * after conflicts. */
void zsrv__lock_request(zsrv_conn *c);
/* c's transaction stops waiting or holding (handed to the writer, aborted,
 * dropped): its oids are freed and waiters vote in turn. A no-op otherwise. */
void zsrv__lock_release(zsrv_conn *c);
/* c's vote returned conflicts (resolving 1: the conflict-resolution bound
 * starts, unless it already runs for this hold), or c voted successfully
 * (0: the bound stops). */
void zsrv__lock_resolving(zsrv_conn *c, int resolving);
/* When the oldest holder took its locks (ruok's lock_time), 0 for none. */
double zsrv__lock_oldest(const zsrv_storage *st);

/* ---- vote.c: the vote -------------------------------------------------- */

int zsrv__m_vote(zsrv_call *call);
/* Run the vote of the lock holder c and answer its pending vote call: now,
 * or on a worker (ZSRV_VOTE_RUNNING until it is back). */
void zsrv__vote_run(zsrv_conn *c);
/* Queue the reply to msgid (value, or the exception e when not NULL) on c,
 * registered; or, when it names a tid (reveals), hold it back in
 * c->deferred (vote.c's top) until every commit handed off before it has
 * completed and names, the newest tid it names, is visible, so that it
 * never reaches the client before that tid's invalidation. Replies held
 * back keep their order, and later ones queue behind them. */
void zsrv__reply_ordered(zsrv_conn *c, const zv *msgid, const proto_exc *e, const zv *value,
                         int reveals, uint64_t names);
/* A connection's deferred replies whose commits are complete go out. */
void zsrv__release_deferred(zsrv_storage *st);
/* c's transaction goes while its vote runs on a worker: the vote's job
 * aborts and frees the store transaction when it is back. */
void zsrv__vote_orphan(zsrv_conn *c);

/* ---- finish.c: tpc_finish and the commits in flight -------------------- */

int zsrv__m_tpc_finish(zsrv_call *call);
/* The store's callback for cm has run (called on the loop thread). */
void zsrv__commit_done(zsrv_commit *cm);
/* Refresh the loop's reader (a storage read on the loop), then complete
 * (invalidations, replies) every commit that became visible or whose
 * callback came, oldest first, moving the visible tid. Every refresh goes
 * through here, so no reply can show a tid before its invalidation. */
void zsrv__storage_sync(zsrv_storage *st);
/* Send info({length, size}) to one connection. */
void zsrv__send_info(zsrv_conn *c);

/* ---- invalidate.c: the invalidation queue and getInvalidations --------- */

int zsrv__invq_init(zsrv_storage *st, size_t cap, zerr *err);
void zsrv__invq_free(zsrv_storage *st);
void zsrv__invq_push(zsrv_storage *st, uint64_t tid);
/* invalidateTransaction(tid, oids) to every registered connection but skip. */
void zsrv__invalidate(zsrv_storage *st, zsrv_conn *skip, uint64_t tid,
                      const uint64_t *oids, size_t n);
int zsrv__m_get_invalidations(zsrv_call *call);

/* ---- undo.c: undoLog, undoInfo, undoa ---------------------------------- */

int zsrv__m_undo_log(zsrv_call *call);
int zsrv__m_undo_info(zsrv_call *call);
int zsrv__m_undoa(zsrv_call *call);

/* ---- blob.c: blob upload and download ---------------------------------- */

int zsrv__m_store_blob_start(zsrv_call *call);
int zsrv__m_store_blob_chunk(zsrv_call *call);
int zsrv__m_store_blob_end(zsrv_call *call);
int zsrv__m_store_blob_shared(zsrv_call *call);
int zsrv__m_send_blob(zsrv_call *call);
void zsrv__blob_upload_discard(zsrv_conn *c);
void zsrv__blob_out_free(zsrv_conn *c);
/* The sendBlob whose file is open (c->blob_out) starts streaming now:
 * receiveBlobStart, and chunks as c's output drains. 0, or <0 when it
 * could not start (c is then closed). */
int zsrv__blob_out_start(zsrv_conn *c);
/* Queue more receiveBlobChunk frames; 1 while the download goes on. */
int zsrv__blob_out_pump(zsrv_conn *c);

/* ---- iter.c: transaction and record iterators -------------------------- */

int zsrv__m_iterator_start(zsrv_call *call);
int zsrv__m_iterator_next(zsrv_call *call);
int zsrv__m_iterator_record_start(zsrv_call *call);
int zsrv__m_iterator_record_next(zsrv_call *call);
int zsrv__m_iterator_gc(zsrv_call *call);
void zsrv__iters_free(zsrv_conn *c);

/* ---- pack.c: pack on the thread pool ----------------------------------- */

int zsrv__m_pack(zsrv_call *call);
/* The connection goes away: a running pack will not reply to it. */
void zsrv__pack_detach(zsrv_conn *c);

/* ---- resolve.c: the stores' conflict resolver --------------------------- */

/* The resolver a storage's store gets unless client-conflict-resolution is
 * true (it logs under the storage's name, which must outlive the store). */
store_resolver zsrv__resolver(const zsrv_storage_cfg *sc);

/* ---- status.c: server_status and ruok ---------------------------------- */

int zsrv__m_server_status(zsrv_call *call);
/* zeolite_memory(): zeolite's own call (no ZEO client sends it), the
 * figures of budget.c as a dict of ints, and "jobs", the store calls
 * submitted off the loop and not yet ended, for tests and monitoring. */
int zsrv__m_memory_status(zsrv_call *call);
/* The ruok JSON for every storage, appended to out. */
int zsrv__status_json(zsrv *s, zbuf *out);

/* ---- metrics.c: the Prometheus endpoint --------------------------------- */

/* Serve GET /metrics on address (HOST:PORT) from the loop: libmicrohttpd
 * in its external-epoll mode, its epoll fd polled by the loop, so the text
 * is built from the loop's own counters on the loop's thread. */
int zsrv__metrics_start(zsrv *s, const char *address, zerr *err);
/* Close its loop handles (shutdown). */
void zsrv__metrics_stop(zsrv *s);
/* After the loop has ended: the daemon and the histograms. */
void zsrv__metrics_free(zsrv *s);
/* Now in ns when metrics are served, else 0 (nothing is timed). */
static inline uint64_t zsrv__mx_clock(const zsrv *s)
{
    return s->metrics ? uv_hrtime() : 0;
}
/* A call of method (its index) on st took from t0 to now; t0 0: nothing. */
void zsrv__mx_call(zsrv_storage *st, size_t method, uint64_t t0);
/* The same by the method's name, for replies sent after the call. */
void zsrv__mx_reply(zsrv_storage *st, const char *method, uint64_t t0);
/* The dispatched call's arrival, handed to whoever answers it later (its
 * dispatch then does not time it). */
static inline uint64_t zsrv__mx_take(zsrv_conn *c)
{
    uint64_t t = c->call_t0;
    c->call_t0 = 0;
    return t;
}
/* Bytes read from or handed to c's socket. */
void zsrv__mx_bytes(zsrv_conn *c, size_t in, size_t out);
/* A vote asked for its locks at t0 and has them now. */
void zsrv__mx_lock_wait(zsrv_storage *st, uint64_t t0);

/* ---- notify.c: systemd's notification socket ---------------------------- */

/* Send state ("READY=1", "STOPPING=1"...) to $NOTIFY_SOCKET; nothing when
 * it is unset. 0, or a negative ZE_* (logged). */
int zsrv__notify(const char *state);
/* RELOADING=1 with the monotonic clock systemd 253 asks for. */
int zsrv__notify_reloading(void);

/* ---- log.c: the log (logfmt.c: records, formats, levels) -------------- */

/* Process-wide logger (a log file is a process resource, as stderr is):
 * cfg's handlers, or stderr when it has none. Opens every file and socket
 * (the files are created), replacing the handlers in use only when all
 * opened. */
int zsrv__log_setup(const zsrv_config *cfg, zerr *err);
/* What zsrv__log_setup would refuse, creating nothing: a log file that
 * cannot be written (or its folder), a syslog address that does not
 * resolve. For --test, and before a start creates anything. */
int zsrv__log_check(const zsrv_config *cfg, zerr *err);
/* SIGUSR2: reopen the files (rotating ones roll over). */
int zsrv__log_reopen(void);
/* Back to stderr. */
void zsrv__log_close(void);
/* 1 when the log reaches stderr (no handler yet, or a STDERR one): a start
 * error, which the command prints there, is then not logged again. */
int zsrv__log_reaches_stderr(void);
void zsrv__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The store's log (store_log_fn), data the storage's name: its lines go to
 * the server's log as zeolite.store. Thread-safe, as zsrv__log is. */
void zsrv__log_store(void *storage_name, int level, const char *msg);
/* Tests: the clock rotation and the record times read (NULL: the real one). */
void zsrv__log_set_clock(double (*now)(void));

/* A rendered record is cut at this size. */
#define ZSRV_LOG_LINE 8192

/* One log record, the fields a format may name. */
typedef struct zsrv_logrec {
    int level;
    const char *name;              /* zeolite.server, zeolite.store */
    const char *message;
    struct timeval tv;             /* created */
    double relative_ms;            /* since the log was set up */
    long pid, thread;              /* thread: the kernel's thread id */
} zsrv_logrec;

/* A ZConfig level: a name (critical, fatal, error, warn, warning, info,
 * blather, debug, trace, all, notset) or 0..50; -1 otherwise. */
int zsrv__log_level_parse(const char *s);
/* logging.getLevelName: "INFO", or "Level 15" in buf. */
const char *zsrv__log_level_name(int level, char *buf, size_t cap);
/* 0 when every %-directive of fmt names a field zeolite has, with a
 * conversion that fits it; ZE_INVAL naming the first that does not. */
int zsrv__logfmt_check(const char *fmt, zerr *err);
/* Render r with a checked format into buf (NUL-terminated, cut at cap);
 * returns the length. */
size_t zsrv__logfmt_render(const char *fmt, const char *datefmt, const zsrv_logrec *r,
                           char *buf, size_t cap);
/* ZConfig's escaped_string: a copy of v with \n \t \b \f \r made the
 * characters (malloc'd; NULL when out of memory). */
char *zsrv__log_unescape(const char *v);

/* ---- config.c: the configuration and zeo.conf (cmdline.c: the flags) --- */

/* Replace *dst with a copy of v. */
int zsrv__conf_str(char **dst, const char *v, zerr *err);
/* Add a storage, an LMDB folder (path) or a PostgreSQL database (dsn), or
 * neither yet (a zeo.conf section fills it in); name NULL means the next
 * free number ("1", "2", ...), as runzeo names its -f storages. */
int zsrv__conf_add_storage(zsrv_config *c, const char *name, const char *path,
                           const char *dsn, zerr *err);
/* A number of seconds (>= 0); ZE_INVAL when v is none. */
int zsrv__conf_number(const char *v, double *out);
/* A bound in seconds: finite and more than 0; ZE_INVAL otherwise. */
int zsrv__conf_bound(const char *v, double *out);
/* --log-file PATH: the log goes to PATH (STDOUT, STDERR, "-" for stderr)
 * alone, replacing the handlers configured so far. */
int zsrv__conf_log_file(zsrv_config *c, const char *path, zerr *err);
/* A count or byte size (ZConfig's KB/MB/GB suffixes) within 0..max;
 * ZE_INVAL when v is none. */
int zsrv__conf_size(const char *v, long long max, long long *out);
/* The memory keys, the same in zeo.conf and as flags: max-frame,
 * request-memory, output-memory, max-connections. 0, ZE_INVAL for a bad
 * value, ZE_NOTFOUND for another key. */
int zsrv__conf_memory(zsrv_config *c, const char *key, const char *v);
#define ZSRV_MIN_REQUEST_MEMORY (4u * 1024 * 1024)
#define ZSRV_MIN_OUTPUT_MEMORY (1u * 1024 * 1024)
/* Every zeo.conf key the parser accepts, section by section (section names
 * lower case, without brackets; keys that exist only to be refused with a
 * reason are left out): for the documentation test, which checks that the
 * example zeo.conf and the man page describe each one. */
void zsrv__conf_keys(void (*fn)(void *arg, const char *section, const char *key), void *arg);

#endif
