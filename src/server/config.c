/* config.c: the server's configuration: its defaults and final checks, the
 * value parsers the command line (cmdline.c) shares, and runzeo's zeo.conf.
 *
 * The file is ZConfig syntax: `key value` lines, `<section [name]>` ...
 * `</section>`, `#` comments, `%define NAME VALUE` with `$NAME`/`${NAME}`
 * substitution. Sections: <zeo> (with <ssl> inside), <eventlog> (with
 * any number of <logfile> and <syslog>, ZConfig's keys: a key zeolite
 * cannot honour is refused by name, never ignored), zeolite's own
 * <lmdb NAME> path DIR [read-only] [pack-gc] </lmdb>, <postgresql NAME> dsn
 * CONNINFO [read-only] [pack-gc] [pool-size] [retry-seconds] [lock-timeout]
 * [blob-cache] [shared] [read-dsn] [read-max-lag] </postgresql>; <runner> is zdaemon's and is ignored;
 * <filestorage> and <blobstorage> are refused with a pointer to `zeolite import`, since a
 * runzeo user keeps the file and only swaps the storage section. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/zarray.h"
#include "common/znum.h"

void zsrv_config_init(zsrv_config *c)
{
    memset(c, 0, sizeof *c);
    c->invq_size = 100;
    c->handshake_timeout = 30;
    c->max_future_tid = 3600;
    c->conflict_timeout = STORE_CONFLICT_HOLD;
    c->max_iterators = 256;
    c->max_frame = ZSRV_DEFAULT_MAX_FRAME;
    c->request_memory = ZSRV_DEFAULT_REQUEST_MEMORY;
    c->output_memory = ZSRV_DEFAULT_OUTPUT_MEMORY;
    c->max_connections = ZSRV_DEFAULT_MAX_CONNECTIONS;
    c->log_level = ZSRV_LOG_INFO;
}

static void log_cfg_free(zsrv_log_cfg *h)
{
    free(h->path);
    free(h->address);
    free(h->format);
    free(h->dateformat);
    free(h->when);
}

static void log_handlers_clear(zsrv_config *c)
{
    for (size_t i = 0; i < c->n_log_handlers; i++)
        log_cfg_free(&c->log_handlers[i]);
    c->n_log_handlers = 0;
}

void zsrv_config_free(zsrv_config *c)
{
    log_handlers_clear(c);
    free(c->log_handlers);
    free(c->metrics_address);
    for (size_t i = 0; i < c->n_storages; i++) {
        free(c->storages[i].name);
        free(c->storages[i].path);
        free(c->storages[i].dsn);
        free(c->storages[i].blob_cache);
        free(c->storages[i].read_dsn);
    }
    free(c->storages);
    free(c->address);
    free(c->pid_file);
    free(c->ssl_cert);
    free(c->ssl_key);
    free(c->ssl_ca);
    memset(c, 0, sizeof *c);
}

int zsrv__conf_str(char **dst, const char *v, zerr *err)
{
    char *s = strdup(v);
    if (!s)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

int zsrv__conf_add_storage(zsrv_config *c, const char *name, const char *path,
                           const char *dsn, zerr *err)
{
    char numbuf[24];
    if (!name) {
        snprintf(numbuf, sizeof numbuf, "%zu", c->n_storages + 1);
        name = numbuf;
    }
    zsrv_storage_cfg *n =
        zarray_room(c->storages, c->n_storages, &c->cap_storages, sizeof *n, 4);
    if (!n)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    c->storages = n;
    zsrv_storage_cfg *s = &n[c->n_storages];
    memset(s, 0, sizeof *s);
    s->pack_gc = 1;
    s->name = strdup(name);
    s->path = path ? strdup(path) : NULL;
    s->dsn = dsn ? strdup(dsn) : NULL;
    if (!s->name || (path && !s->path) || (dsn && !s->dsn)) {
        free(s->name);
        free(s->path);
        free(s->dsn);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    c->n_storages++;
    return 0;
}

/* A new handler at the end of c's list, zeroed but for ZConfig's defaults. */
static zsrv_log_cfg *log_handler_add(zsrv_config *c, zsrv_log_kind kind, zerr *err)
{
    zsrv_log_cfg *n = zarray_room(c->log_handlers, c->n_log_handlers, &c->cap_log_handlers,
                                  sizeof *n, 2);
    if (!n) {
        zerr_set(err, ZE_NOMEM, "out of memory");
        return NULL;
    }
    c->log_handlers = n;
    zsrv_log_cfg *h = &n[c->n_log_handlers++];
    memset(h, 0, sizeof *h);
    h->kind = kind;
    h->facility = 1;   /* user */
    return h;
}

