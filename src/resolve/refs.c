/* refs.c: persistent references and globals, one object per spelling.
 *
 * ZODB's conflict resolution loads the three states with one
 * PersistentReferenceFactory: each spelling of a persistent id (the key is
 * tuple(pid)) becomes one PersistentReference object, shared by the three
 * states. Identity matters twice: a weak reference equals only itself, and
 * BTrees compares next-bucket links by identity. Here the first node of each
 * spelling (in load order: new, old, committed) stands for that object;
 * every other node of the spelling is replaced by it. Globals get the same
 * treatment, since a class is one object; they appear only in class
 * metadata and persistent ids.
 */
#include "resolve/resolve_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/oidmap.h"

typedef struct table {
    zv **slots;
    uint64_t *hashes;
    size_t cap, count;
} table;

struct rs_refs {
    table pids, globals;
    oidmap seen;   /* id node -> its canonical node, so each node is hashed once */
    oidmap hashes; /* string node -> hash of its bytes, computed once */
};

rs_refs *rs__refs_new(void)
{
    return calloc(1, sizeof(rs_refs));
}

static void table_free(table *t)
{
    free(t->slots);
    free(t->hashes);
}

void rs__refs_free(rs_refs *r)
{
    if (!r)
        return;
    table_free(&r->pids);
    table_free(&r->globals);
    oidmap_free(&r->seen);
    oidmap_free(&r->hashes);
    free(r);
}

static int table_grow(table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16;
    table n = {calloc(cap, sizeof(zv *)), calloc(cap, sizeof(uint64_t)), cap, t->count};
    if (!n.slots || !n.hashes) {
        table_free(&n);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i])
            continue;
        size_t j = t->hashes[i] & (cap - 1);
        while (n.slots[j])
            j = (j + 1) & (cap - 1);
        n.slots[j] = t->slots[i];
        n.hashes[j] = t->hashes[i];
    }
    table_free(t);
    *t = n;
    return 0;
}

/* The node equal to v already in t, else v (now in t). NULL when out of
 * memory. */
