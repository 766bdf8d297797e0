/* test_fs_read.c: the streaming reader against every fixture manifest. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "fixtures.h"
#include "testutil.h"

static void expect_meta(const tj *t, const char *key, zslice s)
{
    char *hex = fx_hex(s.p, s.len);
    cr_expect_str_eq(hex, tj_gets(t, key), "%s of txn %s", key, tj_gets(t, "tid"));
    free(hex);
}

/* The resolved pickle of a record, as the manifest's len/data_sha256 give it. */
static void expect_data(zfs_reader *r, const zfs_rec *rec, const tj *m)
{
    char sha[65];
    const tj *len = tj_get(m, "len");
    if (rec->kind == ZFS_DATA) {
        fx_sha256(rec->data.p, rec->data.len, sha);
        cr_expect_eq(rec->data.len, (size_t)len->num, "record at %lu", (unsigned long)rec->pos);
        cr_expect_str_eq(sha, tj_gets(m, "data_sha256"));
        return;
    }
    uint64_t dpos = 0, plen = 0;
    cr_assert_eq(zfs_reader_resolve(r, rec->back ? rec->back : rec->pos, &dpos, &plen, NULL), 0);
    if (len->type == TJ_NULL) {
        cr_expect_eq(plen, 0, "record at %lu should resolve to absent", (unsigned long)rec->pos);
        return;
    }
    uint8_t *buf = malloc(plen);
    cr_assert_eq(zfs_reader_pread(r, dpos, buf, plen, NULL), 0);
    fx_sha256(buf, plen, sha);
    cr_expect_str_eq(sha, tj_gets(m, "data_sha256"));
    free(buf);
}

static void expect_record(zfs_reader *r, const zfs_rec *rec, const tj *m, uint32_t index)
{
    static const char *kinds[] = {"", "data", "backpointer", "deletion"};
    cr_expect_eq(rec->oid, tj_hex64(tj_gets(m, "oid")));
    cr_expect_eq(rec->pos, (uint64_t)tj_getn(m, "pos"));
    cr_expect_eq(rec->prev, (uint64_t)tj_getn(m, "prev"));
    cr_expect_str_eq(kinds[rec->kind], tj_gets(m, "kind"));
    cr_expect_eq(rec->index, index);
    if (rec->kind == ZFS_BACKPTR) {
        cr_expect_eq(rec->back, (uint64_t)tj_getn(m, "back"));
        cr_expect_eq(rec->back_tid, tj_hex64(tj_gets(m, "back_tid")));
    }
    expect_data(r, rec, m);
}

/* Read a whole good fixture and compare every field with its manifest. */
static void check_good(const char *name)
{
    tj *m = fx_manifest(name);
    cr_assert_not_null(m, "manifest of %s", name);
    char *path = fx_path(name, ".fs");
    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 1};
    zerr err = {0};
    cr_assert_eq(zfs_reader_open(&r, path, &opts, &err), 0, "%s: %s", name, err.msg);
    const tj *txns = tj_get(m, "transactions");
    size_t i = 0, nrec = 0;
    zfs_txn txn;
    zfs_rec rec;
    int rc;
    while ((rc = zfs_reader_next_txn(r, &txn, &err)) == 1) {
        cr_assert_lt(i, txns->n, "%s: more transactions than the manifest", name);
        const tj *t = txns->items[i++];
        cr_expect_eq(txn.tid, tj_hex64(tj_gets(t, "tid")));
        cr_expect_eq(txn.pos, (uint64_t)tj_getn(t, "pos"));
        cr_expect_eq(txn.tlen, (uint64_t)tj_getn(t, "tlen"));
        cr_expect_eq(txn.status, tj_gets(t, "status")[0]);
        expect_meta(t, "user", txn.user);
        expect_meta(t, "description", txn.description);
        expect_meta(t, "extension", txn.extension);
        const tj *recs = tj_get(t, "records");
        uint32_t k = 0;
        while ((rc = zfs_reader_next_record(r, &rec, &err)) == 1) {
            cr_assert_lt(k, recs->n, "%s: extra record at %lu", name, (unsigned long)rec.pos);
            expect_record(r, &rec, recs->items[k], k);
            k++;
        }
        cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
        cr_expect_eq(k, recs->n, "%s: records of txn %s", name, tj_gets(t, "tid"));
        nrec += k;
    }
    cr_assert_eq(rc, 0, "%s: %s", name, err.msg);
    cr_expect_eq(i, (size_t)tj_getn(m, "transaction_count"), "%s", name);
    cr_expect_eq(nrec, (size_t)tj_getn(m, "record_count"), "%s", name);
    uint64_t tail;
    const char *what;
    cr_expect_eq(zfs_reader_tail(r, &tail, &what), 0, "%s: no torn tail", name);
    cr_expect_eq(zfs_reader_offset(r), (uint64_t)tj_getn(m, "size"));
    zfs_reader_close(r);
    free(path);
    tj_free(m);
}

