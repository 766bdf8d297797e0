/* txnq.c: a transaction's queue and the vote's decisions, for both backends
 * (txnq.h says what is here and what stays in the backends). */
#include "store/txnq.h"

#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"
#include "common/ztid.h"

static txnq *q_of(store_txn *t) { return store__txnq_of(t); }

/* ---- begin, abort, free --------------------------------------------------- */

int store__txnq_check_meta(const store_txn_meta *meta, uint64_t last_tid, zerr *err)
{
    if (meta->user_len > STORE_META_MAX || meta->description_len > STORE_META_MAX ||
        meta->extension_len > STORE_META_MAX)
        return zerr_set(err, ZE_TOOBIG, "transaction user, description or extension "
                        "over %d bytes", STORE_META_MAX);
    char status = meta->status ? meta->status : ' ';
    if (status != ' ' && status != 'p')
        return zerr_set(err, ZE_INVAL, "transaction status 0x%02x is not ' ' or 'p'",
                        (unsigned char)status);
    if (meta->tid && meta->tid <= last_tid)
        return zerr_set(err, ZE_INVAL, "tid %016llx is not after the last tid",
                        (unsigned long long)meta->tid);
    uint64_t after;
    if (meta->tid && ztid_later(meta->tid, meta->tid, &after))
        return zerr_set(err, ZE_INVAL, "tid %016llx: no tid can follow it, so nothing "
                        "could commit after it", (unsigned long long)meta->tid);
    return 0;
}

