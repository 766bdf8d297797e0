/* ops.c: the operations of each workload, as callback chains on the loop. */
#include "bench_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void next_op(bclient *bc, bslot *s);

/* ---- loads ------------------------------------------------------------------- */

static void on_load(zcl_client *c, int status, const zcl_rev *rev, const zerr *err,
                    void *data)
{
    bslot *s = data;
    zb_op_end(s->bc, status, s->t0, status == 0 ? rev->len : 0);
    next_op(s->bc, s);
}

static uint64_t pick_load_oid(bclient *bc)
{
    bench *b = bc->b;
    if (b->o->workload == ZB_LARGE)
        return bc->oids[0];
    if (b->o->workload != ZB_COLD)
        return b->pool[zb_rand(bc) % b->npool];
    if (bc->walk == b->npool) {
        /* Walked the whole pool: start cold again in a new order. */
        zcl_cache_clear(bc->c);
        for (size_t i = b->npool - 1; i > 0; i--) {
            size_t j = zb_rand(bc) % (i + 1);
            uint32_t t = bc->order[i];
            bc->order[i] = bc->order[j];
            bc->order[j] = t;
        }
        bc->walk = 0;
    }
    return b->pool[bc->order[bc->walk++]];
}

static void issue_load(bclient *bc, bslot *s)
{
    zcl_rev hit;
    for (;;) {
        zb_op_begin(bc);
        s->t0 = uv_hrtime();
        int rc = zcl_load_before(bc->c, pick_load_oid(bc), ZCL_MAXTID, &hit, on_load, s);
        if (rc == 0)
            return;
        if (rc == 1 && bc->b->o->workload == ZB_COLD)
            /* Cached by a load still in flight when the cache was emptied:
             * not a cold load, so not an op. */
            zb_op_cancel(bc);
        else
            zb_op_end(bc, rc < 0 ? rc : 0, s->t0, rc == 1 ? hit.len : 0);
        /* A cache hit completes at once: go on without recursing. */
        if (rc < 0 || bc->b->stopping || bc->dead)
            return;
    }
}

/* ---- commits ----------------------------------------------------------------- */

static void commit_over(bclient *bc, bslot *s, int status, uint64_t bytes)
{
    bc->committing = 0;
    zb_op_end(bc, status, s->t0, bytes);
    next_op(bc, s);
}

static void on_blob_read(zcl_client *c, int status, void *data)
{
    bslot *s = data;
    bclient *bc = s->bc;
    char *path = zcl_blob_path(c, bc->oids[0], bc->serials[0]);
    if (path)
        unlink(path); /* so that the next read downloads again */
    free(path);
    zb_op_end(bc, status, s->t0, status == 0 ? bc->b->object_size : 0);
    next_op(bc, s);
}

static void on_finish(zcl_client *c, int status, uint64_t tid, const zerr *err, void *data)
{
    bslot *s = data;
    bclient *bc = s->bc;
    if (bc->b->o->workload == ZB_LAG)
        zb_lag_finished(bc->b, status, tid);
    if (status == 0) {
        for (size_t i = 0; i < bc->nobj; i++)
            bc->serials[i] = tid;
        bc->phase = 1;
        bc->seq++;
    }
    commit_over(bc, s, status, status == 0 ? bc->nobj * bc->b->object_size : 0);
}

/* Take the serials the server reported, so that the retry can succeed. */
static void learn_serials(bclient *bc, const zcl_vote_result *res)
{
    for (size_t k = 0; res && k < res->nconflicts; k++)
        for (size_t i = 0; i < bc->nobj; i++)
            if (bc->oids[i] == res->conflicts[k].oid && res->conflicts[k].committed)
                bc->serials[i] = res->conflicts[k].committed;
}

static void abort_after(bclient *bc, bslot *s, int status)
{
    /* The op ends now; the abort's reply only frees the connection. */
    bc->committing = 0;
    zb_op_end(bc, status, s->t0, 0);
    if (zcl_tpc_abort(bc->c, NULL, NULL) < 0)
        bc->dead = 1;
    next_op(bc, s);
}

static void on_vote(zcl_client *c, int status, const zcl_vote_result *res, const zerr *err,
                    void *data)
{
    bslot *s = data;
    bclient *bc = s->bc;
    if (status == 0) {
        int lag = bc->b->o->workload == ZB_LAG;
        if (lag)
            zb_lag_finishing(bc->b);
        status = zcl_tpc_finish(c, on_finish, s);
        if (status == 0)
            return;
        if (lag)
            zb_lag_finished(bc->b, status, 0);
    }
    if (status == ZE_CONFLICT)
        learn_serials(bc, res);
    abort_after(bc, s, status);
}

