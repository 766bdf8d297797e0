/* Blobs: bushy layout, install at commit, abort, orphans, undo copies. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_blob, .init = setup, .fini = teardown);

Test(store_blob, bushy_path_and_layout_marker)
{
    char path[512], want[600];
    cr_assert_eq(store_blob_path(f.s, 1, 0x03f8a3bd49999999ull, path, sizeof path), 0);
    snprintf(want, sizeof want, "%s/0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x01/"
             "0x03f8a3bd49999999.blob", store_blob_dir(f.s));
    cr_assert_str_eq(path, want);
    cr_assert_eq(store_blob_path(f.s, 0, 0, path, sizeof path), 0);
    cr_assert(strstr(path, "/0x00/0x00.blob"), "%s", path);
    cr_assert_eq(store_blob_path(f.s, 1, 0x12, path, 10), ZE_TOOBIG);
    snprintf(want, sizeof want, "%s/.layout", store_blob_dir(f.s));
    stt_expect_file(want, "bushy");
}

Test(store_blob, store_and_load)
{
    uint64_t t1 = stt_commit_blob(f.s, 5, 0, "blob one");
    uint64_t t2 = stt_commit_blob(f.s, 5, t1, "blob two");
    char path[512], want[512];
    zerr e;
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_load_blob(f.r, 5, t1, path, sizeof path, &e), 0, "%s", e.msg);
    store_blob_path(f.s, 5, t1, want, sizeof want);
    cr_assert_str_eq(path, want);
    stt_expect_file(path, "blob one");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0222, 0);   /* committed blobs are read-only */
    cr_assert_eq(store_load_blob(f.r, 5, t2, path, sizeof path, &e), 0);
    stt_expect_file(path, "blob two");
    /* a record without a blob, and an unknown revision */
    uint64_t t3 = stt_commit1(f.s, 6, 0, "plain");
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_load_blob(f.r, 6, t3, path, sizeof path, &e), ZE_NOTFOUND);
    cr_assert_eq(store_load_blob(f.r, 5, t3, path, sizeof path, &e), ZE_NOTFOUND);
    /* iteration flags blob records */
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, t1, t1, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.has_blob, 1);
    store_iter_close(it);
}

Test(store_blob, abort_removes_the_temp_file)
{
    char tmp[512];
    stt_blob_tmp(f.s, tmp, sizeof tmp, "never");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store_blob(t, 7, 0, "B", 1, tmp, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0);
    store_txn_abort(t);
    store_txn_free(t);
    cr_assert_neq(access(tmp, F_OK), 0);
    cr_assert_eq(stt_load(f.r, 7, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
}

Test(store_blob, undo_copies_the_blob_under_the_undo_tid)
{
    uint64_t t1 = stt_commit_blob(f.s, 5, 0, "first");
    uint64_t t2 = stt_commit_blob(f.s, 5, t1, "second");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_undo(t, t2, &e), 0);
    uint64_t u = stt_finish(t);
    char path[512];
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_load_blob(f.r, 5, u, path, sizeof path, &e), 0, "%s", e.msg);
    char want[512], first[512];
    store_blob_path(f.s, 5, u, want, sizeof want);
    cr_assert_str_eq(path, want);
    stt_expect_file(path, "first");
    /* A copy, not a link: a file with other links is refused in a blob
     * folder, and could be one from elsewhere. */
    store_blob_path(f.s, 5, t1, first, sizeof first);
    struct stat a, b;
    cr_assert_eq(stat(first, &a), 0);
    cr_assert_eq(stat(path, &b), 0);
    cr_expect(a.st_nlink == 1 && b.st_nlink == 1 && a.st_ino != b.st_ino);
    cr_expect_eq(b.st_mode & 0777, 0444);
}

/* As ClientStorage.storeBlob sends it: storea, then storeBlobEnd with the
 * same data, so the transaction holds two records of the oid. */
static uint64_t commit_blob_twice(uint64_t oid, uint64_t serial, const char *text)
{
    char tmp[512];
    stt_blob_tmp(f.s, tmp, sizeof tmp, text);
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, oid, serial, "B", 1, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_store_blob(t, oid, serial, "B", 1, tmp, &e), 0, "%s", e.msg);
    return stt_finish(t);
}

static uint64_t undo_ok(uint64_t tid)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_undo(t, tid, &e), 0);
    return stt_finish(t);
}

static void expect_blob(uint64_t oid, uint64_t serial, const char *text)
{
    char path[512];
    zerr e;
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_load_blob(f.r, oid, serial, path, sizeof path, &e), 0, "%s", e.msg);
    stt_expect_file(path, text);
}

Test(store_blob, undo_and_redo_of_a_zeo_blob_transaction)
{
    uint64_t t1 = commit_blob_twice(5, 0, "first");
    uint64_t t2 = commit_blob_twice(5, t1, "second");
    uint64_t u1 = undo_ok(t2);
    expect_blob(5, u1, "first");
    cr_assert_eq(stt_load(f.r, 5, STORE_TID_MAX, NULL, 0, NULL, NULL), 0);
    uint64_t u2 = undo_ok(u1);
    expect_blob(5, u2, "second");
    /* the older files stay as they were */
    expect_blob(5, t1, "first");
    expect_blob(5, t2, "second");
}

Test(store_blob, undo_of_a_zeo_blob_creation)
{
    uint64_t t1 = commit_blob_twice(6, 0, "born");
    uint64_t u1 = undo_ok(t1);
    char path[512];
    zerr e;
    cr_assert_eq(stt_load(f.r, 6, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    cr_assert_eq(store_load_blob(f.r, 6, u1, path, sizeof path, &e), ZE_NOTFOUND);
    uint64_t u2 = undo_ok(u1);
    expect_blob(6, u2, "born");
}

/* The undo of a ZEO blob store writes two back-pointers; only the second
 * (the one loads see) carries the file, so an export copies it once. */
Test(store_blob, undo_gives_the_file_to_the_last_record_of_the_oid)
{
    uint64_t t1 = commit_blob_twice(5, 0, "first");
    uint64_t t2 = commit_blob_twice(5, t1, "second");
    uint64_t u1 = undo_ok(t2);
    store_iter *it;
    store_txn_info info;
    store_record a, b;
    zerr e;
    cr_assert_eq(store_iter_open(f.s, u1, u1, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &a, &e), 1);
    cr_assert_eq(a.has_blob, 0);
    cr_assert_eq(store_iter_next_record(it, &b, &e), 1);
    cr_assert_eq(b.has_blob, 1);
    cr_assert_eq(b.back_tid, t1);
    store_iter_close(it);
    expect_blob(5, u1, "first");
}

/* A client storing one blob twice in a transaction gives two records with
 * a file each, at one path. Pack drops the first record, never the file
 * the second one (the current record) still needs. */
Test(store_blob, pack_keeps_the_file_of_a_blob_stored_twice)
{
    char tmp1[512], tmp2[512];
    stt_blob_tmp(f.s, tmp1, sizeof tmp1, "draft");
    stt_blob_tmp(f.s, tmp2, sizeof tmp2, "final");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store_blob(t, 5, 0, "B", 1, tmp1, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_store_blob(t, 5, 0, "B", 1, tmp2, &e), 0, "%s", e.msg);
    uint64_t t1 = stt_finish(t);
    expect_blob(5, t1, "final");
    store_pack_stats st;
    cr_assert_eq(store_pack(f.s, (double)time(NULL) + 1e6, 0, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.records_removed, 1);
    cr_assert_eq(st.blobs_removed, 0);
    expect_blob(5, t1, "final");
}
