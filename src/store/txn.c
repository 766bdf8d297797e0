/* txn.c: building a transaction (begin, store, delete, restore, undo), and
 * handing it to the writer (commit, finish), abort and free. Vote lives in
 * vote.c, the LMDB writes in apply.c. */
#include "store/txn.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zarray.h"
#include "common/zblob.h"
#include "common/ztid.h"
#include "store/blob.h"
#include "store/writer.h"

#define DEFAULT_MAX_RECORD 0x7fffffffu

int store__lmdb_txn_begin(store *s, const store_txn_meta *meta, store_txn **out, zerr *err)
{
    *out = NULL;
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "%s is open read-only", s->dir);
    if (meta->user_len > STORE_META_MAX || meta->description_len > STORE_META_MAX ||
        meta->extension_len > STORE_META_MAX)
        return zerr_set(err, ZE_TOOBIG, "transaction user, description or extension "
                        "over %d bytes", STORE_META_MAX);
    char status = meta->status ? meta->status : ' ';
    if (status != ' ' && status != 'p')
        return zerr_set(err, ZE_INVAL, "transaction status 0x%02x is not ' ' or 'p'",
                        (unsigned char)status);
    if (meta->tid && meta->tid <= store_last_tid(s))
        return zerr_set(err, ZE_INVAL, "tid %016llx is not after the last tid",
                        (unsigned long long)meta->tid);
    uint64_t after;
    if (meta->tid && ztid_later(meta->tid, meta->tid, &after))
        return zerr_set(err, ZE_INVAL, "tid %016llx: no tid can follow it, so nothing "
                        "could commit after it", (unsigned long long)meta->tid);
    store_txn *t = calloc(1, sizeof *t);
    if (!t)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->be = &store__lmdb_ops;
    t->s = s;
    t->status = status;
    t->explicit_tid = meta->tid != 0;
    t->tid = meta->tid;
    txnbuf_init(&t->buf, s->tmp_fd, s->blob_tmp, TXNBUF_SPILL);
    if (zbuf_append(&t->meta, meta->user, meta->user_len) ||
        zbuf_append(&t->meta, meta->description, meta->description_len) ||
        zbuf_append(&t->meta, meta->extension, meta->extension_len)) {
        store_txn_free(t);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    t->ulen = meta->user_len;
    t->dlen = meta->description_len;
    t->elen = meta->extension_len;
    *out = t;
    return 0;
}

static int check_open(store_txn *t, zerr *err)
{
    if (t->state != TXN_OPEN)
        return zerr_set(err, ZE_TXN, "transaction is not open for new operations");
    return 0;
}

/* Append an op (zeroed but for type and oid); NULL when out of memory. */
static txn_op *push_op(store_txn *t, int type, uint64_t oid, zerr *err)
{
    txn_op *ops = zarray_room(t->ops, t->n_ops, &t->cap_ops, sizeof *ops, 16);
    if (!ops) {
        zerr_set(err, ZE_NOMEM, "out of memory");
        return NULL;
    }
    t->ops = ops;
    txn_op *op = &t->ops[t->n_ops];
    memset(op, 0, sizeof *op);
    op->type = (uint8_t)type;
    op->oid = oid;
    return op;
}

static int buffer_data(store_txn *t, txn_op *op, const void *data, size_t len, zerr *err)
{
    uint32_t max = t->s->opt.max_record ? t->s->opt.max_record : DEFAULT_MAX_RECORD;
    if (len == 0)
        return zerr_set(err, ZE_INVAL, "empty record for oid %016llx",
                        (unsigned long long)op->oid);
    if (len > max)
        return zerr_set(err, ZE_TOOBIG, "record of %zu bytes for oid %016llx is over "
                        "the %u-byte limit", len, (unsigned long long)op->oid, max);
    op->len = (uint32_t)len;
    return txnbuf_append(&t->buf, data, len, &op->off, err);
}

/* Queue blob_path for op, checked now (store__blob_check) so that a file
 * refused or missing fails where it is queued, not at commit. */
