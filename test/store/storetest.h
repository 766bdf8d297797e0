/* storetest.h: helpers shared by the store suites. */
#ifndef ZEOLITE_STORETEST_H
#define ZEOLITE_STORETEST_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"
#include "testutil.h"

/* The suites of store.h's contract run on both backends: the same
 * executable, run by ctest once as it is (LMDB) and once with
 * ZEOLITE_STORE_BACKEND=postgresql (each test then gets a database of its
 * own on the shared cluster, test/pgtest.h). */
typedef struct st_fixture {
    char *dir;            /* the store's spec: a folder, or a PostgreSQL URI */
    store *s;
    store_reader *r;
} st_fixture;

/* 1 when the suite runs on PostgreSQL. */
int stt_pg(void);
/* A new empty place for a store (malloc'd): a temp folder, or a new
 * database's URI; stt_spec_remove removes it. */
char *stt_spec_new(const char *tag);
void stt_spec_remove(const char *spec);

/* How the store's messages name the database of spec (malloc'd): the folder,
 * or "dbname=NAME" (never the URI, which may hold a password). */
char *stt_spec_shown(const char *spec);

/* A fresh store (no_sync unless sync) with a reader. */
void stt_open(st_fixture *f, const store_options *opt);
/* Close store and reader (keeping the database). */
void stt_close(st_fixture *f);
/* Close and remove the database. */
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

/* A temp blob file of s holding text: its path in buf. */
void stt_blob_tmp(store *s, char *buf, size_t cap, const char *text);
/* One transaction storing oid with a blob file holding text: its tid. */
uint64_t stt_commit_blob(store *s, uint64_t oid, uint64_t serial, const char *text);
/* The file at path holds text. */
void stt_expect_file(const char *path, const char *text);

/* Behind the contract's back, for tests of what must never happen: set the
 * database's floor for its last tid; remove oid's record(s) of tid. */
void stt_set_last_tid(st_fixture *f, uint64_t tid);
void stt_cut_record(st_fixture *f, uint64_t oid, uint64_t tid);

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