static zv *table_intern(table *t, zv *v, uint64_t h)
{
    if ((t->count + 1) * 2 > t->cap && table_grow(t))
        return NULL;
    size_t i = h & (t->cap - 1);
    for (; t->slots[i]; i = (i + 1) & (t->cap - 1))
        if (t->hashes[i] == h && zv_equal(t->slots[i], v))
            return t->slots[i];
    t->slots[i] = v;
    t->hashes[i] = h;
    t->count++;
    return v;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ull

/* A string's bytes are hashed once, however many ids share the node. */
static uint64_t hash_string(oidmap *cache, const zv *v)
{
    uint64_t h;
    if (oidmap_get(cache, (uintptr_t)v, &h))
        return h;
    h = mix(HASH_SEED, v->u.s.p, v->u.s.len);
    oidmap_put(cache, (uintptr_t)v, h); /* out of memory: hashed again next time */
    return h;
}

/* A hash agreeing with zv_equal on the values persistent ids hold (checked
 * by rs__ref_parse first, so shallow, with short names). */
static uint64_t hash_value(oidmap *cache, const zv *v, uint64_t h)
{
    uint8_t t = (uint8_t)v->type;
    h = mix(h, &t, 1);
    switch (v->type) {
    case ZV_STR:
    case ZV_BYTES: {
        uint64_t sh = hash_string(cache, v);
        return mix(h, &sh, sizeof sh);
    }
    case ZV_GLOBAL:
        h = mix(h, v->u.global.module, strlen(v->u.global.module) + 1);
        return mix(h, v->u.global.name, strlen(v->u.global.name));
    case ZV_TUPLE:
    case ZV_LIST:
        for (size_t i = 0; i < v->u.seq.n; i++)
            h = hash_value(cache, v->u.seq.items[i], h);
        return h;
    default: return h;
    }
}

resolve_status rs__global(rs_ctx *c, zv *g, zv **out)
{
    *out = table_intern(&c->refs->globals, g, hash_value(&c->refs->hashes, g, HASH_SEED));
    return *out ? RESOLVE_OK : rs__fail(c, RESOLVE_NOMEM, "out of memory");
}

/* ---- what a persistent id names ----------------------------------------- */

static int is_tag(const zv *v, char tag)
{
    return v->type == ZV_STR && v->u.s.len == 1 && v->u.s.p[0] == (uint8_t)tag;
}

/* An oid: 8 bytes, or an 8-character ASCII str (a Python 2 oid that ZODB
 * encodes back to bytes). */
static int get_oid(const zv *v, uint8_t oid[8])
{
    if ((v->type != ZV_BYTES && v->type != ZV_STR) || v->u.s.len != 8)
        return 0;
    for (size_t i = 0; v->type == ZV_STR && i < 8; i++)
        if (v->u.s.p[i] >= 0x80)
            return 0;
    memcpy(oid, v->u.s.p, 8);
    return 1;
}

/* Names in ids (classes, databases) are short; a longer one is not
 * accepted, so that hashing and comparing ids costs a bounded time each. */
#define NAME_MAX_LEN 256

static int short_str(const zv *v)
{
    return v->type == ZV_STR && v->u.s.len <= NAME_MAX_LEN;
}

static int get_class(const zv *v, const zv **klass)
{
    *klass = v;
    if (v->type == ZV_GLOBAL)
        return strnlen(v->u.global.module, NAME_MAX_LEN + 1) <= NAME_MAX_LEN &&
               strnlen(v->u.global.name, NAME_MAX_LEN + 1) <= NAME_MAX_LEN;
    return v->type == ZV_TUPLE && v->u.seq.n == 2 && short_str(v->u.seq.items[0]) &&
           short_str(v->u.seq.items[1]);
}

static int get_db(const zv *v, const zv **db)
{
    *db = v;
    return short_str(v);
}

/* ['m', (db, oid, class)], ['n', (db, oid)], ['w', (oid,)], ['w', (oid, db)]. */
static int parse_tagged(const zv *tag, const zv *args, rs_ref *ref)
{
    if (args->type != ZV_TUPLE)
        return 0;
    zv *const *a = args->u.seq.items;
    size_t n = args->u.seq.n;
    if (is_tag(tag, 'm'))
        return n == 3 && get_db(a[0], &ref->database) && get_oid(a[1], ref->oid) &&
               get_class(a[2], &ref->klass);
    if (is_tag(tag, 'n'))
        return n == 2 && get_db(a[0], &ref->database) && get_oid(a[1], ref->oid);
    if (is_tag(tag, 'w')) {
        ref->weak = 1;
        return (n == 1 || (n == 2 && get_db(a[1], &ref->database))) && get_oid(a[0], ref->oid);
    }
    return 0;
}

int rs__ref_parse(const zv *pid, rs_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    int ok = 0;
    if (pid->type == ZV_BYTES || pid->type == ZV_STR) {
        ok = get_oid(pid, ref->oid);
    } else if (pid->type == ZV_TUPLE) { /* (oid, class) */
        ok = pid->u.seq.n == 2 && get_oid(pid->u.seq.items[0], ref->oid) &&
             get_class(pid->u.seq.items[1], &ref->klass);
    } else if (pid->type == ZV_LIST && pid->u.seq.n == 2) {
        ok = parse_tagged(pid->u.seq.items[0], pid->u.seq.items[1], ref);
    } else if (pid->type == ZV_LIST && pid->u.seq.n == 1) { /* legacy weak [oid] */
        ref->weak = 1;
        ok = get_oid(pid->u.seq.items[0], ref->oid);
    }
    return ok ? 0 : -1;
}

/* Make the globals inside a parsed id canonical, in place. */
static resolve_status canon_globals(rs_ctx *c, zv *v, int depth)
{
    if (v->type == ZV_GLOBAL || depth > 3)
        return RESOLVE_OK;
    if (v->type != ZV_TUPLE && v->type != ZV_LIST)
        return RESOLVE_OK;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        zv *item = v->u.seq.items[i];
        resolve_status s = item->type == ZV_GLOBAL ? rs__global(c, item, &v->u.seq.items[i])
                                                   : canon_globals(c, item, depth + 1);
        if (s)
            return s;
    }
    return RESOLVE_OK;
}

static resolve_status canon_persid(rs_ctx *c, zv *v)
{
    rs_ref ref;
    zv *pid = v->u.persid;
    uint64_t known;
    if (oidmap_get(&c->refs->seen, (uintptr_t)pid, &known)) {
        v->u.persid = (zv *)(uintptr_t)known;
        return RESOLVE_OK;
    }
    if (rs__ref_parse(pid, &ref))
        return rs__fail(c, RESOLVE_UNSUPPORTED, "persistent id of an unknown form");
    resolve_status s = canon_globals(c, pid, 0);
    if (s)
        return s;
    zv *canon = table_intern(&c->refs->pids, pid, hash_value(&c->refs->hashes, pid, HASH_SEED));
    if (!canon || oidmap_put(&c->refs->seen, (uintptr_t)pid, (uintptr_t)canon))
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    v->u.persid = canon;
    return RESOLVE_OK;
}

resolve_status rs__canon(rs_ctx *c, zv *v)
{
    switch (v->type) {
    case ZV_NONE:
    case ZV_BOOL:
    case ZV_INT:
    case ZV_BIGINT:
    case ZV_FLOAT:
    case ZV_STR:
    case ZV_BYTES: return RESOLVE_OK;
    case ZV_TUPLE:
    case ZV_LIST:
        /* The reader bounds the depth of what it returns. */
        for (size_t i = 0; i < v->u.seq.n; i++) {
            resolve_status s = rs__canon(c, v->u.seq.items[i]);
            if (s)
                return s;
        }
        return RESOLVE_OK;
    case ZV_PERSID: return canon_persid(c, v);
    default:
        return rs__fail(c, RESOLVE_UNSUPPORTED, "a value of a type not compared here (%s)",
                        v->type == ZV_DICT ? "dict" : v->type == ZV_GLOBAL ? "class" : "object");
    }
}
