/* store.c: opening and closing a database folder, its lock, meta values and
 * the small queries on the whole store. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store/blob.h"
#include "store/index.h"
#include "store/writer.h"

#define LOCK_NAME "zeolite.lock"
#define DATA_NAME "data.mdb"
#define FULL_DISK_BYTES (1u << 20)   /* less free than this: the disk is full */
#define DEFAULT_MAP (1ull << 30)       /* first reservation; grows by doubling */
#define DEFAULT_MAP_MAX (1ull << 40)   /* growth cap with the default size */
#define INDEX_BATCH 131072             /* overlay entries applied at once (docs/commit-path.md) */

int store__mdb_err(zerr *err, int rc, const char *what)
{
    int code;
    switch (rc) {
    case MDB_NOTFOUND: code = ZE_NOTFOUND; break;
    case MDB_MAP_FULL: case ENOSPC: case EDQUOT: case EFBIG: code = ZE_FULL; break;
    case MDB_READERS_FULL: case MDB_MAP_RESIZED: code = ZE_BUSY; break;
    case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
    case MDB_VERSION_MISMATCH: case MDB_INCOMPATIBLE: code = ZE_CORRUPT; break;
    case MDB_BAD_VALSIZE: code = ZE_TOOBIG; break;
    case ENOMEM: code = ZE_NOMEM; break;
    default: code = ZE_IO; break;
    }
    return zerr_set(err, code, "%s: %s", what, mdb_strerror(rc));
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* LMDB reports a write cut short as EIO, and a write that meets a full disk
 * or the file size limit is usually cut short: say which, when one of them
 * explains it, so the operator knows what to do. */
static int explain_full(store *s, zerr *err, const char *what)
{
    char *path = path_join(s->dir, DATA_NAME);
    struct stat st;
    struct rlimit lim;
    struct statvfs vfs;
    int known = path && stat(path, &st) == 0;
    free(path);
    if (known && getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        (uint64_t)st.st_size >= (uint64_t)lim.rlim_cur)
        return zerr_set(err, ZE_FULL, "%s: no room to write %s: the file size limit "
                        "(%llu bytes) is reached", what, DATA_NAME,
                        (unsigned long long)lim.rlim_cur);
    if (statvfs(s->dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < FULL_DISK_BYTES)
        return zerr_set(err, ZE_FULL, "%s: no room to write %s: the disk holding it is "
                        "full (%llu bytes free)", what, s->dir,
                        (unsigned long long)vfs.f_bavail * vfs.f_frsize);
    return 0;
}

int store__mdb_write_err(store *s, zerr *err, int rc, const char *what)
{
    if (rc == EIO || rc == ENOSPC || rc == EFBIG) {
        int code = explain_full(s, err, what);
        if (code)
            return code;
    }
    return store__mdb_err(err, rc, what);
}

int store__pin(store *s, zerr *err)
{
    if (atomic_fetch_add(&s->pinned, 1) < ST_PINNED_MAX)
        return 0;
    atomic_fetch_sub(&s->pinned, 1);
    return zerr_set(err, ZE_BUSY, "%d snapshots are open: the other %d reader slots are "
                    "kept for votes and single reads", ST_PINNED_MAX,
                    ST_MAX_READERS - ST_PINNED_MAX);
}

void store__unpin(store *s)
{
    atomic_fetch_sub(&s->pinned, 1);
}

int store__adopt_map_size(store *s)
{
    pthread_rwlock_unlock(&s->map_lock);
    pthread_rwlock_wrlock(&s->map_lock);
    int rc = mdb_env_set_mapsize(s->env, 0);
    if (!rc) {
        MDB_envinfo info;
        mdb_env_info(s->env, &info);
        s->map_size = info.me_mapsize;
    }
    atomic_fetch_add(&s->map_gen, 1);
    pthread_rwlock_unlock(&s->map_lock);
    pthread_rwlock_rdlock(&s->map_lock);
    return rc;
}

int store__read_begin(store *s, MDB_txn **out, zerr *err)
{
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, out);
    if (rc == MDB_MAP_RESIZED && !store__adopt_map_size(s))
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, out);
    return rc ? store__mdb_err(err, rc, "begin read transaction") : 0;
}

