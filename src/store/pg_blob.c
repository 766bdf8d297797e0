/* pg_blob.c: blobs on PostgreSQL. The bytes live in zeolite.blob_chunks,
 * STPG_BLOB_CHUNK at a time, never whole in memory; the blob folder is a
 * cache of them in the bushy layout, which may be deleted at any time: a
 * file missing there is fetched again (to a temporary file, then renamed
 * into place, so no one sees half a file). Files in the cache are reached
 * without following links, as the LMDB store's blob folder is. */
#define _GNU_SOURCE /* renameat2 */
#include "store/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"

/* ---- the folder ------------------------------------------------------------------ */

static int open_folders(stpg_store *s, zerr *err)
{
    int rc = zfile_mkdirs(s->blob_dir, 0777, err);
    if (rc)
        return rc;
    s->blob_fd = open(s->blob_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->blob_fd < 0)
        return zerr_sys(err, errno, "open the blob cache %s", s->blob_dir);
    int tfd = zfile_open_dir_at(s->blob_fd, s->blob_dir, "tmp", ZFILE_CREATE, 0777, err);
    if (tfd < 0)
        return tfd;
    s->tmp_fd = tfd;
    zblob_layout layout;
    rc = zblob_layout_read(s->blob_dir, &layout, err);
    if (rc == ZE_NOTFOUND) {
        zerr_clear(err);
        return zblob_layout_write(s->blob_dir, ZBLOB_BUSHY, err);
    }
    if (!rc && layout != ZBLOB_BUSHY)
        return zerr_set(err, ZE_CORRUPT, "%s/.layout says '%s', zeolite uses 'bushy'",
                        s->blob_dir, zblob_layout_name(layout));
    return rc;
}

