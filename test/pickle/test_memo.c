/* Records as ZODB reads and writes them: one memo for the class and the
 * state pickle (record_decode, pickle_encode_memo), and Python 2 strings as
 * conflict resolution reads them (PICKLE_PY2_ASCII). The expected bytes are
 * CPython's pickle.dumps(..., 3) and ZODB's records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pickle/record.h"
#include "pktest.h"

static zv_arena *a;
static zbuf out;
static pickle_memo memo;

static void setup(void)
{
    a = zv_arena_new();
    out = (zbuf)ZBUF_INIT;
    memo = (pickle_memo)PICKLE_MEMO_INIT;
}

static void teardown(void)
{
    zv_arena_free(a);
    zbuf_free(&out);
    pickle_memo_free(&memo);
}

TestSuite(pickle_memo, .init = setup, .fini = teardown);

static void expect_out(const char *spec)
{
    uint8_t want[4096];
    size_t n = pt_bytes(spec, want, sizeof want);
    cr_assert_eq(out.len, n, "length %zu, want %zu", out.len, n);
    cr_assert_arr_eq(out.data, want, n, "bytes differ from %s", spec);
}

static void encode(const zv *v)
{
    zerr err = {0};
    cr_assert_eq(pickle_encode_memo(v, &memo, &out, &err), 0, "%s", err.msg);
}

static zv *list_of(size_t n, zv *item)
{
    zv *l = zv_list(a, n);
    for (size_t i = 0; i < n; i++)
        l->u.seq.items[i] = item;
    return l;
}

/* ZODB's records re-encode to their own bytes: the class is memo entry 0,
 * the state's entries follow it. */
Test(pickle_memo, zodb_records_round_trip)
{
    static const char *const records[] = {
        /* IIBucket({1: 1, 2: 2, 3: 3}) */
        "80 03 \"cBTrees.IIBTree\nIIBucket\n\" 71 00 2e"
        "80 03 28 4b 01 4b 01 4b 02 4b 02 4b 03 4b 03 74 71 01 85 71 02 2e",
        /* OOBTree({'a': 1, 'b': 2}): one bucket, inline */
        "80 03 \"cBTrees.OOBTree\nOOBTree\n\" 71 00 2e"
        "80 03 28 58 01 00 00 00 61 71 01 4b 01 58 01 00 00 00 62 71 02 4b 02 74 71 03"
        "85 71 04 85 71 05 85 71 06 2e",
        /* Length(11) */
        "80 03 \"cBTrees.Length\nLength\n\" 71 00 2e 80 03 4b 0b 2e",
    };
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
        uint8_t rec[512];
        size_t n = pt_bytes(records[i], rec, sizeof rec);
        zv *meta, *state;
        zerr err = {0};
        cr_assert_eq(record_decode(a, rec, n, 0, &meta, &state, &err), 0, "%s", err.msg);
        zbuf_reset(&out);
        pickle_memo_free(&memo);
        encode(meta);
        encode(state);
        expect_out(records[i]);
        /* record_encode: the same two dumps through one memo */
        zbuf_reset(&out);
        cr_assert_eq(record_encode(meta, state, &out, &err), 0, "%s", err.msg);
        expect_out(records[i]);
    }
}