int store__txnq_init(txnq *q, const store_ops *be, const txnq_hooks *hooks,
                     const store_txn_meta *meta, const store_resolver *resolver,
                     uint32_t max_record, int tmp_fd, const char *tmp_shown, zerr *err)
{
    q->be = be;
    q->hooks = hooks;
    q->resolver = resolver;
    q->max_record = max_record;
    q->state = TXN_OPEN;
    q->status = meta->status ? meta->status : ' ';
    q->explicit_tid = meta->tid != 0;
    txnbuf_init(&q->buf, tmp_fd, tmp_shown, TXNBUF_SPILL);
    if (zbuf_append(&q->meta, meta->user, meta->user_len) ||
        zbuf_append(&q->meta, meta->description, meta->description_len) ||
        zbuf_append(&q->meta, meta->extension, meta->extension_len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    q->ulen = meta->user_len;
    q->dlen = meta->description_len;
    q->elen = meta->extension_len;
    return 0;
}

static void drop_blobs(txnq *q)
{
    for (size_t i = 0; i < q->n_ops; i++)
        if (q->ops[i].blob) {
            q->hooks->blob_discard(q, q->ops[i].blob, !!(q->ops[i].state & OPF_BLOB_LINKED));
            free(q->ops[i].blob);
            q->ops[i].blob = NULL;
        }
}

void store__txnq_abort(txnq *q)
{
    drop_blobs(q);
    txnbuf_free(&q->buf);
    q->n_ops = 0;
    q->n_gen = 0;
    q->state = TXN_ABORTED;
}

void store__txnq_deinit(txnq *q)
{
    if (q->state != TXN_DONE)
        drop_blobs(q);
    for (size_t i = 0; i < q->n_ops; i++)
        free(q->ops[i].blob);
    txnbuf_free(&q->buf);
    zbuf_free(&q->meta);
    free(q->ops);
    free(q->gen);
    oidmap_free(&q->last_store);
    oidmap_free(&q->seen);
    free(q->oids);
    free(q->conflicts);
    zbuf_free(&q->conflict_data);
    free(q->changed);
    free(q->undo_failures);
    free(q->resolved);
}

/* ---- queueing ------------------------------------------------------------- */

static int check_open(txnq *q, zerr *err)
{
    if (q->state != TXN_OPEN)
        return zerr_set(err, ZE_TXN, "transaction is not open for new operations");
    return 0;
}

/* Append an op (zeroed but for type and oid); NULL when out of memory. */
static txn_op *push_op(txnq *q, int type, uint64_t oid, zerr *err)
{
    txn_op *ops = zarray_room(q->ops, q->n_ops, &q->cap_ops, sizeof *ops, 16);
    if (!ops) {
        zerr_set(err, ZE_NOMEM, "out of memory");
        return NULL;
    }
    q->ops = ops;
    txn_op *op = &q->ops[q->n_ops];
    memset(op, 0, sizeof *op);
    op->type = (uint8_t)type;
    op->oid = oid;
    return op;
}

static int buffer_data(txnq *q, txn_op *op, const void *data, size_t len, zerr *err)
{
    if (len == 0)
        return zerr_set(err, ZE_INVAL, "empty record for oid %016llx",
                        (unsigned long long)op->oid);
    if (len > q->max_record)
        return zerr_set(err, ZE_TOOBIG, "record of %zu bytes for oid %016llx is over "
                        "the %u-byte limit", len, (unsigned long long)op->oid, q->max_record);
    op->len = (uint32_t)len;
    return txnbuf_append(&q->buf, data, len, &op->off, err);
}

/* Queue blob_path for op, checked now so that a file refused or missing
 * fails where it is queued, not at commit. */
static int take_blob(txnq *q, txn_op *op, const char *blob_path, int linked_ok, zerr *err)
{
    if (!blob_path)
        return 0;
    int rc = q->hooks->blob_check(q, blob_path, linked_ok, op->oid, err);
    if (rc)
        return rc;
    if (linked_ok)
        op->state |= OPF_BLOB_LINKED;
    op->blob = strdup(blob_path);
    if (!op->blob)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    op->rflags |= TXN_RF_BLOB;
    return 0;
}

static int add_store(txnq *q, uint64_t oid, uint64_t serial, const void *data, size_t len,
                     const char *blob_path, zerr *err)
{
    int rc = check_open(q, err);
    if (rc)
        return rc;
    txn_op *op = push_op(q, OP_STORE, oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = STORE_REC_DATA;
    op->serial = serial;
    uint64_t prev = 0;
    oidmap_get(&q->last_store, oid, &prev);
    if ((rc = buffer_data(q, op, data, len, err)) || (rc = take_blob(q, op, blob_path, 0, err)))
        goto fail;
    if (oidmap_put(&q->last_store, oid, q->n_ops + 1)) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
        goto fail;
    }
    /* A store after a conflict on the oid is the client's resolution: it
     * replaces the conflicting store, which must not be checked again. */
    if (prev && (q->ops[prev - 1].state & OPF_CONFLICT))
        q->ops[prev - 1].state |= OPF_DROPPED;
    q->n_ops++;
    return 0;
fail:
    free(op->blob);
    op->blob = NULL;
    return rc;
}

int store__txnq_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len,
                      zerr *err)
{
    return add_store(q_of(t), oid, serial, data, len, NULL, err);
}

int store__txnq_store_blob(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                           size_t len, const char *blob_path, zerr *err)
{
    if (!blob_path)
        return zerr_set(err, ZE_INVAL, "store_blob without a blob file");
    return add_store(q_of(t), oid, serial, data, len, blob_path, err);
}

static int add_simple(txnq *q, int type, int kind, uint64_t oid, uint64_t serial, zerr *err)
{
    int rc = check_open(q, err);
    if (rc)
        return rc;
    txn_op *op = push_op(q, type, oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)kind;
    op->serial = serial;
    q->n_ops++;
    return 0;
}

int store__txnq_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(q_of(t), OP_CHECK, 0, oid, serial, err);
}

int store__txnq_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(q_of(t), OP_DELETE, STORE_REC_DELETE, oid, serial, err);
}

int store__txnq_undo(store_txn *t, uint64_t undo_tid, zerr *err)
{
    int rc = add_simple(q_of(t), OP_UNDO, 0, 0, undo_tid, err);
    if (!rc)
        q_of(t)->has_undo = 1;
    return rc;
}

