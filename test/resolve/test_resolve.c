/* test_resolve.c: the resolvers on hand-made conflicts whose answers are
 * known (BTrees 4.3.1's, checked in Python, and records ZODB 6 wrote). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pickle/record.h"
#include "resolve/resolve.h"
#include "testutil.h"

static zv_arena *a;
static zbuf out;
static resolve_info info;

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

TestSuite(resolve, .init = setup, .fini = teardown);

/* ---- building records ------------------------------------------------------ */

static zv *global(const char *module, const char *name)
{
    zv *g = zv_alloc(a, sizeof *g);
    *g = (zv){.type = ZV_GLOBAL, .u.global = {module, name}};
    return g;
}

static zv *ref(zv *pid)
{
    zv *r = zv_alloc(a, sizeof *r);
    *r = (zv){.type = ZV_PERSID, .u.persid = pid};
    return r;
}

static zv *tuple1(zv *x)
{
    zv *t = zv_tuple(a, 1);
    t->u.seq.items[0] = x;
    return t;
}

static zv *ints(size_t n, const int64_t *v)
{
    zv *t = zv_tuple(a, n);
    for (size_t i = 0; i < n; i++)
        t->u.seq.items[i] = zv_int(a, v[i]);
    return t;
}

/* A record as ZODB writes it: the class, then the state, one pickler. */
typedef struct rec {
    zbuf b;
} rec;

static rec record(const char *module, const char *name, const zv *state)
{
    rec r = {ZBUF_INIT};
    pickle_memo m = PICKLE_MEMO_INIT;
    cr_assert_eq(pickle_encode_memo(global(module, name), &m, &r.b, NULL), 0);
    cr_assert_eq(pickle_encode_memo(state, &m, &r.b, NULL), 0);
    pickle_memo_free(&m);
    return r;
}

static resolve_status run(rec old, rec committed, rec new)
{
    zbuf_reset(&out);
    resolve_status s = resolve_records(old.b.data, old.b.len, committed.b.data, committed.b.len,
                                       new.b.data, new.b.len, &out, &info);
    zbuf_free(&old.b);
    zbuf_free(&committed.b);
    zbuf_free(&new.b);
    if (s != RESOLVE_OK)
        cr_assert_eq(out.len, 0, "out written on %s", resolve_status_name(s));
    return s;
}

/* The state of the resolved record. */
static zv *resolved_state(void)
{
    zv *meta, *state;
    cr_assert_eq(record_decode(a, out.data, out.len, 0, &meta, &state, NULL), 0);
    return state;
}

#define II_BUCKET(...)                                                                              \
    record("BTrees.IIBTree", "IIBucket",                                                           \
           tuple1(ints(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t),                        \
                       (int64_t[]){__VA_ARGS__})))

static void expect_refusal(rec old, rec committed, rec new, int reason)
{
    resolve_status s = run(old, committed, new);
    cr_expect_eq(s, RESOLVE_CONFLICT, "%s: %s", resolve_status_name(s), info.msg);
    cr_expect_eq(info.btrees_reason, reason, "reason %d, want %d", info.btrees_reason, reason);
}

/* ---- Length ------------------------------------------------------------------ */

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static rec from_hex(const char *hex)
{
    rec r = {ZBUF_INIT};
    for (; hex[0] && hex[1]; hex += 2)
        zbuf_append_byte(&r.b, (uint8_t)(hexval(hex[0]) << 4 | hexval(hex[1])));
    return r;
}

