/* bucket.c: buckets, sets and one-bucket trees merged as BTrees merges them.
 *
 * The three states are read as _bucket__p_resolveConflict reads them
 * (BucketTemplate.c: None is empty, else __setstate__ of (items,) or
 * (items, next), each key and value converted as the family stores it),
 * then merged by a line-for-line port of bucket_merge (MergeTemplate.c,
 * unchanged from BTrees 4.3.1 to 6.x). Trees go through BTree's
 * get_bucket_state first (BTreeTemplate.c). Every place BTrees raises
 * becomes a refusal; every place this file is less sure than BTrees
 * becomes a fallback.
 */
#include "resolve/resolve_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct side {
    zv **keys, **values; /* values NULL for sets */
    size_t len;
    zv *next; /* the next-bucket link (a ZV_PERSID), or NULL */
} side;

static int mapping(const rs_ctx *c)
{
    return c->cls->shape == RS_BUCKET || c->cls->shape == RS_BTREE;
}

/* ---- reading a state ----------------------------------------------------- */

/* A key or value as the family stores it (COPY_KEY_FROM_ARG,
 * COPY_VALUE_FROM_ARG). Integers come back as ZV_INT (bools included, as
 * PyLong_Check accepts them), floats rounded through a C float. */
static resolve_status convert(rs_ctx *c, rs_slot slot, int is_key, zv *v, zv **out)
{
    const char *what = is_key ? "key" : "value";
    *out = v;
    if (slot == RS_OBJ) { /* already canonical (rs__canon) */
        if (is_key && v->type == ZV_NONE) /* check_argument_cmp: default comparison */
            return rs__fail(c, RESOLVE_BADVALUE, "None as a key");
        return RESOLVE_OK;
    }
    if (slot == RS_F32 && v->type == ZV_FLOAT) {
        if (isnan(v->u.f) || fabs(v->u.f) > FLT_MAX)
            return rs__fail(c, RESOLVE_UNSUPPORTED, "value %g through a C float", v->u.f);
        *out = zv_float(c->arena, (double)(float)v->u.f);
        return *out ? RESOLVE_OK : rs__fail(c, RESOLVE_NOMEM, "out of memory");
    }
    if (v->type == ZV_BIGINT)
        return rs__fail(c, RESOLVE_BADVALUE, "integer %s out of range", what);
    if (v->type != ZV_INT && v->type != ZV_BOOL)
        return rs__fail(c, RESOLVE_BADVALUE, "%s of the wrong type", what);
    int64_t i = v->type == ZV_BOOL ? v->u.b != 0 : v->u.i;
    if (slot == RS_I32 && (i < INT32_MIN || i > INT32_MAX))
        return rs__fail(c, RESOLVE_BADVALUE, "integer %s out of range", what);
    if (slot == RS_F32)
        *out = zv_float(c->arena, (double)(float)i);
    else if (v->type != ZV_INT)
        *out = zv_int(c->arena, i);
    return *out ? RESOLVE_OK : rs__fail(c, RESOLVE_NOMEM, "out of memory");
}

/* A next-bucket link: a persistent reference whose identity is its
 * spelling for sure (a class in it, if any, is the bucket's own). */
static resolve_status read_next(rs_ctx *c, zv *v, zv **out)
{
    rs_ref ref;
    if (v->type != ZV_PERSID)
        return rs__fail(c, RESOLVE_MALFORMED, "next-bucket link is not a reference");
    if (rs__ref_parse(v->u.persid, &ref) || (ref.klass && ref.klass != c->cls_global))
        return rs__fail(c, RESOLVE_UNSUPPORTED, "next-bucket link of an unusual form");
    *out = v;
    return RESOLVE_OK;
}

