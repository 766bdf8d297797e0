/* zfile: mkdir -p, copy, rm -rf, fsync, with their failures. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zfile.h"
#include "testutil.h"

static char *dir;

static void setup(void)
{
    umask(022);   /* the modes below are checked against it */
    dir = tu_tmpdir("zfile");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
}

TestSuite(zfile, .init = setup, .fini = teardown);

/* dir/rel in a static buffer (one of four, so a call may use several). */
static const char *at(const char *rel)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

static void put(const char *rel, const char *text)
{
    cr_assert_eq(tu_write_file(at(rel), text, strlen(text)), 0, "%s", rel);
}

static int is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- mkdir -p ------------------------------------------------------------- */

Test(zfile, mkdirs_creates_every_missing_level_and_accepts_existing_ones)
{
    zerr err;
    cr_assert_eq(zfile_mkdirs(at("a/b//c/d"), 0755, &err), 0, "%s", err.msg);
    cr_expect(is_dir(at("a/b/c/d")));
    cr_expect_eq(zfile_mkdirs(at("a/b/c/d"), 0755, &err), 0, "an existing folder is fine");
    cr_expect_eq(zfile_mkdirs(at("a/b/"), 0755, &err), 0, "a trailing slash too");
    cr_assert_eq(zfile_mkdirs_parent(at("x/y/file.blob"), 0700, &err), 0, "%s", err.msg);
    cr_expect(is_dir(at("x/y")));
    cr_expect_not(tu_exists(at("x/y/file.blob")), "only the folders");
    struct stat st;
    cr_assert_eq(stat(at("x/y"), &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700 & ~(mode_t)022 & 0777, "mode %o", st.st_mode & 0777);
    cr_expect_eq(zfile_mkdirs_parent("nofolder", 0755, &err), 0, "no '/': nothing to make");
}

Test(zfile, mkdirs_goes_through_a_symlinked_folder)
{
    zerr err;
    cr_assert_eq(mkdir(at("real"), 0755), 0);
    cr_assert_eq(symlink(at("real"), at("link")), 0);
    cr_assert_eq(zfile_mkdirs(at("link/sub"), 0755, &err), 0, "%s", err.msg);
    cr_expect(is_dir(at("real/sub")));
}

Test(zfile, mkdirs_refuses_a_file_where_a_folder_is_expected)
{
    zerr err;
    put("file", "x");
    cr_expect_eq(zfile_mkdirs(at("file"), 0755, &err), ZE_EXISTS);
    cr_expect(strstr(err.msg, "file"), "%s", err.msg);
    cr_expect_eq(zfile_mkdirs(at("file/sub/deeper"), 0755, &err), ZE_EXISTS);
    cr_expect_eq(zfile_mkdirs_parent(at("file/sub/x.blob"), 0755, &err), ZE_EXISTS);
    size_t len;
    char *text = (char *)tu_read_file(at("file"), &len);
    cr_expect(text && len == 1 && text[0] == 'x', "the file in the way is untouched");
    free(text);
}

Test(zfile, a_path_past_path_max_is_too_big)
{
    char *long_path = malloc(5000);
    cr_assert_not_null(long_path);
    memset(long_path, 'a', 4999);
    long_path[4999] = '\0';
    zerr err;
    cr_expect_eq(zfile_mkdirs(long_path, 0755, &err), ZE_TOOBIG);
    cr_expect_eq(zfile_rm_rf(long_path, &err), ZE_TOOBIG);
    cr_expect_eq(zfile_fsync_parent(long_path, &err), ZE_TOOBIG);
    free(long_path);
}

/* ---- copy ------------------------------------------------------------------ */

Test(zfile, copy_makes_an_exact_new_file)
{
    size_t n = 300 * 1024 + 7;   /* past any single buffer */
    char *data = malloc(n);
    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + i / 977);
    cr_assert_eq(tu_write_file(at("src"), data, n), 0);
    zerr err;
    cr_assert_eq(zfile_copy(at("src"), at("dst"), 0640, 0, &err), 0, "%s", err.msg);
    cr_expect(tu_same_file(at("src"), at("dst")));
    struct stat a, b;
    cr_assert_eq(stat(at("src"), &a), 0);
    cr_assert_eq(stat(at("dst"), &b), 0);
    cr_expect_neq(a.st_ino, b.st_ino, "a copy, not a link");
    cr_expect_eq(b.st_mode & 0777, 0640 & ~(mode_t)022);
    free(data);
}

