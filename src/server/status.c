/* status.c: server_status() and the ruok JSON (spec sections 3 and 7.21),
 * with ZEO's keys in ZEO's order so that existing monitoring keeps working;
 * zeolite_memory(), the memory shared by all connections (budget.c), and the
 * store calls under way off the loop (jobs: job.c). ruok adds one key of
 * zeolite's, conflicts_resolved_server (conflicts the server merged itself);
 * server_status keeps exactly ZEO's. */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct status {
    int64_t connections, loads, stores, commits, aborts, active_txns;
    double lock_time;            /* 0: None */
    int64_t conflicts, conflicts_resolved, conflicts_resolved_server, waiting;
    char start[32];
    int timeout_alive;           /* else "stub" */
    char last[17];
} status;

static void gather(zsrv_storage *st, status *s)
{
    s->connections = (int64_t)st->n_conns;
    s->loads = (int64_t)st->stats.loads;
    s->stores = (int64_t)st->stats.stores;
    s->commits = (int64_t)st->stats.commits;
    s->aborts = (int64_t)st->stats.aborts;
    s->active_txns = (int64_t)st->active_txns;
    s->lock_time = zsrv__lock_oldest(st);
    s->conflicts = (int64_t)st->stats.conflicts;
    s->conflicts_resolved = (int64_t)st->stats.conflicts_resolved;
    s->conflicts_resolved_server = (int64_t)st->stats.conflicts_resolved_server;
    s->waiting = (int64_t)st->n_waiting;
    struct tm tm;
    localtime_r(&st->start, &tm);
    strftime(s->start, sizeof s->start, "%a %b %e %H:%M:%S %Y", &tm);
    s->timeout_alive = st->srv->cfg->txn_timeout > 0;
    snprintf(s->last, sizeof s->last, "%016llx",
             (unsigned long long)st->visible);
}

static zv *status_dict(zsrv_storage *st, zv_arena *a)
{
    status s;
    gather(st, &s);
    zv *d = zv_dict(a, 13);
    if (!d)
        return NULL;
    zv **it = d->u.seq.items;
    const char *keys[] = {"connections", "loads", "stores", "commits", "aborts",
                          "active_txns", "lock_time", "conflicts", "conflicts_resolved",
                          "start", "waiting", "timeout-thread-is-alive", "last-transaction"};
    int64_t ints[] = {s.connections, s.loads, s.stores, s.commits, s.aborts, s.active_txns};
    for (int i = 0; i < 13; i++)
        it[2 * i] = zv_cstr(a, keys[i]);
    for (int i = 0; i < 6; i++)
        it[2 * i + 1] = zv_int(a, ints[i]);
    it[13] = s.lock_time ? zv_float(a, s.lock_time) : zv_none(a);
    it[15] = zv_int(a, s.conflicts);
    it[17] = zv_int(a, s.conflicts_resolved);
    it[19] = zv_cstr(a, s.start);
    it[21] = zv_int(a, s.waiting);
    it[23] = s.timeout_alive ? zv_bool(a, 1) : zv_cstr(a, "stub");
    it[25] = zv_cstr(a, s.last);
    for (int i = 0; i < 26; i++)
        if (!it[i])
            return NULL;
    return d;
}

int zsrv__m_server_status(zsrv_call *call)
{
    zv *d = status_dict(call->c->stor, call->a);
    if (!d)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return zsrv__reply(call, d);
}

/* Storage names are the only free text; escape them as json.dumps does. */
static int json_string(zbuf *out, const char *s)
{
    int rc = zbuf_append_byte(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\')
            snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            snprintf(esc, sizeof esc, "\\u%04x", *p);
        else
            snprintf(esc, sizeof esc, "%c", *p);
        rc = zbuf_append(out, esc, strlen(esc));
    }
    return rc ? rc : zbuf_append_byte(out, '"');
}

static int json_status(zbuf *out, zsrv_storage *st)
{
    status s;
    gather(st, &s);
    char lock[40], buf[768];
    if (s.lock_time)
        snprintf(lock, sizeof lock, "%.6f", s.lock_time);
    else
        snprintf(lock, sizeof lock, "null");
    int n = snprintf(buf, sizeof buf,
                     "{\"connections\": %lld, \"loads\": %lld, \"stores\": %lld, "
                     "\"commits\": %lld, \"aborts\": %lld, \"active_txns\": %lld, "
                     "\"lock_time\": %s, \"conflicts\": %lld, \"conflicts_resolved\": %lld, "
                     "\"conflicts_resolved_server\": %lld, "
                     "\"start\": \"%s\", \"waiting\": %lld, \"timeout-thread-is-alive\": %s, "
                     "\"last-transaction\": \"%s\"}",
                     (long long)s.connections, (long long)s.loads, (long long)s.stores,
                     (long long)s.commits, (long long)s.aborts, (long long)s.active_txns, lock,
                     (long long)s.conflicts, (long long)s.conflicts_resolved,
                     (long long)s.conflicts_resolved_server, s.start, (long long)s.waiting,
                     s.timeout_alive ? "true" : "\"stub\"", s.last);
    return zbuf_append(out, buf, (size_t)n);
}

int zsrv__status_json(zsrv *s, zbuf *out)
{
    int rc = zbuf_append_byte(out, '{');
    for (size_t i = 0; rc == 0 && i < s->n_storages; i++) {
        if (i)
            rc = zbuf_append(out, ", ", 2);
        if (rc == 0)
            rc = json_string(out, s->storages[i].name);
        if (rc == 0)
            rc = zbuf_append(out, ": ", 2);
        if (rc == 0)
            rc = json_status(out, &s->storages[i]);
    }
    return rc ? rc : zbuf_append_byte(out, '}');
}

/* Request memory (the large frames being received) and its peak with what
 * decoding the largest takes; the largest request decoded, with what was
 * kept of it, and its frame; output held for all connections and its peak;
 * connections waiting for memory; frames refused as too large for it. */
int zsrv__m_memory_status(zsrv_call *call)
{
    const zsrv *s = call->c->srv;
    int64_t waiting = 0, jobs = 0;
    for (const zsrv_conn *c = s->conns; c; c = c->next)
        waiting += c->in_link.queued || c->out_link.queued;
    for (size_t i = 0; i < s->n_storages; i++)
        jobs += (int64_t)s->storages[i].jobs;
    static const char *const keys[] = {
        "request_memory", "request_memory_peak", "decoded_peak", "decoded_peak_frame",
        "output_memory", "output_memory_peak", "waiting_for_memory", "requests_refused",
        "jobs",
    };
    int64_t v[] = {
        (int64_t)s->in_used, (int64_t)s->in_peak, (int64_t)s->decoded_peak,
        (int64_t)s->decoded_peak_frame, (int64_t)s->out_total, (int64_t)s->out_peak,
        waiting, (int64_t)s->frames_refused, jobs,
    };
    size_t n = sizeof keys / sizeof keys[0];
    zv *d = zv_dict(call->a, n);
    for (size_t i = 0; d && i < n; i++)
        if (!(d->u.seq.items[2 * i] = zv_cstr(call->a, keys[i])) ||
            !(d->u.seq.items[2 * i + 1] = zv_int(call->a, v[i])))
            d = NULL;
    return d ? zsrv__reply(call, d) : zerr_set(&call->err, ZE_NOMEM, "out of memory");
}
