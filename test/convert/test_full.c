/* test_full.c: zeolite import, export and backup when the disk fills up.
 *
 * A full disk is simulated without mount privileges: the command runs with a
 * small file size limit (RLIMIT_FSIZE), so its writes past the limit fail
 * (EFBIG, or a short write that LMDB reports as EIO). The child keeps SIGXFSZ
 * at its default action, which kills the process: passing these tests also
 * shows that the tool ignores that signal and reports the error instead.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/zfile.h"
#include "convert/convert.h"
#include "fixtures.h"
#include "store/store.h"
#include "testutil.h"

/* Well below what any of the tested writes needs (btrees.fs is 1.2 MB, its
 * database 2 MB, the largest blob of blobs-bushy 200 KB), well above the
 * lock files and the log. */
#define LIMIT (96u << 10)

static char *tmp;

static void setup(void)
{
    tmp = tu_tmpdir("full");
    cr_assert_not_null(tmp);
}

static void teardown(void)
{
    tu_rmrf(tmp);
    free(tmp);
}

TestSuite(full_disk, .init = setup, .fini = teardown, .timeout = 60);

/* Entries of the test folder whose name starts with prefix (temporaries). */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

/* The last run's stdout and stderr. */
static char *log_path(void)
{
    return tu_path(tmp, "zeolite.log");
}

/* Run `zeolite ARGS... NULL` with the file size limit at limit bytes (0: no
 * limit), stdout and stderr into log_path(). Returns the exit status, or 128
 * plus the signal that killed it. */
static int zeolite(rlim_t limit, ...)
{
    const char *argv[16] = {tu_zeolite_bin()};
    size_t n = 1;
    va_list ap;
    va_start(ap, limit);
    while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    char *log = log_path();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit rl;
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || getrlimit(RLIMIT_FSIZE, &rl))
            _exit(126);
        if (limit) {
            rl.rlim_cur = limit;
            if (setrlimit(RLIMIT_FSIZE, &rl))
                _exit(126);
        }
        signal(SIGXFSZ, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    free(log);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The last run failed with exit status 1 and said, as "zeolite CMD: ...",
 * that there was no room to write. */
static void expect_no_room(int status, const char *cmd)
{
    char *log = log_path(), prefix[64];
    size_t n;
    char *text = (char *)tu_read_file(log, &n);
    cr_assert_not_null(text);
    snprintf(prefix, sizeof prefix, "zeolite %s: ", cmd);
    cr_expect_eq(status, 1, "%s: exit status %d (128 + N: killed by signal N), output: %s",
                 cmd, status, text);
    cr_expect_not_null(strstr(text, prefix), "%s", text);
    cr_expect(strstr(text, "no room") || strstr(text, "File too large") ||
              strstr(text, "No space left"), "the message must name the cause: %s", text);
    free(text);
    free(log);
}

/* A database of fixture name in tmp/db, imported in-process without limit. */
static char *make_db(const char *name)
{
    char *db = tu_path(tmp, "db"), *fs = fx_path(name, ".fs"), *blobs = fx_path(name, ".blobs");
    zfs_import_opts opt = {.quiet = 1, .blob_dir = tu_exists(blobs) ? blobs : NULL};
    zerr err = {0};
    cr_assert_eq(zfs_import(fs, db, &opt, NULL, &err), 0, "%s", err.msg);
    free(fs);
    free(blobs);
    return db;
}

/* Export db in-process to tmp/out_name (which must not exist). */
static char *export_db(const char *db, const char *out_name)
{
    char *out = tu_path(tmp, out_name);
    zfs_export_opts opt = {.quiet = 1};
    zerr err = {0};
    cr_assert_eq(zfs_export(db, out, &opt, NULL, &err), 0, "%s: %s", db, err.msg);
    return out;
}

Test(full_disk, import_into_a_new_folder_leaves_nothing_and_a_retry_succeeds)
{
    char *fs = fx_path("btrees", ".fs"), *db = tu_path(tmp, "db");
    expect_no_room(zeolite(LIMIT, "import", fs, db, "--quiet", NULL), "import");
    cr_expect(!tu_exists(db), "a failed import must not create the database");
    cr_expect_eq(count_prefixed("db.import-"), 0, "the temporary database must be removed");

    cr_assert_eq(zeolite(0, "import", fs, db, "--quiet", NULL), 0);
    char *out = export_db(db, "out.fs");
    cr_expect(tu_same_file(fs, out), "the retried import must hold the whole file");
    free(out);
    free(db);
    free(fs);
}

Test(full_disk, import_into_an_empty_folder_leaves_it_empty)
{
    char *fs = fx_path("btrees", ".fs"), *db = tu_path(tmp, "db");
    cr_assert_eq(mkdir(db, 0755), 0);
    expect_no_room(zeolite(LIMIT, "import", fs, db, "--quiet", NULL), "import");
    cr_expect_eq(zfile_dir_is_empty(db, NULL), 1, "the folder must stay an empty folder");
    cr_expect_eq(count_prefixed("db.import-"), 0);
    free(db);
    free(fs);
}

/* The first half of btrees.fs's transactions, as a file of its own; returns
 * its size. */
static size_t write_prefix(const char *path)
{
    char *fs = fx_path("btrees", ".fs");
    tj *m = fx_manifest("btrees");
    tj *txns = tj_get(m, "transactions");
    cr_assert(txns && txns->n > 2);
    size_t end = (size_t)tj_getn(txns->items[txns->n / 2], "pos"), n;
    uint8_t *all = tu_read_file(fs, &n);
    cr_assert(all && n > end);
    cr_assert_eq(tu_write_file(path, all, end), 0);
    free(all);
    tj_free(m);
    free(fs);
    return end;
}

/* Bytes in the files of folder dir (not below): more than any one of them. */
static rlim_t files_size(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    rlim_t sum = 0;
    char path[4096];
    struct stat st;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += (rlim_t)st.st_size;
    }
    closedir(d);
    return sum;
}

