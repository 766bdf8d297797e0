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

static int checked(const stpg_op *op)
{
    return (op->type == PGOP_STORE || op->type == PGOP_CHECK || op->type == PGOP_DELETE) &&
           !(op->state & PGOPF_DROPPED);
}

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
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].type != PGOP_UNDO)
            continue;
        stpg_params p = {0};
        stpg_p_id(&p, t->ops[i].serial);
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
    size_t n = 0, cap = t->n_ops + 1;
    uint64_t *oids = malloc(cap * sizeof *oids);
    uint8_t *writes = malloc(cap);
    int rc = oids && writes ? 0 : zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t i = 0; i < t->n_ops && !rc; i++)
        if (t->ops[i].type != PGOP_UNDO && !(t->ops[i].state & PGOPF_DROPPED)) {
            oids[n] = t->ops[i].oid;
            writes[n++] = t->ops[i].type != PGOP_CHECK;
        }
    if (!rc && !t->conn)
        rc = begin_db_txn(t, err);
    if (!rc && t->has_undo)
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
    for (size_t i = 0; i < t->n_ops; i++)
        n += checked(&t->ops[i]);
    if (!n)
        return 0;
    zbuf a = ZBUF_INIT;
    int rc = stpg_arr_begin(&a, STPG_INT8, n);
    for (size_t i = 0; i < t->n_ops && !rc; i++)
        if (checked(&t->ops[i]))
            rc = stpg_arr_id(&a, t->ops[i].oid);
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
    for (size_t i = 0, j = 0; i < t->n_ops; i++)
        if (checked(&t->ops[i])) {
            cur[i] = PQgetisnull(r, (int)j, 0) ? 0 : stpg_get_id(PQgetvalue(r, (int)j, 0));
            j++;
        }
    PQclear(r);
    return 0;
}

int store__pg_backptr_pending(const stpg_op *op)
{
    return op->type == PGOP_RECORD && op->kind == STORE_REC_BACKPTR && !op->resolved;
}

/* Each back-pointer's target must exist (then commit cannot fail on it):
 * its index (for "the oid's last record of that transaction"), the DATA
 * record at the end of its chain, and the blob it shares when it has none
 * of its own. */
