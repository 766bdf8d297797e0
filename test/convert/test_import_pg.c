/* test_import_pg.c: import and export with a PostgreSQL database: every good
 * fixture goes Data.fs -> PostgreSQL -> Data.fs byte for byte, every bad one
 * gets its manifest's behaviour, an import appends, is atomic, and is
 * refused while a server holds the database. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "fixtures.h"
#include "fxstore.h"
#include "pgtest.h"
#include "store/store.h"
#include "testutil.h"

static char *tmp;

static void setup(void)
{
    tmp = tu_tmpdir("convert_pg");
    cr_assert_not_null(tmp);
}

static void teardown(void)
{
    tu_rmrf(tmp);
    free(tmp);
}

TestSuite(convert_pg, .init = setup, .fini = teardown);

static int import_fixture(const char *name, const char *uri, zfs_import_stats *st, zerr *err)
{
    char *fs = fx_path(name, ".fs"), *blobs = fx_path(name, ".blobs");
    zfs_import_opts opt = {.quiet = 1, .blob_dir = tu_exists(blobs) ? blobs : NULL};
    int rc = zfs_import(fs, uri, &opt, st, err);
    free(fs);
    free(blobs);
    return rc;
}

/* Transactions the database holds (0 for a database without the schema). */
static long txn_count(const char *uri)
{
    char err[256];
    char *n = tu_pg_exec(uri, "SELECT CASE WHEN to_regclass('zeolite.txns') IS NULL THEN 0 "
                              "ELSE (SELECT count(*) FROM zeolite.txns) END", err, sizeof err);
    cr_assert(n, "%s", err);
    long v = strtol(n, NULL, 10);
    free(n);
    return v;
}

static void export_same(const char *name, const char *uri, const tj *m, int i)
{
    char *out, *blobs, *orig = fx_path(name, ".fs");
    zerr err = {0};
    cr_assert_gt(asprintf(&out, "%s/out%d.fs", tmp, i), 0);
    cr_assert_gt(asprintf(&blobs, "%s/out%d.blobs", tmp, i), 0);
    int has_blobs = tj_get(m, "blob_dir") != NULL;
    zfs_export_opts eo = {.quiet = 1, .layout = ZBLOB_BUSHY, .blob_dir = has_blobs ? blobs : NULL};
    cr_assert_eq(zfs_export(uri, out, &eo, NULL, &err), 0, "%s: %s", name, err.msg);
    cr_expect(tu_same_file(orig, out), "%s: export differs from the original", name);
    if (has_blobs)
        fx_expect_blob_files(m, blobs, ZBLOB_BUSHY);
    free(orig);
    free(out);
    free(blobs);
}

Test(convert_pg, every_good_fixture_goes_through_postgresql_byte_for_byte, .timeout = 300)
{
    char **names = fx_names(0);
    for (int i = 0; names[i]; i++) {
        char *uri = tu_pg_newdb(NULL);
        zfs_import_stats st;
        zerr err = {0};
        tj *m = fx_manifest(names[i]);
        cr_assert_eq(import_fixture(names[i], uri, &st, &err), 0, "%s: %s", names[i], err.msg);
        cr_expect_eq(st.txns, (uint64_t)tj_getn(m, "transaction_count"), "%s", names[i]);
        store *s;
        store_options so = {.read_only = 1};
        cr_assert_eq(store_open(&s, uri, &so, &err), 0, "%s", err.msg);
        fx_expect_transactions(s, m);
        fx_expect_load_before(s, m);
        store_close(s);
        export_same(names[i], uri, m, i);
        tj_free(m);
        tu_pg_dropdb(uri);
        free(uri);
    }
    fx_free_names(names);
}

