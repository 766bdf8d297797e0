/* index.h: the records index as readers see it, and its batched upkeep
 * (private to src/store/).
 *
 * A commit appends its records to "values" and writes no index entry: the
 * entries of the transactions after meta "indexed" live in memory, in the
 * overlay, until the writer applies a batch of them to "records" in one
 * write (the index batch). Each entry is derived from a committed value, so
 * the overlay is a cache of what the LMDB snapshot itself implies: a view,
 * an LMDB snapshot plus the overlay entries with indexed < tid <= last of
 * that snapshot, sees exactly the snapshot. Another process (or this one
 * after a crash) rebuilds the entries it lacks from "values".
 *
 * Overlay entries stay until no view needs them: every view in use is
 * registered with it, and the writer drops only entries that "records"
 * holds in LMDB's newest state and that no registered view reads.
 */
#ifndef ZEOLITE_STORE_INDEX_H
#define ZEOLITE_STORE_INDEX_H

#include "store/store_internal.h"

struct st_view {
    store *s;
    MDB_txn *txn;           /* the snapshot (or the writer's write txn) */
    MDB_cursor *cur;        /* on "records" in txn */
    uint64_t indexed;       /* "records" in txn holds every entry with tid <= this */
    uint64_t last;          /* the view holds no entry past this tid */
    st_view *next, *prev;   /* among the overlay's views */
    int registered;
    int owns_txn;
};

/* ---- views ---------------------------------------------------------------- */

/* Begin a read view: a fresh MDB_RDONLY snapshot, registered. Call between
 * store__map_enter and store__map_leave. */
int store__view_begin(store *s, st_view *v, zerr *err);
/* Move a read view to the newest snapshot (reset + renew). Same bracket. */
int store__view_renew(st_view *v, zerr *err);
/* Renew v's cursor after a map growth. */
void store__view_remap(st_view *v);
/* Unregister and end a read view (aborting its snapshot). Same bracket. */
void store__view_end(st_view *v);
/* Drop the snapshot but keep the view for a later renew (unregistered). */
void store__view_reset(st_view *v);

/* A view of the writer's own write transaction: every overlay entry counts
 * (the writer adds them), none is dropped meanwhile (the writer drops). */
int store__view_write(store *s, MDB_txn *txn, st_view *v, zerr *err);
void store__view_write_end(st_view *v);

/* ---- lookups ---------------------------------------------------------------- */

/* The newest record of oid with tid < before: 0 with *e (ST_RF_HIDDEN set
 * when a later record hides it) and *next, the tid of the record after it
 * (0: none). ZE_NOTFOUND: the oid has no record; ZE_NOREV: none before
 * (both without a message: votes ask for many oids that do not exist). */
int store__view_find(st_view *v, uint64_t oid, uint64_t before, st_ent *e, uint64_t *next,
                     zerr *err);
/* The entry of (oid, tid): 0 with *e, or ZE_NOTFOUND. */
int store__view_get(st_view *v, uint64_t oid, uint64_t tid, st_ent *e, zerr *err);
/* The first oid >= from with a record: 0 with *oid, or ZE_NOTFOUND. */
int store__view_next_oid(st_view *v, uint64_t from, uint64_t *oid, zerr *err);

/* Record i of transaction tid for oid: "values"(tid, i) when i is given
 * (whose oid must be oid), else the oid's last record there through the
 * index (ST_RF_HIDDEN as the index says). ZE_NOTFOUND when absent. */
int store__rec_get(st_view *v, uint64_t oid, uint64_t tid, uint32_t index, st_rec *out,
                   zerr *err);
/* The data record a record stands for: itself for DATA; the end of the
 * chain for BACKPTR (one lookup); kind STORE_REC_DELETE when the chain ends
 * in a deletion. */
int store__rec_resolve(st_view *v, uint64_t oid, const st_rec *rec, st_rec *out, zerr *err);
/* The record an index entry of oid names (its data for DATA, the end of the
 * chain for BACKPTR, nothing for a deletion): *out->kind says which. */
int store__ent_data(st_view *v, uint64_t oid, const st_ent *e, st_rec *out, zerr *err);

/* ---- the writer's upkeep ------------------------------------------------------ */

/* Number of entries, to undo later additions with store__overlay_cut. */
size_t store__overlay_mark(store *s);
/* Add the entry of oid's last record in transaction e->tid (a later call
 * for the same oid and tid replaces it). */
int store__overlay_add(store *s, uint64_t oid, const st_ent *e);
/* Remove the entries added after mark (a write that failed). */
void store__overlay_cut(store *s, size_t mark);
/* Entries for every transaction through tid are in the overlay. */
void store__overlay_known(store *s, uint64_t tid);
/* Entries waiting for the index batch. */
size_t store__overlay_pending(store *s);

/* Apply every overlay entry past s->indexed_txn to "records" in txn and set
 * meta "indexed" (writer thread). Counts the objects it creates. */
int store__index_apply(store *s, MDB_txn *txn, zerr *err);
/* The write that carried store__index_apply committed (ok) or failed. */
void store__index_done(store *s, int ok);
/* Forget the entries no view needs any more (after each group of writes). */
void store__overlay_drop(store *s);

/* Add the entries of committed transactions after the overlay's known tid
 * (and after meta "indexed") up to the last one in txn, read from "values":
 * at open, and when a read view in another process than the writer's sees
 * new commits. */
int store__overlay_catch_up(store *s, MDB_txn *txn, zerr *err);

void store__overlay_init(store *s);
void store__overlay_free(store *s);

#endif
