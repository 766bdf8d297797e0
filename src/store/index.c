/* index.c: views of the records index (LMDB "records" plus the overlay of
 * entries not yet applied), and the writer's batches that apply them. */
#include "store/index.h"

#include <stdlib.h>

#include "common/zarray.h"

/* ---- the overlay ------------------------------------------------------------ */

void store__overlay_init(store *s)
{
    pthread_mutex_init(&s->ov.mu, NULL);
    s->ov.newest = (oidmap)OIDMAP_INIT;
}

void store__overlay_free(store *s)
{
    free(s->ov.v);
    free(s->ov.sorted);
    oidmap_free(&s->ov.newest);
    pthread_mutex_destroy(&s->ov.mu);
}

/* With ov.mu held. */
static int ov_add(st_overlay *ov, uint64_t oid, const st_ent *e)
{
    uint64_t at = 0;
    oidmap_get(&ov->newest, oid, &at);
    if (at && ov->v[at - 1].e.tid == e->tid) {
        ov->v[at - 1].e = *e;   /* a later record of the oid in the same txn */
        return 0;
    }
    ov_ent *v = zarray_room(ov->v, ov->n, &ov->cap, sizeof *v, 1024);
    if (!v)
        return ZE_NOMEM;
    ov->v = v;
    if (oidmap_put(&ov->newest, oid, ov->n + 1))
        return ZE_NOMEM;
    v[ov->n++] = (ov_ent){oid, *e, (uint32_t)at};
    ov->n_sorted = 0;
    return 0;
}

size_t store__overlay_mark(store *s)
{
    pthread_mutex_lock(&s->ov.mu);
    size_t n = s->ov.n;
    pthread_mutex_unlock(&s->ov.mu);
    return n;
}

int store__overlay_add(store *s, uint64_t oid, const st_ent *e)
{
    pthread_mutex_lock(&s->ov.mu);
    int rc = ov_add(&s->ov, oid, e);
    pthread_mutex_unlock(&s->ov.mu);
    return rc;
}

void store__overlay_cut(store *s, size_t mark)
{
    st_overlay *ov = &s->ov;
    pthread_mutex_lock(&ov->mu);
    while (ov->n > mark) {
        const ov_ent *x = &ov->v[--ov->n];
        if (x->prev)
            oidmap_put(&ov->newest, x->oid, x->prev);   /* replaces: cannot fail */
        else
            oidmap_del(&ov->newest, x->oid);
    }
    ov->n_sorted = 0;
    pthread_mutex_unlock(&ov->mu);
}

void store__overlay_known(store *s, uint64_t tid)
{
    pthread_mutex_lock(&s->ov.mu);
    if (tid > s->ov.known)
        s->ov.known = tid;
    pthread_mutex_unlock(&s->ov.mu);
}

