/* bench_fill.c: the benchmark's objects and the fill of a fresh store. */
#include "store_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL_BATCH 10000    /* objects per fill transaction */
#define PAYLOAD 200         /* bytes of filler; the record is about 300 bytes */

/* (oid, class) persistent reference, the form ZODB writes for ordinary
 * objects: the class is memo entry 0, stored by the class pickle. */
static int put_ref(zbuf *b, uint64_t oid)
{
    uint8_t ref[14] = {'C', 8};
    zbe64_put(ref + 2, oid);
    ref[10] = 'h', ref[11] = 0, ref[12] = 0x86, ref[13] = 'Q';
    return zbuf_append(b, ref, sizeof ref);
}

static int put_key(zbuf *b, const char *key)
{
    uint8_t hdr[5] = {'X', (uint8_t)strlen(key), 0, 0, 0};
    return zbuf_append(b, hdr, sizeof hdr) | zbuf_append(b, key, strlen(key));
}

/* A protocol-3 record as ZODB writes it: class pickle, then a state dict
 * {'left': child, 'right': child, 'data': filler}, one memo for both. */
static int node_pickle(zbuf *out, const uint64_t *child, int nchild, uint64_t seed)
{
    static const uint8_t cls[] = {0x80, 3, 'c', 's', 't', 'o', 'r', 'e', '_', 'b', 'e', 'n', 'c',
                                  'h', '\n', 'N', 'o', 'd', 'e', '\n', 'q', 0, '.'};
    static const uint8_t open_state[] = {0x80, 3, '}', '('};
    static const uint8_t close_state[] = {'u', '.'};
    static const char *keys[2] = {"left", "right"};
    uint8_t pad[2 + PAYLOAD] = {'C', PAYLOAD};
    int rc;

    zbuf_reset(out);
    rc = zbuf_append(out, cls, sizeof cls) | zbuf_append(out, open_state, sizeof open_state);
    for (int i = 0; i < 2; i++) {
        rc |= put_key(out, keys[i]);
        rc |= i < nchild ? put_ref(out, child[i]) : zbuf_append_byte(out, 'N');
    }
    for (int i = 0; i < PAYLOAD; i += 8) {
        uint64_t r = bench_rand(&seed);
        memcpy(pad + 2 + i, &r, PAYLOAD - i < 8 ? (size_t)(PAYLOAD - i) : 8);
    }
    rc |= put_key(out, "data") | zbuf_append(out, pad, sizeof pad);
    rc |= zbuf_append(out, close_state, sizeof close_state);
    return rc ? ZE_NOMEM : 0;
}

int bench_node_pickle(const bench_db *db, uint64_t idx, uint32_t rev, zbuf *out)
{
    uint64_t child[2];
    int n = 0;
    for (uint64_t c = 2 * idx + 1; c <= 2 * idx + 2 && c < db->n; c++)
        child[n++] = db->oids[c];
    return node_pickle(out, child, n, idx * 1000003u + rev);
}

static int root_pickle(const bench_db *db, zbuf *out)
{
    return node_pickle(out, db->oids, 1, 0);
}

static int open_store(bench_db *db, int no_sync, int create)
{
    store_options opt = {.create = create, .exclusive = 1, .no_sync = no_sync};
    zerr err;
    int rc = store_open(&db->s, db->dir, &opt, &err);
    if (rc)
        fprintf(stderr, "store_bench: open %s: %s\n", db->dir, err.msg);
    return rc;
}

static int alloc_oids(bench_db *db, uint64_t n)
{
    zerr err;
    db->oids = malloc(n * sizeof *db->oids);
    if (!db->oids)
        return ZE_NOMEM;
    for (uint64_t i = 0; i < n; i += 1000) {
        int k = n - i < 1000 ? (int)(n - i) : 1000;
        int rc = store_new_oids(db->s, k, db->oids + i, &err);
        if (rc) {
            fprintf(stderr, "store_bench: new_oids: %s\n", err.msg);
            return rc;
        }
    }
    db->n = n;
    return 0;
}

