/* test_invalidate.c: two clients on one server: invalidations, and a cache
 * that never serves what another client has changed. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"

typedef struct seen {
    int calls;
    uint64_t tid, oid;
} seen;

static void on_inval(zcl_client *c, uint64_t tid, const uint64_t *oids, size_t n, void *data)
{
    seen *s = data;
    s->calls++;
    s->tid = tid;
    s->oid = n ? oids[0] : 0;
}

static zcl_client *cached_client(seen *s)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.cache_size = 1 << 20;
    o.on_invalidate = on_inval;
    o.cb_data = s;
    return th_connect(&th_srv, &o);
}

static void load(zcl_client *c, uint64_t oid, uint64_t before, zbuf *data, uint64_t *start,
                 uint64_t *end)
{
    zerr err = {0};
    cr_assert_eq(zcl_load_before_sync(c, oid, before, data, start, end, &err), 0, "%s",
                 err.msg);
}

static void other_client_commit_invalidates_cache(void)
{
    seen sa = {0}, sb = {0};
    zcl_client *a = cached_client(&sa), *b = cached_client(&sb);
    uint64_t oid = th_new_oid(a);
    uint64_t t1 = th_commit(a, &oid, NULL, 1, "one");
    zerr err = {0};
    cr_assert_eq(zcl_ping_sync(b, &err), 0, "%s", err.msg);
    cr_expect_eq(sb.calls, 1, "b saw a's first commit");

    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    load(b, oid, ZCL_MAXTID, &data, &start, &end);
    cr_expect(th_record_has(&data, "one"));
    zcl_cache_stats st0, st1;
    zcl_cache_stats_get(b, &st0);
    load(b, oid, ZCL_MAXTID, &data, &start, &end);
    zcl_cache_stats_get(b, &st1);
    cr_expect_eq(st1.hits, st0.hits + 1, "second load served by the cache");

    uint64_t t2 = th_commit(a, &oid, &t1, 1, "two");
    /* A sync round trip guarantees earlier invalidations have arrived. */
    cr_assert_eq(zcl_ping_sync(b, &err), 0, "%s", err.msg);
    cr_expect_eq(sb.calls, 2);
    cr_expect_eq(sb.tid, t2);
    cr_expect_eq(sb.oid, oid);
    cr_expect_eq(zcl_last_tid(b), t2);
    cr_expect_eq(sa.calls, 0, "no invalidation for one's own commits");

    load(b, oid, ZCL_MAXTID, &data, &start, &end);
    cr_expect(th_record_has(&data, "two"), "cache must not serve the old revision");
    cr_expect_eq(start, t2);
    /* The old revision stays good for reads before t2, from the cache. */
    zcl_cache_stats_get(b, &st0);
    load(b, oid, t2, &data, &start, &end);
    zcl_cache_stats_get(b, &st1);
    cr_expect(th_record_has(&data, "one"));
    cr_expect_eq(start, t1);
    cr_expect_eq(end, t2);
    cr_expect_eq(st1.hits, st0.hits + 1);
    zbuf_free(&data);
    zcl_free(a);
    zcl_free(b);
}

Test(client_invalidate, other_client_commit_invalidates_cache_z5, .init = th_serve,
     .fini = th_unserve)
{
    other_client_commit_invalidates_cache();
}

Test(client_invalidate, other_client_commit_invalidates_cache_m5, .init = th_serve_m5,
     .fini = th_unserve)
{
    other_client_commit_invalidates_cache();
}

/* The committer's own cache takes what it stored. */
Test(client_invalidate, own_commit_updates_own_cache, .init = th_serve, .fini = th_unserve)
{
    seen sa = {0};
    zcl_client *a = cached_client(&sa);
    uint64_t oid = th_new_oid(a);
    uint64_t t1 = th_commit(a, &oid, NULL, 1, "mine");
    zcl_cache_stats st0, st1;
    zcl_cache_stats_get(a, &st0);
    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    load(a, oid, ZCL_MAXTID, &data, &start, &end);
    zcl_cache_stats_get(a, &st1);
    cr_expect_eq(st1.hits, st0.hits + 1);
    cr_expect(th_record_has(&data, "mine"));
    cr_expect_eq(start, t1);
    zbuf_free(&data);
    zcl_free(a);
}

/* A prefetch fills the cache with one batch of pipelined loads. */
Test(client_invalidate, prefetch_fills_cache, .init = th_serve, .fini = th_unserve)
{
    seen sa = {0};
    zcl_client *a = cached_client(&sa);
    zcl_client *w = th_connect(&th_srv, NULL);
    uint64_t oids[30];
    for (int i = 0; i < 30; i++)
        oids[i] = th_new_oid(w);
    th_commit(w, oids, NULL, 30, "prefetched");
    zerr err = {0};
    cr_assert_eq(zcl_ping_sync(a, &err), 0);
    cr_expect_eq(zcl_prefetch(a, oids, 30, ZCL_MAXTID), 30);
    zcl_cache_stats st;
    /* Replies may come in any order; wait until all are in. */
    for (int i = 0; i < 100; i++) {
        zcl_cache_stats_get(a, &st);
        if (st.entries == 30)
            break;
        cr_assert_eq(zcl_ping_sync(a, &err), 0);
    }
    cr_expect_eq(st.entries, 30);
    cr_expect_eq(zcl_prefetch(a, oids, 30, ZCL_MAXTID), 0, "all cached now");
    zcl_free(w);
    zcl_free(a);
}
