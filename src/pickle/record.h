/* record.h: what zeolite needs to know about a ZODB object record.
 *
 * A record is two pickles back to back: the class metadata, then the state.
 * Persistent references are the persistent ids in either pickle, in every form
 * ZODB writes (spec filestorage-format.md section 11): (oid, class), bare oid,
 * ['w', (oid,)], ['w', (oid, db)], ['m', (db, oid, class)], ['n', (db, oid)],
 * legacy [oid], (oid, (module, name)) ... plus Python-2 style records.
 */
#ifndef ZEOLITE_RECORD_H
#define ZEOLITE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/zerr.h"

typedef struct record_ref {
    uint64_t oid;
    const char *database; /* NULL for this database; else a cross-database ref (NUL-terminated, valid during the callback) */
    int weak;             /* 1 for a weak reference ('w') */
} record_ref;

/* Return nonzero from the callback to stop early (that value is returned). */
typedef int (*record_ref_cb)(const record_ref *ref, void *ud);

/* Call cb for every persistent reference in the record, in pickle order.
 * Returns 0, the callback's nonzero value, or ZE_CORRUPT when the record
 * cannot be parsed (a pack must then keep everything: it cannot prove
 * anything unreachable). */
int record_refs(const uint8_t *rec, size_t len, record_ref_cb cb, void *ud, zerr *err);

/* The record's class as "module.Name" into buf (NUL-terminated), for conflict
 * messages. Returns 0, or ZE_CORRUPT/ZE_NOTFOUND when it cannot be told. */
int record_class_name(const uint8_t *rec, size_t len, char *buf, size_t cap);

#endif
