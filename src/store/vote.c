/* vote.c: checking a transaction against committed data and against
 * transactions handed to the writer but not yet durable. */
#include "store/index.h"
#include "store/txn.h"

#include <stdlib.h>

#include "common/zarray.h"

/* Current serial of each checked op's oid: 0 = no record. */
typedef struct cur_tid {
    uint64_t tid;
    int known;     /* found in the pending overlay */
} cur_tid;

static int checked(const txn_op *op)
{
    return (op->type == OP_STORE || op->type == OP_CHECK || op->type == OP_DELETE) &&
           !(op->state & OPF_DROPPED);
}

/* Overlay first, then a snapshot begun after it: a commit that left the
 * overlay before this point is durable, so the snapshot sees it. */
static void overlay_lookup(store_txn *t, cur_tid *cur)
{
    store *s = t->s;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < t->n_ops; i++)
        if (checked(&t->ops[i]))
            cur[i].known = oidmap_get(&s->pending, t->ops[i].oid, &cur[i].tid);
    pthread_mutex_unlock(&s->mu);
}

/* A back-pointer whose target should be in the snapshot must find it there,
 * so that commit cannot fail on it. Targets committed after the snapshot
 * (pending, or in an open bulk write) are checked when written. */
static int check_backptrs(store_txn *t, st_view *v, zerr *err)
{
    int rc;
    for (size_t i = 0; i < t->n_ops; i++) {
        const txn_op *op = &t->ops[i];
        st_rec rec;
        if (op->type != OP_RECORD || op->kind != STORE_REC_BACKPTR || op->back_tid > v->last)
            continue;
        rc = store__rec_get(v, op->oid, op->back_tid, op->back_index, &rec, err);
        if (rc == ZE_NOTFOUND)
            return zerr_set(err, ZE_NOTFOUND, "back-pointer of oid %016llx to transaction "
                            "%016llx, which has no such record", (unsigned long long)op->oid,
                            (unsigned long long)op->back_tid);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct oid_at {
    uint64_t oid;
    size_t op;
} oid_at;

/* The current tid of every checked op not found in the overlay, looked up
 * in oid order with one cursor (neighbouring oids share index pages), each
 * oid once. */
static int current_tids(store_txn *t, st_view *v, cur_tid *cur, zerr *err)
{
    size_t n = 0;
    oid_at *at = malloc((t->n_ops ? t->n_ops : 1) * sizeof *at);
    if (!at)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < t->n_ops; i++)
        if (checked(&t->ops[i]) && !cur[i].known)
            at[n++] = (oid_at){t->ops[i].oid, i};
    int rc = store__sort_by_key(at, n, sizeof *at);
    if (rc)
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t j = 0; !rc && j < n; j++) {
        st_ent e;
        uint64_t next;
        if (j && at[j].oid == at[j - 1].oid) {
            cur[at[j].op].tid = cur[at[j - 1].op].tid;
            continue;
        }
        rc = store__view_find(v, at[j].oid, UINT64_MAX, &e, &next, err);
        cur[at[j].op].tid = rc ? 0 : e.tid;
        rc = rc == ZE_NOTFOUND || rc == ZE_NOREV ? 0 : rc;
    }
    free(at);
    return rc;
}

static int snapshot_lookup(store_txn *t, cur_tid *cur, zerr *err)
{
    store *s = t->s;
    st_view v;
    store__map_enter(s);
    int rc = store__view_begin(s, &v, err);
    if (!rc)
        rc = current_tids(t, &v, cur, err);
    if (!rc)
        rc = check_backptrs(t, &v, err);
    if (!rc && t->has_undo)
        rc = store__undo_expand(t, &v, err);
    store__view_end(&v);
    store__map_leave(s);
    return rc;
}

static void wait_drained(store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->n_pending)
        pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static int add_conflict(store_txn *t, const txn_op *op, uint64_t committed, zerr *err)
{
    store_conflict *c =
        zarray_room(t->conflicts, t->n_conflicts, &t->cap_conflicts, sizeof *c, 8);
    if (!c)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->conflicts = c;
    c = &t->conflicts[t->n_conflicts++];
    *c = (store_conflict){.oid = op->oid, .committed = committed, .expected = op->serial,
                          .read_conflict = op->type == OP_CHECK,
                          .delete_conflict = op->type == OP_DELETE};
    /* The data's offset for now; slices are set once conflict_data stops moving. */
    c->data.len = op->len;
    c->data.p = (const uint8_t *)(uintptr_t)t->conflict_data.len;
    if (op->type != OP_STORE)
        return 0;
    if (zbuf_reserve(&t->conflict_data, op->len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int rc = txnbuf_read(&t->buf, op->off, op->len,
                         t->conflict_data.data + t->conflict_data.len, err);
    if (!rc)
        t->conflict_data.len += op->len;
    return rc;
}

static void fix_conflict_slices(store_txn *t)
{
    for (size_t i = 0; i < t->n_conflicts; i++) {
        store_conflict *c = &t->conflicts[i];
        size_t off = (size_t)(uintptr_t)c->data.p;
        c->data.p = c->data.len ? t->conflict_data.data + off : NULL;
    }
}

/* Stores that would conflict go to the store's resolver first (resolve.c):
 * a resolved one then holds the current serial. */
static void resolve_stores(store_txn *t, const cur_tid *cur)
{
    if (!t->s->opt.resolver.resolve)
        return;
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].type == OP_STORE && checked(&t->ops[i]) && t->ops[i].serial != cur[i].tid)
            store__resolve_store(t, &t->ops[i], cur[i].tid);
}

