/* store_internal.h: what the files of src/store/ share, and nothing outside it.
 *
 * ---- LMDB layout (one environment per database folder, four named DBs) ----
 *
 * Record data lives in "values", appended in key order (tid, index), so a
 * commit writes each record once, into full pages at the right edge of one
 * tree. "records" is the index that loads search: (oid, tid) -> where the
 * record is. Index entries are applied in batches (index.h): the entries of
 * the transactions after meta "indexed" are derived from "values" and kept in
 * memory until the next batch, so a commit touches no index page.
 * docs/commit-path.md says why, with the measurements.
 *
 * "meta"     key: a short ASCII name; value: a u64, big-endian.
 *              "version"   u64  STORE_FORMAT_VERSION
 *              "next_oid"  u64  first oid neither handed out nor reserved
 *                               (store_new_oids reserves ahead, in batches);
 *                               it never goes back, and ST_OID_END means
 *                               the oid space is used up
 *              "last_tid"  u64  a floor for the last committed tid: the last
 *                               tid is the larger of it and the last key of
 *                               "txns" (store__last_tid). Commits do not write
 *                               it (one page less per commit); pack sets it
 *                               before it may remove the last transaction,
 *                               so the last tid never goes back
 *              "objects"   u64  number of oids with at least one record, as
 *                               of the last save: the writer saves the count
 *                               kept in memory at most once a second, when
 *                               idle, and at close (a crash loses at most the
 *                               last second's changes: the count is approximate)
 *              "pack_tid"  u64  tid of the last pack time (0: never packed)
 *              "indexed"   u64  "records" holds the entries of every
 *                               transaction with tid <= indexed (absent: 0)
 *
 * "values"   key: tid (8, BE) || index (4, BE): record number index of
 *            transaction tid, for every record (two records of one oid in one
 *            transaction are two values). value: a 12-byte header, then a body
 *            that depends on the kind:
 *              [0]     kind    STORE_REC_DATA / _BACKPTR / _DELETE
 *              [1]     flags   ST_RF_PREV_ZERO / ST_RF_BLOB as written
 *              [2..3]  zero    (reserved)
 *              [4..11] oid     u64 BE
 *              DATA:    the pickle (len > 0)
 *              BACKPTR: back_tid (8) back_index (4)   one link, as written
 *                       data_tid (8) data_index (4)   the end of the chain: the
 *                         DATA record holding the bytes, resolved at write
 *                         time so a load needs one lookup; data_tid 0 means
 *                         the chain ends in a deletion (the object is absent)
 *              DELETE:  nothing
 *
 * "records"  key: oid (8, BE) || tid (8, BE), so key order is (oid, time) order.
 *            value: the oid's LAST record in that transaction:
 *              [0]    kind    as its value's
 *              [1]    flags   its value's, plus ST_RF_HIDDEN
 *              [2..3] zero    (reserved)
 *              [4..7] index   u32 BE: its position in its transaction
 *              BACKPTR: data_tid (8) data_index (4), copied from the value so
 *                       that a load reads one value
 *            A load is one seek here plus one read in "values".
 *
 * "txns"     key: tid (8, BE). value:
 *              [0]      status   ' ' or 'p'
 *              [1]      zero     (reserved)
 *              [2..3]   ulen  u16 BE
 *              [4..5]   dlen  u16 BE
 *              [6..7]   elen  u16 BE
 *              [8..11]  nrec  u32 BE: number of records
 *              [12..15] zero     (reserved)
 *              [16..23] size  u64 BE: sum of the record lengths (ST_REC_HDR
 *                       + pickle for DATA, ST_REC_BACKPTR_LEN, ST_REC_HDR)
 *              [24..]   user, description, extension (raw bytes)
 *              then nrec oids (8 bytes BE each), in store order; duplicates
 *              kept. Record i of the transaction is values(tid, i).
 *
 * A record with ST_RF_HIDDEN is invisible to load_before / load_serial /
 * history (FileStorage's prev chain cannot reach it: it is older than a
 * record imported with prev = 0) but stays a valid back-pointer target and is
 * listed by iteration. Because all hidden records of an oid are older than
 * every visible one, load_before answers ZE_NOREV when its single seek lands
 * on a hidden record: the flag costs the load path nothing. Index entries
 * not yet applied are hidden by a newer entry with ST_RF_PREV_ZERO (index.c).
 *
 * ---- blobs ----
 * DIR/blobs/.layout holds "bushy"; DIR/blobs/tmp/ holds temporary files. A
 * record with ST_RF_BLOB has a file at store_blob_path(oid, record tid).
 * Shared-folder clients write in DIR/blobs: below it nothing is followed
 * through a link (blob.h).
 *
 * ---- threads ----
 * One writer thread owns every LMDB write transaction. Everything that writes
 * (commits, index batches, pack batches, meta updates) is a job on its queue.
 * The writer takes all queued jobs, runs each in a nested LMDB transaction of
 * one outer write transaction (a failed job aborts only its nested txn; a
 * lone job runs in the outer one), commits the outer one (one durable sync),
 * then completes each job. Every LMDB commit is a normal, synced one (no
 * MDB_NOSYNC outside bulk mode and no_sync). Readers use MDB_NOTLS read
 * transactions on any thread.
 *
 * Map growth: on MDB_MAP_FULL the writer aborts its outer transaction, takes
 * map_lock for writing (so no thread is inside an LMDB call), doubles the map
 * (up to the cap), bumps map_gen and retries. Therefore every LMDB read call
 * outside the writer thread must run between store__map_enter and
 * store__map_leave, and a cursor kept across such sections must be renewed
 * (mdb_cursor_renew) when map_gen changed. The writer's own jobs need neither.
 *
 * Reader slots: LMDB's table has ST_MAX_READERS. Snapshots kept between
 * calls (a store_reader, a store_iter from store_iter_open) take at most
 * ST_PINNED_MAX of them (store__pin); the rest stay free for reads that end
 * within one call (votes, blob loads, pack, backup, resumable iterators), so
 * a vote always finds a slot however many snapshots callers keep open.
 */
