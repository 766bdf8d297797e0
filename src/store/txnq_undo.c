/* txnq_undo.c: transactional undo's decisions (spec filestorage-format.md
 * section 6), as FileStorage's _txn_undo_write takes them, for both backends;
 * the backend reads the records (txnq_undo_hooks).
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
#include "store/txnq.h"

#include <stdlib.h>
#include <string.h>

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
    txnq *q;
    const txnq_undo_hooks *h;
    void *ud;              /* the hooks' */
    oidmap last_gen;       /* oid -> 1 + index in q->gen of its newest record
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

static void done(undo_ctx *c, txnq_rec *r)
{
    c->h->done(c->ud, r);
}

/* The oid's current record as FileStorage's _undoDataInfo reads it: *is_r
 * when it is R itself; else *link is where its data is, one link deep
 * (itself for DATA, its target for a back-pointer, absent for a deletion). */
static int current_link(undo_ctx *c, uint64_t oid, rec_pos r, int *is_r, rec_pos *link)
{
    uint64_t g;
    *is_r = 0;
    if (oidmap_get(&c->last_gen, oid, &g)) {
        const txn_op *op = &c->q->gen[g - 1];
        *link = op->kind == STORE_REC_BACKPTR ? (rec_pos){0, op->back_tid, op->back_index}
                                              : (rec_pos){1, 0, 0};
        return 0;
    }
    txnq_rec cur = {0};
    int rc = c->h->current(c->ud, oid, &cur, c->err);
    if (rc == ZE_NOTFOUND)
        rc = zerr_set(c->err, ZE_CORRUPT, "no current record for oid %016llx",
                      (unsigned long long)oid);
    if (!rc) {
        *is_r = same_pos((rec_pos){0, cur.tid, cur.index}, r);
        *link = cur.kind == STORE_REC_DATA      ? (rec_pos){0, cur.tid, cur.index}
                : cur.kind == STORE_REC_BACKPTR ? (rec_pos){0, cur.back_tid, cur.back_index}
                                                : (rec_pos){1, 0, 0};
    }
    done(c, &cur);
    return rc;
}

/* The pickle a record stands for (back-pointers followed) into *data;
 * *found 0 when there is none (FileStorage's _loadBack fails). */
static int load_back(undo_ctx *c, uint64_t oid, rec_pos p, txnq_rec *data, int *found)
{
    *found = 0;
    if (p.absent)
        return 0;
    int rc = c->h->data(c->ud, oid, p.tid, p.index, data, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "oid %016llx has no record %u in %016llx",
                        (unsigned long long)oid, p.index, (unsigned long long)p.tid);
    *found = !rc && data->kind == STORE_REC_DATA;
    return rc;
}

/* FileStorage's reason when later data differ from the record undone. */
static const char *later_change(int has_pre)
{
    return has_pre ? "Some data were modified by a later transaction"
                   : "Can't undo an add transaction followed by conflicting transactions.";
}

/* Data that differ from the record undone: the store's resolver may merge
 * the record before it (pre) into the current data, as FileStorage calls
 * conflict resolution; *data then holds the revert's record (kind
 * STORE_REC_DATA, in q->buf). Records with blobs are not offered. */
static int resolve_revert(undo_ctx *c, uint64_t oid, const txnq_rec *rd, const txnq_rec *cd,
                          rec_pos pre, txn_op *data)
{
    txnq_rec pd = {0};
    int found;
    if (!c->q->resolver->resolve)
        return 0;
    int rc = load_back(c, oid, pre, &pd, &found);
    if (!rc && found && !((rd->flags | cd->flags | pd.flags) & TXN_RF_BLOB) &&
        store__txnq_resolve_undo(c->q, oid, (zslice){rd->data, rd->len},
                                 (zslice){cd->data, cd->len}, (zslice){pd.data, pd.len},
                                 &data->off, &data->len))
        data->kind = STORE_REC_DATA;
    done(c, &pd);
    return rc;
}

/* Whether R (at r, oid) can be reverted: *why NULL, or FileStorage's reason.
 * A revert that only the resolver makes possible comes back in *data
 * (kind STORE_REC_DATA, the record in q->buf). */
