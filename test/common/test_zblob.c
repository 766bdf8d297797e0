/* zblob: ZODB's blob paths and layout marker.
 *
 * The expected paths were computed with ZODB 6.0.1 (the development venv):
 *   from ZODB.blob import BushyLayout, LawnLayout; from ZODB.utils import p64
 *   BushyLayout().getBlobFilePath(p64(oid), p64(tid))
 *   LawnLayout().getBlobFilePath(p64(oid), p64(tid))
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zblob.h"
#include "testutil.h"

typedef struct path_case {
    uint64_t oid, tid;
    const char *bushy, *lawn;
} path_case;

Test(zblob, paths_are_zodbs)
{
    static const path_case cases[] = {
        {0, 0, "0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x00.blob", "0x00/0x00.blob"},
        {1, 0x03d5e6a4b3c2f1ull, "0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x01/0x03d5e6a4b3c2f1.blob",
         "0x01/0x03d5e6a4b3c2f1.blob"},
        {0x1234, 0x040d4167b3b7f755ull,
         "0x00/0x00/0x00/0x00/0x00/0x00/0x12/0x34/0x040d4167b3b7f755.blob",
         "0x1234/0x040d4167b3b7f755.blob"},
        {UINT64_MAX, UINT64_MAX, "0xff/0xff/0xff/0xff/0xff/0xff/0xff/0xff/0xffffffffffffffff.blob",
         "0xffffffffffffffff/0xffffffffffffffff.blob"},
        {0x0100000000000000ull, 0x100, "0x01/0x00/0x00/0x00/0x00/0x00/0x00/0x00/0x0100.blob",
         "0x0100000000000000/0x0100.blob"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char got[256], want[256];
        snprintf(want, sizeof want, "/b/%s", cases[i].bushy);
        cr_assert_eq(zblob_path("/b", ZBLOB_BUSHY, cases[i].oid, cases[i].tid, got, sizeof got), 0);
        cr_expect_str_eq(got, want);
        snprintf(want, sizeof want, "/b/%s", cases[i].lawn);
        cr_assert_eq(zblob_path("/b", ZBLOB_LAWN, cases[i].oid, cases[i].tid, got, sizeof got), 0);
        cr_expect_str_eq(got, want);
        /* The folder is the path up to its last slash. */
        char dir[256];
        cr_assert_eq(zblob_oid_dir("/b", ZBLOB_BUSHY, cases[i].oid, dir, sizeof dir), 0);
        snprintf(want, sizeof want, "/b/%s", cases[i].bushy);
        *strrchr(want, '/') = '\0';
        cr_expect_str_eq(dir, want);
    }
}

Test(zblob, repr_strips_leading_zero_bytes)
{
    char buf[ZBLOB_REPR_MAX];
    cr_expect_eq(zblob_repr(0, buf), 4);
    cr_expect_str_eq(buf, "0x00");
    cr_expect_eq(zblob_repr(0x0a0b, buf), 6);
    cr_expect_str_eq(buf, "0x0a0b");
    cr_expect_eq(zblob_repr(UINT64_MAX, buf), 18);
    cr_expect_str_eq(buf, "0xffffffffffffffff");
}

Test(zblob, a_path_that_does_not_fit_is_refused)
{
    char buf[64];
    /* "/b" + 8 * 5 + "/0x00.blob" = 52 bytes and the NUL. */
    cr_expect_eq(zblob_path("/b", ZBLOB_BUSHY, 0, 0, buf, 53), 0);
    cr_expect_eq(zblob_path("/b", ZBLOB_BUSHY, 0, 0, buf, 52), ZE_TOOBIG);
    cr_expect_eq(zblob_oid_dir("/b", ZBLOB_BUSHY, 0, buf, 43), 0);
    cr_expect_eq(zblob_oid_dir("/b", ZBLOB_BUSHY, 0, buf, 42), ZE_TOOBIG);
    cr_expect_eq(zblob_oid_dir("/b", ZBLOB_LAWN, 0x1234, buf, 10), 0);
    cr_expect_eq(zblob_oid_dir("/b", ZBLOB_LAWN, 0x1234, buf, 9), ZE_TOOBIG);
}

static char *dir;

static void setup(void)
{
    dir = tu_tmpdir("zblob");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
}

static void write_at(const char *name, const char *text)
{
    char *p = tu_path(dir, name);
    cr_assert_eq(tu_write_file(p, text, strlen(text)), 0);
    free(p);
}

Test(zblob_layout, marker_written_is_read_back, .init = setup, .fini = teardown)
{
    zblob_layout l;
    zerr err;
    cr_assert_eq(zblob_layout_write(dir, ZBLOB_LAWN, &err), 0, "%s", err.msg);
    cr_assert_eq(zblob_layout_read(dir, &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l, ZBLOB_LAWN);
    cr_assert_eq(zblob_layout_write(dir, ZBLOB_BUSHY, &err), 0, "%s", err.msg);
    cr_assert_eq(zblob_layout_read(dir, &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l, ZBLOB_BUSHY);
    write_at(".layout", "  lawn\n");   /* white space around the name is ignored */
    cr_assert_eq(zblob_layout_read(dir, &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l, ZBLOB_LAWN);
}

Test(zblob_layout, unknown_or_missing_marker, .init = setup, .fini = teardown)
{
    zblob_layout l = ZBLOB_LAWN;
    zerr err;
    cr_expect_eq(zblob_layout_read(dir, &l, &err), ZE_NOTFOUND);
    write_at(".layout", "flat");
    cr_expect_eq(zblob_layout_read(dir, &l, &err), ZE_INVAL);
    cr_expect(strstr(err.msg, "flat"), "the message names what the marker says: %s", err.msg);
    cr_expect_eq(zblob_layout_select(dir, &l, &err), ZE_INVAL);
    char *missing = tu_path(dir, "nope");
    cr_expect_eq(zblob_layout_read(missing, &l, NULL), ZE_NOTFOUND);
    free(missing);
}

Test(zblob_layout, select_follows_auto_layout_select, .init = setup, .fini = teardown)
{
    zblob_layout l = 0;
    char *missing = tu_path(dir, "nope");
    cr_assert_eq(zblob_layout_select(missing, &l, NULL), 0);
    cr_expect_eq(l, ZBLOB_BUSHY, "a missing folder is bushy");
    free(missing);
    write_at(".hidden", "x");
    cr_assert_eq(zblob_layout_select(dir, &l, NULL), 0);
    cr_expect_eq(l, ZBLOB_BUSHY, "dot files only: unused, bushy");
    char *sub = tu_path(dir, "0x01");
    cr_assert_eq(mkdir(sub, 0755), 0);
    free(sub);
    cr_assert_eq(zblob_layout_select(dir, &l, NULL), 0);
    cr_expect_eq(l, ZBLOB_LAWN, "used without a marker: a legacy lawn");
    write_at(".layout", "bushy");
    cr_assert_eq(zblob_layout_select(dir, &l, NULL), 0);
    cr_expect_eq(l, ZBLOB_BUSHY, "the marker wins");
}
