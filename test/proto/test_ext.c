/* The transaction extension: the bytes ZODB stores (spec 7.9, issue 3). */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle/pickle.h"
#include "proto/proto.h"
#include "spechex.h"
#include "jsonmini.h"
#include "testutil.h"

static zv_arena *arena;
static zbuf got, want;

static void setup(void)
{
    arena = zv_arena_new();
}

static void teardown(void)
{
    zv_arena_free(arena);
    zbuf_free(&got);
    zbuf_free(&want);
}

TestSuite(proto_ext, .init = setup, .fini = teardown);

/* Decode stored extension bytes, encode the dict again: the same bytes. */
static void round_trip(const uint8_t *p, size_t len, const char *where)
{
    zv *d;
    zerr err;
    cr_assert_eq(proto_extension_decode(p, len, arena, &d, &err), 0, "%s: %s", where, err.msg);
    cr_assert_eq(d->type, ZV_DICT);
    zbuf_reset(&got);
    cr_assert_eq(proto_extension_encode(d, &got, &err), 0, "%s: %s", where, err.msg);
    cr_assert_eq(got.len, len, "%s: %zu bytes, stored %zu", where, got.len, len);
    cr_assert_arr_eq(got.data, p, len, "%s: bytes differ", where);
}

/* Every non-empty extension in the Data.fs fixtures' manifests, as written
 * by ZODB 6.0.1. */
static size_t manifest_extensions(const char *path)
{
    size_t len, count = 0;
    char *text = (char *)tu_read_file(path, &len);
    zv_arena *a = zv_arena_new();
    zv *doc;

    cr_assert_not_null(text);
    cr_assert_eq(json_parse(text, len, a, &doc, NULL), 0, "%s", path);
    const zv *txns = json_get(doc, "transactions");
    for (size_t i = 0; txns && i < txns->u.seq.n; i++) {
        const char *hex = json_str(txns->u.seq.items[i], "extension");
        size_t n;
        if (!hex || !*hex)
            continue;
        uint8_t *ext = json_unhex(hex, &n);
        cr_assert_not_null(ext);
        round_trip(ext, n, path);
        free(ext);
        count++;
    }
    zv_arena_free(a);
    free(text);
    return count;
}

Test(proto_ext, datafs_fixture_extensions_round_trip)
{
    char *pattern = tu_shared("fixtures/datafs/*.fs.json");
    glob_t g;
    size_t count = 0;

    cr_assert_eq(glob(pattern, 0, NULL, &g), 0);
    for (size_t i = 0; i < g.gl_pathc; i++)
        count += manifest_extensions(g.gl_pathv[i]);
    /* small.fs holds 3 (one nested, with a list, bytes and non-ASCII),
     * btrees.fs 16 */
    cr_assert_geq(count, 19, "found %zu extensions", count);
    globfree(&g);
    free(pattern);
}

Test(proto_ext, empty_dict_and_none_are_no_bytes)
{
    zbuf_append(&got, "x", 1);
    cr_assert_eq(proto_extension_encode(zv_dict(arena, 0), &got, NULL), 0);
    cr_assert_eq(proto_extension_encode(zv_none(arena), &got, NULL), 0);
    cr_assert_eq(proto_extension_encode(NULL, &got, NULL), 0);
    cr_assert_eq(got.len, 1);

    zv *d = NULL;
    cr_assert_eq(proto_extension_decode(NULL, 0, arena, &d, NULL), 0);
    cr_assert_eq(d->type, ZV_DICT);
    cr_assert_eq(d->u.seq.n, 0);
}

Test(proto_ext, only_a_dict_is_an_extension)
{
    zerr err;
    zv *l = zv_list(arena, 0);
    cr_assert_eq(proto_extension_encode(l, &got, &err), ZE_INVAL);
    cr_assert_eq(got.len, 0);
}

/* CPython shares one object for '', each 1-character str below U+0100 and
 * b''; its memoizing pickler then writes BINGET for repeats. Expected bytes:
 * pickle.dumps(pickle.loads(W), 3) on CPython 3.11, where W is the same dict
 * pickled without memo as it arrives over the wire (so 'xy' is two objects). */
