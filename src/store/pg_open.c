/* pg_open.c: opening a PostgreSQL database (its schema made on first use or
 * checked), the database lock writers hold, the store-wide values, and
 * new_oids. */
#include "store/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OID_RESERVE 1000

/* ---- what messages show of the connection ---------------------------------- */

/* "dbname=zodb host=/run/postgresql user=zope": the conninfo's parts that
 * name the database, never its password. */
int store__pg_describe(const char *conninfo, char **out, zerr *err)
{
    static const char *const shown[] = {"dbname", "host", "hostaddr", "port", "user",
                                        "service", NULL};
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (!opts) {
        int rc = zerr_set(err, ZE_INVAL, "bad PostgreSQL connection string: %s",
                          msg ? msg : "out of memory");
        if (msg) {
            size_t n = strlen(err ? err->msg : "");
            while (err && n && err->msg[n - 1] == '\n')
                err->msg[--n] = '\0';
            PQfreemem(msg);
        }
        return rc;
    }
    zbuf b = ZBUF_INIT;
    int rc = 0;
    for (int k = 0; shown[k] && !rc; k++)
        for (PQconninfoOption *o = opts; o->keyword && !rc; o++)
            if (o->val && *o->val && !strcmp(o->keyword, shown[k])) {
                if (b.len)
                    rc = zbuf_append_byte(&b, ' ');
                if (!rc)
                    rc = zbuf_append(&b, o->keyword, strlen(o->keyword));
                if (!rc)
                    rc = zbuf_append_byte(&b, '=');
                if (!rc)
                    rc = zbuf_append(&b, o->val, strlen(o->val));
            }
    PQconninfoFree(opts);
    if (!rc && !b.len)
        rc = zbuf_append(&b, "the default database", 20);
    if (!rc)
        rc = zbuf_append_byte(&b, '\0');
    if (rc) {
        zbuf_free(&b);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    *out = (char *)b.data;
    return 0;
}

/* ---- schema --------------------------------------------------------------------- */

static const char schema_ddl[] =
    "CREATE SCHEMA zeolite;"
    "CREATE TABLE zeolite.meta (name text PRIMARY KEY, value bigint NOT NULL);"
    "CREATE TABLE zeolite.txns (tid bigint PRIMARY KEY, status \"char\" NOT NULL,"
    " username bytea NOT NULL, description bytea NOT NULL, extension bytea NOT NULL,"
    " nrec integer NOT NULL, size bigint NOT NULL);"
    "CREATE TABLE zeolite.records (tid bigint NOT NULL, idx integer NOT NULL,"
    " oid bigint NOT NULL, kind smallint NOT NULL, flags smallint NOT NULL,"
    " back_tid bigint, back_idx integer, data_tid bigint, data_idx integer,"
    " blob_id bigint, data bytea, PRIMARY KEY (tid, idx));"
    "CREATE INDEX records_oid ON zeolite.records (oid, tid, idx);"
    "CREATE INDEX records_blob ON zeolite.records (blob_id) WHERE blob_id IS NOT NULL;"
    "CREATE SEQUENCE zeolite.blob_ids;"
    "CREATE TABLE zeolite.blob_chunks (blob_id bigint NOT NULL, chunk integer NOT NULL,"
    " data bytea NOT NULL, PRIMARY KEY (blob_id, chunk));"
    /* pickles and blobs are stored as they come: compressing them costs
     * every write and most do not shrink much */
    "ALTER TABLE zeolite.records ALTER COLUMN data SET STORAGE EXTERNAL;"
    "ALTER TABLE zeolite.blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;";

/* The relations of other schemas, when the database has no zeolite schema:
 * "public.object_state, public.current_object" (up to five), or "". */
static int foreign_tables(stpg_store *s, stpg_conn *c, char *buf, size_t cap, zerr *err)
{
    PGresult *r = store__pg_query(
        s, c,
        "SELECT string_agg(n, ', ') FROM (SELECT n.nspname || '.' || c.relname AS n "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN "
        "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
        "ORDER BY 1 LIMIT 5) x",
        NULL, err);
    if (!r)
        return c->rc;
    snprintf(buf, cap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* 1 when the schema exists, with its version in *version. */
static int schema_version(stpg_store *s, stpg_conn *c, long long *version, zerr *err)
{
    PGresult *r = store__pg_query(s, c, "SELECT to_regclass('zeolite.meta') IS NOT NULL", NULL,
                                  err);
    if (!r)
        return c->rc;
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists)
        return 0;
    r = store__pg_query(s, c, "SELECT value FROM zeolite.meta WHERE name = 'version'", NULL,
                        err);
    if (!r)
        return c->rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return zerr_set(err, ZE_CORRUPT, "PostgreSQL (%s): the zeolite schema has no version "
                        "row", s->shown);
    }
    *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 1;
}

static int create_schema(stpg_store *s, stpg_conn *c, zerr *err)
{
    char rows[512];
    int rc = store__pg_command(s, c, schema_ddl, err);
    if (rc)
        return rc;
    snprintf(rows, sizeof rows, "INSERT INTO zeolite.meta (name, value) VALUES "
             "('version', %d), ('next_oid', %lld), ('last_tid', %lld), ('pack_tid', %lld), "
             "('objects', 0)", STPG_SCHEMA_VERSION, (long long)stpg_enc(1),
             (long long)stpg_enc(0), (long long)stpg_enc(0));
    return store__pg_command(s, c, rows, err);
}

/* Check the schema, or make it in an empty database; under the SCHEMA lock,
 * so two first openers do not both make it. */
static int check_schema(stpg_store *s, stpg_conn *c, zerr *err)
{
    char found[512];
    long long version = 0;
    int rc = store__pg_command(s, c, "BEGIN", err);
    if (!rc)
        rc = store__pg_command(s, c, "SELECT pg_advisory_xact_lock(2053467500, 1)", err);
    if (!rc && (rc = schema_version(s, c, &version, err)) == 1) {
        rc = version == STPG_SCHEMA_VERSION
                 ? 0 : zerr_set(err, ZE_VERSION, "PostgreSQL (%s) holds a zeolite schema of "
                                "version %lld; this zeolite reads version %d", s->shown,
                                version, STPG_SCHEMA_VERSION);
    } else if (!rc) {
        rc = foreign_tables(s, c, found, sizeof found, err);
        if (!rc && *found)
            rc = zerr_set(err, ZE_VERSION, "PostgreSQL (%s) is not a zeolite database: it "
                          "holds other tables (%s) and no zeolite schema; give an empty "
                          "database", s->shown, found);
        else if (!rc && (!s->opt.create || s->opt.read_only))
            rc = zerr_set(err, ZE_NOTFOUND, "no zeolite database in PostgreSQL (%s)",
                          s->shown);
        else if (!rc)
            rc = create_schema(s, c, err);
    }
    if (!rc)
        return store__pg_command(s, c, "COMMIT", err);
    zerr keep = err ? *err : (zerr){0};
    store__pg_command(s, c, "ROLLBACK", NULL);
    if (err)
        *err = keep;
    return rc;
}

/* ---- meta --------------------------------------------------------------------------- */

int store__pg_fetch_last_tid(stpg_store *s, stpg_conn *c, uint64_t *tid, zerr *err)
{
    PGresult *r = store__pg_exec(s, c, Q_LAST_TID, NULL, err);
    if (!r)
        return c->rc;
    int ok = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && PQgetlength(r, 0, 0) == 8;
    if (ok)
        *tid = stpg_get_id(PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok ? 0 : zerr_set(err, ZE_CORRUPT, "PostgreSQL (%s): no last_tid row", s->shown);
}

void store__pg_note_tid(stpg_store *s, uint64_t tid)
{
    pthread_mutex_lock(&s->mu);
    if (tid > s->last_tid) {
        s->last_tid = tid;
        pthread_cond_broadcast(&s->cond);   /* store_sync waits on it */
    }
    pthread_mutex_unlock(&s->mu);
}

static int load_meta(stpg_store *s, stpg_conn *c, zerr *err)
{
    PGresult *r = store__pg_query(s, c, "SELECT name, value FROM zeolite.meta", NULL, err);
    if (!r)
        return c->rc;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        long long v = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        if (!strcmp(name, "next_oid"))
            s->next_oid = s->oid_limit = stpg_dec(v);
        else if (!strcmp(name, "objects"))
            s->stats_objects = v > 0 ? (uint64_t)v : 0;
        else if (!strcmp(name, "pack_tid"))
            s->pack_tid = stpg_dec(v);
    }
    PQclear(r);
    r = store__pg_query(s, c, "SELECT pg_database_size(current_database())", NULL, err);
    if (!r)
        return c->rc;
    s->size_bytes = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    s->size_at = store__pg_now();
    PQclear(r);
    return store__pg_fetch_last_tid(s, c, &s->last_tid, err);
}

/* ---- the database lock ------------------------------------------------------------------ */

/* How long an open waits for the database lock (ms), and how often it asks. */
#define STPG_LOCK_WAIT_MS 2000
#define STPG_LOCK_RETRY_MS 100

/* Every process that writes holds the DATABASE lock for the store's life,
 * in a session of its own: a second server, or an import into a database a
 * server holds, is refused. Shared stores hold it shared: they refuse only
 * an exclusive one (an import, a server not opened shared). */
static int take_db_lock(stpg_store *s, stpg_conn *c, zerr *err)
{
    int got = 0;
    /* A store just closed or killed holds the lock until PostgreSQL has seen
     * its sessions end, a moment later: wait that long before refusing. */
    for (int waited = 0; !got; waited += STPG_LOCK_RETRY_MS) {
        PGresult *r = store__pg_query(s, c, s->opt.shared
                                              ? "SELECT pg_try_advisory_lock_shared(2053467500, 3)"
                                              : "SELECT pg_try_advisory_lock(2053467500, 3)",
                                      NULL, err);
        if (!r)
            return c->rc;
        got = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (got || waited >= STPG_LOCK_WAIT_MS)
            break;
        usleep(STPG_LOCK_RETRY_MS * 1000);
    }
    if (!got && s->opt.shared)
        return zerr_set(err, ZE_BUSY, "PostgreSQL (%s) is in use by a zeolite process that "
                        "takes it alone (a server not opened shared, or an import)", s->shown);
    if (!got)
        return zerr_set(err, ZE_BUSY, "PostgreSQL (%s) is in use by another zeolite process "
                        "(a running server, or an import)", s->shown);
    return 0;
}

int store__pg_check_lock(stpg_store *s, zerr *err)
{
    stpg_conn *c = s->lock_conn;
    if (c && store__pg_alive(c))
        return 0;
    /* The session ended (PostgreSQL restarted): take the lock again. */
    stpg_conn *n;
    int rc = store__pg_connect(s, STPG_OWN, &n, err);
    if (!rc && (rc = take_db_lock(s, n, err)))
        store__pg_disconnect(n);
    if (rc)
        return rc;
    store__pg_disconnect(c);
    s->lock_conn = n;
    store__pg_log(s, STORE_LOG_WARNING, "PostgreSQL (%s): the database lock was taken again "
                  "after the session holding it ended", s->shown);
    return 0;
}

int store__pg_exists(const char *conninfo)
{
    stpg_store s = {.conninfo = (char *)conninfo, .shown = "", .lock_timeout_ms = 1000};
    stpg_conn *c;
    if (store__pg_connect(&s, STPG_OWN, &c, NULL))
        return 0;
    PGresult *r = PQexec(c->pg, "SELECT to_regclass('zeolite.meta') IS NOT NULL");
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    store__pg_disconnect(c);
    return exists;
}

int store__pg_is_locked(const char *conninfo)
{
    stpg_store s = {.conninfo = (char *)conninfo, .shown = "", .lock_timeout_ms = 1000};
    stpg_conn *c;
    if (store__pg_connect(&s, STPG_OWN, &c, NULL))
        return 0;
    /* Read from pg_locks, not tried: trying would hold the lock for a moment
     * and refuse a store opened meanwhile. Either mode counts. */
    PGresult *r = PQexec(c->pg, "SELECT count(*) > 0 FROM pg_locks WHERE locktype = "
                                "'advisory' AND granted AND classid = 2053467500 AND objid = 3 "
                                "AND objsubid = 2 AND database = (SELECT oid FROM pg_database "
                                "WHERE datname = current_database())");
    int locked = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    store__pg_disconnect(c);
    return locked;
}

/* ---- open and close ------------------------------------------------------------------------ */

static int store_init(stpg_store *s, const char *conninfo, const store_options *opt,
                      zerr *err)
{
    s->be = &store__pg_ops;
    s->opt = *opt;
    s->opt.blob_dir = NULL;   /* the caller's string: copied below */
    s->retry_seconds = opt->retry_seconds > 0 ? opt->retry_seconds : STPG_RETRY_DEFAULT;
    s->lock_timeout_ms = opt->lock_timeout_ms > 0 ? opt->lock_timeout_ms
                                                  : STPG_LOCK_TIMEOUT_DEFAULT;
    s->rpool.max = opt->pool_size > 0 ? opt->pool_size : STPG_POOL_DEFAULT;
    s->wpool.max = STPG_WRITE_MAX;
    s->blob_fd = s->tmp_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->oid_mu, NULL);
    pthread_mutex_init(&s->blob_mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->commit_wake, NULL);
    s->conninfo = strdup(conninfo);
    if (opt->blob_dir)
        s->opt_blob_dir = strdup(opt->blob_dir);
    if (!s->conninfo || (opt->blob_dir && !s->opt_blob_dir))
        return zerr_set(err, ZE_NOMEM, "out of memory");
    return store__pg_describe(conninfo, &s->shown, err);
}

