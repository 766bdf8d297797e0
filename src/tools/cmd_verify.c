/* cmd_verify.c: zeolite verify DATA.fs -- check a FileStorage as fstest does. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"
#include "tools/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite verify [-v] DATA.fs\n"
               "Check a FileStorage: what fstest checks (header, lengths, status, tloc,\n"
               "trailers, tid order) plus prev pointers, back-pointers and versions.\n"
               "Prints nothing and exits 0 when the file is clean; otherwise prints the\n"
               "problem with its byte offset and exits 1. -v lists the transactions as\n"
               "fstest -v does.\n");
}

/* fstest -v's line for a transaction. */
static void print_txn(const zfs_txn *txn, uint64_t n, void *ud)
{
    (void)ud;
    printf("%10" PRIu64 ": transaction tid 0x%016" PRIx64 " #%" PRIu64 " \n", txn->pos, txn->tid,
           n);
}

int cmd_verify(int argc, char **argv)
{
    const char *path;
    size_t npos;
    int verbose = 0;
    const cli_opt opts[] = {CLI_FLAG_OPT("verbose", 'v', &verbose)};
    const cli_spec spec = {.cmd = "verify", .opts = opts, .nopts = 1, .min_args = 1,
                           .max_args = 1, .usage = usage};
    int status;
    if (!cli_args(&spec, argc, argv, &path, &npos, &status))
        return status;
    zerr err = {0};
    zfs_verify_result res;
    int rc = zfs_verify(path, verbose ? print_txn : NULL, NULL, &res, &err);
    fflush(stdout);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (rc == 1) {
        fprintf(stderr, "%s: torn tail at %" PRIu64 ": %s\n", path, res.tail_pos,
                res.tail_what);
        return 1;
    }
    if (verbose)
        printf("no errors detected\n");
    return 0;
}
