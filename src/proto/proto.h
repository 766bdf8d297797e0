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
/* Deepest nesting of containers decoded or encoded (legitimate messages
 * nest a handful of levels). */
#define PROTO_MAX_DEPTH 256

/* ---- framing ---------------------------------------------------------- */

/* Incremental frame splitter: feed bytes as they arrive, take whole frames. */
typedef struct proto_framer {
    zbuf in;            /* buffered input not yet returned as frames */
    size_t pos;         /* start of the unconsumed part of in */
    uint32_t max_frame; /* a larger announced length is ZE_TOOBIG */
} proto_framer;

/* max_frame 0 means PROTO_DEFAULT_MAX_FRAME. Buffering is linear in the
 * bytes fed however they are split; a drained buffer over 1 MiB is freed. */
void proto_framer_init(proto_framer *f, uint32_t max_frame);
void proto_framer_free(proto_framer *f);
/* Append received bytes. ZE_NOMEM on failure. */
int proto_framer_feed(proto_framer *f, const void *p, size_t n);
/* Next whole frame: 1 with *payload and *len set (payload points into the
 * framer's buffer: valid until the next proto_framer_feed or _free),
 * 0 when more bytes are needed, ZE_TOOBIG when the header announces more than
 * max_frame (the caller closes the connection). */
int proto_framer_next(proto_framer *f, const uint8_t **payload, uint32_t *len);
/* Bytes buffered (a partial frame), for per-connection input bounds. */
size_t proto_framer_pending(const proto_framer *f);

/* Append the 4-byte header and payload to out. */
int proto_frame_append(zbuf *out, const void *payload, size_t len);

/* ---- handshake -------------------------------------------------------- */

/* The announcement frame payload: "Z5" or "M5" (NULL for another enc). */
const char *proto_announcement(proto_enc enc);

typedef enum proto_hello {
    PROTO_HELLO_Z5,
    PROTO_HELLO_M5,
    PROTO_HELLO_RUOK,
    PROTO_HELLO_BAD,
} proto_hello;

/* Classify the client's first frame (server side): exactly "Z5", "M5" or
 * "ruok"; anything else ("X5", "Z4", "Z6", "Z3101", "Z55", "") is BAD. The
 * encoding follows the client's letter, whatever the server announced. */
proto_hello proto_parse_hello(const uint8_t *p, size_t len);

/* ---- messages --------------------------------------------------------- */

typedef struct proto_msg {
    zv *msgid;      /* int, or the (oid, tid) tuple of loadBefore, or anything: echo it */
    int async;      /* 1 when the flag is truthy: an async call (requests), an error (replies) */
    int64_t flag;   /* the flag as an int: False/True 0/1, replies 0, errors 2 */
    const char *name;  /* method name, ".reply" for replies; NUL-terminated, in the arena */
    zv *args;       /* requests: TUPLE of arguments; replies: the result value */
} proto_msg;

/* Decode one frame payload (after the handshake) into *msg, in arena a.
 * Everything in *msg (name included) lives in a and is valid until a is
 * reset or freed; nothing points into p.
 * The payload must be exactly one 4-tuple (trailing bytes are refused). name
 * must be a str; for anything but ".reply", args must be a tuple; msgid may
 * be any value. flag: bools and ints by value, anything else 0/1 by
 * truthiness; async is 1 when the flag is truthy. In M5 every array decodes
 * as a TUPLE and map keys must be str or bytes; ext types are refused.
 * A pickle message may contain no GLOBAL/REDUCE/BUILD/persistent ids.
 * Size: an M5 value takes at least one payload byte; a pickle's tree, with
 * values reused through the memo counted each time, is bounded by
 * PICKLE_MAX_EXPANSION nodes per byte (ZE_TOOBIG beyond), so echoing or
 * re-encoding a message is linear in its size. A frame of tiny values
 * (nils, small ints) costs up to about 48 bytes of arena per node; choose
 * max_frame with that in mind.
 * Returns 0; ZE_CORRUPT when the bytes do not decode (bad pickle/msgpack),
 * ZE_PROTO when they decode to the wrong shape, ZE_NOMEM; err says why. */
int proto_decode(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a,
                 proto_msg *msg, zerr *err);

/* Encode a whole frame (header included) onto out. The flag is written as
 * the reference peers write it: calls NEWFALSE/NEWTRUE (msgpack false/true),
 * replies the int 0, errors the int 2. proto_encode_call needs args to be a
 * TUPLE. Values must be plain data (PICKLE: as pickle_encode; MSGPACK: no
 * sets, ints within the 64-bit range), and every str valid UTF-8: the
 * Python peer drops the connection on a str it cannot decode. Returns 0, or ZE_INVAL / ZE_TOOBIG /
 * ZE_NOMEM with out left unchanged. A reply whose result cannot be encoded
 * is answered, per spec 6.6, with proto_encode_error_msg(PROTO_EXC_VALUE,
 * "Couldn't pickle response"). */
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

/* Client -> server keep-alive: (-1, 0, ".reply", None). */
int proto_encode_heartbeat(proto_enc enc, zbuf *out, zerr *err);

/* True for the heartbeat (msgid == -1), which must be ignored. */
int proto_is_heartbeat(const proto_msg *msg);

/* ---- standard error replies (spec 11.2) ------------------------------- */

