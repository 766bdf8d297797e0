/* pgs.c: what test_pg_shared and pg_child both do (pgs.h). */
#include "pgs.h"

#include <string.h>

int pgs_commit(store *s, uint64_t oid, uint64_t serial, const char *data, uint64_t *tid,
               zerr *e)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t = NULL;
    int rc = store_txn_begin(s, &m, &t, e);
    if (!rc)
        rc = store_txn_store(t, oid, serial, data, strlen(data), e);
    if (!rc)
        rc = store_txn_vote(t, NULL, e);
    if (!rc)
        rc = store_txn_finish(t, tid, e);
    if (rc && t)
        store_txn_abort(t);
    store_txn_free(t);
    return rc;
}