int zsrv__conf_log_file(zsrv_config *c, const char *path, zerr *err)
{
    log_handlers_clear(c);
    zsrv_log_cfg *h = log_handler_add(c, ZSRV_LOGH_FILE, err);
    if (!h)
        return ZE_NOMEM;
    if (!(h->path = strdup(strcmp(path, "-") ? path : "STDERR"))) {
        c->n_log_handlers = 0;
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return *out = 1, 0;
        if (!strcasecmp(v, no[i]))
            return *out = 0, 0;
    }
    return ZE_INVAL;
}

int zsrv__conf_number(const char *v, double *out)
{
    return znum_double(v, 0, 1e15, out);
}

int zsrv__conf_bound(const char *v, double *out)
{
    double d;
    if (znum_double(v, 0, 1e15, &d) || !(d > 0))
        return ZE_INVAL;
    *out = d;
    return 0;
}

int zsrv__conf_size(const char *v, long long max, long long *out)
{
    return znum_size(v, max, out);
}

int zsrv__conf_memory(zsrv_config *c, const char *key, const char *v)
{
    long long n;
    if (!strcasecmp(key, "max-frame")) {
        if (zsrv__conf_size(v, UINT32_MAX, &n) || n < 1024)
            return ZE_INVAL;
        c->max_frame = (uint32_t)n;
    } else if (!strcasecmp(key, "request-memory")) {
        if (zsrv__conf_size(v, LLONG_MAX, &n) || n < ZSRV_MIN_REQUEST_MEMORY)
            return ZE_INVAL;
        c->request_memory = (uint64_t)n;
    } else if (!strcasecmp(key, "output-memory")) {
        if (zsrv__conf_size(v, LLONG_MAX, &n) || n < ZSRV_MIN_OUTPUT_MEMORY)
            return ZE_INVAL;
        c->output_memory = (uint64_t)n;
    } else if (!strcasecmp(key, "max-connections")) {
        if (zsrv__conf_size(v, 1000000, &n) || n < 1)
            return ZE_INVAL;
        c->max_connections = (int)n;
    } else {
        return ZE_NOTFOUND;
    }
    return 0;
}

int zsrv_config_check(const zsrv_config *c, zerr *err)
{
    zsrv_address addr;
    if (!c->address)
        return zerr_set(err, ZE_INVAL, "no address: give -a HOST:PORT or an address in <zeo>");
    if (zsrv__address_parse(c->address, &addr, err) < 0)
        return ZE_INVAL;
    if (!c->n_storages)
        return zerr_set(err, ZE_INVAL, "no storage: give -f DBDIR, --postgresql URI, or an "
                        "<lmdb NAME> or <postgresql NAME> section");
    for (size_t i = 0; i < c->n_storages; i++) {
        if (!c->storages[i].path && !c->storages[i].dsn)
            return zerr_set(err, ZE_INVAL, "storage '%s' has no path", c->storages[i].name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->storages[i].name, c->storages[j].name))
                return zerr_set(err, ZE_INVAL, "two storages are named '%s'",
                                c->storages[i].name);
    }
    if ((c->ssl_key || c->ssl_ca) && !c->ssl_cert)
        return zerr_set(err, ZE_INVAL, "TLS needs a certificate (--ssl-cert or <ssl> certificate)");
    return 0;
}

/* ---- zeo.conf ---------------------------------------------------------- */

typedef struct defn {
    char *name, *value;
} defn;

