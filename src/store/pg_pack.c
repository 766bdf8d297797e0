/* pg_pack.c: store_pack on PostgreSQL: FileStorage's pack with garbage
 * collection, deciding as the LMDB store's pack does (pack.c says what and
 * why), with the same reference scanner (pickle/record.h):
 *
 *  1. scan one snapshot (a read-only REPEATABLE READ transaction, through a
 *     cursor in (oid, tid, idx) order): each oid's current record at the
 *     cutoff; records after the cutoff make roots and keep their
 *     back-pointers' targets;
 *  2. reach (gc): walk strong references from oid 0 and the roots, reading
 *     current records a batch at a time;
 *  3. copy a kept current back-pointer's pickle inline, then delete every
 *     record at or before the cutoff that is neither the current record of
 *     a kept object nor a kept target, with the blobs no record uses any
 *     more, in batches of short transactions;
 *  4. transactions at or before the cutoff that lost every record go; the
 *     others are marked 'p' with their size recomputed.
 *
 * A batch takes each oid's lock with pg_try_advisory_xact_lock and leaves
 * an oid that a transaction holds, or that changed after the snapshot, for
 * the next pack: no lock is held for long and commits go on. One pack at a
 * time per database: the PACK session lock. */
#include "store/pg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"
#include "common/ztid.h"
#include "pickle/record.h"

#define ROWS_FIRST 1             /* rows the first batch brings (they grow) */
#define ROWS_MAX 10000
#define DELETE_BATCH 10000
#define INLINE_BATCH 2000
#define TXN_BATCH 2000
#define LOG_MAX 20

typedef struct pk_obj { uint64_t oid, tid; } pk_obj;
typedef struct pk_loc { uint64_t oid, tid; uint32_t idx; } pk_loc;

typedef struct { pk_obj *v; size_t n, cap; } obj_vec;
typedef struct { pk_loc *v; size_t n, cap; } loc_vec;
typedef struct { uint64_t *v; size_t n, cap; } u64_vec;
typedef struct { size_t *v; size_t n, cap; } idx_vec;

struct sweep;

typedef struct pack_ctx {
    stpg_store *s;
    stpg_conn *c;                /* snapshot reads, then the batches' own cursor */
    stpg_conn *w;                /* the batches' writes */
    uint64_t cutoff, snap_last;
    int gc;
    obj_vec objs;                /* current at the cutoff, in oid order */
    uint8_t *reached;
    idx_vec to_visit, forced;
    u64_vec roots, refs, born;   /* born: oids whose first record is after the cutoff */
    loc_vec keep, inl;
    /* scan state */
    uint64_t oid, last_tid;
    uint32_t last_idx;
    int have_oid, after, last_kind, last_flags, last_has_data;
    uint64_t dangling;
    int visit_rows;              /* objects the next visit batch reads */
    struct sweep *sweep;
    store_pack_stats *stats;
    zerr *err;
} pack_ctx;

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

static void pack_log(pack_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Pack fails for none of these, so they go to the store's log. */
static void pack_log(pack_ctx *c, const char *fmt, ...)
{
    char line[ZERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    store__pg_log(c->s, STORE_LOG_WARNING, "pack %s: %s", c->s->shown, line);
}

static int loc_cmp(const void *a, const void *b)
{
    const pk_loc *x = a, *y = b;
    if (x->oid != y->oid)
        return x->oid < y->oid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

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

static int obj_kept(const pack_ctx *c, size_t i) { return !c->gc || c->reached[i]; }

static int is_target(const pack_ctx *c, uint64_t oid, uint64_t tid, uint32_t idx)
{
    pk_loc key = {oid, tid, idx};
    return c->keep.n && bsearch(&key, c->keep.v, c->keep.n, sizeof key, loc_cmp) != NULL;
}

static uint64_t id_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_id(PQgetvalue(r, row, col));
}

static int i16_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_i16(PQgetvalue(r, row, col));
}

static int i32_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_i32(PQgetvalue(r, row, col));
}

/* ---- references ------------------------------------------------------------------- */

static int collect_ref(const record_ref *ref, void *ud)
{
    pack_ctx *c = ud;
    if (ref->weak || ref->database)
        return 0;
    return PUSH(c, c->refs, ref->oid);
}

/* The strong references of a pickle into c->refs; 1 when they cannot be
 * read (the GC is then off: nothing can be proven unreachable). */
static int strong_refs(pack_ctx *c, uint64_t oid, const char *data, size_t len, int found)
{
    zerr perr;
    c->refs.n = 0;
    if (!found) {
        pack_log(c, "oid 0x%016llx: back-pointer target missing, keeping every object",
                 (unsigned long long)oid);
        c->gc = 0;
        return 1;
    }
    int rc = record_refs((const uint8_t *)data, len, collect_ref, c, &perr);
    if (rc == ZE_CORRUPT) {
        pack_log(c, "oid 0x%016llx: references cannot be read (%s), keeping every object",
                 (unsigned long long)oid, perr.msg);
        c->gc = 0;
        return 1;
    }
    return rc;
}