/* Index of the first entry with tid > tid (entries are in tid order). */
static size_t first_after(const st_overlay *ov, uint64_t tid)
{
    size_t lo = 0, hi = ov->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ov->v[mid].e.tid <= tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t store__overlay_pending(store *s)
{
    pthread_mutex_lock(&s->ov.mu);
    size_t n = s->ov.n - first_after(&s->ov, s->indexed_txn);
    pthread_mutex_unlock(&s->ov.mu);
    return n;
}

/* Whether a registered view still reads entry tid from the overlay: its
 * snapshot holds that transaction, its index part does not. */
static int view_needs(const store *s, uint64_t tid)
{
    for (const st_view *v = s->ov.views; v; v = v->next)
        if (tid > v->indexed && tid <= v->last)
            return 1;
    return 0;
}

/* Forget the entries "records" holds in LMDB's newest state, but those a
 * registered view reads (ov.mu held). A view keeps only its own range, so a
 * reader kept for long (an iterator, a pack) holds at most the entries that
 * were unapplied when it began. */
static void ov_drop(store *s)
{
    st_overlay *ov = &s->ov;
    size_t applied = first_after(ov, ov->indexed), n = 0;
    if (applied <= ov->kept && !ov->views_changed)
        return;
    for (size_t i = 0; i < ov->n; i++)
        if (i >= applied || view_needs(s, ov->v[i].e.tid))
            ov->v[n++] = ov->v[i];
    ov->kept = n - (ov->n - applied);
    ov->views_changed = 0;
    ov->n = n;
    oidmap_clear(&ov->newest);
    for (size_t i = 0; i < n; i++) {
        uint64_t at = 0;
        oidmap_get(&ov->newest, ov->v[i].oid, &at);
        ov->v[i].prev = (uint32_t)at;
        oidmap_put(&ov->newest, ov->v[i].oid, i + 1);   /* fits: the map only shrank */
    }
    ov->n_sorted = 0;
}

/* ---- the views in use ----------------------------------------------------------- */

static void view_register(store *s, st_view *v)
{
    v->prev = NULL;
    v->next = s->ov.views;
    if (v->next)
        v->next->prev = v;
    s->ov.views = v;
    v->registered = 1;
}

static void view_unregister(store *s, st_view *v)
{
    if (!v->registered)
        return;
    if (v->prev)
        v->prev->next = v->next;
    else
        s->ov.views = v->next;
    if (v->next)
        v->next->prev = v->prev;
    v->registered = 0;
    /* a view older than the newest index batch was keeping applied entries */
    if (v->indexed < s->ov.indexed)
        s->ov.views_changed = 1;
    /* With no writer thread here, the readers drop what they no longer need. */
    if (s->opt.read_only)
        ov_drop(s);
}

/* ---- catch-up from "values" ------------------------------------------------------ */

static int horizon(store *s, MDB_txn *txn, uint64_t *indexed, uint64_t *last, zerr *err)
{
    *indexed = 0;
    int rc = store__meta_get(txn, s, "indexed", indexed, err);
    if (rc && rc != ZE_NOTFOUND)
        return rc;
    return store__last_tid(txn, s, NULL, last, err);
}

/* ov.mu held. */
static int catch_up(store *s, MDB_txn *txn, uint64_t indexed, uint64_t last, zerr *err)
{
    st_overlay *ov = &s->ov;
    uint64_t from = (ov->known > indexed ? ov->known : indexed) + 1;
    if (!from || from > last)
        return 0;
    MDB_cursor *cur;
    uint8_t key[ST_VKEY_LEN];
    st_vkey(key, from, 0);
    MDB_val k = {sizeof key, key}, v;
    int rc = mdb_cursor_open(txn, s->dbi_values, &cur);
    if (rc)
        return store__mdb_err(err, rc, "open cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        st_rec r;
        uint64_t tid = k.mv_size == ST_VKEY_LEN ? zbe64(k.mv_data) : 0;
        if (tid > last)
            break;
        if (!tid || st_val_decode(v.mv_data, v.mv_size, zbe32((uint8_t *)k.mv_data + 8), &r)) {
            mdb_cursor_close(cur);
            return zerr_set(err, ZE_CORRUPT, "damaged record in transaction %016llx",
                            (unsigned long long)tid);
        }
        st_ent e = st_ent_of(&r, tid);
        if (ov_add(ov, r.oid, &e)) {
            mdb_cursor_close(cur);
            return zerr_set(err, ZE_NOMEM, "out of memory");
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND && rc)
        return store__mdb_err(err, rc, "read records");
    ov->known = last;
    return 0;
}

int store__overlay_catch_up(store *s, MDB_txn *txn, zerr *err)
{
    uint64_t indexed, last;
    int rc = horizon(s, txn, &indexed, &last, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->ov.mu);
    if (indexed > s->ov.indexed)
        s->ov.indexed = indexed;
    rc = catch_up(s, txn, indexed, last, err);
    pthread_mutex_unlock(&s->ov.mu);
    return rc;
}

/* ---- views -------------------------------------------------------------------------- */

/* Read the view's horizon and register it, catching up when another process
 * committed what the overlay lacks (ov.mu held since the snapshot was
 * taken: a drop in between could take entries the snapshot needs). */
static int attach(st_view *v, zerr *err)
{
    store *s = v->s;
    int rc = horizon(s, v->txn, &v->indexed, &v->last, err);
    if (rc)
        return rc;
    if (v->indexed > s->ov.indexed)
        s->ov.indexed = v->indexed;
    if (v->last > s->ov.known)
        rc = catch_up(s, v->txn, v->indexed, v->last, err);
    if (!rc)
        view_register(s, v);
    return rc;
}

int store__view_begin(store *s, st_view *v, zerr *err)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->owns_txn = 1;
    pthread_mutex_lock(&s->ov.mu);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &v->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* adopting the size retakes map_lock: not with ov.mu held */
        pthread_mutex_unlock(&s->ov.mu);
        int arc = store__adopt_map_size(s);
        pthread_mutex_lock(&s->ov.mu);
        if (!arc)
            rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &v->txn);
    }
    if (rc) {
        v->txn = NULL;
        rc = store__mdb_err(err, rc, "begin read transaction");
    }
    if (!rc && (rc = mdb_cursor_open(v->txn, s->dbi_records, &v->cur)))
        rc = store__mdb_err(err, rc, "open cursor");
    if (!rc)
        rc = attach(v, err);
    pthread_mutex_unlock(&s->ov.mu);
    if (rc)
        store__view_end(v);
    return rc;
}

