/* cmd_backup.c: zeolite backup DBDIR DEST [--compact]
 *
 * A hot backup: the database is opened read-only without its exclusive lock,
 * so a running server keeps serving while the copy is taken.
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite backup DBDIR DEST [--compact] [--quiet] [--progress-interval S]\n"
               "  Copy the database in DBDIR (LMDB file and blobs) into the new folder DEST\n"
               "  (absent or empty). Safe while a server uses DBDIR: the copy is one\n"
               "  consistent snapshot.\n"
               "  --compact     write a compacted copy (LMDB files never shrink after a pack;\n"
               "                the copy leaves out free pages)\n"
               "  -q, --quiet   no progress, no summary\n"
               "  A PostgreSQL database is backed up with PostgreSQL's tools (pg_basebackup).\n"
               "%s", cli_progress_help);
}

static void on_progress(void *p, uint64_t bytes, uint64_t files)
{
    zprogress_update(p, bytes, files);
}

int cmd_backup(int argc, char **argv)
{
    const char *pos[2];
    size_t npos;
    int compact = 0, quiet = 0;
    zprogress_opts progress = CLI_PROGRESS_DEFAULT;
    const cli_opt opts[] = {
        CLI_FLAG_OPT("compact", 0, &compact),
        CLI_FLAG_OPT("quiet", 'q', &quiet),
        CLI_PROGRESS_OPT(progress),
    };
    const cli_spec spec = {.cmd = "backup", .opts = opts, .nopts = sizeof opts / sizeof *opts,
                           .min_args = 2, .max_args = 2, .usage = usage};
    int status;
    if (!cli_args(&spec, argc, argv, pos, &npos, &status))
        return status;
    const char *dir = pos[0], *dest = pos[1];
    progress.quiet = quiet;
    store_options opt = {.read_only = 1, .log = cli_store_log, .log_data = "backup"};
    store *s;
    zerr err;
    int rc = store_open(&s, dir, &opt, &err);
    if (rc) {
        fprintf(stderr, "zeolite backup: %s\n", err.msg);
        return 1;
    }
    /* a PostgreSQL database is refused by store_backup, pointing to its own
     * tools; its URI is never printed (it may hold a password) */
    if ((store_caps(s) & STORE_CAP_BACKUP) && store_is_locked(dir) && !quiet)
        printf("%s is in use by a server: taking a hot copy\n", dir);
    progress.unit = "blob files";
    zprogress *p = zprogress_new("backup", 0, &progress);
    rc = store_backup_progress(s, dest, compact, on_progress, p, &err);
    zprogress_done(p);
    store_close(s);
    if (rc) {
        fprintf(stderr, "zeolite backup: %s\n", err.msg);
        return 1;
    }
    if (!quiet)
        printf("backed up %s to %s%s\n", dir, dest, compact ? " (compacted)" : "");
    return 0;
}
