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

/* Fill o and *addr from the command line; -1 to go on, else the exit status. */
static int parse_client_args(const char *name, int argc, char **argv, void (*usage)(FILE *),
                             zcl_opts *o, const char **addr)
{
    zerr err = {0};
    *addr = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = zcl_opts_parse_flag(o, argc, argv, &i, &err);
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
