/* preflight.c: what a start checks before it changes anything on disk.
 *
 * A start binds its listeners first and creates files (log, databases, pid
 * file) only after that, so a port in use leaves nothing behind; everything
 * that can be checked without creating is checked here, before the bind,
 * and `serve --test` stops after these checks. The worst start of all, a
 * runzeo user pointing -f at the folder of their Data.fs and serving an
 * empty database beside it, is refused with the import that converts it. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder path lives in, as dirname() gives it. */
static void folder_of(const char *path, char *buf, size_t cap)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(buf, cap, "%s", dirname(tmp));
}

/* A file the server will write (what: "pid file"): when it
 * exists, writable; else its folder exists and takes new files. */
static int file_target(const char *what, const char *path, zerr *err)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return zerr_set(err, ZE_INVAL, "%s %s is a folder", what, path);
        if (access(path, W_OK) < 0)
            return zerr_sys(err, errno, "%s %s", what, path);
        return 0;
    }
    if (errno != ENOENT)
        return zerr_sys(err, errno, "%s %s", what, path);
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return zerr_set(err, ZE_NOTFOUND, "%s %s: folder %s does not exist", what, path, dir);
    if (access(dir, W_OK | X_OK) < 0)
        return zerr_sys(err, errno, "%s %s: folder %s", what, path, dir);
    return 0;
}

static int check_address(const char *address, zerr *err)
{
    zsrv_address a;
    int rc = zsrv__address_parse(address, &a, err);
    if (rc < 0)
        return rc;
    if (a.is_unix) {
        struct stat st;
        if (lstat(address, &st) == 0 && !S_ISSOCK(st.st_mode))
            return zerr_set(err, ZE_EXISTS, "socket path %s exists and is not a socket", address);
        char dir[PATH_MAX];
        folder_of(address, dir, sizeof dir);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
            return zerr_set(err, ZE_NOTFOUND, "socket path %s: folder %s does not exist",
                            address, dir);
        return 0;
    }
    struct addrinfo *res;
    if ((rc = zsrv__address_resolve(address, &a, &res, err)) < 0)
        return rc;
    freeaddrinfo(res);
    return 0;
}

/* --metrics HOST:PORT: a TCP address that resolves. */
static int check_metrics_address(const char *address, zerr *err)
{
    zsrv_address a;
    struct addrinfo *res;
    if (zsrv__address_parse(address, &a, err) < 0 || a.is_unix)
        return zerr_set(err, ZE_INVAL, "bad metrics address '%s' (HOST:PORT, the port in "
                        "1-65535)", address);
    int rc = zsrv__address_resolve(address, &a, &res, err);
    if (rc == 0)
        freeaddrinfo(res);
    return rc;
}

static int check_tls_files(const zsrv_config *c, zerr *err)
{
    const char *files[] = {c->ssl_cert, c->ssl_key, c->ssl_ca};
    const char *what[] = {"TLS certificate", "TLS key", "TLS client CA"};
    for (int i = 0; i < 3; i++)
        if (files[i] && access(files[i], R_OK) < 0)
            return zerr_sys(err, errno, "%s %s", what[i], files[i]);
    return 0;
}

/* ---- storages ---------------------------------------------------------- */

/* A FileStorage file: "FS21" (Python 3) or "FS30" at its start. */
static int is_filestorage(const char *path)
{
    FILE *f = fopen(path, "rb");
    char magic[4];
    int yes = f && fread(magic, 1, 4, f) == 4 &&
              (!memcmp(magic, "FS21", 4) || !memcmp(magic, "FS30", 4));
    if (f)
        fclose(f);
    return yes;
}

/* The first FileStorage (*.fs) in dir, into found; 0 when there is none. */
static int find_filestorage(const char *dir, char *found, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int hit = 0;
    while (d && !hit && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".fs"))
            continue;
        if ((size_t)snprintf(found, cap, "%s/%s", dir, e->d_name) < cap)
            hit = is_filestorage(found);
    }
    if (d)
        closedir(d);
    return hit;
}

/* runzeo's blob directory next to a Data.fs in dir: blobs/ (ZEO's examples)
 * or Plone's blobstorage/ beside or above it; "" when none has a .layout. */
