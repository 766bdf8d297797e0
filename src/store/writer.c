/* writer.c: the writer thread, group commit, index batches, map growth and
 * bulk mode. */
#include "store/writer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "store/index.h"
#include "store/txn.h"

#define BULK_COMMIT_BYTES (8u << 20)   /* bulk mode: commit the write txn past this */
#define OBJECTS_SAVE_SECONDS 1.0       /* the object count is saved at most this often */

void store__writer_enqueue_locked(store *s, st_job *job)
{
    job->next = NULL;
    job->done = 0;
    job->rc = 0;
    zerr_clear(&job->err);
    if (s->tail)
        s->tail->next = job;
    else
        s->head = job;
    s->tail = job;
    pthread_cond_signal(&s->wake);
}

int store__writer_wait(store *s, st_job *job, zerr *err)
{
    pthread_mutex_lock(&s->mu);
    while (!job->done)
        pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (job->rc && err)
        *err = job->err;
    return job->rc;
}

int store__write(store *s, st_write_fn fn, void *ud, zerr *err)
{
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "%s is open read-only", s->dir);
    st_job job = {.fn = fn, .ud = ud};
    pthread_mutex_lock(&s->mu);
    store__writer_enqueue_locked(s, &job);
    pthread_mutex_unlock(&s->mu);
    return store__writer_wait(s, &job, err);
}

/* ---- one group ---------------------------------------------------------- */

static int bulk_on(store *s)
{
    pthread_mutex_lock(&s->mu);
    int bulk = s->bulk;
    pthread_mutex_unlock(&s->mu);
    return bulk;
}

/* A commit appends its records; in bulk mode (nobody reads until the end)
 * their index entries go in at once. A function job sees the whole index:
 * the overlay is applied first, in the same write. A failure takes back what
 * the job added to the overlay. */
static int run_in(store *s, MDB_txn *txn, st_job *job)
{
    size_t mark = store__overlay_mark(s);
    uint64_t indexed = s->indexed_txn, created = s->index_created;
    int rc;
    if (job->txn) {
        rc = store__apply_txn(s, txn, job->txn, &job->err);
        if (!rc && bulk_on(s))
            rc = store__index_apply(s, txn, &job->err);
    } else {
        rc = store__index_apply(s, txn, &job->err);
        if (!rc)
            rc = job->fn(s, txn, job->ud, &job->err);
    }
    if (rc) {
        store__overlay_cut(s, mark);
        s->indexed_txn = indexed;
        s->index_created = created;
    }
    return rc;
}

/* Begin an outer write transaction, remembering the overlay to go back to
 * if it is aborted. */
static int outer_begin(store *s, MDB_txn **txn)
{
    s->outer_mark = store__overlay_mark(s);
    return mdb_txn_begin(s->env, NULL, 0, txn);
}

/* The outer transaction is gone: committed (ok) or aborted. */
static void outer_end(store *s, int ok)
{
    if (!ok)
        store__overlay_cut(s, s->outer_mark);
    store__index_done(s, ok);
}

/* A job of a group sharing the outer transaction runs in a nested one, so
 * that its failure discards only its own writes. */
static int run_job(store *s, MDB_txn *outer, st_job *job)
{
    MDB_txn *child;
    int rc = mdb_txn_begin(s->env, outer, 0, &child);
    if (rc)
        return store__mdb_err(&job->err, rc, "begin nested transaction");
    if ((rc = run_in(s, child, job))) {
        mdb_txn_abort(child);
        return rc;
    }
    rc = mdb_txn_commit(child);
    if (rc) {
        store__overlay_cut(s, job->mark);
        s->indexed_txn = job->indexed;
        s->index_created = job->created;
        return store__mdb_err(&job->err, rc, "commit nested transaction");
    }
    if (job->txn)
        s->bulk_bytes += job->txn->q.buf.size + 64 * job->txn->q.n_ops;
    return 0;
}

/* Double the map (up to map_max) while no thread is inside LMDB. */
static int grow_map(store *s)
{
    if (s->map_size >= s->map_max)
        return ZE_FULL;
    uint64_t size = s->map_size * 2 > s->map_max ? s->map_max : s->map_size * 2;
    pthread_rwlock_wrlock(&s->map_lock);
    int rc = mdb_env_set_mapsize(s->env, size);
    if (!rc) {
        s->map_size = size;
        atomic_fetch_add(&s->map_gen, 1);
    }
    pthread_rwlock_unlock(&s->map_lock);
    return rc ? ZE_FULL : 0;
}

static void fail_from(st_job *from, st_job *to, int rc, const zerr *err)
{
    for (st_job *j = from; j != to; j = j->next)
        if (!j->rc) {
            j->rc = rc;
            j->err = *err;
        }
}

/* Commit (or, in bulk mode, maybe keep open) the group's outer transaction.
 * Returns MDB_MAP_FULL when the group must run again after a growth. */