int store__txnq_restore_record(store_txn *t, const store_record *rec, const char *blob_path,
                               zerr *err)
{
    txnq *q = q_of(t);
    int rc = check_open(q, err);
    if (rc)
        return rc;
    if (rec->kind != STORE_REC_DATA && rec->kind != STORE_REC_BACKPTR &&
        rec->kind != STORE_REC_DELETE)
        return zerr_set(err, ZE_INVAL, "record kind %d", (int)rec->kind);
    if (rec->kind == STORE_REC_BACKPTR && !rec->back_tid)
        return zerr_set(err, ZE_INVAL, "back-pointer without a target");
    txn_op *op = push_op(q, OP_RECORD, rec->oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)rec->kind;
    op->rflags = rec->prev_zero ? TXN_RF_PREV_ZERO : 0;
    op->back_tid = rec->back_tid;
    op->back_index = rec->back_index;
    if (rec->kind == STORE_REC_DATA &&
        (rc = buffer_data(q, op, rec->data.p, rec->data.len, err)))
        return rc;
    if ((rc = take_blob(q, op, blob_path, 1, err)))
        return rc;
    if (rec->kind == STORE_REC_BACKPTR && !blob_path)
        op->rflags |= rec->has_blob ? TXN_RF_BLOB : 0;
    q->n_ops++;
    return 0;
}

const txn_op *store__txnq_next_rec(const txnq *q, txn_rec_it *it)
{
    while (it->op < q->n_ops) {
        const txn_op *op = &q->ops[it->op];
        if (op->type == OP_UNDO) {
            if (it->gen < op->gen_count)
                return &q->gen[op->gen_start + it->gen++];
            it->gen = 0;
            it->op++;
            continue;
        }
        it->op++;
        if (op->type != OP_CHECK && !(op->state & OPF_DROPPED))
            return op;
    }
    return NULL;
}

