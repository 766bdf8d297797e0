/* iter.c: the transaction iterator calls (spec section 7.26).
 *
 * Iterators belong to their connection and die with it. They keep no store
 * snapshot between calls (store_iter_open_resumable), so however many are
 * open, votes find their reader slots. What each keeps (a transaction's oid
 * list) is bounded by a cap per connection, ITER_MAX, and one for the whole
 * server, max-iterators; past either, iterator_start fails for that client
 * alone. An iterator lists what was committed by the snapshot its start
 * was served at.
 *
 * Off the loop, a job owns the iterator it uses (busy) until it ends: a
 * call on a busy iterator waits for it (zsrv__wait_job), and one forgotten
 * while busy (iterator_gc, a closed connection) is freed by its job. */
#include "server/server_int.h"

#include <stdlib.h>

#define ITER_MAX 64

static void iter_free(zsrv_conn *c, zsrv_iter *i)
{
    store_iter_close(i->it);
    free(i);
    c->srv->n_iters--;
}

/* Free i, or leave it to the job using it. */
static void iter_forget(zsrv_conn *c, zsrv_iter *i)
{
    for (zsrv_iter **pp = &c->iters; *pp; pp = &(*pp)->next) {
        if (*pp != i)
            continue;
        if (i->busy) {
            i->dead = 1;
            return;
        }
        *pp = i->next;
        iter_free(c, i);
        return;
    }
}

void zsrv__iters_free(zsrv_conn *c)
{
    for (zsrv_iter *i = c->iters, *next; i; i = next) {
        next = i->next;
        iter_forget(c, i);
    }
}

static void iter_remove(zsrv_conn *c, int64_t id)
{
    for (zsrv_iter *i = c->iters; i; i = i->next) {
        if (i->id == id && !i->dead) {
            iter_forget(c, i);
            return;
        }
    }
}

static int key_error(zsrv_call *call, size_t arg)
{
    if (proto_exc_key(&call->exc, call->a, call->argv[arg]) < 0)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return zerr_set(&call->err, ZE_INVAL, "no such iterator");
}

/* The iterator the call names; NULL with call->err set, or with *wait set
 * when a job uses it. */
static zsrv_iter *iter_find(zsrv_call *call, size_t arg, int is_record, int *wait)
{
    int64_t id;
    *wait = 0;
    if (proto_arg_int(call->args, arg, &id, &call->err) < 0)
        return NULL;
    for (zsrv_iter *i = call->c->iters; i; i = i->next) {
        if (i->id != id || i->is_record != is_record || i->dead)
            continue;
        *wait = i->busy;
        return i->busy ? NULL : i;
    }
    key_error(call, arg);
    return NULL;
}

/* The job's iterator is the loop's again (its end, on the loop). */
static void iter_back(zsrv_call *call, zsrv_iter *i)
{
    i->busy = 0;
    if (i->dead)
        iter_forget(call->c, i);
}

/* Register a new iterator, busy until its job has opened it. */
static zsrv_iter *iter_add(zsrv_call *call, int is_record)
{
    zsrv_conn *c = call->c;
    size_t n = 0;
    for (zsrv_iter *i = c->iters; i; i = i->next)
        n += !i->dead;
    if (n >= ITER_MAX) {
        zerr_set(&call->err, ZE_INVAL, "too many open iterators (%d)", ITER_MAX);
        return NULL;
    }
    size_t cap = c->srv->cfg->max_iterators;
    if (c->srv->n_iters >= cap) {
        zerr_set(&call->err, ZE_BUSY, "the server has %zu iterators open (max-iterators): "
                 "close some (iterator_gc) and start again", cap);
        return NULL;
    }
    zsrv_iter *i = calloc(1, sizeof *i);
    if (!i) {
        zerr_set(&call->err, ZE_NOMEM, "out of memory");
        return NULL;
    }
    c->srv->n_iters++;
    i->id = c->next_iter_id++;
    i->is_record = is_record;
    i->busy = 1;
    i->next = c->iters;
    c->iters = i;
    return i;
}

typedef struct iter_ctx {
    zsrv_iter *i;
    uint64_t start, stop;
    int end;                       /* the body found the end */
} iter_ctx;

/* Open i's store iterator over [start, stop], as of the call's snapshot. */
static int iter_open(zsrv_call *call, zsrv_iter *i, uint64_t start, uint64_t stop)
{
    uint64_t v = call->visible;
    if (!v)
        return 0;   /* nothing committed: an empty iterator */
    if (!stop || stop > v)
        stop = v;
    return store_iter_open_resumable(call->st->st, start, stop, &i->it, &call->err);
}

/* After a body that opened an iterator: it is the loop's; a failed open
 * forgets it. */
static void opened(zsrv_call *call, int rc)
{
    iter_ctx *x = call->ctx;
    if (rc < 0)
        x->i->dead = 1;
    iter_back(call, x->i);
}

/* After a body that moved an iterator: one at its end is forgotten. */
static void moved(zsrv_call *call, int rc)
{
    iter_ctx *x = call->ctx;
    if (x->end)
        x->i->dead = 1;
    iter_back(call, x->i);
}

/* The iterator is exhausted: answer None, as ZEO does (it is forgotten
 * once the body is over: `moved`). */
static int reply_end(zsrv_call *call, iter_ctx *x)
{
    x->end = 1;
    return zsrv__reply(call, zv_none(call->a));
}

/* Reply with tuple t, unless allocating it or one of its items failed. */
static int reply_tuple(zsrv_call *call, zv *t)
{
    for (size_t k = 0; t && k < t->u.seq.n; k++)
        if (!t->u.seq.items[k])
            t = NULL;
    return t ? zsrv__reply(call, t) : zerr_set(&call->err, ZE_NOMEM, "out of memory");
}

