/* pg_iter.c: transaction iteration on PostgreSQL.
 *
 * store_iter_open (export) reads one consistent snapshot: a read-only
 * REPEATABLE READ transaction on a connection of its own, with a cursor over
 * the transactions and their records in (tid, idx) order, fetched a batch at
 * a time so memory does not grow with the database.
 *
 * store_iter_open_resumable (a client's iterator) holds no transaction and
 * no connection between calls: each call takes a read connection and
 * resumes by key (the next tid; the current tid and the next idx), bounded
 * by the last tid when it was opened.
 *
 * Both list the records left in a packed transaction, numbered as listed,
 * and renumber a back-pointer into such a transaction the same way
 * (pg_sql.c, Q_TXN_RECORDS). Anywhere else a missing record is damage. */
#include "store/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_FIRST 1             /* rows the first batch brings (they grow) */
#define ROWS_MAX 1000            /* and any batch at most */

/* The record columns of a row, from base on (Q_TXN_RECORDS's layout). */
#define RECORD_SELECT                                                                        \
    "r.idx, r.oid, r.kind, r.flags, r.back_tid, "                                           \
    "CASE WHEN r.kind = 2 AND bt.status = 'p' THEN (SELECT count(*)::int "                  \
    "FROM zeolite.records g WHERE g.tid = r.back_tid AND g.idx < r.back_idx) "              \
    "ELSE r.back_idx END, CASE WHEN r.kind = 2 THEN d.data ELSE r.data END, r.data_tid, d.kind"

static const char cursor_sql[] =
    "DECLARE zeolite_iter BINARY NO SCROLL CURSOR FOR "
    "SELECT t.tid, t.status, t.username, t.description, t.extension, t.size, t.nrec, "
    RECORD_SELECT " FROM zeolite.txns t LEFT JOIN zeolite.records r ON r.tid = t.tid "
    "LEFT JOIN zeolite.records d ON r.kind = 2 AND d.tid = r.data_tid AND d.idx = r.data_idx "
    "LEFT JOIN zeolite.txns bt ON r.kind = 2 AND bt.tid = r.back_tid "
    "WHERE t.tid >= $1::bigint AND t.tid <= $2::bigint ORDER BY t.tid, r.idx";

typedef struct stpg_iter {
    const store_ops *be;
    stpg_store *s;
    int resumable;
    stpg_conn *c;           /* the snapshot's connection (not resumable) */
    uint64_t next_tid, stop;
    int done;
    /* the current transaction */
    int in_txn;
    uint64_t tid;
    char status;
    uint64_t size;
    uint32_t nrec;
    zbuf meta;              /* user || description || extension, copied */
    size_t ulen, dlen, elen;
    uint32_t listed;        /* records listed of it */
    uint32_t next_idx;      /* resumable: where its records go on */
    int recs_done;
    /* the rows at hand */
    PGresult *res;
    int row, nrows, base;   /* base: the first record column */
    int batch;              /* rows the next batch asks for */
    int exhausted;          /* the cursor has no more rows */
} stpg_iter;

static stpg_iter *it_of(store_iter *it) { return (stpg_iter *)(void *)it; }

static uint64_t id_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_id(PQgetvalue(r, row, col));
}

static int open_snapshot(stpg_iter *it, uint64_t start, uint64_t stop, zerr *err)
{
    stpg_store *s = it->s;
    stpg_params p = {0};
    int rc = store__pg_acquire(s, STPG_OWN, store__pg_now() + s->retry_seconds, &it->c, err);
    if (!rc)
        rc = store__pg_command(s, it->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                               err);
    stpg_p_id(&p, start);
    stpg_p_id(&p, stop ? stop : UINT64_MAX);
    if (!rc)
        PQclear(store__pg_query(s, it->c, cursor_sql, &p, err));
    return rc ? rc : it->c->rc;
}

static int iter_open(store *ss, uint64_t start, uint64_t stop, int resumable, store_iter **out,
                     zerr *err)
{
    stpg_store *s = stpg_of(ss);
    *out = NULL;
    stpg_iter *it = calloc(1, sizeof *it);
    if (!it)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    it->be = &store__pg_ops;
    it->s = s;
    it->resumable = resumable;
    it->next_tid = start;
    it->stop = stop;
    it->batch = ROWS_FIRST;
    int rc;
    if (resumable) {
        /* what was committed when it was opened */
        uint64_t last = 0;
        rc = store__pg_read_last_tid(s, &last, err);
        if (!it->stop || it->stop > last)
            it->stop = last;
        it->done = !last;
    } else {
        rc = open_snapshot(it, start, stop, err);
    }
    if (rc) {
        store__pg_iter_close((store_iter *)(void *)it);
        return rc;
    }
    *out = (store_iter *)(void *)it;
    return 0;
}

int store__pg_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err)
{
    return iter_open(s, start, stop, 0, out, err);
}

int store__pg_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out,
                                  zerr *err)
{
    return iter_open(s, start, stop, 1, out, err);
}

