/* blob.c: blob files in ZODB's bushy layout under DIR/blobs, never reached
 * through a link (see blob.h). */
#define _GNU_SOURCE /* renameat2 */
#include "store/blob.h"
#include "store/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"

#define OID_DEPTH 8

int store__lmdb_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap)
{
    return zblob_path(s->blob_dir, ZBLOB_BUSHY, oid, tid, buf, cap);
}

static int no_blob_folder(store *s, zerr *err)
{
    return zerr_set(err, ZE_NOTFOUND, "%s does not exist", s->blob_dir);
}

int store__lmdb_blob_tmpfile(store *s, char *buf, size_t cap, int *fd, zerr *err)
{
    char name[16];
    size_t n = strlen(s->blob_tmp);
    if (s->tmp_fd < 0)
        return zerr_set(err, ZE_READONLY, "%s: no temporary files in a read-only store",
                        s->blob_tmp);
    if (n + 1 + sizeof name > cap)
        return zerr_set(err, ZE_TOOBIG, "blob temp name does not fit %zu bytes", cap);
    int f = zfile_mktemp_at(s->tmp_fd, s->blob_tmp, "blob", name, sizeof name, err);
    if (f < 0)
        return f;
    snprintf(buf, cap, "%s/%s", s->blob_tmp, name);
    *fd = f;
    return 0;
}

/* ---- a file named by its path ------------------------------------------- */

/* The folder holding a file given by path, open. Below the blob folder every
 * folder is reached name by name, never through a link; a path elsewhere
 * (a caller's own file) is taken as it is. */
typedef struct blob_src {
    int dfd;
    char dir[PATH_MAX];     /* the folder's path, for messages */
    const char *name;       /* the file's name in it (in the caller's path) */
} blob_src;

static int src_open(store *s, const char *path, blob_src *src, zerr *err)
{
    const char *slash = strrchr(path, '/');
    size_t n = strlen(s->blob_dir), dlen = slash ? (size_t)(slash - path) : 0;
    if (!slash || !slash[1] || dlen >= sizeof src->dir)
        return zerr_set(err, ZE_INVAL, "blob file %s: not a file path", path);
    memcpy(src->dir, path, dlen);
    src->dir[dlen] = '\0';
    src->name = slash + 1;
    if (strncmp(path, s->blob_dir, n) || path[n] != '/') {
        src->dfd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return src->dfd < 0 ? zerr_sys(err, errno, "open folder %s", src->dir) : 0;
    }
    if (s->blob_fd < 0)
        return no_blob_folder(s, err);
    /* tmp/ is the one open at start, where store_blob_tmpfile made the file. */
    const char *rel = dlen > n ? src->dir + n + 1 : "";
    int from = s->tmp_fd >= 0 && !strcmp(rel, "tmp") ? s->tmp_fd : s->blob_fd;
    src->dfd = zfile_open_dir_at(from, s->blob_dir, from == s->blob_fd ? rel : "", 0, 0, err);
    if (src->dfd == ZE_NOTFOUND)   /* name the file, as a missing file would be */
        return zerr_set(err, ZE_NOTFOUND, "%s does not exist", path);
    return src->dfd < 0 ? src->dfd : 0;
}

/* oid's folder, open (made when create), and its path for messages. */
static int oid_dir_open(store *s, uint64_t oid, int create, char *dir, size_t cap, zerr *err)
{
    if (zblob_oid_dir(s->blob_dir, ZBLOB_BUSHY, oid, dir, cap))
        return zerr_set(err, ZE_TOOBIG, "blob path too long");
    if (s->blob_fd < 0)
        return no_blob_folder(s, err);
    return zblob_oid_dir_open(s->blob_fd, s->blob_dir, ZBLOB_BUSHY, oid,
                              create ? ZFILE_CREATE : 0, err);
}

int store__blob_check(store *s, const char *src, int linked_ok, uint64_t oid, zerr *err)
{
    blob_src in;
    char dir[PATH_MAX];
    int rc = src_open(s, src, &in, err);
    if (rc)
        return rc;
    int fd = zfile_open_plain_at(in.dfd, in.dir, in.name, O_RDONLY,
                                 linked_ok ? ZFILE_LINKED_OK : 0, NULL, err);
    close(in.dfd);
    if (fd < 0)
        return fd;
    close(fd);
    int dfd = oid_dir_open(s, oid, 1, dir, sizeof dir, err);
    if (dfd < 0)
        return dfd;
    close(dfd);
    return 0;
}

