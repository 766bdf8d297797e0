/* zblob: ZODB's blob paths and layout marker.
 *
 * The expected paths were computed with ZODB 6.0.1 (the development venv):
 *   from ZODB.blob import BushyLayout, LawnLayout; from ZODB.utils import p64
 *   BushyLayout().getBlobFilePath(p64(oid), p64(tid))
 *   LawnLayout().getBlobFilePath(p64(oid), p64(tid))
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"
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
        /* The same folder relative to the blob folder, and the file's name. */
        char rel[64], name[ZBLOB_NAME_MAX];
        cr_assert_eq(zblob_oid_rel(ZBLOB_BUSHY, cases[i].oid, rel, sizeof rel), 0);
        cr_expect_str_eq(rel, want + 3);
        cr_assert_eq(zblob_oid_rel(ZBLOB_LAWN, cases[i].oid, rel, sizeof rel), 0);
        cr_expect_eq(strncmp(rel, cases[i].lawn, strlen(rel)), 0);
        cr_expect_eq(cases[i].lawn[strlen(rel)], '/');
        zblob_file_name(cases[i].tid, name);
        cr_expect_str_eq(name, strrchr(cases[i].lawn, '/') + 1);
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

/* ---- never through a link ----------------------------------------------- */

Test(zblob_layout, oid_dir_open_makes_the_bushy_chain, .init = setup, .fini = teardown)
{
    zerr err;
    int root = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(root, 0);
    cr_expect_eq(zblob_oid_dir_open(root, "B", ZBLOB_BUSHY, 0x1234, 0, &err), ZE_NOTFOUND);
    int fd = zblob_oid_dir_open(root, "B", ZBLOB_BUSHY, 0x1234, ZFILE_CREATE, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    cr_expect_eq(mkdirat(fd, "probe", 0755), 0);
    close(fd);
    char *p = tu_path(dir, "0x00/0x00/0x00/0x00/0x00/0x00/0x12/0x34/probe");
    struct stat st;
    cr_expect(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s", p);
    free(p);
    fd = zblob_oid_dir_open(root, "B", ZBLOB_LAWN, 0x1234, ZFILE_CREATE, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    close(fd);
    p = tu_path(dir, "0x1234");
    cr_expect(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s", p);
    free(p);
    close(root);
}

Test(zblob_layout, oid_dir_open_refuses_a_linked_folder_on_the_way, .init = setup,
     .fini = teardown)
{
    zerr err;
    char *out = tu_path(dir, "outside"), *blobs = tu_path(dir, "blobs");
    char *mid = tu_path(dir, "blobs/0x00/0x00/0x00");
    cr_assert_eq(mkdir(out, 0755), 0);
    cr_assert_eq(zfile_mkdirs(blobs, 0755, NULL), 0);
    cr_assert_eq(zfile_mkdirs_parent(mid, 0755, NULL), 0);
    cr_assert_eq(symlink(out, mid), 0);
    int root = open(blobs, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(root, 0);
    cr_expect_eq(zblob_oid_dir_open(root, blobs, ZBLOB_BUSHY, 7, ZFILE_CREATE, &err),
                 ZE_CORRUPT);
    cr_expect(strstr(err.msg, mid) && strstr(err.msg, "symbolic link"), "%s", err.msg);
    DIR *d = opendir(out);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(n, 0, "nothing was made in the outside folder");
    close(root);
    free(out);
    free(blobs);
    free(mid);
}

Test(zblob_layout, a_marker_that_is_a_link_is_neither_read_nor_written, .init = setup,
     .fini = teardown)
{
    zerr err;
    zblob_layout l;
    char *secret = tu_path(dir, "secret"), *marker = tu_path(dir, ".layout");
    cr_assert_eq(tu_write_file(secret, "lawn", 4), 0);
    cr_assert_eq(symlink(secret, marker), 0);
    cr_expect_eq(zblob_layout_read(dir, &l, &err), ZE_CORRUPT);
    cr_expect(strstr(err.msg, "symbolic link"), "%s", err.msg);
    cr_expect_eq(zblob_layout_write(dir, ZBLOB_BUSHY, &err), ZE_CORRUPT);
    size_t len;
    uint8_t *v = tu_read_file(secret, &len);
    cr_expect(v && len == 4 && !memcmp(v, "lawn", 4), "the link's target is unchanged");
    free(v);
    /* A hard link may be read (a backup may share the marker) but is never
     * written: that would write the other file. */
    cr_assert_eq(unlink(marker), 0);
    cr_assert_eq(chmod(secret, 0600), 0);
    cr_assert_eq(link(secret, marker), 0);
    cr_expect_eq(zblob_layout_read(dir, &l, &err), 0, "%s", err.msg);
    cr_expect_eq(l, ZBLOB_LAWN);
    cr_expect_eq(zblob_layout_write(dir, ZBLOB_BUSHY, &err), ZE_CORRUPT);
    v = tu_read_file(secret, &len);
    cr_expect(v && len == 4 && !memcmp(v, "lawn", 4), "the other file is unchanged");
    free(v);
    free(secret);
    free(marker);
}
