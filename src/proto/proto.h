/* proto.h: the ZEO 5 wire codec, shared by server and client.
 *
 * Bytes in, values out, and back; no sockets, no storage. Three layers:
 *  - framing: 4-byte big-endian length + payload, with a maximum size;
 *  - handshake: the protocol announcement "Z5"/"M5" and the reply, "ruok";
 *  - messages: the 4-tuple (msgid, flag, name, args) in pickle (Z5) or
 *    msgpack (M5), decoded into zv values and encoded from them;
 *  - the protocol's facts above the codec, which server and client share:
 *    the exceptions of error replies in the exact shape the Python client
 *    rebuilds, the conflict dicts of a vote, and the argument checks of
 *    each call (which forms an argument may take, and the TypeError
 *    message when it takes none of them).
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
/* What a decoded message may take: PROTO_DECODE_FACTOR bytes for each byte
 * of its payload, plus PROTO_DECODE_SLACK. Both the arena memory its
 * decoding allocates and the value expanded as zv_copy would copy it (a
 * pickle's memoized value counted with all its bytes each time it is
 * reached) stay within it, so no copy, re-encoding or repr of a message can
 * take more either. Legitimate messages are far below: a record's bytes
 * cost about 1 byte a byte, a list of oids 6; only a message made mostly of
 * tiny values (nils, small ints, empty containers) reaches the bound, and is
 * refused with ZE_TOOBIG. The slack leaves 64 KiB of a megabyte for what a
 * server keeps of a message (a msgid, a transaction id). */
#define PROTO_DECODE_FACTOR 8
#define PROTO_DECODE_SLACK (960u * 1024)
#define PROTO_DECODE_BOUND(len) ((uint64_t)(len) * PROTO_DECODE_FACTOR + PROTO_DECODE_SLACK)
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
 * bytes fed however they are split; a drained buffer over 128 KiB is freed. */
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
/* The next frame's announced length, before the frame is in: 1 with *len
 * set once its 4-byte header is, 0 before, ZE_TOOBIG over max_frame. Takes
 * nothing. */
int proto_framer_peek(const proto_framer *f, uint32_t *len);
/* Make room at once for all of the frame whose header is in (and one read
 * more), so that a large frame's buffer grows once to its size instead of
 * doubling towards twice it. A caller that admits a frame calls it. 0 (also
 * when no header is in yet) or ZE_NOMEM. */
int proto_framer_expect(proto_framer *f);
/* Give back the frame of len bytes proto_framer_next just returned, with
 * nothing fed since: the next call returns it again (a server that must let
 * the frame wait). */
void proto_framer_unget(proto_framer *f, uint32_t len);

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

/* 1 when the bytes a peer sent first begin with a framed ZEO announcement
 * ("Z5", "M5", or an older "Z4"/"Z3101"): a plain ZEO server, where a TLS
 * client expected a handshake. */
int proto_is_announcement(const uint8_t *p, size_t len);

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
 * reset or freed; nothing points into p. The decoding takes at most
 * PROTO_DECODE_BOUND(len) bytes of a.
 * The payload must be exactly one 4-tuple (trailing bytes are refused). name
 * must be a str; for anything but ".reply", args must be a tuple; msgid may
 * be any value. flag: bools and ints by value, anything else 0/1 by
 * truthiness; async is 1 when the flag is truthy. In M5 every array decodes
 * as a TUPLE and map keys must be str or bytes; ext types are refused.
 * A pickle message may contain no GLOBAL/REDUCE/BUILD/persistent ids.
 * Size: see PROTO_DECODE_BOUND; a message over it is ZE_TOOBIG, so echoing
 * or re-encoding a message is linear in its size.
 * Returns 0; ZE_CORRUPT when the bytes do not decode (bad pickle/msgpack),
 * ZE_PROTO when they decode to the wrong shape, ZE_TOOBIG, ZE_NOMEM; err
 * says why. */
