/* api.c: store.h's functions: each calls its object's backend (backend.h);
 * store_open chooses the backend from its spec. */
#include "store/backend.h"

#include <string.h>
#include <unistd.h>

#include "store/lmdb_api.h"
#include "store/pg.h"
#include "store/txnbuf.h"

int store_spec_is_postgresql(const char *spec)
{
    return !strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11);
}

int store_open(store **out, const char *spec, const store_options *opt, zerr *err)
{
    if (store_spec_is_postgresql(spec))
        return store__pg_open(out, spec, opt, err);
    if (opt && opt->shared) {
        *out = NULL;
        return zerr_set(err, ZE_NOTSUP, "a shared store is a PostgreSQL setting: an LMDB "
                        "folder is served by one process (serve several from PostgreSQL)");
    }
    return store__lmdb_open(out, spec, opt, err);
}

int store_feed_start(store *s, store_feed_fn fn, void *ud, zerr *err)
{
    const store_ops *o = STORE_OPS(s);
    if (!o->feed_start)
        return zerr_set(err, ZE_NOTSUP, "a change feed tells of other stores' commits: an "
                        "LMDB folder has no other store (its commits are all its own)");
    return o->feed_start(s, fn, ud, err);
}

int store_sync(store *s, uint32_t timeout_ms, uint64_t *tid, zerr *err)
{
    const store_ops *o = STORE_OPS(s);
    if (!o->sync) {
        *tid = o->last_tid(s);
        return ZE_OK;
    }
    return o->sync(s, timeout_ms, tid, err);
}

int store_refused(store *s, zerr *why)
{
    const store_ops *o = STORE_OPS(s);
    return o->refused ? o->refused(s, why) : 0;
}

int store_open_postgresql(store **out, const char *conninfo, const store_options *opt,
                          zerr *err)
{
    return store__pg_open(out, conninfo, opt, err);
}

int store_exists(const char *spec)
{
    if (store_spec_is_postgresql(spec))
        return store__pg_exists(spec);
    return store__lmdb_exists(spec);
}

int store_is_locked(const char *spec)
{
    if (store_spec_is_postgresql(spec))
        return store__pg_is_locked(spec);
    return store__lmdb_is_locked(spec);
}

unsigned store_caps(store *s) { return STORE_OPS(s)->caps; }
const char *store_backend_name(store *s) { return STORE_OPS(s)->name; }

/* ---- written once, on top of the others ---------------------------------- */

int store_load_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap,
                    zerr *err)
{
    int fd = -1, rc = store_open_blob(r, oid, serial, buf, cap, &fd, err);
    if (!rc)
        close(fd);
    return rc;
}

int store_blob_tmpname(store *s, char *buf, size_t cap, zerr *err)
{
    int fd = -1, rc = store_blob_tmpfile(s, buf, cap, &fd, err);
    if (!rc)
        close(fd);
    return rc;
}

int store_txn_restore(store_txn *t, uint64_t oid, const void *data, size_t len,
                      uint64_t prev_txn, zerr *err)
{
    store_record rec = {.oid = oid, .kind = STORE_REC_DELETE};
    if (data) {
        rec.kind = STORE_REC_DATA;
        rec.data = (zslice){data, len};
    } else if (prev_txn) {
        rec.kind = STORE_REC_BACKPTR;
        rec.back_tid = prev_txn;
        rec.back_index = UINT32_MAX;   /* the oid's last record of prev_txn */
    }
    return store_txn_restore_record(t, &rec, NULL, err);
}

int store__resolver_run(const store_resolver *rv, uint32_t max, struct txnbuf *buf,
                        uint64_t oid, zslice old, zslice committed, zslice new_rec,
                        uint64_t *off, uint32_t *len)
{
    zbuf out = ZBUF_INIT;
    int ok = rv->resolve(rv->data, oid, old, committed, new_rec, &out) == 1 && out.len &&
             out.len <= max && txnbuf_append(buf, out.data, out.len, off, NULL) == 0;
    if (ok)
        *len = (uint32_t)out.len;
    zbuf_free(&out);
    return ok;
}

