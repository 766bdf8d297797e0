/* oidmap: put, get, ref, delete (backward shift), growth, iteration. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/oidmap.h"

Test(oidmap, an_empty_map_has_nothing)
{
    oidmap m = OIDMAP_INIT;
    uint64_t v = 7, k;
    size_t pos = 0;
    cr_expect_eq(oidmap_get(&m, 0, &v), 0);
    cr_expect_eq(v, 7, "a miss leaves *val alone");
    cr_expect_null(oidmap_ref(&m, 1));
    oidmap_del(&m, 1);
    cr_expect_eq(oidmap_next(&m, &pos, &k, &v), 0);
    cr_expect_eq(m.count, 0);
    oidmap_free(&m);
}

Test(oidmap, put_replaces_and_ref_changes_in_place)
{
    oidmap m = OIDMAP_INIT;
    uint64_t v;
    cr_assert_eq(oidmap_put(&m, 0, 10), 0, "key 0 (the root oid) is an ordinary key");
    cr_assert_eq(oidmap_put(&m, UINT64_MAX, 20), 0);
    cr_assert_eq(oidmap_put(&m, 0, 11), 0);
    cr_expect_eq(m.count, 2, "replacing adds nothing");
    cr_expect(oidmap_get(&m, 0, &v) && v == 11);
    cr_expect(oidmap_get(&m, UINT64_MAX, &v) && v == 20);
    uint64_t *r = oidmap_ref(&m, UINT64_MAX);
    cr_assert_not_null(r);
    *r += 1;
    cr_expect(oidmap_get(&m, UINT64_MAX, &v) && v == 21);
    oidmap_free(&m);
    cr_expect_eq(m.cap, 0, "free leaves an empty map");
    cr_expect_eq(oidmap_put(&m, 5, 5), 0, "and it can be used again");
    oidmap_free(&m);
}

Test(oidmap, grows_and_keeps_every_key)
{
    oidmap m = OIDMAP_INIT;
    const uint64_t n = 100000;
    for (uint64_t k = 1; k <= n; k++)
        cr_assert_eq(oidmap_put(&m, k, k * 3), 0);
    cr_expect_eq(m.count, n);
    cr_expect_eq(m.cap & (m.cap - 1), 0, "cap %zu is a power of two", m.cap);
    cr_expect_leq(m.count * 4, m.cap * 3, "load at most 3/4");
    for (uint64_t k = 1; k <= n; k++) {
        uint64_t v = 0;
        cr_assert(oidmap_get(&m, k, &v) && v == k * 3, "key %llu", (unsigned long long)k);
    }
    cr_expect_eq(oidmap_get(&m, n + 1, &(uint64_t){0}), 0);
    oidmap_free(&m);
}

/* The map's own hash (oidmap.c), only to build keys that share a home slot:
 * should the hash change, these tests still pass, with fewer collisions. */
