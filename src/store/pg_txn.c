/* pg_txn.c: building a transaction on PostgreSQL (begin, store, delete,
 * restore, undo), abort and free. Operations are queued in call order; the
 * stored bytes go to a txnbuf, which spills to a file as the LMDB store's
 * does. Vote is in pg_vote.c, commit in pg_commit.c. */
#include "store/pg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/zarray.h"
#include "common/ztid.h"

static stpg_txn *tx(store_txn *t) { return (stpg_txn *)(void *)t; }

int store__pg_txn_begin(store *ss, const store_txn_meta *meta, store_txn **out, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    *out = NULL;
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "PostgreSQL (%s) is open read-only", s->shown);
    if (meta->user_len > STORE_META_MAX || meta->description_len > STORE_META_MAX ||
        meta->extension_len > STORE_META_MAX)
        return zerr_set(err, ZE_TOOBIG, "transaction user, description or extension "
                        "over %d bytes", STORE_META_MAX);
    char status = meta->status ? meta->status : ' ';
    if (status != ' ' && status != 'p')
        return zerr_set(err, ZE_INVAL, "transaction status 0x%02x is not ' ' or 'p'",
                        (unsigned char)status);
    uint64_t after, last = s->bulk ? s->bulk_last_tid : store__pg_last_tid(ss);
    if (meta->tid && meta->tid <= last)
        return zerr_set(err, ZE_INVAL, "tid %016llx is not after the last tid",
                        (unsigned long long)meta->tid);
    if (meta->tid && ztid_later(meta->tid, meta->tid, &after))
        return zerr_set(err, ZE_INVAL, "tid %016llx: no tid can follow it, so nothing "
                        "could commit after it", (unsigned long long)meta->tid);
    stpg_txn *t = calloc(1, sizeof *t);
    if (!t)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    t->be = &store__pg_ops;
    t->s = s;
    t->status = status;
    t->explicit_tid = meta->tid != 0;
    t->tid = meta->tid;
    txnbuf_init(&t->buf, s->tmp_fd, s->blob_tmp, TXNBUF_SPILL);
    if (zbuf_append(&t->meta, meta->user, meta->user_len) ||
        zbuf_append(&t->meta, meta->description, meta->description_len) ||
        zbuf_append(&t->meta, meta->extension, meta->extension_len)) {
        store__pg_txn_free((store_txn *)(void *)t);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    t->ulen = meta->user_len;
    t->dlen = meta->description_len;
    t->elen = meta->extension_len;
    *out = (store_txn *)(void *)t;
    return 0;
}

static int check_open(stpg_txn *t, zerr *err)
{
    if (t->state != PGT_OPEN)
        return zerr_set(err, ZE_TXN, "transaction is not open for new operations");
    return 0;
}

static stpg_op *push_op(stpg_txn *t, int type, uint64_t oid, zerr *err)
{
    stpg_op *ops = zarray_room(t->ops, t->n_ops, &t->cap_ops, sizeof *ops, 16);
    if (!ops) {
        zerr_set(err, ZE_NOMEM, "out of memory");
        return NULL;
    }
    t->ops = ops;
    stpg_op *op = &t->ops[t->n_ops];
    memset(op, 0, sizeof *op);
    op->type = (uint8_t)type;
    op->oid = oid;
    return op;
}

static int buffer_data(stpg_txn *t, stpg_op *op, const void *data, size_t len, zerr *err)
{
    uint32_t max = t->s->opt.max_record ? t->s->opt.max_record : STPG_MAX_RECORD;
    if (max > STPG_MAX_RECORD)
        max = STPG_MAX_RECORD;
    if (len == 0)
        return zerr_set(err, ZE_INVAL, "empty record for oid %016llx",
                        (unsigned long long)op->oid);
    if (len > max)
        return zerr_set(err, ZE_TOOBIG, "record of %zu bytes for oid %016llx is over "
                        "the %u-byte limit", len, (unsigned long long)op->oid, max);
    op->len = (uint32_t)len;
    return txnbuf_append(&t->buf, data, len, &op->off, err);
}

