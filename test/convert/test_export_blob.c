/* test_export_blob.c: export of a transaction that stores one blob oid twice,
 * as every ZEO blob commit does (storea, then storeBlobEnd). FileStorage
 * writes both data records and keeps one blob file per (oid, tid): the one
 * stored last. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "store/store.h"
#include "testutil.h"

static char *tmp;

static void setup(void)
{
    tmp = tu_tmpdir("convert-blob");
    cr_assert_not_null(tmp);
}

static void teardown(void)
{
    tu_rmrf(tmp);
    free(tmp);
}

TestSuite(convert_export_blob, .init = setup, .fini = teardown);

/* A blob file in the store's tmp folder holding content. */
static void blob_file(store *s, const char *content, char *path, size_t cap)
{
    zerr err;
    cr_assert_eq(store_blob_tmpname(s, path, cap, &err), 0, "%s", err.msg);
    cr_assert_eq(tu_write_file(path, content, strlen(content)), 0);
}

/* One transaction storing oid twice, each time with a blob; returns its tid. */
static uint64_t commit_blob_twice(const char *db, uint64_t oid, const char *const data[2],
                                  const char *const blobs[2])
{
    store *s;
    store_txn *t;
    store_vote_result res;
    store_options so = {.create = 1, .no_sync = 1};
    store_txn_meta meta = {.status = ' '};
    uint64_t tid;
    zerr err;
    char path[4096];
    cr_assert_eq(store_open(&s, db, &so, &err), 0, "%s", err.msg);
    cr_assert_eq(store_txn_begin(s, &meta, &t, &err), 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        blob_file(s, blobs[i], path, sizeof path);
        cr_assert_eq(store_txn_store_blob(t, oid, 0, data[i], strlen(data[i]), path, &err), 0,
                     "%s", err.msg);
    }
    cr_assert_eq(store_txn_vote(t, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &err), 0, "%s", err.msg);
    store_txn_free(t);
    store_close(s);
    return tid;
}

/* The data records of the exported file's only transaction. */
static int read_records(const char *fs, uint64_t tid, zfs_rec *out, char bufs[][64], int cap)
{
    zfs_reader *r;
    zfs_reader_opts ro = {.want_data = 1};
    zfs_txn txn;
    zfs_rec rec;
    zerr err;
    int n = 0, rc;
    cr_assert_eq(zfs_reader_open(&r, fs, &ro, &err), 0, "%s", err.msg);
    cr_assert_eq(zfs_reader_next_txn(r, &txn, &err), 1, "%s", err.msg);
    cr_expect_eq(txn.tid, tid);
    while ((rc = zfs_reader_next_record(r, &rec, &err)) == 1 && n < cap) {
        cr_assert_lt(rec.data.len, 64);
        memcpy(bufs[n], rec.data.p, rec.data.len);
        bufs[n][rec.data.len] = 0;
        out[n++] = rec;
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_eq(zfs_reader_next_txn(r, &txn, &err), 0);
    zfs_reader_close(r);
    return n;
}

static int n_files;

static int count_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    n_files += type == FTW_F && strcmp(path + ftw->base, ".layout") != 0;
    return 0;
}

/* Regular files under dir, recursively (the .layout marker aside). */
static int count_files(const char *dir)
{
    n_files = 0;
    cr_assert_eq(nftw(dir, count_file, 16, FTW_PHYS), 0);
    return n_files;
}

Test(convert_export_blob, one_oid_stored_twice_with_a_blob_exports_two_records_one_file)
{
    const char *const data[2] = {"blob record 1", "blob record 2"};
    const char *const blobs[2] = {"first content", "second content"};
    char *db = tu_path(tmp, "db"), *fs = tu_path(tmp, "out.fs"), *bdir = tu_path(tmp, "out.blobs");
    uint64_t oid = 7, tid = commit_blob_twice(db, oid, data, blobs);

    zfs_export_opts eo = {.quiet = 1, .blob_dir = bdir};
    zfs_export_stats st;
    zerr err;
    cr_assert_eq(zfs_export(db, fs, &eo, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.records, 2);
    cr_expect_eq(st.blobs, 1);

    zfs_rec recs[3];
    char bufs[3][64];
    cr_assert_eq(read_records(fs, tid, recs, bufs, 3), 2);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(recs[i].oid, oid);
        cr_expect_eq(recs[i].kind, ZFS_DATA);
        cr_expect_str_eq(bufs[i], data[i]);
    }

    char path[4096];
    size_t len;
    cr_assert_eq(zblob_path(bdir, ZBLOB_BUSHY, oid, tid, path, sizeof path), 0);
    char *got = (char *)tu_read_file(path, &len);
    cr_assert_not_null(got, "no blob file %s", path);
    cr_expect(len == strlen(blobs[1]) && !memcmp(got, blobs[1], len),
              "the blob stored last wins");
    cr_expect_eq(count_files(bdir), 1);
    free(got);
    free(db);
    free(fs);
    free(bdir);
}

/* A blob file of the store swapped for a symlink to a file outside (a shared
 * blob folder's clients can do that): the export refuses it rather than
 * copy the outside file into the FileStorage's blobs. */
Test(convert_export_blob, a_blob_file_that_is_a_link_fails_the_export)
{
    const char *const data[2] = {"blob record 1", "blob record 2"};
    const char *const blobs[2] = {"first content", "second content"};
    char *db = tu_path(tmp, "db"), *fs = tu_path(tmp, "out.fs"), *bdir = tu_path(tmp, "out.blobs");
    char *secret = tu_path(tmp, "secret");
    uint64_t oid = 7, tid = commit_blob_twice(db, oid, data, blobs);
    char path[4096];
    store *s;
    store_options so = {.read_only = 1};
    zerr err;
    cr_assert_eq(store_open(&s, db, &so, &err), 0, "%s", err.msg);
    cr_assert_eq(store_blob_path(s, oid, tid, path, sizeof path), 0);
    store_close(s);
    cr_assert_eq(tu_write_file(secret, "secret", 6), 0);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(symlink(secret, path), 0);

    zfs_export_opts eo = {.quiet = 1, .blob_dir = bdir};
    cr_expect_eq(zfs_export(db, fs, &eo, NULL, &err), ZE_CORRUPT);
    cr_expect(strstr(err.msg, "symbolic link"), "%s", err.msg);
    free(db);
    free(fs);
    free(bdir);
    free(secret);
}
