/* export.c: a zeolite database -> Data.fs (+ blob directory).
 *
 * The database is opened read-only (a running server may have it open) and
 * read through one iterator snapshot. The file is written under a temporary
 * name and renamed when complete; a stale .index beside it is removed, since
 * FileStorage would trust one that merely looks consistent (spec section 8).
 */
#define _GNU_SOURCE
#include "convert/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zarray.h"
#include "common/zfile.h"
#include "convert/convert_int.h"
#include "store/store.h"

typedef struct exporter {
    const zfs_export_opts *opt;
    zfs_export_stats *stats;
    store *s;
    zfs_writer *w;
    zblob_layout layout;
    int made_blob_dir;       /* 1: created by us; 2: was an empty folder */
    uint64_t *blob_oids;     /* oids whose blob file the current txn copied, sorted */
    size_t n_blob_oids, cap_blob_oids;
} exporter;

/* The record kind in the file, 0 for a kind the store should never give. */
static zfs_kind fs_kind(store_rec_kind k)
{
    switch (k) {
    case STORE_REC_DATA: return ZFS_DATA;
    case STORE_REC_BACKPTR: return ZFS_BACKPTR;
    case STORE_REC_DELETE: return ZFS_DELETE;
    default: return 0;
    }
}

/* An empty blob directory in the requested layout, as FileStorage makes one. */
static int make_blob_dir(exporter *ex, zerr *err)
{
    const char *dir = ex->opt->blob_dir;
    char path[PATH_MAX];
    if (mkdir(dir, 0755) == 0)
        ex->made_blob_dir = 1;
    else if (errno != EEXIST)
        return zerr_sys(err, errno, "mkdir %s", dir);
    else if (zfile_dir_is_empty(dir, NULL) == 1)
        ex->made_blob_dir = 2;
    else
        return zerr_set(err, ZE_EXISTS, "blob directory %s exists and is not empty", dir);
    snprintf(path, sizeof path, "%s/tmp", dir);
    if (mkdir(path, 0755) != 0)
        return zerr_sys(err, errno, "mkdir %s", path);
    return zblob_layout_write(dir, ex->layout, err);
}

/* There is one blob file per (oid, tid), named by every blob record of that
 * oid in the transaction (a ZEO blob commit stores the oid twice), as in
 * FileStorage: 1 when the current transaction already copied oid's file,
 * else 0 after noting oid. */
static int blob_copied(exporter *ex, uint64_t oid, zerr *err)
{
    size_t lo = 0, hi = ex->n_blob_oids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ex->blob_oids[mid] < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ex->n_blob_oids && ex->blob_oids[lo] == oid)
        return 1;
    uint64_t *v = zarray_room(ex->blob_oids, ex->n_blob_oids, &ex->cap_blob_oids, sizeof *v, 16);
    if (!v)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    ex->blob_oids = v;
    memmove(ex->blob_oids + lo + 1, ex->blob_oids + lo,
            (ex->n_blob_oids - lo) * sizeof *ex->blob_oids);
    ex->blob_oids[lo] = oid;
    ex->n_blob_oids++;
    return 0;
}

/* Copy the store's file of (oid, tid), opened without following a link (a
 * shared blob folder's clients write in it), to the new file dst. */
static int copy_blob(store *s, uint64_t oid, uint64_t tid, char *dst, zerr *err)
{
    int in = store_blob_file_open(s, oid, tid, err);
    if (in < 0)
        return in;
    char *name = strrchr(dst, '/');
    *name++ = '\0';
    int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dfd < 0 ? zerr_sys(err, errno, "open %s", dst)
                     : zfile_copy_fd_at(in, dfd, dst, name, 0444, 0, err);
    name[-1] = '/';
    if (dfd >= 0)
        close(dfd);
    close(in);
    return rc;
}

static int export_blob(exporter *ex, const store_record *rec, zerr *err)
{
    char dst[PATH_MAX];
    int rc = blob_copied(ex, rec->oid, err);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!ex->opt->blob_dir)
        return zerr_set(err, ZE_INVAL, "oid 0x%016" PRIx64 " has a blob in transaction 0x%016"
                        PRIx64 ": give a target blob directory with --blobs", rec->oid,
                        rec->tid);
    if (zblob_path(ex->opt->blob_dir, ex->layout, rec->oid, rec->tid, dst, sizeof dst))
        return zerr_set(err, ZE_TOOBIG, "blob path too long");
    rc = zfile_mkdirs_parent(dst, 0755, err);
    if (!rc)
        rc = copy_blob(ex->s, rec->oid, rec->tid, dst, err);
    if (!rc)
        ex->stats->blobs++;
    return rc;
}

static int export_txn(exporter *ex, store_iter *it, const store_txn_info *info, zerr *err)
{
    store_record rec;
    int rc = zfs_writer_begin(ex->w, info->tid, info->status, info->user, info->description,
                              info->extension, err);
    ex->n_blob_oids = 0;
    while (!rc && (rc = store_iter_next_record(it, &rec, err)) == 1) {
        zfs_wrec w = {
            .oid = rec.oid,
            .kind = fs_kind(rec.kind),
            .data = rec.data,
            .back_tid = rec.back_tid,
            .back_index = rec.back_index,
            .prev_zero = rec.prev_zero,
        };
        rc = w.kind ? zfs_writer_record(ex->w, &w, err)
                    : zerr_set(err, ZE_CORRUPT, "oid 0x%016" PRIx64 " in transaction 0x%016"
                               PRIx64 ": unknown record kind %d", rec.oid, rec.tid,
                               (int)rec.kind);
        if (!rc && rec.has_blob)
            rc = export_blob(ex, &rec, err);
        ex->stats->records++;
    }
    return rc ? rc : zfs_writer_end(ex->w, err);
}

