/* frames.c: the calls and replies of bench/limit, made once by src/proto,
 * and the scanner that reads the head of a call without decoding it. */
#define _GNU_SOURCE /* memmem */
#include "limit.h"

#include <string.h>

#include "zbench.h"

/* Every message is a 4-tuple, so it starts with the tuple's opening (pickle
 * protocol 3's PROTO and MARK; msgpack's fixarray of 4), then the msgid. */
static const uint8_t pickle_prefix[] = {0x80, 0x03, '('};
static const uint8_t msgpack_prefix[] = {0x94};

static size_t prefix_len(proto_enc enc)
{
    return enc == PROTO_PICKLE ? sizeof pickle_prefix : sizeof msgpack_prefix;
}

/* ---- scanning ------------------------------------------------------------ */

/* The method name: len bytes after a head of hlen bytes at p. */
static int take_name(lim_call *c, const uint8_t *p, const uint8_t *end, size_t hlen, size_t len)
{
    c->name = p + hlen;
    c->name_len = len;
    return (size_t)(end - p) >= hlen + len ? 0 : ZE_PROTO;
}

/* The bytes of a pickled int at p (BININT1, BININT2, BININT), 0 if none. */
static size_t pickle_int_len(const uint8_t *p, const uint8_t *end)
{
    size_t n = p >= end ? 0 : *p == 'K' ? 2 : *p == 'M' ? 3 : *p == 'J' ? 5 : 0;
    return n && (size_t)(end - p) >= n ? n : 0;
}