/* ---- 1. scan ------------------------------------------------------------------------ */

/* columns: oid, tid, idx, kind, flags, back_tid, back_idx, data_tid, data_idx,
 * the resolved pickle of a record after the cutoff (gc), the target's kind */
static const char scan_sql[] =
    "DECLARE zeolite_pack BINARY NO SCROLL CURSOR FOR "
    "SELECT r.oid, r.tid, r.idx, r.kind, r.flags, r.back_tid, r.back_idx, r.data_tid, "
    "r.data_idx, CASE WHEN r.tid > $1::bigint AND $2::bool THEN "
    "(CASE WHEN r.kind = 2 THEN d.data ELSE r.data END) END, d.kind "
    "FROM zeolite.records r LEFT JOIN zeolite.records d ON r.tid > $1::bigint AND $2::bool "
    "AND r.kind = 2 AND d.tid = r.data_tid AND d.idx = r.data_idx "
    "ORDER BY r.oid, r.tid, r.idx";

static int finish_oid(pack_ctx *c)
{
    int rc = 0;
    if (!c->last_tid || c->last_kind == STORE_REC_DELETE || (c->last_flags & STPG_RF_HIDDEN) ||
        (c->last_kind == STORE_REC_BACKPTR && !c->last_has_data)) {
        if (!c->last_tid && c->after)
            rc = PUSH(c, c->born, c->oid);
        c->last_tid = 0;
        return rc;
    }
    if ((rc = PUSH(c, c->objs, ((pk_obj){c->oid, c->last_tid}))))
        return rc;
    if (c->last_kind == STORE_REC_BACKPTR &&
        (rc = PUSH(c, c->inl, ((pk_loc){c->oid, c->last_tid, c->last_idx}))))
        return rc;
    if (c->after)
        rc = PUSH(c, c->forced, c->objs.n - 1);
    c->last_tid = 0;
    return rc;
}

static int add_targets(pack_ctx *c, uint64_t oid, const PGresult *r, int row, int col)
{
    /* back_tid, back_idx, data_tid, data_idx at col.. col + 3 */
    int rc = PUSH(c, c->keep, ((pk_loc){oid, id_at(r, row, col), (uint32_t)i32_at(r, row, col + 1)}));
    if (!rc && id_at(r, row, col + 2))
        rc = PUSH(c, c->keep, ((pk_loc){oid, id_at(r, row, col + 2),
                                        (uint32_t)i32_at(r, row, col + 3)}));
    return rc;
}

/* A record after the cutoff: it stays, and so does what it needs. */
static int after_record(pack_ctx *c, uint64_t oid, const PGresult *r, int row)
{
    int kind = i16_at(r, row, 3), rc = 0;
    if (kind == STORE_REC_BACKPTR && (rc = add_targets(c, oid, r, row, 5)))
        return rc;
    if (!c->gc || kind == STORE_REC_DELETE || (kind == STORE_REC_BACKPTR && !id_at(r, row, 7)))
        return 0;
    int found = kind == STORE_REC_DATA || i16_at(r, row, 10) == STORE_REC_DATA;
    rc = strong_refs(c, oid, PQgetvalue(r, row, 9), (size_t)PQgetlength(r, row, 9), found);
    if (rc)
        return rc < 0 ? rc : 0;
    for (size_t i = 0; i < c->refs.n && !rc; i++)
        rc = PUSH(c, c->roots, c->refs.v[i]);
    return rc;
}

static int scan_row(pack_ctx *c, const PGresult *r, int row)
{
    uint64_t oid = id_at(r, row, 0), tid = id_at(r, row, 1);
    int rc;
    if (!c->have_oid || oid != c->oid) {
        if (c->have_oid && !c->after && (rc = finish_oid(c)))
            return rc;
        c->oid = oid, c->have_oid = 1, c->after = 0, c->last_tid = 0;
    }
    if (tid <= c->cutoff) {
        c->last_tid = tid;
        c->last_idx = (uint32_t)i32_at(r, row, 2);
        c->last_kind = i16_at(r, row, 3);
        c->last_flags = i16_at(r, row, 4);
        c->last_has_data = c->last_kind != STORE_REC_BACKPTR || id_at(r, row, 7) != 0;
        return 0;
    }
    if (!c->after) {
        c->after = 1;
        if ((rc = finish_oid(c)))
            return rc;
    }
    return after_record(c, oid, r, row);
}

/* Run a cursor declared on c->c, a batch of rows at a time. */
static int each_row(pack_ctx *c, const char *name, int (*fn)(pack_ctx *, const PGresult *, int))
{
    char sql[96];
    for (int rows = ROWS_FIRST;;) {
        snprintf(sql, sizeof sql, "FETCH %d FROM %s", rows, name);
        PGresult *r = store__pg_query(c->s, c->c, sql, NULL, c->err);
        if (!r)
            return c->c->rc;
        int n = PQntuples(r), rc = 0;
        for (int i = 0; i < n && !rc; i++)
            rc = fn(c, r, i);
        int more = n == rows;
        rows = store__pg_next_batch(rows, r, ROWS_MAX);
        PQclear(r);
        if (rc || !more)
            return rc;
    }
}

