/* ext.c: the transaction extension as ZODB stores it (spec 7.9).
 *
 * ZODB writes `zodbpickle.pickle.dumps(ext, 3)`: CPython's C pickler with its
 * memo, not ZEO's memo-less fast mode that pickle_encode produces. So this
 * file walks the containers itself and adds what that pickler does: a BINPUT
 * after every str, bytes, dict, list and non-empty tuple, lists and dicts in
 * batches of 1000, and a BINGET when the same object is pickled twice. Scalars
 * are still written by pickle_encode, so the opcode for each value type is
 * chosen in one place only.
 *
 * Object identity: the server gets the dict from the wire, where every value
 * is a fresh object, except that CPython shares one object for the empty str,
 * each 1-character str below U+0100 and b''. Those repeat as BINGETs;
 * everything else is written again, as ZODB does. (1-byte bytes are fresh
 * objects from the pickle decoder of Python >= 3.8 but shared ones from
 * msgpack's: for an M5 client an extension repeating such a value would get
 * a BINGET from the reference server where this writes the bytes again.
 * Both decode to the same dict.)
 */
#include "proto/proto_int.h"

#include "pickle/pickle.h"

#include <string.h>

#define BATCH 1000
#define NO_MEMO UINT32_MAX

enum {
    OP_MARK = 0x28, OP_STOP = 0x2e, OP_APPEND = 0x61, OP_APPENDS = 0x65,
    OP_SETITEM = 0x73, OP_SETITEMS = 0x75, OP_EMPTY_DICT = 0x7d, OP_EMPTY_LIST = 0x5d,
    OP_EMPTY_TUPLE = 0x29, OP_TUPLE = 0x74, OP_TUPLE1 = 0x85,
    OP_BINPUT = 0x71, OP_LONG_BINPUT = 0x72, OP_BINGET = 0x68, OP_LONG_BINGET = 0x6a,
};

typedef struct writer {
    zbuf *out;
    size_t start;              /* out->len before the extension */
    zbuf leaf;                 /* scratch: one scalar pickled by pickle_encode */
    uint32_t next_memo;
    uint32_t shared_str[257];  /* memo index of CPython's shared strs, by */
                               /* character (256: ''), or NO_MEMO */
    uint32_t shared_bytes;     /* memo index of b'', or NO_MEMO */
    zerr *err;
} writer;

static int save(writer *w, const zv *v, unsigned depth);

static int put_op(writer *w, uint8_t op, uint32_t arg)
{
    uint8_t b[5] = {op, (uint8_t)arg, (uint8_t)(arg >> 8), (uint8_t)(arg >> 16),
                    (uint8_t)(arg >> 24)};
    size_t n = 2;

    if (arg > 0xff) {
        b[0] = op == OP_BINPUT ? OP_LONG_BINPUT : OP_LONG_BINGET;
        n = 5;
    }
    return zbuf_append(w->out, b, n) ? zerr_set(w->err, ZE_NOMEM, "out of memory") : 0;
}

static int byte(writer *w, uint8_t op)
{
    return zbuf_append_byte(w->out, op) ? zerr_set(w->err, ZE_NOMEM, "out of memory") : 0;
}

static int memoize(writer *w)
{
    return put_op(w, OP_BINPUT, w->next_memo++);
}

/* The slot of a value CPython shares between all its occurrences, or NULL. */
static uint32_t *shared_slot(writer *w, const zv *v)
{
    const uint8_t *s = v->u.s.p;
    size_t n = v->u.s.len;

    if (v->type == ZV_BYTES && n == 0)
        return &w->shared_bytes;
    if (v->type != ZV_STR)
        return NULL;
    if (n == 0)
        return &w->shared_str[256];
    if (n == 1 && s[0] < 0x80)
        return &w->shared_str[s[0]];
    if (n == 2 && (s[0] == 0xc2 || s[0] == 0xc3))
        return &w->shared_str[((s[0] & 0x03u) << 6) | (s[1] & 0x3fu)];
    return NULL;
}

/* A scalar: pickle_encode's output minus its PROTO header and STOP. */
static int save_leaf(writer *w, const zv *v)
{
    int rc;

    zbuf_reset(&w->leaf);
    rc = pickle_encode(v, &w->leaf, w->err);
    if (rc)
        return rc;
    if (w->leaf.len < 3)
        return zerr_set(w->err, ZE_INVAL, "extension: unexpected pickle of a %s",
                        proto__type_name(v));
    if (zbuf_append(w->out, w->leaf.data + 2, w->leaf.len - 3))
        return zerr_set(w->err, ZE_NOMEM, "out of memory");
    return 0;
}

static int save_string(writer *w, const zv *v)
{
    uint32_t *slot = shared_slot(w, v);
    int rc;

    if (slot && *slot != NO_MEMO)
        return put_op(w, OP_BINGET, *slot);
    if (slot)
        *slot = w->next_memo;
    rc = save_leaf(w, v);
    return rc ? rc : memoize(w);
}

/* The entries of a list (per_entry 1) or dict (2, key then value) as the C
 * pickler's batch_list_exact / batch_dict_exact write them: one entry alone
 * with APPEND/SETITEM; otherwise MARK ... APPENDS/SETITEMS per 1000 entries,
 * where a dict whose size is a multiple of 1000 ends with an empty batch. */
