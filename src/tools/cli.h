/* cli.h: what several subcommands do the same way (process setup, argument
 * handling, connecting). Private to src/tools.
 */
#ifndef ZEOLITE_TOOLS_CLI_H
#define ZEOLITE_TOOLS_CLI_H

#include <signal.h>
#include <stdio.h>

#include "client/client.h"

/**
 * @brief Make SIGINT, SIGTERM and SIGHUP ask a long job to stop.
 *
 * @return the flag the handlers set to 1; pass it as the job's cancel flag
 *         (the import and export stop at a transaction boundary and clean up).
 *         The flag lives for the whole process.
 */
const volatile sig_atomic_t *cli_catch_stop_signals(void);

/**
 * @brief Apply argv[*i] to @p o when it is a connection flag: --storage NAME,
 *        --encoding Z|M, --tls, --tls-ca FILE, --tls-cert FILE, --tls-key FILE,
 *        --tls-server-name NAME (each --tls-* flag implies --tls).
 *
 * Strings are borrowed from argv. On a flag, *i is advanced past its value.
 * @return 1 for a connection flag; 0 when argv[*i] is not one; ZE_INVAL
 *         (message in @p err) when its value is missing or bad.
 */
int cli_conn_flag(zcl_opts *o, int argc, char **argv, int *i, zerr *err);

/* Help text for the connection flags, one line each, for --help outputs. */
extern const char cli_conn_flags_help[];

/* The work of a client command once connected; errors go into err. */
typedef int (*cli_client_fn)(zcl_client *c, zerr *err);

/**
 * @brief Run `zeolite NAME [OPTIONS] ADDR` for a read-only client command.
 *
 * Accepts the connection flags (cli_conn_flag), --timeout SECONDS
 * (default 10) and -h/--help; opens a read-only client on ADDR, calls @p run,
 * and closes the client.
 *
 * @param[in] name   the subcommand, for error messages ("zeolite NAME: ...")
 * @param[in] usage  prints the command's help to the given stream
 * @param[in] run    the command's work
 * @return the exit status: 0 (also after --help), 1 when connecting or @p run
 *         failed (the message is printed to stderr), 2 on bad usage.
 */
int cli_run_client(const char *name, int argc, char **argv, void (*usage)(FILE *),
                   cli_client_fn run);

/**
 * @brief The store's log for a command (a store_log_fn): each line to stderr
 *        as "zeolite NAME: line".
 *
 * @param[in] command_name  the subcommand (a const char *), the log's data
 */
void cli_store_log(void *command_name, int level, const char *msg);

#endif
