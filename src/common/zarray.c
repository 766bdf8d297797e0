#include "common/zarray.h"

#include <stdint.h>
#include <stdlib.h>

void *zarray_room(void *p, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return p;
    size_t want = *cap ? *cap * 2 : first;
    if (size && want > SIZE_MAX / size)
        return NULL;
    void *q = realloc(p, want * size);
    if (q)
        *cap = want;
    return q;
}