static resolve_status read_bucket(rs_ctx *c, zv *state, side *s)
{
    memset(s, 0, sizeof *s);
    if (state->type == ZV_NONE) /* "None is equivalent to empty, for BTrees" */
        return RESOLVE_OK;
    if (state->type != ZV_TUPLE || state->u.seq.n < 1 || state->u.seq.n > 2 ||
        state->u.seq.items[0]->type != ZV_TUPLE)
        return rs__fail(c, RESOLVE_MALFORMED, "bucket state is not (items,) or (items, next)");
    zv *items = state->u.seq.items[0];
    size_t per = mapping(c) ? 2 : 1;
    if (items->u.seq.n % per)
        return rs__fail(c, RESOLVE_MALFORMED, "odd number of items in a bucket state");
    s->len = items->u.seq.n / per;
    s->keys = zv_alloc(c->arena, (s->len + 1) * sizeof(zv *));
    s->values = per == 2 ? zv_alloc(c->arena, (s->len + 1) * sizeof(zv *)) : NULL;
    if (!s->keys || (per == 2 && !s->values))
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    for (size_t i = 0; i < s->len; i++) {
        resolve_status st = convert(c, c->cls->key, 1, items->u.seq.items[i * per], &s->keys[i]);
        if (!st && per == 2)
            st = convert(c, c->cls->value, 0, items->u.seq.items[i * 2 + 1], &s->values[i]);
        if (st)
            return st;
    }
    if (state->u.seq.n == 2)
        return read_next(c, state->u.seq.items[1], &s->next);
    return RESOLVE_OK;
}

/* BTree's get_bucket_state: None, or ((bucket_state,),); a 2-tuple is a
 * tree of several buckets (reason 11). */
static resolve_status tree_bucket(rs_ctx *c, zv *state, zv **bucket)
{
    *bucket = state;
    if (state->type == ZV_NONE)
        return RESOLVE_OK;
    if (state->type != ZV_TUPLE)
        return rs__fail(c, RESOLVE_MALFORMED, "tree state is not a tuple or None");
    if (state->u.seq.n == 2)
        return rs__refuse(c, 11);
    zv *t = state->u.seq.n == 1 ? state->u.seq.items[0] : NULL;
    if (!t || t->type != ZV_TUPLE || t->u.seq.n != 1 || t->u.seq.items[0]->type != ZV_TUPLE)
        return rs__fail(c, RESOLVE_MALFORMED, "tree state is not ((bucket_state,),)");
    *bucket = t->u.seq.items[0];
    return RESOLVE_OK;
}

/* ---- comparing ----------------------------------------------------------- */

static int64_t int_of(const zv *v)
{
    return v->u.i;
}

/* TEST_KEY_SET_OR / TEST_VALUE: *cmp as BTrees computes it, or why not. */
static resolve_status compare(rs_ctx *c, rs_slot slot, const zv *a, const zv *b, int *cmp)
{
    if (slot == RS_I32 || slot == RS_I64) {
        *cmp = int_of(a) < int_of(b) ? -1 : int_of(a) > int_of(b);
        return RESOLVE_OK;
    }
    if (slot == RS_F32) {
        *cmp = a->u.f < b->u.f ? -1 : a->u.f > b->u.f;
        return RESOLVE_OK;
    }
    rs_py r = rs__compare(a, b, cmp, &c->work);
    if (r == RS_RAISE)
        return rs__fail(c, RESOLVE_UNORDERABLE, "a comparison BTrees makes would raise");
    if (r != RS_TRUE && c->work == 0)
        return rs__fail(c, RESOLVE_TOOBIG, "comparisons over their budget");
    if (r != RS_TRUE)
        return rs__fail(c, RESOLVE_UNSUPPORTED, "a comparison C cannot decide");
    return RESOLVE_OK;
}

/* Keys strictly increasing, as a bucket keeps them. BTrees does not check;
 * a state that breaks it is damaged and goes back to the client. */
static resolve_status check_order(rs_ctx *c, const side *s)
{
    for (size_t i = 1; i < s->len; i++) {
        int cmp;
        resolve_status st = compare(c, c->cls->key, s->keys[i - 1], s->keys[i], &cmp);
        if (st == RESOLVE_TOOBIG || st == RESOLVE_NOMEM)
            return st;
        if (st || cmp >= 0)
            return rs__fail(c, RESOLVE_MALFORMED, "bucket keys out of order");
    }
    return RESOLVE_OK;
}

/* ---- bucket_merge ---------------------------------------------------------- */

typedef struct iter {
    const side *s;
    size_t pos; /* current item; pos == s->len when done (BTrees' position -1) */
} iter;

typedef struct merge {
    rs_ctx *c;
    iter i1, i2, i3;
    zv **keys, **values;
    size_t len;
    /* Each key comparison is computed once per pair of positions, so that
     * a long run of inserts does not compare two big keys over and over. */
    struct cache {
        size_t a, b;
        int cmp, valid;
    } k12, k13, k23;
} merge;

