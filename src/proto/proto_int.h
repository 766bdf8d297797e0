/* proto_int.h: shared between the files of src/proto only. */
#ifndef ZEOLITE_PROTO_INT_H
#define ZEOLITE_PROTO_INT_H

#include "proto/proto.h"

/* Decode exactly one msgpack value filling all of p..p+len (M5 rules: bin ->
 * BYTES, str -> STR, array -> TUPLE, map -> DICT with str/bytes keys; no ext
 * types). ZE_CORRUPT on malformed input, ZE_NOMEM. */
int proto__m5_decode(const uint8_t *p, size_t len, zv_arena *a, zv **out, zerr *err);

/* Append v as msgpack the way ZEO's Packer(use_bin_type=True) writes it.
 * ZE_INVAL for values msgpack cannot carry (sets, objects, huge ints). */
int proto__m5_encode(const zv *v, zbuf *out, zerr *err);

/* "int", "bytes", ... for error messages. */
const char *proto__type_name(const zv *v);

#endif