Test(resolve, length_records_as_zodb_writes_them)
{
    /* old, committed, new as ZODB 6's ObjectWriter wrote them, and the
     * record its tryToResolveConflict returned. */
    static const char *const cases[][4] = {
        {"4b05", "4b07", "4b09", "4b0b"},
        {"8a08ffffffffffffff7f", "8a090000000000000080 00", "8a090000000000000080 00",
         "8a090100000000000080 00"},
        {"8a080000000000000080", "8a09ffffffffffffff7fff", "8a09ffffffffffffff7fff",
         "8a09feffffffffffff7fff"},
        {"4b00", "8a0d00000000000000000000000010", "8a0d000000000000000000000000f0", "4b00"},
        {"4b05", "8a09000000000000000001", "4b07", "8a09020000000000000001"},
        {"4affffff7f", "8a050000008000", "4affffff7f", "8a050000008000"},
    };
    static const char head[] = "8003634254726565732e4c656e6774680a4c656e6774680a71002e8003";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char hex[4][256];
        for (int k = 0; k < 4; k++) {
            char *o = hex[k] + snprintf(hex[k], sizeof hex[k], "%s", head);
            for (const char *p = cases[i][k]; *p; p++)
                if (*p != ' ')
                    *o++ = *p;
            strcpy(o, "2e");
        }
        rec want = from_hex(hex[3]);
        resolve_status s = run(from_hex(hex[0]), from_hex(hex[1]), from_hex(hex[2]));
        cr_assert_eq(s, RESOLVE_OK, "case %zu: %s", i, info.msg);
        cr_expect_eq(out.len, want.b.len, "case %zu", i);
        cr_expect_arr_eq(out.data, want.b.data, want.b.len, "case %zu", i);
        zbuf_free(&want.b);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A random int of up to `bits` bits (either sign), as __int128. */
static __int128 random_int(int bits)
{
    __int128 v = (__int128)(((unsigned __int128)rng() << 64 | rng()) >> (128 - bits));
    return rng() & 1 ? -v : v;
}

static zv *int_value(__int128 v)
{
    if (v >= INT64_MIN && v <= INT64_MAX)
        return zv_int(a, (int64_t)v);
    uint8_t le[16];
    for (int i = 0; i < 16; i++)
        le[i] = (uint8_t)((unsigned __int128)v >> (8 * i));
    size_t n = 16;
    while (n > 1 && ((le[n - 1] == 0 && !(le[n - 2] & 0x80)) ||
                     (le[n - 1] == 0xff && (le[n - 2] & 0x80))))
        n--;
    return zv_bigint(a, le, n);
}

Test(resolve, length_random_deltas_past_2_63)
{
    for (int i = 0; i < 20000; i++) {
        int bits = 1 + (int)(rng() % 120);
        __int128 old = random_int(bits), d1 = random_int(1 + (int)(rng() % 120)),
                 d2 = random_int(1 + (int)(rng() % 70));
        rec want = record("BTrees.Length", "Length", int_value(old + d1 + d2));
        resolve_status s = run(record("BTrees.Length", "Length", int_value(old)),
                               record("BTrees.Length", "Length", int_value(old + d1)),
                               record("BTrees.Length", "Length", int_value(old + d2)));
        cr_assert_eq(s, RESOLVE_OK, "%s", info.msg);
        cr_assert_eq(out.len, want.b.len, "iteration %d", i);
        cr_assert_arr_eq(out.data, want.b.data, want.b.len, "iteration %d", i);
        zbuf_free(&want.b);
        zv_arena_reset(a);
    }
}

Test(resolve, length_of_a_non_int_falls_back)
{
    cr_expect_eq(run(record("BTrees.Length", "Length", zv_int(a, 1)),
                     record("BTrees.Length", "Length", zv_float(a, 2.5)),
                     record("BTrees.Length", "Length", zv_int(a, 3))),
                 RESOLVE_UNSUPPORTED);
    cr_expect_eq(run(record("BTrees.Length", "Length", zv_bool(a, 1)),
                     record("BTrees.Length", "Length", zv_bool(a, 1)),
                     record("BTrees.Length", "Length", zv_bool(a, 1))),
                 RESOLVE_OK, "bools are ints: True + True - True");
    cr_expect(zv_equal(resolved_state(), zv_int(a, 1)));
}

/* ---- buckets: every refusal of bucket_merge ------------------------------------ */

Test(resolve, bucket_merge_refusals)
{
    expect_refusal(II_BUCKET(1, 1, 2, 2), II_BUCKET(1, 1, 2, 3), II_BUCKET(1, 1, 2, 3), 1);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 3, 3, 3), II_BUCKET(1, 1, 3, 3),
                   2);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 3, 3), II_BUCKET(1, 1, 2, 3, 3, 3),
                   3);
    expect_refusal(II_BUCKET(1, 1, 3, 3), II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2, 3, 3),
                   4);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3, 4, 4), II_BUCKET(1, 1, 4, 4),
                   II_BUCKET(1, 1, 3, 3, 4, 4), 5);
    expect_refusal(II_BUCKET(1, 1), II_BUCKET(1, 1, 2, 2), II_BUCKET(1, 1, 2, 2), 6);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2, 3, 4), II_BUCKET(1, 1, 2, 2),
                   7);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2), II_BUCKET(1, 1, 2, 2, 3, 4),
                   8);
    expect_refusal(II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2), II_BUCKET(1, 1, 2, 2), 9);
    expect_refusal(II_BUCKET(1, 1), record("BTrees.IIBTree", "IIBucket", tuple1(zv_tuple(a, 0))),
                   II_BUCKET(1, 1, 2, 2), 12);
    expect_refusal(II_BUCKET(1, 1, 2, 2), II_BUCKET(2, 2), II_BUCKET(1, 1, 2, 2, 3, 3), 13);
}

