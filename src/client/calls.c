/* calls.c: requests in flight. Msgids count up from 1; a pending call sits in
 * a power-of-two table at msgid & mask, so a reply finds it in O(1) whatever
 * order replies come back in. */
#include "client/client_int.h"

#include <stdlib.h>
#include <string.h>

#define PENDING_MIN 64

void zcl__pending_free(zcl_pending_table *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static int pending_grow(zcl_pending_table *t)
{
    size_t cap = t->slots ? (t->mask + 1) * 2 : PENDING_MIN;
    for (;;) {
        zcl_pending *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return ZE_NOMEM;
        int clash = 0;
        for (size_t i = 0; t->slots && i <= t->mask && !clash; i++) {
            zcl_pending *p = &t->slots[i];
            if (!p->msgid)
                continue;
            zcl_pending *q = &slots[(size_t)p->msgid & (cap - 1)];
            if (q->msgid)
                clash = 1;
            else
                *q = *p;
        }
        if (!clash) {
            free(t->slots);
            t->slots = slots;
            t->mask = cap - 1;
            return 0;
        }
        free(slots);
        cap *= 2;
    }
}

/* A free slot for the next msgid; the table grows past a long-pending call. */
static zcl_pending *pending_alloc(zcl_pending_table *t)
{
    if (!t->next_id)
        t->next_id = 1;
    for (;;) {
        if (t->slots && t->count <= t->mask / 2) {
            zcl_pending *p = &t->slots[(size_t)t->next_id & t->mask];
            if (!p->msgid) {
                memset(p, 0, sizeof *p);
                p->msgid = t->next_id++;
                t->count++;
                return p;
            }
        }
        if (pending_grow(t) < 0)
            return NULL;
    }
}

static zcl_pending *pending_find(zcl_pending_table *t, int64_t msgid)
{
    if (!t->slots || msgid <= 0)
        return NULL;
    zcl_pending *p = &t->slots[(size_t)msgid & t->mask];
    return p->msgid == msgid ? p : NULL;
}

int zcl__send_call(zcl_client *c, const char *method, const zv *args, zcl_handler h,
                   void *cb, void *data, uint64_t oid, uint64_t tid)
{
    zcl_pending *p = pending_alloc(&c->pend);
    if (!p)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    zv id = {.type = ZV_INT, .u.i = p->msgid};
    int rc = proto_encode_call(c->enc, &c->out, &id, 0, method, args, &c->err);
    if (rc < 0) {
        p->msgid = 0;
        c->pend.count--;
        return rc;
    }
    p->handler = h;
    p->cb = cb;
    p->data = data;
    p->oid = oid;
    p->tid = tid;
    zcl__conn_want_flush(c);
    return 0;
}

/* An error reply's args: (class_path, payload). */
static int parse_exception(const zv *v, const zv **payload, zerr *err)
{
    *payload = NULL;
    if (!v || !zv_is_seq(v) || v->u.seq.n != 2 || v->u.seq.items[0]->type != ZV_STR)
        return zerr_set(err, ZE_PROTO, "malformed error reply from server");
    const zv *cls = v->u.seq.items[0];
    char name[200];
    size_t n = cls->u.s.len < sizeof name - 1 ? cls->u.s.len : sizeof name - 1;
    memcpy(name, cls->u.s.p, n);
    name[n] = '\0';
    *payload = v->u.seq.items[1];
    char *repr = NULL;
    zv_repr_max(*payload, ZERR_MSG_MAX, &repr);
    int code = proto_exc_code(name);
    zerr_set(err, code, "%s%s", name, repr ? repr : "");
    free(repr);
    return code;
}

void zcl__on_reply(zcl_client *c, const proto_msg *m)
{
    int64_t id;
    zcl_pending *p = zv_get_int(m->msgid, &id) ? pending_find(&c->pend, id) : NULL;
    if (!p) {
        /* Nobody asked: the stream can no longer be trusted. */
        zcl__conn_lost(c, ZE_PROTO, "reply to an unknown msgid");
        return;
    }
    zcl_pending call = *p;
    p->msgid = 0;
    c->pend.count--;
    if (m->flag == 0) {
        call.handler(c, &call, 0, m->args, NULL);
        return;
    }
    zerr e;
    const zv *payload;
    int code = parse_exception(m->args, &payload, &e);
    call.handler(c, &call, code, payload, &e);
}

void zcl__fail_pending(zcl_client *c, int status, const zerr *err)
{
    zcl_pending_table *t = &c->pend;
    /* Oldest first, so callers see failures in the order they asked. */
    while (t->count) {
        zcl_pending *oldest = NULL;
        for (size_t i = 0; i <= t->mask; i++) {
            zcl_pending *p = &t->slots[i];
            if (p->msgid && (!oldest || p->msgid < oldest->msgid))
                oldest = p;
        }
        if (!oldest)
            break;
        zcl_pending call = *oldest;
        oldest->msgid = 0;
        t->count--;
        call.handler(c, &call, status, NULL, err);
    }
}

/* ---- the public generic calls ---------------------------------------------- */

static void generic_handler(zcl_client *c, zcl_pending *p, int status, const zv *result,
                            const zerr *err)
{
    zcl_reply_cb cb = (zcl_reply_cb)p->cb;
    if (cb)
        cb(c, status, result, err, p->data);
}

int zcl_call(zcl_client *c, const char *method, const zv *args, zcl_reply_cb cb, void *data)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    return zcl__send_call(c, method, args, generic_handler, (void *)cb, data, 0, 0);
}

int zcl_call_async(zcl_client *c, const char *method, const zv *args)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    zv zero = {.type = ZV_INT, .u.i = 0};
    int rc = proto_encode_call(c->enc, &c->out, &zero, 1, method, args, &c->err);
    if (rc == 0)
        zcl__conn_want_flush(c);
    return rc;
}

typedef struct sync_wait {
    int done;
    int status;
    zv_arena *a;
    zv *result;
    zerr err;
} sync_wait;

static void sync_reply(zcl_client *c, int status, const zv *result, const zerr *err,
                       void *data)
{
    sync_wait *w = data;
    w->done = 1;
    w->status = status;
    if (result && w->a) {
        w->result = zv_copy(w->a, result);
        if (!w->result && w->status == 0)
            w->status = zerr_set(&w->err, ZE_NOMEM, "out of memory");
    }
    if (status < 0)
        zcl__err_copy(&w->err, err, status);
}

int zcl_call_sync(zcl_client *c, const char *method, const zv *args, zv_arena *a,
                  zv **result, zerr *err)
{
    sync_wait w = {.a = a};
    int rc = zcl_call(c, method, args, sync_reply, &w);
    rc = zcl__sync_finish(c, rc, &w.done, &w.status, &w.err, err);
    /* An error reply's value is handed out too (ZEO's exception args). */
    if (result && w.done)
        *result = w.result;
    return rc;
}

int zcl__err_copy(zerr *dst, const zerr *src, int status)
{
    if (dst) {
        if (src && src != dst)
            *dst = *src;
        dst->code = status;
        if (!src)
            zerr_set(dst, status, "%s", zerr_name(status));
    }
    return status;
}
