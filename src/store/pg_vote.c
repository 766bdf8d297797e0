/* pg_vote.c: the vote on PostgreSQL.
 *
 * The vote opens the transaction's database transaction (on a connection of
 * the write pool, kept until commit or abort) and takes the oids' advisory
 * locks in it: exclusive for the oids it writes, shared for those it only
 * checks, in ascending oid order, each waiting at most lock_timeout. Once an
 * oid's lock is held, no other transaction, of this process or another, can
 * commit it, so what the vote reads next (each oid's current tid, the
 * back-pointers' targets, what an undo reverts) stays true until this
 * transaction commits or aborts. A vote that finds resolvable conflicts
 * keeps the locks while the client resolves (store.h: STORE_CONFLICT_HOLD);
 * any other failure ends the database transaction. */
#include "store/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"

static stpg_txn *tx(store_txn *t) { return (stpg_txn *)(void *)t; }

static int checked(const txn_op *op) { return store__txnq_checked(op); }

/* ---- the database transaction and its locks ------------------------------------ */

static int begin_db_txn(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    for (int attempt = 0;; attempt++) {
        int rc = store__pg_acquire(s, STPG_POOL_WRITE, 0, &t->conn, err);
        if (rc)
            return rc;
        rc = store__pg_command(s, t->conn, "BEGIN", err);
        if (!rc)
            return 0;
        /* A session PostgreSQL closed while idle fails at once: the vote
         * has done nothing yet, so a new connection may try again. */
        int lost = t->conn->broken;
        store__pg_release(s, t->conn);
        t->conn = NULL;
        if (!lost || attempt)
            return rc;
    }
}

typedef struct lock_item {
    uint64_t oid;
    uint8_t write;
} lock_item;

static int lock_cmp(const void *a, const void *b)
{
    const lock_item *x = a, *y = b;
    return x->oid < y->oid ? -1 : x->oid > y->oid;
}

int store__pg_lock_oids(stpg_txn *t, uint64_t *oids, uint8_t *writes, size_t n, zerr *err)
{
    stpg_store *s = t->s;
    int rc = 0;
    if (!t->conn && (rc = begin_db_txn(t, err)))
        return rc;
    lock_item *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = (lock_item){oids[i], writes[i]};
    qsort(v, n, sizeof *v, lock_cmp);
    /* one entry per oid, exclusive when any operation writes it, and only
     * what this transaction does not hold yet in that mode */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && v[m - 1].oid == v[i].oid) {
            v[m - 1].write |= v[i].write;
            continue;
        }
        v[m++] = v[i];
    }
    zbuf ao = ZBUF_INIT, aw = ZBUF_INIT;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t held = 0;
        oidmap_get(&t->locked, v[i].oid, &held);
        if (held < (uint64_t)(v[i].write ? 2 : 1))
            v[k++] = v[i];
    }
    if (k && (stpg_arr_begin(&ao, STPG_INT8, k) || stpg_arr_begin(&aw, STPG_BOOL, k)))
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < k && !rc; i++)
        if (stpg_arr_id(&ao, v[i].oid) || stpg_arr_bool(&aw, v[i].write))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
    if (k && !rc) {
        stpg_params p = {0};
        stpg_p_bytes(&p, ao.data, ao.len);
        stpg_p_bytes(&p, aw.data, aw.len);
        PGresult *r = store__pg_exec(s, t->conn, Q_LOCK_OIDS, &p, err);
        rc = t->conn->rc;
        PQclear(r);
        if (rc == ZE_TIMEOUT && err) {
            char why[ZERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            zerr_set(err, ZE_TIMEOUT, "vote: an oid of the transaction stayed locked by "
                     "another transaction for %d ms (lock_timeout): %s", s->lock_timeout_ms,
                     why);
        }
    }
    for (size_t i = 0; i < k && !rc; i++)
        if (oidmap_put(&t->locked, v[i].oid, v[i].write ? 2 : 1))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
    zbuf_free(&ao);
    zbuf_free(&aw);
    free(v);
    return rc;
}