static int scan(pack_ctx *c)
{
    stpg_params p = {0};
    stpg_p_id(&p, c->cutoff);
    stpg_p_bool(&p, c->gc);
    PGresult *r = store__pg_query(c->s, c->c, scan_sql, &p, c->err);
    PQclear(r);
    int rc = c->c->rc;
    if (!rc)
        rc = each_row(c, "zeolite_pack", scan_row);
    if (!rc && c->have_oid && !c->after)
        rc = finish_oid(c);
    if (!rc)
        rc = store__pg_command(c->s, c->c, "CLOSE zeolite_pack", c->err);
    if (!rc && c->born.n)
        qsort(c->born.v, c->born.n, sizeof *c->born.v, u64_cmp);
    return rc;
}

/* ---- 2. reach ------------------------------------------------------------------------- */

static int reach_obj(pack_ctx *c, size_t i)
{
    if (c->reached[i])
        return 0;
    c->reached[i] = 1;
    return PUSH(c, c->to_visit, i);
}

static int reach_oid(pack_ctx *c, uint64_t oid, uint64_t from)
{
    ptrdiff_t i = find_obj(c, oid);
    if (i >= 0)
        return reach_obj(c, (size_t)i);
    if (c->born.n && bsearch(&oid, c->born.v, c->born.n, sizeof oid, u64_cmp))
        return 0;   /* not current at the cutoff, but kept: not dangling */
    if (c->dangling++ < LOG_MAX)
        pack_log(c, "oid 0x%016llx refers to 0x%016llx, which does not exist at the pack time; "
                    "reference skipped", (unsigned long long)from, (unsigned long long)oid);
    return 0;
}

static const char visit_sql[] =
    "SELECT u.n, CASE WHEN r.kind = 2 THEN d.data ELSE r.data END, r.kind, d.kind "
    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS u(o, t, n) "
    "JOIN LATERAL (SELECT kind, data, data_tid, data_idx FROM zeolite.records "
    "WHERE oid = u.o AND tid = u.t ORDER BY idx DESC LIMIT 1) r ON true "
    "LEFT JOIN zeolite.records d ON r.kind = 2 AND d.tid = r.data_tid AND d.idx = r.data_idx "
    "ORDER BY u.n";

