/* pg_read.c: readers and the reads on PostgreSQL.
 *
 * A reader is a tid bound, not a database snapshot: records are only ever
 * added (pack aside), and tids commit in increasing order under the COMMIT
 * lock, so "every record with tid <= last_tid" is exactly what the database
 * held when last_tid was read. A reader therefore holds no connection and no
 * transaction; each read takes a connection of the read pool for one
 * statement (one round trip), and callbacks run after it is given back. */
#include "store/pg.h"

#include <stdlib.h>
#include <string.h>

static stpg_reader *rd(store_reader *r) { return stpg_rd(r); }

int store__pg_reader_new(store *ss, store_reader **out, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    *out = NULL;
    stpg_reader *r = calloc(1, sizeof *r);
    if (!r)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    r->be = &store__pg_ops;
    r->s = s;
    int rc = store__pg_reader_refresh((store_reader *)(void *)r, err);
    if (rc) {
        free(r);
        return rc;
    }
    *out = (store_reader *)(void *)r;
    return 0;
}

void store__pg_reader_free(store_reader *rr)
{
    stpg_reader *r = rd(rr);
    if (!r)
        return;
    oidmap_free(&r->seen);
    free(r);
}

int store__pg_reader_refresh(store_reader *rr, zerr *err)
{
    stpg_reader *r = rd(rr);
    if (atomic_load(&r->s->feed)) {
        /* the sequence of commits the caller was told of (store.h) */
        r->last_tid = store__pg_last_tid((store *)(void *)r->s);
        return 0;
    }
    uint64_t tid;
    int rc = store__pg_read_last_tid(r->s, &tid, err);
    if (rc)
        return rc;
    r->last_tid = tid;
    store__pg_note_tid(r->s, tid);
    return 0;
}

uint64_t store__pg_reader_last_tid(store_reader *r) { return rd(r)->last_tid; }

/* ---- record rows ---------------------------------------------------------------- */

static int not_found(zerr *err, uint64_t oid, const char *why)
{
    return zerr_set(err, ZE_NOTFOUND, "oid %016llx %s", (unsigned long long)oid, why);
}

static int no_rev(zerr *err, uint64_t oid, uint64_t before)
{
    return zerr_set(err, ZE_NOREV, "oid %016llx has no revision before %016llx",
                    (unsigned long long)oid, (unsigned long long)before);
}

static uint64_t id_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_id(PQgetvalue(r, row, col));
}

static int i16_at(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : stpg_get_i16(PQgetvalue(r, row, col));
}

/* The pickle of a record row: kind at col, flags at col + 1, its resolved
 * data at col + 2, data_tid at col + 3 and the target's kind at col + 4 (the
 * statements' common layout). ZE_NOTFOUND for a deletion. */
static int row_data(const PGresult *r, int col, uint64_t oid, zbuf *data, zerr *err)
{
    int kind = i16_at(r, 0, col);
    if (kind == STORE_REC_DELETE)
        return not_found(err, oid, "is deleted");
    if (kind == STORE_REC_BACKPTR) {
        if (PQgetisnull(r, 0, col + 3))
            return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx was never resolved",
                            (unsigned long long)oid);
        if (!id_at(r, 0, col + 3))
            return not_found(err, oid, "is deleted");
        if (i16_at(r, 0, col + 4) != STORE_REC_DATA)
            return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx to a missing record "
                            "in %016llx", (unsigned long long)oid,
                            (unsigned long long)id_at(r, 0, col + 3));
    } else if (kind != STORE_REC_DATA || PQgetisnull(r, 0, col + 2)) {
        return zerr_set(err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    }
    const char *p = PQgetvalue(r, 0, col + 2);
    size_t len = (size_t)PQgetlength(r, 0, col + 2);
    if (data && zbuf_set(data, p, len))
        return zerr_set(err, ZE_NOMEM, "out of memory for %zu bytes", len);
    return 0;
}

