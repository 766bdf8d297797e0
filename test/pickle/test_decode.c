/* Decoding well-formed pickles: the spec's example frames (zeo-protocol.md
 * section 4.4) and pickles of every protocol as CPython writes them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pktest.h"

static zv_arena *a;

static void setup(void)
{
    a = zv_arena_new();
}

static void teardown(void)
{
    zv_arena_free(a);
}

TestSuite(pickle_decode, .init = setup, .fini = teardown);

static zv *decode_ok(const uint8_t *p, size_t len, int flags)
{
    zv *out = NULL;
    size_t used = 0;
    zerr err = {0};
    int rc = pickle_decode(p, len, flags, a, &out, &used, &err);
    cr_assert_eq(rc, 0, "decode failed: %s", err.msg);
    cr_assert_eq(used, len);
    return out;
}

static zv *decode_spec(const char *spec, int flags)
{
    uint8_t buf[512];
    size_t n = pt_bytes(spec, buf, sizeof buf);
    return decode_ok(buf, n, flags);
}

static void expect_equal(const zv *got, const zv *want)
{
    if (zv_equal(got, want))
        return;
    char *g = NULL, *w = NULL;
    zv_repr(got, &g);
    zv_repr(want, &w);
    cr_expect_fail("got %s, want %s", g, w);
    free(g);
    free(w);
}

static zv *tuple1(zv *x)
{
    zv *t = zv_tuple(a, 1);
    t->u.seq.items[0] = x;
    return t;
}

Test(pickle_decode, spec_register_call)
{
    zv *v = decode_spec("80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72"
                        "58 01 00 00 00 31 4b 00 86 74 2e", 0);
    expect_equal(v, pt_tuple4(a, zv_int(a, 1), zv_bool(a, 0), zv_cstr(a, "register"),
                              zv_tuple2(a, zv_cstr(a, "1"), zv_int(a, 0))));
}

Test(pickle_decode, spec_register_reply)
{
    zv *v = decode_spec("80 03 28 4b 01 4b 00 58 06 00 00 00 2e 72 65 70 6c 79"
                        "43 08 00 00 00 00 00 00 00 00 74 2e", 0);
    expect_equal(v, pt_tuple4(a, zv_int(a, 1), zv_int(a, 0), zv_cstr(a, ".reply"), zv_oid(a, 0)));
}

Test(pickle_decode, spec_invalidate_transaction)
{
    zv *v = decode_spec("80 03 28 4b 00 88 58 15 00 00 00 \"invalidateTransaction\""
                        "43 08 04 0d 41 67 b3 ab 29 33  5d 43 08 00 00 00 00 00 00 00 00 61"
                        "86 74 2e", 0);
    zv *oids = zv_list(a, 1);
    oids->u.seq.items[0] = zv_oid(a, 0);
    expect_equal(v, pt_tuple4(a, zv_int(a, 0), zv_bool(a, 1), zv_cstr(a, "invalidateTransaction"),
                              zv_tuple2(a, zv_oid(a, 0x040d4167b3ab2933ULL), oids)));
}

Test(pickle_decode, spec_exception_reply)
{
    zv *v = decode_spec("80 03 28 4b 09 4b 02 58 06 00 00 00 2e 72 65 70 6c 79"
                        "58 1d 00 00 00 \"ZODB.POSException.POSKeyError\""
                        "43 08 00 00 00 00 00 00 00 63 85 86 74 2e", 0);
    zv *args = zv_tuple2(a, zv_cstr(a, "ZODB.POSException.POSKeyError"),
                         tuple1(zv_oid(a, 0x63)));
    expect_equal(v, pt_tuple4(a, zv_int(a, 9), zv_int(a, 2), zv_cstr(a, ".reply"), args));
}

Test(pickle_decode, spec_heartbeat)
{
    zv *v = decode_spec("80 03 28 4a ff ff ff ff 4b 00 58 06 00 00 00 2e 72 65 70 6c 79 4e 74 2e",
                        0);
    expect_equal(v, pt_tuple4(a, zv_int(a, -1), zv_int(a, 0), zv_cstr(a, ".reply"), zv_none(a)));
}

Test(pickle_decode, used_stops_at_stop)
{
    uint8_t buf[] = {0x80, 0x03, 'N', '.', 0x80, 0x03, 'K', 7, '.'};
    zv *out;
    size_t used;
    cr_assert_eq(pickle_decode(buf, sizeof buf, 0, a, &out, &used, NULL), 0);
    cr_assert_eq(used, 4);
    cr_assert_eq(out->type, ZV_NONE);
    cr_assert_eq(pickle_decode(buf + used, sizeof buf - used, 0, a, &out, &used, NULL), 0);
    cr_assert_eq(out->u.i, 7);
}

/* Protocol-3 ints exactly as CPython's pickle.dumps(x, 3) writes them. */
Test(pickle_decode, ints_of_every_width)
{
    static const struct {
        const char *hex;
        int64_t value;
    } cases[] = {
        {"80 03 4b 00 2e", 0},
        {"80 03 4b ff 2e", 255},
        {"80 03 4d 00 01 2e", 256},
        {"80 03 4d ff ff 2e", 65535},
        {"80 03 4a 00 00 01 00 2e", 65536},
        {"80 03 4a ff ff ff ff 2e", -1},
        {"80 03 4a ff ff ff 7f 2e", 2147483647},
        {"80 03 4a 00 00 00 80 2e", -2147483647 - 1},
        {"80 03 8a 05 00 00 00 80 00 2e", 2147483648LL},
        {"80 03 8a 05 ff ff ff 7f ff 2e", -2147483649LL},
        {"80 03 8a 08 ff ff ff ff ff ff ff 7f 2e", INT64_MAX},
        {"80 03 8a 08 00 00 00 00 00 00 00 80 2e", INT64_MIN},
        {"80 03 8a 00 2e", 0},
        {"80 03 8b 02 00 00 00 01 00 2e", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zv *v = decode_spec(cases[i].hex, 0);
        cr_assert_eq(v->type, ZV_INT, "case %zu", i);
        cr_assert_eq(v->u.i, cases[i].value, "case %zu", i);
    }
}

Test(pickle_decode, ints_beyond_int64_are_bigint)
{
    /* pickle.dumps(-2**70, 2): LONG1 of 9 bytes. */
    zv *v = decode_spec("80 02 8a 09 00 00 00 00 00 00 00 00 c0 2e", 0);
    uint8_t want[] = {0, 0, 0, 0, 0, 0, 0, 0, 0xc0};
    cr_assert_eq(v->type, ZV_BIGINT);
    cr_assert_eq(v->u.s.len, 9);
    cr_assert_arr_eq(v->u.s.p, want, 9);
    /* Redundant sign bytes are dropped: the value, not its spelling, counts. */
    v = decode_spec("80 02 8a 0b 00 00 00 00 00 00 00 00 c0 ff ff 2e", 0);
    cr_assert_eq(v->u.s.len, 9);
    cr_assert_arr_eq(v->u.s.p, want, 9);
    v = decode_spec("80 02 8a 0a 05 00 00 00 00 00 00 00 00 00 2e", 0);
    cr_assert_eq(v->type, ZV_INT);
    cr_assert_eq(v->u.i, 5);
}

Test(pickle_decode, floats)
{
    zv *v = decode_spec("80 03 47 3f f8 00 00 00 00 00 00 2e", 0);
    cr_assert_eq(v->type, ZV_FLOAT);
    cr_assert_float_eq(v->u.f, 1.5, 0);
    v = decode_spec("80 03 47 80 00 00 00 00 00 00 00 2e", 0);
    cr_assert(v->u.f == 0 && signbit(v->u.f));
}

/* pickle.dumps([1, 'a', 2.5, None, True, (1, 2), {'k': -3}], 0) */
Test(pickle_decode, protocol_0_text_opcodes)
{
    static const char p[] = "(lp0\nI1\naVa\np1\naF2.5\naNaI01\na(I1\nI2\ntp2\na(dp3\nVk\np4\n"
                            "I-3\nsa.";
    zv *v = decode_ok((const uint8_t *)p, sizeof p - 1, 0);
    zv *d = zv_dict(a, 1);
    d->u.seq.items[0] = zv_cstr(a, "k");
    d->u.seq.items[1] = zv_int(a, -3);
    zv *want = zv_list(a, 7);
    zv *items[] = {zv_int(a, 1), zv_cstr(a, "a"), zv_float(a, 2.5), zv_none(a), zv_bool(a, 1),
                   zv_tuple2(a, zv_int(a, 1), zv_int(a, 2)), d};
    memcpy(want->u.seq.items, items, sizeof items);
    expect_equal(v, want);
}

/* pickle.dumps([1, 'a', 2.5, None, True, (1, 2), {'k': -3}, 2**70], 1) */
Test(pickle_decode, protocol_1_with_text_long)
{
    static const uint8_t p[] = "]q\000(K\001X\001\000\000\000aq\001G@\004\000\000\000\000\000"
                               "\000NI01\n(K\001K\002tq\002}q\003X\001\000\000\000kq\004J\375"
                               "\377\377\377sL1180591620717411303424L\ne.";
    zv *v = decode_ok(p, sizeof p - 1, 0);
    cr_assert_eq(v->type, ZV_LIST);
    cr_assert_eq(v->u.seq.n, 8);
    cr_assert_eq(v->u.seq.items[4]->type, ZV_BOOL);
    const zv *big = v->u.seq.items[7];
    uint8_t want[] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40}; /* 2**70 */
    cr_assert_eq(big->type, ZV_BIGINT);
    cr_assert_eq(big->u.s.len, sizeof want);
    cr_assert_arr_eq(big->u.s.p, want, sizeof want);
    const zv *d = v->u.seq.items[6];
    cr_assert_eq(zv_dict_get(d, "k")->u.i, -3);
}

