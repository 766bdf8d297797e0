/* pg_undo.c: transactional undo on PostgreSQL: what txnq_undo.c decides
 * (FileStorage's rules; it says which, and why), read with SQL.
 *
 * It runs inside the vote's database transaction, which holds the locks of
 * every oid T wrote: nothing it reads can change until the commit. */
#include "store/pg.h"

typedef struct pg_undo {
    stpg_txn *t;
    stpg_store *s;
    stpg_conn *c;
    PGresult *recs;        /* the records of the transaction undone */
} pg_undo;

static void rec_of(const stpg_rec *r, PGresult *res, txnq_rec *out)
{
    *out = (txnq_rec){.tid = r->tid, .index = r->idx, .kind = r->kind, .flags = r->flags,
                      .back_tid = r->back_tid, .back_index = r->back_idx,
                      .data_tid = r->data_tid, .data_index = r->data_idx,
                      .blob_id = r->blob_id, .data = r->data, .len = r->len, .hold = res};
}

/* Run a record statement (Q_REC_PREV / Q_REC_CURRENT); 0, ZE_NOTFOUND, <0.
 * out holds the result either way. */
static int rec_by(pg_undo *u, stpg_stmt q, uint64_t oid, uint64_t tid, txnq_rec *out,
                  zerr *err)
{
    stpg_params p = {0};
    stpg_rec r;
    stpg_p_id(&p, oid);
    if (q == Q_REC_PREV)
        stpg_p_id(&p, tid);
    PGresult *res = store__pg_exec(u->s, u->c, q, &p, err);
    out->hold = res;
    if (!res)
        return u->c->rc;
    if (PQntuples(res) != 1)
        return ZE_NOTFOUND;
    if (store__pg_rec_decode(res, 0, &r))
        return zerr_set(err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    rec_of(&r, res, out);
    return 0;
}

static int undone(void *ud, uint64_t T, char *status, zerr *err)
{
    pg_undo *u = ud;
    stpg_params p = {0};
    stpg_p_id(&p, T);
    PGresult *r = store__pg_exec(u->s, u->c, Q_TXN_GET, &p, err);
    if (!r)
        return u->c->rc;
    int n = PQntuples(r);
    if (n)
        *status = PQgetvalue(r, 0, 1)[0];
    PQclear(r);
    return n ? 0 : ZE_NOTFOUND;
}

static int records(void *ud, uint64_t T, uint32_t *n, zerr *err)
{
    pg_undo *u = ud;
    stpg_params p = {0};
    stpg_p_id(&p, T);
    u->recs = store__pg_query(u->s, u->c, "SELECT tid, idx, kind, flags, back_tid, back_idx, "
                              "data_tid, data_idx, blob_id, NULL::bytea, oid FROM "
                              "zeolite.records WHERE tid = $1::bigint ORDER BY idx", &p, err);
    if (!u->recs)
        return u->c->rc;
    *n = (uint32_t)PQntuples(u->recs);
    return 0;
}

static int record(void *ud, uint64_t T, uint32_t i, uint64_t *oid, txnq_rec *out, zerr *err)
{
    pg_undo *u = ud;
    stpg_rec r;
    if (store__pg_rec_decode(u->recs, (int)i, &r))
        return zerr_set(err, ZE_CORRUPT, "damaged record %d of %016llx", (int)i,
                        (unsigned long long)T);
    *oid = stpg_get_id(PQgetvalue(u->recs, (int)i, 10));
    rec_of(&r, NULL, out);
    return 0;
}

static void records_end(void *ud)
{
    pg_undo *u = ud;
    PQclear(u->recs);
    u->recs = NULL;
}

static int current(void *ud, uint64_t oid, txnq_rec *out, zerr *err)
{
    return rec_by(ud, Q_REC_CURRENT, oid, 0, out, err);
}

/* Hidden records are not reachable through prev (a record imported with
 * prev 0 came after them). */
static int prev(void *ud, uint64_t oid, uint64_t T, txnq_rec *out, zerr *err)
{
    int rc = rec_by(ud, Q_REC_PREV, oid, T, out, err);
    return !rc && (out->flags & STPG_RF_HIDDEN) ? ZE_NOTFOUND : rc;
}

/* The DATA record a record stands for: one lookup more for a back-pointer
 * (its chain's end is stored with it). */
static int data(void *ud, uint64_t oid, uint64_t tid, uint32_t index, txnq_rec *out, zerr *err)
{
    pg_undo *u = ud;
    stpg_rec r;
    PGresult *res = NULL;
    int rc = store__pg_rec_get(u->s, u->c, oid, tid, index, &r, &res, err);
    out->hold = res;
    if (rc || r.kind != STORE_REC_BACKPTR) {
        if (!rc)
            rec_of(&r, res, out);
        return rc;
    }
    uint64_t dt = r.data_tid;
    uint32_t di = r.data_idx;
    PQclear(res);
    out->hold = NULL;
    if (!dt)
        return 0;   /* the chain ends in a deletion: kind stays 0 */
    res = NULL;
    rc = store__pg_rec_get(u->s, u->c, oid, dt, di, &r, &res, err);
    out->hold = res;
    if (rc == ZE_NOTFOUND || (!rc && r.kind != STORE_REC_DATA))
        return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx to a missing "
                        "record in %016llx", (unsigned long long)oid, (unsigned long long)dt);
    if (!rc)
        rec_of(&r, res, out);
    return rc;
}

static void done(void *ud, txnq_rec *r)
{
    PQclear(r->hold);
    r->hold = NULL;
}

/* The revert shares the chunks of the DATA record at the end of its chain
 * (the LMDB store copies the file). */
static void revert_blob(void *ud, txn_op *op, const txnq_rec *d)
{
    if (!d->blob_id)
        return;
    op->rflags |= STPG_RF_BLOB;
    op->blob_id = d->blob_id;
}

static const txnq_undo_hooks hooks = {undone, records, record, records_end, current, prev,
                                      data, done, revert_blob};

int store__pg_undo_expand(stpg_txn *t, zerr *err)
{
    pg_undo u = {.t = t, .s = t->s, .c = t->conn};
    return store__txnq_undo_expand(&t->q, &hooks, &u, err);
}
