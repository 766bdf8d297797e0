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
#include "common/zbuf.h"
#include "common/zvalue.h"

/* Hard limits that keep a hostile pickle from exhausting memory. */
#define PICKLE_MAX_DEPTH 256

enum {
    PICKLE_ALLOW_OBJECTS = 1, /* accept GLOBAL/REDUCE/BUILD/PERSID (records); off for wire messages */
};

/* Decode one pickle starting at p. On success *out is the top value (in arena a)
 * and *used (if non-NULL) the number of bytes consumed up to and including STOP.
 * Returns 0, or ZE_CORRUPT / ZE_TOOBIG / ZE_NOMEM with a message naming the
 * offset and opcode. */
int pickle_decode(const uint8_t *p, size_t len, int flags, zv_arena *a,
                  zv **out, size_t *used, zerr *err);

/* Encode v as a protocol-3 pickle, as ZEO's fast-mode pickler writes it (no
 * memo, PROTO 3 ... STOP), appending to *out. Only data types (NONE..FROZENSET
 * except SET/FROZENSET) can be encoded; others give ZE_INVAL. */
int pickle_encode(const zv *v, zbuf *out, zerr *err);

#endif
