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

#include "common/zbuf.h"
#include "common/zerr.h"
#include "common/zvalue.h"

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

/* As record_refs, decoding into the caller's arena instead of a fresh one,
 * so that a scan over many records (pack) allocates nothing per record.
 * The caller resets or frees the arena; nothing in it is needed afterwards.
 *
 * Which references a record has (ZODB's referencesf plus the lists it
 * skips): a tuple id gives its first element (strong, this database); a bare
 * 8-byte id is strong; ['w', (oid,)] and legacy [oid] are weak;
 * ['w', (oid, db)] is weak with database db; ['m', (db, oid, class)] and
 * ['n', (db, oid)] are strong references into database db. An oid may be
 * bytes, a Python 2 str (read as bytes) or an ASCII str, always 8 bytes.
 * Any other id, or an oid of another length, is ZE_CORRUPT. Bytes after the
 * state pickle are ignored, as ZODB ignores them. */
int record_refs_in(zv_arena *a, const uint8_t *rec, size_t len, record_ref_cb cb, void *ud,
                   zerr *err);

/* Decode a record's two pickles, the class metadata then the state, with
 * one memo as ZODB's unpickler reads them (the state may fetch memo entries
 * of the class pickle). flags are pickle_decode's; PICKLE_ALLOW_OBJECTS is
 * implied. Bytes after the state are ignored, as ZODB ignores them.
 * *meta and *state live in a (the caller's). Returns 0, ZE_CORRUPT,
 * ZE_TOOBIG or ZE_NOMEM (message in err); on error *meta and *state are
 * untouched. */
int record_decode(zv_arena *a, const uint8_t *rec, size_t len, int flags, zv **meta,
                  zv **state, zerr *err);

/* Encode a record as ZODB writes one: meta, then state, through one pickler
 * (pickle_encode_memo, protocol 3), so the state may fetch memo entries of
 * the meta. Appends to *out. Returns 0 or pickle_encode_memo's errors; on
 * error *out is as it was. */
int record_encode(const zv *meta, const zv *state, zbuf *out, zerr *err);

/* The record's class as "module.Name" into buf (NUL-terminated), for conflict
 * messages. Returns 0, or ZE_CORRUPT/ZE_NOTFOUND when it cannot be told
 * (ZE_TOOBIG when the name does not fit in cap bytes, ZE_NOMEM).
 * Class metadata forms understood: class; (class, args); ((module, name),
 * args); (module, name), as ZODB's get_pickle_metadata reads them. */
int record_class_name(const uint8_t *rec, size_t len, char *buf, size_t cap);

#endif
