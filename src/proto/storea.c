/* storea.c: the storea call read in place, without a value tree.
 *
 * A big transaction is mostly storea calls: decoding each into values (a
 * tuple, four items, a copy of the pickle) costs more than storing it. The
 * shapes ZEO's clients send are few: a PROTO 2/3 pickle of
 * MARK msgid flag 'storea' MARK oid serial data txn TUPLE TUPLE STOP with no
 * memo (ZEO pickles in fast mode), or its msgpack array. Anything else is
 * left to proto_decode, which also reports every error. */
#include "proto/proto_int.h"

#include <string.h>

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static int take(rd *r, size_t n, const uint8_t **at)
{
    if ((size_t)(r->end - r->p) < n)
        return 0;
    *at = r->p;
    r->p += n;
    return 1;
}

static int byte_is(rd *r, uint8_t b)
{
    const uint8_t *at;
    if (r->p >= r->end || *r->p != b)
        return 0;
    return take(r, 1, &at);
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* ---- pickle ------------------------------------------------------------- */

/* BININT1, BININT2, BININT, or a LONG1 of at most 8 bytes. */
static int pk_int(rd *r, int64_t *v)
{
    const uint8_t *at;
    if (!take(r, 1, &at))
        return 0;
    switch (*at) {
    case 'K':
        return take(r, 1, &at) && (*v = at[0], 1);
    case 'M':
        return take(r, 2, &at) && (*v = (int64_t)le(at, 2), 1);
    case 'J':
        return take(r, 4, &at) && (*v = (int32_t)(uint32_t)le(at, 4), 1);
    case 0x8a: {
        if (!take(r, 1, &at) || at[0] > 8)
            return 0;
        size_t n = at[0];
        if (!take(r, n, &at))
            return 0;
        uint64_t u = le(at, n);
        if (n && n < 8 && (at[n - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * n);   /* two's complement sign */
        *v = (int64_t)u;
        return 1;
    }
    default:
        return 0;
    }
}

/* SHORT_BINBYTES or BINBYTES. */
static int pk_bytes(rd *r, zslice *s)
{
    const uint8_t *at;
    size_t n;
    if (byte_is(r, 'C')) {
        if (!take(r, 1, &at))
            return 0;
        n = at[0];
    } else if (byte_is(r, 'B')) {
        if (!take(r, 4, &at))
            return 0;
        n = (size_t)le(at, 4);
    } else {
        return 0;
    }
    if (!take(r, n, &at))
        return 0;
    *s = (zslice){at, n};
    return 1;
}

static int pk_u64be(rd *r, uint64_t *v)
{
    zslice s;
    if (!pk_bytes(r, &s) || s.len != 8)
        return 0;
    *v = zbe64(s.p);
    return 1;
}

static int peek_pickle(rd *r, proto_storea_call *out)
{
    const uint8_t *at;
    if (!take(r, 2, &at) || at[0] != 0x80 || (at[1] != 2 && at[1] != 3) || !byte_is(r, '(') ||
        !pk_int(r, &out->msgid))
        return 0;
    if (byte_is(r, 0x88))
        out->async = 1;
    else if (!byte_is(r, 0x89))
        return 0;
    if (!byte_is(r, 'X') || !take(r, 4, &at) || le(at, 4) != 6 || !take(r, 6, &at) ||
        memcmp(at, "storea", 6) || !byte_is(r, '(') || !pk_u64be(r, &out->oid))
        return 0;
    out->serial = 0;
    if (!byte_is(r, 'N') && !pk_u64be(r, &out->serial))
        return 0;
    return pk_bytes(r, &out->data) && pk_int(r, &out->txn) && byte_is(r, 't') &&
           byte_is(r, 't') && byte_is(r, '.');
}

/* ---- msgpack -------------------------------------------------------------- */

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int mp_int(rd *r, int64_t *v)
{
    const uint8_t *at;
    if (!take(r, 1, &at))
        return 0;
    uint8_t c = *at;
    if (c <= 0x7f || c >= 0xe0) {
        *v = (int8_t)c;
        return 1;
    }
    static const uint8_t size[] = {1, 2, 4, 8, 1, 2, 4, 8};   /* 0xcc..0xd3 */
    if (c < 0xcc || c > 0xd3 || !take(r, size[c - 0xcc], &at))
        return 0;
    uint64_t u = be(at, size[c - 0xcc]);
    if (c >= 0xd0) {
        int bits = 8 * size[c - 0xcc];
        if (bits < 64 && (u >> (bits - 1)) & 1)
            u |= ~(uint64_t)0 << bits;
    } else if (u > INT64_MAX) {
        return 0;
    }
    *v = (int64_t)u;
    return 1;
}

static int mp_bin(rd *r, zslice *s)
{
    const uint8_t *at;
    if (!take(r, 1, &at) || *at < 0xc4 || *at > 0xc6)
        return 0;
    size_t w = (size_t)1 << (*at - 0xc4);
    if (!take(r, w, &at))
        return 0;
    size_t n = (size_t)be(at, w);
    if (!take(r, n, &at))
        return 0;
    *s = (zslice){at, n};
    return 1;
}

static int mp_u64be(rd *r, uint64_t *v)
{
    zslice s;
    if (!mp_bin(r, &s) || s.len != 8)
        return 0;
    *v = zbe64(s.p);
    return 1;
}

static int peek_msgpack(rd *r, proto_storea_call *out)
{
    const uint8_t *at;
    if (!byte_is(r, 0x94) || !mp_int(r, &out->msgid))
        return 0;
    if (byte_is(r, 0xc3))
        out->async = 1;
    else if (!byte_is(r, 0xc2))
        return 0;
    if (!byte_is(r, 0xa6) || !take(r, 6, &at) || memcmp(at, "storea", 6) || !byte_is(r, 0x94) ||
        !mp_u64be(r, &out->oid))
        return 0;
    out->serial = 0;
    if (!byte_is(r, 0xc0) && !mp_u64be(r, &out->serial))
        return 0;
    return mp_bin(r, &out->data) && mp_int(r, &out->txn);
}

int proto_decode_storea_call(proto_enc enc, const uint8_t *p, size_t len, proto_storea_call *out)
{
    rd r = {p, p + len};
    memset(out, 0, sizeof *out);
    int ok = enc == PROTO_PICKLE ? peek_pickle(&r, out)
             : enc == PROTO_MSGPACK ? peek_msgpack(&r, out) : 0;
    return ok && r.p == r.end;
}