int store__txnq_each_oid(store_txn *t, store_lock_cb cb, void *ud)
{
    txnq *q = q_of(t);
    for (size_t i = 0; i < q->n_ops; i++) {
        if (q->ops[i].type == OP_UNDO)
            continue;
        int rc = cb(q->ops[i].oid, q->ops[i].type != OP_CHECK, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int store__txnq_exclusive(store_txn *t)
{
    return q_of(t)->has_undo || q_of(t)->explicit_tid;
}

const uint64_t *store__txnq_oids(store_txn *t, size_t *n)
{
    txnq *q = q_of(t);
    size_t count = 0;
    txn_rec_it it = {0, 0};
    while (store__txnq_next_rec(q, &it))
        count++;
    uint64_t *oids = realloc(q->oids, (count ? count : 1) * sizeof *oids);
    if (!oids) {
        *n = 0;
        return NULL;
    }
    q->oids = oids;
    q->n_oids = 0;
    oidmap_clear(&q->seen);
    it = (txn_rec_it){0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(q, &it));) {
        uint64_t dummy;
        if (oidmap_get(&q->seen, op->oid, &dummy))
            continue;
        if (oidmap_put(&q->seen, op->oid, 1))
            break;
        q->oids[q->n_oids++] = op->oid;
    }
    *n = q->n_oids;
    return q->oids;
}

/* ---- the vote's decisions --------------------------------------------------- */

int store__txnq_checked(const txn_op *op)
{
    return (op->type == OP_STORE || op->type == OP_CHECK || op->type == OP_DELETE) &&
           !(op->state & OPF_DROPPED);
}

int store__txnq_no_target(const txn_op *op, zerr *err)
{
    return zerr_set(err, ZE_NOTFOUND, "back-pointer of oid %016llx to transaction %016llx, "
                    "which has no such record", (unsigned long long)op->oid,
                    (unsigned long long)op->back_tid);
}

int store__txnq_vote_start(txnq *q, store_vote_result *res, zerr *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (q->state != TXN_OPEN)
        return zerr_set(err, ZE_TXN, "vote of a transaction that is not open");
    q->n_conflicts = 0;
    zbuf_reset(&q->conflict_data);
    q->n_changed = 0;
    q->n_undo_failures = 0;
    q->n_undo_resolved = 0;
    return 0;
}

/* Run the resolver; 1 with the resolved record appended to q->buf at
 * *off, *len. */
static int run_resolver(txnq *q, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                        uint64_t *off, uint32_t *len)
{
    return store__resolver_run(q->resolver, q->max_record, &q->buf, oid, old, committed,
                               new_rec, off, len);
}

/* One store whose serial is not the oid's current one (committed): only
 * the oid's last store, without a blob, of an object that exists and that
 * the client read. */
static void resolve_store(txnq *q, txn_op *op, uint64_t committed)
{
    const store_resolver *rv = q->resolver;
    uint64_t last = 0;
    if (op->blob || !committed || !op->serial || !oidmap_get(&q->last_store, op->oid, &last) ||
        last != (uint64_t)(op - q->ops) + 1)
        return;
    zbuf new_rec = ZBUF_INIT, cur = ZBUF_INIT, old = ZBUF_INIT;
    const uint8_t *p;
    uint64_t off;
    uint32_t len;
    int ok = txnbuf_view(&q->buf, op->off, op->len, &new_rec, &p, NULL) == 0 &&
             (!rv->known || rv->known(rv->data, p, op->len) == 1);
    /* The view may live in new_rec: keep a copy before q->buf grows. */
    if (ok && p != new_rec.data)
        ok = zbuf_set(&new_rec, p, op->len) == 0;
    ok = ok && q->hooks->revision(q, op->oid, committed, 1, &cur) &&
         q->hooks->revision(q, op->oid, op->serial, 0, &old) &&
         run_resolver(q, op->oid, (zslice){old.data, old.len}, (zslice){cur.data, cur.len},
                      (zslice){new_rec.data, new_rec.len}, &off, &len);
    zbuf_free(&new_rec);
    zbuf_free(&cur);
    zbuf_free(&old);
    if (!ok)
        return;
    op->off = off;
    op->len = len;
    op->serial = committed;
    op->state |= OPF_RESOLVED;
}

void store__txnq_resolve_stores(txnq *q, const uint64_t *cur)
{
    if (!q->resolver->resolve)
        return;
    for (size_t i = 0; i < q->n_ops; i++)
        if (q->ops[i].type == OP_STORE && store__txnq_checked(&q->ops[i]) &&
            q->ops[i].serial != cur[i])
            resolve_store(q, &q->ops[i], cur[i]);
}

int store__txnq_resolve_undo(txnq *q, uint64_t oid, zslice undone, zslice current, zslice pre,
                             uint64_t *off, uint32_t *len)
{
    const store_resolver *rv = q->resolver;
    if (!rv->resolve || (rv->known && rv->known(rv->data, pre.p, pre.len) != 1) ||
        !run_resolver(q, oid, undone, current, pre, off, len))
        return 0;
    q->n_undo_resolved++;
    return 1;
}

static int add_conflict(txnq *q, const txn_op *op, uint64_t committed, zerr *err)
{
    store_conflict *c =
        zarray_room(q->conflicts, q->n_conflicts, &q->cap_conflicts, sizeof *c, 8);
    if (!c)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    q->conflicts = c;
    c = &q->conflicts[q->n_conflicts++];
    *c = (store_conflict){.oid = op->oid, .committed = committed, .expected = op->serial,
                          .read_conflict = op->type == OP_CHECK,
                          .delete_conflict = op->type == OP_DELETE};
    /* The data's offset for now; slices are set once conflict_data stops moving. */
    c->data.len = op->len;
    c->data.p = (const uint8_t *)(uintptr_t)q->conflict_data.len;
    if (op->type != OP_STORE)
        return 0;
    if (zbuf_reserve(&q->conflict_data, op->len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int rc = txnbuf_read(&q->buf, op->off, op->len,
                         q->conflict_data.data + q->conflict_data.len, err);
    if (!rc)
        q->conflict_data.len += op->len;
    return rc;
}

static void fix_conflict_slices(txnq *q)
{
    for (size_t i = 0; i < q->n_conflicts; i++) {
        store_conflict *c = &q->conflicts[i];
        size_t off = (size_t)(uintptr_t)c->data.p;
        c->data.p = c->data.len ? q->conflict_data.data + off : NULL;
    }
}

/* Objects the transaction creates: oids with no record anywhere that it
 * stores (each once: its last store counts, which is never dropped). The
 * backend's locks keep that true until the commit. */
static uint64_t count_new(const txnq *q, const uint64_t *cur)
{
    uint64_t n = 0, last;
    for (size_t i = 0; i < q->n_ops; i++)
        if (q->ops[i].type == OP_STORE && store__txnq_checked(&q->ops[i]) && !cur[i] &&
            oidmap_get(&q->last_store, q->ops[i].oid, &last) && last == i + 1)
            n++;
    return n;
}

/* Unresolvable conflicts win over resolvable ones. */
int store__txnq_judge(txnq *q, const uint64_t *cur, zerr *err)
{
    int hard = 0, rc = 0;
    q->new_objects = count_new(q, cur);
    for (size_t i = 0; i < q->n_ops && !rc; i++) {
        txn_op *op = &q->ops[i];
        op->state &= (uint8_t)~OPF_CONFLICT;
        if (!store__txnq_checked(op))
            continue;
        if (op->type == OP_DELETE && !cur[i]) {
            rc = zerr_set(err, ZE_NOTFOUND, "delete of oid %016llx, which does not exist",
                          (unsigned long long)op->oid);
            break;
        }
        if (op->serial == cur[i])
            continue;
        if (op->type == OP_STORE)
            op->state |= OPF_CONFLICT;
        if ((rc = add_conflict(q, op, cur[i], err)))
            break;
        if (op->type == OP_STORE || hard)
            continue;
        hard = op->type == OP_CHECK ? ZE_READCONFLICT : ZE_CONFLICT;
        zerr_set(err, hard, "%s conflict on oid %016llx: committed serial %016llx, "
                 "transaction read %016llx", op->type == OP_CHECK ? "read" : "delete",
                 (unsigned long long)op->oid, (unsigned long long)cur[i],
                 (unsigned long long)op->serial);
    }
    fix_conflict_slices(q);
    if (rc)
        return rc;
    if (hard)
        return hard;
    if (q->n_conflicts) {
        const store_conflict *c = &q->conflicts[0];
        return zerr_set(err, ZE_CONFLICT, "%zu write conflict(s), first on oid %016llx: "
                        "committed serial %016llx, transaction had %016llx",
                        q->n_conflicts, (unsigned long long)c->oid,
                        (unsigned long long)c->committed, (unsigned long long)c->expected);
    }
    return 0;
}

static int list_resolved(txnq *q, zerr *err)
{
    q->n_resolved = 0;
    for (size_t i = 0; i < q->n_ops; i++) {
        if (!(q->ops[i].state & OPF_RESOLVED))
            continue;
        uint64_t *r = zarray_room(q->resolved, q->n_resolved, &q->cap_resolved, sizeof *r, 8);
        if (!r)
            return zerr_set(err, ZE_NOMEM, "out of memory");
        q->resolved = r;
        q->resolved[q->n_resolved++] = q->ops[i].oid;
    }
    return 0;
}

int store__txnq_vote_end(txnq *q, int rc, store_vote_result *res, zerr *err)
{
    int lrc = list_resolved(q, err);
    if (!rc)
        rc = lrc;
    if (res) {
        res->conflicts = q->conflicts;
        res->n_conflicts = q->n_conflicts;
        res->changed = q->changed;
        res->n_changed = q->n_changed;
        res->undo_failures = q->undo_failures;
        res->n_undo_failures = q->n_undo_failures;
        res->resolved = q->resolved;
        res->n_resolved = q->n_resolved;
        res->n_undo_resolved = q->n_undo_resolved;
    }
    if (!rc)
        q->state = TXN_VOTED;
    return rc;
}
