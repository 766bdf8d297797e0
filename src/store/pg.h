/* pg.h: the PostgreSQL backend of the store (private to src/store/).
 *
 * ---- schema (STPG_SCHEMA_VERSION 1, all in the schema "zeolite") ----------
 *
 * Oids and tids are unsigned 64-bit; they are stored as bigint holding the
 * value XOR 2**63, so that PostgreSQL's order of the bigint is the order of
 * the value (stpg_enc / stpg_dec). Nothing is updated in place by a commit:
 * commits only insert. Pack deletes, marks transactions packed and turns a
 * current back-pointer into data; a bulk import resolves its back-pointers
 * and hides records once at its end.
 *
 * zeolite.meta (name text PRIMARY KEY, value bigint)
 *     version   STPG_SCHEMA_VERSION (plain)
 *     next_oid  first oid not handed out (encoded); only grows; ST_OID_END
 *               (encoded) once the oid space is used up
 *     last_tid  a floor for the last tid (encoded): the last tid is the
 *               larger of it and max(txns.tid); pack sets it before it may
 *               remove the last transaction
 *     pack_tid  tid of the last pack time (encoded)
 *     objects   number of oids with a record (plain; approximate)
 *
 * zeolite.txns (tid PRIMARY KEY, status "char", username, description,
 *               extension bytea, nrec integer, size bigint)
 *     nrec: records written; size: what the undo log shows as the size
 *     (the sum of the records' lengths as the LMDB store counts them).
 *
 * zeolite.records PRIMARY KEY (tid, idx), INDEX (oid, tid, idx)
 *     every record of every transaction, idx its position in it (duplicates
 *     of one oid in one transaction are separate rows; loads take the one
 *     with the highest idx);
 *     kind      STORE_REC_DATA / _BACKPTR / _DELETE
 *     flags     STPG_RF_* below
 *     back_tid, back_idx   BACKPTR: one link, as written
 *     data_tid, data_idx   BACKPTR: the DATA record at the end of the chain,
 *                          resolved when written so that a load is one
 *                          lookup; data_tid 0 (encoded) when the chain ends
 *                          in a deletion; NULL only inside a bulk import
 *                          (resolved before it commits)
 *     blob_id   the blob's chunks (zeolite.blob_chunks) when the record has
 *               a blob; a back-pointer imported without its own file shares
 *               its target's, and so does an undo's record
 *     data      DATA: the pickle
 *
 * zeolite.blob_chunks (blob_id, chunk, data) PRIMARY KEY (blob_id, chunk)
 *     blob files in chunks of STPG_BLOB_CHUNK bytes, never whole in memory;
 *     zeolite.blob_ids the sequence of blob_id. The blob folder is a cache
 *     of these (bushy layout, files named as the LMDB store names them).
 *
 * ---- locks ------------------------------------------------------------------
 *
 * Advisory locks of the database (so they hold across processes):
 *   per oid   the one-bigint key space, key = encoded oid: taken at vote,
 *             transaction-scoped, exclusive for an oid the transaction
 *             writes and shared for one it only checks, in ascending oid
 *             order, under lock_timeout; held until commit or abort;
 *   zeolite's own locks, in the two-int4 key space (which never meets the
 *   first): (STPG_LOCK_CLASS, STPG_LOCK_*)
 *     SCHEMA    transaction-scoped: creating the schema
 *     COMMIT    transaction-scoped: from choosing the tid to COMMIT, so tids
 *               commit in increasing order
 *     DATABASE  session: held by every process that writes (a server, an
 *               import) for the store's life, exclusive (another gets
 *               ZE_BUSY) or, by stores opened shared, shared
 *     PACK      session: one pack at a time per database
 *
 * Shared stores NOTIFY STPG_CHANNEL with each commit's tid (16 hex digits),
 * in the commit's own transaction; the feed (pg_feed.c) LISTENs to it.
 *
 * ---- connections ------------------------------------------------------------
 *
 * Loads, history and the other reads take a connection of the read pool
 * (size opt pool_size, default STPG_POOL_DEFAULT) for one call. Votes take one
 * of the write pool and keep it (inside its database transaction) until
 * commit or abort, so loads can never use up what commits need, nor the
 * other way round. Non-resumable iterators and pack open connections of
 * their own, and so does a shared store's change feed (its LISTEN session,
 * application_name "zeolite feed"). A connection that breaks is closed; the next call opens a new
 * one, waiting between failed attempts (backoff). Reads that lose their
 * connection are retried until retry_seconds have passed; writes fail.
 * With a standby (opt.read_dsn, pg_standby.c) what the read pool does
 * goes to a pool of the standby's instead, while reads are there.
 * A new connection may reach another server (a conninfo listing a primary
 * and its standbys: a promoted standby): each is checked against the
 * store's last tid before use (pg_history.c), and the DATABASE lock's
 * session is opened again before the next commit.
 */
