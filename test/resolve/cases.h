/* cases.h: the three-way conflict cases gen_cases.py writes, each with
 * BTrees' answer (see gen_cases.py for the file format). */
#ifndef ZEOLITE_TEST_RESOLVE_CASES_H
#define ZEOLITE_TEST_RESOLVE_CASES_H

#include <stddef.h>
#include <stdint.h>

enum { CASE_RESOLVED = 0, CASE_CONFLICT = 1, CASE_ERROR = 2 };

typedef struct rcase {
    char klass[256]; /* "BTrees.OOBTree.OOBucket" */
    char kind[256];  /* the keys' kind: "int", "str", ... or "odd" */
    uint32_t index;
    const uint8_t *rec[3]; /* old, committed, new */
    size_t len[3];
    int answer;              /* CASE_* */
    const uint8_t *resolved; /* with CASE_RESOLVED */
    size_t resolved_len;
    int reason;       /* with CASE_CONFLICT */
    char error[256];  /* with CASE_ERROR: the exception's class */
} rcase;

typedef struct rcases {
    uint8_t *data;
    size_t size, pos;
    uint32_t seed, count, read;
} rcases;

/* Open a case file: 0, or -1 when it cannot be read or is not one. */
int cases_open(rcases *f, const char *path);
/* The next case: 1, 0 at the end, -1 when the file is damaged. The
 * pointers in *c are valid until cases_close. */
int cases_next(rcases *f, rcase *c);
void cases_close(rcases *f);

#endif
