/* store.h: zeolite's object store, a ZODB storage, on one of two backends:
 * LMDB (a folder: the embedded default) or PostgreSQL (a database reached
 * through libpq, which several machines can share).
 *
 * This header is the whole contract between the store and everything above
 * it (server, converter, tools), for both backends; where they differ, it
 * says so ("LMDB:", "PostgreSQL:"), and store_caps tells a caller which
 * differences apply. No LMDB or libpq type or call appears here.
 *
 * Identifiers: oids and tids are uint64_t in host order here; on disk and on
 * the wire they are 8-byte big-endian, so key order is (oid, time) order.
 * A tid is a ZODB TimeStamp (spec zeo-protocol.md section 12).
 *
 * Errors: every fallible call returns 0 or a negative ZE_* code (common/zerr.h)
 * and fills the optional zerr with a printable message.
 *
 * Threads: a store is shared by all threads. A store_reader belongs to one
 * thread at a time. A store_txn belongs to one thread at a time. Commits are
 * serialised inside the store; store_txn_commit hands a voted transaction to
 * a thread of the store, which calls back once it is durable. LMDB: one
 * writer thread, which may group several commits into one durable sync
 * (group commit). PostgreSQL: one committer thread, a commit at a time.
 *
 * Waiting: on LMDB no call waits on anything but the local disk, and reads
 * are cheap enough for an event loop. On PostgreSQL (STORE_CAP_BLOCKING) a
 * call may wait for the network, for a lock another process holds, or for a
 * reconnection: see "Capabilities" for which calls, so that a server runs
 * them off its event loop.
 */
#ifndef ZEOLITE_STORE_H
#define ZEOLITE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zbuf.h"
#include "common/zerr.h"

#define STORE_FORMAT_VERSION 2
#define STORE_TID_MAX UINT64_MAX   /* "load current" bound */
#define STORE_META_MAX 65535       /* user, description, extension: FileStorage's limit */

typedef struct store store;
typedef struct store_reader store_reader;
typedef struct store_txn store_txn;
typedef struct store_iter store_iter;

/* ---- open / close ------------------------------------------------------ */

/* Severity of a line the store logs. */
enum { STORE_LOG_ERROR, STORE_LOG_WARNING, STORE_LOG_INFO };

/* The store's log: what it tells without failing (a pack keeping objects it
 * cannot prove unreachable, a reference to an oid that does not exist...).
 * msg is one line without a newline, valid during the call. It is called on
 * the thread that runs the operation (a pack runs on its caller's thread,
 * possibly beside loads and commits on others), so it must be thread-safe.
 * The store never writes to stderr itself. */
typedef void (*store_log_fn)(void *data, int level, const char *msg);

/* Conflict resolution inside the store: a hook its opener may give (a server
 * resolving well-known classes itself, as ZEO's server does by default).
 *
 * At vote, a store whose serial is not the oid's current one, of a record
 * known() accepts, is offered to resolve() with three records: the revision
 * the client started from (old, the one at its serial), the current one
 * (committed; LMDB: read from the transaction that wrote it while that is
 * still being made durable; PostgreSQL: always durable, read in the vote's
 * database transaction) and the client's (new). When resolve() answers 1 the
 * store writes the record it appended to out in place of the client's, as
 * if the client had stored it against the current serial, and the vote
 * lists the oid in store_vote_result.resolved, not as a conflict. Undo
 * offers it a revert that a later change would otherwise fail ("Some data
 * were modified by a later transaction"): old the record undone, committed
 * the current one, new the one before the undone one, as FileStorage's undo
 * calls conflict resolution; the revert then writes the resolved record.
 * Only data records are offered: never a deletion, a missing revision or a
 * record with a blob, and never a store of an oid the transaction stores
 * again later. A record resolve() returns must be a non-empty pickle within
 * max_record, or the conflict stands.
 *
 * Anything but 1 leaves the conflict as it would be without the hook; the
 * hook cannot fail a vote. Both functions are called on the thread that
 * votes, possibly several at once, and must not call into the store. */
typedef struct store_resolver {
    /* 1 when rec may be of a class resolve() handles: the store reads the
     * other two revisions only then. */
    int (*known)(void *data, const uint8_t *rec, size_t len);
    /* 1 with the resolved record appended to out; else 0, out as it was. */
    int (*resolve)(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                   zbuf *out);
    void *data;
} store_resolver;

typedef struct store_options {
    int read_only;        /* open read-only; writes give ZE_READONLY */
    int create;           /* create the database when there is none */
    int exclusive;        /* LMDB: take the folder's process lock (a server
                             does); another exclusive opener gets ZE_BUSY.
                             PostgreSQL: every opener that writes takes the
                             database lock, exclusive or not (below) */
    int no_sync;          /* skip fsync on commit (tests, bulk import); NOT
                             durable. PostgreSQL: synchronous_commit off in
                             the store's sessions (it is on otherwise,
                             whatever the database's default, or
                             remote_apply when that is the default) */
    uint64_t map_size;    /* LMDB map size in bytes; 0 = a large default.
                             PostgreSQL has none: not 0 gives ZE_NOTSUP */
    uint32_t max_record;  /* largest accepted record; 0 = default (LMDB
                             2 GiB - 1; PostgreSQL 1 GiB - 1, its limit) */
    store_log_fn log;     /* NULL: the store logs nothing */
    void *log_data;       /* passed to log */
    store_resolver resolver; /* resolve NULL: every conflict goes to the caller */
    uint32_t index_batch; /* index entries committed but kept in memory before
                             they are written to the index at once; 0 = default
                             (131072). Tests use 1 to write them after each commit
                             (LMDB only) */
    /* PostgreSQL only (LMDB ignores them): */
    const char *blob_dir; /* the blob cache folder; NULL: one of the store's
                             own in $TMPDIR, removed at close */
    int pool_size;        /* connections for reads; 0 = 4 */
    double retry_seconds; /* how long a read retries a lost connection
                             before it fails; 0 = 10 */
    int lock_timeout_ms;  /* how long a vote waits for an oid's lock held by
                             another process; 0 = 10000 */
    int shared;           /* PostgreSQL: share the database with other stores
                             opened shared, in this process or others (several
                             servers on one database; STORE_CAP_SHARED, "Several
                             stores on one database" below). LMDB: ZE_NOTSUP */
    const char *read_dsn; /* PostgreSQL: a hot standby of the database
                             (conninfo); a reader's reads, blob loads and
                             resumable iterators go there ("Reads from a
                             standby" below). NULL: everything on the
                             primary */
    double read_max_lag;  /* seconds the standby may lag behind a commit
                             before reads go to the primary; 0 = 5 */
} store_options;

