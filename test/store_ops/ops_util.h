/* ops_util.h: helpers of the store operations suites (pack, backup, crash). */
#ifndef ZEOLITE_TEST_OPS_UTIL_H
#define ZEOLITE_TEST_OPS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/zbuf.h"
#include "store/store.h"

/* The forms of persistent reference a record can hold (spec
 * filestorage-format.md section 11). */
typedef enum ref_form {
    REF_STRONG,   /* (oid, class): followed by GC */
    REF_BARE,     /* bare oid: followed by GC */
    REF_WEAK,     /* ['w', (oid,)]: keeps nothing alive */
    REF_XDB,      /* ['m', (db, oid, class)]: another database */
} ref_form;

typedef struct test_ref {
    uint64_t oid;
    ref_form form;
} test_ref;

/* A ZODB-style record (class pickle + state pickle, one memo) whose state is
 * a list of the references and then payload. */
void ops_record(zbuf *out, const test_ref *refs, int nrefs, const char *payload);

/* A fresh store in a new temporary folder (*dir malloc'd). */
store *ops_open(char **dir, int durable);
store *ops_reopen(const char *dir);
uint64_t ops_new_oid(store *s);

/* One committed transaction storing n objects (serials as given); returns
 * its tid. Criterion-asserts every step. */
uint64_t ops_commit(store *s, int n, const uint64_t *oids, const uint64_t *serials,
                    const zbuf *data);
/* ops_commit of one object holding refs and payload. */
uint64_t ops_put(store *s, uint64_t oid, uint64_t serial, const test_ref *refs, int nrefs,
                 const char *payload);
/* One committed transaction undoing transaction undo_tid; returns its tid. */
uint64_t ops_undo(store *s, uint64_t undo_tid);
/* ops_put of a blob object whose file holds `content`. */
uint64_t ops_put_blob(store *s, uint64_t oid, uint64_t serial, const char *content);

/* Current data of oid (ZE_* code on failure; data reset then). */
int ops_load(store *s, uint64_t oid, zbuf *data, uint64_t *tid);
int ops_load_serial(store *s, uint64_t oid, uint64_t serial, zbuf *data);
/* A time strictly between the commits of tids a < b (they are made apart). */
double ops_time_between(uint64_t a, uint64_t b);
/* Sleep a few milliseconds so that consecutive tids have distinct times. */
void ops_pause(void);
/* A thread that updates one object n times (pthread start routine). */
typedef struct ops_committer {
    store *s;
    uint64_t oid, serial;   /* serial: in, the current one; out, the last commit's */
    int n;
} ops_committer;
void *ops_commit_loop(void *arg);

/* Whether the file exists. */
int ops_exists(const char *path);

#endif
