/* server.c: start-up, the loop's housekeeping handles, and shutdown.
 *
 * The listeners are bound before anything is created on disk, and listen
 * once the databases are open (start()).
 * SIGTERM/SIGINT stop accepting, close idle connections at once, let
 * commits already voted or handed to the writer finish for up to STOP_GRACE
 * milliseconds, abort whatever is left, and return once every commit handed
 * to the writer is durable. SIGUSR2 reopens the log file. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ztid.h"


#define STOP_GRACE 1500    /* ms for voted transactions to finish at shutdown */
#define REFRESH_MS 1000    /* readers are renewed so LMDB can reuse pages */

zsrv_storage *zsrv__find_storage(zsrv *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n_storages; i++)
        if (strlen(s->storages[i].name) == len && !memcmp(s->storages[i].name, name, len))
            return &s->storages[i];
    return NULL;
}

/* ---- storages ---------------------------------------------------------- */

/* A last tid further ahead of the clock than a client may name one (an
 * earlier build let a client commit it, or a Data.fs held it): the store
 * goes on with tids after it, which the operator should know. */
static void warn_future_tid(const zsrv_storage *st, uint64_t last)
{
    double ahead = ztid_time(last) - (double)time(NULL);
    if (!(ahead > st->srv->cfg->max_future_tid))
        return;
    uint64_t next;
    const char *then = ztid_later(last, last, &next) ? "no tid can follow it: commits will fail"
                       : last >= ZTID_ZODB_MAX - 1 ? "ZODB clients cannot load what commits after it"
                       : "new transactions get the tids that follow it";
    zsrv__log(ZSRV_LOG_WARNING, "storage %s: the last transaction %016llx lies %.0f seconds "
              "past the server's clock (max-future-tid %g): %s", st->name,
              (unsigned long long)last, ahead, st->srv->cfg->max_future_tid, then);
}

/* The storage's database: an LMDB folder, or PostgreSQL (any libpq
 * conninfo, URI or not). */
static int open_store(store **out, const zsrv_storage_cfg *sc, const store_options *opt,
                      zerr *err)
{
    if (!sc->dsn)
        return store_open(out, sc->path, opt, err);
    return store_open_postgresql(out, sc->dsn, opt, err);
}

static void storage_options(const zsrv_storage_cfg *sc, store_options *opt)
{
    opt->pool_size = sc->pool_size;
    opt->retry_seconds = sc->retry_seconds;
    opt->lock_timeout_ms = sc->lock_timeout_ms;
    opt->blob_dir = sc->blob_cache;
    opt->read_dsn = sc->read_dsn;
    opt->read_max_lag = sc->read_max_lag;
    opt->log = zsrv__log_store;
    opt->log_data = sc->name;
}

