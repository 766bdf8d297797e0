/* resolve_int.h: what the files of src/resolve share. Not for use outside
 * src/resolve/.
 */
#ifndef ZEOLITE_RESOLVE_INT_H
#define ZEOLITE_RESOLVE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zvalue.h"
#include "resolve/resolve.h"

/* ---- classes.c: the classes resolved ------------------------------------ */

typedef enum rs_shape { RS_LENGTH, RS_BUCKET, RS_SET, RS_BTREE, RS_TREESET } rs_shape;

/* How a family stores a key or value: a C int, a C long long, a C float
 * (values only) or a Python object. */
typedef enum rs_slot { RS_I32, RS_I64, RS_F32, RS_OBJ } rs_slot;

typedef struct rs_class {
    const char *module;
    const char *name;
    rs_shape shape;
    rs_slot key, value; /* value is meaningful for RS_BUCKET and RS_BTREE */
} rs_class;

/* The class a record's class metadata names (a global, or (global, None)
 * or (global, ()) as ZODB writes it), or NULL. */
const rs_class *rs__class_of_meta(const zv *meta);
/* The class named module.name, or NULL. */
const rs_class *rs__class_find(const char *module, const char *name);

/* ---- the resolution of one conflict ------------------------------------ */

typedef struct rs_refs rs_refs; /* refs.c */

/* One call's working state: the arena holding every value, the canonical
 * persistent references and globals, and the outcome so far. */
typedef struct rs_ctx {
    zv_arena *arena;
    rs_refs *refs;
    const rs_class *cls;
    const zv *cls_global; /* the canonical global of cls */
    /* What comparisons may still cost: a multiple of the records' sizes,
     * so that no state makes the merge slower than linear in them. */
    uint64_t work;
    resolve_info *info;
} rs_ctx;

/* Record the outcome (printf-style message) and return status. */
resolve_status rs__fail(rs_ctx *c, resolve_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
resolve_status rs__refuse(rs_ctx *c, int btrees_reason);

/* ---- refs.c: one object per persistent reference spelling --------------- */

rs_refs *rs__refs_new(void);
void rs__refs_free(rs_refs *r);
/* The canonical node of global g: the first global of its name seen. */
resolve_status rs__global(rs_ctx *c, zv *g, zv **out);

/* What a persistent id names, as ZODB's PersistentReference reads it. */
typedef struct rs_ref {
    uint8_t oid[8];
    const zv *database; /* NULL, or the ZV_STR database name */
    int weak;
    const zv *klass;    /* the class in the id (a global or (module, name)), or NULL */
} rs_ref;

/* Read a persistent id of a form ZODB writes into *ref. 0 when it is one,
 * else -1 (the caller falls back). */
int rs__ref_parse(const zv *pid, rs_ref *ref);

/* Make every persistent id under v (in place) the canonical node of its
 * spelling, as ZODB's conflict resolution loads one object per spelling
 * for the three states, and every global in them canonical too. Checks
 * on the way that v holds only values this module compares and re-pickles
 * (None, bool, int, float, str, bytes, tuple, list, persistent references of
 * ZODB's forms): RESOLVE_UNSUPPORTED otherwise. */
resolve_status rs__canon(rs_ctx *c, zv *v);

/* ---- pyvalue.c: Python's comparisons ------------------------------------ */

/* Python's answer to a comparison, or that it would raise, or that C cannot
 * say. */
typedef enum rs_py { RS_FALSE = 0, RS_TRUE = 1, RS_RAISE = 2, RS_UNSURE = 3 } rs_py;

/* BTrees' COMPARE(a, b) on canonical values: *cmp is -1 when a < b, else 0
 * when a == b, else 1; the return value is RS_TRUE, or RS_RAISE / RS_UNSURE
 * when Python's a < b or a == b would raise / C cannot tell. *work is
 * spent (a unit a node visited, one per 8 bytes compared); when it runs
 * out the answer is RS_UNSURE and *work 0. */
rs_py rs__compare(const zv *a, const zv *b, int *cmp, uint64_t *work);

/* Exact integer arithmetic for Length: *out = x + y - z as a new ZV_INT or
 * ZV_BIGINT in c's arena. x, y, z are ZV_INT, ZV_BOOL or ZV_BIGINT. */
resolve_status rs__int_add_sub(rs_ctx *c, const zv *x, const zv *y, const zv *z, zv **out);
/* 1 when v is a Python int (ZV_INT, ZV_BOOL or ZV_BIGINT). */
int rs__is_int(const zv *v);

/* ---- bucket.c: buckets, sets and one-bucket trees ------------------------ */

/* The merged state of a bucket, set, BTree or TreeSet class (c->cls), or
 * the reason there is none. The states are canonical (rs__canon). */
resolve_status rs__merge_states(rs_ctx *c, zv *states[3], zv **out);

#endif