int store__pg_load_before(store_reader *rr, uint64_t oid, uint64_t before, zbuf *data,
                          uint64_t *start, uint64_t *end, zerr *err)
{
    stpg_reader *r = rd(rr);
    stpg_params p = {0};
    PGresult *res;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, before);
    stpg_p_id(&p, r->last_tid);
    int rc = store__pg_fetch(r->s, Q_LOAD_BEFORE, &p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1)
        rc = zerr_set(err, ZE_CORRUPT, "load_before: %d rows", PQntuples(res));
    else if (PQgetisnull(res, 0, 0))
        rc = PQgetisnull(res, 0, 6) ? not_found(err, oid, "does not exist")
                                    : no_rev(err, oid, before);
    else if (i16_at(res, 0, 1) & STPG_RF_HIDDEN)
        rc = no_rev(err, oid, before);   /* every hidden record is older than the rest */
    else
        rc = row_data(res, 0, oid, data, err);
    if (!rc) {
        if (start)
            *start = id_at(res, 0, 5);
        if (end)
            *end = id_at(res, 0, 6);
    }
    PQclear(res);
    return rc;
}

int store__pg_load_serial(store_reader *rr, uint64_t oid, uint64_t serial, zbuf *data,
                          zerr *err)
{
    stpg_reader *r = rd(rr);
    stpg_params p = {0};
    PGresult *res;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, serial);
    stpg_p_id(&p, r->last_tid);
    int rc = store__pg_fetch(r->s, Q_LOAD_SERIAL, &p, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || (i16_at(res, 0, 1) & STPG_RF_HIDDEN))
        rc = zerr_set(err, ZE_NOTFOUND, "oid %016llx has no revision %016llx",
                      (unsigned long long)oid, (unsigned long long)serial);
    else
        rc = row_data(res, 0, oid, data, err);
    PQclear(res);
    return rc;
}

int store__pg_current_tid(store_reader *rr, uint64_t oid, uint64_t *tid, zerr *err)
{
    stpg_reader *r = rd(rr);
    stpg_params p = {0};
    PGresult *res;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, r->last_tid);
    int rc = store__pg_fetch(r->s, Q_CURRENT, &p, &res, err);
    if (rc)
        return rc;
    int kind = PQntuples(res) == 1 ? i16_at(res, 0, 1) : 0;
    if (!kind)
        rc = not_found(err, oid, "does not exist");
    else if (kind == STORE_REC_DELETE || (kind == STORE_REC_BACKPTR && !id_at(res, 0, 2)))
        rc = not_found(err, oid, "is deleted");
    else
        *tid = id_at(res, 0, 0);
    PQclear(res);
    return rc;
}

/* ---- history and the undo log ------------------------------------------------------ */

static zslice bytes_at(const PGresult *r, int row, int col)
{
    return (zslice){(const uint8_t *)PQgetvalue(r, row, col),
                    (size_t)PQgetlength(r, row, col)};
}

int store__pg_history(store_reader *rr, uint64_t oid, int size, store_txn_cb cb, void *ud,
                      zerr *err)
{
    stpg_reader *r = rd(rr);
    stpg_params p = {0};
    PGresult *res;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, r->last_tid);
    stpg_p_i32(&p, size < 1 ? 1 : size);
    int rc = store__pg_fetch(r->s, Q_HISTORY, &p, &res, err);
    if (rc)
        return rc;
    int n = PQntuples(res);
    if (!n)
        rc = not_found(err, oid, "does not exist");
    for (int i = 0; i < n && !rc; i++) {
        if (i16_at(res, i, 2) & STPG_RF_HIDDEN)
            break;
        if (PQgetisnull(res, i, 4)) {
            rc = zerr_set(err, ZE_CORRUPT, "transaction %016llx is missing",
                          (unsigned long long)id_at(res, i, 0));
            break;
        }
        store_txn_info info = {
            .tid = id_at(res, i, 0), .status = PQgetvalue(res, i, 4)[0],
            .user = bytes_at(res, i, 5), .description = bytes_at(res, i, 6),
            .extension = bytes_at(res, i, 7),
            .size = i16_at(res, i, 1) == STORE_REC_DATA && !PQgetisnull(res, i, 3)
                        ? (uint64_t)stpg_get_i32(PQgetvalue(res, i, 3)) : 0,
        };
        rc = cb(&info, ud);
    }
    PQclear(res);
    return rc;
}

