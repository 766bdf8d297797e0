/* test_backup.c: store_backup (hot copy with blobs, compacting copy) and the
 * `zeolite backup` command. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops_util.h"
#include "testutil.h"

static store *s;
static char *dir, *dest;

static void setup(void)
{
    s = ops_open(&dir, 0);
    char *parent = tu_tmpdir("store_ops_dest");
    dest = malloc(strlen(parent) + 8);
    sprintf(dest, "%s/copy", parent);
    free(parent);
}

static void teardown(void)
{
    store_close(s);
    tu_rmrf(dir);
    char *slash = strrchr(dest, '/');
    *slash = 0;
    tu_rmrf(dest);
    free(dir);
    free(dest);
}

TestSuite(backup, .init = setup, .fini = teardown);

typedef struct sample {
    uint64_t root, a, b;       /* b is a blob object */
    uint64_t a_tid, b_tid;
} sample;

static sample fill_sample(store *st)
{
    sample x = {.root = 0, .a = ops_new_oid(st), .b = ops_new_oid(st)};
    test_ref refs[2] = {{x.a, REF_STRONG}, {x.b, REF_STRONG}};
    ops_put(st, 0, 0, refs, 2, "root");
    uint64_t a1 = ops_put(st, x.a, 0, NULL, 0, "a1");
    x.a_tid = ops_put(st, x.a, a1, NULL, 0, "a2");
    x.b_tid = ops_put_blob(st, x.b, 0, "blob content");
    return x;
}

static void expect_same_object(store *x, store *y, uint64_t oid)
{
    zbuf dx = ZBUF_INIT, dy = ZBUF_INIT;
    uint64_t tx, ty;
    cr_assert_eq(ops_load(x, oid, &dx, &tx), 0);
    cr_assert_eq(ops_load(y, oid, &dy, &ty), 0, "oid %llu missing in the copy",
                 (unsigned long long)oid);
    cr_expect_eq(tx, ty);
    cr_expect(dx.len == dy.len && !memcmp(dx.data, dy.data, dx.len));
    zbuf_free(&dx);
    zbuf_free(&dy);
}

static char *read_blob(store *st, uint64_t oid, uint64_t tid, size_t *len)
{
    store_reader *r;
    char path[4096];
    cr_assert_eq(store_reader_new(st, &r, NULL), 0);
    cr_assert_eq(store_load_blob(r, oid, tid, path, sizeof path, NULL), 0);
    store_reader_free(r);
    return (char *)tu_read_file(path, len);
}

static void expect_copy_equal(const sample *x, const char *copy_dir)
{
    store *c = ops_reopen(copy_dir);
    cr_expect_eq(store_last_tid(c), store_last_tid(s));
    expect_same_object(s, c, 0);
    expect_same_object(s, c, x->a);
    expect_same_object(s, c, x->b);
    size_t len;
    char *blob = read_blob(c, x->b, x->b_tid, &len);
    cr_expect(blob && len == 12 && !memcmp(blob, "blob content", 12), "blob in the copy");
    free(blob);
    store_close(c);
}

Test(backup, copy_holds_the_data_and_blobs)
{
    sample x = fill_sample(s);
    zerr err;
    cr_assert_eq(store_backup(s, dest, 0, &err), 0, "backup: %s", err.msg);
    expect_copy_equal(&x, dest);
}

Test(backup, live_store_keeps_working_after_backup)
{
    sample x = fill_sample(s);
    zerr err;
    cr_assert_eq(store_backup(s, dest, 1, &err), 0, "backup: %s", err.msg);
    ops_put(s, x.a, x.a_tid, NULL, 0, "a3");
    store *c = ops_reopen(dest);
    zbuf d = ZBUF_INIT;
    uint64_t tid;
    cr_expect_eq(ops_load(c, x.a, &d, &tid), 0);
    cr_expect_eq(tid, x.a_tid, "the copy is the snapshot, without later commits");
    zbuf_free(&d);
    store_close(c);
}

