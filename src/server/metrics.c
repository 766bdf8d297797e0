/* metrics.c: the Prometheus endpoint (--metrics HOST:PORT, `metrics` in
 * <zeo>): GET /metrics answers the text exposition format, per storage.
 *
 * libmicrohttpd runs in its external-epoll mode: it creates no thread, the
 * loop polls its epoll fd (uv_poll_t) and runs it, and a timer follows the
 * timeout it asks for. The request handler so runs on the loop thread and
 * reads the loop's own counters directly, with nothing to lock and no
 * snapshot to go stale. A scrape is a few kilobytes of text built at once. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <dirent.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/ztid.h"

struct zsrv_metrics {
    zsrv *srv;
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    double started;                /* process_start_time_seconds */
};

/* Seconds; Prometheus's `le` bounds, from 10 us (a load) to 10 s (a commit
 * stuck behind a full disk). */
static const double bounds[ZSRV_HIST_BOUNDS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* ---- observations (the loop) ------------------------------------------- */

static void hist_observe(zsrv_hist *h, double secs)
{
    size_t i = 0;
    while (i < ZSRV_HIST_BOUNDS && secs > bounds[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += secs;
}

void zsrv__mx_call(zsrv_storage *st, size_t method, uint64_t t0)
{
    if (!t0 || !st || !st->mx.latency || method >= zsrv__method_count())
        return;
    hist_observe(&st->mx.latency[method], (double)(uv_hrtime() - t0) / 1e9);
}

void zsrv__mx_reply(zsrv_storage *st, const char *method, uint64_t t0)
{
    if (!t0)
        return;
    for (size_t i = 0; i < zsrv__method_count(); i++)
        if (!strcmp(zsrv__method_name(i), method))
            zsrv__mx_call(st, i, t0);
}

void zsrv__mx_bytes(zsrv_conn *c, size_t in, size_t out)
{
    zsrv_storage *st = c->stor;
    if (st) {
        st->mx.bytes_in += in;
        st->mx.bytes_out += out;
    } else {
        c->srv->unreg_bytes_in += in;
        c->srv->unreg_bytes_out += out;
    }
}

void zsrv__mx_lock_wait(zsrv_storage *st, uint64_t t0)
{
    if (t0)
        hist_observe(&st->mx.lock_wait, (double)(uv_hrtime() - t0) / 1e9);
}

/* ---- the text ---------------------------------------------------------- */

typedef struct text {
    zbuf b;
    int failed;
} text;

#define add(t, ...) ((t)->failed |= zbuf_printf(&(t)->b, __VA_ARGS__) < 0)

static void family(text *t, const char *name, const char *type, const char *help)
{
    add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the exposition format escapes it. */
static void label_value(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

typedef uint64_t (*stor_value)(zsrv_storage *st);

static void per_storage(text *t, zsrv *s, const char *name, const char *type,
                        const char *help, stor_value fn)
{
    family(t, name, type, help);
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        add(t, "%s{storage=\"%s\"} %llu\n", name, lv,
            (unsigned long long)fn(&s->storages[i]));
    }
}

static void hist(text *t, const char *name, const char *labels, const zsrv_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < ZSRV_HIST_BOUNDS; i++) {
        cum += h->counts[i];
        add(t, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds[i],
            (unsigned long long)cum);
    }
    add(t, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->n);
    add(t, "%s_sum{%s} %.9f\n", name, labels, h->sum);
    add(t, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->n);
}

static uint64_t v_loads(zsrv_storage *st) { return st->stats.loads; }
static uint64_t v_stores(zsrv_storage *st) { return st->stats.stores; }
static uint64_t v_commits(zsrv_storage *st) { return st->stats.commits; }
static uint64_t v_aborts(zsrv_storage *st) { return st->stats.aborts; }
static uint64_t v_conflicts(zsrv_storage *st) { return st->stats.conflicts; }
static uint64_t v_resolved(zsrv_storage *st) { return st->stats.conflicts_resolved; }
static uint64_t v_resolved_server(zsrv_storage *st)
{
    return st->stats.conflicts_resolved_server;
}
static uint64_t v_packs(zsrv_storage *st) { return st->mx.packs; }
static uint64_t v_bytes_in(zsrv_storage *st) { return st->mx.bytes_in; }
static uint64_t v_bytes_out(zsrv_storage *st) { return st->mx.bytes_out; }
static uint64_t v_conns(zsrv_storage *st) { return st->n_conns; }
static uint64_t v_active(zsrv_storage *st) { return st->active_txns; }
static uint64_t v_waiting(zsrv_storage *st) { return st->n_waiting; }
static uint64_t v_objects(zsrv_storage *st) { return store_object_count(st->st); }

static store_stats store_stats_of(zsrv_storage *st)
{
    store_stats ss;
    store_get_stats(st->st, &ss);   /* never waits (store.h) */
    return ss;
}

static uint64_t v_reading_primary(zsrv_storage *st)
{
    return (uint64_t)store_stats_of(st).reading_primary;
}

static uint64_t v_map_used(zsrv_storage *st)
{
    uint64_t used, size;
    store_map_info(st->st, &used, &size);
    return used;
}

static uint64_t v_map_size(zsrv_storage *st)
{
    uint64_t used, size;
    store_map_info(st->st, &used, &size);
    return size;
}

static void counters(text *t, zsrv *s)
{
    per_storage(t, s, "zeolite_loads_total", "counter", "Objects loaded (ruok's loads).",
                v_loads);
    per_storage(t, s, "zeolite_stores_total", "counter", "Objects stored (ruok's stores).",
                v_stores);
    per_storage(t, s, "zeolite_commits_total", "counter", "Transactions committed.", v_commits);
    per_storage(t, s, "zeolite_aborts_total", "counter", "Transactions aborted.", v_aborts);
    per_storage(t, s, "zeolite_conflicts_total", "counter",
                "Conflicts sent to clients (ruok's conflicts).", v_conflicts);
    per_storage(t, s, "zeolite_conflicts_resolved_total", "counter",
                "Votes that passed after the client resolved conflicts (ruok's "
                "conflicts_resolved).", v_resolved);
    per_storage(t, s, "zeolite_conflicts_resolved_server_total", "counter",
                "Conflicts the server resolved itself, BTrees and BTrees.Length (ruok's "
                "conflicts_resolved_server).", v_resolved_server);
    per_storage(t, s, "zeolite_packs_total", "counter", "Packs completed.", v_packs);
    per_storage(t, s, "zeolite_received_bytes_total", "counter",
                "Bytes read from the storage's registered connections.", v_bytes_in);
    per_storage(t, s, "zeolite_sent_bytes_total", "counter",
                "Bytes written to the storage's registered connections.", v_bytes_out);
    family(t, "zeolite_lock_expirations_total", "counter",
           "Commit-lock holders closed by a bound: the transaction timeout, or the "
           "conflict-resolution bound.");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        add(t, "zeolite_lock_expirations_total{storage=\"%s\",bound=\"transaction-timeout\"} "
               "%llu\n", lv, (unsigned long long)s->storages[i].mx.lock_expired);
        add(t, "zeolite_lock_expirations_total{storage=\"%s\",bound=\"conflict-timeout\"} "
               "%llu\n", lv, (unsigned long long)s->storages[i].mx.resolve_expired);
    }
    family(t, "zeolite_store_reads_total", "counter",
           "Read queries a PostgreSQL storage with a standby ran on each side (0 without).");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        store_stats ss = store_stats_of(&s->storages[i]);
        add(t, "zeolite_store_reads_total{storage=\"%s\",side=\"standby\"} %llu\n", lv,
            (unsigned long long)ss.reads_standby);
        add(t, "zeolite_store_reads_total{storage=\"%s\",side=\"primary\"} %llu\n", lv,
            (unsigned long long)ss.reads_primary);
    }
}

static void gauges(text *t, zsrv *s)
{
    per_storage(t, s, "zeolite_connections", "gauge", "Connections registered.", v_conns);
    per_storage(t, s, "zeolite_active_transactions", "gauge", "Transactions begun, not over.",
                v_active);
    per_storage(t, s, "zeolite_waiting_transactions", "gauge",
                "Votes waiting for commit locks.", v_waiting);
    per_storage(t, s, "zeolite_objects", "gauge", "Objects in the database.", v_objects);
    per_storage(t, s, "zeolite_store_reading_primary", "gauge",
                "1 while a storage's reads are on the primary instead of its standby (it "
                "lags past read-max-lag or cannot be reached).", v_reading_primary);
    per_storage(t, s, "zeolite_lmdb_map_used_bytes", "gauge", "LMDB map in use.", v_map_used);
    per_storage(t, s, "zeolite_lmdb_map_size_bytes", "gauge", "LMDB map size.", v_map_size);
    struct timespec ts;   /* lock.c's clock: the wall clock, to the microsecond */
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    family(t, "zeolite_lock_oldest_held_seconds", "gauge",
           "How long the oldest commit-lock holder has held its locks (0: none).");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        double since = zsrv__lock_oldest(&s->storages[i]);
        add(t, "zeolite_lock_oldest_held_seconds{storage=\"%s\"} %.6f\n", lv,
            since ? now - since : 0.0);
    }
    family(t, "zeolite_last_transaction_timestamp_seconds", "gauge",
           "The time of the last committed tid (0: none).");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        uint64_t tid = s->storages[i].visible;
        add(t, "zeolite_last_transaction_timestamp_seconds{storage=\"%s\"} %.6f\n", lv,
            tid ? ztid_time(tid) : 0.0);
    }
    family(t, "zeolite_last_tid_info", "gauge",
           "The last committed tid (hex, as ruok's last-transaction) as a label.");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256];
        label_value(s->storages[i].name, lv, sizeof lv);
        add(t, "zeolite_last_tid_info{storage=\"%s\",tid=\"%016llx\"} 1\n", lv,
            (unsigned long long)s->storages[i].visible);
    }
}

