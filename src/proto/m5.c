/* m5.c: the msgpack (M5) value codec.
 *
 * Encoding goes through msgpack-c's packer. Decoding is done by hand, because
 * msgpack-c's unpacker allocates an array's or map's storage from the count in
 * its header before it has seen a single element: a 5-byte frame `dd ff ff ff
 * ff` asks it for 128 GiB (observed with msgpack-c 4.0). Here every count is
 * checked against the bytes left first, and values go straight into the
 * caller's arena instead of a second tree in a msgpack zone.
 */
#include "proto/proto_int.h"

#include <msgpack.h>
#include <string.h>

typedef struct reader {
    const uint8_t *start, *p, *end;
    zv_arena *a;
    uint64_t max_bytes;  /* the arena memory this decoding may take */
    size_t arena_start;
    zerr *err;
} reader;

static int read_value(reader *r, unsigned depth, zv **out);

static size_t left(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static int truncated(reader *r)
{
    return zerr_set(r->err, ZE_CORRUPT, "msgpack: truncated at offset %zu",
                    (size_t)(r->p - r->start));
}

static int nomem(reader *r)
{
    if (zv_arena_at_limit(r->a))
        return zerr_set(r->err, ZE_TOOBIG, "msgpack: decoding takes more than %llu bytes",
                        (unsigned long long)r->max_bytes);
    return zerr_set(r->err, ZE_NOMEM, "msgpack: out of memory");
}

/* Every decoded item costs at least a node and the slot that holds it: a
 * count that cannot fit what is left of the bound is refused before its
 * array is allocated (a frame of nils would otherwise take 40 bytes a byte
 * up to the bound). */
static int room_for(reader *r, uint64_t items)
{
    uint64_t used = zv_arena_bytes(r->a) - r->arena_start;
    uint64_t left = r->max_bytes > used ? r->max_bytes - used : 0;
    if (items <= left / (sizeof(zv) + sizeof(zv *)))
        return 0;
    return zerr_set(r->err, ZE_TOOBIG,
                    "msgpack: %llu items at offset %zu take more than %llu bytes",
                    (unsigned long long)items, (size_t)(r->p - r->start),
                    (unsigned long long)r->max_bytes);
}

/* Big-endian unsigned of n (1, 2, 4 or 8) bytes. */
static int read_be(reader *r, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    *out = 0;
    if (left(r) < n)
        return truncated(r);
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[i];
    r->p += n;
    *out = v;
    return 0;
}

static int make_int(reader *r, int64_t i, zv **out)
{
    *out = zv_int(r->a, i);
    return *out ? 0 : nomem(r);
}

/* A uint64 above INT64_MAX: the pickle LONG form (little-endian two's
 * complement), which needs a ninth, zero, byte to stay positive. */
static int make_big_uint(reader *r, uint64_t u, zv **out)
{
    uint8_t le[9];

    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(u >> (8 * i));
    le[8] = 0;
    *out = zv_bigint(r->a, le, sizeof le);
    return *out ? 0 : nomem(r);
}

static int read_uint(reader *r, size_t n, zv **out)
{
    uint64_t u;
    int rc = read_be(r, n, &u);

    if (rc)
        return rc;
    return u > INT64_MAX ? make_big_uint(r, u, out) : make_int(r, (int64_t)u, out);
}

static int read_sint(reader *r, size_t n, zv **out)
{
    uint64_t u;
    int rc = read_be(r, n, &u);

    if (rc)
        return rc;
    int64_t i;
    switch (n) {
    case 1: i = (int8_t)u; break;
    case 2: i = (int16_t)u; break;
    case 4: i = (int32_t)u; break;
    default: i = (int64_t)u; break;
    }
    return make_int(r, i, out);
}

static int read_float(reader *r, size_t n, zv **out)
{
    uint64_t u;
    double d;
    int rc = read_be(r, n, &u);

    if (rc)
        return rc;
    if (n == 4) {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, sizeof f);
        d = f;
    } else {
        memcpy(&d, &u, sizeof d);
    }
    *out = zv_float(r->a, d);
    return *out ? 0 : nomem(r);
}

/* Strict UTF-8 as Python's decoder checks it: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int read_raw(reader *r, zv_type t, uint64_t n, zv **out)
{
    if (left(r) < n)
        return truncated(r);
    if (t == ZV_STR && !valid_utf8(r->p, (size_t)n))
        return zerr_set(r->err, ZE_CORRUPT, "msgpack: invalid UTF-8 in str at offset %zu",
                        (size_t)(r->p - r->start));
    *out = t == ZV_STR ? zv_str(r->a, (const char *)r->p, (size_t)n)
                       : zv_bytes(r->a, r->p, (size_t)n);
    r->p += n;
    return *out ? 0 : nomem(r);
}

static int read_raw_len(reader *r, zv_type t, size_t lenbytes, zv **out)
{
    uint64_t n;
    int rc = read_be(r, lenbytes, &n);

    return rc ? rc : read_raw(r, t, n, out);
}

/* Every element takes at least one byte, so a count larger than what is left
 * is refused before anything is allocated. */
