/* convert.h: FileStorage (Data.fs) reading, writing, import and export.
 *
 * The contract between src/convert and its users (the import, export and
 * verify commands, the Data.fs bench generator and the tests). The format is
 * described in shared/spec/filestorage-format.md; section numbers below refer
 * to it.
 *
 * Memory: the reader and the writer stream. They hold one read or write
 * window (4 MB / 1 MB), the largest single record, and an index of
 *   16 bytes per oid (oid -> offset of its last record, for prev pointers,
 *      in a hash table kept under 70% full),
 *    8 bytes per record (record offsets, to resolve back-pointers),
 *   24 bytes per transaction.
 * A 1 GB CMS-like file (~320,000 records, ~85,000 oids) needs about 6 MB.
 * Each index part past 4 MB moves to a shared mapping of an unlinked
 * temporary file ($TMPDIR, else /var/tmp), so anonymous memory stays bounded
 * for any file size (the page cache holds the rest).
 *
 * Errors: every fallible call returns 0 (or a count / 1 where documented) or a
 * negative ZE_* code and fills the optional zerr. Messages about the file
 * name the byte offset and what was expected there.
 */
#ifndef ZEOLITE_CONVERT_H
#define ZEOLITE_CONVERT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zblob.h"
#include "common/zbuf.h"
#include "common/zerr.h"
#include "common/zprogress.h"

#define ZFS_MAGIC "FS30"
#define ZFS_TXN_HDR 23
#define ZFS_REC_HDR 42
#define ZFS_META_MAX 65535

typedef enum zfs_kind {
    ZFS_DATA = 1,     /* the record holds a pickle */
    ZFS_BACKPTR = 2,  /* same data as an earlier record of the same oid */
    ZFS_DELETE = 3,   /* plen 0, back 0: the object does not exist */
} zfs_kind;

/* ---- reader ------------------------------------------------------------ */

typedef struct zfs_reader zfs_reader;

typedef struct zfs_reader_opts {
    int want_data;    /* load pickles into zfs_rec.data (import); else skip */
    int salvage;      /* skip damaged transactions instead of failing (below) */
} zfs_reader_opts;

/* Returned by zfs_reader_next_record (and handled inside next_txn) in salvage
 * mode: the current transaction is damaged and dropped; discard what was read
 * of it and go on with zfs_reader_next_txn. */
#define ZFS_DROPPED 2

/* One transaction. The slices stay valid until the next zfs_reader_next_txn. */
typedef struct zfs_txn {
    uint64_t pos;     /* offset of the transaction header */
    uint64_t tid;
    uint64_t tlen;    /* the length field (the trailer equals it) */
    char status;      /* ' ' or 'p' ('c' and 'u' transactions are never yielded) */
    zslice user, description, extension;
} zfs_txn;

/* One data record, checked: vlen 0, tloc, inside its transaction, record tid
 * = transaction tid, prev (section 5), back-pointer target (an earlier record
 * start of the same oid). data is valid until the next call on the reader. */
typedef struct zfs_rec {
    uint64_t pos;
    uint64_t oid;
    uint64_t tid;
    uint64_t prev;        /* raw prev field */
    int prev_zero;        /* prev is 0 where the rule of section 5 gives non-zero */
    zfs_kind kind;
    uint32_t index;       /* position in its transaction, from 0 */
    uint64_t plen;
    zslice data;          /* DATA with want_data: the pickle; else empty */
    uint64_t back;        /* BACKPTR: raw target offset */
    uint64_t back_tid;    /* BACKPTR: tid of the target record */
    uint32_t back_index;  /* BACKPTR: the target's index in its transaction */
} zfs_rec;

/* Open path for sequential reading. Checks the magic: a 0-byte file, another
 * magic, or FS21 (Python 2; convert with zodbupdate) give ZE_CORRUPT. Frees
 * nothing of the caller's; close with zfs_reader_close. */
int zfs_reader_open(zfs_reader **out, const char *path, const zfs_reader_opts *opts,
                    zerr *err);
void zfs_reader_close(zfs_reader *r);

/* Next committed transaction: 1 and *txn, 0 at the end of the committed data,
 * ZE_CORRUPT (or ZE_IO/ZE_NOMEM) on damage, naming the offset. The records of
 * the previous transaction that were not read are read (and checked) first.
 * A torn tail (an incomplete last transaction, a last transaction still 'c',
 * bytes after the last transaction that form none) ends the data: 0 is
 * returned and zfs_reader_tail reports it. 'u' transactions are skipped and
 * counted. */
int zfs_reader_next_txn(zfs_reader *r, zfs_txn *txn, zerr *err);

/* Next record of the current transaction: 1 and *rec, 0 once the transaction
 * is complete and its trailer checked (only then is it committed data). */
int zfs_reader_next_record(zfs_reader *r, zfs_rec *rec, zerr *err);

