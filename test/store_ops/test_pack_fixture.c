/* test_pack_fixture.c: pack compared with Python's. packed-before.fs is
 * imported, packed at the pack time its manifest gives (with GC), and
 * checked against the manifest of packed.fs, which FileStorage.pack made
 * from the same file (spec filestorage-format.md section 7). */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "jsonmini.h"
#include "ops_util.h"
#include "testutil.h"

static const zv *manifest(zv_arena *a, const char *name)
{
    char *path = tu_shared(name);
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    zv *v;
    zerr err;
    cr_assert(text, "cannot read %s", path);
    cr_assert_eq(json_parse(text, len, a, &v, &err), 0, "%s: %s", path, err.msg);
    free(text);
    free(path);
    return v;
}

static uint64_t hex64(const zv *obj, const char *key)
{
    const char *h = json_str(obj, key);
    cr_assert(h, "manifest: no %s", key);
    return strtoull(h, NULL, 16);
}

static double number(const zv *v)
{
    int64_t i;
    cr_assert(v && (v->type == ZV_FLOAT || zv_get_int(v, &i)), "manifest: not a number");
    return v->type == ZV_FLOAT ? v->u.f : (double)i;
}

static const zv *list(const zv *obj, const char *key)
{
    const zv *l = json_get(obj, key);
    cr_assert(l && l->type == ZV_LIST, "manifest: no list %s", key);
    return l;
}

/* Is (oid, tid) a record of the manifest? */
static const zv *find_record(const zv *txns, uint64_t oid, uint64_t tid)
{
    for (size_t i = 0; i < txns->u.seq.n; i++) {
        const zv *t = txns->u.seq.items[i];
        if (hex64(t, "tid") != tid)
            continue;
        const zv *recs = list(t, "records");
        for (size_t j = 0; j < recs->u.seq.n; j++)
            if (hex64(recs->u.seq.items[j], "oid") == oid)
                return recs->u.seq.items[j];
    }
    return NULL;
}

static void expect_sha256(const zbuf *data, const char *hex, uint64_t oid, uint64_t tid)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char got[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256(data->data, data->len, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(got + 2 * i, "%02x", md[i]);
    cr_expect_str_eq(got, hex, "data of oid %llx in %016llx", (unsigned long long)oid,
                     (unsigned long long)tid);
}

/* Every transaction and record of packed.fs is there, with its data. */
static void expect_kept(store *s, const zv *txns)
{
    zbuf data = ZBUF_INIT;
    for (size_t i = 0; i < txns->u.seq.n; i++) {
        const zv *t = txns->u.seq.items[i];
        uint64_t tid = hex64(t, "tid");
        store_iter *it;
        store_txn_info info;
        cr_assert_eq(store_iter_open(s, tid, tid, &it, NULL), 0);
        cr_assert_eq(store_iter_next_txn(it, &info, NULL), 1, "txn %016llx lost",
                     (unsigned long long)tid);
        cr_expect_eq(info.status, json_str(t, "status")[0], "status of %016llx",
                     (unsigned long long)tid);
        store_iter_close(it);
        const zv *recs = list(t, "records");
        for (size_t j = 0; j < recs->u.seq.n; j++) {
            uint64_t oid = hex64(recs->u.seq.items[j], "oid");
            cr_assert_eq(ops_load_serial(s, oid, tid, &data), 0, "record %llx of %016llx lost",
                         (unsigned long long)oid, (unsigned long long)tid);
            expect_sha256(&data, json_str(recs->u.seq.items[j], "data_sha256"), oid, tid);
        }
    }
    zbuf_free(&data);
}

/* Every other transaction and record of packed-before.fs is gone. */
static void expect_removed(store *s, const zv *before, const zv *after)
{
    zbuf data = ZBUF_INIT;
    for (size_t i = 0; i < before->u.seq.n; i++) {
        const zv *t = before->u.seq.items[i];
        uint64_t tid = hex64(t, "tid");
        const zv *recs = list(t, "records");
        int kept = 0;
        for (size_t j = 0; j < recs->u.seq.n; j++) {
            uint64_t oid = hex64(recs->u.seq.items[j], "oid");
            if (find_record(after, oid, tid)) {
                kept = 1;
                continue;
            }
            cr_expect_eq(ops_load_serial(s, oid, tid, &data), ZE_NOTFOUND,
                         "record %llx of %016llx should be packed away",
                         (unsigned long long)oid, (unsigned long long)tid);
        }
        store_iter *it;
        store_txn_info info;
        cr_assert_eq(store_iter_open(s, tid, tid, &it, NULL), 0);
        cr_expect_eq(store_iter_next_txn(it, &info, NULL), kept, "txn %016llx",
                     (unsigned long long)tid);
        store_iter_close(it);
    }
    zbuf_free(&data);
}

Test(pack_fixture, matches_filestorage_on_packed_before)
{
    zv_arena *a = zv_arena_new();
    const zv *before = manifest(a, "fixtures/datafs/packed-before.fs.json");
    const zv *after = manifest(a, "fixtures/datafs/packed.fs.json");
    const zv *extra = json_get(after, "extra"), *how = json_get(extra, "pack");
    cr_assert(how, "packed.fs.json: no extra.pack");

    char *parent = tu_tmpdir("pack_fixture"), dbdir[4096];
    char *fs = tu_shared("fixtures/datafs/packed-before.fs");
    snprintf(dbdir, sizeof dbdir, "%s/db", parent);
    zfs_import_opts opt = {.quiet = 1};
    zfs_import_stats ist;
    zerr err;
    cr_assert_eq(zfs_import(fs, dbdir, &opt, &ist, &err), 0, "import: %s", err.msg);

    store *s = ops_reopen(dbdir);
    store_pack_stats st;
    cr_assert_eq(store_pack(s, number(json_get(how, "pack_time")),
                            zv_truthy(json_get(how, "gc")), &st, &err), 0, "pack: %s", err.msg);
    expect_kept(s, list(after, "transactions"));
    expect_removed(s, list(before, "transactions"), list(after, "transactions"));

    const zv *garbage = list(extra, "garbage_oids");
    zbuf data = ZBUF_INIT;
    uint64_t tid;
    for (size_t i = 0; i < garbage->u.seq.n; i++) {
        const zv *g = garbage->u.seq.items[i];
        cr_assert(g->type == ZV_STR);
        uint64_t oid = strtoull((const char *)g->u.s.p, NULL, 16);
        cr_expect_eq(ops_load(s, oid, &data, &tid), ZE_NOTFOUND, "garbage %llx kept",
                     (unsigned long long)oid);
    }
    zbuf_free(&data);
    store_close(s);
    tu_rmrf(parent);
    free(parent);
    free(fs);
    zv_arena_free(a);
}
