/* server.c: start and stop a server process for the client tests. */
#define _GNU_SOURCE
#include "server.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pgtest.h"
#include "testutil.h"

/* Replace every {key} of tmpl; returns malloc'd text. */
static char *expand(const char *tmpl, const char *addr, const char *dir)
{
    size_t cap = strlen(tmpl) + 4 * (strlen(addr) + strlen(dir)) + 1;
    char *out = malloc(cap), *o = out;
    for (const char *p = tmpl; out && *p;) {
        if (!strncmp(p, "{addr}", 6)) {
            o = stpcpy(o, addr);
            p += 6;
        } else if (!strncmp(p, "{dir}", 5)) {
            o = stpcpy(o, dir);
            p += 5;
        } else {
            *o++ = *p++;
        }
    }
    if (out)
        *o = '\0';
    return out;
}

static int spawn(ts_server *s)
{
    const char *tmpl = getenv("ZCL_TEST_SERVER");
    char *base = NULL, *cmd = NULL, *log = NULL;
    if (tmpl && *tmpl)
        base = expand(tmpl, s->addr, s->dir);
    else if (s->pg ? asprintf(&base, "%s serve -a %s -C %s/pg.conf --no-sync", tu_zeolite_bin(),
                              s->addr, s->dir) < 0
                   : asprintf(&base, "%s serve -a %s -f %s/db --no-sync", tu_zeolite_bin(),
                              s->addr, s->dir) < 0)
        base = NULL;
    if (base && asprintf(&cmd, "exec %s %s", base, s->extra) >= 0 &&
        asprintf(&log, "%s/server.log", s->dir) >= 0) {
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        s->pid = tu_spawn(argv, log);
    }
    free(base);
    free(cmd);
    free(log);
    if (s->pid <= 0) {
        s->pid = 0;
        return -1;
    }
    int is_unix = s->addr[0] == '/';
    int port = is_unix ? 0 : atoi(strrchr(s->addr, ':') + 1);
    /* Up to 20 s: Python servers start slowly. */
    if (tu_wait_accepting(&s->pid, is_unix ? s->addr : NULL, port, 20000) == 0)
        return 0;
    ts_server_stop(s);
    return -1;
}

/* A new database of the test cluster and the section that serves it, its
 * blob cache where an LMDB storage's blobs are. */
static int pg_conf(ts_server *s)
{
    char *path = NULL;
    s->pg = tu_pg_newdb(NULL);
    if (asprintf(&path, "%s/pg.conf", s->dir) < 0)
        return -1;
    FILE *f = fopen(path, "w");
    free(path);
    if (!f)
        return -1;
    fprintf(f, "<postgresql 1>\n  dsn %s\n  blob-cache %s/db/blobs\n</postgresql>\n", s->pg,
            s->dir);
    return fclose(f) == 0 ? 0 : -1;
}

int ts_server_start(ts_server *s, const char *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = tu_tmpdir("client");
    if (!s->dir)
        return -1;
    int is_unix = extra && !strcmp(extra, "unix");
    if (is_unix) {
        snprintf(s->addr, sizeof s->addr, "%s/zeo.sock", s->dir);
        extra = "";
    }
    snprintf(s->extra, sizeof s->extra, "%s", extra ? extra : "");
    const char *backend = getenv("ZEOLITE_STORE_BACKEND");
    if (backend && !strcmp(backend, "postgresql") && pg_conf(s) < 0)
        return -1;
    /* A free port can be taken by another process (a parallel suite) before
     * the server binds it: then the server exits, and a fresh port is tried. */
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = tu_free_port();
        if (port < 0)
            return -1;
        if (!is_unix)
            snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", port);
        if (spawn(s) == 0)
            return 0;
        if (is_unix)
            break;
    }
    return -1;
}

/* A sanitizer report in the server's log fails the test, whether the server
 * halted on it (TSAN_OPTIONS=halt_on_error=1) or went on; the log is printed. */
static void expect_clean_log(const ts_server *s)
{
    char *path = NULL, *report = NULL;
    if (asprintf(&path, "%s/server.log", s->dir) >= 0 && (report = tu_sanitizer_report(path))) {
        size_t len;
        char *log = (char *)tu_read_file(path, &len);
        fprintf(stderr, "---- %s ----\n%s---- end of %s ----\n", path, log ? log : "", path);
        free(log);
    }
    cr_expect(report == NULL, "the server's log has a sanitizer report: %s", report);
    free(report);
    free(path);
}

void ts_server_stop(ts_server *s)
{
    if (s->pid <= 0)
        return;
    int status = tu_stop_process(s->pid, 5000);
    s->pid = 0;
    expect_clean_log(s);
    /* Another server (ZCL_TEST_SERVER) may have its own ways at SIGTERM. */
    const char *tmpl = getenv("ZCL_TEST_SERVER");
    if (!tmpl || !*tmpl)
        cr_expect_eq(status, 0, "the server exited with status %d after SIGTERM", status);
}

int ts_server_restart(ts_server *s)
{
    ts_server_stop(s);
    return spawn(s);
}

void ts_server_free(ts_server *s)
{
    ts_server_stop(s);
    tu_rmrf(s->dir);
    free(s->dir);
    s->dir = NULL;
    if (s->pg)
        tu_pg_dropdb(s->pg);
    free(s->pg);
    s->pg = NULL;
}

int ts_run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more)
                break;
            buf = more;
        }
    }
    if (buf)
        buf[n] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