Test(zfile, copy_with_link_shares_the_file)
{
    put("src", "blob bytes");
    zerr err;
    cr_assert_eq(zfile_copy(at("src"), at("dst"), 0444, ZFILE_LINK, &err), 0, "%s", err.msg);
    struct stat a, b;
    cr_assert_eq(stat(at("src"), &a), 0);
    cr_assert_eq(stat(at("dst"), &b), 0);
    cr_expect_eq(a.st_ino, b.st_ino);
    cr_expect_eq(b.st_nlink, 2);
}

Test(zfile, copy_never_replaces_or_follows_a_target)
{
    zerr err;
    put("src", "new");
    put("dst", "old");
    cr_expect_eq(zfile_copy(at("src"), at("dst"), 0644, 0, &err), ZE_EXISTS);
    cr_expect_eq(zfile_copy(at("src"), at("dst"), 0644, ZFILE_LINK, &err), ZE_EXISTS);
    size_t len;
    char *text = (char *)tu_read_file(at("dst"), &len);
    cr_expect(text && len == 3 && !memcmp(text, "old", 3), "the target is left as it was");
    free(text);
    /* A dangling symlink at dst: the copy must not create its target. */
    cr_assert_eq(symlink(at("elsewhere"), at("trap")), 0);
    cr_expect_eq(zfile_copy(at("src"), at("trap"), 0644, 0, &err), ZE_EXISTS);
    cr_expect_not(tu_exists(at("elsewhere")));
}

Test(zfile, copy_of_a_missing_source_is_not_found)
{
    zerr err;
    cr_expect_eq(zfile_copy(at("none"), at("dst"), 0644, 0, &err), ZE_NOTFOUND);
    cr_expect(strstr(err.msg, "none"), "%s", err.msg);
    cr_expect_eq(zfile_copy(at("none"), at("dst"), 0644, ZFILE_LINK, &err), ZE_NOTFOUND);
    cr_expect_not(tu_exists(at("dst")));
}

Test(zfile, a_failed_copy_leaves_no_target)
{
    zerr err;
    cr_assert_eq(mkdir(at("folder"), 0755), 0);
    /* Reading a folder fails (EISDIR) after the target was created. */
    int rc = zfile_copy(at("folder"), at("dst"), 0644, 0, &err);
    cr_expect_eq(rc, ZE_IO, "%d %s", rc, err.msg);
    cr_expect_not(tu_exists(at("dst")));
    put("src", "x");
    cr_expect_eq(zfile_copy(at("src"), at("no/such/dst"), 0644, 0, &err), ZE_IO);
    cr_expect(strstr(err.msg, "no/such/dst"), "%s", err.msg);
}

/* ---- rm -rf ---------------------------------------------------------------- */

static void make_tree(const char *root)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/a/b/c", root);
    cr_assert_eq(zfile_mkdirs(at(rel), 0755, NULL), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(rel, sizeof rel, "%s/a/f%d", root, i);
        put(rel, "x");
        snprintf(rel, sizeof rel, "%s/a/b/c/.g%d", root, i);
        put(rel, "y");
    }
    snprintf(rel, sizeof rel, "%s/top", root);
    put(rel, "z");
}

Test(zfile, rm_rf_removes_a_whole_tree)
{
    make_tree("t");
    zerr err;
    cr_assert_eq(zfile_rm_rf(at("t"), &err), 0, "%s", err.msg);
    cr_expect_not(tu_exists(at("t")));
    cr_expect_eq(zfile_rm_rf(at("t"), &err), 0, "a missing path is fine");
    cr_expect_eq(zfile_rm_rf(at("t/deeper/still"), &err), 0);
    put("file", "x");
    cr_expect_eq(zfile_rm_rf(at("file/under"), &err), 0, "nothing under a file");
    cr_expect_eq(zfile_rm_rf(at("file"), &err), 0, "a plain file goes too");
    cr_expect_not(tu_exists(at("file")));
    make_tree("u");
    cr_expect_eq(zfile_rm_rf(at("u/"), &err), 0, "a trailing slash names the folder");
    cr_expect_not(tu_exists(at("u")));
}

