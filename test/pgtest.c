#define _GNU_SOURCE /* asprintf */
#include "pgtest.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

const char *tu_pg_host(void)
{
    const char *h = getenv("ZEOLITE_PG_HOST");
    cr_assert(h && *h, "ZEOLITE_PG_HOST is not set: run the suite through ctest, which "
              "starts the PostgreSQL cluster (test/pg/cluster.sh)");
    return h;
}

static char *admin_uri(const char *host, const char *db)
{
    char *uri = NULL;
    cr_assert(asprintf(&uri, "postgresql:///%s?host=%s&user=postgres", db, host) > 0);
    return uri;
}

/* Run sql against uri; NULL (err filled) on failure. */
static char *run(const char *uri, const char *sql, char *err, size_t cap)
{
    PGconn *c = PQconnectdb(uri);
    char *out = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        if (err)
            snprintf(err, cap, "%s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        out = strdup(st == PGRES_TUPLES_OK && PQntuples(r) && PQnfields(r)
                         ? PQgetvalue(r, 0, 0) : "");
    else if (err)
        snprintf(err, cap, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return out;
}

char *tu_pg_exec(const char *uri, const char *sql, char *err, size_t cap)
{
    return run(uri, sql, err, cap);
}

long long tu_pg_num(const char *uri, const char *sql)
{
    char err[512] = "";
    char *v = run(uri, sql, err, sizeof err);
    cr_assert(v, "%s: %s", sql, err);
    long long n = *v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

char *tu_pg_newdb(const char *host)
{
    static int counter;
    char name[64], sql[128], err[512] = "";
    if (!host)
        host = tu_pg_host();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* pids come round again on a long-lived cluster: the time keeps names apart */
    snprintf(name, sizeof name, "zt_%d_%d_%lx", (int)getpid(), ++counter,
             (unsigned long)(ts.tv_sec * 1000000000L + ts.tv_nsec) & 0xffffffffffUL);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", name);
    char *admin = admin_uri(host, "postgres");
    char *out = run(admin, sql, err, sizeof err);
    free(admin);
    cr_assert(out, "create database %s on %s: %s", name, host, err);
    free(out);
    return admin_uri(host, name);
}

void tu_pg_dropdb(const char *uri)
{
    char db[64], sql[128];
    const char *p = strstr(uri, ":///"), *q = p ? strchr(p + 4, '?') : NULL;
    if (!p || !q || (size_t)(q - p - 4) >= sizeof db)
        return;
    memcpy(db, p + 4, (size_t)(q - p - 4));
    db[q - p - 4] = '\0';
    const char *h = strstr(q, "host=");
    char host[256];
    snprintf(host, sizeof host, "%s", h ? h + 5 : "");
    char *amp = strchr(host, '&');
    if (amp)
        *amp = '\0';
    char *admin = admin_uri(host, "postgres");
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    free(run(admin, sql, NULL, 0));
    free(admin);
}

int tu_pg_cluster(const char *cmd, const char *dir, long fsize_kb)
{
    const char *script = getenv("ZEOLITE_PG_SCRIPT");
    cr_assert(script && *script, "ZEOLITE_PG_SCRIPT is not set: run the suite through ctest");
    char line[1024];
    if (fsize_kb > 0)
        snprintf(line, sizeof line, "bash '%s' %s '%s' --fsize %ld", script, cmd, dir, fsize_kb);
    else
        snprintf(line, sizeof line, "bash '%s' %s '%s'", script, cmd, dir);
    return system(line) == 0 ? 0 : -1;
}

#define PAIR_P "ZEOLITE_TEST_PRIMARY"
#define PAIR_S "ZEOLITE_TEST_STANDBY"

/* Run a shell line of the cluster script (script is its path): 0 when it
 * worked. */
static int shell(const char *line) { return system(line) == 0 ? 0 : -1; }

void tu_pg_pair_begin(void)
{
    const char *script = getenv("ZEOLITE_PG_SCRIPT");
    char p[64], s[64], line[1024];
    if (!script)
        return;
    snprintf(p, sizeof p, "/tmp/zlsp-%d", (int)getpid());
    snprintf(s, sizeof s, "/tmp/zlss-%d", (int)getpid());
    snprintf(line, sizeof line, "bash '%s' start '%s' && bash '%s' standby '%s' --from '%s'",
             script, p, script, s, p);
    if (shell(line) == 0) {
        setenv(PAIR_P, p, 1);
        setenv(PAIR_S, s, 1);
    }
}

void tu_pg_pair_end(void)
{
    const char *script = getenv("ZEOLITE_PG_SCRIPT"), *p = getenv(PAIR_P), *s = getenv(PAIR_S);
    char line[1024];
    if (!script || !p || !s)
        return;
    snprintf(line, sizeof line, "bash '%s' stop '%s'; bash '%s' stop '%s'; rm -f '%s.lock'",
             script, s, script, p, p);
    if (shell(line))
        fprintf(stderr, "could not remove the clusters in %s and %s\n", p, s);
}

static int answers(const char *host)
{
    char *uri = admin_uri(host, "postgres");
    char *v = run(uri, "SELECT 1", NULL, 0);
    free(uri);
    free(v);
    return v != NULL;
}

void tu_pg_pair_take(char *pdir, char *sdir, size_t cap)
{
    const char *p = getenv(PAIR_P), *s = getenv(PAIR_S);
    cr_assert(p && s, "the suite's primary and standby did not start (cluster.sh's message is "
              "above the first test)");
    snprintf(pdir, cap, "%s", p);
    snprintf(sdir, cap, "%s", s);
    char lock[128];
    snprintf(lock, sizeof lock, "%s.lock", p);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);   /* held until the test ends */
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0, "lock %s", lock);
    if (!answers(p))
        cr_assert_eq(tu_pg_cluster("resume", p, 0), 0, "start %s again", p);
    if (!answers(s))
        cr_assert_eq(tu_pg_cluster("resume", s, 0), 0, "start %s again", s);
    char *admin = admin_uri(s, "postgres"), err[512] = "";
    static const char *const reset[] = {
        "SELECT 1 FROM pg_wal_replay_resume()",
        "ALTER SYSTEM RESET recovery_min_apply_delay",
        "ALTER SYSTEM RESET max_standby_streaming_delay",
        "SELECT pg_reload_conf()",
    };
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) {
        char *v = run(admin, reset[i], err, sizeof err);
        cr_assert(v, "%s on %s: %s", reset[i], s, err);
        free(v);
    }
    int ok = 0;
    for (int i = 0; i < 1000 && !ok; i++) {
        char *v = run(admin, "SELECT current_setting('recovery_min_apply_delay') = '0' AND "
                             "current_setting('max_standby_streaming_delay') = '30s'", NULL, 0);
        ok = v && !strcmp(v, "t");
        free(v);
        if (!ok)
            usleep(10000);
    }
    free(admin);
    cr_assert(ok, "the standby in %s keeps the settings of an earlier test", s);
}