static int check_revert(undo_ctx *c, uint64_t oid, rec_pos r, rec_pos pre, const char **why,
                        txn_op *data)
{
    int has_pre = !pre.absent;
    int is_r, found_r, found_c;
    rec_pos link = {1, 0, 0};
    txnq_rec rd = {0}, cd = {0};
    *why = NULL;
    int rc = current_link(c, oid, r, &is_r, &link);
    if (rc || is_r || same_pos(link, r))
        return rc;
    uint64_t g;
    if (oidmap_get(&c->last_gen, oid, &g) && c->q->gen[g - 1].kind == STORE_REC_DATA) {
        /* An earlier undo's resolved record: not merged again. */
        *why = later_change(has_pre);
        return 0;
    }
    /* Nothing the vote reads can change meanwhile (LMDB: one snapshot;
     * PostgreSQL: the oids' locks). */
    if (!(rc = load_back(c, oid, r, &rd, &found_r)) &&
        !(rc = load_back(c, oid, link, &cd, &found_c))) {
        if (!found_r || !found_c) {
            *why = "_loadBack() failed";
        } else if (rd.len != cd.len || memcmp(rd.data, cd.data, rd.len)) {
            *why = later_change(has_pre);
            if (has_pre && (rc = resolve_revert(c, oid, &rd, &cd, pre, data)) == 0 &&
                data->kind)
                *why = NULL;
        }
    }
    done(c, &rd);
    done(c, &cd);
    return rc;
}

static txn_op *push_gen(undo_ctx *c)
{
    txnq *q = c->q;
    txn_op *gen = zarray_room(q->gen, q->n_gen, &q->cap_gen, sizeof *gen, 16);
    if (!gen)
        return NULL;
    q->gen = gen;
    txn_op *op = &q->gen[q->n_gen++];
    memset(op, 0, sizeof *op);
    op->type = OP_RECORD;
    op->state = OPF_TARGET;
    return op;
}

/* The revert record: a back-pointer to pre (its target known), or a
 * deletion without one. Its blob is the one of the DATA record at the end
 * of pre's chain (the backend says how it is shared). */
