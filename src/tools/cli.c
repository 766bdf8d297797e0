/* cli.c: shared subcommand plumbing (see cli.h). */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

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

const char cli_conn_flags_help[] =
    "  --storage NAME         storage to use (default 1)\n"
    "  --encoding Z|M         force pickle (Z5) or msgpack (M5); default: the server's\n"
    "  --tls                  connect with TLS\n"
    "  --tls-ca FILE          CA certificate(s) to verify the server with\n"
    "  --tls-cert FILE        client certificate (PEM)\n"
    "  --tls-key FILE         client key (PEM; default: in the certificate file)\n"
    "  --tls-server-name NAME name to check in the server certificate\n";

int cli_conn_flag(zcl_opts *o, int argc, char **argv, int *i, zerr *err)
{
    static const char *const with_value[] = {"--storage", "--encoding", "--tls-ca",
                                             "--tls-cert", "--tls-key", "--tls-server-name"};
    const char *flag = argv[*i];
    if (!strcmp(flag, "--tls")) {
        o->tls = 1;
        return 1;
    }
    size_t k = 0;
    while (k < sizeof with_value / sizeof *with_value && strcmp(flag, with_value[k]))
        k++;
    if (k == sizeof with_value / sizeof *with_value)
        return 0;
    if (*i + 1 >= argc)
        return zerr_set(err, ZE_INVAL, "%s needs a value", flag);
    const char *v = argv[++*i];
    switch (k) {
    case 0: o->storage = v; break;
    case 1:
        if (strcmp(v, "Z") && strcmp(v, "M"))
            return zerr_set(err, ZE_INVAL, "--encoding takes Z or M, not '%s'", v);
        o->encoding = v[0] == 'Z' ? PROTO_PICKLE : PROTO_MSGPACK;
        break;
    case 2: o->tls_ca = v; o->tls = 1; break;
    case 3: o->tls_cert = v; o->tls = 1; break;
    case 4: o->tls_key = v; o->tls = 1; break;
    default: o->tls_server_name = v; o->tls = 1; break;
    }
    return 1;
}

/* Fill o and *addr from the command line; -1 to go on, else the exit status. */
static int parse_client_args(const char *name, int argc, char **argv, void (*usage)(FILE *),
                             zcl_opts *o, const char **addr)
{
    zerr err = {0};
    *addr = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = cli_conn_flag(o, argc, argv, &i, &err);
        if (rc < 0) {
            fprintf(stderr, "zeolite %s: %s\n", name, err.msg);
            return 2;
        }
        if (rc)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            o->timeout_ms = (unsigned)(atof(argv[++i]) * 1000);
        } else if (argv[i][0] == '-' || *addr) {
            usage(stderr);
            return 2;
        } else {
            *addr = argv[i];
        }
    }
    if (!*addr) {
        usage(stderr);
        return 2;
    }
    return -1;
}

int cli_run_client(const char *name, int argc, char **argv, void (*usage)(FILE *),
                   cli_client_fn run)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.read_only = 1;
    o.timeout_ms = 10000;
    const char *addr;
    int status = parse_client_args(name, argc, argv, usage, &o, &addr);
    if (status >= 0)
        return status;
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
