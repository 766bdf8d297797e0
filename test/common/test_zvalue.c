#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/zerr.h"
#include "common/zvalue.h"

static zv *sample(zv_arena *a)
{
    zv *d = zv_dict(a, 2);
    d->u.seq.items[0] = zv_cstr(a, "oid");
    d->u.seq.items[1] = zv_oid(a, 0x0102);
    d->u.seq.items[2] = zv_cstr(a, "serials");
    d->u.seq.items[3] = zv_tuple2(a, zv_int(a, -5), zv_none(a));
    zv *l = zv_list(a, 3);
    l->u.seq.items[0] = d;
    l->u.seq.items[1] = zv_bool(a, 1);
    l->u.seq.items[2] = zv_float(a, 1.5);
    return l;
}

Test(zvalue, repr_is_python_like)
{
    zv_arena *a = zv_arena_new();
    char *s = NULL;
    cr_assert_eq(zv_repr(sample(a), &s), ZE_OK);
    cr_assert_str_eq(s, "[{'oid': b'\\x00\\x00\\x00\\x00\\x00\\x00\\x01\\x02', "
                        "'serials': (-5, None)}, True, 1.5]");
    free(s);
    zv *one = zv_tuple(a, 1);
    one->u.seq.items[0] = zv_bytes(a, "a'b", 3);
    cr_assert_eq(zv_repr(one, &s), ZE_OK);
    cr_assert_str_eq(s, "(b'a\\'b',)");
    free(s);
    zv_arena_free(a);
}

Test(zvalue, copy_is_deep_and_equal)
{
    zv_arena *a = zv_arena_new(), *b = zv_arena_new();
    zv *v = sample(a);
    zv *c = zv_copy(b, v);
    cr_assert(zv_equal(v, c));
    zv_arena_free(a); /* the copy must not point into the first arena */
    char *s = NULL;
    cr_assert_eq(zv_repr(c, &s), ZE_OK);
    cr_assert(strstr(s, "'serials': (-5, None)") != NULL);
    free(s);
    zv_arena_free(b);
}

Test(zvalue, equality_distinguishes_types)
{
    zv_arena *a = zv_arena_new();
    zv *t = zv_tuple(a, 0), *l = zv_list(a, 0);
    cr_assert_not(zv_equal(t, l));
    cr_assert_not(zv_equal(zv_int(a, 1), zv_bool(a, 1)));
    cr_assert(zv_equal(zv_cstr(a, "x"), zv_str(a, "x", 1)));
    cr_assert_not(zv_equal(zv_cstr(a, "x"), zv_bytes(a, "x", 1)));
    zv_arena_free(a);
}

Test(zvalue, accessors)
{
    zv_arena *a = zv_arena_new();
    uint64_t u;
    int64_t i;
    cr_assert(zv_get_u64be(zv_oid(a, 42), &u));
    cr_assert_eq(u, 42);
    cr_assert_not(zv_get_u64be(zv_bytes(a, "1234567", 7), &u));
    cr_assert(zv_get_int(zv_bool(a, 1), &i) && i == 1);
    cr_assert_not(zv_get_int(zv_none(a), &i));
    zv *d = sample(a)->u.seq.items[0];
    cr_assert_not_null(zv_dict_get(d, "serials"));
    cr_assert_null(zv_dict_get(d, "nope"));
    cr_assert_not(zv_truthy(zv_list(a, 0)));
    cr_assert(zv_truthy(zv_cstr(a, " ")));
    zv_arena_free(a);
}

Test(zvalue, arena_handles_large_and_many_allocations)
{
    zv_arena *a = zv_arena_new();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10000; i++)
            cr_assert_not_null(zv_int(a, i));
        uint8_t *big = zv_alloc(a, 1 << 20);
        cr_assert_not_null(big);
        memset(big, 0xab, 1 << 20);
        zv_arena_reset(a);
    }
    cr_assert_null(zv_alloc(a, SIZE_MAX - 3));
    zv_arena_free(a);
}

