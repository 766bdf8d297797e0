/* proto_decode_storea_call, the server's in-place read of storea: every storea the
 * real ZEO client sent in the recorded conversations is read in place, with
 * the values proto_decode gives; every other recorded frame, and storea
 * calls in shapes the peek does not know, are left to proto_decode. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "wirefix.h"

static zv_arena *arena;

static void setup(void)
{
    arena = zv_arena_new();
    cr_assert_not_null(arena);
}

static void teardown(void)
{
    zv_arena_free(arena);
}

TestSuite(proto_storea_call, .init = setup, .fini = teardown);

static uint64_t be8(const zv *v)
{
    cr_assert(v->type == ZV_BYTES && v->u.s.len == 8);
    return zbe64(v->u.s.p);
}

/* The peek's reading agrees with the general decoder's. */
static void same_as_decode(proto_enc enc, const uint8_t *p, size_t len, const proto_storea_call *sa,
                           const char *where)
{
    proto_msg m;
    zerr err;
    zv_arena_reset(arena);
    cr_assert_eq(proto_decode(enc, p, len, arena, &m, &err), 0, "%s: %s", where, err.msg);
    cr_assert_str_eq(m.name, "storea", "%s", where);
    cr_assert(m.msgid->type == ZV_INT && m.msgid->u.i == sa->msgid, "%s", where);
    cr_assert_eq(m.async, sa->async, "%s", where);
    zv **a = m.args->u.seq.items;
    cr_assert_eq(m.args->u.seq.n, 4, "%s", where);
    cr_assert_eq(be8(a[0]), sa->oid, "%s", where);
    cr_assert_eq(a[1]->type == ZV_NONE ? 0 : be8(a[1]), sa->serial, "%s", where);
    cr_assert(a[2]->type == ZV_BYTES && a[2]->u.s.len == sa->data.len, "%s", where);
    cr_assert_arr_eq(a[2]->u.s.p, sa->data.p, sa->data.len, "%s", where);
    cr_assert(a[3]->type == ZV_INT && a[3]->u.i == sa->txn, "%s", where);
}

static size_t recorded(const char *enc_name, proto_enc enc)
{
    size_t nfiles, seen = 0;
    char **paths = wf_list(enc_name, &nfiles);
    cr_assert_not_null(paths);
    for (size_t i = 0; i < nfiles; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0, "%s", paths[i]);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            char where[512];
            proto_storea_call sa;
            proto_msg m;
            zerr err;
            if (fr->dir != WF_C2S || !strcmp(fr->kind, "handshake"))
                continue;
            snprintf(where, sizeof where, "%s:%zu", paths[i], fr->line);
            zv_arena_reset(arena);
            cr_assert_eq(proto_decode(enc, fr->payload, fr->len, arena, &m, &err), 0, "%s", where);
            int peeked = proto_decode_storea_call(enc, fr->payload, fr->len, &sa);
            cr_assert_eq(peeked, !strcmp(m.name, "storea"), "%s: %s", where, m.name);
            if (peeked) {
                same_as_decode(enc, fr->payload, fr->len, &sa, where);
                seen++;
            }
        }
        wf_free(&f);
    }
    wf_list_free(paths, nfiles);
    return seen;
}

Test(proto_storea_call, every_recorded_storea_is_read_in_place)
{
    cr_assert_gt(recorded("z5", PROTO_PICKLE), 20);
    cr_assert_gt(recorded("m5", PROTO_MSGPACK), 20);
}

/* A storea frame as our encoder writes it, with these arguments. */
static void encode(proto_enc enc, zbuf *out, int64_t msgid, int async, const zv *serial,
                   const char *data, size_t dlen, const zv *txn)
{
    uint8_t oid[8] = {0, 0, 0, 0, 0, 0, 1, 2};
    zv *args = zv_tuple(arena, 4);
    args->u.seq.items[0] = zv_bytes(arena, oid, 8);
    args->u.seq.items[1] = (zv *)serial;
    args->u.seq.items[2] = zv_bytes(arena, data, dlen);
    args->u.seq.items[3] = (zv *)txn;
    zerr err;
    zbuf_reset(out);
    cr_assert_eq(proto_encode_call(enc, out, zv_int(arena, msgid), async, "storea", args, &err),
                 0, "%s", err.msg);
}

