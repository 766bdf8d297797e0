/* jsonmini.h: the tests' JSON helpers (fixture manifests, recorded frames).
 * Parsing is common/zjson.h's reader (see there for how JSON maps onto zv);
 * this adds the lookups and hex decoding the fixture suites use. Link
 * test/jsonmini.c and zl_common.
 */
#ifndef ZEOLITE_TEST_JSONMINI_H
#define ZEOLITE_TEST_JSONMINI_H

#include <stddef.h>

#include "common/zerr.h"
#include "common/zjson.h"
#include "common/zvalue.h"

/* zjson_parse under the name the tests use: 0, ZE_CORRUPT with the offset in
 * err, or ZE_NOMEM. */
int json_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err);

/* Member lookups that fail the current Criterion test when absent are
 * left to callers; these return NULL on a missing key or a wrong type. */
const zv *json_get(const zv *obj, const char *key);
const char *json_str(const zv *obj, const char *key); /* NUL-terminated */

/* Decode a hex string into a malloc'd buffer; NULL on bad hex. */
unsigned char *json_unhex(const char *hex, size_t *len);

#endif