/* Objects the transaction creates: oids with no record anywhere that it
 * stores (each once: its last store counts). Its locks keep that true
 * until the commit. */
static uint64_t count_new(const store_txn *t, const cur_tid *cur)
{
    uint64_t n = 0, last;
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].type == OP_STORE && checked(&t->ops[i]) && !cur[i].tid &&
            oidmap_get(&t->last_store, t->ops[i].oid, &last) && last == i + 1)
            n++;
    return n;
}

/* Judge each checked op; unresolvable conflicts win over resolvable ones. */
static int judge(store_txn *t, const cur_tid *cur, zerr *err)
{
    int hard = 0, rc = 0;
    t->new_objects = count_new(t, cur);
    for (size_t i = 0; i < t->n_ops && !rc; i++) {
        txn_op *op = &t->ops[i];
        op->state &= (uint8_t)~OPF_CONFLICT;
        if (!checked(op))
            continue;
        if (op->type == OP_DELETE && !cur[i].tid) {
            rc = zerr_set(err, ZE_NOTFOUND, "delete of oid %016llx, which does not exist",
                          (unsigned long long)op->oid);
            break;
        }
        if (op->serial == cur[i].tid)
            continue;
        if (op->type == OP_STORE)
            op->state |= OPF_CONFLICT;
        if ((rc = add_conflict(t, op, cur[i].tid, err)))
            break;
        if (op->type == OP_STORE || hard)
            continue;
        hard = op->type == OP_CHECK ? ZE_READCONFLICT : ZE_CONFLICT;
        zerr_set(err, hard, "%s conflict on oid %016llx: committed serial %016llx, "
                 "transaction read %016llx", op->type == OP_CHECK ? "read" : "delete",
                 (unsigned long long)op->oid, (unsigned long long)cur[i].tid,
                 (unsigned long long)op->serial);
    }
    fix_conflict_slices(t);
    if (rc)
        return rc;
    if (hard)
        return hard;
    if (t->n_conflicts) {
        const store_conflict *c = &t->conflicts[0];
        return zerr_set(err, ZE_CONFLICT, "%zu write conflict(s), first on oid %016llx: "
                        "committed serial %016llx, transaction had %016llx",
                        t->n_conflicts, (unsigned long long)c->oid,
                        (unsigned long long)c->committed, (unsigned long long)c->expected);
    }
    return 0;
}

int store__lmdb_txn_vote(store_txn *t, store_vote_result *res, zerr *err)
{
    store_vote_result none;
    if (!res)
        res = &none;
    memset(res, 0, sizeof *res);
    if (t->state != TXN_OPEN)
        return zerr_set(err, ZE_TXN, "vote of a transaction that is not open");
    if (t->has_undo)
        wait_drained(t->s);   /* undo compares data of committed records */
    t->n_conflicts = 0;
    zbuf_reset(&t->conflict_data);
    t->n_changed = 0;
    t->n_undo_failures = 0;
    t->n_undo_resolved = 0;
    cur_tid *cur = calloc(t->n_ops ? t->n_ops : 1, sizeof *cur);
    if (!cur)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    overlay_lookup(t, cur);
    int rc = snapshot_lookup(t, cur, err);
    if (!rc) {
        resolve_stores(t, cur);
        rc = judge(t, cur, err);
    }
    free(cur);
    int lrc = store__resolve_end(t, err);
    if (!rc)
        rc = lrc;
    res->conflicts = t->conflicts;
    res->n_conflicts = t->n_conflicts;
    res->changed = t->changed;
    res->n_changed = t->n_changed;
    res->undo_failures = t->undo_failures;
    res->n_undo_failures = t->n_undo_failures;
    res->resolved = t->resolved;
    res->n_resolved = t->n_resolved;
    res->n_undo_resolved = t->n_undo_resolved;
    if (!rc)
        t->state = TXN_VOTED;
    return rc;
}