#ifndef ZEOLITE_STORE_PG_H
#define ZEOLITE_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/oidmap.h"
#include "common/zbuf.h"
#include "common/zerr.h"
#include "store/backend.h"
#include "store/store.h"
#include "store/txnbuf.h"
#include "store/txnq.h"

#define STPG_SCHEMA_VERSION 1
#define STPG_LOCK_CLASS 0x7a656f6c   /* "zeol" */
enum { STPG_LOCK_SCHEMA = 1, STPG_LOCK_COMMIT = 2, STPG_LOCK_DATABASE = 3, STPG_LOCK_PACK = 4 };

#define STPG_RF_PREV_ZERO 0x01 /* raw FileStorage prev was 0 (kept for export) */
#define STPG_RF_HIDDEN 0x02    /* unreachable through prev: loads skip it */
#define STPG_RF_BLOB 0x04      /* a blob belongs to this record */

#define STPG_POOL_DEFAULT 4
#define STPG_WRITE_MAX 64          /* connections held by voted transactions */
#define STPG_RETRY_DEFAULT 10.0    /* seconds a read retries a lost connection */
#define STPG_LOCK_TIMEOUT_DEFAULT 10000   /* ms a vote waits for an oid's lock */
#define STPG_BLOB_CHUNK (1u << 20)
#define STPG_MAX_RECORD 0x3fffffffu       /* PostgreSQL's bytea limit: 1 GB - 1 */
#define STPG_INDEX_LAST UINT32_MAX        /* "the oid's last record in that txn" */
#define STPG_OID_END UINT64_MAX
#define STPG_CHANNEL "zeolite_commits"

typedef struct stpg_store stpg_store;
typedef struct stpg_conn stpg_conn;

/* ---- encoding ---------------------------------------------------------- */

static inline int64_t stpg_enc(uint64_t v) { return (int64_t)(v ^ 0x8000000000000000ull); }
static inline uint64_t stpg_dec(int64_t v) { return (uint64_t)v ^ 0x8000000000000000ull; }

/* A binary bigint field (8 bytes, big-endian) holding an encoded id. */
static inline uint64_t stpg_get_id(const char *p)
{
    return zbe64((const uint8_t *)p) ^ 0x8000000000000000ull;
}
static inline int64_t stpg_get_i64(const char *p) { return (int64_t)zbe64((const uint8_t *)p); }
static inline int32_t stpg_get_i32(const char *p) { return (int32_t)zbe32((const uint8_t *)p); }
static inline int16_t stpg_get_i16(const char *p) { return (int16_t)zbe16((const uint8_t *)p); }

/* Parameters of one statement, all in binary format. */
#define STPG_MAX_PARAMS 12
typedef struct stpg_params {
    int n;
    const char *v[STPG_MAX_PARAMS];
    int len[STPG_MAX_PARAMS];
    int fmt[STPG_MAX_PARAMS];
    uint8_t num[STPG_MAX_PARAMS][8];
} stpg_params;