typedef struct parser {
    zsrv_config *c;
    const char *path;
    int line;
    defn *defs;
    size_t n_defs, cap_defs;
    char sections[8][32];  /* open section types, innermost last */
    int depth;
    zsrv_storage_cfg *storage;  /* inside <lmdb> or <postgresql> */
    zsrv_log_cfg *logh;         /* inside <logfile> or <syslog> */
    int eventlogs;
    zerr *err;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(parser *p, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    /* A long line is cut in the message; the line number still says where. */
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return zerr_set(p->err, ZE_INVAL, "%s:%d: %s", p->path, p->line, msg);
}

static const char *lookup_def(parser *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->n_defs; i++)
        if (strlen(p->defs[i].name) == len && !strncasecmp(p->defs[i].name, name, len))
            return p->defs[i].value;
    return NULL;
}

/* Expand $NAME, ${NAME} and $$ into out. */
static int substitute(parser *p, const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *s = in; *s;) {
        const char *val = NULL;
        char one[2] = {0, 0};
        if (*s == '$' && s[1] == '$') {
            one[0] = '$';
            val = one;
            s += 2;
        } else if (*s == '$') {
            int brace = s[1] == '{';
            const char *n = s + 1 + brace, *e = n;
            while (isalnum((unsigned char)*e) || *e == '_')
                e++;
            if (e == n || (brace && *e != '}'))
                return perr(p, "bad substitution in '%s'", in);
            if (!(val = lookup_def(p, n, (size_t)(e - n))))
                return perr(p, "undefined name in '%s'", in);
            s = e + brace;
        } else {
            one[0] = *s++;
            val = one;
        }
        size_t n = strlen(val);
        if (o + n >= cap)
            return perr(p, "line too long: '%s'", in);
        memcpy(out + o, val, n);
        o += n;
    }
    out[o] = 0;
    return 0;
}

static int add_define(parser *p, char *rest)
{
    char *name = rest, *value = rest;
    while (*value && !isspace((unsigned char)*value))
        value++;
    if (*value)
        *value++ = 0;
    while (isspace((unsigned char)*value))
        value++;
    if (!*name)
        return perr(p, "%s", "%define needs a name");
    defn *n = zarray_room(p->defs, p->n_defs, &p->cap_defs, sizeof *n, 8);
    if (!n)
        return zerr_set(p->err, ZE_NOMEM, "out of memory");
    p->defs = n;
    n[p->n_defs].name = strdup(name);
    n[p->n_defs].value = strdup(value);
    if (!n[p->n_defs].name || !n[p->n_defs].value) {
        free(n[p->n_defs].name);
        free(n[p->n_defs].value);
        return zerr_set(p->err, ZE_NOMEM, "out of memory");
    }
    p->n_defs++;
    return 0;
}

static const char *cur_section(parser *p)
{
    return p->depth ? p->sections[p->depth - 1] : "";
}

static int in_ignored(parser *p)
{
    for (int i = 0; i < p->depth; i++)
        if (!strcasecmp(p->sections[i], "runner"))
            return 1;
    return 0;
}

