/* storetest_be.c: what the store suites do to a database behind the
 * contract's back, once per backend. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>

#include "pgtest.h"
#include "store/store_internal.h"

static int set_last_tid(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    return store__meta_put(txn, s, "last_tid", *(uint64_t *)ud, err);
}

/* Run sql on f's PostgreSQL database, asserting it worked. */
static void pg_run(st_fixture *f, const char *sql)
{
    char err[512] = "";
    char *out = tu_pg_exec(f->dir, sql, err, sizeof err);
    cr_assert(out, "%s: %s", sql, err);
    free(out);
}

/* The bigint PostgreSQL stores for id (src/store/pg.h). */
static long long pg_id(uint64_t id)
{
    return (long long)(id ^ 0x8000000000000000ull);
}

void stt_set_last_tid(st_fixture *f, uint64_t tid)
{
    char sql[160];
    zerr e;
    if (!stt_pg()) {
        cr_assert_eq(store__write(f->s, set_last_tid, &tid, &e), 0, "%s", e.msg);
        return;
    }
    snprintf(sql, sizeof sql, "UPDATE zeolite.meta SET value = %lld WHERE name = 'last_tid'",
             pg_id(tid));
    pg_run(f, sql);
}

typedef struct cut {
    uint64_t oid, tid;
} cut;

static int cut_record(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    const cut *c = ud;
    uint8_t key[ST_KEY_LEN];
    st_key(key, c->oid, c->tid);
    MDB_val k = {ST_KEY_LEN, key};
    int rc = mdb_del(txn, s->dbi_records, &k, NULL);
    return rc ? zerr_set(err, ZE_IO, "mdb_del: %s", mdb_strerror(rc)) : 0;
}

void stt_cut_record(st_fixture *f, uint64_t oid, uint64_t tid)
{
    char sql[200];
    zerr e;
    if (!stt_pg()) {
        cut c = {oid, tid};
        cr_assert_eq(store__write(f->s, cut_record, &c, &e), 0, "%s", e.msg);
        return;
    }
    snprintf(sql, sizeof sql, "DELETE FROM zeolite.records WHERE oid = %lld AND tid = %lld",
             pg_id(oid), pg_id(tid));
    pg_run(f, sql);
}
