/* blob_dir.c: blob records and file copies for import and export. */
#define _GNU_SOURCE
#include "convert/convert.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int zfs_is_blob_record(const uint8_t *p, size_t len)
{
    static const char cls[] = "cZODB.blob\nBlob\n";
    size_t i = 0;
    if (len >= 2 && p[0] == 0x80)
        i = 2;
    if (i < len && p[i] == '(')   /* (class, args) form */
        i++;
    return len - i >= sizeof cls - 1 && !memcmp(p + i, cls, sizeof cls - 1);
}

/* mkdir -p of the directory part of path. */
static int make_parents(const char *path, zerr *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return zerr_set(err, ZE_TOOBIG, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return zerr_sys(err, errno, "mkdir %s", buf);
        *s = '/';
    }
    return 0;
}

static int copy_fd(int in, int out, const char *src, zerr *err)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
            return zerr_sys(err, errno, "copy %s", src);
        break;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return zerr_sys(err, errno, "read %s", src);
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return zerr_sys(err, errno, "write copy of %s", src);
            off += w;
        }
    }
}

int zfs_copy_file(const char *src, const char *dst, int link_it, zerr *err)
{
    int rc = make_parents(dst, err);
    if (rc)
        return rc;
    if (link_it) {
        if (link(src, dst) == 0)
            return 0;
        if (errno != EXDEV && errno != EPERM)
            return zerr_sys(err, errno, "link %s -> %s", src, dst);
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return zerr_sys(err, errno, "blob file %s", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (out < 0) {
        rc = zerr_sys(err, errno, "%s", dst);
        close(in);
        return rc;
    }
    rc = copy_fd(in, out, src, err);
    close(in);
    if (close(out) != 0 && !rc)
        rc = zerr_sys(err, errno, "close %s", dst);
    if (rc)
        unlink(dst);
    return rc;
}