static int open_section(parser *p, char *type, char *name)
{
    const char *parent = cur_section(p);
    if (p->depth == 8)
        return perr(p, "%s", "sections nested too deep");
    if (in_ignored(p)) {
        /* inside <runner>: nothing to check */
    } else if (!strcasecmp(type, "zeo") || !strcasecmp(type, "eventlog")) {
        if (p->depth)
            return perr(p, "<%s> must be at the top level", type);
        if (!strcasecmp(type, "eventlog")) {
            if (p->eventlogs++)
                return perr(p, "%s", "a second <eventlog>: put every handler in one");
            /* The file's log replaces what earlier flags said. */
            log_handlers_clear(p->c);
            p->c->log_level = ZSRV_LOG_INFO;
        }
    } else if (!strcasecmp(type, "ssl")) {
        if (strcasecmp(parent, "zeo"))
            return perr(p, "%s", "<ssl> belongs inside <zeo>");
    } else if (!strcasecmp(type, "logfile") || !strcasecmp(type, "syslog")) {
        if (strcasecmp(parent, "eventlog"))
            return perr(p, "<%s> belongs inside <eventlog>", type);
        int sys = !strcasecmp(type, "syslog");
        if (!(p->logh = log_handler_add(p->c, sys ? ZSRV_LOGH_SYSLOG : ZSRV_LOGH_FILE, p->err)))
            return ZE_NOMEM;
    } else if (!strcasecmp(type, "email-notifier") || !strcasecmp(type, "http-logger") ||
               !strcasecmp(type, "win32-eventlog")) {
        return perr(p, "<%s> is not supported: zeolite logs to files, STDOUT, STDERR, "
                       "syslog (<syslog>) and the journal", type);
    } else if (!strcasecmp(type, "runner")) {
        zsrv__log(ZSRV_LOG_INFO, "%s:%d: <runner> is for zdaemon; ignored", p->path, p->line);
    } else if (!strcasecmp(type, "filestorage") || !strcasecmp(type, "blobstorage") ||
               !strcasecmp(type, "mappingstorage") || !strcasecmp(type, "demostorage")) {
        return perr(p, "<%s> is a Python ZODB storage; zeolite serves LMDB databases: convert "
                       "Data.fs with `zeolite import DATA.fs DBDIR [--blobs BLOBDIR]` and use "
                       "<lmdb NAME> path DBDIR </lmdb>", type);
    } else if (!strcasecmp(type, "lmdb") || !strcasecmp(type, "postgresql")) {
        if (p->depth)
            return perr(p, "<%s> must be at the top level", type);
        for (size_t i = 0; i < p->c->n_storages; i++)
            if (!strcmp(p->c->storages[i].name, name && *name ? name : "1"))
                return perr(p, "two storages are named '%s'", name && *name ? name : "1");
        if (zsrv__conf_add_storage(p->c, name && *name ? name : "1", NULL, NULL, p->err) < 0)
            return p->err ? p->err->code : ZE_NOMEM;
        p->storage = &p->c->storages[p->c->n_storages - 1];
    } else {
        return perr(p, "unknown section <%s>", type);
    }
    snprintf(p->sections[p->depth++], sizeof p->sections[0], "%s", type);
    return 0;
}

static int log_handler_check(parser *p, zsrv_log_cfg *h);

static int close_section(parser *p, const char *type)
{
    if (!p->depth || strcasecmp(cur_section(p), type))
        return perr(p, "unexpected </%s>", type);
    if (!strcasecmp(type, "lmdb") || !strcasecmp(type, "postgresql")) {
        int pg = !strcasecmp(type, "postgresql");
        if (!(pg ? p->storage->dsn : p->storage->path))
            return perr(p, pg ? "<postgresql %s> needs a dsn" : "<lmdb %s> needs a path",
                        p->storage->name);
        p->storage = NULL;
    }
    if (p->logh) {
        int rc = log_handler_check(p, p->logh);
        if (rc < 0)
            return rc;
        p->logh = NULL;
    }
    p->depth--;
    return 0;
}

/* ZConfig's FileHandlerFactory checks, at the section's end. */
static int log_handler_check(parser *p, zsrv_log_cfg *h)
{
    if (h->kind == ZSRV_LOGH_SYSLOG)
        return 0;
    if (!h->path)
        return perr(p, "%s", "<logfile> needs a path");
    int rotates = h->max_size || h->old_files || h->when || h->interval;
    if (rotates && (!strcmp(h->path, "STDOUT") || !strcmp(h->path, "STDERR")))
        return perr(p, "cannot rotate %s", h->path);
    if (!rotates)
        return 0;
    if (!h->old_files)
        return perr(p, "%s", "old-files must be set for log rotation");
    if (h->when && h->max_size)
        return perr(p, "%s", "can't set *both* max-size and when");
    if (!h->when && !h->max_size)
        return perr(p, "%s", "max-size or when must be set for log rotation");
    return 0;
}

static int syslog_facility(const char *v)
{
    /* ZConfig's list, numbered as syslog(3) and Python's SysLogHandler do */
    static const struct { const char *name; int n; } f[] = {
        {"kern", 0},     {"user", 1},     {"mail", 2},     {"daemon", 3},  {"auth", 4},
        {"security", 4}, {"syslog", 5},   {"lpr", 6},      {"news", 7},    {"uucp", 8},
        {"cron", 9},     {"authpriv", 10}, {"local0", 16}, {"local1", 17}, {"local2", 18},
        {"local3", 19},  {"local4", 20},  {"local5", 21},  {"local6", 22}, {"local7", 23},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcasecmp(v, f[i].name))
            return f[i].n;
    return -1;
}

