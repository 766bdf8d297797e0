/* txn.h: a two-phase-commit transaction of the LMDB store (private).
 *
 * Operations are queued in t->q (txnq.h, shared with PostgreSQL); vote
 * checks them (and expands undo operations into records in t->q.gen);
 * commit assigns the tid and hands the txn to the writer, which writes its
 * records in order (store__apply_txn).
 */
#ifndef ZEOLITE_STORE_TXN_H
#define ZEOLITE_STORE_TXN_H

#include "store/store_internal.h"
#include "store/txnq.h"

struct store_txn {
    txnq q;                /* first: the queue and the vote's results (txnq.h) */
    store *s;
    uint64_t tid;
    uint64_t resolved_on;  /* newest handed-off txn whose data a resolution read */
    store_reader *rd;      /* the resolver's reads during a vote (resolve.c) */
    store_txn *handed_prev, *handed_next;   /* s->handed, while committing */

    uint32_t n_written;    /* records written by the commit (set by the writer) */
    st_job job;            /* the commit job, embedded: committing allocates nothing */
    store_commit_cb cb;
    void *ud;
};

/* Forget t's pending oid -> tid entries (caller holds s->mu). */
void store__pending_remove(store *s, store_txn *t);

/* Write t's records, its transaction value and meta updates in txn (writer
 * thread; t->tid is set). Blob files are installed first. */
int store__apply_txn(store *s, MDB_txn *txn, store_txn *t, zerr *err);

/* Expand t's UNDO operations into records (vote, with a read view). */
int store__undo_expand(store_txn *t, st_view *v, zerr *err);

/* ---- resolve.c: the store's resolver (store_options.resolver) ---------- */

/* The resolver's reads of committed data at vote (txnq_hooks.revision): a
 * revision a transaction handed to the writer wrote is read from its
 * buffer, a durable one through t->rd. */
int store__resolve_revision(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out);
/* The vote is over: what the resolver read with is released. */
void store__resolve_end(store_txn *t);
/* Writer: a transaction whose resolutions read another's data before it was
 * durable commits only if that one did (its record is in txn); else ZE_IO. */
int store__resolve_base_check(store *s, MDB_txn *txn, const store_txn *t, zerr *err);
/* t is handed to the writer / completed (caller holds s->mu). */
void store__handed_add(store *s, store_txn *t);
void store__handed_remove(store *s, store_txn *t);

#endif
