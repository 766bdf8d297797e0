/* fs_index.c: the offsets a FileStorage reader or writer must remember. */
#include "convert/convert_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct txn_ent {
    uint64_t tid;
    uint64_t pos;
    uint64_t first;  /* number of the transaction's first record */
} txn_ent;

/* A growable array of fixed-size items. */
typedef struct vec {
    zfs_spill mem;
    size_t n, item;
} vec;

/* oid -> last record offset; open addressing, linear probing. Offsets are
 * never 0 (the magic comes first), so 0 marks an empty slot. */
typedef zfs_oidpos slot;

typedef struct oidmap {
    zfs_spill mem;  /* slot[cap] */
    size_t cap;     /* power of two */
    size_t n;
} oidmap;

struct zfs_index {
    vec txns;      /* txn_ent */
    vec recs;      /* uint64_t offsets */
    vec pending;   /* uint64_t oids of the current transaction's records */
    oidmap map;
};

static void *vec_at(const vec *v, size_t i)
{
    return (char *)v->mem.p + i * v->item;
}

static int vec_push(vec *v, const void *x, zerr *err)
{
    if ((v->n + 1) * v->item > v->mem.cap) {
        size_t cap = v->mem.cap ? v->mem.cap * 2 : 1024 * v->item;
        int rc = zfs__spill_resize(&v->mem, cap, err);
        if (rc)
            return rc;
    }
    memcpy(vec_at(v, v->n), x, v->item);
    v->n++;
    return 0;
}

static size_t slot_of(uint64_t oid, size_t cap)
{
    return (size_t)((oid * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void map_put_nogrow(slot *t, size_t cap, size_t *n, uint64_t oid, uint64_t pos)
{
    size_t i = slot_of(oid, cap);
    while (t[i].pos && t[i].oid != oid)
        i = (i + 1) & (cap - 1);
    if (!t[i].pos)
        (*n)++;
    t[i].oid = oid;
    t[i].pos = pos;
}

static int map_grow(oidmap *m, zerr *err)
{
    zfs_spill big = ZFS_SPILL_INIT;
    size_t cap = m->cap ? m->cap * 2 : 4096, n = 0;
    int rc = zfs__spill_resize(&big, cap * sizeof(slot), err);
    if (rc)
        return rc;
    slot *t = big.p, *old = m->mem.p;
    memset(t, 0, cap * sizeof *t);
    for (size_t i = 0; i < m->cap; i++)
        if (old[i].pos)
            map_put_nogrow(t, cap, &n, old[i].oid, old[i].pos);
    zfs__spill_free(&m->mem);
    m->mem = big;
    m->cap = cap;
    return 0;
}

static int map_put(oidmap *m, uint64_t oid, uint64_t pos, zerr *err)
{
    /* keep the load under 70% so probes stay short */
    if ((m->n + 1) * 10 > m->cap * 7) {
        int rc = map_grow(m, err);
        if (rc)
            return rc;
    }
    map_put_nogrow(m->mem.p, m->cap, &m->n, oid, pos);
    return 0;
}

zfs_index *zfs__index_new(void)
{
    zfs_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    zfs_spill none = ZFS_SPILL_INIT;
    ix->txns = (vec){none, 0, sizeof(txn_ent)};
    ix->recs = (vec){none, 0, sizeof(uint64_t)};
    ix->pending = (vec){none, 0, sizeof(uint64_t)};
    ix->map.mem = none;
    return ix;
}

void zfs__index_free(zfs_index *ix)
{
    if (!ix)
        return;
    zfs__spill_free(&ix->txns.mem);
    zfs__spill_free(&ix->recs.mem);
    zfs__spill_free(&ix->pending.mem);
    zfs__spill_free(&ix->map.mem);
    free(ix);
}

int zfs__index_add_txn(zfs_index *ix, uint64_t tid, uint64_t pos, zerr *err)
{
    txn_ent t = {tid, pos, ix->recs.n};
    ix->pending.n = 0;
    return vec_push(&ix->txns, &t, err);
}

int zfs__index_add_record(zfs_index *ix, uint64_t oid, uint64_t pos, zerr *err)
{
    int rc = vec_push(&ix->recs, &pos, err);
    if (!rc)
        rc = vec_push(&ix->pending, &oid, err);
    return rc;
}

int zfs__index_end_txn(zfs_index *ix, zerr *err)
{
    const uint64_t *oids = ix->pending.mem.p;
    const uint64_t *recs = ix->recs.mem.p;
    size_t first = ix->recs.n - ix->pending.n;
    for (size_t i = 0; i < ix->pending.n; i++) {
        int rc = map_put(&ix->map, oids[i], recs[first + i], err);
        if (rc)
            return rc;
    }
    ix->pending.n = 0;
    return 0;
}

void zfs__index_drop_txn(zfs_index *ix)
{
    if (ix->txns.n == 0)
        return;
    const txn_ent *t = vec_at(&ix->txns, ix->txns.n - 1);
    ix->recs.n = t->first;
    ix->txns.n--;
    ix->pending.n = 0;
}

uint64_t zfs__index_last(const zfs_index *ix, uint64_t oid)
{
    const oidmap *m = &ix->map;
    const slot *t = m->mem.p;
    if (!m->cap)
        return 0;
    size_t i = slot_of(oid, m->cap);
    while (t[i].pos) {
        if (t[i].oid == oid)
            return t[i].pos;
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

/* Number of the last transaction whose key (by get) is <= x, or -1. */
static long txn_floor(const zfs_index *ix, uint64_t x, int by_first)
{
    const txn_ent *t = ix->txns.mem.p;
    long lo = 0, hi = (long)ix->txns.n - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        uint64_t k = by_first ? t[mid].first : t[mid].tid;
        if (k <= x) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

int zfs__index_find_pos(const zfs_index *ix, uint64_t pos, uint64_t *tid, uint32_t *index)
{
    const uint64_t *r = ix->recs.mem.p;
    size_t lo = 0, hi = ix->recs.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ix->recs.n || r[lo] != pos)
        return ZE_NOTFOUND;
    /* several empty transactions can share a first number: take the last */
    long k = txn_floor(ix, lo, 1);
    if (k < 0)
        return ZE_NOTFOUND;
    const txn_ent *t = vec_at(&ix->txns, (size_t)k);
    *tid = t->tid;
    *index = (uint32_t)(lo - t->first);
    return 0;
}

int zfs__index_find_rec(const zfs_index *ix, uint64_t tid, uint32_t index, uint64_t *pos)
{
    long k = txn_floor(ix, tid, 0);
    if (k < 0)
        return ZE_NOTFOUND;
    const txn_ent *t = vec_at(&ix->txns, (size_t)k);
    size_t end = (size_t)k + 1 < ix->txns.n ? t[1].first : ix->recs.n;
    if (t->tid != tid || t->first + index >= end)
        return ZE_NOTFOUND;
    *pos = ((const uint64_t *)ix->recs.mem.p)[t->first + index];
    return 0;
}

static int by_oid(const void *a, const void *b)
{
    uint64_t x = ((const slot *)a)->oid, y = ((const slot *)b)->oid;
    return x < y ? -1 : x > y;
}

int zfs__index_take_sorted(zfs_index *ix, const zfs_oidpos **out, size_t *n)
{
    oidmap *m = &ix->map;
    slot *t = m->mem.p;
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (t[i].pos)
            t[k++] = t[i];
    if (k)
        qsort(t, k, sizeof *t, by_oid);
    m->cap = 0;   /* no longer a hash table */
    m->n = 0;
    *out = t;
    *n = k;
    return 0;
}