/* ---- keys: what each section accepts ----------------------------------- */

/* How a key's value is read into its section's object (the config, the
 * storage of an <lmdb>, the log handler being read): by kind for the common
 * shapes, by a function for the rest. The tables below are the parser's
 * whole vocabulary; zsrv__conf_keys lists them, and the documentation test
 * checks that etc/zeo.conf and the man page describe every one. */
typedef enum key_kind {
    K_STR,       /* char *, replaced */
    K_BOOL,      /* int: true/yes/on/1 or false/no/off/0 */
    K_COUNT,     /* int in [0, max]; ZConfig's KB/MB/GB suffixes too unless plain */
    K_BYTES,     /* long long: a byte size, ZConfig's suffixes allowed */
    K_SECONDS,   /* double >= 0 */
    K_BOUND,     /* double > 0 (seconds) */
    K_LEVEL,     /* int: a ZConfig log level, a name or 0..50 */
    K_CALL,      /* call(p, object, key, value) */
    K_REFUSED,   /* a ZConfig key zeolite cannot honour: "KEY VALUE: why" */
} key_kind;

typedef struct conf_key {
    const char *name;
    key_kind kind;
    size_t off;                 /* the field in the section's object */
    long long max;              /* K_COUNT */
    int plain;                  /* K_COUNT: digits only */
    int (*call)(parser *p, void *obj, const char *key, const char *v);
    const char *why;            /* K_REFUSED */
} conf_key;

#define KEY(name, kind, type, field) {name, kind, offsetof(type, field), 0, 0, NULL, NULL}
#define KEY_COUNT(name, type, field, max, plain) \
    {name, K_COUNT, offsetof(type, field), max, plain, NULL, NULL}
#define KEY_CALL(name, fn) {name, K_CALL, 0, 0, 0, fn, NULL}
#define KEY_REFUSED(name, why) {name, K_REFUSED, 0, 0, 0, NULL, why}

static int set_key(parser *p, const conf_key *k, void *obj, const char *v)
{
    char *field = (char *)obj + k->off;
    long long n;
    int level;
    switch (k->kind) {
    case K_STR:
        return zsrv__conf_str((char **)field, v, p->err);
    case K_BOOL:
        return parse_bool(v, (int *)field) ? perr(p, "%s needs true or false", k->name) : 0;
    case K_COUNT:
        if (zsrv__conf_size(v, k->max, &n) || (k->plain && strpbrk(v, "KMGkmg")))
            return perr(p, "bad %s '%s'", k->name, v);
        *(int *)field = (int)n;
        return 0;
    case K_BYTES:
        return zsrv__conf_size(v, LLONG_MAX, (long long *)field)
                   ? perr(p, "bad %s '%s'", k->name, v) : 0;
    case K_SECONDS:
        return zsrv__conf_number(v, (double *)field) ? perr(p, "bad %s '%s'", k->name, v) : 0;
    case K_BOUND:
        return zsrv__conf_bound(v, (double *)field)
                   ? perr(p, "bad %s '%s' (seconds, more than 0)", k->name, v) : 0;
    case K_LEVEL:
        if ((level = zsrv__log_level_parse(v)) < 0)
            return perr(p, "unknown log level '%s'", v);
        *(int *)field = level;
        return 0;
    case K_CALL:
        return k->call(p, obj, k->name, v);
    case K_REFUSED:
        return perr(p, "%s %s: %s", k->name, v, k->why);
    }
    return perr(p, "%s has no reader", k->name);
}

/* A boolean that only one value of is supported: 0 when v is `ok`. */
static int only(parser *p, const char *key, const char *v, int ok, const char *why)
{
    int on = 0;
    if (parse_bool(v, &on))
        return perr(p, "%s needs true or false", key);
    return on == ok ? 0 : perr(p, "%s", why);
}

/* max-frame, request-memory, output-memory, max-connections: read as their
 * flags read them. */
