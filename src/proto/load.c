/* load.c: loadBefore, the call a server answers most, read and answered
 * without value trees.
 *
 * The reader takes only the exact bytes the reference clients write for
 * loadBefore (ZEO 5's Python client and zeolite's), and leaves anything
 * else to proto_decode. The writer produces byte for byte what
 * proto_encode_reply writes for the reply's tuple (test/proto checks it
 * against the generic encoders and the recorded frames), and hands any msgid
 * it has no short form for to proto_encode_reply itself.
 */
#include "proto/proto_int.h"

#include <string.h>

/* ---- reading the call ----------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static inline int take(cursor *c, const void *bytes, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, bytes, n))
        return 0;
    c->p += n;
    return 1;
}

static inline int take_u64(cursor *c, const void *head, size_t hlen, uint64_t *out)
{
    if (!take(c, head, hlen) || c->end - c->p < 8)
        return 0;
    *out = zbe64(c->p);
    c->p += 8;
    return 1;
}

/* The msgid (oid, tid) of ZEO 5's Python client, as two bytes values. */
static void set_pair_msgid(proto_load_call *out, const uint8_t *a, const uint8_t *b)
{
    out->msgid_parts[0] = (zv){.type = ZV_BYTES, .u.s = {a, 8}};
    out->msgid_parts[1] = (zv){.type = ZV_BYTES, .u.s = {b, 8}};
    out->msgid_items[0] = &out->msgid_parts[0];
    out->msgid_items[1] = &out->msgid_parts[1];
    out->msgid = (zv){.type = ZV_TUPLE, .u.seq = {out->msgid_items, 2}};
}

static void set_int_msgid(proto_load_call *out, int64_t i)
{
    out->msgid = (zv){.type = ZV_INT, .u.i = i};
}

static const uint8_t pickle_bytes8[] = {'C', 8};

/* BININT1, BININT2, BININT, or the pair as SHORT_BINBYTES x2 + TUPLE2. */
static int pickle_msgid(cursor *c, proto_load_call *out)
{
    const uint8_t *p = c->p;
    size_t left = (size_t)(c->end - p);
    if (left >= 2 && p[0] == 'K') {
        set_int_msgid(out, p[1]);
        c->p += 2;
    } else if (left >= 3 && p[0] == 'M') {
        set_int_msgid(out, p[1] | p[2] << 8);
        c->p += 3;
    } else if (left >= 5 && p[0] == 'J') {
        uint32_t u = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 |
                     (uint32_t)p[4] << 24;
        set_int_msgid(out, (int32_t)u);
        c->p += 5;
    } else if (left >= 21 && !memcmp(p, pickle_bytes8, 2) && !memcmp(p + 10, pickle_bytes8, 2) &&
               p[20] == 0x86) {
        set_pair_msgid(out, p + 2, p + 12);
        c->p += 21;
    } else {
        return 0;
    }
    return 1;
}

/* PROTO 3, MARK, msgid, NEWFALSE, BINUNICODE "loadBefore",
 * SHORT_BINBYTES oid, SHORT_BINBYTES tid, TUPLE2, TUPLE, STOP. */
static int pickle_call(cursor *c, proto_load_call *out)
{
    static const uint8_t head[] = {0x80, 3, '('};
    static const uint8_t name[] = {0x89, 'X', 10, 0, 0, 0, 'l', 'o', 'a', 'd',
                                   'B', 'e', 'f', 'o', 'r', 'e'};
    static const uint8_t tail[] = {0x86, 't', '.'};
    return take(c, head, sizeof head) && pickle_msgid(c, out) && take(c, name, sizeof name) &&
           take_u64(c, pickle_bytes8, 2, &out->oid) &&
           take_u64(c, pickle_bytes8, 2, &out->before) && take(c, tail, sizeof tail);
}

static const uint8_t msgpack_bin8[] = {0xc4, 8};

/* A non-negative int (fixint, uint 8/16/32), or the pair as an array of
 * two bin 8. */
static int msgpack_msgid(cursor *c, proto_load_call *out)
{
    const uint8_t *p = c->p;
    size_t left = (size_t)(c->end - p), n;
    if (left < 1)
        return 0;
    if (p[0] <= 0x7f) {
        set_int_msgid(out, p[0]);
        c->p += 1;
        return 1;
    }
    if (p[0] >= 0xcc && p[0] <= 0xce && left >= (n = (size_t)1 << (p[0] - 0xcc)) + 1) {
        uint64_t u = 0;
        for (size_t i = 1; i <= n; i++)
            u = u << 8 | p[i];
        set_int_msgid(out, (int64_t)u);
        c->p += 1 + n;
        return 1;
    }
    if (left >= 21 && p[0] == 0x92 && !memcmp(p + 1, msgpack_bin8, 2) &&
        !memcmp(p + 11, msgpack_bin8, 2)) {
        set_pair_msgid(out, p + 3, p + 13);
        c->p += 21;
        return 1;
    }
    return 0;
}

