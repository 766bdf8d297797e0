/* cmd_export.c: zeolite export DBDIR DATA.fs -- zeolite into FileStorage. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "tools/cli.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: zeolite export DBDIR DATA.fs [--blobs BLOBDIR] [--layout bushy|lawn]\n"
            "                      [--from TID] [--to TID] [--index] [--quiet]\n"
            "Write the database DBDIR (a running server may have it open) as a new\n"
            "FileStorage. TIDs are 16 hex digits; the range is inclusive.\n"
            "  --blobs BLOBDIR  write blob files there (a new or empty folder)\n"
            "  --layout L       blob directory layout: bushy (default) or lawn\n"
            "  --index          also write DATA.fs.index, so FileStorage opens it without a scan\n");
    return f == stdout ? 0 : 2;
}

static int parse_tid(const char *s, uint64_t *out)
{
    char *end;
    if (!strncmp(s, "0x", 2))
        s += 2;
    if (!*s || strlen(s) > 16)
        return -1;
    *out = strtoull(s, &end, 16);
    return *end ? -1 : 0;
}

int cmd_export(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    zfs_export_opts opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(stdout);
        if (!strcmp(a, "--blobs") && i + 1 < argc) {
            opt.blob_dir = argv[++i];
        } else if (!strcmp(a, "--layout") && i + 1 < argc) {
            const char *l = argv[++i];
            if (!strcmp(l, "bushy"))
                opt.layout = ZBLOB_BUSHY;
            else if (!strcmp(l, "lawn"))
                opt.layout = ZBLOB_LAWN;
            else
                return usage(stderr);
        } else if (!strcmp(a, "--from") && i + 1 < argc) {
            if (parse_tid(argv[++i], &opt.from_tid))
                return usage(stderr);
        } else if (!strcmp(a, "--to") && i + 1 < argc) {
            if (parse_tid(argv[++i], &opt.to_tid))
                return usage(stderr);
        } else if (!strcmp(a, "--index")) {
            opt.write_index = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            opt.quiet = 1;
        } else if (a[0] != '-' && npos < 2) {
            pos[npos++] = a;
        } else {
            return usage(stderr);
        }
    }
    if (npos != 2)
        return usage(stderr);
    zerr err = {0};
    zfs_export_stats st;
    opt.cancel = cli_catch_stop_signals();
    if (zfs_export(pos[0], pos[1], &opt, &st, &err)) {
        fprintf(stderr, "zeolite export: %s\n", err.msg);
        return 1;
    }
    if (st.leftovers)
        fprintf(stderr, "zeolite export: removed %" PRIu64 " temporary file(s) left by an "
                "export that was killed\n", st.leftovers);
    if (!opt.quiet)
        fprintf(stderr, "exported %" PRIu64 " transactions (%" PRIu64 " records, %" PRIu64
                " blobs), %" PRIu64 " bytes\n", st.txns, st.records, st.blobs, st.bytes);
    return 0;
}
