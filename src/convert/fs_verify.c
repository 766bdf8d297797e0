/* fs_verify.c: check a whole Data.fs without keeping any pickle. */
#include "convert/convert.h"

#include <stdio.h>
#include <string.h>

int zfs_verify(const char *path, zfs_verify_cb cb, void *ud, zfs_verify_result *res,
               zerr *err)
{
    zfs_reader *r;
    zfs_reader_opts opts = {.want_data = 0};
    zfs_verify_result scratch;
    zfs_txn txn;
    zfs_rec rec;
    const char *what;
    if (!res)
        res = &scratch;
    memset(res, 0, sizeof *res);
    int rc = zfs_reader_open(&r, path, &opts, err);
    if (rc)
        return rc;
    while ((rc = zfs_reader_next_txn(r, &txn, err)) == 1) {
        while ((rc = zfs_reader_next_record(r, &rec, err)) == 1)
            ;
        if (rc < 0)
            break;
        if (cb)
            cb(&txn, res->txns, ud);
        res->txns++;
    }
    res->bytes = zfs_reader_offset(r);
    if (rc == 0 && zfs_reader_tail(r, &res->tail_pos, &what)) {
        res->torn = 1;
        snprintf(res->tail_what, sizeof res->tail_what, "%s", what);
        rc = 1;
    }
    zfs_reader_close(r);
    return rc;
}
