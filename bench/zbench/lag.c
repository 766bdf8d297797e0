/* lag.c: the lag workload's bookkeeping. The committer (cl[0]) commits one
 * transaction after the other (paced by o->rate, zb_lag_pace); every reply
 * it gets before the deadline adds a record (tid, time) here. Each watcher
 * (cl[1..]) walks those records in tid order as its invalidations arrive,
 * which is the order a ZEO server sends them in, so a matching is one
 * comparison and a skipped record is an invalidation lost. The committer's
 * reply and a watcher's invalidation come in on different sockets of one
 * loop, in either order: an invalidation that beats the reply waits in the
 * watcher (early_tid) until the reply names its tid. */
#include "bench_int.h"

#include <errno.h>
#include <stdlib.h>

/* How long the end of a run waits for invalidations still on their way. */
#define GRACE_MS 5000

int zb_lag_init(zb_lag *l)
{
    return zb_hist_init(&l->hist);
}

int zb_lag_open_log(zb_lag *l, const char *path, zerr *err)
{
    if (!(l->log = fopen(path, "w")))
        return zerr_sys(err, errno, "cannot write %s", path);
    return 0;
}

void zb_lag_free(zb_lag *l)
{
    if (l->log && fclose(l->log) != 0)
        fprintf(stderr, "zeolite bench: the lag log could not be written in full\n");
    l->log = NULL;
    zb_hist_free(&l->hist);
    free(l->recs);
    l->recs = NULL;
}

static int settled(const bench *b)
{
    for (int i = 1; i < b->nclients; i++)
        if (b->cl[i].cursor < b->lag.n)
            return 0;
    return 1;
}

/* One sample: inval_ns before finish_ns for an early one (counted as 0). */
static void sample(zb_lag *l, const bclient *w, uint64_t tid, uint64_t finish_ns,
                   uint64_t inval_ns)
{
    zb_hist_add(&l->hist, inval_ns > finish_ns ? inval_ns - finish_ns : 0);
    if (l->log)
        fprintf(l->log, "%016llx %d %.6f %.6f %.0f\n", (unsigned long long)tid, w->id,
                (double)finish_ns / 1e9, (double)inval_ns / 1e9,
                ((double)inval_ns - (double)finish_ns) / 1e3);
}

static void check_done(bench *b)
{
    if (b->lag.waiting && settled(b))
        zb_close_all(b);
}

void zb_lag_on_invalidate(zcl_client *c, uint64_t tid, const uint64_t *oids, size_t n,
                          void *data)
{
    bclient *w = data;
    bench *b = w->b;
    zb_lag *l = &b->lag;
    uint64_t now = uv_hrtime();
    (void)c, (void)oids, (void)n;
    if (tid <= l->floor)
        return; /* the setup's, reaching a server that follows another */
    while (w->cursor < l->n && l->recs[w->cursor].tid < tid) {
        l->missing++; /* the server went past it */
        w->cursor++;
    }
    if (w->cursor < l->n && l->recs[w->cursor].tid == tid) {
        sample(l, w, tid, l->recs[w->cursor].t_ns, now);
        w->cursor++;
    } else if (w->cursor == l->n && l->finishing &&
               (l->n == 0 || tid > l->recs[l->n - 1].tid)) {
        if (w->early_tid)
            l->unmatched++; /* two before one reply: the first was not ours */
        w->early_tid = tid;
        w->early_ns = now;
    } else if (!b->stopping || (l->n && tid < l->recs[l->n - 1].tid)) {
        l->unmatched++; /* (past the deadline, a newer tid is the uncounted last commit's) */
    }
    check_done(b);
}

void zb_lag_finishing(bench *b)
{
    b->lag.finishing = 1;
}

static int add_rec(zb_lag *l, uint64_t tid, uint64_t now)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        zb_lag_rec *r = realloc(l->recs, cap * sizeof *r);
        if (!r)
            return ZE_NOMEM;
        l->recs = r;
        l->cap = cap;
    }
    l->recs[l->n++] = (zb_lag_rec){.tid = tid, .t_ns = now};
    return 0;
}

/* Only commits whose reply comes before the deadline are followed, as only
 * those count as ops; a watcher's early invalidation is settled either way. */
void zb_lag_finished(bench *b, int status, uint64_t tid)
{
    zb_lag *l = &b->lag;
    l->finishing = 0;
    int keep = status == 0 && !b->stopping && add_rec(l, tid, uv_hrtime()) == 0;
    for (int i = 1; i < b->nclients; i++) {
        bclient *w = &b->cl[i];
        if (!w->early_tid)
            continue;
        if (keep && w->early_tid == tid && w->cursor == l->n - 1) {
            sample(l, w, tid, l->recs[l->n - 1].t_ns, w->early_ns);
            l->early++;
            w->cursor++;
        } else if (keep) {
            l->unmatched++;
        }
        w->early_tid = 0;
    }
}

static void on_pace(uv_timer_t *t)
{
    bclient *bc = t->data;
    zb_client_start(bc);
}

int zb_lag_pace(bclient *bc)
{
    bench *b = bc->b;
    if (!(b->o->rate > 0))
        return 0;
    uint64_t now = uv_hrtime(), step = (uint64_t)(1e9 / b->o->rate);
    if (!b->lag.next_ns || b->lag.next_ns + step < now)
        b->lag.next_ns = now; /* first, or behind by a whole step: no burst */
    if (b->lag.next_ns <= now) {
        b->lag.next_ns += step;
        return 0;
    }
    /* libuv's timers count milliseconds: round up, never start early */
    b->lag.pace.data = bc;
    uv_timer_start(&b->lag.pace, on_pace, (b->lag.next_ns - now + 999999) / 1000000, 0);
    return 1;
}

static void on_grace_over(uv_timer_t *t)
{
    bench *b = t->data;
    for (int i = 1; i < b->nclients; i++)
        b->lag.missing += b->lag.n - b->cl[i].cursor;
    zb_close_all(b);
}

void zb_lag_drain(bench *b)
{
    if (b->lag.waiting || b->closed)
        return;
    b->lag.waiting = 1;
    if (settled(b)) {
        zb_close_all(b);
        return;
    }
    /* The deadline's one-shot timer has fired: it times the grace now. */
    uv_timer_start(&b->timer, on_grace_over, GRACE_MS, 0);
}

void zb_lag_summarize(bench *b)
{
    const zb_hist *h = &b->lag.hist;
    zbench_lag *r = &b->r->lag;
    r->count = h->n;
    r->early = b->lag.early;
    r->missing = b->lag.missing;
    r->unmatched = b->lag.unmatched;
    r->p50_us = zb_hist_quantile(h, 0.50);
    r->p90_us = zb_hist_quantile(h, 0.90);
    r->p99_us = zb_hist_quantile(h, 0.99);
    r->max_us = h->max_us;
    r->mean_us = h->n ? h->sum_us / (double)h->n : 0;
}
