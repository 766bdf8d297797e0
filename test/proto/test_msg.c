/* Messages: the spec's example frames byte for byte (sections 4.4, 5.2),
 * the heartbeat, and hostile payloads. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/proto.h"
#include "spechex.h"

static zv_arena *arena;
static zbuf want, got;

static void setup(void)
{
    arena = zv_arena_new();
    cr_assert_not_null(arena);
}

static void teardown(void)
{
    zv_arena_free(arena);
    zbuf_free(&want);
    zbuf_free(&got);
}

TestSuite(proto_msg, .init = setup, .fini = teardown);

/* Decode a whole spec frame (header included). */
static proto_msg decode_frame(proto_enc enc, const zbuf *frame)
{
    proto_msg m;
    zerr err;
    cr_assert_geq(frame->len, 4);
    cr_assert_eq(zbe32(frame->data), frame->len - 4);
    int rc = proto_decode(enc, frame->data + 4, frame->len - 4, arena, &m, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return m;
}

static void assert_same_frame(void)
{
    cr_assert_eq(got.len, want.len, "encoded %zu bytes, want %zu", got.len, want.len);
    cr_assert_arr_eq(got.data, want.data, want.len);
}

/* Compare an encoded frame with a spec payload shown without its header. */
static void assert_same_payload(void)
{
    cr_assert_eq(got.len, want.len + 4, "encoded %zu bytes, want %zu + 4", got.len, want.len);
    cr_assert_eq(zbe32(got.data), want.len);
    cr_assert_arr_eq(got.data + 4, want.data, want.len);
}

static const char *const Z5_REGISTER =
    "00 00 00 1e 80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72"
    "58 01 00 00 00 31 4b 00 86 74 2e";
static const char *const Z5_REGISTER_REPLY =
    "00 00 00 1e 80 03 28 4b 01 4b 00 58 06 00 00 00 2e 72 65 70 6c 79"
    "43 08 00 00 00 00 00 00 00 00 74 2e";
static const char *const M5_REGISTER =
    "00 00 00 10 94 01 c2 a8 72 65 67 69 73 74 65 72 92 a1 31 00";
static const char *const M5_REGISTER_REPLY =
    "00 00 00 14 94 01 00 a6 2e 72 65 70 6c 79 c4 08 00 00 00 00 00 00 00 00";

static void check_register_call(proto_enc enc, const char *spec)
{
    spechex(&want, spec);
    proto_msg m = decode_frame(enc, &want);
    int64_t i;
    cr_assert(zv_get_int(m.msgid, &i) && i == 1);
    cr_assert_eq(m.flag, 0);
    cr_assert_eq(m.async, 0);
    cr_assert_str_eq(m.name, "register");
    cr_assert_eq(m.args->type, ZV_TUPLE);
    cr_assert_eq(m.args->u.seq.n, 2);
    cr_assert_eq(m.args->u.seq.items[0]->type, ZV_STR);
    cr_assert_str_eq((const char *)m.args->u.seq.items[0]->u.s.p, "1");
    /* read_only arrives as the int 0, not False (spec 4.4) */
    cr_assert_eq(m.args->u.seq.items[1]->type, ZV_INT);
    cr_assert_eq(proto_encode_call(enc, &got, m.msgid, 0, "register", m.args, NULL), 0);
    assert_same_frame();
}

static void check_register_reply(proto_enc enc, const char *spec)
{
    spechex(&want, spec);
    proto_msg m = decode_frame(enc, &want);
    uint64_t tid;
    cr_assert_str_eq(m.name, ".reply");
    cr_assert_eq(m.flag, 0);
    cr_assert(zv_get_u64be(m.args, &tid) && tid == 0);
    zv *msgid = zv_int(arena, 1), *z64 = zv_oid(arena, 0);
    cr_assert_eq(proto_encode_reply(enc, &got, msgid, z64, NULL), 0);
    assert_same_frame();
}

Test(proto_msg, z5_register_call) { check_register_call(PROTO_PICKLE, Z5_REGISTER); }
Test(proto_msg, m5_register_call) { check_register_call(PROTO_MSGPACK, M5_REGISTER); }
Test(proto_msg, z5_register_reply) { check_register_reply(PROTO_PICKLE, Z5_REGISTER_REPLY); }
Test(proto_msg, m5_register_reply) { check_register_reply(PROTO_MSGPACK, M5_REGISTER_REPLY); }

Test(proto_msg, z5_invalidate_transaction)
{
    spechex(&want, "80 03 28 4b 00 88 58 15 00 00 00 \"invalidateTransaction\""
                   "43 08 04 0d 41 67 b3 ab 29 33  5d 43 08 00 00 00 00 00 00 00 00 61  86 74 2e");
    zv *oids = zv_list(arena, 1);
    oids->u.seq.items[0] = zv_oid(arena, 0);
    zv *args = zv_tuple2(arena, zv_oid(arena, 0x040d4167b3ab2933ull), oids);
    cr_assert_eq(proto_encode_async(PROTO_PICKLE, &got, "invalidateTransaction", args, NULL), 0);
    assert_same_payload();
}

Test(proto_msg, z5_poskey_error)
{
    spechex(&want, "80 03 28 4b 09 4b 02 58 06 00 00 00 2e 72 65 70 6c 79"
                   "58 1d 00 00 00 \"ZODB.POSException.POSKeyError\""
                   "43 08 00 00 00 00 00 00 00 63 85 86 74 2e");
    proto_exc e;
    cr_assert_eq(proto_exc_poskey(&e, arena, 0x63), 0);
    cr_assert_eq(proto_encode_error(PROTO_PICKLE, &got, zv_int(arena, 9), &e, NULL), 0);
    assert_same_payload();
}

Test(proto_msg, m5_poskey_error)
{
    spechex(&want, "94 09 02 a6 2e 72 65 70 6c 79 92 bd \"ZODB.POSException.POSKeyError\""
                   "91 c4 08 00 00 00 00 00 00 00 09");
    proto_exc e;
    cr_assert_eq(proto_exc_poskey(&e, arena, 9), 0);
    cr_assert_eq(proto_encode_error(PROTO_MSGPACK, &got, zv_int(arena, 9), &e, NULL), 0);
    assert_same_payload();
}

/* Spec 6.2: the tuple msgid of loadBefore is echoed as it came. */
Test(proto_msg, m5_load_before_tuple_msgid)
{
    spechex(&want, "94 92 c4 08 00 00 00 00 00 00 00 00 c4 08 04 0d 41 67 b3 ab 29 34"
                   "c2 aa \"loadBefore\" 92 c4 08 00 00 00 00 00 00 00 00"
                   "c4 08 04 0d 41 67 b3 ab 29 34");
    proto_msg m;
    cr_assert_eq(proto_decode(PROTO_MSGPACK, want.data, want.len, arena, &m, NULL), 0);
    cr_assert_str_eq(m.name, "loadBefore");
    cr_assert_eq(m.msgid->type, ZV_TUPLE);
    cr_assert(zv_equal(m.msgid, m.args));
    cr_assert_eq(proto_encode_call(PROTO_MSGPACK, &got, m.msgid, 0, "loadBefore", m.args, NULL), 0);
    assert_same_payload();
}

/* Spec 5.2: the txn id is usually above 2^32 and goes as uint64 (cf). */
Test(proto_msg, m5_txn_id_is_uint64)
{
    spechex(&want, "cf 00 00 7f 49 bb b0 c7 90");
    zv *args = zv_tuple(arena, 1);
    args->u.seq.items[0] = zv_int(arena, 0x7f49bbb0c790);
    cr_assert_eq(proto_encode_call(PROTO_MSGPACK, &got, zv_int(arena, 3), 0, "vote", args, NULL),
                 0);
    cr_assert(memmem(got.data, got.len, want.data, want.len) != NULL);
    proto_msg m;
    cr_assert_eq(proto_decode(PROTO_MSGPACK, got.data + 4, got.len - 4, arena, &m, NULL), 0);
    cr_assert_eq(m.args->u.seq.items[0]->type, ZV_INT);
    cr_assert_eq(m.args->u.seq.items[0]->u.i, 0x7f49bbb0c790);
}

/* uint64 above INT64_MAX: kept exactly (as a big int) and written back as cf. */
Test(proto_msg, m5_uint64_above_int64)
{
    spechex(&want, "94 00 c3 a1 \"f\" 91 cf ff ff ff ff ff ff ff fe");
    proto_msg m;
    cr_assert_eq(proto_decode(PROTO_MSGPACK, want.data, want.len, arena, &m, NULL), 0);
    const zv *v = m.args->u.seq.items[0];
    cr_assert_eq(v->type, ZV_BIGINT);
    cr_assert_eq(proto_encode_call(PROTO_MSGPACK, &got, m.msgid, 1, "f", m.args, NULL), 0);
    assert_same_payload();
}

/* Spec 4.4 / 6.5: the heartbeat in both encodings. */
static void check_heartbeat(proto_enc enc, const char *spec)
{
    proto_msg m;
    spechex(&want, spec);
    cr_assert_eq(proto_encode_heartbeat(enc, &got, NULL), 0);
    assert_same_payload();
    cr_assert_eq(proto_decode(enc, want.data, want.len, arena, &m, NULL), 0);
    cr_assert(proto_is_heartbeat(&m));
    cr_assert_eq(m.args->type, ZV_NONE);
}

Test(proto_msg, z5_heartbeat)
{
    check_heartbeat(PROTO_PICKLE, "80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c 79"
                                  "4e 74 2e");
}

Test(proto_msg, m5_heartbeat)
{
    check_heartbeat(PROTO_MSGPACK, "94 ff 00 a6 2e 72 65 70 6c 79 c0");
}

Test(proto_msg, ordinary_calls_are_not_heartbeats)
{
    proto_msg m;
    spechex(&want, M5_REGISTER);
    cr_assert_eq(proto_decode(PROTO_MSGPACK, want.data + 4, want.len - 4, arena, &m, NULL), 0);
    cr_assert_not(proto_is_heartbeat(&m));
}

/* ---- hostile payloads --------------------------------------------------- */

static int decode_hex(proto_enc enc, const char *spec, zerr *err)
{
    proto_msg m;
    spechex(&want, spec);
    return proto_decode(enc, want.data, want.len, arena, &m, err);
}

Test(proto_msg, not_a_four_tuple)
{
    zerr err;
    /* (1, False, "f") */
    cr_assert_eq(decode_hex(PROTO_PICKLE, "80 03 4b 01 89 58 01 00 00 00 \"f\" 87 2e", &err),
                 ZE_PROTO);
    /* a list of 4 */
    cr_assert_eq(decode_hex(PROTO_PICKLE, "80 03 5d 28 4b 01 89 58 01 00 00 00 \"f\" 29 65 2e",
                            &err), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_PICKLE, "80 03 4b 01 2e", &err), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "93 01 c2 a1 \"f\"", &err), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "95 01 c2 a1 \"f\" 90 c0", &err), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "c0", &err), ZE_PROTO);
}