Test(zfile, rm_rf_removes_symlinks_without_following_them)
{
    zerr err;
    cr_assert_eq(mkdir(at("outside"), 0755), 0);
    put("outside/canary", "alive");
    make_tree("t");
    cr_assert_eq(symlink(at("outside"), at("t/a/b/to_outside")), 0);
    cr_assert_eq(symlink(at("outside/canary"), at("t/a/to_canary")), 0);
    cr_assert_eq(zfile_rm_rf(at("t"), &err), 0, "%s", err.msg);
    cr_expect_not(tu_exists(at("t")));
    cr_expect(tu_exists(at("outside/canary")), "the link's target stays");
    /* The path itself a symlink to a folder: the link goes, the folder stays. */
    cr_assert_eq(symlink(at("outside"), at("alias")), 0);
    cr_assert_eq(zfile_rm_rf(at("alias"), &err), 0, "%s", err.msg);
    cr_expect_not(tu_exists(at("alias")));
    cr_expect(tu_exists(at("outside/canary")));
}

Test(zfile, rm_rf_refuses_dot_names)
{
    zerr err;
    make_tree("t");
    cr_expect_eq(zfile_rm_rf(at("t/a/.."), &err), ZE_INVAL);
    cr_expect_eq(zfile_rm_rf(at("t/."), &err), ZE_INVAL);
    cr_expect(tu_exists(at("t/top")), "nothing was removed");
}

Test(zfile, rm_rf_of_a_deep_tree)
{
    char rel[4096] = "deep";
    for (int i = 0; i < 200; i++)
        strcat(rel, "/d");
    cr_assert_eq(zfile_mkdirs(at(rel), 0755, NULL), 0);
    strcat(rel, "/leaf");
    put(rel, "x");
    zerr err;
    cr_assert_eq(zfile_rm_rf(at("deep"), &err), 0, "%s", err.msg);
    cr_expect_not(tu_exists(at("deep")));
}

Test(zfile, empty_dir_keeps_the_folder)
{
    zerr err;
    make_tree("t");
    cr_assert_eq(mkdir(at("outside"), 0755), 0);
    put("outside/canary", "alive");
    cr_assert_eq(symlink(at("outside"), at("t/link")), 0);
    cr_assert_eq(zfile_empty_dir(at("t"), &err), 0, "%s", err.msg);
    cr_expect(is_dir(at("t")));
    cr_expect_eq(zfile_dir_is_empty(at("t"), &err), 1);
    cr_expect(tu_exists(at("outside/canary")));
    cr_expect_eq(zfile_empty_dir(at("none"), &err), ZE_NOTFOUND);
    put("file", "x");
    cr_expect_eq(zfile_empty_dir(at("file"), &err), ZE_EXISTS);
    cr_expect(tu_exists(at("file")));
}

Test(zfile, dir_is_empty_answers_and_fails_clearly)
{
    zerr err;
    cr_assert_eq(mkdir(at("e"), 0755), 0);
    cr_expect_eq(zfile_dir_is_empty(at("e"), &err), 1);
    put("e/.hidden", "x");
    cr_expect_eq(zfile_dir_is_empty(at("e"), &err), 0, "a dot file counts");
    cr_expect_eq(zfile_dir_is_empty(at("none"), &err), ZE_NOTFOUND);
    cr_expect_eq(zfile_dir_is_empty(at("e/.hidden"), &err), ZE_EXISTS);
}

/* ---- fsync ----------------------------------------------------------------- */

Test(zfile, fsync_of_a_file_and_its_folder)
{
    zerr err;
    put("f", "data");
    cr_expect_eq(zfile_fsync(at("f"), &err), 0, "%s", err.msg);
    cr_expect_eq(zfile_fsync(dir, &err), 0, "%s", err.msg);
    cr_expect_eq(zfile_fsync_parent(at("f"), &err), 0, "%s", err.msg);
    cr_expect_eq(zfile_fsync_parent(at("not-yet"), &err), 0, "only the folder must exist");
    cr_expect_eq(zfile_fsync_parent("relative-name", &err), 0, "the current folder");
    cr_expect_eq(zfile_fsync(at("none"), &err), ZE_IO);
    cr_expect(strstr(err.msg, "none"), "%s", err.msg);
    cr_expect_eq(zfile_fsync_parent(at("none/f"), &err), ZE_IO);
}

/* ---- folders others may write into ---------------------------------------- */

/* The folder under test, open. */
static int open_top(void)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    return fd;
}

