/* Option parsing of every command (tools/cli.c): getopt spellings
 * (--opt=value, -ovalue, options after positionals), numbers refused rather
 * than read as 0, unknown options and missing values named, --help and
 * --version everywhere. The commands that need a server (pack, status,
 * last-tid, info) are driven against one in test/client/test_tools.c and
 * against zeo-nagios's fixtures in test_status.c; here they fail before
 * connecting. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "testutil.h"

TestSuite(cli_parse, .init = tr_dir_init, .fini = tr_dir_fini, .timeout = 60);

static const char *const commands[] = {"serve", "import", "export", "verify", "backup",
                                       "status", "pack", "last-tid", "info", "bench"};
#define NCOMMANDS (sizeof commands / sizeof *commands)

Test(cli_parse, version_everywhere)
{
    tr_result top;
    tr_zeolite(&top, "--version", NULL);
    cr_assert_eq(top.status, 0);
    cr_assert_eq(strncmp(top.out, "zeolite ", 8), 0, "%s", top.out);
    cr_expect_eq(tr_lines(top.out), 1);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        tr_result r;
        tr_zeolite(&r, commands[i], "--version", NULL);
        cr_expect_eq(r.status, 0, "%s --version", commands[i]);
        cr_expect_str_eq(r.out, top.out, "%s --version", commands[i]);
        tr_free(&r);
    }
    tr_free(&top);
}

Test(cli_parse, help_everywhere)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        tr_result r;
        tr_zeolite(&r, commands[i], "--help", NULL);
        cr_expect_eq(r.status, 0, "%s --help", commands[i]);
        cr_expect(strstr(r.out, "usage: zeolite") != NULL, "%s --help: %s", commands[i], r.out);
        tr_free(&r);
    }
}

/* A refused command line: its exit status, and stderr naming the culprit. */
typedef struct refusal {
    const char *args[8];
    int status;
    const char *says;
} refusal;

static const refusal refusals[] = {
    /* numbers are checked, never read as 0 */
    {{"pack", "--days=x", "127.0.0.1:1"}, 2, "--days takes a whole number"},
    {{"pack", "-dx", "127.0.0.1:1"}, 2, "--days takes a whole number"},
    {{"pack", "-d", "1.5", "127.0.0.1:1"}, 2, "not '1.5'"},
    {{"pack", "-d-1", "127.0.0.1:1"}, 2, "not '-1'"},
    {{"pack", "-h", "localhost", "-p", "99999"}, 2, "-p takes a whole number from 1 to 65535"},
    {{"pack", "--timeout", "abc", "127.0.0.1:1"}, 2, "--timeout takes seconds"},
    {{"last-tid", "--timeout", "abc", "127.0.0.1:1"}, 2, "not 'abc'"},
    {{"info", "--timeout=0", "127.0.0.1:1"}, 2, "--timeout takes seconds (more than 0)"},
    {{"status", "--timeout", "1x", "127.0.0.1:1"}, 3, "not '1x'"},
    {{"bench", "127.0.0.1:1", "--clients", "0"}, 2, "--clients takes a whole number"},
    {{"bench", "127.0.0.1:1", "--duration", "soon"}, 2, "--duration takes a number"},
    {{"bench", "127.0.0.1:1", "--watch", "127.0.0.1:2"}, 2, "--watch is for the lag workload"},
    {{"bench", "127.0.0.1:1", "--workload", "lag", "--split", "127.0.0.1:2"}, 2,
     "the lag workload takes --watch, not --split"},
    {{"import", "--progress-interval", "-1", "a", "b"}, 2, "--progress-interval takes"},
    {{"export", "--from", "xyz", "a", "b"}, 2, "--from: want a tid"},
    {{"export", "--layout=tree", "a", "b"}, 2, "--layout takes one of bushy, lawn"},
    {{"status", "-u", "weeks", "127.0.0.1:1"}, 3, "--time-units takes one of seconds"},
    /* unknown options and missing values are named */
    {{"backup", "--bogus", "a", "b"}, 2, "unknown option '--bogus'"},
    {{"verify", "-x", "a"}, 2, "unknown option '-x'"},
    {{"import", "a", "b", "--blobs"}, 2, "option '--blobs' needs a value"},
    {{"pack", "127.0.0.1:1", "-t"}, 2, "option '-t' needs a value"},
    {{"status", "-ms"}, 3, "option '-s' needs a value"},
    {{"last-tid", "--encoding", "X", "127.0.0.1:1"}, 2, "--encoding takes Z or M"},
    /* positional arguments are counted */
    {{"export", "a"}, 2, "2 arguments expected, 1 given"},
    {{"verify", "a", "b"}, 2, "unexpected argument 'b'"},
    {{"status", "a:1", "b:1"}, 3, "unexpected argument 'b:1'"},
    {{"serve", "-a", "127.0.0.1:1", "-f", "x", "--timeout", "soon"}, 2, "bad --timeout"},
};

