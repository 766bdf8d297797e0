/* pg_commit.c: committing on PostgreSQL: the committer thread, the commit
 * itself, what happens when its answer is lost, and bulk mode.
 *
 * A commit runs in its vote's database transaction, which holds the oids'
 * locks: its blobs are uploaded first, then it takes the COMMIT lock, reads
 * the last tid and chooses its tid (with the clock, ztid_now: never in SQL),
 * writes its rows with COPY and commits. The COMMIT lock is held until that
 * COMMIT, so tids commit in increasing order and a reader that sees a tid
 * sees every earlier one. synchronous_commit is on (or stronger) in every session, so a
 * COMMIT that answers is durable. When the connection breaks after COMMIT
 * was sent and before its answer, the outcome is asked of the database, on
 * a new connection, once the COMMIT lock is free (the old session has ended
 * or committed): the transaction committed exactly when its row exists. */
#include "store/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ztid.h"

#define COPY_FLUSH (1u << 20)        /* bytes of COPY data sent at once */
#define BIG_FIELD (64u << 10)        /* a pickle past this is sent as it lies */
#define SIZE_EVERY 10.0              /* seconds between database size queries */
#define OUTCOME_LOG_EVERY 60.0

#define RECORD_COLS "(tid, idx, oid, kind, flags, back_tid, back_idx, data_tid, data_idx, " \
                    "blob_id, data)"
static const char copy_records_sql[] =
    "COPY zeolite.records " RECORD_COLS " FROM STDIN (FORMAT binary)";
static const char copy_txns_sql[] =
    "COPY zeolite.txns (tid, status, username, description, extension, nrec, size) "
    "FROM STDIN (FORMAT binary)";

static stpg_txn *tx(store_txn *t) { return (stpg_txn *)(void *)t; }

static int nomem(zerr *err) { return zerr_set(err, ZE_NOMEM, "out of memory"); }

/* ---- rows ------------------------------------------------------------------------ */

/* What the undo log shows as a transaction's size: the records' lengths as
 * the LMDB store counts them, so both backends show the same. */
static uint64_t rec_size(const txn_op *op)
{
    return op->kind == STORE_REC_DATA ? 8u + op->len : op->kind == STORE_REC_BACKPTR ? 32u : 8u;
}

typedef struct copier {
    stpg_store *s;
    stpg_conn *c;
    zbuf *b;
    zbuf scratch;
    zerr *err;
} copier;

static int flush(copier *cp, size_t at_least)
{
    if (cp->b->len < at_least)
        return 0;
    int rc = stpg_copy_send(cp->s, cp->c, cp->b->data, cp->b->len, cp->err);
    zbuf_reset(cp->b);
    return rc;
}

static int copy_row(copier *cp, stpg_txn *t, const txn_op *op, uint64_t tid, uint32_t idx)
{
    zbuf *b = cp->b;
    int bp = op->kind == STORE_REC_BACKPTR, target = !!(op->state & OPF_TARGET);
    int32_t back_idx = op->back_index == STPG_INDEX_LAST ? -1 : (int32_t)op->back_index;
    int rc = stpg_copy_row(b, 11) || stpg_copy_id(b, tid) || stpg_copy_i32(b, (int32_t)idx) ||
             stpg_copy_id(b, op->oid) || stpg_copy_i16(b, op->kind) ||
             stpg_copy_i16(b, op->rflags) ||
             (bp ? stpg_copy_id(b, op->back_tid) : stpg_copy_null(b)) ||
             (bp ? stpg_copy_i32(b, back_idx) : stpg_copy_null(b)) ||
             (bp && target ? stpg_copy_id(b, op->data_tid) : stpg_copy_null(b)) ||
             (bp && target ? stpg_copy_i32(b, (int32_t)op->data_index) : stpg_copy_null(b)) ||
             (op->blob_id ? stpg_copy_i64(b, op->blob_id) : stpg_copy_null(b));
    if (!rc && op->kind != STORE_REC_DATA)
        rc = stpg_copy_null(b);
    else if (!rc)
        rc = stpg_copy_bytes_head(b, op->len);
    if (rc)
        return nomem(cp->err);
    if (op->kind != STORE_REC_DATA)
        return flush(cp, COPY_FLUSH);
    const uint8_t *p;
    if ((rc = txnbuf_view(&t->q.buf, op->off, op->len, &cp->scratch, &p, cp->err)))
        return rc;
    if (op->len >= BIG_FIELD) {
        if ((rc = flush(cp, 0)))
            return rc;
        return stpg_copy_send(cp->s, cp->c, p, op->len, cp->err);
    }
    if (zbuf_append(b, p, op->len))
        return nomem(cp->err);
    return flush(cp, COPY_FLUSH);
}

