/* pktest.h: helpers shared by the pickle suites. */
#ifndef ZEOLITE_TEST_PKTEST_H
#define ZEOLITE_TEST_PKTEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/zvalue.h"

/* Bytes written as in the spec's example frames: hex pairs, whitespace
 * ignored, and "quoted text" copied as is. Returns the length written
 * (at most cap); aborts the test on a malformed string. */
size_t pt_bytes(const char *spec, uint8_t *out, size_t cap);

/* The tuple (a0, a1, a2, a3) in arena a: a ZEO message's shape. */
zv *pt_tuple4(zv_arena *a, zv *a0, zv *a1, zv *a2, zv *a3);

/* The value a fixture's JSON "decoded" field describes (wire/README.md:
 * {"bytes": hex}, {"tuple": [...]}, {"dict": [[k, v]...]}, lists as
 * arrays, numbers, strings, booleans, null), built in arena a. */
zv *pt_from_fixture_json(zv_arena *a, const zv *j);

#endif
