/* storetest.h: helpers shared by the store suites. */
#ifndef ZEOLITE_STORETEST_H
#define ZEOLITE_STORETEST_H

#include <criterion/criterion.h>
#include <pthread.h>
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

/* A gate that holds the store's writer thread (a job waiting inside it), so
 * that commits handed to it stay pending. */
typedef struct stt_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int entered;
    store *s;
    pthread_t th;
} stt_gate;
/* Block the writer until stt_gate_open. */
void stt_gate_close(stt_gate *g, store *s);
void stt_gate_open(stt_gate *g);

/* Completion of an asynchronous commit: pass stt_on_commit and the flag to
 * store_txn_commit, then stt_wait_done for its rc. */
typedef struct stt_done_flag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
    uint64_t tid;
} stt_done_flag;
void stt_done_init(stt_done_flag *d);
void stt_on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud);
int stt_wait_done(stt_done_flag *d);

#endif