/* Visit a batch of the objects of to_visit: their references reach others. */
static int visit_batch(pack_ctx *c)
{
    size_t n = c->to_visit.n < (size_t)c->visit_rows ? c->to_visit.n : (size_t)c->visit_rows;
    size_t *batch = c->to_visit.v + c->to_visit.n - n;
    zbuf ao = ZBUF_INIT, at = ZBUF_INIT;
    int rc = stpg_arr_begin(&ao, STPG_INT8, n) || stpg_arr_begin(&at, STPG_INT8, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = stpg_arr_id(&ao, c->objs.v[batch[i]].oid) ||
             stpg_arr_id(&at, c->objs.v[batch[i]].tid);
    PGresult *r = NULL;
    if (rc) {
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    } else {
        stpg_params p = {0};
        stpg_p_bytes(&p, ao.data, ao.len);
        stpg_p_bytes(&p, at.data, at.len);
        r = store__pg_query(c->s, c->c, visit_sql, &p, c->err);
        rc = c->c->rc;
    }
    zbuf_free(&ao);
    zbuf_free(&at);
    /* the batch leaves to_visit before its references add to it */
    size_t *mine = rc ? NULL : malloc(n * sizeof *mine);
    if (!rc && !mine)
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    if (!rc) {
        memcpy(mine, batch, n * sizeof *mine);
        c->to_visit.n -= n;
    }
    for (int row = 0; !rc && row < PQntuples(r) && c->gc; row++) {
        size_t i = mine[stpg_get_i64(PQgetvalue(r, row, 0)) - 1];
        int kind = i16_at(r, row, 2);
        if (kind != STORE_REC_DATA && kind != STORE_REC_BACKPTR)
            continue;
        int found = kind == STORE_REC_DATA || i16_at(r, row, 3) == STORE_REC_DATA;
        uint64_t oid = c->objs.v[i].oid;
        rc = strong_refs(c, oid, PQgetvalue(r, row, 1), (size_t)PQgetlength(r, row, 1), found);
        if (rc > 0) {
            rc = 0;
            break;
        }
        for (size_t j = 0; j < c->refs.n && !rc && c->gc; j++)
            rc = reach_oid(c, c->refs.v[j], oid);
    }
    free(mine);
    c->visit_rows = store__pg_next_batch(c->visit_rows, r, ROWS_MAX);
    PQclear(r);
    return rc;
}

static int reach(pack_ctx *c)
{
    if (!c->gc)
        return 0;
    if (!(c->reached = calloc(c->objs.n ? c->objs.n : 1, 1)))
        return zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    ptrdiff_t root = find_obj(c, 0);
    if (root < 0) {
        pack_log(c, "no root object (oid 0) at the pack time: garbage collection skipped");
        c->gc = 0;
        return 0;
    }
    int rc = reach_obj(c, (size_t)root);
    for (size_t j = 0; j < c->forced.n && !rc; j++)
        rc = reach_obj(c, c->forced.v[j]);
    for (size_t j = 0; j < c->roots.n && !rc; j++) {
        ptrdiff_t i = find_obj(c, c->roots.v[j]);
        if (i >= 0)
            rc = reach_obj(c, (size_t)i);
    }
    while (!rc && c->gc && c->to_visit.n)
        rc = visit_batch(c);
    if (c->dangling > LOG_MAX)
        pack_log(c, "%llu dangling references in all", (unsigned long long)c->dangling);
    return rc;
}

/* Targets of targets down each chain (a chain's tids strictly decrease). */
static int close_targets(pack_ctx *c)
{
    int rc = 0;
    for (size_t j = 0; j < c->keep.n && !rc; j++) {
        pk_loc t = c->keep.v[j];
        stpg_rec r;
        PGresult *res = NULL;
        int got = store__pg_rec_get(c->s, c->c, t.oid, t.tid, t.idx, &r, &res, NULL);
        if (!got && r.kind == STORE_REC_BACKPTR && r.back_tid < t.tid) {
            rc = PUSH(c, c->keep, ((pk_loc){t.oid, r.back_tid, r.back_idx}));
            if (!rc && r.data_tid)
                rc = PUSH(c, c->keep, ((pk_loc){t.oid, r.data_tid, r.data_idx}));
        } else if (got && got != ZE_NOTFOUND) {
            rc = got;
        }
        PQclear(res);
    }
    if (!rc && c->keep.n)
        qsort(c->keep.v, c->keep.n, sizeof *c->keep.v, loc_cmp);
    return rc;
}

/* ---- batches -------------------------------------------------------------------------- */

static int id_array(pack_ctx *c, zbuf *a, const uint64_t *v, size_t n)
{
    int rc = stpg_arr_begin(a, STPG_INT8, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = stpg_arr_id(a, v[i]);
    return rc ? zerr_set(c->err, ZE_NOMEM, "pack: out of memory") : 0;
}

/* Begin a batch: try the oids' locks and keep those held whose last record
 * is still within the snapshot, read by a statement that begins after the
 * locks are held; *free_ gets them, sorted. */
static int batch_begin(pack_ctx *c, u64_vec *oids, u64_vec *free_)
{
    free_->n = 0;
    qsort(oids->v, oids->n, sizeof *oids->v, u64_cmp);
    size_t m = 0;
    for (size_t i = 0; i < oids->n; i++)
        if (!m || oids->v[m - 1] != oids->v[i])
            oids->v[m++] = oids->v[i];
    oids->n = m;
    zbuf a = ZBUF_INIT;
    PGresult *r = NULL;
    stpg_params p = {0};
    int rc = store__pg_command(c->s, c->w, "BEGIN", c->err);
    if (!rc && !(rc = id_array(c, &a, oids->v, m))) {
        stpg_p_bytes(&p, a.data, a.len);
        r = store__pg_query(c->s, c->w, "SELECT o FROM unnest($1::bigint[]) AS u(o) "
                            "WHERE pg_try_advisory_xact_lock(o) ORDER BY o", &p, c->err);
        rc = c->w->rc;
    }
    oids->n = 0;
    for (int i = 0; !rc && i < PQntuples(r); i++)
        oids->v[oids->n++] = stpg_get_id(PQgetvalue(r, i, 0));
    PQclear(r);
    r = NULL;
    if (!rc && !(rc = id_array(c, &a, oids->v, oids->n))) {
        stpg_params q = {0};
        stpg_p_bytes(&q, a.data, a.len);
        stpg_p_id(&q, c->snap_last);
        r = store__pg_query(c->s, c->w, "SELECT o FROM unnest($1::bigint[]) AS u(o) WHERE NOT "
                            "EXISTS (SELECT 1 FROM zeolite.records x WHERE x.oid = u.o AND "
                            "x.tid > $2::bigint) ORDER BY o", &q, c->err);
        rc = c->w->rc;
    }
    for (int i = 0; !rc && i < PQntuples(r); i++)
        rc = PUSH(c, *free_, stpg_get_id(PQgetvalue(r, i, 0)));
    PQclear(r);
    zbuf_free(&a);
    return rc;
}

static int batch_end(pack_ctx *c, int rc)
{
    if (!rc)
        return store__pg_command(c->s, c->w, "COMMIT", c->err);
    if (!c->w->broken)
        store__pg_command(c->s, c->w, "ROLLBACK", NULL);
    return rc;
}

static int oid_free(const u64_vec *free_, uint64_t oid)
{
    return free_->n && bsearch(&oid, free_->v, free_->n, sizeof oid, u64_cmp) != NULL;
}

/* ---- 3a. copy current back-pointers inline ---------------------------------------------- */

static const char inline_sql[] =
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::int[]) AS u(t, i)), "
    "done AS (UPDATE zeolite.records r SET kind = 1, data = d.data, back_tid = NULL, "
    "back_idx = NULL, data_tid = NULL, data_idx = NULL FROM u, zeolite.records d "
    "WHERE r.tid = u.t AND r.idx = u.i AND r.kind = 2 AND d.tid = r.data_tid "
    "AND d.idx = r.data_idx AND d.kind = 1 RETURNING r.tid) "
    "UPDATE zeolite.txns SET status = 'p' WHERE tid IN (SELECT tid FROM done) "
    "AND status <> 'p'";

