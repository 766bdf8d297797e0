/* blob.h: the blob folder (DIR/blobs, ZODB's bushy layout), private to src/store/. */
#ifndef ZEOLITE_STORE_BLOB_H
#define ZEOLITE_STORE_BLOB_H

#include "store/store_internal.h"

/* Create blobs/ and blobs/tmp/ and the .layout marker when missing (refusing
 * another layout), and, unless read-only, empty tmp/ and remove blob files
 * whose record does not exist (left by a crash before the LMDB commit). */
int store__blob_init(store *s, zerr *err);

/* Move the file src to the blob path of (oid, tid), creating its folders:
 * fsync the file, rename it (copy when src is on another filesystem), make it
 * read-only and fsync the folder, so the file is durable before the LMDB
 * commit that references it. */
int store__blob_place(store *s, const char *src, uint64_t oid, uint64_t tid, zerr *err);

/* Give (oid, dst_tid) the same content as (oid, src_tid) (a hard link, or a
 * copy): undo writes a new file per record, as ZODB does. */
int store__blob_link(store *s, uint64_t oid, uint64_t src_tid, uint64_t dst_tid, zerr *err);

#endif
