/* test_import.c: import and export through the store, driven by the manifests. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "convert/convert.h"
#include "fixtures.h"
#include "fxstore.h"
#include "store/store.h"
#include "testutil.h"

static char *tmp;

static void setup(void)
{
    tmp = tu_tmpdir("convert");
    cr_assert_not_null(tmp);
}

static void teardown(void)
{
    tu_rmrf(tmp);
    free(tmp);
}

TestSuite(convert_import, .init = setup, .fini = teardown);

/* Import fixture name into dbdir (with its blob directory when it has one). */
static int import_fixture(const char *name, const char *dbdir, zfs_import_stats *st, zerr *err)
{
    char *fs = fx_path(name, ".fs"), *blobs = fx_path(name, ".blobs");
    zfs_import_opts opt = {.quiet = 1, .blob_dir = tu_exists(blobs) ? blobs : NULL};
    int rc = zfs_import(fs, dbdir, &opt, st, err);
    free(fs);
    free(blobs);
    return rc;
}

static void round_trip(const char *name, int fi)
{
    char sub[64];
    snprintf(sub, sizeof sub, "db%d", fi);
    char *db = tu_path(tmp, sub), *out, *blobs;
    zfs_import_stats st;
    zerr err = {0};
    tj *m = fx_manifest(name);
    cr_assert_eq(import_fixture(name, db, &st, &err), 0, "%s: %s", name, err.msg);
    cr_expect_eq(st.txns, (uint64_t)tj_getn(m, "transaction_count"), "%s", name);
    cr_expect_eq(st.torn, 0);

    store *s;
    store_options so = {.read_only = 1};
    cr_assert_eq(store_open(&s, db, &so, &err), 0, "%s", err.msg);
    fx_expect_transactions(s, m);
    fx_expect_load_before(s, m);
    store_close(s);

    for (int layout = ZBLOB_BUSHY; layout <= ZBLOB_LAWN; layout++) {
        cr_assert_gt(asprintf(&out, "%s/out%d-%d.fs", tmp, fi, layout), 0);
        cr_assert_gt(asprintf(&blobs, "%s/out%d-%d.blobs", tmp, fi, layout), 0);
        int has_blobs = tj_get(m, "blob_dir") != NULL;
        zfs_export_opts eo = {.quiet = 1, .layout = layout, .blob_dir = has_blobs ? blobs : NULL};
        zfs_export_stats es;
        cr_assert_eq(zfs_export(db, out, &eo, &es, &err), 0, "%s: %s", name, err.msg);
        char *orig = fx_path(name, ".fs");
        cr_expect(tu_same_file(orig, out), "%s: export differs from the original", name);
        if (has_blobs)
            fx_expect_blob_files(m, blobs, layout);
        free(orig);
        free(out);
        free(blobs);
    }
    tj_free(m);
    free(db);
}

Test(convert_import, every_good_fixture_imports_loads_and_exports_identically)
{
    char **names = fx_names(0);
    for (int i = 0; names[i]; i++)
        round_trip(names[i], i);
    fx_free_names(names);
}

static uint64_t txn_count(const char *db)
{
    store *s;
    store_iter *it;
    store_txn_info info;
    store_options so = {.read_only = 1};
    uint64_t n = 0;
    cr_assert_eq(store_open(&s, db, &so, NULL), 0);
    cr_assert_eq(store_iter_open(s, 0, 0, &it, NULL), 0);
    while (store_iter_next_txn(it, &info, NULL) == 1)
        n++;
    store_iter_close(it);
    store_close(s);
    return n;
}