/* Salvage mode: a damaged transaction (ZE_CORRUPT: bad lengths, status,
 * tloc, trailer, tid order, versions, a back-pointer to a missing or foreign
 * record) is dropped and reading resumes at the next offset that holds a
 * plausible transaction (sane header, matching trailer, first record's tloc),
 * as ZODB's fsrecover does. prev pointers are not checked. Returns the number
 * of damaged regions, with the bytes skipped and the first one's offset and
 * error (valid until close). */
uint64_t zfs_reader_damage(const zfs_reader *r, uint64_t *bytes, uint64_t *first_pos,
                           const char **first_what);

/* After the end: 1 when a torn tail was ignored, with its offset and a
 * sentence saying what it was (valid until close); else 0. */
int zfs_reader_tail(const zfs_reader *r, uint64_t *pos, const char **what);

/* File size, and the offset up to which the file has been read and checked
 * (for progress). */
uint64_t zfs_reader_size(const zfs_reader *r);
uint64_t zfs_reader_offset(const zfs_reader *r);
/* Transactions yielded so far, and 'u' transactions skipped. */
uint64_t zfs_reader_txn_count(const zfs_reader *r);
uint64_t zfs_reader_undone_count(const zfs_reader *r);

/* Follow a back-pointer chain from record offset back (already checked by
 * the reader) to the record holding the pickle: *data_pos and *plen of that
 * record's pickle, or *plen = 0 when the chain ends in a deletion. */
int zfs_reader_resolve(zfs_reader *r, uint64_t back, uint64_t *data_pos,
                       uint64_t *plen, zerr *err);
/* Read n bytes at pos (bounded by the file) into out. */
int zfs_reader_pread(zfs_reader *r, uint64_t pos, void *out, size_t n, zerr *err);

/* What zfs_verify found. */
typedef struct zfs_verify_result {
    uint64_t txns;         /* committed transactions checked */
    uint64_t bytes;        /* bytes checked (up to the torn tail, if any) */
    int torn;              /* the file ends in a torn tail at tail_pos */
    uint64_t tail_pos;
    char tail_what[200];
} zfs_verify_result;

/* Called for each checked transaction (n counts from 0), e.g. for fstest -v
 * style output. */
typedef void (*zfs_verify_cb)(const zfs_txn *txn, uint64_t n, void *ud);

/* Check a whole file as fstest does, plus the converter's checks (prev,
 * back-pointers, versions, record tids). Returns 0 for a clean file, 1 when
 * it ends in a torn tail (res says where and what), or a negative ZE_* code
 * with the damage in err. cb and res may be NULL. */
int zfs_verify(const char *path, zfs_verify_cb cb, void *ud, zfs_verify_result *res,
               zerr *err);

/* ---- writer ------------------------------------------------------------ */

typedef struct zfs_writer zfs_writer;

/* One record to write. For BACKPTR, (back_tid, back_index) name the target;
 * when that record is not in the file (an export of a tid range), the record
 * is written inline from data, or as a deletion when data is empty. */
typedef struct zfs_wrec {
    uint64_t oid;
    zfs_kind kind;
    zslice data;          /* DATA: the pickle (non-empty); BACKPTR: the resolved pickle */
    uint64_t back_tid;
    uint32_t back_index;
    int prev_zero;        /* write prev = 0 whatever the rule gives */
} zfs_wrec;

/* Create path (ZE_EXISTS if it exists) and write the magic. Call
 * zfs_writer_finish to flush and sync it, or zfs_writer_abort to delete it.
 * A stale .index beside the final file is the caller's to remove (section 8). */
int zfs_writer_open(zfs_writer **out, const char *path, zerr *err);
/* Begin a transaction: status ' ' or 'p', tid greater than the last one,
 * user/description/extension at most 65535 bytes each (ZE_TOOBIG). */
int zfs_writer_begin(zfs_writer *w, uint64_t tid, char status, zslice user,
                     zslice description, zslice extension, zerr *err);
int zfs_writer_record(zfs_writer *w, const zfs_wrec *rec, zerr *err);
/* Write the trailer and the final length. */
int zfs_writer_end(zfs_writer *w, zerr *err);
/* Flush, fsync and close; frees w whatever the result. */
int zfs_writer_finish(zfs_writer *w, zerr *err);
/* Write the FileStorage index of what was written (spec section 8) to
 * index_path (which must not exist), so that Python opens the file without a
 * scan. Call after the last zfs_writer_end; the writer then accepts no more
 * transactions, only zfs_writer_finish or zfs_writer_abort. */
int zfs_writer_index(zfs_writer *w, const char *index_path, zerr *err);
/* Close and delete the file; frees w. */
void zfs_writer_abort(zfs_writer *w);
/* Bytes written so far. */
uint64_t zfs_writer_size(const zfs_writer *w);

