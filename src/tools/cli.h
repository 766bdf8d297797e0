/* cli.h: what several subcommands do the same way (option parsing, process
 * setup, connecting). Private to src/tools.
 *
 * Every command parses its arguments with cli_parse: getopt_long underneath,
 * so `--days=1`, `--days 1`, `-d1`, `-d 1`, combined short flags (`-ms FILE`)
 * and unambiguous long-option prefixes work everywhere, options and
 * positional arguments may come in any order, and every number is checked
 * (common/znum.h) instead of read as 0.
 */
#ifndef ZEOLITE_TOOLS_CLI_H
#define ZEOLITE_TOOLS_CLI_H

#include <signal.h>
#include <stdio.h>

#include "client/client.h"
#include "common/zprogress.h"

/* ---- option parsing --------------------------------------------------- */

typedef enum cli_kind {
    CLI_FLAG,     /* no value: *(int *)dest = 1 */
    CLI_STR,      /* *(const char **)dest = the value (borrowed from argv) */
    CLI_INT,      /* *(int *)dest = a whole number in [min, max] */
    CLI_NUM,      /* *(double *)dest = a number in [min, max] */
    CLI_CHOICE,   /* *(int *)dest = the index of the value in choices */
    CLI_CALL,     /* call(dest, value, err): anything else (lists, tids) */
} cli_kind;

/* One option of a command. A command lists its own; cli_parse adds --help
 * (and -h unless the command uses that letter), --version, and, when the
 * spec asks, the connection flags and --timeout. */
typedef struct cli_opt {
    const char *name;              /* long name without "--", or NULL */
    int letter;                    /* short letter, or 0 */
    cli_kind kind;
    void *dest;
    double min, max;               /* CLI_INT, CLI_NUM */
    const char *const *choices;    /* CLI_CHOICE: NULL-terminated */
    int (*call)(void *dest, const char *value, zerr *err);   /* CLI_CALL */
} cli_opt;

/* Table entries: CLI_INT_OPT("days", 'd', &days, 0, 36500). */
#define CLI_FLAG_OPT(name, letter, dest) {name, letter, CLI_FLAG, dest, 0, 0, NULL, NULL}
#define CLI_STR_OPT(name, letter, dest) {name, letter, CLI_STR, dest, 0, 0, NULL, NULL}
#define CLI_INT_OPT(name, letter, dest, min, max) {name, letter, CLI_INT, dest, min, max, NULL, NULL}
#define CLI_NUM_OPT(name, letter, dest, min, max) {name, letter, CLI_NUM, dest, min, max, NULL, NULL}
#define CLI_CHOICE_OPT(name, letter, dest, list) {name, letter, CLI_CHOICE, dest, 0, 0, list, NULL}
#define CLI_CALL_OPT(name, letter, dest, fn) {name, letter, CLI_CALL, dest, 0, 0, NULL, fn}

typedef struct cli_spec {
    const char *cmd;               /* "pack": messages say "zeolite pack: ..." */
    const cli_opt *opts;
    size_t nopts;
    size_t min_args, max_args;     /* positional arguments accepted */
    zcl_opts *conn;                /* non-NULL: --storage, --encoding, --tls, --tls-* */
    int tls_only;                  /* with conn: only the TLS flags */
    double *timeout;               /* non-NULL: --timeout SECONDS (> 0) */
    void (*usage)(FILE *);         /* the command's --help text */
    int usage_status;              /* exit status of a usage error; 0 means 2 */
} cli_spec;

enum {
    CLI_OK = 0,        /* parsed: go on */
    CLI_DONE = 1,      /* --help or --version was printed: exit 0 */
};

/**
 * @brief Parse argv[1..argc-1] (argv[0] is the subcommand) by @p spec.
 *
 * @param[out] args   the positional arguments, borrowed from argv; room for
 *                    spec->max_args of them
 * @param[out] nargs  how many there were
 * @return CLI_OK; CLI_DONE after printing the help (stdout) or the version;
 *         or ZE_INVAL with a message naming the option and the value in
 *         @p err (the caller prints it and exits with its usage status).
 */
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **args, size_t *nargs,
              zerr *err);

/* Print "zeolite CMD: MESSAGE" and a pointer to --help on stderr. */
void cli_usage_error(const char *cmd, const zerr *err);

/**
 * @brief cli_parse for a command's entry point: 1 to go on; 0 when the
 *        command is to exit with *status (0 after --help or --version, the
 *        spec's usage status after printing a usage error).
 */
int cli_args(const cli_spec *spec, int argc, char **argv, const char **args, size_t *nargs,
             int *status);

/* --progress-interval SECONDS, for the commands that report progress
 * (common/zprogress.h): CLI_PROGRESS_OPT(opts) is its cli_opt, filling a
 * zprogress_opts that starts as CLI_PROGRESS_DEFAULT. */
#define CLI_PROGRESS_DEFAULT {.interval = ZPROGRESS_INTERVAL}
#define CLI_PROGRESS_OPT(o) CLI_NUM_OPT("progress-interval", 0, &(o).interval, 0, 86400)
extern const char cli_progress_help[];

/* "zeolite VERSION" and the protocols, as --version prints them. */
void cli_print_version(FILE *f);

/* Help text for the connection flags and --timeout, for --help outputs. */
extern const char cli_conn_flags_help[];
extern const char cli_tls_flags_help[];

/* ---- process setup ----------------------------------------------------- */

/**
 * @brief Make SIGINT, SIGTERM and SIGHUP ask a long job to stop.
 *
 * @return the flag the handlers set to 1; pass it as the job's cancel flag
 *         (the import and export stop at a transaction boundary and clean up).
 *         The flag lives for the whole process.
 */
const volatile sig_atomic_t *cli_catch_stop_signals(void);

/**
 * @brief The store's log for a command (a store_log_fn): each line to stderr
 *        as "zeolite NAME: line".
 *
 * @param[in] command_name  the subcommand (a const char *), the log's data
 */
void cli_store_log(void *command_name, int level, const char *msg);

/* ---- client commands --------------------------------------------------- */

/* The work of a client command once connected; errors go into err. */
typedef int (*cli_client_fn)(zcl_client *c, zerr *err);

/**
 * @brief Run `zeolite NAME [OPTIONS] ADDR` for a read-only client command.
 *
 * Accepts the connection flags, --timeout SECONDS (default 10), --help and
 * --version; opens a read-only client on ADDR, calls @p run, and closes the
 * client.
 *
 * @param[in] name   the subcommand, for error messages ("zeolite NAME: ...")
 * @param[in] usage  prints the command's help to the given stream
 * @param[in] run    the command's work
 * @return the exit status: 0 (also after --help), 1 when connecting or @p run
 *         failed (the message is printed to stderr), 2 on bad usage.
 */
int cli_run_client(const char *name, int argc, char **argv, void (*usage)(FILE *),
                   cli_client_fn run);

#endif
