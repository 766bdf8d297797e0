/* resolve.c: what the store's resolver reads at vote (store_options.resolver;
 * store.h says when; txnq.c offers the conflicts), on LMDB.
 *
 * The committed revision is often not durable yet: the transaction that
 * wrote it was handed to the writer a moment ago, and its oid lock released
 * then (that is what lets commits of a hot object share one sync). Its data
 * are then read from that transaction's own buffer, which stays until its
 * commit completes: s->handed lists such transactions, and a transaction
 * leaves it (under s->mu) only once its records are in LMDB, so one of the
 * two places always has them. A transaction resolved that way commits only
 * if the one it read from did (store__resolve_base_check): a commit that
 * fails after its vote (a full disk) must not leave its change inside
 * another's record. The old revision is the one the client read,
 * so it is durable; it and a durable committed revision are read through a
 * reader of the transaction's own, refreshed for each conflict (a snapshot:
 * when the reader slots left for them are taken, the conflict goes to the
 * client). */
#include "store/txn.h"

#include <stdlib.h>

void store__handed_add(store *s, store_txn *t)
{
    t->handed_prev = NULL;
    t->handed_next = s->handed;
    if (s->handed)
        s->handed->handed_prev = t;
    s->handed = t;
}

void store__handed_remove(store *s, store_txn *t)
{
    if (t->handed_prev)
        t->handed_prev->handed_next = t->handed_next;
    else if (s->handed == t)
        s->handed = t->handed_next;
    else
        return; /* never added */
    if (t->handed_next)
        t->handed_next->handed_prev = t->handed_prev;
    t->handed_prev = t->handed_next = NULL;
}

/* The record h writes last for oid, into out: 1 when it is a data record
 * without a blob, 0 otherwise (a deletion, a back-pointer, a blob). */
static int handed_data(const store_txn *h, uint64_t oid, zbuf *out)
{
    const txn_op *last = NULL;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&h->q, &it));)
        if (op->oid == oid)
            last = op;
    /* rflags, not blob: the writer clears blob as it installs the file. */
    if (!last || last->kind != STORE_REC_DATA || (last->rflags & ST_RF_BLOB))
        return 0;
    zbuf_reset(out);
    if (zbuf_reserve(out, last->len) ||
        txnbuf_read(&h->q.buf, last->off, last->len, out->data, NULL))
        return 0;
    out->len = last->len;
    return 1;
}

/* The committed revision (oid, tid) when a handed transaction wrote it:
 * 1 with its data in out, 0 when it is not (or no longer) pending, -1 when
 * it is but its record cannot be offered. */
static int pending_data(store *s, uint64_t oid, uint64_t tid, zbuf *out)
{
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (store_txn *h = s->handed; h && !found; h = h->handed_next)
        if (h->tid == tid)
            found = handed_data(h, oid, out) ? 1 : -1;
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* A durable revision's pickle into out: 1, or 0 when there is none, it is
 * a deletion or it has a blob. */
static int durable_data(store_txn *t, uint64_t oid, uint64_t serial, zbuf *out)
{
    char path[4096];
    zerr err;
    if (!t->rd ? store_reader_new(t->s, &t->rd, &err) : store_reader_refresh(t->rd, &err))
        return 0;
    if (store_load_serial(t->rd, oid, serial, out, &err))
        return 0;
    return store_load_blob(t->rd, oid, serial, path, sizeof path, &err) == ZE_NOTFOUND;
}

static int committed_data(store_txn *t, uint64_t oid, uint64_t tid, zbuf *out)
{
    int p = pending_data(t->s, oid, tid, out);
    if (p > 0 && tid > t->resolved_on)
        t->resolved_on = tid;
    /* Not pending: it left the list after its records reached LMDB, so a
     * reader refreshed now sees it. */
    return p ? p > 0 : durable_data(t, oid, tid, out);
}

int store__resolve_revision(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out)
{
    store_txn *t = (store_txn *)(void *)q;
    return committed ? committed_data(t, oid, serial, out) : durable_data(t, oid, serial, out);
}

void store__resolve_end(store_txn *t)
{
    /* A reader kept open would pin LMDB's pages while the client resolves. */
    store_reader_free(t->rd);
    t->rd = NULL;
}

int store__resolve_base_check(store *s, MDB_txn *txn, const store_txn *t, zerr *err)
{
    uint8_t key[8];
    zbe64_put(key, t->resolved_on);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, s->dbi_txns, &k, &v);
    if (rc == MDB_NOTFOUND)
        return zerr_set(err, ZE_IO, "conflicts were resolved against transaction %016llx, "
                        "which did not commit", (unsigned long long)t->resolved_on);
    return rc ? store__mdb_err(err, rc, "read transaction") : 0;
}
