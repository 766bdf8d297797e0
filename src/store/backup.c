/* backup.c: store_backup, a hot copy of a live database with its blobs.
 *
 * The LMDB copy is one read snapshot (mdb_env_copyfd2, through a pipe so
 * that its bytes can be counted as they are written). Blob files are
 * hard-linked (copied across filesystems; never through a link, blob.h)
 * before and after it: every file a
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
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"

#define BLOB_DEPTH_MAX 9    /* bushy: 8 oid levels, then the files */
#define COPY_CHUNK (1 << 20) /* bytes of the database copy read at a time */

/* What store_backup_progress reports: bytes and blob files copied so far. */
typedef struct progress {
    store_progress_fn fn;
    void *data;
    uint64_t bytes, files;
} progress;

static void report(progress *p, uint64_t bytes, uint64_t files)
{
    if (!p)
        return;
    p->bytes += bytes;
    p->files += files;
    if (p->fn)
        p->fn(p->data, p->bytes, p->files);
}

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

/* Link (or copy, when linking is impossible: another filesystem) the live
 * file name of folder sfd to the same name in folder dfd, made durable with
 * the rest by sync_dest. Only a plain file is taken, and the name linked must
 * still be that file: a link planted in a shared blob folder is neither
 * followed nor copied. A file that vanished or was refused is skipped (the
 * final check decides), and so is a file copied already. A file taken is
 * reported to p (NULL: nobody). */
static int link_or_copy(int sfd, const char *src, int dfd, const char *dst, const char *name,
                        progress *p, zerr *err)
{
    struct stat st, got;
    int in = zfile_open_plain_at(sfd, src, name, O_RDONLY, 0, &st, err);
    if (in == ZE_NOTFOUND || in == ZE_CORRUPT) {
        zerr_clear(err);
        return 0;
    }
    if (in < 0)
        return in;
    int rc = 0;
    if (linkat(sfd, name, dfd, name, 0) == 0) {
        if (fstatat(dfd, name, &got, AT_SYMLINK_NOFOLLOW) == 0 && got.st_dev == st.st_dev &&
            got.st_ino == st.st_ino) {
            report(p, (uint64_t)st.st_size, 1);
            goto done;
        }
        unlinkat(dfd, name, 0);   /* swapped meanwhile: this name was the copy's own */
    } else if (errno == EEXIST) {
        goto done;
    }
    rc = zfile_copy_fd_at(in, dfd, dst, name, 0444, 0, err);
    if (rc == ZE_EXISTS) {
        zerr_clear(err);
        rc = 0;
    } else if (rc == 0) {
        report(p, (uint64_t)st.st_size, 1);
    }
done:
    close(in);
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

/* Mirror the oid folders (0x..) and *.blob files of the folder open as sfd,
 * src, into dst, never through a link (the live folder may be shared). */
static int copy_blob_tree(int sfd, const char *src, const char *dst, int depth, progress *p,
                          zerr *err)
{
    int fd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return zerr_sys(err, errno, "backup: %s", src);
    }
    int dfd = -1;
    if ((mkdir(dst, 0777) < 0 && errno != EEXIST) ||
        (dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        closedir(d);
        return zerr_sys(err, errno, "backup: create %s", dst);
    }
    char sp[4096], dp[4096];
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        int folder = !strncmp(e->d_name, "0x", 2) && depth < BLOB_DEPTH_MAX;
        if (!folder && !is_blob_name(e->d_name))
            continue;   /* ., .., tmp/ (uncommitted), anything else */
        if ((rc = join(sp, sizeof sp, src, e->d_name, err)) ||
            (rc = join(dp, sizeof dp, dst, e->d_name, err)))
            break;
        int sub = -1;
        if (folder)
            sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            rc = copy_blob_tree(sub, sp, dp, depth + 1, p, err);
            close(sub);
        } else if (is_blob_name(e->d_name)) {
            rc = link_or_copy(dirfd(d), src, dfd, dst, e->d_name, p, err);
        }
    }
    close(dfd);
    closedir(d);
    return rc;
}

/* The marker and scratch folder a blob directory has (blob.h). */
static int blob_skeleton(const char *dst, zerr *err)
{
    char dp[4096];
    int rc = 0;
    if (mkdir(dst, 0777) < 0 && errno != EEXIST)
        rc = zerr_sys(err, errno, "backup: create %s", dst);
    if (!rc)
        rc = zblob_layout_write(dst, ZBLOB_BUSHY, err);
    if (!rc && (rc = join(dp, sizeof dp, dst, "tmp", err)) == 0 && mkdir(dp, 0777) < 0 &&
        errno != EEXIST)
        rc = zerr_sys(err, errno, "backup: create %s", dp);
    return rc;
}

/* Both passes over the live blob folder. */
static int copy_blobs(store *s, const char *dst, progress *p, zerr *err)
{
    if (s->blob_fd < 0)
        return 0;
    return copy_blob_tree(s->blob_fd, s->blob_dir, dst, 0, p, err);
}

