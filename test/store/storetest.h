/* storetest.h: helpers shared by the store suites. */
#ifndef ZEOLITE_STORETEST_H
#define ZEOLITE_STORETEST_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"
#include "testutil.h"

typedef struct st_fixture {
    char *dir;
    store *s;
    store_reader *r;
} st_fixture;

/* A fresh store in a temp folder (no_sync unless sync) with a reader. */
void stt_open(st_fixture *f, const store_options *opt);
/* Close store and reader (keeping the folder). */
void stt_close(st_fixture *f);
/* Close and remove the folder. */
void stt_done(st_fixture *f);
/* Reopen with opt (after stt_close). */
void stt_reopen(st_fixture *f, const store_options *opt);

/* One transaction storing (oid, serial, text): returns the new tid. */
uint64_t stt_commit1(store *s, uint64_t oid, uint64_t serial, const char *text);
/* One transaction storing each (oids[i], serials[i], texts[i]) in order (the
 * same oid may repeat): returns the new tid. */
uint64_t stt_commit_n(store *s, int n, const uint64_t *oids, const uint64_t *serials,
                      const char *const *texts);
/* Begin with user "u", description "d". */
store_txn *stt_begin(store *s);
/* Vote (asserting success) and finish; returns the tid. */
uint64_t stt_finish(store_txn *t);

/* load_before returning the rc; data as a NUL-terminated copy in out. */
int stt_load(store_reader *r, uint64_t oid, uint64_t before, char *out, size_t cap,
             uint64_t *start, uint64_t *end);

#endif
