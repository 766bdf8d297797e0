/* pack.c: store_pack, FileStorage's pack with garbage collection on LMDB.
 *
 * Everything is decided on one read snapshot, then applied in batches of
 * write jobs through the writer, so loads and commits go on meanwhile:
 *
 *  1. scan: for each oid, its current record at the cutoff (the last record
 *     with tid <= cutoff, unless that is a deletion); records written after
 *     the cutoff make their oid and every oid they refer to a GC root, and
 *     their back-pointers keep their targets;
 *  2. reach (gc only): walk strong references from oid 0 and those roots
 *     through the current records. A dangling reference is logged and
 *     skipped; a record whose references cannot be parsed stops the GC (every
 *     object is then kept, since nothing can be proven unreachable);
 *  3. copy the current record of a kept object inline when it is a
 *     back-pointer (FileStorage writes every record it keeps before the pack
 *     time with its pickle), then remove every record at or before the
 *     cutoff that is neither the current record of a kept object nor the
 *     target of a back-pointer written after the cutoff, with its blob file
 *     once the removal is durable;
 *  4. transactions at or before the cutoff that lost every record disappear;
 *     all the others get status 'p' (not undoable, as FileStorage marks
 *     them), even when the pack removed nothing: undoLog stops at the
 *     first 'p', so what lies before the pack time is never listed again.
 *
 * Records keep their index in their transaction and the transaction keeps
 * its oid list, so back-pointers (tid, index) stay valid; a position whose
 * record was packed away simply has no record any more (readers of a packed
 * transaction skip such positions).
 *
 * A write job skips an oid that changed after the snapshot or has a commit in
 * flight: the next pack takes care of it.
 */
#include "store/index.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zarray.h"
#include "common/ztid.h"
#include "pickle/record.h"
#include "store/blob.h"

#define PACK_CHUNK 1024     /* entries read per map section */
#define PACK_BATCH 10000    /* records removed per write job (LMDB keeps its
                               dirty pages in memory until the commit) */
#define PACK_TXN_BATCH 2000 /* transactions rewritten per write job */
#define PACK_LOG_MAX 20     /* dangling references logged one by one */

typedef struct pk_obj {     /* an object current at the cutoff */
    uint64_t oid, tid;
} pk_obj;

typedef struct pk_loc {     /* a record: oid, transaction, index in it */
    uint64_t oid, tid;
    uint32_t index;
} pk_loc;

typedef struct pk_del {     /* a record to remove */
    pk_loc loc;
    uint8_t flags;          /* ST_RF_* of the record */
    uint8_t dup;            /* not the oid's last record of its txn (no index entry) */
    uint8_t removed;        /* set by the write job */
    uint8_t last_of_oid;    /* the object has no record left */
} pk_del;

#define SCAN_STOP 1          /* a scan_fn's "no further entries needed" */

typedef struct { pk_obj *v; size_t n, cap; } obj_vec;
typedef struct { pk_loc *v; size_t n, cap; } loc_vec;
typedef struct { pk_del *v; size_t n, cap; } del_vec;
typedef struct { uint64_t *v; size_t n, cap; } u64_vec;
typedef struct { size_t *v; size_t n, cap; } idx_vec;

typedef struct pack_ctx {
    store *s;
    st_view *view;               /* the snapshot decisions are made on; NULL in the sweep */
    st_view snap;
    MDB_txn *chunk_txn;          /* the transaction scan_db reads the current chunk in */
    oidmap seen;                 /* scratch of dup_positions */
    u64_vec pos;
    uint64_t cutoff;             /* records with tid <= cutoff are packed */
    uint64_t snap_last;          /* last tid of the snapshot */
    int gc;                      /* still collecting (cleared when not provable) */
    int changed;                 /* records were removed or rewritten: the sizes
                                    of packed txns need recomputing */
    obj_vec objs;                /* current at the cutoff, in oid order */
    uint8_t *reached;            /* one per objs entry */
    idx_vec to_visit;
    idx_vec forced;              /* objs written after the cutoff */
    u64_vec roots;               /* oids referred to by records after the cutoff */
    u64_vec refs;                /* strong references of one record */
    loc_vec keep;                /* back-pointer targets that stay */
    loc_vec inl;                 /* current back-pointers: copied inline if kept */
    del_vec del;                 /* the batch being collected */
    u64_vec tids;                /* transactions to check */
    /* scan state of the oid being read */
    uint64_t oid;
    int have_oid, after;
    uint64_t last_tid;           /* its last record <= cutoff (0: none) */
    st_ent last;
    /* counts of one write job (it may run again after a map resize) */
    uint64_t job_records, job_objects, job_txns;
    uint64_t dangling;
    uint64_t blobs_left;         /* blob files refused for removal (links) */
    uint64_t inlined;            /* back-pointers copied inline */
    store_pack_stats *stats;
    zerr *err;
} pack_ctx;

/* p with room for element n, or p itself (*cap unchanged) when out of memory. */
static void *grown(void *p, size_t n, size_t *cap, size_t size)
{
    void *q = zarray_room(p, n, cap, size, 256);
    return q ? q : p;
}

#define PUSH(c, vec, val)                                                         \
    (((vec).v = grown((vec).v, (vec).n, &(vec).cap, sizeof *(vec).v),             \
      (vec).n == (vec).cap)                                                       \
         ? zerr_set((c)->err, ZE_NOMEM, "pack: out of memory")                    \
         : ((vec).v[(vec).n++] = (val), 0))

