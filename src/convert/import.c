/* import.c: Data.fs (+ blob directory) -> a zeolite database.
 *
 * A new database is built in a temporary folder beside the target and renamed
 * into place only when every transaction is in: a failed or interrupted
 * import leaves nothing behind. Appending to an existing database first
 * checks the whole file (so corruption refuses before anything is written)
 * and that the file continues the database's history, then commits the newer
 * transactions in bulk batches, at transaction boundaries.
 */
#define _GNU_SOURCE
#include "convert/convert.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zfile.h"
#include "convert/convert_int.h"
#include "store/store.h"

typedef struct importer {
    const zfs_import_opts *opt;
    zfs_import_stats *stats;
    store *s;
    zfs_reader *r;
    zblob_layout layout;
    uint64_t after;          /* append: import only tids above this */
    zprogress *progress;
} importer;

static store_rec_kind store_kind(zfs_kind k)
{
    switch (k) {
    case ZFS_DATA: return STORE_REC_DATA;
    case ZFS_BACKPTR: return STORE_REC_BACKPTR;
    default: return STORE_REC_DELETE;
    }
}

/* 1 when the record's (resolved) pickle is a Blob record. */
static int record_is_blob(importer *im, const zfs_rec *rec, zerr *err)
{
    if (rec->kind == ZFS_DATA)
        return zfs_is_blob_record(rec->data.p, rec->data.len);
    if (rec->kind != ZFS_BACKPTR)
        return 0;
    uint64_t dpos, plen;
    uint8_t head[64];
    int rc = zfs_reader_resolve(im->r, rec->back, &dpos, &plen, err);
    if (rc)
        return rc;
    if (plen == 0)
        return 0;
    size_t n = plen < sizeof head ? (size_t)plen : sizeof head;
    if ((rc = zfs_reader_pread(im->r, dpos, head, n, err)) != 0)
        return rc;
    return zfs_is_blob_record(head, n);
}

/* Put a copy (or link) of the record's blob file into the store's temporary
 * folder; the store renames it into place at commit. */
static int stage_blob(importer *im, const zfs_rec *rec, char *tmp, size_t cap, zerr *err)
{
    char src[PATH_MAX];
    struct stat st;
    if (!im->opt->blob_dir)
        return zerr_set(err, ZE_INVAL, "the record at offset %" PRIu64 " (oid 0x%016" PRIx64
                        ") is a blob: give the blob directory with --blobs", rec->pos, rec->oid);
    if (zblob_path(im->opt->blob_dir, im->layout, rec->oid, rec->tid, src, sizeof src))
        return zerr_set(err, ZE_TOOBIG, "blob path too long under %s", im->opt->blob_dir);
    if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
        return zerr_set(err, ZE_NOTFOUND, "blob file %s of oid 0x%016" PRIx64 " tid 0x%016"
                        PRIx64 " (record at offset %" PRIu64 ") is missing", src, rec->oid,
                        rec->tid, rec->pos);
    int rc = store_blob_tmpname(im->s, tmp, cap, err);
    if (rc)
        return rc;
    unlink(tmp);  /* a fresh name; the copy or link must create it */
    if ((rc = zfile_copy(src, tmp, 0444, im->opt->link ? ZFILE_LINK : 0, err)) != 0)
        return rc;
    im->stats->blobs++;
    return 0;
}

static int add_record(importer *im, store_txn *t, const zfs_rec *rec, zerr *err)
{
    char tmp[PATH_MAX];
    const char *blob = NULL;
    int rc = record_is_blob(im, rec, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if ((rc = stage_blob(im, rec, tmp, sizeof tmp, err)) != 0)
            return rc;
        blob = tmp;
    }
    store_record sr = {
        .oid = rec->oid,
        .tid = rec->tid,
        .kind = store_kind(rec->kind),
        .data = rec->data,
        .back_tid = rec->back_tid,
        .back_index = rec->back_index,
        .prev_zero = rec->prev_zero,
        .has_blob = blob != NULL,
    };
    rc = store_txn_restore_record(t, &sr, blob, err);
    if (rc && blob)
        unlink(blob);
    return rc;
}

/* Copy one transaction into the store: 0, ZFS_DROPPED when the salvaging
 * reader dropped it (nothing is committed), or an error. */
