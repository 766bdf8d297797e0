/* fsmini.h: just enough of a FileStorage (Data.fs) reader to feed the
 * store's fixture tests (spec filestorage-format.md sections 3-4). */
#ifndef ZEOLITE_FSMINI_H
#define ZEOLITE_FSMINI_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_rec {
    uint64_t oid, prev, back;   /* back: backpointer offset (plen 0) */
    uint64_t pos;               /* offset of the record */
    const uint8_t *data;        /* pickle (plen > 0), into the file buffer */
    size_t len;
} fs_rec;

typedef struct fs_txn {
    uint64_t tid;
    char status;
    const uint8_t *user, *desc, *ext;
    size_t ulen, dlen, elen;
    fs_rec *recs;
    size_t n;
} fs_txn;

typedef struct fs_file {
    uint8_t *buf;
    size_t size;
    fs_txn *txns;
    size_t n;
} fs_file;

/* Read and parse a whole Data.fs (stopping at a 'c' transaction). 0 or -1. */
int fs_load(const char *path, fs_file *out);
void fs_free(fs_file *f);
/* The transaction and index of the record at offset pos; 0 or -1. */
int fs_find(const fs_file *f, uint64_t pos, const fs_txn **txn, size_t *index);

#endif
