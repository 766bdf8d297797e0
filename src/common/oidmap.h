/* oidmap.h: a small hash map from uint64_t keys (oids) to uint64_t values.
 *
 * Open addressing with linear probing and backward-shift deletion, so there
 * are no tombstones and lookups stay short after many removals. Used for the
 * store's pending-commit overlay (oid -> tid), per-transaction oid indexes
 * and the server's oid locks (oid -> holder).
 * Not thread-safe: the owner serialises access.
 */
#ifndef ZEOLITE_COMMON_OIDMAP_H
#define ZEOLITE_COMMON_OIDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct oidmap {
    uint64_t *keys;
    uint64_t *vals;
    uint8_t *used;
    size_t cap;      /* a power of two, or 0 */
    size_t count;
} oidmap;

#define OIDMAP_INIT {NULL, NULL, NULL, 0, 0}

/* Set key to val (insert or replace). ZE_NOMEM leaves the map unchanged. */
int oidmap_put(oidmap *m, uint64_t key, uint64_t val);
/* 1 and *val when key is present, else 0. */
int oidmap_get(const oidmap *m, uint64_t key, uint64_t *val);
/* The value slot of key, to read or change in place (never allocates), or
 * NULL when key is absent. Valid until the next put or del. */
uint64_t *oidmap_ref(const oidmap *m, uint64_t key);
/* Remove key if present. */
void oidmap_del(oidmap *m, uint64_t key);
/* Walk the map: start with *pos = 0; each call gives one key and its value
 * and returns 1, then 0 once every key was given. The order is the table's,
 * not the keys'. Valid while no key is put or deleted (oidmap_ref writes to
 * values are fine). */
int oidmap_next(const oidmap *m, size_t *pos, uint64_t *key, uint64_t *val);
/* Remove every key, keep the allocation. */
void oidmap_clear(oidmap *m);
void oidmap_free(oidmap *m);

#endif