#define UNDO_FIRST 64       /* transactions the first batch brings */
#define UNDO_MAX 4096

static store_txn_info txn_row(const PGresult *res, int i)
{
    return (store_txn_info){
        .tid = id_at(res, i, 0), .status = PQgetvalue(res, i, 1)[0],
        .user = bytes_at(res, i, 2), .description = bytes_at(res, i, 3),
        .extension = bytes_at(res, i, 4), .size = (uint64_t)stpg_get_i64(PQgetvalue(res, i, 5)),
    };
}

int store__pg_undo_log(store_reader *rr, int first, int last, store_txn_cb filter,
                       void *filter_ud, store_txn_cb cb, void *ud, zerr *err)
{
    stpg_reader *r = rd(rr);
    if (last < 0)
        last = first - last;
    uint64_t bound = r->last_tid;
    int listed = 0, rc = 0, more = r->last_tid != 0, rows = UNDO_FIRST;
    /* Newest first, a batch at a time; each batch's callbacks run once the
     * connection is back in the pool (a retried batch is never listed twice). */
    while (more && listed < last && !rc) {
        stpg_params p = {0};
        PGresult *res;
        stpg_p_id(&p, bound);
        stpg_p_i32(&p, rows);
        if ((rc = store__pg_fetch(r->s, Q_UNDO_LOG, &p, &res, err)))
            return rc;
        int n = PQntuples(res);
        more = n == rows;
        rows = store__pg_next_batch(rows, res, UNDO_MAX);
        for (int i = 0; i < n && listed < last && !rc; i++) {
            store_txn_info info = txn_row(res, i);
            if (info.status == 'p') {
                more = 0;
                break;
            }
            bound = info.tid - 1;
            more &= info.tid != 0;
            if (filter && !filter(&info, filter_ud))
                continue;
            if (listed++ >= first)
                rc = cb(&info, ud);
        }
        PQclear(res);
    }
    return rc;
}

/* ---- record_iternext and changes_since ------------------------------------------------ */

int store__pg_record_iternext(store_reader *rr, uint64_t from, uint64_t *oid, uint64_t *tid,
                              zbuf *data, uint64_t *next, int *has_next, zerr *err)
{
    stpg_reader *r = rd(rr);
    for (;;) {
        stpg_params p = {0};
        PGresult *res;
        stpg_p_id(&p, from);
        stpg_p_id(&p, r->last_tid);
        int rc = store__pg_fetch(r->s, Q_NEXT_OID, &p, &res, err);
        if (rc)
            return rc;
        if (PQntuples(res) != 1) {
            PQclear(res);
            return 0;
        }
        *oid = id_at(res, 0, 0);
        rc = row_data(res, 2, *oid, data, err);
        if (rc == ZE_NOTFOUND) {   /* deleted: the next oid */
            PQclear(res);
            if (*oid == UINT64_MAX)
                return 0;
            from = *oid + 1;
            continue;
        }
        if (!rc) {
            *tid = id_at(res, 0, 1);
            *has_next = !PQgetisnull(res, 0, 7);
            *next = *has_next ? id_at(res, 0, 7) : 0;
        }
        PQclear(res);
        return rc ? rc : 1;
    }
}

#define CHANGES_BATCH 1000   /* transactions a statement brings */

/* One batch of transactions after *after: their oids to cb, unique within
 * each; *after and *latest move to the last one, *more when a batch may
 * follow. */
