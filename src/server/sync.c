/* sync.c: on a database other zeolite servers commit to too (`shared`),
 * the last tid this server tells a client (register's reply,
 * lastTransaction) is never behind what another server told it.
 *
 * A client that fails over from A to B may have seen commits of A that B
 * has not learnt of yet (its feed, or its standby, lags). The ZEO client
 * then refuses B ("Server behind client", verify in ZEO's client.py) and
 * tries again only register_failed_poll (9) seconds later; worse, a
 * getInvalidations answered from B's older history would leave stale
 * objects in its cache. So B first has the store catch up with the
 * database (store_sync: the primary's last tid, known here) on a worker,
 * and answers once that tid is visible on the loop: each invalidation up
 * to it has then been queued to the client, ahead of the reply
 * (zsrv__reply_ordered), and every read the client sends next reads as of
 * it at least.
 *
 * One sync runs at a time per storage, on a read worker: calls that come
 * while it runs wait for the next one, which begins after they came (the
 * one running may have asked before their client saw its last commit). A
 * sync that fails or runs out of time (ZSRV_SYNC_MS) answers what this
 * server has, with a warning: a client whose cache is newer then refuses
 * the server and tries again, as it does with any server behind it. */
#include "server/server_int.h"

#include <stdlib.h>

typedef struct zsrv_syncwait {
    struct zsrv_syncwait *next;
    zsrv_conn *c;                  /* kept by c->n_jobs until answered */
    zv_arena *arena;               /* holds msgid */
    zv *msgid;
    size_t method;                 /* metrics */
    uint64_t t0;
} zsrv_syncwait;

typedef struct sync_job {
    zsrv_job job;
    int rc;
    uint64_t tid;
    zerr err;
} sync_job;

static void sync_run(zsrv_job *job, store_reader *rd, const zerr *rd_err)
{
    sync_job *j = (sync_job *)job;
    (void)rd;
    (void)rd_err;
    j->rc = store_sync(job->st->st, ZSRV_SYNC_MS, &j->tid, &j->err);
}

static void waiter_free(zsrv_syncwait *w)
{
    zsrv_conn *c = w->c;
    zv_arena_free(w->arena);
    free(w);
    c->n_jobs--;
    zsrv__conn_job_end(c);
}

/* Answer w with tid (known to the store): at once when it is visible,
 * else once it is. */
static void answer(zsrv_storage *st, zsrv_syncwait *w, uint64_t tid)
{
    zsrv_conn *c = w->c;
    if (c->state != ZSRV_CONN_CLOSING && c->stor == st) {
        uint64_t last = tid > st->visible ? tid : st->visible;
        zv *v = zv_oid(w->arena, last);
        if (v)
            zsrv__reply_ordered(c, w->msgid, NULL, v, 1, last);
        else
            zsrv__conn_close(c, ZSRV_LOG_ERROR, "out of memory");
        zsrv__mx_call(st, w->method, w->t0);
    }
    waiter_free(w);
}

static void start_round(zsrv_storage *st);

static void sync_end(zsrv_job *job)
{
    sync_job *j = (sync_job *)job;
    zsrv_storage *st = job->st;
    if (j->rc < 0)
        zsrv__log(ZSRV_LOG_WARNING, "storage %s: cannot tell whether other servers committed "
                  "after %016llx (%s): answering that, which may be behind them",
                  st->name, (unsigned long long)j->tid, j->err.msg);
    zsrv_syncwait *list = st->sync_round;
    uint64_t tid = j->tid;
    st->sync_round = NULL;
    st->sync_running = 0;
    free(j);
    while (list) {
        zsrv_syncwait *w = list;
        list = w->next;
        answer(st, w, tid);
    }
    if (st->sync_next)
        start_round(st);
}

static void start_round(zsrv_storage *st)
{
    sync_job *j = calloc(1, sizeof *j);
    if (!j) {   /* answer what is known: nothing to wait for */
        zsrv__log(ZSRV_LOG_ERROR, "storage %s: out of memory: the last tid is answered "
                  "without asking the database", st->name);
        while (st->sync_next) {
            zsrv_syncwait *w = st->sync_next;
            st->sync_next = w->next;
            answer(st, w, 0);
        }
        st->sync_next_tail = NULL;
        return;
    }
    st->sync_round = st->sync_next;
    st->sync_next = st->sync_next_tail = NULL;
    st->sync_running = 1;
    j->job.run = sync_run;
    j->job.end = sync_end;
    zsrv__job_submit(st, &j->job, ZSRV_LANE_READ);
}

int zsrv__sync_needed(const zsrv_storage *st, const zsrv_call *call)
{
    return st->shared && st->offloop && !call->m->async;
}

int zsrv__sync_reply(zsrv_call *call)
{
    zsrv_conn *c = call->c;
    zsrv_storage *st = c->stor;
    zsrv_syncwait *w = calloc(1, sizeof *w);
    if (!w)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    if (!(w->msgid = zsrv__keep_msgid(call, &w->arena))) {
        free(w);
        return call->err.code;
    }
    w->c = c;
    w->method = call->method;
    w->t0 = zsrv__mx_take(c);
    c->n_jobs++;
    zsrv__jobs_hold(c);
    if (st->sync_next_tail)
        st->sync_next_tail->next = w;
    else
        st->sync_next = w;
    st->sync_next_tail = w;
    if (!st->sync_running)
        start_round(st);
    return 0;
}
