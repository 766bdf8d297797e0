/* limit.h: what bench/limit's two programs share.
 *
 * zl_limit is the ceiling a ZEO server can reach on this machine: a bare
 * single-threaded epoll server that answers each call with one write of a
 * reply built once at start. zl_pingpong measures the same exchange with no
 * ZEO at all (a bare client and a bare server of fixed-size frames), and is
 * also the bare client that drives any ZEO server with loadBefore calls.
 *
 * The frames are made by src/proto, so that the bytes exchanged are exactly
 * those of `zeolite bench`'s load workload: a loadBefore call of 45 payload
 * bytes (with a two-byte msgid) and its reply, whose size follows the object
 * size (196 payload bytes for the bench's default, ZBENCH_OBJECT_SIZE 128).
 */
#ifndef ZEOLITE_BENCH_LIMIT_H
#define ZEOLITE_BENCH_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zbuf.h"
#include "common/zerr.h"
#include "proto/proto.h"

/* ---- sockets (net.c) ----------------------------------------------------- */

/* A listening socket, non-blocking, on HOST:PORT or on a Unix socket path
 * (any address with a '/'; a stale socket file is replaced). The fd, or a
 * negative ZE_* code with err filled. */
int lim_listen(const char *addr, zerr *err);
/* A connected blocking socket (TCP_NODELAY on TCP); the fd or ZE_*. */
int lim_connect(const char *addr, zerr *err);
/* The "HOST:PORT" a TCP listener got (port 0 asks the kernel for one);
 * ZE_IO for other sockets. */
int lim_local_addr(int fd, char *buf, size_t cap);
void lim_nonblock(int fd);
void lim_nodelay(int fd);

/* ---- calls and replies (frames.c) ---------------------------------------- */

/* What the server needs of a call: the bytes of its msgid as encoded (a
 * reply echoes them unchanged), its flag and its method name. Pointers into
 * the payload scanned. */
typedef struct lim_call {
    const uint8_t *msgid;
    size_t msgid_len;
    int async;          /* the flag is true: a call that gets no reply, or an error reply */
    const uint8_t *name;
    size_t name_len;
} lim_call;

/* Read the head of a message (msgid, flag, name) without decoding its
 * arguments. It takes the shapes src/proto and the Python peers write;
 * 0, or ZE_PROTO for anything else. */
int lim_scan(proto_enc enc, const uint8_t *p, size_t len, lim_call *out);
/* 1 when the call's name is s. */
int lim_call_is(const lim_call *c, const char *s);

#define LIM_MAX_SLOTS 128

/* A reply made once: the frame's bytes after the msgid. A reply is put
 * together as header + prefix + the call's msgid + these bytes; slots are
 * the offsets of 8-byte big-endian values (tids, oids) the server fills in
 * per reply. */
typedef struct lim_reply {
    zbuf tail;
    size_t slot[LIM_MAX_SLOTS];
    size_t nslots;
} lim_reply;

/* Build the reply to a call whose result is result. Placeholders in the
 * result made by lim_placeholder(i) become slot i. 0 or ZE_*. */
int lim_reply_init(lim_reply *r, proto_enc enc, const zv *result, zerr *err);
void lim_reply_free(lim_reply *r);
/* The 8 bytes that mark slot i in a result given to lim_reply_init. */
uint64_t lim_placeholder(size_t i);
/* Bytes lim_reply_put writes for a call with that msgid. */
size_t lim_reply_size(const lim_reply *r, proto_enc enc, const lim_call *c);
/* Write the whole frame at dst (lim_reply_size bytes); slot i gets
 * values[i] (values may be NULL when there are no slots). */
size_t lim_reply_put(const lim_reply *r, proto_enc enc, const lim_call *c,
                     const uint64_t *values, uint8_t *dst);

/* The tid of 2026-12-07 00:00 UTC, as a running server would have. */
#define LIM_TID 0x040d86e000000000ull

/* loadBefore's result for the bench's objects: (record, start tid, None),
 * with a record of object_size bytes of state as `zeolite bench` stores. */
zv *lim_load_result(zv_arena *a, size_t object_size);
/* The loadBefore(oid, maxtid) call frame zeolite's client sends, msgid
 * msgid. */
int lim_load_call(proto_enc enc, int64_t msgid, uint64_t oid, zbuf *out, zerr *err);

#endif