#ifndef ZEOLITE_STORE_INTERNAL_H
#define ZEOLITE_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "common/zbuf.h"
#include "common/zerr.h"
#include "common/oidmap.h"
#include "store/backend.h"
#include "store/lmdb_api.h"
#include "store/store.h"

/* ---- records ------------------------------------------------------------ */

#define ST_RF_PREV_ZERO 0x01 /* raw FileStorage prev was 0 (kept for export) */
#define ST_RF_HIDDEN 0x02    /* unreachable through prev: loads skip it (index only) */
#define ST_RF_BLOB 0x04      /* a blob file belongs to this record */
#define ST_RF_COUNTED 0x80   /* overlay only: the vote counted the object it creates */

#define ST_REC_HDR 8                  /* record length unit of "txns" size */
#define ST_REC_BACKPTR_LEN (ST_REC_HDR + 24)
#define ST_KEY_LEN 16                 /* records key: oid || tid */
#define ST_VKEY_LEN 12                /* values key: tid || index */
#define ST_VAL_HDR 12                 /* kind, flags, reserved, oid */
#define ST_VAL_BACKPTR_LEN (ST_VAL_HDR + 24)
#define ST_IDX_LEN 8                  /* records value: kind, flags, reserved, index */
#define ST_IDX_BACKPTR_LEN (ST_IDX_LEN + 12)
#define ST_INDEX_LAST UINT32_MAX      /* "the oid's last record in that txn" */

/* A decoded record (a "values" value). data points into the LMDB value
 * (valid while the LMDB transaction that read it lives and the map is not
 * remapped). */
typedef struct st_rec {
    uint8_t kind;          /* STORE_REC_* */
    uint8_t flags;         /* ST_RF_*; ST_RF_HIDDEN only when read through the index */
    uint32_t index;        /* position in its transaction */
    uint64_t oid;
    uint64_t back_tid;     /* BACKPTR: one link */
    uint32_t back_index;
    uint64_t data_tid;     /* BACKPTR: the DATA record at the end of the chain, 0 = absent */
    uint32_t data_index;
    const uint8_t *data;   /* DATA: the pickle */
    size_t len;
} st_rec;

/* An index entry: the last record of an oid in transaction tid. */
typedef struct st_ent {
    uint64_t tid;
    uint8_t kind;
    uint8_t flags;         /* ST_RF_* */
    uint32_t index;
    uint64_t data_tid;     /* BACKPTR: as st_rec */
    uint32_t data_index;
} st_ent;

static inline void st_key(uint8_t key[ST_KEY_LEN], uint64_t oid, uint64_t tid)
{
    zbe64_put(key, oid);
    zbe64_put(key + 8, tid);
}

static inline void st_vkey(uint8_t key[ST_VKEY_LEN], uint64_t tid, uint32_t index)
{
    zbe64_put(key, tid);
    zbe32_put(key + 8, index);
}

