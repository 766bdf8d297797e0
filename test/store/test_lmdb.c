/* What only the LMDB backend has: reader slots kept for votes, the blob
 * folder's orphans and layout (PostgreSQL's blob folder is a cache). */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_lmdb, .init = setup, .fini = teardown);

Test(store_lmdb, open_snapshots_leave_reader_slots_for_votes)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "x");
    enum { MANY = 600 };
    store_iter *its[MANY];
    zerr e;
    int pinned = 0, rc = 0;
    while (pinned < MANY && (rc = store_iter_open(f.s, 0, 0, &its[pinned], &e)) == 0)
        pinned++;
    cr_expect_eq(rc, ZE_BUSY, "%d snapshots opened", pinned);
    cr_expect(strstr(e.msg, "kept for votes"), "%s", e.msg);
    store_reader *r;
    cr_expect_eq(store_reader_new(f.s, &r, &e), ZE_BUSY);
    /* Iterators that keep no snapshot are not limited here. */
    store_iter *res[MANY];
    for (int i = 0; i < MANY; i++)
        cr_assert_eq(store_iter_open_resumable(f.s, 0, 0, &res[i], &e), 0, "%s", e.msg);
    store_txn_info info;
    cr_expect_eq(store_iter_next_txn(res[MANY - 1], &info, &e), 1, "%s", e.msg);
    /* A vote and a commit find their slots. */
    uint64_t t2 = stt_commit1(f.s, 1, t1, "y");
    cr_expect_gt(t2, t1);
    for (int i = 0; i < MANY; i++)
        store_iter_close(res[i]);
    for (int i = 0; i < pinned; i++)
        store_iter_close(its[i]);
    cr_assert_eq(store_reader_new(f.s, &r, &e), 0, "%s", e.msg);
    store_reader_free(r);
}

Test(store_lmdb, orphans_are_removed_at_open)
{
    uint64_t t1 = stt_commit_blob(f.s, 5, 0, "kept");
    char kept[512], orphan[512], tmp[512], dir[512];
    store_blob_path(f.s, 5, t1, kept, sizeof kept);
    /* a file for a tid that never committed (a crash before the LMDB commit) */
    store_blob_path(f.s, 5, t1 + 1, orphan, sizeof orphan);
    cr_assert_eq(tu_write_file(orphan, "x", 1), 0);
    stt_blob_tmp(f.s, tmp, sizeof tmp, "leftover");
    snprintf(dir, sizeof dir, "%s", store_blob_dir(f.s));
    stt_close(&f);
    stt_reopen(&f, NULL);
    stt_expect_file(kept, "kept");
    cr_assert_neq(access(orphan, F_OK), 0);
    cr_assert_neq(access(tmp, F_OK), 0);
}

Test(store_lmdb, refuses_another_layout)
{
    char marker[512], lawn[512];
    snprintf(marker, sizeof marker, "%s/.layout", store_blob_dir(f.s));
    snprintf(lawn, sizeof lawn, "%s/0x01", store_blob_dir(f.s));
    stt_close(&f);
    cr_assert_eq(tu_write_file(marker, "lawn\n", 5), 0);
    store *s = NULL;
    zerr e;
    store_options opt = {.no_sync = 1};
    cr_assert_eq(store_open(&s, f.dir, &opt, &e), ZE_CORRUPT);
    cr_assert(strstr(e.msg, "lawn"), "%s", e.msg);
    /* no marker but legacy content: lawn as well */
    unlink(marker);
    cr_assert_eq(mkdir(lawn, 0777), 0);
    cr_assert_eq(store_open(&s, f.dir, &opt, &e), ZE_CORRUPT);
    /* an empty folder without a marker is bushy, and gets its marker */
    rmdir(lawn);
    stt_reopen(&f, NULL);
    size_t n;
    uint8_t *p = tu_read_file(marker, &n);
    cr_assert(p && n == 5 && !memcmp(p, "bushy", 5));
    free(p);
}
