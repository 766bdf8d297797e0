/* Opening, closing, locking, format version, oids and tids. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"

Test(store_open, missing_folder_and_missing_database)
{
    char *dir = tu_tmpdir("open");
    char path[512];
    snprintf(path, sizeof path, "%s/nope", dir);
    store *s = NULL;
    zerr e;
    store_options opt = {.no_sync = 1};
    cr_assert_eq(store_open(&s, path, &opt, &e), ZE_NOTFOUND);
    cr_assert(strstr(e.msg, "does not exist"), "%s", e.msg);
    /* an existing folder without a database, and no create */
    cr_assert_eq(store_open(&s, dir, &opt, &e), ZE_NOTFOUND);
    cr_assert(strstr(e.msg, "no zeolite database"), "%s", e.msg);
    cr_assert_null(s);
    tu_rmrf(dir);
    free(dir);
}

Test(store_open, unreadable_folder)
{
    char *dir = tu_tmpdir("open");
    chmod(dir, 0);
    store *s = NULL;
    zerr e;
    store_options opt = {.create = 1, .no_sync = 1};
    int rc = store_open(&s, dir, &opt, &e);
    chmod(dir, 0700);
    if (geteuid() != 0) {   /* root reads anything */
        cr_assert_eq(rc, ZE_IO, "%s", e.msg);
        cr_assert_null(s);
    } else {
        store_close(s);
    }
    /* a path that is a file, not a folder */
    char path[512];
    snprintf(path, sizeof path, "%s/file", dir);
    cr_assert_eq(tu_write_file(path, "x", 1), 0);
    s = NULL;
    cr_assert_eq(store_open(&s, path, &opt, &e), ZE_INVAL);
    cr_assert(strstr(e.msg, "not a folder"), "%s", e.msg);
    cr_assert_null(s);
    tu_rmrf(dir);
    free(dir);
}

Test(store_open, create_in_folder_with_other_files_and_reopen)
{
    st_fixture f;
    char *dir = tu_tmpdir("open");
    char path[512];
    snprintf(path, sizeof path, "%s/zeo.conf", dir);
    cr_assert_eq(tu_write_file(path, "x", 1), 0);
    store_options opt = {.create = 1, .no_sync = 1};
    zerr e;
    cr_assert_eq(store_open(&f.s, dir, &opt, &e), 0, "%s", e.msg);
    cr_assert_eq(store_last_tid(f.s), 0);
    uint64_t tid = stt_commit1(f.s, 0, 0, "root");
    store_close(f.s);
    f.dir = dir;
    stt_reopen(&f, NULL);
    cr_assert_eq(store_last_tid(f.s), tid);
    char buf[32];
    uint64_t start;
    cr_assert_eq(stt_load(f.r, 0, STORE_TID_MAX, buf, sizeof buf, &start, NULL), 0);
    cr_assert_str_eq(buf, "root");
    cr_assert_eq(start, tid);
    cr_assert_eq(store_object_count(f.s), 1);
    cr_assert(store_size_bytes(f.s) > 0);
    size_t n;
    uint8_t *other = tu_read_file(path, &n);
    cr_assert(other && other[0] == 'x');
    free(other);
    stt_done(&f);
}

static int set_version(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    return store__meta_put(txn, s, "version", *(uint64_t *)ud, err);
}

Test(store_open, other_format_version)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t v = STORE_FORMAT_VERSION + 1;
    zerr e;
    cr_assert_eq(store__write(f.s, set_version, &v, &e), 0, "%s", e.msg);
    stt_close(&f);
    store *s = NULL;
    store_options opt = {.no_sync = 1};
    cr_assert_eq(store_open(&s, f.dir, &opt, &e), ZE_VERSION);
    cr_assert(strstr(e.msg, "version"), "%s", e.msg);
    cr_assert_null(s);
    tu_rmrf(f.dir);
    free(f.dir);
}

Test(store_open, exclusive_lock)
{
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .exclusive = 1};
    stt_open(&f, &opt);
    cr_assert_eq(store_is_locked(f.dir), 1);
    store *s2 = NULL;
    zerr e;
    cr_assert_eq(store_open(&s2, f.dir, &opt, &e), ZE_BUSY);
    cr_assert(strstr(e.msg, "in use"), "%s", e.msg);
    /* a non-exclusive writer is refused too (before touching LMDB) */
    store_options writer = {.no_sync = 1};
    cr_assert_eq(store_open(&s2, f.dir, &writer, &e), ZE_BUSY);
    cr_assert(strstr(e.msg, "read-only"), "%s", e.msg);
    stt_close(&f);
    cr_assert_eq(store_is_locked(f.dir), 0);
    stt_reopen(&f, &opt);
    stt_done(&f);
}

Test(store_open, read_only)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t tid = stt_commit1(f.s, 0, 0, "root");
    stt_close(&f);
    store_options ro = {.read_only = 1};
    stt_reopen(&f, &ro);
    cr_assert(store_is_read_only(f.s));
    char buf[16];
    cr_assert_eq(stt_load(f.r, 0, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    store_txn_meta m = {0};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), ZE_READONLY);
    uint64_t oid;
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), ZE_READONLY);
    cr_assert_eq(store_last_tid(f.s), tid);
    stt_done(&f);
}

static int set_next_oid(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    return store__meta_put(txn, s, "next_oid", *(uint64_t *)ud, err);
}

Test(store_open, a_wrapped_counter_is_raised_past_the_stored_oids)
{
    /* What an earlier zeolite wrote after a store of the last oid but one. */
    st_fixture f;
    stt_open(&f, NULL);
    stt_commit1(f.s, 7000, 0, "x");
    uint64_t wrapped = 0, oid;
    zerr e;
    cr_assert_eq(store__write(f.s, set_next_oid, &wrapped, &e), 0, "%s", e.msg);
    stt_close(&f);
    stt_reopen(&f, NULL);
    /* The repair is written at open, so it holds even if pack later
     * removes oid 7000. */
    MDB_txn *txn;
    uint64_t saved = 0;
    cr_assert_eq(store__read_begin(f.s, &txn, &e), 0, "%s", e.msg);
    cr_assert_eq(store__meta_get(txn, f.s, "next_oid", &saved, &e), 0, "%s", e.msg);
    mdb_txn_abort(txn);
    cr_assert_eq(saved, 7001);
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), 0, "%s", e.msg);
    cr_assert_eq(oid, 7001);
    stt_done(&f);
}