static int push_revert(undo_ctx *c, uint64_t oid, const txnq_rec *pre)
{
    txn_op *op = push_gen(c);
    if (!op)
        return nomem(c);
    op->oid = oid;
    op->kind = pre ? STORE_REC_BACKPTR : STORE_REC_DELETE;
    if (!pre)
        return 0;
    int is_data = pre->kind == STORE_REC_DATA;
    op->back_tid = pre->tid;
    op->back_index = pre->index;
    op->data_tid = is_data ? pre->tid : pre->data_tid;
    op->data_index = is_data ? pre->index : pre->data_index;
    txnq_rec data = {0};
    int found;
    int rc = load_back(c, oid, (rec_pos){0, pre->tid, pre->index}, &data, &found);
    if (!rc && found && (data.flags & TXN_RF_BLOB))
        c->h->revert_blob(c->ud, op, &data);
    done(c, &data);
    return rc;
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

/* Record r of T (oid's): its revert record, or a failure. */
static int undo_record(undo_ctx *c, uint64_t T, const txnq_rec *r, uint64_t oid)
{
    txnq_rec pre = {0};
    const char *why = NULL;
    txn_op data = {0};
    int rc = 0, has_pre = 0;
    forgive(c, oid);
    /* FileStorage's prev: none when R had prev = 0 or T created the object. */
    if (!(r->flags & TXN_RF_PREV_ZERO)) {
        rc = c->h->prev(c->ud, oid, T, &pre, c->err);
        has_pre = !rc;
        if (rc == ZE_NOTFOUND)
            rc = 0;
    }
    rec_pos pre_pos = {!has_pre, has_pre ? pre.tid : 0, has_pre ? pre.index : 0};
    if (!rc)
        rc = check_revert(c, oid, (rec_pos){0, T, r->index}, pre_pos, &why, &data);
    if (!rc && data.kind)
        rc = push_resolved(c, oid, &data);
    else if (!rc)
        rc = why ? add_failure(c, oid, why) : push_revert(c, oid, has_pre ? &pre : NULL);
    done(c, &pre);
    return rc;
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
    txnq *q = c->q;
    free(q->undo_failures);
    if (!(q->undo_failures = malloc(n * sizeof *q->undo_failures)))
        return nomem(c);
    q->n_undo_failures = 0;
    for (size_t i = 0; i < c->n_fails; i++)
        if (c->fails[i].why)
            q->undo_failures[q->n_undo_failures++] =
                (store_undo_failure){c->fails[i].oid, c->fails[i].why};
    return zerr_set(c->err, ZE_UNDO, "cannot undo %016llx: oid %016llx: %s (%zu oid%s failed)",
                    (unsigned long long)T, (unsigned long long)first->oid, first->why, n,
                    n == 1 ? "" : "s");
}

/* T's records become current for the transactions undone after it. */
static int note_records(undo_ctx *c, size_t from)
{
    txnq *q = c->q;
    for (size_t i = from; i < q->n_gen; i++) {
        uint64_t oid = q->gen[i].oid, seen;
        int is_new = !oidmap_get(&c->last_gen, oid, &seen);
        if (oidmap_put(&c->last_gen, oid, i + 1))
            return nomem(c);
        if (is_new) {
            uint64_t *ch =
                zarray_room(q->changed, q->n_changed, &q->cap_changed, sizeof *ch, 16);
            if (!ch)
                return nomem(c);
            q->changed = ch;
            q->changed[q->n_changed++] = oid;
        }
    }
    return 0;
}

/* T's status must be ' '. */
static int check_undoable(undo_ctx *c, uint64_t T)
{
    char status = 0;
    int rc = c->h->undone(c->ud, T, &status, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_UNDO, "no transaction %016llx to undo", (unsigned long long)T);
    if (rc)
        return rc;
    if (status != ' ')
        return zerr_set(c->err, ZE_UNDO, "transaction %016llx is not undoable (status '%c')",
                        (unsigned long long)T, status);
    return 0;
}

static int undo_txn(undo_ctx *c, txn_op *uop)
{
    uint64_t T = uop->serial;
    uint32_t n = 0;
    int rc = check_undoable(c, T);
    if (!rc)
        rc = c->h->records(c->ud, T, &n, c->err);
    if (rc)
        return rc;
    uop->gen_start = (uint32_t)c->q->n_gen;
    c->n_fails = 0;
    oidmap_clear(&c->failed);
    for (uint32_t i = 0; i < n && !rc; i++) {
        txnq_rec r = {0};
        uint64_t oid = 0;
        rc = c->h->record(c->ud, T, i, &oid, &r, c->err);
        if (!rc)
            rc = undo_record(c, T, &r, oid);
        done(c, &r);
    }
    c->h->records_end(c->ud);
    if (rc || (rc = report_failures(c, T)) || (rc = note_records(c, uop->gen_start)))
        return rc;
    uop->gen_count = (uint32_t)(c->q->n_gen - uop->gen_start);
    return 0;
}

/* A blob belongs to an oid and a tid: of the undo's records of one oid
 * only the last (the one loads see) carries it, as a blob store over ZEO
 * does, so the blob is made once and exported once. */
static void one_blob_per_oid(undo_ctx *c)
{
    txnq *q = c->q;
    for (size_t i = 0; i < q->n_gen; i++) {
        uint64_t last = 0;
        txn_op *op = &q->gen[i];
        if ((op->rflags & TXN_RF_BLOB) && oidmap_get(&c->last_gen, op->oid, &last) &&
            last != i + 1) {
            op->rflags &= (uint8_t)~TXN_RF_BLOB;
            op->blob_src = 0;
            op->blob_id = 0;
        }
    }
}

int store__txnq_undo_expand(txnq *q, const txnq_undo_hooks *h, void *ud, zerr *err)
{
    undo_ctx c = {.q = q, .h = h, .ud = ud, .last_gen = OIDMAP_INIT, .failed = OIDMAP_INIT,
                  .err = err};
    int rc = 0;
    q->n_gen = 0;
    for (size_t i = 0; i < q->n_ops; i++)
        q->ops[i].gen_start = q->ops[i].gen_count = 0;
    for (size_t i = 0; !rc && i < q->n_ops; i++)
        if (q->ops[i].type == OP_UNDO)
            rc = undo_txn(&c, &q->ops[i]);
    if (!rc)
        one_blob_per_oid(&c);
    oidmap_free(&c.last_gen);
    oidmap_free(&c.failed);
    free(c.fails);
    return rc;
}