/* ---- through the table ------------------------------------------------------ */

void store_close(store *s)
{
    if (s)
        STORE_OPS(s)->close(s);
}

uint64_t store_last_tid(store *s)
{
    return STORE_OPS(s)->last_tid(s);
}

int store_is_read_only(store *s)
{
    return STORE_OPS(s)->is_read_only(s);
}

uint64_t store_object_count(store *s)
{
    return STORE_OPS(s)->object_count(s);
}

uint64_t store_size_bytes(store *s)
{
    return STORE_OPS(s)->size_bytes(s);
}

void store_map_info(store *s, uint64_t *used, uint64_t *size)
{
    STORE_OPS(s)->map_info(s, used, size);
}

const char *store_blob_dir(store *s)
{
    return STORE_OPS(s)->blob_dir(s);
}

int store_new_oids(store *s, int n, uint64_t *out, zerr *err)
{
    return STORE_OPS(s)->new_oids(s, n, out, err);
}

int store_reader_new(store *s, store_reader **out, zerr *err)
{
    return STORE_OPS(s)->reader_new(s, out, err);
}

void store_reader_free(store_reader *r)
{
    if (r)
        STORE_OPS(r)->reader_free(r);
}

int store_reader_refresh(store_reader *r, zerr *err)
{
    return STORE_OPS(r)->reader_refresh(r, err);
}

uint64_t store_reader_last_tid(store_reader *r)
{
    return STORE_OPS(r)->reader_last_tid(r);
}

int store_load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data, uint64_t *start, uint64_t *end, zerr *err)
{
    return STORE_OPS(r)->load_before(r, oid, before, data, start, end, err);
}

int store_load_serial(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data, zerr *err)
{
    return STORE_OPS(r)->load_serial(r, oid, serial, data, err);
}

int store_current_tid(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err)
{
    return STORE_OPS(r)->current_tid(r, oid, tid, err);
}

int store_history(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud, zerr *err)
{
    return STORE_OPS(r)->history(r, oid, size, cb, ud, err);
}

int store_undo_log(store_reader *r, int first, int last, store_txn_cb filter, void *filter_ud, store_txn_cb cb, void *ud, zerr *err)
{
    return STORE_OPS(r)->undo_log(r, first, last, filter, filter_ud, cb, ud, err);
}

int store_record_iternext(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid, zbuf *data, uint64_t *next, int *has_next, zerr *err)
{
    return STORE_OPS(r)->record_iternext(r, from, oid, tid, data, next, has_next, err);
}

int store_changes_since(store_reader *r, uint64_t after, uint64_t *latest, store_oid_cb cb, void *ud, zerr *err)
{
    return STORE_OPS(r)->changes_since(r, after, latest, cb, ud, err);
}

int store_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err)
{
    return STORE_OPS(s)->iter_open(s, start, stop, out, err);
}

int store_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err)
{
    return STORE_OPS(s)->iter_open_resumable(s, start, stop, out, err);
}

int store_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err)
{
    return STORE_OPS(it)->iter_next_txn(it, info, err);
}

int store_iter_next_record(store_iter *it, store_record *rec, zerr *err)
{
    return STORE_OPS(it)->iter_next_record(it, rec, err);
}

void store_iter_close(store_iter *it)
{
    if (it)
        STORE_OPS(it)->iter_close(it);
}

int store_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err)
{
    return STORE_OPS(s)->txn_begin(s, meta, out, err);
}

int store_txn_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, zerr *err)
{
    return STORE_OPS(t)->txn_store(t, oid, serial, data, len, err);
}

int store_txn_store_blob(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, const char *blob_path, zerr *err)
{
    return STORE_OPS(t)->txn_store_blob(t, oid, serial, data, len, blob_path, err);
}

