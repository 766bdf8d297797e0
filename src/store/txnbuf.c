#define _GNU_SOURCE /* O_TMPFILE */
#include "store/txnbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zfile.h"

void txnbuf_init(txnbuf *b, int dirfd, const char *shown, size_t spill)
{
    *b = (txnbuf){ZBUF_INIT, -1, 0, dirfd, shown, spill};
}

void txnbuf_free(txnbuf *b)
{
    zbuf_free(&b->mem);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->size = 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off, zerr *err)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, q, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return zerr_sys(err, errno, "write transaction buffer");
        }
        q += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* An unnamed file in the folder: O_TMPFILE, else a new name removed at once. */
static int temp_file(txnbuf *b, zerr *err)
{
    int dfd = b->dirfd >= 0 ? b->dirfd : AT_FDCWD;
    const char *shown = b->dirfd >= 0 ? b->shown : "/tmp";
    const char *where = b->dirfd >= 0 ? "." : "/tmp";
    int fd = openat(dfd, where, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd
                       : zerr_sys(err, errno, "create transaction buffer file in %s", shown);
    char name[16];
    if (b->dirfd < 0 && (dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return zerr_sys(err, errno, "open /tmp");
    fd = zfile_mktemp_at(dfd, shown, "txn", name, sizeof name, err);
    if (fd >= 0)
        zfile_unlink_plain_at(dfd, shown, name, 0, NULL);
    if (b->dirfd < 0)
        close(dfd);
    return fd;
}

static int spill(txnbuf *b, zerr *err)
{
    int fd = temp_file(b, err);
    if (fd < 0)
        return fd;
    int rc = write_all(fd, b->mem.data, b->mem.len, 0, err);
    if (rc) {
        close(fd);
        return rc;
    }
    b->fd = fd;
    zbuf_free(&b->mem);
    return 0;
}

int txnbuf_append(txnbuf *b, const void *p, size_t n, uint64_t *off, zerr *err)
{
    int rc;
    if (b->fd < 0 && b->mem.len + n > b->spill && (rc = spill(b, err)))
        return rc;
    if (b->fd >= 0)
        rc = write_all(b->fd, p, n, b->size, err);
    else if ((rc = zbuf_append(&b->mem, p, n)))
        rc = zerr_set(err, rc, "out of memory buffering %zu bytes", n);
    if (rc)
        return rc;
    *off = b->size;
    b->size += n;
    return 0;
}

int txnbuf_read(const txnbuf *b, uint64_t off, size_t n, void *dst, zerr *err)
{
    if (off + n > b->size)
        return zerr_set(err, ZE_INVAL, "transaction buffer read past its end");
    if (n == 0)
        return 0;
    if (b->fd < 0) {
        memcpy(dst, b->mem.data + off, n);
        return 0;
    }
    uint8_t *q = dst;
    while (n > 0) {
        ssize_t r = pread(b->fd, q, n, (off_t)off);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return r < 0 ? zerr_sys(err, errno, "read transaction buffer")
                         : zerr_set(err, ZE_IO, "transaction buffer file is short");
        }
        q += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int txnbuf_view(const txnbuf *b, uint64_t off, size_t n, zbuf *scratch,
                const uint8_t **out, zerr *err)
{
    if (b->fd < 0 || n == 0) {
        if (off + n > b->size)
            return zerr_set(err, ZE_INVAL, "transaction buffer read past its end");
        *out = n ? b->mem.data + off : (const uint8_t *)"";
        return 0;
    }
    zbuf_reset(scratch);
    if (zbuf_reserve(scratch, n))
        return zerr_set(err, ZE_NOMEM, "out of memory reading %zu bytes", n);
    int rc = txnbuf_read(b, off, n, scratch->data, err);
    if (rc)
        return rc;
    scratch->len = n;
    *out = scratch->data;
    return 0;
}
