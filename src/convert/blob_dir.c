/* blob_dir.c: ZODB blob directories (spec section 12) and file copies. */
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

static int dir_has_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.';
    closedir(d);
    return found;
}

int zfs_blob_layout(const char *dir, zfs_layout *out, zerr *err)
{
    char path[4096], text[64];
    snprintf(path, sizeof path, "%s/.layout", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            return zerr_sys(err, errno, "%s", path);
        /* ZODB's rule for unmarked directories: empty is bushy, legacy is lawn */
        *out = dir_has_entries(dir) ? ZFS_LAYOUT_LAWN : ZFS_LAYOUT_BUSHY;
        return 0;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *s = text, *e = text + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (!strcmp(s, "bushy"))
        *out = ZFS_LAYOUT_BUSHY;
    else if (!strcmp(s, "lawn"))
        *out = ZFS_LAYOUT_LAWN;
    else
        return zerr_set(err, ZE_INVAL, "%s: unknown blob directory layout '%.40s' "
                        "(expected bushy or lawn)", path, s);
    return 0;
}

/* ZODB's utils.oid_repr/tid_repr: 0x + hex without leading zero bytes. */
static void id_repr(uint64_t v, char *buf)
{
    int shift = 56;
    while (shift > 0 && ((v >> shift) & 0xff) == 0)
        shift -= 8;
    char *p = buf + sprintf(buf, "0x");
    for (; shift >= 0; shift -= 8)
        p += sprintf(p, "%02x", (unsigned)((v >> shift) & 0xff));
}

int zfs_blob_path(const char *dir, zfs_layout layout, uint64_t oid, uint64_t tid,
                  char *buf, size_t cap)
{
    char tid_s[20], oid_s[20], sub[48];
    int n;
    id_repr(tid, tid_s);
    if (layout == ZFS_LAYOUT_LAWN) {
        id_repr(oid, oid_s);
        n = snprintf(buf, cap, "%s/%s/%s.blob", dir, oid_s, tid_s);
    } else {
        for (int i = 0; i < 8; i++)
            sprintf(sub + 5 * i, "/0x%02x", (unsigned)((oid >> (56 - 8 * i)) & 0xff));
        n = snprintf(buf, cap, "%s%s/%s.blob", dir, sub, tid_s);
    }
    return n < 0 || (size_t)n >= cap ? ZE_TOOBIG : 0;
}

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
