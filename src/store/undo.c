/* undo.c: transactional undo on LMDB: what txnq_undo.c decides (FileStorage's
 * rules; it says which, and why), read from the vote's snapshot (st_view),
 * which nothing moves meanwhile. */
#include "store/index.h"
#include "store/txn.h"

typedef struct lmdb_undo {
    store_txn *t;
    st_view *v;
    st_txnval tv;          /* the transaction undone (records), in the map */
} lmdb_undo;

/* The view of a record as the undo reads it; tid is the caller's. */
static void rec_of(const st_rec *r, uint64_t tid, txnq_rec *out)
{
    *out = (txnq_rec){.tid = tid, .index = r->index, .kind = r->kind, .flags = r->flags,
                      .back_tid = r->back_tid, .back_index = r->back_index,
                      .data_tid = r->data_tid, .data_index = r->data_index,
                      .data = r->data, .len = r->len};
}

static int undone(void *ud, uint64_t T, char *status, zerr *err)
{
    lmdb_undo *u = ud;
    uint8_t key[8];
    zbe64_put(key, T);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(u->v->txn, u->t->s->dbi_txns, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ZE_NOTFOUND;
    if (rc)
        return store__mdb_err(err, rc, "read transaction");
    if (store__txnval_decode(v.mv_data, v.mv_size, &u->tv))
        return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx", (unsigned long long)T);
    *status = u->tv.status;
    return 0;
}

/* tv points into the map: nothing writes in this read txn, so it stays
 * valid while the records are read. */
static int records(void *ud, uint64_t T, uint32_t *n, zerr *err)
{
    *n = ((lmdb_undo *)ud)->tv.nrec;
    return 0;
}

static int record(void *ud, uint64_t T, uint32_t i, uint64_t *oid, txnq_rec *out, zerr *err)
{
    lmdb_undo *u = ud;
    st_rec r;
    *oid = st_txn_oid(&u->tv, i);
    int rc = store__rec_get(u->v, *oid, T, i, &r, err);
    if (rc)
        return rc == ZE_NOTFOUND ? zerr_set(err, ZE_CORRUPT, "record %u of %016llx missing", i,
                                            (unsigned long long)T) : rc;
    rec_of(&r, T, out);
    return 0;
}

static void records_end(void *ud)
{
}

static int current(void *ud, uint64_t oid, txnq_rec *out, zerr *err)
{
    lmdb_undo *u = ud;
    uint64_t next;
    st_ent e;
    st_rec cur;
    int rc = store__view_find(u->v, oid, UINT64_MAX, &e, &next, err);
    if (!rc)
        rc = store__rec_get(u->v, oid, e.tid, e.index, &cur, err);
    if (rc == ZE_NOREV)
        rc = ZE_NOTFOUND;
    if (!rc)
        rec_of(&cur, e.tid, out);
    return rc;
}

static int prev(void *ud, uint64_t oid, uint64_t T, txnq_rec *out, zerr *err)
{
    lmdb_undo *u = ud;
    st_ent e;
    st_rec pre;
    uint64_t next;
    int rc = store__view_find(u->v, oid, T, &e, &next, err);
    if (rc == ZE_NOTFOUND || rc == ZE_NOREV || (!rc && (e.flags & ST_RF_HIDDEN)))
        return ZE_NOTFOUND;
    if (!rc)
        rc = store__rec_get(u->v, oid, e.tid, e.index, &pre, err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    if (!rc)
        rec_of(&pre, e.tid, out);
    return rc;
}

static int data(void *ud, uint64_t oid, uint64_t tid, uint32_t index, txnq_rec *out, zerr *err)
{
    lmdb_undo *u = ud;
    st_rec r, d;
    int rc = store__rec_get(u->v, oid, tid, index, &r, err);
    if (!rc)
        rc = store__rec_resolve(u->v, oid, &r, &d, err);
    if (!rc)
        rec_of(&d, 0, out);
    return rc;
}

static void done(void *ud, txnq_rec *r)
{
}

/* ZODB gives the undo record its own copy of the blob file, named for the
 * undo's tid: the file of the DATA record at the end of the chain. */
static void revert_blob(void *ud, txn_op *op, const txnq_rec *d)
{
    op->rflags |= ST_RF_BLOB;
    op->blob_src = op->data_tid;
}

static const txnq_undo_hooks hooks = {undone, records, record, records_end, current, prev,
                                      data, done, revert_blob};

int store__undo_expand(store_txn *t, st_view *v, zerr *err)
{
    lmdb_undo u = {.t = t, .v = v};
    return store__txnq_undo_expand(&t->q, &hooks, &u, err);
}
