/* read.c: readers (snapshots) and the object reads: load_before,
 * load_serial, current_tid, load_blob. The load path allocates nothing but
 * the caller's zbuf growth: one index seek (one cursor seek and one step
 * back, or the overlay), and one read of the record it names (a
 * back-pointer's entry names the data at the end of its chain). */
#include "store/reader.h"

#include <stdlib.h>
#include <unistd.h>

#include "store/blob.h"

int store__lmdb_reader_new(store *s, store_reader **out, zerr *err)
{
    *out = NULL;
    store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    r->be = &store__lmdb_ops;
    if (store__pin(s, err)) {
        free(r);
        return ZE_BUSY;
    }
    r->s = s;
    store__map_enter(s);
    r->gen = atomic_load(&s->map_gen);
    int rc = store__view_begin(s, &r->v, err);
    if (!rc && (rc = mdb_cursor_open(r->v.txn, s->dbi_txns, &r->txc)))
        rc = store__mdb_err(err, rc, "open cursor");
    r->last_tid = r->v.last;
    if (rc)
        store_reader_free(r);
    store__map_leave(s);
    if (rc)
        return rc;
    *out = r;
    return 0;
}

void store__lmdb_reader_free(store_reader *r)
{
    if (!r)
        return;
    if (r->txc)
        mdb_cursor_close(r->txc);
    store__view_end(&r->v);
    oidmap_free(&r->seen);
    store__unpin(r->s);
    free(r);
}

int store__lmdb_reader_refresh(store_reader *r, zerr *err)
{
    store *s = r->s;
    store__map_enter(s);
    int rc = store__view_renew(&r->v, err);
    if (!rc && (rc = mdb_cursor_renew(r->v.txn, r->txc)))
        rc = store__mdb_err(err, rc, "refresh reader");
    r->gen = atomic_load(&s->map_gen);
    r->last_tid = r->v.last;
    store__map_leave(s);
    return rc;
}

uint64_t store__lmdb_reader_last_tid(store_reader *r) { return r->last_tid; }

void store__reader_enter(store_reader *r)
{
    store__map_enter(r->s);
    /* After a map growth the cursors' page pointers are stale. */
    unsigned gen = atomic_load(&r->s->map_gen);
    if (r->gen != gen) {
        store__view_remap(&r->v);
        mdb_cursor_renew(r->v.txn, r->txc);
        r->gen = gen;
    }
}

/* ---- loads --------------------------------------------------------------- */

static int not_found(zerr *err, uint64_t oid, const char *why)
{
    return zerr_set(err, ZE_NOTFOUND, "oid %016llx %s", (unsigned long long)oid, why);
}

/* Copy the data an index entry of oid stands for: ZE_NOTFOUND for a
 * deletion or a chain that ends in one. One read. */
static int copy_data(store_reader *r, uint64_t oid, const st_ent *e, zbuf *data, zerr *err)
{
    st_rec d;
    int rc = store__ent_data(&r->v, oid, e, &d, err);
    if (rc)
        return rc;
    if (d.kind != STORE_REC_DATA)
        return not_found(err, oid, "is deleted");
    if (data && zbuf_set(data, d.data, d.len))
        return zerr_set(err, ZE_NOMEM, "out of memory for %zu bytes", d.len);
    return 0;
}

static int load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data,
                       uint64_t *start, uint64_t *end, zerr *err)
{
    st_ent e;
    *end = 0;
    int rc = store__view_find(&r->v, oid, before, &e, end, err);
    if (rc == ZE_NOTFOUND)
        return not_found(err, oid, "does not exist");
    if (rc == ZE_NOREV)
        return zerr_set(err, ZE_NOREV, "oid %016llx has no revision before %016llx",
                        (unsigned long long)oid, (unsigned long long)before);
    if (rc)
        return rc;
    /* Hidden records are all older than every visible one: none is visible. */
    if (e.flags & ST_RF_HIDDEN)
        return zerr_set(err, ZE_NOREV, "oid %016llx has no revision before %016llx",
                        (unsigned long long)oid, (unsigned long long)before);
    *start = e.tid;
    return copy_data(r, oid, &e, data, err);
}

int store__lmdb_load_before(store_reader *r, uint64_t oid, uint64_t before, zbuf *data,
                      uint64_t *start, uint64_t *end, zerr *err)
{
    uint64_t s_, e_;
    store__reader_enter(r);
    int rc = load_before(r, oid, before, data, start ? start : &s_, end ? end : &e_, err);
    store__map_leave(r->s);
    return rc;
}

/* The visible record (oid, serial): ZE_NOTFOUND when absent or hidden. */
static int get_visible(store_reader *r, uint64_t oid, uint64_t serial, st_ent *e, zerr *err)
{
    int rc = store__view_get(&r->v, oid, serial, e, err);
    if (rc == ZE_NOTFOUND || (!rc && (e->flags & ST_RF_HIDDEN)))
        return zerr_set(err, ZE_NOTFOUND, "oid %016llx has no revision %016llx",
                        (unsigned long long)oid, (unsigned long long)serial);
    return rc;
}

int store__lmdb_load_serial(store_reader *r, uint64_t oid, uint64_t serial, zbuf *data, zerr *err)
{
    st_ent e;
    store__reader_enter(r);
    int rc = get_visible(r, oid, serial, &e, err);
    if (!rc)
        rc = copy_data(r, oid, &e, data, err);
    store__map_leave(r->s);
    return rc;
}

int store__lmdb_current_tid(store_reader *r, uint64_t oid, uint64_t *tid, zerr *err)
{
    st_ent e;
    uint64_t next;
    store__reader_enter(r);
    int rc = store__view_find(&r->v, oid, UINT64_MAX, &e, &next, err);
    if (rc == ZE_NOTFOUND || rc == ZE_NOREV)
        rc = not_found(err, oid, "does not exist");
    else if (!rc && (e.kind == STORE_REC_DELETE || (e.kind == STORE_REC_BACKPTR && !e.data_tid)))
        rc = not_found(err, oid, "is deleted");
    if (!rc)
        *tid = e.tid;
    store__map_leave(r->s);
    return rc;
}

int store__lmdb_open_blob(store_reader *r, uint64_t oid, uint64_t serial, char *buf, size_t cap,
                    int *fd, zerr *err)
{
    st_ent rec;
    store__reader_enter(r);
    int rc = get_visible(r, oid, serial, &rec, err);
    store__map_leave(r->s);
    if (rc)
        return rc;
    if (!(rec.flags & ST_RF_BLOB))
        return zerr_set(err, ZE_NOTFOUND, "oid %016llx revision %016llx has no blob",
                        (unsigned long long)oid, (unsigned long long)serial);
    if (store_blob_path(r->s, oid, serial, buf, cap))
        return zerr_set(err, ZE_TOOBIG, "blob path does not fit %zu bytes", cap);
    int f = store_blob_file_open(r->s, oid, serial, err);
    /* An imported back-pointer may come without its own copy of the file. */
    if (f == ZE_NOTFOUND && rec.kind == STORE_REC_BACKPTR && rec.data_tid &&
        !store_blob_path(r->s, oid, rec.data_tid, buf, cap))
        f = store_blob_file_open(r->s, oid, rec.data_tid, err);
    if (f == ZE_NOTFOUND)
        return zerr_set(err, ZE_NOTFOUND, "blob file of oid %016llx revision %016llx is "
                        "missing", (unsigned long long)oid, (unsigned long long)serial);
    if (f < 0)
        return f;
    *fd = f;
    return 0;
}

