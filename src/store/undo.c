/* undo.c: transactional undo (spec filestorage-format.md section 6), as
 * FileStorage's _txn_undo_write does it.
 *
 * Each record R of the undone transaction T, in T's order, becomes a record
 * of the undoing transaction: a back-pointer to the oid's record before T,
 * or a deletion when T created the object. That plain revert is allowed when
 * the oid's current record is R, points at R, or holds the same pickle as R.
 * Anything else needs conflict resolution: the store's resolver, when it
 * has one, may merge the record before T into the current data (the revert
 * then writes that record); otherwise R fails.
 *
 * Failures are per oid and forgiven when a later record of the same oid in
 * T succeeds: the first of two records of one oid in T (every blob store
 * over ZEO writes two) is never current. Failures left at the end of T fail
 * the whole undo with ZE_UNDO. "Current" counts the records of transactions
 * undone earlier in the same store transaction, but not those of T itself:
 * FileStorage merges an undo's records into its index only after all of T.
 * Not modelled: FileStorage would also count a store of the oid queued
 * before the undo in the same transaction as current; here that store is
 * only checked against committed data, like any store.
 */
#include "store/index.h"
#include "store/txn.h"

#include <stdlib.h>

#include "common/zarray.h"

/* A record by its place: transaction and index; absent for "no record"
 * (a deletion, or the end of a chain that ends in one). */
typedef struct rec_pos {
    int absent;
    uint64_t tid;
    uint32_t index;
} rec_pos;

typedef struct undo_fail {
    uint64_t oid;
    const char *why;       /* NULL once forgiven */
} undo_fail;

typedef struct undo_ctx {
    store_txn *t;
    st_view *v;
    oidmap last_gen;       /* oid -> 1 + index in t->q.gen of its newest record
                              from the transactions undone before T */
    oidmap failed;         /* oid -> 1 + index in fails, for T */
    undo_fail *fails;
    size_t n_fails, cap_fails;
    zerr *err;
} undo_ctx;

static int nomem(undo_ctx *c)
{
    return zerr_set(c->err, ZE_NOMEM, "out of memory");
}

static int same_pos(rec_pos a, rec_pos b)
{
    return !a.absent && !b.absent && a.tid == b.tid && a.index == b.index;
}

/* The oid's current record as FileStorage's _undoDataInfo reads it: *is_r
 * when it is R itself; else *link is where its data is, one link deep
 * (itself for DATA, its target for a back-pointer, absent for a deletion). */
static int current_link(undo_ctx *c, uint64_t oid, rec_pos r, int *is_r, rec_pos *link)
{
    uint64_t g, tid, next;
    st_ent e;
    st_rec cur;
    *is_r = 0;
    if (oidmap_get(&c->last_gen, oid, &g)) {
        const txn_op *op = &c->t->q.gen[g - 1];
        *link = op->kind == STORE_REC_BACKPTR ? (rec_pos){0, op->back_tid, op->back_index}
                                              : (rec_pos){1, 0, 0};
        return 0;
    }
    int rc = store__view_find(c->v, oid, UINT64_MAX, &e, &next, c->err);
    if (!rc)
        rc = store__rec_get(c->v, oid, e.tid, e.index, &cur, c->err);
    if (rc == ZE_NOTFOUND || rc == ZE_NOREV)
        return zerr_set(c->err, ZE_CORRUPT, "no current record for oid %016llx",
                        (unsigned long long)oid);
    if (rc)
        return rc;
    tid = e.tid;
    *is_r = same_pos((rec_pos){0, tid, cur.index}, r);
    *link = cur.kind == STORE_REC_DATA      ? (rec_pos){0, tid, cur.index}
            : cur.kind == STORE_REC_BACKPTR ? (rec_pos){0, cur.back_tid, cur.back_index}
                                            : (rec_pos){1, 0, 0};
    return 0;
}

/* The pickle a record stands for (back-pointers followed) into *data;
 * *found 0 when there is none (FileStorage's _loadBack fails). */