Test(backup, copy_taken_while_commits_go_on_is_consistent)
{
    sample x = fill_sample(s);
    ops_committer c = {s, x.a, x.a_tid, 80};
    pthread_t th;
    zerr err;
    cr_assert_eq(pthread_create(&th, NULL, ops_commit_loop, &c), 0);
    int rc = store_backup(s, dest, 0, &err);
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0, "backup: %s", err.msg);

    store *copy = ops_reopen(dest);
    zbuf got = ZBUF_INIT, want = ZBUF_INIT;
    uint64_t tid;
    cr_assert_eq(ops_load(copy, x.a, &got, &tid), 0);
    cr_assert_eq(ops_load_serial(s, x.a, tid, &want), 0, "the copy's revision is a real one");
    cr_expect(got.len == want.len && !memcmp(got.data, want.data, got.len));
    cr_expect_eq(store_last_tid(copy), tid > x.b_tid ? tid : x.b_tid,
                 "the copy ends at a commit boundary");
    size_t len;
    char *blob = read_blob(copy, x.b, x.b_tid, &len);
    cr_expect(blob && len == 12 && !memcmp(blob, "blob content", 12));
    free(blob);
    zbuf_free(&got);
    zbuf_free(&want);
    store_close(copy);
}

Test(backup, refuses_a_non_empty_destination)
{
    zerr err;
    cr_assert_eq(mkdir(dest, 0755), 0);
    char *f = malloc(strlen(dest) + 8);
    sprintf(f, "%s/other", dest);
    cr_assert_eq(tu_write_file(f, "x", 1), 0);
    cr_expect_eq(store_backup(s, dest, 0, &err), ZE_EXISTS);
    cr_expect(strstr(err.msg, "not empty"), "message: %s", err.msg);
    free(f);
}

Test(backup, reports_a_blob_file_missing_from_the_database)
{
    sample x = fill_sample(s);
    char path[4096];
    zerr err;
    cr_assert_eq(store_blob_path(s, x.b, x.b_tid, path, sizeof path), 0);
    cr_assert_eq(unlink(path), 0);
    cr_expect_eq(store_backup(s, dest, 0, &err), ZE_NOTFOUND);
    cr_expect(strstr(err.msg, "is missing"), "message: %s", err.msg);
}

static long file_size(const char *folder)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", folder);
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (long)st.st_size;
}

Test(backup, compacting_copy_is_smaller_after_pack)
{
    enum { N = 300, REVS = 4 };
    uint64_t oids[N], serials[N] = {0};
    zbuf data[N];
    char payload[1024];
    memset(payload, 'x', sizeof payload - 1);
    payload[sizeof payload - 1] = 0;
    for (int i = 0; i < N; i++)
        oids[i] = ops_new_oid(s), data[i] = (zbuf)ZBUF_INIT;
    test_ref refs[8];
    for (int i = 0; i < 8; i++)
        refs[i] = (test_ref){oids[i], REF_STRONG};
    ops_put(s, 0, 0, refs, 8, "root");
    for (int r = 0; r < REVS; r++) {
        for (int i = 0; i < N; i++)
            ops_record(&data[i], NULL, 0, payload);
        uint64_t tid = ops_commit(s, N, oids, serials, data);
        for (int i = 0; i < N; i++)
            serials[i] = tid;
    }
    store_pack_stats st;
    cr_assert_eq(store_pack(s, (double)time(NULL) + 1e6, 1, &st, NULL), 0);
    cr_assert_gt(st.records_removed, 0);

    char *plain = malloc(strlen(dest) + 8);
    sprintf(plain, "%s-plain", dest);
    cr_assert_eq(store_backup(s, plain, 0, NULL), 0);
    cr_assert_eq(store_backup(s, dest, 1, NULL), 0);
    cr_expect_lt(file_size(dest), file_size(plain));
    store *c = ops_reopen(dest);
    for (int i = 0; i < 8; i++)
        expect_same_object(s, c, oids[i]);
    store_close(c);
    tu_rmrf(plain);
    free(plain);
    for (int i = 0; i < N; i++)
        zbuf_free(&data[i]);
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(backup, command_copies_a_database_a_server_holds)
{
    sample x = fill_sample(s);
    char cmd[8192];
    /* s is open with the exclusive lock, as a server holds it */
    snprintf(cmd, sizeof cmd, "'%s' backup '%s' '%s' --compact >/dev/null", tu_zeolite_bin(),
             dir, dest);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    expect_copy_equal(&x, dest);
}

Test(backup, command_reports_bad_usage_and_errors)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' backup --help >/dev/null", tu_zeolite_bin());
    cr_expect_eq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' backup '%s' 2>/dev/null", tu_zeolite_bin(), dir);
    cr_expect_eq(run(cmd), 2, "missing DEST");
    snprintf(cmd, sizeof cmd, "'%s' backup '%s/missing' '%s' 2>/dev/null", tu_zeolite_bin(), dir,
             dest);
    cr_expect_eq(run(cmd), 1, "missing database");
}