char *tu_pg_uri_on(const char *uri, const char *host)
{
    char db[64];
    tu_pg_dbname(uri, db, sizeof db);
    return admin_uri(host, db);
}

void tu_pg_dbname(const char *uri, char *buf, size_t cap)
{
    const char *p = strstr(uri, ":///"), *q = p ? strchr(p + 4, '?') : NULL;
    cr_assert(p && q && (size_t)(q - p - 4) < cap, "no database name in %s", uri);
    memcpy(buf, p + 4, (size_t)(q - p - 4));
    buf[q - p - 4] = '\0';
}

void tu_pg_wait_replay(const char *uri, const char *standby_host)
{
    char err[512] = "", sql[256];
    char *lsn = run(uri, "SELECT pg_current_wal_lsn()", err, sizeof err);
    cr_assert(lsn, "the primary's WAL position: %s", err);
    char *admin = admin_uri(standby_host, "postgres");
    snprintf(sql, sizeof sql, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
    int done = 0;
    for (int i = 0; i < 6000 && !done; i++) {
        char *v = run(admin, sql, NULL, 0);
        done = v && !strcmp(v, "t");
        free(v);
        if (!done)
            usleep(10000);
    }
    free(admin);
    cr_assert(done, "the standby in %s has not replayed %s after 60 s", standby_host, lsn);
    free(lsn);
}

int tu_pg_script(const char *fmt, ...)
{
    const char *script = getenv("ZEOLITE_PG_SCRIPT");
    cr_assert(script && *script, "ZEOLITE_PG_SCRIPT is not set: run the suite through ctest");
    char args[512], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "bash '%s' %s", script, args);
    return system(line) == 0 ? 0 : -1;
}

void tu_pg_pair_up(tu_pg_pair *p, int sync)
{
    memset(p, 0, sizeof *p);
    snprintf(p->pdir, sizeof p->pdir, "/tmp/zpp%d", (int)getpid());
    cr_assert_eq(tu_pg_script("start %s", p->pdir), 0, "start %s", p->pdir);
    char *uri = tu_pg_newdb(p->pdir);
    const char *name = strstr(uri, ":///") + 4;
    p->db = strndup(name, strcspn(name, "?"));
    free(uri);
    snprintf(p->sdir, sizeof p->sdir, "/tmp/zps%d", (int)getpid());
    cr_assert_eq(tu_pg_script("standby %s --from %s", p->sdir, p->pdir), 0, "standby %s",
                 p->sdir);
    if (sync)
        cr_assert_eq(tu_pg_script("sync %s on", p->pdir), 0);
    cr_assert(asprintf(&p->primary, "postgresql:///%s?host=%s&user=postgres", p->db,
                       p->pdir) > 0);
    cr_assert(asprintf(&p->standby, "postgresql:///%s?host=%s&user=postgres", p->db,
                       p->sdir) > 0);
    cr_assert(asprintf(&p->both, "postgresql:///%s?host=%s,%s&user=postgres&"
                       "target_session_attrs=read-write", p->db, p->pdir, p->sdir) > 0);
    cr_assert(asprintf(&p->both_kv, "host=%s,%s target_session_attrs=read-write dbname=%s "
                       "user=postgres", p->pdir, p->sdir, p->db) > 0);
}

void tu_pg_pair_down(tu_pg_pair *p)
{
    if (*p->sdir)
        tu_pg_script("stop %s", p->sdir);
    if (*p->pdir)
        tu_pg_script("stop %s", p->pdir);
    free(p->db);
    free(p->primary);
    free(p->standby);
    free(p->both);
    free(p->both_kv);
    memset(p, 0, sizeof *p);
}

void tu_pg_wait_lock(const char *uri, const char *like)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
             "current_database() AND wait_event_type = 'Lock' AND query LIKE '%s'", like);
    for (int i = 0; i < 600; i++) {
        if (tu_pg_num(uri, sql) > 0)
            return;
        usleep(100000);
    }
    cr_assert_fail("no session waits on a lock for %s", like);
}