static int finish_group(store *s, MDB_txn *outer, st_job *start)
{
    if (bulk_on(s) && s->bulk_bytes < BULK_COMMIT_BYTES) {
        s->bulk_txn = outer;
        return 0;
    }
    int was_bulk = s->bulk_txn != NULL;
    s->bulk_txn = NULL;
    s->bulk_bytes = 0;
    int rc = mdb_txn_commit(outer);
    outer_end(s, rc == 0);
    if (rc == MDB_MAP_FULL && !was_bulk && s->map_size < s->map_max)
        return rc;
    if (rc) {
        zerr e;
        int code = store__mdb_write_err(s, &e, rc, "commit");
        fail_from(start, NULL, code, &e);
        if (was_bulk && !s->bulk_err.code)
            s->bulk_err = e;
        return 0;
    }
    if (!was_bulk) {
        pthread_mutex_lock(&s->mu);
        s->stats.syncs++;
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

/* A lone job (the common case of one commit per sync) outside bulk mode
 * owns the outer transaction: it runs there directly, and a failure aborts
 * it. This spares a nested transaction's setup (LMDB allocates megabytes of
 * page lists for each). */
static int run_alone(store *s, st_job *job)
{
    MDB_txn *txn;
    int rc = outer_begin(s, &txn);
    if (rc)
        return job->rc = store__mdb_err(&job->err, rc, "begin write transaction");
    if ((job->rc = run_in(s, txn, job))) {
        mdb_txn_abort(txn);
        outer_end(s, 0);
        return job->rc == ZE_FULL ? MDB_MAP_FULL : 0;
    }
    return finish_group(s, txn, job);
}

static void run_group(store *s, st_job *jobs)
{
    st_job *start = jobs;
    for (;;) {
        MDB_txn *outer = s->bulk_txn;
        if (!outer && !start->next && !bulk_on(s)) {
            if (run_alone(s, start) != MDB_MAP_FULL || grow_map(s))
                return;
            start->rc = 0;
            zerr_clear(&start->err);
            continue;
        }
        int rc = outer ? 0 : outer_begin(s, &outer);
        if (rc) {
            zerr e;
            fail_from(start, NULL, store__mdb_err(&e, rc, "begin write transaction"), &e);
            return;
        }
        st_job *j;
        for (j = start; j; j = j->next) {
            j->mark = store__overlay_mark(s);
            j->indexed = s->indexed_txn;
            j->created = s->index_created;
            j->rc = run_job(s, outer, j);
            if (j->rc == ZE_FULL && s->map_size < s->map_max)
                break;
        }
        if (!j && finish_group(s, outer, start) != MDB_MAP_FULL)
            return;
        if (j && s->bulk_txn) {
            /* Earlier bulk groups already reported success: keep them. */
            s->bulk_txn = NULL;
            s->bulk_bytes = 0;
            /* j and the jobs after it start again: take back what they added */
            store__overlay_cut(s, j->mark);
            s->indexed_txn = j->indexed;
            rc = mdb_txn_commit(outer);
            outer_end(s, rc == 0);
            if (rc && !s->bulk_err.code)
                store__mdb_err(&s->bulk_err, rc, "commit bulk transaction");
            fail_from(start, j, rc ? ZE_FULL : 0, &s->bulk_err);
            start = j;
        } else if (j) {
            mdb_txn_abort(outer);
            outer_end(s, 0);
        }
        if (grow_map(s))
            continue;   /* at the cap: the retry fails for good with ZE_FULL */
        for (st_job *k = start; k; k = k->next) {
            k->rc = 0;
            zerr_clear(&k->err);
        }
    }
}

/* Remove the blob files a failed commit installed. */
static void drop_installed_blobs(store *s, store_txn *t)
{
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&t->q, &it));)
        if (op->rflags & ST_RF_BLOB)
            store__blob_remove(s, op->oid, t->tid, NULL);
}