/* The oids of the transactions an undo names, to lock with the rest. */
static int undo_oids(stpg_txn *t, uint64_t **oids, uint8_t **writes, size_t *n, size_t *cap,
                     zerr *err)
{
    for (size_t i = 0; i < t->q.n_ops; i++) {
        if (t->q.ops[i].type != OP_UNDO)
            continue;
        stpg_params p = {0};
        stpg_p_id(&p, t->q.ops[i].serial);
        PGresult *r = store__pg_query(t->s, t->conn, "SELECT DISTINCT oid FROM zeolite.records "
                                      "WHERE tid = $1::bigint", &p, err);
        if (!r)
            return t->conn->rc;
        for (int j = 0; j < PQntuples(r); j++) {
            uint64_t *o = zarray_room(*oids, *n, cap, sizeof **oids, 16);
            uint8_t *w = o ? realloc(*writes, *cap) : NULL;
            if (o)
                *oids = o;
            if (!o || !w) {
                PQclear(r);
                return zerr_set(err, ZE_NOMEM, "out of memory");
            }
            *writes = w;
            (*oids)[*n] = stpg_get_id(PQgetvalue(r, j, 0));
            (*writes)[(*n)++] = 1;
        }
        PQclear(r);
    }
    return 0;
}

static int lock_all(stpg_txn *t, zerr *err)
{
    size_t n = 0, cap = t->q.n_ops + 1;
    uint64_t *oids = malloc(cap * sizeof *oids);
    uint8_t *writes = malloc(cap);
    int rc = oids && writes ? 0 : zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < t->q.n_ops && !rc; i++)
        if (t->q.ops[i].type != OP_UNDO && !(t->q.ops[i].state & OPF_DROPPED)) {
            oids[n] = t->q.ops[i].oid;
            writes[n++] = t->q.ops[i].type != OP_CHECK;
        }
    if (!rc && !t->conn)
        rc = begin_db_txn(t, err);
    if (!rc && t->q.has_undo)
        rc = undo_oids(t, &oids, &writes, &n, &cap, err);
    if (!rc)
        rc = store__pg_lock_oids(t, oids, writes, n, err);
    free(oids);
    free(writes);
    return rc;
}

/* ---- what is committed ---------------------------------------------------------------- */

/* cur[i]: the current tid of op i's oid (0: none), for the checked ops. */
static int current_tids(stpg_txn *t, uint64_t *cur, zerr *err)
{
    size_t n = 0;
    for (size_t i = 0; i < t->q.n_ops; i++)
        n += checked(&t->q.ops[i]);
    if (!n)
        return 0;
    zbuf a = ZBUF_INIT;
    int rc = stpg_arr_begin(&a, STPG_INT8, n);
    for (size_t i = 0; i < t->q.n_ops && !rc; i++)
        if (checked(&t->q.ops[i]))
            rc = stpg_arr_id(&a, t->q.ops[i].oid);
    if (rc) {
        zbuf_free(&a);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    stpg_params p = {0};
    stpg_p_bytes(&p, a.data, a.len);
    PGresult *r = store__pg_exec(t->s, t->conn, Q_CURRENT_TIDS, &p, err);
    zbuf_free(&a);
    if (!r)
        return t->conn->rc;
    if ((size_t)PQntuples(r) != n) {
        PQclear(r);
        return zerr_set(err, ZE_CORRUPT, "vote: %d current tids for %zu oids", PQntuples(r), n);
    }
    for (size_t i = 0, j = 0; i < t->q.n_ops; i++)
        if (checked(&t->q.ops[i])) {
            cur[i] = PQgetisnull(r, (int)j, 0) ? 0 : stpg_get_id(PQgetvalue(r, (int)j, 0));
            j++;
        }
    PQclear(r);
    return 0;
}

int store__pg_backptr_pending(const txn_op *op)
{
    return op->type == OP_RECORD && op->kind == STORE_REC_BACKPTR && !(op->state & OPF_TARGET);
}

/* Each back-pointer's target must exist (then commit cannot fail on it):
 * its index (for "the oid's last record of that transaction"), the DATA
 * record at the end of its chain, and the blob it shares when it has none
 * of its own. */
int store__pg_resolve_backptrs(stpg_txn *t, stpg_conn *c, zerr *err)
{
    size_t n = 0;
    for (size_t i = 0; i < t->q.n_ops; i++)
        n += store__pg_backptr_pending(&t->q.ops[i]);
    if (!n)
        return 0;
    zbuf ao = ZBUF_INIT, at = ZBUF_INIT, ai = ZBUF_INIT;
    int rc = stpg_arr_begin(&ao, STPG_INT8, n) || stpg_arr_begin(&at, STPG_INT8, n) ||
             stpg_arr_begin(&ai, STPG_INT4, n);
    for (size_t i = 0; i < t->q.n_ops && !rc; i++) {
        const txn_op *op = &t->q.ops[i];
        if (store__pg_backptr_pending(op))
            rc = stpg_arr_id(&ao, op->oid) || stpg_arr_id(&at, op->back_tid) ||
                 stpg_arr_i32(&ai, op->back_index == STPG_INDEX_LAST ? -1
                                                                     : (int32_t)op->back_index);
    }
    PGresult *r = NULL;
    if (rc) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    } else {
        stpg_params p = {0};
        stpg_p_bytes(&p, ao.data, ao.len);
        stpg_p_bytes(&p, at.data, at.len);
        stpg_p_bytes(&p, ai.data, ai.len);
        r = store__pg_exec(t->s, c, Q_BACKPTR_TARGETS, &p, err);
        rc = c->rc;
    }
    for (size_t i = 0, j = 0; i < t->q.n_ops && !rc; i++) {
        txn_op *op = &t->q.ops[i];
        if (!store__pg_backptr_pending(op))
            continue;
        int row = (int)j++;
        if (PQgetisnull(r, row, 0)) {
            rc = store__txnq_no_target(op, err);
            break;
        }
        int kind = stpg_get_i16(PQgetvalue(r, row, 1));
        op->back_index = (uint32_t)stpg_get_i32(PQgetvalue(r, row, 0));
        op->data_tid = kind == STORE_REC_DATA ? op->back_tid
                       : kind == STORE_REC_BACKPTR && !PQgetisnull(r, row, 2)
                           ? stpg_get_id(PQgetvalue(r, row, 2)) : 0;
        op->data_index = kind == STORE_REC_DATA ? op->back_index
                         : kind == STORE_REC_BACKPTR && !PQgetisnull(r, row, 3)
                             ? (uint32_t)stpg_get_i32(PQgetvalue(r, row, 3)) : 0;
        if ((op->rflags & STPG_RF_BLOB) && !op->blob && !PQgetisnull(r, row, 4))
            op->blob_id = stpg_get_i64(PQgetvalue(r, row, 4));
        op->state |= OPF_TARGET;
    }
    PQclear(r);
    zbuf_free(&ao);
    zbuf_free(&at);
    zbuf_free(&ai);
    return rc;
}