void store__view_reset(st_view *v)
{
    pthread_mutex_lock(&v->s->ov.mu);
    view_unregister(v->s, v);
    pthread_mutex_unlock(&v->s->ov.mu);
    if (v->txn)
        mdb_txn_reset(v->txn);
}

int store__view_renew(st_view *v, zerr *err)
{
    store *s = v->s;
    pthread_mutex_lock(&s->ov.mu);
    view_unregister(s, v);
    mdb_txn_reset(v->txn);
    int rc = mdb_txn_renew(v->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* adopting the size retakes map_lock: not with ov.mu held */
        pthread_mutex_unlock(&s->ov.mu);
        int arc = store__adopt_map_size(s);
        pthread_mutex_lock(&s->ov.mu);
        if (!arc)
            rc = mdb_txn_renew(v->txn);
    }
    if (!rc)
        rc = mdb_cursor_renew(v->txn, v->cur);
    rc = rc ? store__mdb_err(err, rc, "refresh reader") : attach(v, err);
    pthread_mutex_unlock(&s->ov.mu);
    return rc;
}

void store__view_remap(st_view *v)
{
    mdb_cursor_renew(v->txn, v->cur);
}

void store__view_end(st_view *v)
{
    if (!v->s)
        return;
    pthread_mutex_lock(&v->s->ov.mu);
    view_unregister(v->s, v);
    pthread_mutex_unlock(&v->s->ov.mu);
    if (v->cur)
        mdb_cursor_close(v->cur);
    if (v->txn && v->owns_txn)
        mdb_txn_abort(v->txn);
    memset(v, 0, sizeof *v);
}

int store__view_write(store *s, MDB_txn *txn, st_view *v, zerr *err)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->txn = txn;
    v->indexed = s->indexed_txn;
    v->last = UINT64_MAX;
    int rc = mdb_cursor_open(txn, s->dbi_records, &v->cur);
    return rc ? store__mdb_err(err, rc, "open cursor") : 0;
}

void store__view_write_end(st_view *v)
{
    if (v->cur)
        mdb_cursor_close(v->cur);
    v->cur = NULL;
}

/* ---- lookups -------------------------------------------------------------------------- */

/* What the overlay says of oid below `before` (ov.mu held). */
typedef struct ov_find {
    int found;             /* *e is the newest entry with tid < before */
    st_ent e;
    uint64_t next;         /* the entry after it (or after the LMDB records), 0: none */
    int hides;             /* an entry newer than the one found has PREV_ZERO */
    int any;               /* the view holds an entry of oid */
} ov_find;

