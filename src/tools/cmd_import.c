/* cmd_import.c: zeolite import DATA.fs DBDIR -- FileStorage into zeolite. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"
#include "tools/cli.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: zeolite import DATA.fs DBDIR [--blobs BLOBDIR] [--link] [--quiet] [--strict]\n"
            "                      [--salvage]\n"
            "Import a FileStorage (and its blob directory, bushy or lawn) into the zeolite\n"
            "database DBDIR. A new DBDIR is built aside and renamed into place at the end;\n"
            "an existing one gets the transactions newer than its last one.\n"
            "  --blobs BLOBDIR  the FileStorage's blob directory\n"
            "  --link           hard-link blob files instead of copying them\n"
            "  --quiet          no progress bar, no summary\n"
            "  --strict         a torn tail (crash residue) is an error, not a warning\n"
            "  --salvage        drop damaged transactions and import every readable one\n");
    return f == stdout ? 0 : 2;
}

int cmd_import(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    zfs_import_opts opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(stdout);
        if (!strcmp(a, "--blobs") && i + 1 < argc)
            opt.blob_dir = argv[++i];
        else if (!strcmp(a, "--link"))
            opt.link = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
            opt.quiet = 1;
        else if (!strcmp(a, "--strict"))
            opt.strict = 1;
        else if (!strcmp(a, "--salvage"))
            opt.salvage = 1;
        else if (a[0] != '-' && npos < 2)
            pos[npos++] = a;
        else
            return usage(stderr);
    }
    if (npos != 2)
        return usage(stderr);
    zerr err = {0};
    zfs_import_stats st;
    opt.cancel = cli_catch_stop_signals();
    int rc = zfs_import(pos[0], pos[1], &opt, &st, &err);
    if (rc) {
        fprintf(stderr, "zeolite import: %s\n", err.msg);
        return 1;
    }
    if (st.leftovers)
        fprintf(stderr, "zeolite import: removed %" PRIu64 " temporary folder(s) left by an "
                "import that was killed\n", st.leftovers);
    if (st.torn)
        fprintf(stderr, "zeolite import: warning: %s: ignored the tail at offset %" PRIu64
                ": %s\n", pos[0], st.tail_pos, st.tail_what);
    if (st.undone)
        fprintf(stderr, "zeolite import: warning: %s: skipped %" PRIu64 " obsolete 'u' "
                "(undone) transactions, as FileStorage's readers do\n", pos[0], st.undone);
    if (st.damaged)
        fprintf(stderr, "zeolite import: warning: %s: dropped %" PRIu64 " damaged region(s), %"
                PRIu64 " bytes; the first at offset %" PRIu64 ": %s\n", pos[0], st.damaged,
                st.damaged_bytes, st.damage_pos, st.damage_what);
    if (!opt.quiet)
        fprintf(stderr, "imported %" PRIu64 " transactions (%" PRIu64 " records, %" PRIu64
                " blobs; %" PRIu64 " already present) from %" PRIu64 " bytes\n", st.txns,
                st.records, st.blobs, st.skipped, st.bytes);
    return 0;
}