static int k_memory(parser *p, void *obj, const char *key, const char *v)
{
    return zsrv__conf_memory(obj, key, v) ? perr(p, "bad value for %s (see zeolite serve "
                                                    "--help)", key) : 0;
}

static const conf_key zeo_keys[] = {
    KEY("address", K_STR, zsrv_config, address),
    KEY("read-only", K_BOOL, zsrv_config, read_only),
    KEY("msgpack", K_BOOL, zsrv_config, msgpack),
    KEY_COUNT("invalidation-queue-size", zsrv_config, invq_size, 10000000, 0),
    KEY("invalidation-age", K_SECONDS, zsrv_config, inv_age),
    KEY("transaction-timeout", K_SECONDS, zsrv_config, txn_timeout),
    KEY_COUNT("max-iterators", zsrv_config, max_iterators, 1000000, 0),
    KEY("conflict-timeout", K_BOUND, zsrv_config, conflict_timeout),
    KEY("max-future-tid", K_SECONDS, zsrv_config, max_future_tid),
    KEY("pid-filename", K_STR, zsrv_config, pid_file),
    KEY_CALL("max-frame", k_memory),
    KEY_CALL("request-memory", k_memory),
    KEY_CALL("output-memory", k_memory),
    KEY_CALL("max-connections", k_memory),
    KEY("client-conflict-resolution", K_BOOL, zsrv_config, client_conflict_resolution),
    KEY("metrics", K_STR, zsrv_config, metrics_address),
    KEY_REFUSED("monitor-address", "gone since ZEO 5; use ruok on the main port "
                                   "(zeolite status)"),
};

static int k_authenticate(parser *p, void *obj, const char *key, const char *v)
{
    if (!strcmp(v, "-") || !strcmp(v, "SIGNED"))
        return perr(p, "authenticate %s is not supported: give the CA file or folder of "
                       "the client certificates", v);
    return zsrv__conf_str(&((zsrv_config *)obj)->ssl_ca, v, p->err);
}

static const conf_key ssl_keys[] = {
    KEY("certificate", K_STR, zsrv_config, ssl_cert),
    KEY("key", K_STR, zsrv_config, ssl_key),
    KEY_CALL("authenticate", k_authenticate),
    KEY_REFUSED("password-function", "names Python code, which zeolite cannot run; use an "
                                     "unencrypted key file (protect it with file permissions)"),
};

static const conf_key lmdb_keys[] = {
    KEY("path", K_STR, zsrv_storage_cfg, path),
    KEY("read-only", K_BOOL, zsrv_storage_cfg, read_only),
    KEY("pack-gc", K_BOOL, zsrv_storage_cfg, pack_gc),
};

static int k_pool_size(parser *p, void *obj, const char *key, const char *v)
{
    long long n;
    if (zsrv__conf_size(v, 1000, &n) || n < 1 || strpbrk(v, "KMGkmg"))
        return perr(p, "bad pool-size '%s' (1 .. 1000 connections)", v);
    ((zsrv_storage_cfg *)obj)->pool_size = (int)n;
    return 0;
}

static int k_lock_timeout(parser *p, void *obj, const char *key, const char *v)
{
    double secs;
    if (zsrv__conf_bound(v, &secs) || secs > 3600)
        return perr(p, "bad lock-timeout '%s' (seconds, more than 0, at most 3600)", v);
    ((zsrv_storage_cfg *)obj)->lock_timeout_ms = secs * 1000 < 1 ? 1 : (int)(secs * 1000);
    return 0;
}

static int k_shared_blob_dir(parser *p, void *obj, const char *key, const char *v)
{
    return only(p, key, v, 0, "shared-blob-dir true is not offered on PostgreSQL: its blobs "
                "live in the database and clients receive them from the server (leave "
                "shared-blob-dir false in their ClientStorage)");
}

