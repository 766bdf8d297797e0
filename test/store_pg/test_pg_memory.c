/* test_pg_memory.c: memory does not grow with the database on PostgreSQL.
 * The largest fixture is imported ten times over (its oids and tids shifted
 * per copy), then every object is loaded, every transaction iterated and the
 * database packed with GC: the process's peak RSS during each stays within
 * PEAK_BOUND of what it was before, well under the pickles the database
 * holds. Built for Release only: a sanitizer's shadow memory is no measure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convert/convert.h"
#include "pgtest.h"
#include "store/store.h"
#include "testutil.h"

#define COPIES 10
#define OID_SHIFT 0x100000ull        /* copy k's oids: oid + k * OID_SHIFT */
#define TID_SHIFT (1ull << 40)       /* copy k's tids: 256 minutes later each */
#define PEAK_BOUND (16 << 20)        /* bytes of RSS a phase may add */

/* VmHWM or VmRSS of this process, in bytes. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    cr_assert(f);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n))
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    cr_assert_geq(kb, 0, "no %s in /proc/self/status", field);
    return kb * 1024;
}

/* The peak RSS starts again from the current RSS (proc(5), clear_refs). */
static long reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    cr_assert(f, "cannot reset the peak RSS");
    fputs("5", f);
    fclose(f);
    return status_kb("VmRSS:");
}

static uint64_t import_copies(store *s, uint64_t *oids, size_t *n_oids, size_t cap)
{
    char *fs = tu_shared("fixtures/datafs/large.fs");
    uint64_t bytes = 0;
    zerr e;
    cr_assert_eq(store_bulk_begin(s, &e), 0, "%s", e.msg);
    for (uint64_t k = 0; k < COPIES; k++) {
        zfs_reader *r;
        zfs_reader_opts ro = {.want_data = 1};
        zfs_txn txn;
        zfs_rec rec;
        cr_assert_eq(zfs_reader_open(&r, fs, &ro, &e), 0, "%s", e.msg);
        while (zfs_reader_next_txn(r, &txn, &e) == 1) {
            store_txn_meta m = {txn.user.p, txn.user.len, txn.description.p,
                                txn.description.len, txn.extension.p, txn.extension.len,
                                txn.status, txn.tid + k * TID_SHIFT};
            store_txn *t;
            cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0, "%s", e.msg);
            while (zfs_reader_next_record(r, &rec, &e) == 1) {
                store_record sr = {.oid = rec.oid + k * OID_SHIFT,
                                   .kind = (store_rec_kind)rec.kind, .data = rec.data,
                                   .back_tid = rec.back_tid ? rec.back_tid + k * TID_SHIFT : 0,
                                   .back_index = rec.back_index, .prev_zero = rec.prev_zero};
                cr_assert_eq(store_txn_restore_record(t, &sr, NULL, &e), 0, "%s", e.msg);
                bytes += rec.data.len;
                if (*n_oids < cap)
                    oids[(*n_oids)++] = sr.oid;
            }
            cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
            cr_assert_eq(store_txn_finish(t, NULL, &e), 0, "%s", e.msg);
            store_txn_free(t);
        }
        zfs_reader_close(r);
    }
    cr_assert_eq(store_bulk_end(s, &e), 0, "%s", e.msg);
    free(fs);
    return bytes;
}

static void within_bound(long before, const char *phase, uint64_t db_bytes)
{
    long peak = status_kb("VmHWM:");
    cr_expect_lt(peak - before, PEAK_BOUND, "%s: the peak RSS grew by %ld bytes (bound %d) "
                 "while the database holds %llu bytes of pickles", phase, peak - before,
                 PEAK_BOUND, (unsigned long long)db_bytes);
}

Test(pg_memory, loads_iteration_and_pack_stay_within_a_bound, .timeout = 300)
{
    char *uri = tu_pg_newdb(NULL);
    store *s;
    store_reader *r;
    zerr e;
    uint64_t oids[1024];
    size_t n_oids = 0;
    store_options opt = {.create = 1};
    cr_assert_eq(store_open(&s, uri, &opt, &e), 0, "%s", e.msg);
    uint64_t bytes = import_copies(s, oids, &n_oids, sizeof oids / sizeof oids[0]);
    cr_assert_gt(bytes, 3u * PEAK_BOUND / 2, "the copies must outweigh the bound");

    long before = reset_peak();
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    zbuf data = ZBUF_INIT;
    for (size_t i = 0; i < n_oids; i++) {
        uint64_t start, end;
        int rc = store_load_before(r, oids[i], STORE_TID_MAX, &data, &start, &end, &e);
        cr_assert(rc == 0 || rc == ZE_NOTFOUND, "%s", e.msg);
    }
    zbuf_free(&data);
    within_bound(before, "loading every object", bytes);

    before = reset_peak();
    store_iter *it;
    store_txn_info info;
    store_record rec;
    uint64_t seen = 0;
    cr_assert_eq(store_iter_open(s, 0, 0, &it, &e), 0, "%s", e.msg);
    while (store_iter_next_txn(it, &info, &e) == 1)
        while (store_iter_next_record(it, &rec, &e) == 1)
            seen += rec.data.len;
    store_iter_close(it);
    cr_expect_eq(seen, bytes);
    within_bound(before, "iterating every transaction", bytes);

    before = reset_peak();
    store_pack_stats st;
    cr_assert_eq(store_pack(s, (double)time(NULL) + 3600, 1, &st, &e), 0, "%s", e.msg);
    within_bound(before, "packing with GC", bytes);

    store_reader_free(r);
    store_close(s);
    tu_pg_dropdb(uri);
    free(uri);
}
