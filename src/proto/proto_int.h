/* proto_int.h: shared between the files of src/proto only. */
#ifndef ZEOLITE_PROTO_INT_H
#define ZEOLITE_PROTO_INT_H

#include "proto/proto.h"

/* Decode exactly one msgpack value filling all of p..p+len (M5 rules: bin ->
 * BYTES, str -> STR, array -> TUPLE, map -> DICT with str/bytes keys; no ext
 * types), taking at most max_bytes of the arena (msgpack shares nothing, so
 * that is also the value's zv_copy_cost). ZE_CORRUPT on malformed input,
 * ZE_TOOBIG past max_bytes, ZE_NOMEM. */
int proto__m5_decode(const uint8_t *p, size_t len, uint64_t max_bytes, zv_arena *a, zv **out,
                     zerr *err);

/* Append v as msgpack the way ZEO's Packer(use_bin_type=True) writes it.
 * ZE_INVAL for values msgpack cannot carry (sets, objects, huge ints). */
int proto__m5_encode(const zv *v, zbuf *out, zerr *err);
/* The bytes proto__m5_encode would append, without building them. */
int proto__m5_size(const zv *v, size_t *size, zerr *err);

/* "int", "bytes", ... for error messages. */
const char *proto__type_name(const zv *v);

#endif