/* One fill transaction: objects [first, first + count) at revision rev, all
 * last written by the transaction `serial` (0 for new objects). */
static int fill_batch(bench_db *db, uint64_t first, uint64_t count, uint32_t rev,
                      uint64_t serial, uint64_t *tid, zbuf *pk)
{
    store_txn_meta meta = {.user = (const uint8_t *)"store_bench", .user_len = 11,
                           .description = (const uint8_t *)"fill", .description_len = 4,
                           .status = ' '};
    store_vote_result res;
    store_txn *t;
    zerr err;
    int rc = store_txn_begin(db->s, &meta, &t, &err);
    if (rc) {
        fprintf(stderr, "store_bench: fill: %s\n", err.msg);
        return rc;
    }
    if (first == 0 && rev == 0)
        rc = root_pickle(db, pk) ? zerr_set(&err, ZE_NOMEM, "out of memory")
                                 : store_txn_store(t, 0, 0, pk->data, pk->len, &err);
    for (uint64_t i = first; i < first + count && !rc; i++)
        rc = bench_node_pickle(db, i, rev, pk)
                 ? zerr_set(&err, ZE_NOMEM, "out of memory")
                 : store_txn_store(t, db->oids[i], serial, pk->data, pk->len, &err);
    if (!rc && !(rc = store_txn_vote(t, &res, &err)))
        rc = store_txn_finish(t, tid, &err);
    if (rc)
        store_txn_abort(t);
    store_txn_free(t);
    if (rc)
        fprintf(stderr, "store_bench: fill: %s\n", err.msg);
    return rc;
}

static int fill_revisions(bench_db *db, const bench_cfg *cfg)
{
    uint64_t nbatch = (db->n + FILL_BATCH - 1) / FILL_BATCH;
    uint64_t *batch_tid = calloc(nbatch, sizeof *batch_tid);
    zbuf pk = ZBUF_INIT;
    int rc = batch_tid ? 0 : ZE_NOMEM;

    for (int rev = 0; rev < cfg->revisions && !rc; rev++) {
        for (uint64_t b = 0; b < nbatch && !rc; b++) {
            uint64_t first = b * FILL_BATCH;
            uint64_t count = db->n - first < FILL_BATCH ? db->n - first : FILL_BATCH;
            rc = fill_batch(db, first, count, (uint32_t)rev, batch_tid[b], &batch_tid[b], &pk);
        }
        bench_sample_heap();
    }
    zbuf_free(&pk);
    free(batch_tid);
    return rc;
}

/* The fill runs without fsync (a bench's scratch data); the store is then
 * reopened durable, since every later figure is about durable commits. */
/* --compact: continue on a compacting copy, whose LMDB free list is empty
 * (the fill's big transactions leave a large one, which every later commit
 * partly rewrites). */
static int switch_to_compact_copy(bench_db *db)
{
    char copy[sizeof db->dir];
    zerr err;
    if ((size_t)snprintf(copy, sizeof copy, "%s/compact", db->dir) >= sizeof copy)
        return ZE_TOOBIG;
    int rc = store_backup(db->s, copy, 1, &err);
    if (rc) {
        fprintf(stderr, "store_bench: compacting copy: %s\n", err.msg);
        return rc;
    }
    store_close(db->s);
    db->s = NULL;
    memcpy(db->dir, copy, sizeof copy);
    return 0;
}

int bench_fill(bench_db *db, const bench_cfg *cfg, double *seconds)
{
    double t0 = bench_now();
    int rc = open_store(db, 1, 1);
    if (rc || (rc = alloc_oids(db, cfg->objects)) || (rc = fill_revisions(db, cfg)))
        return rc;
    if (cfg->compact && (rc = switch_to_compact_copy(db)))
        return rc;
    store_close(db->s);
    db->s = NULL;
    *seconds = bench_now() - t0;
    return open_store(db, 0, 0);
}
