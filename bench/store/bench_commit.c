/* bench_commit.c: durable commits one after another, group commit from
 * several threads, and the bare synced LMDB commit they are measured against. */
#include "store_bench.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GROUP_FIRST 100 /* group-commit threads use objects from here on */

/* The committed serials of objects [first, first + k), as a committer needs them. */
static int read_serials(bench_db *db, uint64_t first, int k, uint64_t *serial)
{
    store_reader *r = NULL;
    zerr err;
    int rc = store_reader_new(db->s, &r, &err);
    for (int i = 0; i < k && !rc; i++)
        rc = store_current_tid(r, db->oids[first + i], &serial[i], &err);
    if (rc)
        fprintf(stderr, "store_bench: serials: %s\n", err.msg);
    if (r)
        store_reader_free(r);
    return rc;
}

/* Begin a transaction and store objects [first, first + k) as revision rev. */
static int stage(bench_db *db, uint64_t first, int k, const uint64_t *serial, uint32_t rev,
                 store_txn **out, zbuf *pk, zerr *err)
{
    store_txn_meta meta = {.user = (const uint8_t *)"store_bench", .user_len = 11,
                           .status = ' '};
    store_vote_result res;
    int rc = store_txn_begin(db->s, &meta, out, err);
    for (int i = 0; i < k && !rc; i++)
        if (!(rc = bench_node_pickle(db, first + i, rev, pk)))
            rc = store_txn_store(*out, db->oids[first + i], serial[i], pk->data, pk->len, err);
    if (!rc)
        rc = store_txn_vote(*out, &res, err);
    return rc;
}

int bench_commit_serial(bench_db *db, const bench_cfg *cfg, int k, double *rate)
{
    uint64_t serial[100], n = 0, tid;
    zbuf pk = ZBUF_INIT;
    zerr err;
    int rc = read_serials(db, 0, k, serial);
    double t0 = bench_now();

    while (!rc && bench_now() - t0 < cfg->seconds) {
        store_txn *t = NULL;
        if (!(rc = stage(db, 0, k, serial, (uint32_t)(1000 + n), &t, &pk, &err)) &&
            !(rc = store_txn_finish(t, &tid, &err))) {
            for (int i = 0; i < k; i++)
                serial[i] = tid;
            n++;
        }
        if (rc && t)
            store_txn_abort(t);
        store_txn_free(t);
    }
    *rate = (double)n / (bench_now() - t0);
    if (rc)
        fprintf(stderr, "store_bench: commit of %d: %s\n", k, err.msg);
    zbuf_free(&pk);
    bench_sample_heap();
    return rc;
}

typedef struct committer {
    bench_db *db;
    pthread_mutex_t *vote_lock;  /* the server's commit lock: one txn between vote and commit */
    double stop_at;
    int k;
    uint64_t first, serial[16], n;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, cb_rc;
    uint64_t cb_tid;
} committer;

