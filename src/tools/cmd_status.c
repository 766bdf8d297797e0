/* cmd_status.c: `zeolite status ADDR`: a Nagios check built on the ruok
 * probe, printing what ZEO's zeo-nagios prints and exiting with the Nagios
 * codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
#define _GNU_SOURCE /* asprintf */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "client/client.h"
#include "common/zjson.h"
#include "tools/cli.h"
#include "tools/commands.h"

enum { NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN };

static const char *const level_names[] = {"active_txns", "connections", "waiting"};
static const char *const rate_names[] = {"aborts", "commits", "conflicts",
                                         "conflicts_resolved", "loads", "stores"};

typedef struct status_opts {
    const char *addr;
    int metrics;
    const char *status_path;
    double per;  /* seconds in the rate unit */
    zcl_opts conn;
    unsigned timeout_ms;
} status_opts;

typedef struct lines {
    char *metrics[64];
    size_t nmetrics;
} lines;

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite status [OPTIONS] ADDR\n\n"
               "Nagios check of a ZEO server through its ruok probe, as zeo-nagios.\n"
               "Exit status: 0 OK, 1 WARNING (empty storage, no storages), 2 CRITICAL\n"
               "(cannot connect), 3 UNKNOWN (bad answer or usage).\n\n"
               "options:\n"
               "  -m, --output-metrics   print performance data\n"
               "  -s, --status-path FILE keep samples in FILE for rate metrics\n"
               "  -u, --time-units UNIT  rate unit: seconds, minutes (default), hours, days\n"
               "  --timeout SECONDS      give up after this long (default 10)\n"
               "  --tls, --tls-ca FILE, --tls-cert FILE, --tls-key FILE  TLS, as other commands\n");
}

/* Python's repr of a float: shortest text that reads back the same, with
 * ".0" on integral values. */
