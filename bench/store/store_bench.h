/* store_bench.h: shared state of the store benchmark (bench/store/).
 *
 * The benchmark fills a fresh store with a binary tree of small objects
 * reachable from the root (so that pack's GC has real work), then measures
 * loads, commits, group commit and pack against bare LMDB on the same data.
 */
#ifndef ZEOLITE_STORE_BENCH_H
#define ZEOLITE_STORE_BENCH_H

#include <stdint.h>

#include "common/zbuf.h"
#include "store/store.h"

typedef struct bench_cfg {
    uint64_t objects;   /* N objects besides the root */
    int revisions;      /* revisions of each object */
    double seconds;     /* length of each timed phase */
    const char *dir;    /* database folder; NULL = a temporary one */
    int json;
    int compact;        /* measure on a compacting copy of the filled store */
} bench_cfg;

typedef struct bench_db {
    store *s;
    char dir[4096];     /* the database folder measured */
    uint64_t *oids;     /* oids[i] is tree node i; node i refers to 2i+1, 2i+2 */
    uint64_t n;
} bench_db;

/* Seconds from a monotonic clock. */
double bench_now(void);
/* The process's anonymous resident memory (RssAnon: heap and stacks, not
 * LMDB's file-backed map), now; bench_sample_heap keeps its peak. */
uint64_t bench_heap_now(void);
void bench_sample_heap(void);
/* Restart the peak from the current value. */
void bench_heap_reset(void);
uint64_t bench_heap_peak(void);
/* splitmix64: a deterministic stream, so store and raw loops do the same lookups. */
uint64_t bench_rand(uint64_t *state);

/* Record pickle of tree node idx, revision rev (about 300 bytes), with
 * persistent references to its children as ZODB writes them. */
int bench_node_pickle(const bench_db *db, uint64_t idx, uint32_t rev, zbuf *out);

/* Create the store and fill it: root plus db->n objects, cfg->revisions each,
 * in large batched transactions. Leaves db->s open for durable commits. */
int bench_fill(bench_db *db, const bench_cfg *cfg, double *seconds);

/* Operations counted over time, summed across rounds. */
typedef struct bench_rate {
    uint64_t n;
    double seconds;
} bench_rate;

static inline double bench_per_s(const bench_rate *r)
{
    return r->seconds > 0 ? (double)r->n / r->seconds : 0.0;
}

/* Random current loads through store_load_before, and the same lookups with
 * bare LMDB cursor calls, in alternating rounds (the machine is shared: both
 * see the same load). */
int bench_load(bench_db *db, const bench_cfg *cfg, bench_rate *store_rate, bench_rate *raw_rate);

/* Durable commits of k objects one after another, for `seconds`. */
int bench_commit_serial(bench_db *db, double seconds, int k, bench_rate *rate);

typedef struct group_result {
    double rate;            /* commits per second over all threads */
    uint64_t commits, syncs;
} group_result;

/* threads committers at once, k objects each, through store_txn_commit. */
int bench_commit_group(bench_db *db, const bench_cfg *cfg, int threads, int k,
                       group_result *out);

/* Bare synced LMDB commits of one ~300-byte record, in a separate env. */
typedef struct raw_env raw_env;
int bench_raw_open(const char *dir, raw_env **out);
int bench_raw_commits(raw_env *e, double seconds, bench_rate *rate);
void bench_raw_close(raw_env *e);

#endif
