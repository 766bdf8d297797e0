/* zfile.c: mkdir -p, copy, rm -rf and fsync (see zfile.h). */
#define _GNU_SOURCE /* copy_file_range */
#include "common/zfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_path(char *buf, const char *path, zerr *err)
{
    size_t n = strlen(path);
    if (n >= PATH_MAX)
        return zerr_set(err, ZE_TOOBIG, "path too long: %.80s...", path);
    memcpy(buf, path, n + 1);
    return 0;
}

/* mkdir of one level; an existing folder (or link to one) is fine. */
static int make_one(const char *path, mode_t mode, zerr *err)
{
    struct stat st;
    if (mkdir(path, mode) == 0)
        return 0;
    int e = errno;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (e == EEXIST || e == ENOTDIR)
        return zerr_set(err, ZE_EXISTS, "create folder %s: something that is not a folder "
                        "is in the way", path);
    return zerr_sys(err, e, "create folder %s", path);
}

int zfile_mkdirs(const char *path, mode_t mode, zerr *err)
{
    char buf[PATH_MAX];
    int rc = copy_path(buf, path, err);
    for (char *p = buf + 1; !rc && *p; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        rc = make_one(buf, mode, err);
        *p = '/';
    }
    return rc ? rc : make_one(buf, mode, err);
}

int zfile_mkdirs_parent(const char *path, mode_t mode, zerr *err)
{
    char buf[PATH_MAX];
    int rc = copy_path(buf, path, err);
    char *slash = rc ? NULL : strrchr(buf, '/');
    if (!slash || slash == buf)
        return rc;
    *slash = '\0';
    return zfile_mkdirs(buf, mode, err);
}

/* Write all n bytes, through EINTR and short writes. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The bytes of in after its offset into out: copy_file_range (reflinks and
 * in-kernel copies), else read and write. -1 with errno on failure. */
static int copy_fd(int in, int out)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n == 0)
            return 0;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
            return -1;
        break;   /* not between these files: the offsets are where it stopped */
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
        if (write_all(out, buf, (size_t)n))
            return -1;
    }
}

/* link(2) errors after which a copy can still succeed. */
static int link_refused(int e)
{
    return e == EXDEV || e == EPERM || e == EMLINK || e == EOPNOTSUPP || e == ENOSYS ||
           e == ENOENT;   /* a missing src: the copy says which side is missing */
}

int zfile_copy(const char *src, const char *dst, mode_t mode, int flags, zerr *err)
{
    if (flags & ZFILE_LINK) {
        if (linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno == EEXIST)
            return zerr_set(err, ZE_EXISTS, "link %s: %s exists", src, dst);
        if (!link_refused(errno))
            return zerr_sys(err, errno, "link %s to %s", src, dst);
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? zerr_set(err, ZE_NOTFOUND, "copy %s: no such file", src)
                               : zerr_sys(err, errno, "copy %s: open", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out < 0) {
        int e = errno;
        close(in);
        return e == EEXIST ? zerr_set(err, ZE_EXISTS, "copy %s: %s exists", src, dst)
                           : zerr_sys(err, e, "copy %s: create %s", src, dst);
    }
    int rc = copy_fd(in, out) ? zerr_sys(err, errno, "copy %s to %s", src, dst) : 0;
    close(in);
    if (close(out) != 0 && !rc)
        rc = zerr_sys(err, errno, "copy %s: close %s", src, dst);
    if (rc)
        unlink(dst);
    return rc;
}

/* ---- rm -rf ------------------------------------------------------------- */

typedef struct rm_walk {
    char path[PATH_MAX];   /* of the folder being emptied, for messages */
    zerr *err;
    int rc;                /* the first error */
    unsigned fails;        /* entries that could not be removed */
} rm_walk;

static void rm_fail(rm_walk *w, int e, const char *name)
{
    if (!w->rc)
        w->rc = zerr_sys(w->err, e, "remove %s/%s", w->path, name);
    w->fails++;
}

static void rm_at(rm_walk *w, int dfd, const char *name);

/* Remove the entries of the folder open as fd (closed here). Entries are
 * read again after a pass that removed some, since readdir need not return
 * every entry of a folder that changes under it. */
static void empty_fd(rm_walk *w, int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        rm_fail(w, errno, ".");
        close(fd);
        return;
    }
    for (int removed = 1; removed;) {
        removed = 0;
        unsigned before = w->fails;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            rm_at(w, dirfd(d), e->d_name);
            removed = 1;
        }
        if (w->fails != before)
            break;   /* something stays: another pass would only fail again */
        rewinddir(d);
    }
    closedir(d);
}

/* Remove name in folder dfd: unlink it, or empty and rmdir a folder. */
static void rm_at(rm_walk *w, int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return;
    if (errno != EISDIR && errno != EPERM) {
        rm_fail(w, errno, name);
        return;
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            rm_fail(w, errno, name);
        return;
    }
    size_t len = strlen(w->path);
    int fits = len + 1 + strlen(name) < sizeof w->path;
    if (fits)
        snprintf(w->path + len, sizeof w->path - len, "/%s", name);
    empty_fd(w, fd);
    w->path[len] = '\0';
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rm_fail(w, errno, name);
}

