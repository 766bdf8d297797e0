/* libFuzzer target for the Data.fs reader (src/convert/fs_read.c) and the
 * checker built on it (fs_verify.c), on arbitrary file contents.
 *
 * Each input is a whole file, read three ways: strictly with data, in
 * salvage mode, and by zfs_verify. Beyond crashes and sanitizer reports, it
 * checks what the reader promises: records lie inside the file and inside
 * their transaction, tids go up, a DATA record read with data carries plen
 * bytes, a back-pointer resolves to bytes inside the file, and the checked
 * offset never passes the file's end. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert/convert.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

/* The input as a file the reader can open by name (in memory, no disk). */
static int put_file(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_fs_read", 0);
        if (memfd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
    return 0;
}

static void check_rec(zfs_reader *r, const zfs_txn *txn, const zfs_rec *rec, int want_data)
{
    uint64_t size = zfs_reader_size(r), data_pos, plen;
    zerr err;
    if (rec->pos < txn->pos || rec->pos + ZFS_REC_HDR > size || rec->tid != txn->tid)
        abort();
    if (rec->kind == ZFS_DATA && want_data && rec->data.len != rec->plen)
        abort();
    if (rec->kind == ZFS_BACKPTR) {
        if (rec->back >= rec->pos)
            abort();   /* the reader promised a target before the pointer */
        if (zfs_reader_resolve(r, rec->back, &data_pos, &plen, &err) == 0 &&
            (data_pos > size || plen > size - data_pos))
            abort();
    }
}

/* Read the whole file; salvage mode goes on past damaged transactions. */
static void read_all(const zfs_reader_opts *opts)
{
    zfs_reader *r;
    zfs_txn txn;
    zfs_rec rec;
    zerr err;
    uint64_t last_tid = 0;
    int rc;
    if (zfs_reader_open(&r, path, opts, &err))
        return;
    while ((rc = zfs_reader_next_txn(r, &txn, &err)) == 1) {
        if (txn.tid <= last_tid || txn.pos + txn.tlen > zfs_reader_size(r))
            abort();
        last_tid = txn.tid;
        while ((rc = zfs_reader_next_record(r, &rec, &err)) == 1)
            check_rec(r, &txn, &rec, opts->want_data);
        if (rc < 0)
            break;
    }
    if (zfs_reader_offset(r) > zfs_reader_size(r))
        abort();
    zfs_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zfs_reader_opts strict = {.want_data = 1}, salvage = {.want_data = 1, .salvage = 1};
    zfs_verify_result res;
    zerr err;
    put_file(data, size);
    read_all(&strict);
    read_all(&salvage);
    if (zfs_verify(path, NULL, NULL, &res, &err) == 1 && res.tail_pos > size)
        abort();
    return 0;
}