static int start_body(zsrv_call *call)
{
    iter_ctx *x = call->ctx;
    int rc = iter_open(call, x->i, x->start, x->stop);
    return rc < 0 ? rc : zsrv__reply(call, zv_int(call->a, x->i->id));
}

int zsrv__m_iterator_start(zsrv_call *call)
{
    iter_ctx x = {0};
    int has_start, has_stop, rc;
    if ((rc = proto_arg_optional_tid(call->args, 0, &x.start, &has_start, &call->err)) < 0 ||
        (rc = proto_arg_optional_tid(call->args, 1, &x.stop, &has_stop, &call->err)) < 0)
        return rc;
    if (!(x.i = iter_add(call, 0)))
        return call->err.code;
    return zsrv__offload(call, ZSRV_LANE_READ, start_body, opened, &x, sizeof x);
}

static int next_body(zsrv_call *call)
{
    iter_ctx *x = call->ctx;
    zsrv_iter *i = x->i;
    store_txn_info info;
    int rc = i->it ? store_iter_next_txn(i->it, &info, &call->err) : 0;
    if (rc < 0)
        return rc;
    if (rc == 0)
        return reply_end(call, x);
    zv_arena *a = call->a;
    i->last_tid = info.tid;
    i->has_last = 1;
    zv *ext = NULL;
    zerr err = {0};
    if (proto_extension_decode(info.extension.p, info.extension.len, a, &ext, &err) < 0)
        ext = zv_dict(a, 0);   /* unreadable extension: still iterate */
    char status = info.status;
    zv *t = zv_tuple(a, 5);
    if (t) {
        zv **it = t->u.seq.items;
        it[0] = zv_oid(a, info.tid);
        it[1] = zv_str(a, &status, 1);
        it[2] = zv_bytes(a, info.user.p, info.user.len);
        it[3] = zv_bytes(a, info.description.p, info.description.len);
        it[4] = ext;
    }
    return reply_tuple(call, t);
}

/* Take the iterator the call names for a body (busy until `moved`). */
static int take(zsrv_call *call, int is_record, iter_ctx *x)
{
    int wait;
    if (!(x->i = iter_find(call, 0, is_record, &wait)))
        return wait ? zsrv__wait_job(call) : call->err.code;
    x->i->busy = 1;
    return 0;
}

int zsrv__m_iterator_next(zsrv_call *call)
{
    iter_ctx x = {0};
    int rc = take(call, 0, &x);
    return rc ? rc : zsrv__offload(call, ZSRV_LANE_READ, next_body, moved, &x, sizeof x);
}

static int record_start_body(zsrv_call *call)
{
    iter_ctx *x = call->ctx;
    int rc = iter_open(call, x->i, x->start, x->start);
    store_txn_info info;
    if (rc == 0 && (rc = x->i->it ? store_iter_next_txn(x->i->it, &info, &call->err) : 0) == 0)
        rc = zerr_set(&call->err, ZE_NOTFOUND, "transaction vanished");
    return rc < 0 ? rc : zsrv__reply(call, zv_int(call->a, x->i->id));
}

int zsrv__m_iterator_record_start(zsrv_call *call)
{
    iter_ctx x = {0};
    int wait, rc;
    zsrv_iter *txi = iter_find(call, 0, 0, &wait);
    if (!txi)
        return wait ? zsrv__wait_job(call) : call->err.code;
    if ((rc = proto_arg_tid(call->args, 1, &x.start, &call->err)) < 0)
        return rc;
    if (!txi->has_last || txi->last_tid != x.start) {
        zerr_set(&call->err, ZE_INVAL, "Out-of-order request for records of %016llx",
                 (unsigned long long)x.start);
        return zsrv__fail_as(call, PROTO_EXC_EXCEPTION);
    }
    if (!(x.i = iter_add(call, 1)))
        return call->err.code;
    return zsrv__offload(call, ZSRV_LANE_READ, record_start_body, opened, &x, sizeof x);
}

static int record_next_body(zsrv_call *call)
{
    iter_ctx *x = call->ctx;
    store_record rec;
    int rc = x->i->it ? store_iter_next_record(x->i->it, &rec, &call->err) : 0;
    if (rc < 0)
        return rc;
    if (rc == 0)
        return reply_end(call, x);
    zv_arena *a = call->a;
    zv *t = zv_tuple(a, 4);
    if (t) {
        zv **it = t->u.seq.items;
        int has_data =
            rec.kind == STORE_REC_DATA || (rec.kind == STORE_REC_BACKPTR && rec.data.len);
        it[0] = zv_oid(a, rec.oid);
        it[1] = zv_oid(a, rec.tid);
        it[2] = has_data ? zv_bytes(a, rec.data.p, rec.data.len) : zv_none(a);
        it[3] = rec.kind == STORE_REC_BACKPTR ? zv_oid(a, rec.back_tid) : zv_none(a);
    }
    return reply_tuple(call, t);
}

int zsrv__m_iterator_record_next(zsrv_call *call)
{
    iter_ctx x = {0};
    int rc = take(call, 1, &x);
    return rc ? rc : zsrv__offload(call, ZSRV_LANE_READ, record_next_body, moved, &x, sizeof x);
}

int zsrv__m_iterator_gc(zsrv_call *call)
{
    const zv *ids;
    int rc = proto_arg_seq(call->args, 0, &ids, &call->err);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < ids->u.seq.n; k++) {
        int64_t id;
        if (zv_get_int(ids->u.seq.items[k], &id))
            iter_remove(call->c, id);
    }
    return zsrv__reply(call, zv_none(call->a));
}
