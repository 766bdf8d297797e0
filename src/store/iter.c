/* iter.c: transaction iteration (iterator(), export), every record with its
 * exact kind, back-pointer target and flags. Slices handed out are copies
 * owned by the iterator, since a map growth may move the snapshot's pages
 * between calls. */
#include "store/store_internal.h"

#include <stdlib.h>

struct store_iter {
    store *s;
    MDB_txn *txn;
    uint64_t next_tid;     /* seek position of the next transaction */
    uint64_t stop;         /* 0 = no bound */
    int done;
    uint64_t tid;          /* current transaction */
    zbuf tval;             /* copy of its value */
    st_txnval tv;          /* decoded from tval */
    uint32_t rec_i;        /* next record */
    zbuf data;             /* the last record's data */
};

int store_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err)
{
    *out = NULL;
    store_iter *it = calloc(1, sizeof *it);
    if (!it)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    it->s = s;
    it->next_tid = start;
    it->stop = stop;
    store__map_enter(s);
    int rc = store__read_begin(s, &it->txn, err);
    store__map_leave(s);
    if (rc) {
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void store_iter_close(store_iter *it)
{
    if (!it)
        return;
    if (it->txn)
        mdb_txn_abort(it->txn);
    zbuf_free(&it->tval);
    zbuf_free(&it->data);
    free(it);
}

static int next_txn(store_iter *it, zerr *err)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(it->txn, it->s->dbi_txns, &c);
    if (rc)
        return store__mdb_err(err, rc, "open cursor");
    uint8_t key[8];
    zbe64_put(key, it->next_tid);
    MDB_val k = {8, key}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (!rc) {
        it->tid = zbe64(k.mv_data);
        if (zbuf_set(&it->tval, v.mv_data, v.mv_size))
            rc = ZE_NOMEM;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND || (!rc && it->stop && it->tid > it->stop))
        return 0;
    if (rc == ZE_NOMEM)
        return zerr_set(err, rc, "out of memory");
    if (rc)
        return store__mdb_err(err, rc, "read transaction");
    if (store__txnval_decode(it->tval.data, it->tval.len, &it->tv))
        return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx",
                        (unsigned long long)it->tid);
    return 1;
}

int store_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err)
{
    if (it->done)
        return 0;
    store__map_enter(it->s);
    int rc = next_txn(it, err);
    store__map_leave(it->s);
    if (rc <= 0) {
        it->done = 1;
        return rc;
    }
    it->done = it->tid == UINT64_MAX;
    it->next_tid = it->tid + 1;
    it->rec_i = 0;
    *info = (store_txn_info){it->tid, it->tv.status, it->tv.user, it->tv.description,
                             it->tv.extension, it->tv.size};
    return 1;
}

static int next_record(store_iter *it, store_record *rec, zerr *err)
{
    uint64_t oid = st_txn_oid(&it->tv, it->rec_i);
    st_rec r, d;
    int rc = store__rec_get(it->txn, it->s, oid, it->tid, it->rec_i, &r, err);
    if (rc == ZE_NOTFOUND)
        return zerr_set(err, ZE_CORRUPT, "record %u of transaction %016llx is missing",
                        it->rec_i, (unsigned long long)it->tid);
    if (!rc)
        rc = store__rec_resolve(it->txn, it->s, oid, &r, &d, err);
    if (rc)
        return rc;
    zbuf_reset(&it->data);
    if (d.kind == STORE_REC_DATA && zbuf_set(&it->data, d.data, d.len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    *rec = (store_record){
        .oid = oid, .tid = it->tid, .kind = (store_rec_kind)r.kind,
        .data = {it->data.data, it->data.len},
        .back_tid = r.back_tid, .back_index = r.back_index,
        .prev_zero = !!(r.flags & ST_RF_PREV_ZERO), .has_blob = !!(r.flags & ST_RF_BLOB),
    };
    return 1;
}

int store_iter_next_record(store_iter *it, store_record *rec, zerr *err)
{
    if (!it->tval.len || it->rec_i >= it->tv.nrec)
        return 0;
    store__map_enter(it->s);
    int rc = next_record(it, rec, err);
    store__map_leave(it->s);
    if (rc > 0)
        it->rec_i++;
    return rc;
}
