/* Malformed and hostile pickles: each is an error with a message naming
 * the offset and opcode, never a crash or a large allocation. */
#include <criterion/criterion.h>
#include <stdlib.h>
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

TestSuite(pickle_hostile, .init = setup, .fini = teardown);

static int decode_err(const uint8_t *p, size_t len, int flags, zerr *err)
{
    zv *out = NULL;
    int rc = pickle_decode(p, len, flags, a, &out, NULL, err);
    cr_assert_neq(rc, 0, "decoded a bad pickle");
    cr_assert_null(out);
    cr_assert_eq(err->code, rc);
    return rc;
}

/* Decode spec and expect code rc with a message containing `needle`. */
static void expect(const char *spec, int flags, int rc, const char *needle)
{
    uint8_t buf[256];
    size_t n = pt_bytes(spec, buf, sizeof buf);
    zerr err = {0};
    cr_assert_eq(decode_err(buf, n, flags, &err), rc, "%s: %s", spec, err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(pickle_hostile, every_truncation_of_a_frame_fails)
{
    uint8_t buf[64];
    size_t n = pt_bytes("80 03 28 4b 01 89 58 08 00 00 00 72 65 67 69 73 74 65 72"
                        "58 01 00 00 00 31 4b 00 86 74 2e", buf, sizeof buf);
    for (size_t k = 0; k < n; k++) {
        /* A fresh copy of exactly k bytes, so ASan sees any overread. */
        uint8_t *p = malloc(k ? k : 1);
        memcpy(p, buf, k);
        zerr err = {0};
        cr_assert_eq(decode_err(p, k, 0, &err), ZE_CORRUPT, "prefix %zu", k);
        free(p);
    }
}

Test(pickle_hostile, huge_lengths_fail_before_allocating)
{
    expect("80 03 58 ff ff ff ff 61 2e", 0, ZE_CORRUPT, "offset 2, BINUNICODE");
    expect("80 03 42 00 00 00 80 2e", 0, ZE_CORRUPT, "exceeds");
    expect("80 04 8e ff ff ff ff ff ff ff ff 2e", 0, ZE_CORRUPT, "BINBYTES8");
    expect("80 04 8d 00 00 00 00 00 00 00 01 2e", 0, ZE_CORRUPT, "BINUNICODE8");
    expect("80 03 43 09 00 2e", 0, ZE_CORRUPT, "SHORT_BINBYTES");
    expect("80 03 8b ff ff ff 7f 2e", 0, ZE_CORRUPT, "LONG4");
    expect("80 03 8b ff ff ff ff 2e", 0, ZE_CORRUPT, "negative length");
    expect("54 fe ff ff ff 2e", 0, ZE_CORRUPT, "BINSTRING");
    expect("80 04 95 ff ff 00 00 00 00 00 00 4e 2e", 0, ZE_CORRUPT, "FRAME");
}

Test(pickle_hostile, deep_nesting_is_refused)
{
    uint8_t buf[2000];
    size_t n = 0;
    for (int i = 0; i < 300; i++)
        buf[n++] = ']';
    for (int i = 0; i < 299; i++)
        buf[n++] = 'a';
    buf[n++] = '.';
    zerr err = {0};
    cr_assert_eq(decode_err(buf, n, 0, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "deeper"), "%s", err.msg);

    n = 0;
    for (int i = 0; i < 300; i++)
        buf[n++] = '(';
    buf[n++] = '.';
    cr_assert_eq(decode_err(buf, n, 0, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "MARK"), "%s", err.msg);

    /* Height also grows through tuples, dicts and object nodes. */
    n = 0;
    buf[n++] = 'N';
    for (int i = 0; i < 300; i++)
        buf[n++] = 0x85;
    buf[n++] = '.';
    cr_assert_eq(decode_err(buf, n, 0, &err), ZE_TOOBIG);
}

Test(pickle_hostile, bad_memo_keys)
{
    expect("80 03 68 05 2e", 0, ZE_CORRUPT, "memo key 5 not found");
    expect("80 03 4e 72 ff ff ff ff 2e", 0, ZE_TOOBIG, "LONG_BINPUT");
    expect("80 03 4e 72 00 00 01 00 2e", 0, ZE_CORRUPT, "out of range");
    expect("4e 70 2d 31 0a 2e", 0, ZE_CORRUPT, "bad memo key");
    expect("4e 67 78 0a 2e", 0, ZE_CORRUPT, "bad memo key");
    expect("80 03 71 00 2e", 0, ZE_CORRUPT, "underflow");
}

Test(pickle_hostile, recursive_structures_are_refused)
{
    /* l = []; l.append(l), through the memo and through DUP. */
    expect("80 02 5d 71 00 68 00 61 2e", 0, ZE_CORRUPT, "recursive");
    expect("80 02 5d 32 61 2e", 0, ZE_CORRUPT, "recursive");
    expect("80 02 7d 71 00 4b 01 68 00 73 2e", 0, ZE_CORRUPT, "recursive");
    /* A shared list appended to later, even without a cycle, is frozen. */
    expect("80 02 5d 71 00 68 00 85 30 4b 01 61 2e", 0, ZE_CORRUPT, "recursive");
}

Test(pickle_hostile, stack_underflow_and_marks)
{
    expect("80 03 4b 01 86 2e", 0, ZE_CORRUPT, "TUPLE2: stack underflow");
    expect("80 03 61 2e", 0, ZE_CORRUPT, "APPEND");
    expect("80 03 2e", 0, ZE_CORRUPT, "STOP: stack underflow");
    expect("80 03 30 2e", 0, ZE_CORRUPT, "POP");
    expect("80 03 74 2e", 0, ZE_CORRUPT, "no MARK");
    expect("80 03 4b 01 28 85 2e", 0, ZE_CORRUPT, "underflow"); /* TUPLE1 below a MARK */
    expect("80 03 5d 28 2e", 0, ZE_CORRUPT, "STOP: stack underflow"); /* nothing above MARK */
    expect("80 03 28 4b 01 65 2e", 0, ZE_CORRUPT, "no container");
    expect("80 03 7d 28 4b 01 75 2e", 0, ZE_CORRUPT, "odd number");
    expect("80 03 28 4b 01 64 2e", 0, ZE_CORRUPT, "odd number");
    expect("80 03 4b 01 4b 02 61 2e", 0, ZE_CORRUPT, "cannot add items to a value of type int");
}

Test(pickle_hostile, objects_in_wire_messages)
{
    expect("80 03 63 \"builtins\" 0a \"exec\" 0a 2e", 0, ZE_CORRUPT,
           "GLOBAL: global builtins.exec is not allowed in a message");
    expect("80 04 8c 01 61 8c 01 62 93 2e", 0, ZE_CORRUPT, "STACK_GLOBAL");
    expect("80 03 29 29 52 2e", 0, ZE_CORRUPT, "REDUCE");
    expect("80 03 29 29 81 2e", 0, ZE_CORRUPT, "NEWOBJ");
    expect("80 03 4e 4e 62 2e", 0, ZE_CORRUPT, "BUILD");
    expect("80 03 4e 51 2e", 0, ZE_CORRUPT, "BINPERSID");
    expect("50 31 0a 2e", 0, ZE_CORRUPT, "PERSID");
    expect("28 69 \"a\" 0a \"b\" 0a 2e", 0, ZE_CORRUPT, "INST");
    expect("28 4e 6f 2e", 0, ZE_CORRUPT, "OBJ");
    expect("82 01 2e", 0, ZE_CORRUPT, "EXT1");
}

#define DICT "80 03 63 \"builtins\" 0a \"dict\" 0a "

/* builtins.dict is the one global a message may hold, and only REDUCE may
 * use it, with a dict or a sequence of pairs (pickle.h). */
Test(pickle_hostile, builtins_dict_misused_in_messages)
{
    const char *reduce_only = "builtins.dict may only be applied by REDUCE";
    expect(DICT "29 52 7d 62 2e", 0, ZE_CORRUPT, "BUILD: object opcodes");
    expect(DICT "7d 62 2e", 0, ZE_CORRUPT, "BUILD: object opcodes");
    expect(DICT "29 29 86 52 2e", 0, ZE_CORRUPT,
           "REDUCE: builtins.dict takes a tuple of at most one");
    expect(DICT "5d 52 2e", 0, ZE_CORRUPT, "REDUCE: builtins.dict takes a tuple");
    expect(DICT "4b 01 85 85 52 2e", 0, ZE_CORRUPT, "REDUCE: builtins.dict: item 0 is not a pair");
    expect(DICT "4b 01 4b 02 86 4b 01 4b 02 4b 03 87 86 85 52 2e", 0, ZE_CORRUPT,
           "item 1 is not a pair");
    expect(DICT "4b 01 85 52 2e", 0, ZE_CORRUPT, "argument is a int, not a dict or pairs");
    expect(DICT "58 01 00 00 00 \"x\" 85 52 2e", 0, ZE_CORRUPT, "argument is a str");
    expect("80 03 63 \"builtins\" 0a \"eval\" 0a 58 01 00 00 00 \"1\" 85 52 2e", 0, ZE_CORRUPT,
           "offset 2, GLOBAL: global builtins.eval is not allowed");
    expect("80 03 63 \"builtins\" 0a \"dicts\" 0a 29 52 2e", 0, ZE_CORRUPT, "not allowed");
    expect("80 03 63 \"copy_reg\" 0a \"dict\" 0a 29 52 2e", 0, ZE_CORRUPT, "not allowed");
    expect("80 03 4e 29 52 2e", 0, ZE_CORRUPT, "only builtins.dict may be called in a message");
    /* The global as a value: returned, left under the result, inside a
     * container, as a dict key, or as its own argument. */
    expect(DICT "2e", 0, ZE_CORRUPT, reduce_only);
    expect(DICT "4e 2e", 0, ZE_CORRUPT, reduce_only);
    expect(DICT "85 2e", 0, ZE_CORRUPT, reduce_only);
    expect("80 03 7d 63 \"builtins\" 0a \"dict\" 0a 4b 01 73 2e", 0, ZE_CORRUPT, reduce_only);
    expect(DICT "32 85 52 2e", 0, ZE_CORRUPT, reduce_only);
    expect(DICT "29 81 2e", 0, ZE_CORRUPT, "NEWOBJ: object opcodes");
    expect("80 04 8c 08 \"builtins\" 8c 04 \"dict\" 93 29 52 2e", 0, ZE_CORRUPT, "STACK_GLOBAL");
    expect("28 69 \"builtins\" 0a \"dict\" 0a 2e", 0, ZE_CORRUPT, "INST");
}

Test(pickle_hostile, malformed_objects_in_records)
{
    int obj = PICKLE_ALLOW_OBJECTS;
    expect("80 03 4e 4b 01 52 2e", obj, ZE_CORRUPT, "must be a tuple");
    expect("80 04 4b 01 8c 01 62 93 2e", obj, ZE_CORRUPT, "must be str");
    expect("63 \"a\" 00 \"b\" 0a \"c\" 0a 2e", obj, ZE_CORRUPT, "bad module");
    expect("63 \"a\" 0a \"\xff\" 0a 2e", obj, ZE_CORRUPT, "bad module");
    expect("63 \"a\" 0a", obj, ZE_CORRUPT, "no newline");
    expect("28 6f 2e", obj, ZE_CORRUPT, "no class");
    expect("82 00 2e", obj, ZE_CORRUPT, "extension code 0");
    expect("50 \"\xc3\xa9\" 0a 2e", obj, ZE_CORRUPT, "not ASCII");
}

Test(pickle_hostile, bad_payloads)
{
    expect("80 03 58 02 00 00 00 c3 28 2e", 0, ZE_CORRUPT, "invalid UTF-8");
    expect("80 03 58 02 00 00 00 c0 80 2e", 0, ZE_CORRUPT, "invalid UTF-8"); /* overlong */
    expect("80 06 4e 2e", 0, ZE_CORRUPT, "unsupported protocol 6");
    expect("80 03 ff 2e", 0, ZE_CORRUPT, "opcode 0xff");
    expect("80 05 96 00 00 00 00 00 00 00 00 2e", 0, ZE_CORRUPT, "unsupported opcode");
    expect("49 31 32 78 0a 2e", 0, ZE_CORRUPT, "bad integer");
    expect("4c 0a 2e", 0, ZE_CORRUPT, "bad integer");
    expect("46 31 2e 35 78 0a 2e", 0, ZE_CORRUPT, "bad float");
    expect("53 \"'abc\" 0a 2e", 0, ZE_CORRUPT, "not quoted");
    expect("53 \"'a\\'\" 0a 2e", 0, ZE_CORRUPT, "escape"); /* 'a\' */
    expect("53 \"'\\x4'\" 0a 2e", 0, ZE_CORRUPT, "escape");
    expect("56 \"\\u12\" 0a 2e", 0, ZE_CORRUPT, "escape");
    expect("56 \"\\U00110000\" 0a 2e", 0, ZE_CORRUPT, "escape");
    expect("80 03 4e", 0, ZE_CORRUPT, "input ends before STOP");
}

Test(pickle_hostile, too_many_digits)
{
    char *p = malloc(5000);
    size_t n = 0;
    p[n++] = 'L';
    for (int i = 0; i < 4400; i++)
        p[n++] = '7';
    p[n++] = '\n';
    p[n++] = '.';
    zerr err = {0};
    cr_assert_eq(decode_err((uint8_t *)p, n, 0, &err), ZE_TOOBIG);
    free(p);
}

Test(pickle_hostile, null_error_is_allowed)
{
    uint8_t p[] = {0x80, 0x03, 0xff};
    zv *out = NULL;
    cr_assert_eq(pickle_decode(p, sizeof p, 0, a, &out, NULL, NULL), ZE_CORRUPT);
}

/* Found by fuzzing: DUP (or memo GET) doubling a value level after level
 * makes a small DAG that expands to an exponential tree. */
Test(pickle_hostile, shared_values_cannot_expand_exponentially)
{
    uint8_t buf[512];
    size_t n = 0;
    buf[n++] = ']';
    for (int i = 0; i < 60; i++) {
        buf[n++] = '2';
        buf[n++] = 0x86;
    }
    buf[n++] = '.';
    zerr err = {0};
    cr_assert_eq(decode_err(buf, n, 0, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "expands"), "%s", err.msg);

    n = 0;
    buf[n++] = 'N';
    for (int i = 0; i < 60; i++) {
        buf[n++] = 'q';
        buf[n++] = (uint8_t)i;
        buf[n++] = 'h';
        buf[n++] = (uint8_t)i;
        buf[n++] = 0x86;
    }
    buf[n++] = '.';
    cr_assert_eq(decode_err(buf, n, PICKLE_ALLOW_OBJECTS, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "expands"), "%s", err.msg);
}

Test(pickle_hostile, modest_sharing_is_fine)
{
    /* Ten doublings: 2047 nodes, within the floor of PICKLE_MIN_NODES. */
    uint8_t buf[64];
    size_t n = 0;
    buf[n++] = 'N';
    for (int i = 0; i < 10; i++) {
        buf[n++] = '2';
        buf[n++] = 0x86;
    }
    buf[n++] = '.';
    zv *out;
    cr_assert_eq(pickle_decode(buf, n, 0, a, &out, NULL, NULL), 0);
    cr_assert_eq(out->type, ZV_TUPLE);
}

/* One 1 MB bytes, memoized and reached `times` times: (B,) * times. */
static size_t shared_bytes_pickle(uint8_t *buf, size_t len, int times)
{
    size_t n = 0;
    buf[n++] = 0x80;
    buf[n++] = 3;
    buf[n++] = '(';
    buf[n++] = 'B';
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t)(len >> (8 * i));
    memset(buf + n, 'a', len);
    n += len;
    buf[n++] = 'q';
    buf[n++] = 0;
    for (int i = 1; i < times; i++) {
        buf[n++] = 'h';
        buf[n++] = 0;
    }
    buf[n++] = 't';
    buf[n++] = '.';
    return n;
}

/* The issue-10 attack: 600 MB from a 1 MB message. A message is refused
 * (its copy would take 600 MB); a record may share as ZODB's pickler does. */
Test(pickle_hostile, memoized_bytes_count_each_time_in_a_message)
{
    size_t len = 1 << 20;
    uint8_t *buf = malloc(len + 2000);
    size_t n = shared_bytes_pickle(buf, len, 600);
    zerr err = {0};
    cr_assert_eq(decode_err(buf, n, 0, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "expands to more than"), "%s", err.msg);
    cr_assert_leq(zv_arena_bytes(a), PICKLE_MSG_BOUND(n));
    zv_arena_reset(a);
    zv *out;
    cr_assert_eq(pickle_decode(buf, n, PICKLE_ALLOW_OBJECTS, a, &out, NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(out->u.seq.n, 600);
    cr_assert_lt(zv_arena_bytes(a), 2 * len);
    /* Twelve references fit the default bound (16 bytes a byte). */
    zv_arena_reset(a);
    n = shared_bytes_pickle(buf, len, 12);
    cr_assert_eq(pickle_decode(buf, n, 0, a, &out, NULL, &err), 0, "%s", err.msg);
    cr_assert_leq(zv_copy_cost(out, SIZE_MAX), PICKLE_MSG_BOUND(n));
    /* A caller's tighter bound wins. */
    zv_arena_reset(a);
    cr_assert_eq(pickle_decode_max(buf, n, 0, 8 * (uint64_t)n, a, &out, NULL, &err), ZE_TOOBIG);
    free(buf);
}

/* A frame of tiny values: the empty tuple is one shared value, and the
 * decoding stops at its bound in bytes however the values are laid out. */
Test(pickle_hostile, tiny_values_are_bounded_in_bytes)
{
    size_t batches = 1000, n = 0;
    uint8_t *buf = malloc(batches * 1002 + 16);
    buf[n++] = 0x80;
    buf[n++] = 3;
    buf[n++] = ']';
    for (size_t b = 0; b < batches; b++) {
        buf[n++] = '(';
        memset(buf + n, ')', 1000);
        n += 1000;
        buf[n++] = 'e';
    }
    buf[n++] = '.';
    zv *out;
    zerr err = {0};
    /* A copy would take 40 bytes a value: over the default bound. */
    cr_assert_eq(pickle_decode(buf, n, 0, a, &out, NULL, &err), ZE_TOOBIG);
    cr_assert(strstr(err.msg, "expands to more than"), "%s", err.msg);
    cr_assert_leq(zv_arena_bytes(a), PICKLE_MSG_BOUND(n));
    zv_arena_reset(a);
    cr_assert_eq(pickle_decode_max(buf, n, 0, 64 * (uint64_t)n, a, &out, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(out->u.seq.n, 1000000);
    cr_assert_eq(out->u.seq.items[0], out->u.seq.items[999999], "one empty tuple");
    /* A pointer a value, and the list's growth: about 16 bytes a byte. */
    cr_assert_lt(zv_arena_bytes(a), 20 * n, "%zu for %zu", zv_arena_bytes(a), n);
    cr_assert_eq(zv_copy_cost(out, SIZE_MAX), sizeof(zv) + 1000000 * (8 + sizeof(zv)));
    /* Empty lists cannot be shared: 1 byte each is refused at the bound. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == ')')
            buf[i] = ']';
    zv_arena_reset(a);
    uint64_t bound = 8 * (uint64_t)n + (1 << 20);
    cr_assert_eq(pickle_decode_max(buf, n, 0, bound, a, &out, NULL, &err), ZE_TOOBIG);
    cr_assert_leq(zv_arena_bytes(a), bound + ZV_ARENA_KEEP + 64, "the chunk kept and its header");
    free(buf);
}