void store__pg_iter_close(store_iter *i)
{
    stpg_iter *it = it_of(i);
    if (!it)
        return;
    PQclear(it->res);
    if (it->c) {
        if (!it->c->broken)
            store__pg_command(it->s, it->c, "ROLLBACK", NULL);
        store__pg_release(it->s, it->c);
    }
    zbuf_free(&it->meta);
    free(it);
}

/* ---- rows -------------------------------------------------------------------------- */

/* The next batch of cursor rows: 1, 0 at the end, or an error. */
static int fetch_rows(stpg_iter *it, zerr *err)
{
    if (it->res)
        it->batch = store__pg_next_batch(it->batch, it->res, ROWS_MAX);
    PQclear(it->res);
    it->res = NULL;
    it->row = it->nrows = 0;
    if (it->exhausted)
        return 0;
    char sql[64];
    int asked = it->batch;
    snprintf(sql, sizeof sql, "FETCH %d FROM zeolite_iter", asked);
    it->res = store__pg_query(it->s, it->c, sql, NULL, err);
    if (!it->res)
        return it->c->rc;
    it->nrows = PQntuples(it->res);
    it->base = 7;
    it->exhausted = it->nrows < asked;
    return it->nrows > 0;
}

/* Note the transaction of the row at hand (columns from col). */
static int take_txn(stpg_iter *it, const PGresult *r, int row, int col, zerr *err)
{
    it->tid = id_at(r, row, col);
    it->status = PQgetvalue(r, row, col + 1)[0];
    it->ulen = (size_t)PQgetlength(r, row, col + 2);
    it->dlen = (size_t)PQgetlength(r, row, col + 3);
    it->elen = (size_t)PQgetlength(r, row, col + 4);
    it->size = (uint64_t)stpg_get_i64(PQgetvalue(r, row, col + 5));
    it->nrec = (uint32_t)stpg_get_i32(PQgetvalue(r, row, col + 6));
    zbuf_reset(&it->meta);
    if (zbuf_append(&it->meta, PQgetvalue(r, row, col + 2), it->ulen) ||
        zbuf_append(&it->meta, PQgetvalue(r, row, col + 3), it->dlen) ||
        zbuf_append(&it->meta, PQgetvalue(r, row, col + 4), it->elen))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    it->in_txn = 1;
    it->listed = 0;
    it->next_idx = 0;
    it->recs_done = 0;
    it->done = it->tid == UINT64_MAX;
    it->next_tid = it->tid + 1;
    return 0;
}

static void txn_info(const stpg_iter *it, store_txn_info *info)
{
    const uint8_t *m = it->meta.data;
    *info = (store_txn_info){it->tid, it->status, {m, it->ulen}, {m + it->ulen, it->dlen},
                             {m + it->ulen + it->dlen, it->elen}, it->size};
}

static int missing(const stpg_iter *it, uint32_t idx, zerr *err)
{
    return zerr_set(err, ZE_CORRUPT, "record %u of transaction %016llx is missing", idx,
                    (unsigned long long)it->tid);
}

/* Decode the record at (row, base) into rec (data points into the result,
 * valid until the next call). */
static int take_record(stpg_iter *it, const PGresult *r, int row, int b, store_record *rec,
                       zerr *err)
{
    uint32_t idx = (uint32_t)stpg_get_i32(PQgetvalue(r, row, b));
    int kind = stpg_get_i16(PQgetvalue(r, row, b + 2));
    int flags = stpg_get_i16(PQgetvalue(r, row, b + 3));
    *rec = (store_record){.oid = id_at(r, row, b + 1), .tid = it->tid,
                          .kind = (store_rec_kind)kind, .prev_zero = !!(flags & STPG_RF_PREV_ZERO),
                          .has_blob = !!(flags & STPG_RF_BLOB)};
    if (kind == STORE_REC_BACKPTR) {
        rec->back_tid = id_at(r, row, b + 4);
        rec->back_index = (uint32_t)stpg_get_i32(PQgetvalue(r, row, b + 5));
        if (PQgetisnull(r, row, b + 7))
            return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx was never resolved",
                            (unsigned long long)rec->oid);
        if (id_at(r, row, b + 7) && (PQgetisnull(r, row, b + 8) ||
                                     stpg_get_i16(PQgetvalue(r, row, b + 8)) != STORE_REC_DATA))
            return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx to a missing record "
                            "in %016llx", (unsigned long long)rec->oid,
                            (unsigned long long)id_at(r, row, b + 7));
    }
    if (!PQgetisnull(r, row, b + 6))
        rec->data = (zslice){(const uint8_t *)PQgetvalue(r, row, b + 6),
                             (size_t)PQgetlength(r, row, b + 6)};
    (void)idx;
    return 0;
}

/* ---- the snapshot iterator ------------------------------------------------------------ */

/* Past the rows of the current transaction. */
static int skip_txn(stpg_iter *it, zerr *err)
{
    for (;;) {
        for (; it->row < it->nrows; it->row++)
            if (id_at(it->res, it->row, 0) != it->tid)
                return 0;
        int rc = fetch_rows(it, err);
        if (rc <= 0)
            return rc;
    }
}

