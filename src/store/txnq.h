/* txnq.h: a transaction as both backends queue and judge it (private to
 * src/store/).
 *
 * Until its commit, a transaction of store.h is the same on LMDB and on
 * PostgreSQL: operations queued in call order (ops), the bytes they store (a
 * txnbuf that spills to a file), the oids it writes, and at vote the
 * decisions that need only each oid's current tid (conflicts, objects
 * created, stores offered to the store's resolver) or a few reads of
 * committed records (which records an undo writes, txnq_undo.c). That is
 * this module. What differs stays in the backend: reading what is committed
 * (LMDB: overlay and snapshot; PostgreSQL: SQL under the oids' locks), and
 * the commit itself.
 *
 * A backend's transaction struct begins with a txnq, so a store_txn * is a
 * txnq * (store__txnq_of), and txnq begins with the backend's table, as
 * backend.h asks. Both tables point at the store__txnq_* functions below
 * that take a store_txn *: they only queue, and behave alike on both.
 * The few things the queue needs from the backend come through txnq_hooks
 * (and, for undo, txnq_undo_hooks).
 *
 * Ownership: everything a txnq holds is its own and freed by
 * store__txnq_deinit; the vote's results (store_vote_result) point into it
 * and stay valid until the next vote or the deinit.
 */
#ifndef ZEOLITE_STORE_TXNQ_H
#define ZEOLITE_STORE_TXNQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/oidmap.h"
#include "common/zbuf.h"
#include "common/zerr.h"
#include "store/backend.h"
#include "store/store.h"
#include "store/txnbuf.h"

enum txn_op_type {
    OP_STORE = 1,   /* store / store_blob: a DATA record, serial checked */
    OP_CHECK,       /* check_current: no record */
    OP_DELETE,      /* delete: a DELETE record, serial checked */
    OP_RECORD,      /* restore / restore_record / undo output: written as given */
    OP_UNDO,        /* undo: expanded at vote into q->gen (store__txnq_undo_expand) */
};

#define OPF_CONFLICT 0x01    /* reported as a write conflict by the last vote */
#define OPF_DROPPED 0x02     /* replaced by a later store after that conflict */
#define OPF_BLOB_LINKED 0x04 /* the caller vouches for the blob file's other links */
#define OPF_RESOLVED 0x08    /* its data is the store's resolver's (vote) */
#define OPF_TARGET 0x10      /* PostgreSQL: a back-pointer whose back_index, data_*
                                and blob_id are final (its target was read) */

/* The record flags an op carries in rflags: the same bits as the backends'
 * own (ST_RF_*, STPG_RF_*), which each backend checks at compile time. */
#define TXN_RF_PREV_ZERO 0x01  /* raw FileStorage prev was 0 (kept for export) */
#define TXN_RF_BLOB 0x04       /* a blob belongs to this record */

typedef struct txn_op {
    uint8_t type;          /* OP_* */
    uint8_t kind;          /* record written: STORE_REC_*, 0 for CHECK / UNDO */
    uint8_t rflags;        /* TXN_RF_* as written */
    uint8_t state;         /* OPF_* */
    uint32_t len;          /* DATA: length in q->buf */
    uint64_t off;          /* DATA: offset in q->buf */
    uint64_t oid;
    uint64_t serial;       /* STORE/CHECK/DELETE: expected serial; UNDO: tid undone */
    uint64_t back_tid;     /* BACKPTR: target transaction */
    uint32_t back_index;   /* BACKPTR: target index or UINT32_MAX (the oid's last
                              record of back_tid) */
    uint32_t data_index;   /* PostgreSQL, BACKPTR: the DATA record at the end of */
    uint64_t data_tid;     /*   the chain (OPF_TARGET); data_tid 0: a deletion */
    uint64_t blob_src;     /* LMDB: undo of a blob record: copy the file of (oid, blob_src) */
    int64_t blob_id;       /* PostgreSQL: the blob's chunks (uploaded, or shared) */
    uint32_t gen_start;    /* UNDO: its records are q->gen[gen_start .. +gen_count) */
    uint32_t gen_count;
    char *blob;            /* blob file to install at commit (owned), or NULL */
} txn_op;

enum txn_state { TXN_OPEN, TXN_VOTED, TXN_COMMITTING, TXN_DONE, TXN_ABORTED };

typedef struct txnq txnq;

/* What the queue asks of its backend. q is the txnq at the start of the
 * backend's own transaction struct. */