Test(proto_msg, name_must_be_a_clean_str)
{
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 c4 01 \"f\" 90", NULL), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 01 90", NULL), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a3 \"a\" 00 \"b\" 90", NULL), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_PICKLE,
                            "80 03 28 4b 01 89 43 01 \"f\" 29 74 2e", NULL), ZE_PROTO);
}

Test(proto_msg, call_args_must_be_a_tuple)
{
    /* pickle list args for a call: refused; for a reply any value is a result */
    cr_assert_eq(decode_hex(PROTO_PICKLE, "80 03 28 4b 01 89 58 01 00 00 00 \"f\" 5d 74 2e", NULL),
                 ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" c0", NULL), ZE_PROTO);
    cr_assert_eq(decode_hex(PROTO_PICKLE,
                            "80 03 28 4b 01 4b 00 58 06 00 00 00 \".reply\" 5d 74 2e", NULL), 0);
}

/* Spec 4.5: no globals, no calls, ever (the reference server executes them). */
Test(proto_msg, pickle_global_and_reduce_are_refused)
{
    zerr err;
    /* (1, False, "f", (builtins.eval("1"),)) */
    int rc = decode_hex(PROTO_PICKLE,
                        "80 03 28 4b 01 89 58 01 00 00 00 \"f\""
                        "63 \"builtins\" 0a \"eval\" 0a 58 01 00 00 00 \"1\" 85 52 85 74 2e",
                        &err);
    cr_assert_neq(rc, 0);
    /* a bare GLOBAL as the msgid */
    rc = decode_hex(PROTO_PICKLE,
                    "80 03 28 63 \"os\" 0a \"system\" 0a 89 58 01 00 00 00 \"f\" 29 74 2e", &err);
    cr_assert_neq(rc, 0);
    /* BUILD and a persistent id */
    rc = decode_hex(PROTO_PICKLE, "80 03 28 4b 01 89 58 01 00 00 00 \"f\" 29 7d 62 74 2e", &err);
    cr_assert_neq(rc, 0);
    rc = decode_hex(PROTO_PICKLE, "80 03 28 4b 01 89 58 01 00 00 00 \"f\" 4e 51 85 74 2e", &err);
    cr_assert_neq(rc, 0);
}

