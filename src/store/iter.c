/* iter.c: transaction iteration (iterator(), export), every record with its
 * exact kind, back-pointer target and flags. Slices handed out are copies
 * owned by the iterator, since a map growth may move the snapshot's pages
 * between calls.
 *
 * Pack removes records from the transactions it marks 'p' but keeps their
 * oid lists, so record indexes (back-pointer targets) stay valid: such a
 * transaction has empty positions. Iteration lists the records left and
 * numbers them as it lists them, which is what a back-pointer's back_index
 * names for a consumer (export re-aims it by that number). Anywhere else a
 * missing record is damage.
 *
 * A resumable iterator keeps no snapshot: each call reads a fresh one and
 * resumes by key (next_tid; tid and rec_i). Committed transactions never
 * change but through pack, so what it copied (tval, the gap numbering)
 * stays true between calls unless a pack ran or runs (pack_gen, packs):
 * then it reads them again, and a transaction pack removed ends its
 * records. */
#include "store/index.h"

#include <stdlib.h>

struct store_iter {
    const store_ops *be;   /* &store__lmdb_ops: first, as backend.h asks */
    store *s;
    st_view v;             /* the snapshot (v.txn) and its index; resumable:
                              only during a call */
    unsigned map_gen;      /* map_gen v's cursor was renewed for */
    int resumable;
    unsigned gen;          /* resumable: pack_gen when tval and listed were read */
    int gen_ok;            /* no pack ran then: they stay true while gen holds */
    uint64_t next_tid;     /* seek position of the next transaction */
    uint64_t stop;         /* 0 = no bound */
    int done;
    uint64_t tid;          /* current transaction */
    zbuf tval;             /* copy of its value */
    st_txnval tv;          /* decoded from tval */
    uint32_t rec_i;        /* next record */
    zbuf data;             /* the last record's data */
    uint64_t gap_tid;      /* packed txn whose numbering is in listed, 0: none */
    uint32_t *listed;      /* its record index -> position among those left */
    uint32_t n_listed;
};

/* A resumable iterator lists what was committed when it was opened: its
 * stop becomes the last tid then (an empty store lists nothing). */
static void bound_stop(store_iter *it)
{
    uint64_t last = it->v.last;
    if (!it->stop || it->stop > last)
        it->stop = last;
    it->done = !last;
    store__view_end(&it->v);
}

static int iter_open(store *s, uint64_t start, uint64_t stop, int resumable,
                     store_iter **out, zerr *err)
{
    *out = NULL;
    store_iter *it = calloc(1, sizeof *it);
    if (!it)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    it->be = &store__lmdb_ops;
    it->s = s;
    it->next_tid = start;
    it->stop = stop;
    it->resumable = resumable;
    if (!resumable && store__pin(s, err)) {
        free(it);
        return ZE_BUSY;
    }
    store__map_enter(s);
    it->map_gen = atomic_load(&s->map_gen);
    int rc = store__view_begin(s, &it->v, err);
    if (!rc && resumable)
        bound_stop(it);
    store__map_leave(s);
    if (rc) {
        store_iter_close(it);
        return rc;
    }
    *out = it;
    return 0;
}

int store__lmdb_iter_open(store *s, uint64_t start, uint64_t stop, store_iter **out, zerr *err)
{
    return iter_open(s, start, stop, 0, out, err);
}

int store__lmdb_iter_open_resumable(store *s, uint64_t start, uint64_t stop, store_iter **out,
                              zerr *err)
{
    return iter_open(s, start, stop, 1, out, err);
}

void store__lmdb_iter_close(store_iter *it)
{
    if (!it)
        return;
    if (!it->resumable)
        store__unpin(it->s);
    store__view_end(&it->v);
    zbuf_free(&it->tval);
    zbuf_free(&it->data);
    free(it->listed);
    free(it);
}

static int next_txn(store_iter *it, zerr *err)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(it->v.txn, it->s->dbi_txns, &c);
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

/* Enter a call: the map section, and a resumable iterator's snapshot. What
 * it copied from an earlier one is dropped when a pack may have changed it
 * (*fresh 0). */
static int call_begin(store_iter *it, int *fresh, zerr *err)
{
    store *s = it->s;
    *fresh = 1;
    store__map_enter(s);
    if (!it->resumable) {
        /* after a map growth the cursor's page pointers are stale */
        unsigned map_gen = atomic_load(&s->map_gen);
        if (map_gen != it->map_gen)
            store__view_remap(&it->v);
        it->map_gen = map_gen;
        return 0;
    }
    /* gen before packs before the snapshot: a pack that starts after these
     * reads bumps gen, one that ran before shows in packs or in the data. */
    unsigned gen = atomic_load(&s->pack_gen);
    int ok = atomic_load(&s->packs) == 0;
    *fresh = it->gen_ok && it->gen == gen;
    if (!*fresh)
        it->gap_tid = 0;
    it->gen = gen;
    it->gen_ok = ok;
    int rc = store__view_begin(s, &it->v, err);
    if (rc)
        store__map_leave(s);
    return rc;
}

static void call_end(store_iter *it)
{
    if (it->resumable)
        store__view_end(&it->v);
    store__map_leave(it->s);
}

