/* store.h: zeolite's object store, a ZODB storage on LMDB.
 *
 * This header is the whole contract between the store and everything above
 * it (server, converter, tools). No LMDB type or call appears here, so a
 * second backend could sit behind the same functions.
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
 * serialised inside the store (one LMDB writer); store_txn_commit hands a voted
 * transaction to the store's writer thread, which may group several into one
 * durable sync (group commit).
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
 * (committed, read from the transaction that wrote it while that is still
 * being made durable) and the client's (new). When resolve() answers 1 the
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
    int create;           /* create the database when the folder has none */
    int exclusive;        /* take the folder's process lock (a server does);
                             another exclusive opener gets ZE_BUSY */
    int no_sync;          /* skip fsync on commit (tests, bulk import); NOT durable */
    uint64_t map_size;    /* LMDB map size in bytes; 0 = a large default */
    uint32_t max_record;  /* largest accepted record; 0 = default (2 GiB - 1) */
    store_log_fn log;     /* NULL: the store logs nothing */
    void *log_data;       /* passed to log */
    store_resolver resolver; /* resolve NULL: every conflict goes to the caller */
    uint32_t index_batch; /* index entries committed but kept in memory before
                             they are written to the index at once; 0 = default
                             (131072). Tests use 1 to write them after each commit */
} store_options;

/* Open the database in folder dir (an LMDB environment plus dir/blobs). The
 * folder may hold unrelated files. A database of another format version gives
 * ZE_VERSION; a missing database without opt->create gives ZE_NOTFOUND. Stale
 * reader slots and orphan blob files left by a crash are cleared here, and
 * index entries of commits not yet indexed are written (a read-only open
 * keeps them in memory). */
int store_open(store **out, const char *dir, const store_options *opt, zerr *err);
void store_close(store *s);

/* 1 when dir holds a zeolite database (whether or not it opens), else 0.
 * Opens nothing and creates nothing. */
int store_exists(const char *dir);

/* 1 when another process holds dir's exclusive lock (a running server). */
int store_is_locked(const char *dir);

uint64_t store_last_tid(store *s);          /* 0 for an empty database */
int store_is_read_only(store *s);
/* Approximate number of objects and bytes used, for get_info and ruok. */
uint64_t store_object_count(store *s);
uint64_t store_size_bytes(store *s);
/* The LMDB map: bytes in use (as store_size_bytes) and its size, for metrics. */
void store_map_info(store *s, uint64_t *used, uint64_t *size);
/* Folder of the blob files (bushy layout; the folder a shared-blob-dir client uses). */
const char *store_blob_dir(store *s);

/* Allocate n (1..1000) never-used oids into out[]. They are durable: a restart
 * never hands them out again. The counter only grows: every oid a commit
 * stores moves it past that oid, and it stops below ffffffffffffffff, so no
 * oid wraps round to 0 (the root). ZE_FULL when fewer than n oids are left
 * (nothing is handed out then). */
int store_new_oids(store *s, int n, uint64_t *out, zerr *err);

/* ---- reads ------------------------------------------------------------- */

/* A reader is a consistent snapshot of committed data, holding one reader
 * slot (ZE_BUSY when the snapshots kept open reach the reserve, see
 * store_iter_open). It sees transactions committed after it was made only
 * after store_reader_refresh. Cheap to refresh; keep one per thread and
 * refresh it when new commits should show (for the server: after every
 * finished commit, and at least every second so LMDB can reuse pages). */
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
 * and the server's invalidation queue. *latest gets the newest tid seen. */
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
 * first, over one consistent snapshot. The snapshot holds one of the
 * database's reader slots until store_iter_close; snapshots kept open
 * (these iterators and store_readers) may take all but a reserve that keeps
 * votes and single reads going, past which this gives ZE_BUSY. */
int store_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out,
                    zerr *err);
/* As store_iter_open, for iterators a client keeps open (the server's): it
 * holds no snapshot between calls, only during each, resuming by key. It
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
 * file name (a '/', "." or "..") gives ZE_INVAL. */
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
 * except for a crash or a full disk), ZE_CONFLICT with res->conflicts filled
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
 * so no client can hold an oid, the root say, for ever. */
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

/* Completion of an asynchronous commit, called on the store's writer thread
 * once the transaction is durable (rc 0, tid set) or failed (rc < 0). */
typedef void (*store_commit_cb)(store_txn *t, int rc, uint64_t tid,
                                const zerr *err, void *ud);

/* Hand a voted transaction to the writer thread. Its tid is assigned now
 * (returned in *tid) and later votes see its writes. cb runs once, on the
 * writer thread; several transactions may share one durable sync. The caller
 * may release its commit lock as soon as this returns. The txn stays owned by
 * the caller: free it (store_txn_free) after cb has run. */
int store_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud,
                     zerr *err);

/* Synchronous commit: vote must have succeeded; returns once durable. */
int store_txn_finish(store_txn *t, uint64_t *tid, zerr *err);

/* Bulk mode, for the converter: between store_bulk_begin and store_bulk_end,
 * store_txn_finish calls share LMDB write transactions (committed every few
 * MB at a transaction boundary, to bound memory) and nothing is synced until
 * store_bulk_end. Only one thread may commit while bulk mode is on. */
int store_bulk_begin(store *s, zerr *err);
int store_bulk_end(store *s, zerr *err);

/* Abort: discard everything queued (temporary blob files included). Allowed
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
 * and commits (in batches through the writer). */
int store_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err);

/* ---- operations -------------------------------------------------------- */

/* Hot backup of a live database into a new folder dest (must not exist or be
 * empty): a consistent LMDB copy (compacted when compact) plus its blobs. On
 * failure (a full disk: ZE_FULL) dest is as it was: removed when the backup
 * made it, else emptied, so no partial copy looks like a backup. */
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
    uint64_t syncs;        /* durable syncs (commits / syncs = group size) */
    uint64_t records;
    uint64_t transactions;
} store_stats;
void store_get_stats(store *s, store_stats *out);

#endif
