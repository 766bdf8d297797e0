#define _GNU_SOURCE
#include "common/zvalue.h"
#include "common/zbuf.h"
#include "common/zerr.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bump allocator over a list of chunks: a decoded message is many small
 * values freed together, so per-value malloc would dominate decoding. The
 * head is the chunk being filled; an allocation too large for it gets a
 * chunk of its own behind the head, so that the head's room is not lost. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

struct zv_arena {
    chunk *head;
    size_t bytes;   /* malloc'd: chunk headers and capacities */
    size_t limit;   /* 0: none */
    int at_limit;   /* the last failure was the limit */
};

#define CHUNK_MIN 4096
#define CHUNK_GROW_MAX (1u << 20)  /* head chunks double up to this size */
#define CHUNK_OWN (16u * 1024)     /* larger allocations get their own chunk */

zv_arena *zv_arena_new(void)
{
    return calloc(1, sizeof(zv_arena));
}

static void free_chunks(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

void zv_arena_free(zv_arena *a)
{
    if (!a)
        return;
    free_chunks(a->head);
    free(a);
}

void zv_arena_reset(zv_arena *a)
{
    chunk *keep = a->head;
    if (!keep)
        return;
    free_chunks(keep->next);
    keep->next = NULL;
    if (keep->cap > ZV_ARENA_KEEP) {
        free(keep);
        a->head = NULL;
        a->bytes = 0;
        return;
    }
    keep->used = 0;
    a->bytes = sizeof(chunk) + keep->cap;
}

size_t zv_arena_bytes(const zv_arena *a)
{
    return a->bytes;
}

size_t zv_arena_set_limit(zv_arena *a, size_t limit)
{
    size_t old = a->limit;
    a->limit = limit;
    a->at_limit = 0;
    return old;
}

int zv_arena_at_limit(const zv_arena *a)
{
    return a->at_limit;
}

/* A chunk of cap bytes, or under a limit at least need: a limit is the
 * memory allowed, not the number of chunks. */
static chunk *new_chunk(zv_arena *a, size_t cap, size_t need)
{
    if (a->limit) {
        size_t room = a->limit > a->bytes + sizeof(chunk) ? a->limit - a->bytes - sizeof(chunk) : 0;
        if (need > room) {
            a->at_limit = 1;
            return NULL;
        }
        if (cap > room)
            cap = room;
    }
    size_t size = sizeof(chunk) + cap;
    chunk *c = malloc(size);
    if (!c)
        return NULL;
    c->used = 0;
    c->cap = cap;
    a->bytes += size;
    return c;
}

void *zv_alloc(zv_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    chunk *c = a->head;
    if (c && c->cap - c->used >= n) {
        void *p = (char *)c->data + c->used;
        c->used += n;
        return p;
    }
    if (c && n > CHUNK_OWN) {
        chunk *own = new_chunk(a, n, n);
        if (!own)
            return NULL;
        own->used = n;
        own->next = c->next;
        c->next = own;
        return own->data;
    }
    /* Head chunks double up to CHUNK_GROW_MAX and stay there: the room a
     * head leaves unused is below CHUNK_OWN, a small part of it. */
    size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
    size_t grown = c ? (c->cap < CHUNK_GROW_MAX / 2 ? c->cap * 2 : CHUNK_GROW_MAX) : 0;
    if (grown > cap)
        cap = grown;
    chunk *nc = new_chunk(a, cap, n);
    if (!nc)
        return NULL;
    nc->next = c;
    a->head = nc;
    nc->used = n;
    return nc->data;
}

static zv *new_value(zv_arena *a, zv_type t)
{
    zv *v = zv_alloc(a, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = t;
    }
    return v;
}

zv *zv_none(zv_arena *a) { return new_value(a, ZV_NONE); }

zv *zv_bool(zv_arena *a, int b)
{
    zv *v = new_value(a, ZV_BOOL);
    if (v)
        v->u.b = b != 0;
    return v;
}

zv *zv_int(zv_arena *a, int64_t i)
{
    zv *v = new_value(a, ZV_INT);
    if (v)
        v->u.i = i;
    return v;
}

zv *zv_float(zv_arena *a, double f)
{
    zv *v = new_value(a, ZV_FLOAT);
    if (v)
        v->u.f = f;
    return v;
}

static zv *new_string(zv_arena *a, zv_type t, const void *p, size_t len)
{
    zv *v = new_value(a, t);
    if (!v)
        return NULL;
    /* NUL-terminated so that STR values can be used as C strings. */
    uint8_t *copy = zv_alloc(a, len + 1);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, p, len);
    copy[len] = 0;
    v->u.s.p = copy;
    v->u.s.len = len;
    return v;
}