static int run(exporter *ex, const char *tmp, const char *tmp_index, zerr *err)
{
    store_iter *it;
    store_txn_info info;
    int rc = zfs_writer_open(&ex->w, tmp, err);
    if (rc)
        return rc;
    if ((rc = store_iter_open(ex->s, ex->opt->from_tid, ex->opt->to_tid, &it, err)) != 0) {
        zfs_writer_abort(ex->w);
        return rc;
    }
    zprogress *p = zprogress_new("export", store_size_bytes(ex->s),
                                 ex->opt->quiet ? &zprogress_silent : ex->opt->progress);
    while ((rc = store_iter_next_txn(it, &info, err)) == 1) {
        if (ex->opt->cancel && *ex->opt->cancel) {
            rc = zerr_set(err, ZE_IO, "interrupted after %" PRIu64 " transactions",
                          ex->stats->txns);
            break;
        }
        if ((rc = export_txn(ex, it, &info, err)) != 0)
            break;
        ex->stats->txns++;
        zprogress_update(p, zfs_writer_size(ex->w), ex->stats->txns);
    }
    zprogress_done(p);
    store_iter_close(it);
    ex->stats->bytes = zfs_writer_size(ex->w);
    if (!rc && tmp_index)
        rc = zfs_writer_index(ex->w, tmp_index, err);
    if (rc) {
        zfs_writer_abort(ex->w);
        return rc;
    }
    return zfs_writer_finish(ex->w, err);
}

/* Put the finished file (and its index) in place. The data goes first: a
 * crash in between leaves a file without index, which Python scans. */
static int publish(const char *tmp, const char *tmp_index, const char *fs_path,
                   const char *index, zerr *err)
{
    if (unlink(index) != 0 && errno != ENOENT)
        return zerr_sys(err, errno, "remove the stale %s", index);
    if (rename(tmp, fs_path) != 0)
        return zerr_sys(err, errno, "rename %s -> %s", tmp, fs_path);
    if (tmp_index && rename(tmp_index, index) != 0)
        return zerr_sys(err, errno, "rename %s -> %s", tmp_index, index);
    /* The file is in place and complete: a folder that cannot be synced
     * does not make it less so, so that is no failure to undo. */
    zfile_fsync_parent(fs_path, NULL);
    return 0;
}

/* A temporary file of a running export carries its pid; a name that is not
 * a pid is not ours. */
static int export_in_use(const char *entry, const char *suffix)
{
    (void)entry;
    char *end;
    long pid = strtol(suffix, &end, 10);
    if (*end || pid <= 0)
        return 1;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

int zfs_export(const char *dbdir, const char *fs_path, const zfs_export_opts *opt,
               zfs_export_stats *stats, zerr *err)
{
    zfs_export_opts none = {0};
    zfs_export_stats scratch;
    exporter ex = {.opt = opt ? opt : &none, .stats = stats ? stats : &scratch};
    char tmp[PATH_MAX], tmp_index[PATH_MAX], index[PATH_MAX];
    struct stat st;
    memset(ex.stats, 0, sizeof *ex.stats);
    ex.layout = ex.opt->layout ? ex.opt->layout : ZBLOB_BUSHY;
    if (lstat(fs_path, &st) == 0)
        return zerr_set(err, ZE_EXISTS, "%s already exists: export writes a new file", fs_path);
    long pid = (long)getpid();
    if (snprintf(tmp, sizeof tmp, "%s.export-%ld", fs_path, pid) >= (int)sizeof tmp ||
        snprintf(tmp_index, sizeof tmp_index, "%s.index.export-%ld", fs_path, pid) >=
            (int)sizeof tmp_index ||
        snprintf(index, sizeof index, "%s.index", fs_path) >= (int)sizeof index)
        return zerr_set(err, ZE_TOOBIG, "path too long: %s", fs_path);
    ex.stats->leftovers = (uint64_t)(zfs__remove_leftovers(fs_path, ".export-", export_in_use) +
                                     zfs__remove_leftovers(index, ".export-", export_in_use));
    const char *want_index = ex.opt->write_index ? tmp_index : NULL;
    store_options so = {.read_only = 1};
    int rc = store_open(&ex.s, dbdir, &so, err);
    if (rc)
        return rc;
    if (ex.opt->blob_dir)
        rc = make_blob_dir(&ex, err);
    if (!rc)
        rc = run(&ex, tmp, want_index, err);
    store_close(ex.s);
    free(ex.blob_oids);
    if (!rc)
        rc = publish(tmp, want_index, fs_path, index, err);
    if (rc) {
        unlink(tmp);
        unlink(tmp_index);
        if (ex.made_blob_dir == 1)
            zfile_rm_rf(ex.opt->blob_dir, NULL);
        else if (ex.made_blob_dir == 2)
            zfile_empty_dir(ex.opt->blob_dir, NULL);  /* leave the empty folder we were given */
    }
    return rc;
}
