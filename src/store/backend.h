/* backend.h: the table of operations behind store.h (private to src/store/).
 *
 * store.h is the one contract; each backend implements it as a store_ops
 * table. Every object store.h hands out (store, store_reader, store_txn,
 * store_iter) begins with a pointer to its backend's table, and api.c
 * calls through it. Functions that choose a backend from a spec
 * (store_open, store_exists, store_is_locked), and those written once on top of others
 * (store_load_blob, store_blob_tmpname, store_txn_restore), live in api.c.
 * A NULL entry is an operation the backend does not offer: api.c answers
 * ZE_NOTSUP with the table's reason.
 */
#ifndef ZEOLITE_STORE_BACKEND_H
#define ZEOLITE_STORE_BACKEND_H

#include "store/store.h"

typedef struct store_ops {
    const char *name;           /* "lmdb", "postgresql" */
    unsigned caps;              /* STORE_CAP_* */
    const char *no_backup;      /* why store_backup is not offered (when NULL) */
    void (*close)(store *s);
    uint64_t (*last_tid)(store *s);
    int (*is_read_only)(store *s);
    uint64_t (*object_count)(store *s);
    uint64_t (*size_bytes)(store *s);
    void (*map_info)(store *s, uint64_t *used, uint64_t *size);
    const char *(*blob_dir)(store *s);
    int (*new_oids)(store *s, int n, uint64_t *out, zerr *err);
    int (*reader_new)(store *s, store_reader **out, zerr *err);
    void (*reader_free)(store_reader *r);
    int (*reader_refresh)(store_reader *r, zerr *err);
    uint64_t (*reader_last_tid)(store_reader *r);
    int (*load_before)(store_reader *r, uint64_t oid, uint64_t before, zbuf *data, uint64_t *start, uint64_t *end, zerr *err);
    int (*load_serial)(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data, zerr *err);
    int (*current_tid)(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err);
    int (*history)(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud, zerr *err);
    int (*undo_log)(store_reader *r, int first, int last, store_txn_cb filter, void *filter_ud, store_txn_cb cb, void *ud, zerr *err);
    int (*record_iternext)(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid, zbuf *data, uint64_t *next, int *has_next, zerr *err);
    int (*changes_since)(store_reader *r, uint64_t after, uint64_t *latest, store_oid_cb cb, void *ud, zerr *err);
    int (*iter_open)(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err);
    int (*iter_open_resumable)(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err);
    int (*iter_next_txn)(store_iter *it, store_txn_info *info, zerr *err);
    int (*iter_next_record)(store_iter *it, store_record *rec, zerr *err);
    void (*iter_close)(store_iter *it);
    int (*txn_begin)(store *s, const store_txn_meta *meta, store_txn **out, zerr *err);
    int (*txn_store)(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, zerr *err);
    int (*txn_store_blob)(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, const char *blob_path, zerr *err);
    int (*txn_store_blob_shared)(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, const char *name, zerr *err);
    int (*txn_check_current)(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
    int (*txn_delete)(store_txn *t, uint64_t oid, uint64_t serial, zerr *err);
    int (*txn_undo)(store_txn *t, uint64_t undo_tid, zerr *err);
    int (*txn_restore_record)(store_txn *t, const store_record *rec, const char *blob_path, zerr *err);
    int (*txn_vote)(store_txn *t, store_vote_result *res, zerr *err);
    int (*txn_each_oid)(store_txn *t, store_lock_cb cb, void *ud);
    int (*txn_exclusive)(store_txn *t);
    int (*txn_commit)(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err);
    int (*txn_finish)(store_txn *t, uint64_t *tid, zerr *err);
    int (*bulk_begin)(store *s, zerr *err);
    int (*bulk_end)(store *s, zerr *err);
    int (*bulk_abort)(store *s, zerr *err);
    void (*txn_abort)(store_txn *t);
    void (*txn_free)(store_txn *t);
    const uint64_t *(*txn_oids)(store_txn *t, size_t *n);
    int (*blob_path)(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap);
    int (*open_blob)(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap, int *fd, zerr *err);
    int (*blob_file_open)(store *s, uint64_t oid, uint64_t tid, zerr *err);
    int (*blob_tmpfile)(store *s, char *buf, size_t cap, int *fd, zerr *err);
    int (*blob_discard)(store *s, const char *path);
    int (*pack)(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err);
    int (*backup)(store *s, const char *dest, int compact, zerr *err);
    int (*backup_progress)(store *s, const char *dest, int compact, store_progress_fn fn,
                           void *data, zerr *err);
    void (*get_stats)(store *s, store_stats *out);
    int (*feed_start)(store *s, store_feed_fn fn, void *ud, zerr *err);
    int (*sync)(store *s, uint32_t timeout_ms, uint64_t *tid, zerr *err); /* NULL: knows every commit */
    int (*refused)(store *s, zerr *why); /* NULL: never refuses its database */
} store_ops;

/* ---- written once for both backends (api.c) ---- */

struct txnbuf;
/* Run rv->resolve on (old, committed, new_rec): 1 with the resolved record,
 * non-empty and at most max bytes, appended to buf at *off, *len; else 0. */
int store__resolver_run(const store_resolver *rv, uint32_t max, struct txnbuf *buf,
                        uint64_t oid, zslice old, zslice committed, zslice new_rec,
                        uint64_t *off, uint32_t *len);

/* The table of any object of store.h: its first member. */
#define STORE_OPS(obj) (*(const store_ops *const *)(const void *)(obj))

extern const store_ops store__lmdb_ops;
extern const store_ops store__pg_ops;

#endif