Test(convert_pg, every_bad_fixture_gets_its_documented_behaviour, .timeout = 300)
{
    char **names = fx_names(1);
    for (int i = 0; names[i]; i++) {
        tj *bad = fx_manifest(names[i]);
        char *uri = tu_pg_newdb(NULL);
        zfs_import_stats st;
        zerr err = {0};
        int rc = import_fixture(names[i], uri, &st, &err);
        if (!strncmp(tj_gets(bad, "converter_should"), "Refuse", 6)) {
            cr_expect_lt(rc, 0, "%s must be refused", names[i]);
            cr_expect_eq(txn_count(uri), 0, "%s: nothing may be left", names[i]);
        } else {
            uint64_t tail;
            size_t ntxn;
            fx_tail(bad, &tail, &ntxn);
            cr_expect_eq(rc, 0, "%s: %s", names[i], err.msg);
            cr_expect_eq(st.torn, 1);
            cr_expect_eq(st.tail_pos, tail, "%s", names[i]);
            cr_expect_eq(txn_count(uri), (long)ntxn, "%s", names[i]);
            /* --strict refuses the same file and leaves nothing */
            char *uri2 = tu_pg_newdb(NULL), *fs = fx_path(names[i], ".fs");
            zfs_import_opts strict = {.quiet = 1, .strict = 1};
            cr_expect_lt(zfs_import(fs, uri2, &strict, &st, &err), 0);
            cr_expect_eq(txn_count(uri2), 0);
            tu_pg_dropdb(uri2);
            free(uri2);
            free(fs);
        }
        tu_pg_dropdb(uri);
        free(uri);
        tj_free(bad);
    }
    fx_free_names(names);
}

/* A Data.fs made of the first n transactions of fixture name. */
static char *prefix_of(const char *name, size_t n)
{
    char *fs = fx_path(name, ".fs"), *out;
    zfs_export_opts eo = {.quiet = 1};
    zfs_import_opts io = {.quiet = 1};
    zerr err;
    char *uri = tu_pg_newdb(NULL);
    cr_assert_eq(zfs_import(fs, uri, &io, NULL, &err), 0, "%s", err.msg);
    tj *m = fx_manifest(name);
    const tj *txns = tj_get(m, "transactions");
    cr_assert_gt(txns->n, n);
    eo.to_tid = tj_hex64(tj_gets(txns->items[n - 1], "tid"));
    cr_assert_gt(asprintf(&out, "%s/%s-%zu.fs", tmp, name, n), 0);
    cr_assert_eq(zfs_export(uri, out, &eo, NULL, &err), 0, "%s", err.msg);
    tj_free(m);
    tu_pg_dropdb(uri);
    free(uri);
    free(fs);
    return out;
}

Test(convert_pg, an_import_appends_newer_transactions_and_fails_whole)
{
    char *part = prefix_of("undo", 3), *full = fx_path("undo", ".fs");
    char *uri = tu_pg_newdb(NULL), *out;
    zfs_import_opts opt = {.quiet = 1};
    zfs_import_stats st;
    zerr err;
    cr_assert_eq(zfs_import(part, uri, &opt, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.txns, 3);
    cr_assert_eq(zfs_import(full, uri, &opt, &st, &err), 0, "%s", err.msg);
    cr_expect_eq(st.skipped, 3);
    cr_assert_gt(asprintf(&out, "%s/appended.fs", tmp), 0);
    zfs_export_opts eo = {.quiet = 1};
    cr_assert_eq(zfs_export(uri, out, &eo, NULL, &err), 0, "%s", err.msg);
    cr_expect(tu_same_file(full, out), "append then export differs from the file");
    /* another history is refused, and the database is as it was */
    long before = txn_count(uri);
    char *other = fx_path("small", ".fs");
    cr_expect_lt(zfs_import(other, uri, &opt, &st, &err), 0);
    cr_expect_eq(txn_count(uri), before);
    tu_pg_dropdb(uri);
    free(uri);
    free(other);
    free(out);
    free(part);
    free(full);
}

Test(convert_pg, a_failure_after_good_transactions_leaves_the_database_as_it_was)
{
    /* a file whose last transaction names a blob the import cannot find:
     * everything before it was written in the same database transaction */
    char *fs = fx_path("blobs-bushy", ".fs"), *uri = tu_pg_newdb(NULL);
    zfs_import_opts opt = {.quiet = 1};   /* no --blobs */
    zfs_import_stats st;
    zerr err;
    cr_expect_lt(zfs_import(fs, uri, &opt, &st, &err), 0);
    cr_expect(strstr(err.msg, "--blobs"), "%s", err.msg);
    cr_expect_eq(txn_count(uri), 0);
    tu_pg_dropdb(uri);
    free(uri);
    free(fs);
}

Test(convert_pg, a_database_a_server_holds_is_refused_and_still_exports)
{
    char *uri = tu_pg_newdb(NULL), *fs = fx_path("small", ".fs"), *out;
    store *server;
    zerr err;
    store_options so = {.create = 1, .exclusive = 1};
    cr_assert_eq(store_open(&server, uri, &so, &err), 0, "%s", err.msg);
    zfs_import_opts opt = {.quiet = 1};
    zfs_import_stats st;
    cr_expect_eq(zfs_import(fs, uri, &opt, &st, &err), ZE_BUSY);
    cr_expect(strstr(err.msg, "in use"), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "postgresql://"), "the URI is not shown: %s", err.msg);
    cr_assert_gt(asprintf(&out, "%s/served.fs", tmp), 0);
    zfs_export_opts eo = {.quiet = 1};
    cr_expect_eq(zfs_export(uri, out, &eo, NULL, &err), 0, "%s", err.msg);
    store_close(server);
    tu_pg_dropdb(uri);
    free(uri);
    free(fs);
    free(out);
}

