/* cache.c: the client's MVCC object cache.
 *
 * Each cached revision of an oid covers the transactions that see it: the
 * revision written by `start` answers loadBefore(oid, before) for
 * start < before <= end, where end is the tid of the next revision; a
 * current revision (end 0) answers every later `before` until an
 * invalidation gives it an end. Revisions of one oid hang off one object in
 * a hash table; all revisions share one LRU list, and the least recently
 * used go first when the byte bound is passed.
 */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>

#define REV_OVERHEAD 64 /* bookkeeping charged per revision */

typedef struct crev crev;
typedef struct cobj cobj;

struct crev {
    crev *next;            /* this oid's other revisions */
    crev *lru_prev, *lru_next;
    cobj *obj;
    uint64_t start, end;
    size_t len;
    uint8_t data[];
};

struct cobj {
    cobj *hnext;           /* hash chain */
    uint64_t oid;
    crev *revs;
};

struct zcl_cache {
    cobj **buckets;
    size_t nbuckets;       /* power of two */
    size_t nobjs, nrevs;
    size_t bytes, limit;
    crev *lru_head, *lru_tail; /* head: most recent */
    zcl_cache_stats st;
};

static size_t bucket_of(const zcl_cache *k, uint64_t oid)
{
    uint64_t h = oid * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32) & (k->nbuckets - 1);
}

zcl_cache *zcl__cache_new(size_t limit)
{
    zcl_cache *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->nbuckets = 1024;
    k->buckets = calloc(k->nbuckets, sizeof *k->buckets);
    if (!k->buckets) {
        free(k);
        return NULL;
    }
    k->limit = limit;
    return k;
}

static cobj *obj_find(const zcl_cache *k, uint64_t oid, cobj ***link)
{
    cobj **pp = &k->buckets[bucket_of(k, oid)];
    for (; *pp; pp = &(*pp)->hnext) {
        if ((*pp)->oid == oid)
            break;
    }
    if (link)
        *link = pp;
    return *pp;
}

static void lru_unlink(zcl_cache *k, crev *r)
{
    if (r->lru_prev)
        r->lru_prev->lru_next = r->lru_next;
    else
        k->lru_head = r->lru_next;
    if (r->lru_next)
        r->lru_next->lru_prev = r->lru_prev;
    else
        k->lru_tail = r->lru_prev;
    r->lru_prev = r->lru_next = NULL;
}

static void lru_push(zcl_cache *k, crev *r)
{
    r->lru_prev = NULL;
    r->lru_next = k->lru_head;
    if (k->lru_head)
        k->lru_head->lru_prev = r;
    k->lru_head = r;
    if (!k->lru_tail)
        k->lru_tail = r;
}

static void obj_remove(zcl_cache *k, cobj *o)
{
    cobj **pp;
    obj_find(k, o->oid, &pp);
    *pp = o->hnext;
    k->nobjs--;
    free(o);
}

/* Unlink r from its object (dropping the object when it was the last) and
 * from the LRU, and free it. */
static void rev_drop(zcl_cache *k, crev *r)
{
    cobj *o = r->obj;
    crev **pp = &o->revs;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    lru_unlink(k, r);
    k->bytes -= r->len + REV_OVERHEAD;
    k->nrevs--;
    free(r);
    if (!o->revs)
        obj_remove(k, o);
}

static void grow_buckets(zcl_cache *k)
{
    size_t n = k->nbuckets * 2;
    cobj **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    cobj **old = k->buckets;
    size_t oldn = k->nbuckets;
    k->buckets = b;
    k->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        cobj *o = old[i];
        while (o) {
            cobj *next = o->hnext;
            size_t j = bucket_of(k, o->oid);
            o->hnext = b[j];
            b[j] = o;
            o = next;
        }
    }
    free(old);
}

static int rev_answers(const crev *r, uint64_t before)
{
    return r->start < before && (r->end == 0 || before <= r->end);
}

int zcl__cache_lookup(zcl_cache *k, uint64_t oid, uint64_t before, zcl_rev *out)
{
    cobj *o = obj_find(k, oid, NULL);
    for (crev *r = o ? o->revs : NULL; r; r = r->next) {
        if (!rev_answers(r, before))
            continue;
        lru_unlink(k, r);
        lru_push(k, r);
        out->data = r->data;
        out->len = r->len;
        out->start = r->start;
        out->end = r->end;
        k->st.hits++;
        return 1;
    }
    k->st.misses++;
    return 0;
}

static void evict(zcl_cache *k)
{
    while (k->bytes > k->limit && k->lru_tail) {
        rev_drop(k, k->lru_tail);
        k->st.evictions++;
    }
}

void zcl__cache_store(zcl_cache *k, uint64_t oid, uint64_t start, uint64_t end,
                      const void *data, size_t len)
{
    if (!k || len + REV_OVERHEAD > k->limit / 2)
        return; /* one huge record would flush everything else */
    cobj *o = obj_find(k, oid, NULL);
    for (crev *r = o ? o->revs : NULL, *next; r; r = next) {
        next = r->next;
        if (r->start == start && (r->end == end || (end && !r->end)))
            return; /* known already, or ours is older news than that end */
        /* A claim to be current is stale when we know of a change after
         * its start: a newer current revision, or any revision ending
         * later (a late reply overtaken by an invalidation). */
        if (end == 0 && ((r->end == 0 && r->start > start) || r->end > start))
            return;
        if (r->start == start || (end == 0 && r->end == 0)) {
            /* Replaced by what the server just said; an old current
             * revision's true end is unknown here, so it goes. */
            int last = !r->next && o->revs == r;
            rev_drop(k, r);
            if (last)
                o = NULL;
        }
    }
    crev *r = malloc(sizeof *r + len);
    if (!r)
        return;
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o) {
            free(r);
            return;
        }
        cobj **pp;
        obj_find(k, oid, &pp);
        o->oid = oid;
        *pp = o;
        if (++k->nobjs > k->nbuckets)
            grow_buckets(k);
    }
    r->obj = o;
    r->start = start;
    r->end = end;
    r->len = len;
    memcpy(r->data, data, len);
    r->next = o->revs;
    o->revs = r;
    lru_push(k, r);
    k->bytes += len + REV_OVERHEAD;
    k->nrevs++;
    evict(k);
}

void zcl__cache_invalidate(zcl_cache *k, uint64_t oid, uint64_t tid)
{
    cobj *o = k ? obj_find(k, oid, NULL) : NULL;
    for (crev *r = o ? o->revs : NULL; r; r = r->next) {
        if (r->end != 0)
            continue;
        k->st.invalidations++;
        if (tid && r->start < tid)
            r->end = tid;
        else
            rev_drop(k, r);
        return;
    }
}

void zcl__cache_clear(zcl_cache *k)
{
    while (k && k->lru_tail)
        rev_drop(k, k->lru_tail);
}

int zcl__cache_is_empty(const zcl_cache *k)
{
    return !k || k->nrevs == 0;
}

void zcl__cache_stats(const zcl_cache *k, zcl_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!k)
        return;
    *st = k->st;
    st->bytes = k->bytes;
    st->entries = k->nrevs;
}

void zcl__cache_free(zcl_cache *k)
{
    if (!k)
        return;
    zcl__cache_clear(k);
    free(k->buckets);
    free(k);
}

void zcl_cache_clear(zcl_client *c)
{
    zcl__cache_clear(c->cache);
}

void zcl_cache_stats_get(const zcl_client *c, zcl_cache_stats *st)
{
    zcl__cache_stats(c->cache, st);
}
