/* reader.h: a snapshot reader (private to src/store/). */
#ifndef ZEOLITE_STORE_READER_H
#define ZEOLITE_STORE_READER_H

#include "store/index.h"

struct store_reader {
    const store_ops *be;   /* &store__lmdb_ops: first, as backend.h asks */
    store *s;
    st_view v;             /* the snapshot and its index; reset/renewed on refresh */
    MDB_cursor *txc;       /* on txns */
    unsigned gen;          /* map_gen the cursors were last renewed for */
    uint64_t last_tid;     /* the last tid in this snapshot */
    oidmap seen;           /* scratch for changes_since */
};

/* store__map_enter plus cursor renewal after a map growth. Pair with
 * store__map_leave(r->s). */
void store__reader_enter(store_reader *r);

#endif
