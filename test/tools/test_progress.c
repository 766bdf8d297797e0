/* Progress off a terminal (common/zprogress.h): the tests' stderr is a file,
 * so import, export and backup print plain lines, one at every step with
 * --progress-interval 0 (nothing here depends on time), none with --quiet. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "testutil.h"

TestSuite(progress, .init = tr_dir_init, .fini = tr_dir_fini, .timeout = 60);

/* Lines of text that start with prefix. */
static int lines_with(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += !strncmp(p, prefix, len);
    return n;
}

Test(progress, import_export_and_backup_print_lines_off_a_terminal)
{
    char *fs = tu_shared("fixtures/datafs/blobs-bushy.fs"), *db = tr_path("db"),
         *out = tr_path("out.fs"), *bak = tr_path("bak"),
         *blobs = tu_shared("fixtures/datafs/blobs-bushy.blobs"),
         *outblobs = tr_path("out.blobs");
    tr_result r;
    tr_zeolite(&r, "import", "--progress-interval", "0", fs, db, "--blobs", blobs, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* 6 transactions: a line after each */
    cr_expect_geq(lines_with(r.err, "import: "), 2, "%s", r.err);
    cr_expect(strstr(r.err, "import: 100% (") != NULL, "the last step is the whole file: %s",
              r.err);
    cr_expect(strstr(r.err, " transactions, ") && strstr(r.err, " MB/s, ETA "), "%s", r.err);
    cr_expect(strchr(r.err, '\r') == NULL, "no terminal bar in a file");
    tr_free(&r);

    tr_zeolite(&r, "export", "--progress-interval=0", db, out, "--blobs", outblobs, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_geq(lines_with(r.err, "export: "), 2, "%s", r.err);
    tr_free(&r);

    /* a line after each blob file and each chunk of the database */
    tr_zeolite(&r, "backup", "--progress-interval", "0", db, bak, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_geq(lines_with(r.err, "backup: "), 2, "%s", r.err);
    cr_expect(strstr(r.err, " blob files, ") != NULL, "%s", r.err);
    tr_free(&r);
    free(blobs);
    free(outblobs);
    free(fs);
    free(db);
    free(out);
    free(bak);
}

Test(progress, quiet_prints_nothing)
{
    char *fs = tu_shared("fixtures/datafs/small.fs"), *db = tr_path("db"),
         *out = tr_path("out.fs"), *bak = tr_path("bak");
    tr_result r;
    tr_zeolite(&r, "import", "--quiet", "--progress-interval", "0", fs, db, NULL);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.err, "");
    cr_expect_str_eq(r.out, "");
    tr_free(&r);
    tr_zeolite(&r, "export", "-q", "--progress-interval", "0", db, out, NULL);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.err, "");
    tr_free(&r);
    tr_zeolite(&r, "backup", "-q", "--progress-interval", "0", db, bak, NULL);
    cr_expect_eq(r.status, 0);
    cr_expect_str_eq(r.err, "");
    cr_expect_str_eq(r.out, "");
    tr_free(&r);
    free(fs);
    free(db);
    free(out);
    free(bak);
}