/* Open a database. spec is a PostgreSQL connection URI ("postgresql://..."
 * or "postgres://...", store_spec_is_postgresql), opened as
 * store_open_postgresql opens it, or else the folder of an LMDB database
 * (an LMDB environment plus spec/blobs), which may hold unrelated files.
 * A database of another format version gives ZE_VERSION; a missing
 * database without opt->create gives ZE_NOTFOUND. LMDB: stale reader slots
 * and orphan blob files left by a crash are cleared here, and index entries
 * of commits not yet indexed are written (a read-only open keeps them in
 * memory). */
int store_open(store **out, const char *spec, const store_options *opt, zerr *err);

/* 1 when spec is a PostgreSQL URI: what store_open opens on PostgreSQL,
 * and what the converter and the tools take as one (anything else is a
 * folder). */
int store_spec_is_postgresql(const char *spec);

/* Open the PostgreSQL database of conninfo: a URI or libpq's keyword=value
 * pairs ("dbname=zodb host=/run/postgresql", as RelStorage users write it).
 * Messages name the database by its conninfo without the password; the
 * password (better in a passfile or service file than in the URI, which
 * ps shows) is never logged.
 *   - An empty database (no tables) gets the schema, with its version, when
 *     opt->create and not read-only; a database without the zeolite schema
 *     gives ZE_NOTFOUND otherwise. A database with other tables and no
 *     zeolite schema, or a zeolite schema of another version, gives
 *     ZE_VERSION with a message saying what was found.
 *   - A conninfo libpq cannot parse gives ZE_INVAL; a database that cannot
 *     be reached, ZE_IO with libpq's message. Open does not retry.
 *   - Unless read-only, the store holds the database lock for its life (a
 *     session advisory lock, "the DATABASE lock" below): exclusive, so that
 *     a second writer (a second server, an import into a served database)
 *     gets ZE_BUSY; or, with opt->shared, shared with other stores opened
 *     shared (an exclusive opener, an import say, then gets ZE_BUSY, and a
 *     shared opener gets ZE_BUSY while an exclusive one holds it). ZE_BUSY
 *     comes after up to 2 s of waiting: the sessions of a store just closed
 *     or killed hold the lock until PostgreSQL sees them end. When
 *     PostgreSQL restarts, the lock is taken again before the next commit
 *     (ZE_BUSY if another process took it meanwhile).
 *   - Connections: opt->pool_size for reads; votes and commits use others,
 *     which reads cannot use up, and reads cannot be starved by them.
 *     A broken connection is replaced on the next call, with a backoff of
 *     50 ms doubling to 2 s between failed attempts (a vote waits out what
 *     is left of it, at most 2 s, rather than fail while the database is
 *     back).
 *   - Failover: conninfo may list several hosts, the primary and its
 *     standbys, with target_session_attrs=read-write ("host=/a,/b
 *     target_session_attrs=read-write dbname=zodb", or the URI
 *     "postgresql:///zodb?host=/a,/b&target_session_attrs=read-write"):
 *     libpq then connects to whichever accepts writes. When the primary
 *     goes away and a standby is promoted, every connection of the store
 *     (the read pool, votes and commits, the DATABASE lock's session, the
 *     feed's LISTEN, iterators and pack) is replaced by one to the new
 *     primary on its next use, and the DATABASE lock is taken again there,
 *     in the mode it was opened with, before the next commit: the store
 *     goes on without being reopened. libpq tries the hosts in order, each
 *     for up to connect_timeout (the store's default 10 s). Over TCP the
 *     store's sessions give up on a host that vanishes (its machine down)
 *     in seconds: keepalives probe an idle session after 10 s (every 5 s,
 *     3 times), and tcp_user_timeout fails a request unacknowledged for
 *     15 s; a conninfo may set each of these otherwise. While
 *     no host accepts writes, reads retry for retry_seconds and votes and
 *     commits fail with ZE_IO; a commit whose database goes away before
 *     its COMMIT fails with ZE_IO and leaves nothing, and one whose COMMIT
 *     answer is lost is asked of the database that answers next (the new
 *     primary), so its callback tells what that database holds. A commit
 *     is acknowledged once the primary says it is durable: whether a
 *     promoted standby has it depends on PostgreSQL's replication
 *     settings, not on the store; with synchronous_standby_names naming
 *     the standby and synchronous_commit on (flushed on the standby) or
 *     remote_apply (also visible there), every acknowledged commit
 *     survives a promotion (the store's sessions use on, or remote_apply
 *     when that is the database's setting; opt->no_sync turns it off and
 *     with it this guarantee). Asynchronous replication may lose the last
 *     ones; then see the next point.
 *   - A database behind the store: every connection the store opens is
 *     checked before use, and every commit before it chooses its tid,
 *     against the last tid the store has served (acknowledged, delivered
 *     by its feed, or found at open): a database whose history ends before
 *     it, or lacks that transaction (unless pack may have removed it), is
 *     not the one served (a standby promoted before it had replayed
 *     everything). The store then refuses it for good: every call that needs the database
 *     fails with ZE_CORRUPT and a message naming both tids, a commit never
 *     reuses a tid, a read never shows an older state, the feed ends with
 *     a final STORE_FEED_LOST, and store_refused says so. Reopening the
 *     store (a restart) takes the database as it is.
 * Advisory lock keys (of the database, across processes): each oid, in the
 * one-bigint key space, as oid XOR 2**63 (transaction-scoped, at vote);
 * zeolite's own in the two-int4 space, (2053467500, n): n = 1 schema
 * creation, 2 commit (from choosing a tid to COMMIT), 3 the DATABASE lock
 * (session; shared by stores opened shared), 4 pack (session, one pack at
 * a time). A shared store's commits NOTIFY the channel "zeolite_commits"
 * with their tid (16 hex digits) as payload (store_feed_start). */
int store_open_postgresql(store **out, const char *conninfo, const store_options *opt,
                          zerr *err);

void store_close(store *s);

