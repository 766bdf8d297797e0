/* cli.c: shared subcommand plumbing (see cli.h). */
#include "tools/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/znum.h"

#ifndef ZEOLITE_VERSION
#define ZEOLITE_VERSION "unknown"
#endif

/* Signal handlers can only reach process-wide state; tools is where that lives. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

const volatile sig_atomic_t *cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return &stop_requested;
}

const char cli_tls_flags_help[] =
    "  --tls                  connect with TLS\n"
    "  --tls-ca FILE          CA certificate(s) to verify the server with\n"
    "  --tls-cert FILE        client certificate (PEM)\n"
    "  --tls-key FILE         client key (PEM; default: in the certificate file)\n"
    "  --tls-server-name NAME name to check in the server certificate\n";

const char cli_progress_help[] =
    "  --progress-interval SECONDS  when stderr is not a terminal, a progress line every\n"
    "                         SECONDS (default 5; 0: at every step); a bar on a terminal\n";

const char cli_conn_flags_help[] =
    "  --storage NAME         storage to use (default 1)\n"
    "  --encoding Z|M         force pickle (Z5) or msgpack (M5); default: the server's\n"
    "  --tls                  connect with TLS\n"
    "  --tls-ca FILE          CA certificate(s) to verify the server with\n"
    "  --tls-cert FILE        client certificate (PEM)\n"
    "  --tls-key FILE         client key (PEM; default: in the certificate file)\n"
    "  --tls-server-name NAME name to check in the server certificate\n";

void cli_print_version(FILE *f)
{
    fprintf(f, "zeolite %s (ZEO 5 protocol, Z5 pickle and M5 msgpack)\n", ZEOLITE_VERSION);
}

void cli_usage_error(const char *cmd, const zerr *err)
{
    fprintf(stderr, "zeolite %s: %s\n(zeolite %s --help lists the options)\n", cmd, err->msg,
            cmd);
}

/* ---- the options every command gets ------------------------------------ */

/* getopt_long values: a command's own options are 1000 + their index. */
enum {
    OPT_HELP = 900, OPT_VERSION, OPT_TIMEOUT, OPT_STORAGE, OPT_ENCODING, OPT_TLS,
    OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_NAME, OPT_OWN = 1000,
};

typedef struct common_opt {
    const char *name;
    int has_arg, val, conn_only;
} common_opt;

static const common_opt common_opts[] = {
    {"help", no_argument, OPT_HELP, 0},
    {"version", no_argument, OPT_VERSION, 0},
    {"timeout", required_argument, OPT_TIMEOUT, 0},
    {"storage", required_argument, OPT_STORAGE, 1},
    {"encoding", required_argument, OPT_ENCODING, 1},
    {"tls", no_argument, OPT_TLS, 0},
    {"tls-ca", required_argument, OPT_TLS_CA, 0},
    {"tls-cert", required_argument, OPT_TLS_CERT, 0},
    {"tls-key", required_argument, OPT_TLS_KEY, 0},
    {"tls-server-name", required_argument, OPT_TLS_NAME, 0},
};

#define MAX_OPTS 64

typedef struct table {
    struct option longs[MAX_OPTS];
    size_t n;
    char shorts[2 * MAX_OPTS];
} table;

static int want_common(const cli_spec *s, const common_opt *c)
{
    if (c->val == OPT_TIMEOUT)
        return s->timeout != NULL;
    if (c->val >= OPT_STORAGE)
        return s->conn && !(c->conn_only && s->tls_only);
    return 1;
}

static int uses_letter(const cli_spec *s, int letter)
{
    for (size_t i = 0; i < s->nopts; i++)
        if (s->opts[i].letter == letter)
            return 1;
    return 0;
}

