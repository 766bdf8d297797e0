/* fxstore.h: what a store that imported a fixture must hold (the import
 * suites, on both backends). */
#ifndef ZEOLITE_TEST_FXSTORE_H
#define ZEOLITE_TEST_FXSTORE_H

#include "common/zblob.h"
#include "fixtures.h"
#include "store/store.h"

/* Every transaction and record as manifest m lists them (iteration). */
void fx_expect_transactions(store *s, const tj *m);
/* Python's loadBefore answers recorded in m. */
void fx_expect_load_before(store *s, const tj *m);
/* Each blob file of m at its place in an exported blob folder. */
void fx_expect_blob_files(const tj *m, const char *dir, zblob_layout layout);

#endif
