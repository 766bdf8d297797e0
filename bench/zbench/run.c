/* run.c: setting up a run, connecting the clients, timing, and the end. */
#define _GNU_SOURCE /* asprintf, mkdtemp */
#include "bench_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const names[] = {"load", "cold", "commit", "mixed", "conflict", "large",
                                    "blob", "counter", "lag"};

void zbench_opts_init(zbench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->workload = ZB_LOAD;
    o->clients = 1;
    o->in_flight = 1;
    o->objects_per_txn = 10;
    o->duration = 10;
    o->objects = 1000;
    zcl_opts_init(&o->conn);
}

int zbench_workload_parse(const char *name)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return (int)i;
    return -1;
}

const char *zbench_workload_name(zbench_workload w)
{
    return names[w];
}

uint32_t zb_rand(bclient *bc)
{
    uint32_t x = bc->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return bc->rng = x;
}

void zb_op_begin(bclient *bc)
{
    bc->b->outstanding++;
}

/* The clients stay allocated until their handles close, so callbacks still
 * on the stack may touch them (their calls then fail with ZE_CLOSED). */
void zb_close_all(bench *b)
{
    if (b->closed)
        return;
    b->closed = 1;
    for (int i = 0; i < b->nclients; i++)
        zcl_free(b->cl[i].c);
    uv_close((uv_handle_t *)&b->timer, NULL);
    uv_close((uv_handle_t *)&b->lag.pace, NULL);
}

/* The deadline has passed and no operation is outstanding. */
static void run_over(bench *b)
{
    if (b->o->workload == ZB_LAG)
        zb_lag_drain(b);
    else
        zb_close_all(b);
}

void zb_op_end(bclient *bc, int status, uint64_t t0, uint64_t bytes)
{
    bench *b = bc->b;
    b->outstanding--;
    if (status == ZE_CLOSED)
        bc->dead = 1;
    if (!b->stopping) {
        zbench_result *r = b->r;
        if (status == 0) {
            r->ops++;
            r->bytes += bytes;
            zb_hist_add(&b->hist, uv_hrtime() - t0);
        } else if (status == ZE_CONFLICT) {
            r->conflicts++;
        } else {
            r->errors++;
        }
    }
    if (b->stopping && b->outstanding == 0)
        run_over(b);
}

void zb_op_cancel(bclient *bc)
{
    bench *b = bc->b;
    if (--b->outstanding == 0 && b->stopping)
        run_over(b);
}

static void on_deadline(uv_timer_t *t)
{
    bench *b = t->data;
    b->stopping = 1;
    b->end_ns = uv_hrtime();
    if (b->outstanding == 0)
        run_over(b);
}

/* ---- setup ------------------------------------------------------------------- */

static size_t default_size(zbench_workload w)
{
    return w == ZB_BLOB ? 10u << 20 : w == ZB_LARGE ? 1u << 20 : ZBENCH_OBJECT_SIZE;
}

/* The pickle each commit stores: the object, or for blobs a small record
 * beside the object_size blob file, as a ZODB Blob's pickle is. */
static size_t record_size(const bench *b)
{
    return b->o->workload == ZB_BLOB ? default_size(ZB_LOAD) : b->object_size;
}

/* Which objects each client commits: its own, or (conflict) everyone the
 * same ones. The oids come from the setup client, created up front except
 * for blobs, whose first commit creates them. */
