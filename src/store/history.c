/* history.c: reads over many records or transactions: history, undo_log,
 * record_iternext, changes_since. Callbacks run while the snapshot's map is
 * pinned (they must not call back into the store). */
#include "store/reader.h"

/* Transaction metadata of tid, slices into the snapshot. */
static int txn_info(store_reader *r, uint64_t tid, store_txn_info *info, st_txnval *tv,
                    zerr *err)
{
    uint8_t key[8];
    zbe64_put(key, tid);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(r->v.txn, r->s->dbi_txns, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND
                   ? zerr_set(err, ZE_CORRUPT, "transaction %016llx is missing",
                              (unsigned long long)tid)
                   : store__mdb_err(err, rc, "read transaction");
    if (store__txnval_decode(v.mv_data, v.mv_size, tv))
        return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx", (unsigned long long)tid);
    *info = (store_txn_info){tid, tv->status, tv->user, tv->description, tv->extension,
                             tv->size};
    return 0;
}

/* The length history reports for a record: its pickle's (0 for others). */
static int record_size(store_reader *r, uint64_t oid, const st_ent *e, uint64_t *size,
                       zerr *err)
{
    st_rec rec;
    *size = 0;
    if (e->kind != STORE_REC_DATA)
        return 0;
    int rc = store__rec_get(&r->v, oid, e->tid, e->index, &rec, err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(err, ZE_CORRUPT, "index entry %016llx@%016llx names a missing record",
                        (unsigned long long)oid, (unsigned long long)e->tid);
    if (!rc)
        *size = rec.len;
    return rc;
}

static int history(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud,
                   zerr *err)
{
    st_ent e;
    uint64_t next;
    int rc = store__view_find(&r->v, oid, UINT64_MAX, &e, &next, err);
    if (rc == ZE_NOTFOUND || rc == ZE_NOREV)
        return zerr_set(err, ZE_NOTFOUND, "oid %016llx does not exist", (unsigned long long)oid);
    for (int i = 0; !rc && i < (size < 1 ? 1 : size); i++) {
        store_txn_info info;
        st_txnval tv;
        if (e.flags & ST_RF_HIDDEN)
            break;
        if ((rc = txn_info(r, e.tid, &info, &tv, err)) ||
            (rc = record_size(r, oid, &e, &info.size, err)) || (rc = cb(&info, ud)))
            return rc;
        rc = store__view_find(&r->v, oid, e.tid, &e, &next, err);
    }
    return rc == ZE_NOREV ? 0 : rc;
}

int store__lmdb_history(store_reader *r, uint64_t oid, int size, store_txn_cb cb, void *ud,
                  zerr *err)
{
    store__reader_enter(r);
    int rc = history(r, oid, size, cb, ud, err);
    store__map_leave(r->s);
    return rc;
}

static int undo_log(store_reader *r, int first, int last, store_txn_cb filter,
                    void *filter_ud, store_txn_cb cb, void *ud, zerr *err)
{
    if (last < 0)
        last = first - last;
    MDB_val k, v;
    int rc = mdb_cursor_get(r->txc, &k, &v, MDB_LAST);
    for (int i = 0; !rc && i < last; rc = mdb_cursor_get(r->txc, &k, &v, MDB_PREV)) {
        st_txnval tv;
        if (store__txnval_decode(v.mv_data, v.mv_size, &tv))
            return zerr_set(err, ZE_CORRUPT, "damaged transaction");
        if (tv.status == 'p')
            break;
        store_txn_info info = {zbe64(k.mv_data), tv.status, tv.user, tv.description,
                               tv.extension, tv.size};
        if (filter && !filter(&info, filter_ud))
            continue;
        if (i++ >= first && (rc = cb(&info, ud)))
            return rc;
    }
    return rc && rc != MDB_NOTFOUND ? store__mdb_err(err, rc, "undo log") : 0;
}

int store__lmdb_undo_log(store_reader *r, int first, int last, store_txn_cb filter,
                   void *filter_ud, store_txn_cb cb, void *ud, zerr *err)
{
    store__reader_enter(r);
    int rc = undo_log(r, first, last, filter, filter_ud, cb, ud, err);
    store__map_leave(r->s);
    return rc;
}

static int iternext(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid, zbuf *data,
                    uint64_t *next, int *has_next, zerr *err)
{
    int rc;
    for (rc = store__view_next_oid(&r->v, from, oid, err); !rc;
         rc = store__view_next_oid(&r->v, *oid + 1, oid, err)) {
        st_ent e;
        st_rec d;
        uint64_t after;
        if ((rc = store__view_find(&r->v, *oid, UINT64_MAX, &e, &after, err)) ||
            (rc = store__ent_data(&r->v, *oid, &e, &d, err)))
            return rc == ZE_NOTFOUND || rc == ZE_NOREV
                       ? zerr_set(err, ZE_CORRUPT, "damaged records of oid %016llx",
                                  (unsigned long long)*oid)
                       : rc;
        if (d.kind != STORE_REC_DATA) {
            if (*oid == UINT64_MAX)
                break;
            continue;
        }
        *tid = e.tid;
        if (zbuf_set(data, d.data, d.len))
            return zerr_set(err, ZE_NOMEM, "out of memory");
        *has_next = 0;
        if (*oid != UINT64_MAX) {
            rc = store__view_next_oid(&r->v, *oid + 1, next, err);
            if (rc && rc != ZE_NOTFOUND)
                return rc;
            *has_next = !rc;
        }
        if (!*has_next)
            *next = 0;
        return 1;
    }
    return rc == ZE_NOTFOUND || !rc ? 0 : rc;
}

int store__lmdb_record_iternext(store_reader *r, uint64_t from, uint64_t *oid, uint64_t *tid,
                          zbuf *data, uint64_t *next, int *has_next, zerr *err)
{
    store__reader_enter(r);
    int rc = iternext(r, from, oid, tid, data, next, has_next, err);
    store__map_leave(r->s);
    return rc;
}

static int changes_since(store_reader *r, uint64_t after, uint64_t *latest, store_oid_cb cb,
                         void *ud, zerr *err)
{
    *latest = after;
    if (after == UINT64_MAX)
        return 0;
    uint8_t key[8];
    zbe64_put(key, after + 1);
    MDB_val k = {8, key}, v;
    int rc = mdb_cursor_get(r->txc, &k, &v, MDB_SET_RANGE);
    for (; !rc; rc = mdb_cursor_get(r->txc, &k, &v, MDB_NEXT)) {
        st_txnval tv;
        uint64_t tid = zbe64(k.mv_data), one;
        if (store__txnval_decode(v.mv_data, v.mv_size, &tv))
            return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx",
                            (unsigned long long)tid);
        oidmap_clear(&r->seen);
        for (uint32_t i = 0; i < tv.nrec; i++) {
            uint64_t oid = st_txn_oid(&tv, i);
            if (oidmap_get(&r->seen, oid, &one))
                continue;
            if (oidmap_put(&r->seen, oid, 1))
                return zerr_set(err, ZE_NOMEM, "out of memory");
            int crc = cb(oid, ud);
            if (crc)
                return crc;
        }
        *latest = tid;
    }
    return rc != MDB_NOTFOUND ? store__mdb_err(err, rc, "read transactions") : 0;
}

int store__lmdb_changes_since(store_reader *r, uint64_t after, uint64_t *latest, store_oid_cb cb,
                        void *ud, zerr *err)
{
    uint64_t l;
    store__reader_enter(r);
    int rc = changes_since(r, after, latest ? latest : &l, cb, ud, err);
    store__map_leave(r->s);
    return rc;
}