Test(pickle_memo, record_encode_failing_leaves_out_alone)
{
    zbuf_append(&out, "x", 1);
    zv *g = zv_alloc(a, sizeof *g);
    *g = (zv){.type = ZV_GLOBAL, .u.global = {"BTrees.Length", "Length"}};
    zerr err = {0};
    cr_assert_eq(record_encode(g, zv_dict(a, 0), &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 1);
}

Test(pickle_memo, state_fetches_the_class_from_the_memo)
{
    /* A bucket linking to the next bucket, (oid, class) with the class
     * fetched from the class pickle's memo entry 0 (BINGET 0). */
    uint8_t rec[256];
    size_t n = pt_bytes("80 03 \"cBTrees.OOBTree\nOOBucket\n\" 71 00 2e"
                        "80 03 29 43 08 00 00 00 00 00 00 00 07 71 01 68 00 86 71 02 51 86 71 03 2e",
                        rec, sizeof rec);
    zv *meta, *state;
    zerr err = {0};
    cr_assert_eq(record_decode(a, rec, n, 0, &meta, &state, &err), 0, "%s", err.msg);
    cr_assert_eq(state->type, ZV_TUPLE);
    const zv *link = state->u.seq.items[1];
    cr_assert_eq(link->type, ZV_PERSID);
    cr_assert_eq(link->u.persid->u.seq.items[1], meta, "the memo entry is the class node");
    encode(meta);
    encode(state);
    cr_assert_eq(out.len, n);
    cr_assert_arr_eq(out.data, rec, n);
    /* Without the class pickle's memo the state cannot be read. */
    cr_assert_neq(pickle_decode(rec + 30, n - 30, PICKLE_ALLOW_OBJECTS, a, &state, NULL, NULL), 0);
}

Test(pickle_memo, one_node_is_one_object)
{
    zv *s = zv_cstr(a, "shared");
    zv *t = zv_tuple(a, 3);
    t->u.seq.items[0] = s;
    t->u.seq.items[1] = zv_cstr(a, "shared"); /* equal, but another object */
    t->u.seq.items[2] = s;
    encode(t);
    expect_out("80 03 58 06 00 00 00 \"shared\" 71 00 58 06 00 00 00 \"shared\" 71 01 68 00"
               "87 71 02 2e");
}

Test(pickle_memo, shared_singletons_are_one_object)
{
    /* CPython shares '' and one-character str below U+0100; zodbpickle's
     * unpickler also b'' and one-byte bytes; the empty tuple is never
     * memoized. pickle.dumps(('x', 'x', b'', b'', (), ()), 3) */
    zv *t = zv_tuple(a, 6);
    t->u.seq.items[0] = zv_cstr(a, "x");
    t->u.seq.items[1] = zv_cstr(a, "x");
    t->u.seq.items[2] = zv_bytes(a, "", 0);
    t->u.seq.items[3] = zv_bytes(a, "", 0);
    t->u.seq.items[4] = zv_tuple(a, 0);
    t->u.seq.items[5] = zv_tuple(a, 0);
    encode(t);
    expect_out("80 03 28 58 01 00 00 00 78 71 00 68 00 43 00 71 01 68 01 29 29 74 71 02 2e");
    zbuf_reset(&out);
    zv *u = zv_tuple(a, 3);
    u->u.seq.items[0] = zv_cstr(a, "\xc3\xa9"); /* U+00E9: shared */
    u->u.seq.items[1] = zv_cstr(a, "\xc3\xa9");
    u->u.seq.items[2] = zv_bytes(a, "z", 1);
    encode(u);
    expect_out("80 03 58 02 00 00 00 c3 a9 71 03 68 03 43 01 7a 71 04 87 71 05 2e");
}

Test(pickle_memo, ints_floats_none_bools_are_never_memoized)
{
    zv *big = zv_int(a, 1LL << 40);
    zv *t = zv_tuple(a, 3);
    t->u.seq.items[0] = big;
    t->u.seq.items[1] = big;
    t->u.seq.items[2] = zv_none(a);
    encode(t);
    expect_out("80 03 8a 06 00 00 00 00 00 01 8a 06 00 00 00 00 00 01 4e 87 71 00 2e");
}

Test(pickle_memo, lists_batch_as_the_c_pickler_does)
{
    encode(list_of(0, NULL));
    expect_out("80 03 5d 71 00 2e");
    zbuf_reset(&out);
    encode(list_of(1, zv_int(a, 7)));
    expect_out("80 03 5d 71 01 4b 07 61 2e");
    zbuf_reset(&out);
    encode(list_of(2, zv_int(a, 7)));
    expect_out("80 03 5d 71 02 28 4b 07 4b 07 65 2e");
    /* 1001 items: MARK 1000 APPENDS, then MARK 1 APPENDS (not APPEND). */
    zbuf_reset(&out);
    encode(list_of(1001, zv_int(a, 0)));
    cr_assert_eq(out.len, 2 + 3 + 1 + 2000 + 1 + 1 + 2 + 1 + 1, "%zu", out.len);
    cr_assert_arr_eq(out.data + out.len - 8, "\x4b\x00\x65\x28\x4b\x00\x65\x2e", 8);
}

Test(pickle_memo, long_memo_keys_past_255)
{
    /* pickle.dumps((s, s[0], s[299]), 3) with s = [str(i) for i in range(300)]:
     * the tail is LONG_BINPUT 300, 'e', BINGET 1, LONG_BINGET 300, TUPLE3,
     * LONG_BINPUT 301. */
    zv *l = zv_list(a, 300);
    char text[8];
    for (int i = 0; i < 300; i++) {
        snprintf(text, sizeof text, "%d", i);
        l->u.seq.items[i] = zv_cstr(a, text);
    }
    zv *t = zv_tuple(a, 3);
    t->u.seq.items[0] = l;
    t->u.seq.items[1] = l->u.seq.items[0];
    t->u.seq.items[2] = l->u.seq.items[299];
    encode(t);
    uint8_t tail[64];
    size_t n = pt_bytes("58 03 00 00 00 \"299\" 72 2c 01 00 00 65 68 01 6a 2c 01 00 00 87"
                        "72 2d 01 00 00 2e",
                        tail, sizeof tail);
    cr_assert_arr_eq(out.data + out.len - n, tail, n);
}

Test(pickle_memo, persistent_ids_and_globals)
{
    zv *g = zv_alloc(a, sizeof *g);
    *g = (zv){.type = ZV_GLOBAL, .u.global = {"zeolite_app.models", "Document"}};
    zv *pid = zv_tuple2(a, zv_oid(a, 7), g);
    zv *ref = zv_alloc(a, sizeof *ref);
    *ref = (zv){.type = ZV_PERSID, .u.persid = pid};
    zv *t = zv_tuple2(a, ref, ref); /* one reference twice: the id is fetched */
    encode(t);
    expect_out("80 03 43 08 00 00 00 00 00 00 00 07 71 00 \"czeolite_app.models\nDocument\n\""
               "71 01 86 71 02 51 68 02 51 86 71 03 2e");
}

Test(pickle_memo, unencodable_values_leave_out_alone)
{
    zbuf_append(&out, "x", 1);
    zv *t = zv_tuple2(a, zv_cstr(a, "ok"), zv_dict(a, 0));
    zerr err = {0};
    cr_assert_eq(pickle_encode_memo(t, &memo, &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 1);
    zv *g = zv_alloc(a, sizeof *g);
    *g = (zv){.type = ZV_GLOBAL, .u.global = {"bad\nmodule", "x"}};
    cr_assert_eq(pickle_encode_memo(g, &memo, &out, &err), ZE_INVAL);
    cr_assert_eq(out.len, 1);
}

Test(pickle_memo, python2_strings_as_conflict_resolution_reads_them)
{
    uint8_t p[64];
    zv *v;
    zerr err = {0};
    /* SHORT_BINSTRING 'abc', BINSTRING 'de', STRING 'f' in a tuple */
    size_t n = pt_bytes("80 02 55 03 \"abc\" 54 02 00 00 00 \"de\" \"S'f'\n\" 87 2e", p, sizeof p);
    cr_assert_eq(pickle_decode(p, n, PICKLE_PY2_ASCII, a, &v, NULL, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(v->u.seq.items[i]->type, ZV_STR);
    cr_assert_eq(pickle_decode(p, n, 0, a, &v, NULL, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < 3; i++)
        cr_expect_eq(v->u.seq.items[i]->type, ZV_BYTES);
    /* Not ASCII: the strict ASCII decoding fails. */
    static const char *const bad[] = {"80 02 55 02 c3 a9 2e", "80 02 54 01 00 00 00 ff 2e",
                                      "\"S'\\xe9'\n.\""};
    for (size_t i = 0; i < 3; i++) {
        n = pt_bytes(bad[i], p, sizeof p);
        cr_expect_eq(pickle_decode(p, n, PICKLE_PY2_ASCII, a, &v, NULL, &err), ZE_CORRUPT,
                     "case %zu", i);
        cr_expect_eq(pickle_decode(p, n, 0, a, &v, NULL, &err), 0, "case %zu: %s", i, err.msg);
    }
}