static int take_blob(stpg_txn *t, stpg_op *op, const char *blob_path, int linked_ok,
                     zerr *err)
{
    if (!blob_path)
        return 0;
    int rc = store__pg_blob_check(t->s, blob_path, linked_ok, err);
    if (rc)
        return rc;
    if (linked_ok)
        op->state |= PGOPF_BLOB_LINKED;
    op->blob = strdup(blob_path);
    if (!op->blob)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    op->rflags |= STPG_RF_BLOB;
    return 0;
}

static int add_store(stpg_txn *t, uint64_t oid, uint64_t serial, const void *data,
                     size_t len, const char *blob_path, zerr *err)
{
    int rc = check_open(t, err);
    if (rc)
        return rc;
    stpg_op *op = push_op(t, PGOP_STORE, oid, err);
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
    if (prev && (t->ops[prev - 1].state & PGOPF_CONFLICT))
        t->ops[prev - 1].state |= PGOPF_DROPPED;
    t->n_ops++;
    return 0;
fail:
    free(op->blob);
    op->blob = NULL;
    return rc;
}

int store__pg_txn_store(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                        size_t len, zerr *err)
{
    return add_store(tx(t), oid, serial, data, len, NULL, err);
}

int store__pg_txn_store_blob(store_txn *t, uint64_t oid, uint64_t serial, const void *data,
                             size_t len, const char *blob_path, zerr *err)
{
    if (!blob_path)
        return zerr_set(err, ZE_INVAL, "store_blob without a blob file");
    return add_store(tx(t), oid, serial, data, len, blob_path, err);
}

/* A shared blob folder is not offered (STORE_CAP_SHARED_BLOBS): the blobs
 * live in the database, and the folder is this process's cache. */
int store__pg_txn_store_blob_shared(store_txn *t, uint64_t oid, uint64_t serial,
                                    const void *data, size_t len, const char *name, zerr *err)
{
    return zerr_set(err, ZE_NOTSUP, "PostgreSQL (%s) keeps blobs in the database: a shared "
                    "blob folder is not offered", tx(t)->s->shown);
}

static int add_simple(stpg_txn *t, int type, int kind, uint64_t oid, uint64_t serial,
                      zerr *err)
{
    int rc = check_open(t, err);
    if (rc)
        return rc;
    stpg_op *op = push_op(t, type, oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)kind;
    op->serial = serial;
    t->n_ops++;
    return 0;
}

int store__pg_txn_check_current(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(tx(t), PGOP_CHECK, 0, oid, serial, err);
}

int store__pg_txn_delete(store_txn *t, uint64_t oid, uint64_t serial, zerr *err)
{
    return add_simple(tx(t), PGOP_DELETE, STORE_REC_DELETE, oid, serial, err);
}

int store__pg_txn_undo(store_txn *t, uint64_t undo_tid, zerr *err)
{
    int rc = add_simple(tx(t), PGOP_UNDO, 0, 0, undo_tid, err);
    if (!rc)
        tx(t)->has_undo = 1;
    return rc;
}

int store__pg_txn_restore_record(store_txn *tt, const store_record *rec, const char *blob_path,
                                 zerr *err)
{
    stpg_txn *t = tx(tt);
    int rc = check_open(t, err);
    if (rc)
        return rc;
    if (rec->kind != STORE_REC_DATA && rec->kind != STORE_REC_BACKPTR &&
        rec->kind != STORE_REC_DELETE)
        return zerr_set(err, ZE_INVAL, "record kind %d", (int)rec->kind);
    if (rec->kind == STORE_REC_BACKPTR && !rec->back_tid)
        return zerr_set(err, ZE_INVAL, "back-pointer without a target");
    stpg_op *op = push_op(t, PGOP_RECORD, rec->oid, err);
    if (!op)
        return ZE_NOMEM;
    op->kind = (uint8_t)rec->kind;
    op->rflags = rec->prev_zero ? STPG_RF_PREV_ZERO : 0;
    op->back_tid = rec->back_tid;
    op->back_index = rec->back_index;
    if (rec->kind == STORE_REC_DATA &&
        (rc = buffer_data(t, op, rec->data.p, rec->data.len, err)))
        return rc;
    if ((rc = take_blob(t, op, blob_path, 1, err)))
        return rc;
    if (rec->kind == STORE_REC_BACKPTR && !blob_path)
        op->rflags |= rec->has_blob ? STPG_RF_BLOB : 0;
    t->n_ops++;
    return 0;
}

