/* zblob.h: where ZODB keeps blob files (ZODB/blob.py: BushyLayout, LawnLayout,
 * auto_layout_select), for the store, the converter and the client alike.
 *
 *   bushy  DIR/0x00/0x00/0x00/0x00/0x00/0x00/0x12/0x34/0x03d5e6a4b3c2f1.blob
 *          one folder per oid byte, most significant first, then tid_repr
 *   lawn   DIR/0x1234/0x03d5e6a4b3c2f1.blob
 *          oid_repr, then tid_repr
 *
 * A blob folder names its layout in DIR/.layout ("bushy" or "lawn", with
 * surrounding white space ignored).
 */
#ifndef ZEOLITE_COMMON_ZBLOB_H
#define ZEOLITE_COMMON_ZBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/zerr.h"

typedef enum zblob_layout { ZBLOB_BUSHY = 1, ZBLOB_LAWN = 2 } zblob_layout;

/* Room for an id's repr and its NUL: "0x" + 16 hex digits + 1. */
#define ZBLOB_REPR_MAX 19

/**
 * @brief ZODB.utils.oid_repr / tid_repr: "0x", then the id in lowercase hex
 *        without its leading zero bytes ("0x00" for 0).
 * @return the length written to @p buf (4 to 18), NUL not counted.
 */
int zblob_repr(uint64_t id, char buf[ZBLOB_REPR_MAX]);

/**
 * @brief The folder of @p oid's files under @p dir, in @p layout.
 * @return 0, or ZE_TOOBIG when it does not fit @p cap bytes (@p buf then
 *         holds no usable path).
 */
int zblob_oid_dir(const char *dir, zblob_layout layout, uint64_t oid, char *buf, size_t cap);

/**
 * @brief The folder of @p oid's files relative to the blob folder:
 *        "0x00/0x00/0x00/0x00/0x00/0x00/0x12/0x34" (bushy) or "0x1234" (lawn).
 * @return 0, or ZE_TOOBIG when it does not fit @p cap bytes.
 */
int zblob_oid_rel(zblob_layout layout, uint64_t oid, char *buf, size_t cap);

/* Room for a blob file's name and its NUL: tid_repr + ".blob". */
#define ZBLOB_NAME_MAX (ZBLOB_REPR_MAX + 5)

/* The name of revision @p tid's file in its oid's folder: tid_repr ".blob".
 * Returns its length. */
int zblob_file_name(uint64_t tid, char buf[ZBLOB_NAME_MAX]);

/**
 * @brief Open @p oid's folder below the blob folder open as @p rootfd,
 *        never following a link.
 *
 * For a blob folder others write into (ZEO's shared blob folder): an oid
 * folder, or a bushy folder on the way to it, that is a symlink is refused,
 * not followed (zfile_open_dir_at).
 * @param shown  the blob folder's name in messages
 * @param flags  0 or ZFILE_CREATE (missing folders are made, mode 0777 less
 *               the umask)
 * @return an open descriptor the caller closes; ZE_NOTFOUND when a folder is
 *         missing; ZE_CORRUPT when one is a symlink or not a folder; ZE_IO.
 */
int zblob_oid_dir_open(int rootfd, const char *shown, zblob_layout layout, uint64_t oid,
                       int flags, zerr *err);

/**
 * @brief The file of revision (@p oid, @p tid) under @p dir, in @p layout:
 *        the oid's folder, "/", tid_repr, ".blob".
 * @return 0, or ZE_TOOBIG when it does not fit @p cap bytes.
 */
int zblob_path(const char *dir, zblob_layout layout, uint64_t oid, uint64_t tid, char *buf,
               size_t cap);

/* "bushy" or "lawn": what the .layout marker says. */
const char *zblob_layout_name(zblob_layout layout);

/**
 * @brief The layout @p dir's .layout marker names.
 *
 * A marker that is a symlink or not a regular file is refused, not read (one
 * with other hard links is read: a backup may share it).
 * @return 0; ZE_NOTFOUND when there is no marker (or no @p dir);
 *         ZE_INVAL when it names an unknown layout; ZE_CORRUPT when it is a
 *         symlink or not a regular file; ZE_IO when it cannot be read.
 */
int zblob_layout_read(const char *dir, zblob_layout *out, zerr *err);

/**
 * @brief ZODB's auto_layout_select: the marker's layout; without one, bushy
 *        for a missing folder or one holding only dot files, else lawn.
 * @return 0, or an error of zblob_layout_read other than ZE_NOTFOUND.
 */
int zblob_layout_select(const char *dir, zblob_layout *out, zerr *err);

/* Write @p dir/.layout naming @p layout. A marker there that is not a plain
 * file (zfile_is_plain) is refused with ZE_CORRUPT, never written through.
 * 0, or ZE_CORRUPT / ZE_IO / ZE_FULL. */
int zblob_layout_write(const char *dir, zblob_layout layout, zerr *err);

#endif