int store__pg_open(store **out, const char *conninfo, const store_options *opt, zerr *err)
{
    static const store_options defaults;
    *out = NULL;
    if (opt && opt->map_size)
        return zerr_set(err, ZE_NOTSUP, "a map size is an LMDB setting: a PostgreSQL store "
                        "has none (PostgreSQL sizes its own files)");
    stpg_store *s = calloc(1, sizeof *s);
    if (!s)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    stpg_conn *c = NULL;
    int rc = store_init(s, conninfo, opt ? opt : &defaults, err);
    if (!rc)
        rc = store__pg_connect(s, STPG_OWN, &c, err);
    if (!rc)
        rc = check_schema(s, c, err);
    if (!rc)
        rc = load_meta(s, c, err);
    if (!rc && !s->opt.read_only && !(rc = take_db_lock(s, c, err))) {
        s->lock_conn = c;
        c = NULL;
    }
    store__pg_disconnect(c);
    if (!rc)
        rc = store__pg_standby_open(s, err);
    if (!rc)
        rc = store__pg_blob_init(s, err);
    if (!rc && !s->opt.read_only)
        rc = store__pg_committer_start(s, err);
    if (rc) {
        store__pg_close((store *)(void *)s);
        return rc;
    }
    *out = (store *)(void *)s;
    return 0;
}