static int load_back(undo_ctx *c, uint64_t oid, rec_pos p, st_rec *data, int *found)
{
    st_rec r;
    *found = 0;
    if (p.absent)
        return 0;
    int rc = store__rec_get(c->v, oid, p.tid, p.index, &r, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "oid %016llx has no record %u in %016llx",
                        (unsigned long long)oid, p.index, (unsigned long long)p.tid);
    if (rc || (rc = store__rec_resolve(c->v, oid, &r, data, c->err)))
        return rc;
    *found = data->kind == STORE_REC_DATA;
    return 0;
}

/* FileStorage's reason when later data differ from the record undone. */
static const char *later_change(int has_pre)
{
    return has_pre ? "Some data were modified by a later transaction"
                   : "Can't undo an add transaction followed by conflicting transactions.";
}

/* Data that differ from the record undone: the store's resolver may merge
 * the record before it (pre) into the current data (resolve.c), as
 * FileStorage calls conflict resolution; *data then holds the revert's
 * record. Records with blobs are not offered. */
static int resolve_revert(undo_ctx *c, uint64_t oid, const st_rec *rd, const st_rec *cd,
                          rec_pos pre, txn_op *data)
{
    st_rec pd;
    int found;
    if (!c->t->s->opt.resolver.resolve)
        return 0;
    int rc = load_back(c, oid, pre, &pd, &found);
    if (rc || !found || ((rd->flags | cd->flags | pd.flags) & ST_RF_BLOB))
        return rc;
    if (store__txnq_resolve_undo(&c->t->q, oid, (zslice){rd->data, rd->len},
                                 (zslice){cd->data, cd->len}, (zslice){pd.data, pd.len},
                                 &data->off, &data->len))
        data->kind = STORE_REC_DATA;
    return 0;
}

/* Whether R (at r, oid) can be reverted: *why NULL, or FileStorage's reason.
 * A revert that only the resolver makes possible comes back in *data
 * (kind STORE_REC_DATA, the record in t->q.buf). */
static int check_revert(undo_ctx *c, uint64_t oid, rec_pos r, rec_pos pre, const char **why,
                        txn_op *data)
{
    int has_pre = !pre.absent;
    int is_r, found_r, found_c;
    rec_pos link = {1, 0, 0};
    st_rec rd, cd;
    *why = NULL;
    int rc = current_link(c, oid, r, &is_r, &link);
    if (rc || is_r || same_pos(link, r))
        return rc;
    uint64_t g;
    if (oidmap_get(&c->last_gen, oid, &g) && c->t->q.gen[g - 1].kind == STORE_REC_DATA) {
        /* An earlier undo's resolved record: not merged again. */
        *why = later_change(has_pre);
        return 0;
    }
    /* Both pickles are in the read snapshot, which nothing moves meanwhile. */
    if ((rc = load_back(c, oid, r, &rd, &found_r)) || (rc = load_back(c, oid, link, &cd, &found_c)))
        return rc;
    if (!found_r || !found_c)
        *why = "_loadBack() failed";
    else if (rd.len != cd.len || memcmp(rd.data, cd.data, rd.len)) {
        *why = later_change(has_pre);
        if (has_pre && (rc = resolve_revert(c, oid, &rd, &cd, pre, data)) == 0 && data->kind)
            *why = NULL;
    }
    return rc;
}

/* The oid's record before T (FileStorage's prev); 0 when R had prev = 0 or
 * T created the object. */