/* ---- blob directories (section 12) -------------------------------------- */

/* Layouts, paths and the .layout marker are common/zblob.h's. */
/* 1 when a record's pickle is a ZODB.blob.Blob record (its class metadata
 * names ZODB.blob Blob), else 0. */
int zfs_is_blob_record(const uint8_t *p, size_t len);

/* ---- import / export ---------------------------------------------------- */

typedef struct zfs_import_opts {
    const char *blob_dir;  /* source blob directory, or NULL */
    int link;              /* hard-link blob files instead of copying */
    int strict;            /* a torn tail is an error (nothing imported) */
    int salvage;           /* drop damaged transactions and go on (zfs_reader_damage) */
    int quiet;             /* no progress at all */
    const zprogress_opts *progress;  /* NULL: a line every 5 s off a terminal */
    /* When set and it becomes nonzero (a signal handler), the import stops at
     * the next transaction boundary with ZE_IO "interrupted": a new database
     * is discarded, an append keeps the batches already committed. */
    const volatile sig_atomic_t *cancel;
} zfs_import_opts;

typedef struct zfs_import_stats {
    uint64_t txns;         /* transactions imported */
    uint64_t leftovers;    /* temporary folders of a killed earlier import, removed */
    uint64_t skipped;      /* transactions already in the database (append) */
    uint64_t undone;       /* obsolete 'u' transactions, which readers skip */
    uint64_t records;
    uint64_t blobs;
    uint64_t bytes;        /* Data.fs bytes read */
    int torn;              /* a torn tail was ignored at tail_pos */
    uint64_t tail_pos;
    char tail_what[200];
    uint64_t damaged;      /* salvage: damaged regions dropped, their bytes, the first */
    uint64_t damaged_bytes;
    uint64_t damage_pos;
    char damage_what[ZERR_MSG_MAX];
} zfs_import_stats;

/* Import a Data.fs into the database folder dbdir. A missing (or empty)
 * dbdir gets a new database built in a temporary folder beside it
 * (dbdir.import-XXXXXX) and renamed into place only when everything
 * succeeded; such folders left by a killed import (unlocked, over a minute
 * old) are removed first. An existing database gets the
 * transactions newer than its last tid, after the whole file has been checked
 * and shown to continue the database (its last transaction is in the file,
 * with the same user, description and extension); they are committed in
 * batches at transaction boundaries. Anything else that dbdir holds gives
 * ZE_EXISTS; a server holding dbdir, ZE_BUSY.
 * Blobs: a record whose pickle (back-pointers followed) is a ZODB.blob.Blob
 * takes the file of (oid, record tid) from opt->blob_dir (bushy or lawn, from
 * its .layout); no blob_dir, an unknown layout, or a missing or unreadable
 * file is an error.
 * A dbdir that is a PostgreSQL URI (store_spec_is_postgresql) is a database
 * there: an empty one gets the schema, one with history gets the newer
 * transactions as above, the whole import being one database transaction
 * (a failed import leaves the database as it was, but for the schema an
 * empty database gets); a database a server holds gives ZE_BUSY. */
int zfs_import(const char *fs_path, const char *dbdir, const zfs_import_opts *opt,
               zfs_import_stats *stats, zerr *err);

typedef struct zfs_export_opts {
    const char *blob_dir;  /* target blob directory (new or empty), or NULL; needed
                              when the database has blobs */
    zblob_layout layout;   /* 0 = bushy */
    uint64_t from_tid;     /* 0 = from the first transaction */
    uint64_t to_tid;       /* 0 = to the last */
    int write_index;       /* also write DATA.fs.index (else a stale one is removed) */
    int quiet;             /* no progress at all */
    const zprogress_opts *progress;  /* NULL: a line every 5 s off a terminal */
    const volatile sig_atomic_t *cancel;  /* as for import: no file is left */
} zfs_export_opts;

typedef struct zfs_export_stats {
    uint64_t txns;
    uint64_t records;
    uint64_t blobs;
    uint64_t bytes;        /* Data.fs bytes written */
    uint64_t leftovers;    /* temporary files of a killed earlier export, removed */
} zfs_export_stats;

/* Export the database in dbdir (a folder, or a PostgreSQL URI: read in one
 * read-only REPEATABLE READ transaction) (opened read-only; a running server may have
 * it open) to a new Data.fs at fs_path (ZE_EXISTS if present), written under a
 * temporary name (fs_path.export-PID) and renamed when complete. On failure
 * nothing is left: no file, no index, and no blob directory if this call
 * created it. Temporary files of a killed export (its PID gone, over a
 * minute old) are removed first. */
int zfs_export(const char *dbdir, const char *fs_path, const zfs_export_opts *opt,
               zfs_export_stats *stats, zerr *err);

#endif
