/* backup.c: store_backup, a hot copy of a live database with its blobs.
 *
 * The LMDB copy is one read snapshot (mdb_env_copy2). Blob files are
 * hard-linked (copied across filesystems) before and after it: every file a
 * record of the snapshot needs existed when its record committed, so one of
 * the two passes catches it, unless a pack removed it in between; the last
 * step therefore checks every blob record of the copy against the copied
 * files. Files newer than the snapshot are orphans in the copy, which its
 * first read-write open removes, as after a crash. A backup that fails
 * leaves dest as it was given: removed when it was created here, else empty.
 */
#define _GNU_SOURCE /* syncfs */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zfile.h"

#define BLOB_DEPTH_MAX 9    /* bushy: 8 oid levels, then the files */

/* Create dest, or accept it when it is an empty folder; *created says which. */
static int make_dest(const char *dest, int *created, zerr *err)
{
    *created = mkdir(dest, 0777) == 0;
    if (*created)
        return 0;
    if (errno != EEXIST)
        return zerr_sys(err, errno, "backup: create %s", dest);
    int rc = zfile_dir_is_empty(dest, err);
    if (rc == 0)
        return zerr_set(err, ZE_EXISTS, "backup: %s exists and is not empty", dest);
    return rc < 0 ? rc : 0;
}

/* A hard link, or a copy when linking is impossible (another filesystem),
 * made durable with the rest by sync_dest. A source that vanished meanwhile
 * is skipped (the final check decides), and so is a file copied already. */
static int link_or_copy(const char *src, const char *dst, zerr *err)
{
    int rc = zfile_copy(src, dst, 0444, ZFILE_LINK, err);
    if (rc == ZE_NOTFOUND || rc == ZE_EXISTS) {
        zerr_clear(err);
        return 0;
    }
    return rc;
}

static int is_blob_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".blob");
}

static int join(char *buf, size_t cap, const char *a, const char *b, zerr *err)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", a, b) >= cap)
        return zerr_set(err, ZE_TOOBIG, "backup: path too long: %s/%s", a, b);
    return 0;
}

/* Mirror the oid folders (0x..) and *.blob files of src into dst. */
static int copy_blob_tree(const char *src, const char *dst, int depth, zerr *err)
{
    DIR *d = opendir(src);
    if (!d)
        return errno == ENOENT ? 0 : zerr_sys(err, errno, "backup: %s", src);
    if (mkdir(dst, 0777) < 0 && errno != EEXIST) {
        closedir(d);
        return zerr_sys(err, errno, "backup: create %s", dst);
    }
    char sp[4096], dp[4096];
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        struct stat st;
        int folder = !strncmp(e->d_name, "0x", 2) && depth < BLOB_DEPTH_MAX;
        if (!folder && !is_blob_name(e->d_name))
            continue;   /* ., .., tmp/ (uncommitted), anything else */
        if ((rc = join(sp, sizeof sp, src, e->d_name, err)) ||
            (rc = join(dp, sizeof dp, dst, e->d_name, err)))
            break;
        if (lstat(sp, &st) < 0)
            continue;   /* removed meanwhile */
        if (S_ISDIR(st.st_mode))
            rc = folder ? copy_blob_tree(sp, dp, depth + 1, err) : 0;
        else if (S_ISREG(st.st_mode) && is_blob_name(e->d_name))
            rc = link_or_copy(sp, dp, err);
    }
    closedir(d);
    return rc;
}

/* The marker and scratch folder a blob directory has (blob.h). */
static int blob_skeleton(store *s, const char *dst, zerr *err)
{
    char sp[4096], dp[4096];
    int rc = join(sp, sizeof sp, store_blob_dir(s), ".layout", err);
    if (!rc)
        rc = join(dp, sizeof dp, dst, ".layout", err);
    if (!rc && (mkdir(dst, 0777) < 0 && errno != EEXIST))
        rc = zerr_sys(err, errno, "backup: create %s", dst);
    if (!rc)
        rc = link_or_copy(sp, dp, err);
    if (!rc && (rc = join(dp, sizeof dp, dst, "tmp", err)) == 0 && mkdir(dp, 0777) < 0 &&
        errno != EEXIST)
        rc = zerr_sys(err, errno, "backup: create %s", dp);
    return rc;
}