int proto_decode(proto_enc enc, const uint8_t *p, size_t len, zv_arena *a,
                 proto_msg *msg, zerr *err);

/* Encode a whole frame (header included) onto out. The flag is written as
 * the reference peers write it: calls NEWFALSE/NEWTRUE (msgpack false/true),
 * replies the int 0, errors the int 2. proto_encode_call needs args to be a
 * TUPLE. Values must be plain data (PICKLE: as pickle_encode; MSGPACK: no
 * sets, ints within the 64-bit range), and every str valid UTF-8: the
 * Python peer drops the connection on a str it cannot decode. Returns 0, or ZE_INVAL / ZE_TOOBIG /
 * ZE_NOMEM with out left unchanged. A reply whose result cannot be encoded
 * is answered, per spec 6.6, with proto_exc_msg(PROTO_EXC_VALUE,
 * "Couldn't pickle response"). The size of a message is found before it is
 * built: one over 4 GiB is refused without allocating, and a large one is
 * given exactly its room in out. */
int proto_encode_call(proto_enc enc, zbuf *out, const zv *msgid, int async,
                      const char *name, const zv *args, zerr *err);
int proto_encode_reply(proto_enc enc, zbuf *out, const zv *msgid,
                       const zv *result, zerr *err);
/* The bytes proto_encode_reply would append (the frame, header included),
 * found without building them: what a server weighs against its output
 * budget before it answers. Its errors are the encoder's, but ZE_NOMEM. */
int proto_reply_size(proto_enc enc, const zv *msgid, const zv *result, size_t *size,
                     zerr *err);
/* Server -> client async call: (0, True, name, args). */
int proto_encode_async(proto_enc enc, zbuf *out, const char *name,
                       const zv *args, zerr *err);

/* Client -> server keep-alive: (-1, 0, ".reply", None). */
int proto_encode_heartbeat(proto_enc enc, zbuf *out, zerr *err);

/* True for the heartbeat (msgid == -1), which must be ignored. */
int proto_is_heartbeat(const proto_msg *msg);

/* ---- loadBefore without value trees ----------------------------------- */

/* A loadBefore(oid, tid) call as proto_decode_load_call reads it. msgid is
 * the call's msgid as a value (an int, or the (oid, tid) 2-tuple of bytes
 * ZEO 5's Python client uses) made of this struct's own fields, its bytes
 * pointing into the payload read: valid while both are, and the struct
 * must not be copied. */
typedef struct proto_load_call {
    zv msgid;
    zv msgid_parts[2];
    zv *msgid_items[2];
    uint64_t oid;
    uint64_t before;
} proto_load_call;

/* 1 when the payload is a loadBefore call in exactly the bytes the
 * reference clients write (a sync call with two 8-byte arguments; msgid an
 * int other than -1, written in its shortest form, or the pair), *out
 * filled; proto_decode would give the same msgid, name and arguments.
 * 0 for any other payload, which proto_decode then reads (an answer of 0
 * says nothing about its validity). Allocates nothing. */
int proto_decode_load_call(proto_enc enc, const uint8_t *p, size_t len, proto_load_call *out);

/* The whole reply frame to loadBefore, byte for byte what
 * proto_encode_reply(enc, out, msgid, (data, start, end)) writes, with end
 * None when 0, onto out without building the tuple. Same returns. */
int proto_encode_load_reply(proto_enc enc, zbuf *out, const zv *msgid, const uint8_t *data,
                            size_t len, uint64_t start, uint64_t end, zerr *err);

/* ---- storea without value trees --------------------------------------- */

/* storea(oid, serial, data, txn) read in place, for the server's hot path:
 * 1 with *out filled (data points into p) when p is such a call in the
 * shape ZEO's clients send (msgid and txn ints, oid 8 bytes, serial 8 bytes
 * or None, data bytes, nothing else around them); 0 for anything else,
 * which proto_decode then decodes or refuses. No allocation. */