zv *zv_bytes(zv_arena *a, const void *p, size_t len) { return new_string(a, ZV_BYTES, p, len); }
zv *zv_str(zv_arena *a, const char *p, size_t len) { return new_string(a, ZV_STR, p, len); }
zv *zv_cstr(zv_arena *a, const char *s) { return new_string(a, ZV_STR, s, strlen(s)); }
zv *zv_bigint(zv_arena *a, const uint8_t *le, size_t len) { return new_string(a, ZV_BIGINT, le, len); }

static zv *new_seq(zv_arena *a, zv_type t, size_t slots, size_t n)
{
    zv *v = new_value(a, t);
    if (!v)
        return NULL;
    if (slots) {
        if (slots > SIZE_MAX / sizeof(zv *))
            return NULL;
        v->u.seq.items = zv_alloc(a, slots * sizeof(zv *));
        if (!v->u.seq.items)
            return NULL;
        memset(v->u.seq.items, 0, slots * sizeof(zv *));
    }
    v->u.seq.n = n;
    return v;
}

zv *zv_tuple(zv_arena *a, size_t n) { return new_seq(a, ZV_TUPLE, n, n); }
zv *zv_list(zv_arena *a, size_t n) { return new_seq(a, ZV_LIST, n, n); }

zv *zv_dict(zv_arena *a, size_t npairs)
{
    if (npairs > SIZE_MAX / 2)
        return NULL;
    return new_seq(a, ZV_DICT, npairs * 2, npairs);
}

zv *zv_tuple2(zv_arena *a, zv *x, zv *y)
{
    if (!x || !y)
        return NULL;
    zv *t = zv_tuple(a, 2);
    if (t) {
        t->u.seq.items[0] = x;
        t->u.seq.items[1] = y;
    }
    return t;
}

zv *zv_oid(zv_arena *a, uint64_t oid)
{
    uint8_t b[8];
    zbe64_put(b, oid);
    return zv_bytes(a, b, 8);
}

size_t zv_utf8_put(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

int zv_get_int(const zv *v, int64_t *out)
{
    if (!v)
        return 0;
    if (v->type == ZV_INT) {
        *out = v->u.i;
        return 1;
    }
    if (v->type == ZV_BOOL) {
        *out = v->u.b;
        return 1;
    }
    return 0;
}

int zv_get_u64be(const zv *v, uint64_t *out)
{
    if (!v || v->type != ZV_BYTES || v->u.s.len != 8)
        return 0;
    *out = zbe64(v->u.s.p);
    return 1;
}

int zv_is_seq(const zv *v)
{
    return v && (v->type == ZV_TUPLE || v->type == ZV_LIST);
}

int zv_truthy(const zv *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case ZV_NONE: return 0;
    case ZV_BOOL: return v->u.b;
    case ZV_INT: return v->u.i != 0;
    case ZV_FLOAT: return v->u.f != 0.0;
    case ZV_BIGINT:
        for (size_t i = 0; i < v->u.s.len; i++)
            if (v->u.s.p[i])
                return 1;
        return 0;
    case ZV_BYTES:
    case ZV_STR: return v->u.s.len != 0;
    case ZV_TUPLE:
    case ZV_LIST:
    case ZV_DICT:
    case ZV_SET:
    case ZV_FROZENSET: return v->u.seq.n != 0;
    default: return 1;
    }
}

