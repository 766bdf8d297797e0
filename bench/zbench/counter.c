/* counter.c: the objects of the counter workload and each transaction's
 * change to them.
 *
 * Two shared objects, real ZODB records: a BTrees.Length and an OOBucket
 * whose first key ("!first") nobody deletes. A transaction increments the
 * Length and, in the bucket, inserts a key of its client's own and deletes
 * that client's oldest key once it holds its share, so the bucket stays
 * under BTrees' OOBucket size (30) with up to 29 clients: the shape of a
 * catalog's counter and index, and one BTrees resolves every conflict of
 * (each client changes keys only it uses, never the first). */
#include "bench_int.h"

#include <stdio.h>
#include <string.h>

#include "pickle/record.h"

#define BUCKET_SIZE 30 /* DEFAULT_MAX_BUCKET_SIZE of BTrees' OO family */

static zv *klass(zv_arena *a, const char *module, const char *name)
{
    zv *g = zv_alloc(a, sizeof *g);
    if (g)
        *g = (zv){.type = ZV_GLOBAL, .u.global = {module, name}};
    return g;
}

/* Length(value) and OOBucket(items): the class, then the state. */
static int length_record(zv_arena *a, int64_t value, zbuf *out, zerr *err)
{
    zv *g = klass(a, "BTrees.Length", "Length"), *v = zv_int(a, value);
    zbuf_reset(out);
    return g && v ? record_encode(g, v, out, err) : zerr_set(err, ZE_NOMEM, "out of memory");
}

static int bucket_record(zv_arena *a, zv *items, zbuf *out, zerr *err)
{
    zv *g = klass(a, "BTrees.OOBTree", "OOBucket"), *state = zv_tuple(a, 1);
    zbuf_reset(out);
    if (!g || !state || !items)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    state->u.seq.items[0] = items;
    return record_encode(g, state, out, err);
}

int zb_counter_setup(zcl_client *c, uint64_t oids[2], uint64_t serials[2], zerr *err)
{
    zv_arena *a = zv_arena_new();
    zbuf recs[2] = {ZBUF_INIT, ZBUF_INIT};
    size_t got = 0;
    uint64_t tid = 0;
    zv *items = a ? zv_tuple(a, 2) : NULL;
    if (items) {
        items->u.seq.items[0] = zv_cstr(a, "!first");
        items->u.seq.items[1] = zv_int(a, 0);
    }
    int rc =
        items ? zcl_new_oids_sync(c, 2, oids, &got, err) : zerr_set(err, ZE_NOMEM, "out of memory");
    if (rc == 0 && got != 2)
        rc = zerr_set(err, ZE_PROTO, "new_oids gave %zu oids, not 2", got);
    if (rc == 0)
        rc = length_record(a, 0, &recs[0], err);
    if (rc == 0)
        rc = bucket_record(a, items, &recs[1], err);
    if (rc == 0)
        rc = zcl_tpc_begin(c, "zeolite bench", "counter setup", NULL);
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = zcl_store(c, oids[i], 0, recs[i].data, recs[i].len);
    if (rc == 0 && (rc = zcl_tpc_vote_sync(c, NULL, NULL, err)) < 0)
        zcl_tpc_abort_sync(c, NULL);
    if (rc == 0)
        rc = zcl_tpc_finish_sync(c, &tid, err);
    serials[0] = serials[1] = tid;
    zbuf_free(&recs[0]);
    zbuf_free(&recs[1]);
    zv_arena_free(a);
    return rc;
}

/* The key a client inserts in its transaction number seq. */
static zv *own_key(zv_arena *a, int client, uint64_t seq)
{
    char s[48];
    snprintf(s, sizeof s, "c%05d-%012llu", client, (unsigned long long)seq);
    return zv_cstr(a, s);
}

/* Python's order of two str keys: their UTF-8 bytes'. */
static int key_cmp(const zv *x, const zv *y)
{
    size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
    int c = memcmp(x->u.s.p, y->u.s.p, n);
    return c ? c : (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
}

/* items with ins (-> value) inserted in order and del removed if there. */
static zv *bucket_change(zv_arena *a, const zv *items, zv *ins, zv *value, const zv *del)
{
    size_t n = items->u.seq.n, o = 0;
    zv *out = zv_tuple(a, n + 2);
    if (!out || !ins || !value)
        return NULL;
    int done = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        zv *k = items->u.seq.items[i];
        if (k->type != ZV_STR)
            return NULL;
        if (!done && key_cmp(ins, k) < 0) {
            out->u.seq.items[o++] = ins;
            out->u.seq.items[o++] = value;
            done = 1;
        }
        if (del && !key_cmp(del, k))
            continue;
        out->u.seq.items[o++] = k;
        out->u.seq.items[o++] = items->u.seq.items[i + 1];
    }
    if (!done) {
        out->u.seq.items[o++] = ins;
        out->u.seq.items[o++] = value;
    }
    out->u.seq.n = o;
    return out;
}

int zb_counter_change(bclient *bc, zerr *err)
{
    zv_arena *a = bc->arena;
    zv *meta, *len, *state;
    zv_arena_reset(a);
    int rc = record_decode(a, bc->loaded[0].data, bc->loaded[0].len, 0, &meta, &len, err);
    if (rc == 0 && len->type != ZV_INT)
        rc = zerr_set(err, ZE_CORRUPT, "the Length's state is not an int");
    if (rc == 0)
        rc = record_decode(a, bc->loaded[1].data, bc->loaded[1].len, 0, &meta, &state, err);
    /* ((k1, v1, ...),): a bucket alone, no next bucket */
    if (rc == 0 && (state->type != ZV_TUPLE || state->u.seq.n != 1 ||
                    state->u.seq.items[0]->type != ZV_TUPLE || state->u.seq.items[0]->u.seq.n % 2))
        rc = zerr_set(err, ZE_CORRUPT, "the bucket's state is not ((items),)");
    if (rc)
        return rc;
    int share = BUCKET_SIZE - 1 > bc->b->nclients ? (BUCKET_SIZE - 1) / bc->b->nclients : 1;
    const zv *del =
        bc->seq >= (uint64_t)share ? own_key(a, bc->id, bc->seq - (uint64_t)share) : NULL;
    zv *items = bucket_change(a, state->u.seq.items[0], own_key(a, bc->id, bc->seq),
                              zv_int(a, (int64_t)bc->seq), del);
    if (!items)
        return zerr_set(err, ZE_CORRUPT, "the bucket's keys are not str");
    rc = length_record(a, len->u.i + 1, &bc->recs[0], err);
    return rc ? rc : bucket_record(a, items, &bc->recs[1], err);
}
