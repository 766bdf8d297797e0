/* errors.c: the exception replies the Python client rebuilds (spec 11.2).
 * The payloads are assembled from stack nodes: no arena needed. */
#include "proto/proto_int.h"

#include <string.h>

#define STR(text) {.type = ZV_STR, .u.s = {(const uint8_t *)(text), strlen(text)}}
#define BYTES(ptr, n) {.type = ZV_BYTES, .u.s = {(ptr), (n)}}
#define TUPLE(items, n) {.type = ZV_TUPLE, .u.seq = {(items), (n)}}

int proto_encode_conflict(proto_enc enc, zbuf *out, const zv *msgid, const proto_conflict *c,
                          zerr *err)
{
    const char *message = c->message ? c->message
                          : c->read  ? "database read conflict error"
                                     : "database conflict error";
    uint8_t oid[8], serials[16];

    zbe64_put(oid, c->oid);
    zbe64_put(serials, c->current);
    zbe64_put(serials + 8, c->sent);
    zv k_msg = STR("message"), k_oid = STR("oid"), k_cls = STR("class_name"),
       k_ser = STR("serials");
    zv v_msg = STR(message), v_oid = BYTES(oid, 8), s0 = BYTES(serials, 8),
       s1 = BYTES(serials + 8, 8);
    zv v_cls = {.type = ZV_NONE};
    if (c->class_name)
        v_cls = (zv)STR(c->class_name);
    zv *pair[2] = {&s0, &s1};
    zv v_ser = TUPLE(pair, 2);
    /* Key order as the reference server sends it. */
    zv *items[8] = {&k_msg, &v_msg, &k_oid, &v_oid, &k_cls, &v_cls, &k_ser, &v_ser};
    zv dict = {.type = ZV_DICT, .u.seq = {items, 4}};

    return proto_encode_error(enc, out, msgid, c->read ? PROTO_EXC_READ_CONFLICT
                                                       : PROTO_EXC_CONFLICT, &dict, err);
}

int proto_encode_poskey(proto_enc enc, zbuf *out, const zv *msgid, uint64_t oid, zerr *err)
{
    uint8_t b[8];

    zbe64_put(b, oid);
    zv v = BYTES(b, 8);
    zv *items[1] = {&v};
    zv args = TUPLE(items, 1);
    return proto_encode_error(enc, out, msgid, PROTO_EXC_POSKEY, &args, err);
}

int proto_encode_readonly(proto_enc enc, zbuf *out, const zv *msgid, zerr *err)
{
    zv args = TUPLE(NULL, 0);

    return proto_encode_error(enc, out, msgid, PROTO_EXC_READONLY, &args, err);
}

int proto_encode_error_msg(proto_enc enc, zbuf *out, const zv *msgid, const char *class_path,
                           const char *message, zerr *err)
{
    zv v = STR(message);
    zv *items[1] = {&v};
    zv args = TUPLE(items, 1);

    return proto_encode_error(enc, out, msgid, class_path, &args, err);
}

int proto_encode_txn_mismatch(proto_enc enc, zbuf *out, const zv *msgid, const zv *current,
                              const zv *txn, zerr *err)
{
    zv none = {.type = ZV_NONE};
    zv *items[2] = {current ? (zv *)current : &none, (zv *)txn};
    zv args = TUPLE(items, 2);

    if (!txn)
        return zerr_set(err, ZE_INVAL, "StorageTransactionError without a txn");
    return proto_encode_error(enc, out, msgid, PROTO_EXC_TXN, &args, err);
}