static void find_blob_dir(const char *dir, char *out, size_t cap)
{
    static const char *const names[] = {"blobs", "blobstorage", "../blobstorage"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char layout[PATH_MAX + 32];
        snprintf(layout, sizeof layout, "%s/%s/.layout", dir, names[i]);
        if (access(layout, F_OK) == 0) {
            snprintf(out, cap, " --blobs %s/%s", dir, names[i]);
            return;
        }
    }
}

static int refuse_filestorage(const char *given, const char *fs, zerr *err)
{
    char dir[PATH_MAX], blobs[PATH_MAX + 16];
    folder_of(fs, dir, sizeof dir);
    find_blob_dir(dir, blobs, sizeof blobs);
    return zerr_set(err, ZE_EXISTS,
                    "%s holds a FileStorage (%s) and no zeolite database; serving it would "
                    "start an empty database beside your data. Convert it first with\n"
                    "  zeolite import %s %s/zeolite%s\n"
                    "and serve %s/zeolite", given, fs, fs, dir, blobs, dir);
}

static int check_storage(const zsrv_config *c, const zsrv_storage_cfg *sc, zerr *err)
{
    struct stat st;
    char fs[PATH_MAX];
    int read_only = c->read_only || sc->read_only;
    if (sc->dsn && sc->shared && read_only)   /* the store's feed needs a writer */
        return zerr_set(err, ZE_INVAL, "storage %s: shared and read-only cannot go together: "
                        "a shared server learns the others' commits through a session of "
                        "its own that a read-only one does not open (serve it without "
                        "shared, or not read-only)", sc->name);
    if (sc->dsn)   /* reached at start: libpq's message if it cannot be */
        return 0;
    if (stat(sc->path, &st) < 0) {
        if (errno != ENOENT)
            return zerr_sys(err, errno, "storage %s: %s", sc->name, sc->path);
        char dir[PATH_MAX];
        folder_of(sc->path, dir, sizeof dir);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
            return zerr_set(err, ZE_NOTFOUND, "storage %s: cannot create %s: folder %s does "
                            "not exist", sc->name, sc->path, dir);
        if (access(dir, W_OK | X_OK) < 0)
            return zerr_sys(err, errno, "storage %s: cannot create %s", sc->name, sc->path);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (is_filestorage(sc->path))
            return refuse_filestorage(sc->path, sc->path, err);
        return zerr_set(err, ZE_INVAL, "storage %s: %s is not a folder (a zeolite database "
                        "is a folder)", sc->name, sc->path);
    }
    if (!store_exists(sc->path) && find_filestorage(sc->path, fs, sizeof fs))
        return refuse_filestorage(sc->path, fs, err);
    if (access(sc->path, read_only ? R_OK | X_OK : R_OK | W_OK | X_OK) < 0)
        return zerr_sys(err, errno, "storage %s: %s", sc->name, sc->path);
    return 0;
}

int zsrv__preflight(zsrv *s, zerr *err)
{
    const zsrv_config *c = s->cfg;
    int rc;
    if ((rc = check_address(c->address, err)) < 0 || (rc = check_tls_files(c, err)) < 0 ||
        (rc = zsrv__tls_ctx_new(s, c, err)) < 0)
        return rc;
    if (c->pid_file && (rc = file_target("pid file", c->pid_file, err)) < 0)
        return rc;
    if ((rc = zsrv__log_check(c, err)) < 0)
        return rc;
    if (c->metrics_address && (rc = check_metrics_address(c->metrics_address, err)) < 0)
        return rc;
    for (size_t i = 0; i < c->n_storages; i++)
        if ((rc = check_storage(c, &c->storages[i], err)) < 0)
            return rc;
    return 0;
}

int zsrv__preflight_storages(zsrv *s, zerr *err)
{
    const zsrv_config *c = s->cfg;
    for (size_t i = 0; i < c->n_storages; i++) {
        const zsrv_storage_cfg *sc = &c->storages[i];
        if (!sc->dsn && !store_exists(sc->path))
            continue;   /* a start creates it; check_storage saw that it can */
        store_options opt = {.read_only = 1, .blob_dir = sc->blob_cache};
        store *st;
        int rc = sc->dsn ? store_open_postgresql(&st, sc->dsn, &opt, err)
                         : store_open(&st, sc->path, &opt, err);
        if (rc == ZE_NOTFOUND && sc->dsn)
            continue;   /* an empty database: a start makes the schema */
        if (rc < 0)
            return rc;
        store_close(st);
    }
    return 0;
}