static void server_wide(text *t, zsrv *s)
{
    size_t buffered = 0;
    for (zsrv_conn *c = s->conns; c; c = c->next)
        buffered += c->out.len + c->wbuf.len + c->tls_out.len + c->slot_bytes + c->deferred.len;
    family(t, "zeolite_connections_open", "gauge", "Connections open, registered or not.");
    add(t, "zeolite_connections_open %zu\n", s->n_conns);
    family(t, "zeolite_connections_accepted_total", "counter", "Connections accepted.");
    add(t, "zeolite_connections_accepted_total %llu\n", (unsigned long long)s->accepted);
    family(t, "zeolite_unregistered_received_bytes_total", "counter",
           "Bytes read before a register (handshakes, ruok).");
    add(t, "zeolite_unregistered_received_bytes_total %llu\n",
        (unsigned long long)s->unreg_bytes_in);
    family(t, "zeolite_unregistered_sent_bytes_total", "counter",
           "Bytes written before a register (handshakes, ruok).");
    add(t, "zeolite_unregistered_sent_bytes_total %llu\n",
        (unsigned long long)s->unreg_bytes_out);
    family(t, "zeolite_output_buffered_bytes", "gauge",
           "Reply bytes queued for clients and not yet taken by their sockets.");
    add(t, "zeolite_output_buffered_bytes %zu\n", buffered);
    family(t, "zeolite_iterators_open", "gauge", "Iterators open on every connection.");
    add(t, "zeolite_iterators_open %zu\n", s->n_iters);
    family(t, "zeolite_iterators_max", "gauge", "The max-iterators limit.");
    add(t, "zeolite_iterators_max %d\n", s->cfg->max_iterators);
}

