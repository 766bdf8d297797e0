/* budget.c: the memory every connection shares: request memory for the
 * messages being received and decoded, output memory for the replies held
 * for slow readers.
 *
 * Request memory. A frame is admitted when its 4-byte header is in, before
 * its bytes are buffered. Frames of at most ZSRV_IN_SMALL bytes (every call
 * but a large store) are the connection's own and always admitted: that
 * fixed cost per connection is what max-connections bounds. A larger frame
 * takes its length from request-memory until it has been handled; next to
 * the frames admitted, the budget always keeps what decoding the largest of
 * them may take (PROTO_DECODE_BOUND: requests are decoded one at a time, on
 * the loop), so an admitted frame can always be read and decoded and
 * nothing waits for something that waits. A frame that does not fit waits,
 * its connection not read, in a FIFO; one that could not fit even alone is
 * refused and its connection closed.
 *
 * Output memory. Replies of calls that change nothing (loads, history,
 * status...) are sized before they are built: one larger than ZSRV_OUT_SHARE
 * that would take the total past output-memory waits (its frame is given
 * back to the framer and run again later), unless nothing is held at all.
 * While the total is past output-memory, the connections holding at least
 * ZSRV_OUT_SHARE take no new request until it drains. So what is held stays
 * within output-memory, plus what connections that read their replies hold
 * (under ZSRV_OUT_SHARE each and a small reply), plus replies that cannot
 * wait (votes, commits, invalidations, errors), however many connections
 * there are.
 *
 * Both queues are served in order, from the loop's flush (never from inside
 * another connection's call): zsrv__budget_wake. While replies wait or the
 * total is past output-memory, a connection holding a share whose output
 * has not moved for handshake-timeout seconds is closed (zsrv__budget_tick):
 * readers that never read cannot hold the budget, and with it everyone's
 * large replies, for ever, nor pile up invalidations, which cannot wait. */
#include "server/server_int.h"

#include <stddef.h>
#include <stdio.h>

/* ---- queues ------------------------------------------------------------ */

#define IN_LINK offsetof(zsrv_conn, in_link)
#define OUT_LINK offsetof(zsrv_conn, out_link)

static zsrv_waitlink *link_of(zsrv_conn *c, size_t link)
{
    return (zsrv_waitlink *)((char *)c + link);
}

static void wq_push(zsrv_waitq *q, zsrv_conn *c, size_t link)
{
    link_of(c, link)->next = NULL;
    link_of(c, link)->queued = 1;
    if (q->tail)
        link_of(q->tail, link)->next = c;
    else
        q->head = c;
    q->tail = c;
}

static void wq_remove(zsrv_waitq *q, zsrv_conn *c, size_t link)
{
    zsrv_waitlink *l = link_of(c, link);
    if (!l->queued)
        return;
    zsrv_conn **pp = &q->head, *prev = NULL;
    for (; *pp && *pp != c; pp = &link_of(*pp, link)->next)
        prev = *pp;
    if (*pp)
        *pp = l->next;
    if (q->tail == c)
        q->tail = prev;
    l->next = NULL;
    l->queued = 0;
}

/* ---- request memory ---------------------------------------------------- */

/* What decoding a frame of len bytes may take; small frames too. */
static uint64_t decode_reserve(uint64_t len)
{
    return PROTO_DECODE_BOUND(len < ZSRV_IN_SMALL ? ZSRV_IN_SMALL : len);
}

/* Frames admitted plus len, and the decoding of the largest of them. */
static uint64_t in_need(const zsrv *s, uint32_t len)
{
    uint64_t largest = len;
    for (const zsrv_conn *c = s->conns; c; c = c->next)
        if (c->in_frame > largest)
            largest = c->in_frame;
    return s->in_used + len + decode_reserve(largest);
}

