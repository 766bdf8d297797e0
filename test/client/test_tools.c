/* test_tools.c: the admin commands' output and exit codes: status (Nagios
 * codes), pack (zeopack's), last-tid, info. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "testutil.h"

TestSuite(client_tools, .init = th_serve, .fini = th_unserve);

/* Run `zeolite ARGS REDIRECT`; exit status, what the shell's stdout got in *out. */
static int vzeolite(char **out, const char *redirect, const char *fmt, va_list ap)
{
    char *args = NULL, *cmd = NULL;
    cr_assert_geq(vasprintf(&args, fmt, ap), 0);
    cr_assert_geq(asprintf(&cmd, "%s %s %s", tu_zeolite_bin(), args, redirect), 0);
    int rc = ts_run(cmd, out);
    free(args);
    free(cmd);
    return rc;
}

/* Run `zeolite ARGS` (stderr dropped); exit status, stdout in *out. */
static int zeolite(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vzeolite(out, "2>/dev/null", fmt, ap);
    va_end(ap);
    return rc;
}

/* As zeolite(), with stderr in *out instead of stdout. */
static int zeolite_stderr(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vzeolite(out, "2>&1 >/dev/null", fmt, ap);
    va_end(ap);
    return rc;
}

/* An address nobody listens on: the server's, once stopped. */
static char *dead_addr(void)
{
    char *a = strdup(th_srv.addr);
    ts_server_stop(&th_srv);
    return a;
}

static uint64_t commit_something(void)
{
    zcl_client *c = th_connect(&th_srv, NULL);
    uint64_t oid = 0; /* the root, so that pack has something to start from */
    uint64_t tid = th_commit(c, &oid, NULL, 1, "root");
    zcl_free(c);
    return tid;
}

Test(client_tools, status_warns_on_empty_storage)
{
    char *out = NULL;
    cr_expect_eq(zeolite(&out, "status %s", th_srv.addr), 1);
    cr_expect_str_eq(out, "Empty storage '1'\n");
    free(out);
}

Test(client_tools, status_ok_with_metrics)
{
    commit_something();
    char *out = NULL;
    cr_expect_eq(zeolite(&out, "status %s", th_srv.addr), 0);
    cr_expect_str_eq(out, "OK\n");
    free(out);
    cr_expect_eq(zeolite(&out, "status -m %s", th_srv.addr), 0);
    cr_expect_str_eq(out, "OK|active_txns=0\n| connections=0\n waiting=0\n");
    free(out);
}

Test(client_tools, status_rates_from_status_file)
{
    commit_something();
    char *path = NULL, *out = NULL;
    cr_assert_geq(asprintf(&path, "%s/nagios.json", th_srv.dir), 0);
    cr_expect_eq(zeolite(&out, "status -m -s %s %s", path, th_srv.addr), 0);
    free(out);
    /* Age the sample so that the next run computes rates. */
    char *cmd = NULL;
    cr_assert_geq(asprintf(&cmd, "touch -d '-60 seconds' %s", path), 0);
    cr_assert_eq(ts_run(cmd, NULL), 0);
    cr_expect_eq(zeolite(&out, "status -m -s %s -u seconds %s", path, th_srv.addr), 0);
    cr_expect(strstr(out, "\n commits=0.0\n") != NULL, "got: %s", out);
    cr_expect(strstr(out, "\n loads=") != NULL, "got: %s", out);
    free(out);
    free(cmd);
    free(path);
}

Test(client_tools, status_critical_when_unreachable)
{
    char *addr = dead_addr(), *out = NULL;
    cr_expect_eq(zeolite(&out, "status %s", addr), 2);
    cr_expect_eq(strncmp(out, "Can't connect", 13), 0, "got: %s", out);
    free(out);
    cr_expect_eq(zeolite(NULL, "status"), 3, "usage error is UNKNOWN");
    free(addr);
}

Test(client_tools, last_tid_prints_the_commit)
{
    char *out = NULL, want[32];
    cr_expect_eq(zeolite(&out, "last-tid %s", th_srv.addr), 0);
    cr_expect_str_eq(out, "0000000000000000\n");
    free(out);
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)commit_something());
    cr_expect_eq(zeolite(&out, "last-tid %s", th_srv.addr), 0);
    cr_expect_str_eq(out, want);
    free(out);
    char *addr = dead_addr();
    cr_expect_eq(zeolite(NULL, "last-tid %s", addr), 1);
    free(addr);
}

