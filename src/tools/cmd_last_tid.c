/* cmd_last_tid.c: `zeolite last-tid ADDR`: print the storage's last tid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite last-tid [OPTIONS] ADDR\n\n"
               "Print the last committed transaction id of a ZEO storage as 16 hex digits\n"
               "(0000000000000000 for an empty storage).\n"
               "ADDR is HOST:PORT[:STORAGE], [V6ADDR]:PORT[:STORAGE] or a Unix socket path.\n\n"
               "options:\n"
               "  --timeout SECONDS      give up after this long (default 10)\n"
               "%s", zcl_opts_flags_help);
}

int cmd_last_tid(int argc, char **argv)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.read_only = 1;
    o.timeout_ms = 10000;
    const char *addr = NULL;
    zerr err = {0};
    for (int i = 1; i < argc; i++) {
        int rc = zcl_opts_parse_flag(&o, argc, argv, &i, &err);
        if (rc < 0) {
            fprintf(stderr, "zeolite last-tid: %s\n", err.msg);
            return 2;
        }
        if (rc)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            o.timeout_ms = (unsigned)(atof(argv[++i]) * 1000);
        } else if (argv[i][0] == '-' || addr) {
            usage(stderr);
            return 2;
        } else {
            addr = argv[i];
        }
    }
    if (!addr) {
        usage(stderr);
        return 2;
    }
    zcl_client *c;
    uint64_t tid = 0;
    int rc = zcl_open_sync(addr, &o, &c, &err);
    if (rc == 0) {
        rc = zcl_last_transaction_sync(c, &tid, &err);
        zcl_free(c);
    }
    if (rc < 0) {
        fprintf(stderr, "zeolite last-tid: %s\n", err.msg);
        return 1;
    }
    printf("%016llx\n", (unsigned long long)tid);
    return 0;
}