static void in_take(zsrv_conn *c, uint32_t len)
{
    zsrv *s = c->srv;
    uint64_t need = in_need(s, len);
    c->in_admitted = 1;
    c->in_frame = len;
    s->in_used += len;
    if (need > s->in_peak)
        s->in_peak = need;
    if (proto_framer_expect(&c->fr) < 0)
        zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory for a message");
}

uint64_t zsrv__in_largest_frame(const zsrv_config *cfg)
{
    uint64_t b = cfg->request_memory, f = 0;
    if (b > PROTO_DECODE_SLACK)
        f = (b - PROTO_DECODE_SLACK) / (PROTO_DECODE_FACTOR + 1);
    while (f > 0 && f + decode_reserve(f) > b)
        f--;
    return f < ZSRV_IN_SMALL ? ZSRV_IN_SMALL : f;
}

int zsrv__in_admit(zsrv_conn *c, uint32_t len)
{
    zsrv *s = c->srv;
    uint64_t budget = s->cfg->request_memory;
    if (len <= ZSRV_IN_SMALL) {
        c->in_admitted = 1;
        return 1;
    }
    if ((uint64_t)len + decode_reserve(len) > budget) {
        char why[200];
        snprintf(why, sizeof why,
                 "a message of %u bytes needs %llu bytes of request memory, more than "
                 "request-memory (%llu)", len,
                 (unsigned long long)((uint64_t)len + decode_reserve(len)),
                 (unsigned long long)budget);
        s->frames_refused++;
        zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
        return -1;
    }
    if ((s->in_wait.head && s->in_wait.head != c) || in_need(s, len) > budget) {
        if (!c->in_link.queued) {
            wq_push(&s->in_wait, c, IN_LINK);
            zsrv__log(ZSRV_LOG_DEBUG, "%s: a message of %u bytes waits for request memory",
                      c->peer, len);
        }
        return 0;
    }
    wq_remove(&s->in_wait, c, IN_LINK);
    in_take(c, len);
    return c->state == ZSRV_CONN_CLOSING ? -1 : 1;
}

void zsrv__in_release(zsrv_conn *c)
{
    zsrv *s = c->srv;
    c->in_admitted = 0;
    c->out_granted = 0;
    if (!c->in_frame)
        return;
    s->in_used -= c->in_frame;
    c->in_frame = 0;
    if (s->in_wait.head)
        s->wake = 1;
}

void zsrv__note_decoded(zsrv *s, size_t frame, size_t bytes)
{
    if (bytes > s->decoded_peak) {
        s->decoded_peak = bytes;
        s->decoded_peak_frame = frame;
    }
}

/* ---- output memory ----------------------------------------------------- */

/* What the workers read of the budget (zsrv__job_would_wait). */
static void busy_note(zsrv *s)
{
    uint64_t busy = s->out_wait.head ? UINT64_MAX : s->out_total;
    atomic_store_explicit(&s->out_busy, busy, memory_order_relaxed);
}

int zsrv__out_busy_would_wait(zsrv *s, size_t size)
{
    uint64_t busy = atomic_load_explicit(&s->out_busy, memory_order_relaxed);
    return size > ZSRV_OUT_SHARE && busy &&
           (busy == UINT64_MAX || busy + size > s->cfg->output_memory);
}

size_t zsrv__out_held(const zsrv_conn *c)
{
    return c->out.len + c->wbuf.len + c->tls_out.len + c->slot_bytes;
}

void zsrv__out_update(zsrv_conn *c)
{
    zsrv *s = c->srv;
    if (c->state == ZSRV_CONN_CLOSING)
        return;
    size_t held = zsrv__out_held(c);
    if (held < c->out_held && (s->out_wait.head || s->out_over))
        s->wake = 1;
    s->out_total = s->out_total - c->out_held + held;
    c->out_held = held;
    if (s->out_total > s->out_peak)
        s->out_peak = s->out_total;
    if (s->out_total >= s->cfg->output_memory)
        s->out_over = 1;
    busy_note(s);
}

