/* undo.c: transactional undo (spec filestorage-format.md section 6).
 *
 * Each record R of the undone transaction T becomes a record of the undoing
 * transaction: a back-pointer to the oid's record before T, or a deletion
 * when T created the object. This is only a plain revert when the oid's
 * current data is still R's data (same DATA record at the end of both
 * back-pointer chains); anything else would need Python conflict resolution,
 * which a C server cannot run, so it is refused with ZE_UNDO. */
#include "store/txn.h"

#include <stdlib.h>

/* Where a record's data lives: the DATA record at the end of its chain. */
typedef struct data_pos {
    int absent;
    uint64_t tid;
    uint32_t index;
} data_pos;

typedef struct undo_ctx {
    store_txn *t;
    MDB_txn *txn;
    MDB_cursor *cur;
    oidmap last_gen;       /* oid -> 1 + index in t->gen of its newest undo record */
    zerr *err;
} undo_ctx;

static data_pos pos_of(uint64_t tid, const st_rec *r)
{
    if (r->kind == STORE_REC_DATA)
        return (data_pos){0, tid, r->index};
    if (r->kind == STORE_REC_BACKPTR && r->data_tid)
        return (data_pos){0, r->data_tid, r->data_index};
    return (data_pos){1, 0, 0};
}

/* The oid's current data, counting records this undo already produced.
 * *is_r: the current record is R itself (T's record number index). */
static int current_pos(undo_ctx *c, uint64_t oid, uint64_t T, uint32_t index,
                       data_pos *out, int *is_r)
{
    store *s = c->t->s;
    uint64_t g;
    st_rec rec;
    *is_r = 0;
    if (oidmap_get(&c->last_gen, oid, &g)) {
        const txn_op *op = &c->t->gen[g - 1];
        if (op->kind == STORE_REC_DELETE) {
            *out = (data_pos){1, 0, 0};
            return 0;
        }
        int rc = store__rec_get(c->txn, s, oid, op->back_tid, op->back_index, &rec, c->err);
        if (!rc)
            *out = pos_of(op->back_tid, &rec);
        return rc;
    }
    uint64_t tid;
    MDB_val v;
    if (store__current(c->cur, oid, &tid, &v) || st_rec_decode(v.mv_data, v.mv_size, &rec))
        return zerr_set(c->err, ZE_CORRUPT, "no current record for oid %016llx",
                        (unsigned long long)oid);
    *is_r = tid == T && rec.index == index;
    *out = pos_of(tid, &rec);
    return 0;
}

/* The oid's record before T (FileStorage's prev); 0 when R had prev = 0 or
 * T created the object. */
static int prev_record(undo_ctx *c, uint64_t oid, uint64_t T, const st_rec *r,
                       uint64_t *pre_tid, st_rec *pre)
{
    *pre_tid = 0;
    if (r->flags & ST_RF_PREV_ZERO)
        return 0;
    uint8_t key[ST_KEY_LEN];
    st_key(key, oid, T);
    MDB_val k = {ST_KEY_LEN, key}, v;
    int rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_RANGE);
    rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c->cur, &k, &v, MDB_LAST)
                            : rc ? rc : mdb_cursor_get(c->cur, &k, &v, MDB_PREV);
    if (rc || zbe64(k.mv_data) != oid)
        return 0;
    if (st_rec_decode(v.mv_data, v.mv_size, pre))
        return zerr_set(c->err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    if (!(pre->flags & ST_RF_HIDDEN))
        *pre_tid = zbe64((uint8_t *)k.mv_data + 8);
    return 0;
}

static txn_op *push_gen(undo_ctx *c)
{
    store_txn *t = c->t;
    if (t->n_gen == t->cap_gen) {
        size_t cap = t->cap_gen ? t->cap_gen * 2 : 16;
        txn_op *gen = realloc(t->gen, cap * sizeof *gen);
        if (!gen)
            return NULL;
        t->gen = gen;
        t->cap_gen = cap;
    }
    txn_op *op = &t->gen[t->n_gen];
    memset(op, 0, sizeof *op);
    op->type = OP_RECORD;
    return op;
}

static int add_changed(store_txn *t, uint64_t oid)
{
    uint64_t *ch = realloc(t->changed, (t->n_changed + 1) * sizeof *ch);
    if (!ch)
        return ZE_NOMEM;
    t->changed = ch;
    t->changed[t->n_changed++] = oid;
    return 0;
}

