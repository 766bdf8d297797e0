/* cmd_pack.c: `zeolite pack`: pack storages of ZEO servers, with zeopack's
 * arguments and exit status (1 when no server could be reached or a pack
 * failed). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "tools/cli.h"
#include "tools/commands.h"

#define MAX_SERVERS 64

typedef struct server_list {
    const char *addr[MAX_SERVERS];
    int is_unix[MAX_SERVERS];  /* given with -u: a socket path, even without a '/' */
    int n;
} server_list;

typedef struct pack_opts {
    int days;
    const char *time;          /* HH[:MM[:SS]] local time, or NULL: now */
    server_list servers;       /* positional HOST:PORT[:NAME] and -u PATH[:NAME] */
    const char *host;          /* deprecated -h/-p/-S/-U forms */
    int port;
    const char *name;
    const char *unix_path;
    double timeout;
    int quiet;
    zprogress_opts progress;
    zcl_opts conn;
} pack_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite pack [OPTIONS] [HOST:PORT[:STORAGE] | SOCKET[:STORAGE]]...\n\n"
               "Pack one or more storages hosted by ZEO servers (as zeopack).\n\n"
               "options:\n"
               "  -d, --days DAYS        pack objects older than this many days (default 0)\n"
               "  -t, --time HH[:MM[:SS]] time of day to pack to (default: now)\n"
               "  -u, --unix PATH[:NAME] a Unix-socket server (repeatable)\n"
               "  -h HOST -p PORT [-S NAME], -U PATH  deprecated zeopack forms\n"
               "  --timeout SECONDS      wait this long to reach each server (default 60)\n"
               "  -q, --quiet            no progress lines\n"
               "%s"
               "  --help, --version\n"
               "%s", cli_progress_help, cli_conn_flags_help);
}

/* zeopack's error output; returns its exit status. */
static int fail(const char *msg)
{
    fprintf(stderr, "Error:\n%s\n", msg);
    return 1;
}

static int add_server(server_list *l, const char *v, int is_unix, zerr *err)
{
    if (l->n == MAX_SERVERS)
        return zerr_set(err, ZE_INVAL, "more than %d servers", MAX_SERVERS);
    l->is_unix[l->n] = is_unix;
    l->addr[l->n++] = v;
    return 0;
}

static int add_unix(void *dest, const char *v, zerr *err)
{
    return add_server(dest, v, 1, err);
}

/* The address as the client library reads it: "unix:" before a socket path
 * that has no '/'. */
static const char *client_addr(const char *addr, int is_unix, char *buf, size_t cap)
{
    if (!is_unix || strchr(addr, '/'))
        return addr;
    snprintf(buf, cap, "unix:%s", addr);
    return buf;
}

/* zeopack: now, or today's HH:MM:SS local time; minus days. */
static int pack_time(const pack_opts *o, double *t)
{
    time_t now = time(NULL);
    *t = (double)now;
    if (o->time) {
        int part[3] = {0, 0, 0}, n = 0;
        const char *p = o->time;
        char *end;
        for (; n < 4 && *p; n++) {
            long v = strtol(p, &end, 10);
            if (end == p || n == 3 || (*end && *end != ':'))
                return -1;
            part[n] = (int)v;
            p = *end ? end + 1 : end;
        }
        if (n == 0)
            return -1;
        struct tm tm;
        localtime_r(&now, &tm);
        tm.tm_hour = part[0];
        tm.tm_min = part[1];
        tm.tm_sec = part[2];
        tm.tm_isdst = -1;
        *t = (double)mktime(&tm);
    }
    *t -= (double)o->days * 86400.0;
    return 0;
}

/* While a pack runs the server says nothing: a line now and then says the
 * job is alive (zprogress decides when one is due). */
typedef struct ticker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    zprogress *p;
    const char *what;
} ticker;

static void *tick(void *arg)
{
    ticker *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->done) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) != 0 && !t->done)
            zprogress_note(t->p, t->what);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static int pack_with_ticks(zcl_client *c, double t, zprogress *p, const char *what, zerr *err)
{
    ticker tk = {.p = p, .what = what};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&tk.lock, NULL);
    pthread_cond_init(&tk.cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t th;
    int ticking = p && pthread_create(&th, NULL, tick, &tk) == 0;
    int rc = zcl_pack_sync(c, t, err);
    if (ticking) {
        pthread_mutex_lock(&tk.lock);
        tk.done = 1;
        pthread_cond_signal(&tk.cond);
        pthread_mutex_unlock(&tk.lock);
        pthread_join(th, NULL);
    }
    pthread_cond_destroy(&tk.cond);
    pthread_mutex_destroy(&tk.lock);
    return rc;
}

/* The storage an address names (its ":NAME"), else the given default. */
static const char *storage_of(const char *addr, const char *dflt, char *buf, size_t cap)
{
    zcl_addr a;
    if (zcl_addr_parse(addr, 1, &a, NULL) == 0 && a.storage[0]) {
        snprintf(buf, cap, "%s", a.storage);
        return buf;
    }
    return dflt;
}