void stpg_p_id(stpg_params *p, uint64_t id);       /* bigint, encoded */
void stpg_p_i64(stpg_params *p, int64_t v);        /* bigint, as it is */
void stpg_p_i32(stpg_params *p, int32_t v);
void stpg_p_i16(stpg_params *p, int16_t v);
void stpg_p_bool(stpg_params *p, int v);
void stpg_p_bytes(stpg_params *p, const void *data, size_t len);
void stpg_p_null(stpg_params *p);

/* A one-dimensional array parameter in binary format, built in a zbuf:
 * begin with its element type and count, then add each element. */
enum { STPG_INT8 = 20, STPG_INT4 = 23, STPG_INT2 = 21, STPG_BOOL = 16, STPG_BYTEA = 17 };
int stpg_arr_begin(zbuf *b, int elem_oid, size_t n);
int stpg_arr_id(zbuf *b, uint64_t id);
int stpg_arr_i32(zbuf *b, int32_t v);
int stpg_arr_bool(zbuf *b, int v);
int stpg_arr_i64(zbuf *b, int64_t v);     /* as it is, not encoded */
int stpg_arr_null(zbuf *b);

/* ---- binary COPY -------------------------------------------------------- */

/* A row of binary COPY data is appended to a zbuf field by field. */
int stpg_copy_header(zbuf *b);
int stpg_copy_row(zbuf *b, int nfields);
int stpg_copy_id(zbuf *b, uint64_t id);
int stpg_copy_i32(zbuf *b, int32_t v);
int stpg_copy_i16(zbuf *b, int16_t v);
int stpg_copy_i64(zbuf *b, int64_t v);
int stpg_copy_null(zbuf *b);
/* A bytea field of len bytes: the caller appends the bytes after it. */
int stpg_copy_bytes_head(zbuf *b, size_t len);
int stpg_copy_trailer(zbuf *b);

/* COPY ... FROM STDIN (BINARY) on c: start, send, end. */
int stpg_copy_start(stpg_store *s, stpg_conn *c, const char *sql, zerr *err);
int stpg_copy_send(stpg_store *s, stpg_conn *c, const void *p, size_t n, zerr *err);
int stpg_copy_end(stpg_store *s, stpg_conn *c, zerr *err);
/* End a COPY that must not take effect (its transaction then fails). */
void stpg_copy_abort(stpg_store *s, stpg_conn *c);

/* ---- statements ---------------------------------------------------------- */

/* Every statement the backend runs more than once, prepared on first use in
 * each session (pg_sql.c holds their text). */
typedef enum stpg_stmt {
    Q_LAST_TID,
    Q_LOAD_BEFORE,
    Q_LOAD_SERIAL,
    Q_CURRENT,
    Q_HISTORY,
    Q_UNDO_LOG,
    Q_NEXT_OID,
    Q_CHANGES,
    Q_TXN_GET,
    Q_TXN_NEXT,
    Q_TXN_RECORDS,
    Q_LOCK_OIDS,
    Q_CURRENT_TIDS,
    Q_BACKPTR_TARGETS,
    Q_COMMIT_LOCK,
    Q_TXN_INSERT,
    Q_META_BUMP,
    Q_HIDE_OLDER,
    Q_TXN_EXISTS,
    Q_RESERVE_OIDS,
    Q_BLOB_NEW_ID,
    Q_BLOB_CHUNK_PUT,
    Q_BLOB_CHUNKS,
    Q_BLOB_OF,
    Q_REC_GET,
    Q_REC_PREV,
    Q_REC_CURRENT,
    Q_TXN_INSERT_NOTIFY,
    Q_N_STMT
} stpg_stmt;

typedef struct stpg_sql {
    const char *name;
    const char *text;
    int nparams;
} stpg_sql;

extern const stpg_sql store__pg_sql[Q_N_STMT];

/* ---- connections ---------------------------------------------------------- */

enum { STPG_POOL_READ, STPG_POOL_WRITE, STPG_OWN, STPG_STANDBY };

