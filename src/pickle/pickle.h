/* pickle.h: a strict, non-executing reader and writer of Python pickles.
 *
 * Used for ZEO's Z5 messages and for ZODB object records (class metadata and
 * state pickles), so that every layer reads pickles through one decoder.
 * The reader never imports or calls anything: GLOBAL/STACK_GLOBAL become
 * ZV_GLOBAL nodes, REDUCE/NEWOBJ ZV_CALL nodes, BUILD ZV_BUILD, and persistent
 * ids ZV_PERSID. It accepts protocols 0-3 (and the protocol-4 opcodes ZODB
 * writes: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL...), including the
 * memo. Any malformed input is an error, never a crash.
 */
#ifndef ZEOLITE_PICKLE_H
#define ZEOLITE_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/zerr.h"
#include "common/oidmap.h"
#include "common/zbuf.h"
#include "common/zvalue.h"

/* Hard limits that keep a hostile pickle from exhausting memory.
 * PICKLE_MAX_DEPTH bounds the height of every decoded tree (a scalar is 0,
 * a container 1 + its tallest item) and the number of open MARKs, so code
 * may recurse over a decoded value. The stack and the memo are bounded
 * below; besides, a memo key must be smaller than the number of input bytes
 * read so far (Python numbers keys 0, 1, 2...), and no length prefix may
 * exceed the bytes left, so memory stays proportional to the input. */
#define PICKLE_MAX_DEPTH 256
#define PICKLE_MAX_STACK (1 << 22) /* entries */
#define PICKLE_MAX_MEMO (1 << 22)  /* keys */
/* Records: a value reached twice (memo GET, DUP) counts each time in its
 * parent's size; a decoded tree, expanded, has at most PICKLE_MAX_EXPANSION
 * nodes per input byte (plus PICKLE_MIN_NODES), so walking or re-encoding it
 * stays proportional to the input. Pickles from ZEO's fast-mode pickler
 * share nothing and need at most one node per byte. */
#define PICKLE_MAX_EXPANSION 16
#define PICKLE_MIN_NODES 65536
/* Messages (no PICKLE_ALLOW_OBJECTS) are measured in bytes instead: the
 * value's zv_copy_cost (a value reached twice counted with all its bytes
 * each time), and the arena memory the decoding takes, are each at most the
 * caller's max_bytes, by default PICKLE_MSG_BOUND of the input length. So
 * no copy, re-encoding or repr of a message can take more than that, and a
 * 1 MB bytes memoized and reached 600 times is refused, not 600 MB. ZEO's
 * fast-mode pickler shares nothing: a message from it costs what its values
 * cost, at most about 6 bytes a byte for lists of oids. */
#define PICKLE_MSG_BOUND(len) ((uint64_t)(len) * 16 + (1u << 20))

enum {
    /* accept GLOBAL/REDUCE/BUILD/PERSID (records); off for wire messages */
    PICKLE_ALLOW_OBJECTS = 1,
    /* Python 2 strings (STRING, BINSTRING, SHORT_BINSTRING) as ZODB's
     * conflict resolution reads them: ZV_STR when ASCII, else ZE_CORRUPT
     * (its unpickler decodes them as strict ASCII). Without the flag they
     * are ZV_BYTES. */
    PICKLE_PY2_ASCII = 2,
};

/* Decode one pickle starting at p. On success *out is the top value (in arena a)
 * and *used (if non-NULL) the number of bytes consumed up to and including STOP.
 * Returns 0, or ZE_CORRUPT / ZE_TOOBIG / ZE_NOMEM with a message naming the
 * offset and opcode. On error *out is untouched; whatever was allocated
 * stays in the arena until it is reset. None, True, False and the empty
 * tuple are one shared value each (nothing can change them), so a frame of
 * them costs a pointer each in the arena.
 *
 * Values: BINSTRING/SHORT_BINSTRING/STRING (Python 2 str) give ZV_BYTES
 * (but see PICKLE_PY2_ASCII);
 * every STR is valid UTF-8 (encoded surrogates allowed, as Python's
 * "surrogatepass"); STR and BYTES payloads are also NUL-terminated. Ints
 * that fit int64 are ZV_INT, others ZV_BIGINT in minimal form. Dict pairs
 * keep their pickle order, repeated keys included.
 *
 * Only with PICKLE_ALLOW_OBJECTS (otherwise they are ZE_CORRUPT, but see
 * builtins.dict below):
 * GLOBAL/STACK_GLOBAL -> ZV_GLOBAL; EXTn -> ZV_GLOBAL "__extension__.<code>";
 * REDUCE -> ZV_CALL newobj 0; NEWOBJ -> newobj 1; NEWOBJ_EX -> newobj 2 with
 * args the pair (args, kwargs); INST/OBJ -> ZV_CALL newobj 0 with the args
 * tuple; BUILD -> ZV_BUILD; PERSID/BINPERSID -> ZV_PERSID (PERSID's text id is
 * a ZV_STR). Items that APPEND(S)/SETITEM(S)/ADDITEMS add to such an object
 * (list or dict subclasses, OrderedDict) give ZV_BUILD(obj, list|dict|set of
 * the items); a memo reference to obj taken before still sees obj alone, as
 * it does for BUILD.
 *
 * Without PICKLE_ALLOW_OBJECTS (wire messages) one object form is accepted,
 * because real clients send it: a dict subclass whose __reduce__ returns
 * (dict, (tuple(items),)), as the extension of ZODB's
 * testTransactionExtensionFromIterator, reaches a Python 3 ZEO client's
 * tpc_begin as GLOBAL 'builtins dict', an args tuple and REDUCE (the Python
 * server's unpickler allows builtins and sees a plain dict). So GLOBAL may
 * name exactly builtins.dict (or __builtin__.dict), and REDUCE may apply it
 * to no argument (-> {}) or to one that is a dict (-> a copy) or a tuple or
 * list of 2-item tuples or lists (-> a ZV_DICT of those pairs, in order).
 * This is a structural rewrite: nothing is looked up or called, and no
 * ZV_GLOBAL or ZV_CALL ever appears in a message. The global may be memoized,
 * duplicated or popped, but any other use is ZE_CORRUPT: another global (STACK_GLOBAL
 * included), another callable or argument shape, NEWOBJ/BUILD/INST/OBJ, the
 * global as (part of) a value, or left on the stack at STOP.
 *
 * Recursive structures (a container holding itself) are ZE_CORRUPT: a
 * container may not change once a memo GET or DUP has reached it. */