/* Pack one server; 1 packed, 0 unreachable, -1 pack failed. */
static int pack_one(const pack_opts *o, const char *addr, const char *name, double t)
{
    zcl_opts co = o->conn;
    co.read_only = 1;
    co.timeout_ms = (unsigned)(o->timeout * 1000 + 0.5);
    co.storage = name;
    zcl_client *c;
    zerr err = {0};
    char what[4400];
    snprintf(what, sizeof what, "packing storage %s on %s", name, addr);
    zprogress *p = zprogress_new("pack", 0, &o->progress);
    zprogress_note(p, what);
    int rc = zcl_open_sync(addr, &co, &c, &err);
    if (rc == ZE_IO || rc == ZE_TIMEOUT || rc == ZE_CLOSED) {
        zprogress_done(p);
        fprintf(stderr, "Couldn't connect to: %s (%s)\n", addr, err.msg);
        return 0;
    }
    if (rc == 0) {
        /* Packing can take long: the reply comes when it is done. */
        zcl_set_timeout(c, 0);
        rc = pack_with_ticks(c, t, p, what, &err);
        zcl_free(c);
    }
    snprintf(what, sizeof what, "packed storage %s on %s", name, addr);
    if (rc == 0)
        zprogress_note(p, what);
    zprogress_done(p);
    if (rc < 0) {
        fprintf(stderr, "%s\nError:\nError packing storage %s in %s\n", err.msg, name, addr);
        return -1;
    }
    return 1;
}

static int parse(int argc, char **argv, pack_opts *o, int *status)
{
    const cli_opt opts[] = {
        CLI_INT_OPT("days", 'd', &o->days, 0, 1000000),
        CLI_STR_OPT("time", 't', &o->time),
        CLI_CALL_OPT("unix", 'u', &o->servers, add_unix),
        CLI_STR_OPT(NULL, 'h', &o->host),
        CLI_INT_OPT(NULL, 'p', &o->port, 1, 65535),
        CLI_STR_OPT(NULL, 'S', &o->name),
        CLI_STR_OPT(NULL, 'U', &o->unix_path),
        CLI_FLAG_OPT("quiet", 'q', &o->quiet),
        CLI_PROGRESS_OPT(o->progress),
    };
    const char *args[MAX_SERVERS];
    size_t n;
    const cli_spec spec = {.cmd = "pack", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .max_args = MAX_SERVERS, .conn = &o->conn, .timeout = &o->timeout,
                           .usage = usage};
    if (!cli_args(&spec, argc, argv, args, &n, status))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (add_server(&o->servers, args[i], 0, NULL) < 0) {
            *status = fail("Too many servers.");
            return -1;
        }
    for (int i = 0; i < o->servers.n; i++) {
        char buf[4096], msg[4200];
        zcl_addr a;
        const char *addr = client_addr(o->servers.addr[i], o->servers.is_unix[i], buf, sizeof buf);
        if (zcl_addr_parse(addr, 1, &a, NULL) < 0) {
            snprintf(msg, sizeof msg, "Invalid server specification: '%s'", o->servers.addr[i]);
            *status = fail(msg);
            return -1;
        }
    }
    o->progress.quiet = o->quiet;
    return 0;
}

int cmd_pack(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);   /* zeopack without arguments prints its help */
        return 0;
    }
    pack_opts o = {.timeout = 60, .progress = CLI_PROGRESS_DEFAULT};
    zcl_opts_init(&o.conn);
    int status;
    if (parse(argc, argv, &o, &status) < 0)
        return status;
    double t;
    if (pack_time(&o, &t) < 0) {
        fprintf(stderr, "Error:\nInvalid time value: '%s'\n", o.time);
        return 1;
    }
    const char *dflt = o.name ? o.name : o.conn.storage ? o.conn.storage : "1";
    char legacy[300] = "";
    if (o.host && !o.port)
        return fail("If host (-h) is specified then a port (-p) must be specified as well.");
    if (o.port)
        snprintf(legacy, sizeof legacy, "%s:%d", o.host ? o.host : "127.0.0.1", o.port);
    if (!o.servers.n && !legacy[0] && !o.unix_path)
        return fail("No servers specified.");
    int found = 0, failed = 0;
    for (int i = -2; i < o.servers.n; i++) {
        char abuf[4096], nbuf[64];
        const char *addr = i == -2 ? legacy : i == -1 ? o.unix_path : o.servers.addr[i];
        if (!addr || !addr[0])
            continue;
        addr = client_addr(addr, i == -1 || (i >= 0 && o.servers.is_unix[i]), abuf, sizeof abuf);
        const char *name = i < 0 ? dflt : storage_of(addr, dflt, nbuf, sizeof nbuf);
        int r = pack_one(&o, addr, name, t);
        found |= r != 0;
        failed |= r < 0;
    }
    if (failed)
        return 1;
    if (!found)
        return fail("Cannot connect to any of the configured ZEO servers.");
    return 0;
}