typedef struct copy_job {
    MDB_env *env;
    int fd;              /* the pipe's write end, closed when the copy ends */
    unsigned flags;
    int rc;
} copy_job;

static void *copy_thread(void *arg)
{
    copy_job *j = arg;
    j->rc = mdb_env_copyfd2(j->env, j->fd, j->flags);
    close(j->fd);
    return NULL;
}

/* Move the copy's bytes from the pipe into the file, counting them. After a
 * failed write the pipe is still drained, so that the copy can finish;
 * returns that write's errno, or 0. */
static int pump(int in, int out, progress *p)
{
    char *buf = malloc(COPY_CHUNK), scratch[4096];
    int werr = buf ? 0 : ENOMEM;
    for (;;) {
        ssize_t n = read(in, buf ? buf : scratch, buf ? COPY_CHUNK : sizeof scratch);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t done = 0; !werr && done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno != EINTR)
                werr = errno;
            done += w > 0 ? w : 0;
        }
        if (!werr)
            report(p, (uint64_t)n, 0);
    }
    free(buf);
    return werr;
}

static int copy_env(store *s, const char *dest, int compact, progress *p, zerr *err)
{
    char path[4096];
    int pfd[2], rc = join(path, sizeof path, dest, "data.mdb", err);
    if (rc)
        return rc;
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return zerr_sys(err, errno, "backup: create %s", path);
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        rc = zerr_sys(err, errno, "backup: pipe");
        close(out);
        return rc;
    }
    copy_job j = {s->env, pfd[1], compact ? MDB_CP_COMPACT : 0, 0};
    pthread_t th;
    /* the copy reads the map: keep the writer from remapping under it */
    store__map_enter(s);
    if ((rc = pthread_create(&th, NULL, copy_thread, &j)) != 0) {
        store__map_leave(s);
        close(pfd[0]);
        close(pfd[1]);
        close(out);
        return zerr_sys(err, rc, "backup: start the copy");
    }
    int werr = pump(pfd[0], out, p);
    pthread_join(th, NULL);
    store__map_leave(s);
    close(pfd[0]);
    if (close(out) < 0 && !werr)
        werr = errno;
    if (j.rc)
        return store__mdb_err(err, j.rc, "backup: copy the database");
    return werr ? zerr_sys(err, werr, "backup: write %s", path) : 0;
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
    if ((rc = zfile_mkdirs_parent(dst, 0777, c->err)))
        return rc;
    char *sname = strrchr(src, '/'), *dname = strrchr(dst, '/');
    *sname++ = *dname++ = '\0';
    int sfd = c->s->blob_fd < 0 ? -1 : zblob_oid_dir_open(c->s->blob_fd, c->s->blob_dir,
                                                          ZBLOB_BUSHY, oid, 0, NULL);
    int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd >= 0 && dfd >= 0)
        rc = link_or_copy(sfd, src, dfd, dst, dname, NULL, c->err);
    else if (dfd < 0)
        rc = zerr_sys(c->err, errno, "backup: %s", dst);
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    if (rc)
        return rc;
    sname[-1] = dname[-1] = '/';
    if (stat(dst, &st) < 0)
        return zerr_set(c->err, ZE_NOTFOUND,
                        "backup: blob file %s is missing (removed by a pack during the "
                        "backup: run it again; else the database is damaged)", src);
    return 0;
}

/* Every record of the copy (values: earlier records of an oid in a
 * transaction and those whose index entry is not applied yet included). */
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
        if (k.mv_size == ST_VKEY_LEN && v.mv_size >= ST_VAL_HDR && (p[1] & ST_RF_BLOB))
            bad = check_blob(c, zbe64(p + 4), zbe64(k.mv_data));
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
        (rc = mdb_dbi_open(txn, "values", 0, &dbi)))
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

int store__lmdb_backup_progress(store *s, const char *dest, int compact, store_progress_fn fn,
                          void *data, zerr *err)
{
    char blobs[4096];
    int created;
    progress p = {fn, data, 0, 0};
    int rc = make_dest(dest, &created, err);
    if (rc)
        return rc;
    if ((rc = join(blobs, sizeof blobs, dest, "blobs", err)) ||
        (rc = blob_skeleton(blobs, err)) ||
        (rc = copy_blobs(s, blobs, &p, err)) ||
        (rc = copy_env(s, dest, compact, &p, err)) ||
        (rc = copy_blobs(s, blobs, &p, err)) ||
        (rc = check_copy(s, dest, blobs, err)) ||
        (rc = sync_dest(dest, err)))
        discard_dest(dest, created);
    return rc;
}

int store__lmdb_backup(store *s, const char *dest, int compact, zerr *err)
{
    return store_backup_progress(s, dest, compact, NULL, NULL, err);
}