typedef struct proto_storea_call {
    int64_t msgid;
    int async;
    uint64_t oid;
    uint64_t serial;   /* None: 0 */
    zslice data;
    int64_t txn;       /* the transaction's id, as the client sent it */
} proto_storea_call;
int proto_decode_storea_call(proto_enc enc, const uint8_t *p, size_t len, proto_storea_call *out);

/* ---- exceptions (spec section 11) ------------------------------------- */

/* The class paths of the exceptions zeolite sends or recognises. The Python
 * client matches them exactly (spec 11.2); no other module spells one. */
#define PROTO_EXC_CONFLICT        "ZODB.POSException.ConflictError"
#define PROTO_EXC_READ_CONFLICT   "ZODB.POSException.ReadConflictError"
#define PROTO_EXC_BTREES_CONFLICT "ZODB.POSException.BTreesConflictError"
#define PROTO_EXC_POSKEY          "ZODB.POSException.POSKeyError"
#define PROTO_EXC_READONLY        "ZODB.POSException.ReadOnlyError"
#define PROTO_EXC_TXN             "ZODB.POSException.StorageTransactionError"
#define PROTO_EXC_UNDO            "ZODB.POSException.UndoError"
#define PROTO_EXC_MULTIPLE_UNDO   "ZODB.POSException.MultipleUndoErrors"
#define PROTO_EXC_STORAGE         "ZODB.POSException.StorageError"
#define PROTO_EXC_VALUE           "builtins.ValueError"
#define PROTO_EXC_TYPE            "builtins.TypeError"
#define PROTO_EXC_KEY             "builtins.KeyError"
#define PROTO_EXC_ATTRIBUTE       "builtins.AttributeError"
#define PROTO_EXC_ASSERTION       "builtins.AssertionError"
#define PROTO_EXC_EXCEPTION       "builtins.Exception"

/* An exception as an error reply carries it: the class path (a PROTO_EXC_*
 * name) and the payload, the exception's attribute dict for the classes the
 * client rebuilds from one, else its args tuple. The builders below fill one
 * with a payload allocated in arena a (what they are given is copied there:
 * e lives as long as a) and return 0, or ZE_NOMEM with e unchanged. */
typedef struct proto_exc {
    const char *class_path;
    zv *payload;
} proto_exc;

/* The class a zeolite error code is reported as: ZE_NOTFOUND POSKeyError,
 * ZE_CONFLICT ConflictError, ZE_READCONFLICT ReadConflictError, ZE_UNDO
 * UndoError, ZE_READONLY ReadOnlyError, ZE_TXN StorageTransactionError,
 * ZE_TYPE TypeError, ZE_INVAL and ZE_TOOBIG ValueError, any other
 * StorageError. */
const char *proto_exc_class(int code);
/* The code a client reports a class path as: the reverse of
 * proto_exc_class, plus BTreesConflictError ZE_CONFLICT and
 * MultipleUndoErrors ZE_UNDO; ZE_INVAL for a class not named there. */
int proto_exc_code(const char *class_path);

/* class_path(message): ValueError("unknown storage: x"),
 * StorageTransactionError("Already voting (locked)")... */
int proto_exc_msg(proto_exc *e, zv_arena *a, const char *class_path, const char *message);
/* The exception err is reported as: proto_exc_class(err->code) with args
 * (err->msg,), but ReadOnlyError() without args as ZODB raises it, and an
 * UndoError as proto_exc_undo(err->msg, none). */
int proto_exc_from_err(proto_exc *e, zv_arena *a, const zerr *err);
/* POSKeyError(oid). */
int proto_exc_poskey(proto_exc *e, zv_arena *a, uint64_t oid);
/* POSKeyError("No blob file at <path>", oid, serial): sendBlob of a
 * revision whose blob file is missing, as ZEO words it. */
int proto_exc_no_blob(proto_exc *e, zv_arena *a, const char *path, uint64_t oid,
                      uint64_t serial);