Test(cli_parse, bad_command_lines_are_refused_by_name)
{
    for (size_t i = 0; i < sizeof refusals / sizeof *refusals; i++) {
        const refusal *f = &refusals[i];
        tr_result r;
        tr_run(&r, f->args, NULL);
        cr_expect_eq(r.status, f->status, "%s %s: status %d: %s", f->args[0], f->args[1],
                     r.status, r.err);
        cr_expect(strstr(r.err, f->says) != NULL, "%s %s: stderr: %s", f->args[0],
                  f->args[1], r.err);
        cr_expect_eq(tr_lines(r.err) > 0, 1);
        tr_free(&r);
    }
}

/* zeopack's own error lines for a bad server list. */
Test(cli_parse, pack_server_specifications)
{
    tr_result r;
    tr_zeolite(&r, "pack", "-d", "1", "host:notaport", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "Error:\nInvalid server specification: 'host:notaport'\n");
    tr_free(&r);
    tr_zeolite(&r, "pack", "-d", "1", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "Error:\nNo servers specified.\n");
    tr_free(&r);
    tr_zeolite(&r, "pack", "-h", "localhost", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "Error:\nIf host (-h) is specified then a port (-p) must be "
                            "specified as well.\n");
    tr_free(&r);
    tr_zeolite(&r, "pack", NULL);   /* zeopack without arguments prints its help */
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "usage: zeolite pack") != NULL);
    tr_free(&r);
}

/* The file commands with getopt's spellings: --opt=value, options after the
 * positional arguments, -q for --quiet, -v for --verbose. */
Test(cli_parse, file_commands_take_every_spelling)
{
    char *fs = tu_shared("fixtures/datafs/blobs-bushy.fs");
    char *blobs = tu_shared("fixtures/datafs/blobs-bushy.blobs");
    char *db = tr_path("db"), *db2 = tr_path("db2"), *out = tr_path("out.fs"),
         *outblobs = tr_path("out.blobs"), *bak = tr_path("bak"), *blobopt = NULL,
         *layout = tr_path("out.blobs/.layout");
    cr_assert_geq(asprintf(&blobopt, "--blobs=%s", blobs), 0);
    tr_result r;
    tr_zeolite(&r, "import", blobopt, "-q", fs, db, NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "", "-q is --quiet");
    tr_free(&r);
    tr_zeolite(&r, "import", fs, db2, "--blobs", blobs, "--quiet", "--progress-interval=0", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "", "--quiet wins over --progress-interval");
    tr_free(&r);
    char *bo = NULL;
    cr_assert_geq(asprintf(&bo, "--blobs=%s", outblobs), 0);
    tr_zeolite(&r, "export", "-q", "--layout=lawn", bo, "--to=ffffffffffffffff", db, out, NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tr_free(&r);
    size_t len;
    char *text = (char *)tu_read_file(layout, &len);
    cr_expect(text && !strncmp(text, "lawn", 4), "--layout=lawn was applied");
    free(text);
    tr_zeolite(&r, "verify", "--verbose", out, NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tr_result v;
    tr_zeolite(&v, "verify", out, "-v", NULL);
    cr_expect_str_eq(v.out, r.out, "-v after the file is --verbose");
    cr_expect(strstr(r.out, "no errors detected") != NULL, "%s", r.out);
    tr_free(&r);
    tr_free(&v);
    tr_zeolite(&r, "backup", db, bak, "--compact", "-q", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "", "-q: no summary");
    tr_free(&r);
    free(bo);
    free(blobopt);
    free(fs);
    free(blobs);
    free(db);
    free(db2);
    free(out);
    free(outblobs);
    free(bak);
    free(layout);
}