/* Every record of t as COPY rows; *size and t->n_written, t->max_oid set. */
static int copy_records(copier *cp, stpg_txn *t, uint64_t tid, uint64_t *size)
{
    txn_rec_it it = {0, 0};
    uint32_t idx = 0;
    int rc = 0;
    *size = 0;
    t->max_oid = 0;
    for (const txn_op *op; !rc && (op = store__txnq_next_rec(&t->q, &it)); idx++) {
        rc = copy_row(cp, t, op, tid, idx);
        *size += rec_size(op);
        if (op->oid > t->max_oid)
            t->max_oid = op->oid;
    }
    t->n_written = idx;
    return rc;
}

/* The transaction's row, as COPY data (bulk) or an INSERT. */
static int txn_row_copy(zbuf *b, stpg_txn *t, uint64_t tid, uint64_t size)
{
    const uint8_t *m = t->q.meta.data;
    return stpg_copy_row(b, 7) || stpg_copy_id(b, tid) || stpg_copy_bytes_head(b, 1) ||
           zbuf_append_byte(b, (uint8_t)t->q.status) || stpg_copy_bytes_head(b, t->q.ulen) ||
           zbuf_append(b, m, t->q.ulen) || stpg_copy_bytes_head(b, t->q.dlen) ||
           zbuf_append(b, m + t->q.ulen, t->q.dlen) || stpg_copy_bytes_head(b, t->q.elen) ||
           zbuf_append(b, m + t->q.ulen + t->q.dlen, t->q.elen) ||
           stpg_copy_i32(b, (int32_t)t->n_written) || stpg_copy_i64(b, (int64_t)size);
}

static int txn_row_insert(stpg_txn *t, uint64_t tid, uint64_t size, zerr *err)
{
    stpg_params p = {0};
    char status = t->q.status;
    const uint8_t *m = t->q.meta.data;
    stpg_p_id(&p, tid);
    stpg_p_bytes(&p, &status, 1);
    stpg_p_bytes(&p, m, t->q.ulen);
    stpg_p_bytes(&p, m + t->q.ulen, t->q.dlen);
    stpg_p_bytes(&p, m + t->q.ulen + t->q.dlen, t->q.elen);
    stpg_p_i32(&p, (int32_t)t->n_written);
    stpg_p_i64(&p, (int64_t)size);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)tid);
    if (t->s->opt.shared)
        stpg_p_bytes(&p, hex, 16);
    PQclear(store__pg_exec(t->s, t->conn, t->s->opt.shared ? Q_TXN_INSERT_NOTIFY : Q_TXN_INSERT,
                           &p, err));
    return t->conn->rc;
}

/* ---- blobs ------------------------------------------------------------------------ */