Test(fs_read, every_good_fixture_matches_its_manifest)
{
    char **names = fx_names(0);
    cr_assert_not_null(names[0], "no fixtures found");
    for (size_t i = 0; names[i]; i++)
        check_good(names[i]);
    fx_free_names(names);
}

/* Read a bad fixture to its end: the error or the torn tail. */
static int read_all(const char *path, size_t *ntxn, zfs_reader **keep, zerr *err)
{
    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 1};
    zfs_txn txn;
    zfs_rec rec;
    int rc = zfs_reader_open(&r, path, &opts, err);
    *ntxn = 0;
    *keep = NULL;
    if (rc)
        return rc;
    while ((rc = zfs_reader_next_txn(r, &txn, err)) == 1) {
        while ((rc = zfs_reader_next_record(r, &rec, err)) == 1)
            ;
        if (rc < 0)
            break;
        (*ntxn)++;
    }
    *keep = r;
    return rc;
}

static int should_refuse(const tj *bad)
{
    const char *s = tj_gets(bad, "converter_should");
    return !strncmp(s, "Refuse", 6);
}

Test(fs_read, every_bad_fixture_gets_its_documented_behaviour)
{
    char **names = fx_names(1);
    cr_assert_not_null(names[0]);
    for (size_t i = 0; names[i]; i++) {
        tj *bad = fx_manifest(names[i]);
        char *path = fx_path(names[i], ".fs");
        zerr err = {0};
        size_t n;
        zfs_reader *r;
        int rc = read_all(path, &n, &r, &err);
        if (should_refuse(bad)) {
            cr_expect_lt(rc, 0, "%s must be refused", names[i]);
            if (tj_getn(bad, "size") == 0)
                cr_expect_not_null(strstr(err.msg, "empty"), "%s: %s", names[i], err.msg);
            else
                cr_expect(fx_names_offset(bad, err.msg), "%s: message names no offset: %s",
                          names[i], err.msg);
        } else {
            uint64_t want_pos, got_pos = 0;
            size_t want_n;
            const char *what = NULL;
            fx_tail(bad, &want_pos, &want_n);
            cr_expect_eq(rc, 0, "%s: torn tail, not an error: %s", names[i], err.msg);
            cr_expect_eq(zfs_reader_tail(r, &got_pos, &what), 1, "%s: tail reported", names[i]);
            cr_expect_eq(got_pos, want_pos, "%s: tail offset", names[i]);
            cr_expect_eq(n, want_n, "%s: complete transactions", names[i]);
        }
        if (!strcmp(names[i], "bad/fs21-magic"))
            cr_expect_not_null(strstr(err.msg, "zodbupdate"), "%s", err.msg);
        zfs_reader_close(r);
        free(path);
        tj_free(bad);
    }
    fx_free_names(names);
}

Test(fs_read, backpointer_to_another_oid_is_refused_with_both_oids)
{
    char *path = fx_path("bad/bad-backpointer", ".fs");
    zerr err = {0};
    size_t n;
    zfs_reader *r;
    cr_expect_lt(read_all(path, &n, &r, &err), 0);
    cr_expect_not_null(strstr(err.msg, "0x0000000000000001"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "0x0000000000000002"), "%s", err.msg);
    zfs_reader_close(r);
    free(path);
}

