/* jsonmini.h: a small JSON reader for tests (fixture manifests, recorded
 * frames). JSON becomes a zv tree: object -> ZV_DICT with ZV_STR keys in
 * document order (zv_dict_get finds a member), array -> ZV_LIST, string ->
 * ZV_STR (UTF-8), number -> ZV_INT when integral and within int64, else
 * ZV_FLOAT, true/false -> ZV_BOOL, null -> ZV_NONE.
 */
#ifndef ZEOLITE_TEST_JSONMINI_H
#define ZEOLITE_TEST_JSONMINI_H

#include <stddef.h>

#include "common/zerr.h"
#include "common/zvalue.h"

/* Parse one JSON value filling text[0..len) (surrounding whitespace allowed)
 * into arena a. Returns 0, ZE_CORRUPT with the offset in err, or ZE_NOMEM. */
int json_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err);

/* Member lookups that fail the current Criterion test when absent are
 * left to callers; these return NULL on a missing key or a wrong type. */
const zv *json_get(const zv *obj, const char *key);
const char *json_str(const zv *obj, const char *key); /* NUL-terminated */

/* Decode a hex string into a malloc'd buffer; NULL on bad hex. */
unsigned char *json_unhex(const char *hex, size_t *len);

#endif