Test(proto_ext, shared_small_values_become_bingets)
{
    zv *d;
    spechex(&want, "80037d28580100000061580100000078580100000062580100000078580100000063"
                   "580000000058010000006458000000005801000000655802000000c3a958010000006658"
                   "02000000c3a958010000006758020000007879580100000068580200000078795801000000"
                   "69430058010000006a4300752e");
    cr_assert_eq(pickle_decode(want.data, want.len, 0, arena, &d, NULL, NULL), 0);
    spechex(&want, "80037d710028580100000061710158010000007871025801000000627103680258010000"
                   "00637104580000000071055801000000647106680558010000006571075802000000c3a9"
                   "710858010000006671096808580100000067710a58020000007879710b58010000006871"
                   "0c58020000007879710d580100000069710e4300710f58010000006a7110680f752e");
    cr_assert_eq(proto_extension_encode(d, &got, NULL), 0);
    cr_assert_eq(got.len, want.len);
    cr_assert_arr_eq(got.data, want.data, want.len);
}

Test(proto_ext, bad_stored_bytes_are_corrupt)
{
    static const char *const bad[] = {
        "80 03 5d 71 00 2e",                                 /* a list */
        "80 03 7d 71 00 2e 00",                              /* trailing byte */
        "80 03 7d 71 00",                                    /* no STOP */
        "80 03 63 \"os\" 0a \"system\" 0a 71 00 2e",          /* a global */
        "ff ff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zv *d;
        zerr err;
        spechex(&want, bad[i]);
        cr_assert_eq(proto_extension_decode(want.data, want.len, arena, &d, &err), ZE_CORRUPT,
                     "%s", bad[i]);
    }
}

/* A stored extension whose containers are reused through the memo would
 * expand exponentially when sent back in history or iterator replies. */
Test(proto_ext, shared_containers_are_corrupt)
{
    zbuf p = ZBUF_INIT;
    static const uint8_t head[] = {0x80, 0x03, 0x7d, 0x58, 0x01, 0, 0, 0, 'a', 0x29};
    zv *d;

    zbuf_append(&p, head, sizeof head);
    for (int i = 0; i < 30; i++)
        zbuf_append(&p, "\x32\x86", 2); /* DUP, TUPLE2 */
    zbuf_append(&p, "\x73\x2e", 2);     /* SETITEM, STOP */
    zerr err;
    cr_assert_eq(proto_extension_decode(p.data, p.len, arena, &d, &err), ZE_CORRUPT);
    cr_assert_eq(err.code, ZE_CORRUPT);
    zbuf_free(&p);
}

/* A big dict: batches of 1000 entries, and the C pickler's extra empty batch
 * when the size is a multiple of 1000 (round trip through ZODB's bytes
 * shape: decode what we wrote, same dict; encode again, same bytes). */
Test(proto_ext, big_dict_round_trips)
{
    zv *d = zv_dict(arena, 2000);
    for (int i = 0; i < 2000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        d->u.seq.items[2 * i] = zv_cstr(arena, key);
        d->u.seq.items[2 * i + 1] = zv_int(arena, i);
    }
    cr_assert_eq(proto_extension_encode(d, &got, NULL), 0);
    /* ... SETITEMS MARK SETITEMS STOP */
    cr_assert_arr_eq(got.data + got.len - 4, "\x75\x28\x75\x2e", 4);
    zv *back;
    cr_assert_eq(proto_extension_decode(got.data, got.len, arena, &back, NULL), 0);
    cr_assert(zv_equal(back, d));
    round_trip(got.data, got.len, "2000 keys");
}

/* A dict that repeats one shared 1 MB value (as a decoded message may) is
 * refused once its pickle passes FileStorage's 64 KiB, not after 100 MB. */
Test(proto_ext, oversized_extension_stops_early)
{
    char *big = malloc(1 << 20);
    memset(big, 'b', 1 << 20);
    zv *v = zv_bytes(arena, big, 1 << 20);
    free(big);
    zv *d = zv_dict(arena, 100);
    for (int i = 0; i < 100; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        d->u.seq.items[2 * i] = zv_cstr(arena, key);
        d->u.seq.items[2 * i + 1] = v;
    }
    zbuf_reset(&got);
    zbuf_append(&got, "x", 1);
    zerr err;
    cr_assert_eq(proto_extension_encode(d, &got, &err), ZE_TOOBIG);
    cr_assert_eq(got.len, 1, "out changed");
    cr_assert_lt(got.cap, 1 << 20, "the value was written");
    /* Just under the limit is fine. */
    zv *one = zv_dict(arena, 1);
    one->u.seq.items[0] = zv_cstr(arena, "k");
    char *fill = calloc(1, 65000);
    memset(fill, 'f', 64000);
    one->u.seq.items[1] = zv_bytes(arena, fill, 64000);
    free(fill);
    zbuf_reset(&got);
    cr_assert_eq(proto_extension_encode(one, &got, &err), 0, "%s", err.msg);
    cr_assert_lt(got.len, PROTO_EXTENSION_MAX);
}