struct stpg_conn {
    PGconn *pg;
    int pool;               /* STPG_POOL_* */
    int broken;             /* lost: closed when released */
    int rc;                 /* the last statement's ZE_* code (0: it worked) */
    uint64_t prepared;      /* bit per stpg_stmt prepared in this session */
    stpg_conn *next;        /* free list */
    char state[6];          /* the last error's SQLSTATE, "" when it had none */
    const char *shown;      /* the server it reaches, for messages (NULL: the
                               primary, s->shown) */
};

typedef struct stpg_pool {
    stpg_conn *free;        /* idle, open */
    int n_out;              /* connections handed out or being opened */
    int max;
} stpg_pool;

/* Open a connection of pool kind (for own connections: not counted in a
 * pool) with the session settings; ZE_IO with libpq's message. */
int store__pg_connect(stpg_store *s, int kind, stpg_conn **out, zerr *err);
/* The same, to another server than the primary (a standby): conninfo and
 * how messages name it. */
int store__pg_connect_to(stpg_store *s, const char *conninfo, const char *shown, int kind,
                         stpg_conn **out, zerr *err);
void store__pg_disconnect(stpg_conn *c);
/* 1 while an idle session is still open (what the server sent meanwhile
 * is read first: the end of a session is noticed here). */
int store__pg_alive(stpg_conn *c);
/* Take a connection of pool kind, waiting for one while the pool is at its
 * size; a new one is opened when none is idle, honouring the backoff.
 * until: a monotonic deadline for waiting on the backoff (0: wait out the
 * backoff once, at most BACKOFF_MAX, so that a vote right after the
 * database came back, or a standby was promoted, does not fail on the
 * backoff of attempts made while it was away). A connection opened after
 * the store's first reaches a database checked by store__pg_check_history. */
int store__pg_acquire(stpg_store *s, int kind, double until, stpg_conn **out, zerr *err);
/* Give c back (closing it when broken or not idle). */
void store__pg_release(stpg_store *s, stpg_conn *c);

/* Prepare q in c's session unless it is already: 0 or the error. */
int store__pg_prepare(stpg_store *s, stpg_conn *c, stpg_stmt q, zerr *err);
/* Run a prepared statement (binary results). On failure: NULL, err filled,
 * c->broken set when the connection is lost. */
PGresult *store__pg_exec(stpg_store *s, stpg_conn *c, stpg_stmt q, const stpg_params *p,
                         zerr *err);
/* Run SQL text once (binary results for params != NULL; text otherwise). */
PGresult *store__pg_query(stpg_store *s, stpg_conn *c, const char *sql, const stpg_params *p,
                          zerr *err);
/* A statement without rows (BEGIN, COMMIT, SET ...): 0 or an error. */
int store__pg_command(stpg_store *s, stpg_conn *c, const char *sql, zerr *err);
/* The error of a failed result (or of the connection when res is NULL) as
 * a ZE_* code with a message naming what; marks c broken when it is lost. */
int store__pg_error(stpg_store *s, stpg_conn *c, const PGresult *res, const char *what,
                    zerr *err);

/* A read: fn runs with a read connection; when that connection is lost the
 * call runs again on a new one, until retry_seconds have passed. On the
 * read side (pg_standby.c: the standby when there is one and it is in use,
 * else the primary). fn may run more than once. */
typedef int (*stpg_read_fn)(stpg_store *s, stpg_conn *c, void *ud, zerr *err);
int store__pg_read(stpg_store *s, stpg_read_fn fn, void *ud, zerr *err);
/* store__pg_read on the primary, whatever the read side (what must see
 * every commit: the feed's catch-up before an own commit). */
int store__pg_read_primary(stpg_store *s, stpg_read_fn fn, void *ud, zerr *err);

double store__pg_now(void);   /* monotonic seconds */

/* Rows a batch reads: batches adapt to the bytes the last one brought, so
 * that one holds about STPG_BATCH_BYTES (and a record past that alone),
 * however large the records: memory does not grow with the database. */
#define STPG_BATCH_BYTES (4u << 20)
int store__pg_next_batch(int rows, const PGresult *res, int max);

