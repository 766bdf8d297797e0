/* fs_write.c: a streaming FileStorage writer.
 *
 * Output goes through one buffer. A transaction's header is written with a
 * zero length that is patched when the transaction ends (in the buffer when
 * the header is still there, with pwrite otherwise), so a transaction of any
 * size streams. prev and back offsets come from the index of what was written
 * (spec sections 4 and 5).
 */
#define _GNU_SOURCE
#include "convert/convert.h"
#include "convert/convert_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OUT_CAP (1u << 20)
#define WRITEBACK_CHUNK (32u << 20)

struct zfs_writer {
    int fd;
    char *path;
    uint8_t *buf;       /* bytes [bpos, bpos + blen) not yet written */
    size_t blen;
    uint64_t bpos;
    uint64_t synced;    /* writeback started up to here */
    zfs_index *ix;
    uint64_t ltid;
    int in_txn;
    int sealed;         /* the index was written: no more transactions */
    uint64_t tpos;
};

static uint64_t wsize(const zfs_writer *w)
{
    return w->bpos + w->blen;
}

static int write_all(zfs_writer *w, const void *p, size_t n, zerr *err)
{
    while (n > 0) {
        ssize_t done = write(w->fd, p, n);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return zerr_sys(err, errno, "%s: write", w->path);
        p = (const char *)p + done;
        n -= (size_t)done;
    }
    return 0;
}

/* Start writeback of each full chunk as soon as it is written, so the disk
 * works while we produce the rest and the final fsync has little left;
 * waiting for the chunk before keeps the dirty page cache bounded. */
static void start_writeback(zfs_writer *w)
{
    while (w->bpos - w->synced >= WRITEBACK_CHUNK) {
        if (w->synced >= WRITEBACK_CHUNK)
            sync_file_range(w->fd, (off_t)(w->synced - WRITEBACK_CHUNK), WRITEBACK_CHUNK,
                            SYNC_FILE_RANGE_WAIT_BEFORE);
        sync_file_range(w->fd, (off_t)w->synced, WRITEBACK_CHUNK, SYNC_FILE_RANGE_WRITE);
        w->synced += WRITEBACK_CHUNK;
    }
}

static int flush(zfs_writer *w, zerr *err)
{
    int rc = write_all(w, w->buf, w->blen, err);
    if (rc)
        return rc;
    w->bpos += w->blen;
    w->blen = 0;
    start_writeback(w);
    return 0;
}

static int put(zfs_writer *w, const void *p, size_t n, zerr *err)
{
    int rc;
    if (n == 0)
        return 0;
    if (n > OUT_CAP - w->blen && (rc = flush(w, err)) != 0)
        return rc;
    if (n >= OUT_CAP) {
        if ((rc = write_all(w, p, n, err)) != 0)
            return rc;
        w->bpos += n;
        start_writeback(w);
        return 0;
    }
    memcpy(w->buf + w->blen, p, n);
    w->blen += n;
    return 0;
}

int zfs_writer_open(zfs_writer **out, const char *path, zerr *err)
{
    int rc;
    zfs_writer *w = calloc(1, sizeof *w);
    if (!w)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    w->fd = -1;
    w->path = strdup(path);
    w->buf = malloc(OUT_CAP);
    w->ix = zfs__index_new();
    if (!w->path || !w->buf || !w->ix) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
        goto fail;
    }
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = errno == EEXIST ? zerr_set(err, ZE_EXISTS, "%s already exists", path)
                             : zerr_sys(err, errno, "%s", path);
        goto fail;
    }
    if ((rc = put(w, ZFS_MAGIC, 4, err)) != 0)
        goto fail;
    *out = w;
    return 0;
fail:
    zfs_writer_abort(w);  /* deletes the file only when this call created it */
    return rc;
}

static int check_meta(const char *what, zslice s, uint64_t tid, zerr *err)
{
    if (s.len > ZFS_META_MAX)
        return zerr_set(err, ZE_TOOBIG,
                        "transaction 0x%016" PRIx64 ": its %s is %zu bytes; FileStorage "
                        "allows at most %d", tid, what, s.len, ZFS_META_MAX);
    return 0;
}

