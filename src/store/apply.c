/* apply.c: writing a committed transaction into LMDB (writer thread). */
#include "store/blob.h"
#include "store/txn.h"

#include <stdlib.h>

typedef struct apply_ctx {
    store *s;
    MDB_txn *txn;
    MDB_cursor *cur;      /* on records */
    store_txn *t;
    zbuf scratch;
    uint64_t new_objects;
    uint64_t max_oid;
    int any;              /* at least one record written */
} apply_ctx;

/* Install blob files under the transaction's tid before any record refers
 * to them (the LMDB commit comes after). */
static int install_blobs(store *s, store_txn *t, zerr *err)
{
    for (size_t i = 0; i < t->n_ops; i++) {
        txn_op *op = &t->ops[i];
        if (op->blob && !(op->state & OPF_DROPPED)) {
            int rc = store__blob_place(s, op->blob, !!(op->state & OPF_BLOB_LINKED), op->oid,
                                       t->tid, err);
            if (rc)
                return rc;
            free(op->blob);
            op->blob = NULL;
        }
    }
    for (size_t i = 0; i < t->n_gen; i++)
        if (t->gen[i].blob_src) {
            int rc = store__blob_copy(s, t->gen[i].oid, t->gen[i].blob_src, t->tid, err);
            if (rc)
                return rc;
        }
    return 0;
}

/* A back-pointer value for op: its target as written (back_index resolved)
 * and the DATA record at the end of the chain. */
static int backptr_value(apply_ctx *c, const txn_op *op, uint32_t index, uint8_t *out,
                         zerr *err)
{
    st_rec target;
    int rc = store__rec_get(c->txn, c->s, op->oid, op->back_tid, op->back_index, &target, err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(err, ZE_NOTFOUND, "back-pointer of oid %016llx to transaction "
                        "%016llx, which has no record of it", (unsigned long long)op->oid,
                        (unsigned long long)op->back_tid);
    if (rc)
        return rc;
    uint64_t data_tid = 0;
    uint32_t data_index = 0;
    if (target.kind == STORE_REC_DATA) {
        data_tid = op->back_tid;
        data_index = target.index;
    } else if (target.kind == STORE_REC_BACKPTR) {
        data_tid = target.data_tid;
        data_index = target.data_index;
    }
    st_rec_put_backptr(out, op->rflags, index, op->back_tid, target.index, data_tid,
                       data_index);
    return 0;
}

/* The earlier record of an oid in this same transaction moves to "dups". */
static int move_to_dups(apply_ctx *c, uint64_t oid, const MDB_val *old, zerr *err)
{
    st_rec rec;
    if (st_rec_decode(old->mv_data, old->mv_size, &rec))
        return zerr_set(err, ZE_CORRUPT, "damaged record of oid %016llx", (unsigned long long)oid);
    zbuf_reset(&c->scratch);
    uint8_t o[8];
    zbe64_put(o, oid);
    if (zbuf_append(&c->scratch, o, 8) || zbuf_append(&c->scratch, old->mv_data, old->mv_size))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint8_t key[ST_DUPKEY_LEN];
    st_dupkey(key, c->t->tid, rec.index);
    MDB_val k = {ST_DUPKEY_LEN, key}, v = {c->scratch.len, c->scratch.data};
    int rc = mdb_put(c->txn, c->s->dbi_dups, &k, &v, 0);
    return rc ? store__mdb_err(err, rc, "write record") : 0;
}

/* A record imported with prev = 0 after earlier records of its oid cuts
 * them off FileStorage's prev chain: flag them hidden. The cursor is on the
 * record before the new one; all older hidden ones are already flagged. */
static int hide_older(apply_ctx *c, uint64_t oid, zerr *err)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(c->cur, &k, &v, MDB_GET_CURRENT);
    while (!rc && zbe64(k.mv_data) == oid) {
        if (v.mv_size < ST_REC_HDR)
            return zerr_set(err, ZE_CORRUPT, "damaged record of oid %016llx",
                            (unsigned long long)oid);
        if (((uint8_t *)v.mv_data)[1] & ST_RF_HIDDEN)
            return 0;
        if (zbuf_set(&c->scratch, v.mv_data, v.mv_size))
            return zerr_set(err, ZE_NOMEM, "out of memory");
        c->scratch.data[1] |= ST_RF_HIDDEN;
        MDB_val nv = {c->scratch.len, c->scratch.data};
        if ((rc = mdb_cursor_put(c->cur, &k, &nv, MDB_CURRENT)))
            return store__mdb_err(err, rc, "write record");
        rc = mdb_cursor_get(c->cur, &k, &v, MDB_PREV);
    }
    return rc && rc != MDB_NOTFOUND ? store__mdb_err(err, rc, "read record") : 0;
}

/* After the put the cursor is on the new record: look one back to count new
 * objects and apply prev_zero. */