/* 1 when s refuses its database for good (PostgreSQL: it turned out to be
 * behind what s has served, "A database behind the store" above), with why
 * (the message its calls fail with, ZE_CORRUPT); else 0. Never waits. A
 * server stops serving the storage then. LMDB: always 0. */
int store_refused(store *s, zerr *why);

/* 1 when spec holds a zeolite database (whether or not it opens), else 0.
 * Opens nothing and creates nothing (PostgreSQL: a connection that finds
 * the zeolite schema; 0 also when it cannot connect). */
int store_exists(const char *spec);

/* 1 when another process holds spec's lock (LMDB: the folder's exclusive
 * lock, a running server; PostgreSQL: the DATABASE lock in either mode, a
 * running server, several shared ones or an import). 0 also when spec
 * cannot be reached. */
int store_is_locked(const char *spec);

/* ---- capabilities -------------------------------------------------------- */

/* What differs between backends, for a caller to read once after opening:
 *
 * STORE_CAP_BLOCKING (PostgreSQL): these calls may wait on the network, on
 *   a lock another process holds (a vote, up to lock_timeout_ms), or on a
 *   reconnection (a read, up to retry_seconds): store_reader_new,
 *   store_reader_refresh, every read of a store_reader (load_before,
 *   load_serial, current_tid, history, undo_log, record_iternext,
 *   changes_since, open_blob, load_blob), store_new_oids, the iterators
 *   (open, next_txn, next_record, close), store_txn_vote, store_txn_finish,
 *   store_blob_file_open, store_bulk_begin/end, store_pack, store_open and
 *   store_close. A server runs them off its event loop; each connection's
 *   replies must still go out in the order ZEO clients rely on (an
 *   invalidation never overtakes an older loadBefore reply). These never
 *   wait on either backend: store_last_tid, store_is_read_only,
 *   store_object_count, store_size_bytes, store_blob_dir, store_get_stats,
 *   store_caps, store_reader_last_tid, store_txn_begin and the calls that
 *   queue operations (store, store_blob, check_current, delete, restore,
 *   undo), store_txn_each_oid, store_txn_exclusive, store_txn_oids,
 *   store_txn_commit, store_txn_abort, store_txn_free, store_blob_path,
 *   store_blob_tmpfile/tmpname/discard. LMDB: none of the calls waits on
 *   anything but the local disk; reads stay on the event loop.
 * STORE_CAP_LATE_TID (PostgreSQL): store_txn_commit chooses no tid; the
 *   commit callback gives it (see store_txn_commit).
 * STORE_CAP_BACKUP (LMDB): store_backup works; PostgreSQL answers ZE_NOTSUP
 *   (pg_basebackup is its tool).
 * STORE_CAP_SHARED_BLOBS (LMDB): the blob folder can be shared with clients
 *   (store_txn_store_blob_shared); PostgreSQL keeps blobs in the database
 *   and its blob folder is a cache: ZE_NOTSUP.
 * STORE_CAP_SHARED (PostgreSQL): opt->shared and store_feed_start work
 *   (several stores on one database, below); LMDB answers ZE_NOTSUP (one
 *   process serves a folder: every commit is its own).
 * ZE_NOTSUP ("not supported on this backend", its message saying why and
 * what to use instead) comes only from: store_backup and
 * store_backup_progress and store_txn_store_blob_shared without their
 * capability, store_open of PostgreSQL with opt->map_size set, store_open
 * of LMDB with opt->shared set, and store_feed_start on LMDB. A server
 * that offers such a feature per storage checks store_caps at start and
 * refuses the configuration there, with that message. */
#define STORE_CAP_BLOCKING 0x01
#define STORE_CAP_LATE_TID 0x02
#define STORE_CAP_BACKUP 0x04
#define STORE_CAP_SHARED_BLOBS 0x08
#define STORE_CAP_SHARED 0x10
unsigned store_caps(store *s);
/* "lmdb" or "postgresql". */
const char *store_backend_name(store *s);

uint64_t store_last_tid(store *s);          /* 0 for an empty database */
int store_is_read_only(store *s);
/* Approximate number of objects and bytes used, for get_info and ruok. */
uint64_t store_object_count(store *s);
uint64_t store_size_bytes(store *s);
/* The LMDB map: bytes in use (as store_size_bytes) and its size, for metrics.
 * PostgreSQL, which has no map: the bytes the database uses, and 0. */
void store_map_info(store *s, uint64_t *used, uint64_t *size);
/* Folder of the blob files (bushy layout; the folder a shared-blob-dir client
 * uses). PostgreSQL: a cache of the blobs the database holds (opt->blob_dir,
 * or the store's own), which may be emptied at any time. */
const char *store_blob_dir(store *s);

/* Allocate n (1..1000) never-used oids into out[]. They are durable: a restart
 * never hands them out again. The counter only grows: every oid a commit
 * stores moves it past that oid, and it stops below ffffffffffffffff, so no
 * oid wraps round to 0 (the root). ZE_FULL when fewer than n oids are left
 * (nothing is handed out then). */
int store_new_oids(store *s, int n, uint64_t *out, zerr *err);

/* ---- reads ------------------------------------------------------------- */

/* A reader is a consistent snapshot of committed data. It sees transactions
 * committed after it was made only after store_reader_refresh. Cheap to
 * refresh; keep one per thread and refresh it when new commits should show
 * (for the server: after every finished commit, and at least every second
 * so LMDB can reuse pages). LMDB: it holds one reader slot (ZE_BUSY when
 * the snapshots kept open reach the reserve, see store_iter_open).
 * PostgreSQL: it is a tid bound (tids commit in increasing order and
 * records are only added, so everything up to the last tid it read is its
 * snapshot) and holds no connection: each read takes one of the pool for
 * one round trip, retried on a new connection when the old one broke (up
 * to retry_seconds; then ZE_IO). Its refresh is one round trip. A pack may
 * remove old revisions a reader older than the pack could still see. */
int store_reader_new(store *s, store_reader **out, zerr *err);
void store_reader_free(store_reader *r);
int store_reader_refresh(store_reader *r, zerr *err);
/* The last tid this reader's snapshot sees. */
uint64_t store_reader_last_tid(store_reader *r);

