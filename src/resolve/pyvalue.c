/* pyvalue.c: Python 3's comparisons and int arithmetic on decoded values.
 *
 * BTrees orders object keys and compares object values with COMPARE(a, b):
 * a < b, then a == b, through PyObject_RichCompareBool. This reproduces
 * what Python answers for the values rs__canon lets through, including
 * when it raises: None is unorderable (BTrees 4.3.1 has no special case for
 * it), different types do not order, a persistent reference equals only a
 * reference to the same object and raises against anything else. Ints
 * compare exactly with each other and with floats, as Python's do. NaN is
 * left to Python (RS_UNSURE).
 */
#include "resolve/resolve_int.h"

#include <math.h>
#include <string.h>

int rs__is_int(const zv *v)
{
    return v->type == ZV_INT || v->type == ZV_BOOL || v->type == ZV_BIGINT;
}

static int is_number(const zv *v)
{
    return rs__is_int(v) || v->type == ZV_FLOAT;
}

/* ---- integers as little-endian two's complement ------------------------- */

typedef struct bigint {
    const uint8_t *p;
    size_t n;
    uint8_t small[8];
} bigint;

static void to_bigint(const zv *v, bigint *b)
{
    if (v->type == ZV_BIGINT) {
        b->p = v->u.s.p;
        b->n = v->u.s.len;
        return;
    }
    uint64_t x = v->type == ZV_BOOL ? (uint64_t)(v->u.b != 0) : (uint64_t)v->u.i;
    for (int i = 0; i < 8; i++)
        b->small[i] = (uint8_t)(x >> (8 * i));
    b->p = b->small;
    b->n = 8;
}

/* Byte i of b sign-extended to any length. */
static uint8_t byte_at(const bigint *b, size_t i)
{
    if (i < b->n)
        return b->p[i];
    return b->n && (b->p[b->n - 1] & 0x80) ? 0xff : 0x00;
}

static int big_negative(const bigint *b)
{
    return b->n && (b->p[b->n - 1] & 0x80);
}