static int storage_open(zsrv *s, zsrv_storage *st, const zsrv_storage_cfg *sc, zerr *err)
{
    const zsrv_config *cfg = s->cfg;
    st->srv = s;
    st->name = sc->name;
    st->read_only = cfg->read_only || sc->read_only;
    st->pack_gc = sc->pack_gc;
    st->shared = sc->shared;
    st->start = time(NULL);
    if (!sc->dsn && mkdir(sc->path, 0755) < 0 && errno != EEXIST && !st->read_only)
        return zerr_sys(err, errno, "cannot create %s", sc->path);
    store_options opt = {.read_only = st->read_only, .create = !st->read_only,
                         .exclusive = 1, .no_sync = cfg->no_sync, .shared = sc->shared};
    storage_options(sc, &opt);
    if (!cfg->client_conflict_resolution)
        opt.resolver = zsrv__resolver(sc);
    int rc = open_store(&st->st, sc, &opt, err);
    if (rc == ZE_NOTFOUND && st->read_only) {
        /* -f creates a missing database, even one then served read-only;
         * so does --postgresql its schema in an empty database. */
        store_options mk = {.create = 1, .exclusive = 1};
        storage_options(sc, &mk);
        if ((rc = open_store(&st->st, sc, &mk, err)) < 0)
            return rc;
        store_close(st->st);
        st->st = NULL;
        rc = open_store(&st->st, sc, &opt, err);
    }
    if (rc < 0)
        return rc;
    /* Before the reader: what the feed's catch-up delivers is then in its
     * snapshot (and in the seeded invalidation queue); the events queued
     * for it name tids already visible, which feed.c skips. */
    if (sc->shared && (rc = zsrv__feed_start(st, err)) < 0)
        return rc;
    if ((rc = store_reader_new(st->st, &st->rd, err)) < 0)
        return rc;
    st->visible = store_reader_last_tid(st->rd);
    if ((rc = zsrv__invq_init(st, (size_t)cfg->invq_size, err)) < 0)
        return rc;
    uv_timer_init(s->loop, &st->timeout_timer);
    st->timeout_timer.data = st;
    /* A store that may wait on the network is called off the loop only. */
    const char *offloop = getenv("ZEOLITE_OFFLOOP");
    st->offloop = (store_caps(st->st) & STORE_CAP_BLOCKING) || (offloop && !strcmp(offloop, "1"));
    st->n_readers = sc->dsn && sc->pool_size ? (size_t)sc->pool_size : ZSRV_POOL_READERS;
    if ((rc = zsrv__pool_start(st, err)) < 0)
        return rc;
    if (st->offloop) {
        /* Its workers read; a reader kept here would pin an old snapshot. */
        store_reader_free(st->rd);
        st->rd = NULL;
    }
    /* A conninfo may hold a password: only the folder is named. */
    zsrv__log(ZSRV_LOG_INFO, "storage %s: %s%s%s, last transaction %016llx%s", st->name,
              sc->dsn ? (sc->shared ? "PostgreSQL shared with other servers" : "PostgreSQL")
                      : sc->path, sc->dsn && sc->read_dsn ? ", reads from a standby" : "",
              st->read_only ? " (read-only)" : "",
              (unsigned long long)st->visible, st->offloop ? ", store calls off the loop" : "");
    warn_future_tid(st, st->visible);
    return 0;
}

static void storages_close(zsrv *s)
{
    for (size_t i = 0; i < s->n_storages; i++) {
        zsrv_storage *st = &s->storages[i];
        if (st->st && st->stats.commits) {
            store_stats ss;
            store_get_stats(st->st, &ss);
            zsrv__log(ZSRV_LOG_INFO, "storage %s: %llu commits in %llu durable syncs", st->name,
                     (unsigned long long)ss.commits, (unsigned long long)ss.syncs);
        }
        zsrv__pool_stop(st);
        zsrv__invq_free(st);
        oidmap_free(&st->locked);
        oidmap_free(&st->claimed);
        store_reader_free(st->rd);
        store_close(st->st);
    }
    free(s->storages);
    s->storages = NULL;
}

/* ---- loop handles ------------------------------------------------------ */

static void on_check(uv_check_t *h)
{
    zsrv__flush_dirty(h->data);
}

static void on_commit_async(uv_async_t *h)
{
    zsrv *s = h->data;
    pthread_mutex_lock(&s->done_lock);
    zsrv_commit *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_lock);
    while (list) {
        zsrv_commit *cm = list;
        list = cm->done_next;
        if (cm->feed)
            zsrv__feed_event(cm);
        else
            zsrv__commit_done(cm);
    }
    for (size_t i = 0; i < s->n_storages; i++)
        zsrv__feed_check(&s->storages[i]);
    zsrv__stop_progress(s);
}

static void on_refresh(uv_timer_t *t)
{
    zsrv *s = t->data;
    for (size_t i = 0; i < s->n_storages; i++)
        zsrv__storage_sync(&s->storages[i]);
    zsrv__budget_tick(s);
}

static int busy(zsrv *s)
{
    for (size_t i = 0; i < s->n_storages; i++)
        if (s->storages[i].inflight || s->storages[i].packing || s->storages[i].jobs)
            return 1;
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    close_handle(h);
}

/* Nothing is left in the writer's hands: say goodbye (replies already
 * queued still go out) and close what keeps the loop alive. */
static void finish_stop(zsrv *s)
{
    /* Closing the watchers restores the default actions: a second SIGTERM
     * must not kill the process while it writes its last replies. Done
     * before any connection closes, so that no client (a supervisor's
     * check, a test) can see the close and signal into that moment. */
    close_handle((uv_handle_t *)&s->sig_term);
    close_handle((uv_handle_t *)&s->sig_int);
    close_handle((uv_handle_t *)&s->sig_hup);
    close_handle((uv_handle_t *)&s->sig_usr2);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (zsrv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->out.len || c->writing) {
            c->close_after_flush = 1;
            zsrv__conn_mark_dirty(c);
        } else {
            zsrv__conn_close(c, ZSRV_LOG_INFO, "server stopped");
        }
    }
    zsrv__flush_dirty(s);
    zsrv__metrics_stop(s);
    close_handle((uv_handle_t *)&s->flush_check);
    close_handle((uv_handle_t *)&s->commit_async);
    close_handle((uv_handle_t *)&s->refresh_timer);
    close_handle((uv_handle_t *)&s->stop_timer);
    for (size_t i = 0; i < s->n_storages; i++) {
        close_handle((uv_handle_t *)&s->storages[i].timeout_timer);
        close_handle((uv_handle_t *)&s->storages[i].job_async);
    }
}

