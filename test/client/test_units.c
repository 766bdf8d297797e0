/* test_units.c: address parsing. */
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