static int import_txn(importer *im, const zfs_txn *txn, zerr *err)
{
    store_txn_meta meta = {
        .user = txn->user.p, .user_len = txn->user.len,
        .description = txn->description.p, .description_len = txn->description.len,
        .extension = txn->extension.p, .extension_len = txn->extension.len,
        .status = txn->status, .tid = txn->tid,
    };
    store_txn *t = NULL;
    store_vote_result res = {0};
    zfs_rec rec;
    uint64_t tid = 0, nrec = 0;
    int rc = store_txn_begin(im->s, &meta, &t, err);
    while (!rc && (rc = zfs_reader_next_record(im->r, &rec, err)) == 1) {
        rc = add_record(im, t, &rec, err);
        nrec++;
    }
    /* the reader has checked the trailer: the transaction is complete */
    if (!rc)
        rc = store_txn_vote(t, &res, err);
    if (!rc)
        rc = store_txn_finish(t, &tid, err);
    if (!rc && tid != txn->tid)
        rc = zerr_set(err, ZE_INVAL, "the store gave tid 0x%016" PRIx64 " to transaction "
                      "0x%016" PRIx64, tid, txn->tid);
    if (rc && t)
        store_txn_abort(t);
    store_txn_free(t);
    if (!rc)
        im->stats->records += nrec;
    return rc;
}

static void note_tail_and_damage(importer *im)
{
    zfs_import_stats *st = im->stats;
    const char *what;
    st->undone = zfs_reader_undone_count(im->r);
    st->torn = zfs_reader_tail(im->r, &st->tail_pos, &what);
    if (st->torn)
        snprintf(st->tail_what, sizeof st->tail_what, "%s", what);
    st->damaged = zfs_reader_damage(im->r, &st->damaged_bytes, &st->damage_pos, &what);
    if (st->damaged)
        snprintf(st->damage_what, sizeof st->damage_what, "%s", what);
}

/* Read the whole file into the open store. */
static int run(importer *im, const char *fs_path, zerr *err)
{
    zfs_reader_opts ro = {.want_data = 1, .salvage = im->opt->salvage};
    zfs_txn txn;
    int rc = zfs_reader_open(&im->r, fs_path, &ro, err);
    if (rc)
        return rc;
    im->progress = zprogress_new("import", zfs_reader_size(im->r),
                                 im->opt->quiet ? &zprogress_silent : im->opt->progress);
    if ((rc = store_bulk_begin(im->s, err)) != 0)
        goto done;
    while ((rc = zfs_reader_next_txn(im->r, &txn, err)) == 1) {
        if (txn.tid <= im->after) {
            im->stats->skipped++;
            continue;
        }
        if (im->opt->cancel && *im->opt->cancel) {
            rc = zerr_set(err, ZE_IO, "interrupted at offset %" PRIu64 " after %" PRIu64
                          " transactions", txn.pos, im->stats->txns);
            break;
        }
        rc = import_txn(im, &txn, err);
        if (rc == ZFS_DROPPED)
            continue;
        if (rc)
            break;
        im->stats->txns++;
        zprogress_update(im->progress, zfs_reader_offset(im->r), im->stats->txns);
    }
    zerr end_err = {0};
    /* a failed import keeps nothing on PostgreSQL (store_bulk_abort) */
    int end_rc = rc ? store_bulk_abort(im->s, &end_err) : store_bulk_end(im->s, &end_err);
    if (!rc && end_rc) {
        rc = end_rc;
        if (err)
            *err = end_err;
    }
    im->stats->bytes = zfs_reader_offset(im->r);
    note_tail_and_damage(im);
    if (!rc && im->stats->torn && im->opt->strict)
        rc = zerr_set(err, ZE_CORRUPT, "%s: torn tail at offset %" PRIu64 ": %s (--strict)",
                      fs_path, im->stats->tail_pos, im->stats->tail_what);
done:
    zprogress_done(im->progress);
    im->progress = NULL;
    zfs_reader_close(im->r);
    im->r = NULL;
    return rc;
}

/* The blob layout of the source directory (bushy when there is none). */
static int source_layout(const char *dir, zblob_layout *out, zerr *err)
{
    struct stat st;
    *out = ZBLOB_BUSHY;
    if (!dir)
        return 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return zerr_set(err, ZE_NOTFOUND, "blob directory %s does not exist", dir);
    return zblob_layout_select(dir, out, err);
}

