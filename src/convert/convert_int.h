/* convert_int.h: shared inside src/convert only. */
#ifndef ZEOLITE_CONVERT_INT_H
#define ZEOLITE_CONVERT_INT_H

#include <stdint.h>

#include "common/zerr.h"

/* The offsets a reader or writer must remember about the file so far:
 * - per oid, its last record in an earlier transaction (prev, section 5);
 *   records of the current transaction are staged and applied at its end,
 *   because prev is not updated inside a transaction;
 * - every record's offset in file order, and per transaction its tid, offset
 *   and first record number, so that a back-pointer offset maps to
 *   (tid, index in transaction) and back. */
typedef struct zfs_index zfs_index;

zfs_index *zfs__index_new(void);
void zfs__index_free(zfs_index *ix);

/* Start a transaction (tids and offsets strictly increasing). */
int zfs__index_add_txn(zfs_index *ix, uint64_t tid, uint64_t pos, zerr *err);
/* Add a record of the current transaction (offsets increasing). */
int zfs__index_add_record(zfs_index *ix, uint64_t oid, uint64_t pos, zerr *err);
/* Make the current transaction's records the oids' last records. */
int zfs__index_end_txn(zfs_index *ix, zerr *err);
/* Drop the current transaction's staged records (the reader skipped it). */
void zfs__index_drop_txn(zfs_index *ix);

/* Every oid with its last record's offset, sorted by oid, for the .index
 * file. Reorders the oid table in place: afterwards the index answers no more
 * zfs__index_last queries (it acts as empty). The array lives until
 * zfs__index_free. */
typedef struct zfs_oidpos {
    uint64_t oid;
    uint64_t pos;
} zfs_oidpos;
int zfs__index_take_sorted(zfs_index *ix, const zfs_oidpos **out, size_t *n);

/* Write the FileStorage .index of a file ending at end whose records ix
 * indexed (fs_index_file.c); path must not exist. Consumes the oid table
 * (zfs__index_take_sorted). */
int zfs__write_index(zfs_index *ix, uint64_t end, const char *path, zerr *err);

/* Offset of oid's last record in an earlier transaction, 0 if none. */
uint64_t zfs__index_last(const zfs_index *ix, uint64_t oid);
/* (tid, index) of the record starting at pos: 0, or ZE_NOTFOUND when no
 * record starts there. */
int zfs__index_find_pos(const zfs_index *ix, uint64_t pos, uint64_t *tid, uint32_t *index);
/* Offset of record number index of the transaction tid: 0 or ZE_NOTFOUND. */
int zfs__index_find_rec(const zfs_index *ix, uint64_t tid, uint32_t index, uint64_t *pos);

/* A growable memory region (spill.c): heap memory while small, a shared
 * mapping of an unlinked temporary file ($TMPDIR, else /var/tmp) once large,
 * so that anonymous memory stays bounded. Init with ZFS_SPILL_INIT. Resizing
 * keeps the contents (new bytes are undefined) and may move p. */
typedef struct zfs_spill {
    void *p;
    size_t cap;   /* bytes */
    int fd;       /* -1 while on the heap */
} zfs_spill;

#define ZFS_SPILL_INIT {NULL, 0, -1}

int zfs__spill_resize(zfs_spill *r, size_t cap, zerr *err);
void zfs__spill_free(zfs_spill *r);

/* Leftovers of an import or export that was killed (kill -9, a crash):
 * entries beside path named <path's name><marker><suffix>, over
 * ZFS_STALE_SECONDS old (a run that has just made its temporary name may not
 * hold it yet), that in_use(entry, suffix) says no running process holds,
 * are removed. Returns how many were. */
#define ZFS_STALE_SECONDS 60
typedef int (*zfs_in_use_fn)(const char *entry, const char *suffix);
int zfs__remove_leftovers(const char *path, const char *marker, zfs_in_use_fn in_use);

#endif