static void complete(store *s, st_job *jobs)
{
    for (st_job *j = jobs, *next; j; j = next) {
        next = j->next;
        store_txn *t = j->txn;
        pthread_mutex_lock(&s->mu);
        if (t) {
            store__pending_remove(s, t);
            s->n_pending--;
            if (!j->rc) {
                if (t->tid > s->durable_tid)
                    s->durable_tid = t->tid;
                s->stats.commits++;
                s->stats.transactions++;
                s->stats.records += t->n_written;
                s->objects += t->q.new_objects;
            }
            t->q.state = TXN_DONE;
        }
        if (t && t->cb) {
            pthread_cond_broadcast(&s->done);   /* pending drained for undo votes */
            pthread_mutex_unlock(&s->mu);
            if (j->rc)
                drop_installed_blobs(s, t);
            /* The callback may free t (and j with it): nothing touches them after. */
            t->cb(t, j->rc, t->tid, &j->err, t->ud);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        if (t && j->rc)
            drop_installed_blobs(s, t);
        pthread_mutex_lock(&s->mu);
        j->done = 1;
        pthread_cond_broadcast(&s->done);
        pthread_mutex_unlock(&s->mu);
    }
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Save the in-memory object count to meta "objects" in a write transaction
 * of its own (best effort: a failure leaves it for the next try, a second
 * later). Commits do not write it, so most of them leave the meta DB's page
 * alone. */
static void save_objects(store *s, uint64_t n)
{
    MDB_txn *txn;
    s->objects_saved_at = monotonic_now();
    if (mdb_txn_begin(s->env, NULL, 0, &txn))
        return;
    if (store__meta_put(txn, s, "objects", n, NULL))
        mdb_txn_abort(txn);
    else if (!mdb_txn_commit(txn))
        s->objects_saved = n;
}

/* With s->mu held: save the object count when it changed and the last save
 * is old enough (at most one extra sync a second), or when forced (at
 * exit). Not during bulk mode, whose write transaction stays open. */
static void maybe_save_objects(store *s, int force)
{
    uint64_t n = s->objects;
    if (n == s->objects_saved || s->bulk_txn ||
        (!force && monotonic_now() - s->objects_saved_at < OBJECTS_SAVE_SECONDS))
        return;
    pthread_mutex_unlock(&s->mu);
    save_objects(s, n);
    pthread_mutex_lock(&s->mu);
}

/* Apply the overlay to the index in a write of its own (a failure leaves
 * the entries for the next try: readers see them meanwhile). */
static void index_batch(store *s)
{
    for (int tries = 0; tries < 2; tries++) {
        MDB_txn *txn;
        zerr e;
        if (outer_begin(s, &txn))
            return;
        int rc = store__index_apply(s, txn, &e);
        if (rc) {
            mdb_txn_abort(txn);
            outer_end(s, 0);
        } else {
            rc = mdb_txn_commit(txn);
            outer_end(s, rc == 0);
        }
        if (!rc || (rc != ZE_FULL && rc != MDB_MAP_FULL) || grow_map(s))
            return;
    }
}

/* After a group: a full batch of entries goes to the index. */
static void maybe_index(store *s)
{
    if (!s->bulk_txn && store__overlay_pending(s) >= s->index_batch)
        index_batch(s);
    store__overlay_drop(s);
}

static void *writer_main(void *arg)
{
    store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->wake, &s->mu);
        if (!s->head)
            break;
        st_job *jobs = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_group(s, jobs);
        complete(s, jobs);
        maybe_index(s);
        pthread_mutex_lock(&s->mu);
        maybe_save_objects(s, 0);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->bulk_txn) {
        outer_end(s, mdb_txn_commit(s->bulk_txn) == 0);
        s->bulk_txn = NULL;
        if (!s->opt.no_sync)
            mdb_env_sync(s->env, 1);
    }
    /* a reopen then starts with nothing to rebuild */
    if (store__overlay_pending(s))
        index_batch(s);
    pthread_mutex_lock(&s->mu);
    maybe_save_objects(s, 1);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store__writer_start(store *s, zerr *err)
{
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    if (rc)
        return zerr_sys(err, rc, "start the writer thread");
    s->writer_running = 1;
    return 0;
}

void store__writer_stop(store *s)
{
    if (!s->writer_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->writer_running = 0;
}

/* ---- bulk mode ---------------------------------------------------------- */

static int bulk_start(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    int rc = mdb_env_set_flags(s->env, MDB_NOSYNC, 1);
    if (rc)
        return store__mdb_err(err, rc, "bulk mode");
    pthread_mutex_lock(&s->mu);
    s->bulk = 1;
    pthread_mutex_unlock(&s->mu);
    zerr_clear(&s->bulk_err);
    return 0;
}

static int nothing(store *s, MDB_txn *txn, void *ud, zerr *err) { return 0; }

int store__lmdb_bulk_begin(store *s, zerr *err)
{
    if (bulk_on(s))
        return zerr_set(err, ZE_TXN, "bulk mode is already on");
    return store__write(s, bulk_start, NULL, err);
}

int store__lmdb_bulk_end(store *s, zerr *err)
{
    if (!bulk_on(s))
        return zerr_set(err, ZE_TXN, "bulk mode is not on");
    pthread_mutex_lock(&s->mu);
    s->bulk = 0;
    pthread_mutex_unlock(&s->mu);
    /* A group outside bulk mode commits the open bulk transaction. */
    int rc = store__write(s, nothing, NULL, err);
    if (!rc && s->bulk_err.code) {
        rc = s->bulk_err.code;
        if (err)
            *err = s->bulk_err;
    }
    if (!s->opt.no_sync) {
        mdb_env_set_flags(s->env, MDB_NOSYNC, 0);
        int src = mdb_env_sync(s->env, 1);
        if (src && !rc)
            rc = store__mdb_err(err, src, "sync after bulk import");
    }
    return rc;
}