/* loadBefore(oid, before) as ZODB defines it: the newest visible revision with
 * tid < before. On success data holds the pickle (back-pointers followed),
 * *start its tid, *end the next revision's tid or 0 when it is current.
 * ZE_NOTFOUND: the oid never existed, or the revision found is a deletion
 * (POSKeyError). ZE_NOREV: the oid exists but has no revision before `before`.
 * One index seek plus one read of the record it names (a back-pointer's
 * entry names the data at the end of its chain). */
int store_load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data,
                      uint64_t *start, uint64_t *end, zerr *err);

/* loadSerial: the data written for oid by transaction serial (back-pointers
 * followed). ZE_NOTFOUND when there is none or it is a deletion. */
int store_load_serial(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data,
                      zerr *err);

/* The oid's current tid (getTid), ZE_NOTFOUND for unknown or deleted oids. */
int store_current_tid(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err);

/* One revision of an object, as history() and undo logs describe it. Slices
 * point into the reader's snapshot and stay valid until the next call on it. */
typedef struct store_txn_info {
    uint64_t tid;
    char status;                   /* ' ', 'p' (packed), ... */
    zslice user, description, extension;   /* raw bytes as stored */
    uint64_t size;                 /* history: record size; undo log: txn size */
} store_txn_info;

typedef int (*store_txn_cb)(const store_txn_info *info, void *ud);

/* history(oid, size): up to size revisions, newest first, one callback each
 * (size = record length). ZE_NOTFOUND for an unknown oid. A callback returning
 * nonzero stops the walk and that value is returned.
 * Callbacks of store_history, store_undo_log and store_changes_since run while
 * the snapshot is pinned: they must not call into the store. */
int store_history(store_reader *r, uint64_t oid, int size, store_txn_cb cb,
                  void *ud, zerr *err);

/* undoLog/undoInfo: undoable transactions newest first, skipping `first`
 * matches and listing up to last - first (ZODB's convention: last < 0 means
 * first .. first + |last|). filter (may be NULL) returns 1 to list a txn.
 * Stops at the first packed ('p') transaction, as FileStorage does. */
int store_undo_log(store_reader *r, int first, int last, store_txn_cb filter,
                   void *filter_ud, store_txn_cb cb, void *ud, zerr *err);

/* record_iternext: the current record of the first oid >= from that exists and
 * is not deleted. Returns 1 with oid/tid/data and *next (the oid to pass next,
 * *has_next 0 at the end), 0 when there is none. */
int store_record_iternext(store_reader *r, uint64_t from, uint64_t *oid,
                          uint64_t *tid, zbuf *data, uint64_t *next,
                          int *has_next, zerr *err);

/* Transactions with tid > after, up to the reader's snapshot: calls cb with
 * each changed oid (unique per transaction, not across). For getInvalidations
 * and the server's invalidation queue. *latest gets the newest tid seen.
 * A transaction a pack marked 'p' lists, on LMDB, every oid it wrote; on
 * PostgreSQL, the oids whose records the pack left (a removed record had a
 * later one before the pack time, whose transaction lists its oid, or its
 * object is garbage). */
typedef int (*store_oid_cb)(uint64_t oid, void *ud);
int store_changes_since(store_reader *r, uint64_t after, uint64_t *latest,
                        store_oid_cb cb, void *ud, zerr *err);

/* ---- transaction iteration (iterator(), export) ------------------------ */

typedef enum store_rec_kind {
    STORE_REC_DATA = 1,      /* the record holds a pickle */
    STORE_REC_BACKPTR = 2,   /* same data as an earlier record of the same oid */
    STORE_REC_DELETE = 3,    /* the object does not exist as of this txn */
} store_rec_kind;

/* One record of a transaction, in store order. For exact export every record
 * is listed, including the first of two records of one oid in a txn. Pack
 * removes records from the transactions it marks 'p': iteration lists the
 * records left, numbered as listed (a missing record anywhere else gives
 * ZE_CORRUPT). */
typedef struct store_record {
    uint64_t oid;
    uint64_t tid;            /* the enclosing transaction */
    store_rec_kind kind;
    zslice data;             /* DATA: the pickle; BACKPTR: the resolved pickle
                                (empty if the chain ends in a deletion) */
    uint64_t back_tid;       /* BACKPTR: tid of the record pointed to (one link) */
    uint32_t back_index;     /* BACKPTR: that record's position in its
                                transaction's listing (as iteration lists it) */
    int prev_zero;           /* raw FileStorage prev was 0 against the rule (packed files) */
    int has_blob;            /* a blob file belongs to this record */
} store_record;

/* Iterate transactions with start <= tid <= stop (stop 0 = no bound), oldest
 * first, over one consistent snapshot. LMDB: the snapshot holds one of the
 * database's reader slots until store_iter_close; snapshots kept open
 * (these iterators and store_readers) may take all but a reserve that keeps
 * votes and single reads going, past which this gives ZE_BUSY. PostgreSQL:
 * a connection of its own, in a read-only REPEATABLE READ transaction,
 * until store_iter_close, read through a cursor a batch at a time. */
int store_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out,
                    zerr *err);
/* As store_iter_open, for iterators a client keeps open (the server's): it
 * holds no snapshot between calls (PostgreSQL: no connection and no
 * transaction either), only during each, resuming by key. It
 * lists what was committed when it was opened (stop is lowered to the last
 * tid then), as FileStorage's iterator lists up to the end the file had. A
 * pack between calls may remove records or transactions not yet listed:
 * they are skipped, as they are gone. Never ZE_BUSY for want of slots. */
int store_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out,
                              zerr *err);
/* 1 and *info for the next transaction, 0 at the end, <0 on error. */
int store_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err);
/* 1 and *rec for the next record of the current transaction, 0 at its end.
 * Slices stay valid until the next call on the iterator. */
int store_iter_next_record(store_iter *it, store_record *rec, zerr *err);
void store_iter_close(store_iter *it);

/* ---- two-phase commit -------------------------------------------------- */

typedef struct store_txn_meta {
    const uint8_t *user; size_t user_len;
    const uint8_t *description; size_t description_len;
    const uint8_t *extension; size_t extension_len;   /* raw pickle bytes */
    char status;        /* ' ' normally, 'p' for copied packed txns */
    uint64_t tid;       /* 0: assigned at commit; else an explicit tid (restore,
                           copyTransactionsFrom), which must exceed the last tid
                           and have a successor (not ffffffffffffffff); how far
                           ahead of the clock it may lie is the caller's policy
                           (ztid_check_client) */
} store_txn_meta;