Test(convert_pg, backup_refuses_postgresql_and_names_pg_basebackup)
{
    char *uri = tu_pg_newdb(NULL), *cmd, *log = tu_path(tmp, "backup.log");
    store *s;
    zerr err;
    store_options so = {.create = 1};
    cr_assert_eq(store_open(&s, uri, &so, &err), 0, "%s", err.msg);
    store_close(s);
    cr_assert_gt(asprintf(&cmd, "'%s' backup '%s' '%s/copy' >'%s' 2>&1", tu_zeolite_bin(), uri,
                          tmp, log), 0);
    int rc = system(cmd);
    cr_expect_neq(rc, 0);
    size_t n;
    char *text = (char *)tu_read_file(log, &n);
    cr_assert(text);
    cr_expect(strstr(text, "pg_basebackup"), "%s", text);
    cr_expect_null(strstr(text, "postgresql://"), "the URI is not shown: %s", text);
    free(text);
    free(cmd);
    free(log);
    tu_pg_dropdb(uri);
    free(uri);
}

/* The commands themselves: `zeolite import DATA.fs URI` then `zeolite export
 * URI DATA.fs` give back the file, blobs included, and never print the URI. */
Test(convert_pg, the_import_and_export_commands_take_a_uri)
{
    char *uri = tu_pg_newdb(NULL), *fs = fx_path("blobs-bushy", ".fs");
    char *blobs = fx_path("blobs-bushy", ".blobs"), *out = tu_path(tmp, "cli.fs");
    char *out_blobs = tu_path(tmp, "cli.blobs"), *log = tu_path(tmp, "cli.log"), *cmd;
    cr_assert_gt(asprintf(&cmd, "'%s' import '%s' '%s' --blobs '%s' >'%s' 2>&1 && "
                          "'%s' export '%s' '%s' --blobs '%s' >>'%s' 2>&1",
                          tu_zeolite_bin(), fs, uri, blobs, log, tu_zeolite_bin(), uri, out,
                          out_blobs, log), 0);
    int rc = system(cmd);
    size_t n;
    char *text = (char *)tu_read_file(log, &n);
    cr_assert(text);
    cr_assert_eq(rc, 0, "%s", text);
    cr_expect(tu_same_file(fs, out), "the exported file differs from the original");
    tj *m = fx_manifest("blobs-bushy");
    fx_expect_blob_files(m, out_blobs, ZBLOB_BUSHY);
    cr_expect_null(strstr(text, "postgresql://"), "the URI is not shown: %s", text);
    cr_expect_gt(txn_count(uri), 0);
    tj_free(m);
    free(text);
    free(cmd);
    free(log);
    free(out_blobs);
    free(out);
    free(blobs);
    free(fs);
    tu_pg_dropdb(uri);
    free(uri);
}