/* ---- the store -------------------------------------------------------------- */

typedef struct stpg_txn stpg_txn;
typedef struct stpg_feed stpg_feed;
typedef struct stpg_standby stpg_standby;

struct stpg_store {
    const store_ops *be;    /* &store__pg_ops: first, as backend.h asks */
    char *conninfo;         /* as given (may hold a password: never shown) */
    char *shown;            /* a description without a password, for messages */
    store_options opt;
    double retry_seconds;
    int lock_timeout_ms;

    pthread_mutex_t mu;     /* guards the pools, backoff and the fields below */
    pthread_cond_t cond;    /* a connection was released */
    stpg_pool rpool, wpool;
    int n_own;              /* own connections open (iterators, pack) */
    int failures;           /* connection attempts failed in a row */
    double next_attempt;    /* monotonic time before which none is tried */
    zerr down;              /* why the last attempt failed */
    zerr refused;           /* set once the database is behind the store
                               (pg_history.c): every call fails with it */
    int closing;

    uint64_t last_tid;      /* newest tid known committed */
    uint64_t told_tid;      /* with a feed: the last tid whose event or
                               callback has returned */
    uint64_t pack_tid;

    pthread_mutex_t oid_mu; /* guards next_oid and oid_limit */
    uint64_t next_oid;      /* next oid to hand out from the reserved range */
    uint64_t oid_limit;     /* end of the reserved range */

    stpg_conn *lock_conn;   /* holds the DATABASE lock (writers) */

    /* the committer thread: commits run in order, one at a time */
    pthread_t committer;
    int committer_running;
    pthread_cond_t commit_wake;
    stpg_txn *commit_head, *commit_tail;
    stpg_conn *rollbacks;   /* sessions of aborted transactions to roll back */
    int stopping;

    /* bulk mode (import): one database transaction for everything */
    int bulk;
    void *bulk_state;       /* pg_commit.c's */
    stpg_conn *bulk_conn;
    int bulk_failed;
    zerr bulk_err;
    uint64_t bulk_last_tid;
    uint64_t bulk_max_oid;

    /* the blob cache */
    char *opt_blob_dir;     /* the folder asked for, or NULL: one of our own */
    char *blob_dir;         /* its folder (bushy layout) */
    char *blob_tmp;         /* blob_dir/tmp */
    _Atomic int blob_fd, tmp_fd;   /* replaced when the cache is deleted */
    pthread_mutex_t blob_mu;       /* guards the replacing */
    int retired[16];        /* descriptors replaced, closed at close */
    int n_retired;
    int own_blob_dir;       /* made at open in $TMPDIR: removed at close */

    store_stats stats;
    uint64_t stats_objects; /* objects (meta), adjusted by commits and pack */
    uint64_t size_bytes;    /* pg_database_size, refreshed by commits */
    double size_at;         /* when (monotonic) */
    atomic_int packing;
    stpg_feed *_Atomic feed;   /* the change feed once started (pg_feed.c) */
    stpg_standby *standby;     /* the read side with opt.read_dsn (pg_standby.c) */
};

static inline stpg_store *stpg_of(store *s) { return (stpg_store *)(void *)s; }

/* The DATABASE lock is still held (its session may have ended with a
 * restart of PostgreSQL: it is taken again, or ZE_BUSY). */
int store__pg_check_lock(stpg_store *s, zerr *err);
/* Run statement q on a read connection (retried as store__pg_read): *res. */
int store__pg_fetch(stpg_store *s, stpg_stmt q, const stpg_params *p, PGresult **res,
                    zerr *err);

/* Last committed tid in the database (max of txns and meta last_tid). */
int store__pg_fetch_last_tid(stpg_store *s, stpg_conn *c, uint64_t *tid, zerr *err);
/* Note tid as committed (the store's last tid only grows; waiters of
 * s->cond are woken when it moves). */
void store__pg_note_tid(stpg_store *s, uint64_t tid);
/* "dbname=zodb host=...": what messages show of conninfo (no password),
 * malloc'd in *out; ZE_INVAL when libpq cannot parse it. */
