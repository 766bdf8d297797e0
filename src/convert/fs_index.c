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
    void *p;
    size_t n, cap, item;
} vec;

/* oid -> last record offset; open addressing, linear probing. Offsets are
 * never 0 (the magic comes first), so 0 marks an empty slot. */
typedef struct oidmap {
    uint64_t *keys;
    uint64_t *vals;
    size_t cap;    /* power of two */
    size_t n;
} oidmap;

struct zfs_index {
    vec txns;      /* txn_ent */
    vec recs;      /* uint64_t offsets */
    vec pending;   /* uint64_t oids of the current transaction's records */
    oidmap map;
};

static int vec_push(vec *v, const void *x, zerr *err)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        void *p = realloc(v->p, cap * v->item);
        if (!p)
            return zerr_set(err, ZE_NOMEM, "index: out of memory (%zu entries)", v->n);
        v->p = p;
        v->cap = cap;
    }
    memcpy((char *)v->p + v->n * v->item, x, v->item);
    v->n++;
    return 0;
}

static size_t slot_of(uint64_t oid, size_t cap)
{
    return (size_t)((oid * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void map_put_nogrow(oidmap *m, uint64_t oid, uint64_t pos)
{
    size_t i = slot_of(oid, m->cap);
    while (m->vals[i] && m->keys[i] != oid)
        i = (i + 1) & (m->cap - 1);
    if (!m->vals[i])
        m->n++;
    m->keys[i] = oid;
    m->vals[i] = pos;
}

static int map_grow(oidmap *m, zerr *err)
{
    oidmap big = {0};
    big.cap = m->cap ? m->cap * 2 : 4096;
    big.keys = malloc(big.cap * sizeof *big.keys);
    big.vals = calloc(big.cap, sizeof *big.vals);
    if (!big.keys || !big.vals) {
        free(big.keys);
        free(big.vals);
        return zerr_set(err, ZE_NOMEM, "index: out of memory (%zu oids)", m->n);
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i])
            map_put_nogrow(&big, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = big;
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
    map_put_nogrow(m, oid, pos);
    return 0;
}

zfs_index *zfs__index_new(void)
{
    zfs_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->txns.item = sizeof(txn_ent);
    ix->recs.item = sizeof(uint64_t);
    ix->pending.item = sizeof(uint64_t);
    return ix;
}

void zfs__index_free(zfs_index *ix)
{
    if (!ix)
        return;
    free(ix->txns.p);
    free(ix->recs.p);
    free(ix->pending.p);
    free(ix->map.keys);
    free(ix->map.vals);
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
    const uint64_t *oids = ix->pending.p;
    const uint64_t *recs = ix->recs.p;
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
    const txn_ent *t = (const txn_ent *)ix->txns.p + ix->txns.n - 1;
    ix->recs.n = t->first;
    ix->txns.n--;
    ix->pending.n = 0;
}

uint64_t zfs__index_last(const zfs_index *ix, uint64_t oid)
{
    const oidmap *m = &ix->map;
    if (!m->cap)
        return 0;
    size_t i = slot_of(oid, m->cap);
    while (m->vals[i]) {
        if (m->keys[i] == oid)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

/* Number of the last transaction whose key (by get) is <= x, or -1. */
static long txn_floor(const zfs_index *ix, uint64_t x, int by_first)
{
    const txn_ent *t = ix->txns.p;
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
    const uint64_t *r = ix->recs.p;
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
    const txn_ent *t = (const txn_ent *)ix->txns.p + k;
    *tid = t->tid;
    *index = (uint32_t)(lo - t->first);
    return 0;
}

int zfs__index_find_rec(const zfs_index *ix, uint64_t tid, uint32_t index, uint64_t *pos)
{
    long k = txn_floor(ix, tid, 0);
    if (k < 0)
        return ZE_NOTFOUND;
    const txn_ent *t = (const txn_ent *)ix->txns.p + k;
    size_t end = (size_t)k + 1 < ix->txns.n ? t[1].first : ix->recs.n;
    if (t->tid != tid || t->first + index >= end)
        return ZE_NOTFOUND;
    *pos = ((const uint64_t *)ix->recs.p)[t->first + index];
    return 0;
}
