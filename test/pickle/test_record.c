/* record_refs and record_class_name on every data record of the real
 * Data.fs fixtures, compared with their manifests (fixtures/datafs). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "common/zbuf.h"
#include "jsonmini.h"
#include "pickle/record.h"
#include "pktest.h"
#include "testutil.h"

#define MAX_REFS 4096

typedef struct found {
    uint64_t oid;
    int weak;
    char db[64]; /* "" for this database */
} found;

typedef struct refs {
    found r[MAX_REFS];
    size_t n;
} refs;

static int collect(const record_ref *ref, void *ud)
{
    refs *rs = ud;
    cr_assert_lt(rs->n, MAX_REFS);
    found *f = &rs->r[rs->n++];
    f->oid = ref->oid;
    f->weak = ref->weak;
    snprintf(f->db, sizeof f->db, "%s", ref->database ? ref->database : "");
    return 0;
}

static uint64_t hex_oid(const zv *s)
{
    cr_assert(s && s->type == ZV_STR && s->u.s.len == 16);
    return strtoull((const char *)s->u.s.p, NULL, 16);
}

static int is_strong(const found *f)
{
    return !f->weak && !f->db[0];
}

/* Manifest "refs": strong references in order (what referencesf returns). */
static void check_strong(const char *where, const refs *got, const zv *want)
{
    size_t k = 0;
    for (size_t i = 0; i < got->n; i++) {
        if (!is_strong(&got->r[i]))
            continue;
        cr_assert_lt(k, want->u.seq.n, "%s: more strong refs than the manifest", where);
        cr_assert_eq(got->r[i].oid, hex_oid(want->u.seq.items[k]), "%s: ref %zu", where, k);
        k++;
    }
    cr_assert_eq(k, want->u.seq.n, "%s: %zu strong refs, manifest has %zu", where, k,
                 want->u.seq.n);
}

/* One manifest entry of "xrefs" or "refs_detail" against one found ref. */
static void check_one(const char *where, size_t i, const found *f, const zv *w)
{
    const char *form = json_str(w, "form");
    cr_assert_not_null(form);
    int strong = !strcmp(form, "oid_class") || !strcmp(form, "oid");
    int weak = !strcmp(form, "w") || !strcmp(form, "weak_legacy");
    const char *db = json_str(w, "db");
    cr_assert_eq(f->oid, hex_oid(json_get(w, "oid")), "%s: #%zu (%s) oid", where, i, form);
    cr_assert_eq(f->weak, weak, "%s: #%zu (%s) weak flag", where, i, form);
    cr_assert_eq(is_strong(f), strong, "%s: #%zu (%s)", where, i, form);
    cr_assert_str_eq(f->db, db ? db : "", "%s: #%zu (%s) database", where, i, form);
}

/* "xrefs": the weak and cross-database references, in order. */
static void check_xrefs(const char *where, const refs *got, const zv *want)
{
    size_t k = 0, nwant = want ? want->u.seq.n : 0;
    for (size_t i = 0; i < got->n; i++) {
        if (is_strong(&got->r[i]))
            continue;
        cr_assert_lt(k, nwant, "%s: weak/cross-db ref not in the manifest", where);
        check_one(where, k, &got->r[i], want->u.seq.items[k]);
        k++;
    }
    cr_assert_eq(k, nwant, "%s: %zu weak/cross-db refs, manifest has %zu", where, k, nwant);
}

static void check_detail(const char *where, const refs *got, const zv *want)
{
    cr_assert_eq(got->n, want->u.seq.n, "%s: %zu refs, refs_detail has %zu", where, got->n,
                 want->u.seq.n);
    for (size_t i = 0; i < got->n; i++)
        check_one(where, i, &got->r[i], want->u.seq.items[i]);
}

static void check_record(const char *where, const uint8_t *rec, size_t len, const zv *m)
{
    static refs got;
    got.n = 0;
    zerr err = {0};
    cr_assert_eq(record_refs(rec, len, collect, &got, &err), 0, "%s: %s", where, err.msg);
    check_strong(where, &got, json_get(m, "refs"));
    check_xrefs(where, &got, json_get(m, "xrefs"));
    const zv *detail = json_get(m, "refs_detail");
    if (detail)
        check_detail(where, &got, detail);
    char cls[256];
    cr_assert_eq(record_class_name(rec, len, cls, sizeof cls), 0, "%s: class", where);
    cr_assert_str_eq(cls, json_str(m, "class"), "%s", where);
}

typedef struct walk {
    const uint8_t *fs;
    size_t size;
    size_t data_records, records, txns;
} walk;

/* Data records of the transaction at tpos (spec sections 3-4), against the
 * manifest's transaction entry. */
