/* job.c: store calls off the loop, for a storage whose store may block (a
 * database over the network) or, for tests, every storage
 * (ZEOLITE_OFFLOOP, server_int.h).
 *
 * Each such storage has worker threads in two lanes: reads (loads,
 * history, iteration, undo logs, getInvalidations, blob files) and writes
 * (votes, new_oids), so that a vote waiting in the database never
 * holds up loads, nor loads a vote. A job is queued from the loop, runs on
 * a worker, and its end runs back on the loop (a uv_async), as the store's
 * commit callbacks do. Each read worker keeps one reader for its storage,
 * refreshed only when it is older than the snapshot the job reads as of
 * (the storage's visible tid at submission), and freed after a second
 * without work so that an idle worker pins no old snapshot.
 *
 * A call job (zsrv__offload) runs a handler's body on a worker: it gets a
 * copy of the call (msgid and arguments kept in its own arena), encodes its
 * reply or error into a buffer of its own, and at its end on the loop the
 * buffer fills the slot reserved at dispatch (slot.c). The connection is
 * kept (c->n_jobs) until every job of it has ended, so a body may read its
 * settings; whatever else the loop owns is touched only in the after
 * function, at the end.
 *
 * Output memory (budget.c) holds for these replies too: a call that
 * changes nothing, whose reply turns out larger than a share while output
 * memory is short, has it dropped and is parked, its slot kept, until the
 * budget grants its connection; then it runs again, as a frame given back
 * does on the loop. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_SECONDS 1   /* an idle read worker frees its reader */

typedef struct zsrv_pool zsrv_pool;

typedef struct worker {
    zsrv_pool *p;
    int lane;
    pthread_t thread;
} worker;

struct zsrv_pool {
    zsrv_storage *st;
    pthread_mutex_t mu;
    pthread_cond_t wake[2];        /* per lane: a job was queued, or stop */
    zsrv_job *head[2], *tail[2];
    zsrv_job *done_head, *done_tail;
    int stopping;
    unsigned hold_ms;              /* ZEOLITE_OFFLOOP_HOLD_MS */
    int hold_writes;               /* ZEOLITE_OFFLOOP_HOLD_WRITES */
    worker *workers;
    size_t n_workers;
};

/* ---- workers ------------------------------------------------------------ */

/* The hold test hook: wait until a commit has completed since j was
 * queued, then read from a snapshot that has it (the reader is newer than
 * the call's snapshot: what the "as of" reads of read.c are for). */
static void hold(const zsrv_pool *p, const zsrv_job *j, store_reader **rd)
{
    struct timespec ms = {0, 1000000};
    for (unsigned waited = 0;
         waited < p->hold_ms && atomic_load(&j->st->completed) <= j->completed; waited++)
        nanosleep(&ms, NULL);
    zerr err = {0};
    if (*rd && store_reader_refresh(*rd, &err) < 0) {
        store_reader_free(*rd);
        *rd = NULL;
    }
}

/* The worker's reader, seeing at least j's snapshot; NULL with err set. */
static store_reader *reader_for(zsrv_pool *p, store_reader **rd, const zsrv_job *j, zerr *err)
{
    if (*rd && store_reader_last_tid(*rd) < j->visible &&
        store_reader_refresh(*rd, err) < 0) {
        store_reader_free(*rd);
        *rd = NULL;
        return NULL;
    }
    if (!*rd && store_reader_new(p->st->st, rd, err) < 0)
        *rd = NULL;
    return *rd;
}

static void job_finished(zsrv_pool *p, zsrv_job *j)
{
    pthread_mutex_lock(&p->mu);
    j->next = NULL;
    if (p->done_tail)
        p->done_tail->next = j;
    else
        p->done_head = j;
    p->done_tail = j;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->st->job_async);
}

/* Wait for work of w's lane; NULL when stopping with none left. An idle
 * read worker gives its reader back after IDLE_SECONDS. */
