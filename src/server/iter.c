/* iter.c: the transaction iterator calls (spec section 7.26).
 *
 * Iterators belong to their connection and die with it. They keep no store
 * snapshot between calls (store_iter_open_resumable), so however many are
 * open, votes find their reader slots. What each keeps (a transaction's oid
 * list) is bounded by a cap per connection, ITER_MAX, and one for the whole
 * server, max-iterators; past either, iterator_start fails for that client
 * alone. */
#include "server/server_int.h"

#include <stdlib.h>

#define ITER_MAX 64

static void iter_free(zsrv_conn *c, zsrv_iter *i)
{
    store_iter_close(i->it);
    free(i);
    c->srv->n_iters--;
}

void zsrv__iters_free(zsrv_conn *c)
{
    while (c->iters) {
        zsrv_iter *i = c->iters;
        c->iters = i->next;
        iter_free(c, i);
    }
}

static void iter_remove(zsrv_conn *c, int64_t id)
{
    for (zsrv_iter **pp = &c->iters; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            zsrv_iter *i = *pp;
            *pp = i->next;
            iter_free(c, i);
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

static zsrv_iter *iter_find(zsrv_call *call, size_t arg, int is_record)
{
    int64_t id;
    if (proto_arg_int(call->args, arg, &id, &call->err) < 0)
        return NULL;
    for (zsrv_iter *i = call->c->iters; i; i = i->next)
        if (i->id == id && i->is_record == is_record)
            return i;
    key_error(call, arg);
    return NULL;
}

/* Open a store iterator over [start, stop] and register it. */
static zsrv_iter *iter_add(zsrv_call *call, uint64_t start, uint64_t stop, int is_record)
{
    zsrv_conn *c = call->c;
    size_t n = 0;
    for (zsrv_iter *i = c->iters; i; i = i->next)
        n++;
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
    if (store_iter_open_resumable(c->stor->st, start, stop, &i->it, &call->err) < 0) {
        free(i);
        return NULL;
    }
    c->srv->n_iters++;
    i->id = c->next_iter_id++;
    i->is_record = is_record;
    i->next = c->iters;
    c->iters = i;
    return i;
}

/* The iterator is exhausted: forget it and answer None, as ZEO does. */
static int reply_end(zsrv_call *call, zsrv_iter *i)
{
    iter_remove(call->c, i->id);
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

int zsrv__m_iterator_start(zsrv_call *call)
{
    uint64_t start = 0, stop = 0;
    int has_start, has_stop, rc;
    if ((rc = proto_arg_optional_tid(call->args, 0, &start, &has_start, &call->err)) < 0 ||
        (rc = proto_arg_optional_tid(call->args, 1, &stop, &has_stop, &call->err)) < 0)
        return rc;
    zsrv_iter *i = iter_add(call, start, stop, 0);
    if (!i)
        return call->err.code;
    return zsrv__reply(call, zv_int(call->a, i->id));
}

int zsrv__m_iterator_next(zsrv_call *call)
{
    zsrv_iter *i = iter_find(call, 0, 0);
    if (!i)
        return call->err.code;
    store_txn_info info;
    int rc = store_iter_next_txn(i->it, &info, &call->err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return reply_end(call, i);
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

int zsrv__m_iterator_record_start(zsrv_call *call)
{
    uint64_t tid;
    int rc;
    zsrv_iter *txi = iter_find(call, 0, 0);
    if (!txi)
        return call->err.code;
    if ((rc = proto_arg_tid(call->args, 1, &tid, &call->err)) < 0)
        return rc;
    if (!txi->has_last || txi->last_tid != tid) {
        zerr_set(&call->err, ZE_INVAL, "Out-of-order request for records of %016llx",
                 (unsigned long long)tid);
        return zsrv__fail_as(call, PROTO_EXC_EXCEPTION);
    }
    zsrv_iter *ri = iter_add(call, tid, tid, 1);
    if (!ri)
        return call->err.code;
    store_txn_info info;
    if ((rc = store_iter_next_txn(ri->it, &info, &call->err)) <= 0) {
        iter_remove(call->c, ri->id);
        return rc < 0 ? rc : zerr_set(&call->err, ZE_NOTFOUND, "transaction vanished");
    }
    return zsrv__reply(call, zv_int(call->a, ri->id));
}

int zsrv__m_iterator_record_next(zsrv_call *call)
{
    zsrv_iter *i = iter_find(call, 0, 1);
    if (!i)
        return call->err.code;
    store_record rec;
    int rc = store_iter_next_record(i->it, &rec, &call->err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return reply_end(call, i);
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