static void walk_txn(const char *name, walk *w, size_t tpos, const zv *mt)
{
    const uint8_t *t = w->fs + tpos;
    uint64_t tlen = zbe64(t + 8);
    size_t rpos = tpos + 23 + zbe16(t + 17) + zbe16(t + 19) + zbe16(t + 21);
    const zv *mrecs = json_get(mt, "records");
    size_t i = 0;
    while (rpos < tpos + tlen) {
        const uint8_t *r = w->fs + rpos;
        uint64_t plen = zbe64(r + 34);
        cr_assert_lt(i, mrecs->u.seq.n, "%s: more records than the manifest", name);
        const zv *m = mrecs->u.seq.items[i++];
        cr_assert_eq((int64_t)rpos, json_get(m, "pos")->u.i, "%s: record position", name);
        cr_assert_eq(zbe64(r), hex_oid(json_get(m, "oid")), "%s: record oid", name);
        if (plen > 0) {
            char where[128];
            snprintf(where, sizeof where, "%s record at %zu", name, rpos);
            cr_assert_str_eq(json_str(m, "kind"), "data", "%s", where);
            check_record(where, r + 42, plen, m);
            w->data_records++;
        }
        w->records++;
        rpos += plen ? 42 + plen : 50;
    }
    cr_assert_eq(i, mrecs->u.seq.n, "%s: fewer records than the manifest", name);
}

static void check_fixture(const char *dir, const char *name, walk *total)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    walk w = {0};
    uint8_t *fs = tu_read_file(path, &w.size);
    cr_assert_not_null(fs, "cannot read %s", path);
    w.fs = fs;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    size_t jlen;
    char *json = (char *)tu_read_file(path, &jlen);
    cr_assert_not_null(json, "cannot read %s", path);
    zv_arena *a = zv_arena_new();
    zv *man;
    zerr err = {0};
    cr_assert_eq(json_parse(json, jlen, a, &man, &err), 0, "%s: %s", path, err.msg);

    const zv *txns = json_get(man, "transactions");
    cr_assert_geq(w.size, 4);
    size_t pos = 4;
    while (pos < w.size) {
        cr_assert_lt(w.txns, txns->u.seq.n, "%s: more transactions than the manifest", name);
        const zv *mt = txns->u.seq.items[w.txns++];
        cr_assert_eq((int64_t)pos, json_get(mt, "pos")->u.i, "%s: transaction position", name);
        walk_txn(name, &w, pos, mt);
        pos += zbe64(fs + pos + 8) + 8;
    }
    cr_assert_eq(w.txns, txns->u.seq.n, "%s: transaction count", name);
    cr_assert_eq((int64_t)w.records, json_get(man, "record_count")->u.i, "%s", name);
    total->data_records += w.data_records;
    total->records += w.records;
    total->txns += w.txns;
    zv_arena_free(a);
    free(json);
    free(fs);
}

Test(record_fixtures, every_record_of_every_datafs)
{
    char *dir = tu_shared("fixtures/datafs");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    walk total = {0};
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 3 && !strcmp(e->d_name + n - 3, ".fs")) {
            check_fixture(dir, e->d_name, &total);
            files++;
        }
    }
    closedir(d);
    free(dir);
    cr_assert_geq(files, 10);
    cr_assert_gt(total.data_records, 1000);
    cr_log_info("%zu Data.fs files, %zu transactions, %zu records (%zu with data) checked",
                files, total.txns, total.records, total.data_records);
}

TestSuite(record);

static int stop_at_second(const record_ref *ref, void *ud)
{
    int *seen = ud;
    return ++*seen == 2 ? 42 : 0;
}

/* Root PersistentMapping with two (oid, class) references (protocol 3, one
 * memo across both pickles, as ZODB writes it). */
static const char root_rec[] =
    "80 03 63 \"persistent.mapping\" 0a \"PersistentMapping\" 0a 71 00 2e"
    "80 03 7d 71 01 58 04 00 00 00 \"data\" 71 02 7d 71 03 28"
    "58 01 00 00 00 61 71 04 43 08 00 00 00 00 00 00 00 01 71 05 63 \"m\" 0a \"C\" 0a 71 06"
    "86 71 07 51 58 01 00 00 00 62 71 08 68 05 68 06 86 71 09 51 75 73 2e";

Test(record, callback_stops_the_scan)
{
    uint8_t rec[512];
    size_t n = pt_bytes(root_rec, rec, sizeof rec);
    int seen = 0;
    cr_assert_eq(record_refs(rec, n, stop_at_second, &seen, NULL), 42);
    cr_assert_eq(seen, 2);
    static refs got;
    got.n = 0;
    cr_assert_eq(record_refs(rec, n, collect, &got, NULL), 0);
    cr_assert_eq(got.n, 2);
    cr_assert_eq(got.r[0].oid, 1);
    cr_assert_eq(got.r[1].oid, 1); /* the memo GET of the same oid */
}