static void ov_find_before(const st_view *v, uint64_t oid, uint64_t before, ov_find *f)
{
    const st_overlay *ov = &v->s->ov;
    uint64_t at = 0;
    memset(f, 0, sizeof *f);
    oidmap_get(&ov->newest, oid, &at);
    for (; at; at = ov->v[at - 1].prev) {
        const st_ent *e = &ov->v[at - 1].e;
        if (e->tid <= v->indexed)
            break;
        if (e->tid > v->last)
            continue;
        f->any = 1;
        if (e->tid < before) {
            f->found = 1;
            f->e = *e;
            f->e.flags &= (uint8_t)~ST_RF_COUNTED;
            return;
        }
        f->next = e->tid;
        f->hides |= (e->flags & ST_RF_PREV_ZERO) != 0;
    }
}

/* The LMDB part of view_find: the newest record of oid with tid < before. */
static int lmdb_find(st_view *v, uint64_t oid, uint64_t before, st_ent *e, uint64_t *next,
                     int *later, zerr *err)
{
    uint8_t key[ST_KEY_LEN];
    st_key(key, oid, before);
    MDB_val k = {ST_KEY_LEN, key}, d;
    *later = 0;
    int rc = mdb_cursor_get(v->cur, &k, &d, MDB_SET_RANGE);
    if (!rc) {
        if (zbe64(k.mv_data) == oid) {
            *later = 1;
            *next = zbe64((uint8_t *)k.mv_data + 8);
        }
        rc = mdb_cursor_get(v->cur, &k, &d, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(v->cur, &k, &d, MDB_LAST);
    }
    if (rc && rc != MDB_NOTFOUND)
        return store__mdb_err(err, rc, "load");
    if (rc || k.mv_size != ST_KEY_LEN || zbe64(k.mv_data) != oid)
        return ZE_NOTFOUND;
    if (st_ent_decode(d.mv_data, d.mv_size, zbe64((uint8_t *)k.mv_data + 8), e))
        return zerr_set(err, ZE_CORRUPT, "damaged index entry of oid %016llx",
                        (unsigned long long)oid);
    return 0;
}

int store__view_find(st_view *v, uint64_t oid, uint64_t before, st_ent *e, uint64_t *next,
                     zerr *err)
{
    ov_find f;
    pthread_mutex_lock(&v->s->ov.mu);
    ov_find_before(v, oid, before, &f);
    pthread_mutex_unlock(&v->s->ov.mu);
    if (f.found) {
        *e = f.e;
        *next = f.next;
        if (f.hides)
            e->flags |= ST_RF_HIDDEN;
        return 0;
    }
    int later;
    uint64_t lnext = 0;
    int rc = lmdb_find(v, oid, before, e, &lnext, &later, err);
    if (rc == ZE_NOTFOUND && (later || f.any))
        return ZE_NOREV;
    if (rc)
        return rc;
    *next = later ? lnext : f.next;
    if (f.hides)
        e->flags |= ST_RF_HIDDEN;
    return 0;
}

int store__view_get(st_view *v, uint64_t oid, uint64_t tid, st_ent *e, zerr *err)
{
    ov_find f;
    pthread_mutex_lock(&v->s->ov.mu);
    ov_find_before(v, oid, tid == UINT64_MAX ? tid : tid + 1, &f);
    pthread_mutex_unlock(&v->s->ov.mu);
    if (tid > v->last || (f.found && f.e.tid != tid) || (!f.found && tid > v->indexed))
        return ZE_NOTFOUND;
    if (f.found) {
        *e = f.e;
    } else {
        uint8_t key[ST_KEY_LEN];
        st_key(key, oid, tid);
        MDB_val k = {ST_KEY_LEN, key}, d;
        int rc = mdb_get(v->txn, v->s->dbi_records, &k, &d);
        if (rc == MDB_NOTFOUND)
            return ZE_NOTFOUND;
        if (rc)
            return store__mdb_err(err, rc, "read index");
        if (st_ent_decode(d.mv_data, d.mv_size, tid, e))
            return zerr_set(err, ZE_CORRUPT, "damaged index entry %016llx@%016llx",
                            (unsigned long long)oid, (unsigned long long)tid);
    }
    if (f.hides)
        e->flags |= ST_RF_HIDDEN;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The overlay's oids in order, made when first needed after a change
 * (record_iternext is rare; commits must not pay for it). ov.mu held. */
static int ov_sorted(st_overlay *ov)
{
    if (ov->n_sorted || !ov->n)
        return 0;
    uint64_t *o = realloc(ov->sorted, ov->n * sizeof *o);
    if (!o)
        return ZE_NOMEM;
    ov->sorted = o;
    size_t n = 0;
    for (size_t i = 0; i < ov->n; i++)
        if (!ov->v[i].prev)
            o[n++] = ov->v[i].oid;
    qsort(o, n, sizeof *o, cmp_u64);
    ov->n_sorted = n;
    return 0;
}

/* The first oid >= from with an entry in the view, or UINT64_MAX with *none. */
static int ov_next_oid(st_view *v, uint64_t from, uint64_t *oid, int *none)
{
    st_overlay *ov = &v->s->ov;
    *none = 1;
    pthread_mutex_lock(&ov->mu);
    int rc = ov_sorted(ov);
    size_t lo = 0, hi = ov->n_sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ov->sorted[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; !rc && lo < ov->n_sorted && *none; lo++) {
        ov_find f;
        ov_find_before(v, ov->sorted[lo], UINT64_MAX, &f);
        if (f.any) {
            *oid = ov->sorted[lo];
            *none = 0;
        }
    }
    pthread_mutex_unlock(&ov->mu);
    return rc;
}

int store__view_next_oid(st_view *v, uint64_t from, uint64_t *oid, zerr *err)
{
    int none;
    uint64_t o = 0;
    if (ov_next_oid(v, from, &o, &none))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint8_t key[ST_KEY_LEN];
    st_key(key, from, 0);
    MDB_val k = {ST_KEY_LEN, key}, d;
    int rc = mdb_cursor_get(v->cur, &k, &d, MDB_SET_RANGE);
    if (rc && rc != MDB_NOTFOUND)
        return store__mdb_err(err, rc, "read index");
    if (!rc && k.mv_size == ST_KEY_LEN && (none || zbe64(k.mv_data) < o)) {
        o = zbe64(k.mv_data);
        none = 0;
    }
    if (none)
        return ZE_NOTFOUND;
    *oid = o;
    return 0;
}

int store__value_get(MDB_txn *txn, store *s, uint64_t tid, uint32_t index, st_rec *out,
                     zerr *err)
{
    uint8_t key[ST_VKEY_LEN];
    st_vkey(key, tid, index);
    MDB_val k = {ST_VKEY_LEN, key}, d;
    int rc = mdb_get(txn, s->dbi_values, &k, &d);
    if (rc == MDB_NOTFOUND)
        return ZE_NOTFOUND;
    if (rc)
        return store__mdb_err(err, rc, "read record");
    if (st_val_decode(d.mv_data, d.mv_size, index, out))
        return zerr_set(err, ZE_CORRUPT, "damaged record %u of transaction %016llx", index,
                        (unsigned long long)tid);
    return 0;
}

int store__rec_get(st_view *v, uint64_t oid, uint64_t tid, uint32_t index, st_rec *out,
                   zerr *err)
{
    uint8_t hidden = 0;
    int via_index = index == ST_INDEX_LAST;
    if (via_index) {
        st_ent e;
        int rc = store__view_get(v, oid, tid, &e, err);
        if (rc)
            return rc;
        index = e.index;
        hidden = e.flags & ST_RF_HIDDEN;
    }
    int rc = store__value_get(v->txn, v->s, tid, index, out, err);
    if (rc == ZE_NOTFOUND && via_index)
        rc = ZE_CORRUPT;
    if (!rc && out->oid != oid)
        rc = via_index ? ZE_CORRUPT : ZE_NOTFOUND;
    if (rc == ZE_CORRUPT && via_index)
        return zerr_set(err, ZE_CORRUPT, "index entry %016llx@%016llx names a missing record",
                        (unsigned long long)oid, (unsigned long long)tid);
    out->flags |= hidden;
    return rc;
}

/* The DATA record (tid, index) of oid that `whose` names: ZE_CORRUPT when it
 * is missing or not data. */
static int data_at(st_view *v, uint64_t oid, uint64_t tid, uint32_t index, const char *whose,
                   st_rec *out, zerr *err)
{
    int rc = store__rec_get(v, oid, tid, index, out, err);
    if (rc == ZE_NOTFOUND || (!rc && out->kind != STORE_REC_DATA))
        return zerr_set(err, ZE_CORRUPT, "%s of oid %016llx to a missing record in %016llx",
                        whose, (unsigned long long)oid, (unsigned long long)tid);
    return rc;
}

static int no_data(st_rec *out)
{
    memset(out, 0, sizeof *out);
    out->kind = STORE_REC_DELETE;
    return 0;
}

int store__rec_resolve(st_view *v, uint64_t oid, const st_rec *rec, st_rec *out, zerr *err)
{
    if (rec->kind != STORE_REC_BACKPTR) {
        *out = *rec;
        return 0;
    }
    return rec->data_tid ? data_at(v, oid, rec->data_tid, rec->data_index, "back-pointer", out,
                                   err)
                         : no_data(out);
}

int store__ent_data(st_view *v, uint64_t oid, const st_ent *e, st_rec *out, zerr *err)
{
    if (e->kind == STORE_REC_DATA)
        return data_at(v, oid, e->tid, e->index, "index entry", out, err);
    if (e->kind == STORE_REC_BACKPTR && e->data_tid)
        return data_at(v, oid, e->data_tid, e->data_index, "back-pointer", out, err);
    return no_data(out);
}

/* ---- the index batch --------------------------------------------------------------- */

int store__sort_by_key(void *items, size_t n, size_t size)
{
    if (n < 2)
        return 0;
    uint8_t *tmp = malloc(n * size);
    if (!tmp)
        return ZE_NOMEM;
    uint8_t *from = items, *to = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        uint64_t key;
        for (size_t i = 0; i < n; i++) {
            memcpy(&key, from + i * size, 8);
            count[((key >> shift) & 0xff) + 1]++;
        }
        memcpy(&key, from, 8);
        if (count[((key >> shift) & 0xff) + 1] == n)
            continue;   /* every key has this byte: nothing to do */
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) {
            memcpy(&key, from + i * size, 8);
            memcpy(to + count[(key >> shift) & 0xff]++ * size, from + i * size, size);
        }
        uint8_t *t = from;
        from = to;
        to = t;
    }
    if (from != items)
        memcpy(items, from, n * size);
    free(tmp);
    return 0;
}

