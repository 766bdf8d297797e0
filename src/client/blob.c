/* blob.c: blob uploads (storeBlob*) and downloads (sendBlob and the
 * receiveBlob* callbacks into the blob cache directory). */
#define _GNU_SOURCE /* asprintf */
#include "client/client_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"

char *zcl_blob_path(const zcl_client *c, uint64_t oid, uint64_t serial)
{
    char *path = NULL;
    const char *dir = c->opts.blob_dir;
    if (!dir)
        return NULL;
    if (c->opts.shared_blob_dir) {
        char buf[PATH_MAX];
        return zblob_path(dir, ZBLOB_BUSHY, oid, serial, buf, sizeof buf) ? NULL : strdup(buf);
    }
    int n = asprintf(&path, "%s/%llu/%llu.%016llx.blob", dir, (unsigned long long)(oid % 997),
                     (unsigned long long)(oid / 997), (unsigned long long)serial);
    return n < 0 ? NULL : path;
}

void zcl__blob_dl_abort(zcl_client *c)
{
    zcl_blob_dl *d = &c->dl;
    if (d->f) {
        fclose(d->f);
        unlink(d->tmp);
    }
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

static int dl_start(zcl_client *c, uint64_t oid, uint64_t serial)
{
    zcl_blob_dl *d = &c->dl;
    zcl__blob_dl_abort(c);
    char *path = zcl_blob_path(c, oid, serial);
    if (!path)
        return zerr_set(&c->err, ZE_PROTO, "server sent a blob but there is no blob dir");
    int n = asprintf(&d->tmp, "%s.dl", path);
    free(path);
    if (n < 0) {
        d->tmp = NULL;
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    }
    int rc = zfile_mkdirs_parent(d->tmp, 0700, &c->err);
    if (rc)
        return rc;
    if (!(d->f = fopen(d->tmp, "wb")))
        return zerr_sys(&c->err, errno, "cannot write %s", d->tmp);
    d->oid = oid;
    d->serial = serial;
    return 0;
}

static int dl_stop(zcl_client *c)
{
    zcl_blob_dl *d = &c->dl;
    char *path = zcl_blob_path(c, d->oid, d->serial);
    int failed = fclose(d->f) != 0;
    d->f = NULL;
    if (!path)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    if (failed || rename(d->tmp, path) < 0) {
        int rc = zerr_sys(&c->err, errno, "cannot store blob %s", path);
        unlink(d->tmp);
        free(path);
        return rc;
    }
    free(path);
    zcl__blob_dl_abort(c);
    return 0;
}

int zcl__blob_callback(zcl_client *c, const char *name, const zv *args)
{
    uint64_t oid, serial;
    int chunk = !strcmp(name, "receiveBlobChunk");
    if (proto_args_count(args, 2 + chunk, 2 + chunk, &c->err) < 0 ||
        proto_arg_oid(args, 0, &oid, &c->err) < 0 || proto_arg_tid(args, 1, &serial, &c->err) < 0)
        return zcl__malformed(c, name);
    if (!strcmp(name, "receiveBlobStart"))
        return dl_start(c, oid, serial);
    zcl_blob_dl *d = &c->dl;
    if (!d->f || d->oid != oid || d->serial != serial)
        return zerr_set(&c->err, ZE_PROTO, "%s without receiveBlobStart", name);
    if (!strcmp(name, "receiveBlobStop"))
        return dl_stop(c);
    zslice data;
    if (!chunk)
        return zerr_set(&c->err, ZE_PROTO, "unexpected call '%s' from server", name);
    if (proto_arg_bytes(args, 2, &data, &c->err) < 0)
        return zcl__malformed(c, name);
    if (fwrite(data.p, 1, data.len, d->f) != data.len)
        return zerr_sys(&c->err, errno, "cannot write %s", d->tmp);
    return 0;
}

/* ---- download ---------------------------------------------------------------- */

static void on_sent_blob(zcl_client *c, zcl_pending *p, int status, const zv *result,
                         const zerr *err)
{
    zcl_done_cb cb = (zcl_done_cb)p->cb;
    if (status == 0) {
        /* The reply means "done": the file must be there now. */
        char *path = zcl_blob_path(c, p->oid, p->tid);
        if (!path || access(path, R_OK) < 0)
            status = zerr_set(&c->err, ZE_NOTFOUND, "blob %016llx/%016llx not received",
                              (unsigned long long)p->oid, (unsigned long long)p->tid);
        free(path);
    } else {
        zcl__err_copy(&c->err, err, status);
    }
    cb(c, status, p->data);
}

int zcl_load_blob(zcl_client *c, uint64_t oid, uint64_t serial, zcl_done_cb cb, void *data)
{
    if (c->state != ZCL_ST_READY)
        return zerr_set(&c->err, ZE_CLOSED, "not connected");
    if (!c->opts.blob_dir)
        return zerr_set(&c->err, ZE_INVAL, "no blob directory configured");
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zcl__tid(c, oid), zcl__tid(c, serial));
    if (!args)
        return zerr_set(&c->err, ZE_NOMEM, "out of memory");
    return zcl__send_call(c, "sendBlob", args, on_sent_blob, (void *)cb, data, oid, serial);
}