/* Begin a transaction. Nothing is locked or written; stores are buffered
 * (spilling to a temporary file past a threshold). Metadata over
 * STORE_META_MAX bytes gives ZE_TOOBIG; a status other than ' ' or 'p', or an
 * explicit tid the rules of store_txn_meta.tid refuse, ZE_INVAL.
 * Tids the store assigns follow the last one (ztid_now): a last tid ahead
 * of the clock gives its successors, and after ffffffffffffffff the commit
 * fails with ZE_TOOBIG. */
int store_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err);

/* Queue operations, checked at vote in the order queued. The same oid may be
 * stored more than once; the last store wins for loads, but all are kept. */
int store_txn_store(store_txn *t, uint64_t oid, uint64_t serial,
                    const void *data, size_t len, zerr *err);
/* As store_txn_store, with a blob: blob_path is a file the store takes over
 * (renamed into the blob dir at commit; it must be on the same filesystem or
 * it is copied). A file in the blob folder (a store_blob_tmpfile, or a shared
 * folder's upload) is reached without following a link below that folder
 * and must be a regular file with one link (or read-only for all): it is
 * checked now, and again on the very file the commit moves. A file refused
 * now gives ZE_NOTFOUND, or ZE_CORRUPT for a symlink, another kind of file, a
 * file with other links or a linked oid folder, with a message naming it;
 * nothing is queued and the file is left as it is. */
int store_txn_store_blob(store_txn *t, uint64_t oid, uint64_t serial,
                         const void *data, size_t len, const char *blob_path,
                         zerr *err);
/* store_txn_store_blob of the file a shared blob folder's client wrote as
 * name in oid's folder (ZEO's storeBlobShared). A name that is not a plain
 * file name (a '/', "." or "..") gives ZE_INVAL. PostgreSQL (no
 * STORE_CAP_SHARED_BLOBS): ZE_NOTSUP. */
int store_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial,
                                const void *data, size_t len, const char *name, zerr *err);
int store_txn_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
int store_txn_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
/* restore: no conflict check. data NULL with prev_txn 0 writes a deletion;
 * data NULL with prev_txn writes a back-pointer to oid's record in prev_txn;
 * data with prev_txn writes the data (prev_txn is a hint only). */
int store_txn_restore(store_txn *t, uint64_t oid, const void *data, size_t len,
                      uint64_t prev_txn, zerr *err);
/* Undo the transaction with tid undo_tid (spec filestorage-format.md section 6),
 * checked at vote as FileStorage checks it: one revert record per record of
 * the undone txn; oids whose last record there cannot be reverted make the
 * vote fail with ZE_UNDO (the whole undo fails), each listed with its reason
 * in the vote result's undo_failures. An undo_tid that names no undoable
 * transaction fails the vote with ZE_UNDO and no undo_failures. */
int store_txn_undo(store_txn *t, uint64_t undo_tid, zerr *err);

/* Exact-fidelity record for the converter: kind, back-pointer target
 * (back_tid, back_index) and prev_zero are written as given (data is used
 * for DATA only); no conflict check. blob_path is checked as
 * store_txn_store_blob's, except that the caller vouches for its other hard
 * links (an import links the files it copies). */
int store_txn_restore_record(store_txn *t, const store_record *rec,
                             const char *blob_path, zerr *err);

/* One conflict found at vote: oid, the committed serial, the serial the client
 * sent, and the data it sent (for client-side conflict resolution). */
typedef struct store_conflict {
    uint64_t oid;
    uint64_t committed;
    uint64_t expected;
    int read_conflict;   /* from check_current: not resolvable by the client */
    int delete_conflict; /* from delete: not resolvable by the client */
    zslice data;         /* what the client stored; valid until the next vote
                            or until the txn is freed */
} store_conflict;

/* One oid an undo cannot revert (store_txn_undo). */
typedef struct store_undo_failure {
    uint64_t oid;
    const char *reason;  /* FileStorage's words, e.g. "Some data were modified by a
                            later transaction"; a constant string */
} store_undo_failure;

/* What a vote found. Everything here is owned by the txn and valid until its
 * next vote or until it is freed. */
typedef struct store_vote_result {
    store_conflict *conflicts;  /* ZE_CONFLICT / ZE_READCONFLICT: each conflict */
    size_t n_conflicts;
    uint64_t *changed;          /* oids whose committed data differ from what the
                                   client sent (undo) */
    size_t n_changed;
    store_undo_failure *undo_failures;   /* ZE_UNDO: the oids the undo cannot
                                            revert, in FileStorage's order */
    size_t n_undo_failures;
    uint64_t *resolved;         /* oids of stores the resolver resolved (this
                                   vote or an earlier one of the txn), once
                                   each, in store order */
    size_t n_resolved;
    size_t n_undo_resolved;     /* undo records it resolved (their oids are
                                   among changed) */
} store_vote_result;

/* Seconds a transaction whose vote returned resolvable conflicts may keep
 * its oids serialised while its client resolves them (the default of the
 * rule below; the server's conflict-timeout). */
#define STORE_CONFLICT_HOLD 30

/* Vote: check every queued operation against committed data and against
 * transactions already handed to store_txn_commit but not yet durable.
 * Returns 0 when the transaction can commit (after which commit cannot fail
 * except for a crash or a full disk, and on PostgreSQL the database going
 * away before the COMMIT), ZE_CONFLICT with res->conflicts filled
 * when write conflicts can be resolved by the client (the transaction stays
 * open: store again and vote again; stores the store's resolver resolved
 * stay resolved and are not among them), or ZE_READCONFLICT / ZE_CONFLICT (delete)
 * / ZE_UNDO / ZE_NOTFOUND... with a message. A failed vote's objects are in
 * res, never only in the message: a read or delete conflict is among
 * res->conflicts (read_conflict / delete_conflict set), and a failed undo
 * lists its oids in res->undo_failures. The caller serialises votes
 * (the server's commit locks) per oid: transactions between vote and commit
 * (or abort) at the same time may share an oid of store_txn_each_oid only if
 * none of them writes it, and one that store_txn_exclusive names must be
 * alone there. Each vote then stays true whatever the others commit, in any
 * order.
 * Resolution is bounded: a transaction back from ZE_CONFLICT keeps its oids
 * (the caller's locks, and any lock a backend takes at vote) while its
 * client resolves, so that the re-vote meets the same committed state, but
 * for a bounded time only (STORE_CONFLICT_HOLD by default), transaction
 * timeout or not: from its first conflicts while holding them until a vote
 * succeeds. Past it the caller aborts the transaction (store_txn_abort, which
 * releases whatever the backend holds for it) as it would a timed-out one,
 * so no client can hold an oid, the root say, for ever.
 * PostgreSQL: the vote takes each oid's advisory lock in the database,
 * exclusive for the oids it writes, shared for those it only checks, in
 * ascending oid order, inside a database transaction that holds them until
 * commit or abort, so that they hold across processes (several servers on
 * one database). An undo locks the oids of the transaction it undoes. A
 * lock another process holds past opt->lock_timeout_ms gives ZE_TIMEOUT; a
 * database that cannot be reached, ZE_IO. On any failure but a resolvable
 * ZE_CONFLICT, the database transaction ends; the caller aborts. */
