/* zbench.h: the benchmark harness behind `zeolite bench`, the one public
 * header of the zl_bench library (its internals are in bench_int.h).
 *
 * Drives one ZEO server (zeolite or Python ZEO, either encoding), or two
 * zeolite servers on one database (split_addr), with one workload from one
 * process: one libuv loop, `clients` connections, requests pipelined where
 * the protocol allows. Objects the workload reads are
 * created first, untimed. Only operations that complete before the deadline
 * count.
 *
 * Workloads (ops are what throughput counts):
 *  load      random loadBefore(oid, maxtid) round trips, no client cache;
 *            each client keeps in_flight requests outstanding
 *  cold      loads through an empty client cache: every client walks the
 *            object pool in random order, then empties its cache and again
 *  commit    transactions of objects_per_txn changed objects, one committer
 *            per client, each on its own objects
 *  mixed     95% loads as `load`, 5% commits as `commit`
 *  conflict  all committers change the same objects; conflicts are counted
 *            (and retried with the serials the server reported)
 *  large     object_size (default 1 MB) objects: a commit, then a load of it
 *  blob      object_size (default 10 MB) blobs: a commit, then a download
 *  counter   hot objects: every transaction loads (through a client cache)
 *            one shared BTrees.Length and one shared OOBucket, increments
 *            the Length and inserts a key of its own into the bucket,
 *            deleting its oldest (counter.c); the conflicts are for the
 *            server to resolve, as ZEO's does by default. Conflicts sent
 *            back are counted and the transaction is retried
 *  lag       invalidation lag (lag.c): one committer on addr commits as
 *            `commit` does, one after the other, while `clients` watchers
 *            on watch_addr (another server on the same database; addr when
 *            NULL) wait for the invalidations. A commit's lag, for each
 *            watcher, runs from the moment its tpc_finish reply reaches the
 *            committer to the moment the watcher receives
 *            invalidateTransaction of its tid: one process, one loop, one
 *            monotonic clock. An invalidation that arrives before the reply
 *            counts as lag 0 (and as early). ops and the latency
 *            percentiles are the committer's; the lag is in r->lag. With
 *            rate, the commits are paced (a lag on a server that is not
 *            kept busy by the bench itself)
 */
#ifndef ZEOLITE_ZBENCH_H
#define ZEOLITE_ZBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/client.h"

typedef enum zbench_workload {
    ZB_LOAD, ZB_COLD, ZB_COMMIT, ZB_MIXED, ZB_CONFLICT, ZB_LARGE, ZB_BLOB, ZB_COUNTER, ZB_LAG,
} zbench_workload;

typedef struct zbench_opts {
    const char *addr;
    const char *split_addr; /* another server on the same database: every
                             * other client connects there, once it has
                             * seen the setup's commits; NULL: none */
    const char *watch_addr; /* lag: where the watchers connect; NULL: addr */
    double rate;            /* lag: commits begun a second at most; 0: each
                             * as soon as the one before has finished */
    const char *lag_log;    /* lag: every sample also into this file, a line
                             * "TID WATCHER FINISH INVAL LAG_US" (times in
                             * seconds of CLOCK_MONOTONIC, as `perf record -k
                             * CLOCK_MONOTONIC` stamps events; LAG_US < 0: the
                             * invalidation came first); NULL: none */
    zbench_workload workload;
    int clients;            /* connections (default 1); lag: the watchers */
    int in_flight;          /* outstanding loads per client (default 1) */
    int objects_per_txn;    /* default 10 */
    size_t object_size;     /* bytes of state per object; 0: the workload's default */
    double duration;        /* seconds (default 10) */
    int objects;            /* size of the pool read by load/cold/mixed (default 1000) */
    int json;
    zcl_opts conn;          /* storage, encoding, TLS... */
} zbench_opts;

/* The lag workload's invalidations: one sample per commit and watcher. */
typedef struct zbench_lag {
    uint64_t count;         /* samples: invalidations matched to a counted commit */
    uint64_t early;         /* of them, received before the committer's reply */
    uint64_t missing;       /* never received (a watcher skipped it, or the
                             * run's grace period ran out first) */
    uint64_t unmatched;     /* invalidations of tids the committer did not make */
    double p50_us, p90_us, p99_us, max_us, mean_us;
} zbench_lag;

typedef struct zbench_result {
    uint64_t ops, errors, conflicts;
    uint64_t bytes;         /* object/blob bytes moved by counted ops */
    size_t object_size;     /* the size used (the workload's default if 0 was asked) */
    double elapsed;         /* seconds measured */
    double p50_us, p90_us, p99_us, max_us, mean_us;
    char encoding;          /* 'Z' or 'M', as negotiated */
    zbench_lag lag;         /* the lag workload's; zero for the others */
} zbench_result;

void zbench_opts_init(zbench_opts *o);
/* Name <-> workload; -1 for an unknown name. */
int zbench_workload_parse(const char *name);
const char *zbench_workload_name(zbench_workload w);

/* Check the options as zbench_run does first: 0, or ZE_INVAL with the
 * option named in err. */
int zbench_check(const zbench_opts *o, zerr *err);

/* Run the benchmark. 0 with *r filled; ZE_IO when the server can't be
 * reached, other ZE_* codes when the setup fails (message in err). Errors of
 * single operations during the timed run only count in r->errors. */
int zbench_run(const zbench_opts *o, zbench_result *r, zerr *err);

/* Human-readable summary, or the JSON object on one line. */
void zbench_report(const zbench_opts *o, const zbench_result *r, FILE *f);

/* Bytes of state of an object when object_size is 0 (large and blob
 * excepted): what a load of the load workload carries. */
#define ZBENCH_OBJECT_SIZE 128

/* The record the bench stores for an object: a ZODB-shaped pickle (class,
 * then a bytes state of size bytes that does not compress to nothing, made
 * from seed), replacing out's contents. 0 or ZE_NOMEM. bench/limit answers
 * loads with it, so that its replies are the size of the bench's. */
int zbench_record(zbuf *out, size_t size, uint32_t seed);

#endif
