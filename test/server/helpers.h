/* helpers.h: the server tests' tools: a real `zeolite serve` process on a
 * free loopback port, and a raw ZEO client built on proto.h. */
#ifndef ZEOLITE_TEST_SERVER_HELPERS_H
#define ZEOLITE_TEST_SERVER_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/zvalue.h"
#include "proto/proto.h"

/* ---- the server process ------------------------------------------------ */

typedef struct tc tc;

typedef struct th_server {
    pid_t pid;
    int port;
    char *dir;          /* temp dir: database in dir/db, log in dir/log */
    char *pg;           /* on PostgreSQL: the database's URI (dir/db unused) */
} th_server;

/* Start `zeolite serve -a 127.0.0.1:PORT -f DIR/db` plus the NULL-terminated
 * extra arguments; 0 once it accepts connections. With
 * ZEOLITE_STORE_BACKEND=postgresql (ctest's _on_pg suites) the storage is a
 * new database of the test cluster instead (s->pg, served through a
 * <postgresql> section in DIR/pg.conf with its blob cache in DIR/db/blobs),
 * dropped by th_free. */
int th_start(th_server *s, const char *const *extra);
/* Start the stopped server s again on its port and database, with extra. */
int th_restart(th_server *s, const char *const *extra);
/* 1 when the suites serve from PostgreSQL (ZEOLITE_STORE_BACKEND). */
int th_on_pg(void);
/* As th_start with a full argument list after "serve" (no -a/-f added):
 * the caller names the address; port 0 means "do not wait for a port"
 * (then wait_path, if set, is a Unix socket to wait for). */
int th_spawn(th_server *s, const char *const *args, const char *wait_path);
/* Connect to a Unix socket instead of a port. */
int tc_open_unix(tc *c, const char *path);
/* SIGTERM and wait; returns the exit status (or -1 if it had to be killed).
 * A sanitizer report in the server's log fails the test. */
int th_stop(th_server *s);
/* th_stop for a server already told to stop (tu_wait_process): waits for
 * it to exit by itself. */
int th_wait_exit(th_server *s);
/* Stop (if running: an exit status other than 0 fails the test; so does a
 * sanitizer report in the log) and remove the temp dir. */
void th_free(th_server *s);
/* The server's log, malloc'd (NUL-terminated). */
char *th_log(const th_server *s);

/* ---- a raw client ------------------------------------------------------ */

#define TC_TIMEOUT 5000   /* ms a test waits for any expected frame */

struct tc {
    int fd;
    proto_enc enc;
    zv_arena *a;        /* arguments and decoded messages; reset with tc_reset */
    int64_t next_msgid;
    /* async messages received while waiting for a reply, oldest first */
    proto_msg asyncs[64];
    size_t n_async;
};

int tc_open(tc *c, int port);                 /* TCP connect only */
/* As tc_open with a receive buffer of rcvbuf bytes set before connecting
 * (a peer that reads little: the server's replies stay in its memory). */
int tc_open_rcvbuf(tc *c, int port, int rcvbuf);
/* Connect, read the announcement, answer with enc (the other encoding when
 * ZEOLITE_TEST_SWAP_ENC=1); 0 on success. announced (may be NULL) gets the
 * announced protocol ("Z5"/"M5"). */
int tc_connect(tc *c, int port, proto_enc enc, char announced[3]);
void tc_close(tc *c);
void tc_reset(tc *c);                         /* forget arena values and asyncs */

/* Raw frames: send a payload with its header; read one (malloc'd payload).
 * tc_read returns 1, 0 when the server closed the connection, -1 on timeout. */
int tc_send_raw(tc *c, const void *p, size_t len);
int tc_read(tc *c, uint8_t **p, size_t *len, int timeout_ms);
/* 1 when the server closed the connection within timeout_ms (data before
 * the close is discarded), 0 otherwise. */
int tc_wait_closed(tc *c, int timeout_ms);

/* Send a call; msgid NULL takes the next integer id. Returns the msgid used. */
int64_t tc_send(tc *c, const zv *msgid, int async, const char *name, const zv *args);
/* Read and decode the next message (into c->a). 1, 0 closed, -1 timeout. */
int tc_recv(tc *c, proto_msg *m, int timeout_ms);
/* Sync call: send, then wait for the reply with that msgid, keeping async
 * messages that arrive first in c->asyncs. Returns the reply (args, flag in
 * *flag: 0 ok, 2 error), or NULL if the connection closed or timed out. */
zv *tc_call(tc *c, const char *name, const zv *args, int64_t *flag);
/* Wait for the next async message named name (checking c->asyncs first);
 * its args or NULL. */
zv *tc_wait_async(tc *c, const char *name, int timeout_ms);

/* ---- values ------------------------------------------------------------ */

zv *tv_tuple(zv_arena *a, size_t n, ...);     /* n zv* */
zv *tv_oid(zv_arena *a, uint64_t oid);
zv *tv_bytes(zv_arena *a, const char *s);
zv *tv_str(zv_arena *a, const char *s);
zv *tv_int(zv_arena *a, int64_t i);
zv *tv_none(zv_arena *a);
zv *tv_dict0(zv_arena *a);
/* The class path of an error reply's (class, payload), or "". */
const char *tv_error_class(const zv *reply);
/* 1 when the error reply is exactly e, class and payload (compare replies
 * decoded from pickle: msgpack has no lists, only arrays read as tuples). */
int tv_is_exc(const zv *reply, const proto_exc *e);
/* As zv_equal, and as tv_is_exc, for what c received: in msgpack a list
 * comes back as a tuple, which then counts as the list. */
int tv_equal_as(const tc *c, const zv *a, const zv *b);
int tv_is_exc_as(const tc *c, const zv *reply, const proto_exc *e);
/* 8-byte value as uint64 (0 when not 8 bytes). */
uint64_t tv_u64(const zv *v);

/* Register on storage "1"; the reply tid, or -1 on failure. */
int64_t tc_register(tc *c);
/* loadBefore(oid, the largest tid): the current revision; the reply (or NULL
 * when none came) with its flag in *flag. */
zv *tc_load_current(tc *c, uint64_t oid, int64_t *flag);
/* tpc_begin(txn) and storea(oid, serial, data, txn), both async. */
void tc_begin_store(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data);
/* storea(oid, serial, data, txn), async. */
void tc_store(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data);
/* One transaction storing data for oid with serial; its tid (0 on failure). */
uint64_t tc_commit_one(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data);

/* A well-behaved client on a connection of its own: register, take a new
 * oid, commit it and load it back. Its tid, or 0 when any step failed. */
uint64_t th_commit_new(const th_server *s);
/* zeolite_memory() on c (registered): an int entry, or -1. */
int64_t tc_status_int(tc *c, const char *key);
/* The server's peak resident memory (VmHWM) in bytes, or -1. */
long long th_peak_rss(const th_server *s);
/* 1 when the server runs with ASan, TSan or MSan (its maps name their
 * runtime): its RSS then says nothing about its own memory. */
int th_sanitized(const th_server *s);

#endif
