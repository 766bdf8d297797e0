/* txn.h: a two-phase-commit transaction inside src/store/ (private).
 *
 * Operations are queued in t->ops in call order; stored bytes go to a
 * txnbuf. vote checks them (and expands undo operations into records in
 * t->gen); commit assigns the tid and hands the txn to the writer, which
 * writes its records in order (store__apply_txn).
 */
#ifndef ZEOLITE_STORE_TXN_H
#define ZEOLITE_STORE_TXN_H

#include "store/store_internal.h"
#include "store/txnbuf.h"

enum txn_op_type {
    OP_STORE = 1,   /* store / store_blob: a DATA record, serial checked */
    OP_CHECK,       /* check_current: no record */
    OP_DELETE,      /* delete: a DELETE record, serial checked */
    OP_RECORD,      /* restore / restore_record / undo output: written as given */
    OP_UNDO,        /* undo: expanded at vote into t->gen */
};

#define OPF_CONFLICT 0x01   /* reported as a write conflict by the last vote */
#define OPF_DROPPED 0x02    /* replaced by a later store after that conflict */
#define OPF_BLOB_LINKED 0x04 /* the caller vouches for the blob file's other links */
#define OPF_RESOLVED 0x08   /* its data is the store's resolver's (resolve.c) */

typedef struct txn_op {
    uint8_t type;          /* OP_* */
    uint8_t kind;          /* record written: STORE_REC_*, 0 for CHECK / UNDO */
    uint8_t rflags;        /* ST_RF_PREV_ZERO / ST_RF_BLOB as written */
    uint8_t state;         /* OPF_* */
    uint32_t len;          /* DATA: length in t->buf */
    uint64_t off;          /* DATA: offset in t->buf */
    uint64_t oid;
    uint64_t serial;       /* STORE/CHECK/DELETE: expected serial; UNDO: tid undone */
    uint64_t back_tid;     /* BACKPTR: target transaction */
    uint32_t back_index;   /* BACKPTR: target index or ST_INDEX_LAST */
    uint32_t gen_start;    /* UNDO: its records are t->gen[gen_start .. +gen_count) */
    uint32_t gen_count;
    uint64_t blob_src;     /* undo of a blob record: copy the file of (oid, blob_src) */
    char *blob;            /* blob file to install at commit (owned), or NULL */
} txn_op;

enum txn_state { TXN_OPEN, TXN_VOTED, TXN_COMMITTING, TXN_DONE, TXN_ABORTED };

struct store_txn {
    const store_ops *be;   /* &store__lmdb_ops: first, as backend.h asks */
    store *s;
    int state;
    char status;
    int explicit_tid;      /* meta.tid given: restore / copyTransactionsFrom */
    uint64_t tid;
    zbuf meta;             /* user || description || extension */
    size_t ulen, dlen, elen;
    txnbuf buf;

    txn_op *ops;
    size_t n_ops, cap_ops;
    txn_op *gen;           /* records produced by undo at vote */
    size_t n_gen, cap_gen;
    oidmap last_store;     /* oid -> 1 + index of its last OP_STORE */
    int has_undo;

    uint64_t *oids;        /* store_txn_oids */
    size_t n_oids;
    oidmap seen;
    store_conflict *conflicts;
    size_t n_conflicts, cap_conflicts;
    zbuf conflict_data;    /* copies of conflicting data */
    uint64_t *changed;
    size_t n_changed, cap_changed;
    store_undo_failure *undo_failures;   /* the failed undo's oids (vote) */
    size_t n_undo_failures;
    uint64_t *resolved;    /* oids of OPF_RESOLVED stores (vote) */
    size_t n_resolved, cap_resolved;
    size_t n_undo_resolved;
    uint64_t resolved_on;  /* newest handed-off txn whose data a resolution read */
    store_reader *rd;      /* the resolver's reads during a vote (resolve.c) */
    zbuf scratch;          /* resolve.c: the records it reads */
    store_txn *handed_prev, *handed_next;   /* s->handed, while committing */

    uint32_t n_written;    /* records written by the commit (set by the writer) */
    uint64_t new_objects;  /* oids its stores create (set by the vote) */
    st_job job;            /* the commit job, embedded: committing allocates nothing */
    store_commit_cb cb;
    void *ud;
};

/* The records a transaction writes, in order: ops (skipping CHECK, dropped
 * stores and UNDO markers) with each UNDO replaced by its generated records.
 * Call with i = 0, then pass the returned cursor back; NULL at the end. */
typedef struct txn_rec_it {
    size_t op;
    size_t gen;      /* position inside the current UNDO's records */
} txn_rec_it;
const txn_op *store__txn_next_rec(const store_txn *t, txn_rec_it *it);

/* Forget t's pending oid -> tid entries (caller holds s->mu). */
void store__pending_remove(store *s, store_txn *t);

/* Write t's records, its transaction value and meta updates in txn (writer
 * thread; t->tid is set). Blob files are installed first. */
int store__apply_txn(store *s, MDB_txn *txn, store_txn *t, zerr *err);

/* Expand t's UNDO operations into records (vote, with a read view). */
int store__undo_expand(store_txn *t, st_view *v, zerr *err);

/* ---- resolve.c: the store's resolver (store_options.resolver) ---------- */

/* Offer the store op (a conflict: its serial is not committed, the oid's
 * current tid) to the resolver. 1 when resolved: op's data is the resolved
 * record, its serial committed, OPF_RESOLVED set. 0 when the conflict
 * stands; never fails otherwise. */
int store__resolve_store(store_txn *t, txn_op *op, uint64_t committed);
/* The vote is over: t->resolved lists the oids of its OPF_RESOLVED
 * stores, and what the resolver read with is released. */
int store__resolve_end(store_txn *t, zerr *err);
/* An undo's revert that later data make fail, offered to the resolver:
 * undone (the record undone), current and pre (the record before the
 * undone one) are pickles. 1 with the resolved record appended to t->buf
 * at *off, *len; 0 when it stands. */
int store__resolve_undo(store_txn *t, uint64_t oid, zslice undone, zslice current, zslice pre,
                        uint64_t *off, uint32_t *len);
/* Writer: a transaction whose resolutions read another's data before it was
 * durable commits only if that one did (its record is in txn); else ZE_IO. */
int store__resolve_base_check(store *s, MDB_txn *txn, const store_txn *t, zerr *err);
/* t is handed to the writer / completed (caller holds s->mu). */
void store__handed_add(store *s, store_txn *t);
void store__handed_remove(store *s, store_txn *t);

#endif
