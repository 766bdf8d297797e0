/* pg_history.c: a store never serves a database whose history is behind
 * what the store has served.
 *
 * A primary's conninfo may list several hosts (target_session_attrs=
 * read-write): after a failover every connection the store opens again
 * reaches the promoted standby. When that standby had not received every
 * commit the store acknowledged or delivered (asynchronous replication),
 * its history is another one: serving it would give clients data older
 * than what they were told, and the next commit could reuse a tid already
 * acknowledged. So each connection the store opens once it knows a tid
 * (the pools', iterators', pack's, the feed's) is checked against the
 * store's last tid before it is used, and so is each commit's tid choice
 * (pg_commit.c); the first refusal is kept: the store refuses everything
 * from then on (a database that went on from another history, past the
 * store's last tid, is still not the one it served). */
#include "store/pg.h"

#include <stdio.h>
#include <string.h>

/* $1 the store's last tid: the database's last tid, and whether it holds
 * that transaction, or may have had it without a row now: packed away (at
 * or before the pack tid) or under the last tid's floor (meta last_tid,
 * which pack sets before it may remove the last transaction). */
static const char history_sql[] =
    "SELECT greatest((SELECT max(tid) FROM zeolite.txns), "
    "(SELECT value FROM zeolite.meta WHERE name = 'last_tid')), "
    "EXISTS (SELECT 1 FROM zeolite.txns WHERE tid = $1::bigint) OR "
    "$1::bigint <= (SELECT max(value) FROM zeolite.meta WHERE name IN "
    "('pack_tid', 'last_tid'))";

int store__pg_refusal(stpg_store *s, zerr *err)
{
    pthread_mutex_lock(&s->mu);
    zerr why = s->refused;
    pthread_mutex_unlock(&s->mu);
    if (!why.code)
        return 0;
    if (err)
        *err = why;
    return why.code;
}

int store__pg_history_behind(stpg_store *s, uint64_t known, uint64_t db_last, int has_known,
                             zerr *err)
{
    pthread_mutex_lock(&s->mu);
    if (s->refused.code) {
        zerr why = s->refused;
        pthread_mutex_unlock(&s->mu);
        if (err)
            *err = why;
        return why.code;
    }
    if (db_last >= known && has_known) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    if (db_last < known)
        zerr_set(&s->refused, ZE_CORRUPT, "PostgreSQL (%s) is behind this store: its history "
                 "ends at %016llx, before %016llx, which this store has served; it is not "
                 "the database served until now (a standby promoted before it had replayed "
                 "every commit?): refusing it", s->shown, (unsigned long long)db_last,
                 (unsigned long long)known);
    else
        zerr_set(&s->refused, ZE_CORRUPT, "PostgreSQL (%s) has another history: it lacks "
                 "%016llx, which this store has served, though it goes on to %016llx; it "
                 "is not the database served until now (a standby promoted before it had "
                 "replayed every commit?): refusing it", s->shown,
                 (unsigned long long)known, (unsigned long long)db_last);
    zerr why = s->refused;
    pthread_mutex_unlock(&s->mu);
    store__pg_log(s, STORE_LOG_ERROR, "%s", why.msg);
    if (err)
        *err = why;
    return why.code;
}

int store__pg_check_history(stpg_store *s, stpg_conn *c, zerr *err)
{
    uint64_t known = store__pg_last_tid((store *)(void *)s);
    int rc = store__pg_refusal(s, err);
    if (rc || !known)
        return rc;
    stpg_params p = {0};
    stpg_p_id(&p, known);
    PGresult *r = store__pg_query(s, c, history_sql, &p, err);
    if (!r)
        return c->rc;
    int ok = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && PQgetlength(r, 0, 0) == 8 &&
             !PQgetisnull(r, 0, 1) && PQgetlength(r, 0, 1) == 1;
    uint64_t last = ok ? stpg_get_id(PQgetvalue(r, 0, 0)) : 0;
    int has = ok && PQgetvalue(r, 0, 1)[0];
    PQclear(r);
    if (!ok)
        return zerr_set(err, ZE_CORRUPT, "PostgreSQL (%s): no last_tid row", s->shown);
    return store__pg_history_behind(s, known, last, has, err);
}

int store__pg_refused(store *s, zerr *why)
{
    return store__pg_refusal(stpg_of(s), why) ? 1 : 0;
}