static int read_array(reader *r, uint64_t n, unsigned depth, zv **out)
{
    if (n > left(r))
        return truncated(r);
    int rc = room_for(r, n);
    if (rc)
        return rc;
    zv *t = zv_tuple(r->a, (size_t)n);
    if (!t)
        return nomem(r);
    for (size_t i = 0; i < n; i++) {
        rc = read_value(r, depth + 1, &t->u.seq.items[i]);
        if (rc)
            return rc;
    }
    *out = t;
    return 0;
}

/* Python's unpacker (strict_map_key) accepts only str and bytes keys. */
static int read_map(reader *r, uint64_t n, unsigned depth, zv **out)
{
    if (n > left(r) / 2)
        return truncated(r);
    int rc = room_for(r, 2 * n);
    if (rc)
        return rc;
    zv *d = zv_dict(r->a, (size_t)n);
    if (!d)
        return nomem(r);
    for (size_t i = 0; i < 2 * n; i++) {
        size_t at = (size_t)(r->p - r->start);
        rc = read_value(r, depth + 1, &d->u.seq.items[i]);
        if (rc)
            return rc;
        zv_type kt = d->u.seq.items[i]->type;
        if (i % 2 == 0 && kt != ZV_STR && kt != ZV_BYTES)
            return zerr_set(r->err, ZE_CORRUPT, "msgpack: map key of type %s at offset %zu",
                            proto__type_name(d->u.seq.items[i]), at);
    }
    *out = d;
    return 0;
}

static int read_count(reader *r, size_t lenbytes, int map, unsigned depth, zv **out)
{
    uint64_t n;
    int rc = read_be(r, lenbytes, &n);

    if (rc)
        return rc;
    return map ? read_map(r, n, depth, out) : read_array(r, n, depth, out);
}

static int read_value(reader *r, unsigned depth, zv **out)
{
    if (depth > PROTO_MAX_DEPTH)
        return zerr_set(r->err, ZE_CORRUPT, "msgpack: nested deeper than %d",
                        PROTO_MAX_DEPTH);
    if (left(r) < 1)
        return truncated(r);
    uint8_t c = *r->p++;
    if (c <= 0x7f)
        return make_int(r, c, out);
    if (c >= 0xe0)
        return make_int(r, (int64_t)c - 256, out);
    if (c <= 0x8f)
        return read_map(r, c & 0x0f, depth, out);
    if (c <= 0x9f)
        return read_array(r, c & 0x0f, depth, out);
    if (c <= 0xbf)
        return read_raw(r, ZV_STR, c & 0x1f, out);
    switch (c) {
    case 0xc0: *out = zv_none(r->a); return *out ? 0 : nomem(r);
    case 0xc2:
    case 0xc3: *out = zv_bool(r->a, c == 0xc3); return *out ? 0 : nomem(r);
    case 0xc4: return read_raw_len(r, ZV_BYTES, 1, out);
    case 0xc5: return read_raw_len(r, ZV_BYTES, 2, out);
    case 0xc6: return read_raw_len(r, ZV_BYTES, 4, out);
    case 0xca: return read_float(r, 4, out);
    case 0xcb: return read_float(r, 8, out);
    case 0xcc: return read_uint(r, 1, out);
    case 0xcd: return read_uint(r, 2, out);
    case 0xce: return read_uint(r, 4, out);
    case 0xcf: return read_uint(r, 8, out);
    case 0xd0: return read_sint(r, 1, out);
    case 0xd1: return read_sint(r, 2, out);
    case 0xd2: return read_sint(r, 4, out);
    case 0xd3: return read_sint(r, 8, out);
    case 0xd9: return read_raw_len(r, ZV_STR, 1, out);
    case 0xda: return read_raw_len(r, ZV_STR, 2, out);
    case 0xdb: return read_raw_len(r, ZV_STR, 4, out);
    case 0xdc: return read_count(r, 2, 0, depth, out);
    case 0xdd: return read_count(r, 4, 0, depth, out);
    case 0xde: return read_count(r, 2, 1, depth, out);
    case 0xdf: return read_count(r, 4, 1, depth, out);
    }
    /* 0xc1 (never used), 0xc7-0xc9 and 0xd4-0xd8 (ext types): ZEO sends none. */
    return zerr_set(r->err, ZE_CORRUPT, "msgpack: type byte 0x%02x (ext or reserved) at offset %zu",
                    c, (size_t)(r->p - 1 - r->start));
}