int pickle_decode(const uint8_t *p, size_t len, int flags, zv_arena *a,
                  zv **out, size_t *used, zerr *err);
/* As pickle_decode with a bound in bytes: the arena memory this decoding
 * may take and, for messages, the value's zv_copy_cost (0: no bound for
 * records, PICKLE_MSG_BOUND(len) for messages). Over it: ZE_TOOBIG. */
int pickle_decode_max(const uint8_t *p, size_t len, int flags, uint64_t max_bytes,
                      zv_arena *a, zv **out, size_t *used, zerr *err);

/* Encode v as a protocol-3 pickle, as ZEO's fast-mode pickler writes it (no
 * memo, PROTO 3 ... STOP), appending to *out. Only data types (NONE..FROZENSET
 * except SET/FROZENSET) can be encoded; others give ZE_INVAL.
 *
 * Opcodes, as zodbpickle's pure-Python Pickler chooses them: ints BININT1,
 * BININT2, BININT, then LONG1/LONG4 (minimal two's complement); floats
 * BINFLOAT; str always BINUNICODE; bytes SHORT_BINBYTES below 256, else
 * BINBYTES; tuples EMPTY_TUPLE, TUPLE1-3, or MARK ... TUPLE; lists and dicts
 * EMPTY_LIST/EMPTY_DICT then batches of at most 1000 items, a batch of one
 * as APPEND/SETITEM, longer ones MARK ... APPENDS/SETITEMS. So a decoded
 * Z5 message re-encodes to its original bytes.
 * Returns 0, ZE_INVAL, ZE_TOOBIG (nested deeper than PICKLE_MAX_DEPTH, or a
 * string over 4 GiB) or ZE_NOMEM; on error *out is as it was. */
int pickle_encode(const zv *v, zbuf *out, zerr *err);
/* The number of bytes pickle_encode would append for v, found without
 * building them (so a caller can refuse or make room first); the same
 * errors but ZE_NOMEM. */
int pickle_encoded_size(const zv *v, size_t *size, zerr *err);

/* The memo of one pickler, kept across the values it dumps: ZODB writes a
 * record's class and state through one pickler, so the state may refer to
 * memo entries of the class. Zero it (PICKLE_MEMO_INIT) before the first
 * dump; free it after the last. */
typedef struct pickle_memo {
    oidmap ids;    /* object identity -> memo key */
    uint64_t next; /* the next memo key */
} pickle_memo;

#define PICKLE_MEMO_INIT {OIDMAP_INIT, 0}

/* Encode v as one protocol-3 pickle the way CPython's C pickler (and
 * zodbpickle's, which ZODB uses) writes it with its memo on, appending to
 * *out: PROTO 3 ... STOP, no FRAME. Every str, bytes, non-empty tuple, list
 * and global is put in the memo (BINPUT, LONG_BINPUT from key 256) and
 * written again as BINGET/LONG_BINGET; None, bools, ints and floats never
 * are. Lists are EMPTY_LIST, then one item and APPEND, or MARK ...
 * APPENDS batches of at most 1000. A ZV_PERSID is its id (memo applies)
 * then BINPERSID; a ZV_GLOBAL is GLOBAL "module\nname\n". Other opcodes
 * are pickle_encode's.
 *
 * Identity: a node is one Python object, so a node reached twice (as memo
 * GETs decode) is written once and fetched after; give two nodes one node
 * where Python would have one object (a class, a persistent reference).
 * Nodes that are an empty or one-character str (below U+0100), empty
 * bytes or one-byte bytes are one object per value, as the unpickler of a
 * Python server hands them out.
 *
 * Returns 0, ZE_INVAL (a dict, set, call or build value, a name with a
 * newline), ZE_TOOBIG or ZE_NOMEM. On error *out is as it was, and the
 * memo must not be used for another dump. */
int pickle_encode_memo(const zv *v, pickle_memo *m, zbuf *out, zerr *err);
void pickle_memo_free(pickle_memo *m);

#endif