static int upload_blobs(stpg_txn *t, stpg_conn *c, zerr *err)
{
    for (size_t i = 0; i < t->q.n_ops; i++) {
        txn_op *op = &t->q.ops[i];
        if (!op->blob || (op->state & OPF_DROPPED) || op->blob_id)
            continue;
        int rc = store__pg_blob_upload(t->s, c, op->blob, !!(op->state & OPF_BLOB_LINKED),
                                       &op->blob_id, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The committed files become the cache's: one file per oid and tid, the
 * one of the oid's last record (taken first here: the cache keeps the
 * first file it gets for a name). */
static void cache_blobs(stpg_txn *t)
{
    for (size_t i = t->q.n_ops; i-- > 0;) {
        txn_op *op = &t->q.ops[i];
        if (!op->blob)
            continue;
        if (!(op->state & OPF_DROPPED))
            store__pg_blob_cache_put(t->s, op->blob, !!(op->state & OPF_BLOB_LINKED),
                                     op->oid, t->tid);
        else
            store__pg_blob_discard_queued(t->s, op->blob, !!(op->state & OPF_BLOB_LINKED));
        free(op->blob);
        op->blob = NULL;
    }
}

/* ---- the outcome of a COMMIT whose answer was lost ---------------------------------- */

static int ask_outcome(stpg_store *s, uint64_t tid, int *committed, zerr *err)
{
    stpg_conn *c;
    stpg_params p = {0};
    int rc = store__pg_connect(s, STPG_OWN, &c, err);
    if (rc)
        return rc;
    stpg_p_id(&p, tid);
    /* The COMMIT lock is free once the old session has committed or ended. */
    if (!(rc = store__pg_command(s, c, "BEGIN", err)) &&
        !(rc = store__pg_command(s, c, "SELECT pg_advisory_xact_lock(2053467500, 2)", err))) {
        PGresult *r = store__pg_exec(s, c, Q_TXN_EXISTS, &p, err);
        rc = c->rc;
        if (r)
            *committed = PQntuples(r) == 1;
        PQclear(r);
    }
    store__pg_disconnect(c);
    return rc;
}

/* Ask until the database answers: a commit is never reported failed when it
 * became durable, nor done when it did not. Only closing the store ends the
 * wait (the outcome is then unknown, and said so). */
static int lost_commit(stpg_store *s, uint64_t tid, zerr *err)
{
    double logged = 0, wait = 0.05;
    for (;;) {
        zerr e = {0};
        int committed = 0;
        if (store__pg_refusal(s, err))
            return ZE_CORRUPT;
        if (!ask_outcome(s, tid, &committed, &e)) {
            store__pg_log(s, STORE_LOG_WARNING, "PostgreSQL (%s): the answer to the COMMIT of "
                          "%016llx was lost; the transaction %s", s->shown,
                          (unsigned long long)tid, committed ? "is committed" : "rolled back");
            return committed ? 0 : zerr_set(err, ZE_IO, "commit %016llx: the connection to "
                                            "PostgreSQL (%s) broke before the COMMIT; "
                                            "nothing was committed", (unsigned long long)tid,
                                            s->shown);
        }
        double now = store__pg_now();
        if (now - logged >= OUTCOME_LOG_EVERY) {
            store__pg_log(s, STORE_LOG_ERROR, "commit %016llx: its outcome is not known yet "
                          "(%s); asking again", (unsigned long long)tid, e.msg);
            logged = now;
        }
        if (s->stopping)
            return zerr_set(err, ZE_IO, "commit %016llx: the connection to PostgreSQL (%s) "
                            "broke during the COMMIT and the store is closing: whether it "
                            "committed is not known", (unsigned long long)tid, s->shown);
        struct timespec ts = {0, (long)(wait * 1e9)};
        nanosleep(&ts, NULL);
        wait = wait < 1.0 ? wait * 2 : 2.0;
    }
}

static int send_commit(stpg_txn *t, uint64_t tid, zerr *err)
{
    stpg_conn *c = t->conn;
    PGresult *r = PQexec(c->pg, "COMMIT");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
    int rc = 0;
    if (!ok) {
        rc = store__pg_error(t->s, c, r, "commit", err);
        if (c->broken)
            rc = lost_commit(t->s, tid, err);
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
            rc = zerr_set(err, ZE_IO, "commit %016llx: PostgreSQL (%s) rolled it back",
                          (unsigned long long)tid, t->s->shown);
    }
    PQclear(r);
    return rc;
}

/* ---- the commit ---------------------------------------------------------------------- */

static int choose_tid(stpg_txn *t, uint64_t last, zerr *err)
{
    if (t->q.explicit_tid)
        return t->tid > last ? 0 : zerr_set(err, ZE_INVAL, "tid %016llx is not after the last "
                                            "tid %016llx", (unsigned long long)t->tid,
                                            (unsigned long long)last);
    int rc = ztid_now(last, &t->tid);
    return rc ? zerr_set(err, rc, rc == ZE_TOOBIG ? "no tid follows the last tid %016llx"
                                                  : "the clock is outside ZODB's tid range "
                                                    "(last tid %016llx)",
                         (unsigned long long)last)
              : 0;
}

static int write_rows(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    zbuf b = ZBUF_INIT;
    copier cp = {s, t->conn, &b, ZBUF_INIT, err};
    uint64_t size = 0;
    int rc = stpg_copy_start(s, t->conn, copy_records_sql, err);
    if (rc)
        return rc;
    if (stpg_copy_header(&b))
        rc = nomem(err);
    if (!rc)
        rc = copy_records(&cp, t, t->tid, &size);
    if (!rc && stpg_copy_trailer(&b))
        rc = nomem(err);
    if (!rc)
        rc = flush(&cp, 0);
    if (rc)
        stpg_copy_abort(s, t->conn);
    else
        rc = stpg_copy_end(s, t->conn, err);
    zbuf_free(&b);
    zbuf_free(&cp.scratch);
    if (!rc)
        rc = txn_row_insert(t, t->tid, size, err);
    if (!rc)
        t->size = size;
    return rc;
}

/* Records imported with prev 0 hide the older ones of their oid; the oid
 * counter passes the oids written; the object count grows. */
static int after_rows(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&t->q, &it));) {
        if (!(op->rflags & STPG_RF_PREV_ZERO))
            continue;
        stpg_params p = {0};
        stpg_p_id(&p, op->oid);
        stpg_p_id(&p, t->tid);
        PQclear(store__pg_exec(s, t->conn, Q_HIDE_OLDER, &p, err));
        if (t->conn->rc)
            return t->conn->rc;
    }
    uint64_t after = store__pg_oid_after(t->max_oid);
    pthread_mutex_lock(&s->oid_mu);
    int bump = t->n_written && after > s->oid_limit;
    pthread_mutex_unlock(&s->oid_mu);
    if (!bump && !t->q.new_objects)
        return 0;
    stpg_params p = {0};
    stpg_p_id(&p, bump ? after : 0);
    stpg_p_i64(&p, (int64_t)t->q.new_objects);
    PQclear(store__pg_exec(s, t->conn, Q_META_BUMP, &p, err));
    return t->conn->rc;
}