int proto__m5_decode(const uint8_t *p, size_t len, uint64_t max_bytes, zv_arena *a, zv **out,
                     zerr *err)
{
    reader r = {p, p, p + len, a, max_bytes, zv_arena_bytes(a), err};
    /* The arena's own limit, if tighter, stays. */
    size_t prev = zv_arena_set_limit(a, 0);
    size_t lim = max_bytes > SIZE_MAX - r.arena_start ? SIZE_MAX
                                                       : r.arena_start + (size_t)max_bytes;
    zv_arena_set_limit(a, prev && prev < lim ? prev : lim);
    int rc = read_value(&r, 0, out);
    zv_arena_set_limit(a, prev);

    if (rc)
        return rc;
    if (r.p != r.end)
        return zerr_set(err, ZE_CORRUPT, "msgpack: %zu trailing bytes after the message",
                        left(&r));
    return 0;
}

/* ---- encoding ---------------------------------------------------------- */

static int write_zbuf(void *data, const char *buf, size_t len)
{
    return zbuf_append(data, buf, len) ? -1 : 0;
}

/* A ZV_BIGINT that fits uint64 (msgpack has nothing wider). */
static int bigint_u64(const zv *v, uint64_t *out)
{
    const uint8_t *le = v->u.s.p;
    size_t n = v->u.s.len;
    uint64_t u = 0;

    if (n == 0 || (le[n - 1] & 0x80))
        return 0;
    for (size_t i = n; i-- > 0;) {
        if (i >= 8 && le[i])
            return 0;
        if (i < 8)
            u |= (uint64_t)le[i] << (8 * i);
    }
    *out = u;
    return 1;
}

static int pack_value(msgpack_packer *pk, const zv *v, unsigned depth, zerr *err);

static int pack_items(msgpack_packer *pk, const zv *v, size_t n, unsigned depth, zerr *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pack_value(pk, v->u.seq.items[i], depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int pack_value(msgpack_packer *pk, const zv *v, unsigned depth, zerr *err)
{
    uint64_t u;
    int fail;

    if (depth > PROTO_MAX_DEPTH)
        return zerr_set(err, ZE_INVAL, "msgpack: value nested deeper than %d", PROTO_MAX_DEPTH);
    switch (v->type) {
    case ZV_NONE: fail = msgpack_pack_nil(pk); break;
    case ZV_BOOL: fail = v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case ZV_INT: fail = msgpack_pack_int64(pk, v->u.i); break;
    case ZV_FLOAT: fail = msgpack_pack_double(pk, v->u.f); break;
    case ZV_BIGINT:
        if (!bigint_u64(v, &u))
            return zerr_set(err, ZE_INVAL, "msgpack: integer out of the 64-bit range");
        fail = msgpack_pack_uint64(pk, u);
        break;
    case ZV_BYTES:
    case ZV_STR:
        if (v->u.s.len > UINT32_MAX)
            return zerr_set(err, ZE_TOOBIG, "msgpack: %s of %zu bytes", proto__type_name(v),
                            v->u.s.len);
        fail = v->type == ZV_STR ? msgpack_pack_str_with_body(pk, v->u.s.p, v->u.s.len)
                                 : msgpack_pack_bin_with_body(pk, v->u.s.p, v->u.s.len);
        break;
    case ZV_TUPLE:
    case ZV_LIST:
        if (v->u.seq.n > UINT32_MAX)
            return zerr_set(err, ZE_TOOBIG, "msgpack: array of %zu items", v->u.seq.n);
        if (msgpack_pack_array(pk, v->u.seq.n))
            goto nomem;
        return pack_items(pk, v, v->u.seq.n, depth, err);
    case ZV_DICT:
        if (v->u.seq.n > UINT32_MAX)
            return zerr_set(err, ZE_TOOBIG, "msgpack: map of %zu pairs", v->u.seq.n);
        if (msgpack_pack_map(pk, v->u.seq.n))
            goto nomem;
        return pack_items(pk, v, 2 * v->u.seq.n, depth, err);
    default:
        return zerr_set(err, ZE_INVAL, "msgpack: cannot encode a %s", proto__type_name(v));
    }
    if (fail)
        goto nomem;
    return 0;
nomem:
    return zerr_set(err, ZE_NOMEM, "msgpack: out of memory");
}

int proto__m5_encode(const zv *v, zbuf *out, zerr *err)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, write_zbuf);
    return pack_value(&pk, v, 0, err);
}

static int count_bytes(void *data, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)data += len;
    return 0;
}

int proto__m5_size(const zv *v, size_t *size, zerr *err)
{
    msgpack_packer pk;

    *size = 0;
    msgpack_packer_init(&pk, size, count_bytes);
    int rc = pack_value(&pk, v, 0, err);
    if (rc)
        *size = 0;
    return rc;
}