static int take_blob(store_txn *t, txn_op *op, const char *blob_path, int linked_ok,
                     zerr *err)
{
    if (!blob_path)
        return 0;
    int rc = store__blob_check(t->s, blob_path, linked_ok, op->oid, err);
    if (rc)
        return rc;
    if (linked_ok)
        op->state |= OPF_BLOB_LINKED;
    op->blob = strdup(blob_path);
    if (!op->blob)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    op->rflags |= ST_RF_BLOB;
    return 0;
}

static int add_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                     size_t len, const char *blob_path, zerr *err)
{
    int rc = check_open(t, err);
    if (rc)
        return rc;
    txn_op *op = push_op(t, OP_STORE, oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = STORE_REC_DATA;
    op->serial = serial;
    uint64_t prev = 0;
    oidmap_get(&t->last_store, oid, &prev);
    if ((rc = buffer_data(t, op, data, len, err)) || (rc = take_blob(t, op, blob_path, 0, err)))
        goto fail;
    if (oidmap_put(&t->last_store, oid, t->n_ops + 1)) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
        goto fail;
    }
    /* A store after a conflict on the oid is the client's resolution: it
     * replaces the conflicting store, which must not be checked again. */
    if (prev && (t->ops[prev - 1].state & OPF_CONFLICT))
        t->ops[prev - 1].state |= OPF_DROPPED;
    t->n_ops++;
    return 0;
fail:
    free(op->blob);
    op->blob = NULL;
    return rc;
}

int store__lmdb_txn_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                    size_t len, zerr *err)
{
    return add_store(t, oid, serial, data, len, NULL, err);
}

int store__lmdb_txn_store_blob(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                         size_t len, const char *blob_path, zerr *err)
{
    if (!blob_path)
        return zerr_set(err, ZE_INVAL, "store_blob without a blob file");
    return add_store(t, oid, serial, data, len, blob_path, err);
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

static int add_simple(store_txn *t, int type, int kind, uint64_t oid, uint64_t serial,
                      zerr *err)
{
    int rc = check_open(t, err);
    if (rc)
        return rc;
    txn_op *op = push_op(t, type, oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)kind;
    op->serial = serial;
    t->n_ops++;
    return 0;
}

int store__lmdb_txn_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(t, OP_CHECK, 0, oid, serial, err);
}

int store__lmdb_txn_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(t, OP_DELETE, STORE_REC_DELETE, oid, serial, err);
}

int store__lmdb_txn_undo(store_txn *t, uint64_t undo_tid, zerr *err)
{
    int rc = add_simple(t, OP_UNDO, 0, 0, undo_tid, err);
    if (!rc)
        t->has_undo = 1;
    return rc;
}

int store__lmdb_txn_restore_record(store_txn *t, const store_record *rec, const char *blob_path,
                             zerr *err)
{
    int rc = check_open(t, err);
    if (rc)
        return rc;
    if (rec->kind != STORE_REC_DATA && rec->kind != STORE_REC_BACKPTR &&
        rec->kind != STORE_REC_DELETE)
        return zerr_set(err, ZE_INVAL, "record kind %d", (int)rec->kind);
    if (rec->kind == STORE_REC_BACKPTR && !rec->back_tid)
        return zerr_set(err, ZE_INVAL, "back-pointer without a target");
    txn_op *op = push_op(t, OP_RECORD, rec->oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)rec->kind;
    op->rflags = rec->prev_zero ? ST_RF_PREV_ZERO : 0;
    op->back_tid = rec->back_tid;
    op->back_index = rec->back_index;
    if (rec->kind == STORE_REC_DATA &&
        (rc = buffer_data(t, op, rec->data.p, rec->data.len, err)))
        return rc;
    if ((rc = take_blob(t, op, blob_path, 1, err)))
        return rc;
    if (rec->kind == STORE_REC_BACKPTR && !blob_path)
        op->rflags |= rec->has_blob ? ST_RF_BLOB : 0;
    t->n_ops++;
    return 0;
}

