/* zvalue.h: the Python-like value tree that both wire encodings (pickle Z5,
 * msgpack M5) decode into and encode from, and that the pickle reader builds
 * for object records.
 *
 * Ownership: every zv, and every byte it points to, lives in one zv_arena and
 * is freed with it at once (zv_arena_free / zv_arena_reset). Constructors copy
 * the bytes they are given. A decoded message is one arena; nothing in it
 * needs freeing one by one.
 *
 * Object-record pickles also contain the non-data forms ZV_GLOBAL, ZV_CALL,
 * ZV_BUILD and ZV_PERSID. They are plain nodes: nothing is ever resolved or
 * called. The wire codec rejects them in messages.
 */
#ifndef ZEOLITE_ZVALUE_H
#define ZEOLITE_ZVALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum zv_type {
    ZV_NONE,
    ZV_BOOL,
    ZV_INT,       /* fits int64 */
    ZV_BIGINT,    /* any other int: u.s holds little-endian two's complement (pickle LONG form) */
    ZV_FLOAT,
    ZV_BYTES,
    ZV_STR,       /* UTF-8 */
    ZV_TUPLE,
    ZV_LIST,
    ZV_DICT,      /* u.seq.items[2*i] key, [2*i+1] value; u.seq.n = number of pairs */
    ZV_SET,
    ZV_FROZENSET,
    ZV_GLOBAL,    /* u.global: module and name (record pickles only) */
    ZV_CALL,      /* REDUCE / NEWOBJ: u.call (record pickles only) */
    ZV_BUILD,     /* BUILD: u.build (record pickles only) */
    ZV_PERSID,    /* persistent id: u.persid is the pid value (record pickles only) */
} zv_type;

typedef struct zv zv;
struct zv {
    zv_type type;
    union {
        int b;
        int64_t i;
        double f;
        struct { const uint8_t *p; size_t len; } s;   /* BYTES, STR, BIGINT */
        struct { zv **items; size_t n; } seq;         /* TUPLE, LIST, SET, FROZENSET, DICT */
        struct { const char *module, *name; } global;
        struct { zv *callable; zv *args; int newobj; } call;
        struct { zv *obj; zv *state; } build;
        zv *persid;
    } u;
};

typedef struct zv_arena zv_arena;

zv_arena *zv_arena_new(void);
void zv_arena_free(zv_arena *a);
/* Drop every value; keep one small chunk (at most ZV_ARENA_KEEP bytes) for
 * reuse, so that an arena that once held a large message does not keep it. */
void zv_arena_reset(zv_arena *a);
#define ZV_ARENA_KEEP (64u * 1024)
/* Raw arena allocation (8-byte aligned); NULL when out of memory or past
 * the arena's limit. */
void *zv_alloc(zv_arena *a, size_t n);

/* Memory accounting. zv_arena_bytes is what the arena holds from malloc:
 * its chunks, headers and unused tails included. With a limit (0: none),
 * an allocation that would take the arena past it fails as out of memory
 * would, and zv_arena_at_limit then says the limit was the cause (until the
 * limit is set again). zv_arena_set_limit returns the previous limit. */
size_t zv_arena_bytes(const zv_arena *a);
size_t zv_arena_set_limit(zv_arena *a, size_t limit);
int zv_arena_at_limit(const zv_arena *a);

/* Constructors return NULL only when out of memory. */
zv *zv_none(zv_arena *a);
zv *zv_bool(zv_arena *a, int b);
zv *zv_int(zv_arena *a, int64_t i);
zv *zv_float(zv_arena *a, double f);
zv *zv_bytes(zv_arena *a, const void *p, size_t len);
zv *zv_str(zv_arena *a, const char *p, size_t len);
zv *zv_cstr(zv_arena *a, const char *s);
zv *zv_bigint(zv_arena *a, const uint8_t *le, size_t len);
/* Containers with n slots (n pairs for dict); fill items[] before use. */
zv *zv_tuple(zv_arena *a, size_t n);
zv *zv_list(zv_arena *a, size_t n);
zv *zv_dict(zv_arena *a, size_t npairs);
/* Convenience: tuple of the given values (NULLs are not allowed). */
zv *zv_tuple2(zv_arena *a, zv *x, zv *y);
zv *zv_oid(zv_arena *a, uint64_t oid);   /* 8-byte big-endian bytes */

/* Write code point cp (at most 0x10ffff) as UTF-8 into o, which has room for
 * 4 bytes; returns the number of bytes written. Surrogates are written as they
 * are (Python's raw-unicode-escape and lone JSON \u escapes can carry them). */
size_t zv_utf8_put(uint8_t *o, uint32_t cp);

/* Readers: 1 when v has that shape (and store the value), else 0. */
int zv_get_int(const zv *v, int64_t *out);        /* ZV_INT or ZV_BOOL */
int zv_get_u64be(const zv *v, uint64_t *out);     /* ZV_BYTES of exactly 8 */
int zv_is_seq(const zv *v);                       /* TUPLE or LIST */
int zv_truthy(const zv *v);
/* Value of a str key in a dict, or NULL. */
const zv *zv_dict_get(const zv *dict, const char *key);

/* Deep equality (same type and value; TUPLE and LIST compare unequal). */
int zv_equal(const zv *x, const zv *y);
/* Deep copy into another arena. A value reached twice (a decoded pickle's
 * memo can share one) is copied twice. */
zv *zv_copy(zv_arena *a, const zv *v);
/* The bytes zv_copy allocates for v (chunk overheads aside): every node,
 * string and item array, a shared value counted each time it is reached.
 * The walk stops as soon as the count passes max, and returns a number
 * above max then, so measuring a huge value costs no more than max. */
size_t zv_copy_cost(const zv *v, size_t max);
/* The part of zv_copy_cost that is v's own: the node, its bytes or its item
 * array, without the items. */
size_t zv_node_cost(const zv *v);
/* Python-style repr, for logs and messages: *out gets a malloc'd,
 * NUL-terminated string (the caller frees it). zv_repr_max stops after max
 * bytes and ends the text with "..." (so at most max + 3 bytes), however
 * large or shared v is; zv_repr has no limit (tests). Returns 0 or ZE_NOMEM. */
int zv_repr(const zv *v, char **out);
int zv_repr_max(const zv *v, size_t max, char **out);

#endif
