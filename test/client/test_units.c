/* test_units.c: address parsing, the JSON reader, tid timestamps. */
#include <criterion/criterion.h>
#include <string.h>

#include "client/client.h"

Test(client_addr, host_port_and_storage)
{
    zcl_addr a;
    cr_assert_eq(zcl_addr_parse("localhost:8100:main", 1, &a, NULL), 0);
    cr_expect_eq(a.kind, ZCL_ADDR_TCP);
    cr_expect_str_eq(a.host, "localhost");
    cr_expect_eq(a.port, 8100);
    cr_expect_str_eq(a.storage, "main");
    cr_expect_eq(zcl_addr_parse("localhost:8100:main", 0, &a, NULL), ZE_INVAL);
}

Test(client_addr, ipv6_unix_and_bare_port)
{
    zcl_addr a;
    cr_assert_eq(zcl_addr_parse("[::1]:9", 0, &a, NULL), 0);
    cr_expect_str_eq(a.host, "::1");
    cr_expect_eq(a.port, 9);
    cr_assert_eq(zcl_addr_parse("/tmp/zeo.sock:2", 1, &a, NULL), 0);
    cr_expect_eq(a.kind, ZCL_ADDR_UNIX);
    cr_expect_str_eq(a.path, "/tmp/zeo.sock");
    cr_expect_str_eq(a.storage, "2");
    cr_assert_eq(zcl_addr_parse("8100", 0, &a, NULL), 0);
    cr_expect_str_eq(a.host, "127.0.0.1");
    cr_expect_eq(zcl_addr_parse("host:99999", 0, &a, NULL), ZE_INVAL);
    cr_expect_eq(zcl_addr_parse("host:", 0, &a, NULL), ZE_INVAL);
}

/* The ruok payload recorded from the Python server (spec section 3). */
Test(client_json, ruok_answer)
{
    const char *text = "{\"1\": {\"connections\": 0, \"loads\": 5, \"lock_time\": null, "
                       "\"timeout-thread-is-alive\": true, \"ratio\": 0.5, "
                       "\"start\": \"Wed Nov 25 15:35:40 2026\", \"last-transaction\": "
                       "\"040d4167b60344bb\", \"esc\": \"a\\u00e9\\n\"}}";
    zv_arena *a = zv_arena_new();
    zv *v = NULL;
    cr_assert_eq(zcl_json_parse(text, a, &v, NULL), 0);
    const zv *s = zv_dict_get(v, "1");
    cr_assert_not_null(s);
    int64_t n;
    cr_expect(zv_get_int(zv_dict_get(s, "loads"), &n) && n == 5);
    cr_expect_eq(zv_dict_get(s, "lock_time")->type, ZV_NONE);
    cr_expect_eq(zv_dict_get(s, "timeout-thread-is-alive")->type, ZV_BOOL);
    cr_expect_eq(zv_dict_get(s, "ratio")->type, ZV_FLOAT);
    const zv *esc = zv_dict_get(s, "esc");
    cr_expect_eq(esc->u.s.len, 4);
    cr_expect_eq(memcmp(esc->u.s.p, "a\xc3\xa9\n", 4), 0);
    cr_assert_eq(zcl_json_parse("{\"e\": {}, \"l\": []}", a, &v, NULL), 0);
    cr_expect_eq(zv_dict_get(v, "e")->u.seq.n, 0);
    cr_expect_eq(zv_dict_get(v, "l")->type, ZV_LIST);
    cr_expect_neq(zcl_json_parse("{\"a\": }", a, &v, NULL), 0);
    cr_expect_neq(zcl_json_parse("{\"a\": 1} x", a, &v, NULL), 0);
    zv_arena_free(a);
}

