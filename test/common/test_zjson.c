/* The JSON reader shared by the tools (ruok) and the fixture tests. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/zjson.h"

static zv_arena *a;

static void setup(void)
{
    a = zv_arena_new();
}

static void teardown(void)
{
    zv_arena_free(a);
}

TestSuite(zjson, .init = setup, .fini = teardown);

static zv *parse_ok(const char *text)
{
    zv *v;
    zerr err = {0};
    cr_assert_eq(zjson_parse(text, strlen(text), a, &v, &err), 0, "%s: %s", text, err.msg);
    return v;
}

Test(zjson, values_map_to_zv)
{
    zv *v = parse_ok(" {\"a\": [1, -2, 2.5, true, false, null], \"b\": {}, \"c\": \"x\"} ");
    const zv *arr = zv_dict_get(v, "a");
    cr_assert_eq(arr->type, ZV_LIST);
    cr_assert_eq(arr->u.seq.n, 6);
    cr_assert_eq(arr->u.seq.items[1]->u.i, -2);
    cr_assert_eq(arr->u.seq.items[2]->type, ZV_FLOAT);
    cr_assert_eq(arr->u.seq.items[3]->u.b, 1);
    cr_assert_eq(arr->u.seq.items[4]->u.b, 0);
    cr_assert_eq(arr->u.seq.items[5]->type, ZV_NONE);
    cr_assert_eq(zv_dict_get(v, "b")->u.seq.n, 0);
    cr_assert_str_eq((const char *)zv_dict_get(v, "c")->u.s.p, "x");
    cr_assert_eq(parse_ok("9223372036854775807")->u.i, INT64_MAX);
}

Test(zjson, string_escapes)
{
    zv *v = parse_ok("\"q\\\" b\\\\ s\\/ \\n\\t \\u00e9 \\ud83d\\ude00\"");
    const char want[] = "q\" b\\ s/ \n\t \xc3\xa9 \xf0\x9f\x98\x80";
    cr_assert_eq(v->u.s.len, sizeof want - 1);
    cr_assert_arr_eq(v->u.s.p, want, sizeof want - 1);
}

Test(zjson, malformed_documents)
{
    static const char *const bad[] = {
        "", "{", "[1,", "{\"a\" 1}", "{1: 2}", "\"abc", "\"\\x\"", "\"\\u12\"", "tru",
        "[1] 2", "99999999999999999999", "[1 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zv *v;
        zerr err = {0};
        cr_assert_eq(zjson_parse(bad[i], strlen(bad[i]), a, &v, &err), ZE_CORRUPT, "%s", bad[i]);
        cr_assert(strstr(err.msg, "json: offset"), "%s", err.msg);
    }
}

/* Input is bounded by len, not by a NUL: what follows is never read. */
Test(zjson, reads_only_len_bytes)
{
    zv *v;
    cr_assert_eq(zjson_parse("[1] garbage", 3, a, &v, NULL), 0);
    cr_assert_eq(v->u.seq.n, 1);
    cr_assert_eq(zjson_parse("\"ab\"", 3, a, &v, NULL), ZE_CORRUPT);
}

/* A hostile server cannot exhaust the stack with nesting. */
Test(zjson, nesting_is_bounded)
{
    char deep[2 * (ZJSON_MAX_DEPTH + 2) + 1];
    size_t n = ZJSON_MAX_DEPTH + 2;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    zv *v;
    zerr err = {0};
    cr_assert_eq(zjson_parse(deep, 2 * n, a, &v, &err), ZE_CORRUPT);
    cr_assert(strstr(err.msg, "nested too deep"), "%s", err.msg);
    cr_assert_eq(zjson_parse(deep + 2, 2 * (n - 2), a, &v, &err), 0, "%s", err.msg);
}

/* The ruok payload recorded from the Python server (spec section 3), as
 * `zeolite status` reads it. */
Test(zjson, the_python_servers_ruok_answer)
{
    zv *v = parse_ok("{\"1\": {\"connections\": 0, \"loads\": 5, \"lock_time\": null, "
                     "\"timeout-thread-is-alive\": true, \"ratio\": 0.5, "
                     "\"start\": \"Wed Nov 25 15:35:40 2026\", \"last-transaction\": "
                     "\"040d4167b60344bb\", \"esc\": \"a\\u00e9\\n\"}}");
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
}
