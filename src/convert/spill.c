/* spill.c: memory that moves to a temporary file when it grows large.
 *
 * The converter's indexes grow with the file (8 bytes a record, 16 an oid).
 * Below SPILL_ANON_MAX a region is ordinary heap memory; past it, the region
 * lives in a shared mapping of an unlinked temporary file, so the kernel can
 * write it back and drop it like any file page: anonymous memory stays
 * bounded whatever the size of the Data.fs.
 */
#define _GNU_SOURCE
#include "convert/convert_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SPILL_ANON_MAX (4u << 20)

static int temp_file(zerr *err)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/var/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    snprintf(path, sizeof path, "%s/zeolite-index-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return zerr_sys(err, errno, "create a temporary index file in %s", dir);
    unlink(path);
    return fd;
}

static int to_file(zfs_spill *r, size_t cap, zerr *err)
{
    int fd = temp_file(err);
    if (fd < 0)
        return fd;
    if (ftruncate(fd, (off_t)cap) != 0) {
        close(fd);
        return zerr_sys(err, errno, "grow the temporary index file to %zu bytes", cap);
    }
    void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return zerr_sys(err, errno, "map the temporary index file");
    }
    if (r->cap)
        memcpy(p, r->p, r->cap);
    free(r->p);
    r->p = p;
    r->cap = cap;
    r->fd = fd;
    return 0;
}

int zfs__spill_resize(zfs_spill *r, size_t cap, zerr *err)
{
    if (r->fd < 0 && cap <= SPILL_ANON_MAX) {
        void *p = realloc(r->p, cap);
        if (!p)
            return zerr_set(err, ZE_NOMEM, "index: out of memory (%zu bytes)", cap);
        r->p = p;
        r->cap = cap;
        return 0;
    }
    if (r->fd < 0)
        return to_file(r, cap, err);
    if (ftruncate(r->fd, (off_t)cap) != 0)
        return zerr_sys(err, errno, "grow the temporary index file to %zu bytes", cap);
    void *p = mremap(r->p, r->cap, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return zerr_sys(err, errno, "remap the temporary index file");
    r->p = p;
    r->cap = cap;
    return 0;
}

void zfs__spill_free(zfs_spill *r)
{
    if (r->fd >= 0) {
        munmap(r->p, r->cap);
        close(r->fd);
    } else {
        free(r->p);
    }
    r->p = NULL;
    r->cap = 0;
    r->fd = -1;
}
