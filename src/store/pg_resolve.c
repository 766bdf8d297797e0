/* pg_resolve.c: what the store's resolver reads at vote (store_options.resolver;
 * store.h says when; txnq.c offers the conflicts), on PostgreSQL.
 *
 * Simpler than LMDB's resolve.c: a commit is durable before any vote can
 * see its tid (the vote reads current tids in its own database transaction,
 * after taking the oids' locks), so the committed revision is always read
 * from the database, in the vote's transaction, and nothing resolved here
 * can depend on a commit that later fails. */
#include "store/pg.h"

/* The pickle of oid's revision serial, read in the vote's transaction: 1,
 * or 0 when there is none, it is a deletion, or it has a blob. Committed
 * or not, a revision is read the same way here. */
int store__pg_revision(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out)
{
    stpg_txn *t = (stpg_txn *)(void *)q;
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