static int inline_batch(pack_ctx *c, const loc_vec *batch)
{
    u64_vec oids = {0}, free_ = {0};
    zbuf at = ZBUF_INIT, ai = ZBUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < batch->n && !rc; i++)
        rc = PUSH(c, oids, batch->v[i].oid);
    if (!rc)
        rc = batch_begin(c, &oids, &free_);
    size_t n = 0;
    for (size_t i = 0; i < batch->n; i++)
        n += oid_free(&free_, batch->v[i].oid);
    if (!rc && (stpg_arr_begin(&at, STPG_INT8, n) || stpg_arr_begin(&ai, STPG_INT4, n)))
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    for (size_t i = 0; i < batch->n && !rc; i++)
        if (oid_free(&free_, batch->v[i].oid) &&
            (stpg_arr_id(&at, batch->v[i].tid) || stpg_arr_i32(&ai, (int32_t)batch->v[i].idx)))
            rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    if (!rc && n) {
        stpg_params p = {0};
        stpg_p_bytes(&p, at.data, at.len);
        stpg_p_bytes(&p, ai.data, ai.len);
        PQclear(store__pg_query(c->s, c->w, inline_sql, &p, c->err));
        rc = c->w->rc;
    }
    rc = batch_end(c, rc);
    free(oids.v);
    free(free_.v);
    zbuf_free(&at);
    zbuf_free(&ai);
    return rc;
}

static int inline_backptrs(pack_ctx *c)
{
    loc_vec batch = {0};
    int rc = 0;
    for (size_t j = 0; j < c->inl.n && !rc; j++) {
        ptrdiff_t i = find_obj(c, c->inl.v[j].oid);
        if (i >= 0 && obj_kept(c, (size_t)i))
            rc = PUSH(c, batch, c->inl.v[j]);
        if (!rc && batch.n && (batch.n == INLINE_BATCH || j + 1 == c->inl.n)) {
            rc = inline_batch(c, &batch);
            batch.n = 0;
        }
    }
    free(batch.v);
    return rc;
}

/* ---- 3b. delete records -------------------------------------------------------------------- */

typedef struct sweep {
    loc_vec del;                /* this batch's records */
    int have_prev;
    pk_loc prev;                /* the row before, decided once the next is seen */
} sweep;

/* Delete a batch: the records of free oids, their blobs no record uses any
 * more, and mark their transactions packed; count objects left with no
 * record. Cache files go once the batch is committed. */
static const char delete_sql[] =
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::int[]) AS u(t, i)), "
    "gone AS (DELETE FROM zeolite.records r USING u WHERE r.tid = u.t AND r.idx = u.i "
    "RETURNING r.oid, r.tid, r.blob_id, r.flags), "
    "marked AS (UPDATE zeolite.txns SET status = 'p' WHERE tid IN (SELECT tid FROM gone) "
    "AND status <> 'p') "
    "SELECT oid, tid, blob_id, flags FROM gone";

static const char blobs_gone_sql[] =
    "DELETE FROM zeolite.blob_chunks WHERE blob_id = ANY($1::bigint[]) AND NOT EXISTS "
    "(SELECT 1 FROM zeolite.records r WHERE r.blob_id = blob_chunks.blob_id)";

static const char objects_gone_sql[] =
    "SELECT count(*) FROM unnest($1::bigint[]) AS u(o) WHERE NOT EXISTS "
    "(SELECT 1 FROM zeolite.records r WHERE r.oid = u.o)";

static const char pair_left_sql[] =
    "SELECT u.o, u.t FROM unnest($1::bigint[], $2::bigint[]) AS u(o, t) WHERE NOT EXISTS "
    "(SELECT 1 FROM zeolite.records r WHERE r.oid = u.o AND r.tid = u.t)";

static int exec_arrays(pack_ctx *c, const char *sql, zbuf *a, zbuf *b, PGresult **out)
{
    stpg_params p = {0};
    stpg_p_bytes(&p, a->data, a->len);
    if (b)
        stpg_p_bytes(&p, b->data, b->len);
    PGresult *r = store__pg_query(c->s, c->w, sql, &p, c->err);
    if (out)
        *out = r;
    else
        PQclear(r);
    return c->w->rc;
}