Test(fs_read, verify_reports_clean_files_and_damage)
{
    char **good = fx_names(0), **bad = fx_names(1);
    for (size_t i = 0; good[i]; i++) {
        char *path = fx_path(good[i], ".fs");
        zerr err = {0};
        zfs_verify_result res;
        cr_expect_eq(zfs_verify(path, NULL, NULL, &res, &err), 0, "%s: %s", good[i], err.msg);
        tj *m = fx_manifest(good[i]);
        cr_expect_eq(res.txns, (uint64_t)tj_getn(m, "transaction_count"));
        cr_expect_eq(res.bytes, (uint64_t)tj_getn(m, "size"));
        tj_free(m);
        free(path);
    }
    for (size_t i = 0; bad[i]; i++) {
        char *path = fx_path(bad[i], ".fs");
        zerr err = {0};
        zfs_verify_result res;
        int rc = zfs_verify(path, NULL, NULL, &res, &err);
        cr_expect_neq(rc, 0, "%s must be reported", bad[i]);
        tj *m = fx_manifest(bad[i]);
        if (rc == 1) {
            cr_expect(!should_refuse(m), "%s", bad[i]);
            cr_expect_gt(strlen(res.tail_what), 0);
        }
        tj_free(m);
        free(path);
    }
    fx_free_names(good);
    fx_free_names(bad);
}

Test(fs_read, undone_transactions_are_skipped_and_counted)
{
    /* no fixture has an obsolete 'u' transaction: mark small.fs's last one */
    char *src = fx_path("small", ".fs"), *dir = tu_tmpdir("fsundone"), out[512];
    tj *m = fx_manifest("small");
    const tj *txns = tj_get(m, "transactions");
    size_t n;
    uint8_t *bytes = tu_read_file(src, &n);
    uint64_t last = (uint64_t)tj_getn(txns->items[txns->n - 1], "pos");
    bytes[last + 16] = 'u';
    snprintf(out, sizeof out, "%s/undone.fs", dir);
    cr_assert_eq(tu_write_file(out, bytes, n), 0);
    zfs_reader *r;
    zfs_txn txn;
    size_t seen = 0;
    cr_assert_eq(zfs_reader_open(&r, out, NULL, NULL), 0);
    while (zfs_reader_next_txn(r, &txn, NULL) == 1) {
        cr_expect_neq(txn.pos, last, "the 'u' transaction is not yielded");
        seen++;
    }
    cr_expect_eq(seen, txns->n - 1);
    cr_expect_eq(zfs_reader_undone_count(r), 1);
    cr_expect_eq(zfs_reader_offset(r), n);
    zfs_reader_close(r);
    free(bytes);
    tj_free(m);
    tu_rmrf(dir);
    free(dir);
    free(src);
}

/* The transaction of good manifest m holding byte offset off, or NULL. */
static const tj *txn_at(const tj *m, uint64_t off)
{
    const tj *txns = tj_get(m, "transactions");
    for (size_t i = 0; i < txns->n; i++) {
        uint64_t pos = (uint64_t)tj_getn(txns->items[i], "pos");
        if (off >= pos && off < pos + (uint64_t)tj_getn(txns->items[i], "tlen") + 8)
            return txns->items[i];
    }
    return NULL;
}

static int in_manifest(const tj *m, const zfs_txn *t)
{
    const tj *txns = tj_get(m, "transactions");
    for (size_t i = 0; i < txns->n; i++)
        if (tj_hex64(tj_gets(txns->items[i], "tid")) == t->tid &&
            (uint64_t)tj_getn(txns->items[i], "pos") == t->pos)
            return 1;
    return 0;
}