static int copy_env(store *s, const char *dest, int compact, zerr *err)
{
    /* the copy reads the map: keep the writer from remapping under it */
    store__map_enter(s);
    int rc = mdb_env_copy2(s->env, dest, compact ? MDB_CP_COMPACT : 0);
    store__map_leave(s);
    return rc ? store__mdb_err(err, rc, "backup: copy the database") : 0;
}

/* ---- the final check ------------------------------------------------------ */

typedef struct check_ctx {
    store *s;
    const char *blobs;      /* dest/blobs */
    zerr *err;
} check_ctx;

/* A blob record of the copy: its file must be in the copy, else it is taken
 * from the live folder now. */
static int check_blob(check_ctx *c, uint64_t oid, uint64_t tid)
{
    char src[4096], dst[4096];
    struct stat st;
    int rc = store_blob_path(c->s, oid, tid, src, sizeof src);
    if (rc)
        return zerr_set(c->err, rc, "backup: blob path of oid %016llx", (unsigned long long)oid);
    const char *rel = src + strlen(store_blob_dir(c->s));
    if ((rc = join(dst, sizeof dst, c->blobs, rel + (*rel == '/'), c->err)))
        return rc;
    if (stat(dst, &st) == 0)
        return 0;
    if ((rc = zfile_mkdirs_parent(dst, 0777, c->err)) ||
        (rc = link_or_copy(src, dst, c->err)))
        return rc;
    if (stat(dst, &st) < 0)
        return zerr_set(c->err, ZE_NOTFOUND,
                        "backup: blob file %s is missing (removed by a pack during the "
                        "backup: run it again; else the database is damaged)", src);
    return 0;
}

static int check_records(check_ctx *c, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return store__mdb_err(c->err, rc, "backup: read the copy");
    int bad = 0;
    while (!bad && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const uint8_t *p = v.mv_data;
        if (k.mv_size == ST_KEY_LEN && v.mv_size >= ST_REC_HDR && (p[1] & ST_RF_BLOB))
            bad = check_blob(c, zbe64(k.mv_data), zbe64((const uint8_t *)k.mv_data + 8));
    }
    mdb_cursor_close(cur);
    if (bad)
        return bad;
    return rc == MDB_NOTFOUND ? 0 : store__mdb_err(c->err, rc, "backup: read the copy");
}

/* Every blob record of the copy has its file in the copy. */
static int check_copy(store *s, const char *dest, const char *blobs, zerr *err)
{
    check_ctx c = {s, blobs, err};
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc)
        return store__mdb_err(err, rc, "backup: open the copy");
    /* nobody else has the fresh copy open: no lock file needed */
    if ((rc = mdb_env_set_maxdbs(env, 8)) ||
        (rc = mdb_env_open(env, dest, MDB_RDONLY | MDB_NOLOCK, 0666)) ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
        (rc = mdb_dbi_open(txn, "records", 0, &dbi)))
        rc = store__mdb_err(err, rc, "backup: open the copy");
    else
        rc = check_records(&c, txn, dbi);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

static int sync_dest(const char *dest, zerr *err)
{
    int fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return zerr_sys(err, errno, "backup: %s", dest);
    int rc = syncfs(fd) < 0 ? zerr_sys(err, errno, "backup: sync %s", dest) : 0;
    close(fd);
    return rc;
}

/* A failed copy (a full disk, most often) must not leave a folder that looks
 * like a backup: a cut-off data.mdb holds meta pages naming pages it lacks.
 * Empty dest, and remove it when this call made it, so that dest is as the
 * caller gave it and a retry is accepted. */
static void discard_dest(const char *dest, int created)
{
    zfile_empty_dir(dest, NULL);
    if (created)
        rmdir(dest);
}

int store_backup(store *s, const char *dest, int compact, zerr *err)
{
    char blobs[4096];
    int created;
    int rc = make_dest(dest, &created, err);
    if (rc)
        return rc;
    if ((rc = join(blobs, sizeof blobs, dest, "blobs", err)) ||
        (rc = blob_skeleton(s, blobs, err)) ||
        (rc = copy_blob_tree(store_blob_dir(s), blobs, 0, err)) ||
        (rc = copy_env(s, dest, compact, err)) ||
        (rc = copy_blob_tree(store_blob_dir(s), blobs, 0, err)) ||
        (rc = check_copy(s, dest, blobs, err)) ||
        (rc = sync_dest(dest, err)))
        discard_dest(dest, created);
    return rc;
}