static void pack_log(const pack_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Pack fails for none of these, so they go to the store's log, once each. */
static void pack_log(const pack_ctx *c, const char *fmt, ...)
{
    const store_options *o = &c->s->opt;
    if (!o->log)
        return;
    char what[ZERR_MSG_MAX], line[ZERR_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "pack %s: %s", c->s->dir, what);
    o->log(o->log_data, STORE_LOG_WARNING, line);
}

static int loc_cmp(const void *a, const void *b)
{
    const pk_loc *x = a, *y = b;
    if (x->oid != y->oid)
        return x->oid < y->oid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Index of oid in objs, or -1. */
static ptrdiff_t find_obj(const pack_ctx *c, uint64_t oid)
{
    size_t lo = 0, hi = c->objs.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->objs.v[mid].oid < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->objs.n && c->objs.v[lo].oid == oid ? (ptrdiff_t)lo : -1;
}

static int obj_kept(const pack_ctx *c, size_t i)
{
    return !c->gc || c->reached[i];
}

static int is_target(const pack_ctx *c, uint64_t oid, uint64_t tid, uint32_t index)
{
    pk_loc key = {oid, tid, index};
    return c->keep.n && bsearch(&key, c->keep.v, c->keep.n, sizeof key, loc_cmp) != NULL;
}

/* ---- references ---------------------------------------------------------- */

static int collect_ref(const record_ref *ref, void *ud)
{
    pack_ctx *c = ud;
    /* weak and cross-database references keep nothing alive */
    if (ref->weak || ref->database)
        return 0;
    return PUSH(c, c->refs, ref->oid);
}

/* The strong references of a record into c->refs (back-pointers resolved).
 * Returns 0, or 1 when they cannot be parsed: the GC is then off. */
static int record_strong_refs(pack_ctx *c, uint64_t oid, const st_rec *rec)
{
    st_rec data;
    zerr perr;
    int rc = store__rec_resolve(c->view, oid, rec, &data, c->err);
    c->refs.n = 0;
    if (rc == ZE_NOTFOUND) {
        pack_log(c, "oid 0x%016llx: back-pointer target missing, keeping every object",
                 (unsigned long long)oid);
        c->gc = 0;
        return 1;
    }
    if (rc || data.kind != STORE_REC_DATA)
        return rc;
    rc = record_refs(data.data, data.len, collect_ref, c, &perr);
    if (rc == ZE_CORRUPT) {
        pack_log(c, "oid 0x%016llx: references cannot be read (%s), keeping every object",
                 (unsigned long long)oid, perr.msg);
        c->gc = 0;
        return 1;
    }
    return rc;
}

/* ---- 1. scan --------------------------------------------------------------- */

static int add_backptr_targets(pack_ctx *c, loc_vec *to, uint64_t oid, const st_rec *r)
{
    int rc = PUSH(c, *to, ((pk_loc){oid, r->back_tid, r->back_index}));
    if (!rc && r->data_tid)
        rc = PUSH(c, *to, ((pk_loc){oid, r->data_tid, r->data_index}));
    return rc;
}

/* The oid's records up to the cutoff are read: note its current record. */
static int finish_oid(pack_ctx *c)
{
    const st_ent *r = &c->last;
    int rc = 0;
    if (!c->last_tid || r->kind == STORE_REC_DELETE || (r->flags & ST_RF_HIDDEN) ||
        (r->kind == STORE_REC_BACKPTR && !r->data_tid))
        goto done;
    if ((rc = PUSH(c, c->objs, ((pk_obj){c->oid, c->last_tid}))))
        return rc;
    if (r->kind == STORE_REC_BACKPTR &&
        (rc = PUSH(c, c->inl, ((pk_loc){c->oid, c->last_tid, r->index}))))
        return rc;
    if (c->after)
        rc = PUSH(c, c->forced, c->objs.n - 1);
done:
    c->last_tid = 0;
    return rc;
}

/* A record written after the cutoff: it stays, and so does what it needs. */
static int after_record(pack_ctx *c, uint64_t oid, const st_rec *r)
{
    int rc = 0;
    if (r->kind == STORE_REC_BACKPTR && (rc = add_backptr_targets(c, &c->keep, oid, r)))
        return rc;
    if (!c->gc || r->kind == STORE_REC_DELETE || (rc = record_strong_refs(c, oid, r)))
        return rc < 0 ? rc : 0;
    for (size_t i = 0; i < c->refs.n && !rc; i++)
        rc = PUSH(c, c->roots, c->refs.v[i]);
    return rc;
}

static int bad_record(pack_ctx *c, const char *db, const MDB_val *k)
{
    return zerr_set(c->err, ZE_CORRUPT, "pack: malformed %s entry (key of %zu bytes)", db,
                    k->mv_size);
}

/* The record an index entry names, from the snapshot. */
static int entry_record(pack_ctx *c, uint64_t oid, const st_ent *e, st_rec *r)
{
    int rc = store__rec_get(c->view, oid, e->tid, e->index, r, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "pack: index entry %016llx@%016llx names a "
                        "missing record", (unsigned long long)oid, (unsigned long long)e->tid);
    if (!rc)
        r->flags |= e->flags & ST_RF_HIDDEN;
    return rc;
}

static int scan_record(pack_ctx *c, const MDB_val *k, const MDB_val *v)
{
    st_ent r;
    st_rec rec;
    if (k->mv_size != ST_KEY_LEN ||
        st_ent_decode(v->mv_data, v->mv_size, zbe64((const uint8_t *)k->mv_data + 8), &r))
        return bad_record(c, "records", k);
    uint64_t oid = zbe64(k->mv_data), tid = r.tid;
    int rc;
    if (!c->have_oid || oid != c->oid) {
        if (c->have_oid && (rc = finish_oid(c)))
            return rc;
        c->oid = oid, c->have_oid = 1, c->after = 0;
    }
    if (tid <= c->cutoff) {
        c->last_tid = tid;
        c->last = r;
        return 0;
    }
    if (!c->after) {
        c->after = 1;
        if ((rc = finish_oid(c)))
            return rc;
    }
    return (rc = entry_record(c, oid, &r, &rec)) ? rc : after_record(c, oid, &rec);
}

/* Positions of a transaction that are not the last record of their oid
 * (they have no index entry): their indexes into *out. */
static int dup_positions(const st_txnval *t, oidmap *seen, u64_vec *out, zerr *err)
{
    out->n = 0;
    oidmap_clear(seen);
    for (uint32_t i = t->nrec; i-- > 0;) {
        uint64_t one;
        if (!oidmap_get(seen, st_txn_oid(t, i), &one)) {
            if (oidmap_put(seen, st_txn_oid(t, i), 1))
                return zerr_set(err, ZE_NOMEM, "pack: out of memory");
            continue;
        }
        uint64_t *v = zarray_room(out->v, out->n, &out->cap, sizeof *v, 16);
        if (!v)
            return zerr_set(err, ZE_NOMEM, "pack: out of memory");
        out->v = v;
        v[out->n++] = i;
    }
    return 0;
}

/* A transaction after the cutoff: its earlier records of an oid (no index
 * entry) count as records after the cutoff too. */
static int scan_dups_of(pack_ctx *c, uint64_t tid, const st_txnval *t)
{
    oidmap seen = OIDMAP_INIT;
    u64_vec pos = {0};
    int rc = dup_positions(t, &seen, &pos, c->err);
    for (size_t j = 0; !rc && j < pos.n; j++) {
        st_rec r;
        uint64_t oid = st_txn_oid(t, (uint32_t)pos.v[j]);
        rc = store__rec_get(c->view, oid, tid, (uint32_t)pos.v[j], &r, c->err);
        rc = rc == ZE_NOTFOUND ? 0 : rc ? rc : after_record(c, oid, &r);
    }
    oidmap_free(&seen);
    free(pos.v);
    return rc;
}

static int scan_txn_dups(pack_ctx *c, const MDB_val *k, const MDB_val *v)
{
    st_txnval t;
    if (k->mv_size != 8 || store__txnval_decode(v->mv_data, v->mv_size, &t))
        return bad_record(c, "txns", k);
    uint64_t tid = zbe64(k->mv_data);
    return tid > c->snap_last ? SCAN_STOP : scan_dups_of(c, tid, &t);
}

/* Entries of the snapshot still in the overlay are records after the
 * cutoff (the cutoff is at or below the snapshot's "indexed"). */
static int scan_overlay(pack_ctx *c)
{
    st_overlay *ov = &c->s->ov;
    ov_ent *b = NULL;
    size_t n = 0;
    pthread_mutex_lock(&ov->mu);
    for (size_t i = 0; i < ov->n; i++)
        n += ov->v[i].e.tid > c->view->indexed && ov->v[i].e.tid <= c->view->last;
    if (n && (b = malloc(n * sizeof *b)))
        for (size_t i = 0, j = 0; i < ov->n; i++)
            if (ov->v[i].e.tid > c->view->indexed && ov->v[i].e.tid <= c->view->last)
                b[j++] = ov->v[i];
    pthread_mutex_unlock(&ov->mu);
    if (n && !b)
        return zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    int rc = 0;
    store__map_enter(c->s);
    store__view_remap(c->view);
    for (size_t i = 0; !rc && i < n; i++) {
        st_rec r;
        ptrdiff_t at = find_obj(c, b[i].oid);
        if (at >= 0 && (rc = PUSH(c, c->forced, (size_t)at)))
            break;
        if (!(rc = entry_record(c, b[i].oid, &b[i].e, &r)))
            rc = after_record(c, b[i].oid, &r);
    }
    store__map_leave(c->s);
    free(b);
    return rc;
}

/* ---- the chunked reader ------------------------------------------------------ */

typedef int (*scan_fn)(pack_ctx *c, const MDB_val *k, const MDB_val *v);

typedef struct scan_pos {
    uint8_t key[ST_KEY_LEN];
    size_t len;              /* 0: from the first entry */
    int resume;              /* key was already handled: start after it */
    int more;
} scan_pos;

/* Up to PACK_CHUNK entries from pos on; LMDB reads stay inside one map
 * section, and the cursor does not outlive it (a map resize may come next). */
static int scan_chunk(pack_ctx *c, MDB_txn *txn, MDB_dbi dbi, scan_pos *pos, scan_fn fn)
{
    MDB_cursor *cur;
    MDB_val k = {pos->len, pos->key}, v;
    int frc = 0, rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return store__mdb_err(c->err, rc, "pack: open cursor");
    rc = mdb_cursor_get(cur, &k, &v, pos->len ? MDB_SET_RANGE : MDB_FIRST);
    if (!rc && pos->resume && k.mv_size == pos->len && !memcmp(k.mv_data, pos->key, pos->len))
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    for (int n = 0; !rc && n < PACK_CHUNK; n++) {
        if (k.mv_size > sizeof pos->key)
            frc = bad_record(c, "database", &k);
        else
            frc = fn(c, &k, &v);
        if (frc)
            break;
        memcpy(pos->key, k.mv_data, k.mv_size);
        pos->len = k.mv_size, pos->resume = 1;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    pos->more = !rc && !frc;
    if (frc)
        return frc == SCAN_STOP ? 0 : frc;
    return rc && rc != MDB_NOTFOUND ? store__mdb_err(c->err, rc, "pack: read") : 0;
}

/* Call fn for every entry of dbi from key `from` (NULL: the first) on;
 * between chunks, run `between` (may be NULL) outside the map section. Reads
 * the snapshot while there is one, else a fresh read transaction per chunk. */
static int scan_db(pack_ctx *c, MDB_dbi dbi, const uint8_t *from, size_t from_len, scan_fn fn,
                   int (*between)(pack_ctx *c))
{
    scan_pos pos = {.len = from_len, .more = 1};
    int rc = 0;
    if (from_len)
        memcpy(pos.key, from, from_len);
    while (!rc && pos.more) {
        MDB_txn *txn = c->view ? c->view->txn : NULL;
        store__map_enter(c->s);
        if (c->view)
            store__view_remap(c->view);
        if (txn || !(rc = store__read_begin(c->s, &txn, c->err))) {
            c->chunk_txn = txn;
            rc = scan_chunk(c, txn, dbi, &pos, fn);
        }
        if (txn && (!c->view || txn != c->view->txn))
            mdb_txn_abort(txn);
        store__map_leave(c->s);
        if (!rc && between)
            rc = between(c);
    }
    return rc;
}

static int scan_snapshot(pack_ctx *c)
{
    uint8_t from[8];
    int rc = scan_db(c, c->s->dbi_records, NULL, 0, scan_record, NULL);
    if (!rc && c->have_oid)
        rc = finish_oid(c);
    zbe64_put(from, c->cutoff + 1);
    if (!rc)
        rc = scan_db(c, c->s->dbi_txns, from, sizeof from, scan_txn_dups, NULL);
    return rc ? rc : scan_overlay(c);
}

/* ---- 2. reach ------------------------------------------------------------------ */

static int reach_obj(pack_ctx *c, size_t i)
{
    if (c->reached[i])
        return 0;
    c->reached[i] = 1;
    return PUSH(c, c->to_visit, i);
}

/* The oid has a record newer than the cutoff (in the snapshot). */
static int written_after(pack_ctx *c, uint64_t oid)
{
    st_ent e;
    uint64_t next;
    zerr ignored;
    return !store__view_find(c->view, oid, UINT64_MAX, &e, &next, &ignored) &&
           e.tid > c->cutoff;
}

/* A strong reference from a current record. */
static int reach_oid(pack_ctx *c, uint64_t oid, uint64_t from)
{
    ptrdiff_t i = find_obj(c, oid);
    if (i >= 0)
        return reach_obj(c, (size_t)i);
    if (written_after(c, oid))
        return 0;   /* not current at the cutoff, but kept: not dangling */
    if (c->dangling++ < PACK_LOG_MAX)
        pack_log(c, "oid 0x%016llx refers to 0x%016llx, which does not exist at the pack "
                    "time; reference skipped", (unsigned long long)from,
                 (unsigned long long)oid);
    return 0;
}

static int visit(pack_ctx *c, size_t i)
{
    st_rec r;
    const pk_obj *o = &c->objs.v[i];
    int rc = store__rec_get(c->view, o->oid, o->tid, ST_INDEX_LAST, &r, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "pack: current record of %016llx is missing",
                        (unsigned long long)o->oid);
    if (rc || (rc = record_strong_refs(c, o->oid, &r)))
        return rc < 0 ? rc : 0;
    for (size_t j = 0; j < c->refs.n && !rc && c->gc; j++)
        rc = reach_oid(c, c->refs.v[j], o->oid);
    return rc;
}

static int seed(pack_ctx *c)
{
    ptrdiff_t root = find_obj(c, 0);
    int rc = 0;
    if (root < 0) {
        pack_log(c, "no root object (oid 0) at the pack time: garbage collection skipped");
        c->gc = 0;
        return 0;
    }
    rc = reach_obj(c, (size_t)root);
    for (size_t j = 0; j < c->forced.n && !rc; j++)
        rc = reach_obj(c, c->forced.v[j]);
    for (size_t j = 0; j < c->roots.n && !rc; j++) {
        ptrdiff_t i = find_obj(c, c->roots.v[j]);
        /* not current at the cutoff: written after it (kept) or dangling */
        if (i >= 0)
            rc = reach_obj(c, (size_t)i);
    }
    return rc;
}

static int reach(pack_ctx *c)
{
    int rc;
    if (!c->gc)
        return 0;
    if (!(c->reached = calloc(c->objs.n ? c->objs.n : 1, 1)))
        return zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    rc = seed(c);
    while (!rc && c->gc && c->to_visit.n) {
        store__map_enter(c->s);
        for (int n = 0; !rc && c->gc && c->to_visit.n && n < PACK_CHUNK; n++)
            rc = visit(c, c->to_visit.v[--c->to_visit.n]);
        store__map_leave(c->s);
    }
    if (c->dangling > PACK_LOG_MAX)
        pack_log(c, "%llu dangling references in all", (unsigned long long)c->dangling);
    return rc;
}

/* Back-pointer targets that stay: those of back-pointers written after the
 * cutoff, and, down each chain, the targets of targets (a chain's tids
 * strictly decrease). Current back-pointers at the cutoff need none: they
 * are copied inline first. */
static int close_targets(pack_ctx *c)
{
    int rc = 0;
    store__map_enter(c->s);
    for (size_t j = 0; j < c->keep.n && !rc; j++) {
        pk_loc t = c->keep.v[j];
        st_rec r;
        zerr e;
        if (store__rec_get(c->view, t.oid, t.tid, t.index, &r, &e) ||
            r.kind != STORE_REC_BACKPTR || r.back_tid >= t.tid)
            continue;   /* a missing target is nothing to keep */
        rc = add_backptr_targets(c, &c->keep, t.oid, &r);
    }
    store__map_leave(c->s);
    if (!rc && c->keep.n)
        qsort(c->keep.v, c->keep.n, sizeof *c->keep.v, loc_cmp);
    return rc;
}

/* ---- transaction values ---------------------------------------------------------- */

static int rewrite_txn(pack_ctx *c, MDB_txn *txn, MDB_val *k, const st_txnval *t, char status,
                       uint64_t size, zbuf *b, zerr *err)
{
    zbuf_reset(b);
    int rc = store__txnval_encode(b, status, t->user, t->description, t->extension, size,
                                  t->oids, t->nrec);
    if (rc)
        return zerr_set(err, rc, "pack: encode transaction");
    MDB_val v = {b->len, b->data};
    rc = mdb_put(txn, c->s->dbi_txns, k, &v, 0);
    return rc ? store__mdb_err(err, rc, "pack: rewrite transaction") : 0;
}

/* The live value of transaction tid; 1 when it is gone. */
static int get_txn(pack_ctx *c, MDB_txn *txn, MDB_val *k, st_txnval *t, zerr *err)
{
    MDB_val v;
    int rc = mdb_get(txn, c->s->dbi_txns, k, &v);
    if (rc == MDB_NOTFOUND)
        return 1;
    if (rc)
        return store__mdb_err(err, rc, "pack: read transaction");
    if (store__txnval_decode(v.mv_data, v.mv_size, t))
        return zerr_set(err, ZE_CORRUPT, "pack: transaction %016llx is malformed",
                        (unsigned long long)zbe64(k->mv_data));
    return 0;
}

/* A transaction losing a record is no longer undoable: it turns 'p' in the
 * same write as the removal, so a crash between batches never leaves a gap
 * in a transaction that claims to be whole. */
static int mark_txn_packed(pack_ctx *c, MDB_txn *txn, uint64_t tid, zbuf *b, zerr *err)
{
    uint8_t kb[8];
    MDB_val k = {8, kb};
    st_txnval t;
    zbe64_put(kb, tid);
    int rc = get_txn(c, txn, &k, &t, err);
    if (rc || t.status == 'p')
        return rc < 0 ? rc : 0;
    return rewrite_txn(c, txn, &k, &t, 'p', t.size, b, err);
}

/* ---- 2b. copy current back-pointers inline -------------------------------------- */

/* As FileStorage does for the records it keeps before the pack time: a kept
 * back-pointer becomes a data record with its resolved pickle (same index,
 * same flags), so the records it pointed to can go. Runs before any removal:
 * a crash in between leaves both copies, never a back-pointer without data. */
/* Replace record (l->tid, index) of oid and its index entry e by a DATA
 * record holding the bytes in b (after the header room). */
static int put_inline(pack_ctx *c, MDB_txn *txn, const pk_loc *l, st_ent e, uint8_t vflags,
                      zbuf *b, zerr *err)
{
    uint8_t kb[ST_KEY_LEN], eb[ST_IDX_BACKPTR_LEN];
    st_val_put_header(b->data, STORE_REC_DATA, vflags, l->oid);
    st_vkey(kb, l->tid, e.index);
    MDB_val k = {ST_VKEY_LEN, kb}, v = {b->len, b->data};
    int rc = mdb_put(txn, c->s->dbi_values, &k, &v, 0);
    if (rc)
        return store__mdb_err(err, rc, "pack: copy a back-pointer's data");
    e.kind = STORE_REC_DATA;
    st_key(kb, l->oid, l->tid);
    k = (MDB_val){ST_KEY_LEN, kb};
    v = (MDB_val){st_ent_encode(eb, &e), eb};
    rc = mdb_put(txn, c->s->dbi_records, &k, &v, 0);
    return rc ? store__mdb_err(err, rc, "pack: write index") : 0;
}

static int inline_one(pack_ctx *c, st_view *view, const pk_loc *l, zbuf *b, zerr *err)
{
    st_rec r, d;
    st_ent e;
    int rc = store__view_get(view, l->oid, l->tid, &e, err);
    if (!rc)
        rc = store__rec_get(view, l->oid, l->tid, e.index, &r, err);
    if (rc == ZE_NOTFOUND || (!rc && r.kind != STORE_REC_BACKPTR))
        return 0;
    if (rc || (rc = store__rec_resolve(view, l->oid, &r, &d, err)))
        return rc == ZE_NOTFOUND ? 0 : rc;   /* a broken chain stays as it is */
    if (d.kind != STORE_REC_DATA)
        return 0;
    uint8_t hdr[ST_VAL_HDR] = {0};
    zbuf_reset(b);
    if (zbuf_append(b, hdr, sizeof hdr) || zbuf_append(b, d.data, d.len))
        return zerr_set(err, ZE_NOMEM, "pack: out of memory");
    if ((rc = put_inline(c, view->txn, l, e, r.flags, b, err)))
        return rc;
    c->job_records++;
    return mark_txn_packed(c, view->txn, l->tid, b, err);
}

static int inline_job(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    pack_ctx *c = ud;
    zbuf b = ZBUF_INIT;
    st_view view;
    int rc = store__view_write(s, txn, &view, err);
    c->job_records = 0;
    for (size_t i = 0; i < c->tids.n && !rc; i++)
        rc = inline_one(c, &view, &c->inl.v[c->tids.v[i]], &b, err);
    store__view_write_end(&view);
    zbuf_free(&b);
    return rc;
}

/* c->tids holds indices into c->inl here: the kept ones, in batches. */
static int inline_backptrs(pack_ctx *c)
{
    int rc = 0;
    for (size_t j = 0; j < c->inl.n && !rc; j++) {
        ptrdiff_t i = find_obj(c, c->inl.v[j].oid);
        if (i >= 0 && obj_kept(c, (size_t)i))
            rc = PUSH(c, c->tids, j);
        if (!rc && c->tids.n && (c->tids.n == PACK_TXN_BATCH || j + 1 == c->inl.n)) {
            if (!(rc = store__write(c->s, inline_job, c, c->err)))
                c->inlined += c->job_records;
            c->tids.n = 0;
        }
    }
    return rc;
}

/* ---- 3. remove records ------------------------------------------------------------ */

/* The oid's newest record in the write view: 0 with *tid, or ZE_NOTFOUND. */
static int newest(st_view *view, uint64_t oid, uint64_t *tid)
{
    st_ent e;
    uint64_t next;
    zerr ignored;
    int rc = store__view_find(view, oid, UINT64_MAX, &e, &next, &ignored);
    if (!rc)
        *tid = e.tid;
    return rc == ZE_NOREV ? ZE_NOTFOUND : rc;
}

/* The oid has a record newer than the snapshot or a commit in flight. */
static int oid_busy(pack_ctx *c, st_view *view, uint64_t oid)
{
    uint64_t tid;
    pthread_mutex_lock(&c->s->mu);
    int pending = oidmap_get(&c->s->pending, oid, &tid);
    pthread_mutex_unlock(&c->s->mu);
    return pending || (!newest(view, oid, &tid) && tid > c->snap_last);
}

static int oid_gone(st_view *view, uint64_t oid)
{
    uint64_t tid;
    return newest(view, oid, &tid) == ZE_NOTFOUND;
}

/* A dup's blob file is also the file of the oid's last record of that txn
 * (one file per oid and tid): it stays while that record does. */
static int last_record_left(pack_ctx *c, MDB_txn *txn, const pk_loc *l)
{
    uint8_t kb[ST_KEY_LEN];
    MDB_val k = {sizeof kb, kb}, v;
    st_key(kb, l->oid, l->tid);
    return mdb_get(txn, c->s->dbi_records, &k, &v) == 0;
}

static int delete_one(pack_ctx *c, MDB_txn *txn, pk_del *d, zerr *err)
{
    uint8_t kb[ST_KEY_LEN];
    MDB_val k = {ST_KEY_LEN, kb};
    int rc = 0;
    if (!d->dup) {
        st_key(kb, d->loc.oid, d->loc.tid);
        rc = mdb_del(txn, c->s->dbi_records, &k, NULL);
    }
    if (!rc) {
        st_vkey(kb, d->loc.tid, d->loc.index);
        k.mv_size = ST_VKEY_LEN;
        rc = mdb_del(txn, c->s->dbi_values, &k, NULL);
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store__mdb_err(err, rc, "pack: remove record");
    d->removed = 1;
    c->job_records++;
    if (d->dup && (d->flags & ST_RF_BLOB) && last_record_left(c, txn, &d->loc))
        d->flags &= (uint8_t)~ST_RF_BLOB;
    return 0;
}

static int delete_job(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    pack_ctx *c = ud;
    st_view cur;
    zbuf b = ZBUF_INIT;
    int rc = store__view_write(s, txn, &cur, err), busy = 0;
    if (rc)
        return rc;
    c->job_records = c->job_objects = 0;
    for (size_t i = 0; i < c->del.n && !rc; i++) {
        pk_del *d = &c->del.v[i];
        d->removed = d->last_of_oid = 0;
        if (i == 0 || d->loc.oid != d[-1].loc.oid || d->dup != d[-1].dup)
            busy = oid_busy(c, &cur, d->loc.oid);
        if (busy || (rc = delete_one(c, txn, d, err)) || !d->removed ||
            (rc = mark_txn_packed(c, txn, d->loc.tid, &b, err)))
            continue;
        int group_end = i + 1 == c->del.n || d[1].loc.oid != d->loc.oid || d[1].dup;
        if (!d->dup && group_end && oid_gone(&cur, d->loc.oid)) {
            d->last_of_oid = 1;
            c->job_objects++;
        }
    }
    store__view_write_end(&cur);
    zbuf_free(&b);
    return rc;
}

/* Blob files go only after their records' removal is durable: a crash in
 * between leaves orphan files, never records without their file. */
static void remove_blobs(pack_ctx *c)
{
    for (size_t i = 0; i < c->del.n; i++) {
        const pk_del *d = &c->del.v[i];
        zerr err;
        int rc = d->removed && (d->flags & ST_RF_BLOB)
                     ? store__blob_remove(c->s, d->loc.oid, d->loc.tid, &err) : 1;
        if (rc == 0)
            c->stats->blobs_removed++;
        else if (rc == ZE_CORRUPT && c->blobs_left++ < PACK_LOG_MAX)
            pack_log(c, "%s: left in place", err.msg);
        if (d->last_of_oid)
            store__blob_remove_dir(c->s, d->loc.oid);   /* its last blob is gone */
    }
}

static int flush_deletions(pack_ctx *c)
{
    if (!c->del.n)
        return 0;
    int rc = store__write(c->s, delete_job, c, c->err);
    if (!rc) {
        c->stats->records_removed += c->job_records;
        c->stats->objects_removed += c->job_objects;
        store__objects_adjust(c->s, -(int64_t)c->job_objects);
        remove_blobs(c);
    }
    c->del.n = 0;
    return rc;
}

static int flush_if_full(pack_ctx *c)
{
    return c->del.n >= PACK_BATCH ? flush_deletions(c) : 0;
}

static int sweep_record(pack_ctx *c, const MDB_val *k, const MDB_val *v)
{
    st_ent r;
    uint64_t oid = zbe64(k->mv_data), tid = zbe64((const uint8_t *)k->mv_data + 8);
    if (tid > c->cutoff || st_ent_decode(v->mv_data, v->mv_size, tid, &r))
        return 0;
    ptrdiff_t i = find_obj(c, oid);
    /* a back-pointer may name the oid's record of a txn by ST_INDEX_LAST */
    if ((i >= 0 && c->objs.v[i].tid == tid && obj_kept(c, (size_t)i)) ||
        is_target(c, oid, tid, r.index) || is_target(c, oid, tid, ST_INDEX_LAST))
        return 0;
    return PUSH(c, c->del, ((pk_del){.loc = {oid, tid, r.index}, .flags = r.flags}));
}

/* An earlier record of an oid in one transaction is never current. */
static int sweep_dup_txn(pack_ctx *c, const MDB_val *k, const MDB_val *v)
{
    st_txnval t;
    if (k->mv_size != 8 || store__txnval_decode(v->mv_data, v->mv_size, &t))
        return bad_record(c, "txns", k);
    uint64_t tid = zbe64(k->mv_data);
    if (tid > c->cutoff)
        return SCAN_STOP;
    int rc = dup_positions(&t, &c->seen, &c->pos, c->err);
    for (size_t j = 0; !rc && j < c->pos.n; j++) {
        st_rec r;
        uint32_t i = (uint32_t)c->pos.v[j];
        uint64_t oid = st_txn_oid(&t, i);
        rc = store__value_get(c->chunk_txn, c->s, tid, i, &r, c->err);
        if (rc == ZE_NOTFOUND || (!rc && (r.oid != oid || is_target(c, oid, tid, i)))) {
            rc = 0;
            continue;
        }
        if (!rc)
            rc = PUSH(c, c->del, ((pk_del){.loc = {oid, tid, i}, .flags = r.flags, .dup = 1}));
    }
    return rc;
}

static int sweep(pack_ctx *c)
{
    int rc = scan_db(c, c->s->dbi_records, NULL, 0, sweep_record, flush_if_full);
    if (!rc)
        rc = flush_deletions(c);
    if (!rc)
        rc = scan_db(c, c->s->dbi_txns, NULL, 0, sweep_dup_txn, flush_if_full);
    return rc ? rc : flush_deletions(c);
}

/* ---- 4. transactions ------------------------------------------------------------- */

static int pack_txn(pack_ctx *c, MDB_txn *txn, uint64_t tid, zbuf *b, zerr *err)
{
    uint8_t kb[8];
    MDB_val k = {8, kb};
    st_txnval t;
    uint64_t size = 0;
    uint32_t kept = 0;
    zbe64_put(kb, tid);
    int rc = get_txn(c, txn, &k, &t, err);
    if (rc)
        return rc < 0 ? rc : 0;
    for (uint32_t i = 0; i < t.nrec; i++) {
        st_rec r;
        zerr e;
        rc = store__value_get(txn, c->s, tid, i, &r, &e);
        if (rc == ZE_NOTFOUND || (!rc && r.oid != st_txn_oid(&t, i)))
            continue;
        if (rc)
            return zerr_set(err, rc, "%s", e.msg);
        kept++;
        size += st_rec_size(&r);
    }
    if (!kept) {
        c->job_txns++;
        rc = mdb_del(txn, c->s->dbi_txns, &k, NULL);
        return rc ? store__mdb_err(err, rc, "pack: remove transaction") : 0;
    }
    if (t.status != 'p' || size != t.size)
        return rewrite_txn(c, txn, &k, &t, 'p', size, b, err);
    return 0;
}

/* Commits do not write meta "last_tid": before pack may remove the last
 * transaction, the last tid goes there so that it never goes back. */
static int keep_last_tid(store *s, MDB_txn *txn, zerr *err)
{
    uint64_t last;
    int rc = store__last_tid(txn, s, NULL, &last, err);
    return rc ? rc : store__meta_put(txn, s, "last_tid", last, err);
}

static int txn_job(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    pack_ctx *c = ud;
    zbuf b = ZBUF_INIT;
    int rc = keep_last_tid(s, txn, err);
    c->job_txns = 0;
    for (size_t i = 0; i < c->tids.n && !rc; i++)
        rc = pack_txn(c, txn, c->tids.v[i], &b, err);
    if (!rc)
        rc = store__meta_put(txn, s, "pack_tid", c->cutoff, err);
    zbuf_free(&b);
    return rc;
}

static int flush_txns(pack_ctx *c)
{
    if (!c->tids.n)
        return 0;
    int rc = store__write(c->s, txn_job, c, c->err);
    if (!rc)
        c->stats->txns_removed += c->job_txns;
    c->tids.n = 0;
    return rc;
}

static int flush_txns_if_full(pack_ctx *c)
{
    return c->tids.n >= PACK_TXN_BATCH ? flush_txns(c) : 0;
}

/* Every transaction up to the cutoff turns 'p'; one already 'p' changes only
 * when it lost records (its size) or has none (it disappears). */
static int note_txn(pack_ctx *c, const MDB_val *k, const MDB_val *v)
{
    st_txnval t;
    if (k->mv_size != 8 || store__txnval_decode(v->mv_data, v->mv_size, &t))
        return bad_record(c, "txns", k);
    uint64_t tid = zbe64(k->mv_data);
    if (tid > c->cutoff)
        return SCAN_STOP;
    if (!c->changed && t.status == 'p' && t.nrec)
        return 0;
    return PUSH(c, c->tids, tid);
}

static int pack_txns(pack_ctx *c)
{
    int rc = scan_db(c, c->s->dbi_txns, NULL, 0, note_txn, flush_txns_if_full);
    return rc ? rc : flush_txns(c);
}

/* ---- driver ---------------------------------------------------------------------- */

/* Past the decisions, records at or before the cutoff change only by this
 * pack and newer ones are all kept, so the sweep reads fresh transactions:
 * holding the snapshot would stop LMDB from reusing the pages each batch
 * frees, and the file would grow by what the pack rewrites. */
static void end_snapshot(pack_ctx *c)
{
    if (!c->view)
        return;
    store__map_enter(c->s);
    store__view_end(c->view);
    store__map_leave(c->s);
    c->view = NULL;
}

static void ctx_free(pack_ctx *c)
{
    free(c->objs.v);
    free(c->reached);
    free(c->to_visit.v);
    free(c->forced.v);
    free(c->roots.v);
    free(c->refs.v);
    free(c->keep.v);
    free(c->inl.v);
    free(c->del.v);
    free(c->tids.v);
    free(c->pos.v);
    oidmap_free(&c->seen);
    end_snapshot(c);
}

static int nothing(store *s, MDB_txn *txn, void *ud, zerr *err) { return 0; }

/* The snapshot, its last tid and the cutoff: transactions with tid <= the
 * pack time's TimeStamp are packed, and never one whose index entries the
 * snapshot holds only in the overlay (a pack time in the future packs up to
 * the last transaction the index holds). A write job first applies the
 * overlay, so that is nearly all of them. */
static int begin_snapshot(pack_ctx *c, double pack_time)
{
    if (isnan(pack_time))
        return zerr_set(c->err, ZE_INVAL, "pack time is not a number");
    int rc = store__write(c->s, nothing, NULL, c->err);
    if (rc)
        return rc;
    store__map_enter(c->s);
    rc = store__view_begin(c->s, &c->snap, c->err);
    store__map_leave(c->s);
    if (rc)
        return rc;
    c->view = &c->snap;
    c->snap_last = c->snap.last;
    c->cutoff = c->snap.indexed;
    if (pack_time < ztid_time(c->snap_last)) {
        /* FileStorage's stop tid; before 1900 nothing is old enough. */
        uint64_t t = 0;
        ztid_from_time(pack_time, &t);
        c->cutoff = t < c->cutoff ? t : c->cutoff;
    }
    return 0;
}

static int run_pack(pack_ctx *c, double pack_time)
{
    int rc = begin_snapshot(c, pack_time);
    if (rc || !c->snap_last || !c->cutoff)
        return rc;
    if ((rc = scan_snapshot(c)) || (rc = reach(c)) || (rc = close_targets(c)))
        return rc;
    end_snapshot(c);
    if ((rc = inline_backptrs(c)) || (rc = sweep(c)))
        return rc;
    c->changed = c->stats->records_removed > 0 || c->inlined > 0;
    return pack_txns(c);
}

int store__lmdb_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err)
{
    store_pack_stats local;
    pack_ctx c = {.s = s, .gc = gc, .err = err};
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    c.stats = stats;
    if (store_is_read_only(s))
        return zerr_set(err, ZE_READONLY, "pack: the store is read-only");
    pthread_mutex_lock(&s->mu);
    int bulk = s->bulk;
    pthread_mutex_unlock(&s->mu);
    if (bulk)   /* bulk writes are not visible to the sweep's read txns yet */
        return zerr_set(err, ZE_BUSY, "pack: a bulk import is running");
    stats->bytes_before = store_size_bytes(s);
    atomic_fetch_add(&s->packs, 1);
    atomic_fetch_add(&s->pack_gen, 1);
    int rc = run_pack(&c, pack_time);
    atomic_fetch_add(&s->pack_gen, 1);
    atomic_fetch_sub(&s->packs, 1);
    if (c.blobs_left > PACK_LOG_MAX)
        pack_log(&c, "%llu blob files that are links left in place in all",
                 (unsigned long long)c.blobs_left);
    ctx_free(&c);
    stats->bytes_after = store_size_bytes(s);
    return rc;
}
