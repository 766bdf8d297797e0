/* zarray.h: room for one more element in a malloc'd array.
 *
 * Every module keeps arrays of n used out of cap allocated elements that
 * double when full; this is that step, once:
 *
 *     item *p = zarray_room(v->items, v->n, &v->cap, sizeof *p, 16);
 *     if (!p)
 *         return ZE_NOMEM;
 *     v->items = p;
 *     v->items[v->n++] = x;
 */
#ifndef ZEOLITE_COMMON_ZARRAY_H
#define ZEOLITE_COMMON_ZARRAY_H

#include <stddef.h>

/* p, an array of *cap elements of size bytes of which n are used, with room
 * for element n: p itself when n < *cap, else p reallocated to twice *cap
 * (first when *cap is 0) with *cap updated. NULL when out of memory: p is
 * still valid and *cap unchanged. */
void *zarray_room(void *p, size_t n, size_t *cap, size_t size, size_t first);

#endif