/* A value reused through DUP or the memo doubles at each level: 40 levels
 * of (x, x) are 2^41 nodes to echo. The pickle decoder bounds the expanded
 * size (PICKLE_MAX_EXPANSION). */
Test(proto_msg, pickle_shared_values_are_refused)
{
    zbuf p = ZBUF_INIT;
    static const uint8_t head[] = {0x80, 0x03, 0x28, 0x29};
    static const uint8_t tail[] = {0x89, 0x58, 0x01, 0, 0, 0, 'f', 0x29, 0x74, 0x2e};
    proto_msg m;
    zerr err;

    zbuf_append(&p, head, sizeof head);
    for (int i = 0; i < 40; i++)
        zbuf_append(&p, "\x32\x86", 2); /* DUP, TUPLE2 */
    zbuf_append(&p, tail, sizeof tail);
    cr_assert_eq(proto_decode(PROTO_PICKLE, p.data, p.len, arena, &m, &err), ZE_TOOBIG);
    zbuf_free(&p);
}

/* Every proper prefix of a good message is an error, never a crash. */
static void check_prefixes(proto_enc enc, const char *spec)
{
    zbuf full = ZBUF_INIT;
    spechex(&full, spec);
    for (size_t n = 0; n < full.len - 4; n++) {
        proto_msg m;
        zerr err;
        int rc = proto_decode(enc, full.data + 4, n, arena, &m, &err);
        cr_assert(rc == ZE_CORRUPT || rc == ZE_PROTO, "prefix of %zu bytes: %d", n, rc);
    }
    zbuf_free(&full);
}

