/* encode.c: protocol-3 pickles byte for byte as ZEO writes its messages
 * (zodbpickle's pure-Python Pickler, protocol 3, fast mode: no memo).
 * The choice of opcode for each value follows that pickler exactly, so
 * that a decoded message re-encodes to the same bytes.
 */
#include "pickle/pickle.h"
#include "pickle/pickle_int.h"

#include <string.h>

/* Pickler._BATCHSIZE: APPENDS/SETITEMS carry at most this many items. */
#define BATCH 1000

/* Where the bytes go: a buffer, or (b NULL) only their count, so that the
 * size of a pickle is known before it is built. */
typedef struct sink {
    zbuf *b;
    size_t n;
} sink;

static int put(sink *b, const void *p, size_t n)
{
    if (!b->b) {
        b->n += n;
        return 0;
    }
    return zbuf_append(b->b, p, n);
}

static int put_byte(sink *b, uint8_t c)
{
    return put(b, &c, 1);
}

static int put_op_u32(sink *b, uint8_t op, uint32_t n)
{
    uint8_t h[5] = {op, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    return put(b, h, 5);
}

/* LONG1 / LONG4 from two's complement little-endian bytes. */
static int put_long(sink *b, const uint8_t *le, size_t n, zerr *err)
{
    n = pickle__le_minimal(le, n);
    int rc;
    if (n < 256) {
        uint8_t h[2] = {0x8a, (uint8_t)n};
        rc = put(b, h, 2);
    } else if (n <= INT32_MAX) {
        rc = put_op_u32(b, 0x8b, (uint32_t)n);
    } else {
        return zerr_set(err, ZE_TOOBIG, "pickle: int of %zu bytes", n);
    }
    return rc ? rc : put(b, le, n);
}

static int put_int(sink *b, int64_t i, zerr *err)
{
    if (i >= 0 && i <= 0xff) {
        uint8_t h[2] = {'K', (uint8_t)i};
        return put(b, h, 2);
    }
    if (i >= 0 && i <= 0xffff) {
        uint8_t h[3] = {'M', (uint8_t)i, (uint8_t)(i >> 8)};
        return put(b, h, 3);
    }
    if (i >= INT32_MIN && i <= INT32_MAX)
        return put_op_u32(b, 'J', (uint32_t)i);
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)((uint64_t)i >> (8 * k));
    return put_long(b, le, 8, err);
}

static int put_float(sink *b, double f)
{
    uint64_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint8_t h[9] = {'G'};
    for (int k = 0; k < 8; k++)
        h[1 + k] = (uint8_t)(bits >> (56 - 8 * k));
    return put(b, h, 9);
}

static int put_string(sink *b, const zv *v, zerr *err)
{
    size_t n = v->u.s.len;
    int rc;
    if (n > UINT32_MAX)
        return zerr_set(err, ZE_TOOBIG, "pickle: %zu-byte string exceeds protocol 3", n);
    if (v->type == ZV_STR) {
        rc = put_op_u32(b, 'X', (uint32_t)n);
    } else if (n <= 0xff) {
        uint8_t h[2] = {'C', (uint8_t)n};
        rc = put(b, h, 2);
    } else {
        rc = put_op_u32(b, 'B', (uint32_t)n);
    }
    return rc ? rc : put(b, v->u.s.p, n);
}

static int put_value(sink *b, const zv *v, int depth, zerr *err);

