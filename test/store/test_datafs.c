/* The real Data.fs fixtures, imported record by record with
 * store_txn_restore_record in bulk mode, must answer load / loadBefore /
 * undoLog exactly as Python did (the answers are in each manifest), keep
 * every record's kind and back-pointer target, and keep blob files. */
#include "storetest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsmini.h"
#include "jsonmini.h"
#include "common/oidmap.h"
#include "common/zblob.h"

typedef struct fixture {
    fs_file fs;
    zv_arena *arena;
    const zv *manifest;
    char *blob_dir;   /* fixture's bushy blob folder, or NULL */
} fixture;

static uint64_t hex64(const char *s)
{
    return s ? strtoull(s, NULL, 16) : 0;
}

static void load_fixture(fixture *fx, const char *name, int blobs)
{
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/datafs/%s.fs", name);
    char *path = tu_shared(rel);
    cr_assert_eq(fs_load(path, &fx->fs), 0, "cannot parse %s", path);
    free(path);
    snprintf(rel, sizeof rel, "fixtures/datafs/%s.fs.json", name);
    path = tu_shared(rel);
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    cr_assert(text, "cannot read %s", path);
    free(path);
    fx->arena = zv_arena_new();
    zv *root;
    zerr e;
    cr_assert_eq(json_parse(text, len, fx->arena, &root, &e), 0, "%s", e.msg);
    free(text);
    fx->manifest = root;
    fx->blob_dir = NULL;
    if (blobs) {
        snprintf(rel, sizeof rel, "fixtures/datafs/%s.blobs", name);
        fx->blob_dir = tu_shared(rel);
    }
}

static void free_fixture(fixture *fx)
{
    fs_free(&fx->fs);
    zv_arena_free(fx->arena);
    free(fx->blob_dir);
}

/* The fixture's blob file for (oid, tid) copied into the store's tmp, or 0. */
static int fixture_blob(fixture *fx, store *s, uint64_t oid, uint64_t tid, char *tmp,
                        size_t cap)
{
    if (!fx->blob_dir)
        return 0;
    char path[1024];
    cr_assert_eq(zblob_path(fx->blob_dir, ZBLOB_BUSHY, oid, tid, path, sizeof path), 0);
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    if (!data)
        return 0;
    zerr e;
    cr_assert_eq(store_blob_tmpname(s, tmp, cap, &e), 0);
    cr_assert_eq(tu_write_file(tmp, data, len), 0);
    free(data);
    return 1;
}