/* The connection flags every client command takes (tools/cli.c). */
Test(client_tools, connection_flags_are_applied_and_checked)
{
    char *out = NULL;
    cr_expect_eq(zeolite(&out, "last-tid --encoding M %s", th_srv.addr), 0);
    cr_expect_str_eq(out, "0000000000000000\n");
    free(out);
    cr_expect_eq(zeolite(NULL, "last-tid --encoding Z --storage 1 %s", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "last-tid --storage nosuch %s", th_srv.addr), 1,
                 "the storage named is the one asked for");
    cr_expect_eq(zeolite(NULL, "last-tid --encoding X %s", th_srv.addr), 2, "bad value");
    cr_expect_eq(zeolite(NULL, "last-tid %s --storage", th_srv.addr), 2, "missing value");
    cr_expect_eq(zeolite(NULL, "info %s --tls-ca", th_srv.addr), 2, "missing value");
    cr_expect_eq(zeolite(NULL, "last-tid --tls %s --timeout 5", th_srv.addr), 1,
                 "--tls to a plain server fails to connect");
}

Test(client_tools, info_lists_storage_facts)
{
    char *out = NULL, want[64];
    snprintf(want, sizeof want, "last-transaction: %016llx\n",
             (unsigned long long)commit_something());
    cr_expect_eq(zeolite(&out, "info %s", th_srv.addr), 0);
    cr_expect(strstr(out, want) != NULL, "got: %s", out);
    cr_expect(strstr(out, "supportsUndo: ") != NULL);
    cr_expect(strstr(out, "status.commits: ") != NULL);
    free(out);
}

Test(client_tools, pack_exit_codes)
{
    commit_something();
    cr_expect_eq(zeolite(NULL, "pack %s -d 0", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack %s:1 -d 1 -t 12:00", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack %s -t 1:2:3:4", th_srv.addr), 1, "bad time");
    cr_expect_eq(zeolite(NULL, "pack %s:nosuch", th_srv.addr), 1, "unknown storage");
    char *addr = dead_addr();
    cr_expect_eq(zeolite(NULL, "pack %s --timeout 5", addr), 1, "unreachable");
    free(addr);
}