/* Write the header of a value. */
static inline void st_val_put_header(uint8_t *p, uint8_t kind, uint8_t flags, uint64_t oid)
{
    p[0] = kind;
    p[1] = flags;
    p[2] = p[3] = 0;
    zbe64_put(p + 4, oid);
}

/* Write the body of a BACKPTR value after its header. */
static inline void st_val_put_backptr(uint8_t *p, uint64_t back_tid, uint32_t back_index,
                                      uint64_t data_tid, uint32_t data_index)
{
    zbe64_put(p + ST_VAL_HDR, back_tid);
    zbe32_put(p + ST_VAL_HDR + 8, back_index);
    zbe64_put(p + ST_VAL_HDR + 12, data_tid);
    zbe32_put(p + ST_VAL_HDR + 20, data_index);
}

/* Decode the value of record index; ZE_CORRUPT when it is malformed. */
static inline int st_val_decode(const void *v, size_t len, uint32_t index, st_rec *r)
{
    const uint8_t *p = v;
    if (len < ST_VAL_HDR)
        return ZE_CORRUPT;
    memset(r, 0, sizeof *r);
    r->kind = p[0];
    r->flags = p[1] & (ST_RF_PREV_ZERO | ST_RF_BLOB);
    r->index = index;
    r->oid = zbe64(p + 4);
    switch (r->kind) {
    case STORE_REC_DATA:
        r->data = p + ST_VAL_HDR;
        r->len = len - ST_VAL_HDR;
        return r->len ? 0 : ZE_CORRUPT;
    case STORE_REC_BACKPTR:
        if (len != ST_VAL_BACKPTR_LEN)
            return ZE_CORRUPT;
        r->back_tid = zbe64(p + ST_VAL_HDR);
        r->back_index = zbe32(p + ST_VAL_HDR + 8);
        r->data_tid = zbe64(p + ST_VAL_HDR + 12);
        r->data_index = zbe32(p + ST_VAL_HDR + 20);
        return 0;
    case STORE_REC_DELETE:
        return len == ST_VAL_HDR ? 0 : ZE_CORRUPT;
    default:
        return ZE_CORRUPT;
    }
}

/* The length a record counts for in a transaction's size. */
static inline size_t st_rec_size(const st_rec *r)
{
    return r->kind == STORE_REC_DATA      ? ST_REC_HDR + r->len
           : r->kind == STORE_REC_BACKPTR ? ST_REC_BACKPTR_LEN
                                          : ST_REC_HDR;
}

/* The index entry of record r of transaction tid. */
static inline st_ent st_ent_of(const st_rec *r, uint64_t tid)
{
    return (st_ent){tid, r->kind, r->flags, r->index, r->data_tid, r->data_index};
}

/* Encode an index entry (the "records" value) into p (ST_IDX_BACKPTR_LEN
 * bytes of room); returns its length. */
static inline size_t st_ent_encode(uint8_t *p, const st_ent *e)
{
    p[0] = e->kind;
    p[1] = e->flags;
    p[2] = p[3] = 0;
    zbe32_put(p + 4, e->index);
    if (e->kind != STORE_REC_BACKPTR)
        return ST_IDX_LEN;
    zbe64_put(p + 8, e->data_tid);
    zbe32_put(p + 16, e->data_index);
    return ST_IDX_BACKPTR_LEN;
}

/* Decode a "records" value of transaction tid; ZE_CORRUPT when malformed. */
static inline int st_ent_decode(const void *v, size_t len, uint64_t tid, st_ent *e)
{
    const uint8_t *p = v;
    if (len < ST_IDX_LEN)
        return ZE_CORRUPT;
    *e = (st_ent){.tid = tid, .kind = p[0], .flags = p[1], .index = zbe32(p + 4)};
    if (e->kind == STORE_REC_BACKPTR) {
        if (len != ST_IDX_BACKPTR_LEN)
            return ZE_CORRUPT;
        e->data_tid = zbe64(p + 8);
        e->data_index = zbe32(p + 16);
        return 0;
    }
    return (e->kind == STORE_REC_DATA || e->kind == STORE_REC_DELETE) && len == ST_IDX_LEN
               ? 0 : ZE_CORRUPT;
}

/* ---- transaction values ------------------------------------------------- */

#define ST_TXN_HDR 24