static void import_txn(fixture *fx, store *s, const fs_txn *ft, oidmap *seen)
{
    store_txn_meta m = {ft->user, ft->ulen, ft->desc, ft->dlen, ft->ext, ft->elen,
                        ft->status, ft->tid};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0, "%s", e.msg);
    for (size_t j = 0; j < ft->n; j++) {
        const fs_rec *fr = &ft->recs[j];
        uint64_t dummy;
        store_record r = {.oid = fr->oid, .kind = STORE_REC_DATA,
                          .data = {fr->data, fr->len}};
        /* prev = 0 where the rule wants the oid's record in an earlier txn */
        r.prev_zero = fr->prev == 0 && oidmap_get(seen, fr->oid, &dummy);
        if (!fr->data) {
            r.kind = fr->back ? STORE_REC_BACKPTR : STORE_REC_DELETE;
            if (fr->back) {
                const fs_txn *target;
                size_t index;
                cr_assert_eq(fs_find(&fx->fs, fr->back, &target, &index), 0);
                r.back_tid = target->tid;
                r.back_index = (uint32_t)index;
            }
        }
        char tmp[512];
        int blob = fixture_blob(fx, s, fr->oid, ft->tid, tmp, sizeof tmp);
        cr_assert_eq(store_txn_restore_record(t, &r, blob ? tmp : NULL, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "%s", e.msg);
    cr_assert_eq(tid, ft->tid);
    store_txn_free(t);
    for (size_t j = 0; j < ft->n; j++)
        oidmap_put(seen, ft->recs[j].oid, 1);
}

static void import(fixture *fx, store *s)
{
    oidmap seen = OIDMAP_INIT;
    zerr e;
    cr_assert_eq(store_bulk_begin(s, &e), 0);
    for (size_t i = 0; i < fx->fs.n; i++)
        import_txn(fx, s, &fx->fs.txns[i], &seen);
    cr_assert_eq(store_bulk_end(s, &e), 0, "%s", e.msg);
    oidmap_free(&seen);
}

static void check_sha(const zbuf *b, const char *want)
{
    unsigned char md[32];
    unsigned int n;
    char hex[65];
    EVP_Digest(b->data ? b->data : (const uint8_t *)"", b->len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    cr_assert_str_eq(hex, want);
}

/* One answer of Python's: {result: data|none|POSKeyError, tid, end_tid, len, data_sha256}. */
static void check_answer(store_reader *r, uint64_t oid, uint64_t before, const zv *ans)
{
    const char *result = json_str(ans, "result");
    zbuf b = ZBUF_INIT;
    uint64_t start = 0, end = 0;
    zerr e;
    int rc = store_load_before(r, oid, before, &b, &start, &end, &e);
    if (!strcmp(result, "none")) {
        cr_assert_eq(rc, ZE_NOREV, "oid %llx before %llx: %d", (unsigned long long)oid,
                     (unsigned long long)before, rc);
    } else if (!strcmp(result, "POSKeyError")) {
        cr_assert_eq(rc, ZE_NOTFOUND, "oid %llx before %llx: %d", (unsigned long long)oid,
                     (unsigned long long)before, rc);
    } else {
        cr_assert_eq(rc, 0, "oid %llx before %llx: %s", (unsigned long long)oid,
                     (unsigned long long)before, e.msg);
        cr_assert_eq(start, hex64(json_str(ans, "tid")));
        const zv *end_tid = json_get(ans, "end_tid");
        if (end_tid)
            cr_assert_eq(end, end_tid->type == ZV_NONE ? 0 : hex64((const char *)end_tid->u.s.p));
        check_sha(&b, json_str(ans, "data_sha256"));
    }
    zbuf_free(&b);
}

static int check_objects(fixture *fx, store_reader *r)
{
    const zv *objects = json_get(fx->manifest, "objects");
    int probes = 0;
    for (size_t i = 0; objects && i < objects->u.seq.n; i++) {
        const zv *o = objects->u.seq.items[i];
        uint64_t oid = hex64(json_str(o, "oid"));
        check_answer(r, oid, STORE_TID_MAX, json_get(o, "load"));
        const zv *lb = json_get(o, "load_before");
        for (size_t k = 0; lb && k < lb->u.seq.n; k++, probes++)
            check_answer(r, oid, hex64(json_str(lb->u.seq.items[k], "before")),
                         lb->u.seq.items[k]);
    }
    return probes;
}

/* Every transaction and record comes back in order with its exact form. */
static void check_iteration(fixture *fx, store *s)
{
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    cr_assert_eq(store_iter_open(s, 0, 0, &it, &e), 0);
    for (size_t i = 0; i < fx->fs.n; i++) {
        const fs_txn *ft = &fx->fs.txns[i];
        cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
        cr_assert_eq(info.tid, ft->tid);
        cr_assert_eq(info.status, ft->status);
        cr_assert_eq(info.user.len, ft->ulen);
        cr_assert_eq(info.extension.len, ft->elen);
        cr_assert(!ft->elen || !memcmp(info.extension.p, ft->ext, ft->elen));
        for (size_t j = 0; j < ft->n; j++) {
            const fs_rec *fr = &ft->recs[j];
            cr_assert_eq(store_iter_next_record(it, &rec, &e), 1, "%s", e.msg);
            cr_assert_eq(rec.oid, fr->oid);
            if (fr->data) {
                cr_assert_eq(rec.kind, STORE_REC_DATA);
                cr_assert_eq(rec.data.len, fr->len);
                cr_assert_eq(memcmp(rec.data.p, fr->data, fr->len), 0);
            } else if (fr->back) {
                const fs_txn *target;
                size_t index;
                fs_find(&fx->fs, fr->back, &target, &index);
                cr_assert_eq(rec.kind, STORE_REC_BACKPTR);
                cr_assert_eq(rec.back_tid, target->tid);
                cr_assert_eq(rec.back_index, index);
            } else {
                cr_assert_eq(rec.kind, STORE_REC_DELETE);
            }
        }
        cr_assert_eq(store_iter_next_record(it, &rec, &e), 0);
    }
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 0);
    store_iter_close(it);
}

typedef struct tid_list {
    uint64_t tids[256];
    size_t n;
} tid_list;

static int add_tid(const store_txn_info *info, void *ud)
{
    tid_list *l = ud;
    if (l->n < 256)
        l->tids[l->n++] = info->tid;
    return 0;
}

static void check_undo_log(fixture *fx, store_reader *r)
{
    const zv *want = json_get(fx->manifest, "undo_log");
    tid_list got = {.n = 0};
    zerr e;
    cr_assert_eq(store_undo_log(r, 0, 256, NULL, NULL, add_tid, &got, &e), 0);
    cr_assert_eq(got.n, want ? want->u.seq.n : 0);
    for (size_t i = 0; i < got.n; i++)
        cr_assert_eq(got.tids[i], hex64((const char *)want->u.seq.items[i]->u.s.p));
}

static void check_blobs(fixture *fx, store *s, store_reader *r)
{
    int found = 0;
    for (size_t i = 0; i < fx->fs.n; i++)
        for (size_t j = 0; j < fx->fs.txns[i].n; j++) {
            uint64_t oid = fx->fs.txns[i].recs[j].oid, tid = fx->fs.txns[i].tid;
            char tmp[512], path[512];
            if (!fixture_blob(fx, s, oid, tid, tmp, sizeof tmp))
                continue;
            zerr e;
            cr_assert_eq(store_load_blob(r, oid, tid, path, sizeof path, &e), 0, "%s", e.msg);
            size_t a, b;
            uint8_t *want = tu_read_file(tmp, &a), *got = tu_read_file(path, &b);
            cr_assert(want && got && a == b && (a == 0 || !memcmp(want, got, a)));
            free(want);
            free(got);
            unlink(tmp);
            found++;
        }
    cr_assert_gt(found, 0);
}

static void run(const char *name, int blobs)
{
    fixture fx;
    load_fixture(&fx, name, blobs);
    st_fixture f;
    stt_open(&f, NULL);
    import(&fx, f.s);
    zerr e;
    store_reader_refresh(f.r, &e);
    uint64_t last = fx.fs.n ? fx.fs.txns[fx.fs.n - 1].tid : 0;
    cr_assert_eq(store_last_tid(f.s), last);
    cr_assert_eq(store_reader_last_tid(f.r), last);
    const zv *objects = json_get(fx.manifest, "objects");
    int probes = check_objects(&fx, f.r);
    cr_assert(!objects || !objects->u.seq.n || probes > 0);
    check_iteration(&fx, f.s);
    check_undo_log(&fx, f.r);
    if (blobs)
        check_blobs(&fx, f.s, f.r);
    stt_done(&f);
    free_fixture(&fx);
}

Test(store_datafs, no_transactions) { run("no-transactions", 0); }
Test(store_datafs, empty) { run("empty", 0); }
Test(store_datafs, small) { run("small", 0); }
Test(store_datafs, undo) { run("undo", 0); }
Test(store_datafs, packed_before) { run("packed-before", 0); }
Test(store_datafs, packed) { run("packed", 0); }
Test(store_datafs, deleted) { run("deleted", 0); }
Test(store_datafs, dup_oid_in_txn) { run("dup-oid-in-txn", 0); }
Test(store_datafs, refs) { run("refs", 0); }
Test(store_datafs, crossref) { run("crossref", 0); }
Test(store_datafs, blobs_bushy) { run("blobs-bushy", 1); }
Test(store_datafs, large) { run("large", 0); }
Test(store_datafs, btrees, .timeout = 300) { run("btrees", 0); }