static void histograms(text *t, zsrv *s)
{
    family(t, "zeolite_lock_wait_seconds", "histogram",
           "Time a vote waited for its commit locks.");
    for (size_t i = 0; i < s->n_storages; i++) {
        char lv[256], labels[300];
        label_value(s->storages[i].name, lv, sizeof lv);
        snprintf(labels, sizeof labels, "storage=\"%s\"", lv);
        hist(t, "zeolite_lock_wait_seconds", labels, &s->storages[i].mx.lock_wait);
    }
    family(t, "zeolite_request_duration_seconds", "histogram",
           "Time from a call's arrival to its answer (vote: with the lock wait; "
           "tpc_finish: until durable), per method called at least once.");
    for (size_t i = 0; i < s->n_storages; i++) {
        zsrv_storage *st = &s->storages[i];
        char lv[256], labels[400];
        label_value(st->name, lv, sizeof lv);
        for (size_t m = 0; st->mx.latency && m < zsrv__method_count(); m++) {
            if (!st->mx.latency[m].n)
                continue;
            snprintf(labels, sizeof labels, "storage=\"%s\",method=\"%s\"", lv,
                     zsrv__method_name(m));
            hist(t, "zeolite_request_duration_seconds", labels, &st->mx.latency[m]);
        }
    }
}

static void process_metrics(text *t, const struct zsrv_metrics *m)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    family(t, "process_cpu_seconds_total", "counter", "User and system CPU time.");
    add(t, "process_cpu_seconds_total %.6f\n", cpu);
    family(t, "process_start_time_seconds", "gauge", "When the server started (Unix time).");
    add(t, "process_start_time_seconds %.3f\n", m->started);
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%*s %ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    family(t, "process_resident_memory_bytes", "gauge", "Resident memory.");
    add(t, "process_resident_memory_bytes %lld\n", (long long)pages * sysconf(_SC_PAGESIZE));
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d)
        closedir(d);
    family(t, "process_open_fds", "gauge", "Open file descriptors.");
    add(t, "process_open_fds %zu\n", fds ? fds - 1 : 0);   /* less opendir's own */
}

