/* resolvertest.h: the store resolver suites' hook and fixture. The hook is a
 * counter: records "N:<value>", resolved as committed + new - old, as
 * BTrees.Length is. */
#ifndef ZEOLITE_RESOLVERTEST_H
#define ZEOLITE_RESOLVERTEST_H

#include "storetest.h"

typedef struct counter_hook {
    int calls, known_calls;
    int refuse;                               /* answer 0 */
    char old[32], committed[32], new_rec[32]; /* the last call's records */
} counter_hook;

extern st_fixture rt_f;
extern counter_hook rt_hook;

int rt_hook_known(void *data, const uint8_t *rec, size_t len);
int rt_hook_resolve(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                    zbuf *out);
/* A fresh store whose resolver is the counter hook. */
void rt_setup(void);
void rt_teardown(void);
/* oid's current data is text. */
void rt_expect(uint64_t oid, const char *text);
/* store_txn_store of text, asserted. */
void rt_store1(store_txn *t, uint64_t oid, uint64_t serial, const char *text);

#endif