Test(proto_msg, truncated_msgpack) { check_prefixes(PROTO_MSGPACK, M5_REGISTER_REPLY); }
Test(proto_msg, truncated_pickle) { check_prefixes(PROTO_PICKLE, Z5_REGISTER_REPLY); }

Test(proto_msg, msgpack_ext_and_reserved_types)
{
    static const char *const bad[] = {
        "94 01 c2 a1 \"f\" 91 d4 01 00",          /* fixext 1 */
        "94 01 c2 a1 \"f\" 91 d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", /* fixext 16 */
        "94 01 c2 a1 \"f\" 91 c7 01 05 00",       /* ext 8 */
        "94 01 c2 a1 \"f\" 91 c8 00 01 05 00",    /* ext 16 */
        "94 01 c2 a1 \"f\" 91 c9 00 00 00 01 05 00",
        "94 01 c2 a1 \"f\" 91 c1",                /* never used */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zerr err;
        cr_assert_eq(decode_hex(PROTO_MSGPACK, bad[i], &err), ZE_CORRUPT, "%s", bad[i]);
    }
}

/* A count header larger than the frame is refused before any allocation. */
Test(proto_msg, msgpack_huge_counts)
{
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "dd ff ff ff ff", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "df ff ff ff ff", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" c6 ff ff ff ff", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 db ff ff ff ff", NULL), ZE_CORRUPT);
}

Test(proto_msg, msgpack_trailing_bytes)
{
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 90 c0", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_PICKLE, "80 03 28 4b 01 89 58 01 00 00 00 \"f\" 29 74 2e 4e",
                            NULL), ZE_CORRUPT);
}

Test(proto_msg, msgpack_bad_utf8_and_map_keys)
{
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 a2 c3 28", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 a3 ed a0 80", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 a2 c0 80", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 81 01 02", NULL), ZE_CORRUPT);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 81 a1 \"k\" 02", NULL), 0);
    cr_assert_eq(decode_hex(PROTO_MSGPACK, "94 01 c2 a1 \"f\" 91 a4 f0 9f 98 80", NULL), 0);
}

Test(proto_msg, msgpack_nesting_is_bounded)
{
    static const uint8_t head[] = {0x94, 0x01, 0xc2, 0xa1, 'f'};
    zbuf deep = ZBUF_INIT;
    zbuf_append(&deep, head, sizeof head);
    for (int i = 0; i < PROTO_MAX_DEPTH + 10; i++)
        zbuf_append_byte(&deep, 0x91);
    zbuf_append_byte(&deep, 0xc0);
    proto_msg m;
    cr_assert_eq(proto_decode(PROTO_MSGPACK, deep.data, deep.len, arena, &m, NULL), ZE_CORRUPT);
    zbuf_free(&deep);
}

