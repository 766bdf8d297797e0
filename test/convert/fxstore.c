/* fxstore.c: what a store must hold after importing a fixture. */
#include "fxstore.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void expect_hex(const char *want, zslice got, const char *what)
{
    char *hex = fx_hex(got.p, got.len);
    cr_expect_str_eq(hex, want, "%s", what);
    free(hex);
}

/* Every transaction and record of the manifest, as the store iterates them. */
void fx_expect_transactions(store *s, const tj *m)
{
    static const store_rec_kind kinds[] = {0, STORE_REC_DATA, STORE_REC_BACKPTR,
                                           STORE_REC_DELETE};
    static const char *names[] = {"", "data", "backpointer", "deletion"};
    const tj *txns = tj_get(m, "transactions");
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(s, 0, 0, &it, NULL), 0);
    size_t i = 0;
    while (store_iter_next_txn(it, &info, NULL) == 1) {
        cr_assert_lt(i, txns->n);
        const tj *t = txns->items[i++], *recs = tj_get(t, "records");
        cr_expect_eq(info.tid, tj_hex64(tj_gets(t, "tid")));
        cr_expect_eq(info.status, tj_gets(t, "status")[0]);
        expect_hex(tj_gets(t, "user"), info.user, "user");
        expect_hex(tj_gets(t, "description"), info.description, "description");
        expect_hex(tj_gets(t, "extension"), info.extension, "extension");
        size_t k = 0;
        while (store_iter_next_record(it, &rec, NULL) == 1) {
            cr_assert_lt(k, recs->n, "txn %s: extra record", tj_gets(t, "tid"));
            const tj *r = recs->items[k++];
            cr_expect_eq(rec.oid, tj_hex64(tj_gets(r, "oid")));
            int kind = rec.kind >= 1 && rec.kind <= 3 ? (int)kinds[rec.kind] : 0;
            cr_expect_str_eq(names[kind], tj_gets(r, "kind"), "txn %s record %zu",
                             tj_gets(t, "tid"), k - 1);
            if (rec.kind == STORE_REC_BACKPTR)
                cr_expect_eq(rec.back_tid, tj_hex64(tj_gets(r, "back_tid")));
            if (tj_get(r, "len")->type != TJ_NULL) {
                char sha[65];
                fx_sha256(rec.data.p, rec.data.len, sha);
                cr_expect_str_eq(sha, tj_gets(r, "data_sha256"), "txn %s record %zu",
                                 tj_gets(t, "tid"), k - 1);
            }
        }
        cr_expect_eq(k, recs->n, "txn %s: record count", tj_gets(t, "tid"));
    }
    cr_expect_eq(i, txns->n, "transaction count");
    store_iter_close(it);
}

/* Python's loadBefore answers, recorded in the manifest. */
void fx_expect_load_before(store *s, const tj *m)
{
    const tj *objs = tj_get(m, "objects");
    store_reader *r;
    zbuf data = ZBUF_INIT;
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    for (size_t i = 0; objs && i < objs->n; i++) {
        uint64_t oid = tj_hex64(tj_gets(objs->items[i], "oid"));
        const tj *probes = tj_get(objs->items[i], "load_before");
        for (size_t k = 0; probes && k < probes->n; k++) {
            const tj *p = probes->items[k];
            const char *result = tj_gets(p, "result");
            uint64_t before = tj_hex64(tj_gets(p, "before")), start = 0, end = 0;
            int rc = store_load_before(r, oid, before, &data, &start, &end, NULL);
            if (!strcmp(result, "data")) {
                char sha[65];
                cr_expect_eq(rc, 0, "oid %016lx before %016lx", (unsigned long)oid,
                             (unsigned long)before);
                if (rc)
                    continue;
                fx_sha256(data.data, data.len, sha);
                cr_expect_str_eq(sha, tj_gets(p, "data_sha256"));
                cr_expect_eq(start, tj_hex64(tj_gets(p, "tid")));
                cr_expect_eq(end, tj_hex64(tj_gets(p, "end_tid")), "end of oid %016lx before "
                             "%016lx", (unsigned long)oid, (unsigned long)before);
            } else if (!strcmp(result, "none")) {
                cr_expect_eq(rc, ZE_NOREV, "oid %016lx before %016lx: none", (unsigned long)oid,
                             (unsigned long)before);
            } else {
                cr_expect_eq(rc, ZE_NOTFOUND, "oid %016lx before %016lx: POSKeyError",
                             (unsigned long)oid, (unsigned long)before);
            }
        }
    }
    zbuf_free(&data);
    store_reader_free(r);
}

/* Each blob file of the manifest, at its place in the exported directory. */
void fx_expect_blob_files(const tj *m, const char *dir, zblob_layout layout)
{
    const tj *txns = tj_get(m, "transactions");
    for (size_t i = 0; i < txns->n; i++) {
        const tj *recs = tj_get(txns->items[i], "records");
        for (size_t k = 0; k < recs->n; k++) {
            const tj *blob = tj_get(recs->items[k], "blob");
            if (!blob)
                continue;
            char path[1024], sha[65];
            zblob_path(dir, layout, tj_hex64(tj_gets(recs->items[k], "oid")),
                          tj_hex64(tj_gets(txns->items[i], "tid")), path, sizeof path);
            size_t n;
            uint8_t *b = tu_read_file(path, &n);
            cr_assert_not_null(b, "missing %s", path);
            fx_sha256(b, n, sha);
            cr_expect_str_eq(sha, tj_gets(blob, "sha256"), "%s", path);
            free(b);
        }
    }
}
