/* testutil.h: helpers shared by the Criterion suites. */
#ifndef ZEOLITE_TESTUTIL_H
#define ZEOLITE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Make a fresh empty directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *tu_tmpdir(const char *tag);
/* Remove a directory tree (like rm -rf); ignores a missing path. */
void tu_rmrf(const char *path);
/* Path of a file under the shared/ reference folder; malloc'd. */
char *tu_shared(const char *rel);
/* dir/name, malloc'd (NULL when out of memory). */
char *tu_path(const char *dir, const char *name);
/* 1 when path names anything (a dangling symlink too). */
int tu_exists(const char *path);
/* 1 when both files can be read and hold the same bytes. */
int tu_same_file(const char *a, const char *b);
/* Read a whole file; returns malloc'd bytes (NUL-terminated) and sets *len, or NULL. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Write bytes to a file (created or truncated); 0 on success. */
int tu_write_file(const char *path, const void *p, size_t len);
/* Entries of folder dir but . and .. (-1 when it cannot be read). */
int tu_count_entries(const char *dir);

/* A canary: a file planted outside a program's folder, whose mode, links,
 * inode and contents a test checks afterwards. */
typedef struct tu_canary {
    char path[1024];
    struct stat st;      /* as last noted */
    uint8_t *data;       /* its contents then (malloc'd) */
    size_t len;
} tu_canary;
/* Write dir/name (a line naming it) with mode, and note it. 0, or -1. */
int tu_canary_plant(tu_canary *c, const char *dir, const char *name, mode_t mode);
/* Note its state now: what the test did to it as the attacker counts. 0, or -1. */
int tu_canary_note(tu_canary *c);
/* 0 when it is as noted; 1 (why says what changed) when not. */
int tu_canary_changed(const tu_canary *c, char *why, size_t cap);
void tu_canary_free(tu_canary *c);

/* Path of the built zeolite executable (ZEOLITE_BIN or the build tree). */
const char *tu_zeolite_bin(void);
/* The first line of a sanitizer report (ASan, LSan, UBSan, TSan) in the text
 * file at path (a server's log, which holds its stderr), malloc'd; NULL when
 * there is none or no file. A report that only reaches a log would otherwise
 * go unseen: the server may still answer, or die only at shutdown. */
char *tu_sanitizer_report(const char *path);

/* ---- server processes (a `zeolite serve`, or another ZEO server) ---------- */

/* A loopback TCP port that is free now (the kernel's choice), or -1. */
int tu_free_port(void);
/* Fork and exec argv (argv[0] a path), its stdout and stderr appended to
 * log_path (NULL: inherited). The child gets SIGTERM if the test process
 * dies first. Returns the child's pid, or -1. */
pid_t tu_spawn(const char *const *argv, const char *log_path);
/* Wait up to timeout_ms until the server accepts a connection, on the Unix
 * socket unix_path when non-NULL, else on 127.0.0.1:port. 0 once it does;
 * -1 on timeout (the process is left running) or when the process exited
 * (then it is reaped and *pid set to 0). */
int tu_wait_accepting(pid_t *pid, const char *unix_path, int port, int timeout_ms);
/* SIGTERM, then SIGKILL after grace_ms; reaps the process. Returns its exit
 * status, or -1 if it died of a signal or had to be killed. */
int tu_stop_process(pid_t pid, int grace_ms);
/* Wait up to timeout_ms for a process already told to stop to exit, sending
 * it nothing (a second SIGTERM could land where the server has put back the
 * default action, on its way out, and kill it); SIGKILL after that. Reaps
 * it. Returns its exit status, or -1 as tu_stop_process does. */
int tu_wait_process(pid_t pid, int timeout_ms);

#endif