Test(resolve, bucket_merge_resolves)
{
    cr_assert_eq(run(II_BUCKET(1, 1, 2, 2), II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 5, 4, 4)),
                 RESOLVE_OK, "%s", info.msg);
    int64_t want[] = {1, 1, 2, 5, 3, 3, 4, 4};
    cr_expect(zv_equal(resolved_state(), tuple1(ints(8, want))));
    /* The record is ZODB's, byte for byte. */
    rec zodb = II_BUCKET(1, 1, 2, 5, 3, 3, 4, 4);
    cr_expect_eq(out.len, zodb.b.len);
    cr_expect_arr_eq(out.data, zodb.b.data, zodb.b.len);
    zbuf_free(&zodb.b);
}

static zv *tree_state(zv *items)
{
    return tuple1(tuple1(tuple1(items)));
}

Test(resolve, one_bucket_trees)
{
    int64_t one[] = {1, 1}, two[] = {2, 2}, both[] = {1, 1, 2, 2};
    cr_assert_eq(run(record("BTrees.IIBTree", "IIBTree", zv_none(a)),
                     record("BTrees.IIBTree", "IIBTree", tree_state(ints(2, one))),
                     record("BTrees.IIBTree", "IIBTree", tree_state(ints(2, two)))),
                 RESOLVE_OK, "%s", info.msg);
    cr_expect(zv_equal(resolved_state(), tree_state(ints(4, both))));
    /* Two buckets: (children and keys, first bucket). */
    zv *kids = zv_tuple(a, 3);
    kids->u.seq.items[0] = ref(zv_oid(a, 5));
    kids->u.seq.items[1] = zv_int(a, 10);
    kids->u.seq.items[2] = ref(zv_oid(a, 6));
    expect_refusal(record("BTrees.IIBTree", "IIBTree", zv_tuple2(a, kids, ref(zv_oid(a, 5)))),
                   record("BTrees.IIBTree", "IIBTree", tree_state(ints(2, one))),
                   record("BTrees.IIBTree", "IIBTree", tree_state(ints(2, two))), 11);
}

Test(resolve, next_bucket_links)
{
    zv *link = ref(zv_tuple2(a, zv_oid(a, 9), global("BTrees.IIBTree", "IIBucket")));
    int64_t o[] = {1, 1}, c[] = {1, 1, 2, 2}, n[] = {1, 1, 3, 3}, r[] = {1, 1, 2, 2, 3, 3};
    cr_assert_eq(run(record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(2, o), link)),
                     record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, c), link)),
                     record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, n), link))),
                 RESOLVE_OK, "%s", info.msg);
    cr_expect(zv_equal(resolved_state(), zv_tuple2(a, ints(6, r), link)));
    /* The same bucket spelled another way is another object to BTrees. */
    expect_refusal(record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(2, o), link)),
                   record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, c), ref(zv_oid(a, 9)))),
                   record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, n), link)), 0);
    expect_refusal(record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(2, o), link)),
                   record("BTrees.IIBTree", "IIBucket", tuple1(ints(4, c))),
                   record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, n), link)), 0);
    /* A link whose class is not the bucket's: its identity depends on
     * whether the server can import that class. */
    zv *odd = ref(zv_tuple2(a, zv_oid(a, 9), global("app", "Thing")));
    cr_expect_eq(run(record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(2, o), odd)),
                     record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, c), odd)),
                     record("BTrees.IIBTree", "IIBucket", zv_tuple2(a, ints(4, n), odd))),
                 RESOLVE_UNSUPPORTED);
}