int store__pg_resolve_backptrs(stpg_txn *t, stpg_conn *c, zerr *err)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_ops; i++)
        n += store__pg_backptr_pending(&t->ops[i]);
    if (!n)
        return 0;
    zbuf ao = ZBUF_INIT, at = ZBUF_INIT, ai = ZBUF_INIT;
    int rc = stpg_arr_begin(&ao, STPG_INT8, n) || stpg_arr_begin(&at, STPG_INT8, n) ||
             stpg_arr_begin(&ai, STPG_INT4, n);
    for (size_t i = 0; i < t->n_ops && !rc; i++) {
        const stpg_op *op = &t->ops[i];
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
    for (size_t i = 0, j = 0; i < t->n_ops && !rc; i++) {
        stpg_op *op = &t->ops[i];
        if (!store__pg_backptr_pending(op))
            continue;
        int row = (int)j++;
        if (PQgetisnull(r, row, 0)) {
            rc = zerr_set(err, ZE_NOTFOUND, "back-pointer of oid %016llx to transaction "
                          "%016llx, which has no such record", (unsigned long long)op->oid,
                          (unsigned long long)op->back_tid);
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
        op->resolved = 1;
    }
    PQclear(r);
    zbuf_free(&ao);
    zbuf_free(&at);
    zbuf_free(&ai);
    return rc;
}

/* ---- judging --------------------------------------------------------------------------------- */

static int add_conflict(stpg_txn *t, const stpg_op *op, uint64_t committed, zerr *err)
{
    store_conflict *c =
        zarray_room(t->conflicts, t->n_conflicts, &t->cap_conflicts, sizeof *c, 8);
    if (!c)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->conflicts = c;
    c = &t->conflicts[t->n_conflicts++];
    *c = (store_conflict){.oid = op->oid, .committed = committed, .expected = op->serial,
                          .read_conflict = op->type == PGOP_CHECK,
                          .delete_conflict = op->type == PGOP_DELETE};
    /* the data's offset for now; slices are set once conflict_data stops moving */
    c->data.len = op->len;
    c->data.p = (const uint8_t *)(uintptr_t)t->conflict_data.len;
    if (op->type != PGOP_STORE)
        return 0;
    if (zbuf_reserve(&t->conflict_data, op->len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int rc = txnbuf_read(&t->buf, op->off, op->len,
                         t->conflict_data.data + t->conflict_data.len, err);
    if (!rc)
        t->conflict_data.len += op->len;
    return rc;
}

static void fix_conflict_slices(stpg_txn *t)
{
    for (size_t i = 0; i < t->n_conflicts; i++) {
        store_conflict *c = &t->conflicts[i];
        size_t off = (size_t)(uintptr_t)c->data.p;
        c->data.p = c->data.len ? t->conflict_data.data + off : NULL;
    }
}

/* Unresolvable conflicts win over resolvable ones. */
static int judge(stpg_txn *t, const uint64_t *cur, zerr *err)
{
    int hard = 0, rc = 0;
    oidmap fresh = OIDMAP_INIT;
    t->new_objects = 0;
    for (size_t i = 0; i < t->n_ops && !rc; i++) {
        stpg_op *op = &t->ops[i];
        op->state &= (uint8_t)~PGOPF_CONFLICT;
        if (!checked(op))
            continue;
        if (op->type == PGOP_DELETE && !cur[i]) {
            rc = zerr_set(err, ZE_NOTFOUND, "delete of oid %016llx, which does not exist",
                          (unsigned long long)op->oid);
            break;
        }
        uint64_t one;
        if (op->type == PGOP_STORE && !cur[i] && !oidmap_get(&fresh, op->oid, &one)) {
            if (oidmap_put(&fresh, op->oid, 1))
                rc = zerr_set(err, ZE_NOMEM, "out of memory");
            t->new_objects++;
        }
        if (op->serial == cur[i])
            continue;
        if (op->type == PGOP_STORE)
            op->state |= PGOPF_CONFLICT;
        if ((rc = add_conflict(t, op, cur[i], err)))
            break;
        if (op->type == PGOP_STORE || hard)
            continue;
        hard = op->type == PGOP_CHECK ? ZE_READCONFLICT : ZE_CONFLICT;
        zerr_set(err, hard, "%s conflict on oid %016llx: committed serial %016llx, "
                 "transaction read %016llx", op->type == PGOP_CHECK ? "read" : "delete",
                 (unsigned long long)op->oid, (unsigned long long)cur[i],
                 (unsigned long long)op->serial);
    }
    oidmap_free(&fresh);
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

/* ---- the vote --------------------------------------------------------------------------------- */

/* Bulk mode (an import) writes restores only, checked when the import ends. */
static int bulk_vote(stpg_txn *t, zerr *err)
{
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].type != PGOP_RECORD)
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
    if (!rc && t->has_undo)
        rc = store__pg_undo_expand(t, err);
    if (!rc)
        store__pg_resolve_stores(t, cur);
    if (!rc)
        rc = judge(t, cur, err);
    int lrc = store__pg_resolve_end(t, err);
    return rc ? rc : lrc;
}

int store__pg_txn_vote(store_txn *tt, store_vote_result *res, zerr *err)
{
    stpg_txn *t = tx(tt);
    store_vote_result none;
    if (!res)
        res = &none;
    memset(res, 0, sizeof *res);
    if (t->state != PGT_OPEN)
        return zerr_set(err, ZE_TXN, "vote of a transaction that is not open");
    t->n_conflicts = 0;
    zbuf_reset(&t->conflict_data);
    t->n_changed = 0;
    t->n_undo_failures = 0;
    t->n_undo_resolved = 0;
    int rc;
    if (t->s->bulk) {
        rc = bulk_vote(t, err);
    } else {
        uint64_t *cur = calloc(t->n_ops ? t->n_ops : 1, sizeof *cur);
        rc = cur ? vote(t, cur, err) : zerr_set(err, ZE_NOMEM, "out of memory");
        free(cur);
        /* a resolvable conflict keeps the locks; anything else ends them */
        int resolvable = rc == ZE_CONFLICT && t->n_conflicts;
        for (size_t i = 0; resolvable && i < t->n_conflicts; i++)
            resolvable = !t->conflicts[i].read_conflict && !t->conflicts[i].delete_conflict;
        if (rc && !resolvable)
            store__pg_txn_release(t, 1);
    }
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
        t->state = PGT_VOTED;
    return rc;
}