int store_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial, const void *data, size_t len, const char *name, zerr *err)
{
    return STORE_OPS(t)->txn_store_blob_shared(t, oid, serial, data, len, name, err);
}

int store_txn_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return STORE_OPS(t)->txn_check_current(t, oid, serial, err);
}

int store_txn_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return STORE_OPS(t)->txn_delete(t, oid, serial, err);
}

int store_txn_undo(store_txn *t, uint64_t undo_tid, zerr *err)
{
    return STORE_OPS(t)->txn_undo(t, undo_tid, err);
}

int store_txn_restore_record(store_txn *t, const store_record *rec, const char *blob_path, zerr *err)
{
    return STORE_OPS(t)->txn_restore_record(t, rec, blob_path, err);
}

int store_txn_vote(store_txn *t, store_vote_result *res, zerr *err)
{
    return STORE_OPS(t)->txn_vote(t, res, err);
}

int store_txn_each_oid(store_txn *t, store_lock_cb cb, void *ud)
{
    return STORE_OPS(t)->txn_each_oid(t, cb, ud);
}

int store_txn_exclusive(store_txn *t)
{
    return STORE_OPS(t)->txn_exclusive(t);
}

int store_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err)
{
    return STORE_OPS(t)->txn_commit(t, tid, cb, ud, err);
}

int store_txn_finish(store_txn *t, uint64_t *tid, zerr *err)
{
    return STORE_OPS(t)->txn_finish(t, tid, err);
}

int store_bulk_begin(store *s, zerr *err)
{
    return STORE_OPS(s)->bulk_begin(s, err);
}

int store_bulk_end(store *s, zerr *err)
{
    return STORE_OPS(s)->bulk_end(s, err);
}

int store_bulk_abort(store *s, zerr *err)
{
    return STORE_OPS(s)->bulk_abort(s, err);
}

void store_txn_abort(store_txn *t)
{
    if (t)
        STORE_OPS(t)->txn_abort(t);
}

void store_txn_free(store_txn *t)
{
    if (t)
        STORE_OPS(t)->txn_free(t);
}

const uint64_t *store_txn_oids(store_txn *t, size_t *n)
{
    return STORE_OPS(t)->txn_oids(t, n);
}

int store_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap)
{
    return STORE_OPS(s)->blob_path(s, oid, tid, buf, cap);
}

int store_open_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap, int *fd, zerr *err)
{
    return STORE_OPS(r)->open_blob(r, oid, serial, buf, cap, fd, err);
}

int store_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    return STORE_OPS(s)->blob_file_open(s, oid, tid, err);
}

int store_blob_tmpfile(store *s, char *buf, size_t cap, int *fd, zerr *err)
{
    return STORE_OPS(s)->blob_tmpfile(s, buf, cap, fd, err);
}

int store_blob_discard(store *s, const char *path)
{
    return STORE_OPS(s)->blob_discard(s, path);
}

int store_pack(store *s, double pack_time, int gc, store_pack_stats *stats, zerr *err)
{
    return STORE_OPS(s)->pack(s, pack_time, gc, stats, err);
}

int store_backup(store *s, const char *dest, int compact, zerr *err)
{
    const store_ops *o = STORE_OPS(s);
    if (!o->backup)
        return zerr_set(err, ZE_NOTSUP, "%s", o->no_backup);
    return o->backup(s, dest, compact, err);
}

int store_backup_progress(store *s, const char *dest, int compact, store_progress_fn fn,
                          void *data, zerr *err)
{
    const store_ops *o = STORE_OPS(s);
    if (!o->backup_progress)
        return zerr_set(err, ZE_NOTSUP, "%s", o->no_backup);
    return o->backup_progress(s, dest, compact, fn, data, err);
}

void store_get_stats(store *s, store_stats *out)
{
    STORE_OPS(s)->get_stats(s, out);
}