/* ---- object keys and values ----------------------------------------------------- */

static zv *pairs(size_t n, zv **kv)
{
    zv *t = zv_tuple(a, n);
    memcpy(t->u.seq.items, kv, n * sizeof *kv);
    return tuple1(t);
}

#define OO(...) record("BTrees.OOBTree", "OOBucket", pairs(sizeof((zv *[]){__VA_ARGS__}) /      \
                                                           sizeof(zv *), (zv *[]){__VA_ARGS__}))

Test(resolve, references_equal_by_oid_and_database)
{
    /* One object under two spellings of its id is the same value; a
     * change of the other key merges. */
    zv *k1 = zv_cstr(a, "a"), *k2 = zv_cstr(a, "b");
    zv *r1 = ref(zv_tuple2(a, zv_oid(a, 7), global("app", "Doc")));
    zv *r2 = ref(zv_oid(a, 7));
    cr_expect_eq(run(OO(k1, r1, k2, zv_int(a, 1)), OO(k1, r2, k2, zv_int(a, 1)),
                     OO(k1, r1, k2, zv_int(a, 2))),
                 RESOLVE_OK, "%s", info.msg);
    /* Different objects do not compare: BTrees fails. */
    zv *r3 = ref(zv_oid(a, 8));
    cr_expect_eq(run(OO(k1, r1, k2, zv_int(a, 1)), OO(k1, r3, k2, zv_int(a, 1)),
                     OO(k1, r1, k2, zv_int(a, 2))),
                 RESOLVE_UNORDERABLE);
    /* A weak reference equals only itself (one spelling). */
    zv *w1 = zv_list(a, 2), *w2 = zv_list(a, 1);
    w1->u.seq.items[0] = zv_cstr(a, "w");
    w1->u.seq.items[1] = tuple1(zv_oid(a, 7));
    w2->u.seq.items[0] = zv_oid(a, 7);
    cr_expect_eq(run(OO(k1, ref(w1), k2, zv_int(a, 1)), OO(k1, ref(w1), k2, zv_int(a, 1)),
                     OO(k1, ref(w1), k2, zv_int(a, 2))),
                 RESOLVE_OK, "%s", info.msg);
    cr_expect_eq(run(OO(k1, ref(w1), k2, zv_int(a, 1)), OO(k1, ref(w2), k2, zv_int(a, 1)),
                     OO(k1, ref(w1), k2, zv_int(a, 2))),
                 RESOLVE_UNORDERABLE);
    /* Another database: ['n', (db, oid)] is not this database's oid 7. */
    zv *n = zv_list(a, 2);
    n->u.seq.items[0] = zv_cstr(a, "n");
    n->u.seq.items[1] = zv_tuple2(a, zv_cstr(a, "other"), zv_oid(a, 7));
    cr_expect_eq(run(OO(k1, r1, k2, zv_int(a, 1)), OO(k1, ref(n), k2, zv_int(a, 1)),
                     OO(k1, r1, k2, zv_int(a, 2))),
                 RESOLVE_UNORDERABLE);
}