static int assign_objects(bench *b, zcl_client *setup, zerr *err)
{
    const zbench_opts *o = b->o;
    zbench_workload w = o->workload;
    if (w == ZB_LOAD || w == ZB_COLD)
        return 0;
    size_t per = w == ZB_LARGE || w == ZB_BLOB ? 1
                 : w == ZB_COUNTER             ? 2
                                               : (size_t)o->objects_per_txn;
    int shared = w == ZB_CONFLICT || w == ZB_COUNTER;
    int committers = w == ZB_LAG ? 1 : b->nclients; /* lag: cl[0] */
    size_t total = shared ? per : per * (size_t)committers;
    uint64_t *oids = NULL, *serials = NULL;
    int rc;
    if (w == ZB_BLOB) {
        oids = calloc(total, sizeof *oids);
        serials = calloc(total, sizeof *serials);
        size_t got = 0;
        rc = oids && serials ? zcl_new_oids_sync(setup, (unsigned)total, oids, &got, err)
                             : zerr_set(err, ZE_NOMEM, "out of memory");
        if (rc == 0 && got != total)
            rc = zerr_set(err, ZE_PROTO, "new_oids gave %zu oids, not %zu", got, total);
    } else if (w == ZB_COUNTER) {
        oids = calloc(total, sizeof *oids);
        serials = calloc(total, sizeof *serials);
        rc = oids && serials ? zb_counter_setup(setup, oids, serials, err)
                             : zerr_set(err, ZE_NOMEM, "out of memory");
    } else {
        rc = zb_make_objects(setup, total, b->object_size, &oids, &serials, err);
    }
    for (int i = 0; rc == 0 && i < committers; i++) {
        bclient *bc = &b->cl[i];
        size_t first = shared ? 0 : per * (size_t)i;
        bc->nobj = per;
        bc->oids = malloc(per * sizeof *bc->oids);
        bc->serials = malloc(per * sizeof *bc->serials);
        if (!bc->oids || !bc->serials) {
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
            break;
        }
        memcpy(bc->oids, oids + first, per * sizeof *oids);
        memcpy(bc->serials, serials + first, per * sizeof *serials);
    }
    free(oids);
    free(serials);
    return rc;
}

