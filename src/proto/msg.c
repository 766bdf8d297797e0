/* msg.c: the (msgid, flag, name, args) message in either encoding (spec 4-6). */
#include "proto/proto_int.h"

#include "pickle/pickle.h"

#include <string.h>

const char *proto__type_name(const zv *v)
{
    static const char *const names[] = {
        [ZV_NONE] = "None",   [ZV_BOOL] = "bool",        [ZV_INT] = "int",
        [ZV_BIGINT] = "int",  [ZV_FLOAT] = "float",      [ZV_BYTES] = "bytes",
        [ZV_STR] = "str",     [ZV_TUPLE] = "tuple",      [ZV_LIST] = "list",
        [ZV_DICT] = "dict",   [ZV_SET] = "set",          [ZV_FROZENSET] = "frozenset",
        [ZV_GLOBAL] = "global", [ZV_CALL] = "call",      [ZV_BUILD] = "build",
        [ZV_PERSID] = "persistent id",
    };

    if (!v)
        return "nothing";
    if ((size_t)v->type >= sizeof names / sizeof names[0] || !names[v->type])
        return "unknown";
    return names[v->type];
}

/* The reference peers ignore bytes after a pickle's STOP; nothing legitimate
 * sends any, so they are refused like msgpack's trailing data. */
static int decode_value(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a, zv **v,
                        zerr *err)
{
    uint64_t bound = PROTO_DECODE_BOUND(len);
    size_t used = 0;
    int rc;

    if (enc == PROTO_MSGPACK)
        return proto__m5_decode(p, len, bound, a, v, err);
    if (enc != PROTO_PICKLE)
        return zerr_set(err, ZE_INVAL, "unknown encoding %d", (int)enc);
    rc = pickle_decode_max(p, len, 0, bound, a, v, &used, err);
    if (rc)
        return rc;
    if (used != len)
        return zerr_set(err, ZE_CORRUPT, "pickle: %zu trailing bytes after STOP", len - used);
    return 0;
}

/* The flag as the peers read it: bools and ints by value, anything else by
 * truthiness. */
static int64_t flag_value(const zv *flag)
{
    int64_t i;

    return zv_get_int(flag, &i) ? i : zv_truthy(flag);
}

/* The name as a C string: both decoders end a str with a NUL. An inner
 * NUL would make it differ from the name on the wire, so it is refused
 * rather than cut. */
static int name_of(const zv *s, const char **out, zerr *err)
{
    if (memchr(s->u.s.p, 0, s->u.s.len))
        return zerr_set(err, ZE_PROTO, "message name contains a NUL byte");
    *out = (const char *)s->u.s.p;
    return 0;
}

int proto_decode(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a, proto_msg *msg,
                 zerr *err)
{
    zv *v;
    int rc;

    memset(msg, 0, sizeof *msg);
    rc = decode_value(enc, p, len, a, &v, err);
    if (rc)
        return rc;
    if (v->type != ZV_TUPLE || v->u.seq.n != 4)
        return zerr_set(err, ZE_PROTO, "message is a %s of %zu items, not a 4-tuple",
                        proto__type_name(v), zv_is_seq(v) ? v->u.seq.n : (size_t)1);
    zv **f = v->u.seq.items;
    if (f[2]->type != ZV_STR)
        return zerr_set(err, ZE_PROTO, "message name is a %s, not a str",
                        proto__type_name(f[2]));
    rc = name_of(f[2], &msg->name, err);
    if (rc)
        return rc;
    if (strcmp(msg->name, ".reply") != 0 && f[3]->type != ZV_TUPLE)
        return zerr_set(err, ZE_PROTO, "arguments of %.64s are a %s, not a tuple", msg->name,
                        proto__type_name(f[3]));
    msg->msgid = f[0];
    msg->flag = flag_value(f[1]);
    msg->async = zv_truthy(f[1]);
    msg->args = f[3];
    return 0;
}

int proto_is_heartbeat(const proto_msg *msg)
{
    return msg->msgid && msg->msgid->type == ZV_INT && msg->msgid->u.i == -1;
}

/* ---- encoding ---------------------------------------------------------- */

/* The payload's size, found without building it. */
static int payload_size(proto_enc enc, const zv *msg, size_t *n, zerr *err)
{
    if (enc != PROTO_PICKLE && enc != PROTO_MSGPACK)
        return zerr_set(err, ZE_INVAL, "unknown encoding %d", (int)enc);
    int rc = enc == PROTO_PICKLE ? pickle_encoded_size(msg, n, err) : proto__m5_size(msg, n, err);
    if (rc == 0 && *n > UINT32_MAX)
        rc = zerr_set(err, ZE_TOOBIG, "message of %zu bytes", *n);
    return rc;
}