Test(zfile, open_dir_at_walks_and_makes_folders)
{
    zerr err;
    int top = open_top();
    int fd = zfile_open_dir_at(top, "TOP", "a/b//c", 0, 0755, &err);
    cr_expect_eq(fd, ZE_NOTFOUND);
    cr_expect(strstr(err.msg, "TOP/a"), "the message names the missing folder: %s", err.msg);
    fd = zfile_open_dir_at(top, "TOP", "a/b//c/", ZFILE_CREATE, 0755, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    cr_expect_eq(mkdirat(fd, "d", 0755), 0, "the descriptor is c's");
    close(fd);
    cr_expect(is_dir(at("a/b/c/d")));
    fd = zfile_open_dir_at(top, "TOP", "", 0, 0, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    close(fd);
    cr_expect_eq(zfile_open_dir_at(top, "TOP", "a/../a", ZFILE_CREATE, 0755, &err), ZE_INVAL);
    close(top);
}

Test(zfile, open_dir_at_refuses_a_symlink_at_any_level_and_makes_nothing_beyond)
{
    zerr err;
    cr_assert_eq(mkdir(at("outside"), 0755), 0);
    cr_assert_eq(mkdir(at("in"), 0755), 0);
    cr_assert_eq(symlink(at("outside"), at("in/mid")), 0);
    int top = open_top();
    cr_expect_eq(zfile_open_dir_at(top, "TOP", "in/mid/deep", ZFILE_CREATE, 0755, &err),
                 ZE_CORRUPT);
    cr_expect(strstr(err.msg, "TOP/in/mid is a symbolic link"), "%s", err.msg);
    cr_expect_eq(zfile_open_dir_at(top, "TOP", "in/mid", 0, 0, &err), ZE_CORRUPT,
                 "the last level too");
    cr_expect_eq(tu_count_entries(at("outside")), 0, "nothing was made through the link");
    put("in/file", "x");
    cr_expect_eq(zfile_open_dir_at(top, "TOP", "in/file/x", ZFILE_CREATE, 0755, &err),
                 ZE_CORRUPT);
    cr_expect(strstr(err.msg, "TOP/in/file is not a folder"), "%s", err.msg);
    close(top);
}

Test(zfile, is_plain_means_one_link_or_read_only_for_all)
{
    struct stat st = {.st_mode = S_IFREG | 0644, .st_nlink = 1};
    cr_expect(zfile_is_plain(&st));
    st.st_nlink = 2;
    cr_expect_not(zfile_is_plain(&st), "another name may be a file from elsewhere");
    st.st_mode = S_IFREG | 0444;
    cr_expect(zfile_is_plain(&st), "no one may change it, everyone may read it");
    st.st_mode = S_IFREG | 0400;
    cr_expect_not(zfile_is_plain(&st), "reading it would reveal it");
    st.st_mode = S_IFREG | 0644;
    cr_expect_not(zfile_is_plain(&st), "a chmod would change it");
    st.st_mode = S_IFLNK | 0777;
    st.st_nlink = 1;
    cr_expect_not(zfile_is_plain(&st));
    st.st_mode = S_IFIFO | 0644;
    cr_expect_not(zfile_is_plain(&st));
}

Test(zfile, open_plain_at_refuses_links_fifos_and_linked_files)
{
    zerr err;
    put("secret", "outside");
    cr_assert_eq(chmod(at("secret"), 0600), 0);
    put("mine", "mine");
    cr_assert_eq(symlink(at("secret"), at("sym")), 0);
    cr_assert_eq(link(at("secret"), at("hard")), 0);
    cr_assert_eq(mkfifo(at("fifo"), 0644), 0);
    int top = open_top();
    struct stat st;
    int fd = zfile_open_plain_at(top, "TOP", "mine", O_RDONLY, 0, &st, &err);
    cr_assert_geq(fd, 0, "%s", err.msg);
    char buf[8] = {0};
    cr_expect_eq(read(fd, buf, sizeof buf), 4);
    cr_expect_str_eq(buf, "mine");
    cr_expect(S_ISREG(st.st_mode) && st.st_nlink == 1);
    close(fd);
    cr_expect_eq(zfile_open_plain_at(top, "TOP", "sym", O_RDONLY, 0, NULL, &err), ZE_CORRUPT);
    cr_expect(strstr(err.msg, "TOP/sym is a symbolic link"), "%s", err.msg);
    cr_expect_eq(zfile_open_plain_at(top, "TOP", "hard", O_RDONLY, 0, NULL, &err), ZE_CORRUPT);
    cr_expect(strstr(err.msg, "TOP/hard has 2 hard links"), "%s", err.msg);
    cr_expect_eq(zfile_open_plain_at(top, "TOP", "fifo", O_RDONLY, 0, NULL, &err), ZE_CORRUPT,
                 "a FIFO neither hangs nor passes");
    cr_expect_eq(zfile_open_plain_at(top, "TOP", "none", O_RDONLY, 0, NULL, &err), ZE_NOTFOUND);
    cr_expect_eq(zfile_open_plain_at(top, "TOP", "mine", O_WRONLY | O_TRUNC, 0, NULL, &err),
                 ZE_INVAL);
    fd = zfile_open_plain_at(top, "TOP", "hard", O_RDONLY, ZFILE_LINKED_OK, NULL, &err);
    cr_expect_geq(fd, 0, "a caller may vouch for the links: %s", err.msg);
    close(fd);
    cr_assert_eq(chmod(at("secret"), 0444), 0);
    fd = zfile_open_plain_at(top, "TOP", "hard", O_RDONLY, 0, NULL, &err);
    cr_expect_geq(fd, 0, "read-only for all: %s", err.msg);
    close(fd);
    close(top);
}

Test(zfile, unlink_plain_at_leaves_links_and_linked_files)
{
    zerr err;
    put("secret", "outside");
    put("mine", "mine");
    cr_assert_eq(symlink(at("secret"), at("sym")), 0);
    cr_assert_eq(link(at("secret"), at("hard")), 0);
    int top = open_top();
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "mine", 0, &err), 0, "%s", err.msg);
    cr_expect_not(tu_exists(at("mine")));
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "mine", 0, &err), 0, "gone already is fine");
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "sym", 0, &err), ZE_CORRUPT);
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "hard", 0, &err), ZE_CORRUPT);
    cr_expect(strstr(err.msg, "TOP/hard"), "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat(at("secret"), &st), 0);
    cr_expect_eq(st.st_nlink, 2, "no link of the outside file went");
    cr_expect(tu_exists(at("sym")));
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "hard", ZFILE_LINKED_OK, &err), 0,
                 "a caller may vouch for the links: %s", err.msg);
    cr_expect_not(tu_exists(at("hard")));
    cr_expect_eq(zfile_unlink_plain_at(top, "TOP", "sym", ZFILE_LINKED_OK, &err), ZE_CORRUPT,
                 "never a symlink");
    close(top);
}