static zsrv_job *next_job(worker *w, store_reader **rd)
{
    zsrv_pool *p = w->p;
    while (!p->head[w->lane] && !p->stopping) {
        if (!*rd) {
            pthread_cond_wait(&p->wake[w->lane], &p->mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_SECONDS;
        if (pthread_cond_timedwait(&p->wake[w->lane], &p->mu, &until) == ETIMEDOUT &&
            !p->head[w->lane]) {
            pthread_mutex_unlock(&p->mu);
            store_reader_free(*rd);
            *rd = NULL;
            pthread_mutex_lock(&p->mu);
        }
    }
    zsrv_job *j = p->head[w->lane];
    if (j) {
        p->head[w->lane] = j->next;
        if (!j->next)
            p->tail[w->lane] = NULL;
    }
    return j;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    zsrv_pool *p = w->p;
    store_reader *rd = NULL;
    pthread_mutex_lock(&p->mu);
    zsrv_job *j;
    while ((j = next_job(w, &rd))) {
        pthread_mutex_unlock(&p->mu);
        zerr err = {0};
        store_reader *use = NULL;
        if (w->lane == ZSRV_LANE_READ) {
            if (p->hold_ms)
                hold(p, j, &rd);
            use = reader_for(p, &rd, j, &err);
        } else if (p->hold_writes) {
            store_reader *none = NULL;
            hold(p, j, &none);
        }
        j->run(j, use, &err);
        job_finished(p, j);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    store_reader_free(rd);
    return NULL;
}

/* ---- the pool ------------------------------------------------------------- */

static void jobs_ended(uv_async_t *h)
{
    zsrv_storage *st = h->data;
    zsrv_pool *p = st->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    zsrv_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        zsrv_job *j = list;
        list = j->next;
        st->jobs--;
        j->end(j);
    }
    /* a call may have found the store refusing its database (feed.c) */
    zsrv__feed_check(st);
    zsrv__stop_progress(st->srv);
}

int zsrv__pool_start(zsrv_storage *st, zerr *err)
{
    uv_async_init(st->srv->loop, &st->job_async, jobs_ended);
    st->job_async.data = st;
    if (!st->offloop)
        return 0;
    zsrv_pool *p = calloc(1, sizeof *p);
    size_t n = st->n_readers + ZSRV_POOL_WRITERS;
    if (!p || !(p->workers = calloc(n, sizeof *p->workers))) {
        free(p);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    p->st = st;
    const char *hold_ms = getenv("ZEOLITE_OFFLOOP_HOLD_MS");
    p->hold_ms = hold_ms ? (unsigned)strtoul(hold_ms, NULL, 10) : 0;
    const char *hold_writes = getenv("ZEOLITE_OFFLOOP_HOLD_WRITES");
    p->hold_writes = hold_writes && !strcmp(hold_writes, "1");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake[0], NULL);
    pthread_cond_init(&p->wake[1], NULL);
    st->pool = p;
    for (size_t i = 0; i < n; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->lane = i < st->n_readers ? ZSRV_LANE_READ : ZSRV_LANE_WRITE;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc)
            return zerr_sys(err, rc, "storage %s: cannot start a worker thread", st->name);
        p->n_workers++;
    }
    return 0;
}

void zsrv__pool_stop(zsrv_storage *st)
{
    zsrv_pool *p = st->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake[0]);
    pthread_cond_broadcast(&p->wake[1]);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->wake[0]);
    pthread_cond_destroy(&p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
    st->pool = NULL;
}

void zsrv__job_submit(zsrv_storage *st, zsrv_job *j, int lane)
{
    zsrv_pool *p = st->pool;
    j->st = st;
    j->lane = lane;
    j->visible = st->visible;
    j->completed = atomic_load(&st->completed);
    j->next = NULL;
    st->jobs++;
    pthread_mutex_lock(&p->mu);
    if (p->tail[lane])
        p->tail[lane]->next = j;
    else
        p->head[lane] = j;
    p->tail[lane] = j;
    pthread_cond_signal(&p->wake[lane]);
    pthread_mutex_unlock(&p->mu);
}

/* ---- call jobs -------------------------------------------------------------- */