static void py_float(double v, char *buf, size_t size)
{
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e16) {
        snprintf(buf, size, "%.1f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void add_metric(lines *l, const char *storage, const char *name, const char *value)
{
    char *m = NULL;
    int n;
    if (!strcmp(storage, "1"))
        n = asprintf(&m, "%s=%s", name, value);
    else if (strchr(storage, ' '))
        n = asprintf(&m, "'%s:%s'=%s", storage, name, value);
    else
        n = asprintf(&m, "%s:%s=%s", storage, name, value);
    if (n >= 0 && l->nmetrics < sizeof l->metrics / sizeof l->metrics[0])
        l->metrics[l->nmetrics++] = m;
    else
        free(m);
}

static int cmp_keys(const void *a, const void *b)
{
    const zv *x = *(zv *const *)a, *y = *(zv *const *)b;
    size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
    int c = memcmp(x->u.s.p, y->u.s.p, n);
    return c ? c : (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
}

/* The storage dicts' keys, sorted as Python sorts them. */
static zv **sorted_keys(const zv *data, zv_arena *a)
{
    size_t n = data->u.seq.n;
    zv **keys = zv_alloc(a, (n + 1) * sizeof *keys);
    for (size_t i = 0; keys && i < n; i++)
        keys[i] = data->u.seq.items[2 * i];
    if (keys)
        qsort(keys, n, sizeof *keys, cmp_keys);
    return keys;
}

static int number(const zv *v, double *out)
{
    int64_t i;
    if (zv_get_int(v, &i)) {
        *out = (double)i;
        return 1;
    }
    if (v && v->type == ZV_FLOAT) {
        *out = v->u.f;
        return 1;
    }
    return 0;
}

static void level_metrics(lines *l, const char *id, const zv *sdata)
{
    for (size_t k = 0; k < sizeof level_names / sizeof *level_names; k++) {
        const zv *v = sdata && sdata->type == ZV_DICT ? zv_dict_get(sdata, level_names[k]) : NULL;
        char buf[64];
        int64_t i;
        char *repr = NULL;
        if (zv_get_int(v, &i) && v->type == ZV_INT)
            snprintf(buf, sizeof buf, "%lld", (long long)i);
        else if (v && v->type == ZV_FLOAT)
            py_float(v->u.f, buf, sizeof buf);
        else if (v && zv_repr(v, &repr) == 0)
            snprintf(buf, sizeof buf, "%s", repr);
        else
            snprintf(buf, sizeof buf, "None");
        free(repr);
        add_metric(l, id, level_names[k], buf);
    }
}

static void rate_metrics(lines *l, const char *id, const zv *now, const zv *old, double dt)
{
    for (size_t k = 0; k < sizeof rate_names / sizeof *rate_names; k++) {
        double a, b;
        if (!number(zv_dict_get(now, rate_names[k]), &a) ||
            !number(zv_dict_get(old, rate_names[k]), &b))
            continue;
        char buf[64];
        py_float((a - b) / dt, buf, sizeof buf);
        add_metric(l, id, rate_names[k], buf);
    }
}

/* Rates against the previous sample in the status file, then save this one. */
static void sample_rates(const status_opts *o, lines *l, const zv *data, zv **keys,
                         const char *json, zv_arena *a)
{
    struct stat st;
    if (stat(o->status_path, &st) == 0) {
        double dt = (double)time(NULL) - (double)st.st_mtime;
        size_t len;
        FILE *f = fopen(o->status_path, "r");
        char buf[65536];
        len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = '\0';
        zv *old = NULL;
        if (dt > 0 && zjson_parse(buf, strlen(buf), a, &old, NULL) == 0 && old->type == ZV_DICT) {
            dt /= o->per;
            for (size_t i = 0; i < data->u.seq.n; i++) {
                char id[256];
                snprintf(id, sizeof id, "%.*s", (int)keys[i]->u.s.len, keys[i]->u.s.p);
                const zv *prev = zv_dict_get(old, id);
                if (prev && prev->type == ZV_DICT)
                    rate_metrics(l, id, zv_dict_get(data, id), prev, dt);
            }
        }
    }
    FILE *f = fopen(o->status_path, "w");
    if (!f || fputs(json, f) < 0)
        fprintf(stderr, "zeolite status: cannot write %s\n", o->status_path);
    if (f)
        fclose(f);
}

static void print_result(const char *message, lines *l)
{
    printf("%s", message);
    if (l->nmetrics)
        printf("|%s", l->metrics[0]);
    printf("\n");
    for (size_t i = 1; i < l->nmetrics; i++)
        printf("%s%s\n", i == 1 ? "| " : " ", l->metrics[i]);
}

/* Judge the parsed status; returns the Nagios level. */
static int check(const status_opts *o, const zv *data, const char *json, zv_arena *a)
{
    lines l = {0};
    if (data->u.seq.n == 0) {
        printf("No storages\n");
        return NAGIOS_WARNING;
    }
    zv **keys = sorted_keys(data, a);
    if (!keys) {
        printf("UNKNOWN: out of memory\n");
        return NAGIOS_UNKNOWN;
    }
    char message[4096] = "";
    int level = NAGIOS_OK;
    for (size_t i = 0; i < data->u.seq.n; i++) {
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)keys[i]->u.s.len, keys[i]->u.s.p);
        const zv *sdata = zv_dict_get(data, id);
        if (o->metrics)
            level_metrics(&l, id, sdata);
        const zv *last = sdata && sdata->type == ZV_DICT ? zv_dict_get(sdata, "last-transaction")
                                                         : NULL;
        if (last && last->type == ZV_STR && last->u.s.len == 16 &&
            !memcmp(last->u.s.p, "0000000000000000", 16)) {
            size_t n = strlen(message);
            snprintf(message + n, sizeof message - n, "%sEmpty storage '%s'", n ? "\n" : "", id);
            level = NAGIOS_WARNING;
        }
    }
    if (o->metrics && o->status_path)
        sample_rates(o, &l, data, keys, json, a);
    print_result(message[0] ? message : "OK", &l);
    for (size_t i = 0; i < l.nmetrics; i++)
        free(l.metrics[i]);
    return level;
}

static int parse_args(int argc, char **argv, status_opts *o)
{
    static const struct { const char *name; double secs; } units[] = {
        {"seconds", 1}, {"minutes", 60}, {"hours", 3600}, {"days", 86400}};
    zerr err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = cli_conn_flag(&o->conn, argc, argv, &i, &err);
        if (rc < 0) {
            fprintf(stderr, "zeolite status: %s\n", err.msg);
            return -1;
        }
        if (rc)
            continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--output-metrics")) {
            o->metrics = 1;
        } else if ((!strcmp(a, "-s") || !strcmp(a, "--status-path")) && v) {
            o->status_path = argv[++i];
        } else if (!strncmp(a, "-s", 2) && a[2]) {
            o->status_path = a + 2;
        } else if ((!strcmp(a, "-u") || !strcmp(a, "--time-units")) && v) {
            size_t k = 0;
            while (k < 4 && strcmp(v, units[k].name))
                k++;
            if (k == 4) {
                fprintf(stderr, "zeolite status: bad time unit '%s'\n", v);
                return -1;
            }
            o->per = units[k].secs;
            i++;
        } else if (!strcmp(a, "--timeout") && v) {
            o->timeout_ms = (unsigned)(atof(argv[++i]) * 1000);
        } else if (a[0] == '-' || o->addr) {
            fprintf(stderr, "zeolite status: bad argument '%s'\n", a);
            return -1;
        } else {
            o->addr = a;
        }
    }
    if (!o->addr) {
        fprintf(stderr, "zeolite status: no address\n");
        return -1;
    }
    return 0;
}

int cmd_status(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return NAGIOS_OK;
        }
    status_opts o = {.per = 60, .timeout_ms = 10000};
    zcl_opts_init(&o.conn);
    if (parse_args(argc, argv, &o) < 0) {
        usage(stderr);
        return NAGIOS_UNKNOWN;
    }
    zcl_addr addr;
    zerr err = {0};
    char *json = NULL;
    if (zcl_addr_parse(o.addr, 0, &addr, &err) < 0) {
        fprintf(stderr, "zeolite status: %s\n", err.msg);
        return NAGIOS_UNKNOWN;
    }
    int rc = zcl_ruok(&addr, &o.conn, o.timeout_ms, &json, &err);
    if (rc == ZE_IO || rc == ZE_TIMEOUT || rc == ZE_CLOSED) {
        printf("Can't connect %s\n", err.msg);
        return NAGIOS_CRITICAL;
    }
    zv_arena *a = zv_arena_new();
    zv *data = NULL;
    if (rc == 0 && a)
        rc = zjson_parse(json, strlen(json), a, &data, &err);
    int level;
    if (rc < 0 || !a || !data || data->type != ZV_DICT) {
        printf("UNKNOWN: %s\n", rc < 0 ? err.msg : "unexpected ruok answer");
        level = NAGIOS_UNKNOWN;
    } else {
        level = check(&o, data, json, a);
    }
    zv_arena_free(a);
    free(json);
    return level;
}