Test(zfile, copy_fd_at_copies_all_and_never_writes_through_a_link)
{
    zerr err;
    put("src", "the whole content");
    put("victim", "untouched");
    cr_assert_eq(symlink(at("victim"), at("trap")), 0);
    int in = open(at("src"), O_RDONLY);
    cr_assert_geq(in, 0);
    char buf[64];
    cr_assert_gt(read(in, buf, sizeof buf), 0);   /* at its end now */
    int top = open_top();
    cr_assert_eq(zfile_copy_fd_at(in, top, "TOP", "dst", 0444, ZFILE_SYNC, &err), 0, "%s",
                 err.msg);
    cr_expect(tu_same_file(at("src"), at("dst")), "copied from the start");
    struct stat st;
    cr_assert_eq(stat(at("dst"), &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0444);
    cr_expect_eq(zfile_copy_fd_at(in, top, "TOP", "trap", 0644, 0, &err), ZE_EXISTS);
    cr_expect_eq(zfile_copy_fd_at(in, top, "TOP", "dst", 0644, 0, &err), ZE_EXISTS);
    size_t len;
    uint8_t *v = tu_read_file(at("victim"), &len);
    cr_expect(v && len == 9 && !memcmp(v, "untouched", 9), "the link's target is unchanged");
    free(v);
    close(in);
    close(top);
}

Test(zfile, mktemp_at_makes_a_new_private_file)
{
    zerr err;
    char a[16], b[16];
    int top = open_top();
    int fa = zfile_mktemp_at(top, "TOP", "blob", a, sizeof a, &err);
    cr_assert_geq(fa, 0, "%s", err.msg);
    int fb = zfile_mktemp_at(top, "TOP", "blob", b, sizeof b, &err);
    cr_assert_geq(fb, 0, "%s", err.msg);
    cr_expect_eq(strlen(a), 10);
    cr_expect_eq(strncmp(a, "blob", 4), 0);
    cr_expect_str_neq(a, b);
    struct stat st;
    cr_assert_eq(fstat(fa, &st), 0);
    cr_expect(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    cr_expect_eq(write(fa, "x", 1), 1, "open for writing");
    cr_expect(tu_exists(at(a)) && tu_exists(at(b)));
    close(fa);
    close(fb);
    cr_expect_eq(zfile_mktemp_at(top, "TOP", "blob", a, 10, &err), ZE_TOOBIG);
    close(top);
}