const zv *zv_dict_get(const zv *dict, const char *key)
{
    if (!dict || dict->type != ZV_DICT)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < dict->u.seq.n; i++) {
        const zv *k = dict->u.seq.items[2 * i];
        if (k && k->type == ZV_STR && k->u.s.len == klen && !memcmp(k->u.s.p, key, klen))
            return dict->u.seq.items[2 * i + 1];
    }
    return NULL;
}

static size_t seq_slots(const zv *v)
{
    return v->type == ZV_DICT ? v->u.seq.n * 2 : v->u.seq.n;
}

static int is_seq_type(zv_type t)
{
    return t == ZV_TUPLE || t == ZV_LIST || t == ZV_DICT || t == ZV_SET || t == ZV_FROZENSET;
}

int zv_equal(const zv *x, const zv *y)
{
    if (x == y)
        return 1;
    if (!x || !y || x->type != y->type)
        return 0;
    switch (x->type) {
    case ZV_NONE: return 1;
    case ZV_BOOL: return x->u.b == y->u.b;
    case ZV_INT: return x->u.i == y->u.i;
    case ZV_FLOAT: return x->u.f == y->u.f || (isnan(x->u.f) && isnan(y->u.f));
    case ZV_BYTES:
    case ZV_STR:
    case ZV_BIGINT:
        return x->u.s.len == y->u.s.len && !memcmp(x->u.s.p, y->u.s.p, x->u.s.len);
    case ZV_GLOBAL:
        return !strcmp(x->u.global.module, y->u.global.module) &&
               !strcmp(x->u.global.name, y->u.global.name);
    case ZV_CALL:
        return x->u.call.newobj == y->u.call.newobj &&
               zv_equal(x->u.call.callable, y->u.call.callable) &&
               zv_equal(x->u.call.args, y->u.call.args);
    case ZV_BUILD:
        return zv_equal(x->u.build.obj, y->u.build.obj) &&
               zv_equal(x->u.build.state, y->u.build.state);
    case ZV_PERSID: return zv_equal(x->u.persid, y->u.persid);
    default: break;
    }
    if (!is_seq_type(x->type) || x->u.seq.n != y->u.seq.n)
        return 0;
    for (size_t i = 0; i < seq_slots(x); i++)
        if (!zv_equal(x->u.seq.items[i], y->u.seq.items[i]))
            return 0;
    return 1;
}

static const char *copy_cstr(zv_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = zv_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

zv *zv_copy(zv_arena *a, const zv *v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case ZV_BYTES:
    case ZV_STR:
    case ZV_BIGINT:
        return new_string(a, v->type, v->u.s.p, v->u.s.len);
    case ZV_GLOBAL: {
        zv *c = new_value(a, ZV_GLOBAL);
        if (!c || !(c->u.global.module = copy_cstr(a, v->u.global.module)) ||
            !(c->u.global.name = copy_cstr(a, v->u.global.name)))
            return NULL;
        return c;
    }
    case ZV_CALL: {
        zv *c = new_value(a, ZV_CALL);
        if (!c || !(c->u.call.callable = zv_copy(a, v->u.call.callable)) ||
            !(c->u.call.args = zv_copy(a, v->u.call.args)))
            return NULL;
        c->u.call.newobj = v->u.call.newobj;
        return c;
    }
    case ZV_BUILD: {
        zv *c = new_value(a, ZV_BUILD);
        if (!c || !(c->u.build.obj = zv_copy(a, v->u.build.obj)) ||
            !(c->u.build.state = zv_copy(a, v->u.build.state)))
            return NULL;
        return c;
    }
    case ZV_PERSID: {
        zv *c = new_value(a, ZV_PERSID);
        if (!c || !(c->u.persid = zv_copy(a, v->u.persid)))
            return NULL;
        return c;
    }
    default: break;
    }
    if (!is_seq_type(v->type)) {
        zv *c = new_value(a, v->type);
        if (c)
            c->u = v->u;
        return c;
    }
    size_t slots = seq_slots(v);
    zv *c = new_seq(a, v->type, slots, v->u.seq.n);
    if (!c)
        return NULL;
    for (size_t i = 0; i < slots; i++)
        if (!(c->u.seq.items[i] = zv_copy(a, v->u.seq.items[i])))
            return NULL;
    return c;
}