static void refresh_size(stpg_store *s, stpg_conn *c)
{
    double now = store__pg_now();
    if (now - s->size_at < SIZE_EVERY)
        return;
    PGresult *r = PQexec(c->pg, "SELECT pg_database_size(current_database())");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        pthread_mutex_lock(&s->mu);
        s->size_bytes = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        s->size_at = now;
        pthread_mutex_unlock(&s->mu);
    }
    PQclear(r);
}

static void committed(stpg_txn *t)
{
    stpg_store *s = t->s;
    /* the tid is noted when it is told (store__pg_feed_own_end), once the
     * read side shows it */
    if (t->n_written)
        store__pg_oids_seen(s, store__pg_oid_after(t->max_oid));
    pthread_mutex_lock(&s->mu);
    s->stats.commits++;
    s->stats.syncs++;
    s->stats.transactions++;
    s->stats.records += t->n_written;
    s->stats_objects += t->q.new_objects;
    s->size_bytes += t->size;   /* until the next pg_database_size */
    pthread_mutex_unlock(&s->mu);
    cache_blobs(t);
    t->q.state = TXN_DONE;
}

static int commit_steps(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    uint64_t last, known = store__pg_last_tid((store *)(void *)s);
    int rc = store__pg_refusal(s, err);
    if (!rc)
        rc = store__pg_check_lock(s, err);
    if (!rc && !t->conn)
        rc = store__pg_lock_oids(t, NULL, NULL, 0, err);
    if (!rc)
        rc = upload_blobs(t, t->conn, err);
    if (!rc) {
        PQclear(store__pg_exec(s, t->conn, Q_COMMIT_LOCK, NULL, err));
        rc = t->conn->rc;
    }
    if (!rc)
        rc = store__pg_fetch_last_tid(s, t->conn, &last, err);
    /* never a tid at or before one acknowledged: a database behind the
     * store is refused (pg_history.c) */
    if (!rc && last < known)
        rc = store__pg_history_behind(s, known, last, 1, err);
    if (!rc)
        rc = choose_tid(t, last, err);
    if (!rc) {
        t->prev_tid = last;
        store__pg_feed_own_begin(s, t);
    }
    if (!rc)
        rc = write_rows(t, err);
    if (!rc)
        rc = after_rows(t, err);
    return rc ? rc : send_commit(t, t->tid, err);
}

