/* pickle_int.h: the decoder machine shared by pickle_decode (pickle.c) and
 * the record scanner (record.c), plus the text helpers of protocol 0.
 * Not for use outside src/pickle/.
 */
#ifndef ZEOLITE_PICKLE_INT_H
#define ZEOLITE_PICKLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/zerr.h"
#include "common/zvalue.h"

/* Called at every PERSID/BINPERSID with the persistent id, in stream order
 * (what ZODB's referencesf sees). A nonzero return stops decoding and is
 * returned by pickle__vm_run. */
typedef int (*pickle_persid_fn)(const zv *pid, void *ud);

/* One unpickler. Its memo survives pickle__vm_run calls, so that a record's
 * state pickle can refer to memo entries of its class pickle (spec
 * filestorage-format.md section 11); the stack and marks do not. Everything
 * it allocates lives in the arena. */
typedef struct pickle_vm {
    zv_arena *arena;
    int flags;
    zerr *err;
    pickle_persid_fn on_persid;
    void *persid_ud;

    const uint8_t *p; /* input of the current run */
    size_t len;
    size_t pos;
    size_t base;      /* offset of p in the caller's buffer, for messages */
    size_t op_pos;    /* offset of the opcode being run */
    uint8_t op;

    zv **stack;
    size_t sp, stack_cap;
    size_t *marks;    /* stack heights at each MARK */
    size_t nmarks, marks_cap;
    zv **memo;        /* dense by key; NULL = unset */
    size_t memo_cap, memo_count;
    uint64_t max_bytes; /* messages: the caller's bound (0: PICKLE_MSG_BOUND) */
    uint64_t max_size;  /* tree size limit of the current run (see decode.c) */
    zv *none, *yes, *no, *empty_tuple; /* immutable values, one of each */
} pickle_vm;

void pickle__vm_init(pickle_vm *vm, zv_arena *a, int flags, zerr *err);

/* Run one pickle from p[0] up to and including its STOP. *out is the value
 * STOP returns, *used the bytes consumed. base is only added to the offsets
 * in error messages. Returns 0, a ZE_* error, or the persid callback's
 * nonzero value. */
int pickle__vm_run(pickle_vm *vm, const uint8_t *p, size_t len, size_t base, zv **out,
                   size_t *used);

/* ---- text.c: protocol-0 argument parsing --------------------------------- */

/* 1 if p[0..n) is UTF-8 as Python's "surrogatepass" reads it (encoded
 * surrogates allowed, no overlongs, nothing above U+10FFFF), else 0. */
int pickle__utf8_ok(const uint8_t *p, size_t n, int allow_surrogates);

/* Python's int() digit limit: longer decimal texts are refused. */
#define PICKLE_MAX_DIGITS 4300

/* Parse an optionally signed decimal integer filling all of s[0..n).
 * Values that fit int64 are stored in *small (*le_len = 0); others as
 * minimal little-endian two's complement bytes in a new arena buffer
 * (*le, *le_len). Returns 0, ZE_CORRUPT (syntax), ZE_TOOBIG (too many
 * digits) or ZE_NOMEM. */
int pickle__parse_int(zv_arena *a, const uint8_t *s, size_t n, int64_t *small,
                      uint8_t **le, size_t *le_len);

/* Parse a Python float() text filling all of s[0..n). 0 or ZE_CORRUPT. */
int pickle__parse_float(const uint8_t *s, size_t n, double *out);

/* Python 2 repr'd string body (between the quotes) -> raw bytes, as
 * codecs.escape_decode. *out is an arena buffer, NUL-terminated. */
int pickle__escape_decode(zv_arena *a, const uint8_t *s, size_t n, uint8_t **out,
                          size_t *out_len);

/* raw-unicode-escape text -> UTF-8 (surrogates allowed, as Python's str may
 * hold them). *out is an arena buffer, NUL-terminated. */
int pickle__raw_unicode_decode(zv_arena *a, const uint8_t *s, size_t n, uint8_t **out,
                               size_t *out_len);

/* Reduce little-endian two's complement bytes to their shortest form
 * (Python's encode_long); returns the new length (0 for zero). */
size_t pickle__le_minimal(const uint8_t *le, size_t n);

/* 1 and *out set when the two's complement value fits int64, else 0. */
int pickle__le_to_i64(const uint8_t *le, size_t n, int64_t *out);

#endif