static int live(const iter *it)
{
    return it->pos < it->s->len;
}

static const zv *key(const iter *it)
{
    return it->s->keys[it->pos];
}

static const zv *value(const iter *it)
{
    return it->s->values[it->pos];
}

static resolve_status key_cmp(merge *m, struct cache *k, const iter *a, const iter *b, int *cmp)
{
    if (k->valid && k->a == a->pos && k->b == b->pos) {
        *cmp = k->cmp;
        return RESOLVE_OK;
    }
    resolve_status s = compare(m->c, m->c->cls->key, key(a), key(b), cmp);
    if (s)
        return s;
    *k = (struct cache){a->pos, b->pos, *cmp, 1};
    return RESOLVE_OK;
}

/* TEST_VALUE(a, b) == 0, always true for sets. */
static resolve_status same_value(merge *m, const iter *a, const iter *b, int *same)
{
    int cmp = 0;
    resolve_status s = m->values ? compare(m->c, m->c->cls->value, value(a), value(b), &cmp) : 0;
    *same = cmp == 0;
    return s;
}

static void output(merge *m, iter *it)
{
    m->keys[m->len] = it->s->keys[it->pos];
    if (m->values)
        m->values[m->len] = it->s->values[it->pos];
    m->len++;
    it->pos++;
}

/* i1's key is still kept's (cmp 0) but not other's: other inserted a
 * smaller key before it (cmp_other > 0), or deleted it, which BTrees allows
 * when kept left its value alone (else reason) and it is not the first key
 * (else 13). */
static resolve_status one_side_kept(merge *m, iter *i1, iter *kept, iter *other, int cmp_other,
                                    int reason)
{
    int same;
    if (cmp_other > 0) {
        output(m, other);
        return RESOLVE_OK;
    }
    resolve_status s = same_value(m, i1, kept, &same);
    if (s)
        return s;
    if (!same)
        return rs__refuse(m->c, reason);
    if (other->pos == 0)
        return rs__refuse(m->c, 13);
    i1->pos++;
    kept->pos++;
    return RESOLVE_OK;
}

/* One step of the first loop, where all three are live. */
static resolve_status step3(merge *m, iter *i1, iter *i2, iter *i3)
{
    int cmp12, cmp13, cmp23;
    resolve_status s = key_cmp(m, &m->k12, i1, i2, &cmp12);
    if (!s)
        s = key_cmp(m, &m->k13, i1, i3, &cmp13);
    if (s)
        return s;
    if (cmp12 == 0 && cmp13 == 0) {
        int same12, same13 = 0;
        if ((s = same_value(m, i1, i2, &same12)))
            return s;
        if (!same12 && (s = same_value(m, i1, i3, &same13)))
            return s;
        if (!same12 && !same13) /* conflicting value changes in i2 and i3 */
            return rs__refuse(m->c, 1);
        /* all the same or a change in i3: take i3; a change in i2: take i2 */
        iter *from = same12 ? i3 : i2, *other = same12 ? i2 : i3;
        output(m, from);
        other->pos++;
        i1->pos++;
        return RESOLVE_OK;
    }
    if (cmp12 == 0)
        return one_side_kept(m, i1, i2, i3, cmp13, 2);
    if (cmp13 == 0)
        return one_side_kept(m, i1, i3, i2, cmp12, 3);
    if ((s = key_cmp(m, &m->k23, i2, i3, &cmp23)))
        return s;
    if (cmp23 == 0) /* dueling inserts or deletes */
        return rs__refuse(m->c, 4);
    if (cmp12 > 0) { /* insert i2 or i3, the smaller first */
        output(m, cmp23 > 0 ? i3 : i2);
        return RESOLVE_OK;
    }
    if (cmp13 > 0) {
        output(m, i3);
        return RESOLVE_OK;
    }
    return rs__refuse(m->c, 5); /* both deleted i1's key */
}

/* The loops after the first: the rest of i1 deleted by one side while the
 * other (a) inserts or leaves keys alone; reason is 7 or 8. */
static resolve_status tail(merge *m, iter *i1, iter *a, struct cache *k, int reason)
{
    while (live(i1) && live(a)) {
        int cmp, same = 0;
        resolve_status s = key_cmp(m, k, i1, a, &cmp);
        if (!s && cmp == 0)
            s = same_value(m, i1, a, &same);
        if (s)
            return s;
        if (cmp > 0) {
            output(m, a);
        } else if (cmp == 0 && same) {
            i1->pos++;
            a->pos++;
        } else {
            return rs__refuse(m->c, reason);
        }
    }
    return RESOLVE_OK;
}

