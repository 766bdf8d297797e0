/* apply.c: writing a committed transaction into LMDB (writer thread). */
#include "store/blob.h"
#include "store/index.h"
#include "store/txn.h"

#include <stdlib.h>

typedef struct apply_ctx {
    store *s;
    MDB_txn *txn;
    MDB_cursor *cur;      /* on values */
    st_view view;         /* the index as this write sees it (back-pointer targets) */
    store_txn *t;
    uint64_t max_oid;
    int any;              /* at least one record written */
} apply_ctx;

/* Install blob files under the transaction's tid before any record refers
 * to them (the LMDB commit comes after). */
static int install_blobs(store *s, store_txn *t, zerr *err)
{
    for (size_t i = 0; i < t->q.n_ops; i++) {
        txn_op *op = &t->q.ops[i];
        if (op->blob && !(op->state & OPF_DROPPED)) {
            int rc = store__blob_place(s, op->blob, !!(op->state & OPF_BLOB_LINKED), op->oid,
                                       t->tid, err);
            if (rc)
                return rc;
            free(op->blob);
            op->blob = NULL;
        }
    }
    for (size_t i = 0; i < t->q.n_gen; i++)
        if (t->q.gen[i].blob_src) {
            int rc = store__blob_copy(s, t->q.gen[i].oid, t->q.gen[i].blob_src, t->tid, err);
            if (rc)
                return rc;
        }
    return 0;
}

/* A back-pointer's target as written (back_index resolved) and the DATA
 * record at the end of its chain, into r. */
static int backptr_target(apply_ctx *c, const txn_op *op, st_rec *r, zerr *err)
{
    st_rec target;
    int rc = store__rec_get(&c->view, op->oid, op->back_tid, op->back_index, &target, err);
    if (rc == ZE_NOTFOUND)
        return store__txnq_no_target(op, err);
    if (rc)
        return rc;
    r->back_tid = op->back_tid;
    r->back_index = target.index;
    if (target.kind == STORE_REC_DATA) {
        r->data_tid = op->back_tid;
        r->data_index = target.index;
    } else if (target.kind == STORE_REC_BACKPTR) {
        r->data_tid = target.data_tid;
        r->data_index = target.data_index;
    }
    return 0;
}

/* Append record index of the transaction to "values" (key order: the
 * transaction's tid is the newest) and give its oid an overlay entry. */
static int write_record(apply_ctx *c, const txn_op *op, uint32_t index, uint64_t *size,
                        zerr *err)
{
    st_rec r = {.kind = op->kind, .flags = op->rflags & (ST_RF_PREV_ZERO | ST_RF_BLOB),
                .index = index, .oid = op->oid, .len = op->len};
    int rc;
    if (op->kind == STORE_REC_BACKPTR && (rc = backptr_target(c, op, &r, err)))
        return rc;
    size_t vlen = op->kind == STORE_REC_DATA      ? ST_VAL_HDR + (size_t)op->len
                  : op->kind == STORE_REC_BACKPTR ? ST_VAL_BACKPTR_LEN : ST_VAL_HDR;
    uint8_t key[ST_VKEY_LEN];
    st_vkey(key, c->t->tid, index);
    MDB_val k = {ST_VKEY_LEN, key}, v = {vlen, NULL};
    rc = mdb_cursor_put(c->cur, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc == MDB_KEYEXIST)
        return zerr_set(err, ZE_INVAL, "transaction %016llx already exists",
                        (unsigned long long)c->t->tid);
    if (rc)
        return store__mdb_err(err, rc, "write record");
    uint8_t *p = v.mv_data;
    st_val_put_header(p, r.kind, r.flags, op->oid);
    if (op->kind == STORE_REC_BACKPTR)
        st_val_put_backptr(p, r.back_tid, r.back_index, r.data_tid, r.data_index);
    else if (op->kind == STORE_REC_DATA &&
             (rc = txnbuf_read(&c->t->q.buf, op->off, op->len, p + ST_VAL_HDR, err)))
        return rc;
    st_ent e = st_ent_of(&r, c->t->tid);
    if (op->type == OP_STORE || op->type == OP_DELETE)
        e.flags |= ST_RF_COUNTED;
    if (store__overlay_add(c->s, op->oid, &e))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    *size += st_rec_size(&r);
    if (op->oid > c->max_oid)
        c->max_oid = op->oid;
    c->any = 1;
    return 0;
}

static int write_txn_value(apply_ctx *c, const zbuf *oids, uint32_t nrec, uint64_t size,
                           zerr *err)
{
    store_txn *t = c->t;
    zslice user = {t->q.meta.data, t->q.ulen};
    zslice desc = {t->q.meta.data + t->q.ulen, t->q.dlen};
    zslice ext = {t->q.meta.data + t->q.ulen + t->q.dlen, t->q.elen};
    zbuf val = ZBUF_INIT;
    if (store__txnval_encode(&val, t->q.status, user, desc, ext, size, oids->data, nrec))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint8_t key[8];
    zbe64_put(key, t->tid);
    MDB_val k = {8, key}, v = {val.len, val.data};
    int rc = mdb_put(c->txn, c->s->dbi_txns, &k, &v, MDB_APPEND);
    zbuf_free(&val);
    if (rc == MDB_KEYEXIST)
        return zerr_set(err, ZE_INVAL, "transaction %016llx is not after the last one",
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
    apply_ctx c = {.s = s, .txn = txn, .t = t};
    zbuf oids = ZBUF_INIT;
    int rc = t->resolved_on ? store__resolve_base_check(s, txn, t, err) : 0;
    if (!rc)
        rc = install_blobs(s, t, err);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_values, &c.cur)))
        return store__mdb_err(err, rc, "open cursor");
    if ((rc = store__view_write(s, txn, &c.view, err))) {
        mdb_cursor_close(c.cur);
        return rc;
    }
    uint32_t index = 0;
    uint64_t size = 0;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; !rc && (op = store__txnq_next_rec(&t->q, &it)); index++) {
        uint8_t o[8];
        zbe64_put(o, op->oid);
        rc = write_record(&c, op, index, &size, err);
        if (!rc && zbuf_append(&oids, o, 8))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
    }
    store__view_write_end(&c.view);
    mdb_cursor_close(c.cur);
    if (!rc)
        rc = write_txn_value(&c, &oids, index, size, err);
    if (!rc)
        rc = update_meta(&c, err);
    if (!rc)
        store__overlay_known(s, t->tid);
    t->n_written = index;
    zbuf_free(&oids);
    return rc;
}