Test(fs_read, salvage_drops_only_the_damaged_transactions)
{
    char **names = fx_names(1);
    for (size_t i = 0; names[i]; i++) {
        tj *bad = fx_manifest(names[i]);
        char from[64], *path = fx_path(names[i], ".fs");
        snprintf(from, sizeof from, "%s", tj_gets(bad, "derived_from") ? tj_gets(bad, "derived_from") : "");
        char *dot = strstr(from, ".fs");
        if (dot)
            *dot = 0;
        zfs_reader *r;
        zfs_reader_opts opts = {.want_data = 1, .salvage = 1};
        zerr err = {0};
        if (zfs_reader_open(&r, path, &opts, &err)) {
            cr_expect(!*from || tj_getn(bad, "size") == 0 || strstr(names[i], "magic"),
                      "%s: only a bad magic or an empty file stops salvage: %s", names[i],
                      err.msg);
            free(path);
            tj_free(bad);
            continue;
        }
        tj *good = fx_manifest(from);
        uint64_t defect = (uint64_t)tj_getn(tj_get(bad, "defect"), "offset");
        const tj *hit = txn_at(good, defect);
        uint64_t hit_tid = hit ? tj_hex64(tj_gets(hit, "tid")) : 0;
        zfs_txn txn;
        zfs_rec rec;
        size_t kept = 0;
        int rc;
        while ((rc = zfs_reader_next_txn(r, &txn, &err)) == 1) {
            while ((rc = zfs_reader_next_record(r, &rec, &err)) == 1)
                ;
            if (rc == ZFS_DROPPED)
                continue;
            cr_expect_eq(rc, 0, "%s: %s", names[i], err.msg);
            cr_expect(in_manifest(good, &txn), "%s: txn at %lu is not from %s", names[i],
                      (unsigned long)txn.pos, from);
            if (strcmp(names[i], "bad/bad-prev"))  /* salvage does not check prev */
                cr_expect_neq(txn.tid, hit_tid, "%s: the damaged txn must be dropped", names[i]);
            kept++;
        }
        cr_expect_eq(rc, 0, "%s: %s", names[i], err.msg);
        size_t total = tj_get(good, "transactions")->n;
        uint64_t tail;
        const char *what;
        int torn = zfs_reader_tail(r, &tail, &what);
        if (!strcmp(from, "small") && strcmp(names[i], "bad/bad-prev") && !torn)
            cr_expect_eq(kept, total - (hit ? 1 : 0), "%s", names[i]);
        cr_expect_geq(kept + 3, total, "%s: kept %zu of %zu", names[i], kept, total);
        zfs_reader_close(r);
        tj_free(good);
        tj_free(bad);
        free(path);
    }
    fx_free_names(names);
}

/* Damage of any kind is an error, a torn tail or salvage material, never a
 * crash (the sanitizer build runs this). */
Test(fs_read, random_damage_is_reported_never_crashes)
{
    static const char *names[] = {"small", "undo", "packed", "blobs-bushy"};
    char *dir = tu_tmpdir("fsfuzz"), out[512];
    snprintf(out, sizeof out, "%s/fuzz.fs", dir);
    uint64_t seed = 0x243F6A8885A308D3ull;
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        char *src = fx_path(names[f], ".fs");
        size_t n;
        uint8_t *orig = tu_read_file(src, &n), *bytes = malloc(n);
        for (int round = 0; round < 150; round++) {
            memcpy(bytes, orig, n);
            size_t len = n;
            for (int k = 0; k < 1 + round % 4; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                bytes[4 + (seed >> 33) % (n - 4)] ^= (uint8_t)(1u << (seed >> 60) % 8);
            }
            if (round % 5 == 0)
                len = 4 + (seed >> 20) % (n - 4);   /* and cut the file */
            cr_assert_eq(tu_write_file(out, bytes, len), 0);
            zfs_verify_result res;
            int rc = zfs_verify(out, NULL, NULL, &res, NULL);
            cr_expect(rc == 0 || rc == 1 || rc == ZE_CORRUPT, "%s round %d: %d", names[f],
                      round, rc);
            zfs_reader *r;
            zfs_reader_opts opts = {.want_data = 1, .salvage = 1};
            zfs_txn txn;
            zfs_rec rec;
            cr_assert_eq(zfs_reader_open(&r, out, &opts, NULL), 0);
            while ((rc = zfs_reader_next_txn(r, &txn, NULL)) == 1)
                while ((rc = zfs_reader_next_record(r, &rec, NULL)) == 1)
                    if (rec.kind == ZFS_BACKPTR) {
                        uint64_t dpos, plen;
                        cr_expect_eq(zfs_reader_resolve(r, rec.back, &dpos, &plen, NULL), 0);
                    }
            cr_expect_eq(rc, 0, "%s round %d: salvage reads to the end", names[f], round);
            zfs_reader_close(r);
        }
        free(bytes);
        free(orig);
        free(src);
    }
    tu_rmrf(dir);
    free(dir);
}
