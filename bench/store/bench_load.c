/* bench_load.c: random current loads through the store and through bare LMDB.
 *
 * Both loops draw the same oids from the same seeded stream and do the same
 * number of lookups; the raw loop is what LMDB itself can do (MDB_SET_RANGE to
 * (oid, max) then MDB_PREV in the index, then the get of the record it names),
 * the physical limit for store_load_before.
 */
#include "store_bench.h"

#include <stdio.h>

#include "store/store_internal.h"

#define LOAD_ROUND 10000
#define SEED 42
#define LOAD_ROUNDS 4

/* Touch every index and record page once so both loops run with the data
 * in page cache. */
static int warm_cache(store *s, uint64_t *sum)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    store__map_enter(s);
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) == 0) {
        MDB_dbi dbis[2] = {s->dbi_records, s->dbi_values};
        for (int i = 0; i < 2 && !rc; i++)
            if ((rc = mdb_cursor_open(txn, dbis[i], &c)) == 0) {
                while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
                    *sum += ((const uint8_t *)v.mv_data)[v.mv_size - 1];
                mdb_cursor_close(c);
            }
        mdb_txn_abort(txn);
    }
    store__map_leave(s);
    return rc;
}

static int store_loop(bench_db *db, double seconds, uint64_t seed, bench_rate *rate)
{
    store_reader *r;
    zbuf data = ZBUF_INIT;
    zerr err;
    uint64_t start, end, n = 0;
    int rc = store_reader_new(db->s, &r, &err);
    if (rc) {
        fprintf(stderr, "store_bench: reader: %s\n", err.msg);
        return rc;
    }
    double t0 = bench_now();
    while (!rc && bench_now() - t0 < seconds) {
        for (int i = 0; i < LOAD_ROUND && !rc; i++, n++) {
            uint64_t oid = db->oids[bench_rand(&seed) % db->n];
            rc = store_load_before(r, oid, STORE_TID_MAX, &data, &start, &end, &err);
        }
    }
    rate->seconds += bench_now() - t0;
    rate->n += n;
    if (rc)
        fprintf(stderr, "store_bench: load_before: %s\n", err.msg);
    store_reader_free(r);
    zbuf_free(&data);
    return rc;
}

static int raw_lookup(MDB_cursor *c, MDB_dbi values, uint64_t oid, uint64_t *sum)
{
    uint8_t kb[ST_KEY_LEN];
    MDB_val k = {sizeof kb, kb}, v;
    st_key(kb, oid, STORE_TID_MAX);
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c, &k, &v, MDB_LAST)
                            : rc ? rc : mdb_cursor_get(c, &k, &v, MDB_PREV);
    if (rc || k.mv_size != ST_KEY_LEN || zbe64(k.mv_data) != oid || v.mv_size < ST_IDX_LEN)
        return -1;
    st_vkey(kb, zbe64((const uint8_t *)k.mv_data + 8), zbe32((const uint8_t *)v.mv_data + 4));
    k = (MDB_val){ST_VKEY_LEN, kb};
    if (mdb_get(mdb_cursor_txn(c), values, &k, &v))
        return -1;
    *sum += ((const uint8_t *)v.mv_data)[v.mv_size - 1];
    return 0;
}

static int raw_loop(store *s, const bench_db *db, uint64_t count, uint64_t seed,
                    bench_rate *rate, uint64_t *sum)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc;

    store__map_enter(s);
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) == 0) {
        if ((rc = mdb_cursor_open(txn, s->dbi_records, &c)) == 0) {
            double t0 = bench_now();
            for (uint64_t i = 0; i < count && !rc; i++)
                rc = raw_lookup(c, s->dbi_values, db->oids[bench_rand(&seed) % db->n], sum);
            rate->seconds += bench_now() - t0;
            rate->n += count;
            mdb_cursor_close(c);
        }
        mdb_txn_abort(txn);
    }
    store__map_leave(s);
    if (rc)
        fprintf(stderr, "store_bench: raw LMDB lookup failed (%d)\n", rc);
    return rc;
}

int bench_load(bench_db *db, const bench_cfg *cfg, bench_rate *store_rate, bench_rate *raw_rate)
{
    uint64_t sum = 0;
    int rc = warm_cache(db->s, &sum);

    for (int i = 0; i < LOAD_ROUNDS && !rc; i++) {
        uint64_t before = store_rate->n;
        if (!(rc = store_loop(db, cfg->seconds / LOAD_ROUNDS, SEED + i, store_rate)))
            rc = raw_loop(db->s, db, store_rate->n - before, SEED + i, raw_rate, &sum);
    }
    bench_sample_heap();
    /* sum keeps the compiler from dropping the raw loop's reads */
    return rc ? rc : sum == UINT64_MAX ? -1 : 0;
}