static int put_items(sink *b, zv *const *items, size_t n, int depth, zerr *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = put_value(b, items[i], depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int put_tuple(sink *b, const zv *v, int depth, zerr *err)
{
    size_t n = v->u.seq.n;
    if (n == 0)
        return put_byte(b, ')');
    int rc = n > 3 ? put_byte(b, '(') : 0;
    if (!rc)
        rc = put_items(b, v->u.seq.items, n, depth, err);
    if (rc)
        return rc;
    return put_byte(b, n > 3 ? 't' : (uint8_t)(0x85 + n - 1));
}

/* EMPTY_LIST/EMPTY_DICT, then batches: one item alone is APPEND/SETITEM,
 * more are MARK ... APPENDS/SETITEMS (the C pickler would wrap a last
 * batch of one in MARK too; ZEO's pure-Python one does not). */
static int put_batched(sink *b, const zv *v, int depth, zerr *err)
{
    int dict = v->type == ZV_DICT;
    size_t per = dict ? 2 : 1;
    int rc = put_byte(b, dict ? '}' : ']');
    for (size_t i = 0; !rc && i < v->u.seq.n; i += BATCH) {
        size_t k = v->u.seq.n - i < BATCH ? v->u.seq.n - i : BATCH;
        if (k > 1)
            rc = put_byte(b, '(');
        if (!rc)
            rc = put_items(b, v->u.seq.items + i * per, k * per, depth, err);
        if (!rc)
            rc = put_byte(b, k > 1 ? (dict ? 'u' : 'e') : (dict ? 's' : 'a'));
    }
    return rc;
}

static int put_value(sink *b, const zv *v, int depth, zerr *err)
{
    if (!v)
        return zerr_set(err, ZE_INVAL, "pickle: NULL value");
    if (depth > PICKLE_MAX_DEPTH)
        return zerr_set(err, ZE_TOOBIG, "pickle: value nested deeper than %d", PICKLE_MAX_DEPTH);
    switch (v->type) {
    case ZV_NONE: return put_byte(b, 'N');
    case ZV_BOOL: return put_byte(b, v->u.b ? 0x88 : 0x89);
    case ZV_INT: return put_int(b, v->u.i, err);
    case ZV_BIGINT: return put_long(b, v->u.s.p, v->u.s.len, err);
    case ZV_FLOAT: return put_float(b, v->u.f);
    case ZV_BYTES:
    case ZV_STR: return put_string(b, v, err);
    case ZV_TUPLE: return put_tuple(b, v, depth, err);
    case ZV_LIST:
    case ZV_DICT: return put_batched(b, v, depth, err);
    default:
        return zerr_set(err, ZE_INVAL, "pickle: cannot encode value of type %d", (int)v->type);
    }
}

static int put_pickle(sink *b, const zv *v, zerr *err)
{
    static const uint8_t proto[2] = {0x80, 3};
    int rc = put(b, proto, 2);
    if (!rc)
        rc = put_value(b, v, 0, err);
    if (!rc)
        rc = put_byte(b, '.');
    if (rc == ZE_NOMEM)
        zerr_set(err, ZE_NOMEM, "pickle: out of memory");
    return rc;
}

int pickle_encode(const zv *v, zbuf *out, zerr *err)
{
    size_t start = out->len;
    sink b = {out, 0};
    int rc = put_pickle(&b, v, err);
    if (rc)
        out->len = start;
    return rc;
}

int pickle_encoded_size(const zv *v, size_t *size, zerr *err)
{
    sink b = {NULL, 0};
    int rc = put_pickle(&b, v, err);
    *size = rc ? 0 : b.n;
    return rc;
}

/* ---- with a memo, as CPython's C pickler ------------------------------- */

/* The object a value is in Python, for the memo. A node is one object
 * (a memo GET in the input gives the same node twice), but CPython (and
 * zodbpickle's unpickler) hand out one shared object for each empty or
 * one-character str below U+0100, for empty bytes and (zodbpickle) for
 * each one-byte bytes: those are keyed by value, with keys no address
 * can have. */
static uint64_t identity(const zv *v)
{
    const uint8_t *p = v->u.s.p;
    size_t n = v->u.s.len;
    if (v->type == ZV_STR) {
        if (n == 0)
            return 1;
        if (n == 1)
            return 2 + p[0];
        if (n == 2 && (p[0] == 0xc2 || p[0] == 0xc3))
            return 2 + (((uint64_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f));
    } else if (v->type == ZV_BYTES) {
        if (n == 0)
            return 258;
        if (n == 1)
            return 259 + p[0];
    }
    return (uint64_t)(uintptr_t)v;
}

static int put_memo_op(sink *b, uint8_t short_op, uint8_t long_op, uint64_t key)
{
    if (key < 256) {
        uint8_t h[2] = {short_op, (uint8_t)key};
        return put(b, h, 2);
    }
    return put_op_u32(b, long_op, (uint32_t)key);
}

static int memo_put(sink *b, pickle_memo *m, const zv *v)
{
    if (m->next > UINT32_MAX)
        return ZE_TOOBIG;
    int rc = oidmap_put(&m->ids, identity(v), m->next);
    return rc ? rc : put_memo_op(b, 'q', 'r', m->next++);
}

static int put_memo_value(sink *b, const zv *v, pickle_memo *m, int depth, zerr *err);

static int put_memo_items(sink *b, zv *const *items, size_t n, pickle_memo *m, int depth,
                          zerr *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = put_memo_value(b, items[i], m, depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* batch_list_exact: one item is APPEND; more are MARK ... APPENDS in
 * batches, a last batch of one included. */
static int put_memo_list(sink *b, const zv *v, pickle_memo *m, int depth, zerr *err)
{
    size_t n = v->u.seq.n;
    int rc = put_byte(b, ']');
    if (!rc)
        rc = memo_put(b, m, v);
    if (!rc && n == 1) {
        rc = put_memo_value(b, v->u.seq.items[0], m, depth + 1, err);
        return rc ? rc : put_byte(b, 'a');
    }
    for (size_t i = 0; !rc && i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        rc = put_byte(b, '(');
        if (!rc)
            rc = put_memo_items(b, v->u.seq.items + i, k, m, depth, err);
        if (!rc)
            rc = put_byte(b, 'e');
    }
    return rc;
}

static int put_memo_compound(sink *b, const zv *v, pickle_memo *m, int depth, zerr *err)
{
    int rc;
    switch (v->type) {
    case ZV_BYTES:
    case ZV_STR:
        rc = put_string(b, v, err);
        break;
    case ZV_TUPLE: {
        size_t n = v->u.seq.n;
        if (n == 0)
            return put_byte(b, ')'); /* the shared empty tuple: no memo */
        rc = n > 3 ? put_byte(b, '(') : 0;
        if (!rc)
            rc = put_memo_items(b, v->u.seq.items, n, m, depth, err);
        if (!rc)
            rc = put_byte(b, n > 3 ? 't' : (uint8_t)(0x85 + n - 1));
        break;
    }
    case ZV_LIST: return put_memo_list(b, v, m, depth, err);
    case ZV_GLOBAL: {
        const char *mod = v->u.global.module, *name = v->u.global.name;
        if (strchr(mod, '\n') || strchr(name, '\n'))
            return zerr_set(err, ZE_INVAL, "pickle: newline in a global's name");
        rc = put_byte(b, 'c');
        if (!rc)
            rc = put(b, mod, strlen(mod));
        if (!rc)
            rc = put_byte(b, '\n');
        if (!rc)
            rc = put(b, name, strlen(name));
        if (!rc)
            rc = put_byte(b, '\n');
        break;
    }
    default:
        return zerr_set(err, ZE_INVAL, "pickle: cannot encode value of type %d", (int)v->type);
    }
    return rc ? rc : memo_put(b, m, v);
}

static int put_memo_value(sink *b, const zv *v, pickle_memo *m, int depth, zerr *err)
{
    if (!v)
        return zerr_set(err, ZE_INVAL, "pickle: NULL value");
    if (depth > PICKLE_MAX_DEPTH)
        return zerr_set(err, ZE_TOOBIG, "pickle: value nested deeper than %d", PICKLE_MAX_DEPTH);
    switch (v->type) {
    case ZV_NONE:
    case ZV_BOOL:
    case ZV_INT:
    case ZV_BIGINT:
    case ZV_FLOAT: return put_value(b, v, depth, err); /* atoms: never memoized */
    case ZV_PERSID: {
        /* The id is saved as any value (memo included), then BINPERSID. */
        int rc = put_memo_value(b, v->u.persid, m, depth + 1, err);
        return rc ? rc : put_byte(b, 'Q');
    }
    default: break;
    }
    uint64_t *key = oidmap_ref(&m->ids, identity(v));
    if (key)
        return put_memo_op(b, 'h', 'j', *key);
    return put_memo_compound(b, v, m, depth, err);
}

int pickle_encode_memo(const zv *v, pickle_memo *m, zbuf *out, zerr *err)
{
    size_t start = out->len;
    static const uint8_t proto[2] = {0x80, 3};
    sink b = {out, 0};
    int rc = put(&b, proto, 2);
    if (!rc)
        rc = put_memo_value(&b, v, m, 0, err);
    if (!rc)
        rc = put_byte(&b, '.');
    if (rc) {
        if (rc == ZE_NOMEM)
            zerr_set(err, ZE_NOMEM, "pickle: out of memory");
        else if (rc == ZE_TOOBIG && m->next > UINT32_MAX)
            zerr_set(err, ZE_TOOBIG, "pickle: memo over 2**32 entries");
        out->len = start;
    }
    return rc;
}

void pickle_memo_free(pickle_memo *m)
{
    oidmap_free(&m->ids);
    m->next = 0;
}