/* Shutdown goes on while a voted transaction may still finish (force 0) or
 * its commit is with the writer. force: abort the voted ones now. */
static int stop_check(zsrv *s, int force)
{
    int pending = 0;
    for (zsrv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->txn.vote == ZSRV_VOTE_FINISHING)
            pending = 1;
        else if (c->txn.active && force)
            zsrv__conn_close(c, ZSRV_LOG_WARNING, "server stopped before tpc_finish");
        else if (c->txn.active && (c->txn.vote == ZSRV_VOTE_OK || c->txn.vote == ZSRV_VOTE_CONFLICT ||
                                   c->txn.vote == ZSRV_VOTE_RUNNING))
            pending = 1;
    }
    if (pending || busy(s))
        return 0;
    finish_stop(s);
    return 1;
}

static void on_stop_timer(uv_timer_t *t)
{
    zsrv *s = t->data;
    if (!stop_check(s, 1))
        uv_timer_start(t, on_stop_timer, 20, 0);
}

void zsrv__stop_progress(zsrv *s)
{
    if (s->stopping)
        stop_check(s, 0);
}

static void begin_stop(zsrv *s, const char *why, int status)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    s->exit_status = status;
    zsrv__notify("STOPPING=1");
    zsrv__log(ZSRV_LOG_INFO, "%s", why);
    zsrv__listen_close(s);
    /* Idle connections go now; voters get STOP_GRACE to finish. */
    for (zsrv_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        zsrv_vote_state v = c->txn.active ? c->txn.vote : ZSRV_VOTE_NONE;
        if (v != ZSRV_VOTE_OK && v != ZSRV_VOTE_FINISHING && v != ZSRV_VOTE_CONFLICT &&
            v != ZSRV_VOTE_RUNNING)
            zsrv__conn_close(c, ZSRV_LOG_INFO, "server stopping");
    }
    s->stop_timer.data = s;
    if (!stop_check(s, 0))
        uv_timer_start(&s->stop_timer, on_stop_timer, STOP_GRACE, 0);
}

void zsrv__stop(zsrv *s, const char *why, int status)
{
    begin_stop(s, why, status);
}

static void on_signal(uv_signal_t *h, int signum)
{
    zsrv *s = h->data;
    switch (signum) {
    case SIGUSR2:
        zsrv__notify_reloading();
        zsrv__log_reopen();
        zsrv__notify("READY=1");
        break;
    case SIGHUP:
        begin_stop(s, "restarted by SIGHUP", 1);
        break;
    case SIGINT:
        begin_stop(s, "terminated by SIGINT", 0);
        break;
    default:
        begin_stop(s, "terminated by SIGTERM", 0);
        break;
    }
}

static void handles_init(zsrv *s)
{
    uv_check_init(s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_check);
    uv_async_init(s->loop, &s->commit_async, on_commit_async);
    s->commit_async.data = s;
    uv_timer_init(s->loop, &s->refresh_timer);
    s->refresh_timer.data = s;
    uv_timer_start(&s->refresh_timer, on_refresh, REFRESH_MS, REFRESH_MS);
    uv_timer_init(s->loop, &s->stop_timer);
    uv_signal_t *sigs[] = {&s->sig_term, &s->sig_int, &s->sig_hup, &s->sig_usr2};
    int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(s->loop, sigs[i]);
        sigs[i]->data = s;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
}

/* ---- run --------------------------------------------------------------- */

static int write_pid_file(const char *path, zerr *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return zerr_sys(err, errno, "cannot write pid file %s", path);
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0)
        return zerr_sys(err, errno, "cannot write pid file %s", path);
    return 0;
}

/* The order matters: checks, then the bind, and only then anything on
 * disk (log files, databases), so that a refused start, a port in use
 * included, leaves nothing behind (preflight.c); the pid file, then the
 * listen, come last, so that a client or supervisor that can connect finds
 * the databases open and the pid file written. */
