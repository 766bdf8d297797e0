/* pg_undo.c: transactional undo on PostgreSQL, FileStorage's rules as the
 * LMDB store applies them (undo.c says which, and why): each record R of the
 * undone transaction T becomes a back-pointer to the oid's record before T,
 * or a deletion when T created the object; allowed when the oid's current
 * record is R, points at R, or holds the same pickle; failures per oid,
 * forgiven by a later record of the oid in T; "current" counts the records
 * of transactions undone before T in the same store transaction.
 *
 * It runs inside the vote's database transaction, which holds the locks of
 * every oid T wrote: nothing it reads can change until the commit. */
#include "store/pg.h"

#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"

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
    stpg_txn *t;
    stpg_store *s;
    stpg_conn *c;
    oidmap last_gen;       /* oid -> 1 + index in t->q.gen of its newest record */
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

/* A record fetched with its result, cleared by rec_done. */
typedef struct held_rec {
    stpg_rec r;
    PGresult *res;
} held_rec;

static void rec_done(held_rec *h)
{
    PQclear(h->res);
    h->res = NULL;
}

/* Run a record statement (Q_REC_PREV / Q_REC_CURRENT); 0, ZE_NOTFOUND, <0. */
static int rec_by(undo_ctx *c, stpg_stmt q, uint64_t oid, uint64_t tid, held_rec *h)
{
    stpg_params p = {0};
    stpg_p_id(&p, oid);
    if (q == Q_REC_PREV)
        stpg_p_id(&p, tid);
    h->res = store__pg_exec(c->s, c->c, q, &p, c->err);
    if (!h->res)
        return c->c->rc;
    if (PQntuples(h->res) != 1)
        return ZE_NOTFOUND;
    if (store__pg_rec_decode(h->res, 0, &h->r))
        return zerr_set(c->err, ZE_CORRUPT, "damaged record of oid %016llx",
                        (unsigned long long)oid);
    return 0;
}

/* The oid's current record as FileStorage's _undoDataInfo reads it. */
static int current_link(undo_ctx *c, uint64_t oid, rec_pos r, int *is_r, rec_pos *link)
{
    uint64_t g;
    *is_r = 0;
    if (oidmap_get(&c->last_gen, oid, &g)) {
        const txn_op *op = &c->t->q.gen[g - 1];
        *link = op->kind == STORE_REC_BACKPTR ? (rec_pos){0, op->back_tid, op->back_index}
                                              : (rec_pos){1, 0, 0};
        return 0;
    }
    held_rec h = {0};
    int rc = rec_by(c, Q_REC_CURRENT, oid, 0, &h);
    if (rc == ZE_NOTFOUND)
        rc = zerr_set(c->err, ZE_CORRUPT, "no current record for oid %016llx",
                      (unsigned long long)oid);
    if (!rc) {
        const stpg_rec *cur = &h.r;
        *is_r = same_pos((rec_pos){0, cur->tid, cur->idx}, r);
        *link = cur->kind == STORE_REC_DATA      ? (rec_pos){0, cur->tid, cur->idx}
                : cur->kind == STORE_REC_BACKPTR ? (rec_pos){0, cur->back_tid, cur->back_idx}
                                                 : (rec_pos){1, 0, 0};
    }
    rec_done(&h);
    return rc;
}