int store_txn_vote(store_txn *t, store_vote_result *res, zerr *err);

/* Every oid the transaction stores, deletes or restores (writes 1) or checks
 * with store_txn_check_current (writes 0), in queue order; an oid may come
 * more than once; undo operations are not expanded. A callback returning
 * nonzero stops the walk and that value is returned. */
typedef int (*store_lock_cb)(uint64_t oid, int writes, void *ud);
int store_txn_each_oid(store_txn *t, store_lock_cb cb, void *ud);

/* 1 when the transaction must be alone between vote and commit: it undoes a
 * transaction (its oids are known only once the vote expands the undo) or
 * has an explicit tid (a later tid committed first would make it fail). */
int store_txn_exclusive(store_txn *t);

/* Completion of an asynchronous commit, called on a thread of the store
 * (LMDB: its writer; PostgreSQL: its committer) once the transaction is
 * durable (rc 0, tid its tid) or failed (rc < 0, tid 0, err saying why). */
typedef void (*store_commit_cb)(store_txn *t, int rc, uint64_t tid,
                                const zerr *err, void *ud);

/* Hand a voted transaction over to be committed. The caller may release its
 * commit locks as soon as this returns. The txn stays owned by the caller:
 * free it (store_txn_free) after cb has run.
 * LMDB: its tid is assigned now (returned in *tid) and later votes see its
 * writes (they check against it while it is in flight); several
 * transactions may share one durable sync.
 * PostgreSQL (STORE_CAP_LATE_TID): the tid is chosen when the commit runs,
 * under the database's COMMIT lock, with the clock (ztid_now) and above
 * every tid committed before it by any process: *tid is 0 on return (but
 * for an explicit tid, store_txn_meta.tid) and cb gives the tid. A vote on
 * one of its oids waits, in the database, until it has committed.
 * What a caller may rely on, on both:
 *  - on 0, cb runs exactly once, later, never from inside this call; on an
 *    error cb never runs;
 *  - the callbacks of one store run one at a time, in the order of their
 *    tids (a failed commit has no tid: its callback comes in the place it
 *    was handed over in); with a change feed (store_feed_start), in one
 *    sequence with the feed's events;
 *  - when cb reports rc 0, the transaction is durable, and a reader
 *    refreshed from then on sees it (and every commit of a smaller tid);
 *    readers not refreshed do not;
 *  - failures: a full disk (ZE_FULL), and on PostgreSQL the database going
 *    away before the COMMIT (ZE_IO; nothing is committed). When PostgreSQL's
 *    answer to the COMMIT is lost, the store asks the database whether the
 *    transaction committed (once its session is gone) before it calls back:
 *    cb never reports a durable commit as failed, nor a lost one as done. */
int store_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud,
                     zerr *err);

/* Synchronous commit: vote must have succeeded; returns once durable, with
 * its tid (also on PostgreSQL, where it runs on the caller's thread). */
int store_txn_finish(store_txn *t, uint64_t *tid, zerr *err);

/* Bulk mode, for the converter: between store_bulk_begin and store_bulk_end,
 * store_txn_finish calls share LMDB write transactions (committed every few
 * MB at a transaction boundary, to bound memory) and nothing is synced until
 * store_bulk_end. Only one thread may commit while bulk mode is on.
 * PostgreSQL: everything between them is one database transaction, written
 * with COPY and committed by store_bulk_end, so a bulk that fails anywhere
 * (store_bulk_end reports it) leaves the database as it was; it takes
 * restored records only (store_txn_restore_record / restore; others give
 * ZE_TXN at vote), and a transaction whose back-pointer names no record
 * fails its store_txn_finish with ZE_NOTFOUND, the bulk going on. */
int store_bulk_begin(store *s, zerr *err);
int store_bulk_end(store *s, zerr *err);
/* End bulk mode after a failure. PostgreSQL: nothing of the bulk is
 * committed. LMDB: as store_bulk_end (its batches commit as they go, which
 * is why the converter builds a new database aside). */
int store_bulk_abort(store *s, zerr *err);

/* Abort: discard everything queued (temporary blob files included) and
 * release what the vote holds (PostgreSQL: its database transaction is
 * rolled back by the committer thread; abort does not wait for it). Allowed
 * before or after vote, not after commit. The txn must still be freed. */
void store_txn_abort(store_txn *t);
void store_txn_free(store_txn *t);

/* Oids written by the transaction, in store order without duplicates (for
 * invalidations). Valid until the txn is freed. */
const uint64_t *store_txn_oids(store_txn *t, size_t *n);

/* ---- blobs ------------------------------------------------------------- */

/* Path of the blob file for (oid, tid) in the bushy layout, whether or not it
 * exists: DIR/0x00/.../0xNN/0x<tid hex>.blob. */
int store_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap);
/* Path of the blob file of revision (oid, serial) (loadBlob; an imported
 * back-pointer without its own file gives its target's file), ZE_NOTFOUND
 * when that revision has no blob or its file is missing, ZE_CORRUPT when its
 * file or a folder on the way is a link or the file is not plain (a regular
 * file with one link, or read-only for all: blob.h). */
int store_load_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf,
                    size_t cap, zerr *err);
/* As store_load_blob, and the file opened for reading (never through a link):
 * *fd, which the caller closes. The path in buf is for messages. */