/* KeyError(key): an iterator id the server does not know. */
int proto_exc_key(proto_exc *e, zv_arena *a, const zv *key);
/* StorageTransactionError(current, txn): current is the open transaction's
 * id, or NULL for None; txn the id the client sent (not NULL).
 * These two echo values a client sent, which can be as large as its
 * message: they are referenced, not copied, and must outlive e. */
int proto_exc_txn_mismatch(proto_exc *e, zv_arena *a, const zv *current, const zv *txn);

/* A conflict on one object: a write conflict the client resolves (an item
 * of the vote's list, spec section 10), or a ConflictError /
 * ReadConflictError that fails the vote. */
typedef struct proto_conflict {
    int read;               /* ReadConflictError instead of ConflictError */
    int no_oid;             /* oid and serials are None (an object not known) */
    const char *message;    /* NULL: "database [read ]conflict error" */
    uint64_t oid;
    uint64_t current;       /* serials[0]: the tid committed now */
    uint64_t sent;          /* serials[1]: the serial the client sent */
    const char *class_name; /* "module.Class" of the record, or NULL for None */
    zslice data;            /* the record the client stored (vote items only) */
} proto_conflict;

/* ConflictError or ReadConflictError with the attribute dict
 * {'message', 'oid', 'class_name', 'serials'}, keys in the reference
 * server's order. */
int proto_exc_conflict(proto_exc *e, zv_arena *a, const proto_conflict *c);
/* The vote reply's item for a conflict the client resolves:
 * {'oid', 'serials': (current, sent), 'data'}, in the reference server's
 * order. *out is NULL and ZE_NOMEM returned when out of memory. */
int proto_conflict_item(zv **out, zv_arena *a, const proto_conflict *c);
/* Read a vote item or a ConflictError payload back: 1 with *c filled when d
 * is a dict with an 8-byte 'oid'; serials and data are 0/empty when absent,
 * c->data points into d, and the other fields are 0/NULL. */
int proto_conflict_parse(const zv *d, proto_conflict *c);

/* One object an undo cannot revert, and FileStorage's reason. */
typedef struct proto_undo_error {
    uint64_t oid;
    const char *reason;
} proto_undo_error;

/* A failed undo. With n > 0, MultipleUndoErrors as FileStorage raises it,
 * {'_errs': [(oid, reason), ...]} (the reference sends UndoError instances
 * as the reasons, which no C server can pickle and no msgpack carries; the
 * client keeps what it gets). With n == 0 (no transaction to undo, a
 * non-undoable one), UndoError with its attributes {'_reason': message,
 * '_oid': None}, as the reference sends it. */
int proto_exc_undo(proto_exc *e, zv_arena *a, const char *message, const proto_undo_error *errs,
                   size_t n);

/* Error reply: (msgid, 2, ".reply", (e->class_path, e->payload)). */
int proto_encode_error(proto_enc enc, zbuf *out, const zv *msgid, const proto_exc *e,
                       zerr *err);

/* ---- typed arguments -------------------------------------------------- */

/* Checks for the args TUPLE of a decoded call, by server and client alike;
 * i is 0-based. Each returns 0 and stores the value (slices and values point
 * into the message's arena), or ZE_TYPE with a message such as
 * "argument 2 must be 8 bytes (an oid), not str of length 3". A server
 * answers a sync call with proto_exc_from_err (a TypeError of that message)
 * and closes the connection after an async one (spec 6.3). */

/* The i-th argument, or NULL when there is none. */
const zv *proto_arg(const zv *args, size_t i);
/* min <= number of arguments <= max; ZE_TYPE "takes 1 to 2 arguments, got
 * 3" otherwise (or when args is not a tuple). */