static size_t home(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* n keys with the same home slot in a table of cap slots, the last slot
 * when possible, so that their probe run wraps to slot 0. */
static void colliding_keys(size_t cap, uint64_t *keys, size_t n)
{
    size_t found = 0;
    for (uint64_t k = 1; found < n; k++)
        if (home(k, cap) == cap - 1)
            keys[found++] = k;
}

Test(oidmap, colliding_keys_survive_deletes_in_any_order)
{
    /* 10 keys sharing one slot of a 16-slot table: one probe run that wraps
     * around the end. Delete each in turn, from a fresh map every time. */
    uint64_t keys[10];
    colliding_keys(16, keys, 10);
    for (size_t gone = 0; gone < 10; gone++) {
        oidmap m = OIDMAP_INIT;
        for (size_t i = 0; i < 10; i++)
            cr_assert_eq(oidmap_put(&m, keys[i], i), 0);
        cr_assert_eq(m.cap, 16, "no growth: the run stays in a 16-slot table");
        oidmap_del(&m, keys[gone]);
        cr_expect_eq(m.count, 9);
        for (size_t i = 0; i < 10; i++) {
            uint64_t v = 99;
            int hit = oidmap_get(&m, keys[i], &v);
            if (i == gone)
                cr_expect_eq(hit, 0, "deleted key %zu is gone", i);
            else
                cr_expect(hit && v == i, "key %zu (deleted %zu): hit %d v %llu", i, gone, hit,
                          (unsigned long long)v);
        }
        oidmap_del(&m, keys[gone]);   /* twice: nothing happens */
        cr_expect_eq(m.count, 9);
        oidmap_free(&m);
    }
}

/* splitmix64, a fixed stream */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

Test(oidmap, random_puts_and_deletes_match_a_plain_array)
{
    /* 2000 possible keys, 200000 operations: long probe runs, many
     * backward shifts, shrinking and regrowing membership. */
    enum { KEYS = 2000, OPS = 200000 };
    static uint64_t model[KEYS];   /* value + 1, 0 when absent */
    static uint64_t key_of[KEYS];
    uint64_t seed = 42;
    for (size_t i = 0; i < KEYS; i++)
        key_of[i] = i % 3 ? next_rand(&seed) : i;   /* random and small keys mixed */
    oidmap m = OIDMAP_INIT;
    size_t live = 0;
    for (size_t op = 0; op < OPS; op++) {
        uint64_t r = next_rand(&seed);
        size_t i = (size_t)(r % KEYS);
        if ((r >> 32) % 3 == 0) {
            live -= model[i] != 0;
            model[i] = 0;
            oidmap_del(&m, key_of[i]);
        } else {
            live += model[i] == 0;
            model[i] = op + 1;
            cr_assert_eq(oidmap_put(&m, key_of[i], op), 0);
        }
        size_t j = (size_t)((r >> 16) % KEYS);
        uint64_t v = 0;
        int hit = oidmap_get(&m, key_of[j], &v);
        cr_assert_eq(hit, model[j] != 0, "op %zu key %zu", op, j);
        if (hit)
            cr_assert_eq(v + 1, model[j]);
    }
    cr_expect_eq(m.count, live);
    for (size_t i = 0; i < KEYS; i++) {
        uint64_t v = 0;
        cr_assert_eq(oidmap_get(&m, key_of[i], &v), model[i] != 0);
    }
    oidmap_free(&m);
}

Test(oidmap, next_gives_each_key_once)
{
    oidmap m = OIDMAP_INIT;
    const size_t n = 1000;
    for (uint64_t k = 0; k < n; k++)
        cr_assert_eq(oidmap_put(&m, k * 7, k), 0);
    for (uint64_t k = 0; k < n; k += 2)
        oidmap_del(&m, k * 7);
    unsigned char *seen = calloc(n, 1);
    cr_assert_not_null(seen);
    size_t pos = 0, count = 0;
    uint64_t key, val;
    while (oidmap_next(&m, &pos, &key, &val)) {
        cr_assert_eq(key % 7, 0);
        cr_assert_eq(key / 7, val, "each key comes with its own value");
        cr_assert(val < n && val % 2 == 1, "only live keys: %llu", (unsigned long long)val);
        cr_assert_eq(seen[val], 0, "key %llu given twice", (unsigned long long)key);
        seen[val] = 1;
        count++;
    }
    cr_expect_eq(count, n / 2);
    cr_expect_eq(oidmap_next(&m, &pos, &key, &val), 0, "the end stays the end");
    free(seen);
    oidmap_free(&m);
}

Test(oidmap, clear_empties_and_keeps_the_table)
{
    oidmap m = OIDMAP_INIT;
    for (uint64_t k = 0; k < 100; k++)
        cr_assert_eq(oidmap_put(&m, k, k), 0);
    size_t cap = m.cap;
    oidmap_clear(&m);
    cr_expect_eq(m.count, 0);
    cr_expect_eq(m.cap, cap);
    cr_expect_null(oidmap_ref(&m, 5));
    size_t pos = 0;
    uint64_t k, v;
    cr_expect_eq(oidmap_next(&m, &pos, &k, &v), 0);
    cr_assert_eq(oidmap_put(&m, 5, 50), 0);
    cr_expect(oidmap_get(&m, 5, &v) && v == 50);
    oidmap_free(&m);
}