Test(resolve, python_comparisons)
{
    zv *k1 = zv_cstr(a, "a"), *k2 = zv_cstr(a, "b");
    /* None values do not order in BTrees 4.3.1: any compare raises. */
    cr_expect_eq(run(OO(k1, zv_none(a), k2, zv_int(a, 1)), OO(k1, zv_none(a), k2, zv_int(a, 1)),
                     OO(k1, zv_none(a), k2, zv_int(a, 2))),
                 RESOLVE_UNORDERABLE);
    /* 1 == 1.0 == True: unchanged; the new side's change wins. */
    cr_expect_eq(run(OO(k1, zv_int(a, 1), k2, zv_int(a, 1)), OO(k1, zv_float(a, 1.0), k2, zv_int(a, 1)),
                     OO(k1, zv_bool(a, 1), k2, zv_int(a, 2))),
                 RESOLVE_OK, "%s", info.msg);
    /* An int against a float past 2**63, exactly: 2**64 == 2.0**64. */
    uint8_t two64[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
    cr_expect_eq(run(OO(k1, zv_bigint(a, two64, 9), k2, zv_int(a, 1)),
                     OO(k1, zv_float(a, 18446744073709551616.0), k2, zv_int(a, 1)),
                     OO(k1, zv_bigint(a, two64, 9), k2, zv_int(a, 2))),
                 RESOLVE_OK, "%s", info.msg);
    /* str against int does not order. */
    cr_expect_eq(run(OO(k1, zv_int(a, 1), k2, zv_int(a, 1)), OO(k1, zv_cstr(a, "x"), k2, zv_int(a, 1)),
                     OO(k1, zv_int(a, 1), k2, zv_int(a, 2))),
                 RESOLVE_UNORDERABLE);
    /* None as a key: "Object has default comparison". */
    cr_expect_eq(run(OO(zv_none(a), zv_int(a, 1)), OO(zv_none(a), zv_int(a, 1), k2, zv_int(a, 1)),
                     OO(zv_none(a), zv_int(a, 1), k1, zv_int(a, 1))),
                 RESOLVE_BADVALUE);
    /* NaN is left to Python. */
    cr_expect_eq(run(OO(k1, zv_float(a, NAN), k2, zv_int(a, 1)),
                     OO(k1, zv_float(a, NAN), k2, zv_int(a, 1)),
                     OO(k1, zv_float(a, NAN), k2, zv_int(a, 2))),
                 RESOLVE_UNSUPPORTED);
    /* Dicts are not compared here: {'a': {}} */
    static const uint8_t dict[] = "\x80\x03" "cBTrees.OOBTree\nOOBucket\nq\x00."
                                  "\x80\x03X\x01\x00\x00\x00" "aq\x01}q\x02\x86q\x03\x85q\x04.";
    rec old = {ZBUF_INIT};
    zbuf_append(&old.b, dict, sizeof dict - 1);
    cr_expect_eq(run(old, OO(k1, zv_int(a, 1), k2, zv_int(a, 1)), OO(k1, zv_int(a, 2))),
                 RESOLVE_UNSUPPORTED);
}

Test(resolve, python2_string_keys)
{
    /* An OOBucket whose keys a Python 2 client wrote: 'a' as
     * SHORT_BINSTRING, which ZODB reads as str 'a'. The other sides spell
     * it as Python 3 str. */
    static const uint8_t py2[] = "\x80\x03" "cBTrees.OOBTree\nOOBucket\nq\x00."
                                 "\x80\x03U\x01" "aq\x01K\x01\x86q\x02\x85q\x03.";
    rec old = {ZBUF_INIT};
    zbuf_append(&old.b, py2, sizeof py2 - 1);
    zv *k1 = zv_cstr(a, "a");
    cr_assert_eq(run(old, OO(k1, zv_int(a, 1), zv_cstr(a, "b"), zv_int(a, 2)),
                     OO(k1, zv_int(a, 1), zv_cstr(a, "c"), zv_int(a, 3))),
                 RESOLVE_OK, "%s", info.msg);
    /* Not ASCII: ZODB's strict decoding fails. */
    static const uint8_t bad[] = "\x80\x03" "cBTrees.OOBTree\nOOBucket\nq\x00."
                                 "\x80\x03U\x01\xe9q\x01K\x01\x86q\x02\x85q\x03.";
    rec old2 = {ZBUF_INIT};
    zbuf_append(&old2.b, bad, sizeof bad - 1);
    cr_expect_eq(run(old2, OO(k1, zv_int(a, 1), zv_cstr(a, "b"), zv_int(a, 2)),
                     OO(k1, zv_int(a, 1), zv_cstr(a, "c"), zv_int(a, 3))),
                 RESOLVE_MALFORMED);
}

/* ---- integer and float families ------------------------------------------------- */

Test(resolve, family_ranges)
{
    int64_t big[] = {1, 1, 2, (int64_t)1 << 31};
    int64_t ok[] = {1, 1, 2, 2};
    cr_expect_eq(run(II_BUCKET(1, 1), record("BTrees.IIBTree", "IIBucket", tuple1(ints(4, big))),
                     II_BUCKET(1, 1, 3, 3)),
                 RESOLVE_BADVALUE, "2**31 is out of an II value's range");
    cr_expect_eq(run(record("BTrees.LLBTree", "LLBucket", tuple1(ints(2, ok))),
                     record("BTrees.LLBTree", "LLBucket", tuple1(ints(4, big))),
                     record("BTrees.LLBTree", "LLBucket", tuple1(ints(2, ok)))),
                 RESOLVE_OK, "%s", info.msg);
    /* IF values go through a C float: 0.1 is stored as 0.100000001490116. */
    zv *f = zv_tuple(a, 4);
    f->u.seq.items[0] = zv_int(a, 1);
    f->u.seq.items[1] = zv_float(a, 0.1);
    f->u.seq.items[2] = zv_int(a, 2);
    f->u.seq.items[3] = zv_int(a, 3);
    zv *o = zv_tuple(a, 2);
    o->u.seq.items[0] = zv_int(a, 1);
    o->u.seq.items[1] = zv_float(a, 0.1);
    cr_assert_eq(run(record("BTrees.IFBTree", "IFBucket", tuple1(o)),
                     record("BTrees.IFBTree", "IFBucket", tuple1(o)),
                     record("BTrees.IFBTree", "IFBucket", tuple1(f))),
                 RESOLVE_OK, "%s", info.msg);
    zv *st = resolved_state()->u.seq.items[0];
    cr_expect_eq(st->u.seq.items[1]->u.f, (double)(float)0.1);
    cr_expect_eq(st->u.seq.items[3]->type, ZV_FLOAT, "the int value is stored as a float");
    o->u.seq.items[1] = zv_float(a, NAN);
    cr_expect_eq(run(record("BTrees.IFBTree", "IFBucket", tuple1(o)),
                     record("BTrees.IFBTree", "IFBucket", tuple1(o)),
                     record("BTrees.IFBTree", "IFBucket", tuple1(f))),
                 RESOLVE_UNSUPPORTED);
}

/* ---- what goes back to the client ------------------------------------------------ */

Test(resolve, unknown_and_mixed_classes)
{
    int64_t kv[] = {1, 1};
    cr_expect_eq(run(record("BTrees.UUBTree", "UUBucket", tuple1(ints(2, kv))),
                     record("BTrees.UUBTree", "UUBucket", tuple1(ints(2, kv))),
                     record("BTrees.UUBTree", "UUBucket", tuple1(ints(2, kv)))),
                 RESOLVE_CLASS);
    cr_expect_eq(run(record("BTrees.IIBTree", "IISet", tuple1(ints(2, kv))), II_BUCKET(1, 1),
                     II_BUCKET(1, 1)),
                 RESOLVE_CLASS);
    cr_expect_eq(run(II_BUCKET(1, 1), II_BUCKET(1, 1), record("app", "Counter", zv_int(a, 1))),
                 RESOLVE_CLASS);
    rec r = II_BUCKET(1, 1);
    cr_expect(resolve_class_known(r.b.data, r.b.len));
    zbuf_free(&r.b);
    r = record("app", "Counter", zv_int(a, 1));
    cr_expect(!resolve_class_known(r.b.data, r.b.len));
    zbuf_free(&r.b);
    cr_expect(!resolve_class_known((const uint8_t *)"junk", 4));
}

Test(resolve, malformed_records)
{
    rec good = II_BUCKET(1, 1, 2, 2);
    for (size_t cut = 0; cut < good.b.len; cut++) {
        rec trunc = {ZBUF_INIT};
        zbuf_append(&trunc.b, good.b.data, cut);
        resolve_status s = run(trunc, II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2, 4, 4));
        cr_expect(s == RESOLVE_MALFORMED || s == RESOLVE_CLASS, "cut %zu: %s", cut,
                  resolve_status_name(s));
    }
    zbuf_free(&good.b);
    int64_t odd[] = {1, 1, 2};
    cr_expect_eq(run(record("BTrees.IIBTree", "IIBucket", tuple1(ints(3, odd))),
                     II_BUCKET(1, 1, 2, 2, 3, 3), II_BUCKET(1, 1, 2, 2, 4, 4)),
                 RESOLVE_MALFORMED, "an odd item count");
    cr_expect_eq(run(II_BUCKET(2, 2, 1, 1), II_BUCKET(2, 2, 1, 1, 3, 3), II_BUCKET(2, 2, 1, 1, 4, 4)),
                 RESOLVE_MALFORMED, "keys out of order");
}