Test(proto_msg, msgpack_scalars)
{
    proto_msg m;
    spechex(&want, "94 01 c2 a1 \"f\" dc 00 09 e0 d0 80 d1 80 00 d2 80 00 00 00"
                   "d3 80 00 00 00 00 00 00 00 cb 3f f8 00 00 00 00 00 00 ca 3f c0 00 00 c3 c0");
    cr_assert_eq(proto_decode(PROTO_MSGPACK, want.data, want.len, arena, &m, NULL), 0);
    zv **it = m.args->u.seq.items;
    cr_assert_eq(it[0]->u.i, -32);
    cr_assert_eq(it[1]->u.i, -128);
    cr_assert_eq(it[2]->u.i, -32768);
    cr_assert_eq(it[3]->u.i, INT32_MIN);
    cr_assert_eq(it[4]->u.i, INT64_MIN);
    cr_assert_eq(it[5]->u.f, 1.5);
    cr_assert_eq(it[6]->u.f, 1.5);
    cr_assert_eq(it[7]->type, ZV_BOOL);
    cr_assert_eq(it[8]->type, ZV_NONE);
}

Test(proto_msg, unknown_encoding)
{
    proto_msg m;
    static const uint8_t b[] = {0xc0};
    cr_assert_eq(proto_decode((proto_enc)'X', b, 1, arena, &m, NULL), ZE_INVAL);
    cr_assert_eq(proto_encode_heartbeat((proto_enc)'X', &got, NULL), ZE_INVAL);
    cr_assert_eq(got.len, 0);
}

/* A failed encode leaves the output as it was. */
Test(proto_msg, failed_encode_leaves_output_alone)
{
    zbuf_append(&got, "xyz", 3);
    zv *set = zv_tuple(arena, 1);
    set->type = ZV_SET;
    zv *args = zv_tuple(arena, 1);
    args->u.seq.items[0] = set;
    zerr err;
    cr_assert_eq(proto_encode_call(PROTO_MSGPACK, &got, zv_int(arena, 1), 0, "f", args, &err),
                 ZE_INVAL);
    cr_assert_eq(got.len, 3);
    cr_assert_eq(proto_encode_call(PROTO_MSGPACK, &got, zv_int(arena, 1), 0, "f", set, &err),
                 ZE_INVAL, "call arguments must be a tuple");
    cr_assert_eq(got.len, 3);
}

/* ---- memory bounds (issue 10) ------------------------------------------ */

/* (K 1, False, 'ping', (B,) * times): one 1 MB bytes reached `times` times. */
static void shared_msgid_message(zbuf *p, int times)
{
    static const uint8_t head[] = {0x80, 0x03, 0x28, 0x28, 'B', 0, 0, 0x10, 0};
    zbuf_append(p, head, sizeof head);
    for (int i = 0; i < 1 << 20; i++)
        zbuf_append_byte(p, 'a');
    zbuf_append(p, "q\x00", 2);
    for (int i = 1; i < times; i++)
        zbuf_append(p, "h\x00", 2);
    static const uint8_t tail[] = {'t', 0x89, 0x58, 0x04, 0, 0, 0, 'p', 'i', 'n', 'g',
                                   0x29, 't', '.'};
    zbuf_append(p, tail, sizeof tail);
}

/* The issue-10 msgid: decoding refuses what its echo would take (600 MB). */
Test(proto_msg, memoized_msgid_is_refused)
{
    zbuf p = ZBUF_INIT;
    proto_msg m;
    zerr err;
    shared_msgid_message(&p, 600);
    cr_assert_eq(proto_decode(PROTO_PICKLE, p.data, p.len, arena, &m, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "expands to more than"), "%s", err.msg);
    cr_assert_leq(zv_arena_bytes(arena), PROTO_DECODE_BOUND(p.len));
    /* Seven references fit: the echo then stays within the bound too. */
    zbuf_reset(&p);
    zv_arena_reset(arena);
    shared_msgid_message(&p, 7);
    cr_assert_eq(proto_decode(PROTO_PICKLE, p.data, p.len, arena, &m, &err), 0, "%s", err.msg);
    size_t size;
    cr_assert_eq(proto_reply_size(PROTO_PICKLE, m.msgid, m.msgid, &size, NULL), 0);
    cr_assert_leq(size, 2 * PROTO_DECODE_BOUND(p.len));
    cr_assert_leq(zv_copy_cost(m.msgid, SIZE_MAX), PROTO_DECODE_BOUND(p.len));
    zbuf_free(&p);
}

