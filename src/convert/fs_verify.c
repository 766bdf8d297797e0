/* fs_verify.c: check a whole Data.fs without keeping any pickle. */
#include "convert/convert.h"

#include <stdio.h>

int zfs_verify(const char *path, uint64_t *ntxn, uint64_t *nbytes, uint64_t *tail_pos,
               char *what, size_t what_cap, zerr *err)
{
    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 0};
    zfs_txn txn;
    zfs_rec rec;
    int rc = zfs_reader_open(&r, path, &opts, err);
    if (rc)
        return rc;
    while ((rc = zfs_reader_next_txn(r, &txn, err)) == 1)
        while ((rc = zfs_reader_next_record(r, &rec, err)) == 1)
            ;
    if (ntxn)
        *ntxn = zfs_reader_txn_count(r);
    if (nbytes)
        *nbytes = zfs_reader_offset(r);
    const char *tail;
    uint64_t tpos;
    if (rc == 0 && zfs_reader_tail(r, &tpos, &tail)) {
        if (tail_pos)
            *tail_pos = tpos;
        if (what && what_cap)
            snprintf(what, what_cap, "%s", tail);
        rc = 1;
    }
    zfs_reader_close(r);
    return rc;
}
