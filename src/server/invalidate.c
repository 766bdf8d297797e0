/* invalidate.c: invalidateTransaction fan-out and getInvalidations.
 *
 * The invalidation queue keeps only the tids of the newest committed
 * transactions: the oids they changed are read back from the store when a
 * reconnecting client asks (store_changes_since), so the queue costs 8 bytes
 * a transaction. As ZEO does, the queue is seeded at start-up from the
 * newest committed transactions, which lets clients reconnecting after a
 * restart verify quickly. */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/zarray.h"
#include "common/ztid.h"

typedef struct seed {
    uint64_t *tids;   /* newest first */
    size_t n, cap;
} seed;

static int seed_tid(const store_txn_info *info, void *ud)
{
    seed *sd = ud;
    if (sd->n < sd->cap)
        sd->tids[sd->n++] = info->tid;
    return 0;
}

int zsrv__invq_init(zsrv_storage *st, size_t cap, zerr *err)
{
    st->invq_cap = cap ? cap : 1;
    st->invq = calloc(st->invq_cap, sizeof *st->invq);
    if (!st->invq)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    /* The newest transactions, as FileStorage's lastInvalidations gives
     * them, so clients that reconnect after a restart verify quickly. The
     * undo log stops at packed transactions; the last tid is always there. */
    seed sd = {.tids = calloc(st->invq_cap, sizeof(uint64_t)), .cap = st->invq_cap};
    if (sd.tids && st->invq_cap <= INT32_MAX)
        store_undo_log(st->rd, 0, -(int)st->invq_cap, NULL, NULL, seed_tid, &sd, NULL);
    uint64_t last = store_reader_last_tid(st->rd);
    if (last && (!sd.n || sd.tids[0] != last))
        zsrv__invq_push(st, last);
    else
        for (size_t i = sd.n; i > 0; i--)
            zsrv__invq_push(st, sd.tids[i - 1]);
    free(sd.tids);
    return 0;
}

void zsrv__invq_free(zsrv_storage *st)
{
    free(st->invq);
    st->invq = NULL;
    st->invq_len = st->invq_head = 0;
}

void zsrv__invq_push(zsrv_storage *st, uint64_t tid)
{
    if (!st->invq)
        return;
    size_t pos = (st->invq_head + st->invq_len) % st->invq_cap;
    if (st->invq_len == st->invq_cap) {
        st->invq_head = (st->invq_head + 1) % st->invq_cap;
        pos = (st->invq_head + st->invq_len - 1) % st->invq_cap;
    } else {
        st->invq_len++;
    }
    st->invq[pos] = tid;
}

static uint64_t invq_oldest(const zsrv_storage *st)
{
    return st->invq[st->invq_head];
}

void zsrv__invalidate(zsrv_storage *st, zsrv_conn *skip, uint64_t tid, const uint64_t *oids,
                     size_t n)
{
    if (st->n_conns <= (skip ? 1u : 0u))
        return;
    zv_arena *a = zv_arena_new();
    zv *args = a ? zv_tuple(a, 2) : NULL;
    zv *list = a ? zv_list(a, n) : NULL;
    int ok = args && list && (args->u.seq.items[0] = zv_oid(a, tid));
    for (size_t i = 0; ok && i < n; i++)
        ok = (list->u.seq.items[i] = zv_oid(a, oids[i])) != NULL;
    if (!ok) {
        zsrv__log(ZSRV_LOG_CRITICAL, "out of memory sending invalidations: closing clients");
        for (zsrv_conn *c = st->conns, *next; c; c = next) {
            next = c->snext;
            if (c != skip)
                zsrv__conn_close(c, ZSRV_LOG_ERROR, "could not be sent an invalidation");
        }
        zv_arena_free(a);
        return;
    }
    args->u.seq.items[1] = list;
    /* Encode once per encoding, append the same bytes to every client. */
    zbuf enc[2] = {ZBUF_INIT, ZBUF_INIT};
    for (zsrv_conn *c = st->conns, *next; c; c = next) {
        next = c->snext;
        if (c == skip)
            continue;
        if (c->out.len + c->slot_bytes > ZSRV_OUT_MAX) {
            zsrv__conn_close(c, ZSRV_LOG_WARNING, "client does not read its invalidations");
            continue;
        }
        zbuf *b = &enc[c->enc == PROTO_MSGPACK];
        zerr err = {0};
        if (!b->len && proto_encode_async(c->enc, b, "invalidateTransaction", args, &err) < 0) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "cannot encode an invalidation");
            continue;
        }
        if (zbuf_append(zsrv__out_tail(c), b->data, b->len) < 0) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory for an invalidation");
            continue;
        }
        zsrv__slots_count(c);
        zsrv__conn_mark_dirty(c);
    }
    zbuf_free(&enc[0]);
    zbuf_free(&enc[1]);
    zv_arena_free(a);
}

/* ---- getInvalidations -------------------------------------------------- */

typedef struct oid_set {
    uint64_t *v;
    size_t n, cap;
    int nomem;
} oid_set;

static int collect_oid(uint64_t oid, void *ud)
{
    oid_set *s = ud;
    uint64_t *v = zarray_room(s->v, s->n, &s->cap, sizeof *v, 256);
    if (!v) {
        s->nomem = 1;
        return ZE_NOMEM;
    }
    s->v = v;
    s->v[s->n++] = oid;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int covered(zsrv_storage *st, uint64_t tid)
{
    if (st->invq_len && invq_oldest(st) <= tid)
        return 1;
    double age = st->srv->cfg->inv_age;
    if (age <= 0)
        return 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return ztid_time(tid) >= (double)tv.tv_sec + tv.tv_usec / 1e6 - age;
}

typedef struct inval_ctx {
    uint64_t tid, last;
} inval_ctx;

/* The oids changed after the client's tid: read from a reader that may be
 * newer than the snapshot (off the loop), they may name more than it holds,
 * which only makes the client drop more; the tid returned is the
 * snapshot's, whose invalidations the client has been sent. */
static int get_invalidations_body(zsrv_call *call)
{
    const inval_ctx *x = call->ctx;
    oid_set set = {0};
    int rc;
    if (x->tid < x->last) {
        uint64_t latest;
        rc = store_changes_since(call->rd, x->tid, &latest, collect_oid, &set, &call->err);
        if (rc < 0) {
            free(set.v);
            return set.nomem ? zerr_set(&call->err, ZE_NOMEM, "out of memory") : rc;
        }
    }
    if (set.n)
        qsort(set.v, set.n, sizeof *set.v, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < set.n; i++)
        if (!u || set.v[u - 1] != set.v[i])
            set.v[u++] = set.v[i];
    zv *res = zv_tuple(call->a, 2), *list = zv_list(call->a, u);
    int ok = res && list && (res->u.seq.items[0] = zv_oid(call->a, x->last));
    for (size_t i = 0; ok && i < u; i++)
        ok = (list->u.seq.items[i] = zv_oid(call->a, set.v[i])) != NULL;
    free(set.v);
    if (!ok)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    res->u.seq.items[1] = list;
    return zsrv__reply(call, res);
}

int zsrv__m_get_invalidations(zsrv_call *call)
{
    zsrv_storage *st = call->st;
    inval_ctx x;
    int rc = proto_arg_tid(call->args, 0, &x.tid, &call->err);
    if (rc < 0)
        return rc;
    x.last = st->visible;
    if (x.tid != x.last && !covered(st, x.tid))
        return zsrv__reply(call, zv_none(call->a));
    return zsrv__offload(call, ZSRV_LANE_READ, get_invalidations_body, NULL, &x, sizeof x);
}