/* msgpack nils: a count no bound can hold is refused before its array. */
Test(proto_msg, msgpack_tiny_values_are_bounded)
{
    size_t n = 4u << 20;
    zbuf p = ZBUF_INIT;
    static const uint8_t head[] = {0x94, 0x01, 0xc2, 0xa4, 'p', 'i', 'n', 'g', 0x91, 0xdd};
    zbuf_append(&p, head, sizeof head);
    uint8_t cnt[4];
    zbe32_put(cnt, (uint32_t)n);
    zbuf_append(&p, cnt, 4);
    for (size_t i = 0; i < n; i++)
        zbuf_append_byte(&p, 0xc0);
    proto_msg m;
    zerr err;
    cr_assert_eq(proto_decode(PROTO_MSGPACK, p.data, p.len, arena, &m, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "items at offset"), "%s", err.msg);
    cr_assert_lt(zv_arena_bytes(arena), 64 * 1024, "the array was allocated");
    /* Nested small arrays: refused at the bound, the arena within it. */
    zbuf_reset(&p);
    zv_arena_reset(arena);
    zbuf_append(&p, head, sizeof head);
    zbe32_put(cnt, (uint32_t)(n / 4));
    zbuf_append(&p, cnt, 4);
    for (size_t i = 0; i < n / 4; i++)
        zbuf_append(&p, "\x93\xc0\xc0\xc0", 4);
    cr_assert_eq(proto_decode(PROTO_MSGPACK, p.data, p.len, arena, &m, &err), ZE_TOOBIG);
    cr_assert_leq(zv_arena_bytes(arena), PROTO_DECODE_BOUND(p.len));
    /* A modest array of nils is fine. */
    zbuf_reset(&p);
    zv_arena_reset(arena);
    zbuf_append(&p, head, sizeof head);
    zbe32_put(cnt, 10000);
    zbuf_append(&p, cnt, 4);
    for (size_t i = 0; i < 10000; i++)
        zbuf_append_byte(&p, 0xc0);
    cr_assert_eq(proto_decode(PROTO_MSGPACK, p.data, p.len, arena, &m, &err), 0, "%s", err.msg);
    zbuf_free(&p);
}

/* proto_reply_size is the size proto_encode_reply then writes, in both
 * encodings, across the boundaries where the encoders change form. */
Test(proto_msg, reply_size_is_known_before_encoding)
{
    static const int64_t ints[] = {0, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33,
                                   -128, -129, -32768, -32769, INT32_MAX, INT32_MIN,
                                   (int64_t)INT32_MAX + 1, INT64_MAX, INT64_MIN};
    static const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000};
    char *text = malloc(70000);
    memset(text, 'x', 70000);
    for (int e = 0; e < 2; e++) {
        proto_enc enc = e ? PROTO_MSGPACK : PROTO_PICKLE;
        zv *msgids[] = {zv_int(arena, 7), zv_tuple2(arena, zv_oid(arena, 1), zv_oid(arena, 2))};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            for (int k = 0; k < 2; k++) {
                zv *l = zv_list(arena, lens[i % 11] % 300);
                for (size_t j = 0; j < l->u.seq.n; j++)
                    l->u.seq.items[j] = zv_int(arena, ints[(i + j) % 20]);
                zv *d = zv_dict(arena, 2);
                d->u.seq.items[0] = zv_str(arena, text, lens[i % 11]);
                d->u.seq.items[1] = zv_bytes(arena, text, lens[(i + 3) % 11]);
                d->u.seq.items[2] = zv_cstr(arena, "l");
                d->u.seq.items[3] = l;
                zv *r = zv_tuple2(arena, zv_int(arena, ints[i]), d);
                size_t size;
                zbuf_reset(&got);
                cr_assert_eq(proto_reply_size(enc, msgids[k], r, &size, NULL), 0);
                cr_assert_eq(proto_encode_reply(enc, &got, msgids[k], r, NULL), 0);
                cr_assert_eq(size, got.len, "%c: int %lld: %zu != %zu", enc,
                             (long long)ints[i], size, got.len);
            }
    }
    free(text);
}