/* ---- cost of a copy ------------------------------------------------------ */

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

size_t zv_node_cost(const zv *v)
{
    size_t n = round8(sizeof(zv));
    switch (v->type) {
    case ZV_BYTES:
    case ZV_STR:
    case ZV_BIGINT: return n + round8(v->u.s.len + 1);
    case ZV_GLOBAL:
        return n + round8(strlen(v->u.global.module) + 1) + round8(strlen(v->u.global.name) + 1);
    default: break;
    }
    return is_seq_type(v->type) ? n + seq_slots(v) * sizeof(zv *) : n;
}

/* Adds v's cost to *sum; 1 once *sum passes max (the walk stops). */
static int add_cost(const zv *v, size_t max, size_t *sum)
{
    if (!v)
        return 0;
    size_t own = zv_node_cost(v);
    if (own > max - *sum) {
        *sum = max + 1;
        return 1;
    }
    *sum += own;
    switch (v->type) {
    case ZV_CALL:
        return add_cost(v->u.call.callable, max, sum) || add_cost(v->u.call.args, max, sum);
    case ZV_BUILD:
        return add_cost(v->u.build.obj, max, sum) || add_cost(v->u.build.state, max, sum);
    case ZV_PERSID: return add_cost(v->u.persid, max, sum);
    default: break;
    }
    if (is_seq_type(v->type))
        for (size_t i = 0; i < seq_slots(v); i++)
            if (add_cost(v->u.seq.items[i], max, sum))
                return 1;
    return 0;
}

size_t zv_copy_cost(const zv *v, size_t max)
{
    size_t sum = 0;
    if (max == SIZE_MAX)
        max--;
    add_cost(v, max, &sum);
    return sum;
}

/* ---- repr ---------------------------------------------------------------- */

/* The text being built and where it must stop. FULL, a positive value no
 * zbuf call returns, unwinds the walk once max bytes are written. */
typedef struct repr_out {
    zbuf b;
    size_t max;
} repr_out;

#define FULL 1

static int out_append(repr_out *o, const void *p, size_t n)
{
    size_t room = o->max - o->b.len;
    int rc = zbuf_append(&o->b, p, n < room ? n : room);
    return rc ? rc : n > room ? FULL : 0;
}

static int out_str(repr_out *o, const char *s)
{
    return out_append(o, s, strlen(s));
}

static int repr_bytes(repr_out *o, const zv *v)
{
    int rc = out_str(o, v->type == ZV_BYTES ? "b'" : "'");
    for (size_t i = 0; !rc && i < v->u.s.len; i++) {
        uint8_t c = v->u.s.p[i];
        char tmp[5];
        if (c == '\\' || c == '\'')
            rc = out_append(o, (char[]){'\\', (char)c}, 2);
        else if ((c >= 0x20 && c < 0x7f) || (v->type == ZV_STR && c >= 0x80))
            rc = out_append(o, &c, 1); /* UTF-8 passes through */
        else {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            rc = out_append(o, tmp, 4);
        }
    }
    return rc ? rc : out_str(o, "'");
}

static int repr_append(repr_out *o, const zv *v, int depth);

