/* blob.c: blob files in ZODB's bushy layout under DIR/blobs. */
#include "store/blob.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"

#define OID_DEPTH 8

int store_blob_path(store *s, uint64_t oid, uint64_t tid, char *buf, size_t cap)
{
    return zblob_path(s->blob_dir, ZBLOB_BUSHY, oid, tid, buf, cap);
}

int store_blob_tmpname(store *s, char *buf, size_t cap, zerr *err)
{
    int n = snprintf(buf, cap, "%s/blobXXXXXX", s->blob_tmp);
    if (n < 0 || (size_t)n >= cap)
        return zerr_set(err, ZE_TOOBIG, "blob temp name does not fit %zu bytes", cap);
    int fd = mkstemp(buf);
    if (fd < 0)
        return zerr_sys(err, errno, "create temp file in %s", s->blob_tmp);
    close(fd);
    return 0;
}

int store__blob_remove(store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    char path[512];
    if (store_blob_path(s, oid, tid, path, sizeof path))
        return zerr_set(err, ZE_TOOBIG, "blob path too long");
    if (unlink(path) < 0 && errno != ENOENT)
        return zerr_sys(err, errno, "remove %s", path);
    return 0;
}

/* Durably install the file at tmp under path (renamed when possible, else
 * linked or copied), creating the oid's folders. */
static int install(store *s, const char *tmp, const char *path, int move, zerr *err)
{
    int rc = zfile_mkdirs_parent(path, 0777, err);
    if (rc)
        return rc;
    if (move && rename(tmp, path) == 0)
        rc = 0;
    else if (move && errno != EXDEV)
        return zerr_sys(err, errno, "move blob %s to %s", tmp, path);
    else if ((rc = zfile_copy(tmp, path, 0444, move ? 0 : ZFILE_LINK, err)) == 0 && move)
        unlink(tmp);
    if (rc)
        return rc;
    chmod(path, 0444);
    if (s->opt.no_sync)
        return 0;
    if ((rc = zfile_fsync(path, err)))
        return rc;
    return zfile_fsync_parent(path, err);
}

int store__blob_place(store *s, const char *src, uint64_t oid, uint64_t tid, zerr *err)
{
    char path[512];
    int rc;
    if (store_blob_path(s, oid, tid, path, sizeof path))
        return zerr_set(err, ZE_TOOBIG, "blob path too long");
    /* The data must be on disk before the name is: a crash may leave a
     * complete orphan, never a committed record with a short file. */
    if (!s->opt.no_sync && (rc = zfile_fsync(src, err)))
        return rc;
    return install(s, src, path, 1, err);
}

int store__blob_link(store *s, uint64_t oid, uint64_t src_tid, uint64_t dst_tid, zerr *err)
{
    char src[512], dst[512];
    if (store_blob_path(s, oid, src_tid, src, sizeof src) ||
        store_blob_path(s, oid, dst_tid, dst, sizeof dst))
        return zerr_set(err, ZE_TOOBIG, "blob path too long");
    unlink(dst);
    return install(s, src, dst, 0, err);
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
static int has_record(store *s, MDB_txn *txn, uint64_t oid, uint64_t tid)
{
    uint8_t key[ST_KEY_LEN];
    st_key(key, oid, tid);
    MDB_val k = {sizeof key, key}, v;
    st_rec rec;
    return mdb_get(txn, s->dbi_records, &k, &v) == 0 &&
           st_rec_decode(v.mv_data, v.mv_size, &rec) == 0 && (rec.flags & ST_RF_BLOB);
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

static void remove_orphans(store *s, MDB_txn *txn, const char *dir, int depth, uint64_t oid)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        uint64_t v;
        if (e->d_name[0] == '.' || (depth == 0 && !strcmp(e->d_name, "tmp")))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (depth < OID_DEPTH && parse_hex(e->d_name, &v, 2, ""))
            remove_orphans(s, txn, path, depth + 1, (oid << 8) | v);
        else if (depth == OID_DEPTH && parse_hex(e->d_name, &v, 16, ".blob") &&
                 !has_record(s, txn, oid, v))
            unlink(path);
    }
    closedir(d);
}

int store__blob_init(store *s, zerr *err)
{
    if (s->opt.read_only)
        return check_layout(s, err);
    int rc = zfile_mkdirs(s->blob_tmp, 0777, err);
    if (rc)
        return rc;
    if ((rc = check_layout(s, err)))
        return rc;
    /* Another process's temp files are not ours to clean. */
    if (!s->opt.exclusive && store_is_locked(s->dir))
        return 0;
    zfile_empty_dir(s->blob_tmp, NULL);   /* a leftover there harms nothing */
    MDB_txn *txn;
    if ((rc = store__read_begin(s, &txn, err)))
        return rc;
    remove_orphans(s, txn, s->blob_dir, 0, 0);
    mdb_txn_abort(txn);
    return 0;
}