typedef struct txnq_hooks {
    /* Check a blob file queued for oid (linked_ok: the caller vouches for
     * its other links): 0, or the error that refuses it. */
    int (*blob_check)(txnq *q, const char *path, int linked_ok, uint64_t oid, zerr *err);
    /* A queued blob file that will not be committed: give it up. */
    void (*blob_discard)(txnq *q, const char *path, int linked_ok);
    /* For the resolver, at vote: the pickle of oid's revision serial into
     * out, 1; or 0 when there is none, it is a deletion or it has a blob.
     * committed: serial is the oid's current revision (else the one the
     * client read, which is durable). */
    int (*revision)(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out);
} txnq_hooks;

struct txnq {
    const store_ops *be;   /* the backend's table: first, as backend.h asks */
    const txnq_hooks *hooks;
    const store_resolver *resolver;   /* the store's (store_options.resolver) */
    uint32_t max_record;   /* the largest record stored, in bytes */
    int state;             /* TXN_*: the backend moves it past TXN_VOTED */
    char status;           /* ' ' or 'p' */
    int explicit_tid;      /* meta.tid given: restore / copyTransactionsFrom */
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

    /* the last vote's results (store_vote_result) */
    store_conflict *conflicts;
    size_t n_conflicts, cap_conflicts;
    zbuf conflict_data;    /* copies of conflicting data */
    uint64_t *changed;
    size_t n_changed, cap_changed;
    store_undo_failure *undo_failures;   /* the failed undo's oids */
    size_t n_undo_failures;
    uint64_t *resolved;    /* oids of OPF_RESOLVED stores */
    size_t n_resolved, cap_resolved;
    size_t n_undo_resolved;
    uint64_t new_objects;  /* oids its stores create (store__txnq_judge) */
};

static inline txnq *store__txnq_of(store_txn *t) { return (txnq *)(void *)t; }

/* ---- begin, abort, free --------------------------------------------------- */

/* store_txn_begin's checks of meta (store.h), against the last committed
 * tid: 0, or ZE_TOOBIG / ZE_INVAL with the reason. */
int store__txnq_check_meta(const store_txn_meta *meta, uint64_t last_tid, zerr *err);
/* Make q (zeroed by the caller) an open transaction of meta, after
 * store__txnq_check_meta: bytes stored go to a txnbuf spilling into tmp_fd
 * (named tmp_shown in messages; txnbuf_init). ZE_NOMEM: q is half built,
 * store__txnq_deinit frees it. */
int store__txnq_init(txnq *q, const store_ops *be, const txnq_hooks *hooks,
                     const store_txn_meta *meta, const store_resolver *resolver,
                     uint32_t max_record, int tmp_fd, const char *tmp_shown, zerr *err);
/* Abort: the queued blob files are given up, the stored bytes dropped, and
 * q is TXN_ABORTED (store_txn_abort; the caller checks it may). */
void store__txnq_abort(txnq *q);
/* Free what q holds (not q): the blob files of a transaction that did not
 * commit (state not TXN_DONE) are given up. */
void store__txnq_deinit(txnq *q);

/* ---- queueing: store.h's functions, the same on both backends ------------- */

int store__txnq_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len,
                      zerr *err);
int store__txnq_store_blob(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                           size_t len, const char *blob_path, zerr *err);
int store__txnq_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
int store__txnq_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
int store__txnq_undo(store_txn *t, uint64_t undo_tid, zerr *err);
int store__txnq_restore_record(store_txn *t, const store_record *rec, const char *blob_path,
                               zerr *err);
int store__txnq_each_oid(store_txn *t, store_lock_cb cb, void *ud);
int store__txnq_exclusive(store_txn *t);
const uint64_t *store__txnq_oids(store_txn *t, size_t *n);

/* The records a transaction writes, in order: ops (skipping CHECK, dropped
 * stores and UNDO markers) with each UNDO replaced by its generated records.
 * Start with a zeroed cursor and pass it back; NULL at the end. */
typedef struct txn_rec_it {
    size_t op;
    size_t gen;      /* position inside the current UNDO's records */
} txn_rec_it;
const txn_op *store__txnq_next_rec(const txnq *q, txn_rec_it *it);

/* ---- the vote's decisions --------------------------------------------------- */

/* A back-pointer op whose target (back_tid, back_index) does not exist, at
 * vote or when it is written: ZE_NOTFOUND, saying so. */
int store__txnq_no_target(const txn_op *op, zerr *err);
/* 1 for an op the vote checks against the oid's current tid: a store, a
 * check or a delete, not dropped. */
int store__txnq_checked(const txn_op *op);
/* The start of a vote: res (may be NULL) cleared; ZE_TXN unless q is open;
 * the last vote's results forgotten. */
int store__txnq_vote_start(txnq *q, store_vote_result *res, zerr *err);
/* Offer each store whose serial is not cur[i], the current tid of op i's oid
 * (0: none), to the store's resolver (when it has one): a resolved store
 * holds the resolver's record, serial cur[i], OPF_RESOLVED. Reads through
 * hooks->revision; never fails (an unresolved conflict stands). */
