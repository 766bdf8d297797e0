/* cmd_info.c: `zeolite info ADDR`: what a ZEO storage says about itself
 * (get_info, lastTransaction, server_status). */
#include <stdio.h>
#include <stdlib.h>

#include "client/client.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite info [OPTIONS] ADDR\n\n"
               "Print a ZEO storage's info (get_info), last transaction and server status,\n"
               "one 'key: value' line each (values in Python notation).\n"
               "ADDR is HOST:PORT[:STORAGE], [V6ADDR]:PORT[:STORAGE] or a Unix socket path.\n\n"
               "options:\n"
               "  --timeout SECONDS      give up after this long (default 10)\n"
               "%s", cli_conn_flags_help);
}

static void print_dict(const char *prefix, const zv *d)
{
    for (size_t i = 0; d && d->type == ZV_DICT && i < d->u.seq.n; i++) {
        const zv *k = d->u.seq.items[2 * i];
        char *repr = NULL;
        if (k->type != ZV_STR || zv_repr(d->u.seq.items[2 * i + 1], &repr) < 0)
            continue;
        printf("%s%.*s: %s\n", prefix, (int)k->u.s.len, (const char *)k->u.s.p, repr);
        free(repr);
    }
}

static int show(zcl_client *c, zerr *err)
{
    uint64_t tid;
    int rc = zcl_last_transaction_sync(c, &tid, err);
    if (rc < 0)
        return rc;
    printf("encoding: %c5\n", (char)zcl_encoding(c));
    printf("last-transaction: %016llx\n", (unsigned long long)tid);
    print_dict("", zcl_info(c));
    zv_arena *a = zv_arena_new();
    zv *st = NULL;
    if (!a)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    rc = zcl_server_status_sync(c, a, &st, err);
    if (rc == 0)
        print_dict("status.", st);
    zv_arena_free(a);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    return cli_run_client("info", argc, argv, usage, show);
}