int store_open_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap,
                    int *fd, zerr *err);
/* The blob file of (oid, tid), whatever its record, opened for reading
 * without following a link (as store_open_blob): a descriptor the caller
 * closes; ZE_NOTFOUND; ZE_CORRUPT when it, or a folder on the way, is a link
 * or it is not plain. */
int store_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err);
/* A new temporary file inside the blob dir's tmp folder (same filesystem, so
 * the commit can rename it), created exclusively: its path in buf and *fd,
 * open read-write, which the caller closes. ZE_READONLY in a read-only store. */
int store_blob_tmpfile(store *s, char *buf, size_t cap, int *fd, zerr *err);
/* store_blob_tmpfile, the file closed: only its name is wanted. */
int store_blob_tmpname(store *s, char *buf, size_t cap, zerr *err);
/* Remove an uncommitted file of the blob folder (a store_blob_tmpfile the
 * store did not take over); a file that is no longer plain, or reached
 * through a link, is left (ZE_CORRUPT). 0 also when it is gone. */
int store_blob_discard(store *s, const char *path);

/* ---- pack -------------------------------------------------------------- */

typedef struct store_pack_stats {
    uint64_t records_removed;
    uint64_t objects_removed;
    uint64_t blobs_removed;
    uint64_t txns_removed;
    uint64_t bytes_before, bytes_after;
} store_pack_stats;

/* Pack to pack_time (seconds since the epoch; a future time packs to the last
 * transaction), as FileStorage packs (spec filestorage-format.md section 7).
 * gc: also remove objects unreachable from oid 0 at pack_time, with their
 * blobs; never what cannot be proven unreachable. Runs concurrently with loads
 * and commits (LMDB: in batches through the writer; PostgreSQL: in batches of
 * short transactions, each taking its oids' locks without waiting and
 * leaving an oid that is in use or changed to the next pack). One pack at a
 * time per database on PostgreSQL (another gives ZE_BUSY). blobs_removed
 * counts revisions' blob files ((oid, tid) pairs) gone. */
int store_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err);

/* ---- operations -------------------------------------------------------- */

/* Hot backup of a live database into a new folder dest (must not exist or be
 * empty): a consistent LMDB copy (compacted when compact) plus its blobs. On
 * failure (a full disk: ZE_FULL) dest is as it was: removed when the backup
 * made it, else emptied, so no partial copy looks like a backup.
 * PostgreSQL (no STORE_CAP_BACKUP): ZE_NOTSUP, pointing to pg_basebackup. */
int store_backup(store *s, const char *dest, int compact, zerr *err);

/* How far a backup got: bytes and blob files copied so far. Called on the
 * calling thread, after each blob file and each chunk of the database. */
typedef void (*store_progress_fn)(void *data, uint64_t bytes, uint64_t files);

/* store_backup, reporting its progress to fn (NULL: none). */
int store_backup_progress(store *s, const char *dest, int compact, store_progress_fn fn,
                          void *data, zerr *err);

/* Statistics for store_bench and ruok. */
typedef struct store_stats {
    uint64_t commits;
    uint64_t syncs;        /* durable syncs (commits / syncs = group size;
                              PostgreSQL: one per commit) */
    uint64_t records;
    uint64_t transactions;
    /* PostgreSQL with opt->read_dsn (0 otherwise): */
    uint64_t reads_standby;  /* read queries the standby answered */
    uint64_t reads_primary;  /* read queries the primary answered */
    int reading_primary;     /* 1 while reads are on the primary (the standby
                                lags past read_max_lag or cannot be reached) */
} store_stats;
void store_get_stats(store *s, store_stats *out);

/* ---- several stores on one database (PostgreSQL: STORE_CAP_SHARED) ------ */

/* Stores opened with opt->shared on one PostgreSQL database (several
 * servers, in one process or several, on one machine or several) commit
 * side by side, each through its own committer:
 *   - tids are unique and increase in commit order across all of them
 *     (each commit chooses its tid under the database's COMMIT lock, above
 *     the last tid in the database);
 *   - the per-oid locks a vote takes live in the database, so two
 *     transactions writing one oid through two stores never both commit:
 *     the second vote waits for the first to commit or abort (at most
 *     lock_timeout_ms, then ZE_TIMEOUT) and then sees its write as a
 *     conflict. Transactions on disjoint oids never wait for each other
 *     between vote and commit (only the COMMIT step itself is serialised);
 *   - new_oids of two stores never overlap (each reserves ranges in the
 *     database); an oid another store commits inside this store's range is
 *     skipped once the feed delivers it;
 *   - a process that dies leaves nothing locked and nothing half-written
 *     (its sessions end and roll back);
 *   - one pack at a time per database: a second one, through any store,
 *     gets ZE_BUSY while one runs; the others keep committing and loading;
 *   - bulk mode (store_bulk_begin) is refused (ZE_BUSY): an import takes
 *     the database alone.
 * A store's readers see other stores' commits when refreshed (a reader is
 * a tid bound read from the database). What a shared store does not know
 * by itself is which oids other stores changed: the feed below tells it.
 * Each store needs a blob cache folder of its own (opt->blob_dir or none).
 *
 * The change feed: every commit made through OTHER stores of the database,
 * exactly once, in tid order, with its oids, delivered by callback on a
 * thread of the store. Why a callback: the store already calls its commit
 * callbacks (store_commit_cb) on its committer thread, and a server must
 * order its own commits and the others' in one sequence (an invalidation
 * of tid 5 from another server must reach its clients before its own
 * tpc_finish of tid 6). The store does that ordering: the feed's callback
 * and the store's commit callbacks run one at a time, in one sequence in
 * tid order (a failed commit's callback, without a tid, comes in its
 * place). A server pushes both into one FIFO and wakes its loop
 * (uv_async_send) exactly as it does for commit callbacks, and so never
 * polls and never runs a network call on its loop.
 *
 * How it learns: a connection of the feed's own LISTENs on the primary's
 * "zeolite_commits" channel (each shared commit NOTIFYs its tid) for
 * promptness; what it delivers comes from a catch-up query by tid (the
 * transactions after the last tid delivered, with their oids), so a
 * notification missed or merged never loses a commit: the feed catches up
 * after each notification of a tid it has not delivered, after every
 * (re)connection, and every 10 s while idle (which also checks the
 * connection). An idle feed costs one poll() wake-up and one query per
 * 10 s. Its session's application_name is "zeolite feed". A commit of this store whose tid follows commits of others not
 * delivered yet runs the catch-up itself before its callback.
 *
 * When the feed's connection is lost it reconnects by itself (backoff from
 * 50 ms to 2 s), LISTENs again and catches up from the last tid delivered.
 * Events (store_feed_event.kind):
 *   STORE_FEED_COMMIT  tid and oids (unique) of a commit by another store;
 *                      store_last_tid(s) includes tid from then on, and a
 *                      reader refreshed from then on sees it.
 *   STORE_FEED_LOST    the feed cannot say what others commit: rc ZE_IO
 *                      when it has had no connection for retry_seconds (it
 *                      keeps trying; STORE_FEED_BACK follows when it is
 *                      back), or a final rc (ZE_CORRUPT: the database's
 *                      history is behind the last tid delivered, e.g. a
 *                      standby promoted without it; ZE_IO: a commit of this
 *                      store could not fetch the others' commits before
 *                      it) after which nothing more is delivered. msg says
 *                      why. A server then disconnects its clients rather
 *                      than let them read stale data (and, on a final one,
 *                      stops serving the storage).
 *   STORE_FEED_BACK    the feed is connected again and has delivered every
 *                      commit up to tid (after a STORE_FEED_LOST with ZE_IO):
 *                      clients may connect again (their caches are then
 *                      checked as on any connection).
 * While the feed runs, store_last_tid(s) and the snapshot of a reader
 * refreshed are the last tid of that one sequence (own commits' callbacks
 * and feed events, from the moment their call begins): a read never shows
 * a commit the caller has not been told of, and store_reader_refresh needs
 * no round trip.
 * The event and what it points to are valid during the call only. The
 * callback must be quick and must not call into the store. */