void store__txnq_resolve_stores(txnq *q, const uint64_t *cur);
/* An undo's revert that later data make fail, offered to the resolver:
 * undone (the record undone), current and pre (the record before the undone
 * one) are pickles. 1 with the resolved record appended to q->buf at *off,
 * *len (counted in n_undo_resolved); 0 when it stands. */
int store__txnq_resolve_undo(txnq *q, uint64_t oid, zslice undone, zslice current, zslice pre,
                             uint64_t *off, uint32_t *len);
/* Judge each checked op against cur (as above): new_objects counted; each
 * conflict listed (OPF_CONFLICT on stores); then ZE_NOTFOUND for a delete
 * of an oid without a record, ZE_READCONFLICT / ZE_CONFLICT for the first
 * check or delete that conflicts (not resolvable by the client), ZE_CONFLICT
 * when only stores conflict, else 0. */
int store__txnq_judge(txnq *q, const uint64_t *cur, zerr *err);
/* The end of a vote whose checks returned rc: q->resolved lists the oids of
 * its OPF_RESOLVED stores (ZE_NOMEM when that fails and rc was 0), res (may
 * be NULL) lists the results, and q is TXN_VOTED when the vote succeeded.
 * Returns the vote's result. */
int store__txnq_vote_end(txnq *q, int rc, store_vote_result *res, zerr *err);

/* ---- undo (txnq_undo.c) ------------------------------------------------------ */

/* A committed record as the undo reads it through its hooks. data points
 * into what the backend read, valid until done() is called on it. */
typedef struct txnq_rec {
    uint64_t tid;
    uint32_t index;        /* its position in its transaction */
    uint8_t kind;          /* STORE_REC_*; 0 when there is none */
    uint8_t flags;         /* TXN_RF_* (and the backend's own bits) */
    uint64_t back_tid;     /* BACKPTR: one link, as written */
    uint32_t back_index;
    uint64_t data_tid;     /* BACKPTR: the DATA record at the end of the chain */
    uint32_t data_index;   /*   (data_tid 0: the chain ends in a deletion) */
    int64_t blob_id;       /* PostgreSQL: its blob's chunks, 0: none */
    const uint8_t *data;   /* DATA: the pickle (NULL where not read) */
    size_t len;
    void *hold;            /* the backend's, for done() */
} txnq_rec;

/* What the undo reads, from the vote's view of committed data (nothing in
 * it may change during the vote). Each function that fills a txnq_rec
 * (zeroed by the caller) may set its hold, whatever it returns; the undo
 * calls done() once on every such record. ud is store__txnq_undo_expand's.
 * Errors other than ZE_NOTFOUND fill err and are the vote's. */
typedef struct txnq_undo_hooks {
    /* Transaction T's status: 0; ZE_NOTFOUND when there is none. */
    int (*undone)(void *ud, uint64_t T, char *status, zerr *err);
    /* T's records are read next, *n of them, by record(), then records_end(). */
    int (*records)(void *ud, uint64_t T, uint32_t *n, zerr *err);
    int (*record)(void *ud, uint64_t T, uint32_t i, uint64_t *oid, txnq_rec *out, zerr *err);
    void (*records_end)(void *ud);
    /* oid's current record (the newest that loads see); ZE_NOTFOUND: none. */
    int (*current)(void *ud, uint64_t oid, txnq_rec *out, zerr *err);
    /* oid's newest record before T that loads see; ZE_NOTFOUND: none. */
    int (*prev)(void *ud, uint64_t oid, uint64_t T, txnq_rec *out, zerr *err);
    /* The record that record index of tid (oid's) stands for, back-pointers
     * followed: kind STORE_REC_DATA with its pickle, or another kind when
     * the chain ends in a deletion. ZE_NOTFOUND: no record (tid, index). */
    int (*data)(void *ud, uint64_t oid, uint64_t tid, uint32_t index, txnq_rec *out, zerr *err);
    void (*done)(void *ud, txnq_rec *r);
    /* A revert record op (a back-pointer) of a record whose data, data,
     * have a blob: give op the blob as the backend shares it. */
    void (*revert_blob)(void *ud, txn_op *op, const txnq_rec *data);
} txnq_undo_hooks;

/* Expand q's UNDO operations into records in q->gen (vote), FileStorage's
 * way (txnq_undo.c says how): 0; ZE_UNDO with q->undo_failures when an
 * undo cannot be done; ZE_CORRUPT or the hooks' errors. q->changed lists
 * the oids the records change. */
int store__txnq_undo_expand(txnq *q, const txnq_undo_hooks *h, void *ud, zerr *err);

#endif
