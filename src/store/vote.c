/* vote.c: checking a transaction against committed data and against
 * transactions handed to the writer but not yet durable. */
#include "store/index.h"
#include "store/txn.h"

#include <stdlib.h>

/* What the vote reads of each checked op's oid: cur[i] its current tid
 * (0 = no record); known[i] 1 when found in the pending overlay. */
typedef struct lookup {
    uint64_t *cur;
    uint8_t *known;
} lookup;

static int checked(const txn_op *op) { return store__txnq_checked(op); }

/* Overlay first, then a snapshot begun after it: a commit that left the
 * overlay before this point is durable, so the snapshot sees it. */
static void overlay_lookup(store_txn *t, lookup *lk)
{
    store *s = t->s;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (checked(&t->q.ops[i]))
            lk->known[i] = (uint8_t)oidmap_get(&s->pending, t->q.ops[i].oid, &lk->cur[i]);
    pthread_mutex_unlock(&s->mu);
}

/* A back-pointer whose target should be in the snapshot must find it there,
 * so that commit cannot fail on it. Targets committed after the snapshot
 * (pending, or in an open bulk write) are checked when written. */
static int check_backptrs(store_txn *t, st_view *v, zerr *err)
{
    int rc;
    for (size_t i = 0; i < t->q.n_ops; i++) {
        const txn_op *op = &t->q.ops[i];
        st_rec rec;
        if (op->type != OP_RECORD || op->kind != STORE_REC_BACKPTR || op->back_tid > v->last)
            continue;
        rc = store__rec_get(v, op->oid, op->back_tid, op->back_index, &rec, err);
        if (rc == ZE_NOTFOUND)
            return store__txnq_no_target(op, err);
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
static int current_tids(store_txn *t, st_view *v, lookup *lk, zerr *err)
{
    size_t n = 0;
    uint64_t *cur = lk->cur;
    oid_at *at = malloc((t->q.n_ops ? t->q.n_ops : 1) * sizeof *at);
    if (!at)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (checked(&t->q.ops[i]) && !lk->known[i])
            at[n++] = (oid_at){t->q.ops[i].oid, i};
    int rc = store__sort_by_key(at, n, sizeof *at);
    if (rc)
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t j = 0; !rc && j < n; j++) {
        st_ent e;
        uint64_t next;
        if (j && at[j].oid == at[j - 1].oid) {
            cur[at[j].op] = cur[at[j - 1].op];
            continue;
        }
        rc = store__view_find(v, at[j].oid, UINT64_MAX, &e, &next, err);
        cur[at[j].op] = rc ? 0 : e.tid;
        rc = rc == ZE_NOTFOUND || rc == ZE_NOREV ? 0 : rc;
    }
    free(at);
    return rc;
}

static int snapshot_lookup(store_txn *t, lookup *lk, zerr *err)
{
    store *s = t->s;
    st_view v;
    store__map_enter(s);
    int rc = store__view_begin(s, &v, err);
    if (!rc)
        rc = current_tids(t, &v, lk, err);
    if (!rc)
        rc = check_backptrs(t, &v, err);
    if (!rc && t->q.has_undo)
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

int store__lmdb_txn_vote(store_txn *t, store_vote_result *res, zerr *err)
{
    int rc = store__txnq_vote_start(&t->q, res, err);
    if (rc)
        return rc;
    if (t->q.has_undo)
        wait_drained(t->s);   /* undo compares data of committed records */
    size_t n = t->q.n_ops ? t->q.n_ops : 1;
    lookup lk = {calloc(n, sizeof *lk.cur), calloc(n, sizeof *lk.known)};
    if (!lk.cur || !lk.known) {
        free(lk.cur);
        free(lk.known);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    overlay_lookup(t, &lk);
    rc = snapshot_lookup(t, &lk, err);
    if (!rc) {
        store__txnq_resolve_stores(&t->q, lk.cur);
        rc = store__txnq_judge(&t->q, lk.cur, err);
    }
    free(lk.cur);
    free(lk.known);
    store__resolve_end(t);
    return store__txnq_vote_end(&t->q, rc, res, err);
}