Test(convert_import, every_bad_fixture_gets_its_documented_behaviour)
{
    char **names = fx_names(1);
    for (int i = 0; names[i]; i++) {
        tj *bad = fx_manifest(names[i]);
        char sub[64];
        snprintf(sub, sizeof sub, "bad%d", i);
        char *db = tu_path(tmp, sub);
        zfs_import_stats st;
        zerr err = {0};
        int rc = import_fixture(names[i], db, &st, &err);
        if (!strncmp(tj_gets(bad, "converter_should"), "Refuse", 6)) {
            cr_expect_lt(rc, 0, "%s must be refused", names[i]);
            cr_expect(!tu_exists(db), "%s: nothing may be left", names[i]);
        } else {
            uint64_t tail;
            size_t ntxn;
            fx_tail(bad, &tail, &ntxn);
            cr_expect_eq(rc, 0, "%s: %s", names[i], err.msg);
            cr_expect_eq(st.torn, 1);
            cr_expect_eq(st.tail_pos, tail, "%s", names[i]);
            cr_expect_eq(txn_count(db), ntxn, "%s", names[i]);
            /* --strict refuses the same file and leaves nothing */
            char *db2 = tu_path(tmp, "strict");
            char *fs = fx_path(names[i], ".fs");
            zfs_import_opts strict = {.quiet = 1, .strict = 1};
            cr_expect_lt(zfs_import(fs, db2, &strict, &st, &err), 0);
            cr_expect(!tu_exists(db2));
            free(fs);
            free(db2);
        }
        free(db);
        tj_free(bad);
    }
    fx_free_names(names);
}