/* zeopack's own spellings, as a cron line has them (tools/cli.c). */
Test(client_tools, pack_takes_zeopacks_spellings)
{
    commit_something();
    char host[64];
    const char *colon = strrchr(th_srv.addr, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - th_srv.addr), th_srv.addr);
    cr_expect_eq(zeolite(NULL, "pack --days=1 %s", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack -d1 %s", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack %s --days 0 --timeout=30", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack -t 12 -d 2 %s:1", th_srv.addr), 0);
    cr_expect_eq(zeolite(NULL, "pack -h %s -p %s -S 1", host, colon + 1), 0, "deprecated form");
    cr_expect_eq(zeolite(NULL, "pack -h%s -p%s", host, colon + 1), 0, "attached values");
    char *err = NULL, want[200];
    cr_expect_eq(zeolite_stderr(&err, "pack -d1 %s:main", th_srv.addr), 1);
    snprintf(want, sizeof want, "Error packing storage main in %s:main\n", th_srv.addr);
    cr_expect(err && strstr(err, want), "the storage of ADDR:NAME is named: %s", err);
    free(err);
    cr_expect_eq(zeolite_stderr(&err, "pack -d1 -h %s -p %s -S other", host, colon + 1), 1);
    cr_expect(err && strstr(err, "Error packing storage other in "), "%s", err);
    free(err);
}

/* Off a terminal, with --progress-interval 0, every step of a pack prints a
 * line; --quiet none. */
Test(client_tools, pack_progress_lines)
{
    commit_something();
    char *err = NULL, want[200];
    cr_expect_eq(zeolite_stderr(&err, "pack --progress-interval 0 %s", th_srv.addr), 0);
    snprintf(want, sizeof want, "pack: packing storage 1 on %s, ", th_srv.addr);
    cr_expect(err && strstr(err, want), "%s", err);
    snprintf(want, sizeof want, "pack: packed storage 1 on %s, ", th_srv.addr);
    cr_expect(err && strstr(err, want), "%s", err);
    free(err);
    cr_expect_eq(zeolite_stderr(&err, "pack -q --progress-interval 0 %s", th_srv.addr), 0);
    cr_expect_str_eq(err, "");
    free(err);
}

Test(client_tools, help_everywhere)
{
    const char *cmds[] = {"status", "pack", "last-tid", "info", "bench"};
    for (size_t i = 0; i < 5; i++) {
        char *out = NULL;
        cr_expect_eq(zeolite(&out, "%s --help", cmds[i]), 0, "%s --help", cmds[i]);
        cr_expect(strstr(out, "usage: zeolite") != NULL, "%s --help", cmds[i]);
        free(out);
    }
}

/* Every workload runs against the server and reports one JSON line with the
 * fields compare.sh reads (not a speed test: only that it works). */
Test(client_tools, bench_workloads_report_json)
{
    const char *runs[] = {
        "load --clients 2 --in-flight 4", "cold --clients 2", "commit --clients 2",
        "mixed --clients 2", "conflict --clients 3 --objects-per-txn 2",
        "large --object-size 100000", "blob --object-size 100000", "counter --clients 4",
        "lag --clients 2",
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char *out = NULL;
        cr_assert_eq(zeolite(&out, "bench %s --workload %s --duration 0.5 --objects 50 --json",
                             th_srv.addr, runs[i]), 0, "%s", runs[i]);
        char *last = strrchr(out, '{');
        cr_assert_not_null(last, "%s: no JSON in %s", runs[i], out);
        char name[32];
        sscanf(runs[i], "%31s", name);
        char want[64];
        snprintf(want, sizeof want, "\"workload\": \"%s\"", name);
        cr_expect(strstr(last, want) != NULL, "%s", last);
        cr_expect(strstr(last, "\"errors\": 0,") != NULL, "%s: %s", runs[i], last);
        cr_expect(strstr(last, "\"ops\": 0,") == NULL, "%s: no ops: %s", runs[i], last);
        cr_expect(strstr(last, "\"p99_us\": ") != NULL);
        if (!strcmp(name, "conflict"))
            cr_expect(strstr(last, "\"conflicts\": 0}") == NULL, "conflicts expected: %s", last);
        /* the server resolves the counter's conflicts: none comes back */
        if (!strcmp(name, "counter"))
            cr_expect(strstr(last, "\"conflicts\": 0}") != NULL, "%s", last);
        /* every commit's invalidation reached both watchers */
        unsigned long long ops = 0, lags = 0;
        if (!strcmp(name, "lag")) {
            const char *o = strstr(last, "\"ops\": "), *l = strstr(last, "\"lag_count\": ");
            cr_assert(o && l && sscanf(o, "\"ops\": %llu", &ops) == 1 &&
                      sscanf(l, "\"lag_count\": %llu", &lags) == 1, "%s", last);
            cr_expect_eq(lags, 2 * ops, "%s", last);
            cr_expect(strstr(last, "\"lag_missing\": 0,") != NULL, "%s", last);
            cr_expect(strstr(last, "\"lag_p99_us\": ") != NULL, "%s", last);
        }
        free(out);
    }
}

/* The lag workload's --lag-log: a line for every sample the report counts,
 * each with its tid, a watcher, and a lag that is the difference of its two
 * times. */
Test(client_tools, bench_lag_log_has_every_sample)
{
    char *dir = tu_tmpdir("laglog"), *log = tu_path(dir, "lag.log"), *out = NULL;
    cr_assert_eq(zeolite(&out, "bench %s --workload lag --clients 2 --duration 0.5 --json "
                         "--lag-log %s", th_srv.addr, log), 0);
    unsigned long long count = 0;
    const char *c = strstr(out, "\"lag_count\": ");
    cr_assert(c && sscanf(c, "\"lag_count\": %llu", &count) == 1 && count > 0, "%s", out);
    FILE *f = fopen(log, "r");
    cr_assert_not_null(f);
    unsigned long long tid, lines = 0;
    int watcher;
    double finish, inval, lag;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        cr_assert_eq(sscanf(line, "%16llx %d %lf %lf %lf", &tid, &watcher, &finish, &inval,
                            &lag), 5, "%s", line);
        cr_expect(tid > 0 && (watcher == 1 || watcher == 2) && finish > 0, "%s", line);
        cr_expect_lt(fabs((inval - finish) * 1e6 - lag), 2.0, "%s", line);
        lines++;
    }
    fclose(f);
    cr_expect_eq(lines, count, "%llu lines, %llu samples", lines, count);
    free(out);
    free(log);
    tu_rmrf(dir);
    free(dir);
}
