/* zjson.h: a small JSON reader into zv values.
 *
 * One reader serves the client (the ruok status a server sends) and the tests
 * (fixture manifests, recorded frames). JSON maps onto zv as:
 *   object -> ZV_DICT, ZV_STR keys in document order (zv_dict_get finds one)
 *   array  -> ZV_LIST
 *   string -> ZV_STR (UTF-8, NUL-terminated; \uXXXX surrogate pairs joined)
 *   number -> ZV_INT when written without '.', 'e' or 'E' (must fit int64),
 *             else ZV_FLOAT
 *   true, false -> ZV_BOOL; null -> ZV_NONE
 *
 * The input may come from the network: nesting is bounded (ZJSON_MAX_DEPTH)
 * and every read is bounded by the given length.
 */
#ifndef ZEOLITE_ZJSON_H
#define ZEOLITE_ZJSON_H

#include <stddef.h>

#include "common/zerr.h"
#include "common/zvalue.h"

/* Deepest nesting of arrays and objects accepted. */
#define ZJSON_MAX_DEPTH 512

/**
 * @brief Parse the one JSON value filling text[0..len).
 *
 * Whitespace around the value is allowed; anything else after it is an error.
 * text need not be NUL-terminated.
 *
 * @param[in]  text  the document
 * @param[in]  len   its length in bytes
 * @param[in]  a     arena that receives every value (owned by the caller)
 * @param[out] out   on success, the root value, valid until @p a is freed or
 *                   reset; untouched on failure
 * @param[out] err   may be NULL
 * @return 0; ZE_CORRUPT for malformed JSON (the message starts with
 *         "json: offset N:"); ZE_NOMEM. Values already built on failure stay
 *         in @p a until it is freed.
 */
int zjson_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err);

#endif
