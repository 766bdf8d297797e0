/* test_cache.c: the MVCC cache on its own: which revision answers which
 * loadBefore, invalidation, and the size bound. */
#include <criterion/criterion.h>
#include <string.h>

#include "client/client_int.h"

static zcl_cache *k;

static void setup(void)
{
    k = zcl__cache_new(4096);
    cr_assert_not_null(k);
}

static void teardown(void)
{
    zcl__cache_free(k);
}

TestSuite(client_cache, .init = setup, .fini = teardown);

static void put(uint64_t oid, uint64_t start, uint64_t end, const char *text)
{
    zcl__cache_store(k, oid, start, end, text, strlen(text));
}

/* The text cached for loadBefore(oid, before), or NULL on a miss. */
static const char *get(uint64_t oid, uint64_t before)
{
    static char buf[2048];
    zcl_rev r;
    if (!zcl__cache_lookup(k, oid, before, &r))
        return NULL;
    cr_assert_lt(r.len, sizeof buf);
    memcpy(buf, r.data, r.len);
    buf[r.len] = '\0';
    return buf;
}

Test(client_cache, current_revision_answers_any_later_tid)
{
    put(1, 10, 0, "a");
    cr_expect_str_eq(get(1, ZCL_MAXTID), "a");
    cr_expect_str_eq(get(1, 11), "a");
    cr_expect_null(get(1, 10), "written at 10: not visible before 10");
    cr_expect_null(get(2, ZCL_MAXTID));
}

Test(client_cache, invalidation_ends_the_current_revision)
{
    put(1, 10, 0, "a");
    zcl__cache_invalidate(k, 1, 20);
    cr_expect_null(get(1, ZCL_MAXTID), "never served past an invalidation");
    cr_expect_null(get(1, 21));
    cr_expect_str_eq(get(1, 20), "a");
    cr_expect_str_eq(get(1, 15), "a");
    put(1, 20, 0, "b");
    cr_expect_str_eq(get(1, ZCL_MAXTID), "b");
    cr_expect_str_eq(get(1, 20), "a");
}

Test(client_cache, invalidation_without_tid_drops_the_current_revision)
{
    put(1, 10, 0, "a");
    put(1, 5, 10, "old");
    zcl__cache_invalidate(k, 1, 0);
    cr_expect_null(get(1, ZCL_MAXTID));
    cr_expect_str_eq(get(1, 10), "old");
}

Test(client_cache, older_current_answer_does_not_replace_newer)
{
    put(1, 20, 0, "new");
    put(1, 10, 0, "stale");
    cr_expect_str_eq(get(1, ZCL_MAXTID), "new");
}

/* A load reply that left the server before an invalidation but arrives
 * after it must not bring the old revision back as current. */
Test(client_cache, late_current_answer_after_invalidation_is_ignored)
{
    put(1, 10, 0, "a");
    zcl__cache_invalidate(k, 1, 20);
    put(1, 10, 0, "a");
    cr_expect_null(get(1, ZCL_MAXTID));
    cr_expect_str_eq(get(1, 20), "a");
}

Test(client_cache, size_bound_evicts_least_recently_used)
{
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (uint64_t oid = 1; oid <= 10; oid++) {
        put(oid, 1, 0, big);
        get(1, ZCL_MAXTID); /* keep oid 1 hot */
    }
    zcl_cache_stats st;
    zcl__cache_stats(k, &st);
    cr_expect_leq(st.bytes, 4096);
    cr_expect_gt(st.evictions, 0);
    cr_expect_not_null(get(1, ZCL_MAXTID), "recently used entry survives");
    cr_expect_null(get(2, ZCL_MAXTID), "least recently used entry is gone");
}

Test(client_cache, clear_empties)
{
    put(1, 1, 0, "a");
    put(2, 1, 0, "b");
    cr_expect(!zcl__cache_is_empty(k));
    zcl__cache_clear(k);
    cr_expect(zcl__cache_is_empty(k));
    cr_expect_null(get(1, ZCL_MAXTID));
}
