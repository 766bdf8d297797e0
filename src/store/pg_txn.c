/* pg_txn.c: beginning a transaction on PostgreSQL, abort and free. What it
 * queues meanwhile is txnq.c's (the stored bytes spill to a file as the
 * LMDB store's do); vote is in pg_vote.c, commit in pg_commit.c. */
#include "store/pg.h"

#include <stdlib.h>

static stpg_txn *tx(store_txn *t) { return (stpg_txn *)(void *)t; }
static stpg_txn *txn_of(txnq *q) { return (stpg_txn *)(void *)q; }

static int blob_check(txnq *q, const char *path, int linked_ok, uint64_t oid, zerr *err)
{
    return store__pg_blob_check(txn_of(q)->s, path, linked_ok, err);
}

static void blob_discard(txnq *q, const char *path, int linked_ok)
{
    store__pg_blob_discard_queued(txn_of(q)->s, path, linked_ok);
}

static const txnq_hooks hooks = {blob_check, blob_discard, store__pg_revision};

int store__pg_txn_begin(store *ss, const store_txn_meta *meta, store_txn **out, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    *out = NULL;
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "PostgreSQL (%s) is open read-only", s->shown);
    uint64_t last = s->bulk ? s->bulk_last_tid : store__pg_last_tid(ss);
    int rc = store__txnq_check_meta(meta, last, err);
    if (rc)
        return rc;
    stpg_txn *t = calloc(1, sizeof *t);
    if (!t)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->s = s;
    t->tid = meta->tid;
    uint32_t max = s->opt.max_record ? s->opt.max_record : STPG_MAX_RECORD;
    rc = store__txnq_init(&t->q, &store__pg_ops, &hooks, meta, &s->opt.resolver,
                          max > STPG_MAX_RECORD ? STPG_MAX_RECORD : max, s->tmp_fd, s->blob_tmp,
                          err);
    if (rc) {
        store__pg_txn_free((store_txn *)(void *)t);
        return rc;
    }
    *out = (store_txn *)(void *)t;
    return 0;
}

/* A shared blob folder is not offered (STORE_CAP_SHARED_BLOBS): the blobs
 * live in the database, and the folder is this process's cache. */
int store__pg_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial,
                                    const void *data, size_t len, const char *name, zerr *err)
{
    return zerr_set(err, ZE_NOTSUP, "PostgreSQL (%s) keeps blobs in the database: a shared "
                    "blob folder is not offered", tx(t)->s->shown);
}

/* ---- abort and free ---------------------------------------------------------- */

/* End the vote's database transaction: its locks go with it. The ROLLBACK
 * is the committer thread's to send, so that abort and free never wait on
 * the network (the server calls them on its event loop). */
void store__pg_txn_release(stpg_txn *t, int rollback)
{
    stpg_conn *c = t->conn;
    if (!c)
        return;
    t->conn = NULL;
    oidmap_clear(&t->locked);
    if (rollback && !c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        store__pg_rollback_later(t->s, c);
    else
        store__pg_release(t->s, c);
}

void store__pg_txn_abort(store_txn *tt)
{
    stpg_txn *t = tx(tt);
    if (!t || t->q.state == TXN_COMMITTING || t->q.state == TXN_DONE)
        return;
    store__pg_txn_release(t, 1);
    store__txnq_abort(&t->q);
}

void store__pg_txn_free(store_txn *tt)
{
    stpg_txn *t = tx(tt);
    if (!t)
        return;
    store__pg_txn_release(t, 1);
    store__txnq_deinit(&t->q);
    oidmap_free(&t->locked);
    free(t);
}