/* A decoded transaction value; slices point into the LMDB value. */
typedef struct st_txnval {
    char status;
    zslice user, description, extension;
    uint32_t nrec;
    uint64_t size;
    const uint8_t *oids;   /* nrec * 8 bytes, BE */
} st_txnval;

static inline uint64_t st_txn_oid(const st_txnval *t, uint32_t i)
{
    return zbe64(t->oids + 8 * (size_t)i);
}

/* Decode a transaction value; ZE_CORRUPT when lengths do not add up. */
int store__txnval_decode(const void *v, size_t len, st_txnval *out);
/* Append an encoded transaction value to b (oids: n BE oids). */
int store__txnval_encode(zbuf *b, char status, zslice user, zslice description,
                         zslice extension, uint64_t size, const uint8_t *oids,
                         uint32_t nrec);

/* ---- the overlay: index entries not yet applied (index.h) --------------- */

typedef struct st_view st_view;

typedef struct ov_ent {
    uint64_t oid;
    st_ent e;
    uint32_t prev;          /* 1 + index in v of the oid's previous entry, 0: none */
} ov_ent;

typedef struct st_overlay {
    pthread_mutex_t mu;     /* guards everything below */
    ov_ent *v;              /* entries in tid order */
    size_t n, cap;
    oidmap newest;          /* oid -> 1 + index in v of its newest entry */
    uint64_t known;         /* entries are here for every transaction <= known
                               that "indexed" does not cover */
    uint64_t indexed;       /* the newest committed "indexed" seen */
    st_view *views;         /* views in use: the entries each reads stay */
    size_t kept;            /* entries the last drop kept for registered views */
    int views_changed;      /* a view older than the index left since that drop */
    uint64_t *sorted;       /* the oids of v in order (next_oid), NULL: stale */
    size_t n_sorted;
} st_overlay;

/* ---- the store ---------------------------------------------------------- */

typedef struct st_job st_job;

/* A function run by the writer inside a nested write transaction. Return 0 to
 * keep its writes, <0 (with err filled) to discard them. */
typedef int (*st_write_fn)(store *s, MDB_txn *txn, void *ud, zerr *err);

struct st_job {
    st_job *next;
    store_txn *txn;        /* a commit, or NULL for a function job */
    st_write_fn fn;
    void *ud;
    int rc;
    zerr err;
    int done;              /* set under s->mu when finished */
    size_t mark;           /* writer: the overlay before the job ran */
    uint64_t indexed;      /* writer: s->indexed_txn before the job ran */
    uint64_t created;      /* writer: s->index_created before the job ran */
};

struct store {
    const store_ops *be;   /* &store__lmdb_ops: first, as backend.h asks */
    char *dir;             /* database folder */
    char *blob_dir;        /* dir/blobs */
    char *blob_tmp;        /* dir/blobs/tmp */
    int blob_fd;           /* dir/blobs, open; -1 when it is missing (read-only) */
    int tmp_fd;            /* dir/blobs/tmp, open; -1 when read-only */
    store_options opt;
    int lock_fd;           /* dir/zeolite.lock, flock'ed when opt.exclusive; -1 */

    MDB_env *env;
    MDB_dbi dbi_meta, dbi_records, dbi_txns, dbi_values;
    uint64_t map_size;     /* current map size */
    uint64_t map_max;      /* growth cap */
    pthread_rwlock_t map_lock;
    atomic_uint map_gen;   /* bumped after each remap */

    pthread_mutex_t mu;    /* guards everything below */
    pthread_cond_t wake;   /* writer: jobs queued or stopping */
    pthread_cond_t done;   /* jobs completed / pending drained */
    pthread_t writer;
    int writer_running;
    int stopping;
    st_job *head, *tail;   /* queued jobs */

    uint64_t last_tid;     /* last tid handed out (>= the durable one) */
    uint64_t durable_tid;  /* last tid committed in LMDB */
    pthread_mutex_t oid_mu; /* guards next_oid and oid_limit */
    uint64_t next_oid;     /* next oid to hand out */
    uint64_t oid_limit;    /* meta next_oid: oids below it are reserved */
    oidmap pending;        /* oid -> tid of commits handed out, not yet durable */
    size_t n_pending;      /* such transactions */
    struct store_txn *handed; /* those transactions, newest first (resolve.c) */
    uint64_t objects;      /* object count (meta "objects" is saved from it) */
    uint64_t objects_saved; /* writer thread: the count last saved */
    double objects_saved_at; /* writer thread: when (monotonic seconds) */