Test(record, arena_variant_reuses_one_arena)
{
    uint8_t rec[512];
    size_t n = pt_bytes(root_rec, rec, sizeof rec);
    zv_arena *a = zv_arena_new();
    for (int i = 0; i < 100; i++) {
        static refs got;
        got.n = 0;
        cr_assert_eq(record_refs_in(a, rec, n, collect, &got, NULL), 0);
        cr_assert_eq(got.n, 2);
        zv_arena_reset(a);
    }
    zv_arena_free(a);
}

/* The Blob record of spec section 11, byte for byte. */
Test(record, blob_record_class)
{
    uint8_t rec[64];
    size_t n = pt_bytes("80 03 63 \"ZODB.blob\" 0a \"Blob\" 0a 71 00 2e 80 03 4e 2e", rec,
                        sizeof rec);
    cr_assert_eq(n, 25);
    char cls[64];
    cr_assert_eq(record_class_name(rec, n, cls, sizeof cls), 0);
    cr_assert_str_eq(cls, "ZODB.blob.Blob");
    cr_assert_eq(record_class_name(rec, n, cls, 14), ZE_TOOBIG);
    cr_assert_eq(record_class_name(rec, n, cls, 15), 0);
    static refs got;
    got.n = 0;
    cr_assert_eq(record_refs(rec, n, collect, &got, NULL), 0);
    cr_assert_eq(got.n, 0);
}

Test(record, class_metadata_forms)
{
    uint8_t rec[128];
    char cls[64];
    /* (module, name) strings; ((module, name), None); an int: no class. */
    size_t n = pt_bytes("80 02 58 01 00 00 00 61 58 01 00 00 00 42 86 2e 4e 2e", rec, sizeof rec);
    cr_assert_eq(record_class_name(rec, n, cls, sizeof cls), 0);
    cr_assert_str_eq(cls, "a.B");
    n = pt_bytes("80 02 55 01 61 55 01 42 86 4e 86 2e 4e 2e", rec, sizeof rec);
    cr_assert_eq(record_class_name(rec, n, cls, sizeof cls), 0);
    cr_assert_str_eq(cls, "a.B");
    n = pt_bytes("80 02 4b 01 2e 4e 2e", rec, sizeof rec);
    cr_assert_eq(record_class_name(rec, n, cls, sizeof cls), ZE_NOTFOUND);
    n = pt_bytes("80 02 ff", rec, sizeof rec);
    cr_assert_eq(record_class_name(rec, n, cls, sizeof cls), ZE_CORRUPT);
}

static void expect_corrupt(const char *spec, const char *needle)
{
    uint8_t rec[256];
    size_t n = pt_bytes(spec, rec, sizeof rec);
    static refs got;
    got.n = 0;
    zerr err = {0};
    cr_assert_eq(record_refs(rec, n, collect, &got, &err), ZE_CORRUPT, "%s", spec);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(record, unparseable_records_are_corrupt)
{
    /* Class pickle only: no state. */
    expect_corrupt("80 03 63 \"m\" 0a \"C\" 0a 2e", "offset 8");
    /* Persistent ids of no known form, or with a bad oid. */
    expect_corrupt("80 03 63 \"m\" 0a \"C\" 0a 2e 80 03 4b 05 51 2e", "unknown form 5");
    expect_corrupt("80 03 4e 2e 80 03 43 07 00 00 00 00 00 00 01 51 2e", "unknown form");
    expect_corrupt("80 03 4e 2e 80 03 43 03 61 62 63 4e 86 51 2e", "unknown form");
    expect_corrupt("80 03 4e 2e 80 03 5d 28 58 01 00 00 00 78 29 65 51 2e", "unknown form");
    expect_corrupt("80 03 4e 2e 80 03 5d 28 58 01 00 00 00 6d"
                   "43 01 61 85 65 51 2e", "unknown form");
    /* Wrong arity for 'n': (db, oid) is required. */
    expect_corrupt("80 03 4e 2e 80 03 5d 28 58 01 00 00 00 6e"
                   "43 08 00 00 00 00 00 00 00 01 85 65 51 2e", "unknown form");
}

Test(record, bytes_after_the_state_are_ignored)
{
    uint8_t rec[256];
    size_t n = pt_bytes("80 03 4e 2e 80 03 43 08 00 00 00 00 00 00 00 07 51 2e ff ff", rec,
                        sizeof rec);
    static refs got;
    got.n = 0;
    cr_assert_eq(record_refs(rec, n, collect, &got, NULL), 0);
    cr_assert_eq(got.n, 1);
    cr_assert_eq(got.r[0].oid, 7);
}
