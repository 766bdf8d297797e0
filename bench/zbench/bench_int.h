/* bench_int.h: what the harness's files share: the run state (run.c, ops.c),
 * the latency histogram (hist.c) and the object records (setup.c). */
#ifndef ZEOLITE_BENCH_INT_H
#define ZEOLITE_BENCH_INT_H

#include "zbench.h"

/* Latency histogram, microsecond resolution below 1 ms and ~0.2% above. */
typedef struct zb_hist {
    uint64_t *counts;
    size_t nbuckets;
    uint64_t n;
    double sum_us, max_us;
} zb_hist;

int zb_hist_init(zb_hist *h);
void zb_hist_free(zb_hist *h);
void zb_hist_add(zb_hist *h, uint64_t ns);
/* The value (us) at or below which a fraction p of the samples fall. */
double zb_hist_quantile(const zb_hist *h, double p);

/* Untimed setup through a blocking client: n new objects of size bytes,
 * committed 100 a transaction; their oids and serials into the arrays
 * (malloc'd by the callee). */
int zb_make_objects(zcl_client *c, size_t n, size_t size, uint64_t **oids,
                    uint64_t **serials, zerr *err);

/* ---- the run ------------------------------------------------------------- */

typedef struct bench bench;
typedef struct bclient bclient;

/* One outstanding operation of a client (several with in_flight > 1). */
typedef struct bslot {
    bclient *bc;
    uint64_t t0;      /* when the op started (uv_hrtime) */
} bslot;

struct bclient {
    bench *b;
    zcl_client *c;
    int id;
    uint32_t rng;
    int dead;         /* its connection failed: issues nothing more */
    int committing;   /* a transaction is in progress */
    int phase;        /* large/blob: 0 write next, 1 read next */
    uint64_t *oids, *serials; /* what it commits (own, or shared for conflict) */
    size_t nobj;
    uint64_t commit_t0;
    zbuf rec;         /* record being stored */
    bslot *slots;
    uint32_t *order;  /* cold: the pool in this client's random order */
    size_t walk;
    char *blob_dir;   /* blob: where downloads land */
    /* counter: the two shared objects as loaded, and as this txn stores them */
    int step;         /* objects loaded so far */
    uint64_t seq;     /* commits so far: names its next key */
    zbuf loaded[2], recs[2];
    zv_arena *arena;
    /* lag watcher: the next of b->lag.recs it waits for, and an
     * invalidation that came before the committer's reply */
    size_t cursor;
    uint64_t early_tid, early_ns;
};

/* lag.c's state: the commits finished before the deadline, in tid order. */
typedef struct zb_lag_rec {
    uint64_t tid;
    uint64_t t_ns;    /* when the tpc_finish reply reached the committer */
} zb_lag_rec;

typedef struct zb_lag {
    zb_lag_rec *recs;
    size_t n, cap;
    int finishing;    /* a tpc_finish is out, its tid not known yet */
    int waiting;      /* the run is over: waiting for the last invalidations */
    uint64_t floor;   /* the setup's last tid: older invalidations are not ours */
    uv_timer_t pace;  /* with o->rate: when the committer begins again */
    FILE *log;        /* o->lag_log, open */
    uint64_t next_ns; /* the next commit's start, paced */
    zb_hist hist;
    uint64_t early, missing, unmatched;
} zb_lag;

struct bench {
    const zbench_opts *o;
    size_t object_size;
    uv_loop_t loop;
    bclient *cl;
    int nclients;
    uint64_t *pool, *pool_serials;
    size_t npool;
    int connecting, connect_failed;
    zerr connect_err;
    int stopping;
    int closed;       /* the clients have been freed */
    long outstanding;
    uint64_t start_ns, end_ns;
    uv_timer_t timer;
    zb_hist hist;
    zbench_result *r;
    char *tmp;        /* temp dir: blob source and download dirs */
    char *blob_src;   /* the file uploaded by the blob workload */
    zb_lag lag;       /* lag: cl[0] commits, cl[1..] watch */
};

/* run.c: close every client and the timer; the run's loop then ends. */
void zb_close_all(bench *b);

/* lag.c: the lag workload's bookkeeping. */
int zb_lag_init(zb_lag *l);
/* Open path for the samples (zbench_opts.lag_log): 0 or ZE_IO. */
int zb_lag_open_log(zb_lag *l, const char *path, zerr *err);
void zb_lag_free(zb_lag *l);
/* The watchers' invalidation hook (zcl_opts.on_invalidate, data the bclient). */
void zb_lag_on_invalidate(zcl_client *c, uint64_t tid, const uint64_t *oids, size_t n,
                          void *data);
/* The committer sent tpc_finish; then its reply came (status, tid). */
void zb_lag_finishing(bench *b);
void zb_lag_finished(bench *b, int status, uint64_t tid);
/* With o->rate: 1 when the committer has to wait for its next start (a
 * timer then starts it again through zb_client_start), 0 to begin now. */
int zb_lag_pace(bclient *bc);
/* The timed run is over and the committer idle: close now if every watcher
 * has every invalidation, else once they have, or after a grace period. */
void zb_lag_drain(bench *b);
/* The lag figures into b->r->lag. */
void zb_lag_summarize(bench *b);

/* counter.c: create the shared Length and OOBucket (oids, serials: two
 * each), untimed. */
int zb_counter_setup(zcl_client *c, uint64_t oids[2], uint64_t serials[2], zerr *err);
/* bc->recs from bc->loaded: the Length plus one, the bucket with bc's next
 * key in and its oldest beyond its share out. */
int zb_counter_change(bclient *bc, zerr *err);

/* Start the client's first operations (one per slot). */
void zb_client_start(bclient *bc);
/* Note that an operation begins. */
void zb_op_begin(bclient *bc);
/* An operation ended: status 0 (counted with its latency and bytes),
 * ZE_CONFLICT (counted as a conflict) or an error. Only ops ending before
 * the deadline count; the last one to end after it finishes the run. */
void zb_op_end(bclient *bc, int status, uint64_t t0, uint64_t bytes);
/* An operation begun but not to be counted at all. */
void zb_op_cancel(bclient *bc);
uint32_t zb_rand(bclient *bc);

#endif