static const conf_key postgresql_keys[] = {
    KEY("dsn", K_STR, zsrv_storage_cfg, dsn),
    KEY("read-only", K_BOOL, zsrv_storage_cfg, read_only),
    KEY("pack-gc", K_BOOL, zsrv_storage_cfg, pack_gc),
    KEY_CALL("pool-size", k_pool_size),
    KEY("retry-seconds", K_BOUND, zsrv_storage_cfg, retry_seconds),
    KEY_CALL("lock-timeout", k_lock_timeout),
    KEY("blob-cache", K_STR, zsrv_storage_cfg, blob_cache),
    KEY("shared", K_BOOL, zsrv_storage_cfg, shared),
    KEY("read-dsn", K_STR, zsrv_storage_cfg, read_dsn),
    KEY("read-max-lag", K_BOUND, zsrv_storage_cfg, read_max_lag),
    KEY_CALL("shared-blob-dir", k_shared_blob_dir),
    KEY_REFUSED("path", "<postgresql> takes a dsn (a libpq URI or conninfo), not a path"),
};

static const conf_key eventlog_keys[] = {
    KEY("level", K_LEVEL, zsrv_config, log_level),
};

static int k_format(parser *p, void *obj, const char *key, const char *v)
{
    zsrv_log_cfg *h = obj;
    char *f = zsrv__log_unescape(v);
    if (!f)
        return zerr_set(p->err, ZE_NOMEM, "out of memory");
    zerr e = {0};
    if (zsrv__logfmt_check(f, &e) < 0) {
        free(f);
        return zerr_set(p->err, ZE_INVAL, "%s:%d: %s", p->path, p->line, e.msg);
    }
    free(h->format);
    h->format = f;
    return 0;
}

static int k_style(parser *p, void *obj, const char *key, const char *v)
{
    return strcasecmp(v, "classic") ? perr(p, "style %s is not supported: zeolite formats "
                                              "the classic %%(name)s way", v) : 0;
}

static int k_arbitrary_fields(parser *p, void *obj, const char *key, const char *v)
{
    return only(p, key, v, 0, "arbitrary-fields true is not supported: a "
                "zeolite record has only the fields its format may name");
}

/* ZConfig's base-log-handler keys, which <logfile> and <syslog> share. */
#define HANDLER_KEYS                                                              \
    KEY("level", K_LEVEL, zsrv_log_cfg, level),                                   \
    KEY_CALL("format", k_format),                                                 \
    KEY("dateformat", K_STR, zsrv_log_cfg, dateformat),                           \
    KEY_CALL("style", k_style),                                                   \
    KEY_CALL("arbitrary-fields", k_arbitrary_fields),                             \
    KEY_REFUSED("formatter", "names a Python class, which zeolite cannot run")

static int k_when(parser *p, void *obj, const char *key, const char *v)
{
    int ok = (strlen(v) == 1 && strchr("SMHDsmhd", v[0])) || !strcasecmp(v, "midnight") ||
             (strlen(v) == 2 && (v[0] == 'W' || v[0] == 'w') && v[1] >= '0' && v[1] <= '6');
    if (!ok)
        return perr(p, "bad when '%s' (S, M, H, D, MIDNIGHT or W0..W6)", v);
    return zsrv__conf_str(&((zsrv_log_cfg *)obj)->when, v, p->err);
}

static int k_encoding(parser *p, void *obj, const char *key, const char *v)
{
    return strcasecmp(v, "utf-8") && strcasecmp(v, "utf8")
               ? perr(p, "encoding %s is not supported: zeolite writes UTF-8", v) : 0;
}

static int k_delay(parser *p, void *obj, const char *key, const char *v)
{
    return only(p, key, v, 0, "delay true is not supported: zeolite opens its log files "
                "at start, so that a bad path stops the start");
}

static const conf_key logfile_keys[] = {
    HANDLER_KEYS,
    KEY("path", K_STR, zsrv_log_cfg, path),
    KEY("max-size", K_BYTES, zsrv_log_cfg, max_size),
    KEY_COUNT("old-files", zsrv_log_cfg, old_files, 100000, 1),
    KEY_CALL("when", k_when),
    KEY_COUNT("interval", zsrv_log_cfg, interval, 1000000, 1),
    KEY_CALL("encoding", k_encoding),
    KEY_CALL("delay", k_delay),
};