/* x = [1]; pickle.dumps([x, x], 2): the second x is a BINGET. */
Test(pickle_decode, memo_shares_values)
{
    zv *v = decode_spec("80 02 5d 71 00 28 5d 71 01 4b 01 61 68 01 65 2e", 0);
    cr_assert_eq(v->u.seq.n, 2);
    cr_assert_eq(v->u.seq.items[0], v->u.seq.items[1]);
    cr_assert_eq(v->u.seq.items[0]->u.seq.items[0]->u.i, 1);
}

/* pickle.dumps({'a': {1, 2}, 'b': frozenset([3]), 'c': 'xxx'}, 4) */
Test(pickle_decode, protocol_4_frame_sets_memoize)
{
    static const uint8_t p[] = "\200\004\225$\000\000\000\000\000\000\000}\224(\214\001a\224\217"
                               "\224(K\001K\002\220\214\001b\224(K\003\221\224\214\001c\224\214"
                               "\003xxx\224u.";
    zv *v = decode_ok(p, sizeof p - 1, 0);
    const zv *s = zv_dict_get(v, "a");
    cr_assert_eq(s->type, ZV_SET);
    cr_assert_eq(s->u.seq.n, 2);
    cr_assert_eq(s->u.seq.items[1]->u.i, 2);
    const zv *f = zv_dict_get(v, "b");
    cr_assert_eq(f->type, ZV_FROZENSET);
    cr_assert_eq(f->u.seq.items[0]->u.i, 3);
    cr_assert_str_eq((const char *)zv_dict_get(v, "c")->u.s.p, "xxx");
}

