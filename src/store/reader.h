/* reader.h: a snapshot reader (private to src/store/). */
#ifndef ZEOLITE_STORE_READER_H
#define ZEOLITE_STORE_READER_H

#include "store/store_internal.h"

struct store_reader {
    store *s;
    MDB_txn *txn;          /* MDB_RDONLY | MDB_NOTLS, reset/renewed on refresh */
    MDB_cursor *rec;       /* on records */
    MDB_cursor *txc;       /* on txns */
    unsigned gen;          /* map_gen the cursors were last renewed for */
    uint64_t last_tid;     /* meta last_tid in this snapshot */
    oidmap seen;           /* scratch for changes_since */
};

/* store__map_enter plus cursor renewal after a map growth. Pair with
 * store__map_leave(r->s). */
void store__reader_enter(store_reader *r);
int store__reader_load_tid(store_reader *r, zerr *err);

#endif