/* After the deletion (same transaction): blob chunks no record uses, the
 * objects that lost their last record, and which (oid, tid) files to drop. */
static int after_delete(pack_ctx *c, PGresult *gone, u64_vec *oids, uint64_t *objs_gone,
                        PGresult **drop)
{
    zbuf ab = ZBUF_INIT, ao = ZBUF_INIT, at = ZBUF_INIT;
    int n = PQntuples(gone), nb = 0, rc = 0;
    for (int i = 0; i < n; i++)
        nb += !PQgetisnull(gone, i, 2);
    if (stpg_arr_begin(&ab, STPG_INT8, (size_t)nb) ||
        stpg_arr_begin(&ao, STPG_INT8, (size_t)n) || stpg_arr_begin(&at, STPG_INT8, (size_t)n))
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    for (int i = 0; i < n && !rc; i++) {
        if (!PQgetisnull(gone, i, 2) &&
            stpg_arr_i64(&ab, stpg_get_i64(PQgetvalue(gone, i, 2))))
            rc = ZE_NOMEM;
        if (stpg_arr_id(&ao, id_at(gone, i, 0)) || stpg_arr_id(&at, id_at(gone, i, 1)))
            rc = ZE_NOMEM;
    }
    if (rc)
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    PGresult *r = NULL;
    if (!rc && nb)
        rc = exec_arrays(c, blobs_gone_sql, &ab, NULL, NULL);
    r = NULL;
    zbuf_reset(&ao);
    if (!rc && stpg_arr_begin(&ao, STPG_INT8, oids->n))
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    for (size_t i = 0; i < oids->n && !rc; i++)
        if (stpg_arr_id(&ao, oids->v[i]))
            rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    if (!rc && !(rc = exec_arrays(c, objects_gone_sql, &ao, NULL, &r)) && PQntuples(r) == 1)
        *objs_gone = (uint64_t)stpg_get_i64(PQgetvalue(r, 0, 0));
    PQclear(r);
    /* the (oid, tid) pairs with a blob that have no record left */
    zbuf_reset(&ao);
    int nf = 0;
    for (int i = 0; i < n; i++)
        nf += (i16_at(gone, i, 3) & STPG_RF_BLOB) != 0;
    if (!rc && (stpg_arr_begin(&ao, STPG_INT8, (size_t)nf) ||
                stpg_arr_begin(&at, STPG_INT8, (size_t)nf)))
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    for (int i = 0; i < n && !rc; i++)
        if ((i16_at(gone, i, 3) & STPG_RF_BLOB) &&
            (stpg_arr_id(&ao, id_at(gone, i, 0)) || stpg_arr_id(&at, id_at(gone, i, 1))))
            rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    if (!rc)
        rc = exec_arrays(c, pair_left_sql, &ao, &at, drop);
    zbuf_free(&ab);
    zbuf_free(&ao);
    zbuf_free(&at);
    return rc;
}

static int delete_batch(pack_ctx *c, loc_vec *del)
{
    u64_vec oids = {0}, free_ = {0};
    zbuf at = ZBUF_INIT, ai = ZBUF_INIT;
    PGresult *gone = NULL, *drop = NULL;
    uint64_t objs_gone = 0;
    int rc = 0;
    for (size_t i = 0; i < del->n && !rc; i++)
        rc = PUSH(c, oids, del->v[i].oid);
    if (!rc)
        rc = batch_begin(c, &oids, &free_);
    size_t n = 0;
    for (size_t i = 0; i < del->n; i++)
        n += oid_free(&free_, del->v[i].oid);
    if (!rc && (stpg_arr_begin(&at, STPG_INT8, n) || stpg_arr_begin(&ai, STPG_INT4, n)))
        rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    for (size_t i = 0; i < del->n && !rc; i++)
        if (oid_free(&free_, del->v[i].oid) &&
            (stpg_arr_id(&at, del->v[i].tid) || stpg_arr_i32(&ai, (int32_t)del->v[i].idx)))
            rc = zerr_set(c->err, ZE_NOMEM, "pack: out of memory");
    if (!rc && n)
        rc = exec_arrays(c, delete_sql, &at, &ai, &gone);
    if (!rc && n)
        rc = after_delete(c, gone, &free_, &objs_gone, &drop);
    if (!rc && objs_gone) {
        stpg_params p = {0};
        stpg_p_i64(&p, (int64_t)objs_gone);
        PQclear(store__pg_query(c->s, c->w, "UPDATE zeolite.meta SET value = greatest(value - "
                                "$1::bigint, 0) WHERE name = 'objects'", &p, c->err));
        rc = c->w->rc;
    }
    rc = batch_end(c, rc);
    if (!rc && gone) {
        c->stats->records_removed += (uint64_t)PQntuples(gone);
        c->stats->objects_removed += objs_gone;
        pthread_mutex_lock(&c->s->mu);
        c->s->stats_objects = c->s->stats_objects > objs_gone ? c->s->stats_objects - objs_gone
                                                              : 0;
        pthread_mutex_unlock(&c->s->mu);
        /* a blob is a revision's file, (oid, tid), as on LMDB: it is gone
         * when no record of that revision is left */
        for (int i = 0; drop && i < PQntuples(drop); i++) {
            store__pg_blob_cache_drop(c->s, id_at(drop, i, 0), id_at(drop, i, 1));
            c->stats->blobs_removed++;
        }
    }
    PQclear(gone);
    PQclear(drop);
    free(oids.v);
    free(free_.v);
    zbuf_free(&at);
    zbuf_free(&ai);
    return rc;
}