Test(resolve, oversized_and_deep_records_fall_back)
{
    rec big = {ZBUF_INIT};
    cr_assert_eq(zbuf_reserve(&big.b, RESOLVE_MAX_RECORD + 1), 0);
    memset(big.b.data, 'N', RESOLVE_MAX_RECORD + 1);
    big.b.len = RESOLVE_MAX_RECORD + 1;
    cr_expect_eq(run(big, II_BUCKET(1, 1), II_BUCKET(1, 1)), RESOLVE_TOOBIG);
    /* 100000 nested tuples: past the reader's depth limit. */
    rec deep = {ZBUF_INIT};
    static const char head[] = "\x80\x03" "cBTrees.OOBTree\nOOBucket\nq\x00.\x80\x03";
    zbuf_append(&deep.b, head, sizeof head - 1);
    zbuf_append_byte(&deep.b, ')');
    for (int i = 0; i < 100000; i++)
        zbuf_append_byte(&deep.b, 0x85);
    zbuf_append_byte(&deep.b, '.');
    zv *k = zv_cstr(a, "a");
    resolve_status s = run(deep, OO(k, zv_int(a, 1)), OO(k, zv_int(a, 1)));
    cr_expect(s == RESOLVE_TOOBIG || s == RESOLVE_MALFORMED, "%s", resolve_status_name(s));
}