stpg_op *store__pg_next_rec(stpg_txn *t, stpg_rec_it *it)
{
    while (it->op < t->n_ops) {
        stpg_op *op = &t->ops[it->op];
        if (op->type == PGOP_UNDO) {
            if (it->gen < op->gen_count)
                return &t->gen[op->gen_start + it->gen++];
            it->gen = 0;
            it->op++;
            continue;
        }
        it->op++;
        if (op->type != PGOP_CHECK && !(op->state & PGOPF_DROPPED))
            return op;
    }
    return NULL;
}

int store__pg_txn_each_oid(store_txn *tt, store_lock_cb cb, void *ud)
{
    stpg_txn *t = tx(tt);
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].type == PGOP_UNDO)
            continue;
        int rc = cb(t->ops[i].oid, t->ops[i].type != PGOP_CHECK, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int store__pg_txn_exclusive(store_txn *t) { return tx(t)->has_undo || tx(t)->explicit_tid; }

const uint64_t *store__pg_txn_oids(store_txn *tt, size_t *n)
{
    stpg_txn *t = tx(tt);
    size_t count = 0;
    stpg_rec_it it = {0, 0};
    while (store__pg_next_rec(t, &it))
        count++;
    uint64_t *oids = realloc(t->oids, (count ? count : 1) * sizeof *oids);
    if (!oids) {
        *n = 0;
        return NULL;
    }
    t->oids = oids;
    t->n_oids = 0;
    oidmap_clear(&t->seen);
    it = (stpg_rec_it){0, 0};
    for (stpg_op *op; (op = store__pg_next_rec(t, &it));) {
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

/* ---- abort and free ---------------------------------------------------------- */

static void drop_blobs(stpg_txn *t)
{
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].blob) {
            store__pg_blob_discard_queued(t->s, t->ops[i].blob,
                                          !!(t->ops[i].state & PGOPF_BLOB_LINKED));
            free(t->ops[i].blob);
            t->ops[i].blob = NULL;
        }
}

/* End the vote's database transaction: its locks go with it. The ROLLBACK
 * is the committer thread's to send, so that abort and free never wait on
 * the network (the server calls them on its event loop). */
void store__pg_txn_release(stpg_txn *t, int rollback)
{
    stpg_conn *c = t->conn;
    if (!c)
        return;
    t->conn = NULL;
    oidmap_clear(&t->locked);
    if (rollback && !c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        store__pg_rollback_later(t->s, c);
    else
        store__pg_release(t->s, c);
}

void store__pg_txn_abort(store_txn *tt)
{
    stpg_txn *t = tx(tt);
    if (!t || t->state == PGT_COMMITTING || t->state == PGT_DONE)
        return;
    store__pg_txn_release(t, 1);
    drop_blobs(t);
    txnbuf_free(&t->buf);
    t->n_ops = 0;
    t->n_gen = 0;
    t->state = PGT_ABORTED;
}

void store__pg_txn_free(store_txn *tt)
{
    stpg_txn *t = tx(tt);
    if (!t)
        return;
    store__pg_txn_release(t, 1);
    if (t->state != PGT_DONE)
        drop_blobs(t);
    for (size_t i = 0; i < t->n_ops; i++)
        free(t->ops[i].blob);
    txnbuf_free(&t->buf);
    zbuf_free(&t->meta);
    free(t->ops);
    free(t->gen);
    oidmap_free(&t->last_store);
    oidmap_free(&t->seen);
    oidmap_free(&t->locked);
    free(t->oids);
    free(t->conflicts);
    free(t->resolved);
    zbuf_free(&t->conflict_data);
    free(t->changed);
    free(t->undo_failures);
    free(t);
}
