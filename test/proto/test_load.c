/* loadBefore without value trees: the direct reply encoder writes what the
 * generic encoder writes for every msgid and data size, the direct call
 * reader agrees with proto_decode wherever it answers and answers for every
 * loadBefore the reference clients sent in the recordings, and the reply
 * encoder gives back the recorded loadBefore replies byte for byte. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "wirefix.h"

static zv_arena *arena, *scratch;
static zbuf want, got;

static void setup(void)
{
    arena = zv_arena_new();
    scratch = zv_arena_new();
    cr_assert(arena && scratch);
}

static void teardown(void)
{
    zv_arena_free(arena);
    zv_arena_free(scratch);
    zbuf_free(&want);
    zbuf_free(&got);
}

TestSuite(proto_load, .init = setup, .fini = teardown);

static const int64_t int_ids[] = {
    0, 1, 5, 127, 128, 255, 256, 300, 65535, 65536, 2147483647, 2147483648ll,
    4294967295ll, 4294967296ll, -1, -2, -32, -33, -128, -129, -32768, -32769,
    -2147483647 - 1, -2147483649ll, INT64_MAX, INT64_MIN,
};
#define N_INT_IDS (sizeof int_ids / sizeof int_ids[0])

/* Every msgid shape: the ints above, the (oid, tid) pair, and shapes the
 * direct encoder leaves to the generic one. */
static size_t msgids(zv **out)
{
    size_t n = 0;
    for (size_t i = 0; i < N_INT_IDS; i++)
        out[n++] = zv_int(arena, int_ids[i]);
    out[n++] = zv_tuple2(arena, zv_oid(arena, 7), zv_oid(arena, 0x040d86e000000001ull));
    out[n++] = zv_tuple2(arena, zv_oid(arena, 7), zv_bytes(arena, "short", 5));
    out[n++] = zv_tuple2(arena, zv_oid(arena, 7), zv_int(arena, 3));
    out[n++] = zv_tuple(arena, 0);
    out[n++] = zv_cstr(arena, "an id");
    out[n++] = zv_none(arena);
    out[n++] = zv_bool(arena, 1);
    for (size_t i = 0; i < n; i++)
        cr_assert_not_null(out[i]);
    return n;
}

static zv *load_result(const uint8_t *data, size_t len, uint64_t start, uint64_t end)
{
    zv_arena_reset(scratch);
    zv *t = zv_tuple(scratch, 3);
    cr_assert_not_null(t);
    t->u.seq.items[0] = zv_bytes(scratch, data, len);
    t->u.seq.items[1] = zv_oid(scratch, start);
    t->u.seq.items[2] = end ? zv_oid(scratch, end) : zv_none(scratch);
    return t;
}