Test(convert_import, append_adds_only_newer_transactions)
{
    char *db = tu_path(tmp, "db"), *out = tu_path(tmp, "out.fs");
    char *full = fx_path("small", ".fs");
    zfs_import_stats st;
    zerr err = {0};
    zfs_import_opts opt = {.quiet = 1};
    /* the crash residue leaves the first 8 transactions of small.fs */
    cr_assert_eq(import_fixture("bad/truncated-mid-txn", db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.txns, 8);
    cr_assert_eq(zfs_import(full, db, &opt, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.skipped, 8);
    cr_expect_eq(st.txns, 1);
    cr_assert_eq(zfs_import(full, db, &opt, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.txns, 0, "a second run finds nothing new");
    zfs_export_opts eo = {.quiet = 1};
    cr_assert_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    cr_expect(tu_same_file(full, out));
    free(full);
    free(out);
    free(db);
}

Test(convert_import, append_refuses_another_history_and_corrupt_files)
{
    char *db = tu_path(tmp, "db"), *before = tu_path(tmp, "before.fs"), *after = tu_path(tmp, "after.fs");
    char *other = fx_path("undo", ".fs"), *corrupt = fx_path("bad/tlen-too-small", ".fs");
    zfs_import_stats st;
    zerr err = {0};
    zfs_import_opts opt = {.quiet = 1};
    zfs_export_opts eo = {.quiet = 1};
    cr_assert_eq(import_fixture("bad/truncated-mid-txn", db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(zfs_export(db, before, &eo, NULL, &err), 0);
    cr_expect_lt(zfs_import(other, db, &opt, &st, &err), 0);
    cr_expect_not_null(strstr(err.msg, "does not continue"), "%s", err.msg);
    /* damage after the database's last transaction: refused before any write */
    cr_expect_lt(zfs_import(corrupt, db, &opt, &st, &err), 0);
    cr_expect_eq(st.txns, 0);
    cr_assert_eq(zfs_export(db, after, &eo, NULL, &err), 0);
    cr_expect(tu_same_file(before, after), "the database must be as it was");
    free(other);
    free(corrupt);
    free(before);
    free(after);
    free(db);
}

Test(convert_import, a_failure_after_good_transactions_leaves_no_database)
{
    /* tlen-too-small has four good transactions before the damage */
    char *db = tu_path(tmp, "db");
    zfs_import_stats st;
    zerr err = {0};
    cr_expect_lt(import_fixture("bad/tlen-too-small", db, &st, &err), 0);
    cr_expect_gt(st.txns, 0, "the failure came after imported transactions");
    cr_expect(!tu_exists(db));
    DIR *d = opendir(tmp);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_expect(e->d_name[0] == '.', "left behind: %s", e->d_name);
    closedir(d);
    free(db);
}

Test(convert_import, a_database_open_by_a_server_is_refused)
{
    char *db = tu_path(tmp, "db"), *fs = fx_path("small", ".fs");
    zfs_import_stats st;
    zerr err = {0};
    zfs_import_opts opt = {.quiet = 1};
    cr_assert_eq(import_fixture("bad/truncated-mid-txn", db, &st, &err), 0);
    store *server;
    store_options so = {.exclusive = 1};
    cr_assert_eq(store_open(&server, db, &so, &err), 0, "%s", err.msg);
    cr_expect_eq(zfs_import(fs, db, &opt, &st, &err), ZE_BUSY);
    cr_expect_not_null(strstr(err.msg, "server"), "%s", err.msg);
    /* a live database can be exported */
    char *out = tu_path(tmp, "live.fs");
    zfs_export_opts eo = {.quiet = 1};
    cr_expect_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    store_close(server);
    free(out);
    free(fs);
    free(db);
}

static void copy_tree(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", from, to, to);
    cr_assert_eq(system(cmd), 0);
}

Test(convert_import, missing_blob_and_unknown_layout_are_errors)
{
    char *src = fx_path("blobs-bushy", ".blobs"), *fs = fx_path("blobs-bushy", ".fs");
    char *blobs = tu_path(tmp, "blobs"), *db = tu_path(tmp, "db"), path[1024];
    tj *m = fx_manifest("blobs-bushy");
    const tj *files = tj_get(m, "blob_files");
    zfs_import_stats st;
    zerr err = {0};
    copy_tree(src, blobs);
    for (size_t i = 0; i < files->n; i++) {
        const char *rel = tj_gets(files->items[i], "path");
        if (strstr(rel, ".blob")) {
            snprintf(path, sizeof path, "%s/%s", blobs, rel);
            cr_assert_eq(unlink(path), 0, "%s", path);
            break;
        }
    }
    zfs_import_opts opt = {.quiet = 1, .blob_dir = blobs};
    cr_expect_lt(zfs_import(fs, db, &opt, &st, &err), 0);
    cr_expect_not_null(strstr(err.msg, "missing"), "%s", err.msg);
    cr_expect(!tu_exists(db));

    snprintf(path, sizeof path, "%s/.layout", blobs);
    chmod(path, 0644);
    cr_assert_eq(tu_write_file(path, "zeocache", 8), 0);
    cr_expect_lt(zfs_import(fs, db, &opt, &st, &err), 0);
    cr_expect_not_null(strstr(err.msg, "layout"), "%s", err.msg);

    zfs_import_opts none = {.quiet = 1};
    cr_expect_lt(zfs_import(fs, db, &none, &st, &err), 0);
    cr_expect_not_null(strstr(err.msg, "--blobs"), "%s", err.msg);
    cr_expect(!tu_exists(db));
    tj_free(m);
    free(src);
    free(fs);
    free(blobs);
    free(db);
}

Test(convert_import, lawn_blobs_import_and_export_in_both_layouts)
{
    char *db = tu_path(tmp, "db"), *out = tu_path(tmp, "out.fs"), *blobs = tu_path(tmp, "out.blobs");
    zfs_import_stats st;
    zerr err = {0};
    tj *m = fx_manifest("blobs-lawn");
    cr_assert_eq(import_fixture("blobs-lawn", db, &st, &err), 0, "%s", err.msg);
    cr_expect_gt(st.blobs, 0);
    zfs_export_opts noblobs = {.quiet = 1};
    cr_expect_lt(zfs_export(db, out, &noblobs, NULL, &err), 0);
    cr_expect_not_null(strstr(err.msg, "--blobs"), "%s", err.msg);
    cr_expect(!tu_exists(out), "a failed export leaves no file");
    zfs_export_opts eo = {.quiet = 1, .blob_dir = blobs, .layout = ZBLOB_BUSHY};
    cr_assert_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    fx_expect_blob_files(m, blobs, ZBLOB_BUSHY);
    zblob_layout got;
    cr_expect_eq(zblob_layout_select(blobs, &got, NULL), 0);
    cr_expect_eq(got, ZBLOB_BUSHY);
    tj_free(m);
    free(db);
    free(out);
    free(blobs);
}

Test(convert_import, an_interrupted_import_leaves_nothing)
{
    char *db = tu_path(tmp, "db"), *fs = fx_path("btrees", ".fs");
    volatile sig_atomic_t stop = 1;
    zfs_import_opts opt = {.quiet = 1, .cancel = &stop};
    zfs_import_stats st;
    zerr err = {0};
    cr_expect_lt(zfs_import(fs, db, &opt, &st, &err), 0);
    cr_expect_not_null(strstr(err.msg, "interrupted"), "%s", err.msg);
    cr_expect(!tu_exists(db));
    free(fs);
    free(db);
}

/* name in tmp, a folder (with a file in it) or a file, made to look old
 * enough (or not) to be a leftover of a killed run. */
static char *leftover(const char *name, int is_dir, int old)
{
    char *p = tu_path(tmp, name);
    cr_assert(p);
    if (is_dir) {
        cr_assert_eq(mkdir(p, 0755), 0);
        char *f = tu_path(p, "data.mdb");
        cr_assert_eq(tu_write_file(f, "x", 1), 0);
        free(f);
    } else {
        cr_assert_eq(tu_write_file(p, "partial", 7), 0);
    }
    if (old) {
        struct timespec t[2] = {{time(NULL) - 2 * 60, 0}, {time(NULL) - 2 * 60, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, p, t, 0), 0);
    }
    return p;
}

/* A pid no process has: a child that has exited and been reaped. */
static long dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    cr_assert_gt(pid, 0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

Test(convert_import, leftovers_of_a_killed_import_or_export_are_removed)
{
    char *stale = leftover("db.import-AbC123", 1, 1);
    char *fresh = leftover("db.import-XyZ789", 1, 0);     /* may be starting up */
    char *other = leftover("db.import-notours1", 1, 1);   /* not a mkdtemp name */
    char *held = tu_path(tmp, "db.import-Held00");        /* a running import's */
    store *s;
    store_options so = {.create = 1, .exclusive = 1};
    cr_assert_eq(store_open(&s, held, &so, NULL), 0);
    struct timespec t[2] = {{time(NULL) - 2 * 60, 0}, {time(NULL) - 2 * 60, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, held, t, 0), 0);

    char *db = tu_path(tmp, "db"), *fs = fx_path("btrees", ".fs");
    zfs_import_opts opt = {.quiet = 1};
    zfs_import_stats ist;
    zerr err = {0};
    cr_assert_eq(zfs_import(fs, db, &opt, &ist, &err), 0, "%s", err.msg);
    cr_expect_eq(ist.leftovers, 1);
    cr_expect(!tu_exists(stale), "the killed import's folder is gone");
    cr_expect(tu_exists(fresh) && tu_exists(other) && tu_exists(held));
    store_close(s);

    char buf[128];
    snprintf(buf, sizeof buf, "out.fs.export-%ld", dead_pid());
    char *dead_fs = leftover(buf, 0, 1);
    snprintf(buf, sizeof buf, "out.fs.index.export-%ld", dead_pid());
    char *dead_index = leftover(buf, 0, 1);
    snprintf(buf, sizeof buf, "out.fs.export-%ld", (long)getppid());
    char *live = leftover(buf, 0, 1);                       /* its export still runs */
    char *out = tu_path(tmp, "out.fs");
    zfs_export_opts eo = {.quiet = 1};
    zfs_export_stats est;
    cr_assert_eq(zfs_export(db, out, &eo, &est, &err), 0, "%s", err.msg);
    cr_expect_eq(est.leftovers, 2);
    cr_expect(!tu_exists(dead_fs) && !tu_exists(dead_index));
    cr_expect(tu_exists(live));
    cr_expect(tu_same_file(out, fs), "the export is still the fixture");
    char *paths[] = {stale, fresh, other, held, db, fs, dead_fs, dead_index, live, out};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        free(paths[i]);
}

/* Run the zeolite executable; returns its exit status, with its stdout in
 * *out (may be NULL) and stderr in *errout (malloc'd). */
static int run_zeolite2(const char *args, char **out, char **errout)
{
    char cmd[4096], *so = tu_path(tmp, "stdout.txt"), *se = tu_path(tmp, "stderr.txt");
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", tu_zeolite_bin(), args, so, se);
    int st = system(cmd);
    size_t n;
    if (out)
        *out = (char *)tu_read_file(so, &n);
    *errout = (char *)tu_read_file(se, &n);
    free(so);
    free(se);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_zeolite(const char *args, char **errout)
{
    return run_zeolite2(args, NULL, errout);
}

Test(convert_import, verify_prints_what_fstest_prints)
{
    char **good = fx_names(0), **bad = fx_names(1), args[2048], *out, *errout;
    for (size_t i = 0; good[i]; i++) {
        char *fs = fx_path(good[i], ".fs");
        tj *m = fx_manifest(good[i]);
        const char *want = tj_gets(tj_get(m, "fstest"), "stdout");
        snprintf(args, sizeof args, "verify -v '%s'", fs);
        cr_expect_eq(run_zeolite2(args, &out, &errout), 0, "%s", good[i]);
        size_t n = strlen(out);
        if (n && out[n - 1] == '\n')
            out[n - 1] = 0;   /* fstest ends without a newline */
        cr_expect_str_eq(out, want, "%s", good[i]);
        free(out);
        free(errout);
        tj_free(m);
        free(fs);
    }
    for (size_t i = 0; bad[i]; i++) {
        char *fs = fx_path(bad[i], ".fs");
        tj *m = fx_manifest(bad[i]);
        snprintf(args, sizeof args, "verify '%s'", fs);
        cr_expect_eq(run_zeolite(args, &errout), 1, "%s", bad[i]);
        cr_expect(fx_names_offset(m, errout) || (tj_getn(m, "size") == 0 && strstr(errout, "empty")),
                  "%s: %s", bad[i], errout);
        free(errout);
        tj_free(m);
        free(fs);
    }
    fx_free_names(good);
    fx_free_names(bad);
}

Test(convert_import, the_commands_report_like_fstest)
{
    char *good = fx_path("small", ".fs"), *bad = fx_path("bad/bad-tloc", ".fs");
    char *torn = fx_path("bad/checkpoint-tail", ".fs"), *db = tu_path(tmp, "db"), *out = NULL;
    char args[2048];
    snprintf(args, sizeof args, "verify '%s'", good);
    cr_expect_eq(run_zeolite(args, &out), 0);
    cr_expect_str_eq(out, "", "a clean file prints nothing");
    free(out);
    snprintf(args, sizeof args, "verify '%s'", bad);
    cr_expect_eq(run_zeolite(args, &out), 1);
    cr_expect_not_null(strstr(out, "at 1524: tloc 1502 != tpos 1501"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "import --quiet '%s' '%s'", torn, db);
    cr_expect_eq(run_zeolite(args, &out), 0);
    cr_expect_not_null(strstr(out, "warning"), "%s", out);
    cr_expect_not_null(strstr(out, "3248"), "%s", out);
    free(out);
    tu_rmrf(db);
    snprintf(args, sizeof args, "import --quiet --strict '%s' '%s'", torn, db);
    cr_expect_eq(run_zeolite(args, &out), 1);
    cr_expect(!tu_exists(db));
    free(out);
    free(good);
    free(bad);
    free(torn);
    free(db);
}

Test(convert_import, export_writes_filestorage_index_or_removes_a_stale_one)
{
    char *db = tu_path(tmp, "db"), *out = tu_path(tmp, "small.fs"), *index = tu_path(tmp, "small.fs.index");
    char *want = tu_shared("fixtures/datafs/index-sample/small.fs.index");
    zfs_import_stats st;
    zerr err = {0};
    cr_assert_eq(import_fixture("small", db, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(tu_write_file(index, "stale", 5), 0);
    zfs_export_opts eo = {.quiet = 1};
    cr_assert_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    cr_expect(!tu_exists(index), "a stale index must not survive an export");
    unlink(out);
    eo.write_index = 1;
    cr_assert_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    cr_expect(tu_same_file(index, want), "the index FileStorage would write");
    free(want);
    free(index);
    free(out);
    free(db);
}

Test(convert_import, salvage_imports_every_readable_transaction)
{
    char *db = tu_path(tmp, "db"), *out = tu_path(tmp, "out.fs");
    char *fs = fx_path("bad/checkpoint-middle", ".fs");
    tj *bad = fx_manifest("bad/checkpoint-middle");
    zfs_import_opts opt = {.quiet = 1, .salvage = 1};
    zfs_import_stats st;
    zerr err = {0};
    cr_assert_eq(zfs_import(fs, db, &opt, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.damaged, 1);
    cr_expect(fx_names_offset(bad, st.damage_what), "%s", st.damage_what);
    cr_expect_eq(st.txns, txn_count(db));
    cr_expect_eq(st.txns, 8, "small.fs has 9 transactions, one is damaged");
    /* what was kept is a consistent history: its export checks clean */
    zfs_export_opts eo = {.quiet = 1};
    cr_assert_eq(zfs_export(db, out, &eo, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(zfs_verify(out, NULL, NULL, NULL, &err), 0, "%s", err.msg);
    tj_free(bad);
    free(fs);
    free(out);
    free(db);
}

Test(convert_import, link_hard_links_the_blob_files)
{
    char *src = fx_path("blobs-bushy", ".blobs"), *fs = fx_path("blobs-bushy", ".fs");
    char *blobs = tu_path(tmp, "blobs"), *db = tu_path(tmp, "db");
    copy_tree(src, blobs);   /* on the database's file system, so links can work */
    zfs_import_opts opt = {.quiet = 1, .blob_dir = blobs, .link = 1};
    zfs_import_stats st;
    zerr err = {0};
    cr_assert_eq(zfs_import(fs, db, &opt, &st, &err), 0, "%s", err.msg);
    cr_expect_gt(st.blobs, 0);
    tj *m = fx_manifest("blobs-bushy");
    const tj *txns = tj_get(m, "transactions");
    store *s;
    store_options so = {.read_only = 1};
    cr_assert_eq(store_open(&s, db, &so, &err), 0, "%s", err.msg);
    store_reader *r;
    cr_assert_eq(store_reader_new(s, &r, &err), 0, "%s", err.msg);
    size_t linked = 0;
    for (size_t i = 0; i < txns->n; i++) {
        const tj *recs = tj_get(txns->items[i], "records");
        for (size_t k = 0; k < recs->n; k++) {
            if (!tj_get(recs->items[k], "blob"))
                continue;
            char path[1024];
            struct stat a, b;
            uint64_t oid = tj_hex64(tj_gets(recs->items[k], "oid"));
            uint64_t tid = tj_hex64(tj_gets(txns->items[i], "tid"));
            store_blob_path(s, oid, tid, path, sizeof path);
            cr_assert_eq(stat(path, &a), 0, "%s", path);
            zblob_path(blobs, ZBLOB_BUSHY, oid, tid, path, sizeof path);
            cr_assert_eq(stat(path, &b), 0, "%s", path);
            cr_expect_eq(a.st_ino, b.st_ino, "%s is not a link of the source", path);
            /* Read-only for all, so its other link does not stop a load. */
            cr_expect_eq(a.st_mode & 0777, 0444);
            cr_expect_eq(store_load_blob(r, oid, tid, path, sizeof path, &err), 0, "%s",
                         err.msg);
            linked++;
        }
    }
    cr_expect_eq(linked, st.blobs);
    store_reader_free(r);
    store_close(s);
    tj_free(m);
    free(src);
    free(fs);
    free(blobs);
    free(db);
}

Test(convert_import, a_tid_range_exports_a_valid_filestorage)
{
    char *db = tu_path(tmp, "db"), *out = tu_path(tmp, "range.fs");
    tj *m = fx_manifest("undo");
    const tj *txns = tj_get(m, "transactions");
    zfs_import_stats st;
    zerr err = {0};
    cr_assert_eq(import_fixture("undo", db, &st, &err), 0, "%s", err.msg);
    size_t lo = txns->n / 3, hi = txns->n - 2;
    zfs_export_opts eo = {.quiet = 1,
                          .from_tid = tj_hex64(tj_gets(txns->items[lo], "tid")),
                          .to_tid = tj_hex64(tj_gets(txns->items[hi], "tid"))};
    zfs_export_stats es;
    cr_assert_eq(zfs_export(db, out, &eo, &es, &err), 0, "%s", err.msg);
    cr_expect_eq(es.txns, hi - lo + 1);
    zfs_verify_result res;
    cr_expect_eq(zfs_verify(out, NULL, NULL, &res, &err), 0, "%s", err.msg);
    cr_expect_eq(res.txns, hi - lo + 1);
    tj_free(m);
    free(out);
    free(db);
}

/* A Data.fs of one-record transactions with the given tids. */
static void write_fs(const char *path, const uint64_t *tids, size_t n)
{
    zfs_writer *w;
    zerr err = {0};
    cr_assert_eq(zfs_writer_open(&w, path, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        static const char pickle[] = "(c__main__\nC\nq\x01N)tq\x02.";
        zfs_wrec rec = {.oid = i, .kind = ZFS_DATA, .data = {(const uint8_t *)pickle,
                                                               sizeof pickle - 1}};
        cr_assert_eq(zfs_writer_begin(w, tids[i], ' ', (zslice){0}, (zslice){0},
                                      (zslice){0}, &err), 0, "%s", err.msg);
        cr_assert_eq(zfs_writer_record(w, &rec, &err), 0, "%s", err.msg);
        cr_assert_eq(zfs_writer_end(w, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(zfs_writer_finish(w, &err), 0, "%s", err.msg);
}

Test(convert_import, any_tid_zodb_wrote_is_kept_but_the_very_last)
{
    /* Tids past ZODB's maxtid and far past any clock are what a forged
     * copyTransactionsFrom leaves in a Data.fs: the import keeps them, as
     * the file is the truth. Only ffffffffffffffff is refused: no tid can
     * follow it, so the database could never commit again. */
    char *fs = tu_path(tmp, "future.fs"), *db = tu_path(tmp, "db");
    const uint64_t tids[] = {0x03c4a1b200000000ull, 0x7ffffffffffffffeull,
                             0xfffffffeffffffffull};
    write_fs(fs, tids, 3);
    zfs_import_stats st;
    zfs_import_opts opt = {.quiet = 1};
    zerr err = {0};
    cr_assert_eq(zfs_import(fs, db, &opt, &st, &err), 0, "%s", err.msg);
    store *s;
    store_options ro = {.read_only = 1};
    cr_assert_eq(store_open(&s, db, &ro, &err), 0, "%s", err.msg);
    cr_expect_eq(store_last_tid(s), 0xfffffffeffffffffull);
    store_close(s);

    char *fs2 = tu_path(tmp, "last.fs"), *db2 = tu_path(tmp, "db2");
    const uint64_t last[] = {0x03c4a1b200000000ull, UINT64_MAX};
    write_fs(fs2, last, 2);
    cr_expect_eq(zfs_import(fs2, db2, &opt, &st, &err), ZE_INVAL);
    cr_expect(strstr(err.msg, "ffffffffffffffff") && strstr(err.msg, "no tid can follow"),
              "%s", err.msg);
    cr_expect(!tu_exists(db2));
    free(fs);
    free(db);
    free(fs2);
    free(db2);
}