    int bulk;              /* bulk mode: commits share write txns, no sync */
    MDB_txn *bulk_txn;     /* the open bulk write txn (writer side) */
    size_t bulk_bytes;     /* bytes written into bulk_txn */
    zerr bulk_err;         /* first failure of a bulk commit, for store_bulk_end */

    st_overlay ov;
    uint64_t indexed;      /* writer: meta "indexed" as committed */
    uint64_t indexed_txn;  /* writer: meta "indexed" in the open write txn */
    uint64_t index_created; /* writer: objects the open index batch creates */
    size_t outer_mark;     /* writer: the overlay when the outer txn began */
    size_t index_batch;    /* apply the overlay past this many entries */

    store_stats stats;

    atomic_int pinned;     /* snapshots kept between calls (store__pin) */
    atomic_uint pack_gen;  /* bumped when a pack starts and when it ends */
    atomic_int packs;      /* packs running (with pack_gen: resumable
                              iterators know when what they keep may be stale) */
};

/* ---- helpers shared by the files of src/store/ --------------------------- */

#define ST_MAX_READERS 510
#define ST_PINNED_MAX (ST_MAX_READERS - 64)

/* Count a snapshot kept between calls: ZE_BUSY when ST_PINNED_MAX are
 * already kept. store__unpin when it is released. */
int store__pin(store *s, zerr *err);
void store__unpin(store *s);

/* Map an LMDB return code to a ZE_* code with a message naming `what`. */
int store__mdb_err(zerr *err, int rc, const char *what);
/* As store__mdb_err for a failed write (a commit): an EIO that a full disk
 * or the file size limit explains becomes ZE_FULL, saying which. */
int store__mdb_write_err(store *s, zerr *err, int rc, const char *what);

/* Bracket LMDB read calls made outside the writer thread (see map growth). */
static inline void store__map_enter(store *s) { pthread_rwlock_rdlock(&s->map_lock); }
static inline void store__map_leave(store *s) { pthread_rwlock_unlock(&s->map_lock); }

/* Another process grew the map (MDB_MAP_RESIZED): adopt its size. Called
 * between map_enter and map_leave while holding no LMDB pointers (it drops
 * and retakes map_lock). Returns the LMDB result. */
int store__adopt_map_size(store *s);

/* Begin an MDB_RDONLY | MDB_NOTLS transaction (adopting a map grown by
 * another process). Call inside map_enter/leave. */
int store__read_begin(store *s, MDB_txn **out, zerr *err);

/* Run fn in the writer's write transaction (a nested txn of the current
 * group), wait until the group is committed (and synced unless no_sync), and
 * return fn's result. Must not be called from the writer thread or from fn. */
int store__write(store *s, st_write_fn fn, void *ud, zerr *err);

/* Meta values (u64 BE). get: ZE_NOTFOUND when absent. */
int store__meta_get(MDB_txn *txn, store *s, const char *name, uint64_t *v, zerr *err);
int store__meta_put(MDB_txn *txn, store *s, const char *name, uint64_t v, zerr *err);

/* Record index of transaction tid ("values"): 0 with *out, ZE_NOTFOUND
 * when absent, ZE_CORRUPT (with a message) when damaged. */
int store__value_get(MDB_txn *txn, store *s, uint64_t tid, uint32_t index, st_rec *out,
                     zerr *err);

/* Remove the blob file of (oid, tid); a missing file is not an error. */
int store__blob_remove(store *s, uint64_t oid, uint64_t tid, zerr *err);

/* The last committed tid a transaction sees: the larger of meta "last_tid"
 * and the last key of "txns". txc: a cursor on txns in txn, or NULL. */
int store__last_tid(MDB_txn *txn, store *s, MDB_cursor *txc, uint64_t *tid, zerr *err);

/* The oid counter's ceiling: new_oids hands out oids below it only, and a
 * stored oid moves the counter to store__oid_after(oid). */
#define ST_OID_END UINT64_MAX
/* The counter value after oid is in use: oid + 1, saturating at ST_OID_END. */
uint64_t store__oid_after(uint64_t oid);

/* Sort n items of size bytes by the uint64_t each starts with, keeping the
 * order of equal keys (a radix sort: index batches and votes sort thousands
 * of oids). ZE_NOMEM leaves the items as they were. */
int store__sort_by_key(void *items, size_t n, size_t size);

/* Add delta to the in-memory object count, once the writes that changed it
 * are committed (the writer saves it to meta "objects" later). */
void store__objects_adjust(store *s, int64_t delta);

#endif
