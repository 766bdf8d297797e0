/* `zeolite status` against zeo-nagios's own output, byte for byte.
 *
 * fixtures/zeo_nagios.json holds, for each case, the arguments and, for each
 * run, the ruok answer a server gave, what ZEO 6.0.0's zeo-nagios printed and
 * its exit status, and for the rate cases the clock (now) and the age of the
 * status file before the run (see fixtures/README.md for how it was
 * recorded). Here a fake server replays each answer to `zeolite status` with
 * the same arguments; ZEOLITE_STATUS_NOW and the file's mtime give it the
 * same interval. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonmini.h"
#include "run.h"
#include "testutil.h"

static zv_arena *arena;
static const zv *cases;

static void setup(void)
{
    tr_dir_init();
    arena = zv_arena_new();
    size_t len;
    char *text = (char *)tu_read_file(ZEOLITE_TOOLS_FIXTURES "/zeo_nagios.json", &len);
    cr_assert_not_null(text, "no fixture");
    zv *root;
    zerr err = {0};
    cr_assert_eq(json_parse(text, len, arena, &root, &err), 0, "%s", err.msg);
    free(text);
    cases = json_get(root, "cases");
    cr_assert(cases && cases->type == ZV_LIST && cases->u.seq.n > 10);
}

static void teardown(void)
{
    tr_dir_fini();
    zv_arena_free(arena);
}

TestSuite(status_nagios, .init = setup, .fini = teardown, .timeout = 60);

/* A port nobody listens on. */
static int dead_port(void)
{
    int port, fd = tr_silent_port(&port);
    close(fd);
    return port;
}

static double num(const zv *v)
{
    return v->type == ZV_FLOAT ? v->u.f : (double)v->u.i;
}

static void set_age(const char *path, double now, double age)
{
    double t = now - age;
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = (time_t)t;
    ts[0].tv_nsec = ts[1].tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "no status file %s", path);
}

