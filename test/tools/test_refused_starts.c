/* The starts `zeolite serve` refuses (server/preflight.c): each exits
 * non-zero with one message naming the address or path, and leaves the disk
 * as it was: no database folder, no log file, no pid file. --test checks
 * the same things and creates nothing even when all is well. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"
#include "testutil.h"

TestSuite(refused_starts, .init = tr_dir_init, .fini = tr_dir_fini, .timeout = 60);

static char *in_dir(const char *fmt, const char *arg)
{
    char *name = NULL, *path;
    cr_assert_geq(asprintf(&name, fmt, arg), 0);
    path = tr_path(name);
    free(name);
    return path;
}

static void copy_shared(const char *rel, const char *to)
{
    char *src = tu_shared(rel);
    size_t len;
    uint8_t *data = tu_read_file(src, &len);
    cr_assert_not_null(data, "no fixture %s", src);
    cr_assert_eq(tu_write_file(to, data, len), 0);
    free(data);
    free(src);
}

/* runzeo's folder: Data.fs, and blobs/ with its .layout. */
static void runzeo_folder(void)
{
    char *fs = in_dir("%s", "Data.fs"), *blobs = in_dir("%s", "blobs"),
         *layout = in_dir("%s", "blobs/.layout");
    copy_shared("fixtures/datafs/small.fs", fs);
    cr_assert_eq(mkdir(blobs, 0755), 0);
    cr_assert_eq(tu_write_file(layout, "bushy\n", 6), 0);
    free(fs);
    free(blobs);
    free(layout);
}

/* One refused start: status, exactly one line of stderr saying what, and
 * the folder holding what it held before. */
static void expect_refused(const char *const *args, int status, const char *says)
{
    int before = tr_count_entries(tr_dir);
    tr_result r;
    tr_run(&r, args, NULL);
    cr_expect_eq(r.status, status, "%s %s: status %d: %s", args[1], args[2], r.status, r.err);
    cr_expect(strstr(r.err, says) != NULL, "wanted '%s' in: %s", says, r.err);
    const char *first = strstr(r.err, "zeolite serve: ");
    cr_expect(first && !strstr(first + 1, "zeolite serve: "), "printed once: %s", r.err);
    cr_expect(strstr(r.err, " INFO ") == NULL && strstr(r.err, "CRITICAL") == NULL,
              "no log lines for a refused start: %s", r.err);
    cr_expect_eq(tr_count_entries(tr_dir), before, "a refused start created something: %s",
                 r.err);
    tr_free(&r);
}

Test(refused_starts, a_folder_holding_data_fs_gets_the_import_line)
{
    runzeo_folder();
    char *want = NULL;
    cr_assert_geq(asprintf(&want, "zeolite import %s/Data.fs %s/zeolite --blobs %s/blobs\n"
                           "and serve %s/zeolite", tr_dir, tr_dir, tr_dir, tr_dir), 0);
    const char *args[] = {"serve", "-a", "127.0.0.1:1", "-f", tr_dir, NULL};
    expect_refused(args, 1, want);
    const char *test[] = {"serve", "--test", "-a", "127.0.0.1:1", "-f", tr_dir, NULL};
    expect_refused(test, 1, want);
    free(want);
}

Test(refused_starts, f_naming_a_data_fs_gets_the_import_line)
{
    runzeo_folder();
    char *fs = in_dir("%s", "Data.fs"), *want = NULL;
    cr_assert_geq(asprintf(&want, "%s holds a FileStorage", fs), 0);
    const char *args[] = {"serve", "-a", "127.0.0.1:1", "-f", fs, NULL};
    expect_refused(args, 1, want);
    free(want);
    cr_assert_geq(asprintf(&want, "zeolite import %s %s/zeolite --blobs", fs, tr_dir), 0);
    expect_refused(args, 1, want);
    free(want);
    free(fs);
}

Test(refused_starts, any_filestorage_name_in_a_zeo_conf_folder)
{
    char *fs = in_dir("%s", "main.fs"), *conf = in_dir("%s", "zeo.conf"), *text = NULL;
    copy_shared("fixtures/datafs/empty.fs", fs);
    cr_assert_geq(asprintf(&text, "<zeo>\n address 127.0.0.1:1\n</zeo>\n<lmdb main>\n path %s\n"
                           "</lmdb>\n", tr_dir), 0);
    cr_assert_eq(tu_write_file(conf, text, strlen(text)), 0);
    const char *args[] = {"serve", "-C", conf, NULL};
    expect_refused(args, 1, "main.fs) and no zeolite database");
    free(fs);
    free(conf);
    free(text);
}