static int rm_begin(rm_walk *w, const char *path, zerr *err)
{
    w->err = err;
    w->rc = 0;
    w->fails = 0;
    return copy_path(w->path, path, err);
}

int zfile_rm_rf(const char *path, zerr *err)
{
    rm_walk w;
    int rc = rm_begin(&w, path, err);
    if (rc)
        return rc;
    /* rm_at works on a name in its folder: split path into the two. */
    size_t n = strlen(w.path);
    while (n > 1 && w.path[n - 1] == '/')
        w.path[--n] = '\0';
    char *slash = strrchr(w.path, '/');
    char name[NAME_MAX + 1];
    const char *base = slash ? slash + 1 : w.path;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || strlen(base) > NAME_MAX)
        return zerr_set(err, ZE_INVAL, "rm -rf %s: not a name that can be removed", path);
    strcpy(name, base);
    const char *parent = w.path;
    if (!slash) {
        parent = strcpy(w.path, ".");
    } else if (slash == w.path) {
        parent = "/";
        w.path[0] = '\0';   /* messages say "/x", not "//x" */
    } else {
        *slash = '\0';
    }
    int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)   /* no folder, so nothing in it to remove */
        return errno == ENOENT || errno == ENOTDIR ? 0 : zerr_sys(err, errno, "rm -rf %s", path);
    rm_at(&w, dfd, name);
    close(dfd);
    return w.rc;
}

int zfile_empty_dir(const char *path, zerr *err)
{
    rm_walk w;
    int rc = rm_begin(&w, path, err);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? zerr_set(err, ZE_NOTFOUND, "%s does not exist", path)
               : errno == ENOTDIR ? zerr_set(err, ZE_EXISTS, "%s is not a folder", path)
                                  : zerr_sys(err, errno, "open %s", path);
    empty_fd(&w, fd);
    return w.rc;
}

int zfile_dir_is_empty(const char *path, zerr *err)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? zerr_set(err, ZE_NOTFOUND, "%s does not exist", path)
               : errno == ENOTDIR ? zerr_set(err, ZE_EXISTS, "%s is not a folder", path)
                                  : zerr_sys(err, errno, "open %s", path);
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* ---- folders others may write into -------------------------------------- */

static int refuse_link(zerr *err, const char *shown, const char *name)
{
    return zerr_set(err, ZE_CORRUPT, "%s/%s is a symbolic link (refused: links there are "
                    "never followed)", shown, name);
}

/* ZE_CORRUPT with the reason st is not plain, or 0 when it is. */
static int check_plain(const struct stat *st, int flags, const char *shown, const char *name,
                       zerr *err)
{
    if (S_ISLNK(st->st_mode))
        return refuse_link(err, shown, name);
    if (!S_ISREG(st->st_mode))
        return zerr_set(err, ZE_CORRUPT, "%s/%s is not a regular file", shown, name);
    if (!(flags & ZFILE_LINKED_OK) && !zfile_is_plain(st))
        return zerr_set(err, ZE_CORRUPT, "%s/%s has %lu hard links (refused: it may be a "
                        "file from elsewhere)", shown, name, (unsigned long)st->st_nlink);
    return 0;
}

int zfile_is_plain(const struct stat *st)
{
    mode_t m = st->st_mode;
    return S_ISREG(m) && (st->st_nlink == 1 || ((m & 0444) == 0444 && !(m & 0222)));
}

/* Open (or make, then open) the folder name in dfd; path names it, up to
 * len bytes of it, in messages. */
static int dir_step(int dfd, const char *name, int flags, mode_t mode, const char *shown,
                    const char *path, int len, zerr *err)
{
    const int of = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dfd, name, of);
    if (fd < 0 && errno == ENOENT && (flags & ZFILE_CREATE)) {
        if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST)
            return zerr_sys(err, errno, "create folder %s/%.*s", shown, len, path);
        fd = openat(dfd, name, of);
    }
    if (fd >= 0)
        return fd;
    int e = errno;
    struct stat st;
    if (e == ENOENT)
        return zerr_set(err, ZE_NOTFOUND, "%s/%.*s does not exist", shown, len, path);
    if (e != ELOOP && e != ENOTDIR)
        return zerr_sys(err, e, "open folder %s/%.*s", shown, len, path);
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return zerr_set(err, ZE_CORRUPT, "%s/%.*s is a symbolic link (refused: links there "
                        "are never followed)", shown, len, path);
    return zerr_set(err, ZE_CORRUPT, "%s/%.*s is not a folder", shown, len, path);
}