static int start(zsrv *s, zerr *err)
{
    const zsrv_config *cfg = s->cfg;
    int rc;
    if ((rc = zsrv__preflight(s, err)) < 0)
        return rc;
    if (cfg->test_only)
        return zsrv__preflight_storages(s, err);
    if (!(s->storages = calloc(cfg->n_storages, sizeof *s->storages)))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    handles_init(s);
    if ((rc = zsrv__bind(s, cfg->address, err)) < 0)
        return rc;
    if ((rc = zsrv__log_setup(cfg, err)) < 0)
        return rc;
    s->log_open = 1;
    for (size_t i = 0; i < cfg->n_storages; i++) {
        s->n_storages = i + 1;
        if ((rc = storage_open(s, &s->storages[i], &cfg->storages[i], err)) < 0)
            return rc;
    }
    if (cfg->pid_file && (rc = write_pid_file(cfg->pid_file, err)) < 0)
        return rc;
    s->pid_written = cfg->pid_file != NULL;
    if ((rc = zsrv__listen_start(s, err)) < 0)
        return rc;
    if (cfg->metrics_address && (rc = zsrv__metrics_start(s, cfg->metrics_address, err)) < 0)
        return rc;
    zsrv__log(ZSRV_LOG_INFO, "serving %zu storage%s, protocol %s%s", s->n_storages,
             s->n_storages == 1 ? "" : "s", cfg->msgpack ? "M5" : "Z5",
             s->ssl_ctx ? " over TLS" : "");
    uint64_t fits = zsrv__in_largest_frame(cfg);
    if (fits < cfg->max_frame)
        zsrv__log(ZSRV_LOG_WARNING, "request-memory (%llu bytes) takes messages of at most %llu "
                  "bytes, less than max-frame (%u): larger ones are refused",
                  (unsigned long long)cfg->request_memory, (unsigned long long)fits,
                  cfg->max_frame);
    /* Every port accepts connections now: systemd may start what needs us. */
    char ready[128];
    snprintf(ready, sizeof ready, "READY=1\nSTATUS=serving %zu storage%s", s->n_storages,
             s->n_storages == 1 ? "" : "s");
    zsrv__notify(ready);
    return 0;
}

int zsrv_run(const zsrv_config *cfg, zerr *err)
{
    /* Large records and replies are transient, and off the loop several
     * threads build them at once: a fixed threshold keeps each in a mapping
     * of its own, given back when freed, where glibc would raise it after
     * the first free and keep tens of MB in every thread's arena. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    zsrv *s = calloc(1, sizeof *s);
    uv_loop_t loop;
    if (!s || uv_loop_init(&loop) < 0) {
        free(s);
        return zerr_set(err, ZE_NOMEM, "cannot set up the event loop");
    }
    s->cfg = cfg;
    s->loop = &loop;
    loop.data = s;
    pthread_mutex_init(&s->done_lock, NULL);
    int rc = start(s, err);
    /* The command prints a failed start on stderr; a log that goes
     * elsewhere keeps it too. */
    if (rc < 0 && s->log_open && !zsrv__log_reaches_stderr())
        zsrv__log(ZSRV_LOG_CRITICAL, "%s", err->msg);
    if (rc == 0 && !cfg->test_only) {
        uv_run(&loop, UV_RUN_DEFAULT);
        rc = s->exit_status;
    }
    /* Close whatever start() left open (listeners and timers of a failed
     * start, the storages' timers). */
    zsrv__listen_close(s);
    /* A feed still delivers until its store closes: from now on what it
     * sends is dropped (done_push), and what it queued is freed below. */
    pthread_mutex_lock(&s->done_lock);
    s->done_closed = 1;
    pthread_mutex_unlock(&s->done_lock);
    uv_walk(&loop, walk_close, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    zsrv__metrics_free(s);
    storages_close(s);
    zsrv__feed_drop(s->done_head);
    zsrv__tls_ctx_free(s);
    if (s->pid_written)
        unlink(cfg->pid_file);
    pthread_mutex_destroy(&s->done_lock);
    zbuf_free(&s->load_data);
    if (s->log_open && rc >= 0)
        zsrv__log(ZSRV_LOG_INFO, "stopped");
    free(s);
    zsrv__log_close();
    return rc;
}