/* One run of a case: replay its answer, compare what zeolite prints. */
static void replay(const char *name, const zv *args, const zv *run, const char *status_path,
                   int run_no)
{
    const zv *answer = json_get(run, "answer"), *now = json_get(run, "now"),
             *age = json_get(run, "age");
    if (age && age->type != ZV_NONE)
        set_age(status_path, num(now), num(age));
    tr_ruok srv = {0};
    int port = 0;
    if (answer->type == ZV_STR) {
        tr_ruok_start(&srv, (const char *)answer->u.s.p);
        port = srv.port;
    } else {
        port = dead_port();
    }
    const char *argv[32];
    char *owned[32];
    size_t n = 0;
    argv[n++] = "status";
    for (size_t i = 0; i < args->u.seq.n; i++) {
        const char *a = (const char *)args->u.seq.items[i]->u.s.p;
        const char *hole = strstr(a, "{status}");
        owned[n] = NULL;
        if (hole)
            cr_assert_geq(asprintf(&owned[n], "%.*s%s%s", (int)(hole - a), a, status_path,
                                   hole + 8), 0);
        argv[n] = owned[n] ? owned[n] : a;
        n++;
    }
    char addr[32], clock[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    owned[n] = NULL;
    argv[n++] = addr;
    argv[n] = NULL;
    const char *env[2] = {NULL, NULL};
    if (now && now->type != ZV_NONE) {
        snprintf(clock, sizeof clock, "ZEOLITE_STATUS_NOW=%.17g", num(now));
        env[0] = clock;
    }
    tr_result r;
    tr_run(&r, argv, env);
    if (answer->type == ZV_STR) {
        tr_ruok_join(&srv);
        cr_expect(srv.got_ruok, "%s: no ruok probe", name);
    }
    cr_expect_str_eq(r.out, json_str(run, "stdout"), "%s run %d: stdout differs", name, run_no);
    cr_expect_eq(r.status, (int)json_get(run, "status")->u.i, "%s run %d: exit status", name,
                 run_no);
    cr_expect_str_eq(r.err, "", "%s run %d: stderr", name, run_no);
    const zv *sf = json_get(run, "status_file");
    if (sf && sf->type == ZV_NONE)
        cr_expect(!tu_exists(status_path), "%s: zeo-nagios wrote no status file here", name);
    else
        cr_expect(tu_exists(status_path), "%s: no status file written", name);
    tr_free(&r);
    for (size_t i = 1; i < n; i++)
        free(owned[i]);
}

/* Every case, each run with the status file the previous run of zeolite
 * wrote. */
Test(status_nagios, every_recorded_case_byte_for_byte)
{
    for (size_t i = 0; i < cases->u.seq.n; i++) {
        const zv *c = cases->u.seq.items[i];
        const char *name = json_str(c, "name");
        const zv *runs = json_get(c, "runs");
        char *status_path = NULL;
        cr_assert_geq(asprintf(&status_path, "%s/%s.status", tr_dir, name), 0);
        for (size_t k = 0; k < runs->u.seq.n; k++)
            replay(name, json_get(c, "args"), runs->u.seq.items[k], status_path, (int)k + 1);
        free(status_path);
    }
}

/* The rate runs again, each from the status file zeo-nagios itself wrote:
 * a check moved from zeo-nagios to zeolite keeps its samples. */
Test(status_nagios, reads_the_status_file_zeo_nagios_wrote)
{
    int checked = 0;
    for (size_t i = 0; i < cases->u.seq.n; i++) {
        const zv *c = cases->u.seq.items[i];
        const zv *runs = json_get(c, "runs");
        if (runs->u.seq.n < 2)
            continue;
        const char *name = json_str(c, "name");
        char *status_path = NULL;
        cr_assert_geq(asprintf(&status_path, "%s/%s.nagios", tr_dir, name), 0);
        for (size_t k = 1; k < runs->u.seq.n; k++) {
            const char *prev = json_str(runs->u.seq.items[k - 1], "status_file");
            cr_assert_not_null(prev, "%s: the fixture has no status file", name);
            cr_assert_eq(tu_write_file(status_path, prev, strlen(prev)), 0);
            replay(name, json_get(c, "args"), runs->u.seq.items[k], status_path, (int)k + 1);
            checked++;
        }
        free(status_path);
    }
    cr_expect_geq(checked, 4, "rate cases in the fixture");
}

/* Where zeo-nagios would wait for ever: a port that accepts and says
 * nothing, as a TLS port does to a plain client. */
Test(status_nagios, silent_port_suggests_tls)
{
    int port, fd = tr_silent_port(&port);
    char addr[32], want[160];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    tr_result r;
    tr_zeolite(&r, "status", "--timeout", "0.3", addr, NULL);
    snprintf(want, sizeof want, "No ZEO handshake from %s within 0.3 s: the port may be "
             "TLS; try --tls\n", addr);
    cr_expect_str_eq(r.out, want);
    cr_expect_eq(r.status, 2, "CRITICAL");
    tr_free(&r);
    close(fd);
}

/* --tls against a plain ZEO server: the announcement arrives where the TLS
 * handshake should. */
Test(status_nagios, tls_against_plain_zeo_says_so)
{
    tr_ruok srv;
    tr_ruok_start(&srv, "{}");
    char addr[32], want[160];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    tr_result r;
    tr_zeolite(&r, "status", "--tls", "--timeout", "5", addr, NULL);
    tr_ruok_join(&srv);
    snprintf(want, sizeof want, "%s answered in plain ZEO, not TLS: drop --tls\n", addr);
    cr_expect_str_eq(r.out, want);
    cr_expect_eq(r.status, 2, "CRITICAL");
    tr_free(&r);
}

/* A usage error is Nagios's UNKNOWN, as zeo-nagios's bad options are not OK. */
Test(status_nagios, usage_errors_are_unknown)
{
    const char *bad[][5] = {
        {"status", NULL}, {"status", "-s", NULL}, {"status", "-u", "weeks", "x:1"},
        {"status", "--timeout", "abc", "x:1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_result r;
        tr_run(&r, bad[i], NULL);
        cr_expect_eq(r.status, 3, "%s %s", bad[i][1], bad[i][2]);
        cr_expect(strstr(r.err, "zeolite status: ") != NULL, "%s", r.err);
        tr_free(&r);
    }
}
