/* testutil.h: helpers shared by the Criterion suites. */
#ifndef ZEOLITE_TESTUTIL_H
#define ZEOLITE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Make a fresh empty directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *tu_tmpdir(const char *tag);
/* Remove a directory tree (like rm -rf); ignores a missing path. */
void tu_rmrf(const char *path);
/* Path of a file under the shared/ reference folder; malloc'd. */
char *tu_shared(const char *rel);
/* Read a whole file; returns malloc'd bytes (NUL-terminated) and sets *len, or NULL. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Write bytes to a file (created or truncated); 0 on success. */
int tu_write_file(const char *path, const void *p, size_t len);
/* Path of the built zeolite executable (ZEOLITE_BIN or the build tree). */
const char *tu_zeolite_bin(void);

#endif