const txn_op *store__txn_next_rec(const store_txn *t, txn_rec_it *it)
{
    while (it->op < t->n_ops) {
        const txn_op *op = &t->ops[it->op];
        if (op->type == OP_UNDO) {
            if (it->gen < op->gen_count)
                return &t->gen[op->gen_start + it->gen++];
            it->gen = 0;
            it->op++;
            continue;
        }
        it->op++;
        if (op->type != OP_CHECK && !(op->state & OPF_DROPPED))
            return op;
    }
    return NULL;
}

int store__lmdb_txn_each_oid(store_txn *t, store_lock_cb cb, void *ud)
{
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].type == OP_UNDO)
            continue;
        int rc = cb(t->ops[i].oid, t->ops[i].type != OP_CHECK, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int store__lmdb_txn_exclusive(store_txn *t)
{
    return t->has_undo || t->explicit_tid;
}

const uint64_t *store__lmdb_txn_oids(store_txn *t, size_t *n)
{
    size_t count = 0;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txn_next_rec(t, &it));)
        count++;
    uint64_t *oids = realloc(t->oids, (count ? count : 1) * sizeof *oids);
    if (!oids) {
        *n = 0;
        return NULL;
    }
    t->oids = oids;
    t->n_oids = 0;
    oidmap_clear(&t->seen);
    it = (txn_rec_it){0, 0};
    for (const txn_op *op; (op = store__txn_next_rec(t, &it));) {
        uint64_t dummy;
        if (oidmap_get(&t->seen, op->oid, &dummy))
            continue;
        if (oidmap_put(&t->seen, op->oid, 1))
            break;
        t->oids[t->n_oids++] = op->oid;
    }
    *n = t->n_oids;
    return t->oids;
}

/* ---- commit ------------------------------------------------------------- */

/* Record each written oid as pending under tid, so later votes see it. */
static int add_pending(store *s, store_txn *t)
{
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txn_next_rec(t, &it));)
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
    for (const txn_op *op; (op = store__txn_next_rec(t, &it));) {
        uint64_t tid;
        if (oidmap_get(&s->pending, op->oid, &tid) && tid == t->tid)
            oidmap_del(&s->pending, op->oid);
    }
}

int store__lmdb_txn_commit(store_txn *t, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err)
{
    store *s = t->s;
    if (t->state != TXN_VOTED)
        return zerr_set(err, ZE_TXN, "commit of a transaction that has not voted");
    pthread_mutex_lock(&s->mu);
    if (t->explicit_tid && t->tid <= s->last_tid) {
        pthread_mutex_unlock(&s->mu);
        return zerr_set(err, ZE_INVAL, "tid %016llx is not after the last tid %016llx",
                        (unsigned long long)t->tid, (unsigned long long)s->last_tid);
    }
    int rc = t->explicit_tid ? 0 : ztid_now(s->last_tid, &t->tid);
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
    t->state = TXN_COMMITTING;
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

static void drop_blobs(store_txn *t)
{
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].blob) {
            store__blob_discard(t->s, t->ops[i].blob, !!(t->ops[i].state & OPF_BLOB_LINKED));
            free(t->ops[i].blob);
            t->ops[i].blob = NULL;
        }
}

void store__lmdb_txn_abort(store_txn *t)
{
    if (!t || t->state == TXN_COMMITTING || t->state == TXN_DONE)
        return;
    drop_blobs(t);
    txnbuf_free(&t->buf);
    t->n_ops = 0;
    t->n_gen = 0;
    t->state = TXN_ABORTED;
}

void store__lmdb_txn_free(store_txn *t)
{
    if (!t)
        return;
    if (t->state != TXN_DONE)
        drop_blobs(t);
    for (size_t i = 0; i < t->n_ops; i++)
        free(t->ops[i].blob);
    txnbuf_free(&t->buf);
    zbuf_free(&t->meta);
    free(t->ops);
    free(t->gen);
    oidmap_free(&t->last_store);
    oidmap_free(&t->seen);
    free(t->oids);
    free(t->conflicts);
    zbuf_free(&t->conflict_data);
    free(t->changed);
    free(t->undo_failures);
    free(t->resolved);
    store_reader_free(t->rd);
    zbuf_free(&t->scratch);
    free(t);
}
