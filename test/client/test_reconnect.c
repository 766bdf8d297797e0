/* test_reconnect.c: a client outliving a server restart keeps only the
 * cache entries that are still right. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static ts_server srv;

static void stop(void)
{
    ts_server_free(&srv);
}

static zcl_client *cached_client(unsigned reconnect_ms)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.cache_size = 1 << 20;
    o.reconnect_ms = reconnect_ms;
    return th_connect(&srv, &o);
}

/* Load oid through c; returns 1 if the cache answered. */
static int load_counting_hit(zcl_client *c, uint64_t oid, zbuf *data)
{
    zcl_cache_stats a, b;
    zerr err = {0};
    zcl_cache_stats_get(c, &a);
    cr_assert_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, data, NULL, NULL, &err), 0, "%s",
                 err.msg);
    zcl_cache_stats_get(c, &b);
    return b.hits == a.hits + 1;
}

/* Run c's loop until the server's close is noticed. */
static void notice_loss(zcl_client *c)
{
    zerr err = {0};
    cr_expect_neq(zcl_ping_sync(c, &err), 0, "server is down: ping must fail");
    cr_expect(!zcl_is_ready(c));
}

static void restart_and_change(zcl_client *a, uint64_t changed, uint64_t serial)
{
    ts_server_stop(&srv);
    notice_loss(a);
    cr_assert_eq(ts_server_restart(&srv), 0, "server did not restart");
    zcl_client *b = th_connect(&srv, NULL);
    th_commit(b, &changed, &serial, 1, "changed while away");
    zcl_free(b);
}

Test(client_reconnect, catch_up_drops_changed_objects, .fini = stop)
{
    cr_assert_eq(ts_server_start(&srv, ""), 0);
    zcl_client *a = cached_client(0);
    uint64_t oids[2] = {th_new_oid(a), th_new_oid(a)};
    uint64_t t1 = th_commit(a, oids, NULL, 2, "original");
    zbuf data = ZBUF_INIT;
    load_counting_hit(a, oids[0], &data);
    load_counting_hit(a, oids[1], &data);

    restart_and_change(a, oids[0], t1);
    zerr err = {0};
    cr_assert_eq(zcl_connect_sync(a, &err), 0, "reconnect: %s", err.msg);
    cr_expect(!load_counting_hit(a, oids[0], &data), "changed object must come from server");
    cr_expect(th_record_has(&data, "changed while away"));
    cr_expect(load_counting_hit(a, oids[1], &data), "unchanged object kept in cache");
    cr_expect(th_record_has(&data, "original"));
    zbuf_free(&data);
    zcl_free(a);
}

/* Too far behind for the server's invalidation queue: getInvalidations says
 * None and the whole cache goes. */
Test(client_reconnect, flush_when_too_far_behind, .fini = stop)
{
    if (getenv("ZCL_TEST_SERVER"))
        cr_skip_test("needs zeolite's --invalidation-queue-size");
    cr_assert_eq(ts_server_start(&srv, "--invalidation-queue-size 1"), 0);
    zcl_client *a = cached_client(0);
    uint64_t oids[2] = {th_new_oid(a), th_new_oid(a)};
    uint64_t t1 = th_commit(a, oids, NULL, 2, "original");
    zbuf data = ZBUF_INIT;
    load_counting_hit(a, oids[1], &data);

    restart_and_change(a, oids[0], t1);
    zcl_client *b = th_connect(&srv, NULL);
    uint64_t cur;
    zerr err = {0};
    cr_assert_eq(zcl_last_transaction_sync(b, &cur, &err), 0);
    th_commit(b, oids, &cur, 1, "and again");
    zcl_free(b);
    cr_assert_eq(zcl_connect_sync(a, &err), 0, "reconnect: %s", err.msg);
    cr_expect(!load_counting_hit(a, oids[1], &data), "cache was flushed");
    cr_expect(th_record_has(&data, "original"));
    zbuf_free(&data);
    zcl_free(a);
}

Test(client_reconnect, automatic_reconnection, .fini = stop)
{
    cr_assert_eq(ts_server_start(&srv, ""), 0);
    zcl_client *a = cached_client(50);
    uint64_t oid = th_new_oid(a);
    uint64_t t1 = th_commit(a, &oid, NULL, 1, "original");
    zbuf data = ZBUF_INIT;
    load_counting_hit(a, oid, &data);
    restart_and_change(a, oid, t1);
    uv_loop_t *loop = zcl_loop(a);
    for (int i = 0; i < 400 && !zcl_is_ready(a); i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    cr_assert(zcl_is_ready(a), "client reconnected by itself");
    cr_expect(!load_counting_hit(a, oid, &data));
    cr_expect(th_record_has(&data, "changed while away"));
    zbuf_free(&data);
    zcl_free(a);
}