int zfs_writer_begin(zfs_writer *w, uint64_t tid, char status, zslice user,
                     zslice description, zslice extension, zerr *err)
{
    uint8_t h[ZFS_TXN_HDR];
    int rc;
    if (w->in_txn || w->sealed)
        return zerr_set(err, ZE_TXN, "writer: %s", w->sealed ? "the index was written"
                                                              : "a transaction is already open");
    if (tid <= w->ltid)
        return zerr_set(err, ZE_INVAL, "transaction 0x%016" PRIx64 " is not after 0x%016"
                        PRIx64 ": tids must strictly increase", tid, w->ltid);
    if (status != ' ' && status != 'p')
        return zerr_set(err, ZE_INVAL, "transaction 0x%016" PRIx64 ": status '\\x%02x' "
                        "cannot be written (expected ' ' or 'p')", tid, (unsigned)(uint8_t)status);
    if ((rc = check_meta("user", user, tid, err)) != 0 ||
        (rc = check_meta("description", description, tid, err)) != 0 ||
        (rc = check_meta("extension", extension, tid, err)) != 0)
        return rc;
    w->tpos = wsize(w);
    zbe64_put(h, tid);
    zbe64_put(h + 8, 0);   /* patched by zfs_writer_end */
    h[16] = (uint8_t)status;
    zbe16_put(h + 17, (uint16_t)user.len);
    zbe16_put(h + 19, (uint16_t)description.len);
    zbe16_put(h + 21, (uint16_t)extension.len);
    if ((rc = put(w, h, sizeof h, err)) != 0 || (rc = put(w, user.p, user.len, err)) != 0 ||
        (rc = put(w, description.p, description.len, err)) != 0 ||
        (rc = put(w, extension.p, extension.len, err)) != 0 ||
        (rc = zfs__index_add_txn(w->ix, tid, w->tpos, err)) != 0)
        return rc;
    w->ltid = tid;
    w->in_txn = 1;
    return 0;
}

int zfs_writer_record(zfs_writer *w, const zfs_wrec *rec, zerr *err)
{
    uint8_t h[ZFS_REC_HDR + 8];
    uint64_t back = 0, pos = wsize(w);
    zfs_kind kind = rec->kind;
    int rc;
    if (!w->in_txn)
        return zerr_set(err, ZE_TXN, "writer: no transaction is open");
    /* a target outside the file (export of a tid range) becomes inline data */
    if (kind == ZFS_BACKPTR && zfs__index_find_rec(w->ix, rec->back_tid, rec->back_index, &back))
        kind = rec->data.len ? ZFS_DATA : ZFS_DELETE;
    if (kind == ZFS_DATA && rec->data.len == 0)
        return zerr_set(err, ZE_INVAL, "oid 0x%016" PRIx64 ": a data record needs a "
                        "non-empty pickle", rec->oid);
    zbe64_put(h, rec->oid);
    zbe64_put(h + 8, w->ltid);
    zbe64_put(h + 16, rec->prev_zero ? 0 : zfs__index_last(w->ix, rec->oid));
    zbe64_put(h + 24, w->tpos);
    zbe16_put(h + 32, 0);
    zbe64_put(h + 34, kind == ZFS_DATA ? rec->data.len : 0);
    zbe64_put(h + ZFS_REC_HDR, back);
    if (kind == ZFS_DATA)
        rc = put(w, h, ZFS_REC_HDR, err);
    else
        rc = put(w, h, sizeof h, err);
    if (!rc && kind == ZFS_DATA)
        rc = put(w, rec->data.p, rec->data.len, err);
    if (!rc)
        rc = zfs__index_add_record(w->ix, rec->oid, pos, err);
    return rc;
}

static int patch_tlen(zfs_writer *w, uint64_t tlen, zerr *err)
{
    uint8_t b[8];
    uint64_t at = w->tpos + 8;
    zbe64_put(b, tlen);
    if (at >= w->bpos) {
        memcpy(w->buf + (at - w->bpos), b, 8);
        return 0;
    }
    int rc = flush(w, err);
    if (rc)
        return rc;
    if (pwrite(w->fd, b, 8, (off_t)at) != 8)
        return zerr_sys(err, errno, "%s: write at %" PRIu64, w->path, at);
    return 0;
}

int zfs_writer_end(zfs_writer *w, zerr *err)
{
    uint8_t b[8];
    int rc;
    if (!w->in_txn)
        return zerr_set(err, ZE_TXN, "writer: no transaction is open");
    uint64_t tlen = wsize(w) - w->tpos;
    zbe64_put(b, tlen);
    if ((rc = put(w, b, 8, err)) != 0 || (rc = patch_tlen(w, tlen, err)) != 0 ||
        (rc = zfs__index_end_txn(w->ix, err)) != 0)
        return rc;
    w->in_txn = 0;
    return 0;
}

int zfs_writer_index(zfs_writer *w, const char *index_path, zerr *err)
{
    if (w->in_txn || w->sealed)
        return zerr_set(err, ZE_TXN, "writer: the index needs all transactions ended, once");
    w->sealed = 1;
    return zfs__write_index(w->ix, wsize(w), index_path, err);
}

uint64_t zfs_writer_size(const zfs_writer *w)
{
    return wsize(w);
}

int zfs_writer_finish(zfs_writer *w, zerr *err)
{
    int rc = 0;
    if (w->in_txn)
        rc = zerr_set(err, ZE_TXN, "writer: transaction 0x%016" PRIx64 " was not ended",
                      w->ltid);
    if (!rc)
        rc = flush(w, err);
    if (!rc && fsync(w->fd) != 0)
        rc = zerr_sys(err, errno, "%s: fsync", w->path);
    if (close(w->fd) != 0 && !rc)
        rc = zerr_sys(err, errno, "%s: close", w->path);
    w->fd = -1;
    if (rc)
        unlink(w->path);
    zfs_writer_abort(w);
    return rc;
}

void zfs_writer_abort(zfs_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->path);
    }
    zfs__index_free(w->ix);
    free(w->buf);
    free(w->path);
    free(w);
}
