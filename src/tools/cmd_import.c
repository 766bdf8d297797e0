/* cmd_import.c: zeolite import DATA.fs DBDIR -- FileStorage into zeolite. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "convert/convert.h"
#include "tools/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zeolite import DATA.fs DBDIR [--blobs BLOBDIR] [--link] [--quiet] [--strict]\n"
            "                      [--salvage] [--progress-interval SECONDS]\n"
            "Import a FileStorage (and its blob directory, bushy or lawn) into the zeolite\n"
            "database DBDIR. A new DBDIR is built aside and renamed into place at the end;\n"
            "an existing one gets the transactions newer than its last one. DBDIR may be a\n"
            "PostgreSQL URI (postgresql://... or postgres://...): the import is then one\n"
            "transaction there, refused while a server uses the database.\n"
            "  --blobs BLOBDIR  the FileStorage's blob directory\n"
            "  --link           hard-link blob files instead of copying them\n"
            "  -q, --quiet      no progress, no summary\n"
            "  --strict         a torn tail (crash residue) is an error, not a warning\n"
            "  --salvage        drop damaged transactions and import every readable one\n"
            "%s", cli_progress_help);
}

int cmd_import(int argc, char **argv)
{
    const char *pos[2];
    size_t npos;
    zfs_import_opts opt = {0};
    zprogress_opts progress = CLI_PROGRESS_DEFAULT;
    const cli_opt opts[] = {
        CLI_STR_OPT("blobs", 0, &opt.blob_dir),
        CLI_FLAG_OPT("link", 0, &opt.link),
        CLI_FLAG_OPT("quiet", 'q', &opt.quiet),
        CLI_FLAG_OPT("strict", 0, &opt.strict),
        CLI_FLAG_OPT("salvage", 0, &opt.salvage),
        CLI_PROGRESS_OPT(progress),
    };
    const cli_spec spec = {.cmd = "import", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .min_args = 2, .max_args = 2, .usage = usage};
    int status;
    if (!cli_args(&spec, argc, argv, pos, &npos, &status))
        return status;
    opt.progress = &progress;
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
