/* zfile.h: the file system chores every module needs: mkdir -p, copying a
 * file, rm -rf, and fsync of a file and of the folder that names it.
 *
 * Paths are plain strings (at most PATH_MAX bytes; a longer one is
 * ZE_TOOBIG). Failures return a negative ZE_* code and fill err (may be
 * NULL) with a message naming the path: ZE_NOTFOUND for a missing source,
 * ZE_EXISTS for a target in the way, ZE_FULL for ENOSPC, EDQUOT and EFBIG,
 * ZE_IO with strerror for the rest (zerr_sys).
 */
#ifndef ZEOLITE_COMMON_ZFILE_H
#define ZEOLITE_COMMON_ZFILE_H

#include <sys/types.h>

#include "common/zerr.h"

/**
 * @brief mkdir -p: create folder @p path and its missing parents.
 *
 * Folders on the way may be symlinks to folders, as for mkdir -p.
 * @param[in] mode  for the folders created (the umask applies)
 * @return 0 (also when @p path already is a folder); ZE_EXISTS when a
 *         component exists and is not a folder.
 */
int zfile_mkdirs(const char *path, mode_t mode, zerr *err);

/* zfile_mkdirs of the folder part of @p path (up to its last '/'); 0 when
 * @p path has none. */
int zfile_mkdirs_parent(const char *path, mode_t mode, zerr *err);

/* zfile_copy: make a hard link instead when the file system allows it. */
#define ZFILE_LINK 1

/**
 * @brief Copy the file @p src to a new file @p dst.
 *
 * @p dst must not exist: it is created exclusively, so a symlink at @p dst is
 * never followed. @p src is read through symlinks. With ZFILE_LINK, @p dst
 * is a hard link to @p src where the file system allows it, a copy where it
 * does not (another file system, no links allowed). Nothing is fsync'd. A
 * failed copy removes the part of @p dst it wrote.
 *
 * @param[in] mode   of a copied @p dst (the umask applies)
 * @param[in] flags  0 or ZFILE_LINK
 * @return 0; ZE_NOTFOUND when @p src does not exist; ZE_EXISTS when @p dst
 *         does; ZE_FULL, ZE_IO otherwise.
 */
int zfile_copy(const char *src, const char *dst, mode_t mode, int flags, zerr *err);

/**
 * @brief rm -rf: remove @p path and, when it is a folder, all it holds.
 *
 * Symlinks are removed, never followed: a link in the tree to a folder
 * elsewhere leaves that folder alone. Each folder level holds one open file
 * descriptor while its entries are removed.
 * @return 0, also when @p path does not exist; the first error otherwise
 *         (removal goes on past it, so as much as possible is gone).
 */
int zfile_rm_rf(const char *path, zerr *err);

/**
 * @brief Remove everything inside folder @p path, keeping the folder.
 *
 * @p path itself may be a symlink to a folder; nothing inside is followed.
 * @return 0; ZE_NOTFOUND when @p path does not exist; ZE_EXISTS when it is
 *         not a folder; the first removal error otherwise.
 */
int zfile_empty_dir(const char *path, zerr *err);

/**
 * @brief Whether folder @p path has no entries (but . and ..).
 * @return 1 when empty, 0 when not; ZE_NOTFOUND when @p path does not exist;
 *         ZE_EXISTS when it is not a folder; ZE_IO.
 */
int zfile_dir_is_empty(const char *path, zerr *err);

/* fsync @p path, a file or a folder: its data and metadata are on disk. */
int zfile_fsync(const char *path, zerr *err);

/* fsync the folder that holds @p path ("." when @p path has no '/'), so that
 * creating, renaming or removing @p path survives a crash. */
int zfile_fsync_parent(const char *path, zerr *err);

#endif
