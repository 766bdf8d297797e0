/* cmd_last_tid.c: `zeolite last-tid ADDR`: print the storage's last tid. */
#include <stdio.h>

#include "client/client.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite last-tid [OPTIONS] ADDR\n\n"
               "Print the last committed transaction id of a ZEO storage as 16 hex digits\n"
               "(0000000000000000 for an empty storage).\n"
               "ADDR is HOST:PORT[:STORAGE], [V6ADDR]:PORT[:STORAGE] or a Unix socket path.\n\n"
               "options:\n"
               "  --timeout SECONDS      give up after this long (default 10)\n"
               "%s", cli_conn_flags_help);
}

static int print_last_tid(zcl_client *c, zerr *err)
{
    uint64_t tid;
    int rc = zcl_last_transaction_sync(c, &tid, err);
    if (rc == 0)
        printf("%016llx\n", (unsigned long long)tid);
    return rc;
}

int cmd_last_tid(int argc, char **argv)
{
    return cli_run_client("last-tid", argc, argv, usage, print_last_tid);
}