/* Decide one record at or before the cutoff, knowing whether the record
 * after it has the same oid and tid (then it is not the oid's last record
 * of that transaction, and never current). */
static int decide(pack_ctx *c, sweep *sw, pk_loc l, int last_of_txn)
{
    ptrdiff_t i = find_obj(c, l.oid);
    if (last_of_txn && i >= 0 && c->objs.v[i].tid == l.tid && obj_kept(c, (size_t)i))
        return 0;
    if (is_target(c, l.oid, l.tid, l.idx))
        return 0;
    return PUSH(c, sw->del, l);
}

static int sweep_row(pack_ctx *c, const PGresult *r, int row)
{
    sweep *sw = c->sweep;
    pk_loc l = {id_at(r, row, 0), id_at(r, row, 1), (uint32_t)i32_at(r, row, 2)};
    int rc = 0;
    if (sw->have_prev)
        rc = decide(c, sw, sw->prev, !(sw->prev.oid == l.oid && sw->prev.tid == l.tid));
    sw->prev = l;
    sw->have_prev = 1;
    if (!rc && sw->del.n >= DELETE_BATCH) {
        rc = delete_batch(c, &sw->del);
        sw->del.n = 0;
    }
    return rc;
}

static int sweep_all(pack_ctx *c)
{
    sweep sw = {0};
    stpg_params p = {0};
    stpg_p_id(&p, c->cutoff);
    c->sweep = &sw;
    int rc = store__pg_command(c->s, c->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                               c->err);
    if (!rc) {
        PQclear(store__pg_query(c->s, c->c, "DECLARE zeolite_sweep BINARY NO SCROLL CURSOR "
                                "FOR SELECT oid, tid, idx FROM zeolite.records WHERE tid <= "
                                "$1::bigint ORDER BY oid, tid, idx", &p, c->err));
        rc = c->c->rc;
    }
    if (!rc)
        rc = each_row(c, "zeolite_sweep", sweep_row);
    if (!rc && sw.have_prev)
        rc = decide(c, &sw, sw.prev, 1);
    if (!rc && sw.del.n)
        rc = delete_batch(c, &sw.del);
    if (!c->c->broken)
        store__pg_command(c->s, c->c, rc ? "ROLLBACK" : "COMMIT", NULL);
    free(sw.del.v);
    c->sweep = NULL;
    return rc;
}

/* ---- 4. transactions ------------------------------------------------------------------------ */