int store__pg_commit_now(stpg_txn *t, zerr *err)
{
    if (t->s->bulk)
        return store__pg_bulk_write(t, err);
    int rc = commit_steps(t, err);
    if (!rc) {
        committed(t);
        refresh_size(t->s, t->conn);
    }
    store__pg_txn_release(t, 1);
    return rc;
}

/* ---- the committer thread --------------------------------------------------------------- */

void store__pg_rollback_later(stpg_store *s, stpg_conn *c)
{
    pthread_mutex_lock(&s->mu);
    if (!s->committer_running) {
        pthread_mutex_unlock(&s->mu);
        c->broken = 1;   /* closing the session rolls it back */
        store__pg_release(s, c);
        return;
    }
    c->next = s->rollbacks;
    s->rollbacks = c;
    pthread_cond_signal(&s->commit_wake);
    pthread_mutex_unlock(&s->mu);
}

/* Roll back the sessions of aborted transactions (s->mu held on entry and
 * exit, released meanwhile). */
static void rollbacks(stpg_store *s)
{
    while (s->rollbacks) {
        stpg_conn *c = s->rollbacks;
        s->rollbacks = c->next;
        pthread_mutex_unlock(&s->mu);
        if (store__pg_command(s, c, "ROLLBACK", NULL))
            c->broken = 1;
        store__pg_release(s, c);
        pthread_mutex_lock(&s->mu);
    }
}

static void *committer_main(void *arg)
{
    stpg_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->commit_head && !s->rollbacks && !s->stopping)
            pthread_cond_wait(&s->commit_wake, &s->mu);
        rollbacks(s);
        stpg_txn *t = s->commit_head;
        if (!t) {
            if (s->stopping)
                break;
            continue;
        }
        s->commit_head = t->next_commit;
        if (!s->commit_head)
            s->commit_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        zerr e = {0};
        int rc = store__pg_commit_now(t, &e);
        if (rc)
            t->q.state = TXN_ABORTED;
        /* the callback, in the feed's order (with a standby, once it shows
         * the commit, on another thread); the caller may free t then */
        store__pg_standby_publish(s, t, rc, rc ? &e : NULL);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store__pg_committer_start(stpg_store *s, zerr *err)
{
    if (pthread_create(&s->committer, NULL, committer_main, s))
        return zerr_set(err, ZE_NOMEM, "cannot start the committer thread");
    s->committer_running = 1;
    return 0;
}

void store__pg_committer_stop(stpg_store *s)
{
    if (!s->committer_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->commit_wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->committer, NULL);
    store__pg_standby_drain(s);   /* every callback has run */
    pthread_mutex_lock(&s->mu);
    s->committer_running = 0;
    rollbacks(s);
    pthread_mutex_unlock(&s->mu);
}