Test(pickle_decode, python2_strings_are_bytes)
{
    static const uint8_t p[] = "(U\002\200\001T\003\000\000\000abcS'a\\n\\x00\\'b'\nS\"q\"\nt.";
    zv *v = decode_ok(p, sizeof p - 1, 0);
    cr_assert_eq(v->u.seq.n, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(v->u.seq.items[i]->type, ZV_BYTES);
    cr_assert_arr_eq(v->u.seq.items[0]->u.s.p, "\x80\x01", 2);
    cr_assert_arr_eq(v->u.seq.items[1]->u.s.p, "abc", 3);
    cr_assert_eq(v->u.seq.items[2]->u.s.len, 5);
    cr_assert_arr_eq(v->u.seq.items[2]->u.s.p, "a\n\0'b", 5);
    cr_assert_arr_eq(v->u.seq.items[3]->u.s.p, "q", 1);
}

Test(pickle_decode, raw_unicode_escape)
{
    /* pickle.dumps('é\u20ac\\', 0) == b'V\xe9\\u20ac\\u005c\np0\n.' */
    static const uint8_t p[] = "V\xe9\\u20ac\\u005c\np0\n.";
    zv *v = decode_ok(p, sizeof p - 1, 0);
    cr_assert_eq(v->type, ZV_STR);
    cr_assert_str_eq((const char *)v->u.s.p, "\xc3\xa9\xe2\x82\xac\\");
}

Test(pickle_decode, unicode_variants)
{
    zv *v = decode_spec("80 04 8c 02 c3 a9 2e", 0);
    cr_assert_str_eq((const char *)v->u.s.p, "\xc3\xa9");
    v = decode_spec("80 04 8d 01 00 00 00 00 00 00 00 7a 2e", 0);
    cr_assert_str_eq((const char *)v->u.s.p, "z");
    v = decode_spec("80 04 8e 02 00 00 00 00 00 00 00 01 02 2e", 0);
    cr_assert_eq(v->type, ZV_BYTES);
    cr_assert_eq(v->u.s.len, 2);
    /* Python's surrogatepass: an encoded lone surrogate is a legal str. */
    v = decode_spec("80 03 58 03 00 00 00 ed a0 80 2e", 0);
    cr_assert_eq(v->u.s.len, 3);
}

Test(pickle_decode, stack_and_mark_opcodes)
{
    /* MARK 1 2 POP_MARK; 3 DUP TUPLE2; POP of an empty frame drops the MARK. */
    zv *v = decode_spec("28 4b 01 4b 02 31 4b 03 32 86 28 30 2e", 0);
    expect_equal(v, zv_tuple2(a, zv_int(a, 3), zv_int(a, 3)));
    v = decode_spec("4b 01 4b 02 30 2e", 0);
    cr_assert_eq(v->u.i, 1);
    /* DICT and LIST from a mark, SETITEMS/APPENDS in several batches. */
    v = decode_spec("28 58 01 00 00 00 61 4b 01 64 28 58 01 00 00 00 62 4b 02 75 2e", 0);
    cr_assert_eq(v->u.seq.n, 2);
    cr_assert_eq(zv_dict_get(v, "b")->u.i, 2);
    v = decode_spec("28 4b 01 6c 28 4b 02 4b 03 65 4b 04 61 2e", 0);
    cr_assert_eq(v->u.seq.n, 4);
    cr_assert_eq(v->u.seq.items[3]->u.i, 4);
}

Test(pickle_decode, text_memo_opcodes)
{
    zv *v = decode_spec("4b 05 70 30 0a 30 67 30 0a 2e", 0);
    cr_assert_eq(v->u.i, 5);
    v = decode_spec("4b 06 72 02 00 00 00 30 6a 02 00 00 00 2e", 0);
    cr_assert_eq(v->u.i, 6);
}

Test(pickle_decode, objects_as_nodes)
{
    /* copyreg-style instance: GLOBAL, EMPTY_TUPLE, NEWOBJ, state dict, BUILD. */
    zv *v = decode_spec("80 02 63 \"mod\" 0a \"Cls\" 0a 71 00 29 81 7d 58 01 00 00 00 78"
                        "4b 01 73 62 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->type, ZV_BUILD);
    const zv *call = v->u.build.obj;
    cr_assert_eq(call->type, ZV_CALL);
    cr_assert_eq(call->u.call.newobj, 1);
    cr_assert_str_eq(call->u.call.callable->u.global.module, "mod");
    cr_assert_str_eq(call->u.call.callable->u.global.name, "Cls");
    cr_assert_eq(zv_dict_get(v->u.build.state, "x")->u.i, 1);
}

Test(pickle_decode, reduce_stack_global_persid)
{
    zv *v = decode_spec("80 04 8c 01 6d 8c 01 66 93 4b 01 85 52 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->type, ZV_CALL);
    cr_assert_eq(v->u.call.newobj, 0);
    cr_assert_str_eq(v->u.call.callable->u.global.name, "f");
    v = decode_spec("80 03 43 08 00 00 00 00 00 00 00 01 51 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->type, ZV_PERSID);
    uint64_t oid;
    cr_assert(zv_get_u64be(v->u.persid, &oid) && oid == 1);
    v = decode_spec("50 \"abc\" 0a 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->u.persid->type, ZV_STR);
}

Test(pickle_decode, inst_obj_newobj_ex_ext)
{
    zv *v = decode_spec("28 4b 01 69 \"m\" 0a \"C\" 0a 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->type, ZV_CALL);
    cr_assert_eq(v->u.call.args->u.seq.n, 1);
    v = decode_spec("28 63 \"m\" 0a \"C\" 0a 4b 01 4b 02 6f 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->u.call.args->u.seq.n, 2);
    cr_assert_str_eq(v->u.call.callable->u.global.module, "m");
    v = decode_spec("63 \"m\" 0a \"C\" 0a 29 7d 92 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->u.call.newobj, 2);
    cr_assert_eq(v->u.call.args->u.seq.n, 2);
    v = decode_spec("82 05 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_str_eq(v->u.global.module, "__extension__");
    cr_assert_str_eq(v->u.global.name, "5");
}

/* An OrderedDict pickles as REDUCE then SETITEMS on the result. */
Test(pickle_decode, items_added_to_objects)
{
    zv *v = decode_spec("63 \"c\" 0a \"OD\" 0a 29 52 28 4b 01 4b 02 4b 03 4b 04 75"
                        "28 4b 05 4b 06 75 2e", PICKLE_ALLOW_OBJECTS);
    cr_assert_eq(v->type, ZV_BUILD);
    cr_assert_eq(v->u.build.obj->type, ZV_CALL);
    cr_assert_eq(v->u.build.state->type, ZV_DICT);
    cr_assert_eq(v->u.build.state->u.seq.n, 3);
}

/* ZODB's testTransactionExtensionFromIterator commits with an extension
 * that is a dict subclass reducing to (dict, (tuple(items),)). These are the
 * bytes of the tpc_begin a Python 3 ClientStorage sends for it, made with
 * /work/venv/bin/python (ZEO 6.0.0, ZODB 6.0.1, zodbpickle):
 *     class ext(dict):
 *         def __reduce__(self): return dict, (tuple(self.items()),)
 *     t = ZODB.Connection.TransactionMetaData(extension=ext(foo=1))
 *     ZEO.asyncio.marshal.encoder(b'Z')(0, True, 'tpc_begin',
 *         (id(t), t.user, t.description, t.extension, None, ' '))
 * which is what ClientStorage.tpc_begin passes to call_async. Python's
 * server unpickler (marshal.pickle_server_decode) reads them as
 * (0, True, 'tpc_begin', (140478307486160, b'', b'', {'foo': 1}, None, ' ')). */
static const uint8_t tpc_begin_ext_subclass[] = {
    0x80, 0x03, 0x28, 0x4b, 0x00, 0x88, 0x58, 0x09, 0x00, 0x00, 0x00, 0x74, 0x70, 0x63, 0x5f,
    0x62, 0x65, 0x67, 0x69, 0x6e, 0x28, 0x8a, 0x06, 0xd0, 0xc9, 0x9d, 0xa7, 0xc3, 0x7f, 0x43,
    0x00, 0x43, 0x00, 0x63, 0x62, 0x75, 0x69, 0x6c, 0x74, 0x69, 0x6e, 0x73, 0x0a, 0x64, 0x69,
    0x63, 0x74, 0x0a, 0x58, 0x03, 0x00, 0x00, 0x00, 0x66, 0x6f, 0x6f, 0x4b, 0x01, 0x86, 0x85,
    0x85, 0x52, 0x4e, 0x58, 0x01, 0x00, 0x00, 0x00, 0x20, 0x74, 0x74, 0x2e,
};

static zv *dict1(zv *k, zv *v)
{
    zv *d = zv_dict(a, 1);
    d->u.seq.items[0] = k;
    d->u.seq.items[1] = v;
    return d;
}

Test(pickle_decode, python3_client_dict_subclass_extension)
{
    zv *v = decode_ok(tpc_begin_ext_subclass, sizeof tpc_begin_ext_subclass, 0);
    zv *args = zv_tuple(a, 6);
    zv **it = args->u.seq.items;
    it[0] = zv_int(a, 140478307486160);
    it[1] = zv_bytes(a, "", 0);
    it[2] = zv_bytes(a, "", 0);
    it[3] = dict1(zv_cstr(a, "foo"), zv_int(a, 1));
    it[4] = zv_none(a);
    it[5] = zv_cstr(a, " ");
    expect_equal(v, pt_tuple4(a, zv_int(a, 0), zv_bool(a, 1), zv_cstr(a, "tpc_begin"), args));

    /* Records keep the object form. */
    v = decode_ok(tpc_begin_ext_subclass, sizeof tpc_begin_ext_subclass, PICKLE_ALLOW_OBJECTS);
    const zv *call = v->u.seq.items[3]->u.seq.items[3];
    cr_assert_eq(call->type, ZV_CALL);
    cr_assert_str_eq(call->u.call.callable->u.global.module, "builtins");
    cr_assert_str_eq(call->u.call.callable->u.global.name, "dict");
}

/* The same extension as ZODB itself pickles it for a FileStorage
 * (ZODB._compat.dumps(ext(foo=1), 3): memoized, so BINPUT follows GLOBAL). */
Test(pickle_decode, zodb_dumps_of_dict_subclass)
{
    zv *v = decode_spec("80 03 63 \"builtins\" 0a \"dict\" 0a 71 00 58 03 00 00 00 \"foo\""
                        "71 01 4b 01 86 71 02 85 71 03 85 71 04 52 71 05 2e",
                        0);
    expect_equal(v, dict1(zv_cstr(a, "foo"), zv_int(a, 1)));
}

Test(pickle_decode, builtins_dict_argument_forms)
{
    /* dict() */
    expect_equal(decode_spec("80 03 63 \"builtins\" 0a \"dict\" 0a 29 52 2e", 0), zv_dict(a, 0));
    /* __builtin__.dict([[1, 2], (3, 4)]) keeps the pairs in order. */
    zv *v = decode_spec("80 02 63 \"__builtin__\" 0a \"dict\" 0a"
                        "5d 28 5d 28 4b 01 4b 02 65 4b 03 4b 04 86 65 85 52 2e",
                        0);
    zv *want = zv_dict(a, 2);
    for (int i = 0; i < 4; i++)
        want->u.seq.items[i] = zv_int(a, i + 1);
    expect_equal(v, want);
    /* dict(d) is a new dict: SETITEM on it leaves the memoized d alone.
     * (dict(d)[5] = 6, d) */
    v = decode_spec("80 03 63 \"builtins\" 0a \"dict\" 0a 7d 71 00 4b 01 4b 02 73 85 52"
                    "4b 05 4b 06 73 68 00 86 2e",
                    0);
    cr_assert_eq(v->u.seq.items[0]->u.seq.n, 2);
    expect_equal(v->u.seq.items[1], dict1(zv_int(a, 1), zv_int(a, 2)));
}

Test(pickle_decode, nesting_up_to_the_limit_is_fine)
{
    /* 255 nested lists under one tuple: height 256. */
    uint8_t buf[600];
    size_t n = 0;
    for (int i = 0; i < 255; i++)
        buf[n++] = ']';
    for (int i = 0; i < 254; i++)
        buf[n++] = 'a';
    buf[n++] = 0x85;
    buf[n++] = '.';
    zv *v = decode_ok(buf, n, 0);
    cr_assert_eq(v->type, ZV_TUPLE);
}