/* Keys (big, i) whose big part is one shared string in each record but
 * another object in each of the three: every comparison across the
 * records reads all of it. Past a multiple of the records' sizes the
 * merge stops (RESOLVE_TOOBIG) instead of running long. */
static rec shared_prefix_bucket(zv *big, int n, int extra)
{
    zv *items = zv_tuple(a, 2 * (size_t)(n + (extra >= 0)));
    size_t k = 0;
    for (int i = 0; i <= n; i++) {
        if (i == n && extra < 0)
            break;
        items->u.seq.items[k++] = zv_tuple2(a, big, zv_int(a, i == n ? extra : i));
        items->u.seq.items[k++] = zv_int(a, i);
    }
    return record("BTrees.OOBTree", "OOBucket", tuple1(items));
}

Test(resolve, comparisons_stay_linear)
{
    static char text[65536];
    memset(text, 'x', sizeof text - 1);
    zv *big = zv_cstr(a, text);
    cr_expect_eq(run(shared_prefix_bucket(big, 20, -1), shared_prefix_bucket(big, 20, 20),
                     shared_prefix_bucket(big, 20, 21)),
                 RESOLVE_OK, "%s", info.msg);
    cr_expect_eq(run(shared_prefix_bucket(big, 3000, -1), shared_prefix_bucket(big, 3000, 3000),
                     shared_prefix_bucket(big, 3000, 3001)),
                 RESOLVE_TOOBIG, "%s", info.msg);
}
