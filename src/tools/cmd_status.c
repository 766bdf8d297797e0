/* cmd_status.c: `zeolite status ADDR`: a Nagios check built on the ruok
 * probe, printing what ZEO's zeo-nagios prints, byte for byte, and exiting
 * with the Nagios codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * zeo-nagios's output, from ZEO/nagios.py: the messages one a line, the
 * first performance datum after the first message ("OK|active_txns=0"), the
 * others on one more line starting "| " and joined by "\n " (so one datum a
 * line). Rates (-m -s FILE) are (now - previous) / seconds since FILE was
 * written, in -u units, against the sample FILE holds. Where zeo-nagios
 * would hang (a TLS port) or print a traceback, zeolite says what it met. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "client/client.h"
#include "common/zbuf.h"
#include "common/zjson.h"
#include "tools/cli.h"
#include "tools/commands.h"

enum { NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN };

#define MAX_METRICS 1024

static const char *const level_names[] = {"active_txns", "connections", "waiting"};
/* conflicts_resolved_server is zeolite's: a Python server's ruok has none. */
static const char *const rate_names[] = {
    "aborts", "commits", "conflicts", "conflicts_resolved", "conflicts_resolved_server",
    "loads",  "stores"};
static const char *const unit_names[] = {"seconds", "minutes", "hours", "days", NULL};
static const double unit_secs[] = {1, 60, 3600, 86400};

typedef struct status_opts {
    const char *addr;
    int metrics;
    const char *status_path;
    int unit;                /* index in unit_names */
    double timeout;
    zcl_opts conn;
} status_opts;

typedef struct lines {
    char *metrics[MAX_METRICS];
    size_t nmetrics;
    zbuf messages;           /* "\n"-separated */
} lines;

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite status [OPTIONS] ADDR\n\n"
               "Nagios check of a ZEO server through its ruok probe, as zeo-nagios.\n"
               "ADDR is HOST:PORT, [V6ADDR]:PORT or a Unix socket path.\n"
               "Exit status: 0 OK, 1 WARNING (empty storage, no storages), 2 CRITICAL\n"
               "(cannot connect), 3 UNKNOWN (bad answer or usage).\n\n"
               "options:\n"
               "  -m, --output-metrics   print performance data\n"
               "  -s, --status-path FILE keep samples in FILE for rate metrics (with -m)\n"
               "  -u, --time-units UNIT  rate unit: seconds, minutes (default), hours, days\n"
               "  --timeout SECONDS      give up after this long (default 10)\n"
               "  --help, --version\n"
               "%s", cli_tls_flags_help);
}

/* ---- Python's text for values ----------------------------------------- */

/* repr(float): the shortest text that reads back the same, ".0" on integral
 * values, an exponent from 1e16 up and below 1e-4. */
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

/* repr(str) of a storage name, as "Empty storage %r" shows it. */
static int py_str_repr(zbuf *b, const uint8_t *p, size_t n)
{
    char q = memchr(p, '\'', n) && !memchr(p, '"', n) ? '"' : '\'';
    int rc = zbuf_append_byte(b, (uint8_t)q);
    for (size_t i = 0; !rc && i < n; i++) {
        char tmp[8];
        uint8_t c = p[i];
        if (c == '\\' || c == (uint8_t)q)
            snprintf(tmp, sizeof tmp, "\\%c", c);
        else if (c == '\n' || c == '\r' || c == '\t')
            snprintf(tmp, sizeof tmp, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        else if (c < 0x20 || c == 0x7f)
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
        else
            snprintf(tmp, sizeof tmp, "%c", c);
        rc = zbuf_append(b, tmp, strlen(tmp));
    }
    return rc ? rc : zbuf_append_byte(b, (uint8_t)q);
}

/* str(value), as an f-string shows a ruok value. */
static char *py_str(const zv *v)
{
    char buf[64], *out = NULL;
    if (v && v->type == ZV_INT)
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
    else if (v && v->type == ZV_FLOAT)
        py_float(v->u.f, buf, sizeof buf);
    else if (v && v->type == ZV_BOOL)
        snprintf(buf, sizeof buf, "%s", v->u.i ? "True" : "False");
    else if (!v || v->type == ZV_NONE)
        snprintf(buf, sizeof buf, "None");
    else if (v->type == ZV_STR)
        return strndup((const char *)v->u.s.p, v->u.s.len);
    else
        return zv_repr(v, &out) == 0 ? out : NULL;
    return strdup(buf);
}

/* ---- the lines --------------------------------------------------------- */

/* zeo-nagios's new_metric: storage "1" unlabelled, a name with a space quoted. */
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
    if (n >= 0 && l->nmetrics < MAX_METRICS)
        l->metrics[l->nmetrics++] = m;
    else
        free(m);
}