/* 1 when the folder open as fd has been deleted. */
static int gone(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/* The cache may be deleted at any time: a folder found deleted is made and
 * opened again. The descriptors it replaces stay open until close, since
 * another thread may be using them right now. */
static void revive(stpg_store *s)
{
    if (!gone(s->blob_fd) && !gone(s->tmp_fd))
        return;
    pthread_mutex_lock(&s->blob_mu);
    if ((gone(s->blob_fd) || gone(s->tmp_fd)) && s->n_retired + 2 <= 16) {
        s->retired[s->n_retired++] = s->blob_fd;
        s->retired[s->n_retired++] = s->tmp_fd;
        s->blob_fd = s->tmp_fd = -1;
        if (open_folders(s, NULL))
            store__pg_log(s, STORE_LOG_ERROR, "the blob cache %s was deleted and cannot be "
                          "made again", s->blob_dir);
    }
    pthread_mutex_unlock(&s->blob_mu);
}

int store__pg_blob_init(stpg_store *s, zerr *err)
{
    char path[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    if (s->opt_blob_dir) {
        s->blob_dir = strdup(s->opt_blob_dir);
    } else {
        snprintf(path, sizeof path, "%s/zeolite-blobs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(path))
            return zerr_sys(err, errno, "create a blob cache folder in %s",
                            tmp && *tmp ? tmp : "/tmp");
        s->blob_dir = strdup(path);
        s->own_blob_dir = 1;
    }
    if (!s->blob_dir || asprintf(&s->blob_tmp, "%s/tmp", s->blob_dir) < 0) {
        s->blob_tmp = NULL;
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    int rc = open_folders(s, err);
    if (rc)
        return rc;
    /* what a process that ended left in tmp/ is of no use */
    zfile_empty_dir(s->blob_tmp, NULL);
    return 0;
}

void store__pg_blob_close(stpg_store *s)
{
    if (s->tmp_fd >= 0)
        close(s->tmp_fd);
    if (s->blob_fd >= 0)
        close(s->blob_fd);
    s->tmp_fd = s->blob_fd = -1;
    for (int i = 0; i < s->n_retired; i++)
        if (s->retired[i] >= 0)
            close(s->retired[i]);
    s->n_retired = 0;
    if (s->own_blob_dir && s->blob_dir)
        zfile_rm_rf(s->blob_dir, NULL);
    free(s->blob_tmp);
    free(s->blob_dir);
    s->blob_tmp = s->blob_dir = NULL;
}

int store__pg_blob_path(store *ss, uint64_t oid, uint64_t tid, char *buf, size_t cap)
{
    return zblob_path(stpg_of(ss)->blob_dir, ZBLOB_BUSHY, oid, tid, buf, cap);
}

int store__pg_blob_tmpfile(store *ss, char *buf, size_t cap, int *fd, zerr *err)
{
    stpg_store *s = stpg_of(ss);
    char name[16];
    if (strlen(s->blob_tmp) + 1 + sizeof name > cap)
        return zerr_set(err, ZE_TOOBIG, "blob temp name does not fit %zu bytes", cap);
    revive(s);
    int f = zfile_mktemp_at(s->tmp_fd, s->blob_tmp, "blob", name, sizeof name, err);
    if (f < 0)
        return f;
    snprintf(buf, cap, "%s/%s", s->blob_tmp, name);
    *fd = f;
    return 0;
}

/* The open folder holding path and the file's name in it: tmp/ and the
 * oid folders of the cache are reached without following a link; a path
 * elsewhere (a caller's own file) is taken as it is. */
static int folder_of(stpg_store *s, const char *path, char *dir, size_t cap, const char **name,
                     zerr *err)
{
    const char *slash = strrchr(path, '/');
    size_t n = strlen(s->blob_dir), dlen = slash ? (size_t)(slash - path) : 0;
    if (!slash || !slash[1] || dlen >= cap)
        return zerr_set(err, ZE_INVAL, "blob file %s: not a file path", path);
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    *name = slash + 1;
    if (strncmp(path, s->blob_dir, n) || path[n] != '/') {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? zerr_sys(err, errno, "open folder %s", dir) : fd;
    }
    const char *rel = dlen > n ? dir + n + 1 : "";
    if (!strcmp(rel, "tmp"))
        return zfile_open_dir_at(s->tmp_fd, s->blob_tmp, "", 0, 0, err);
    int fd = zfile_open_dir_at(s->blob_fd, s->blob_dir, rel, 0, 0, err);
    return fd == ZE_NOTFOUND ? zerr_set(err, ZE_NOTFOUND, "%s does not exist", path) : fd;
}

/* path, opened as a plain file for reading (with *st). */
static int open_src(stpg_store *s, const char *path, int linked_ok, struct stat *st,
                    zerr *err)
{
    char dir[PATH_MAX];
    const char *name = NULL;
    int dfd = folder_of(s, path, dir, sizeof dir, &name, err);
    if (dfd < 0)
        return dfd;
    int fd = zfile_open_plain_at(dfd, dir, name, O_RDONLY, linked_ok ? ZFILE_LINKED_OK : 0, st,
                                 err);
    close(dfd);
    return fd;
}

int store__pg_blob_check(stpg_store *s, const char *path, int linked_ok, zerr *err)
{
    int fd = open_src(s, path, linked_ok, NULL, err);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

void store__pg_blob_discard_queued(stpg_store *s, const char *path, int linked_ok)
{
    char dir[PATH_MAX];
    const char *name = NULL;
    int dfd = folder_of(s, path, dir, sizeof dir, &name, NULL);
    if (dfd < 0)
        return;
    zfile_unlink_plain_at(dfd, dir, name, linked_ok ? ZFILE_LINKED_OK : 0, NULL);
    close(dfd);
}

int store__pg_blob_discard(store *ss, const char *path)
{
    stpg_store *s = stpg_of(ss);
    char dir[PATH_MAX];
    const char *name = NULL;
    int dfd = folder_of(s, path, dir, sizeof dir, &name, NULL);
    if (dfd < 0)
        return dfd;
    int rc = zfile_unlink_plain_at(dfd, dir, name, 0, NULL);
    close(dfd);
    return rc;
}

/* ---- into the database ------------------------------------------------------------- */

static int put_chunk(stpg_store *s, stpg_conn *c, int64_t id, int32_t n, const void *p,
                     size_t len, zerr *err)
{
    stpg_params q = {0};
    stpg_p_i64(&q, id);
    stpg_p_i32(&q, n);
    stpg_p_bytes(&q, p, len);
    PQclear(store__pg_exec(s, c, Q_BLOB_CHUNK_PUT, &q, err));
    return c->rc;
}

int store__pg_blob_upload(stpg_store *s, stpg_conn *c, const char *path, int linked_ok,
                          int64_t *blob_id, zerr *err)
{
    int fd = open_src(s, path, linked_ok, NULL, err);
    if (fd < 0)
        return fd;
    uint8_t *buf = malloc(STPG_BLOB_CHUNK);
    PGresult *r = buf ? store__pg_exec(s, c, Q_BLOB_NEW_ID, NULL, err) : NULL;
    int rc = !buf ? zerr_set(err, ZE_NOMEM, "out of memory") : c->rc;
    int64_t id = r && PQntuples(r) == 1 ? stpg_get_i64(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    for (int32_t n = 0; !rc; n++) {
        size_t got = 0;
        while (got < STPG_BLOB_CHUNK) {
            ssize_t k = read(fd, buf + got, STPG_BLOB_CHUNK - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                rc = zerr_sys(err, errno, "read blob %s", path);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        if (rc || !got)
            break;
        rc = put_chunk(s, c, id, n, buf, got, err);
    }
    free(buf);
    close(fd);
    if (!rc)
        *blob_id = id;
    return rc;
}

/* ---- the cache ------------------------------------------------------------------------ */

/* rename without replacing what is at the target; -1 with errno. */
static int move_at(int sdfd, const char *sname, int ddfd, const char *dname)
{
    if (renameat2(sdfd, sname, ddfd, dname, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    struct stat st;
    if (fstatat(ddfd, dname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(sdfd, sname, ddfd, dname);
}

/* Move the plain file name of folder sdfd to (oid, tid) in the cache; a
 * file already there (another reader fetched it) is kept and ours goes. */
static int install(stpg_store *s, int sdfd, const char *sname, uint64_t oid, uint64_t tid,
                   zerr *err)
{
    char name[ZBLOB_NAME_MAX];
    zblob_file_name(tid, name);
    int ddfd = zblob_oid_dir_open(s->blob_fd, s->blob_dir, ZBLOB_BUSHY, oid, ZFILE_CREATE, err);
    if (ddfd < 0)
        return ddfd;
    int rc = 0;
    if (move_at(sdfd, sname, ddfd, name) < 0) {
        rc = errno == EEXIST ? 0 : zerr_sys(err, errno, "move a blob into %s", s->blob_dir);
        unlinkat(sdfd, sname, 0);
    }
    close(ddfd);
    return rc;
}

void store__pg_blob_cache_put(stpg_store *s, const char *path, int linked_ok, uint64_t oid,
                              uint64_t tid)
{
    char dir[PATH_MAX];
    const char *name = NULL;
    struct stat st;
    int dfd = folder_of(s, path, dir, sizeof dir, &name, NULL);
    if (dfd < 0)
        return;
    int fd = zfile_open_plain_at(dfd, dir, name, O_RDONLY, linked_ok ? ZFILE_LINKED_OK : 0,
                                 &st, NULL);
    /* a file with other links is the caller's: the cache gets its own copy
     * when it is loaded */
    if (fd >= 0 && st.st_nlink == 1 && fchmod(fd, 0444) == 0)
        install(s, dfd, name, oid, tid, NULL);
    else
        zfile_unlink_plain_at(dfd, dir, name, linked_ok ? ZFILE_LINKED_OK : 0, NULL);
    if (fd >= 0)
        close(fd);
    close(dfd);
}

void store__pg_blob_cache_drop(stpg_store *s, uint64_t oid, uint64_t tid)
{
    char name[ZBLOB_NAME_MAX];
    zblob_file_name(tid, name);
    int dfd = zblob_oid_dir_open(s->blob_fd, s->blob_dir, ZBLOB_BUSHY, oid, 0, NULL);
    if (dfd < 0)
        return;
    zfile_unlink_plain_at(dfd, s->blob_dir, name, 0, NULL);
    close(dfd);
}

/* The cached file of (oid, tid), open; ZE_NOTFOUND when not cached. */
static int cached(stpg_store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    char name[ZBLOB_NAME_MAX];
    zblob_file_name(tid, name);
    int dfd = zblob_oid_dir_open(s->blob_fd, s->blob_dir, ZBLOB_BUSHY, oid, 0, err);
    if (dfd < 0)
        return dfd;
    int fd = zfile_open_plain_at(dfd, s->blob_dir, name, O_RDONLY, 0, NULL, err);
    close(dfd);
    return fd;
}

typedef struct fetch_blob {
    int64_t id;
    int fd;                 /* the temporary file written */
    const char *shown;
} fetch_blob;

/* Stream the chunks into a->fd, one row at a time (single-row mode). */
static int fetch_run(stpg_store *s, stpg_conn *c, void *ud, zerr *err)
{
    fetch_blob *a = ud;
    stpg_params p = {0};
    int rc = store__pg_prepare(s, c, Q_BLOB_CHUNKS, err);
    if (rc)
        return rc;
    if (ftruncate(a->fd, 0) < 0 || lseek(a->fd, 0, SEEK_SET) < 0)
        return zerr_sys(err, errno, "truncate %s", a->shown);
    stpg_p_i64(&p, a->id);
    if (!PQsendQueryPrepared(c->pg, store__pg_sql[Q_BLOB_CHUNKS].name, p.n, p.v, p.len, p.fmt,
                             1) || !PQsetSingleRowMode(c->pg))
        return c->rc = store__pg_error(s, c, NULL, "load blob", err);
    for (PGresult *r; (r = PQgetResult(c->pg)); PQclear(r)) {
        ExecStatusType st = PQresultStatus(r);
        if (rc || st == PGRES_TUPLES_OK)
            continue;
        if (st != PGRES_SINGLE_TUPLE) {
            rc = c->rc = store__pg_error(s, c, r, "load blob", err);
            continue;
        }
        const char *q = PQgetvalue(r, 0, 0);
        size_t n = (size_t)PQgetlength(r, 0, 0);
        while (n && !rc) {
            ssize_t k = write(a->fd, q, n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                rc = zerr_sys(err, errno, "write %s", a->shown);
            else
                q += k, n -= (size_t)k;
        }
    }
    return rc;
}

/* Fetch blob id into the cache as (oid, tid). */
static int fetch(stpg_store *s, int64_t id, uint64_t oid, uint64_t tid, zerr *err)
{
    char name[16];
    int fd = zfile_mktemp_at(s->tmp_fd, s->blob_tmp, "load", name, sizeof name, err);
    if (fd < 0)
        return fd;
    fetch_blob a = {id, fd, s->blob_tmp};
    int rc = store__pg_read(s, fetch_run, &a, err);
    if (!rc && fchmod(fd, 0444) < 0)
        rc = zerr_sys(err, errno, "chmod a blob in %s", s->blob_tmp);
    close(fd);
    if (!rc)
        rc = install(s, s->tmp_fd, name, oid, tid, err);
    else
        unlinkat(s->tmp_fd, name, 0);
    return rc;
}

/* (oid, tid)'s record (bounded by last) and its blob, opened. */
static int open_blob(stpg_store *s, uint64_t oid, uint64_t tid, uint64_t last, int visible,
                     zerr *err)
{
    stpg_params p = {0};
    PGresult *r;
    stpg_p_id(&p, oid);
    stpg_p_id(&p, tid);
    stpg_p_id(&p, last);
    int rc = store__pg_fetch(s, Q_BLOB_OF, &p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    int flags = n ? stpg_get_i16(PQgetvalue(r, 0, 1)) : 0;
    int64_t id = n && !PQgetisnull(r, 0, 2) ? stpg_get_i64(PQgetvalue(r, 0, 2)) : 0;
    PQclear(r);
    if (!n || (visible && (flags & STPG_RF_HIDDEN)))
        return zerr_set(err, ZE_NOTFOUND, "oid %016llx has no revision %016llx",
                        (unsigned long long)oid, (unsigned long long)tid);
    if (!(flags & STPG_RF_BLOB))
        return zerr_set(err, ZE_NOTFOUND, "oid %016llx revision %016llx has no blob",
                        (unsigned long long)oid, (unsigned long long)tid);
    revive(s);
    int fd = cached(s, oid, tid, NULL);
    if (fd != ZE_NOTFOUND)
        return fd;
    if (!id)
        return zerr_set(err, ZE_NOTFOUND, "the blob of oid %016llx revision %016llx is "
                        "missing", (unsigned long long)oid, (unsigned long long)tid);
    if ((rc = fetch(s, id, oid, tid, err)))
        return rc;
    return cached(s, oid, tid, err);
}

int store__pg_open_blob(store_reader *rr, uint64_t oid, uint64_t serial, char *buf, size_t cap,
                        int *fd, zerr *err)
{
    stpg_reader *r = stpg_rd(rr);
    if (zblob_path(r->s->blob_dir, ZBLOB_BUSHY, oid, serial, buf, cap))
        return zerr_set(err, ZE_TOOBIG, "blob path does not fit %zu bytes", cap);
    int f = open_blob(r->s, oid, serial, r->last_tid, 1, err);
    if (f < 0)
        return f;
    *fd = f;
    return 0;
}

int store__pg_blob_file_open(store *s, uint64_t oid, uint64_t tid, zerr *err)
{
    return open_blob(stpg_of(s), oid, tid, UINT64_MAX, 0, err);
}
