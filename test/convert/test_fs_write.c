/* test_fs_write.c: the writer reproduces every good fixture from its records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "fixtures.h"
#include "testutil.h"

/* Copy the transactions with tid >= from of src into a new file dst through
 * the writer, as an export does from the store. */
static void copy_fs(const char *src, const char *dst, uint64_t from, const char *index)
{
    zfs_reader *r;
    zfs_writer *w;
    zfs_reader_opts opts = {.want_data = 1};
    zerr err = {0};
    zfs_txn txn;
    zfs_rec rec;
    int rc;
    zbuf resolved = ZBUF_INIT;
    cr_assert_eq(zfs_reader_open(&r, src, &opts, &err), 0, "%s", err.msg);
    cr_assert_eq(zfs_writer_open(&w, dst, &err), 0, "%s", err.msg);
    while ((rc = zfs_reader_next_txn(r, &txn, &err)) == 1) {
        int keep = txn.tid >= from;
        if (keep)
            cr_assert_eq(zfs_writer_begin(w, txn.tid, txn.status, txn.user, txn.description,
                                          txn.extension, &err), 0, "%s", err.msg);
        while ((rc = zfs_reader_next_record(r, &rec, &err)) == 1) {
            if (!keep)
                continue;
            zfs_wrec wr = {.oid = rec.oid, .kind = rec.kind, .data = rec.data,
                           .back_tid = rec.back_tid, .back_index = rec.back_index,
                           .prev_zero = rec.prev_zero};
            if (rec.kind == ZFS_BACKPTR) {
                /* the store hands out the resolved pickle with a back-pointer */
                uint64_t dpos, plen;
                cr_assert_eq(zfs_reader_resolve(r, rec.back, &dpos, &plen, NULL), 0);
                zbuf_reserve(&resolved, plen + 1);
                cr_assert_eq(zfs_reader_pread(r, dpos, resolved.data, plen, NULL), 0);
                wr.data = (zslice){resolved.data, plen};
            }
            cr_assert_eq(zfs_writer_record(w, &wr, &err), 0, "%s", err.msg);
        }
        cr_assert_eq(rc, 0, "%s", err.msg);
        if (keep)
            cr_assert_eq(zfs_writer_end(w, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    if (index)
        cr_assert_eq(zfs_writer_index(w, index, &err), 0, "%s", err.msg);
    cr_assert_eq(zfs_writer_finish(w, &err), 0, "%s", err.msg);
    zfs_reader_close(r);
    zbuf_free(&resolved);
}

Test(fs_write, every_good_fixture_is_rewritten_byte_for_byte)
{
    char **names = fx_names(0);
    char *dir = tu_tmpdir("fswrite");
    for (size_t i = 0; names[i]; i++) {
        char *src = fx_path(names[i], ".fs"), out[512];
        snprintf(out, sizeof out, "%s/%zu.fs", dir, i);
        copy_fs(src, out, 0, NULL);
        size_t na, nb;
        uint8_t *a = tu_read_file(src, &na), *b = tu_read_file(out, &nb);
        cr_expect_eq(na, nb, "%s: size", names[i]);
        cr_expect(na == nb && !memcmp(a, b, na), "%s: bytes differ", names[i]);
        free(a);
        free(b);
        free(src);
    }
    tu_rmrf(dir);
    free(dir);
    fx_free_names(names);
}

/* A file holding only the later transactions is a valid FileStorage: its
 * back-pointers into the missing part become inline data or deletions. */
Test(fs_write, a_tid_range_is_a_valid_file_with_the_same_data)
{
    char *src = fx_path("undo", ".fs"), *dir = tu_tmpdir("fsrange"), out[512];
    tj *m = fx_manifest("undo");
    const tj *txns = tj_get(m, "transactions");
    size_t half = txns->n / 2;
    uint64_t from = tj_hex64(tj_gets(txns->items[half], "tid"));
    snprintf(out, sizeof out, "%s/range.fs", dir);
    copy_fs(src, out, from, NULL);
    cr_expect_eq(zfs_verify(out, NULL, NULL, NULL, NULL), 0);

    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 1};
    zfs_txn txn;
    zfs_rec rec;
    cr_assert_eq(zfs_reader_open(&r, out, &opts, NULL), 0);
    for (size_t i = half; zfs_reader_next_txn(r, &txn, NULL) == 1; i++) {
        const tj *t = txns->items[i], *recs = tj_get(t, "records");
        cr_expect_eq(txn.tid, tj_hex64(tj_gets(t, "tid")));
        for (size_t k = 0; zfs_reader_next_record(r, &rec, NULL) == 1; k++) {
            const tj *want = recs->items[k];
            char sha[65] = "";
            const uint8_t *p = rec.data.p;
            size_t n = rec.data.len;
            uint8_t *buf = NULL;
            if (rec.kind == ZFS_BACKPTR) {
                uint64_t dpos, plen;
                cr_assert_eq(zfs_reader_resolve(r, rec.back, &dpos, &plen, NULL), 0);
                buf = malloc(plen + 1);
                zfs_reader_pread(r, dpos, buf, plen, NULL);
                p = buf;
                n = plen;
            }
            if (tj_get(want, "len")->type == TJ_NULL) {
                cr_expect_eq(n, 0, "txn %s record %zu must be absent", tj_gets(t, "tid"), k);
            } else {
                fx_sha256(p, n, sha);
                cr_expect_str_eq(sha, tj_gets(want, "data_sha256"));
            }
            free(buf);
        }
    }
    zfs_reader_close(r);
    tj_free(m);
    tu_rmrf(dir);
    free(dir);
    free(src);
}

Test(fs_write, metadata_over_65535_bytes_is_refused)
{
    char *dir = tu_tmpdir("fsmeta"), out[512];
    snprintf(out, sizeof out, "%s/meta.fs", dir);
    zfs_writer *w;
    zerr err = {0};
    cr_assert_eq(zfs_writer_open(&w, out, &err), 0);
    static uint8_t big[65536];
    zslice none = {NULL, 0}, huge = {big, sizeof big};
    cr_expect_eq(zfs_writer_begin(w, 1, ' ', none, huge, none, &err), ZE_TOOBIG);
    cr_expect_not_null(strstr(err.msg, "description"), "%s", err.msg);
    cr_expect_eq(zfs_writer_begin(w, 1, ' ', none, none, huge, &err), ZE_TOOBIG);
    cr_expect_not_null(strstr(err.msg, "65535"), "%s", err.msg);
    cr_expect_eq(zfs_writer_begin(w, 5, ' ', none, none, none, &err), 0);
    cr_expect_eq(zfs_writer_end(w, &err), 0);
    cr_expect_eq(zfs_writer_begin(w, 5, ' ', none, none, none, &err), ZE_INVAL);
    cr_expect_eq(zfs_writer_finish(w, &err), 0);
    cr_expect_eq(zfs_writer_open(&w, out, &err), ZE_EXISTS);
    tu_rmrf(dir);
    free(dir);
}

Test(fs_write, the_index_is_the_one_filestorage_writes)
{
    char *src = fx_path("small", ".fs"), *want = tu_shared("fixtures/datafs/index-sample/small.fs.index");
    char *dir = tu_tmpdir("fsindex"), out[512], index[512];
    snprintf(out, sizeof out, "%s/small.fs", dir);
    snprintf(index, sizeof index, "%s/small.fs.index", dir);
    copy_fs(src, out, 0, index);
    size_t na, nb;
    uint8_t *a = tu_read_file(want, &na), *b = tu_read_file(index, &nb);
    cr_assert_not_null(b);
    cr_expect(na == nb && !memcmp(a, b, na), "index differs from FileStorage's");
    free(a);
    free(b);
    tu_rmrf(dir);
    free(dir);
    free(want);
    free(src);
}

/* Pickle-like bytes of a given size, different for every (oid, serial). */
static void pattern(zbuf *b, uint64_t oid, uint64_t serial, size_t n)
{
    zbuf_reset(b);
    zbuf_reserve(b, n);
    for (size_t i = 0; i < n; i++)
        b->data[i] = (uint8_t)(oid * 131 + serial * 7 + i * 13 + (i >> 9));
    b->len = n;
}

/* Files bigger than the reader's window and transactions bigger than the
 * writer's buffer: records straddle window refills, big records bypass the
 * buffers, and transaction lengths are patched on disk. */
Test(fs_write, files_larger_than_the_buffers_stream_both_ways)
{
    static const size_t sizes[] = {100, 5000, 700000, 3 << 20, 90, 2500000, 40000, 1 << 20};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    char *dir = tu_tmpdir("fsbig"), out[512];
    snprintf(out, sizeof out, "%s/big.fs", dir);
    zfs_writer *w;
    zerr err = {0};
    zbuf data = ZBUF_INIT;
    zslice none = {NULL, 0};
    cr_assert_eq(zfs_writer_open(&w, out, &err), 0);
    uint64_t serial = 0;
    for (uint64_t t = 1; t <= 12; t++) {
        cr_assert_eq(zfs_writer_begin(w, t, ' ', none, none, none, &err), 0);
        for (uint64_t k = 0; k < t % 5 + 1; k++, serial++) {
            pattern(&data, k, serial, sizes[serial % nsizes]);
            zfs_wrec rec = {.oid = k, .kind = ZFS_DATA, .data = {data.data, data.len}};
            cr_assert_eq(zfs_writer_record(w, &rec, &err), 0, "%s", err.msg);
        }
        if (t > 6) {  /* an undo-like back-pointer to the first record of txn t - 5 */
            zfs_wrec bp = {.oid = 0, .kind = ZFS_BACKPTR, .back_tid = t - 5, .back_index = 0};
            cr_assert_eq(zfs_writer_record(w, &bp, &err), 0, "%s", err.msg);
        }
        cr_assert_eq(zfs_writer_end(w, &err), 0);
    }
    cr_assert_eq(zfs_writer_finish(w, &err), 0, "%s", err.msg);
    cr_expect_eq(zfs_verify(out, NULL, NULL, NULL, &err), 0, "%s", err.msg);

    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 1};
    zfs_txn txn;
    zfs_rec rec;
    zbuf want = ZBUF_INIT;
    cr_assert_eq(zfs_reader_open(&r, out, &opts, &err), 0);
    serial = 0;
    while (zfs_reader_next_txn(r, &txn, &err) == 1) {
        while (zfs_reader_next_record(r, &rec, &err) == 1) {
            if (rec.kind == ZFS_BACKPTR) {
                cr_expect_eq(rec.back_tid, txn.tid - 5);
                cr_expect_eq(rec.back_index, 0);
                continue;
            }
            pattern(&want, rec.oid, serial, sizes[serial % nsizes]);
            serial++;
            cr_assert_eq(rec.data.len, want.len);
            cr_assert(!memcmp(rec.data.p, want.data, want.len), "record at %lu",
                      (unsigned long)rec.pos);
        }
    }
    cr_expect_eq(zfs_reader_txn_count(r), 12);
    cr_expect_str_eq(err.msg, "");
    zfs_reader_close(r);
    zbuf_free(&data);
    zbuf_free(&want);
    tu_rmrf(dir);
    free(dir);
}