static int snap_next_txn(stpg_iter *it, zerr *err)
{
    int rc = 0;
    if (it->in_txn && (rc = skip_txn(it, err)))
        return rc;
    if (it->row >= it->nrows && (rc = fetch_rows(it, err)) <= 0)
        return rc;
    if ((rc = take_txn(it, it->res, it->row, 0, err)))
        return rc;
    it->recs_done = PQgetisnull(it->res, it->row, it->base);
    if (it->recs_done)
        it->row++;
    return 1;
}

/* A transaction not packed lists every record it wrote. */
static int check_gap(stpg_iter *it, uint32_t idx, int at_end, zerr *err)
{
    if (it->status == 'p')
        return 0;
    if (at_end ? it->listed != it->nrec : idx != it->listed)
        return missing(it, it->listed, err);
    return 0;
}

static int snap_next_record(stpg_iter *it, store_record *rec, zerr *err)
{
    if (it->recs_done)
        return 0;
    if (it->row >= it->nrows) {
        int rc = fetch_rows(it, err);
        if (rc < 0)
            return rc;
    }
    if (it->row >= it->nrows || id_at(it->res, it->row, 0) != it->tid) {
        it->recs_done = 1;
        return check_gap(it, 0, 1, err);
    }
    uint32_t idx = (uint32_t)stpg_get_i32(PQgetvalue(it->res, it->row, it->base));
    int rc = check_gap(it, idx, 0, err);
    if (!rc)
        rc = take_record(it, it->res, it->row, it->base, rec, err);
    if (rc)
        return rc;
    it->row++;
    it->listed++;
    return 1;
}

/* ---- the resumable iterator ---------------------------------------------------------- */

static int res_next_txn(stpg_iter *it, zerr *err)
{
    stpg_params p = {0};
    PGresult *r;
    stpg_p_id(&p, it->next_tid);
    stpg_p_id(&p, it->stop);
    int rc = store__pg_fetch(it->s, Q_TXN_NEXT, &p, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) == 1)
        rc = take_txn(it, r, 0, 0, err) ? -1 : 1;
    PQclear(r);
    if (rc < 0)
        return err ? err->code : ZE_NOMEM;
    PQclear(it->res);
    it->res = NULL;
    it->row = it->nrows = 0;
    return rc;
}

/* A gap found between calls is a pack's doing when the transaction is now
 * packed or gone (a pack may run between the calls of a resumable
 * iterator); anything else is damage. */
static int gap_by_pack(stpg_iter *it)
{
    stpg_params p = {0};
    PGresult *r;
    stpg_p_id(&p, it->tid);
    if (store__pg_fetch(it->s, Q_TXN_GET, &p, &r, NULL))
        return 0;
    int packed = PQntuples(r) == 0 || PQgetvalue(r, 0, 1)[0] == 'p';
    PQclear(r);
    if (packed)
        it->status = 'p';
    return packed;
}

static int res_next_record(stpg_iter *it, store_record *rec, zerr *err)
{
    if (it->recs_done)
        return 0;
    if (it->row >= it->nrows) {
        stpg_params p = {0};
        stpg_p_id(&p, it->tid);
        stpg_p_i32(&p, (int32_t)it->next_idx);
        if (it->res)
            it->batch = store__pg_next_batch(it->batch, it->res, ROWS_MAX);
        stpg_p_i32(&p, it->batch);
        PQclear(it->res);
        it->res = NULL;
        int rc = store__pg_fetch(it->s, Q_TXN_RECORDS, &p, &it->res, err);
        if (rc)
            return rc;
        it->row = 0;
        it->nrows = PQntuples(it->res);
        it->base = 0;
    }
    int at_end = it->row >= it->nrows;
    uint32_t idx = at_end ? 0 : (uint32_t)stpg_get_i32(PQgetvalue(it->res, it->row, 0));
    int rc = check_gap(it, idx, at_end, err);
    if (rc && gap_by_pack(it))
        rc = 0;
    if (rc || at_end) {
        it->recs_done = 1;
        return rc;
    }
    if ((rc = take_record(it, it->res, it->row, 0, rec, err)))
        return rc;
    it->row++;
    it->listed++;
    it->next_idx = idx + 1;
    return 1;
}

/* ---- the calls ---------------------------------------------------------------------------- */

int store__pg_iter_next_txn(store_iter *i, store_txn_info *info, zerr *err)
{
    stpg_iter *it = it_of(i);
    if (it->done)
        return 0;
    int rc = it->resumable ? res_next_txn(it, err) : snap_next_txn(it, err);
    if (rc <= 0) {
        it->done = 1;
        it->in_txn = 0;
        return rc;
    }
    txn_info(it, info);
    return 1;
}

int store__pg_iter_next_record(store_iter *i, store_record *rec, zerr *err)
{
    stpg_iter *it = it_of(i);
    if (!it->in_txn)
        return 0;
    return it->resumable ? res_next_record(it, rec, err) : snap_next_record(it, rec, err);
}