static int build_table(const cli_spec *s, table *t, zerr *err)
{
    size_t k = 0;
    char *sh = t->shorts;
    *sh++ = ':';   /* a missing value is ':', not '?' */
    if (s->nopts + sizeof common_opts / sizeof *common_opts >= MAX_OPTS)
        return zerr_set(err, ZE_INVAL, "too many options");
    for (size_t i = 0; i < s->nopts; i++) {
        const cli_opt *o = &s->opts[i];
        int has_arg = o->kind == CLI_FLAG ? no_argument : required_argument;
        if (o->name)
            t->longs[k++] = (struct option){o->name, has_arg, NULL, OPT_OWN + (int)i};
        if (o->letter) {
            *sh++ = (char)o->letter;
            if (has_arg == required_argument)
                *sh++ = ':';
        }
    }
    for (size_t i = 0; i < sizeof common_opts / sizeof *common_opts; i++)
        if (want_common(s, &common_opts[i]))
            t->longs[k++] = (struct option){common_opts[i].name, common_opts[i].has_arg, NULL,
                                            common_opts[i].val};
    if (!uses_letter(s, 'h'))
        *sh++ = 'h';
    *sh = '\0';
    t->longs[k] = (struct option){NULL, 0, NULL, 0};
    t->n = k;
    return 0;
}

/* ---- values ------------------------------------------------------------ */

/* "--days" or "-d", as the user may have typed it, for messages. */
static void opt_label(const cli_opt *o, char *buf, size_t cap)
{
    if (o->name)
        snprintf(buf, cap, "--%s", o->name);
    else
        snprintf(buf, cap, "-%c", o->letter);
}

