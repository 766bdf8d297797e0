/* lmdb_api.h: the LMDB backend's functions behind store.h (private to
 * src/store/): one per function of store.h, same contract. */
#ifndef ZEOLITE_STORE_LMDB_API_H
#define ZEOLITE_STORE_LMDB_API_H

#include "store/store.h"

int store__lmdb_open(store **out, const char *spec, const store_options *opt, zerr *err);
void store__lmdb_close(store *s);
int store__lmdb_exists(const char *spec);
int store__lmdb_is_locked(const char *spec);
uint64_t store__lmdb_last_tid(store *s);
int store__lmdb_is_read_only(store *s);
uint64_t store__lmdb_object_count(store *s);
uint64_t store__lmdb_size_bytes(store *s);
void store__lmdb_map_info(store *s, uint64_t *used, uint64_t *size);
const char *store__lmdb_blob_dir(store *s);
int store__lmdb_new_oids(store *s, int n, uint64_t *out, zerr *err);
int store__lmdb_reader_new(store *s, store_reader **out, zerr *err);
void store__lmdb_reader_free(store_reader *r);
int store__lmdb_reader_refresh(store_reader *r, zerr *err);
uint64_t store__lmdb_reader_last_tid(store_reader *r);
int store__lmdb_load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data, uint64_t *start, uint64_t *end, zerr *err);
int store__lmdb_load_serial(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data, zerr *err);
int store__lmdb_current_tid(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err);
int store__lmdb_history(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud, zerr *err);
int store__lmdb_undo_log(store_reader *r, int first, int last, store_txn_cb filter, void *filter_ud, store_txn_cb cb, void *ud, zerr *err);
int store__lmdb_record_iternext(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid, zbuf *data, uint64_t *next, int *has_next, zerr *err);
int store__lmdb_changes_since(store_reader *r, uint64_t after, uint64_t *latest, store_oid_cb cb, void *ud, zerr *err);
int store__lmdb_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err);
int store__lmdb_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err);
int store__lmdb_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err);
int store__lmdb_iter_next_record(store_iter *it, store_record *rec, zerr *err);
void store__lmdb_iter_close(store_iter *it);
int store__lmdb_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err);
int store__lmdb_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, const char *name, zerr *err);
int store__lmdb_txn_vote(store_txn *t, store_vote_result *res, zerr *err);
int store__lmdb_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err);
int store__lmdb_txn_finish(store_txn *t, uint64_t *tid, zerr *err);
int store__lmdb_bulk_begin(store *s, zerr *err);
int store__lmdb_bulk_end(store *s, zerr *err);
void store__lmdb_txn_abort(store_txn *t);
void store__lmdb_txn_free(store_txn *t);
int store__lmdb_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap);
int store__lmdb_open_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap, int *fd, zerr *err);
int store__lmdb_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err);
int store__lmdb_blob_tmpfile(store *s, char *buf, size_t cap, int *fd, zerr *err);
int store__lmdb_blob_discard(store *s, const char *path);
int store__lmdb_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err);
int store__lmdb_backup(store *s, const char *dest, int compact, zerr *err);
int store__lmdb_backup_progress(store *s, const char *dest, int compact, store_progress_fn fn, void *data, zerr *err);
void store__lmdb_get_stats(store *s, store_stats *out);

#endif