static resolve_status bucket_merge(merge *m)
{
    iter *i1 = &m->i1, *i2 = &m->i2, *i3 = &m->i3;
    resolve_status s;
    if (i2->s->len == 0 || i3->s->len == 0) /* an "after" bucket is empty */
        return rs__refuse(m->c, 12);
    while (live(i1) && live(i2) && live(i3))
        if ((s = step3(m, i1, i2, i3)))
            return s;
    while (live(i2) && live(i3)) { /* new inserts */
        int cmp23;
        if ((s = key_cmp(m, &m->k23, i2, i3, &cmp23)))
            return s;
        if (cmp23 == 0)
            return rs__refuse(m->c, 6);
        output(m, cmp23 > 0 ? i3 : i2);
    }
    if ((s = tail(m, i1, i2, &m->k12, 7)) || (s = tail(m, i1, i3, &m->k13, 8)))
        return s;
    if (live(i1)) /* dueling deletes */
        return rs__refuse(m->c, 9);
    while (live(i2))
        output(m, i2);
    while (live(i3))
        output(m, i3);
    if (m->len == 0) /* an empty result cannot be unlinked from its tree */
        return rs__refuse(m->c, 10);
    return RESOLVE_OK;
}

/* ---- the whole ----------------------------------------------------------- */

static zv *tuple1(zv_arena *a, zv *x)
{
    zv *t = zv_tuple(a, 1);
    if (t)
        t->u.seq.items[0] = x;
    return t;
}

/* bucket_getstate of the result: (items,) or (items, next); a tree wraps
 * it as ((state,),). */
static resolve_status result_state(rs_ctx *c, const merge *m, zv *next, zv **out)
{
    size_t per = m->values ? 2 : 1;
    zv *items = zv_tuple(c->arena, m->len * per), *st;
    if (!items)
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    for (size_t i = 0; i < m->len; i++) {
        items->u.seq.items[i * per] = m->keys[i];
        if (per == 2)
            items->u.seq.items[i * 2 + 1] = m->values[i];
    }
    st = next ? zv_tuple2(c->arena, items, next) : tuple1(c->arena, items);
    if (st && (c->cls->shape == RS_BTREE || c->cls->shape == RS_TREESET))
        st = tuple1(c->arena, tuple1(c->arena, st));
    *out = st;
    return st ? RESOLVE_OK : rs__fail(c, RESOLVE_NOMEM, "out of memory");
}

resolve_status rs__merge_states(rs_ctx *c, zv *states[3], zv **out)
{
    zv *bucket[3];
    side sides[3];
    resolve_status s;
    int tree = c->cls->shape == RS_BTREE || c->cls->shape == RS_TREESET;
    /* In BTrees' order: old, committed, new; each step for all three. */
    for (int i = 0; i < 3; i++)
        if ((s = tree ? tree_bucket(c, states[i], &bucket[i]) : (bucket[i] = states[i], 0)))
            return s;
    for (int i = 0; i < 3; i++)
        if ((s = read_bucket(c, bucket[i], &sides[i])))
            return s;
    /* Links compare by identity: canonical ids are one node per spelling. */
    for (int i = 1; i < 3; i++) {
        const zv *a = sides[0].next, *b = sides[i].next;
        if (!a != !b || (a && a->u.persid != b->u.persid))
            return rs__refuse(c, 0);
    }
    for (int i = 0; i < 3; i++)
        if ((s = check_order(c, &sides[i])))
            return s;
    merge m = {.c = c, .i1 = {&sides[0], 0}, .i2 = {&sides[1], 0}, .i3 = {&sides[2], 0}};
    size_t cap = sides[1].len + sides[2].len;
    m.keys = zv_alloc(c->arena, (cap + 1) * sizeof(zv *));
    m.values = mapping(c) ? zv_alloc(c->arena, (cap + 1) * sizeof(zv *)) : NULL;
    if (!m.keys || (mapping(c) && !m.values))
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    if ((s = bucket_merge(&m)))
        return s;
    return result_state(c, &m, sides[0].next, out);
}
