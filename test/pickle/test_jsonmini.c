/* The test-side JSON helpers (test/jsonmini.c) that the fixture suites use. */
#include <criterion/criterion.h>
#include <string.h>

#include "jsonmini.h"

static zv_arena *a;

static void setup(void)
{
    a = zv_arena_new();
}

static void teardown(void)
{
    zv_arena_free(a);
}

TestSuite(jsonmini, .init = setup, .fini = teardown);

static zv *parse_ok(const char *text)
{
    zv *v;
    zerr err = {0};
    cr_assert_eq(json_parse(text, strlen(text), a, &v, &err), 0, "%s: %s", text, err.msg);
    return v;
}

/* The lookups the fixture suites use (parsing itself: test/common/test_zjson.c). */
Test(jsonmini, lookups)
{
    zv *v = parse_ok(" {\"a\": [1], \"b\": {}, \"c\": \"x\"} ");
    cr_assert_eq(json_get(v, "a")->type, ZV_LIST);
    cr_assert_eq(json_get(v, "b")->u.seq.n, 0);
    cr_assert_str_eq(json_str(v, "c"), "x");
    cr_assert_null(json_get(v, "missing"));
    cr_assert_null(json_str(v, "a"));
}

Test(jsonmini, unhex)
{
    size_t n;
    unsigned char *b = json_unhex("00ff7A", &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(b[1], 0xff);
    cr_assert_eq(b[2], 0x7a);
    free(b);
    cr_assert_null(json_unhex("abc", &n));
    cr_assert_null(json_unhex("zz", &n));
}