int store__meta_get(MDB_txn *txn, store *s, const char *name, uint64_t *v, zerr *err)
{
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(txn, s->dbi_meta, &k, &d);
    if (rc == MDB_NOTFOUND)
        return ZE_NOTFOUND;
    if (rc)
        return store__mdb_err(err, rc, "read meta");
    if (d.mv_size != 8)
        return zerr_set(err, ZE_CORRUPT, "meta value %s has %zu bytes", name, d.mv_size);
    *v = zbe64(d.mv_data);
    return 0;
}

int store__meta_put(MDB_txn *txn, store *s, const char *name, uint64_t v, zerr *err)
{
    uint8_t buf[8];
    zbe64_put(buf, v);
    MDB_val k = {strlen(name), (void *)name}, d = {8, buf};
    int rc = mdb_put(txn, s->dbi_meta, &k, &d, 0);
    return rc ? store__mdb_err(err, rc, "write meta") : 0;
}

int store__last_tid(MDB_txn *txn, store *s, MDB_cursor *txc, uint64_t *tid, zerr *err)
{
    MDB_cursor *cur = txc;
    MDB_val k, v;
    *tid = 0;
    int rc = store__meta_get(txn, s, "last_tid", tid, err);
    if (rc && rc != ZE_NOTFOUND)
        return rc;
    if (!cur && (rc = mdb_cursor_open(txn, s->dbi_txns, &cur)))
        return store__mdb_err(err, rc, "open cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (!txc)
        mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store__mdb_err(err, rc, "read the last transaction");
    if (k.mv_size != 8)
        return zerr_set(err, ZE_CORRUPT, "transaction key of %zu bytes", k.mv_size);
    if (zbe64(k.mv_data) > *tid)
        *tid = zbe64(k.mv_data);
    return 0;
}

void store__objects_adjust(store *s, int64_t delta)
{
    pthread_mutex_lock(&s->mu);
    if (delta < 0 && (uint64_t)-delta > s->objects)
        s->objects = 0;
    else
        s->objects += (uint64_t)delta;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the folder and its lock -------------------------------------------- */

static int check_folder(const char *dir, const store_options *opt, zerr *err)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || !opt->create || opt->read_only)
            return errno == ENOENT
                       ? zerr_set(err, ZE_NOTFOUND, "database folder %s does not exist", dir)
                       : zerr_sys(err, errno, "database folder %s", dir);
        if (mkdir(dir, 0777) < 0)
            return zerr_sys(err, errno, "create database folder %s", dir);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return zerr_set(err, ZE_INVAL, "%s is not a folder", dir);
    if (access(dir, opt->read_only ? (R_OK | X_OK) : (R_OK | W_OK | X_OK)) < 0)
        return zerr_sys(err, errno, "database folder %s", dir);
    return 0;
}

/* A flock on dir/zeolite.lock: exclusive openers (servers) hold it for the
 * store's life, so tools can tell a database is in use. */
static int take_lock(store *s, zerr *err)
{
    char *path = path_join(s->dir, LOCK_NAME);
    if (!path)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    int saved = errno;
    free(path);
    if (s->lock_fd < 0)
        return zerr_sys(err, saved, "open lock file in %s", s->dir);
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return zerr_set(err, ZE_BUSY, "database %s is in use by another process "
                            "(a running server?)", s->dir);
        return zerr_sys(err, errno, "lock %s", s->dir);
    }
    return 0;
}

int store__lmdb_is_locked(const char *dir)
{
    char *path = path_join(dir, LOCK_NAME);
    if (!path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return 0;
    int locked = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd);
    return locked;
}

/* ---- the LMDB environment ----------------------------------------------- */

static int env_open(store *s, zerr *err)
{
    int rc = mdb_env_create(&s->env);
    if (rc)
        return store__mdb_err(err, rc, "create LMDB environment");
    s->map_size = s->opt.map_size ? s->opt.map_size : DEFAULT_MAP;
    s->map_max = s->opt.map_size ? s->opt.map_size : DEFAULT_MAP_MAX;
    unsigned flags = MDB_NOTLS;
    if (s->opt.read_only)
        flags |= MDB_RDONLY;
    if (s->opt.no_sync)
        flags |= MDB_NOSYNC;
    if ((rc = mdb_env_set_maxdbs(s->env, 4)) ||
        (rc = mdb_env_set_maxreaders(s->env, ST_MAX_READERS)) ||
        (rc = mdb_env_set_mapsize(s->env, s->map_size)))
        return store__mdb_err(err, rc, "configure LMDB environment");
    rc = mdb_env_open(s->env, s->dir, flags, 0666);
    if (rc)
        return store__mdb_err(err, rc, s->dir);
    /* An existing file may be larger than asked for: LMDB then keeps its size. */
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    if (s->map_max < s->map_size)
        s->map_max = s->map_size;
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    return 0;
}

