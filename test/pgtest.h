/* pgtest.h: the PostgreSQL cluster of the tests (test/pg/cluster.sh).
 *
 * Suites registered with zl_add_test(... PG ...) run with the shared cluster
 * up (a ctest fixture) and its socket folder in ZEOLITE_PG_HOST. Each test
 * gets a database of its own, made empty from template0, never a cluster of
 * its own; tests that stop or fill a cluster start a private one. */
#ifndef ZEOLITE_PGTEST_H
#define ZEOLITE_PGTEST_H

#include <stddef.h>

/* The shared cluster's socket folder; fails the test when it is not set. */
const char *tu_pg_host(void);
/* A new empty database on the cluster whose socket folder is host (NULL:
 * the shared one): its libpq URI, malloc'd. Fails the test on error. */
char *tu_pg_newdb(const char *host);
/* Drop the database of uri (its sessions are ended first). */
void tu_pg_dropdb(const char *uri);
/* Run sql on the database of uri (as the superuser): the first value of the
 * first row, malloc'd ("" when there is none), or NULL on error with the
 * message in err (may be NULL). */
char *tu_pg_exec(const char *uri, const char *sql, char *err, size_t cap);
/* tu_pg_exec's value as a number (-1 when there is none); fails the test
 * on error. */
long long tu_pg_num(const char *uri, const char *sql);
/* The cluster script on a private cluster in dir: cmd is start, stop, halt
 * (stop keeping the data) or resume; fsize_kb > 0 starts it under ulimit -f.
 * 0 when it worked. */
int tu_pg_cluster(const char *cmd, const char *dir, long fsize_kb);

#endif
