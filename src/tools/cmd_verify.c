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
               "problem with its byte offset and exits 1.\n");
    return f == stdout ? 0 : 2;
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
    uint64_t ntxn = 0, nbytes = 0, tail = 0;
    char what[200] = "";
    int rc = zfs_verify(path, &ntxn, &nbytes, &tail, what, sizeof what, &err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (rc == 1) {
        fprintf(stderr, "%s: torn tail at %" PRIu64 ": %s\n", path, tail, what);
        return 1;
    }
    if (verbose)
        printf("%" PRIu64 " transactions, %" PRIu64 " bytes: no errors detected\n", ntxn,
               nbytes);
    return 0;
}