int store__pg_txn_commit(store_txn *tt, uint64_t *tid, store_commit_cb cb, void *ud, zerr *err)
{
    stpg_txn *t = tx(tt);
    stpg_store *s = t->s;
    if (t->q.state != TXN_VOTED)
        return zerr_set(err, ZE_TXN, "commit of a transaction that has not voted");
    if (!s->committer_running)
        return zerr_set(err, ZE_READONLY, "PostgreSQL (%s) is open read-only", s->shown);
    /* the tid is chosen when the commit runs: cb gives it */
    if (tid)
        *tid = t->q.explicit_tid ? t->tid : 0;
    t->q.state = TXN_COMMITTING;
    t->cb = cb;
    t->ud = ud;
    t->next_commit = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->commit_tail)
        s->commit_tail->next_commit = t;
    else
        s->commit_head = t;
    s->commit_tail = t;
    pthread_cond_signal(&s->commit_wake);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int store__pg_txn_finish(store_txn *tt, uint64_t *tid, zerr *err)
{
    stpg_txn *t = tx(tt);
    if (t->q.state != TXN_VOTED)
        return zerr_set(err, ZE_TXN, "commit of a transaction that has not voted");
    t->q.state = TXN_COMMITTING;
    t->cb = NULL;
    int rc = store__pg_commit_now(t, err);
    if (rc)
        t->q.state = TXN_ABORTED;
    store__pg_feed_own_end(t->s, t, rc, rc ? err : NULL);
    if (rc)
        return rc;
    if (tid)
        *tid = t->tid;
    return 0;
}

/* ---- bulk mode (import) ------------------------------------------------------------------ */

/* One database transaction for the whole import, so a failed import leaves
 * the database as it was. Records stream through one COPY; the transactions'
 * rows are kept as COPY data and sent between record streams; back-pointers
 * are resolved and older records hidden once at the end. */
typedef struct bulk_state {
    zbuf recs;              /* COPY data of records not sent yet */
    zbuf txns;              /* COPY data of transactions not sent yet */
    int copying;            /* the records COPY is open */
    uint64_t first_tid;     /* the last tid before the import */
    int hides;              /* a record with prev 0 was imported */
} bulk_state;

static bulk_state *bulk_of(stpg_store *s) { return (bulk_state *)s->bulk_state; }

static int bulk_copy_off(stpg_store *s, zerr *err)
{
    bulk_state *bs = bulk_of(s);
    if (!bs->copying)
        return 0;
    bs->copying = 0;
    int rc = stpg_copy_trailer(&bs->recs) ? nomem(err) : 0;
    if (!rc)
        rc = stpg_copy_send(s, s->bulk_conn, bs->recs.data, bs->recs.len, err);
    zbuf_reset(&bs->recs);
    int end = stpg_copy_end(s, s->bulk_conn, rc ? NULL : err);
    return rc ? rc : end;
}

static int bulk_copy_on(stpg_store *s, zerr *err)
{
    bulk_state *bs = bulk_of(s);
    if (bs->copying)
        return 0;
    int rc = stpg_copy_start(s, s->bulk_conn, copy_records_sql, err);
    if (!rc && stpg_copy_header(&bs->recs))
        rc = nomem(err);
    bs->copying = !rc;
    return rc;
}

static int bulk_flush_txns(stpg_store *s, zerr *err)
{
    bulk_state *bs = bulk_of(s);
    if (!bs->txns.len)
        return 0;
    zbuf b = ZBUF_INIT;
    int rc = bulk_copy_off(s, err);
    if (!rc)
        rc = stpg_copy_start(s, s->bulk_conn, copy_txns_sql, err);
    if (!rc && (stpg_copy_header(&b) || zbuf_append(&b, bs->txns.data, bs->txns.len) ||
                stpg_copy_trailer(&b)))
        rc = nomem(err);
    if (!rc)
        rc = stpg_copy_send(s, s->bulk_conn, b.data, b.len, err);
    if (!rc)
        rc = stpg_copy_end(s, s->bulk_conn, err);
    zbuf_free(&b);
    zbuf_reset(&bs->txns);
    return rc;
}

static int has_blob_files(const stpg_txn *t)
{
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (t->q.ops[i].blob && !(t->q.ops[i].state & OPF_DROPPED))
            return 1;
    return 0;
}

static int has_pending_backptrs(const stpg_txn *t)
{
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (store__pg_backptr_pending(&t->q.ops[i]))
            return 1;
    return 0;
}

/* Back-pointers are resolved before their transaction is written, against
 * what the import wrote so far (the records stream is ended first): a
 * missing target fails that transaction, not the import's transaction. */