static void add_message(lines *l, const char *text, size_t n)
{
    if (l->messages.len)
        zbuf_append_byte(&l->messages, '\n');
    zbuf_append(&l->messages, text, n);
}

/* zeo-nagios's result(): the first datum joins the first message. */
static void print_result(lines *l)
{
    const char *m = (const char *)l->messages.data;
    size_t len = l->messages.len;
    const char *nl = memchr(m, '\n', len);
    size_t first = nl ? (size_t)(nl - m) : len;
    fwrite(m, 1, first, stdout);
    if (l->nmetrics)
        printf("|%s", l->metrics[0]);
    if (nl)
        fwrite(nl, 1, len - first, stdout);
    for (size_t i = 1; i < l->nmetrics; i++)
        printf("%s%s", i == 1 ? "\n| " : "\n ", l->metrics[i]);
    printf("\n");
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->nmetrics; i++)
        free(l->metrics[i]);
    zbuf_free(&l->messages);
}

/* ---- judging the answer ------------------------------------------------ */

static int cmp_keys(const void *a, const void *b)
{
    const zv *x = *(zv *const *)a, *y = *(zv *const *)b;
    size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
    int c = memcmp(x->u.s.p, y->u.s.p, n);
    return c ? c : (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
}

/* The storage ids, sorted as Python sorts str (UTF-8 byte order is code
 * point order). */
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
    if (v && (v->type == ZV_INT || v->type == ZV_BOOL)) {
        *out = (double)v->u.i;
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
        char *v = py_str(sdata && sdata->type == ZV_DICT ? zv_dict_get(sdata, level_names[k])
                                                         : NULL);
        add_metric(l, id, level_names[k], v ? v : "None");
        free(v);
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

/* time.time(). ZEOLITE_STATUS_NOW (seconds since the epoch) stands in for
 * the clock, so that tests see rates over an exact interval, as git's
 * GIT_TEST_DATE_NOW does for its dates. */
static double wall_clock(void)
{
    const char *fixed = getenv("ZEOLITE_STATUS_NOW");
    if (fixed && *fixed)
        return strtod(fixed, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    zbuf b = ZBUF_INIT;
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (zbuf_append(&b, chunk, n) < 0)
            break;
    if (f)
        fclose(f);
    if (zbuf_append_byte(&b, 0) < 0) {
        zbuf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* Rates against the previous sample in the status file, then save this one
 * (the answer as the server sent it: zeo-nagios reads it back either way). */
static void sample_rates(const status_opts *o, lines *l, const zv *data, zv **keys,
                         const char *json, zv_arena *a)
{
    struct stat st;
    double now = wall_clock();
    if (stat(o->status_path, &st) == 0) {
        double dt = now - ((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
        char *text = dt > 0 ? read_text(o->status_path) : NULL;
        zv *old = NULL;
        if (text && zjson_parse(text, strlen(text), a, &old, NULL) == 0 && old->type == ZV_DICT) {
            dt /= unit_secs[o->unit];
            for (size_t i = 0; i < data->u.seq.n; i++) {
                char id[256];
                snprintf(id, sizeof id, "%.*s", (int)keys[i]->u.s.len, keys[i]->u.s.p);
                const zv *prev = zv_dict_get(old, id);
                if (prev && prev->type == ZV_DICT)
                    rate_metrics(l, id, zv_dict_get(data, id), prev, dt);
            }
        }
        free(text);
    }
    FILE *f = fopen(o->status_path, "w");
    if (!f || fputs(json, f) < 0)
        fprintf(stderr, "zeolite status: cannot write %s: %s\n", o->status_path,
                strerror(errno));
    if (f && fclose(f) != 0)
        fprintf(stderr, "zeolite status: cannot write %s: %s\n", o->status_path,
                strerror(errno));
}

/* Judge the parsed status and print it; returns the Nagios level. */
static int check(const status_opts *o, const zv *data, const char *json, zv_arena *a)
{
    if (data->u.seq.n == 0) {
        printf("No storages\n");
        return NAGIOS_WARNING;
    }
    zv **keys = sorted_keys(data, a);
    if (!keys) {
        printf("UNKNOWN: out of memory\n");
        return NAGIOS_UNKNOWN;
    }
    lines l = {.messages = ZBUF_INIT};
    int level = NAGIOS_OK;
    for (size_t i = 0; o->metrics && i < data->u.seq.n; i++) {
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)keys[i]->u.s.len, keys[i]->u.s.p);
        level_metrics(&l, id, zv_dict_get(data, id));
    }
    if (o->metrics && o->status_path)
        sample_rates(o, &l, data, keys, json, a);
    for (size_t i = 0; i < data->u.seq.n; i++) {
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)keys[i]->u.s.len, keys[i]->u.s.p);
        const zv *s = zv_dict_get(data, id);
        const zv *last = s && s->type == ZV_DICT ? zv_dict_get(s, "last-transaction") : NULL;
        if (last && last->type == ZV_STR && last->u.s.len == 16 &&
            !memcmp(last->u.s.p, "0000000000000000", 16)) {
            zbuf b = ZBUF_INIT;
            zbuf_append(&b, "Empty storage ", 14);
            py_str_repr(&b, keys[i]->u.s.p, keys[i]->u.s.len);
            add_message(&l, (const char *)b.data, b.len);
            zbuf_free(&b);
            level = NAGIOS_WARNING;
        }
    }
    if (!l.messages.len)
        add_message(&l, "OK", 2);
    print_result(&l);
    lines_free(&l);
    return level;
}

/* ---- when there is no answer ------------------------------------------- */

/* The line for a probe that failed, and its level. zeo-nagios words a
 * failed connect as Python's OSError ("[Errno 111] Connection refused"). */
static int no_answer(const status_opts *o, int rc, const zcl_conn_fail *why, const zerr *err)
{
    double secs = o->timeout;
    switch (why->stage) {
    case ZCL_STAGE_RESOLVE:
        printf("Can't connect [Errno %d] %s\n", why->sys_err, gai_strerror(why->sys_err));
        return NAGIOS_CRITICAL;
    case ZCL_STAGE_CONNECT:
        printf("Can't connect [Errno %d] %s\n", why->sys_err, strerror(why->sys_err));
        return NAGIOS_CRITICAL;
    case ZCL_STAGE_TLS:
        if (why->plain_zeo)
            printf("%s answered in plain ZEO, not TLS: drop --tls\n", o->addr);
        else if (rc == ZE_TIMEOUT)
            printf("No TLS handshake from %s within %g s\n", o->addr, secs);
        else
            printf("TLS with %s failed: %s\n", o->addr, err->msg);
        return NAGIOS_CRITICAL;
    case ZCL_STAGE_HELLO:
        if (rc == ZE_TIMEOUT && !o->conn.tls) {
            printf("No ZEO handshake from %s within %g s: the port may be TLS; "
                   "try --tls\n", o->addr, secs);
            return NAGIOS_CRITICAL;
        }
        if (rc == ZE_TIMEOUT) {
            printf("No ZEO handshake from %s within %g s\n", o->addr, secs);
            return NAGIOS_CRITICAL;
        }
        break;
    case ZCL_STAGE_SESSION:
        break;
    }
    printf("UNKNOWN: %s\n", err->msg);
    return NAGIOS_UNKNOWN;
}

static int parse(int argc, char **argv, status_opts *o, int *status)
{
    const cli_opt opts[] = {
        CLI_FLAG_OPT("output-metrics", 'm', &o->metrics),
        CLI_STR_OPT("status-path", 's', &o->status_path),
        CLI_CHOICE_OPT("time-units", 'u', &o->unit, unit_names),
    };
    const cli_spec spec = {.cmd = "status", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .min_args = 1, .max_args = 1, .conn = &o->conn, .tls_only = 1,
                           .timeout = &o->timeout, .usage = usage,
                           .usage_status = NAGIOS_UNKNOWN};
    size_t n;
    return cli_args(&spec, argc, argv, &o->addr, &n, status) ? 0 : -1;
}

int cmd_status(int argc, char **argv)
{
    status_opts o = {.unit = 1, .timeout = 10};
    zcl_opts_init(&o.conn);
    int level;
    if (parse(argc, argv, &o, &level) < 0)
        return level;
    zcl_addr addr;
    zerr err = {0};
    char *json = NULL;
    if (zcl_addr_parse(o.addr, 0, &addr, &err) < 0) {
        fprintf(stderr, "zeolite status: %s\n", err.msg);
        return NAGIOS_UNKNOWN;
    }
    zcl_conn_fail why = {0};
    int rc = zcl_ruok(&addr, &o.conn, (unsigned)(o.timeout * 1000 + 0.5), &json, &why, &err);
    if (rc < 0)
        return no_answer(&o, rc, &why, &err);
    zv_arena *a = zv_arena_new();
    zv *data = NULL;
    if (a)
        rc = zjson_parse(json, strlen(json), a, &data, &err);
    if (!a || rc < 0 || data->type != ZV_DICT) {
        printf("UNKNOWN: %s\n", !a ? "out of memory" : rc < 0 ? err.msg : "unexpected ruok answer");
        level = NAGIOS_UNKNOWN;
    } else {
        level = check(&o, data, json, a);
    }
    zv_arena_free(a);
    free(json);
    return level;
}