static int open_dbis(store *s, MDB_txn *txn, const char *const *names, MDB_dbi *const *dbis,
                     size_t n, zerr *err)
{
    unsigned flags = s->opt.read_only ? 0 : MDB_CREATE;
    for (size_t i = 0; i < n; i++) {
        int rc = mdb_dbi_open(txn, names[i], flags, dbis[i]);
        if (rc == MDB_NOTFOUND)
            return zerr_set(err, ZE_CORRUPT, "%s is not a zeolite database", s->dir);
        if (rc)
            return store__mdb_err(err, rc, "open databases");
    }
    return 0;
}

/* The oid counter is past every stored oid. A database written before the
 * counter saturated may hold a counter that wrapped past the last oid:
 * raise it (durably, so it never goes back) to what the records prove. */
static int check_oid_counter(store *s, MDB_txn *txn, zerr *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->dbi_records, &cur);
    if (rc)
        return store__mdb_err(err, rc, "open cursor");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store__mdb_err(err, rc, "read the last record");
    if (k.mv_size != ST_KEY_LEN)
        return zerr_set(err, ZE_CORRUPT, "record key of %zu bytes", k.mv_size);
    uint64_t after = store__oid_after(zbe64(k.mv_data));
    if (s->next_oid >= after)
        return 0;
    s->next_oid = after;
    return s->opt.read_only ? 0 : store__meta_put(txn, s, "next_oid", after, err);
}

/* Check the format version (writing it into a new database) and load the
 * counters the store keeps in memory. */
static int load_meta(store *s, MDB_txn *txn, zerr *err)
{
    uint64_t version;
    int rc = store__meta_get(txn, s, "version", &version, err);
    if (rc == ZE_NOTFOUND) {
        MDB_stat st;
        mdb_stat(txn, s->dbi_txns, &st);
        if (s->opt.read_only || st.ms_entries)
            return zerr_set(err, ZE_CORRUPT, "%s: database has no format version", s->dir);
        rc = store__meta_put(txn, s, "version", STORE_FORMAT_VERSION, err);
        version = STORE_FORMAT_VERSION;
    }
    if (rc)
        return rc;
    if (version != STORE_FORMAT_VERSION)
        return zerr_set(err, ZE_VERSION, "%s: database format version %llu, this "
                        "zeolite reads version %d", s->dir,
                        (unsigned long long)version, STORE_FORMAT_VERSION);
    struct { const char *name; uint64_t *v; } vals[] = {
        {"next_oid", &s->next_oid}, {"objects", &s->objects}, {"indexed", &s->indexed},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        *vals[i].v = 0;
        rc = store__meta_get(txn, s, vals[i].name, vals[i].v, err);
        if (rc && rc != ZE_NOTFOUND)
            return rc;
    }
    if ((rc = store__last_tid(txn, s, NULL, &s->last_tid, err)) ||
        (rc = check_oid_counter(s, txn, err)))
        return rc;
    s->durable_tid = s->last_tid;
    s->indexed_txn = s->indexed;
    s->objects_saved = s->objects;
    s->oid_limit = s->next_oid;
    if (!s->next_oid)
        s->next_oid = 1;   /* oid 0 is the root, which the first client stores */
    return 0;
}

static int init_db(store *s, zerr *err)
{
    static const char *const first[] = {"meta", "records", "txns"};
    static const char *const then[] = {"values"};
    MDB_dbi *const first_dbi[] = {&s->dbi_meta, &s->dbi_records, &s->dbi_txns};
    MDB_dbi *const then_dbi[] = {&s->dbi_values};
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, s->opt.read_only ? MDB_RDONLY : 0, &txn);
    if (rc)
        return store__mdb_err(err, rc, "begin transaction");
    /* the format version decides before a table of this version is missed */
    rc = open_dbis(s, txn, first, first_dbi, 3, err);
    if (!rc)
        rc = load_meta(s, txn, err);
    if (!rc)
        rc = open_dbis(s, txn, then, then_dbi, 1, err);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    return rc ? store__mdb_err(err, rc, "initialise database") : 0;
}