/* fixarray 4, msgid, false, fixstr "loadBefore", fixarray 2, bin 8 oid,
 * bin 8 tid. */
static int msgpack_call(cursor *c, proto_load_call *out)
{
    static const uint8_t head[] = {0x94};
    static const uint8_t name[] = {0xc2, 0xaa, 'l', 'o', 'a', 'd', 'B', 'e', 'f', 'o', 'r', 'e',
                                   0x92};
    return take(c, head, sizeof head) && msgpack_msgid(c, out) && take(c, name, sizeof name) &&
           take_u64(c, msgpack_bin8, 2, &out->oid) &&
           take_u64(c, msgpack_bin8, 2, &out->before);
}

int proto_decode_load_call(proto_enc enc, const uint8_t *p, size_t len, proto_load_call *out)
{
    cursor c = {p, p + len};
    int ok = enc == PROTO_PICKLE    ? pickle_call(&c, out)
             : enc == PROTO_MSGPACK ? msgpack_call(&c, out)
                                    : 0;
    /* -1 is the heartbeat's msgid, which proto_decode's callers ignore. */
    return ok && c.p == c.end && !(out->msgid.type == ZV_INT && out->msgid.u.i == -1);
}

/* ---- writing the reply ---------------------------------------------------- */

/* The msgid as the generic encoders write it, or 0 when this file has no
 * short form for it: pickle ints as BININT1/2/BININT, msgpack ints as
 * msgpack-c packs them (fixint, then the smallest uint; negative fixint),
 * the pair as two 8-byte bytes in a 2-tuple. */
static size_t put_msgid(proto_enc enc, const zv *id, uint8_t *o)
{
    if (id->type == ZV_TUPLE && id->u.seq.n == 2 && id->u.seq.items[0]->type == ZV_BYTES &&
        id->u.seq.items[1]->type == ZV_BYTES && id->u.seq.items[0]->u.s.len == 8 &&
        id->u.seq.items[1]->u.s.len == 8) {
        const uint8_t *a = id->u.seq.items[0]->u.s.p, *b = id->u.seq.items[1]->u.s.p;
        size_t k = enc == PROTO_PICKLE ? 0 : 1;
        if (enc == PROTO_MSGPACK)
            o[0] = 0x92;
        memcpy(o + k, enc == PROTO_PICKLE ? pickle_bytes8 : msgpack_bin8, 2);
        memcpy(o + k + 2, a, 8);
        memcpy(o + k + 10, enc == PROTO_PICKLE ? pickle_bytes8 : msgpack_bin8, 2);
        memcpy(o + k + 12, b, 8);
        if (enc == PROTO_PICKLE)
            o[20] = 0x86;
        return 21;
    }
    if (id->type != ZV_INT)
        return 0;
    int64_t i = id->u.i;
    if (enc == PROTO_PICKLE) {
        if (i >= 0 && i <= 0xff) {
            o[0] = 'K';
            o[1] = (uint8_t)i;
            return 2;
        }
        if (i >= 0 && i <= 0xffff) {
            o[0] = 'M';
            o[1] = (uint8_t)i;
            o[2] = (uint8_t)(i >> 8);
            return 3;
        }
        if (i < INT32_MIN || i > INT32_MAX)
            return 0;
        o[0] = 'J';
        for (int k = 0; k < 4; k++)
            o[1 + k] = (uint8_t)((uint32_t)i >> (8 * k));
        return 5;
    }
    if (i >= -32 && i <= 0x7f) {
        o[0] = (uint8_t)i;
        return 1;
    }
    if (i < 0 || i > 0xffffffff)
        return 0;
    size_t n = i <= 0xff ? 1 : i <= 0xffff ? 2 : 4;
    o[0] = n == 1 ? 0xcc : n == 2 ? 0xcd : 0xce;
    for (size_t k = 0; k < n; k++)
        o[1 + k] = (uint8_t)((uint64_t)i >> (8 * (n - 1 - k)));
    return 1 + n;
}