static int bulk_backptrs(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    if (!has_pending_backptrs(t))
        return 0;
    int rc = bulk_copy_off(s, err);
    if (!rc)
        rc = store__pg_resolve_backptrs(t, s->bulk_conn, err);
    /* a missing target: nothing written, the import goes on; a statement
     * that failed ended the import's transaction */
    if (rc && s->bulk_conn->rc)
        s->bulk_failed = 1;
    return rc;
}

static int bulk_txn(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    bulk_state *bs = bulk_of(s);
    uint64_t size;
    int rc = choose_tid(t, s->bulk_last_tid, err);
    if (!rc)
        rc = bulk_backptrs(t, err);
    if (rc)
        return rc;
    /* from here a failure may leave part of the transaction written: it
     * fails the import */
    s->bulk_failed = 1;
    /* the blob chunks are statements of their own: between record streams */
    if (!rc && has_blob_files(t) && !(rc = bulk_copy_off(s, err)))
        rc = upload_blobs(t, s->bulk_conn, err);
    if (!rc)
        rc = bulk_copy_on(s, err);
    copier cp = {s, s->bulk_conn, &bs->recs, ZBUF_INIT, err};
    if (!rc)
        rc = copy_records(&cp, t, t->tid, &size);
    zbuf_free(&cp.scratch);
    if (!rc && txn_row_copy(&bs->txns, t, t->tid, size))
        rc = nomem(err);
    if (!rc && bs->txns.len >= COPY_FLUSH)
        rc = bulk_flush_txns(s, err);
    if (rc)
        return rc;
    s->bulk_failed = 0;
    txn_rec_it it = {0, 0};
    for (const txn_op *op; (op = store__txnq_next_rec(&t->q, &it));)
        bs->hides |= !!(op->rflags & STPG_RF_PREV_ZERO);
    s->bulk_last_tid = t->tid;
    if (t->n_written && t->max_oid > s->bulk_max_oid)
        s->bulk_max_oid = t->max_oid;
    s->stats.records += t->n_written;
    s->stats.transactions++;
    return 0;
}

int store__pg_bulk_write(stpg_txn *t, zerr *err)
{
    stpg_store *s = t->s;
    if (s->bulk_failed) {
        if (err)
            *err = s->bulk_err;
        return s->bulk_err.code;
    }
    int rc = bulk_txn(t, err);
    if (rc) {
        /* only a refused transaction leaves the import's transaction usable */
        if (s->bulk_failed || s->bulk_conn->broken) {
            s->bulk_failed = 1;
            zerr_set(&s->bulk_err, rc, "%s", err ? err->msg : "bulk import failed");
        }
        return rc;
    }
    /* a staged file is uploaded: the cache gets it only once committed */
    for (size_t i = 0; i < t->q.n_ops; i++)
        if (t->q.ops[i].blob) {
            store__pg_blob_discard_queued(s, t->q.ops[i].blob,
                                          !!(t->q.ops[i].state & OPF_BLOB_LINKED));
            free(t->q.ops[i].blob);
            t->q.ops[i].blob = NULL;
        }
    t->q.state = TXN_DONE;
    return 0;
}

int store__pg_bulk_begin(store *ss, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "PostgreSQL (%s) is open read-only", s->shown);
    if (s->bulk)
        return zerr_set(err, ZE_TXN, "bulk mode is on already");
    if (s->opt.shared)
        return zerr_set(err, ZE_BUSY, "a bulk import takes PostgreSQL (%s) alone: open the "
                        "store without shared", s->shown);
    bulk_state *bs = calloc(1, sizeof *bs);
    if (!bs)
        return nomem(err);
    int rc = store__pg_connect(s, STPG_OWN, &s->bulk_conn, err);
    if (!rc)
        rc = store__pg_command(s, s->bulk_conn, "BEGIN", err);
    if (!rc)
        rc = store__pg_fetch_last_tid(s, s->bulk_conn, &bs->first_tid, err);
    if (rc) {
        store__pg_disconnect(s->bulk_conn);
        s->bulk_conn = NULL;
        free(bs);
        return rc;
    }
    s->bulk_state = bs;
    s->bulk_last_tid = bs->first_tid;
    s->bulk_max_oid = 0;
    s->bulk_failed = 0;
    zerr_clear(&s->bulk_err);
    s->bulk = 1;
    return 0;
}