/* A payload this large gets exactly its room: doubling out for it could
 * take twice its size. */
#define EXACT_ROOM (64u * 1024)

/* Encode msg behind its 4-byte length. Its size is known first, so a
 * message too large is refused before anything is built; out is left as it
 * was on failure. */
static int encode_frame(proto_enc enc, zbuf *out, const zv *msg, zerr *err)
{
    size_t start = out->len, n;
    int rc = payload_size(enc, msg, &n, err);

    if (rc)
        return rc;
    if ((n >= EXACT_ROOM ? zbuf_reserve_exact(out, 4 + n) : zbuf_reserve(out, 4 + n)))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    out->len += 4;
    rc = enc == PROTO_PICKLE ? pickle_encode(msg, out, err) : proto__m5_encode(msg, out, err);
    if (rc == 0 && out->len - start - 4 != n)
        rc = zerr_set(err, ZE_INVAL, "message of %zu bytes encoded as %zu", n,
                      out->len - start - 4);
    if (rc) {
        out->len = start;
        return rc;
    }
    zbe32_put(out->data + start, (uint32_t)n);
    return 0;
}

/* The 4-tuple is assembled from stack nodes around the caller's values, so
 * encoding needs no arena. The encoders only read through items[]. */
typedef struct msg_tuple {
    zv name;
    zv *items[4];
    zv msg;
} msg_tuple;

static int msg_tuple_init(msg_tuple *t, const zv *msgid, const zv *flag, const char *name,
                          const zv *args, zerr *err)
{
    if (!msgid || !args)
        return zerr_set(err, ZE_INVAL, "message without msgid or arguments");
    t->name = (zv){.type = ZV_STR, .u.s = {(const uint8_t *)name, strlen(name)}};
    t->items[0] = (zv *)msgid;
    t->items[1] = (zv *)flag;
    t->items[2] = &t->name;
    t->items[3] = (zv *)args;
    t->msg = (zv){.type = ZV_TUPLE, .u.seq = {t->items, 4}};
    return 0;
}

static int encode_msg(proto_enc enc, zbuf *out, const zv *msgid, const zv *flag,
                      const char *name, const zv *args, zerr *err)
{
    msg_tuple t;
    int rc = msg_tuple_init(&t, msgid, flag, name, args, err);

    return rc ? rc : encode_frame(enc, out, &t.msg, err);
}

int proto_encode_call(proto_enc enc, zbuf *out, const zv *msgid, int async, const char *name,
                      const zv *args, zerr *err)
{
    zv flag = {.type = ZV_BOOL, .u.b = async != 0};

    if (!args || args->type != ZV_TUPLE)
        return zerr_set(err, ZE_INVAL, "arguments of %s must be a tuple", name);
    return encode_msg(enc, out, msgid, &flag, name, args, err);
}

int proto_encode_reply(proto_enc enc, zbuf *out, const zv *msgid, const zv *result, zerr *err)
{
    zv flag = {.type = ZV_INT, .u.i = 0};

    return encode_msg(enc, out, msgid, &flag, ".reply", result, err);
}

int proto_reply_size(proto_enc enc, const zv *msgid, const zv *result, size_t *size, zerr *err)
{
    zv flag = {.type = ZV_INT, .u.i = 0};
    msg_tuple t;
    int rc = msg_tuple_init(&t, msgid, &flag, ".reply", result, err);

    *size = 0;
    if (rc == 0 && (rc = payload_size(enc, &t.msg, size, err)) == 0)
        *size += 4;
    return rc;
}

int proto_encode_error(proto_enc enc, zbuf *out, const zv *msgid, const proto_exc *e,
                       zerr *err)
{
    zv flag = {.type = ZV_INT, .u.i = 2};
    zv cls = {.type = ZV_STR, .u.s = {(const uint8_t *)e->class_path, strlen(e->class_path)}};
    zv *items[2] = {&cls, e->payload};
    zv exc = {.type = ZV_TUPLE, .u.seq = {items, 2}};

    if (!e->payload)
        return zerr_set(err, ZE_INVAL, "error %s without payload", e->class_path);
    return encode_msg(enc, out, msgid, &flag, ".reply", &exc, err);
}

int proto_encode_async(proto_enc enc, zbuf *out, const char *name, const zv *args, zerr *err)
{
    zv msgid = {.type = ZV_INT, .u.i = 0};

    return proto_encode_call(enc, out, &msgid, 1, name, args, err);
}

int proto_encode_heartbeat(proto_enc enc, zbuf *out, zerr *err)
{
    zv msgid = {.type = ZV_INT, .u.i = -1};
    zv none = {.type = ZV_NONE};

    return proto_encode_reply(enc, out, &msgid, &none, err);
}