static int after_put(apply_ctx *c, const txn_op *op, int replaced, zerr *err)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(c->cur, &k, &v, MDB_PREV);
    int older = !rc && zbe64(k.mv_data) == op->oid;
    if (rc && rc != MDB_NOTFOUND)
        return store__mdb_err(err, rc, "read record");
    if (!older && !replaced)
        c->new_objects++;
    if (older && (op->rflags & ST_RF_PREV_ZERO))
        return hide_older(c, op->oid, err);
    return 0;
}

static int write_record(apply_ctx *c, const txn_op *op, uint32_t index, uint64_t *size,
                        zerr *err)
{
    uint8_t key[ST_KEY_LEN], bp[ST_REC_BACKPTR_LEN];
    st_key(key, op->oid, c->t->tid);
    size_t vlen = op->kind == STORE_REC_DATA ? ST_REC_HDR + (size_t)op->len
                : op->kind == STORE_REC_BACKPTR ? ST_REC_BACKPTR_LEN : ST_REC_HDR;
    int rc;
    if (op->kind == STORE_REC_BACKPTR && (rc = backptr_value(c, op, index, bp, err)))
        return rc;
    MDB_val k = {ST_KEY_LEN, key}, v = {vlen, NULL};
    int replaced = 0;
    rc = mdb_cursor_put(c->cur, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == MDB_KEYEXIST) {
        if ((rc = move_to_dups(c, op->oid, &v, err)))
            return rc;
        replaced = 1;
        v = (MDB_val){vlen, NULL};
        rc = mdb_cursor_put(c->cur, &k, &v, MDB_RESERVE);
    }
    if (rc)
        return store__mdb_err(err, rc, "write record");
    uint8_t *p = v.mv_data;
    if (op->kind == STORE_REC_BACKPTR) {
        memcpy(p, bp, ST_REC_BACKPTR_LEN);
    } else {
        st_rec_put_header(p, op->kind, op->rflags, index);
        if (op->kind == STORE_REC_DATA &&
            (rc = txnbuf_read(&c->t->buf, op->off, op->len, p + ST_REC_HDR, err)))
            return rc;
    }
    *size += vlen;
    if (op->oid > c->max_oid)
        c->max_oid = op->oid;
    c->any = 1;
    return after_put(c, op, replaced, err);
}

static int write_txn_value(apply_ctx *c, const zbuf *oids, uint32_t nrec, uint64_t size,
                           zerr *err)
{
    store_txn *t = c->t;
    zslice user = {t->meta.data, t->ulen};
    zslice desc = {t->meta.data + t->ulen, t->dlen};
    zslice ext = {t->meta.data + t->ulen + t->dlen, t->elen};
    zbuf_reset(&c->scratch);
    if (store__txnval_encode(&c->scratch, t->status, user, desc, ext, size, oids->data, nrec))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint8_t key[8];
    zbe64_put(key, t->tid);
    MDB_val k = {8, key}, v = {c->scratch.len, c->scratch.data};
    int rc = mdb_put(c->txn, c->s->dbi_txns, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return zerr_set(err, ZE_INVAL, "transaction %016llx already exists",
                        (unsigned long long)t->tid);
    return rc ? store__mdb_err(err, rc, "write transaction") : 0;
}

/* The last tid is the txns key just written and the object count is saved
 * later (store_internal.h, "meta"): a commit touches meta only when restored
 * oids (import) move the oid counter past them. */
static int update_meta(apply_ctx *c, zerr *err)
{
    store *s = c->s;
    uint64_t after = store__oid_after(c->max_oid);
    pthread_mutex_lock(&s->oid_mu);
    int bump = c->any && after > s->oid_limit;
    if (bump) {
        s->oid_limit = after;
        if (s->next_oid < s->oid_limit)
            s->next_oid = s->oid_limit;
    }
    pthread_mutex_unlock(&s->oid_mu);
    return bump ? store__meta_put(c->txn, s, "next_oid", after, err) : 0;
}

int store__apply_txn(store *s, MDB_txn *txn, store_txn *t, zerr *err)
{
    apply_ctx c = {.s = s, .txn = txn, .t = t, .scratch = ZBUF_INIT};
    zbuf oids = ZBUF_INIT;
    int rc = t->resolved_on ? store__resolve_base_check(s, txn, t, err) : 0;
    if (!rc)
        rc = install_blobs(s, t, err);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_records, &c.cur)))
        return store__mdb_err(err, rc, "open cursor");
    uint32_t index = 0;
    uint64_t size = 0;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; !rc && (op = store__txn_next_rec(t, &it)); index++) {
        uint8_t o[8];
        zbe64_put(o, op->oid);
        rc = write_record(&c, op, index, &size, err);
        if (!rc && zbuf_append(&oids, o, 8))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
    }
    mdb_cursor_close(c.cur);
    if (!rc)
        rc = write_txn_value(&c, &oids, index, size, err);
    if (!rc)
        rc = update_meta(&c, err);
    t->n_written = index;
    t->new_objects = c.new_objects;
    zbuf_free(&oids);
    zbuf_free(&c.scratch);
    return rc;
}