static int prev_record(undo_ctx *c, uint64_t oid, uint64_t T, const st_rec *r,
                       uint64_t *pre_tid, st_rec *pre)
{
    *pre_tid = 0;
    if (r->flags & ST_RF_PREV_ZERO)
        return 0;
    st_ent e;
    uint64_t next;
    int rc = store__view_find(c->v, oid, T, &e, &next, c->err);
    if (rc == ZE_NOTFOUND || rc == ZE_NOREV || (!rc && (e.flags & ST_RF_HIDDEN)))
        return 0;
    if (!rc)
        rc = store__rec_get(c->v, oid, e.tid, e.index, pre, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    if (!rc)
        *pre_tid = e.tid;
    return rc;
}

static txn_op *push_gen(undo_ctx *c)
{
    store_txn *t = c->t;
    txn_op *gen = zarray_room(t->q.gen, t->q.n_gen, &t->q.cap_gen, sizeof *gen, 16);
    if (!gen)
        return NULL;
    t->q.gen = gen;
    txn_op *op = &t->q.gen[t->q.n_gen++];
    memset(op, 0, sizeof *op);
    op->type = OP_RECORD;
    return op;
}

/* The revert record: a back-pointer to pre, or a deletion without one. */
static int push_revert(undo_ctx *c, uint64_t oid, uint64_t pre_tid, const st_rec *pre)
{
    txn_op *op = push_gen(c);
    if (!op)
        return nomem(c);
    op->oid = oid;
    op->kind = pre_tid ? STORE_REC_BACKPTR : STORE_REC_DELETE;
    if (!pre_tid)
        return 0;
    op->back_tid = pre_tid;
    op->back_index = pre->index;
    st_rec data;
    int found;
    int rc = load_back(c, oid, (rec_pos){0, pre_tid, pre->index}, &data, &found);
    /* ZODB gives the undo record its own copy of the blob file, named for
     * the undo's tid: the file of the DATA record at the end of the chain. */
    if (!rc && found && (data.flags & ST_RF_BLOB)) {
        op->rflags |= ST_RF_BLOB;
        op->blob_src = pre->kind == STORE_REC_BACKPTR ? pre->data_tid : pre_tid;
    }
    return rc;
}

static int add_failure(undo_ctx *c, uint64_t oid, const char *why)
{
    undo_fail *f = zarray_room(c->fails, c->n_fails, &c->cap_fails, sizeof *f, 8);
    if (!f)
        return nomem(c);
    c->fails = f;
    c->fails[c->n_fails] = (undo_fail){oid, why};
    if (oidmap_put(&c->failed, oid, ++c->n_fails))
        return nomem(c);
    return 0;
}

/* FileStorage's "second chance": a later record of the oid may succeed. */
static void forgive(undo_ctx *c, uint64_t oid)
{
    uint64_t i;
    if (oidmap_get(&c->failed, oid, &i)) {
        c->fails[i - 1].why = NULL;
        oidmap_del(&c->failed, oid);
    }
}

/* The revert record the resolver made. */
static int push_resolved(undo_ctx *c, uint64_t oid, const txn_op *data)
{
    txn_op *op = push_gen(c);
    if (!op)
        return nomem(c);
    op->oid = oid;
    op->kind = STORE_REC_DATA;
    op->off = data->off;
    op->len = data->len;
    return 0;
}

/* Record number index of T, for oid: its revert record, or a failure. */
static int undo_record(undo_ctx *c, uint64_t T, uint32_t index, uint64_t oid)
{
    st_rec r, pre;
    uint64_t pre_tid;
    const char *why;
    txn_op data = {0};
    int rc = store__rec_get(c->v, oid, T, index, &r, c->err);
    if (rc)
        return rc == ZE_NOTFOUND ? zerr_set(c->err, ZE_CORRUPT, "record %u of %016llx missing",
                                            index, (unsigned long long)T) : rc;
    forgive(c, oid);
    if ((rc = prev_record(c, oid, T, &r, &pre_tid, &pre)) ||
        (rc = check_revert(c, oid, (rec_pos){0, T, index},
                           (rec_pos){pre_tid == 0, pre_tid, pre.index}, &why, &data)))
        return rc;
    if (why)
        return add_failure(c, oid, why);
    return data.kind ? push_resolved(c, oid, &data) : push_revert(c, oid, pre_tid, &pre);
}

/* The failures left once all of T is read, in the order FileStorage lists
 * them, go to the vote result as well as into the message. */
static int report_failures(undo_ctx *c, uint64_t T)
{
    const undo_fail *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->n_fails; i++)
        if (c->fails[i].why && n++ == 0)
            first = &c->fails[i];
    if (!first)
        return 0;
    store_txn *t = c->t;
    free(t->q.undo_failures);
    if (!(t->q.undo_failures = malloc(n * sizeof *t->q.undo_failures)))
        return nomem(c);
    t->q.n_undo_failures = 0;
    for (size_t i = 0; i < c->n_fails; i++)
        if (c->fails[i].why)
            t->q.undo_failures[t->q.n_undo_failures++] =
                (store_undo_failure){c->fails[i].oid, c->fails[i].why};
    return zerr_set(c->err, ZE_UNDO, "cannot undo %016llx: oid %016llx: %s (%zu oid%s failed)",
                    (unsigned long long)T, (unsigned long long)first->oid, first->why, n,
                    n == 1 ? "" : "s");
}