Test(refused_starts, ports_outside_1_to_65535)
{
    char *db = in_dir("%s", "db");
    const char *bad[] = {"127.0.0.1:99999", "127.0.0.1:0", ":65536", "[::1]:70000", "0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"serve", "-a", bad[i], "-f", db, NULL};
        expect_refused(args, 2, "is outside 1-65535");
        const char *test[] = {"serve", "--test", "-a", bad[i], "-f", db, NULL};
        expect_refused(test, 2, bad[i]);
    }
    free(db);
}

/* A port in use: named with its port, printed once, and the database
 * folder, log file and pid file are not made. */
Test(refused_starts, port_in_use_creates_nothing)
{
    int port, fd = tr_silent_port(&port);
    char addr[32], want[96];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(want, sizeof want, "zeolite serve: cannot listen on %s: address already in use\n",
             addr);
    char *db = in_dir("%s", "db"), *pid = in_dir("%s", "zeo.pid"), *log = in_dir("%s", "zeo.log");
    const char *args[] = {"serve", "-a", addr, "-f", db, "--pid-file", pid, "--log-file", log,
                          NULL};
    expect_refused(args, 1, want);
    cr_expect_eq(tr_count_entries(tr_dir), 0);
    tr_result r;
    tr_run(&r, args, NULL);
    cr_expect_str_eq(r.err, want, "the whole of stderr");
    tr_free(&r);
    close(fd);
    free(db);
    free(pid);
    free(log);
}

Test(refused_starts, test_checks_each_file_a_start_needs)
{
    char *db = in_dir("%s", "db"), *cert = in_dir("%s", "cert.pem"),
         *missing = in_dir("%s", "nope/x"), *sock = in_dir("%s", "nope/zeo.sock"),
         *file = in_dir("%s", "afile");
    cr_assert_eq(tu_write_file(cert, "not a certificate\n", 18), 0);
    cr_assert_eq(tu_write_file(file, "x", 1), 0);
    char *nodir_db = NULL;
    cr_assert_geq(asprintf(&nodir_db, "%s/db", missing), 0);
    struct { const char *flag, *value, *says; } cases[] = {
        {"--ssl-cert", missing, "TLS certificate"},
        {"--ssl-cert", cert, cert},
        {"--pid-file", missing, "pid file"},
        {"--log-file", missing, "log file"},
        {"-f", nodir_db, "storage 2: cannot create"},
        {"-f", file, "is not a folder"},
        {"-a", sock, "socket path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {"serve", "--test", "-a", "127.0.0.1:1", "-f", db, cases[i].flag,
                              cases[i].value, NULL};
        expect_refused(args, 1, cases[i].says);
    }
    free(nodir_db);
    free(db);
    free(cert);
    free(missing);
    free(sock);
    free(file);
}

/* A good configuration passes --test without creating anything: not the
 * database, not the log or pid file, nothing in an existing database. */
Test(refused_starts, test_passes_and_creates_nothing)
{
    char *db = in_dir("%s", "db"), *pid = in_dir("%s", "zeo.pid"), *log = in_dir("%s", "zeo.log"),
         *sock = in_dir("%s", "zeo.sock");
    const char *args[] = {"serve", "--test", "-a", sock, "-f", db, "--pid-file", pid,
                          "--log-file", log, NULL};
    tr_result r;
    tr_run(&r, args, NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "the configuration is good") != NULL, "%s", r.out);
    cr_expect_eq(tr_count_entries(tr_dir), 0, "--test created something");
    tr_free(&r);

    char *fs = tu_shared("fixtures/datafs/small.fs");
    tr_zeolite(&r, "import", "-q", fs, db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tr_free(&r);
    int in_db = tr_count_entries(db), top = tr_count_entries(tr_dir);
    tr_run(&r, args, NULL);
    cr_expect_eq(r.status, 0, "an existing database: %s", r.err);
    cr_expect_eq(tr_count_entries(db), in_db, "--test wrote into the database folder");
    cr_expect_eq(tr_count_entries(tr_dir), top);
    tr_free(&r);
    free(fs);
    free(db);
    free(pid);
    free(log);
    free(sock);
}
