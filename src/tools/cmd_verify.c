/* cmd_verify.c: zeolite verify DATA.fs -- check a FileStorage as fstest does. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: zeolite verify [-v] DATA.fs\n"
               "Check a FileStorage: what fstest checks (header, lengths, status, tloc,\n"
               "trailers, tid order) plus prev pointers, back-pointers and versions.\n"
               "Prints nothing and exits 0 when the file is clean; otherwise prints the\n"
               "problem with its byte offset and exits 1. -v lists the transactions as\n"
               "fstest -v does.\n");
    return f == stdout ? 0 : 2;
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
    const char *path = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return usage(stdout);
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            return usage(stderr);
    }
    if (!path)
        return usage(stderr);
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
