/* cmd_export.c: zeolite export DBDIR DATA.fs -- zeolite into FileStorage. */
#include "tools/commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "tools/cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zeolite export DBDIR DATA.fs [--blobs BLOBDIR] [--layout bushy|lawn]\n"
            "                      [--from TID] [--to TID] [--index] [--quiet]\n"
            "                      [--progress-interval SECONDS]\n"
            "Write the database DBDIR (a running server may have it open) as a new\n"
            "FileStorage. DBDIR may be a PostgreSQL URI (postgresql://...), read in one\n"
            "consistent snapshot. TIDs are 16 hex digits; the range is inclusive.\n"
            "  --blobs BLOBDIR  write blob files there (a new or empty folder)\n"
            "  --layout L       blob directory layout: bushy (default) or lawn\n"
            "  --index          also write DATA.fs.index, so FileStorage opens it without a scan\n"
            "  -q, --quiet      no progress, no summary\n"
            "%s", cli_progress_help);
}

/* --from/--to: 16 hex digits (an optional 0x). */
static int parse_tid(void *dest, const char *s, zerr *err)
{
    const char *hex = strncmp(s, "0x", 2) ? s : s + 2;
    size_t n = strlen(hex);
    if (n == 0 || n > 16 || strspn(hex, "0123456789abcdefABCDEF") != n)
        return zerr_set(err, ZE_INVAL, "want a tid of up to 16 hex digits, not '%s'", s);
    *(uint64_t *)dest = strtoull(hex, NULL, 16);
    return 0;
}

int cmd_export(int argc, char **argv)
{
    static const char *const layouts[] = {"bushy", "lawn", NULL};
    const char *pos[2];
    size_t npos;
    zfs_export_opts opt = {0};
    zprogress_opts progress = CLI_PROGRESS_DEFAULT;
    int layout = 0;
    const cli_opt opts[] = {
        CLI_STR_OPT("blobs", 0, &opt.blob_dir),
        CLI_CHOICE_OPT("layout", 0, &layout, layouts),
        CLI_CALL_OPT("from", 0, &opt.from_tid, parse_tid),
        CLI_CALL_OPT("to", 0, &opt.to_tid, parse_tid),
        CLI_FLAG_OPT("index", 0, &opt.write_index),
        CLI_FLAG_OPT("quiet", 'q', &opt.quiet),
        CLI_PROGRESS_OPT(progress),
    };
    const cli_spec spec = {.cmd = "export", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .min_args = 2, .max_args = 2, .usage = usage};
    int status;
    if (!cli_args(&spec, argc, argv, pos, &npos, &status))
        return status;
    opt.layout = layout ? ZBLOB_LAWN : ZBLOB_BUSHY;
    opt.progress = &progress;
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