/* The boundaries of RFC 3629's table: 1 to 4 bytes. */
Test(zvalue, utf8_put_boundaries)
{
    static const struct {
        uint32_t cp;
        const char *want;
    } cases[] = {{0x41, "A"},
                 {0x7ff, "\xdf\xbf"},
                 {0x800, "\xe0\xa0\x80"},
                 {0xffff, "\xef\xbf\xbf"},
                 {0x10000, "\xf0\x90\x80\x80"},
                 {0x10ffff, "\xf4\x8f\xbf\xbf"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[4];
        size_t n = zv_utf8_put(out, cases[i].cp);
        cr_assert_eq(n, strlen(cases[i].want), "U+%04X", (unsigned)cases[i].cp);
        cr_assert_arr_eq(out, cases[i].want, n, "U+%04X", (unsigned)cases[i].cp);
    }
}

/* A value reached 1000 times through one shared node. */
static zv *shared_many(zv_arena *a, size_t len, size_t times)
{
    char *big = malloc(len);
    memset(big, 'a', len);
    zv *b = zv_bytes(a, big, len);
    free(big);
    zv *t = zv_tuple(a, times);
    for (size_t i = 0; i < times; i++)
        t->u.seq.items[i] = b;
    return t;
}

Test(zvalue, arena_counts_its_bytes_and_keeps_a_small_chunk)
{
    zv_arena *a = zv_arena_new();
    cr_assert_eq(zv_arena_bytes(a), 0);
    cr_assert_not_null(zv_alloc(a, 100));
    size_t small = zv_arena_bytes(a);
    cr_assert(small >= 100 && small <= ZV_ARENA_KEEP, "%zu", small);
    /* A large allocation has a chunk of its own; the head keeps its room. */
    cr_assert_not_null(zv_alloc(a, 1 << 20));
    cr_assert(zv_arena_bytes(a) >= small + (1 << 20));
    cr_assert(zv_arena_bytes(a) <= small + (1 << 20) + 256);
    cr_assert_not_null(zv_alloc(a, 100));
    cr_assert(zv_arena_bytes(a) <= small + (1 << 20) + 256, "the head was replaced");
    zv_arena_reset(a);
    cr_assert_eq(zv_arena_bytes(a), small, "reset keeps the small head only");
    for (int i = 0; i < 2000; i++)
        cr_assert_not_null(zv_alloc(a, 1000));
    zv_arena_reset(a);
    cr_assert_leq(zv_arena_bytes(a), ZV_ARENA_KEEP + 64, "%zu", zv_arena_bytes(a));
    zv_arena_free(a);
}

Test(zvalue, arena_limit_refuses_and_says_so)
{
    zv_arena *a = zv_arena_new();
    cr_assert_eq(zv_arena_set_limit(a, 64 * 1024), 0);
    cr_assert_not_null(zv_alloc(a, 1000));
    cr_assert_not(zv_arena_at_limit(a));
    cr_assert_null(zv_alloc(a, 100 * 1024));
    cr_assert(zv_arena_at_limit(a));
    cr_assert_leq(zv_arena_bytes(a), 64 * 1024);
    size_t n = 0;
    while (zv_alloc(a, 512))
        n++;
    cr_assert(n > 50 && zv_arena_at_limit(a));
    cr_assert_leq(zv_arena_bytes(a), 64 * 1024);
    cr_assert_eq(zv_arena_set_limit(a, 0), 64 * 1024);
    cr_assert_not(zv_arena_at_limit(a));
    cr_assert_not_null(zv_alloc(a, 100 * 1024));
    zv_arena_free(a);
    /* Grown to 1 MB chunks, the arena still fills a limit it is close to:
     * the limit is memory, not a count of chunks. */
    a = zv_arena_new();
    for (int i = 0; i < 4000; i++)
        cr_assert_not_null(zv_alloc(a, 1000));
    size_t used = zv_arena_bytes(a);
    zv_arena_set_limit(a, used + 300 * 1024);
    n = 0;
    while (zv_alloc(a, 1000))
        n++;
    cr_assert_gt(n, 250, "%zu", n);
    cr_assert_leq(zv_arena_bytes(a), used + 300 * 1024);
    zv_arena_free(a);
}

Test(zvalue, copy_cost_is_what_a_copy_takes)
{
    zv_arena *a = zv_arena_new();
    zv *v = sample(a);
    zv_arena *b = zv_arena_new();
    size_t cost = zv_copy_cost(v, SIZE_MAX);
    zv *c = zv_copy(b, v);
    cr_assert(c && zv_equal(c, v));
    /* One 4 KB chunk holds the copy: its used part is the cost. */
    cr_assert(cost > 8 * sizeof(zv) && cost < 1024, "%zu", cost);
    cr_assert_eq(zv_copy_cost(c, SIZE_MAX), cost);
    zv_arena_free(b);
    /* A shared value counts each time; the walk stops past max. */
    zv *t = shared_many(a, 100000, 1000);
    cr_assert_gt(zv_copy_cost(t, SIZE_MAX), 100000000);
    cr_assert_eq(zv_copy_cost(t, 250000), 250001);
    zv_arena_free(a);
}

Test(zvalue, repr_max_cuts_large_and_shared_values)
{
    zv_arena *a = zv_arena_new();
    zv *t = shared_many(a, 1 << 20, 600);
    char *s = NULL;
    cr_assert_eq(zv_repr_max(t, 200, &s), ZE_OK);
    cr_assert_eq(strlen(s), 203);
    cr_assert(!strncmp(s, "(b'aaa", 6) && !strcmp(s + 200, "..."), "%s", s);
    free(s);
    /* Exactly long enough: no marker. */
    zv *one = zv_tuple(a, 1);
    one->u.seq.items[0] = zv_bytes(a, "a'b", 3);
    cr_assert_eq(zv_repr_max(one, 10, &s), ZE_OK);
    cr_assert_str_eq(s, "(b'a\\'b',)");
    free(s);
    cr_assert_eq(zv_repr_max(one, 9, &s), ZE_OK);
    cr_assert_str_eq(s, "(b'a\\'b',...");
    free(s);
    zv_arena_free(a);
}
