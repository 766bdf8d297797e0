/* Encoding: the bytes ZEO's fast-mode protocol-3 pickler writes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pktest.h"

static zv_arena *a;
static zbuf out;

static void setup(void)
{
    a = zv_arena_new();
    out = (zbuf)ZBUF_INIT;
}

static void teardown(void)
{
    zv_arena_free(a);
    zbuf_free(&out);
}

TestSuite(pickle_encode, .init = setup, .fini = teardown);

static void expect_bytes(const zv *v, const char *spec)
{
    uint8_t want[512];
    size_t n = pt_bytes(spec, want, sizeof want);
    zerr err = {0};
    zbuf_reset(&out);
    cr_assert_eq(pickle_encode(v, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(out.len, n, "length %zu, want %zu for %s", out.len, n, spec);
    cr_assert_arr_eq(out.data, want, n, "bytes differ from %s", spec);
}

Test(pickle_encode, spec_frames)
{
    expect_bytes(pt_tuple4(a, zv_int(a, 1), zv_bool(a, 0), zv_cstr(a, "register"),
                           zv_tuple2(a, zv_cstr(a, "1"), zv_int(a, 0))),
                 "80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72"
                 "58 01 00 00 00 31 4b 00 86 74 2e");
    expect_bytes(pt_tuple4(a, zv_int(a, 1), zv_int(a, 0), zv_cstr(a, ".reply"), zv_oid(a, 0)),
                 "80 03 28 4b 01 4b 00 58 06 00 00 00 2e 72 65 70 6c 79"
                 "43 08 00 00 00 00 00 00 00 00 74 2e");
    zv *oids = zv_list(a, 1);
    oids->u.seq.items[0] = zv_oid(a, 0);
    expect_bytes(pt_tuple4(a, zv_int(a, 0), zv_bool(a, 1), zv_cstr(a, "invalidateTransaction"),
                           zv_tuple2(a, zv_oid(a, 0x040d4167b3ab2933ULL), oids)),
                 "80 03 28 4b 00 88 58 15 00 00 00 \"invalidateTransaction\""
                 "43 08 04 0d 41 67 b3 ab 29 33  5d 43 08 00 00 00 00 00 00 00 00 61"
                 "86 74 2e");
    zv *oid_args = zv_tuple(a, 1);
    oid_args->u.seq.items[0] = zv_oid(a, 0x63);
    expect_bytes(pt_tuple4(a, zv_int(a, 9), zv_int(a, 2), zv_cstr(a, ".reply"),
                           zv_tuple2(a, zv_cstr(a, "ZODB.POSException.POSKeyError"), oid_args)),
                 "80 03 28 4b 09 4b 02 58 06 00 00 00 2e 72 65 70 6c 79"
                 "58 1d 00 00 00 \"ZODB.POSException.POSKeyError\""
                 "43 08 00 00 00 00 00 00 00 63 85 86 74 2e");
    expect_bytes(pt_tuple4(a, zv_int(a, -1), zv_int(a, 0), zv_cstr(a, ".reply"), zv_none(a)),
                 "80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 4e 74 2e");
}

/* The expected bytes are CPython's pickle.dumps(x, 3). */
Test(pickle_encode, ints_by_magnitude)
{
    static const struct {
        int64_t value;
        const char *hex;
    } cases[] = {
        {0, "4b 00"},
        {255, "4b ff"},
        {256, "4d 00 01"},
        {65535, "4d ff ff"},
        {65536, "4a 00 00 01 00"},
        {-1, "4a ff ff ff ff"},
        {2147483647, "4a ff ff ff 7f"},
        {-2147483647 - 1, "4a 00 00 00 80"},
        {2147483648LL, "8a 05 00 00 00 80 00"},
        {-2147483649LL, "8a 05 ff ff ff 7f ff"},
        {INT64_MAX, "8a 08 ff ff ff ff ff ff ff 7f"},
        {INT64_MIN, "8a 08 00 00 00 00 00 00 00 80"},
        {140672800096400LL, "8a 06 90 80 47 f0 f0 7f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char spec[80];
        snprintf(spec, sizeof spec, "80 03 %s 2e", cases[i].hex);
        expect_bytes(zv_int(a, cases[i].value), spec);
    }
}

Test(pickle_encode, bigint_floats_bools_none)
{
    /* -2**70, stored with a redundant sign byte: written minimal. */
    uint8_t le[] = {0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff};
    expect_bytes(zv_bigint(a, le, sizeof le), "80 03 8a 09 00 00 00 00 00 00 00 00 c0 2e");
    expect_bytes(zv_float(a, 1.5), "80 03 47 3f f8 00 00 00 00 00 00 2e");
    expect_bytes(zv_float(a, -0.0), "80 03 47 80 00 00 00 00 00 00 00 2e");
    expect_bytes(zv_bool(a, 1), "80 03 88 2e");
    expect_bytes(zv_none(a), "80 03 4e 2e");
}

Test(pickle_encode, bytes_switch_to_binbytes_at_256)
{
    uint8_t big[256];
    memset(big, 7, sizeof big);
    zerr err;
    cr_assert_eq(pickle_encode(zv_bytes(a, big, 255), &out, &err), 0);
    cr_assert_eq(out.data[2], 0x43);
    cr_assert_eq(out.data[3], 255);
    zbuf_reset(&out);
    cr_assert_eq(pickle_encode(zv_bytes(a, big, 256), &out, &err), 0);
    uint8_t head[] = {0x80, 3, 0x42, 0x00, 0x01, 0, 0};
    cr_assert_arr_eq(out.data, head, 5);
    cr_assert_eq(out.len, 2 + 5 + 256 + 1);
    /* str is always BINUNICODE in protocol 3, even when short. */
    expect_bytes(zv_cstr(a, ""), "80 03 58 00 00 00 00 2e");
}

Test(pickle_encode, tuples_by_length)
{
    expect_bytes(zv_tuple(a, 0), "80 03 29 2e");
    zv *t = zv_tuple(a, 3);
    for (int i = 0; i < 3; i++)
        t->u.seq.items[i] = zv_int(a, i);
    expect_bytes(t, "80 03 4b 00 4b 01 4b 02 87 2e");
    zv *t4 = pt_tuple4(a, zv_int(a, 0), zv_int(a, 1), zv_int(a, 2), zv_int(a, 3));
    expect_bytes(t4, "80 03 28 4b 00 4b 01 4b 02 4b 03 74 2e");
}

Test(pickle_encode, lists_and_dicts_in_batches)
{
    expect_bytes(zv_list(a, 0), "80 03 5d 2e");
    zv *l = zv_list(a, 2);
    l->u.seq.items[0] = zv_int(a, 1);
    l->u.seq.items[1] = zv_int(a, 2);
    expect_bytes(l, "80 03 5d 28 4b 01 4b 02 65 2e");
    zv *d = zv_dict(a, 1);
    d->u.seq.items[0] = zv_cstr(a, "k");
    d->u.seq.items[1] = zv_none(a);
    expect_bytes(d, "80 03 7d 58 01 00 00 00 6b 4e 73 2e");

    /* 1001 items: MARK + 1000 + APPENDS, then the last alone with APPEND. */
    zv *big = zv_list(a, 1001);
    for (size_t i = 0; i < 1001; i++)
        big->u.seq.items[i] = zv_none(a);
    zerr err;
    zbuf_reset(&out);
    cr_assert_eq(pickle_encode(big, &out, &err), 0);
    cr_assert_eq(out.len, 2 + 1 + 1 + 1000 + 1 + 1 + 1 + 1);
    cr_assert_eq(out.data[3], '(');
    cr_assert_eq(out.data[4 + 1000], 'e');
    cr_assert_eq(out.data[4 + 1001], 'N');
    cr_assert_eq(out.data[4 + 1002], 'a');

    zv *bd = zv_dict(a, 2000);
    for (size_t i = 0; i < 4000; i++)
        bd->u.seq.items[i] = zv_none(a);
    zbuf_reset(&out);
    cr_assert_eq(pickle_encode(bd, &out, &err), 0);
    cr_assert_eq(out.len, 2 + 1 + 2 * (1 + 2000 + 1) + 1);
    cr_assert_eq(out.data[4 + 2000], 'u');
    cr_assert_eq(out.data[5 + 2000], '(');
}

Test(pickle_encode, decode_of_encode_is_identity)
{
    zv *d = zv_dict(a, 2);
    d->u.seq.items[0] = zv_cstr(a, "x");
    d->u.seq.items[1] = zv_float(a, 3.25);
    d->u.seq.items[2] = zv_bytes(a, "\0\1", 2);
    uint8_t le[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    d->u.seq.items[3] = zv_bigint(a, le, sizeof le);
    zv *v = pt_tuple4(a, d, zv_list(a, 0), zv_tuple(a, 0), zv_int(a, -70000));
    zerr err;
    cr_assert_eq(pickle_encode(v, &out, &err), 0);
    zv *back;
    size_t used;
    cr_assert_eq(pickle_decode(out.data, out.len, 0, a, &back, &used, &err), 0, "%s", err.msg);
    cr_assert_eq(used, out.len);
    cr_assert(zv_equal(back, v));
}

Test(pickle_encode, refuses_non_data_and_keeps_buffer)
{
    zv *g = zv_alloc(a, sizeof *g);
    *g = (zv){.type = ZV_GLOBAL};
    g->u.global.module = "builtins";
    g->u.global.name = "exec";
    zv *set = zv_alloc(a, sizeof *set);
    *set = (zv){.type = ZV_SET};
    zbuf_append(&out, "xy", 2);
    zerr err = {0};
    cr_assert_eq(pickle_encode(zv_tuple2(a, zv_int(a, 1), g), &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 2);
    cr_assert_eq(pickle_encode(set, &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 2);
    cr_assert_eq(pickle_encode(NULL, &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 2);
}

Test(pickle_encode, refuses_values_nested_too_deep)
{
    zv *v = zv_none(a);
    for (int i = 0; i < PICKLE_MAX_DEPTH + 5; i++) {
        zv *t = zv_tuple(a, 1);
        t->u.seq.items[0] = v;
        v = t;
    }
    zerr err = {0};
    cr_assert_eq(pickle_encode(v, &out, &err), ZE_TOOBIG);
    cr_assert_eq(out.len, 0);
}