static int save_entries(writer *w, const zv *v, size_t per_entry, unsigned depth)
{
    int is_dict = per_entry == 2;
    size_t n = v->u.seq.n, done = 0, batch;
    int rc;

    if (n == 0)
        return 0;
    if (n == 1) {
        for (size_t j = 0; j < per_entry; j++)
            if ((rc = save(w, v->u.seq.items[j], depth + 1)))
                return rc;
        return byte(w, is_dict ? OP_SETITEM : OP_APPEND);
    }
    do {
        batch = n - done < BATCH ? n - done : BATCH;
        if ((rc = byte(w, OP_MARK)))
            return rc;
        for (size_t j = done * per_entry; j < (done + batch) * per_entry; j++)
            if ((rc = save(w, v->u.seq.items[j], depth + 1)))
                return rc;
        if ((rc = byte(w, is_dict ? OP_SETITEMS : OP_APPENDS)))
            return rc;
        done += batch;
    } while (done < n || (is_dict && batch == BATCH));
    return 0;
}

static int save_tuple(writer *w, const zv *v, unsigned depth)
{
    size_t n = v->u.seq.n;
    int rc;

    if (n == 0)
        return byte(w, OP_EMPTY_TUPLE);
    if (n > 3 && (rc = byte(w, OP_MARK)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = save(w, v->u.seq.items[i], depth + 1)))
            return rc;
    rc = byte(w, n > 3 ? OP_TUPLE : (uint8_t)(OP_TUPLE1 + n - 1));
    return rc ? rc : memoize(w);
}

/* Stops a dict whose values repeat (the wire may share one) long before its
 * pickle could grow with them. */
static int too_big(writer *w, size_t more)
{
    if (w->out->len - w->start <= PROTO_EXTENSION_MAX &&
        more <= PROTO_EXTENSION_MAX - (w->out->len - w->start))
        return 0;
    return zerr_set(w->err, ZE_TOOBIG, "extension: pickled over %d bytes", PROTO_EXTENSION_MAX);
}

static int save(writer *w, const zv *v, unsigned depth)
{
    int rc;

    if ((rc = too_big(w, v->type == ZV_STR || v->type == ZV_BYTES ? v->u.s.len : 0)))
        return rc;
    if (depth > PROTO_MAX_DEPTH)
        return zerr_set(w->err, ZE_INVAL, "extension nested deeper than %d", PROTO_MAX_DEPTH);
    switch (v->type) {
    case ZV_STR:
    case ZV_BYTES: return save_string(w, v);
    case ZV_TUPLE: return save_tuple(w, v, depth);
    case ZV_LIST:
        if ((rc = byte(w, OP_EMPTY_LIST)) || (rc = memoize(w)))
            return rc;
        return save_entries(w, v, 1, depth);
    case ZV_DICT:
        if ((rc = byte(w, OP_EMPTY_DICT)) || (rc = memoize(w)))
            return rc;
        return save_entries(w, v, 2, depth);
    default: return save_leaf(w, v);
    }
}

int proto_extension_encode(const zv *dict, zbuf *out, zerr *err)
{
    static const uint8_t proto3[2] = {0x80, 3};
    writer w = {.out = out, .start = out->len, .err = err};
    size_t start = out->len;
    int rc;

    if (!dict || dict->type == ZV_NONE || (dict->type == ZV_DICT && dict->u.seq.n == 0))
        return 0;
    if (dict->type != ZV_DICT)
        return zerr_set(err, ZE_INVAL, "extension is a %s, not a dict", proto__type_name(dict));
    memset(w.shared_str, 0xff, sizeof w.shared_str);
    w.shared_bytes = NO_MEMO;
    rc = zbuf_append(out, proto3, 2) ? zerr_set(err, ZE_NOMEM, "out of memory") : 0;
    if (!rc)
        rc = save(&w, dict, 0);
    if (!rc)
        rc = byte(&w, OP_STOP);
    if (!rc)
        rc = too_big(&w, 0);
    zbuf_free(&w.leaf);
    if (rc)
        out->len = start;
    return rc;
}

int proto_extension_decode(const uint8_t *p, size_t len, zv_arena *a, zv **out, zerr *err)
{
    size_t used = 0;
    zv *v;
    int rc;

    if (len == 0) {
        *out = zv_dict(a, 0);
        return *out ? 0 : zerr_set(err, ZE_NOMEM, "out of memory");
    }
    rc = pickle_decode_max(p, len, 0, PROTO_DECODE_BOUND(len), a, &v, &used, err);
    if (rc == ZE_NOMEM)
        return rc;
    if (rc) {
        /* Keep the decoder's message; whatever went wrong, the bytes are bad. */
        if (err)
            err->code = ZE_CORRUPT;
        return ZE_CORRUPT;
    }
    if (used != len)
        return zerr_set(err, ZE_CORRUPT, "extension: %zu bytes after the pickle", len - used);
    if (v->type != ZV_DICT)
        return zerr_set(err, ZE_CORRUPT, "extension is a %s, not a dict", proto__type_name(v));
    *out = v;
    return 0;
}