/* The database's transaction tid must carry the metadata the file has. */
static int same_txn_meta(store *s, uint64_t tid, const zbuf *meta, zerr *err)
{
    store_iter *it;
    store_txn_info info;
    int rc = store_iter_open(s, tid, tid, &it, err);
    if (rc)
        return rc;
    rc = store_iter_next_txn(it, &info, err);
    if (rc == 1) {
        size_t n = info.user.len + info.description.len + info.extension.len;
        int same = n == meta->len && !memcmp(meta->data, info.user.p, info.user.len) &&
                   !memcmp(meta->data + info.user.len, info.description.p,
                           info.description.len) &&
                   !memcmp(meta->data + info.user.len + info.description.len,
                           info.extension.p, info.extension.len);
        rc = same ? 0 : zerr_set(err, ZE_INVAL, "transaction 0x%016" PRIx64 " differs between "
                                 "the database and the file: they are different histories",
                                 tid);
    } else if (rc == 0) {
        rc = zerr_set(err, ZE_NOTFOUND, "the database's last transaction 0x%016" PRIx64
                      " cannot be read back", tid);
    }
    store_iter_close(it);
    return rc;
}

enum { DB_ABSENT, DB_PRESENT, DB_OTHER };

/* What dbdir holds: nothing (missing or empty folder), a database, or
 * something else that an import must not touch. */
static int db_state(const char *dbdir)
{
    struct stat st;
    if (stat(dbdir, &st) != 0)
        return errno == ENOENT ? DB_ABSENT : DB_OTHER;
    if (!S_ISDIR(st.st_mode))
        return DB_OTHER;
    if (zfile_dir_is_empty(dbdir, NULL) == 1)
        return DB_ABSENT;
    store *s;
    store_options so = {.read_only = 1};
    if (store_open(&s, dbdir, &so, NULL) != 0)
        return DB_OTHER;
    store_close(s);
    return DB_PRESENT;
}

/* The database's last transaction must be in the file with the same
 * metadata: then the file continues the database's history. */
static int check_continues(importer *im, const char *fs_path, uint64_t last, zerr *err)
{
    zfs_reader_opts ro = {.want_data = 0, .salvage = im->opt->salvage};
    zfs_reader *r;
    zfs_txn txn;
    zfs_rec rec;
    int found = 0, rc = zfs_reader_open(&r, fs_path, &ro, err);
    if (rc)
        return rc;
    uint64_t file_last = 0;
    zbuf meta = ZBUF_INIT;
    while ((rc = zfs_reader_next_txn(r, &txn, err)) == 1) {
        int is_last = txn.tid == last;
        if (is_last) {
            zbuf_reset(&meta);
            rc = zbuf_append(&meta, txn.user.p, txn.user.len);
            if (!rc)
                rc = zbuf_append(&meta, txn.description.p, txn.description.len);
            if (!rc)
                rc = zbuf_append(&meta, txn.extension.p, txn.extension.len);
            if (rc)
                break;
        }
        while ((rc = zfs_reader_next_record(r, &rec, err)) == 1)
            ;
        if (rc < 0)
            break;
        if (rc == ZFS_DROPPED)
            continue;   /* salvage: not part of the file's history */
        file_last = txn.tid;
        found |= is_last;
    }
    if (rc == 0) {
        const char *what;
        uint64_t tail;
        if (im->opt->strict && zfs_reader_tail(r, &tail, &what))
            rc = zerr_set(err, ZE_CORRUPT, "%s: torn tail at offset %" PRIu64 ": %s (--strict)",
                          fs_path, tail, what);
        else if (last && !found)
            rc = zerr_set(err, ZE_INVAL, "%s does not continue the database: its last "
                          "transaction 0x%016" PRIx64 " is not in the file (which ends at "
                          "0x%016" PRIx64 "); only newer transactions of the same history "
                          "can be appended", fs_path, last, file_last);
    }
    zfs_reader_close(r);
    if (!rc && found)
        rc = same_txn_meta(im->s, last, &meta, err);
    zbuf_free(&meta);
    return rc;
}