static void on_durable(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    committer *c = ud;
    pthread_mutex_lock(&c->mu);
    c->done = 1, c->cb_rc = rc, c->cb_tid = tid;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* One commit through the group-commit path: vote and hand over under the
 * commit lock, then wait for the writer's durable callback. */
static int commit_once(committer *c, zbuf *pk, zerr *err)
{
    store_txn *t = NULL;
    uint64_t tid;
    pthread_mutex_lock(c->vote_lock);
    int rc = stage(c->db, c->first, c->k, c->serial, (uint32_t)(2000 + c->n), &t, pk, err);
    c->done = 0;
    if (!rc)
        rc = store_txn_commit(t, &tid, on_durable, c, err);
    pthread_mutex_unlock(c->vote_lock);
    if (!rc) {
        pthread_mutex_lock(&c->mu);
        while (!c->done)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        rc = c->cb_rc;
    } else if (t) {
        store_txn_abort(t);
    }
    store_txn_free(t);
    for (int i = 0; i < c->k && !rc; i++)
        c->serial[i] = c->cb_tid;
    return rc;
}

static void *committer_main(void *arg)
{
    committer *c = arg;
    zbuf pk = ZBUF_INIT;
    zerr err;
    while (!c->rc && bench_now() < c->stop_at)
        if (!(c->rc = commit_once(c, &pk, &err)))
            c->n++;
    if (c->rc)
        fprintf(stderr, "store_bench: group commit: %s\n", err.msg);
    zbuf_free(&pk);
    return NULL;
}

int bench_commit_group(bench_db *db, const bench_cfg *cfg, int threads, int k,
                       group_result *out)
{
    pthread_mutex_t vote_lock = PTHREAD_MUTEX_INITIALIZER;
    committer *c = calloc((size_t)threads, sizeof *c);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    store_stats before, after;
    int rc = c && tids && k <= 16 ? 0 : ZE_NOMEM;

    for (int i = 0; i < threads && !rc; i++) {
        c[i] = (committer){.db = db, .vote_lock = &vote_lock, .k = k,
                           .first = GROUP_FIRST + (uint64_t)i * k};
        rc = read_serials(db, c[i].first, k, c[i].serial);
        pthread_mutex_init(&c[i].mu, NULL);
        pthread_cond_init(&c[i].cv, NULL);
    }
    store_get_stats(db->s, &before);
    double t0 = bench_now();
    int started = 0;
    for (; started < threads && !rc; started++) {
        c[started].stop_at = t0 + cfg->seconds;
        rc = pthread_create(&tids[started], NULL, committer_main, &c[started]);
    }
    out->commits = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
        out->commits += c[i].n;
        rc = rc ? rc : c[i].rc;
    }
    out->rate = (double)out->commits / (bench_now() - t0);
    store_get_stats(db->s, &after);
    out->syncs = after.syncs - before.syncs;
    for (int i = 0; c && i < threads; i++) {
        pthread_mutex_destroy(&c[i].mu);
        pthread_cond_destroy(&c[i].cv);
    }
    free(c);
    free(tids);
    bench_sample_heap();
    return rc;
}

static int raw_commit_loop(MDB_env *env, double seconds, uint64_t *n)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t key[16] = {0}, val[300];
    int rc;

    memset(val, 0x5a, sizeof val);
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, "records", MDB_CREATE, &dbi)) ||
        (rc = mdb_txn_commit(txn)))
        return rc;
    double t0 = bench_now();
    while (bench_now() - t0 < seconds) {
        MDB_val k = {sizeof key, key}, v = {sizeof val, val};
        zbe64_put(key + 8, ++*n);
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
            return rc;
        if ((rc = mdb_put(txn, dbi, &k, &v, 0))) {
            mdb_txn_abort(txn);
            return rc;
        }
        if ((rc = mdb_txn_commit(txn)))
            return rc;
    }
    return 0;
}

/* LMDB's default flags make every commit durable (data sync, then meta). */
int bench_raw_sync_commit(const char *dir, const bench_cfg *cfg, double *rate)
{
    char path[4200];
    MDB_env *env;
    uint64_t n = 0;
    int rc;

    snprintf(path, sizeof path, "%s/raw_lmdb", dir);
    if (mkdir(path, 0755) && errno != EEXIST)
        return ZE_IO;
    if ((rc = mdb_env_create(&env)))
        return ZE_NOMEM;
    if (!(rc = mdb_env_set_mapsize(env, 256u << 20)) && !(rc = mdb_env_set_maxdbs(env, 4)) &&
        !(rc = mdb_env_open(env, path, 0, 0644))) {
        double t0 = bench_now();
        rc = raw_commit_loop(env, cfg->seconds, &n);
        *rate = (double)n / (bench_now() - t0);
    }
    mdb_env_close(env);
    bench_remove_tree(path);
    if (rc)
        fprintf(stderr, "store_bench: raw LMDB commit: %s\n", mdb_strerror(rc));
    return rc ? ZE_IO : 0;
}
