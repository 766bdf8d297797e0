/* The blob folder is never followed out of: clients of a shared blob folder
 * can write into it, so a symlink or hard link found there is refused, never
 * followed, at open, commit, abort, undo, pack and the start-up sweep. Files
 * planted outside the store keep their mode, links and contents. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/zfile.h"

static st_fixture f;
static char *out;   /* a folder outside the store */

static void setup(void)
{
    stt_open(&f, NULL);
    out = tu_tmpdir("outside");
    cr_assert(out);
}

static void teardown(void)
{
    if (f.s) {
        stt_done(&f);
    } else {   /* a test that left the store closed */
        tu_rmrf(f.dir);
        free(f.dir);
    }
    tu_rmrf(out);
    free(out);
}

TestSuite(store_blob_links, .init = setup, .fini = teardown);

/* The store's blob folder, or a path below it, in a static buffer. */
static const char *in_blobs(const char *rel)
{
    static char buf[2][1024];
    static int next;
    char *b = buf[next++ % 2];
    snprintf(b, sizeof buf[0], "%s/blobs/%s", f.dir, rel);
    return b;
}

static void plant(tu_canary *c, const char *name, mode_t mode)
{
    cr_assert_eq(tu_canary_plant(c, out, name, mode), 0, "%s/%s", out, name);
}

/* Its state now counts: the links the test made as the attacker. */
static void note(tu_canary *c)
{
    cr_assert_eq(tu_canary_note(c), 0, "%s", c->path);
}

static void intact(tu_canary *c)
{
    char why[1200];
    cr_expect(!tu_canary_changed(c, why, sizeof why), "%s", why);
    tu_canary_free(c);
}

static uint64_t commit_blob(uint64_t oid, uint64_t serial, const char *text)
{
    char tmp[1024];
    zerr e;
    cr_assert_eq(store_blob_tmpname(f.s, tmp, sizeof tmp, &e), 0, "%s", e.msg);
    cr_assert_eq(tu_write_file(tmp, text, strlen(text)), 0);
    store_txn *t = stt_begin(f.s);
    cr_assert_eq(store_txn_store_blob(t, oid, serial, "B", 1, tmp, &e), 0, "%s", e.msg);
    return stt_finish(t);
}

/* Replace oid's folder (its parents made) with a symlink to out. */
static void link_oid_dir(uint64_t oid)
{
    char path[1024], file[1024];
    cr_assert_eq(store_blob_path(f.s, oid, 0, file, sizeof file), 0);
    snprintf(path, sizeof path, "%.*s", (int)(strrchr(file, '/') - file), file);
    cr_assert_eq(zfile_mkdirs_parent(path, 0755, NULL), 0);
    cr_assert_eq(zfile_rm_rf(path, NULL), 0);
    cr_assert_eq(symlink(out, path), 0);
}

Test(store_blob_links, a_tmp_folder_that_is_a_link_fails_the_open_and_is_not_emptied)
{
    tu_canary c;
    plant(&c, "keep", 0644);
    stt_close(&f);
    cr_assert_eq(rmdir(in_blobs("tmp")), 0);
    cr_assert_eq(symlink(out, in_blobs("tmp")), 0);
    store_options opt = {.create = 1, .no_sync = 1};
    zerr e;
    cr_expect_eq(store_open(&f.s, f.dir, &opt, &e), ZE_CORRUPT, "the open went through");
    cr_expect(strstr(e.msg, in_blobs("tmp")) && strstr(e.msg, "symbolic link"), "%s", e.msg);
    f.s = NULL;
    intact(&c);
    cr_expect_eq(tu_count_entries(out), 1);
    /* With the link gone, the store opens. */
    cr_assert_eq(unlink(in_blobs("tmp")), 0);
    stt_reopen(&f, NULL);
}

Test(store_blob_links, a_layout_marker_that_is_a_link_fails_the_open_and_is_not_written)
{
    char target[1024];
    stt_close(&f);
    snprintf(target, sizeof target, "%s/created", out);
    cr_assert_eq(unlink(in_blobs(".layout")), 0);
    cr_assert_eq(symlink(target, in_blobs(".layout")), 0);
    store_options opt = {.create = 1, .no_sync = 1};
    zerr e;
    cr_expect_eq(store_open(&f.s, f.dir, &opt, &e), ZE_CORRUPT, "the open went through");
    cr_expect(strstr(e.msg, ".layout is a symbolic link"), "%s", e.msg);
    f.s = NULL;
    cr_expect_eq(tu_count_entries(out), 0, "the marker was written through the link");
}

Test(store_blob_links, the_start_up_sweep_never_follows_or_unlinks_a_link)
{
    uint64_t t1 = commit_blob(5, 0, "kept");
    char kept[1024], orphan[1024], linked[1024];
    store_blob_path(f.s, 5, t1, kept, sizeof kept);
    /* A real orphan (a crash before the LMDB commit) and an orphan-named
     * hard link to a file outside, in oid 5's folder. */
    store_blob_path(f.s, 5, t1 + 1, orphan, sizeof orphan);
    cr_assert_eq(tu_write_file(orphan, "x", 1), 0);
    tu_canary hard, far;
    plant(&hard, "private", 0600);
    store_blob_path(f.s, 5, t1 + 2, linked, sizeof linked);
    cr_assert_eq(link(hard.path, linked), 0);
    note(&hard);
    /* Oid 6's folder links to out, which holds an orphan-named file. */
    char name[64];
    store_blob_path(f.s, 6, t1, linked, sizeof linked);
    snprintf(name, sizeof name, "%s", strrchr(linked, '/') + 1);
    plant(&far, name, 0644);
    link_oid_dir(6);
    stt_close(&f);
    stt_reopen(&f, NULL);
    cr_expect_neq(access(orphan, F_OK), 0, "the plain orphan went");
    cr_expect_eq(access(kept, F_OK), 0);
    intact(&hard);
    intact(&far);
}

