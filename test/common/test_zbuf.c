#include <criterion/criterion.h>
#include <string.h>

#include "common/zbuf.h"
#include "common/zerr.h"

Test(zbuf, append_grows_and_keeps_bytes)
{
    zbuf b = ZBUF_INIT;
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(zbuf_append_byte(&b, (uint8_t)i), ZE_OK);
    cr_assert_eq(b.len, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(b.data[i], (uint8_t)i);
    cr_assert_eq(zbuf_set(&b, "abc", 3), ZE_OK);
    cr_assert_eq(b.len, 3);
    cr_assert(memcmp(b.data, "abc", 3) == 0);
    zbuf_free(&b);
    cr_assert_null(b.data);
}

Test(zbuf, big_endian_round_trip)
{
    uint8_t p[8];
    zbe64_put(p, 0x0102030405060708ULL);
    cr_assert_eq(p[0], 1);
    cr_assert_eq(p[7], 8);
    cr_assert_eq(zbe64(p), 0x0102030405060708ULL);
    zbe32_put(p, 0xdeadbeef);
    cr_assert_eq(zbe32(p), 0xdeadbeef);
    zbe16_put(p, 0xabcd);
    cr_assert_eq(zbe16(p), 0xabcd);
}

Test(zerr, messages_and_codes)
{
    zerr e;
    cr_assert_eq(zerr_set(&e, ZE_CONFLICT, "oid %d", 7), ZE_CONFLICT);
    cr_assert_str_eq(e.msg, "oid 7");
    cr_assert_eq(zerr_sys(&e, 28 /* ENOSPC */, "write"), ZE_FULL);
    cr_assert(strstr(e.msg, "write: ") == e.msg);
    cr_assert_str_eq(zerr_name(ZE_NOTFOUND), "ZE_NOTFOUND");
    cr_assert_eq(zerr_set(NULL, ZE_IO, "x"), ZE_IO);
}

Test(zbuf, hex_digits)
{
    cr_assert_eq(zhex_digit('0'), 0);
    cr_assert_eq(zhex_digit('9'), 9);
    cr_assert_eq(zhex_digit('a'), 10);
    cr_assert_eq(zhex_digit('F'), 15);
    cr_assert_eq(zhex_digit('g'), -1);
    cr_assert_eq(zhex_digit('/'), -1);
    cr_assert_eq(zhex_digit('\0'), -1);
}