typedef struct zsrv_cjob {
    zsrv_job job;
    zsrv_conn *c;
    zsrv_slot *slot;               /* its reply's place; NULL for an async call */
    zv_arena *arena;               /* msgid, arguments, the reply's values */
    proto_msg m;
    zsrv_call call;
    zsrv_body_fn body;
    zsrv_after_fn after;
    uint64_t t0;                   /* the call's arrival (metrics), or 0 */
    int retry;                     /* changes nothing: may be parked and run again */
    int granted;                   /* its reply goes out, whatever its size */
    size_t need;                   /* the size of a reply not built: it would wait */
    struct zsrv_cjob *next_parked;
    int rc;
    int lost;                      /* its reply could not be encoded for lack of memory */
    zbuf out;                      /* the encoded reply or error */
    union {
        char b[ZSRV_CTX_MAX];
        uint64_t align;
        void *p;
    } ctx;
} zsrv_cjob;

static void cjob_run(zsrv_job *job, store_reader *rd, const zerr *rd_err)
{
    zsrv_cjob *j = (zsrv_cjob *)job;
    zsrv_call *call = &j->call;
    call->rd = rd;
    int rc;
    if (!rd && job->lane == ZSRV_LANE_READ) {
        call->err = *rd_err;
        rc = call->err.code ? call->err.code : zerr_set(&call->err, ZE_IO, "no reader");
    } else {
        rc = j->body(call);
    }
    j->rc = rc;
    if (rc < 0 && !j->m.async)
        zsrv__call_error(call, rc);
}

/* Its reply must wait for output memory: dropped, and the job kept for a
 * second run (1), or it goes on (0). */
static int park(zsrv_cjob *j)
{
    zsrv_conn *c = j->c;
    if (!j->retry || j->granted || c->state == ZSRV_CONN_CLOSING || j->lost)
        return 0;
    /* Queued once: a connection already waiting parks the others too. */
    if (!c->out_need && !zsrv__out_must_wait(c, j->need ? j->need : j->out.len)) {
        if (!j->need)
            return 0;
        /* Room came back since the worker looked: build it now. */
        j->need = 0;
        j->granted = 1;
        zsrv__job_submit(j->job.st, &j->job, j->job.lane);
        return 1;
    }
    j->need = 0;
    zbuf_free(&j->out);
    memset(&j->call.exc, 0, sizeof j->call.exc);
    memset(&j->call.err, 0, sizeof j->call.err);
    j->next_parked = c->parked;
    c->parked = j;
    return 1;
}

void zsrv__jobs_unpark(zsrv_conn *c)
{
    if (c->out_need || c->state == ZSRV_CONN_CLOSING)
        return;
    while (c->parked) {
        zsrv_cjob *j = c->parked;
        c->parked = j->next_parked;
        j->granted = 1;
        zsrv__job_submit(j->job.st, &j->job, j->job.lane);
    }
}

static void cjob_free(zsrv_cjob *j)
{
    zbuf_free(&j->out);
    zv_arena_free(j->arena);
    free(j);
}

void zsrv__jobs_parked_free(zsrv_conn *c)
{
    while (c->parked) {
        zsrv_cjob *j = c->parked;
        c->parked = j->next_parked;
        cjob_free(j);
        c->n_jobs--;
    }
}

static void cjob_end(zsrv_job *job)
{
    zsrv_cjob *j = (zsrv_cjob *)job;
    zsrv_conn *c = j->c;
    if (park(j))
        return;
    if (j->after)
        j->after(&j->call, j->rc);
    if (c->state != ZSRV_CONN_CLOSING) {
        if (j->lost) {
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory for a reply");
        } else if (j->rc < 0 && j->m.async) {
            char why[ZERR_MSG_MAX + 64];   /* as dispatch.c closes for a failed async call */
            snprintf(why, sizeof why, "async %s failed: %s", j->m.name, j->call.err.msg);
            zsrv__conn_close(c, ZSRV_LOG_WARNING, why);
        } else if (j->slot) {
            zbuf tmp = j->slot->reply;
            j->slot->reply = j->out;
            j->out = tmp;
            zsrv__slot_done(c, j->slot);
        }
        zsrv__mx_call(job->st, j->call.method, j->t0);
    }
    cjob_free(j);
    c->n_jobs--;
    zsrv__conn_job_end(c);
}