/* The reply after its msgid, pickled: flag 0, ".reply", then the tuple
 * (SHORT_BINBYTES or BINBYTES data, SHORT_BINBYTES tids or None, TUPLE3),
 * TUPLE, STOP. */
static uint8_t *pickle_rest(uint8_t *o, const uint8_t *data, size_t len, uint64_t start,
                            uint64_t end)
{
    static const uint8_t reply[] = {'K', 0, 'X', 6, 0, 0, 0, '.', 'r', 'e', 'p', 'l', 'y'};
    memcpy(o, reply, sizeof reply);
    o += sizeof reply;
    if (len <= 0xff) {
        *o++ = 'C';
        *o++ = (uint8_t)len;
    } else {
        *o++ = 'B';
        for (int k = 0; k < 4; k++)
            *o++ = (uint8_t)(len >> (8 * k));
    }
    memcpy(o, data, len);
    o += len;
    memcpy(o, pickle_bytes8, 2);
    zbe64_put(o + 2, start);
    o += 10;
    if (end) {
        memcpy(o, pickle_bytes8, 2);
        zbe64_put(o + 2, end);
        o += 10;
    } else {
        *o++ = 'N';
    }
    *o++ = 0x87;   /* TUPLE3 */
    *o++ = 't';
    *o++ = '.';
    return o;
}

/* The same in msgpack: 0, fixstr ".reply", fixarray 3 of bin 8/16/32 data
 * and bin 8 tids or nil. */
static uint8_t *msgpack_rest(uint8_t *o, const uint8_t *data, size_t len, uint64_t start,
                             uint64_t end)
{
    static const uint8_t reply[] = {0, 0xa6, '.', 'r', 'e', 'p', 'l', 'y', 0x93};
    memcpy(o, reply, sizeof reply);
    o += sizeof reply;
    if (len <= 0xff) {
        *o++ = 0xc4;
        *o++ = (uint8_t)len;
    } else if (len <= 0xffff) {
        *o++ = 0xc5;
        zbe16_put(o, (uint16_t)len);
        o += 2;
    } else {
        *o++ = 0xc6;
        zbe32_put(o, (uint32_t)len);
        o += 4;
    }
    memcpy(o, data, len);
    o += len;
    memcpy(o, msgpack_bin8, 2);
    zbe64_put(o + 2, start);
    o += 10;
    if (end) {
        memcpy(o, msgpack_bin8, 2);
        zbe64_put(o + 2, end);
        o += 10;
    } else {
        *o++ = 0xc0;
    }
    return o;
}

static int encode_generic(proto_enc enc, zbuf *out, const zv *msgid, const uint8_t *data,
                          size_t len, uint64_t start, uint64_t end, zerr *err)
{
    uint8_t s[8], e[8];
    zbe64_put(s, start);
    zbe64_put(e, end);
    zv dv = {.type = ZV_BYTES, .u.s = {data, len}};
    zv sv = {.type = ZV_BYTES, .u.s = {s, 8}};
    zv ev = end ? (zv){.type = ZV_BYTES, .u.s = {e, 8}} : (zv){.type = ZV_NONE};
    zv *items[3] = {&dv, &sv, &ev};
    zv t = {.type = ZV_TUPLE, .u.seq = {items, 3}};
    return proto_encode_reply(enc, out, msgid, &t, err);
}

/* The most a frame holds besides the data: header 4, message head 3, msgid
 * 21, flag and name 13, data head 5, tids 20, closing 3. */
#define AROUND_MAX 80

int proto_encode_load_reply(proto_enc enc, zbuf *out, const zv *msgid, const uint8_t *data,
                            size_t len, uint64_t start, uint64_t end, zerr *err)
{
    if (!msgid || (enc != PROTO_PICKLE && enc != PROTO_MSGPACK) || len > INT32_MAX)
        return encode_generic(enc, out, msgid, data, len, start, end, err);
    if (zbuf_reserve(out, AROUND_MAX + len))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uint8_t *frame = out->data + out->len, *o = frame + 4;
    if (enc == PROTO_PICKLE) {
        *o++ = 0x80;
        *o++ = 3;
        *o++ = '(';
    } else {
        *o++ = 0x94;
    }
    size_t m = put_msgid(enc, msgid, o);
    if (!m)
        return encode_generic(enc, out, msgid, data, len, start, end, err);
    o += m;
    o = enc == PROTO_PICKLE ? pickle_rest(o, data, len, start, end)
                            : msgpack_rest(o, data, len, start, end);
    zbe32_put(frame, (uint32_t)(o - frame - 4));
    out->len += (size_t)(o - frame);
    return 0;
}