static int apply_own(const cli_opt *o, const char *v, zerr *err)
{
    char label[64];
    opt_label(o, label, sizeof label);
    long long n;
    switch (o->kind) {
    case CLI_FLAG:
        *(int *)o->dest = 1;
        return 0;
    case CLI_STR:
        *(const char **)o->dest = v;
        return 0;
    case CLI_INT:
        if (znum_int(v, (long long)o->min, (long long)o->max, &n))
            return zerr_set(err, ZE_INVAL, "%s takes a whole number from %.0f to %.0f, not '%s'",
                            label, o->min, o->max, v);
        *(int *)o->dest = (int)n;
        return 0;
    case CLI_NUM:
        if (znum_double(v, o->min, o->max, o->dest))
            return zerr_set(err, ZE_INVAL, "%s takes a number from %g to %g, not '%s'", label,
                            o->min, o->max, v);
        return 0;
    case CLI_CHOICE: {
        char list[256] = "";
        for (int i = 0; o->choices[i]; i++) {
            if (!strcmp(v, o->choices[i])) {
                *(int *)o->dest = i;
                return 0;
            }
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", o->choices[i]);
        }
        return zerr_set(err, ZE_INVAL, "%s takes one of %s, not '%s'", label, list, v);
    }
    case CLI_CALL: {
        int rc = o->call(o->dest, v, err);
        if (rc < 0) {
            char why[ZERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return zerr_set(err, rc, "%s: %s", label, why);
        }
        return 0;
    }
    }
    return zerr_set(err, ZE_INVAL, "%s: bad option kind", label);
}

static int apply_common(const cli_spec *s, int val, const char *v, zerr *err)
{
    zcl_opts *c = s->conn;
    switch (val) {
    case OPT_TIMEOUT:
        if (znum_double(v, 0.001, 1e6, s->timeout))
            return zerr_set(err, ZE_INVAL, "--timeout takes seconds (more than 0), not '%s'", v);
        return 0;
    case OPT_STORAGE:
        if (!*v)
            return zerr_set(err, ZE_INVAL, "--storage needs a name");
        c->storage = v;
        return 0;
    case OPT_ENCODING:
        if (strcmp(v, "Z") && strcmp(v, "M"))
            return zerr_set(err, ZE_INVAL, "--encoding takes Z or M, not '%s'", v);
        c->encoding = v[0] == 'Z' ? PROTO_PICKLE : PROTO_MSGPACK;
        return 0;
    case OPT_TLS: c->tls = 1; return 0;
    case OPT_TLS_CA: c->tls_ca = v; c->tls = 1; return 0;
    case OPT_TLS_CERT: c->tls_cert = v; c->tls = 1; return 0;
    case OPT_TLS_KEY: c->tls_key = v; c->tls = 1; return 0;
    case OPT_TLS_NAME: c->tls_server_name = v; c->tls = 1; return 0;
    }
    return zerr_set(err, ZE_INVAL, "unknown option");
}

/* The option getopt stopped at, for messages: "-x" or "--xyz". */
static void bad_option(char **argv, char *buf, size_t cap)
{
    if (optopt && optopt < OPT_HELP)
        snprintf(buf, cap, "-%c", optopt);
    else
        snprintf(buf, cap, "%s", argv[optind - 1]);
}

int cli_parse(const cli_spec *s, int argc, char **argv, const char **args, size_t *nargs,
              zerr *err)
{
    table t;
    int rc = build_table(s, &t, err), val;
    if (rc < 0)
        return rc;
    *nargs = 0;
    optind = 0;   /* glibc: a full reset, so commands may parse more than once */
    opterr = 0;
    while ((val = getopt_long(argc, argv, t.shorts, t.longs, NULL)) != -1) {
        char what[128];
        if (val == '?' || val == ':') {
            bad_option(argv, what, sizeof what);
            return zerr_set(err, ZE_INVAL, val == '?' ? "unknown option '%s'"
                                                      : "option '%s' needs a value", what);
        }
        if ((val == 'h' && !uses_letter(s, 'h')) || val == OPT_HELP) {
            s->usage(stdout);
            return CLI_DONE;
        }
        if (val == OPT_VERSION) {
            cli_print_version(stdout);
            return CLI_DONE;
        }
        if (val >= OPT_OWN)
            rc = apply_own(&s->opts[val - OPT_OWN], optarg, err);
        else if (val >= OPT_HELP)
            rc = apply_common(s, val, optarg, err);
        else
            for (size_t i = 0; i < s->nopts; i++)
                if (s->opts[i].letter == val) {
                    rc = apply_own(&s->opts[i], optarg, err);
                    break;
                }
        if (rc < 0)
            return rc;
    }
    for (int i = optind; i < argc; i++) {
        if (*nargs == s->max_args)
            return zerr_set(err, ZE_INVAL, "unexpected argument '%s'", argv[i]);
        args[(*nargs)++] = argv[i];
    }
    if (*nargs < s->min_args)
        return zerr_set(err, ZE_INVAL, "%zu argument%s expected, %zu given", s->min_args,
                        s->min_args > 1 ? "s" : "", *nargs);
    return CLI_OK;
}

int cli_args(const cli_spec *spec, int argc, char **argv, const char **args, size_t *nargs,
             int *status)
{
    zerr err = {0};
    int rc = cli_parse(spec, argc, argv, args, nargs, &err);
    if (rc == CLI_OK)
        return 1;
    *status = 0;
    if (rc < 0) {
        cli_usage_error(spec->cmd, &err);
        *status = spec->usage_status ? spec->usage_status : 2;
    }
    return 0;
}

/* ---- client commands --------------------------------------------------- */

int cli_run_client(const char *name, int argc, char **argv, void (*usage)(FILE *),
                   cli_client_fn run)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.read_only = 1;
    double timeout = 10;
    cli_spec spec = {.cmd = name, .min_args = 1, .max_args = 1, .conn = &o,
                     .timeout = &timeout, .usage = usage};
    const char *addr;
    size_t n;
    int status;
    if (!cli_args(&spec, argc, argv, &addr, &n, &status))
        return status;
    o.timeout_ms = (unsigned)(timeout * 1000 + 0.5);
    zcl_client *c;
    zerr err = {0};
    int rc = zcl_open_sync(addr, &o, &c, &err);
    if (rc == 0) {
        rc = run(c, &err);
        zcl_free(c);
    }
    if (rc < 0) {
        fprintf(stderr, "zeolite %s: %s\n", name, err.msg);
        return 1;
    }
    return 0;
}

void cli_store_log(void *command_name, int level, const char *msg)
{
    (void)level;   /* a command's user sees every line the store has */
    fprintf(stderr, "zeolite %s: %s\n", (const char *)command_name, msg);
}
