/* The test-side JSON reader (test/jsonmini.c) that the fixture suites use. */
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

Test(jsonmini, values_map_to_zv)
{
    zv *v = parse_ok(" {\"a\": [1, -2, 2.5, true, false, null], \"b\": {}, \"c\": \"x\"} ");
    const zv *arr = json_get(v, "a");
    cr_assert_eq(arr->type, ZV_LIST);
    cr_assert_eq(arr->u.seq.n, 6);
    cr_assert_eq(arr->u.seq.items[1]->u.i, -2);
    cr_assert_eq(arr->u.seq.items[2]->type, ZV_FLOAT);
    cr_assert_eq(arr->u.seq.items[3]->u.b, 1);
    cr_assert_eq(arr->u.seq.items[4]->u.b, 0);
    cr_assert_eq(arr->u.seq.items[5]->type, ZV_NONE);
    cr_assert_eq(json_get(v, "b")->u.seq.n, 0);
    cr_assert_str_eq(json_str(v, "c"), "x");
    cr_assert_null(json_get(v, "missing"));
    cr_assert_null(json_str(v, "a"));
    cr_assert_eq(parse_ok("9223372036854775807")->u.i, INT64_MAX);
}

Test(jsonmini, string_escapes)
{
    zv *v = parse_ok("\"q\\\" b\\\\ s\\/ \\n\\t \\u00e9 \\ud83d\\ude00\"");
    const char want[] = "q\" b\\ s/ \n\t \xc3\xa9 \xf0\x9f\x98\x80";
    cr_assert_eq(v->u.s.len, sizeof want - 1);
    cr_assert_arr_eq(v->u.s.p, want, sizeof want - 1);
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

Test(jsonmini, malformed_documents)
{
    static const char *const bad[] = {
        "", "{", "[1,", "{\"a\" 1}", "{1: 2}", "\"abc", "\"\\x\"", "\"\\u12\"", "tru",
        "[1] 2", "99999999999999999999", "[1 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zv *v;
        zerr err = {0};
        cr_assert_eq(json_parse(bad[i], strlen(bad[i]), a, &v, &err), ZE_CORRUPT, "%s", bad[i]);
        cr_assert(strstr(err.msg, "json: offset"), "%s", err.msg);
    }
}