/* A record with prev = 0 (import) cuts the older records of its oid off
 * FileStorage's prev chain: flag them hidden, newest first, stopping at one
 * already flagged. The cursor is on the new entry. */
static int hide_older(MDB_cursor *cur, uint64_t oid, zerr *err)
{
    MDB_val k, d;
    int rc = mdb_cursor_get(cur, &k, &d, MDB_PREV);
    while (!rc && k.mv_size == ST_KEY_LEN && zbe64(k.mv_data) == oid) {
        st_ent e;
        uint8_t buf[ST_IDX_BACKPTR_LEN];
        if (st_ent_decode(d.mv_data, d.mv_size, 0, &e))
            return zerr_set(err, ZE_CORRUPT, "damaged index entry of oid %016llx",
                            (unsigned long long)oid);
        if (e.flags & ST_RF_HIDDEN)
            return 0;
        e.flags |= ST_RF_HIDDEN;
        MDB_val nd = {st_ent_encode(buf, &e), buf};
        if ((rc = mdb_cursor_put(cur, &k, &nd, MDB_CURRENT)))
            return store__mdb_err(err, rc, "write index");
        rc = mdb_cursor_get(cur, &k, &d, MDB_PREV);
    }
    return rc && rc != MDB_NOTFOUND ? store__mdb_err(err, rc, "read index") : 0;
}