int zfile_open_dir_at(int dfd, const char *shown, const char *rel, int flags, mode_t mode,
                      zerr *err)
{
    char name[NAME_MAX + 1];
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return zerr_sys(err, errno, "open folder %s", shown);
    for (const char *p = rel; *p;) {
        p += strspn(p, "/");
        size_t n = strcspn(p, "/");
        int rc = 0;
        if (n > NAME_MAX)
            rc = zerr_set(err, ZE_TOOBIG, "%s/%s: a name is too long", shown, rel);
        else if (n == 2 && !memcmp(p, "..", 2))
            rc = zerr_set(err, ZE_INVAL, "%s/%s: '..' is refused", shown, rel);
        if (rc) {
            close(fd);
            return rc;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        if (!n || !strcmp(name, "."))
            continue;
        int next = dir_step(fd, name, flags, mode, shown, rel, (int)(p - rel), err);
        close(fd);
        if (next < 0)
            return next;
        fd = next;
    }
    return fd;
}

int zfile_open_plain_at(int dfd, const char *shown, const char *name, int oflags, int flags,
                        struct stat *st, zerr *err)
{
    if (oflags & (O_CREAT | O_TRUNC))
        return zerr_set(err, ZE_INVAL, "open %s/%s: O_CREAT and O_TRUNC are refused", shown,
                        name);
    /* O_NONBLOCK: a FIFO planted there must not hang the open. */
    int fd = openat(dfd, name, oflags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return zerr_set(err, ZE_NOTFOUND, "%s/%s does not exist", shown, name);
        if (e == ELOOP)
            return refuse_link(err, shown, name);
        if (e == EISDIR || e == ENXIO)
            return zerr_set(err, ZE_CORRUPT, "%s/%s is not a regular file", shown, name);
        return zerr_sys(err, e, "open %s/%s", shown, name);
    }
    struct stat own;
    int rc = fstat(fd, &own) < 0 ? zerr_sys(err, errno, "stat %s/%s", shown, name)
                                 : check_plain(&own, flags, shown, name, err);
    if (!rc && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        rc = zerr_sys(err, errno, "open %s/%s", shown, name);
    if (rc) {
        close(fd);
        return rc;
    }
    if (st)
        *st = own;
    return fd;
}

int zfile_unlink_plain_at(int dfd, const char *shown, const char *name, int flags, zerr *err)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : zerr_sys(err, errno, "stat %s/%s", shown, name);
    int rc = check_plain(&st, flags, shown, name, err);
    if (!rc && unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        rc = zerr_sys(err, errno, "remove %s/%s", shown, name);
    return rc;
}

int zfile_mktemp_at(int dfd, const char *shown, const char *prefix, char *name, size_t cap,
                    zerr *err)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(prefix);
    if (n + 7 > cap)
        return zerr_set(err, ZE_TOOBIG, "a temporary name in %s does not fit %zu bytes", shown,
                        cap);
    memcpy(name, prefix, n);
    for (int tries = 0; tries < 100; tries++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return zerr_sys(err, errno, "a temporary name in %s", shown);
        for (int i = 0; i < 6; i++)
            name[n + (size_t)i] = set[r[i] % (sizeof set - 1)];
        name[n + 6] = '\0';
        int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return zerr_sys(err, errno, "create a temporary file in %s", shown);
    }
    return zerr_set(err, ZE_IO, "create a temporary file in %s: every name tried exists", shown);
}

/* Whether name in dfd still is the file open as fd. */
static int same_file_at(int dfd, const char *name, int fd)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int zfile_copy_fd_at(int in, int dfd, const char *shown, const char *name, mode_t mode,
                     int flags, zerr *err)
{
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (out < 0)
        return errno == EEXIST ? zerr_set(err, ZE_EXISTS, "copy to %s/%s: it exists", shown, name)
                               : zerr_sys(err, errno, "create %s/%s", shown, name);
    int rc = 0;
    if (lseek(in, 0, SEEK_SET) < 0 || copy_fd(in, out))
        rc = zerr_sys(err, errno, "copy to %s/%s", shown, name);
    else if ((flags & ZFILE_SYNC) && fsync(out) < 0)
        rc = zerr_sys(err, errno, "fsync %s/%s", shown, name);
    /* Only what this call made goes, not what replaced it meanwhile. */
    int mine = same_file_at(dfd, name, out);
    if (close(out) != 0 && !rc)
        rc = zerr_sys(err, errno, "copy to %s/%s: close", shown, name);
    if (rc && mine)
        unlinkat(dfd, name, 0);
    return rc;
}

/* ---- fsync -------------------------------------------------------------- */

static int fsync_open(const char *path, int flags, const char *what, zerr *err)
{
    int fd = open(path, flags | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return zerr_sys(err, errno, "fsync %s%s: open", what, path);
    int rc = fsync(fd) < 0 ? zerr_sys(err, errno, "fsync %s%s", what, path) : 0;
    close(fd);
    return rc;
}

int zfile_fsync(const char *path, zerr *err)
{
    return fsync_open(path, 0, "", err);
}

int zfile_fsync_parent(const char *path, zerr *err)
{
    char buf[PATH_MAX];
    int rc = copy_path(buf, path, err);
    if (rc)
        return rc;
    char *slash = strrchr(buf, '/');
    if (!slash)
        strcpy(buf, ".");
    else if (slash == buf)
        buf[1] = '\0';   /* "/x" is in "/" */
    else
        *slash = '\0';
    return fsync_open(buf, O_DIRECTORY, "the folder ", err);
}
