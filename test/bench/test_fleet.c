/* bench/fleet.sh end to end on the tests' PostgreSQL cluster, small and
 * without Python: one zeolite server, then two sharing one database with
 * the bench's clients split between them, each through the load, commit and
 * lag workloads. The table and the JSON hold every run with its numbers,
 * and nothing failed or went missing; how fast is never judged here. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jsonmini.h"
#include "pgtest.h"
#include "testutil.h"

TestSuite(bench_fleet, .timeout = 300);

/* Run the script; its stdout and stderr into *out, its exit status back. */
static int run_fleet(const char *args, char **out)
{
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "ZEOLITE='%s' bash '%s/bench/fleet.sh' %s 2>&1", tu_zeolite_bin(),
                       ZEOLITE_SOURCE_DIR, args) > 0);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t cap = 0;
    *out = NULL;
    FILE *m = open_memstream(out, &cap);
    cr_assert_not_null(m);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    int st = pclose(p);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double num(const zv *run, const char *key)
{
    const zv *v = json_get(run, key);
    cr_assert(v && (v->type == ZV_INT || v->type == ZV_FLOAT), "%s: not a number", key);
    return v->type == ZV_INT ? (double)v->u.i : v->u.f;
}

/* One run of the JSON: a number in each field the table shows. */
static void check_run(const zv *run, const char *setup, const char *name)
{
    cr_expect_gt(num(run, "ops"), 0, "%s %s: no operations", setup, name);
    cr_expect_eq(num(run, "errors"), 0, "%s %s: errors", setup, name);
    cr_expect_gt(num(run, "ops_per_s"), 0, "%s %s", setup, name);
    cr_expect_geq(num(run, "p99_us"), num(run, "p50_us"), "%s %s", setup, name);
    cr_expect_eq(num(run, "servers"), strcmp(setup, "two") ? 1 : 2, "%s %s", setup, name);
    cr_expect_geq(num(run, "zeolite_cpu_us_per_op"), 0, "%s %s", setup, name);
    cr_expect_geq(num(run, "pg_cpu_us_per_op"), 0, "%s %s", setup, name);
    const char *workload = json_str(run, "workload");
    cr_assert(workload);
    cr_expect_str_eq(workload, strncmp(name, "lag", 3) ? name : "lag");
    if (strncmp(name, "lag", 3))
        return;
    cr_expect_eq(num(run, "watchers"), 2);
    cr_expect_eq(num(run, "rate"), strcmp(name, "lag-paced") ? 0 : 50);
    /* every commit counted reached both watchers, none went missing */
    cr_expect_eq(num(run, "lag_count"), 2 * num(run, "ops"), "%s lag", setup);
    cr_expect_eq(num(run, "lag_missing"), 0, "%s lag", setup);
    cr_expect_geq(num(run, "lag_p99_us"), num(run, "lag_p50_us"));
    cr_expect_geq(num(run, "lag_max_us"), num(run, "lag_p99_us"));
}

Test(bench_fleet, one_and_two_servers_report_every_run)
{
    char *dir = tu_tmpdir("fleet"), *json = tu_path(dir, "out.json"), *args = NULL, *out;
    /* Unix sockets: no TCP port to race another run for */
    cr_assert(asprintf(&args, "--pg-host '%s' --unix --no-python --duration 0.5 --clients 4 "
                       "--committers 2 --watchers 2 --lag-rate 50 --json '%s'", tu_pg_host(),
                       json) > 0);
    int status = run_fleet(args, &out);
    cr_assert_eq(status, 0, "fleet.sh failed:\n%s", out);
    const char *rows[] = {"one zeolite, pg ", "two zeolite, pg shared ", "invalidation lag",
                          "goal two zeolite lag p99 < 10000 us: "};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        cr_expect(strstr(out, rows[i]), "no \"%s\" in\n%s", rows[i], out);
    cr_expect(!strstr(out, "goal two zeolite lag p99 < 10000 us: - us"), "no lag:\n%s", out);

    size_t len;
    char *text = (char *)tu_read_file(json, &len);
    cr_assert_not_null(text, "no %s:\n%s", json, out);
    zv_arena *a = zv_arena_new();
    zv *root;
    zerr err;
    cr_assert_eq(json_parse(text, len, a, &root, &err), 0, "%s: %s", err.msg, text);
    const zv *setups = json_get(root, "setups"), *runs = json_get(root, "runs");
    cr_assert(setups && setups->type == ZV_LIST && setups->u.seq.n == 2, "%s", text);
    cr_assert(runs && runs->type == ZV_LIST, "%s", text);
    const char *want_s[] = {"one", "two"}, *want_w[] = {"load", "commit", "lag", "lag-paced"};
    for (size_t w = 0; w < 4; w++)
        for (size_t s = 0; s < 2; s++) {
            int found = 0;
            for (size_t i = 0; i < runs->u.seq.n; i++) {
                const zv *r = runs->u.seq.items[i];
                const char *rs = json_str(r, "setup"), *rw = json_str(r, "run");
                if (!rs || !rw || strcmp(rs, want_s[s]) || strcmp(rw, want_w[w]))
                    continue;
                found++;
                check_run(r, rs, rw);
            }
            cr_expect_eq(found, 1, "%s %s: %d runs in %s", want_s[s], want_w[w], found, text);
        }
    zv_arena_free(a);
    free(text);
    free(out);
    free(args);
    free(json);
    tu_rmrf(dir);
    free(dir);
}