static int big_cmp(const bigint *a, const bigint *b)
{
    int na = big_negative(a), nb = big_negative(b);
    if (na != nb)
        return na ? -1 : 1;
    /* Same sign: two's complement of one length orders as unsigned. */
    for (size_t i = (a->n > b->n ? a->n : b->n); i-- > 0;) {
        uint8_t x = byte_at(a, i), y = byte_at(b, i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/* An integral double (|d| >= 2**63, finite) as exact two's complement. */
static void double_to_bigint(double d, uint8_t buf[136], bigint *b)
{
    int e;
    double m = frexp(fabs(d), &e); /* |d| = m * 2**e, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int shift = e - 53; /* >= 10, since |d| >= 2**63 */
    memset(buf, 0, 136);
    for (int bit = 0; bit < 53; bit++)
        if (mant >> bit & 1)
            buf[(bit + shift) / 8] |= (uint8_t)(1u << ((bit + shift) % 8));
    if (d < 0) { /* negate: invert and add one */
        int carry = 1;
        for (int i = 0; i < 136; i++) {
            int x = (uint8_t)~buf[i] + carry;
            buf[i] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    b->p = buf;
    b->n = 136;
}

/* int a against float d, exactly; d not NaN. */
static int int_float_cmp(const zv *a, double d)
{
    if (isinf(d))
        return d > 0 ? -1 : 1;
    if (a->type != ZV_BIGINT) {
        int64_t i = a->type == ZV_BOOL ? a->u.b != 0 : a->u.i;
        if (d >= 9223372036854775808.0)
            return -1;
        if (d < -9223372036854775808.0)
            return 1;
        int64_t t = (int64_t)d; /* exact: |d| < 2**63 */
        if (i != t)
            return i < t ? -1 : 1;
        double frac = d - (double)t;
        return frac > 0 ? -1 : frac < 0 ? 1 : 0;
    }
    bigint x, y;
    uint8_t buf[136];
    to_bigint(a, &x);
    if (fabs(d) < 9223372036854775808.0) /* a is beyond int64: its sign decides */
        return big_negative(&x) ? -1 : 1;
    double_to_bigint(d, buf, &y);
    return big_cmp(&x, &y);
}

/* -1, 0, 1, or 2 when a NaN is involved. */
static int num_cmp(const zv *a, const zv *b)
{
    if (a->type == ZV_FLOAT && b->type == ZV_FLOAT) {
        double x = a->u.f, y = b->u.f;
        if (isnan(x) || isnan(y))
            return 2;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->type == ZV_FLOAT || b->type == ZV_FLOAT) {
        const zv *i = a->type == ZV_FLOAT ? b : a;
        double d = a->type == ZV_FLOAT ? a->u.f : b->u.f;
        if (isnan(d))
            return 2;
        int r = int_float_cmp(i, d);
        return a->type == ZV_FLOAT ? -r : r;
    }
    if (a->type != ZV_BIGINT && b->type != ZV_BIGINT) {
        int64_t x = a->type == ZV_BOOL ? a->u.b != 0 : a->u.i;
        int64_t y = b->type == ZV_BOOL ? b->u.b != 0 : b->u.i;
        return x < y ? -1 : x > y;
    }
    bigint x, y;
    to_bigint(a, &x);
    to_bigint(b, &y);
    return big_cmp(&x, &y);
}

/* ---- rich comparisons --------------------------------------------------- */

static int same_kind(const zv *a, const zv *b)
{
    return a->type == b->type || (is_number(a) && is_number(b));
}

/* PersistentReference.__cmp__: 0 when both are one object (one spelling,
 * so one canonical id node) or strong references to one oid in one
 * database; otherwise it raises. */
static rs_py ref_same(const zv *a, const zv *b, uint64_t *work)
{
    if (a->u.persid == b->u.persid)
        return RS_TRUE;
    *work -= *work < 16 ? *work : 16; /* two short parses */
    rs_ref x, y;
    if (rs__ref_parse(a->u.persid, &x) || rs__ref_parse(b->u.persid, &y))
        return RS_UNSURE;
    if (x.weak || y.weak || memcmp(x.oid, y.oid, 8))
        return RS_RAISE;
    if (!x.database != !y.database)
        return RS_RAISE;
    if (x.database && !zv_equal(x.database, y.database))
        return RS_RAISE;
    return RS_TRUE;
}

static rs_py eq(const zv *a, const zv *b, uint64_t *work);

static int bytes_cmp(const zv *a, const zv *b, uint64_t *work)
{
    size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
    *work -= *work < n / 8 ? *work : n / 8;
    int r = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
    if (r)
        return r < 0 ? -1 : 1;
    return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
}

/* Python's a < b. *work is what may still be spent: one unit a node, one
 * per 8 bytes compared; at 0 the answer is RS_UNSURE. */
static rs_py lt(const zv *a, const zv *b, uint64_t *work)
{
    if (*work == 0)
        return RS_UNSURE;
    --*work;
    if (a->type == ZV_PERSID || b->type == ZV_PERSID) {
        if (a->type != b->type)
            return RS_RAISE;
        rs_py r = ref_same(a, b, work);
        return r == RS_TRUE ? RS_FALSE : r;
    }
    if (!same_kind(a, b) || a->type == ZV_NONE)
        return RS_RAISE;
    switch (a->type) {
    case ZV_STR: /* UTF-8 orders as code points */
    case ZV_BYTES: return bytes_cmp(a, b, work) < 0 ? RS_TRUE : RS_FALSE;
    case ZV_TUPLE:
    case ZV_LIST: {
        /* The first items that differ (by ==) decide; else the lengths. */
        size_t n = a->u.seq.n < b->u.seq.n ? a->u.seq.n : b->u.seq.n, i;
        for (i = 0; i < n; i++) {
            rs_py r = eq(a->u.seq.items[i], b->u.seq.items[i], work);
            if (r == RS_FALSE)
                break;
            if (r != RS_TRUE)
                return r;
        }
        if (i == n)
            return a->u.seq.n < b->u.seq.n ? RS_TRUE : RS_FALSE;
        return lt(a->u.seq.items[i], b->u.seq.items[i], work);
    }
    default: break;
    }
    if (!is_number(a))
        return RS_UNSURE;
    int r = num_cmp(a, b);
    return r == 2 ? RS_UNSURE : r < 0 ? RS_TRUE : RS_FALSE;
}

/* PyObject_RichCompareBool(a, b, Py_EQ): one object is equal to itself
 * without being asked. */
static rs_py eq(const zv *a, const zv *b, uint64_t *work)
{
    if (a == b)
        return RS_TRUE;
    if (*work == 0)
        return RS_UNSURE;
    --*work;
    if (a->type == ZV_PERSID || b->type == ZV_PERSID) {
        if (a->type != b->type)
            return RS_RAISE; /* the reference's __eq__ raises */
        return ref_same(a, b, work);
    }
    if (!same_kind(a, b))
        return RS_FALSE;
    switch (a->type) {
    case ZV_NONE: return RS_TRUE;
    case ZV_STR:
    case ZV_BYTES: return bytes_cmp(a, b, work) == 0 ? RS_TRUE : RS_FALSE;
    case ZV_TUPLE:
    case ZV_LIST: {
        /* Lists of different lengths differ at once; tuples compare their
         * common items first (which may raise). */
        if (a->type == ZV_LIST && a->u.seq.n != b->u.seq.n)
            return RS_FALSE;
        size_t n = a->u.seq.n < b->u.seq.n ? a->u.seq.n : b->u.seq.n;
        for (size_t i = 0; i < n; i++) {
            rs_py r = eq(a->u.seq.items[i], b->u.seq.items[i], work);
            if (r != RS_TRUE)
                return r;
        }
        return a->u.seq.n == b->u.seq.n ? RS_TRUE : RS_FALSE;
    }
    default: break;
    }
    if (!is_number(a))
        return RS_UNSURE;
    int r = num_cmp(a, b);
    return r == 2 ? RS_UNSURE : r == 0 ? RS_TRUE : RS_FALSE;
}

rs_py rs__compare(const zv *a, const zv *b, int *cmp, uint64_t *work)
{
    rs_py r = lt(a, b, work);
    if (r == RS_TRUE) {
        *cmp = -1;
        return RS_TRUE;
    }
    if (r != RS_FALSE)
        return r;
    r = eq(a, b, work);
    if (r == RS_RAISE || r == RS_UNSURE)
        return r;
    *cmp = r == RS_TRUE ? 0 : 1;
    return RS_TRUE;
}

/* ---- Length's arithmetic ------------------------------------------------ */

resolve_status rs__int_add_sub(rs_ctx *c, const zv *x, const zv *y, const zv *z, zv **out)
{
    bigint a, b, d;
    to_bigint(x, &a);
    to_bigint(y, &b);
    to_bigint(z, &d);
    size_t n = a.n > b.n ? a.n : b.n;
    n = (n > d.n ? n : d.n) + 2; /* room for two carries out */
    uint8_t *r = zv_alloc(c->arena, n);
    if (!r)
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    /* x + y + ~z + 1 = x + y - z, byte by byte with a carry of up to 2. */
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned s = byte_at(&a, i) + byte_at(&b, i) + (uint8_t)~byte_at(&d, i) + carry;
        r[i] = (uint8_t)s;
        carry = s >> 8;
    }
    /* Drop the top bytes that only repeat the sign. */
    while (n > 1 && ((r[n - 1] == 0x00 && !(r[n - 2] & 0x80)) ||
                     (r[n - 1] == 0xff && (r[n - 2] & 0x80))))
        n--;
    if (n <= 8) {
        uint64_t v = 0;
        for (size_t i = 0; i < 8; i++)
            v |= (uint64_t)(i < n ? r[i] : (r[n - 1] & 0x80 ? 0xff : 0)) << (8 * i);
        *out = zv_int(c->arena, (int64_t)v);
    } else {
        *out = zv_bigint(c->arena, r, n);
    }
    return *out ? RESOLVE_OK : rs__fail(c, RESOLVE_NOMEM, "out of memory");
}
