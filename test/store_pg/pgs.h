/* pgs.h: what test_pg_shared and its second process (pg_child) both do. */
#ifndef ZEOLITE_TEST_PGS_H
#define ZEOLITE_TEST_PGS_H

#include "store/store.h"

/* One transaction storing data (a string) as oid against serial: the rc
 * of begin, store, vote or finish (the transaction aborted then), *tid on
 * success. */
int pgs_commit(store *s, uint64_t oid, uint64_t serial, const char *data, uint64_t *tid,
               zerr *e);

#endif