int zsrv__out_paused(const zsrv_conn *c)
{
    size_t held = zsrv__out_held(c);
    if (c->out_need || held >= ZSRV_OUT_HIGH)
        return 1;
    return held >= ZSRV_OUT_SHARE && c->srv->out_total >= c->srv->cfg->output_memory;
}

/* c's slots hold what was produced behind its waiting reply (slot.c), which
 * cannot drain before that reply: they do not count against it. */
static int out_fits(const zsrv *s, const zsrv_conn *c, size_t size)
{
    uint64_t others = s->out_total - c->slot_bytes;
    return others == 0 || others + size <= s->cfg->output_memory;
}

int zsrv__out_must_wait(zsrv_conn *c, size_t size)
{
    zsrv *s = c->srv;
    if (c->out_granted || size <= ZSRV_OUT_SHARE || (!s->out_wait.head && out_fits(s, c, size)))
        return 0;
    wq_push(&s->out_wait, c, OUT_LINK);
    c->out_need = size;
    s->replies_waited++;
    busy_note(s);
    return 1;
}

/* ---- waking and forgetting --------------------------------------------- */

/* A paused connection whose reason is gone: read again, run held frames. */
static int resume_paused(zsrv *s)
{
    int woke = 0;
    for (zsrv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->reading && c->state != ZSRV_CONN_CLOSING && !c->in_link.queued &&
            !zsrv__out_paused(c)) {
            zsrv__conn_resume(c);
            woke = 1;
        }
    }
    return woke;
}

int zsrv__budget_wake(zsrv *s)
{
    int woke = 0;
    if (!s->wake)
        return 0;
    s->wake = 0;
    zsrv_conn *c;
    uint32_t len;
    while ((c = s->in_wait.head) && proto_framer_peek(&c->fr, &len) == 1 &&
           in_need(s, len) <= s->cfg->request_memory) {
        wq_remove(&s->in_wait, c, IN_LINK);
        in_take(c, len);
        zsrv__conn_resume(c);
        woke = 1;
    }
    while ((c = s->out_wait.head) && out_fits(s, c, c->out_need)) {
        /* Its turn: the reply goes out even if others wait behind it. */
        wq_remove(&s->out_wait, c, OUT_LINK);
        c->out_need = 0;
        c->out_granted = 1;
        zsrv__conn_resume(c);
        woke = 1;
    }
    if (s->out_over && s->out_total < s->cfg->output_memory) {
        s->out_over = 0;
        woke |= resume_paused(s);
    }
    busy_note(s);
    return woke;
}

/* What c has still to write: libuv's queue shrinks as its peer reads. */
static size_t unwritten(zsrv_conn *c)
{
    size_t q = c->out.len + c->tls_out.len;
    return q + (c->writing ? uv_stream_get_write_queue_size(&c->h.stream) : c->wbuf.len);
}

void zsrv__budget_tick(zsrv *s)
{
    uint64_t now = uv_now(s->loop);
    double secs = s->cfg->handshake_timeout;
    int pressed = secs > 0 && (s->out_wait.head || s->out_total >= s->cfg->output_memory);
    for (zsrv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        size_t q = unwritten(c);
        if (!pressed || q < ZSRV_OUT_SHARE || q != c->out_mark) {
            c->out_mark = q;
            c->out_moved = now;
        } else if (now - c->out_moved >= (uint64_t)(secs * 1000)) {
            zsrv__conn_close(c, ZSRV_LOG_WARNING,
                             "does not read what it is sent while output memory is short");
        }
    }
}

void zsrv__budget_forget(zsrv_conn *c)
{
    zsrv *s = c->srv;
    zsrv__in_release(c);
    wq_remove(&s->in_wait, c, IN_LINK);
    wq_remove(&s->out_wait, c, OUT_LINK);
    c->out_need = 0;
    s->out_total -= c->out_held;
    c->out_held = 0;
    s->wake = 1;
    busy_note(s);
}
