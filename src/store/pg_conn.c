/* pg_conn.c: connections to PostgreSQL: opening them with the session
 * settings every zeolite session needs, the read and write pools, waiting
 * between failed attempts, running statements, and turning PostgreSQL's
 * errors into ZE_* codes. */
#include "store/pg.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST 0.05
#define BACKOFF_MAX 2.0

int store__pg_next_batch(int rows, const PGresult *res, int max)
{
    size_t bytes = 0;
    int n = res ? PQntuples(res) : 0, nf = res ? PQnfields(res) : 0;
    for (int i = 0; i < n; i++)
        for (int f = 0; f < nf; f++)
            bytes += (size_t)PQgetlength(res, i, f);
    if (bytes > STPG_BATCH_BYTES && n)
        rows = (int)((double)n * STPG_BATCH_BYTES / (double)bytes);
    else if (bytes < STPG_BATCH_BYTES / 4)
        rows *= 2;
    return rows < 1 ? 1 : rows > max ? max : rows;
}

double store__pg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - store__pg_now();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- parameters ------------------------------------------------------------ */

static void p_num(stpg_params *p, const void *bytes, int len)
{
    memcpy(p->num[p->n], bytes, (size_t)len);
    p->v[p->n] = (const char *)p->num[p->n];
    p->len[p->n] = len;
    p->fmt[p->n] = 1;
    p->n++;
}

void stpg_p_i64(stpg_params *p, int64_t v)
{
    uint8_t b[8];
    zbe64_put(b, (uint64_t)v);
    p_num(p, b, 8);
}

void stpg_p_id(stpg_params *p, uint64_t id) { stpg_p_i64(p, stpg_enc(id)); }

void stpg_p_i32(stpg_params *p, int32_t v)
{
    uint8_t b[4];
    zbe32_put(b, (uint32_t)v);
    p_num(p, b, 4);
}

void stpg_p_i16(stpg_params *p, int16_t v)
{
    uint8_t b[2];
    zbe16_put(b, (uint16_t)v);
    p_num(p, b, 2);
}

void stpg_p_bool(stpg_params *p, int v)
{
    uint8_t b = v ? 1 : 0;
    p_num(p, &b, 1);
}