static int render(const struct zsrv_metrics *m, zbuf *out)
{
    text t = {ZBUF_INIT, 0};
    counters(&t, m->srv);
    gauges(&t, m->srv);
    server_wide(&t, m->srv);
    histograms(&t, m->srv);
    process_metrics(&t, m);
    if (t.failed) {
        zbuf_free(&t.b);
        return ZE_NOMEM;
    }
    *out = t.b;
    return 0;
}

/* ---- HTTP -------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *type,
                               const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **state)
{
    const struct zsrv_metrics *m = cls;
    static const char plain[] = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        static const char msg[] = "only GET /metrics\n";
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, plain, msg, sizeof msg - 1);
    }
    if (strcmp(url, "/metrics")) {
        static const char msg[] = "zeolite serves its metrics at /metrics\n";
        return respond(conn, MHD_HTTP_NOT_FOUND, plain, msg, sizeof msg - 1);
    }
    zbuf body = ZBUF_INIT;
    if (render(m, &body) < 0) {
        static const char msg[] = "out of memory\n";
        return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, plain, msg, sizeof msg - 1);
    }
    enum MHD_Result rc = respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                 body.data, body.len);
    zbuf_free(&body);
    return rc;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    zsrv__log(ZSRV_LOG_WARNING, "metrics: %s", msg);
}

/* ---- the loop's side --------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* Run what is due, then wait for the epoll fd or the next timeout. */
static void run_mhd(struct zsrv_metrics *m)
{
    MHD_run(m->d);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(m->d, &ms) == MHD_YES)
        uv_timer_start(&m->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&m->timer);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    run_mhd(p->data);
}

static int resolve(const char *address, struct sockaddr_storage *sa, zerr *err)
{
    zsrv_address a;
    if (zsrv__address_parse(address, &a, NULL) < 0 || a.is_unix)
        return zerr_set(err, ZE_INVAL, "bad metrics address '%s' (HOST:PORT, the port in "
                        "1-65535)", address);
    struct addrinfo *res;
    int rc = zsrv__address_resolve(address, &a, &res, err);
    if (rc < 0)
        return rc;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void latency_free(zsrv *s)
{
    for (size_t i = 0; i < s->n_storages; i++) {
        free(s->storages[i].mx.latency);
        s->storages[i].mx.latency = NULL;
    }
}

static void metrics_free(zsrv *s, struct zsrv_metrics *m)
{
    if (m->d)
        MHD_stop_daemon(m->d);
    free(m);
    latency_free(s);
}

int zsrv__metrics_start(zsrv *s, const char *address, zerr *err)
{
    struct sockaddr_storage sa;
    int rc = resolve(address, &sa, err);
    if (rc < 0)
        return rc;
    struct zsrv_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    m->srv = s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->started = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    for (size_t i = 0; i < s->n_storages; i++)
        if (!(s->storages[i].mx.latency = calloc(zsrv__method_count(), sizeof(zsrv_hist))))
            goto nomem;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* A scraper gets 10 s and 16 connections: it cannot hold the loop's fds. */
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
                            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT, 16u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    const union MHD_DaemonInfo *ep = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD)
                                          : NULL;
    if (!ep) {
        metrics_free(s, m);
        return zerr_set(err, ZE_IO, "cannot serve metrics on %s (port in use?)", address);
    }
    uv_poll_init(s->loop, &m->poll, ep->epoll_fd);
    uv_timer_init(s->loop, &m->timer);
    m->poll.data = m->timer.data = m;
    uv_poll_start(&m->poll, UV_READABLE, on_poll);
    s->metrics = m;
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    zsrv__log(ZSRV_LOG_INFO, "metrics on %s (port %u), GET /metrics", address,
              port ? (unsigned)port->port : 0u);
    return 0;
nomem:
    metrics_free(s, m);
    return zerr_set(err, ZE_NOMEM, "out of memory");
}

void zsrv__metrics_stop(zsrv *s)
{
    struct zsrv_metrics *m = s->metrics;
    if (!m)
        return;
    if (!uv_is_closing((uv_handle_t *)&m->poll))
        uv_close((uv_handle_t *)&m->poll, NULL);
    if (!uv_is_closing((uv_handle_t *)&m->timer))
        uv_close((uv_handle_t *)&m->timer, NULL);
}

void zsrv__metrics_free(zsrv *s)
{
    if (s->metrics)
        metrics_free(s, s->metrics);
    s->metrics = NULL;
}