/* Put one entry; *created when it is the oid's first record. */
static int put_entry(MDB_cursor *cur, const ov_ent *x, int first_of_oid, int *created,
                     zerr *err)
{
    uint8_t key[ST_KEY_LEN], buf[ST_IDX_BACKPTR_LEN];
    st_ent e = x->e;
    e.flags &= (uint8_t)~(ST_RF_HIDDEN | ST_RF_COUNTED);
    st_key(key, x->oid, e.tid);
    MDB_val k = {ST_KEY_LEN, key}, d = {st_ent_encode(buf, &e), buf};
    int rc = mdb_cursor_put(cur, &k, &d, 0);
    if (rc)
        return store__mdb_err(err, rc, "write index");
    *created = 0;
    if (!first_of_oid && !(e.flags & ST_RF_PREV_ZERO))
        return 0;
    MDB_val pk, pd;
    rc = mdb_cursor_get(cur, &pk, &pd, MDB_PREV);
    int older = !rc && pk.mv_size == ST_KEY_LEN && zbe64(pk.mv_data) == x->oid;
    if (rc && rc != MDB_NOTFOUND)
        return store__mdb_err(err, rc, "read index");
    *created = first_of_oid && !older && !(x->e.flags & ST_RF_COUNTED);
    if (!older || !(e.flags & ST_RF_PREV_ZERO))
        return 0;
    /* back on the new entry, then walk down from it */
    k = (MDB_val){ST_KEY_LEN, key};
    if ((rc = mdb_cursor_get(cur, &k, &pd, MDB_SET)))
        return store__mdb_err(err, rc, "read index");
    return hide_older(cur, x->oid, err);
}

