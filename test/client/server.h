/* server.h: run a ZEO server for the client tests.
 *
 * By default the zeolite executable (tu_zeolite_bin) serves a fresh database
 * in a temp dir on a loopback port. ZCL_TEST_SERVER may name another command
 * template (placeholders {addr} and {dir}; extra flags are appended), which
 * lets the same tests run against another server, e.g. Python's runzeo
 * behind a small wrapper script. With ZEOLITE_STORE_BACKEND=postgresql
 * (ctest's _on_pg runs) zeolite serves a new database of the test cluster
 * (pg, through a <postgresql> section in DIR/pg.conf), dropped at the end.
 */
#ifndef ZEOLITE_TEST_CLIENT_SERVER_H
#define ZEOLITE_TEST_CLIENT_SERVER_H

#include <sys/types.h>

typedef struct ts_server {
    pid_t pid;
    char *dir;         /* temp dir: database, certs, blobs */
    char addr[128];    /* 127.0.0.1:PORT or DIR/zeo.sock */
    char extra[512];   /* flags given to start, reused by restart */
    char *pg;          /* on PostgreSQL: the database's URI */
} ts_server;

/* Start a server with extra flags (e.g. "--msgpack"), or on a Unix socket
 * in its dir when extra is "unix"; 0 once it accepts connections, -1
 * otherwise. */
int ts_server_start(ts_server *s, const char *extra);
/* Stop it (SIGTERM, wait), keep its dir. A sanitizer report in its log, or
 * (for zeolite) an exit status other than 0, fails the test. */
void ts_server_stop(ts_server *s);
/* Start again on the same address and database. */
int ts_server_restart(ts_server *s);
/* Stop and remove the dir. */
void ts_server_free(ts_server *s);
/* Run a shell command; its exit status, its stdout in *out (malloc'd) if
 * out is non-NULL. */
int ts_run(const char *cmd, char **out);

#endif