static void pool_drain(stpg_pool *p)
{
    while (p->free) {
        stpg_conn *c = p->free;
        p->free = c->next;
        p->n_out--;
        store__pg_disconnect(c);
    }
}

void store__pg_close(store *ss)
{
    stpg_store *s = stpg_of(ss);
    if (!s)
        return;
    store__pg_committer_stop(s);
    store__pg_feed_stop(s);
    store__pg_standby_close(s);
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pool_drain(&s->rpool);
    pool_drain(&s->wpool);
    pthread_mutex_unlock(&s->mu);
    if (s->bulk_conn)
        store__pg_disconnect(s->bulk_conn);
    store__pg_disconnect(s->lock_conn);
    store__pg_blob_close(s);
    pthread_cond_destroy(&s->commit_wake);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->oid_mu);
    pthread_mutex_destroy(&s->blob_mu);
    pthread_mutex_destroy(&s->mu);
    free(s->conninfo);
    free(s->shown);
    free(s->opt_blob_dir);
    free(s);
}

/* ---- store-wide values (from memory: no call here waits on the network) ---- */

uint64_t store__pg_last_tid(store *ss)
{
    stpg_store *s = stpg_of(ss);
    pthread_mutex_lock(&s->mu);
    uint64_t tid = s->last_tid;
    pthread_mutex_unlock(&s->mu);
    return tid;
}