/* 1 when path is btrees.fs cut at the end of one of its transactions, at or
 * after min_end: a database exported as that is a consistent older state. */
static int is_btrees_prefix(const char *path, size_t min_end)
{
    char *fs = fx_path("btrees", ".fs");
    tj *m = fx_manifest("btrees");
    tj *txns = tj_get(m, "transactions");
    size_t n, nfull;
    uint8_t *got = tu_read_file(path, &n), *full = tu_read_file(fs, &nfull);
    int at_boundary = n == nfull;
    for (size_t i = 0; i < txns->n; i++)
        at_boundary |= n == (size_t)tj_getn(txns->items[i], "pos");
    int ok = got && full && n >= min_end && n <= nfull && at_boundary && !memcmp(got, full, n);
    free(got);
    free(full);
    tj_free(m);
    free(fs);
    return ok;
}

Test(full_disk, an_append_that_fills_the_disk_keeps_the_database)
{
    char *half = tu_path(tmp, "half.fs"), *db = tu_path(tmp, "db"), *fs = fx_path("btrees", ".fs");
    size_t half_len = write_prefix(half);
    zerr err = {0};
    zfs_import_opts opt = {.quiet = 1};
    cr_assert_eq(zfs_import(half, db, &opt, NULL, &err), 0, "%s", err.msg);

    /* room for what the database has, not for the second half */
    expect_no_room(zeolite(files_size(db) + LIMIT, "import", fs, db, "--quiet", NULL),
                   "import");
    char *out = export_db(db, "after-failure.fs");
    cr_expect(is_btrees_prefix(out, half_len),
              "the database must hold at least what it held, as whole transactions");

    cr_assert_eq(zeolite(0, "import", fs, db, "--quiet", NULL), 0);
    char *again = export_db(db, "after-retry.fs");
    cr_expect(tu_same_file(fs, again), "the retry appends the rest");
    free(again);
    free(out);
    free(fs);
    free(db);
    free(half);
}

Test(full_disk, export_leaves_no_file_and_no_temporary)
{
    char *db = make_db("btrees"), *out = tu_path(tmp, "out.fs"), *index = tu_path(tmp, "out.fs.index");
    expect_no_room(zeolite(LIMIT, "export", db, out, "--index", "--quiet", NULL), "export");
    cr_expect(!tu_exists(out), "no partial Data.fs in place");
    cr_expect(!tu_exists(index), "no index for a file that is not there");
    cr_expect_eq(count_prefixed("out.fs"), 0, "no temporary file left");

    char *fs = fx_path("btrees", ".fs");
    cr_assert_eq(zeolite(0, "export", db, out, "--quiet", NULL), 0);
    cr_expect(tu_same_file(fs, out));
    free(fs);
    free(index);
    free(out);
    free(db);
}

Test(full_disk, export_removes_the_blob_folder_it_made_and_empties_a_given_one)
{
    char *db = make_db("blobs-bushy"), *out = tu_path(tmp, "out.fs"), *blobs = tu_path(tmp, "out.blobs");
    expect_no_room(zeolite(LIMIT, "export", db, out, "--blobs", blobs, "--quiet", NULL),
                   "export");
    cr_expect(!tu_exists(out));
    cr_expect(!tu_exists(blobs), "the blob folder made by the export must go");
    cr_expect_eq(count_prefixed("out.fs"), 0);

    cr_assert_eq(mkdir(blobs, 0755), 0);
    expect_no_room(zeolite(LIMIT, "export", db, out, "--blobs", blobs, "--quiet", NULL),
                   "export");
    cr_expect(!tu_exists(out));
    cr_expect_eq(zfile_dir_is_empty(blobs, NULL), 1, "a given empty blob folder must stay empty");

    cr_assert_eq(zeolite(0, "export", db, out, "--blobs", blobs, "--quiet", NULL), 0);
    char *fs = fx_path("blobs-bushy", ".fs");
    cr_expect(tu_same_file(fs, out));
    free(fs);
    free(blobs);
    free(out);
    free(db);
}

static void backup_fails_cleanly(const char *compact)
{
    char *db = make_db("btrees"), *before = export_db(db, "before.fs");
    char *bk = tu_path(tmp, "bk"), *given = tu_path(tmp, "given");
    expect_no_room(zeolite(LIMIT, "backup", db, bk, compact, NULL), "backup");
    cr_expect(!tu_exists(bk), "a backup folder the backup made must go");

    cr_assert_eq(mkdir(given, 0755), 0);
    expect_no_room(zeolite(LIMIT, "backup", db, given, compact, NULL), "backup");
    cr_expect_eq(zfile_dir_is_empty(given, NULL), 1, "a given empty folder must stay empty");

    char *after = export_db(db, "after.fs");
    cr_expect(tu_same_file(before, after), "the database must be untouched");

    cr_assert_eq(zeolite(0, "backup", db, given, compact, NULL), 0);
    char *copy = export_db(given, "copy.fs");
    cr_expect(tu_same_file(before, copy), "the retried backup must hold the database");
    free(copy);
    free(after);
    free(given);
    free(bk);
    free(before);
    free(db);
}

Test(full_disk, backup_leaves_no_copy_and_the_database_intact)
{
    backup_fails_cleanly(NULL);
}

Test(full_disk, compact_backup_leaves_no_copy_and_the_database_intact)
{
    backup_fails_cleanly("--compact");
}