int store__lmdb_iter_next_txn(store_iter *it, store_txn_info *info, zerr *err)
{
    if (it->done)
        return 0;
    int fresh, rc = call_begin(it, &fresh, err);
    if (rc)
        return rc;
    rc = next_txn(it, err);
    call_end(it);
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

/* Record i of tid (oid from its list) into r: 1, ZE_NOTFOUND, or <0. Outside
 * packed transactions the index must name the oid's record there too. */
static int get_record(store_iter *it, const st_txnval *tv, uint64_t tid, uint32_t i, st_rec *r,
                      zerr *err)
{
    st_ent e;
    uint64_t oid = st_txn_oid(tv, i);
    int rc = store__rec_get(&it->v, oid, tid, i, r, err);
    if (!rc && tv->status != 'p')
        rc = store__view_get(&it->v, oid, tid, &e, err);
    return rc ? rc : 1;
}

/* The next record left in the current transaction, from rec_i on. */
static int find_record(store_iter *it, st_rec *r, zerr *err)
{
    for (; it->rec_i < it->tv.nrec; it->rec_i++) {
        int rc = get_record(it, &it->tv, it->tid, it->rec_i, r, err);
        if (rc != ZE_NOTFOUND)
            return rc;
        if (it->tv.status != 'p')
            return zerr_set(err, ZE_CORRUPT, "record %u of transaction %016llx is missing",
                            it->rec_i, (unsigned long long)it->tid);
    }
    return 0;
}

/* Number the records left in packed transaction tid (tv) as iteration
 * lists them. */
static int number_gaps(store_iter *it, uint64_t tid, const st_txnval *tv, zerr *err)
{
    uint32_t *listed = realloc(it->listed, (tv->nrec ? tv->nrec : 1) * sizeof *listed);
    if (!listed)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    it->listed = listed;
    it->gap_tid = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < tv->nrec; i++) {
        st_rec r;
        int rc = get_record(it, tv, tid, i, &r, err);
        if (rc < 0 && rc != ZE_NOTFOUND)
            return rc;
        listed[i] = n;
        n += rc == 1;
    }
    it->gap_tid = tid;
    it->n_listed = tv->nrec;
    return 0;
}

/* A back-pointer's target index as iteration numbers that transaction. */
static int listed_index(store_iter *it, uint64_t tid, uint32_t index, uint32_t *out, zerr *err)
{
    uint8_t key[8];
    MDB_val k = {8, key}, v;
    st_txnval tv;
    *out = index;
    if (tid != it->gap_tid) {
        zbe64_put(key, tid);
        int rc = mdb_get(it->v.txn, it->s->dbi_txns, &k, &v);
        if (rc == MDB_NOTFOUND)
            return 0;   /* reported by the load of the target, if ever */
        if (rc)
            return store__mdb_err(err, rc, "read transaction");
        if (store__txnval_decode(v.mv_data, v.mv_size, &tv))
            return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx",
                            (unsigned long long)tid);
        if (tv.status != 'p')
            return 0;
        if ((rc = number_gaps(it, tid, &tv, err)))
            return rc;
    }
    if (index < it->n_listed)
        *out = it->listed[index];
    return 0;
}

static int next_record(store_iter *it, store_record *rec, zerr *err)
{
    st_rec r, d;
    uint32_t back_index = 0;
    int rc = find_record(it, &r, err);
    if (rc <= 0)
        return rc;
    uint64_t oid = st_txn_oid(&it->tv, it->rec_i);
    if ((rc = store__rec_resolve(&it->v, oid, &r, &d, err)))
        return rc;
    if (r.kind == STORE_REC_BACKPTR &&
        (rc = listed_index(it, r.back_tid, r.back_index, &back_index, err)))
        return rc;
    zbuf_reset(&it->data);
    if (d.kind == STORE_REC_DATA && zbuf_set(&it->data, d.data, d.len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    *rec = (store_record){
        .oid = oid, .tid = it->tid, .kind = (store_rec_kind)r.kind,
        .data = {it->data.data, it->data.len},
        .back_tid = r.back_tid, .back_index = back_index,
        .prev_zero = !!(r.flags & ST_RF_PREV_ZERO), .has_blob = !!(r.flags & ST_RF_BLOB),
    };
    return 1;
}

/* The current transaction's value again, after a pack: 0 when pack
 * removed the transaction (its records are gone). */
static int reread_txn(store_iter *it, zerr *err)
{
    uint8_t key[8];
    zbe64_put(key, it->tid);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(it->v.txn, it->s->dbi_txns, &k, &v);
    if (rc == MDB_NOTFOUND) {
        zbuf_reset(&it->tval);
        return 0;
    }
    if (rc)
        return store__mdb_err(err, rc, "read transaction");
    if (zbuf_set(&it->tval, v.mv_data, v.mv_size))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    if (store__txnval_decode(it->tval.data, it->tval.len, &it->tv))
        return zerr_set(err, ZE_CORRUPT, "damaged transaction %016llx",
                        (unsigned long long)it->tid);
    return 1;
}

int store__lmdb_iter_next_record(store_iter *it, store_record *rec, zerr *err)
{
    if (!it->tval.len || it->rec_i >= it->tv.nrec)
        return 0;
    int fresh, rc = call_begin(it, &fresh, err);
    if (rc)
        return rc;
    rc = fresh ? 1 : reread_txn(it, err);
    if (rc > 0)
        rc = it->rec_i < it->tv.nrec ? next_record(it, rec, err) : 0;
    call_end(it);
    if (rc > 0)
        it->rec_i++;
    return rc;
}