static int import_append(importer *im, const char *fs_path, const char *dbdir, zerr *err)
{
    store_options so = {.exclusive = 1};
    int rc = store_open(&im->s, dbdir, &so, err);
    if (rc)
        return rc == ZE_BUSY ? zerr_set(err, ZE_BUSY, "%s is open by a running server: stop "
                                        "it before importing", dbdir) : rc;
    im->after = store_last_tid(im->s);
    rc = check_continues(im, fs_path, im->after, err);
    if (!rc)
        rc = source_layout(im->opt->blob_dir, &im->layout, err);
    if (!rc)
        rc = run(im, fs_path, err);
    store_close(im->s);
    return rc;
}

/* A PostgreSQL database: the import is one database transaction (the
 * store's bulk mode), so a failed one leaves the database as it was, and it
 * appends to a database that already holds history as import_append does.
 * Opening it as a writer takes its DATABASE lock: a database a server holds
 * is refused. Messages never name the URI itself (it may hold a password):
 * the store's messages name the database without it. */
static int import_pg(importer *im, const char *fs_path, const char *uri, zerr *err)
{
    store_options so = {.create = 1, .exclusive = 1};
    int rc = store_open(&im->s, uri, &so, err);
    if (rc)
        return rc;
    im->after = store_last_tid(im->s);
    rc = check_continues(im, fs_path, im->after, err);
    if (!rc)
        rc = source_layout(im->opt->blob_dir, &im->layout, err);
    if (!rc)
        rc = run(im, fs_path, err);
    store_close(im->s);
    return rc;
}

/* A temporary database of a running import is open, hence locked; one whose
 * import was killed is not. A name not from mkdtemp is not ours. */
static int import_in_use(const char *entry, const char *suffix)
{
    return strlen(suffix) != 6 || store_is_locked(entry);
}

static int import_new(importer *im, const char *fs_path, const char *dbdir, zerr *err)
{
    char tmp[PATH_MAX];
    im->stats->leftovers = (uint64_t)zfs__remove_leftovers(dbdir, ".import-", import_in_use);
    if (snprintf(tmp, sizeof tmp, "%s.import-XXXXXX", dbdir) >= (int)sizeof tmp)
        return zerr_set(err, ZE_TOOBIG, "path too long: %s", dbdir);
    if (!mkdtemp(tmp))
        return zerr_sys(err, errno, "create a temporary folder beside %s", dbdir);
    store_options so = {.create = 1, .exclusive = 1};
    int rc = source_layout(im->opt->blob_dir, &im->layout, err);
    if (!rc)
        rc = store_open(&im->s, tmp, &so, err);
    if (!rc) {
        rc = run(im, fs_path, err);
        store_close(im->s);
    }
    /* rename replaces an empty folder, never a populated one */
    if (!rc && rename(tmp, dbdir) != 0)
        rc = errno == ENOTEMPTY || errno == EEXIST
                 ? zerr_set(err, ZE_EXISTS, "%s appeared during the import", dbdir)
                 : zerr_sys(err, errno, "rename %s -> %s", tmp, dbdir);
    if (rc)
        zfile_rm_rf(tmp, NULL);
    else
        zfile_fsync_parent(dbdir, NULL);   /* in place; nothing to undo (as export) */
    return rc;
}

int zfs_import(const char *fs_path, const char *dbdir, const zfs_import_opts *opt,
               zfs_import_stats *stats, zerr *err)
{
    zfs_import_opts none = {0};
    zfs_import_stats scratch;
    importer im = {.opt = opt ? opt : &none, .stats = stats ? stats : &scratch};
    char dir[PATH_MAX];
    memset(im.stats, 0, sizeof *im.stats);
    if (store_spec_is_postgresql(dbdir))
        return import_pg(&im, fs_path, dbdir, err);
    /* "db/" must build "db.import-XXXXXX" beside db, not inside it */
    size_t n = strlen(dbdir);
    while (n > 1 && dbdir[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof dir)
        return zerr_set(err, ZE_INVAL, "bad database folder name '%s'", dbdir);
    memcpy(dir, dbdir, n);
    dir[n] = 0;
    dbdir = dir;
    if (store_is_locked(dbdir))
        return zerr_set(err, ZE_BUSY, "%s is open by a running server: stop it before "
                        "importing", dbdir);
    switch (db_state(dbdir)) {
    case DB_ABSENT:
        return import_new(&im, fs_path, dbdir, err);
    case DB_PRESENT:
        return import_append(&im, fs_path, dbdir, err);
    default:
        return zerr_set(err, ZE_EXISTS, "%s exists and is not a zeolite database: give a new "
                        "or empty folder", dbdir);
    }
}