int zcl_load_blob_sync(zcl_client *c, uint64_t oid, uint64_t serial, char **path, zerr *err)
{
    *path = zcl_blob_path(c, oid, serial);
    if (!*path)
        return zerr_set(err, ZE_INVAL, "no blob directory configured");
    if (access(*path, R_OK) == 0)
        return 0;
    int rc = ZE_NOTFOUND;
    if (c->opts.shared_blob_dir) {
        zerr_set(err, rc, "no blob file at %s", *path);
    } else {
        zcl__done_wait w = {0, 0};
        rc = zcl_load_blob(c, oid, serial, zcl__on_done_sync, &w);
        rc = zcl__sync_finish(c, rc, &w.done, &w.status, &c->err, err);
    }
    if (rc < 0) {
        free(*path);
        *path = NULL;
    }
    return rc;
}

/* ---- upload ------------------------------------------------------------------ */

static int send_chunks(zcl_client *c, FILE *f, zerr *err)
{
    uint8_t *buf = malloc(ZCL_BLOB_CHUNK);
    if (!buf)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int rc = 0;
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, ZCL_BLOB_CHUNK, f)) > 0) {
        zv_arena_reset(c->tmp_arena);
        zv *args = zcl__args(c, 1, zv_bytes(c->tmp_arena, buf, n));
        rc = args ? zcl_call_async(c, "storeBlobChunk", args) : ZE_NOMEM;
    }
    if (rc == 0 && ferror(f))
        rc = zerr_sys(err, errno, "cannot read the blob file");
    free(buf);
    return rc;
}

/* Shared blob dir: put the file in the oid's folder under a .tmp name the
 * server accepts, and tell the server that name. */
static int store_blob_shared(zcl_client *c, uint64_t oid, uint64_t serial, const void *data,
                             size_t len, const char *path, zerr *err)
{
    char dir[PATH_MAX], *tmp = NULL;
    if (zblob_oid_dir(c->opts.blob_dir, ZBLOB_BUSHY, oid, dir, sizeof dir))
        return zerr_set(err, ZE_TOOBIG, "blob folder path too long under %s", c->opts.blob_dir);
    if (asprintf(&tmp, "%s/zclXXXXXX.tmp", dir) < 0)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int fd = -1, rc = zfile_mkdirs(dir, 0700, err);
    if (rc == 0 && (fd = mkstemps(tmp, 4)) < 0)
        rc = zerr_sys(err, errno, "cannot create a file in %s", dir);
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
        /* A copy, not a link: the server takes only a file with one link
         * (or it could be anyone's), and the caller's file stays its own. */
        rc = zfile_copy(path, tmp, 0666, 0, err);
    }
    if (rc == 0)
        rc = zcl_store(c, oid, serial, data, len);
    if (rc == 0) {
        zv_arena_reset(c->tmp_arena);
        zv *args = zcl__args(c, 5, zcl__tid(c, oid), zcl__tid(c, serial),
                             zv_bytes(c->tmp_arena, data, len),
                             zv_cstr(c->tmp_arena, strrchr(tmp, '/') + 1),
                             zv_int(c->tmp_arena, c->txn.id));
        rc = args ? zcl_call_async(c, "storeBlobShared", args) : ZE_NOMEM;
        if (rc < 0)
            zcl__err_copy(err, &c->err, rc);
    }
    if (rc < 0 && fd >= 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int zcl_store_blob(zcl_client *c, uint64_t oid, uint64_t serial, const void *data, size_t len,
                   const char *path, zerr *err)
{
    if (c->opts.shared_blob_dir && c->opts.blob_dir)
        return store_blob_shared(c, oid, serial, data, len, path, err);
    FILE *f = fopen(path, "rb");
    if (!f)
        return zerr_sys(err, errno, "cannot open %s", path);
    int rc = zcl_store(c, oid, serial, data, len);
    if (rc < 0) {
        fclose(f);
        return zcl__err_copy(err, &c->err, rc);
    }
    zv_arena_reset(c->tmp_arena);
    rc = zcl_call_async(c, "storeBlobStart", zcl__args(c, 0));
    if (rc == 0)
        rc = send_chunks(c, f, err);
    fclose(f);
    if (rc == 0) {
        zv_arena_reset(c->tmp_arena);
        zv *args = zcl__args(c, 4, zcl__tid(c, oid), zcl__tid(c, serial),
                             zv_bytes(c->tmp_arena, data, len), zv_int(c->tmp_arena, c->txn.id));
        rc = args ? zcl_call_async(c, "storeBlobEnd", args) : ZE_NOMEM;
    }
    if (rc < 0) {
        /* A half-sent upload burst cannot be taken back: drop the session. */
        zcl__conn_lost(c, rc, "blob upload failed");
        return zcl__err_copy(err, NULL, rc);
    }
    return 0;
}