Test(store_blob_links, a_queued_blob_is_checked_where_it_is_queued)
{
    tu_canary c;
    plant(&c, "secret", 0600);
    char tmp[1024], dir[1024];
    zerr e;
    store_txn *t = stt_begin(f.s);
    /* A symlink, a hard link to a file outside, a missing file. */
    snprintf(tmp, sizeof tmp, "%s", in_blobs("tmp/sym"));
    cr_assert_eq(symlink(c.path, tmp), 0);
    cr_expect_eq(store_txn_store_blob(t, 1, 0, "B", 1, tmp, &e), ZE_CORRUPT);
    cr_expect(strstr(e.msg, tmp) && strstr(e.msg, "symbolic link"), "%s", e.msg);
    snprintf(tmp, sizeof tmp, "%s", in_blobs("tmp/hard"));
    cr_assert_eq(link(c.path, tmp), 0);
    note(&c);
    cr_expect_eq(store_txn_store_blob(t, 1, 0, "B", 1, tmp, &e), ZE_CORRUPT);
    cr_expect(strstr(e.msg, tmp) && strstr(e.msg, "2 hard links"), "%s", e.msg);
    cr_expect_eq(store_txn_store_blob_shared(t, 1, 0, "B", 1, "none.tmp", &e), ZE_NOTFOUND);
    cr_expect(strstr(e.msg, "none.tmp"), "the message names the file: %s", e.msg);
    cr_expect_eq(store_txn_store_blob_shared(t, 1, 0, "B", 1, "../x.tmp", &e), ZE_INVAL);
    /* A plain upload in a folder linked to out: refused before it is queued. */
    link_oid_dir(2);
    snprintf(dir, sizeof dir, "%s/up.tmp", out);
    cr_assert_eq(tu_write_file(dir, "up", 2), 0);
    cr_expect_eq(store_txn_store_blob_shared(t, 2, 0, "B", 1, "up.tmp", &e), ZE_CORRUPT);
    cr_expect(strstr(e.msg, "symbolic link"), "%s", e.msg);
    /* A good file is queued; swapped for a hard link to the canary, the
     * abort leaves that link alone. */
    cr_assert_eq(store_blob_tmpname(f.s, tmp, sizeof tmp, &e), 0);
    cr_assert_eq(store_txn_store_blob(t, 3, 0, "B", 1, tmp, &e), 0, "%s", e.msg);
    cr_assert_eq(unlink(tmp), 0);
    cr_assert_eq(link(c.path, tmp), 0);
    note(&c);
    store_txn_abort(t);
    store_txn_free(t);
    intact(&c);
    cr_expect(tu_exists(dir), "the outside file stays");
    cr_expect_eq(stt_load(f.r, 3, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
}

Test(store_blob_links, loads_refuse_a_linked_file_and_pack_removes_a_shared_read_only_one)
{
    uint64_t t1 = commit_blob(5, 0, "first");
    uint64_t t2 = commit_blob(5, t1, "second");
    uint64_t t3 = commit_blob(6, 0, "six");
    char p1[1024], p3[1024], copy[1024];
    store_blob_path(f.s, 5, t1, p1, sizeof p1);
    store_blob_path(f.s, 6, t3, p3, sizeof p3);
    /* A backup's link to a committed file: read-only for all, so it is
     * still served and pack still removes the store's name for it. */
    snprintf(copy, sizeof copy, "%s/backup.blob", out);
    cr_assert_eq(link(p1, copy), 0);
    zerr e;
    char path[1024];
    store_reader_refresh(f.r, &e);
    cr_expect_eq(store_load_blob(f.r, 5, t1, path, sizeof path, &e), 0, "%s", e.msg);
    /* Oid 6's file replaced by a hard link to a private file outside. */
    tu_canary c;
    plant(&c, "private", 0600);
    cr_assert_eq(unlink(p3), 0);
    cr_assert_eq(link(c.path, p3), 0);
    note(&c);
    int fd = -1;
    cr_expect_eq(store_open_blob(f.r, 6, t3, path, sizeof path, &fd, &e), ZE_CORRUPT);
    cr_expect(strstr(e.msg, "hard links"), "%s", e.msg);
    store_pack_stats st;
    cr_assert_eq(store_pack(f.s, (double)time(NULL) + 1e6, 0, &st, &e), 0, "%s", e.msg);
    cr_expect_eq(st.blobs_removed, 1);
    cr_expect_neq(access(p1, F_OK), 0, "the store's name went");
    cr_expect_eq(access(copy, F_OK), 0, "the backup's stays");
    intact(&c);
    store_reader_refresh(f.r, &e);
    cr_expect_eq(store_load_blob(f.r, 5, t2, path, sizeof path, &e), 0, "%s", e.msg);
}

Test(store_blob_links, a_spilled_transaction_buffer_has_no_name_in_tmp)
{
    size_t big = (8u << 20) + 1;
    char *data = malloc(big + 1);
    cr_assert(data);
    memset(data, 'x', big);
    data[big] = '\0';
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 1, 0, data, big, &e), 0, "%s", e.msg);
    cr_expect_eq(tu_count_entries(in_blobs("tmp")), 0,
                 "the spill file is not reachable by a name");
    uint64_t tid = stt_finish(t);
    cr_expect_neq(tid, 0);
    free(data);
}
