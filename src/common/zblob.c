/* zblob.c: ZODB's blob folder layouts (see zblob.h). */
#include "common/zblob.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/zfile.h"

int zblob_repr(uint64_t id, char buf[ZBLOB_REPR_MAX])
{
    int bytes = 8;
    while (bytes > 1 && !(id >> (8 * (bytes - 1))))
        bytes--;
    return snprintf(buf, ZBLOB_REPR_MAX, "0x%0*llx", 2 * bytes, (unsigned long long)id);
}

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap ? 0 : ZE_TOOBIG;
}

/* Room for the longest oid folder: eight "0xNN" joined by '/'. */
#define OID_REL_MAX (8 * 5)

int zblob_oid_rel(zblob_layout layout, uint64_t oid, char *buf, size_t cap)
{
    if (layout == ZBLOB_LAWN) {
        char repr[ZBLOB_REPR_MAX];
        zblob_repr(oid, repr);
        return fits(snprintf(buf, cap, "%s", repr), cap);
    }
    char sub[OID_REL_MAX];
    int n = 0;
    for (int i = 0; i < 8; i++)
        n += snprintf(sub + n, sizeof sub - (size_t)n, "%s0x%02x", i ? "/" : "",
                      (unsigned)(oid >> (56 - 8 * i)) & 0xff);
    return fits(snprintf(buf, cap, "%s", sub), cap);
}

int zblob_oid_dir(const char *dir, zblob_layout layout, uint64_t oid, char *buf, size_t cap)
{
    char rel[OID_REL_MAX];
    zblob_oid_rel(layout, oid, rel, sizeof rel);
    return fits(snprintf(buf, cap, "%s/%s", dir, rel), cap);
}

int zblob_file_name(uint64_t tid, char buf[ZBLOB_NAME_MAX])
{
    char repr[ZBLOB_REPR_MAX];
    zblob_repr(tid, repr);
    return snprintf(buf, ZBLOB_NAME_MAX, "%s.blob", repr);
}

int zblob_oid_dir_open(int rootfd, const char *shown, zblob_layout layout, uint64_t oid,
                       int flags, zerr *err)
{
    char rel[OID_REL_MAX];
    zblob_oid_rel(layout, oid, rel, sizeof rel);
    return zfile_open_dir_at(rootfd, shown, rel, flags, 0777, err);
}

int zblob_path(const char *dir, zblob_layout layout, uint64_t oid, uint64_t tid, char *buf,
               size_t cap)
{
    int rc = zblob_oid_dir(dir, layout, oid, buf, cap);
    if (rc)
        return rc;
    size_t n = strlen(buf);
    char repr[ZBLOB_REPR_MAX];
    zblob_repr(tid, repr);
    return fits(snprintf(buf + n, cap - n, "/%s.blob", repr), cap - n);
}

const char *zblob_layout_name(zblob_layout layout)
{
    return layout == ZBLOB_LAWN ? "lawn" : "bushy";
}

/* The marker of dir, open (O_RDONLY or O_WRONLY) as a regular file: one to
 * write must be plain, one to read may have other links (a backup's). */
static int open_marker(const char *dir, int oflags, zerr *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR
                   ? zerr_set(err, ZE_NOTFOUND, "%s: no layout marker", dir)
                   : zerr_sys(err, errno, "%s", dir);
    int writing = (oflags & O_ACCMODE) != O_RDONLY;
    int fd = zfile_open_plain_at(dfd, dir, ".layout", oflags, writing ? 0 : ZFILE_LINKED_OK,
                                 NULL, err);
    if (fd == ZE_NOTFOUND && writing) {
        zerr_clear(err);
        fd = openat(dfd, ".layout", oflags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0)
            fd = zerr_sys(err, errno, "create %s/.layout", dir);
    } else if (fd == ZE_NOTFOUND) {
        zerr_set(err, ZE_NOTFOUND, "%s: no layout marker", dir);
    }
    close(dfd);
    return fd;
}

int zblob_layout_read(const char *dir, zblob_layout *out, zerr *err)
{
    char text[64];
    int fd = open_marker(dir, O_RDONLY, err);
    if (fd < 0)
        return fd;
    ssize_t n;
    do
        n = read(fd, text, sizeof text - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return zerr_sys(err, errno, "read %s/.layout", dir);
    text[n] = 0;
    char *s = text, *e = text + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (!strcmp(s, "bushy"))
        *out = ZBLOB_BUSHY;
    else if (!strcmp(s, "lawn"))
        *out = ZBLOB_LAWN;
    else
        return zerr_set(err, ZE_INVAL, "%s/.layout: unknown blob folder layout '%.40s' "
                        "(expected bushy or lawn)", dir, s);
    return 0;
}

/* 1 when dir has an entry whose name does not start with a dot. */
static int has_visible_entries(const char *dir)
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

int zblob_layout_select(const char *dir, zblob_layout *out, zerr *err)
{
    int rc = zblob_layout_read(dir, out, err);
    if (rc != ZE_NOTFOUND)
        return rc;
    zerr_clear(err);
    *out = has_visible_entries(dir) ? ZBLOB_LAWN : ZBLOB_BUSHY;
    return 0;
}

int zblob_layout_write(const char *dir, zblob_layout layout, zerr *err)
{
    int fd = open_marker(dir, O_WRONLY, err);
    if (fd < 0)
        return fd == ZE_NOTFOUND ? zerr_set(err, ZE_IO, "create %s/.layout: no such folder", dir)
                                 : fd;
    const char *name = zblob_layout_name(layout);
    size_t len = strlen(name);
    int rc = 0;
    if (ftruncate(fd, 0) < 0 || write(fd, name, len) != (ssize_t)len)
        rc = zerr_sys(err, errno, "write %s/.layout", dir);
    if (close(fd) != 0 && !rc)
        rc = zerr_sys(err, errno, "write %s/.layout", dir);
    return rc;
}