static int pack_txns(pack_ctx *c)
{
    uint64_t after = 0;
    int first = 1;
    for (;;) {
        stpg_params p = {0};
        stpg_p_id(&p, after);
        stpg_p_bool(&p, first);
        stpg_p_id(&p, c->cutoff);
        PGresult *r = store__pg_query(
            c->s, c->w, "SELECT max(tid) FROM (SELECT tid FROM zeolite.txns WHERE (tid > "
            "$1::bigint OR $2::bool) AND tid <= $3::bigint ORDER BY tid LIMIT 2000) x", &p,
            c->err);
        if (!r)
            return c->w->rc;
        int none = PQgetisnull(r, 0, 0);
        uint64_t hi = none ? 0 : stpg_get_id(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (none)
            return 0;
        stpg_params q = {0};
        stpg_p_id(&q, after);
        stpg_p_bool(&q, first);
        stpg_p_id(&q, hi);
        int rc = store__pg_command(c->s, c->w, "BEGIN", c->err);
        if (!rc) {
            r = store__pg_query(c->s, c->w, "DELETE FROM zeolite.txns t WHERE (t.tid > "
                                "$1::bigint OR $2::bool) AND t.tid <= $3::bigint AND NOT "
                                "EXISTS (SELECT 1 FROM zeolite.records r WHERE r.tid = t.tid)",
                                &q, c->err);
            if (r)
                c->stats->txns_removed += strtoull(PQcmdTuples(r), NULL, 10);
            PQclear(r);
            rc = c->w->rc;
        }
        if (!rc) {
            PQclear(store__pg_query(c->s, c->w, "UPDATE zeolite.txns t SET status = 'p', "
                                    "size = coalesce((SELECT sum(CASE r.kind WHEN 1 THEN 8 + "
                                    "octet_length(r.data) WHEN 2 THEN 32 ELSE 8 END) FROM "
                                    "zeolite.records r WHERE r.tid = t.tid), 0) WHERE (t.tid > "
                                    "$1::bigint OR $2::bool) AND t.tid <= $3::bigint",
                                    &q, c->err));
            rc = c->w->rc;
        }
        if ((rc = batch_end(c, rc)))
            return rc;
        after = hi;
        first = 0;
        if (hi >= c->cutoff)
            return 0;
    }
}

/* ---- driver ------------------------------------------------------------------------------------- */

static int begin_snapshot(pack_ctx *c, double pack_time)
{
    if (isnan(pack_time))
        return zerr_set(c->err, ZE_INVAL, "pack time is not a number");
    int rc = store__pg_command(c->s, c->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                               c->err);
    if (!rc)
        rc = store__pg_fetch_last_tid(c->s, c->c, &c->snap_last, c->err);
    if (rc)
        return rc;
    c->cutoff = c->snap_last;
    if (pack_time < ztid_time(c->snap_last)) {
        uint64_t t = 0;
        ztid_from_time(pack_time, &t);
        c->cutoff = t < c->cutoff ? t : c->cutoff;
    }
    return 0;
}

/* Before pack may remove the last transaction, the last tid goes to meta,
 * so that it never goes back. */
static int keep_last_tid(pack_ctx *c)
{
    stpg_params p = {0};
    stpg_p_id(&p, c->snap_last);
    PQclear(store__pg_query(c->s, c->w, "UPDATE zeolite.meta SET value = $1::bigint WHERE "
                            "name = 'last_tid' AND value < $1::bigint", &p, c->err));
    return c->w->rc;
}

static int run_pack(pack_ctx *c, double pack_time)
{
    int rc = begin_snapshot(c, pack_time);
    if (rc || !c->snap_last || !c->cutoff) {
        if (!rc)
            rc = store__pg_command(c->s, c->c, "COMMIT", c->err);
        return rc;
    }
    if ((rc = scan(c)) || (rc = reach(c)) || (rc = close_targets(c)))
        return rc;
    if ((rc = store__pg_command(c->s, c->c, "COMMIT", c->err)))
        return rc;
    if ((rc = keep_last_tid(c)) || (rc = inline_backptrs(c)) || (rc = sweep_all(c)) ||
        (rc = pack_txns(c)))
        return rc;
    stpg_params p = {0};
    stpg_p_id(&p, c->cutoff);
    PQclear(store__pg_query(c->s, c->w, "UPDATE zeolite.meta SET value = $1::bigint WHERE "
                            "name = 'pack_tid'", &p, c->err));
    return c->w->rc;
}

static int take_pack_lock(pack_ctx *c)
{
    PGresult *r = store__pg_query(c->s, c->w, "SELECT pg_try_advisory_lock(2053467500, 4)",
                                  NULL, c->err);
    if (!r)
        return c->w->rc;
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return got ? 0 : zerr_set(c->err, ZE_BUSY, "pack: another pack of PostgreSQL (%s) is "
                              "running", c->s->shown);
}

static uint64_t db_size(pack_ctx *c)
{
    PGresult *r = PQexec(c->w->pg, "SELECT pg_database_size(current_database())");
    uint64_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoull(PQgetvalue(r, 0, 0), NULL, 10)
                                                      : 0;
    PQclear(r);
    return n;
}

static void ctx_free(pack_ctx *c)
{
    free(c->objs.v);
    free(c->reached);
    free(c->to_visit.v);
    free(c->forced.v);
    free(c->roots.v);
    free(c->refs.v);
    free(c->born.v);
    free(c->keep.v);
    free(c->inl.v);
    store__pg_release(c->s, c->c);
    store__pg_release(c->s, c->w);   /* the PACK lock ends with its session */
}

int store__pg_pack(store *ss, double pack_time, int gc, store_pack_stats *stats, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    store_pack_stats local;
    pack_ctx c = {.s = s, .gc = gc, .err = err, .visit_rows = ROWS_FIRST};
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    c.stats = stats;
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "pack: the store is read-only");
    if (s->bulk)
        return zerr_set(err, ZE_BUSY, "pack: a bulk import is running");
    double until = store__pg_now() + s->retry_seconds;
    int rc = store__pg_acquire(s, STPG_OWN, until, &c.w, err);
    if (!rc)
        rc = store__pg_acquire(s, STPG_OWN, until, &c.c, err);
    if (!rc)
        rc = take_pack_lock(&c);
    if (!rc) {
        atomic_fetch_add(&s->packing, 1);
        stats->bytes_before = db_size(&c);
        rc = run_pack(&c, pack_time);
        stats->bytes_after = db_size(&c);
        atomic_fetch_sub(&s->packing, 1);
    }
    ctx_free(&c);
    return rc;
}
