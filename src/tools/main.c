/* main.c: the zeolite executable; dispatches to one subcommand. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} command;

static const command commands[] = {
    {"serve", cmd_serve, "serve [-a HOST:PORT|SOCKET] [-f DBDIR]... [-C zeo.conf]"},
    {"import", cmd_import, "import DATA.fs DBDIR [--blobs BLOBDIR]"},
    {"export", cmd_export, "export DBDIR DATA.fs [--blobs BLOBDIR] [--layout bushy|lawn]"},
    {"verify", cmd_verify, "verify DATA.fs"},
    {"backup", cmd_backup, "backup DBDIR DEST [--compact]"},
    {"status", cmd_status, "status ADDR"},
    {"pack", cmd_pack, "pack ADDR[:STORAGE] -d DAYS"},
    {"last-tid", cmd_last_tid, "last-tid ADDR"},
    {"info", cmd_info, "info ADDR"},
    {"bench", cmd_bench, "bench ADDR ... [--json]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: zeolite COMMAND [ARGS]  (zeolite COMMAND --help for details)\n"
               "       zeolite --version\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  zeolite %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
    /* A write past the file size limit (RLIMIT_FSIZE) must fail with EFBIG,
     * which the commands report as "no room" and clean up after, instead of
     * the signal killing the process halfway through a file. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        cli_print_version(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        if (!commands[i].run) {
            fprintf(stderr, "zeolite: '%s' is not part of this build\n", argv[1]);
            return 2;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "zeolite: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