static int apply_batch(store *s, MDB_txn *txn, ov_ent *b, size_t n, uint64_t *created,
                       zerr *err)
{
    MDB_cursor *cur;
    int rc = store__sort_by_key(b, n, sizeof *b);
    if (rc)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    if ((rc = mdb_cursor_open(txn, s->dbi_records, &cur)))
        return store__mdb_err(err, rc, "open cursor");
    for (size_t i = 0; !rc && i < n; i++) {
        int made = 0;
        rc = put_entry(cur, &b[i], i == 0 || b[i - 1].oid != b[i].oid, &made, err);
        *created += (uint64_t)made;
    }
    mdb_cursor_close(cur);
    return rc;
}

int store__index_apply(store *s, MDB_txn *txn, zerr *err)
{
    st_overlay *ov = &s->ov;
    pthread_mutex_lock(&ov->mu);
    size_t k = first_after(ov, s->indexed_txn), n = ov->n - k;
    ov_ent *b = n ? malloc(n * sizeof *b) : NULL;
    if (b)
        memcpy(b, ov->v + k, n * sizeof *b);
    uint64_t upto = n ? ov->v[ov->n - 1].e.tid : 0;
    pthread_mutex_unlock(&ov->mu);
    if (!n)
        return 0;
    if (!b)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint64_t created = 0;
    int rc = apply_batch(s, txn, b, n, &created, err);
    free(b);
    if (!rc)
        rc = store__meta_put(txn, s, "indexed", upto, err);
    if (rc)
        return rc;
    s->indexed_txn = upto;
    s->index_created += created;
    return 0;
}

void store__overlay_drop(store *s)
{
    pthread_mutex_lock(&s->ov.mu);
    ov_drop(s);
    pthread_mutex_unlock(&s->ov.mu);
}

void store__index_done(store *s, int ok)
{
    if (!ok) {
        s->indexed_txn = s->indexed;
        s->index_created = 0;
        return;
    }
    if (s->index_created)
        store__objects_adjust(s, (int64_t)s->index_created);
    s->index_created = 0;
    s->indexed = s->indexed_txn;
    pthread_mutex_lock(&s->ov.mu);
    if (s->indexed > s->ov.indexed)
        s->ov.indexed = s->indexed;
    ov_drop(s);
    pthread_mutex_unlock(&s->ov.mu);
}