int store__pg_is_read_only(store *ss) { return stpg_of(ss)->opt.read_only; }

uint64_t store__pg_object_count(store *ss)
{
    stpg_store *s = stpg_of(ss);
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->stats_objects;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t store__pg_size_bytes(store *ss)
{
    stpg_store *s = stpg_of(ss);
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->size_bytes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const char *store__pg_blob_dir(store *ss) { return stpg_of(ss)->blob_dir; }

/* PostgreSQL has no map: what it uses, and no size. */
void store__pg_map_info(store *s, uint64_t *used, uint64_t *size)
{
    *used = store__pg_size_bytes(s);
    *size = 0;
}

void store__pg_get_stats(store *ss, store_stats *out)
{
    stpg_store *s = stpg_of(ss);
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

/* ---- oids ------------------------------------------------------------------------------------- */

uint64_t store__pg_oid_after(uint64_t oid)
{
    return oid >= STPG_OID_END - 1 ? STPG_OID_END : oid + 1;
}

void store__pg_oids_seen(stpg_store *s, uint64_t after)
{
    pthread_mutex_lock(&s->oid_mu);
    if (s->next_oid < after)
        s->next_oid = after;
    if (s->oid_limit < s->next_oid)
        s->oid_limit = s->next_oid;
    pthread_mutex_unlock(&s->oid_mu);
}

void store__pg_oid_foreign(stpg_store *s, uint64_t oid)
{
    pthread_mutex_lock(&s->oid_mu);
    if (oid >= s->next_oid && oid < s->oid_limit)
        s->next_oid = oid + 1;
    pthread_mutex_unlock(&s->oid_mu);
}

/* Reserve want oids in the database (fewer near the end): [*from, *to). */
static int reserve(stpg_store *s, uint64_t want, uint64_t *from, uint64_t *to, zerr *err)
{
    stpg_conn *c;
    stpg_params p = {0};
    int rc = store__pg_acquire(s, STPG_POOL_WRITE, 0, &c, err);
    if (rc)
        return rc;
    stpg_p_i64(&p, (int64_t)want);
    stpg_p_id(&p, STPG_OID_END - want);
    stpg_p_id(&p, STPG_OID_END);
    PGresult *r = store__pg_exec(s, c, Q_RESERVE_OIDS, &p, err);
    if (r && PQntuples(r) == 1) {
        *from = stpg_get_id(PQgetvalue(r, 0, 0));
        *to = stpg_get_id(PQgetvalue(r, 0, 1));
    } else if (r) {
        rc = zerr_set(err, ZE_CORRUPT, "PostgreSQL (%s): no next_oid row", s->shown);
    } else {
        rc = c->rc;
    }
    PQclear(r);
    store__pg_release(s, c);
    return rc;
}

int store__pg_new_oids(store *ss, int n, uint64_t *out, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    if (n < 1 || n > 1000)
        return zerr_set(err, ZE_INVAL, "new_oids(%d): n must be 1..1000", n);
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "PostgreSQL (%s) is open read-only", s->shown);
    for (;;) {
        pthread_mutex_lock(&s->oid_mu);
        uint64_t next = s->next_oid, limit = s->oid_limit;
        if (limit - next >= (uint64_t)n) {
            for (int i = 0; i < n; i++)
                out[i] = s->next_oid++;
            pthread_mutex_unlock(&s->oid_mu);
            return 0;
        }
        pthread_mutex_unlock(&s->oid_mu);
        if (limit == STPG_OID_END)
            return zerr_set(err, ZE_FULL, "no oids left: new_oids(%d) would pass %016llx "
                            "(oids up to %016llx are in use or handed out)", n,
                            (unsigned long long)(STPG_OID_END - 1),
                            (unsigned long long)(next - 1));
        uint64_t from, to;
        int rc = reserve(s, (uint64_t)n + OID_RESERVE, &from, &to, err);
        if (rc)
            return rc;
        /* Oids left in the range this replaces are never handed out: the
         * database moved past them, so none is ever reused. */
        pthread_mutex_lock(&s->oid_mu);
        if (from >= s->next_oid) {
            s->next_oid = from;
            s->oid_limit = to;
        }
        pthread_mutex_unlock(&s->oid_mu);
    }
}
