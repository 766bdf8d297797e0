/* txn.c: beginning a transaction of the LMDB store, handing it to the
 * writer (commit, finish), abort and free. What it queues meanwhile is
 * txnq.c's; vote lives in vote.c, the LMDB writes in apply.c. */
#include "store/txn.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/ztid.h"
#include "store/blob.h"
#include "store/writer.h"

#define DEFAULT_MAX_RECORD 0x7fffffffu

/* The same bits, so that records carry an op's rflags as they are. */
_Static_assert(TXN_RF_PREV_ZERO == ST_RF_PREV_ZERO && TXN_RF_BLOB == ST_RF_BLOB,
               "txnq.h's record flags are the LMDB store's");

static store_txn *txn_of(txnq *q) { return (store_txn *)(void *)q; }

static int blob_check(txnq *q, const char *path, int linked_ok, uint64_t oid, zerr *err)
{
    return store__blob_check(txn_of(q)->s, path, linked_ok, oid, err);
}

static void blob_discard(txnq *q, const char *path, int linked_ok)
{
    store__blob_discard(txn_of(q)->s, path, linked_ok);
}

static const txnq_hooks hooks = {blob_check, blob_discard, store__resolve_revision};

int store__lmdb_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err)
{
    *out = NULL;
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "%s is open read-only", s->dir);
    int rc = store__txnq_check_meta(meta, store_last_tid(s), err);
    if (rc)
        return rc;
    store_txn *t = calloc(1, sizeof *t);
    if (!t)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->s = s;
    t->tid = meta->tid;
    rc = store__txnq_init(&t->q, &store__lmdb_ops, &hooks, meta, &s->opt.resolver,
                          s->opt.max_record ? s->opt.max_record : DEFAULT_MAX_RECORD,
                          s->tmp_fd, s->blob_tmp, err);
    if (rc) {
        store_txn_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int store__lmdb_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                                size_t len, const char *name, zerr *err)
{
    char path[PATH_MAX];
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return zerr_set(err, ZE_INVAL, "blob file name '%.80s' is not a plain file name", name);
    if (zblob_oid_dir(t->s->blob_dir, ZBLOB_BUSHY, oid, path, sizeof path) ||
        strlen(path) + 1 + strlen(name) >= sizeof path)
        return zerr_set(err, ZE_TOOBIG, "blob file path too long");
    strcat(strcat(path, "/"), name);
    return store_txn_store_blob(t, oid, serial, data, len, path, err);
}

/* ---- commit ------------------------------------------------------------- */

/* Record each written oid as pending under tid, so later votes see it. */
static int add_pending(store *s, store_txn *t)
{
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&t->q, &it));)
        if (oidmap_put(&s->pending, op->oid, t->tid)) {
            store__pending_remove(s, t);
            return ZE_NOMEM;
        }
    return 0;
}

void store__pending_remove(store *s, store_txn *t)
{
    store__handed_remove(s, t);
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&t->q, &it));) {
        uint64_t tid;
        if (oidmap_get(&s->pending, op->oid, &tid) && tid == t->tid)
            oidmap_del(&s->pending, op->oid);
    }
}

int store__lmdb_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err)
{
    store *s = t->s;
    if (t->q.state != TXN_VOTED)
        return zerr_set(err, ZE_TXN, "commit of a transaction that has not voted");
    pthread_mutex_lock(&s->mu);
    if (t->q.explicit_tid && t->tid <= s->last_tid) {
        pthread_mutex_unlock(&s->mu);
        return zerr_set(err, ZE_INVAL, "tid %016llx is not after the last tid %016llx",
                        (unsigned long long)t->tid, (unsigned long long)s->last_tid);
    }
    int rc = t->q.explicit_tid ? 0 : ztid_now(s->last_tid, &t->tid);
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        return zerr_set(err, rc, rc == ZE_TOOBIG ? "no tid follows the last tid %016llx"
                                                 : "the clock is outside ZODB's tid range "
                                                   "(last tid %016llx)",
                        (unsigned long long)s->last_tid);
    }
    if (add_pending(s, t)) {
        pthread_mutex_unlock(&s->mu);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    /* Tid assignment and queueing under one lock: the writer sees commits in
     * tid order. */
    s->last_tid = t->tid;
    s->n_pending++;
    store__handed_add(s, t);
    t->q.state = TXN_COMMITTING;
    t->cb = cb;
    t->ud = ud;
    t->job = (st_job){.txn = t};
    if (tid)
        *tid = t->tid;
    store__writer_enqueue_locked(s, &t->job);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int store__lmdb_txn_finish(store_txn *t, uint64_t *tid, zerr *err)
{
    int rc = store_txn_commit(t, tid, NULL, NULL, err);
    if (rc)
        return rc;
    return store__writer_wait(t->s, &t->job, err);
}

/* ---- abort and free ----------------------------------------------------- */

void store__lmdb_txn_abort(store_txn *t)
{
    if (!t || t->q.state == TXN_COMMITTING || t->q.state == TXN_DONE)
        return;
    store__txnq_abort(&t->q);
}

void store__lmdb_txn_free(store_txn *t)
{
    if (!t)
        return;
    store__txnq_deinit(&t->q);
    store_reader_free(t->rd);
    free(t);
}