/* The revert record for R (record number index of T, for oid). */
static int undo_record(undo_ctx *c, uint64_t T, uint32_t index, uint64_t oid)
{
    store *s = c->t->s;
    st_rec r, pre;
    int rc = store__rec_get(c->txn, s, oid, T, index, &r, c->err);
    if (rc)
        return rc == ZE_NOTFOUND ? zerr_set(c->err, ZE_CORRUPT, "record %u of %016llx missing",
                                            index, (unsigned long long)T) : rc;
    data_pos rpos = pos_of(T, &r), cpos = {1, 0, 0};
    int is_r;
    if ((rc = current_pos(c, oid, T, index, &cpos, &is_r)))
        return rc;
    if (!is_r && (rpos.absent || cpos.absent || rpos.tid != cpos.tid || rpos.index != cpos.index))
        return zerr_set(c->err, ZE_UNDO, "cannot undo %016llx: oid %016llx was changed by a "
                        "later transaction", (unsigned long long)T, (unsigned long long)oid);
    uint64_t pre_tid;
    if ((rc = prev_record(c, oid, T, &r, &pre_tid, &pre)))
        return rc;
    txn_op *op = push_gen(c);
    if (!op)
        return zerr_set(c->err, ZE_NOMEM, "out of memory");
    op->oid = oid;
    op->kind = pre_tid ? STORE_REC_BACKPTR : STORE_REC_DELETE;
    if (pre_tid) {
        op->back_tid = pre_tid;
        op->back_index = pre.index;
        data_pos ppos = pos_of(pre_tid, &pre);
        st_rec data;
        /* ZODB gives the undo record its own copy of the blob file. */
        if (!ppos.absent && !store__rec_get(c->txn, s, oid, ppos.tid, ppos.index, &data, NULL) &&
            (data.flags & ST_RF_BLOB)) {
            op->rflags |= ST_RF_BLOB;
            op->blob_src = ppos.tid;
        }
    }
    uint64_t seen;
    int is_new = !oidmap_get(&c->last_gen, oid, &seen);
    if (oidmap_put(&c->last_gen, oid, c->t->n_gen + 1) || (is_new && add_changed(c->t, oid)))
        return zerr_set(c->err, ZE_NOMEM, "out of memory");
    c->t->n_gen++;
    return 0;
}

static int undo_txn(undo_ctx *c, txn_op *uop)
{
    store *s = c->t->s;
    uint64_t T = uop->serial;
    uint8_t key[8];
    zbe64_put(key, T);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(c->txn, s->dbi_txns, &k, &v);
    if (rc == MDB_NOTFOUND)
        return zerr_set(c->err, ZE_UNDO, "no transaction %016llx to undo", (unsigned long long)T);
    if (rc)
        return store__mdb_err(c->err, rc, "read transaction");
    st_txnval tv;
    if (store__txnval_decode(v.mv_data, v.mv_size, &tv))
        return zerr_set(c->err, ZE_CORRUPT, "damaged transaction %016llx", (unsigned long long)T);
    if (tv.status != ' ')
        return zerr_set(c->err, ZE_UNDO, "transaction %016llx is not undoable (status '%c')",
                        (unsigned long long)T, tv.status);
    uop->gen_start = (uint32_t)c->t->n_gen;
    /* tv points into the map: read every oid before anything can move it
     * (nothing writes here, so it stays valid for this read txn). */
    for (uint32_t i = 0; i < tv.nrec; i++)
        if ((rc = undo_record(c, T, i, st_txn_oid(&tv, i))))
            return rc;
    uop->gen_count = (uint32_t)(c->t->n_gen - uop->gen_start);
    return 0;
}

int store__undo_expand(store_txn *t, MDB_txn *txn, zerr *err)
{
    undo_ctx c = {.t = t, .txn = txn, .last_gen = OIDMAP_INIT, .err = err};
    int rc = mdb_cursor_open(txn, t->s->dbi_records, &c.cur);
    if (rc)
        return store__mdb_err(err, rc, "open cursor");
    t->n_gen = 0;
    for (size_t i = 0; i < t->n_ops; i++)
        t->ops[i].gen_start = t->ops[i].gen_count = 0;
    for (size_t i = 0; !rc && i < t->n_ops; i++)
        if (t->ops[i].type == OP_UNDO)
            rc = undo_txn(&c, &t->ops[i]);
    mdb_cursor_close(c.cur);
    oidmap_free(&c.last_gen);
    return rc;
}