int proto_args_count(const zv *args, size_t min, size_t max, zerr *err);
/* bytes of exactly 8, as a big-endian integer. */
int proto_arg_oid(const zv *args, size_t i, uint64_t *out, zerr *err);
int proto_arg_tid(const zv *args, size_t i, uint64_t *out, zerr *err);
/* The serial of storea, restorea, deleteObject and
 * checkCurrentSerialInTransaction: 8 bytes, or the forms ZEO's server also
 * takes because ZODB's own tests send them for new objects: None (z64), and
 * a str of 8 characters below U+0080 (its bytes, e.g. '\0' * 8). */
int proto_arg_serial(const zv *args, size_t i, uint64_t *out, zerr *err);
/* The (oid, serial, ...) that open storea, restorea, deleteObject,
 * checkCurrentSerialInTransaction, storeBlobEnd, storeBlobShared,
 * loadSerial and sendBlob: proto_arg_oid and proto_arg_serial of arguments
 * 1 and 2. */
int proto_args_oid_serial(const zv *args, uint64_t *oid, uint64_t *serial, zerr *err);
/* The (oid, serial, data, ...) of storea, storeBlobEnd and storeBlobShared:
 * proto_args_oid_serial and the record's bytes. */
int proto_args_store(const zv *args, uint64_t *oid, uint64_t *serial, zslice *data, zerr *err);
/* bytes of any length. */
int proto_arg_bytes(const zv *args, size_t i, zslice *out, zerr *err);
/* tpc_begin's user and description: bytes, or a str taken as its UTF-8
 * bytes, as ZODB's TransactionMetaData encodes one. */
int proto_arg_text(const zv *args, size_t i, zslice *out, zerr *err);
/* Optional arguments: None, or no argument at all (Python's default for a
 * trailing argument; proto_args_count bounds how many there are), sets
 * *present = 0; else the value must be as below and *present = 1. */
/* None or bytes of exactly 8. */
int proto_arg_optional_tid(const zv *args, size_t i, uint64_t *out, int *present, zerr *err);
/* None or bytes (restorea's data). */
int proto_arg_optional_bytes(const zv *args, size_t i, zslice *out, int *present, zerr *err);
/* None or an int (new_oids' n, history's size, undoLog's first and last):
 * when absent, *out keeps the caller's default. */
int proto_arg_optional_int(const zv *args, size_t i, int64_t *out, zerr *err);
/* str (UTF-8, not NUL-terminated in the slice's view). */
int proto_arg_str(const zv *args, size_t i, zslice *out, zerr *err);
/* int or bool, within int64. */
int proto_arg_int(const zv *args, size_t i, int64_t *out, zerr *err);
/* float, or an int/bool converted (pack's time). */
int proto_arg_float(const zv *args, size_t i, double *out, zerr *err);
/* dict (undoInfo's spec when not None). */
int proto_arg_dict(const zv *args, size_t i, const zv **out, zerr *err);
/* tuple or list (iterator_gc's ids, invalidateTransaction's oids: a list
 * in pickle, an array, decoded as a tuple, in msgpack). */
int proto_arg_seq(const zv *args, size_t i, const zv **out, zerr *err);

/* ---- transaction extension ------------------------------------------- */

/* The extension dict as ZODB stores it: empty bytes for an empty dict (or
 * None), else the dict pickled with protocol 3 as ZODB's TransactionMetaData
 * does (CPython's memoizing pickler: BINPUT after every str/bytes/container,
 * byte for byte what ZODB writes for a dict that arrived over the wire).
 * Appends to out; 0, or ZE_INVAL (not a dict, or holds a non-data value) /
 * ZE_TOOBIG (over PROTO_EXTENSION_MAX bytes: the writing stops there) /
 * ZE_NOMEM with out unchanged. */
#define PROTO_EXTENSION_MAX 65535 /* FileStorage's 2-byte length */
int proto_extension_encode(const zv *dict, zbuf *out, zerr *err);
/* Stored extension bytes -> dict (empty dict for empty bytes). A pickle that is
 * not a plain-data dict gives ZE_CORRUPT; the caller may then send {}. */
int proto_extension_decode(const uint8_t *p, size_t len, zv_arena *a, zv **out,
                           zerr *err);

#endif
