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
    fprintf(f, "usage: zeolite backup DBDIR DEST [--compact]\n"
               "  Copy the database in DBDIR (LMDB file and blobs) into the new folder DEST\n"
               "  (absent or empty). Safe while a server uses DBDIR: the copy is one\n"
               "  consistent snapshot.\n"
               "  --compact  write a compacted copy (LMDB files never shrink after a pack;\n"
               "             the copy leaves out free pages)\n");
}

static int parse(int argc, char **argv, const char **dir, const char **dest, int *compact)
{
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--compact")) {
            *compact = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "zeolite backup: unknown option '%s'\n", argv[i]);
            return -1;
        } else if (npos < 2) {
            *(npos++ ? dest : dir) = argv[i];
        } else {
            fprintf(stderr, "zeolite backup: too many arguments\n");
            return -1;
        }
    }
    if (npos == 2)
        return 0;
    fprintf(stderr, "zeolite backup: need DBDIR and DEST\n");
    return -1;
}

int cmd_backup(int argc, char **argv)
{
    const char *dir = NULL, *dest = NULL;
    int compact = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    if (parse(argc, argv, &dir, &dest, &compact)) {
        usage(stderr);
        return 2;
    }
    store_options opt = {.read_only = 1, .log = cli_store_log, .log_data = "backup"};
    store *s;
    zerr err;
    int rc = store_open(&s, dir, &opt, &err);
    if (rc) {
        fprintf(stderr, "zeolite backup: %s\n", err.msg);
        return 1;
    }
    if (store_is_locked(dir))
        printf("%s is in use by a server: taking a hot copy\n", dir);
    rc = store_backup(s, dest, compact, &err);
    store_close(s);
    if (rc) {
        fprintf(stderr, "zeolite backup: %s\n", err.msg);
        return 1;
    }
    printf("backed up %s to %s%s\n", dir, dest, compact ? " (compacted)" : "");
    return 0;
}