/* The client matches these class paths exactly. */
#define PROTO_EXC_CONFLICT      "ZODB.POSException.ConflictError"
#define PROTO_EXC_READ_CONFLICT "ZODB.POSException.ReadConflictError"
#define PROTO_EXC_POSKEY        "ZODB.POSException.POSKeyError"
#define PROTO_EXC_READONLY      "ZODB.POSException.ReadOnlyError"
#define PROTO_EXC_TXN           "ZODB.POSException.StorageTransactionError"
#define PROTO_EXC_UNDO          "ZODB.POSException.UndoError"
#define PROTO_EXC_STORAGE       "ZODB.POSException.StorageError"
#define PROTO_EXC_VALUE         "builtins.ValueError"
#define PROTO_EXC_TYPE          "builtins.TypeError"
#define PROTO_EXC_KEY           "builtins.KeyError"
#define PROTO_EXC_ATTRIBUTE     "builtins.AttributeError"
#define PROTO_EXC_ASSERTION     "builtins.AssertionError"
#define PROTO_EXC_EXCEPTION     "builtins.Exception"

/* A write conflict (vote) or, with read set, a failed
 * checkCurrentSerialInTransaction. */
typedef struct proto_conflict {
    int read;               /* ReadConflictError instead of ConflictError */
    const char *message;    /* NULL: "database [read ]conflict error" */
    uint64_t oid;
    uint64_t current;       /* serials[0]: the tid committed now */
    uint64_t sent;          /* serials[1]: the serial the client sent */
    const char *class_name; /* "module.Class" of the record, or NULL for None */
} proto_conflict;

/* (msgid, 2, ".reply", (class, {'message', 'oid', 'class_name', 'serials'})),
 * keys in the reference server's order. */
int proto_encode_conflict(proto_enc enc, zbuf *out, const zv *msgid, const proto_conflict *c,
                          zerr *err);
/* POSKeyError with args (oid,). */
int proto_encode_poskey(proto_enc enc, zbuf *out, const zv *msgid, uint64_t oid, zerr *err);
/* ReadOnlyError with args (). */
int proto_encode_readonly(proto_enc enc, zbuf *out, const zv *msgid, zerr *err);
/* Any class with args (message,): builtins.ValueError("unknown storage: x"),
 * StorageTransactionError("Already voting (locked)"), TypeError for bad
 * arguments... */
int proto_encode_error_msg(proto_enc enc, zbuf *out, const zv *msgid, const char *class_path,
                           const char *message, zerr *err);
/* StorageTransactionError(current, txn): current is the open transaction's
 * id, or NULL for None; txn the id the client sent. */
int proto_encode_txn_mismatch(proto_enc enc, zbuf *out, const zv *msgid, const zv *current,
                              const zv *txn, zerr *err);
/* Other shapes (POSKeyError of a missing blob: (message, oid, serial);
 * KeyError(iid); UndoError...) go through proto_encode_error. */

/* ---- typed arguments -------------------------------------------------- */

/* Checks for the args TUPLE of a decoded call; i is 0-based. Each returns 0
 * and stores the value (slices point into the message's arena), or ZE_INVAL
 * with a message such as "argument 2: expected an oid (8 bytes), got str";
 * a server answers a sync call with proto_encode_error_msg(PROTO_EXC_TYPE,
 * that message) and closes the connection after an async one (spec 6.3). */

/* The i-th argument, or NULL when there is none. */
const zv *proto_arg(const zv *args, size_t i);
/* min <= number of arguments <= max. */
int proto_args_count(const zv *args, size_t min, size_t max, zerr *err);
/* bytes of exactly 8, as a big-endian integer. */
int proto_arg_oid(const zv *args, size_t i, uint64_t *out, zerr *err);
int proto_arg_tid(const zv *args, size_t i, uint64_t *out, zerr *err);
/* None (*present = 0) or bytes of exactly 8 (*present = 1). */
int proto_arg_optional_tid(const zv *args, size_t i, uint64_t *out, int *present, zerr *err);
/* bytes of any length. */
int proto_arg_bytes(const zv *args, size_t i, zslice *out, zerr *err);
/* None (*present = 0) or bytes (restorea's data). */
int proto_arg_optional_bytes(const zv *args, size_t i, zslice *out, int *present, zerr *err);
/* str (UTF-8, not NUL-terminated in the slice's view). */
int proto_arg_str(const zv *args, size_t i, zslice *out, zerr *err);
/* int or bool, within int64. */
int proto_arg_int(const zv *args, size_t i, int64_t *out, zerr *err);
/* float, or an int/bool converted (pack's time). */
int proto_arg_float(const zv *args, size_t i, double *out, zerr *err);
/* dict (the extension; undoInfo's spec when not None). */
int proto_arg_dict(const zv *args, size_t i, const zv **out, zerr *err);

/* ---- transaction extension ------------------------------------------- */

/* The extension dict as ZODB stores it: empty bytes for an empty dict (or
 * None), else the dict pickled with protocol 3 as ZODB's TransactionMetaData
 * does (CPython's memoizing pickler: BINPUT after every str/bytes/container,
 * byte for byte what ZODB writes for a dict that arrived over the wire).
 * Appends to out; 0, or ZE_INVAL (not a dict, or holds a non-data value) /
 * ZE_NOMEM with out unchanged. */
int proto_extension_encode(const zv *dict, zbuf *out, zerr *err);
/* Stored extension bytes -> dict (empty dict for empty bytes). A pickle that is
 * not a plain-data dict gives ZE_CORRUPT; the caller may then send {}. */
int proto_extension_decode(const uint8_t *p, size_t len, zv_arena *a, zv **out,
                           zerr *err);

#endif
