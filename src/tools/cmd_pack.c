/* cmd_pack.c: `zeolite pack`: pack storages of ZEO servers, with zeopack's
 * arguments and exit status (1 when no server could be reached or a pack
 * failed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "tools/cli.h"
#include "tools/commands.h"

#define MAX_SERVERS 64

typedef struct pack_opts {
    int days;
    const char *time;          /* HH[:MM[:SS]] local time, or NULL: now */
    const char *servers[MAX_SERVERS];
    int nservers;
    const char *host;          /* deprecated -h/-p/-S/-U forms */
    int port;
    const char *name;
    const char *unix_path;
    unsigned timeout_ms;
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
               "  --timeout SECONDS      wait this long for each server (default 60)\n"
               "  --help\n"
               "%s", cli_conn_flags_help);
}

/* zeopack's error output; returns its exit status. */
static int fail(const char *msg)
{
    fprintf(stderr, "Error:\n%s\n", msg);
    return 1;
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

static int parse_args(int argc, char **argv, pack_opts *o)
{
    zerr err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = cli_conn_flag(&o->conn, argc, argv, &i, &err);
        if (rc < 0) {
            fail(err.msg);
            return -1;
        }
        if (rc)
            continue;
        if (a[0] != '-') {
            if (o->nservers == MAX_SERVERS) {
                fail("Too many servers.");
                return -1;
            }
            o->servers[o->nservers++] = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "Error:\nOption %s needs a value.\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "-d") || !strcmp(a, "--days")) {
            char *end;
            o->days = (int)strtol(v, &end, 10);
            if (*end || end == v) {
                fail("Invalid number of days.");
                return -1;
            }
        } else if (!strcmp(a, "-t") || !strcmp(a, "--time")) {
            o->time = v;
        } else if ((!strcmp(a, "-u") || !strcmp(a, "--unix") || !strcmp(a, "-U")) &&
                   o->nservers < MAX_SERVERS) {
            /* Socket paths may not carry a name in -U form; -S gives it. */
            if (!strcmp(a, "-U"))
                o->unix_path = v;
            else
                o->servers[o->nservers++] = v;
        } else if (!strcmp(a, "-h")) {
            o->host = v;
        } else if (!strcmp(a, "-p")) {
            o->port = atoi(v);
        } else if (!strcmp(a, "-S")) {
            o->name = v;
        } else if (!strcmp(a, "--timeout")) {
            o->timeout_ms = (unsigned)(atof(v) * 1000);
        } else {
            fprintf(stderr, "Error:\nUnknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

/* Pack one server; 1 packed, 0 unreachable, -1 pack failed. */
static int pack_one(const pack_opts *o, const char *addr, const char *name, double t)
{
    zcl_opts co = o->conn;
    co.read_only = 1;
    co.timeout_ms = o->timeout_ms;
    if (name)
        co.storage = name;
    zcl_client *c;
    zerr err = {0};
    int rc = zcl_open_sync(addr, &co, &c, &err);
    if (rc == ZE_IO || rc == ZE_TIMEOUT || rc == ZE_CLOSED) {
        fprintf(stderr, "Couldn't connect to: %s (%s)\n", addr, err.msg);
        return 0;
    }
    if (rc == 0) {
        /* Packing can take long: the reply comes when it is done. */
        zcl_set_timeout(c, 0);
        rc = zcl_pack_sync(c, t, &err);
        zcl_free(c);
    }
    if (rc < 0) {
        fprintf(stderr, "%s\nError:\nError packing storage %s in %s\n", err.msg,
                name ? name : "1", addr);
        return -1;
    }
    return 1;
}

int cmd_pack(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    pack_opts o = {.timeout_ms = 60000};
    zcl_opts_init(&o.conn);
    if (parse_args(argc, argv, &o) < 0)
        return 1;
    double t;
    if (pack_time(&o, &t) < 0) {
        fprintf(stderr, "Error:\nInvalid time value: '%s'\n", o.time);
        return 1;
    }
    char legacy[300] = "";
    if (o.host && !o.port)
        return fail("If host (-h) is specified then a port (-p) must be specified as well.");
    if (o.port)
        snprintf(legacy, sizeof legacy, "%s:%d", o.host ? o.host : "127.0.0.1", o.port);
    if (!o.nservers && !legacy[0] && !o.unix_path)
        return fail("No servers specified.");
    int found = 0, failed = 0;
    for (int i = -2; i < o.nservers; i++) {
        const char *addr = i == -2 ? legacy : i == -1 ? o.unix_path : o.servers[i];
        if (!addr || !addr[0])
            continue;
        int r = pack_one(&o, addr, i < 0 ? o.name : NULL, t);
        found |= r != 0;
        failed |= r < 0;
    }
    if (failed)
        return 1;
    if (!found)
        return fail("Cannot connect to any of the configured ZEO servers.");
    return 0;
}