static int write_blob_source(bench *b, zerr *err)
{
    zbuf data = ZBUF_INIT;
    if (asprintf(&b->blob_src, "%s/source.blob", b->tmp) < 0) {
        b->blob_src = NULL;
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    int rc = zbench_record(&data, b->object_size, 7);
    FILE *f = rc == 0 ? fopen(b->blob_src, "wb") : NULL;
    if (rc == 0 && (!f || fwrite(data.data, 1, data.len, f) != data.len))
        rc = zerr_sys(err, errno, "cannot write %s", b->blob_src);
    if (f && fclose(f) != 0 && rc == 0)
        rc = zerr_sys(err, errno, "cannot write %s", b->blob_src);
    zbuf_free(&data);
    return rc;
}

/* The second server of split_addr learns the setup's commits from the
 * database, a little later: wait until it answers lastTransaction with
 * tid at least, so that its clients find the objects (and an address of
 * another database says so instead of timing loads that all fail). */
static int wait_split(const bench *b, uint64_t tid, zerr *err)
{
    zcl_opts co = b->o->conn;
    co.cache_size = 0;
    zcl_client *c;
    int rc = zcl_open_sync(b->o->split_addr, &co, &c, err);
    if (rc < 0)
        return rc;
    uint64_t seen = 0;
    for (int waited = 0; rc == 0; waited += 10) {
        rc = zcl_last_transaction_sync(c, &seen, err);
        if (rc < 0 || seen >= tid)
            break;
        if (waited >= 30000)
            rc = zerr_set(err, ZE_TIMEOUT, "%s has not seen the setup's commit %016llx after "
                          "30 s (its last is %016llx): is it a server of the same database?",
                          b->o->split_addr, (unsigned long long)tid, (unsigned long long)seen);
        else
            uv_sleep(10);
    }
    zcl_free(c);
    return rc;
}

/* Everything untimed that needs the server: the pool, the committers'
 * objects, the blob file. */
static int setup(bench *b, zerr *err)
{
    const zbench_opts *o = b->o;
    zcl_opts co = o->conn;
    co.cache_size = 0;
    co.timeout_ms = 120000;
    zcl_client *c;
    int rc = zcl_open_sync(o->addr, &co, &c, err);
    if (rc < 0)
        return rc;
    zbench_workload w = o->workload;
    if (w == ZB_LOAD || w == ZB_COLD || w == ZB_MIXED) {
        rc = zb_make_objects(c, (size_t)o->objects, b->object_size, &b->pool, &b->pool_serials,
                             err);
        b->npool = (size_t)o->objects;
    }
    if (rc == 0)
        rc = assign_objects(b, c, err);
    b->lag.floor = zcl_last_tid(c);
    zcl_free(c);
    if (rc == 0 && o->split_addr)
        rc = wait_split(b, b->lag.floor, err);
    if (rc == 0 && w == ZB_BLOB)
        rc = write_blob_source(b, err);
    return rc;
}

/* ---- clients ----------------------------------------------------------------- */

static void on_connected(zcl_client *c, int status, void *data)
{
    bclient *bc = data;
    bench *b = bc->b;
    b->connecting--;
    if (status < 0 && !b->connect_failed) {
        b->connect_failed = 1;
        b->connect_err = *zcl_last_error(c);
    }
}

static int client_init(bench *b, bclient *bc, int id, zerr *err)
{
    const zbench_opts *o = b->o;
    bc->b = b;
    bc->id = id;
    bc->rng = 2463534242u ^ (uint32_t)(id * 7919 + 1);
    bc->slots = calloc((size_t)o->in_flight, sizeof *bc->slots);
    if (!bc->slots)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    for (int i = 0; i < o->in_flight; i++)
        bc->slots[i].bc = bc;
    zcl_opts co = o->conn;
    co.cache_size = 0;
    co.reconnect_ms = 0;
    if (o->workload == ZB_COLD) {
        co.cache_size = (size_t)b->npool * (b->object_size + 256) * 2 + (1u << 20);
        bc->order = malloc(b->npool * sizeof *bc->order);
        if (!bc->order)
            return zerr_set(err, ZE_NOMEM, "out of memory");
        for (size_t i = 0; i < b->npool; i++)
            bc->order[i] = (uint32_t)i;
        bc->walk = b->npool; /* shuffle before the first load */
    }
    if (o->workload == ZB_BLOB) {
        if (asprintf(&bc->blob_dir, "%s/c%d", b->tmp, id) < 0) {
            bc->blob_dir = NULL;
            return zerr_set(err, ZE_NOMEM, "out of memory");
        }
        co.blob_dir = bc->blob_dir;
    }
    if (o->workload == ZB_COUNTER) {
        /* Invalidations keep the shared objects current in the cache. */
        co.cache_size = 1u << 20;
        if (!(bc->arena = zv_arena_new()))
            return zerr_set(err, ZE_NOMEM, "out of memory");
    } else if (o->workload == ZB_LAG && id > 0) {
        /* a watcher: it only waits for invalidations */
        co.on_invalidate = zb_lag_on_invalidate;
        co.cb_data = bc;
    } else if (o->workload != ZB_LOAD && o->workload != ZB_COLD &&
               zbench_record(&bc->rec, record_size(b), (uint32_t)id) < 0) {
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    const char *where = o->workload == ZB_LAG && id > 0 && o->watch_addr ? o->watch_addr
                        : o->split_addr && id % 2                         ? o->split_addr
                                                                          : o->addr;
    zcl_addr a;
    int rc = zcl_addr_parse(where, 1, &a, err);
    if (rc == 0 && a.storage[0])
        co.storage = a.storage;
    if (rc == 0)
        rc = zcl_new(&b->loop, &a, &co, &bc->c, err);
    if (rc == 0 && (rc = zcl_connect(bc->c, on_connected, bc)) < 0)
        *err = *zcl_last_error(bc->c);
    if (rc == 0)
        b->connecting++;
    return rc;
}

static void client_free(bclient *bc)
{
    if (!bc->b->closed)
        zcl_free(bc->c);
    zbuf_free(&bc->rec);
    for (int i = 0; i < 2; i++) {
        zbuf_free(&bc->loaded[i]);
        zbuf_free(&bc->recs[i]);
    }
    zv_arena_free(bc->arena);
    free(bc->slots);
    free(bc->oids);
    free(bc->serials);
    free(bc->order);
    free(bc->blob_dir);
}

static int connect_all(bench *b, zerr *err)
{
    for (int i = 0; i < b->nclients; i++) {
        int rc = client_init(b, &b->cl[i], i, err);
        if (rc < 0)
            return rc;
    }
    while (b->connecting > 0)
        uv_run(&b->loop, UV_RUN_ONCE);
    if (b->connect_failed) {
        *err = b->connect_err;
        return b->connect_err.code < 0 ? b->connect_err.code : ZE_IO;
    }
    return 0;
}

/* ---- the run ----------------------------------------------------------------- */

static void summarize(bench *b)
{
    zbench_result *r = b->r;
    r->elapsed = (double)(b->end_ns - b->start_ns) / 1e9;
    r->p50_us = zb_hist_quantile(&b->hist, 0.50);
    r->p90_us = zb_hist_quantile(&b->hist, 0.90);
    r->p99_us = zb_hist_quantile(&b->hist, 0.99);
    r->max_us = b->hist.max_us;
    r->mean_us = b->hist.n ? b->hist.sum_us / (double)b->hist.n : 0;
    if (b->o->workload == ZB_LAG)
        zb_lag_summarize(b);
}

int zbench_check(const zbench_opts *o, zerr *err)
{
    if (!o->addr)
        return zerr_set(err, ZE_INVAL, "no server address");
    if (o->clients < 1 || o->clients > 10000)
        return zerr_set(err, ZE_INVAL, "--clients must be 1..10000");
    if (o->in_flight < 1 || o->in_flight > 10000)
        return zerr_set(err, ZE_INVAL, "--in-flight must be 1..10000");
    if (o->objects_per_txn < 1 || o->objects_per_txn > 100000)
        return zerr_set(err, ZE_INVAL, "--objects-per-txn must be 1..100000");
    if (o->objects < 1 || !(o->duration > 0))
        return zerr_set(err, ZE_INVAL, "--objects and --duration must be positive");
    if (o->watch_addr && o->workload != ZB_LAG)
        return zerr_set(err, ZE_INVAL, "--watch is for the lag workload");
    if (o->split_addr && o->workload == ZB_LAG)
        return zerr_set(err, ZE_INVAL, "the lag workload takes --watch, not --split");
    if (o->rate < 0 || (o->rate > 0 && o->workload != ZB_LAG))
        return zerr_set(err, ZE_INVAL, "--rate is for the lag workload, commits a second");
    if (o->lag_log && o->workload != ZB_LAG)
        return zerr_set(err, ZE_INVAL, "--lag-log is for the lag workload");
    return 0;
}

static void bench_free(bench *b)
{
    for (int i = 0; b->cl && i < b->nclients; i++)
        if (b->cl[i].b)
            client_free(&b->cl[i]);
    /* Let libuv finish closing what the clients owned. */
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    free(b->cl);
    free(b->pool);
    free(b->pool_serials);
    zb_hist_free(&b->hist);
    zb_lag_free(&b->lag);
    if (b->blob_src)
        unlink(b->blob_src);
    free(b->blob_src);
    if (b->tmp) {
        char *cmd = NULL;
        if (asprintf(&cmd, "rm -rf '%s'", b->tmp) >= 0 && system(cmd) != 0)
            fprintf(stderr, "zeolite bench: could not remove %s\n", b->tmp);
        free(cmd);
    }
    free(b->tmp);
}

static int make_tmp(bench *b, zerr *err)
{
    const char *base = getenv("TMPDIR");
    if (asprintf(&b->tmp, "%s/zeolite-bench-XXXXXX", base && *base ? base : "/tmp") < 0) {
        b->tmp = NULL;
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    if (!mkdtemp(b->tmp)) {
        int rc = zerr_sys(err, errno, "cannot create %s", b->tmp);
        free(b->tmp);
        b->tmp = NULL;
        return rc;
    }
    return 0;
}

int zbench_run(const zbench_opts *o, zbench_result *r, zerr *err)
{
    int rc = zbench_check(o, err);
    if (rc < 0)
        return rc;
    /* lag: one committer, then the watchers */
    bench b = {.o = o, .r = r, .nclients = o->clients + (o->workload == ZB_LAG)};
    memset(r, 0, sizeof *r);
    b.object_size = o->object_size ? o->object_size : default_size(o->workload);
    r->object_size = b.object_size;
    if (uv_loop_init(&b.loop) < 0)
        return zerr_set(err, ZE_IO, "cannot create an event loop");
    b.cl = calloc((size_t)b.nclients, sizeof *b.cl);
    if (!b.cl || zb_hist_init(&b.hist) < 0 || zb_lag_init(&b.lag) < 0)
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    if (rc == 0 && o->workload == ZB_BLOB)
        rc = make_tmp(&b, err);
    if (rc == 0 && o->lag_log)
        rc = zb_lag_open_log(&b.lag, o->lag_log, err);
    if (rc == 0)
        rc = setup(&b, err);
    if (rc == 0)
        rc = connect_all(&b, err);
    if (rc == 0) {
        r->encoding = (char)zcl_encoding(b.cl[0].c);
        uv_timer_init(&b.loop, &b.timer);
        uv_timer_init(&b.loop, &b.lag.pace);
        b.timer.data = &b;
        b.start_ns = uv_hrtime();
        uv_timer_start(&b.timer, on_deadline, (uint64_t)(o->duration * 1000), 0);
        for (int i = 0; i < b.nclients; i++)
            zb_client_start(&b.cl[i]);
        uv_run(&b.loop, UV_RUN_DEFAULT);
        summarize(&b);
    }
    bench_free(&b);
    return rc;
}
