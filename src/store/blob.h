/* blob.h: the blob folder (DIR/blobs, ZODB's bushy layout), private to src/store/.
 *
 * Clients of a shared blob folder (ZEO's storeBlobShared) write into it, so
 * anything in it may be a symlink or a hard link planted to turn the store
 * against a file elsewhere. Below DIR/blobs, which is opened once, the store
 * therefore reaches every folder name by name without following a link
 * (zblob_oid_dir_open) and opens, moves, chmods and removes only plain files
 * (zfile_is_plain), checked on the file it opened: a link is refused, never
 * followed. */
#ifndef ZEOLITE_STORE_BLOB_H
#define ZEOLITE_STORE_BLOB_H

#include "store/store_internal.h"

/* Create blobs/ and blobs/tmp/ and the .layout marker when missing (refusing
 * another layout, and a tmp/ or marker that is a link), open them for the
 * calls below, and, unless read-only, remove the plain files in tmp/ and blob
 * files whose record does not exist (left by a crash before the LMDB commit). */
int store__blob_init(store *s, zerr *err);

/* Close what store__blob_init opened. */
void store__blob_close(store *s);

/* Check, when it is queued, a file a transaction will install: src must be a
 * plain file (with other links when linked_ok: the caller vouches for them)
 * reached without following a link below the blob folder, and oid's folder
 * must be a folder (it is made when missing). ZE_NOTFOUND or ZE_CORRUPT with
 * a message naming the file or folder. */
int store__blob_check(store *s, const char *src, int linked_ok, uint64_t oid, zerr *err);

/* Move the file src to the blob path of (oid, tid), checked again as
 * store__blob_check does, on the file moved: make it read-only, fsync it,
 * rename it (copy it when src is on another filesystem) and fsync the
 * folder, so the file is durable before the LMDB commit that references it. */
int store__blob_place(store *s, const char *src, int linked_ok, uint64_t oid, uint64_t tid,
                      zerr *err);

/* Give (oid, dst_tid) a copy of the file of (oid, src_tid), as ZODB's undo
 * does: a new file, never a link to what may be another file. */
int store__blob_copy(store *s, uint64_t oid, uint64_t src_tid, uint64_t dst_tid, zerr *err);

/* Remove a file queued for installation that was not installed (an aborted
 * transaction): only a plain file (linked_ok as for store__blob_check). */
void store__blob_discard(store *s, const char *src, int linked_ok);

/* Remove oid's folder (not the bushy folders above it) when it is empty;
 * best effort, and never through a link. */
void store__blob_remove_dir(store *s, uint64_t oid);

#endif