static int send_stores(bclient *bc)
{
    bench *b = bc->b;
    int rc = 0;
    zerr err;
    for (size_t i = 0; rc == 0 && i < bc->nobj; i++) {
        const zbuf *rec = b->o->workload == ZB_COUNTER ? &bc->recs[i] : &bc->rec;
        if (b->o->workload == ZB_BLOB)
            rc = zcl_store_blob(bc->c, bc->oids[i], bc->serials[i], rec->data, rec->len,
                                b->blob_src, &err);
        else
            rc = zcl_store(bc->c, bc->oids[i], bc->serials[i], rec->data, rec->len);
    }
    return rc;
}

/* Store the records and vote; the op has begun. */
static void send_commit(bclient *bc, bslot *s)
{
    int rc = zcl_tpc_begin(bc->c, "zeolite bench", "", NULL);
    if (rc == 0)
        rc = send_stores(bc);
    if (rc == 0)
        rc = zcl_tpc_vote(bc->c, on_vote, s);
    if (rc < 0) {
        if (zcl_in_transaction(bc->c))
            abort_after(bc, s, rc);
        else
            commit_over(bc, s, rc, 0);
    }
}

static void issue_commit(bclient *bc, bslot *s)
{
    zb_op_begin(bc);
    s->t0 = uv_hrtime();
    bc->committing = 1;
    send_commit(bc, s);
}

/* ---- counter: load both shared objects, then commit their change -------------- */

static void counter_next(bclient *bc, bslot *s);

static int counter_keep(bclient *bc, const zcl_rev *rev)
{
    bc->serials[bc->step] = rev->start;
    return zbuf_set(&bc->loaded[bc->step++], rev->data, rev->len);
}

static void on_counter_load(zcl_client *c, int status, const zcl_rev *rev, const zerr *err,
                            void *data)
{
    bslot *s = data;
    if (status == 0)
        status = counter_keep(s->bc, rev);
    if (status < 0)
        commit_over(s->bc, s, status, 0);
    else
        counter_next(s->bc, s);
}

/* The next load (a cache hit goes on at once), then the commit. */
static void counter_next(bclient *bc, bslot *s)
{
    while (bc->step < 2) {
        zcl_rev hit;
        int rc = zcl_load_before(bc->c, bc->oids[bc->step], ZCL_MAXTID, &hit, on_counter_load, s);
        if (rc == 0)
            return;
        if (rc == 1)
            rc = counter_keep(bc, &hit);
        if (rc < 0) {
            commit_over(bc, s, rc, 0);
            return;
        }
    }
    zerr err;
    int rc = zb_counter_change(bc, &err);
    if (rc < 0)
        commit_over(bc, s, rc, 0);
    else
        send_commit(bc, s);
}

static void issue_counter(bclient *bc, bslot *s)
{
    zb_op_begin(bc);
    s->t0 = uv_hrtime();
    bc->committing = 1;
    bc->step = 0;
    counter_next(bc, s);
}

/* ---- scheduling -------------------------------------------------------------- */

static void issue_read_back(bclient *bc, bslot *s)
{
    bc->phase = 0;
    if (bc->b->o->workload == ZB_LARGE) {
        issue_load(bc, s);
        return;
    }
    zb_op_begin(bc);
    s->t0 = uv_hrtime();
    int rc = zcl_load_blob(bc->c, bc->oids[0], bc->serials[0], on_blob_read, s);
    if (rc < 0) {
        bc->dead = 1;
        zb_op_end(bc, rc, s->t0, 0);
    }
}

static void next_op(bclient *bc, bslot *s)
{
    if (bc->b->stopping || bc->dead)
        return;
    switch (bc->b->o->workload) {
    case ZB_LOAD:
    case ZB_COLD:
        issue_load(bc, s);
        break;
    case ZB_COMMIT:
    case ZB_CONFLICT:
        issue_commit(bc, s);
        break;
    case ZB_LAG:
        if (bc->id == 0 && !zb_lag_pace(bc)) /* the others watch */
            issue_commit(bc, s);
        break;
    case ZB_COUNTER:
        issue_counter(bc, s);
        break;
    case ZB_MIXED:
        if (!bc->committing && zb_rand(bc) % 100 < 5)
            issue_commit(bc, s);
        else
            issue_load(bc, s);
        break;
    case ZB_LARGE:
    case ZB_BLOB:
        if (bc->phase)
            issue_read_back(bc, s);
        else
            issue_commit(bc, s);
        break;
    }
}

void zb_client_start(bclient *bc)
{
    int slots = bc->b->o->workload == ZB_LOAD || bc->b->o->workload == ZB_COLD ||
                        bc->b->o->workload == ZB_MIXED
                    ? bc->b->o->in_flight
                    : 1;
    for (int i = 0; i < slots; i++)
        next_op(bc, &bc->slots[i]);
}