void store__blob_discard(store *s, const char *src, int linked_ok)
{
    blob_src in;
    if (src_open(s, src, &in, NULL))
        return;
    zfile_unlink_plain_at(in.dfd, in.dir, in.name, linked_ok ? ZFILE_LINKED_OK : 0, NULL);
    close(in.dfd);
}

int store__lmdb_blob_discard(store *s, const char *path)
{
    blob_src in;
    int rc = src_open(s, path, &in, NULL);
    if (!rc) {
        rc = zfile_unlink_plain_at(in.dfd, in.dir, in.name, 0, NULL);
        close(in.dfd);
    }
    return rc;
}

/* ---- installing ---------------------------------------------------------- */

/* rename without replacing what is at the target; -1 with errno. */
static int move_at(int sdfd, const char *sname, int ddfd, const char *dname)
{
    if (renameat2(sdfd, sname, ddfd, dname, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* A file system without RENAME_NOREPLACE (NFS): look first. */
    struct stat st;
    if (fstatat(ddfd, dname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(sdfd, sname, ddfd, dname);
}

/* Move in (open as fd, with st) as name in folder ddfd; a plain file left at
 * name (a failed commit's) is replaced, anything else is refused. */
static int move_in(store *s, blob_src *in, int fd, const struct stat *st, int ddfd,
                   const char *dir, const char *name, int zflags, zerr *err)
{
    int rc = move_at(in->dfd, in->name, ddfd, name);
    if (rc < 0 && errno == EEXIST) {
        if ((rc = zfile_unlink_plain_at(ddfd, dir, name, 0, err)))
            return rc;
        rc = move_at(in->dfd, in->name, ddfd, name);
    }
    if (rc < 0 && errno == EXDEV) {
        int flags = s->opt.no_sync ? 0 : ZFILE_SYNC;
        if ((rc = zfile_copy_fd_at(fd, ddfd, dir, name, 0444, flags, err)))
            return rc;
        zfile_unlink_plain_at(in->dfd, in->dir, in->name, zflags, NULL);
        return 0;
    }
    if (rc < 0)
        return zerr_sys(err, errno, "move blob %s/%s to %s/%s", in->dir, in->name, dir, name);
    /* What was checked must be what was moved: a name swapped for a link
     * meanwhile is left where it now is, and the commit fails. */
    struct stat now;
    if (fstatat(ddfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st->st_dev ||
        now.st_ino != st->st_ino)
        return zerr_set(err, ZE_CORRUPT, "blob file %s/%s was replaced while it was moved to "
                        "%s/%s (refused)", in->dir, in->name, dir, name);
    return 0;
}

static int install(store *s, blob_src *in, int linked_ok, uint64_t oid, uint64_t tid,
                   zerr *err)
{
    char dir[PATH_MAX], name[ZBLOB_NAME_MAX];
    struct stat st;
    zblob_file_name(tid, name);
    int ddfd = oid_dir_open(s, oid, 1, dir, sizeof dir, err);
    if (ddfd < 0)
        return ddfd;
    int zflags = linked_ok ? ZFILE_LINKED_OK : 0;
    int fd = zfile_open_plain_at(in->dfd, in->dir, in->name, O_RDONLY, zflags, &st, err);
    int rc = fd < 0 ? fd : 0;
    /* The mode goes on the file checked, never through a name; a file of
     * another user (a shared folder's client) keeps the mode it has. */
    if (!rc && fchmod(fd, 0444) < 0 && errno != EPERM)
        rc = zerr_sys(err, errno, "chmod %s/%s", in->dir, in->name);
    /* The data must be on disk before the name is: a crash may leave a
     * complete orphan, never a committed record with a short file. */
    if (!rc && !s->opt.no_sync && fsync(fd) < 0)
        rc = zerr_sys(err, errno, "fsync %s/%s", in->dir, in->name);
    if (!rc)
        rc = move_in(s, in, fd, &st, ddfd, dir, name, zflags, err);
    if (!rc && !s->opt.no_sync && fsync(ddfd) < 0)
        rc = zerr_sys(err, errno, "fsync the folder %s", dir);
    if (fd >= 0)
        close(fd);
    close(ddfd);
    return rc;
}

int store__blob_place(store *s, const char *src, int linked_ok, uint64_t oid, uint64_t tid,
                      zerr *err)
{
    blob_src in;
    int rc = src_open(s, src, &in, err);
    if (rc)
        return rc;
    rc = install(s, &in, linked_ok, oid, tid, err);
    close(in.dfd);
    return rc;
}

int store__blob_copy(store *s, uint64_t oid, uint64_t src_tid, uint64_t dst_tid, zerr *err)
{
    char dir[PATH_MAX], from[ZBLOB_NAME_MAX], to[ZBLOB_NAME_MAX];
    zblob_file_name(src_tid, from);
    zblob_file_name(dst_tid, to);
    int dfd = oid_dir_open(s, oid, 0, dir, sizeof dir, err);
    if (dfd < 0)
        return dfd;
    int fd = zfile_open_plain_at(dfd, dir, from, O_RDONLY, 0, NULL, err);
    int rc = fd < 0 ? fd : zfile_unlink_plain_at(dfd, dir, to, 0, err);
    if (!rc)
        rc = zfile_copy_fd_at(fd, dfd, dir, to, 0444, s->opt.no_sync ? 0 : ZFILE_SYNC, err);
    if (!rc && !s->opt.no_sync && fsync(dfd) < 0)
        rc = zerr_sys(err, errno, "fsync the folder %s", dir);
    if (fd >= 0)
        close(fd);
    close(dfd);
    return rc;
}

/* ---- reading and removing committed files ------------------------------- */

int store__lmdb_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    char dir[PATH_MAX], name[ZBLOB_NAME_MAX];
    zblob_file_name(tid, name);
    int dfd = oid_dir_open(s, oid, 0, dir, sizeof dir, err);
    if (dfd == ZE_NOTFOUND)
        return zerr_set(err, ZE_NOTFOUND, "%s/%s does not exist", dir, name);
    if (dfd < 0)
        return dfd;
    int fd = zfile_open_plain_at(dfd, dir, name, O_RDONLY, 0, NULL, err);
    close(dfd);
    return fd;
}

int store__blob_remove(store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    char dir[PATH_MAX], name[ZBLOB_NAME_MAX];
    zblob_file_name(tid, name);
    int dfd = oid_dir_open(s, oid, 0, dir, sizeof dir, err);
    if (dfd == ZE_NOTFOUND) {
        zerr_clear(err);
        return 0;
    }
    if (dfd < 0)
        return dfd;
    int rc = zfile_unlink_plain_at(dfd, dir, name, 0, err);
    close(dfd);
    return rc;
}

void store__blob_remove_dir(store *s, uint64_t oid)
{
    char rel[64];
    if (s->blob_fd < 0 || zblob_oid_rel(ZBLOB_BUSHY, oid, rel, sizeof rel))
        return;
    char *last = strrchr(rel, '/');
    *last = '\0';
    int dfd = zfile_open_dir_at(s->blob_fd, s->blob_dir, rel, 0, 0, NULL);
    if (dfd >= 0) {
        unlinkat(dfd, last + 1, AT_REMOVEDIR);   /* a link there is not a folder: it stays */
        close(dfd);
    }
}

/* ---- start-up: layout marker, tmp/ and orphans -------------------------- */

/* ZODB's rule for a folder without a marker: empty (but for dot files and
 * tmp/) is bushy, anything else is a legacy lawn. */
static int unmarked_is_empty(store *s)
{
    DIR *d = opendir(s->blob_dir);
    if (!d)
        return 1;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = e->d_name[0] == '.' || !strcmp(e->d_name, "tmp");
    closedir(d);
    return empty;
}

static int check_layout(store *s, zerr *err)
{
    zblob_layout layout;
    int rc = zblob_layout_read(s->blob_dir, &layout, err);
    if (rc == ZE_NOTFOUND) {
        if (!unmarked_is_empty(s))
            return zerr_set(err, ZE_CORRUPT, "%s has files but no .layout marker (a "
                            "'lawn' blob folder?); zeolite uses 'bushy'", s->blob_dir);
        zerr_clear(err);
        return s->opt.read_only ? 0 : zblob_layout_write(s->blob_dir, ZBLOB_BUSHY, err);
    }
    if (rc == ZE_INVAL) {   /* the message names the marker and its text */
        if (err)
            err->code = ZE_CORRUPT;
        return ZE_CORRUPT;
    }
    if (!rc && layout != ZBLOB_BUSHY)
        return zerr_set(err, ZE_CORRUPT, "%s/.layout says '%s', zeolite uses 'bushy'",
                        s->blob_dir, zblob_layout_name(layout));
    return rc;
}

/* A blob file whose record is absent or has no blob flag is an orphan. */
static int has_record(st_view *v, uint64_t oid, uint64_t tid)
{
    st_ent e;
    zerr ignored;
    return store__view_get(v, oid, tid, &e, &ignored) == 0 && (e.flags & ST_RF_BLOB);
}

static int parse_hex(const char *name, uint64_t *v, size_t maxdigits, const char *suffix)
{
    if (name[0] != '0' || name[1] != 'x')
        return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(name + 2, &end, 16);
    if (errno || end == name + 2 || (size_t)(end - name - 2) > maxdigits || strcmp(end, suffix))
        return 0;
    *v = x;
    return 1;
}

/* The entries of the folder open as dfd, each passed to fn. */
typedef void (*entry_fn)(store *s, int dfd, const char *name, void *ud);

static void each_entry(store *s, int dfd, entry_fn fn, void *ud)
{
    /* A descriptor of its own: readdir moves its offset. */
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            fn(s, dirfd(d), e->d_name, ud);
    closedir(d);
}

typedef struct orphan_walk {
    st_view *view;
    int depth;
    uint64_t oid;
} orphan_walk;

static void orphan_entry(store *s, int dfd, const char *name, void *ud)
{
    orphan_walk *w = ud, in = *w;
    uint64_t v;
    if (w->depth < OID_DEPTH && parse_hex(name, &v, 2, "")) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        in.depth++;
        in.oid = (w->oid << 8) | v;
        if (fd >= 0) {   /* a link is not walked into */
            each_entry(s, fd, orphan_entry, &in);
            close(fd);
        }
    } else if (w->depth == OID_DEPTH && parse_hex(name, &v, 16, ".blob") &&
               !has_record(w->view, w->oid, v)) {
        zfile_unlink_plain_at(dfd, s->blob_dir, name, 0, NULL);
    }
}

/* Remove the plain files of tmp/: the temporary files of a run that ended. */
static void tmp_entry(store *s, int dfd, const char *name, void *ud)
{
    (void)ud;
    zfile_unlink_plain_at(dfd, s->blob_tmp, name, 0, NULL);
}

static int open_folders(store *s, zerr *err)
{
    s->blob_fd = open(s->blob_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->blob_fd < 0)
        return s->opt.read_only && errno == ENOENT
                   ? 0 : zerr_sys(err, errno, "open the blob folder %s", s->blob_dir);
    if (s->opt.read_only)
        return 0;
    s->tmp_fd = zfile_open_dir_at(s->blob_fd, s->blob_dir, "tmp", ZFILE_CREATE, 0777, err);
    return s->tmp_fd < 0 ? s->tmp_fd : 0;
}

int store__blob_init(store *s, zerr *err)
{
    int rc = s->opt.read_only ? 0 : zfile_mkdirs(s->blob_dir, 0777, err);
    if (rc || (rc = open_folders(s, err)) || (rc = check_layout(s, err)))
        return rc;
    if (s->opt.read_only)
        return 0;
    /* Another process's temp files are not ours to clean. */
    if (!s->opt.exclusive && store_is_locked(s->dir))
        return 0;
    each_entry(s, s->tmp_fd, tmp_entry, NULL);   /* a leftover there harms nothing */
    st_view view;
    if ((rc = store__view_begin(s, &view, err)))
        return rc;
    orphan_walk w = {&view, 0, 0};
    each_entry(s, s->blob_fd, orphan_entry, &w);
    store__view_end(&view);
    return 0;
}

void store__blob_close(store *s)
{
    if (s->tmp_fd >= 0)
        close(s->tmp_fd);
    if (s->blob_fd >= 0)
        close(s->blob_fd);
    s->tmp_fd = s->blob_fd = -1;
}
