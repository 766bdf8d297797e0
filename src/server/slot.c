/* slot.c: reply slots, which keep a connection's output in the order the
 * client may rely on when calls run off the loop (server_int.h, "What a
 * client may see").
 *
 * A call dispatched to a worker reserves a slot at the tail of the
 * connection's output. Everything produced for the connection afterwards
 * (later replies, invalidations, info, vote replies) goes into the last
 * slot's `after` buffer instead of c->out, so when the worker's reply comes
 * back it takes the place its request had: after the invalidations of every
 * transaction its snapshot includes, before those of any later one, and
 * after the replies to earlier requests. The completed prefix moves to
 * c->out. A connection without slots (every connection of a storage read
 * on the loop) writes to c->out directly, as before. */
#include "server/server_int.h"

#include <stdlib.h>

zsrv_slot *zsrv__slot_reserve(zsrv_conn *c)
{
    zsrv_slot *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    if (c->slot_tail)
        c->slot_tail->next = sl;
    else
        c->slot_head = sl;
    c->slot_tail = sl;
    return sl;
}

static void slot_free(zsrv_slot *sl)
{
    zbuf_free(&sl->reply);
    zbuf_free(&sl->after);
    free(sl);
}

void zsrv__slots_free(zsrv_conn *c)
{
    while (c->slot_head) {
        zsrv_slot *sl = c->slot_head;
        c->slot_head = sl->next;
        slot_free(sl);
    }
    c->slot_tail = NULL;
    c->slot_bytes = 0;
}

size_t zsrv__slots_held(const zsrv_conn *c)
{
    size_t n = 0;
    for (const zsrv_slot *sl = c->slot_head; sl; sl = sl->next)
        n += sl->reply.len + sl->after.len;
    return n;
}

/* Append b to c->out (taking b's memory when c->out is empty). */
static int out_take(zsrv_conn *c, zbuf *b)
{
    if (!b->len)
        return 0;
    if (!c->out.len) {
        zbuf tmp = c->out;
        c->out = *b;
        *b = tmp;
        zbuf_reset(b);
        return 0;
    }
    int rc = zbuf_append(&c->out, b->data, b->len);
    zbuf_reset(b);
    return rc;
}

void zsrv__slot_done(zsrv_conn *c, zsrv_slot *sl)
{
    sl->done = 1;
    while (c->state != ZSRV_CONN_CLOSING && (sl = c->slot_head) && sl->done) {
        c->slot_head = sl->next;
        if (!c->slot_head) {
            c->slot_tail = NULL;
            c->slot_bytes = 0;
        }
        int rc = out_take(c, &sl->reply);
        /* A sendBlob is its connection's last slot (it takes no request
         * until the blob is sent): its stream starts on c->out. */
        if (rc == 0 && sl->blob)
            rc = zsrv__blob_out_start(c);
        if (rc == 0)
            rc = out_take(c, &sl->after);
        slot_free(sl);
        if (rc < 0 && c->state != ZSRV_CONN_CLOSING) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
            return;
        }
    }
    zsrv__slots_count(c);
    zsrv__conn_mark_dirty(c);
}