/* T's records become current for the transactions undone after it. */
static int note_records(undo_ctx *c, size_t from)
{
    store_txn *t = c->t;
    for (size_t i = from; i < t->q.n_gen; i++) {
        uint64_t oid = t->q.gen[i].oid, seen;
        int is_new = !oidmap_get(&c->last_gen, oid, &seen);
        if (oidmap_put(&c->last_gen, oid, i + 1))
            return nomem(c);
        if (is_new) {
            uint64_t *ch =
                zarray_room(t->q.changed, t->q.n_changed, &t->q.cap_changed, sizeof *ch, 16);
            if (!ch)
                return nomem(c);
            t->q.changed = ch;
            t->q.changed[t->q.n_changed++] = oid;
        }
    }
    return 0;
}

static int undo_txn(undo_ctx *c, txn_op *uop)
{
    store *s = c->t->s;
    uint64_t T = uop->serial;
    uint8_t key[8];
    zbe64_put(key, T);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(c->v->txn, s->dbi_txns, &k, &v);
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
    uop->gen_start = (uint32_t)c->t->q.n_gen;
    c->n_fails = 0;
    oidmap_clear(&c->failed);
    /* tv points into the map: nothing writes in this read txn, so it stays
     * valid while the records are read. */
    for (uint32_t i = 0; i < tv.nrec; i++)
        if ((rc = undo_record(c, T, i, st_txn_oid(&tv, i))))
            return rc;
    if ((rc = report_failures(c, T)) || (rc = note_records(c, uop->gen_start)))
        return rc;
    uop->gen_count = (uint32_t)(c->t->q.n_gen - uop->gen_start);
    return 0;
}

/* A blob file belongs to an oid and a tid: of the undo's records of one oid
 * only the last (the one loads see) carries it, as a blob store over ZEO
 * does, so the file is made once and exported once. */
static void one_blob_per_oid(undo_ctx *c)
{
    store_txn *t = c->t;
    for (size_t i = 0; i < t->q.n_gen; i++) {
        uint64_t last = 0;
        txn_op *op = &t->q.gen[i];
        if ((op->rflags & ST_RF_BLOB) && oidmap_get(&c->last_gen, op->oid, &last) &&
            last != i + 1) {
            op->rflags &= (uint8_t)~ST_RF_BLOB;
            op->blob_src = 0;
        }
    }
}

int store__undo_expand(store_txn *t, st_view *v, zerr *err)
{
    undo_ctx c = {.t = t, .v = v, .last_gen = OIDMAP_INIT, .failed = OIDMAP_INIT,
                  .err = err};
    int rc = 0;
    t->q.n_gen = 0;
    for (size_t i = 0; i < t->q.n_ops; i++)
        t->q.ops[i].gen_start = t->q.ops[i].gen_count = 0;
    for (size_t i = 0; !rc && i < t->q.n_ops; i++)
        if (t->q.ops[i].type == OP_UNDO)
            rc = undo_txn(&c, &t->q.ops[i]);
    if (!rc)
        one_blob_per_oid(&c);
    oidmap_free(&c.last_gen);
    oidmap_free(&c.failed);
    free(c.fails);
    return rc;
}
