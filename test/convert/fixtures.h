/* fixtures.h: the Data.fs fixtures and their manifests, for the convert suites. */
#ifndef ZEOLITE_TEST_FIXTURES_H
#define ZEOLITE_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "tjson.h"

/* Names (e.g. "small", "bad/tlen-too-large") of the fixtures with a manifest in
 * fixtures/datafs (bad = 0) or fixtures/datafs/bad (bad = 1); NULL-terminated,
 * free with fx_free_names. A missing or empty folder fails the calling test. */
char **fx_names(int bad);
void fx_free_names(char **names);
/* malloc'd path of fixtures/datafs/<name>.fs (suffix "" ) or .fs.json / .blobs. */
char *fx_path(const char *name, const char *suffix);
/* Parsed manifest of a fixture (a missing one fails the calling test); free
 * with tj_free. */
tj *fx_manifest(const char *name);
/* Lowercase hex SHA-256 of bytes into out[65]. */
void fx_sha256(const void *p, size_t n, char out[65]);
/* Hex of bytes, malloc'd. */
char *fx_hex(const void *p, size_t n);
/* 1 when the message names one of the offsets a reader may blame for the
 * damage described by a bad manifest: near the patched bytes (the record or
 * transaction holding them), or the offset fstest named. */
int fx_names_offset(const tj *bad, const char *msg);
/* For a torn-tail fixture: the offset where the committed data end, and how
 * many transactions of the good fixture it was derived from lie before it. */
void fx_tail(const tj *bad, uint64_t *tail_pos, size_t *ntxn);

#endif
