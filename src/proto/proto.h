/* proto.h: the ZEO 5 wire codec, shared by server and client.
 *
 * Bytes in, values out, and back; no sockets, no storage. Three layers:
 *  - framing: 4-byte big-endian length + payload, with a maximum size;
 *  - handshake: the protocol announcement "Z5"/"M5" and the reply, "ruok";
 *  - messages: the 4-tuple (msgid, flag, name, args) in pickle (Z5) or
 *    msgpack (M5), decoded into zv values and encoded from them, including
 *    exception replies in the exact shape the Python client rebuilds.
 * Message-level validation of arguments belongs to the caller (server/client),
 * helped by the typed accessors at the end.
 */
#ifndef ZEOLITE_PROTO_H
#define ZEOLITE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/zbuf.h"
#include "common/zerr.h"
#include "common/zvalue.h"

typedef enum proto_enc { PROTO_PICKLE = 'Z', PROTO_MSGPACK = 'M' } proto_enc;

#define PROTO_DEFAULT_MAX_FRAME (256u * 1024 * 1024)

/* ---- framing ---------------------------------------------------------- */

/* Incremental frame splitter: feed bytes as they arrive, take whole frames. */
typedef struct proto_framer {
    zbuf in;            /* buffered input not yet returned as frames */
    size_t pos;         /* start of the unconsumed part of in */
    uint32_t max_frame; /* a larger announced length is ZE_TOOBIG */
} proto_framer;

void proto_framer_init(proto_framer *f, uint32_t max_frame);
void proto_framer_free(proto_framer *f);
/* Append received bytes. ZE_NOMEM on failure. */
int proto_framer_feed(proto_framer *f, const void *p, size_t n);
/* Next whole frame: 1 and *payload/*len (valid until the next feed/next call),
 * 0 when more bytes are needed, ZE_TOOBIG when the header announces more than
 * max_frame (the caller closes the connection). */
int proto_framer_next(proto_framer *f, const uint8_t **payload, uint32_t *len);
/* Bytes buffered (a partial frame), for per-connection input bounds. */
size_t proto_framer_pending(const proto_framer *f);

/* Append the 4-byte header and payload to out. */
int proto_frame_append(zbuf *out, const void *payload, size_t len);

/* ---- handshake -------------------------------------------------------- */

/* The announcement frame payload: "Z5" or "M5". */
const char *proto_announcement(proto_enc enc);

typedef enum proto_hello {
    PROTO_HELLO_Z5,
    PROTO_HELLO_M5,
    PROTO_HELLO_RUOK,
    PROTO_HELLO_BAD,
} proto_hello;

/* Classify the client's first frame (server side). */
proto_hello proto_parse_hello(const uint8_t *p, size_t len);

/* ---- messages --------------------------------------------------------- */

typedef struct proto_msg {
    zv *msgid;      /* int, or the (oid, tid) tuple of loadBefore, or anything: echo it */
    int async;      /* flag truthy: call is async (requests) / 2 = error (replies) */
    int64_t flag;   /* raw flag as an int (0, 1, 2) */
    const char *name;  /* method name, ".reply" for replies; NUL-terminated, in the arena */
    zv *args;       /* requests: TUPLE of arguments; replies: the result value */
} proto_msg;

/* Decode one frame payload (after the handshake) into *msg, in arena a.
 * ZE_PROTO/ZE_CORRUPT on anything malformed, with a message for the log.
 * A pickle message may contain no GLOBAL/REDUCE/BUILD/persistent ids. */
int proto_decode(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a,
                 proto_msg *msg, zerr *err);

/* Encode a whole frame (header included) onto out. */
int proto_encode_call(proto_enc enc, zbuf *out, const zv *msgid, int async,
                      const char *name, const zv *args, zerr *err);
int proto_encode_reply(proto_enc enc, zbuf *out, const zv *msgid,
                       const zv *result, zerr *err);
/* Error reply: (msgid, 2, ".reply", (class_path, payload)); payload is a dict
 * or a tuple, as the spec's section 11 gives per class. */
int proto_encode_error(proto_enc enc, zbuf *out, const zv *msgid,
                       const char *class_path, const zv *payload, zerr *err);
/* Server -> client async call: (0, True, name, args). */
int proto_encode_async(proto_enc enc, zbuf *out, const char *name,
                       const zv *args, zerr *err);

/* True for the heartbeat (msgid == -1), which must be ignored. */
int proto_is_heartbeat(const proto_msg *msg);

/* ---- transaction extension ------------------------------------------- */

/* The extension dict as ZODB stores it: empty bytes for an empty dict (or
 * None), else the dict pickled with protocol 3 as ZODB's TransactionMetaData
 * does. Appends to out. */
int proto_extension_encode(const zv *dict, zbuf *out, zerr *err);
/* Stored extension bytes -> dict (empty dict for empty bytes). A pickle that is
 * not a plain-data dict gives ZE_CORRUPT; the caller may then send {}. */
int proto_extension_decode(const uint8_t *p, size_t len, zv_arena *a, zv **out,
                           zerr *err);

#endif