static int exec_count(stpg_store *s, const char *sql, const stpg_params *p, long long *n,
                      zerr *err)
{
    PGresult *r = store__pg_query(s, s->bulk_conn, sql, p, err);
    if (!r)
        return s->bulk_conn->rc;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int bulk_finish(stpg_store *s, long long *objects, zerr *err)
{
    bulk_state *bs = bulk_of(s);
    long long n;
    stpg_params p = {0};
    int rc = bulk_copy_off(s, err);
    if (!rc)
        rc = bulk_flush_txns(s, err);
    stpg_p_id(&p, bs->first_tid);
    if (!rc && bs->hides)
        rc = exec_count(s, "UPDATE zeolite.records o SET flags = o.flags | 2 "
                        "FROM zeolite.records p WHERE p.tid > $1::bigint AND p.flags & 1 <> 0 "
                        "AND o.oid = p.oid AND o.tid < p.tid AND o.flags & 2 = 0", &p, &n, err);
    stpg_params q = {0};
    stpg_p_id(&q, store__pg_oid_after(s->bulk_max_oid));
    if (!rc && s->bulk_max_oid)
        rc = exec_count(s, "UPDATE zeolite.meta SET value = $1::bigint WHERE name = 'next_oid' "
                        "AND value < $1::bigint", &q, &n, err);
    if (!rc) {
        PGresult *r = store__pg_query(s, s->bulk_conn, "UPDATE zeolite.meta SET value = "
                                      "(SELECT count(*) FROM (SELECT DISTINCT oid FROM "
                                      "zeolite.records) x) WHERE name = 'objects' "
                                      "RETURNING value", NULL, err);
        rc = s->bulk_conn->rc;
        if (r && PQntuples(r) == 1)
            *objects = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    return rc;
}

static int bulk_stop(stpg_store *s, int commit, zerr *err)
{
    if (!s->bulk)
        return zerr_set(err, ZE_TXN, "bulk mode is not on");
    long long objects = -1;
    int rc = s->bulk_failed ? zerr_set(err, s->bulk_err.code, "%s", s->bulk_err.msg) : 0;
    if (!rc && !commit)
        rc = zerr_set(err, ZE_TXN, "the bulk import was abandoned: nothing of it is kept");
    if (!rc)
        rc = bulk_finish(s, &objects, err);
    if (!rc)
        rc = store__pg_command(s, s->bulk_conn, "COMMIT", err);
    if (rc && !s->bulk_conn->broken) {
        if (bulk_of(s)->copying)
            stpg_copy_abort(s, s->bulk_conn);
        store__pg_command(s, s->bulk_conn, "ROLLBACK", NULL);
    }
    if (!rc) {
        store__pg_standby_wait(s, s->bulk_last_tid);
        store__pg_note_tid(s, s->bulk_last_tid);
        if (s->bulk_max_oid)
            store__pg_oids_seen(s, store__pg_oid_after(s->bulk_max_oid));
        pthread_mutex_lock(&s->mu);
        if (objects >= 0)
            s->stats_objects = (uint64_t)objects;
        s->size_at = 0;
        pthread_mutex_unlock(&s->mu);
        refresh_size(s, s->bulk_conn);
    }
    bulk_state *bs = bulk_of(s);
    zbuf_free(&bs->recs);
    zbuf_free(&bs->txns);
    free(bs);
    s->bulk_state = NULL;
    store__pg_disconnect(s->bulk_conn);
    s->bulk_conn = NULL;
    s->bulk = 0;
    return rc;
}

int store__pg_bulk_end(store *s, zerr *err) { return bulk_stop(stpg_of(s), 1, err); }

int store__pg_bulk_abort(store *s, zerr *err)
{
    zerr ignored;
    bulk_stop(stpg_of(s), 0, &ignored);   /* what failed was told already */
    zerr_clear(err);
    return 0;
}
