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

#include "common/zfile.h"

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
        if (bench_node_pickle(db, first + i, rev, pk))
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
        else
            rc = store_txn_store(*out, db->oids[first + i], serial[i], pk->data, pk->len, err);
    if (!rc)
        rc = store_txn_vote(*out, &res, err);
    return rc;
}

int bench_commit_serial(bench_db *db, double seconds, int k, bench_rate *rate)
{
    uint64_t serial[100], n = 0, tid;
    zbuf pk = ZBUF_INIT;
    zerr err;
    int rc = read_serials(db, 0, k, serial);
    double t0 = bench_now();

    while (!rc && bench_now() - t0 < seconds) {
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
    rate->seconds += bench_now() - t0;
    rate->n += n;
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

struct raw_env {
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t next;
    char path[4200];
};

/* LMDB's default flags make every commit durable (data sync, then meta). */
int bench_raw_open(const char *dir, raw_env **out)
{
    raw_env *e = calloc(1, sizeof *e);
    MDB_txn *txn;
    int rc;
    if (!e)
        return ZE_NOMEM;
    snprintf(e->path, sizeof e->path, "%s/raw_lmdb", dir);
    if (mkdir(e->path, 0755) && errno != EEXIST) {
        free(e);
        return ZE_IO;
    }
    if ((rc = mdb_env_create(&e->env)) == 0 &&
        !(rc = mdb_env_set_mapsize(e->env, 256u << 20)) &&
        !(rc = mdb_env_set_maxdbs(e->env, 4)) && !(rc = mdb_env_open(e->env, e->path, 0, 0644)) &&
        !(rc = mdb_txn_begin(e->env, NULL, 0, &txn))) {
        if ((rc = mdb_dbi_open(txn, "records", MDB_CREATE, &e->dbi)))
            mdb_txn_abort(txn);
        else
            rc = mdb_txn_commit(txn);
    }
    if (rc) {
        fprintf(stderr, "store_bench: raw LMDB env: %s\n", mdb_strerror(rc));
        bench_raw_close(e);
        return ZE_IO;
    }
    *out = e;
    return 0;
}

static int raw_commit(raw_env *e)
{
    uint8_t key[16] = {0}, val[300];
    MDB_val k = {sizeof key, key}, v = {sizeof val, val};
    MDB_txn *txn;
    memset(val, 0x5a, sizeof val);
    zbe64_put(key + 8, ++e->next);
    int rc = mdb_txn_begin(e->env, NULL, 0, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_put(txn, e->dbi, &k, &v, 0))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int bench_raw_commits(raw_env *e, double seconds, bench_rate *rate)
{
    double t0 = bench_now();
    int rc = 0;
    uint64_t n = 0;
    while (!rc && bench_now() - t0 < seconds)
        if (!(rc = raw_commit(e)))
            n++;
    rate->seconds += bench_now() - t0;
    rate->n += n;
    if (rc)
        fprintf(stderr, "store_bench: raw LMDB commit: %s\n", mdb_strerror(rc));
    return rc ? ZE_IO : 0;
}

void bench_raw_close(raw_env *e)
{
    if (!e)
        return;
    if (e->env)
        mdb_env_close(e->env);
    zfile_rm_rf(e->path, NULL);
    free(e);
}