typedef enum store_feed_kind {
    STORE_FEED_COMMIT = 1,
    STORE_FEED_LOST = 2,
    STORE_FEED_BACK = 3,
} store_feed_kind;

typedef struct store_feed_event {
    store_feed_kind kind;
    uint64_t tid;            /* COMMIT: its tid; LOST/BACK: last tid delivered */
    const uint64_t *oids;    /* COMMIT: the oids it wrote, each once */
    size_t n_oids;
    int rc;                  /* LOST: ZE_IO or a final code (see above) */
    int final;               /* LOST: 1 when the feed has stopped for good */
    const char *msg;         /* LOST: why */
} store_feed_event;

typedef void (*store_feed_fn)(const store_feed_event *ev, void *ud);

/* Start s's feed: commits of other stores with tid > store_last_tid(s) as
 * of this call, delivered to fn on a thread of the store. Call it once,
 * after store_open and before the first store_txn_commit; it returns once
 * the feed listens and has caught up (what that catch-up finds is
 * delivered on the calling thread, before it returns; ZE_IO when
 * PostgreSQL cannot be reached). It runs until store_close, after which no
 * callback runs.
 * ZE_INVAL unless s was opened shared and not read-only; ZE_TXN when it
 * runs already; ZE_NOTSUP on LMDB. */
int store_feed_start(store *s, store_feed_fn fn, void *ud, zerr *err);

/* ---- reads from a standby (PostgreSQL: opt->read_dsn) --------------------- */

/* With opt->read_dsn naming a streaming hot standby of the database
 * (pg_basebackup -R; hot_standby_feedback on, so that the primary keeps
 * rows the standby still reads):
 *   - what goes there: every read of a store_reader (load_before,
 *     load_serial, current_tid, history, undo_log, record_iternext,
 *     changes_since, open_blob and load_blob's fetch), store_reader_new and
 *     refresh without a feed, store_blob_file_open and resumable iterators,
 *     on a pool of pool_size connections of its own;
 *   - what stays on the primary: votes, commits, new_oids, pack, bulk mode,
 *     the change feed (a standby refuses LISTEN), store_sync's question,
 *     and store_iter_open's snapshot (the converter's: a cursor cannot be
 *     resumed where a standby cancelled it);
 *   - never older than told: a tid is told (an own commit's callback, a
 *     feed event, and with them store_last_tid and the snapshot of a reader
 *     refreshed) only once the standby shows it (its last tid has reached
 *     it: it replays commits in tid order). With synchronous_commit
 *     remote_apply as the database's default (synchronous replication;
 *     the store keeps it) that holds at once; otherwise a commit's callback waits for the standby's replay,
 *     asked at once, then after 0.2 ms, 0.4... up to 50 ms while it waits
 *     (nothing is asked while nothing waits); the committer goes on with
 *     the next commits meanwhile, and their callbacks follow in order;
 *   - falling back: when the standby has not shown a waiting tid after
 *     read_max_lag seconds, or cannot be reached or read, reads go to the
 *     primary (one WARNING saying why and how far behind it is) and tids
 *     are told without waiting; the store then asks the standby every
 *     0.2 s and sends reads back once it shows every tid told (INFO).
 *     store_stats counts the reads each side answered and says where
 *     reads are (reading_primary);
 *   - recovery conflicts: a read the standby cancels because replay needed
 *     what it held (SQLSTATE 40001, or 40P01; its session may end with
 *     it) runs again, and is never seen by the caller (an INFO line, at
 *     most one a minute, counts them); one cancelled again and again for
 *     retry_seconds sends reads to the primary.
 * A standby that does not exist yet, or lacks the database, is a standby
 * that cannot be reached: the open succeeds, reads on the primary. A
 * read_dsn libpq cannot parse gives ZE_INVAL at open. */

/* Wait until every commit the database held when the call began is known
 * to s: delivered by its feed (or its own), its event or callback returned,
 * and, with opt->read_dsn, visible on its read side; at most timeout_ms
 * (a shared store without a feed knows it once its read side shows it).
 * *tid gets store_last_tid(s) then (also on failure). For a server about to tell a client the last tid
 * (register, lastTransaction) when that client may have seen later commits
 * through another server: B never looks behind A. ZE_TIMEOUT when not in
 * time; ZE_IO when the primary cannot be asked. A store that is not
 * shared, and LMDB, know every commit: *tid = store_last_tid(s) at once.
 * May wait on the network: call it off the event loop. */
int store_sync(store *s, uint32_t timeout_ms, uint64_t *tid, zerr *err);

#endif
