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

#include <sys/stat.h>
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

/* ---- folders others may write into --------------------------------------
 *
 * A folder that other users can write into (ZEO's shared blob folder) may
 * hold symlinks and hard links planted to make a program act on files
 * outside it. These calls work relative to an open folder and never follow
 * a symlink: they refuse it. Messages name files as @p shown "/" name, where
 * @p shown is how the caller names the open folder.
 */

/* zfile_open_dir_at: make missing folders. */
#define ZFILE_CREATE 2
/* zfile_open_plain_at: accept a file with other hard links (the caller
 * made or vouches for them). */
#define ZFILE_LINKED_OK 4
/* zfile_copy_fd_at: fsync the new file before it is closed. */
#define ZFILE_SYNC 8

/**
 * @brief Open folder @p rel below the folder open as @p dfd, one name at a
 *        time, never following a symlink.
 *
 * @param rel    names separated by '/' ("" or "." is @p dfd's folder itself;
 *               ".." is refused)
 * @param flags  0 or ZFILE_CREATE, which makes missing folders with @p mode
 *               (the umask applies)
 * @return an open descriptor of the folder (O_DIRECTORY, close-on-exec) that
 *         the caller closes; ZE_NOTFOUND when a folder is missing; ZE_CORRUPT
 *         when one is a symlink or not a folder; ZE_INVAL, ZE_TOOBIG, ZE_IO.
 */
int zfile_open_dir_at(int dfd, const char *shown, const char *rel, int flags, mode_t mode,
                      zerr *err);

/**
 * @brief Whether @p st (from lstat or fstat) is a plain file: a regular file
 *        with one link, or one that no one may write and everyone may read.
 *
 * A file with more than one link may be a file outside the folder linked in:
 * changing its mode, content or links would change that file too, and
 * reading it would reveal it. A file no one may write and everyone may read
 * (as blob files are) can be neither changed by a chmod to read-only nor
 * revealed, so its other links do not matter.
 */
int zfile_is_plain(const struct stat *st);

/**
 * @brief Open the plain file @p name in the folder open as @p dfd.
 *
 * A symlink is refused (O_NOFOLLOW), and so is what zfile_is_plain refuses,
 * checked on the open file: what was checked is what is used.
 * @param oflags  O_RDONLY, O_WRONLY or O_RDWR; O_CREAT is not allowed
 * @param flags   0 or ZFILE_LINKED_OK (any number of links)
 * @param st      (may be NULL) gets the file's fstat
 * @return an open descriptor the caller closes; ZE_NOTFOUND; ZE_CORRUPT for
 *         a symlink, a file that is not regular, or one with other links;
 *         ZE_IO.
 */
int zfile_open_plain_at(int dfd, const char *shown, const char *name, int oflags, int flags,
                        struct stat *st, zerr *err);

/**
 * @brief Remove @p name from the folder open as @p dfd, when it is a plain
 *        file; a symlink, a folder or a file with other links stays.
 * @param flags  0 or ZFILE_LINKED_OK (a regular file with any number of links goes)
 * @return 0, also when @p name does not exist; ZE_CORRUPT when refused; ZE_IO.
 */
int zfile_unlink_plain_at(int dfd, const char *shown, const char *name, int flags, zerr *err);

/**
 * @brief Create a new file in the folder open as @p dfd, named @p prefix and
 *        six random letters or digits: exclusively, so nothing there (a
 *        symlink included) is followed or reused; mode 0600.
 * @param name  gets the name: room for strlen(@p prefix) + 7 bytes
 * @return an open descriptor (read-write, close-on-exec) the caller closes;
 *         ZE_TOOBIG when @p name has no room; ZE_IO.
 */
int zfile_mktemp_at(int dfd, const char *shown, const char *prefix, char *name, size_t cap,
                    zerr *err);

/**
 * @brief Copy what @p in holds (from offset 0) to a new file @p name in the
 *        folder open as @p dfd.
 *
 * @p name is created exclusively, so nothing there, a symlink included, is
 * followed or replaced; a failed copy removes it.
 * @param mode   of the new file (the umask applies)
 * @param flags  0 or ZFILE_SYNC
 * @return 0; ZE_EXISTS when @p name exists; ZE_FULL, ZE_IO.
 */
int zfile_copy_fd_at(int in, int dfd, const char *shown, const char *name, mode_t mode,
                     int flags, zerr *err);

/* fsync @p path, a file or a folder: its data and metadata are on disk. */
int zfile_fsync(const char *path, zerr *err);

/* fsync the folder that holds @p path ("." when @p path has no '/'), so that
 * creating, renaming or removing @p path survives a crash. */
int zfile_fsync_parent(const char *path, zerr *err);

#endif