Test(proto_load, reply_is_the_generic_encoders_bytes)
{
    static const size_t sizes[] = {0, 1, 128, 163, 255, 256, 65535, 65536, 70000};
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    zv *ids[64];
    size_t nids = msgids(ids), checked = 0;
    uint8_t *data = malloc(70000);
    cr_assert_not_null(data);
    for (size_t i = 0; i < 70000; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (size_t e = 0; e < 2; e++)
        for (size_t k = 0; k < nids; k++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                for (int has_end = 0; has_end < 2; has_end++) {
                    uint64_t start = 0x040d86e000000001ull + s, end = has_end ? start + 9 : 0;
                    zerr e1, e2;
                    /* Both append after what out holds already. */
                    zbuf_set(&want, "xy", 2);
                    zbuf_set(&got, "xy", 2);
                    int r1 = proto_encode_reply(encs[e], &want, ids[k],
                                                load_result(data, sizes[s], start, end), &e1);
                    int r2 = proto_encode_load_reply(encs[e], &got, ids[k], data, sizes[s],
                                                     start, end, &e2);
                    cr_assert_eq(r2, r1, "enc %c msgid %zu size %zu", encs[e], k, sizes[s]);
                    cr_assert_eq(got.len, want.len, "enc %c msgid %zu size %zu: %zu bytes, not %zu",
                                 encs[e], k, sizes[s], got.len, want.len);
                    cr_assert_arr_eq(got.data, want.data, want.len, "enc %c msgid %zu size %zu",
                                     encs[e], k, sizes[s]);
                    checked++;
                }
    cr_assert_eq(checked, 2 * nids * 9 * 2);
    free(data);
}

/* The call the reference clients send, through the generic encoder. */
static void encode_call(proto_enc enc, const zv *msgid, int async, const char *name,
                        zv *args)
{
    zbuf_reset(&want);
    cr_assert_eq(proto_encode_call(enc, &want, msgid, async, name, args, NULL), 0);
}

static zv *load_args(uint64_t oid, uint64_t tid)
{
    return zv_tuple2(arena, zv_oid(arena, oid), zv_oid(arena, tid));
}

/* proto_decode reads the same call from the payload as the direct reader. */
static void assert_agrees(proto_enc enc, const uint8_t *p, size_t len,
                          const proto_load_call *c)
{
    proto_msg m;
    zerr err;
    uint64_t oid, tid;
    cr_assert_eq(proto_decode(enc, p, len, arena, &m, &err), 0, "%s", err.msg);
    cr_assert_str_eq(m.name, "loadBefore");
    cr_assert_eq(m.async, 0);
    cr_assert_eq(m.flag, 0);
    cr_assert(!proto_is_heartbeat(&m));
    cr_assert(zv_equal(m.msgid, &c->msgid), "msgid differs");
    cr_assert_eq(m.args->u.seq.n, 2);
    cr_assert(zv_get_u64be(m.args->u.seq.items[0], &oid) && oid == c->oid);
    cr_assert(zv_get_u64be(m.args->u.seq.items[1], &tid) && tid == c->before);
}

Test(proto_load, call_reader_agrees_with_proto_decode)
{
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    zv *ids[64];
    size_t nids = msgids(ids);
    for (size_t e = 0; e < 2; e++) {
        size_t taken = 0;
        for (size_t k = 0; k < nids; k++) {
            proto_load_call c;
            encode_call(encs[e], ids[k], 0, "loadBefore", load_args(0x1234, 0x7fffffffffffffffull));
            int r = proto_decode_load_call(encs[e], want.data + 4, want.len - 4, &c);
            int64_t i = 0;
            int is_int = zv_get_int(ids[k], &i) && ids[k]->type == ZV_INT;
            /* What it must take: ints in the short forms the clients use
             * (but the heartbeat's -1), and the pair. */
            int expect = is_int ? i != -1 && (encs[e] == PROTO_PICKLE
                                                  ? i >= INT32_MIN && i <= INT32_MAX
                                                  : i >= 0 && i <= 0xffffffffll)
                                : k == N_INT_IDS;
            cr_assert_eq(r, expect, "enc %c msgid %zu", encs[e], k);
            if (r) {
                assert_agrees(encs[e], want.data + 4, want.len - 4, &c);
                taken++;
            }
        }
        cr_assert_geq(taken, 14);
    }
}

Test(proto_load, call_reader_leaves_other_payloads_to_proto_decode)
{
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    for (size_t e = 0; e < 2; e++) {
        proto_enc enc = encs[e];
        zv *id = zv_int(arena, 9);
        proto_load_call c;
        zv *three = zv_tuple(arena, 3);
        three->u.seq.items[0] = zv_oid(arena, 1);
        three->u.seq.items[1] = zv_oid(arena, 2);
        three->u.seq.items[2] = zv_oid(arena, 3);
        zv *shapes[] = {
            zv_tuple2(arena, zv_bytes(arena, "1234567", 7), zv_oid(arena, 2)),
            zv_tuple2(arena, zv_oid(arena, 1), zv_cstr(arena, "12345678")),
            zv_tuple2(arena, zv_oid(arena, 1), zv_none(arena)),
            three,
        };
        encode_call(enc, id, 1, "loadBefore", load_args(1, 2));
        cr_assert_eq(proto_decode_load_call(enc, want.data + 4, want.len - 4, &c), 0, "async");
        encode_call(enc, id, 0, "loadSerial", load_args(1, 2));
        cr_assert_eq(proto_decode_load_call(enc, want.data + 4, want.len - 4, &c), 0, "name");
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            encode_call(enc, id, 0, "loadBefore", shapes[s]);
            cr_assert_eq(proto_decode_load_call(enc, want.data + 4, want.len - 4, &c), 0,
                         "args %zu", s);
        }
        /* Every truncation, and a byte too many. */
        encode_call(enc, id, 0, "loadBefore", load_args(1, 2));
        cr_assert_eq(proto_decode_load_call(enc, want.data + 4, want.len - 4, &c), 1);
        for (size_t n = 0; n < want.len - 4; n++)
            cr_assert_eq(proto_decode_load_call(enc, want.data + 4, n, &c), 0, "%zu bytes", n);
        zbuf_append_byte(&want, 0);
        cr_assert_eq(proto_decode_load_call(enc, want.data + 4, want.len - 4, &c), 0);
    }
}

/* The recordings of the real ZEO 6 client and server, both encodings. */
static void replay(const char *enc_name, proto_enc enc)
{
    size_t nfiles, calls = 0, replies = 0;
    char **paths = wf_list(enc_name, &nfiles);
    cr_assert_not_null(paths);
    for (size_t i = 0; i < nfiles; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0, "%s", paths[i]);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            proto_msg m;
            proto_load_call c;
            zv_arena_reset(arena);
            if (strcmp(fr->kind, "call") && strcmp(fr->kind, "reply"))
                continue;
            cr_assert_eq(proto_decode(enc, fr->payload, fr->len, arena, &m, NULL), 0);
            int fast = proto_decode_load_call(enc, fr->payload, fr->len, &c);
            if (fast)
                assert_agrees(enc, fr->payload, fr->len, &c);
            if (fr->dir == WF_C2S && !strcmp(m.name, "loadBefore")) {
                cr_assert(fast, "%s line %zu: a loadBefore the direct reader left", paths[i],
                          fr->line);
                calls++;
            }
            const zv *r = m.args;
            uint64_t start, end = 0;
            if (fr->dir != WF_S2C || m.flag != 0 || r->type != ZV_TUPLE || r->u.seq.n != 3 ||
                r->u.seq.items[0]->type != ZV_BYTES || !zv_get_u64be(r->u.seq.items[1], &start) ||
                (r->u.seq.items[2]->type != ZV_NONE && !zv_get_u64be(r->u.seq.items[2], &end)))
                continue;
            zbuf_reset(&got);
            cr_assert_eq(proto_encode_load_reply(enc, &got, m.msgid, r->u.seq.items[0]->u.s.p,
                                                 r->u.seq.items[0]->u.s.len, start, end, NULL),
                         0);
            cr_assert_eq(got.len, fr->len + 4, "%s line %zu", paths[i], fr->line);
            cr_assert_arr_eq(got.data + 4, fr->payload, fr->len, "%s line %zu", paths[i],
                             fr->line);
            replies++;
        }
        wf_free(&f);
    }
    wf_list_free(paths, nfiles);
    cr_assert_geq(calls, 10, "loadBefore calls in the %s recordings", enc_name);
    cr_assert_geq(replies, 5, "loadBefore replies in the %s recordings", enc_name);
}

Test(proto_load, recorded_pickle_frames)
{
    replay("z5", PROTO_PICKLE);
}

Test(proto_load, recorded_msgpack_frames)
{
    replay("m5", PROTO_MSGPACK);
}