int store__pg_describe(const char *conninfo, char **out, zerr *err);
/* The counter after oid: oid + 1, saturating at STPG_OID_END. */
uint64_t store__pg_oid_after(uint64_t oid);
/* A stored oid moves the in-memory oid counter past it. */
void store__pg_oids_seen(stpg_store *s, uint64_t after);
/* An oid another store committed: skipped when it lies in our range. */
void store__pg_oid_foreign(stpg_store *s, uint64_t oid);
void store__pg_log(stpg_store *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A reader: a tid bound (pg_read.c says why that is a snapshot). */
typedef struct stpg_reader {
    const store_ops *be;
    stpg_store *s;
    uint64_t last_tid;
    oidmap seen;            /* scratch for changes_since */
} stpg_reader;

static inline stpg_reader *stpg_rd(store_reader *r) { return (stpg_reader *)(void *)r; }

/* ---- records ------------------------------------------------------------------ */

/* A record row as the reads decode it (data points into a PGresult). */
typedef struct stpg_rec {
    uint64_t tid;
    uint32_t idx;
    uint8_t kind, flags;
    uint64_t back_tid;
    uint32_t back_idx;
    uint64_t data_tid;      /* BACKPTR: 0 = chain ends in a deletion */
    uint32_t data_idx;
    int64_t blob_id;        /* 0: none */
    const uint8_t *data;
    size_t len;
} stpg_rec;

/* Decode a row of STPG_REC_COLS (pg_sql.c): 0 or ZE_CORRUPT. */
int store__pg_rec_decode(const PGresult *res, int row, stpg_rec *out);
/* Record (oid, tid, idx) (idx STPG_INDEX_LAST: the oid's last record of
 * tid), from c. ZE_NOTFOUND when absent. data valid until *res is cleared. */
int store__pg_rec_get(stpg_store *s, stpg_conn *c, uint64_t oid, uint64_t tid, uint32_t idx,
                      stpg_rec *out, PGresult **res, zerr *err);

/* ---- blobs ---------------------------------------------------------------------- */

/* Make, check and open the blob cache (a folder of its own when the options
 * name none). */
int store__pg_blob_init(stpg_store *s, zerr *err);
void store__pg_blob_close(stpg_store *s);
/* Check a file queued for a transaction, as the LMDB store does. */
int store__pg_blob_check(stpg_store *s, const char *path, int linked_ok, zerr *err);
void store__pg_blob_discard_queued(stpg_store *s, const char *path, int linked_ok);
/* Upload the file path into a new blob (in c's transaction): *blob_id. */
int store__pg_blob_upload(stpg_store *s, stpg_conn *c, const char *path, int linked_ok,
                          int64_t *blob_id, zerr *err);
/* After the commit: the uploaded file becomes the cache's file of (oid, tid). */
void store__pg_blob_cache_put(stpg_store *s, const char *path, int linked_ok, uint64_t oid,
                              uint64_t tid);
/* Remove the cached file of (oid, tid) (pack). */
void store__pg_blob_cache_drop(stpg_store *s, uint64_t oid, uint64_t tid);

/* ---- transactions (pg_txn.c) ----------------------------------------------------- */

/* The same bits, so that rows carry an op's rflags as they are. */
_Static_assert(TXN_RF_PREV_ZERO == STPG_RF_PREV_ZERO && TXN_RF_BLOB == STPG_RF_BLOB,
               "txnq.h's record flags are the PostgreSQL store's");

struct stpg_txn {
    txnq q;                 /* first: the queue and the vote's results (txnq.h) */
    stpg_store *s;
    uint64_t tid;

    stpg_conn *conn;        /* from the first vote to commit or abort, in a
                               database transaction holding the oid locks */
    oidmap locked;          /* oid -> 1 shared, 2 exclusive: locks held */
    uint64_t max_oid;       /* largest oid written */
    uint64_t size;          /* bytes written (the undo log's size) */
    uint32_t n_written;

    uint64_t prev_tid;      /* the last tid when its tid was chosen */
    stpg_txn *feed_next;    /* the feed's own commits in progress */
    int feed_pending;       /* on that list */

    stpg_txn *next_commit;  /* committer queue */
    store_commit_cb cb;
    void *ud;
    int rc;
    zerr err;
    int done;
};

/* Begin the database transaction of t's vote (once) and take the locks of
 * the oids given (sorted, deduplicated here): writes[i] 1 exclusive. */
int store__pg_lock_oids(stpg_txn *t, uint64_t *oids, uint8_t *writes, size_t n, zerr *err);
/* A back-pointer of t whose target is not resolved yet. */
int store__pg_backptr_pending(const txn_op *op);
/* Resolve t's pending back-pointers with c (ZE_NOTFOUND: a target is
 * missing): their index, the end of their chain, the blob they share. */
int store__pg_resolve_backptrs(stpg_txn *t, stpg_conn *c, zerr *err);
/* For the store's resolver (pg_resolve.c; txnq_hooks.revision): a
 * revision's pickle, read in the vote's database transaction. */
int store__pg_revision(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out);
/* Expand t's UNDO operations into records (vote). */
int store__pg_undo_expand(stpg_txn *t, zerr *err);
/* Write t's rows in its connection's transaction and commit (tid chosen
 * under the COMMIT lock): the committer's job, and store_txn_finish's. */
int store__pg_commit_now(stpg_txn *t, zerr *err);
/* Write t's rows into the open bulk transaction (bulk mode). */
int store__pg_bulk_write(stpg_txn *t, zerr *err);
void store__pg_txn_release(stpg_txn *t, int rollback);
/* Give c to the committer thread, which rolls it back and releases it. */
void store__pg_rollback_later(stpg_store *s, stpg_conn *c);
int store__pg_committer_start(stpg_store *s, zerr *err);
void store__pg_committer_stop(stpg_store *s);

/* ---- the change feed (pg_feed.c) ------------------------------------------------ */

/* t chose its tid (the COMMIT lock is held): the feed delivers nothing
 * after it until store__pg_feed_own_end. */
void store__pg_feed_own_begin(stpg_store *s, stpg_txn *t);
/* t's commit ended with rc: the commits of others before its tid are
 * delivered first, then its callback runs (t->cb, if any), in the feed's
 * one sequence; without a feed, only the callback. t may be freed by the
 * callback: nothing touches it afterwards. */
void store__pg_feed_own_end(stpg_store *s, stpg_txn *t, int rc, const zerr *err);
void store__pg_feed_stop(stpg_store *s);
/* Make the feed catch up now (store_sync): nothing when it is not running. */
void store__pg_feed_kick(stpg_store *s);


/* ---- reads from a standby (pg_standby.c) ----------------------------------------- */

/* With opt.read_dsn: the standby's pool, its prober, and the first wait
 * for the store's last tid there (a standby that cannot be reached or lags
 * sends reads to the primary: the open does not fail for it). Nothing
 * without read_dsn. */
int store__pg_standby_open(stpg_store *s, zerr *err);
void store__pg_standby_close(stpg_store *s);
/* tid is about to be told (a commit callback, a feed event, the store's
 * last tid): returns once the read side shows it, or once reads have moved
 * to the primary (the standby lags past read_max_lag or cannot be
 * reached). At once without a standby. */
void store__pg_standby_wait(stpg_store *s, uint64_t tid);
/* A snapshot bound read from the read side (a reader's refresh, a
 * resumable iterator's end): the standby's last tid, or the primary's while
 * reads are there (then the standby must reach it before reads go back). */
int store__pg_read_last_tid(stpg_store *s, uint64_t *tid, zerr *err);
/* The committer's finished commit t (rc, err): its callback in order
 * (store__pg_feed_own_end), with a standby on the publisher's thread, the
 * committer going on meanwhile; at once without one. */
void store__pg_standby_publish(stpg_store *s, stpg_txn *t, int rc, const zerr *err);
/* Returns once every commit handed to the publisher has been told. */
void store__pg_standby_drain(stpg_store *s);
int store__pg_sync(store *s, uint32_t timeout_ms, uint64_t *tid, zerr *err);

/* ---- history (pg_history.c) ---------------------------------------------------------- */

/* The store's refusal of its database (0 while there is none; sticky). */
int store__pg_refusal(stpg_store *s, zerr *err);
/* Check the database of a connection the store just opened against the
 * store's last tid: 0, or ZE_CORRUPT (the refusal, from then on for
 * every call) when its history is behind it or lacks it. */
int store__pg_check_history(stpg_store *s, stpg_conn *c, zerr *err);
/* The same for what a caller read itself: known the store's last tid
 * read before db_last was, has_known whether the database holds it. */
int store__pg_history_behind(stpg_store *s, uint64_t known, uint64_t db_last, int has_known,
                             zerr *err);

/* ---- the backend's functions, one per function of store.h ----------------------- */

int store__pg_open(store **out, const char *conninfo, const store_options *opt, zerr *err);
void store__pg_close(store *s);
int store__pg_is_locked(const char *conninfo);
int store__pg_exists(const char *conninfo);
void store__pg_map_info(store *s, uint64_t *used, uint64_t *size);
uint64_t store__pg_last_tid(store *s);
int store__pg_is_read_only(store *s);
uint64_t store__pg_object_count(store *s);
uint64_t store__pg_size_bytes(store *s);
const char *store__pg_blob_dir(store *s);
int store__pg_new_oids(store *s, int n, uint64_t *out, zerr *err);

int store__pg_reader_new(store *s, store_reader **out, zerr *err);
void store__pg_reader_free(store_reader *r);
int store__pg_reader_refresh(store_reader *r, zerr *err);
uint64_t store__pg_reader_last_tid(store_reader *r);
int store__pg_load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data,
                          uint64_t *start, uint64_t *end, zerr *err);