static int scan_pickle(const uint8_t *p, const uint8_t *end, lim_call *c)
{
    size_t n;
    if (end - p < 3 || p[0] != 0x80 || p[2] != '(')
        return ZE_PROTO;
    p += 3;
    if (!(n = pickle_int_len(p, end)))
        return ZE_PROTO;
    c->msgid = p;
    c->msgid_len = n;
    p += n;
    if (p < end && (*p == 0x88 || *p == 0x89)) {   /* NEWTRUE, NEWFALSE */
        c->async = *p++ == 0x88;
    } else if ((n = pickle_int_len(p, end))) {      /* replies: 0, errors: 2 */
        c->async = n != 2 || p[1] != 0;
        p += n;
    } else {
        return ZE_PROTO;
    }
    if (end - p >= 5 && *p == 'X')                  /* BINUNICODE */
        return take_name(c, p, end, 5,
                         (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 |
                             (size_t)p[4] << 24);
    if (end - p >= 2 && *p == 0x8c)                 /* SHORT_BINUNICODE */
        return take_name(c, p, end, 2, p[1]);
    return ZE_PROTO;
}

/* The bytes of a msgpack int at p, 0 if none. */
static size_t msgpack_int_len(const uint8_t *p, const uint8_t *end)
{
    if (p >= end)
        return 0;
    size_t n = *p <= 0x7f || *p >= 0xe0 ? 1 : 0;
    if (*p >= 0xcc && *p <= 0xcf)
        n = 1 + ((size_t)1 << (*p - 0xcc));
    if (*p >= 0xd0 && *p <= 0xd3)
        n = 1 + ((size_t)1 << (*p - 0xd0));
    return n && (size_t)(end - p) >= n ? n : 0;
}

static int scan_msgpack(const uint8_t *p, const uint8_t *end, lim_call *c)
{
    size_t n;
    if (end - p < 1 || p[0] != 0x94)
        return ZE_PROTO;
    p++;
    if (!(n = msgpack_int_len(p, end)))
        return ZE_PROTO;
    c->msgid = p;
    c->msgid_len = n;
    p += n;
    if (p < end && (*p == 0xc2 || *p == 0xc3)) {
        c->async = *p++ == 0xc3;
    } else if ((n = msgpack_int_len(p, end))) {
        c->async = n != 1 || *p != 0;
        p += n;
    } else {
        return ZE_PROTO;
    }
    if (p < end && (*p & 0xe0) == 0xa0)             /* fixstr */
        return take_name(c, p, end, 1, *p & 0x1f);
    if (end - p >= 2 && *p == 0xd9)                 /* str 8 */
        return take_name(c, p, end, 2, p[1]);
    return ZE_PROTO;
}

int lim_scan(proto_enc enc, const uint8_t *p, size_t len, lim_call *out)
{
    memset(out, 0, sizeof *out);
    return enc == PROTO_PICKLE ? scan_pickle(p, p + len, out) : scan_msgpack(p, p + len, out);
}

int lim_call_is(const lim_call *c, const char *s)
{
    size_t n = strlen(s);
    return c->name_len == n && !memcmp(c->name, s, n);
}

/* ---- replies ------------------------------------------------------------- */

uint64_t lim_placeholder(size_t i)
{
    return 0x5a17c0de00000000ull + i;
}

static void find_slots(lim_reply *r)
{
    for (size_t i = 0; i < LIM_MAX_SLOTS; i++) {
        uint8_t mark[8];
        zbe64_put(mark, lim_placeholder(i));
        const uint8_t *at = memmem(r->tail.data, r->tail.len, mark, sizeof mark);
        if (!at)
            break;
        r->slot[r->nslots++] = (size_t)(at - r->tail.data);
    }
}

/* The reply is encoded with msgid 1, whose bytes ("K\x01", or 0x01) are cut
 * out, leaving what every reply to this call shares. */
int lim_reply_init(lim_reply *r, proto_enc enc, const zv *result, zerr *err)
{
    static const uint8_t pickle_one[] = {'K', 1}, msgpack_one[] = {1};
    const uint8_t *prefix = enc == PROTO_PICKLE ? pickle_prefix : msgpack_prefix;
    const uint8_t *one = enc == PROTO_PICKLE ? pickle_one : msgpack_one;
    size_t plen = prefix_len(enc), olen = enc == PROTO_PICKLE ? 2 : 1;
    zv id = {.type = ZV_INT, .u.i = 1};
    zbuf frame = ZBUF_INIT;
    memset(r, 0, sizeof *r);
    int rc = proto_encode_reply(enc, &frame, &id, result, err);
    if (rc == 0 && (frame.len < 4 + plen + olen || memcmp(frame.data + 4, prefix, plen) ||
                    memcmp(frame.data + 4 + plen, one, olen)))
        rc = zerr_set(err, ZE_PROTO, "src/proto encodes replies in a shape bench/limit "
                      "does not know");
    if (rc == 0)
        rc = zbuf_set(&r->tail, frame.data + 4 + plen + olen, frame.len - 4 - plen - olen);
    zbuf_free(&frame);
    if (rc == 0)
        find_slots(r);
    return rc;
}

void lim_reply_free(lim_reply *r)
{
    zbuf_free(&r->tail);
}

size_t lim_reply_size(const lim_reply *r, proto_enc enc, const lim_call *c)
{
    return 4 + prefix_len(enc) + c->msgid_len + r->tail.len;
}

size_t lim_reply_put(const lim_reply *r, proto_enc enc, const lim_call *c,
                     const uint64_t *values, uint8_t *dst)
{
    size_t plen = prefix_len(enc), n = lim_reply_size(r, enc, c);
    uint8_t *p = dst;
    zbe32_put(p, (uint32_t)(n - 4));
    memcpy(p + 4, enc == PROTO_PICKLE ? pickle_prefix : msgpack_prefix, plen);
    memcpy(p + 4 + plen, c->msgid, c->msgid_len);
    p += 4 + plen + c->msgid_len;
    memcpy(p, r->tail.data, r->tail.len);
    for (size_t i = 0; i < r->nslots; i++)
        zbe64_put(p + r->slot[i], values[i]);
    return n;
}

/* ---- the load workload's frames ---------------------------------------- */

zv *lim_load_result(zv_arena *a, size_t object_size)
{
    zbuf rec = ZBUF_INIT;
    zv *t = zv_tuple(a, 3);
    if (!t || zbench_record(&rec, object_size, 1) < 0) {
        zbuf_free(&rec);
        return NULL;
    }
    t->u.seq.items[0] = zv_bytes(a, rec.data, rec.len);
    t->u.seq.items[1] = zv_oid(a, LIM_TID);
    t->u.seq.items[2] = zv_none(a);
    zbuf_free(&rec);
    return t->u.seq.items[0] && t->u.seq.items[1] && t->u.seq.items[2] ? t : NULL;
}

int lim_load_call(proto_enc enc, int64_t msgid, uint64_t oid, zbuf *out, zerr *err)
{
    zv_arena *a = zv_arena_new();
    zv *args = a ? zv_tuple(a, 2) : NULL;
    zv id = {.type = ZV_INT, .u.i = msgid};
    int rc = ZE_NOMEM;
    if (args && (args->u.seq.items[0] = zv_oid(a, oid)) &&
        (args->u.seq.items[1] = zv_oid(a, 0x7fffffffffffffffull)))
        rc = proto_encode_call(enc, out, &id, 0, "loadBefore", args, err);
    else
        zerr_set(err, rc, "out of memory");
    zv_arena_free(a);
    return rc;
}
