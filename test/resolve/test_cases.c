/* test_cases.c: zeolite's resolvers against BTrees' own answers.
 *
 * The cases are gen_cases.py's: random three-way conflicts on every class
 * resolved, each answered by Debian's BTrees 4.3.1 as ZODB's conflict
 * resolution asks it. The fixed-seed set is committed
 * (fixtures/cases.bin); ctest also runs a fresh set (test_resolve_fresh,
 * ZEOLITE_RESOLVE_CASES names its file).
 *
 * Checked on every case: zeolite never resolves where BTrees refuses; where
 * both resolve, the records are equal, state and bytes; where zeolite says
 * BTrees refuses or fails, it does, for the same reason number. And a
 * resolver that always fell back would fail: of the cases BTrees resolves,
 * zeolite must resolve all for the integer-keyed families and Length and
 * for object keys of str, bytes, int and tuples of these, and 95% overall.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "pickle/pickle.h"
#include "pickle/record.h"
#include "resolve/resolve.h"

#define MAX_CLASSES 64

typedef struct stats {
    char klass[256];
    unsigned total, btrees, both, must, must_ok;
} stats;

static stats *stats_for(stats *all, size_t *n, const char *klass)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(all[i].klass, klass))
            return &all[i];
    cr_assert_lt(*n, MAX_CLASSES, "too many classes");
    memset(&all[*n], 0, sizeof all[*n]);
    snprintf(all[*n].klass, sizeof all[*n].klass, "%s", klass);
    return &all[(*n)++];
}

/* Zeolite must resolve every case BTrees resolves in these categories. */
static int must_resolve(const rcase *c)
{
    if (!strcmp(c->kind, "odd"))
        return 0;
    const char *family = c->klass + strlen("BTrees.");
    if (family[0] == 'I' || family[0] == 'L') /* IO..LF families, and Length */
        return 1;
    return !strcmp(c->kind, "int") || !strcmp(c->kind, "str") || !strcmp(c->kind, "bytes") ||
           !strcmp(c->kind, "tuple");
}

static void same_state(const rcase *c, const uint8_t *got, size_t got_len)
{
    zv_arena *a = zv_arena_new();
    zv *m1, *s1, *m2, *s2;
    zerr err;
    cr_assert_eq(record_decode(a, got, got_len, PICKLE_PY2_ASCII, &m1, &s1, &err), 0,
                 "%s #%u: zeolite's record does not decode: %s", c->klass, c->index, err.msg);
    cr_assert_eq(record_decode(a, c->resolved, c->resolved_len, PICKLE_PY2_ASCII, &m2, &s2, &err),
                 0, "%s #%u: %s", c->klass, c->index, err.msg);
    cr_expect(zv_equal(m1, m2), "%s #%u: class metadata differs", c->klass, c->index);
    if (!zv_equal(s1, s2)) {
        char *x = NULL, *y = NULL;
        zv_repr(s1, &x);
        zv_repr(s2, &y);
        cr_expect_fail("%s #%u: resolved states differ:\n zeolite %s\n BTrees  %s", c->klass, c->index,
                x, y);
        free(x);
        free(y);
    }
    zv_arena_free(a);
}

/* One case; returns zeolite's status. */
static resolve_status check_case(const rcase *c, resolve_info *info)
{
    zbuf out = ZBUF_INIT;
    resolve_status s = resolve_records(c->rec[0], c->len[0], c->rec[1], c->len[1], c->rec[2],
                                       c->len[2], &out, info);
    if (s == RESOLVE_OK) {
        cr_assert_eq(c->answer, CASE_RESOLVED,
                     "%s #%u (%s): zeolite resolves where BTrees refuses (%s %d)", c->klass,
                     c->index, c->kind, c->answer == CASE_ERROR ? c->error : "reason",
                     c->reason);
        same_state(c, out.data, out.len);
        cr_expect(out.len == c->resolved_len && !memcmp(out.data, c->resolved, out.len),
                  "%s #%u (%s): same state, other bytes", c->klass, c->index, c->kind);
    } else if (s == RESOLVE_CONFLICT) {
        cr_expect(c->answer == CASE_CONFLICT && c->reason == info->btrees_reason,
                  "%s #%u: zeolite says BTrees refuses with reason %d; BTrees says %s %d",
                  c->klass, c->index, info->btrees_reason,
                  c->answer == CASE_RESOLVED ? "resolved" : c->error, c->reason);
    } else if (s == RESOLVE_UNORDERABLE || s == RESOLVE_BADVALUE) {
        cr_expect(c->answer != CASE_RESOLVED, "%s #%u: zeolite says BTrees fails (%s), it resolves",
                  c->klass, c->index, info->msg);
    }
    zbuf_free(&out);
    return s;
}

static void report(const stats *all, size_t n, const unsigned *why)
{
    unsigned btrees = 0, both = 0;
    printf("%-28s %6s %8s %8s %7s\n", "class", "cases", "BTrees", "zeolite", "rate");
    for (size_t i = 0; i < n; i++) {
        const stats *s = &all[i];
        printf("%-28s %6u %8u %8u %6.1f%%\n", s->klass, s->total, s->btrees, s->both,
               s->btrees ? 100.0 * s->both / s->btrees : 100.0);
        btrees += s->btrees;
        both += s->both;
    }
    printf("%-28s %6s %8u %8u %6.1f%%\n", "all", "", btrees, both,
           btrees ? 100.0 * both / btrees : 100.0);
    for (int s = 1; s <= RESOLVE_NOMEM; s++)
        if (why[s])
            printf("  falls back where BTrees resolves: %s x %u\n",
                   resolve_status_name((resolve_status)s), why[s]);
}

Test(resolve_cases, btrees_agrees, .timeout = 600)
{
    const char *path = getenv("ZEOLITE_RESOLVE_CASES");
    if (!path || !*path)
        path = ZEOLITE_RESOLVE_FIXTURE;
    rcases f;
    rcase c;
    cr_assert_eq(cases_open(&f, path), 0, "cannot read the case file %s", path);
    printf("resolve cases: %s, seed %u, %u cases\n", path, f.seed, f.count);
    stats all[MAX_CLASSES];
    size_t nclasses = 0;
    unsigned why[RESOLVE_NOMEM + 1] = {0}, must_missed = 0;
    int rc;
    while ((rc = cases_next(&f, &c)) == 1) {
        stats *s = stats_for(all, &nclasses, c.klass);
        resolve_info info;
        resolve_status z = check_case(&c, &info);
        s->total++;
        if (c.answer != CASE_RESOLVED)
            continue;
        s->btrees++;
        s->both += z == RESOLVE_OK;
        why[z]++;
        if (must_resolve(&c) && z != RESOLVE_OK && must_missed++ < 5)
            cr_log_error("%s #%u (%s keys): BTrees resolves, zeolite falls back: %s (%s)",
                         c.klass, c.index, c.kind, resolve_status_name(z), info.msg);
    }
    cr_assert_eq(rc, 0, "damaged case file %s after %u cases", path, f.read);
    report(all, nclasses, why);
    unsigned btrees = 0, both = 0;
    for (size_t i = 0; i < nclasses; i++) {
        btrees += all[i].btrees;
        both += all[i].both;
    }
    cr_expect_eq(must_missed, 0, "%u cases BTrees resolves in the must-resolve categories fell back",
                 must_missed);
    cr_expect_geq(both * 100.0, btrees * 95.0, "zeolite resolves %u of the %u cases BTrees resolves",
                  both, btrees);
    cr_expect_geq(nclasses, 37, "only %zu classes in the case file", nclasses);
    cases_close(&f);
}