static int repr_items(repr_out *o, const zv *v, const char *open, const char *close, int depth)
{
    int rc = out_str(o, open);
    for (size_t i = 0; !rc && i < v->u.seq.n; i++) {
        if (i)
            rc = out_str(o, ", ");
        if (!rc && v->type == ZV_DICT) {
            rc = repr_append(o, v->u.seq.items[2 * i], depth + 1);
            if (!rc)
                rc = out_str(o, ": ");
            if (!rc)
                rc = repr_append(o, v->u.seq.items[2 * i + 1], depth + 1);
        } else if (!rc) {
            rc = repr_append(o, v->u.seq.items[i], depth + 1);
        }
    }
    if (!rc && v->type == ZV_TUPLE && v->u.seq.n == 1)
        rc = out_str(o, ",");
    return rc ? rc : out_str(o, close);
}

/* What zbuf_printf added, cut at the limit (numbers: a few bytes). */
static int out_cut(repr_out *o, int rc)
{
    if (rc || o->b.len <= o->max)
        return rc;
    o->b.len = o->max;
    return FULL;
}

static int repr_append(repr_out *o, const zv *v, int depth)
{
    if (!v)
        return out_str(o, "<null>");
    if (depth > 64)
        return out_str(o, "...");
    switch (v->type) {
    case ZV_NONE: return out_str(o, "None");
    case ZV_BOOL: return out_str(o, v->u.b ? "True" : "False");
    case ZV_INT: return out_cut(o, zbuf_printf(&o->b, "%lld", (long long)v->u.i));
    case ZV_FLOAT: return out_cut(o, zbuf_printf(&o->b, "%.17g", v->u.f));
    case ZV_BIGINT: return out_cut(o, zbuf_printf(&o->b, "<bigint %zu bytes>", v->u.s.len));
    case ZV_BYTES:
    case ZV_STR: return repr_bytes(o, v);
    case ZV_TUPLE: return repr_items(o, v, "(", ")", depth);
    case ZV_LIST: return repr_items(o, v, "[", "]", depth);
    case ZV_DICT: return repr_items(o, v, "{", "}", depth);
    case ZV_SET: return repr_items(o, v, "{", "}", depth);
    case ZV_FROZENSET: return repr_items(o, v, "frozenset({", "})", depth);
    case ZV_GLOBAL: {
        int rc = out_str(o, v->u.global.module);
        if (!rc)
            rc = out_str(o, ".");
        return rc ? rc : out_str(o, v->u.global.name);
    }
    case ZV_CALL: {
        int rc = repr_append(o, v->u.call.callable, depth + 1);
        return rc ? rc : repr_append(o, v->u.call.args, depth + 1);
    }
    case ZV_BUILD: {
        int rc = out_str(o, "build(");
        if (!rc)
            rc = repr_append(o, v->u.build.obj, depth + 1);
        if (!rc)
            rc = out_str(o, ", ");
        if (!rc)
            rc = repr_append(o, v->u.build.state, depth + 1);
        return rc ? rc : out_str(o, ")");
    }
    case ZV_PERSID: {
        int rc = out_str(o, "persid(");
        if (!rc)
            rc = repr_append(o, v->u.persid, depth + 1);
        return rc ? rc : out_str(o, ")");
    }
    }
    return out_str(o, "?");
}

int zv_repr_max(const zv *v, size_t max, char **out)
{
    repr_out o = {ZBUF_INIT, max};
    int rc = repr_append(&o, v, 0);
    /* Cut text ends with "..." (a UTF-8 sequence may be cut before it). */
    if (rc == FULL)
        rc = zbuf_append(&o.b, "...", 3);
    if (!rc)
        rc = zbuf_append_byte(&o.b, 0);
    if (rc) {
        zbuf_free(&o.b);
        *out = NULL;
        return ZE_NOMEM;
    }
    *out = (char *)o.b.data;
    return ZE_OK;
}

int zv_repr(const zv *v, char **out)
{
    return zv_repr_max(v, SIZE_MAX, out);
}
