/* libFuzzer target for the wire codec: proto_decode in both encodings,
 * encoding whatever decodes, proto_extension_decode, and storea's in-place
 * reader (what it reads, proto_decode must read the same).
 *
 * Input: one byte choosing the encoding (even: Z5 pickle, odd: M5 msgpack),
 * then a frame payload. Besides crashes and sanitizer reports, it checks
 * that encoding is stable: a message that decodes and encodes must encode to
 * the same bytes after another decode (decode . encode is the identity on
 * what the encoder writes).
 */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "fuzz.h"

static int encode_msg(proto_enc enc, const proto_msg *m, zbuf *out)
{
    if (strcmp(m->name, ".reply") == 0)
        return proto_encode_reply(enc, out, m->msgid, m->args, NULL);
    return proto_encode_call(enc, out, m->msgid, m->async, m->name, m->args, NULL);
}

static void check_stable(proto_enc enc, const proto_msg *m, zv_arena *a)
{
    zbuf first = ZBUF_INIT, second = ZBUF_INIT;
    proto_msg again;

    if (encode_msg(enc, m, &first) == 0) {
        if (proto_decode(enc, first.data + 4, first.len - 4, a, &again, NULL) != 0)
            abort(); /* the encoder wrote something the decoder refuses */
        if (encode_msg(enc, &again, &second) != 0 || second.len != first.len ||
            memcmp(first.data, second.data, first.len) != 0)
            abort(); /* encoding is not stable */
    }
    zbuf_free(&first);
    zbuf_free(&second);
}

static uint64_t be8(const zv *v)
{
    if (v->type != ZV_BYTES || v->u.s.len != 8)
        abort(); /* the in-place reader took something else for 8 bytes */
    return zbe64(v->u.s.p);
}

/* A storea the in-place reader takes is the one proto_decode reads. */
static void check_storea(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a)
{
    proto_storea_call sa;
    proto_msg m;
    if (!proto_decode_storea_call(enc, p, len, &sa))
        return;
    if (proto_decode(enc, p, len, a, &m, NULL) != 0 || strcmp(m.name, "storea") ||
        m.msgid->type != ZV_INT || m.msgid->u.i != sa.msgid || m.async != sa.async ||
        m.args->u.seq.n != 4)
        abort();
    zv **v = m.args->u.seq.items;
    if (be8(v[0]) != sa.oid || (v[1]->type == ZV_NONE ? 0 : be8(v[1])) != sa.serial ||
        v[2]->type != ZV_BYTES || v[2]->u.s.len != sa.data.len ||
        memcmp(v[2]->u.s.p, sa.data.p, sa.data.len) || v[3]->type != ZV_INT ||
        v[3]->u.i != sa.txn)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    proto_enc enc = data[0] & 1 ? PROTO_MSGPACK : PROTO_PICKLE;
    zv_arena *a = zv_arena_new();
    proto_msg m;
    zv *ext;

    if (!a)
        return 0;
    if (proto_decode(enc, data + 1, size - 1, a, &m, NULL) == 0) {
        (void)proto_is_heartbeat(&m);
        check_stable(enc, &m, a);
    }
    (void)proto_extension_decode(data + 1, size - 1, a, &ext, NULL);
    check_storea(enc, data + 1, size - 1, a);
    zv_arena_free(a);
    return 0;
}