/* The index entries of the transactions after meta "indexed", from
 * "values" (a crash may have left some), applied before anything else
 * runs (a read-only open keeps them in the overlay). */
static int recover_index(store *s, zerr *err)
{
    MDB_txn *txn;
    int rc = store__read_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = store__overlay_catch_up(s, txn, err);
    mdb_txn_abort(txn);
    if (rc || s->opt.read_only || !store__overlay_pending(s))
        return rc;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        return store__mdb_err(err, rc, "begin transaction");
    rc = store__index_apply(s, txn, err);
    if (rc) {
        mdb_txn_abort(txn);
    } else if ((rc = mdb_txn_commit(txn))) {
        rc = store__mdb_write_err(s, err, rc, "apply the index");
    }
    store__index_done(s, rc == 0);
    return rc;
}

int store__lmdb_exists(const char *dir)
{
    char *path = path_join(dir, DATA_NAME);
    int ok = path && access(path, F_OK) == 0;
    free(path);
    return ok;
}

int store__lmdb_open(store **out, const char *dir, const store_options *opt, zerr *err)
{
    static const store_options defaults;
    *out = NULL;
    if (!opt)
        opt = &defaults;
    int rc = check_folder(dir, opt, err);
    if (rc)
        return rc;
    if (!store_exists(dir) && (!opt->create || opt->read_only))
        return zerr_set(err, ZE_NOTFOUND, "no zeolite database in %s", dir);

    store *s = calloc(1, sizeof *s);
    if (!s)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    s->be = &store__lmdb_ops;
    s->opt = *opt;
    s->lock_fd = s->blob_fd = s->tmp_fd = -1;
    s->index_batch = opt->index_batch ? opt->index_batch : INDEX_BATCH;
    store__overlay_init(s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->oid_mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->done, NULL);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writer preference, so a map growth is not starved by a stream of loads. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    s->dir = strdup(dir);
    s->blob_dir = path_join(dir, "blobs");
    s->blob_tmp = s->blob_dir ? path_join(s->blob_dir, "tmp") : NULL;
    if (!s->dir || !s->blob_dir || !s->blob_tmp) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
        goto fail;
    }
    if (opt->exclusive && (rc = take_lock(s, err)))
        goto fail;
    /* A second writer would not share the server's in-memory state (last
     * tid, oid counter, pending commits): refuse it; readers are safe. */
    if (!opt->exclusive && !opt->read_only && store_is_locked(dir)) {
        rc = zerr_set(err, ZE_BUSY, "database %s is in use by another process "
                      "(a running server?); open it read-only", dir);
        goto fail;
    }
    if ((rc = env_open(s, err)) || (rc = init_db(s, err)) || (rc = recover_index(s, err)))
        goto fail;
    if ((rc = store__blob_init(s, err)))
        goto fail;
    if (!opt->read_only && (rc = store__writer_start(s, err)))
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store__lmdb_close(store *s)
{
    if (!s)
        return;
    store__writer_stop(s);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    store__blob_close(s);
    oidmap_free(&s->pending);
    store__overlay_free(s);
    pthread_rwlock_destroy(&s->map_lock);
    pthread_cond_destroy(&s->done);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->oid_mu);
    free(s->blob_tmp);
    free(s->blob_dir);
    free(s->dir);
    free(s);
}

/* ---- queries on the whole store ----------------------------------------- */

uint64_t store__lmdb_last_tid(store *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t tid = s->durable_tid;
    pthread_mutex_unlock(&s->mu);
    return tid;
}

int store__lmdb_is_read_only(store *s) { return s->opt.read_only; }

uint64_t store__lmdb_object_count(store *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->objects;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void store__lmdb_map_info(store *s, uint64_t *used, uint64_t *size)
{
    MDB_envinfo info;
    MDB_stat st;
    store__map_enter(s);
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    store__map_leave(s);
    *used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    *size = (uint64_t)info.me_mapsize;
}

uint64_t store__lmdb_size_bytes(store *s)
{
    uint64_t used, size;
    store_map_info(s, &used, &size);
    return used;
}

const char *store__lmdb_blob_dir(store *s) { return s->blob_dir; }

void store__lmdb_get_stats(store *s, store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}