/* The DATA record a record stands for, into *h; *found 0 when none. */
static int load_back(undo_ctx *c, uint64_t oid, rec_pos p, held_rec *h, int *found)
{
    *found = 0;
    if (p.absent)
        return 0;
    int rc = store__pg_rec_get(c->s, c->c, oid, p.tid, p.index, &h->r, &h->res, c->err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(c->err, ZE_CORRUPT, "oid %016llx has no record %u in %016llx",
                        (unsigned long long)oid, p.index, (unsigned long long)p.tid);
    if (rc || h->r.kind != STORE_REC_BACKPTR) {
        *found = !rc && h->r.kind == STORE_REC_DATA;
        return rc;
    }
    uint64_t dt = h->r.data_tid;
    uint32_t di = h->r.data_idx;
    rec_done(h);
    if (!dt)
        return 0;
    rc = store__pg_rec_get(c->s, c->c, oid, dt, di, &h->r, &h->res, c->err);
    if (rc == ZE_NOTFOUND || (!rc && h->r.kind != STORE_REC_DATA))
        return zerr_set(c->err, ZE_CORRUPT, "back-pointer of oid %016llx to a missing "
                        "record in %016llx", (unsigned long long)oid, (unsigned long long)dt);
    *found = !rc;
    return rc;
}

/* FileStorage's reason when later data differ from the record undone. */
static const char *later_change(int has_pre)
{
    return has_pre ? "Some data were modified by a later transaction"
                   : "Can't undo an add transaction followed by conflicting transactions.";
}

/* Data that differ from the record undone: the store's resolver may merge
 * the record before it (pre) into the current data (pg_resolve.c), as
 * FileStorage calls conflict resolution; *off, *len then hold the revert's
 * record in t->q.buf (*resolved 1). Records with blobs are not offered. */
static int resolve_revert(undo_ctx *c, uint64_t oid, const stpg_rec *rd, const stpg_rec *cd,
                          rec_pos pre, int *resolved, uint64_t *off, uint32_t *len)
{
    held_rec pd = {0};
    int found;
    if (!c->t->s->opt.resolver.resolve)
        return 0;
    int rc = load_back(c, oid, pre, &pd, &found);
    if (!rc && found && !((rd->flags | cd->flags | pd.r.flags) & STPG_RF_BLOB))
        *resolved = store__txnq_resolve_undo(&c->t->q, oid, (zslice){rd->data, rd->len},
                                             (zslice){cd->data, cd->len},
                                             (zslice){pd.r.data, pd.r.len}, off, len);
    rec_done(&pd);
    return rc;
}

/* Whether R (at r, oid) can be reverted: *why NULL, or FileStorage's reason.
 * A revert that only the resolver makes possible comes back as *resolved 1,
 * its record in t->q.buf at *off, *len. */
static int check_revert(undo_ctx *c, uint64_t oid, rec_pos r, rec_pos pre, const char **why,
                        int *resolved, uint64_t *off, uint32_t *len)
{
    int has_pre = !pre.absent;
    int is_r, found_r, found_c;
    rec_pos link = {1, 0, 0};
    held_rec rd = {0}, cd = {0};
    *why = NULL;
    *resolved = 0;
    int rc = current_link(c, oid, r, &is_r, &link);
    if (rc || is_r || same_pos(link, r))
        return rc;
    uint64_t g;
    if (oidmap_get(&c->last_gen, oid, &g) && c->t->q.gen[g - 1].kind == STORE_REC_DATA) {
        /* An earlier undo's resolved record: not merged again. */
        *why = later_change(has_pre);
        return 0;
    }
    if (!(rc = load_back(c, oid, r, &rd, &found_r)) &&
        !(rc = load_back(c, oid, link, &cd, &found_c))) {
        if (!found_r || !found_c) {
            *why = "_loadBack() failed";
        } else if (rd.r.len != cd.r.len || memcmp(rd.r.data, cd.r.data, rd.r.len)) {
            *why = later_change(has_pre);
            if (has_pre &&
                !(rc = resolve_revert(c, oid, &rd.r, &cd.r, pre, resolved, off, len)) &&
                *resolved)
                *why = NULL;
        }
    }
    rec_done(&rd);
    rec_done(&cd);
    return rc;
}

static txn_op *push_gen(undo_ctx *c)
{
    stpg_txn *t = c->t;
    txn_op *gen = zarray_room(t->q.gen, t->q.n_gen, &t->q.cap_gen, sizeof *gen, 16);
    if (!gen)
        return NULL;
    t->q.gen = gen;
    txn_op *op = &t->q.gen[t->q.n_gen++];
    memset(op, 0, sizeof *op);
    op->type = OP_RECORD;
    return op;
}

/* The revert record: a back-pointer to pre (resolved now), or a deletion.
 * Its blob is the one of the DATA record at the end of pre's chain, shared
 * (the LMDB store copies the file; here the chunks are the same). */
static int push_revert(undo_ctx *c, uint64_t oid, uint64_t pre_tid, const stpg_rec *pre)
{
    txn_op *op = push_gen(c);
    if (!op)
        return nomem(c);
    op->oid = oid;
    op->kind = pre_tid ? STORE_REC_BACKPTR : STORE_REC_DELETE;
    op->state |= OPF_TARGET;
    if (!pre_tid)
        return 0;
    op->back_tid = pre_tid;
    op->back_index = pre->idx;
    op->data_tid = pre->kind == STORE_REC_DATA ? pre_tid : pre->data_tid;
    op->data_index = pre->kind == STORE_REC_DATA ? pre->idx : pre->data_idx;
    held_rec data = {0};
    int found;
    int rc = load_back(c, oid, (rec_pos){0, pre_tid, pre->idx}, &data, &found);
    if (!rc && found && (data.r.flags & STPG_RF_BLOB) && data.r.blob_id) {
        op->rflags |= STPG_RF_BLOB;
        op->blob_id = data.r.blob_id;
    }
    rec_done(&data);
    return rc;
}

/* The revert the resolver made: a DATA record, its pickle in t->q.buf. */
static int push_resolved(undo_ctx *c, uint64_t oid, uint64_t off, uint32_t len)
{
    txn_op *op = push_gen(c);
    if (!op)
        return nomem(c);
    op->oid = oid;
    op->kind = STORE_REC_DATA;
    op->off = off;
    op->len = len;
    op->state |= OPF_TARGET;
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

static void forgive(undo_ctx *c, uint64_t oid)
{
    uint64_t i;
    if (oidmap_get(&c->failed, oid, &i)) {
        c->fails[i - 1].why = NULL;
        oidmap_del(&c->failed, oid);
    }
}

/* Record r of T: its revert record, or a failure. */
static int undo_record(undo_ctx *c, uint64_t T, const stpg_rec *r, uint64_t oid)
{
    held_rec pre = {0};
    uint64_t pre_tid = 0;
    const char *why;
    forgive(c, oid);
    int rc = 0;
    if (!(r->flags & STPG_RF_PREV_ZERO)) {
        rc = rec_by(c, Q_REC_PREV, oid, T, &pre);
        if (!rc && !(pre.r.flags & STPG_RF_HIDDEN))
            pre_tid = pre.r.tid;
        if (rc == ZE_NOTFOUND)
            rc = 0;
    }
    int resolved = 0;
    uint64_t off = 0;
    uint32_t len = 0;
    rec_pos pre_pos = {pre_tid == 0, pre_tid, pre_tid ? pre.r.idx : 0};
    if (!rc)
        rc = check_revert(c, oid, (rec_pos){0, T, r->idx}, pre_pos, &why, &resolved, &off,
                          &len);
    if (!rc && resolved)
        rc = push_resolved(c, oid, off, len);
    else if (!rc)
        rc = why ? add_failure(c, oid, why) : push_revert(c, oid, pre_tid, &pre.r);
    rec_done(&pre);
    return rc;
}

static int report_failures(undo_ctx *c, uint64_t T)
{
    const undo_fail *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->n_fails; i++)
        if (c->fails[i].why && n++ == 0)
            first = &c->fails[i];
    if (!first)
        return 0;
    stpg_txn *t = c->t;
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

static int note_records(undo_ctx *c, size_t from)
{
    stpg_txn *t = c->t;
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

/* T's status must be ' '; its records, in order, into *res. */
static int undone_records(undo_ctx *c, uint64_t T, PGresult **res)
{
    stpg_params p = {0};
    stpg_p_id(&p, T);
    PGresult *r = store__pg_exec(c->s, c->c, Q_TXN_GET, &p, c->err);
    if (!r)
        return c->c->rc;
    int n = PQntuples(r);
    char status = n ? PQgetvalue(r, 0, 1)[0] : 0;
    PQclear(r);
    if (!n)
        return zerr_set(c->err, ZE_UNDO, "no transaction %016llx to undo", (unsigned long long)T);
    if (status != ' ')
        return zerr_set(c->err, ZE_UNDO, "transaction %016llx is not undoable (status '%c')",
                        (unsigned long long)T, status);
    *res = store__pg_query(c->s, c->c, "SELECT tid, idx, kind, flags, back_tid, back_idx, "
                           "data_tid, data_idx, blob_id, NULL::bytea, oid FROM zeolite.records "
                           "WHERE tid = $1::bigint ORDER BY idx", &p, c->err);
    return *res ? 0 : c->c->rc;
}

static int undo_txn(undo_ctx *c, txn_op *uop)
{
    uint64_t T = uop->serial;
    PGresult *recs = NULL;
    int rc = undone_records(c, T, &recs);
    if (rc)
        return rc;
    uop->gen_start = (uint32_t)c->t->q.n_gen;
    c->n_fails = 0;
    oidmap_clear(&c->failed);
    for (int i = 0; i < PQntuples(recs) && !rc; i++) {
        stpg_rec r;
        if (store__pg_rec_decode(recs, i, &r))
            rc = zerr_set(c->err, ZE_CORRUPT, "damaged record %d of %016llx", i,
                          (unsigned long long)T);
        else
            rc = undo_record(c, T, &r, stpg_get_id(PQgetvalue(recs, i, 10)));
    }
    PQclear(recs);
    if (rc || (rc = report_failures(c, T)) || (rc = note_records(c, uop->gen_start)))
        return rc;
    uop->gen_count = (uint32_t)(c->t->q.n_gen - uop->gen_start);
    return 0;
}

/* Of an undo's records of one oid only the last carries the blob. */
static void one_blob_per_oid(undo_ctx *c)
{
    stpg_txn *t = c->t;
    for (size_t i = 0; i < t->q.n_gen; i++) {
        uint64_t last = 0;
        txn_op *op = &t->q.gen[i];
        if ((op->rflags & STPG_RF_BLOB) && oidmap_get(&c->last_gen, op->oid, &last) &&
            last != i + 1) {
            op->rflags &= (uint8_t)~STPG_RF_BLOB;
            op->blob_id = 0;
        }
    }
}

int store__pg_undo_expand(stpg_txn *t, zerr *err)
{
    undo_ctx c = {.t = t, .s = t->s, .c = t->conn, .last_gen = OIDMAP_INIT,
                  .failed = OIDMAP_INIT, .err = err};
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
