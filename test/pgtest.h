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
/* Wait (up to a minute, failing the test then) until a session of uri's
 * database waits on a lock while running a query LIKE like. */
void tu_pg_wait_lock(const char *uri, const char *like);
/* The cluster script on a private cluster in dir: cmd is start, stop, halt
 * (stop keeping the data) or resume; fsize_kb > 0 starts it under ulimit -f.
 * 0 when it worked. */
int tu_pg_cluster(const char *cmd, const char *dir, long fsize_kb);
/* A primary and its streaming hot standby (cluster.sh start, then standby
 * --from) shared by the tests of a suite: made by its runner before the
 * first test (call it from ReportHook(PRE_ALL)), its folders passed to the
 * tests in the environment, and removed after the last (POST_ALL). These
 * two assert nothing: they run outside any test. */
void tu_pg_pair_begin(void);
void tu_pg_pair_end(void);
/* In a test: the shared pair's folders in pdir and sdir (cap bytes each),
 * the pair taken alone until the test ends (a lock file, so that suites
 * run with --jobs N too), both running, the standby replaying, and the
 * settings tests change (recovery_min_apply_delay,
 * max_standby_streaming_delay) back at their defaults. */
void tu_pg_pair_take(char *pdir, char *sdir, size_t cap);
/* uri's database on the cluster whose socket folder is host, malloc'd. */
char *tu_pg_uri_on(const char *uri, const char *host);
/* The database name of uri in buf. */
void tu_pg_dbname(const char *uri, char *buf, size_t cap);
/* Wait (up to 60 s, failing the test then) until the standby of host has
 * replayed everything the primary of uri has written so far. */
void tu_pg_wait_replay(const char *uri, const char *standby_host);

/* The cluster script with any arguments (printf-style): 0 when it worked. */
int tu_pg_script(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A private primary and a streaming hot standby of it (the failover tests,
 * which promote the standby, so each test has a pair of its own; the pair
 * above is one per suite, for tests that keep it as it is):
 * a new database made on the primary, then the standby copied from it. */
typedef struct tu_pg_pair {
    char pdir[32], sdir[32];   /* their socket folders (short: /tmp/zpp<pid>) */
    char *db;                  /* the database's name */
    char *primary, *standby;   /* URIs of each alone (as the superuser) */
    char *both;                /* URI of both hosts, target_session_attrs=read-write */
    char *both_kv;             /* the same in keyword=value form */
} tu_pg_pair;
/* Start both (sync: synchronous replication on, remote_apply); fails the
 * test on error. */
void tu_pg_pair_up(tu_pg_pair *p, int sync);
/* Stop and remove both clusters (those started), free the strings. */
void tu_pg_pair_down(tu_pg_pair *p);

#endif