static int changes_batch(stpg_reader *r, uint64_t *after, uint64_t *latest, int *more,
                         store_oid_cb cb, void *ud, zerr *err)
{
    stpg_params p = {0};
    PGresult *res;
    uint64_t one;
    stpg_p_id(&p, *after);
    stpg_p_id(&p, r->last_tid);
    stpg_p_i32(&p, CHANGES_BATCH);
    int rc = store__pg_fetch(r->s, Q_CHANGES, &p, &res, err);
    if (rc)
        return rc;
    int n = PQntuples(res), txns = 0;
    for (int i = 0; i < n && !rc; i++) {
        uint64_t tid = id_at(res, i, 0);
        if (!txns || tid != *latest) {
            oidmap_clear(&r->seen);
            txns++;
        }
        *latest = tid;
        if (PQgetisnull(res, i, 1))
            continue;
        uint64_t oid = id_at(res, i, 1);
        if (oidmap_get(&r->seen, oid, &one))
            continue;
        if (oidmap_put(&r->seen, oid, 1))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
        else
            rc = cb(oid, ud);
    }
    PQclear(res);
    *after = *latest;
    *more = txns == CHANGES_BATCH;
    return rc;
}

int store__pg_changes_since(store_reader *rr, uint64_t after, uint64_t *latest,
                            store_oid_cb cb, void *ud, zerr *err)
{
    stpg_reader *r = rd(rr);
    uint64_t l;
    if (!latest)
        latest = &l;
    *latest = after;
    int more = after != UINT64_MAX && after < r->last_tid, rc = 0;
    while (more && !rc)
        rc = changes_batch(r, &after, latest, &more, cb, ud, err);
    return rc;
}

/* ---- one record by its place (vote, undo, pack) ------------------------------------------ */

int store__pg_rec_decode(const PGresult *res, int row, stpg_rec *out)
{
    /* STPG_REC_COLS: tid, idx, kind, flags, back_tid, back_idx, data_tid,
     * data_idx, blob_id, data */
    memset(out, 0, sizeof *out);
    out->tid = id_at(res, row, 0);
    out->idx = (uint32_t)stpg_get_i32(PQgetvalue(res, row, 1));
    out->kind = (uint8_t)i16_at(res, row, 2);
    out->flags = (uint8_t)i16_at(res, row, 3);
    if (!PQgetisnull(res, row, 4)) {
        out->back_tid = id_at(res, row, 4);
        out->back_idx = (uint32_t)stpg_get_i32(PQgetvalue(res, row, 5));
    }
    if (!PQgetisnull(res, row, 6)) {
        out->data_tid = id_at(res, row, 6);
        out->data_idx = (uint32_t)stpg_get_i32(PQgetvalue(res, row, 7));
    } else if (out->kind == STORE_REC_BACKPTR) {
        return ZE_CORRUPT;
    }
    if (!PQgetisnull(res, row, 8))
        out->blob_id = stpg_get_i64(PQgetvalue(res, row, 8));
    if (!PQgetisnull(res, row, 9)) {
        out->data = (const uint8_t *)PQgetvalue(res, row, 9);
        out->len = (size_t)PQgetlength(res, row, 9);
    }
    return out->kind >= STORE_REC_DATA && out->kind <= STORE_REC_DELETE ? 0 : ZE_CORRUPT;
}

int store__pg_rec_get(stpg_store *s, stpg_conn *c, uint64_t oid, uint64_t tid, uint32_t idx,
                      stpg_rec *out, PGresult **res, zerr *err)
{
    stpg_params p = {0};
    stpg_p_id(&p, oid);
    stpg_p_id(&p, tid);
    stpg_p_i32(&p, idx == STPG_INDEX_LAST ? -1 : (int32_t)idx);
    *res = store__pg_exec(s, c, Q_REC_GET, &p, err);
    if (!*res)
        return c->rc;
    if (PQntuples(*res) != 1)
        return ZE_NOTFOUND;
    if (store__pg_rec_decode(*res, 0, out))
        return zerr_set(err, ZE_CORRUPT, "damaged record %016llx@%016llx",
                        (unsigned long long)oid, (unsigned long long)tid);
    return 0;
}
