/* pg_resolve.c: write conflicts offered to the store's resolver at vote
 * (store_options.resolver; store.h says when), on PostgreSQL.
 *
 * Simpler than LMDB's resolve.c: a commit is durable before any vote can
 * see its tid (the vote reads current tids in its own database transaction,
 * after taking the oids' locks), so the committed revision is always read
 * from the database, in the vote's transaction, and nothing resolved here
 * can depend on a commit that later fails. */
#include "store/pg.h"

#include <stdlib.h>

#include "common/zarray.h"

/* The pickle of oid's revision serial, read in the vote's transaction: 1,
 * or 0 when there is none, it is a deletion, or it has a blob. */
static int revision_data(stpg_txn *t, uint64_t oid, uint64_t serial, zbuf *out)
{
    stpg_params p = {0};
    zerr err;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, serial);
    stpg_p_id(&p, STORE_TID_MAX);
    PGresult *r = store__pg_exec(t->s, t->conn, Q_LOAD_SERIAL, &p, &err);
    if (!r)
        return 0;
    /* columns: kind, flags, resolved data, data_tid, the target's kind */
    int ok = PQntuples(r) == 1 && !PQgetisnull(r, 0, 2) &&
             !(stpg_get_i16(PQgetvalue(r, 0, 1)) & (STPG_RF_BLOB | STPG_RF_HIDDEN)) &&
             zbuf_set(out, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2)) == 0;
    PQclear(r);
    return ok;
}

/* Run the resolver; 1 with the resolved record appended to t->buf at
 * *off, *len. */
static int run_resolver(stpg_txn *t, uint64_t oid, zslice old, zslice committed,
                        zslice new_rec, uint64_t *off, uint32_t *len)
{
    uint32_t max = t->s->opt.max_record ? t->s->opt.max_record : STPG_MAX_RECORD;
    if (max > STPG_MAX_RECORD)
        max = STPG_MAX_RECORD;
    return store__resolver_run(&t->s->opt.resolver, max, &t->buf, oid, old, committed,
                               new_rec, off, len);
}

/* One store whose serial is not the oid's current one (committed). */
static int resolve_store(stpg_txn *t, stpg_op *op, uint64_t committed)
{
    const store_resolver *rv = &t->s->opt.resolver;
    uint64_t last = 0;
    if (op->blob || !committed || !op->serial || !oidmap_get(&t->last_store, op->oid, &last) ||
        last != (uint64_t)(op - t->ops) + 1)
        return 0;
    zbuf new_rec = ZBUF_INIT, cur = ZBUF_INIT, old = ZBUF_INIT;
    const uint8_t *p;
    uint64_t off;
    uint32_t len;
    int ok = txnbuf_view(&t->buf, op->off, op->len, &new_rec, &p, NULL) == 0 &&
             (!rv->known || rv->known(rv->data, p, op->len) == 1);
    /* The view may live in new_rec: keep a copy before t->buf grows. */
    if (ok && p != new_rec.data)
        ok = zbuf_set(&new_rec, p, op->len) == 0;
    ok = ok && revision_data(t, op->oid, committed, &cur) &&
         revision_data(t, op->oid, op->serial, &old) &&
         run_resolver(t, op->oid, (zslice){old.data, old.len}, (zslice){cur.data, cur.len},
                      (zslice){new_rec.data, new_rec.len}, &off, &len);
    zbuf_free(&new_rec);
    zbuf_free(&cur);
    zbuf_free(&old);
    if (!ok)
        return 0;
    op->off = off;
    op->len = len;
    op->serial = committed;
    op->state |= PGOPF_RESOLVED;
    return 1;
}

void store__pg_resolve_stores(stpg_txn *t, const uint64_t *cur)
{
    if (!t->s->opt.resolver.resolve)
        return;
    for (size_t i = 0; i < t->n_ops; i++) {
        stpg_op *op = &t->ops[i];
        if (op->type == PGOP_STORE && !(op->state & PGOPF_DROPPED) && op->serial != cur[i])
            resolve_store(t, op, cur[i]);
    }
}

int store__pg_resolve_undo(stpg_txn *t, uint64_t oid, zslice undone, zslice current,
                           zslice pre, uint64_t *off, uint32_t *len)
{
    const store_resolver *rv = &t->s->opt.resolver;
    if (!rv->resolve || (rv->known && rv->known(rv->data, pre.p, pre.len) != 1) ||
        !run_resolver(t, oid, undone, current, pre, off, len))
        return 0;
    t->n_undo_resolved++;
    return 1;
}

int store__pg_resolve_end(stpg_txn *t, zerr *err)
{
    t->n_resolved = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        if (!(t->ops[i].state & PGOPF_RESOLVED))
            continue;
        uint64_t *r = zarray_room(t->resolved, t->n_resolved, &t->cap_resolved, sizeof *r, 8);
        if (!r)
            return zerr_set(err, ZE_NOMEM, "out of memory");
        t->resolved = r;
        t->resolved[t->n_resolved++] = t->ops[i].oid;
    }
    return 0;
}