static int peek(proto_enc enc, const zbuf *frame, proto_storea_call *sa)
{
    return proto_decode_storea_call(enc, frame->data + 4, frame->len - 4, sa);
}

Test(proto_storea_call, sizes_and_signs_of_ints_and_bytes)
{
    static const int64_t ints[] = {0, 1, 255, 256, 65535, 65536, -1, -129, INT32_MIN,
                                   (int64_t)1 << 40, INT64_MAX, INT64_MIN};
    static const size_t lens[] = {1, 255, 256, 70000};
    static char data[70000];
    zbuf out = ZBUF_INIT;
    uint8_t s8[8] = {0x03, 0xe8, 0, 0, 0, 0, 0, 7};
    memset(data, 'd', sizeof data);
    for (int e = 0; e < 2; e++) {
        proto_enc enc = e ? PROTO_MSGPACK : PROTO_PICKLE;
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
                proto_storea_call sa;
                const zv *serial = j % 2 ? zv_none(arena) : zv_bytes(arena, s8, 8);
                encode(enc, &out, ints[i], 1, serial, data, lens[j], zv_int(arena, ints[i]));
                cr_assert_eq(peek(enc, &out, &sa), 1, "enc %d int %lld len %zu", e,
                             (long long)ints[i], lens[j]);
                cr_assert_eq(sa.msgid, ints[i]);
                cr_assert_eq(sa.txn, ints[i]);
                cr_assert_eq(sa.async, 1);
                cr_assert_eq(sa.oid, 0x102);
                cr_assert_eq(sa.serial, j % 2 ? 0 : zbe64(s8));
                cr_assert_eq(sa.data.len, lens[j]);
                same_as_decode(enc, out.data + 4, out.len - 4, &sa, "encoded");
            }
    }
    zbuf_free(&out);
}

Test(proto_storea_call, other_shapes_are_left_to_the_decoder)
{
    zbuf out = ZBUF_INIT;
    proto_storea_call sa;
    uint8_t s7[7] = {0};
    for (int e = 0; e < 2; e++) {
        proto_enc enc = e ? PROTO_MSGPACK : PROTO_PICKLE;
        /* a str txn id, a short serial, a float txn: the decoder's business */
        encode(enc, &out, 1, 1, zv_none(arena), "x", 1, zv_cstr(arena, "txn"));
        cr_assert_eq(peek(enc, &out, &sa), 0);
        encode(enc, &out, 1, 1, zv_bytes(arena, s7, 7), "x", 1, zv_int(arena, 5));
        cr_assert_eq(peek(enc, &out, &sa), 0);
        zv *f = zv_float(arena, 1.5);
        encode(enc, &out, 1, 1, zv_none(arena), "x", 1, f);
        cr_assert_eq(peek(enc, &out, &sa), 0);
        /* a synchronous storea is read, flagged: the server declines it */
        encode(enc, &out, 1, 0, zv_none(arena), "x", 1, zv_int(arena, 5));
        cr_assert_eq(peek(enc, &out, &sa), 1);
        cr_assert_eq(sa.async, 0);
        /* cut anywhere, or one byte more: never read */
        for (size_t cut = 1; cut < out.len - 4; cut++)
            cr_assert_eq(proto_decode_storea_call(enc, out.data + 4, cut, &sa), 0, "cut %zu", cut);
        cr_assert_eq(zbuf_append_byte(&out, e ? 0xc0 : '.'), 0);
        cr_assert_eq(peek(enc, &out, &sa), 0);
    }
    /* a pickle with a memo (a client not in fast mode) */
    static const uint8_t memo[] = {0x80, 3, '(', 'K', 0, 0x88, 'X', 6, 0, 0, 0, 's', 't', 'o',
                                   'r', 'e', 'a', 'q', 0, '(', 'C', 8, 0, 0, 0, 0, 0, 0, 0, 1,
                                   'N', 'C', 1, 'x', 'K', 5, 't', 't', '.'};
    cr_assert_eq(proto_decode_storea_call(PROTO_PICKLE, memo, sizeof memo, &sa), 0);
    zbuf_free(&out);
}