int store__pg_load_serial(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data,
                          zerr *err);
int store__pg_current_tid(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err);
int store__pg_history(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud,
                      zerr *err);
int store__pg_undo_log(store_reader *r, int first, int last, store_txn_cb filter,
                       void *filter_ud, store_txn_cb cb, void *ud, zerr *err);
int store__pg_record_iternext(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid,
                              zbuf *data, uint64_t *next, int *has_next, zerr *err);
int store__pg_changes_since(store_reader *r, uint64_t after, uint64_t *latest,
                            store_oid_cb cb, void *ud, zerr *err);

int store__pg_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err);
int store__pg_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out,
                                  zerr *err);
int store__pg_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err);
int store__pg_iter_next_record(store_iter *it, store_record *rec, zerr *err);
void store__pg_iter_close(store_iter *it);

int store__pg_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err);
int store__pg_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial,
                                    const void *data, size_t len, const char *name,
                                    zerr *err);
int store__pg_txn_vote(store_txn *t, store_vote_result *res, zerr *err);
int store__pg_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud,
                         zerr *err);
int store__pg_txn_finish(store_txn *t, uint64_t *tid, zerr *err);
int store__pg_bulk_begin(store *s, zerr *err);
int store__pg_bulk_end(store *s, zerr *err);
int store__pg_bulk_abort(store *s, zerr *err);
void store__pg_txn_abort(store_txn *t);
void store__pg_txn_free(store_txn *t);

int store__pg_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap);
int store__pg_open_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf,
                        size_t cap, int *fd, zerr *err);
int store__pg_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err);
int store__pg_blob_tmpfile(store *s, char *buf, size_t cap, int *fd, zerr *err);
int store__pg_blob_discard(store *s, const char *path);

int store__pg_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err);
void store__pg_get_stats(store *s, store_stats *out);
int store__pg_feed_start(store *s, store_feed_fn fn, void *ud, zerr *err);
int store__pg_refused(store *s, zerr *why);

#endif