int zsrv__offload(zsrv_call *call, int lane, zsrv_body_fn body, zsrv_after_fn after,
                  const void *ctx, size_t size)
{
    zsrv_storage *st = call->st;
    if (!st->offloop) {
        call->rd = st->rd;
        call->visible = st->visible;
        call->ctx = (void *)ctx;
        int rc = body(call);
        if (after)
            after(call, rc);
        return rc;
    }
    zsrv_conn *c = call->c;
    zsrv_cjob *j = calloc(1, sizeof *j);
    if (!j || size > sizeof j->ctx || !(j->arena = zv_arena_new())) {
        free(j);
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    }
    j->m = *call->m;
    j->m.name = zsrv__method_name(call->method);
    if (!(j->m.msgid = zsrv__keep(call, j->arena, call->m->msgid, "a message id")) ||
        !(j->m.args = zsrv__keep(call, j->arena, call->args, "the arguments")) ||
        (!j->m.async && !(j->slot = zsrv__slot_reserve(c)))) {
        zv_arena_free(j->arena);
        free(j);
        return call->err.code ? call->err.code : zerr_set(&call->err, ZE_NOMEM, "out of memory");
    }
    if (size)
        memcpy(j->ctx.b, ctx, size);
    j->c = c;
    j->body = body;
    j->after = after;
    j->call = *call;
    j->call.m = &j->m;
    j->call.args = j->m.args;
    j->call.argv = j->m.args->u.seq.items;
    j->call.argc = j->m.args->u.seq.n;
    j->call.a = j->arena;
    j->retry = call->retry;
    j->call.retry = 0;   /* the body's reply never waits: its job may (park) */
    j->call.ctx = j->ctx.b;
    j->call.job = j;
    j->call.visible = st->visible;
    memset(&j->call.exc, 0, sizeof j->call.exc);
    memset(&j->call.err, 0, sizeof j->call.err);
    j->t0 = zsrv__mx_take(c);
    j->job.run = cjob_run;
    j->job.end = cjob_end;
    c->n_jobs++;
    zsrv__jobs_hold(c);
    zsrv__job_submit(st, &j->job, lane);
    return 0;
}

zbuf *zsrv__job_out(zsrv_call *call)
{
    return &call->job->out;
}

int zsrv__job_would_wait(zsrv_call *call, size_t size)
{
    zsrv_cjob *j = call->job;
    if (!j->retry || j->granted || !zsrv__out_busy_would_wait(j->c->srv, size))
        return 0;
    j->need = size;
    return 1;
}

int zsrv__job_encode(zsrv_call *call, const zv *result, const proto_exc *e)
{
    zsrv_cjob *j = call->job;
    zsrv_conn *c = j->c;
    zerr err = {0};
    if (!e && !result) {   /* an exception that could not be built */
        j->lost = 1;
        return ZE_NOMEM;
    }
    size_t size;
    if (!e && j->retry && !j->granted &&
        proto_reply_size(c->enc, j->m.msgid, result, &size, NULL) == 0 &&
        zsrv__job_would_wait(call, size))
        return ZSRV_RETRY;
    int rc = e ? proto_encode_error(c->enc, &j->out, j->m.msgid, e, &err)
               : proto_encode_reply(c->enc, &j->out, j->m.msgid, result, &err);
    if (rc == 0)
        return 0;
    zsrv__log(ZSRV_LOG_ERROR, "%s: cannot encode a reply: %s", c->peer, err.msg);
    zv_arena *a = zv_arena_new();
    proto_exc ve;
    /* As zsrv__send_reply answers a reply it cannot encode. */
    if (!a || proto_exc_msg(&ve, a, PROTO_EXC_VALUE, "Couldn't pickle response") < 0 ||
        proto_encode_error(c->enc, &j->out, j->m.msgid, &ve, &err) < 0)
        j->lost = 1;
    zv_arena_free(a);
    return 0;
}

int zsrv__wait_job(zsrv_call *call)
{
    call->c->job_wait = 1;
    zsrv__jobs_hold(call->c);
    return ZSRV_RETRY;
}

void zsrv__job_slot_blob(zsrv_call *call)
{
    if (call->job && call->job->slot)
        call->job->slot->blob = 1;
}