/* ---- the vote --------------------------------------------------------------------------------- */

/* Bulk mode (an import) writes restores only, checked when the import ends. */
static int bulk_vote(stpg_txn *t, zerr *err)
{
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (t->q.ops[i].type != OP_RECORD)
            return zerr_set(err, ZE_TXN, "a bulk import writes restored records only");
    return 0;
}

static int vote(stpg_txn *t, uint64_t *cur, zerr *err)
{
    int rc = lock_all(t, err);
    if (!rc)
        rc = current_tids(t, cur, err);
    if (!rc)
        rc = store__pg_resolve_backptrs(t, t->conn, err);
    if (!rc && t->q.has_undo)
        rc = store__pg_undo_expand(t, err);
    if (!rc)
        store__txnq_resolve_stores(&t->q, cur);
    if (!rc)
        rc = store__txnq_judge(&t->q, cur, err);
    return rc;
}

int store__pg_txn_vote(store_txn *tt, store_vote_result *res, zerr *err)
{
    stpg_txn *t = tx(tt);
    int rc = store__txnq_vote_start(&t->q, res, err);
    if (rc)
        return rc;
    if (t->s->bulk)
        return store__txnq_vote_end(&t->q, bulk_vote(t, err), res, err);
    uint64_t *cur = calloc(t->q.n_ops ? t->q.n_ops : 1, sizeof *cur);
    rc = cur ? vote(t, cur, err) : zerr_set(err, ZE_NOMEM, "out of memory");
    free(cur);
    rc = store__txnq_vote_end(&t->q, rc, res, err);
    /* a resolvable conflict keeps the locks; anything else ends them */
    int resolvable = rc == ZE_CONFLICT && t->q.n_conflicts;
    for (size_t i = 0; resolvable && i < t->q.n_conflicts; i++)
        resolvable = !t->q.conflicts[i].read_conflict && !t->q.conflicts[i].delete_conflict;
    if (rc && !resolvable)
        store__pg_txn_release(t, 1);
    return rc;
}