void stpg_p_bytes(stpg_params *p, const void *data, size_t len)
{
    static const char empty[1];
    p->v[p->n] = len ? data : empty;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

void stpg_p_null(stpg_params *p)
{
    p->v[p->n] = NULL;
    p->len[p->n] = 0;
    p->fmt[p->n] = 1;
    p->n++;
}

/* ---- binary arrays ----------------------------------------------------------- */

static int put32(zbuf *b, uint32_t v)
{
    uint8_t x[4];
    zbe32_put(x, v);
    return zbuf_append(b, x, 4);
}

int stpg_arr_begin(zbuf *b, int elem_oid, size_t n)
{
    zbuf_reset(b);
    /* ndim, has-nulls, element type, then the one dimension: length, lower bound */
    if (put32(b, 1) || put32(b, 1) || put32(b, (uint32_t)elem_oid) || put32(b, (uint32_t)n) ||
        put32(b, 1))
        return ZE_NOMEM;
    return 0;
}

int stpg_arr_id(zbuf *b, uint64_t id)
{
    uint8_t x[8];
    zbe64_put(x, (uint64_t)stpg_enc(id));
    return put32(b, 8) || zbuf_append(b, x, 8) ? ZE_NOMEM : 0;
}

int stpg_arr_i32(zbuf *b, int32_t v)
{
    return put32(b, 4) || put32(b, (uint32_t)v) ? ZE_NOMEM : 0;
}

int stpg_arr_bool(zbuf *b, int v)
{
    return put32(b, 1) || zbuf_append_byte(b, v ? 1 : 0) ? ZE_NOMEM : 0;
}

int stpg_arr_i64(zbuf *b, int64_t v)
{
    uint8_t x[8];
    zbe64_put(x, (uint64_t)v);
    return put32(b, 8) || zbuf_append(b, x, 8) ? ZE_NOMEM : 0;
}

int stpg_arr_null(zbuf *b) { return put32(b, UINT32_MAX); }

/* ---- binary COPY --------------------------------------------------------------- */

int stpg_copy_header(zbuf *b)
{
    static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    return zbuf_append(b, sig, sizeof sig) || put32(b, 0) || put32(b, 0) ? ZE_NOMEM : 0;
}

int stpg_copy_row(zbuf *b, int nfields)
{
    uint8_t x[2];
    zbe16_put(x, (uint16_t)nfields);
    return zbuf_append(b, x, 2);
}

int stpg_copy_id(zbuf *b, uint64_t id) { return stpg_arr_id(b, id); }
int stpg_copy_i32(zbuf *b, int32_t v) { return stpg_arr_i32(b, v); }

int stpg_copy_i16(zbuf *b, int16_t v)
{
    uint8_t x[2];
    zbe16_put(x, (uint16_t)v);
    return put32(b, 2) || zbuf_append(b, x, 2) ? ZE_NOMEM : 0;
}

int stpg_copy_i64(zbuf *b, int64_t v) { return stpg_arr_i64(b, v); }

int stpg_copy_null(zbuf *b) { return put32(b, UINT32_MAX); }
int stpg_copy_bytes_head(zbuf *b, size_t len) { return put32(b, (uint32_t)len); }

int stpg_copy_trailer(zbuf *b)
{
    uint8_t x[2] = {0xff, 0xff};
    return zbuf_append(b, x, 2);
}

int stpg_copy_start(stpg_store *s, stpg_conn *c, const char *sql, zerr *err)
{
    PGresult *r = PQexec(c->pg, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    int rc = ok ? 0 : store__pg_error(s, c, r, "start COPY", err);
    PQclear(r);
    return rc;
}

int stpg_copy_send(stpg_store *s, stpg_conn *c, const void *p, size_t n, zerr *err)
{
    const char *q = p;
    while (n) {
        int k = n > (1u << 30) ? (1 << 30) : (int)n;
        if (PQputCopyData(c->pg, q, k) != 1)
            return store__pg_error(s, c, NULL, "send COPY data", err);
        q += k;
        n -= (size_t)k;
    }
    return 0;
}

int stpg_copy_end(stpg_store *s, stpg_conn *c, zerr *err)
{
    if (PQputCopyEnd(c->pg, NULL) != 1)
        return store__pg_error(s, c, NULL, "end COPY", err);
    int rc = 0;
    for (PGresult *r; (r = PQgetResult(c->pg));) {
        if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = store__pg_error(s, c, r, "COPY", err);
        PQclear(r);
    }
    return rc;
}

void stpg_copy_abort(stpg_store *s, stpg_conn *c)
{
    if (PQputCopyEnd(c->pg, "zeolite: the write failed") != 1)
        c->broken = 1;
    for (PGresult *r; (r = PQgetResult(c->pg));)
        PQclear(r);
    (void)s;
}

/* ---- errors ------------------------------------------------------------------ */

static int is_lost(PGconn *pg, const char *state)
{
    if (PQstatus(pg) != CONNECTION_OK)
        return 1;
    /* connection exceptions, and a server shutting down or not yet up */
    return state && (!strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
                     !strcmp(state, "57P02") || !strcmp(state, "57P03"));
}

static int code_of(const char *state, const char *hint)
{
    if (!state)
        return ZE_IO;
    if (!strcmp(state, "53100") || (hint && strstr(hint, "free disk space")))
        return ZE_FULL;
    if (!strcmp(state, "53200"))
        return ZE_NOMEM;
    if (!strcmp(state, "53300"))
        return ZE_BUSY;
    if (!strcmp(state, "55P03") || !strcmp(state, "57014") || !strcmp(state, "40P01"))
        return ZE_TIMEOUT;
    if (!strcmp(state, "25006"))
        return ZE_READONLY;
    if (!strncmp(state, "54", 2))
        return ZE_TOOBIG;
    if (!strncmp(state, "23", 2))
        return ZE_INVAL;
    if (!strncmp(state, "XX", 2))
        return ZE_CORRUPT;
    return ZE_IO;
}

/* libpq's message on one line, in buf: its lines (one per host tried, with
 * a conninfo listing several) joined by "; ". */
static const char *conn_message(PGconn *pg, char *buf, size_t cap)
{
    const char *m = pg ? PQerrorMessage(pg) : "out of memory";
    size_t n = 0;
    while (*m && n + 3 < cap) {
        if (*m != '\n') {
            buf[n++] = *m++;
            continue;
        }
        while (*m == '\n' || *m == '\t' || *m == ' ')
            m++;
        if (*m) {
            buf[n++] = ';';
            buf[n++] = ' ';
        }
    }
    while (n && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

int store__pg_error(stpg_store *s, stpg_conn *c, const PGresult *res, const char *what,
                    zerr *err)
{
    char buf[ZERR_MSG_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *shown = c->shown ? c->shown : s->shown;
    if (!msg)
        msg = conn_message(c->pg, buf, sizeof buf);
    snprintf(c->state, sizeof c->state, "%s", state ? state : "");
    if (is_lost(c->pg, state)) {
        c->broken = 1;
        return zerr_set(err, ZE_IO, "%s: lost the connection to PostgreSQL (%s): %s", what,
                        shown, msg);
    }
    int code = code_of(state, hint);
    if (code == ZE_FULL)
        return zerr_set(err, code, "%s: PostgreSQL (%s) has no room: %s%s%s", what, shown,
                        msg, hint ? ". " : "", hint ? hint : "");
    return zerr_set(err, code, "%s: PostgreSQL (%s): %s%s%s%s", what, shown, msg,
                    state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

/* ---- statements ----------------------------------------------------------------- */

static PGresult *check(stpg_store *s, stpg_conn *c, PGresult *r, const char *what, zerr *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
        c->rc = 0;
        return r;
    }
    c->rc = store__pg_error(s, c, r, what, err);
    PQclear(r);
    return NULL;
}

int store__pg_prepare(stpg_store *s, stpg_conn *c, stpg_stmt q, zerr *err)
{
    const stpg_sql *sql = &store__pg_sql[q];
    uint64_t bit = 1ull << q;
    if (c->prepared & bit)
        return 0;
    PGresult *r = check(s, c, PQprepare(c->pg, sql->name, sql->text, sql->nparams, NULL),
                        sql->name, err);
    if (r)
        c->prepared |= bit;
    PQclear(r);
    return c->rc;
}

PGresult *store__pg_exec(stpg_store *s, stpg_conn *c, stpg_stmt q, const stpg_params *p,
                         zerr *err)
{
    const stpg_sql *sql = &store__pg_sql[q];
    if (store__pg_prepare(s, c, q, err))
        return NULL;
    PGresult *r = PQexecPrepared(c->pg, sql->name, p ? p->n : 0, p ? p->v : NULL,
                                 p ? p->len : NULL, p ? p->fmt : NULL, 1);
    return check(s, c, r, sql->name, err);
}

PGresult *store__pg_query(stpg_store *s, stpg_conn *c, const char *sql, const stpg_params *p,
                          zerr *err)
{
    PGresult *r = p ? PQexecParams(c->pg, sql, p->n, NULL, p->v, p->len, p->fmt, 1)
                    : PQexec(c->pg, sql);
    return check(s, c, r, "query", err);
}

int store__pg_command(stpg_store *s, stpg_conn *c, const char *sql, zerr *err)
{
    PGresult *r = check(s, c, PQexec(c->pg, sql), sql, err);
    PQclear(r);
    return c->rc;
}

/* ---- opening connections ----------------------------------------------------------- */

/* PostgreSQL's notices (a server shutting down, ...) go to the store's log,
 * never to stderr. */
static void on_notice(void *arg, const char *msg)
{
    stpg_store *s = arg;
    char line[ZERR_MSG_MAX];
    snprintf(line, sizeof line, "%s", msg);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    store__pg_log(s, STORE_LOG_INFO, "PostgreSQL (%s): %s", s->shown, line);
}

int store__pg_connect(stpg_store *s, int kind, stpg_conn **out, zerr *err)
{
    return store__pg_connect_to(s, s->conninfo, NULL, kind, out, err);
}

int store__pg_connect_to(stpg_store *s, const char *conninfo, const char *shown, int kind,
                         stpg_conn **out, zerr *err)
{
    char buf[ZERR_MSG_MAX], set[512];
    /* The caller's settings, given in the conninfo, override ours. A host
     * that vanishes (a primary's machine down, before its standby is
     * promoted) is given up on in seconds, not after TCP's own minutes: an
     * idle session is probed after 10 s, a request unanswered at the TCP
     * level fails after 15 s (both for TCP only, as libpq applies them). */
    const char *keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "fallback_application_name",
                          "dbname", NULL};
    const char *vals[] = {"10", "10", "5", "3", "15000", "zeolite", conninfo, NULL};
    *out = NULL;
    stpg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    c->pool = kind;
    c->shown = shown;
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        int rc = zerr_set(err, ZE_IO, "cannot connect to PostgreSQL (%s): %s",
                          shown ? shown : s->shown,
                          conn_message(c->pg, buf, sizeof buf));
        store__pg_disconnect(c);
        return rc;
    }
    PQsetNoticeProcessor(c->pg, on_notice, s);
    /* A commit is acknowledged once durable, whatever the database's
     * default: on, or remote_apply when the database asks for it (its
     * synchronous standbys have then applied it too); a vote waits for an
     * oid's lock only so long. */
    snprintf(set, sizeof set, "SELECT set_config('synchronous_commit', %s, false); "
             "SET lock_timeout = %d; SET statement_timeout = 0; "
             "SET idle_in_transaction_session_timeout = 0",
             s->opt.no_sync ? "'off'" : "CASE current_setting('synchronous_commit') WHEN "
                                        "'remote_apply' THEN 'remote_apply' ELSE 'on' END",
             s->lock_timeout_ms);
    int rc = store__pg_command(s, c, set, err);
    if (rc) {
        store__pg_disconnect(c);
        return rc;
    }
    *out = c;
    return 0;
}

void store__pg_disconnect(stpg_conn *c)
{
    if (!c)
        return;
    if (c->pg)
        PQfinish(c->pg);
    free(c);
}

/* ---- the pools ------------------------------------------------------------------------ */

static stpg_pool *pool_of(stpg_store *s, int kind)
{
    return kind == STPG_POOL_READ ? &s->rpool : &s->wpool;
}

int store__pg_alive(stpg_conn *c)
{
    /* Whatever the server sent while the session was idle (a notice that it
     * shuts down, then the end of the connection) is read now; the end may
     * come a read after the notice. */
    for (int i = 0; i < 8 && PQstatus(c->pg) == CONNECTION_OK; i++) {
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (p.fd < 0 || poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(c->pg))
            return 0;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n);
    return PQstatus(c->pg) == CONNECTION_OK && !PQisBusy(c->pg);
}

/* An idle connection the server closed (it restarted) is noticed here, so
 * that a vote does not begin on it. */
static int still_open(stpg_conn *c) { return store__pg_alive(c); }

/* Open a connection for a pool slot (s->mu not held), waiting out the
 * backoff when until allows. */
static int open_slot(stpg_store *s, int kind, double until, stpg_conn **out, zerr *err)
{
    pthread_mutex_lock(&s->mu);
    double at = s->next_attempt;
    zerr down = s->down;
    pthread_mutex_unlock(&s->mu);
    if (at > store__pg_now()) {
        if (at > (until ? until : store__pg_now() + BACKOFF_MAX)) {
            if (err)
                *err = down;
            return down.code ? down.code : ZE_IO;
        }
        sleep_until(at);
    }
    int rc = store__pg_connect(s, kind, out, err);
    /* A new session may reach another database (a promoted standby): it is
     * used only when its history has all the store has served. */
    if (!rc && (rc = store__pg_check_history(s, *out, err))) {
        store__pg_disconnect(*out);
        *out = NULL;
        if (rc == ZE_CORRUPT)
            return rc;
    }
    pthread_mutex_lock(&s->mu);
    if (rc) {
        double wait = BACKOFF_FIRST * (double)(1u << (s->failures < 6 ? s->failures : 6));
        s->failures++;
        s->next_attempt = store__pg_now() + (wait < BACKOFF_MAX ? wait : BACKOFF_MAX);
        zerr_set(&s->down, rc, "%s", err ? err->msg : "cannot connect to PostgreSQL");
        if (s->failures == 1)
            store__pg_log(s, STORE_LOG_ERROR, "%s", s->down.msg);
    } else {
        if (s->failures)
            store__pg_log(s, STORE_LOG_INFO, "connected to PostgreSQL (%s) again", s->shown);
        s->failures = 0;
        s->next_attempt = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store__pg_acquire(stpg_store *s, int kind, double until, stpg_conn **out, zerr *err)
{
    *out = NULL;
    int rc = store__pg_refusal(s, err);
    if (rc)
        return rc;
    if (kind == STPG_OWN)
        return open_slot(s, kind, until, out, err);
    stpg_pool *p = pool_of(s, kind);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->closing) {
            pthread_mutex_unlock(&s->mu);
            return zerr_set(err, ZE_CLOSED, "the store %s is closing", s->shown);
        }
        if (s->refused.code) {
            rc = s->refused.code;
            if (err)
                *err = s->refused;
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
        if (p->free) {
            stpg_conn *c = p->free;
            p->free = c->next;
            if (still_open(c)) {
                pthread_mutex_unlock(&s->mu);
                *out = c;
                return 0;
            }
            p->n_out--;
            store__pg_disconnect(c);
            continue;
        }
        if (p->n_out < p->max)
            break;
        pthread_cond_wait(&s->cond, &s->mu);
    }
    p->n_out++;
    pthread_mutex_unlock(&s->mu);
    rc = open_slot(s, kind, until, out, err);
    if (rc) {
        pthread_mutex_lock(&s->mu);
        p->n_out--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

void store__pg_release(stpg_store *s, stpg_conn *c)
{
    if (!c)
        return;
    if (c->pool == STPG_OWN) {
        store__pg_disconnect(c);
        return;
    }
    /* Only an idle session goes back: one left inside a transaction would
     * hand its locks to the next user. */
    if (!c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        c->broken = 1;
    stpg_pool *p = pool_of(s, c->pool);
    pthread_mutex_lock(&s->mu);
    if (c->broken || s->closing) {
        p->n_out--;
        store__pg_disconnect(c);
    } else {
        c->next = p->free;
        p->free = c;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

int store__pg_read_primary(stpg_store *s, stpg_read_fn fn, void *ud, zerr *err)
{
    double until = store__pg_now() + s->retry_seconds;
    for (;;) {
        stpg_conn *c;
        int rc = store__pg_acquire(s, STPG_POOL_READ, until, &c, err);
        if (!rc) {
            rc = fn(s, c, ud, err);
            int lost = c->broken;
            store__pg_release(s, c);
            if (!lost)
                return rc;
        } else if (rc != ZE_IO) {
            return rc;
        }
        double now = store__pg_now();
        if (now >= until || s->closing)
            return rc;
        /* wait for the next attempt the backoff allows, within the deadline */
        pthread_mutex_lock(&s->mu);
        double at = s->next_attempt > now ? s->next_attempt : now + BACKOFF_FIRST;
        pthread_mutex_unlock(&s->mu);
        sleep_until(at < until ? at : until);
    }
}

void store__pg_log(stpg_store *s, int level, const char *fmt, ...)
{
    if (!s->opt.log)
        return;
    char line[ZERR_MSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->opt.log(s->opt.log_data, level, line);
}

typedef struct fetch_args {
    stpg_stmt q;
    const stpg_params *p;
    PGresult *res;
} fetch_args;

static int fetch_run(stpg_store *s, stpg_conn *c, void *ud, zerr *err)
{
    fetch_args *a = ud;
    a->res = store__pg_exec(s, c, a->q, a->p, err);
    return c->rc;
}

int store__pg_fetch(stpg_store *s, stpg_stmt q, const stpg_params *p, PGresult **res,
                    zerr *err)
{
    fetch_args a = {q, p, NULL};
    int rc = store__pg_read(s, fetch_run, &a, err);
    *res = a.res;
    return rc;
}