static int k_facility(parser *p, void *obj, const char *key, const char *v)
{
    if ((((zsrv_log_cfg *)obj)->facility = syslog_facility(v)) < 0)
        return perr(p, "unknown syslog facility '%s' (auth, authpriv, cron, daemon, kern, "
                       "lpr, mail, news, security, syslog, user, uucp, local0..local7)", v);
    return 0;
}

static const conf_key syslog_keys[] = {
    HANDLER_KEYS,
    KEY("address", K_STR, zsrv_log_cfg, address),
    KEY_CALL("facility", k_facility),
};

/* A section's keys and the object they set. */
typedef struct conf_section {
    const char *name;
    const conf_key *keys;
    size_t n_keys;
    void *(*object)(parser *p);
} conf_section;

static void *the_config(parser *p) { return p->c; }
static void *the_storage(parser *p) { return p->storage; }
static void *the_handler(parser *p) { return p->logh; }

#define SECTION(name, keys, object) {name, keys, sizeof keys / sizeof keys[0], object}

static const conf_section sections[] = {
    SECTION("zeo", zeo_keys, the_config),
    SECTION("ssl", ssl_keys, the_config),
    SECTION("lmdb", lmdb_keys, the_storage),
    SECTION("postgresql", postgresql_keys, the_storage),
    SECTION("eventlog", eventlog_keys, the_config),
    SECTION("logfile", logfile_keys, the_handler),
    SECTION("syslog", syslog_keys, the_handler),
};

void zsrv__conf_keys(void (*fn)(void *arg, const char *section, const char *key), void *arg)
{
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        for (size_t j = 0; j < sections[i].n_keys; j++)
            if (sections[i].keys[j].kind != K_REFUSED)
                fn(arg, sections[i].name, sections[i].keys[j].name);
}

static int handle_key(parser *p, const char *key, const char *v)
{
    if (in_ignored(p))
        return 0;
    if (!p->depth)
        return perr(p, "'%s' outside of a section", key);
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        const conf_section *s = &sections[i];
        if (strcasecmp(s->name, cur_section(p)))
            continue;
        for (size_t j = 0; j < s->n_keys; j++)
            if (!strcasecmp(key, s->keys[j].name))
                return set_key(p, &s->keys[j], s->object(p), v);
        return perr(p, "unknown key '%s' in <%s>", key, s->name);
    }
    return perr(p, "no keys in <%s>", cur_section(p));
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int parse_line(parser *p, char *raw)
{
    char buf[4096];
    char *s = trim(raw);
    if (!*s || *s == '#')
        return 0;
    if (*s == '%') {
        if (!strncasecmp(s, "%define", 7) && isspace((unsigned char)s[7]))
            return add_define(p, trim(s + 7));
        if (!strncasecmp(s, "%import", 7)) {
            zsrv__log(ZSRV_LOG_WARNING, "%s:%d: %%import of Python packages ignored", p->path,
                     p->line);
            return 0;
        }
        return perr(p, "unknown directive '%s'", s);
    }
    int rc = substitute(p, s, buf, sizeof buf);
    if (rc < 0)
        return rc;
    s = buf;
    if (*s == '<') {
        char *end = strchr(s, '>');
        if (!end || end[1])
            return perr(p, "%s", "bad section line");
        *end = 0;
        if (s[1] == '/')
            return close_section(p, trim(s + 2));
        char *type = trim(s + 1), *name = type;
        while (*name && !isspace((unsigned char)*name))
            name++;
        if (*name)
            *name++ = 0;
        return open_section(p, type, trim(name));
    }
    char *v = s;
    while (*v && !isspace((unsigned char)*v))
        v++;
    if (*v)
        *v++ = 0;
    v = trim(v);
    return handle_key(p, s, v);
}

int zsrv_config_file(zsrv_config *c, const char *path, zerr *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return zerr_sys(err, errno, "cannot read %s", path);
    parser p = {.c = c, .path = path, .err = err};
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        p.line++;
        rc = parse_line(&p, line);
    }
    if (rc == 0 && p.depth)
        rc = perr(&p, "section <%s> is not closed", cur_section(&p));
    free(line);
    for (size_t i = 0; i < p.n_defs; i++) {
        free(p.defs[i].name);
        free(p.defs[i].value);
    }
    free(p.defs);
    fclose(f);
    return rc;
}
