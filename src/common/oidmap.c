#include "common/oidmap.h"

#include <stdlib.h>
#include <string.h>

#include "common/zerr.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    /* Fibonacci hashing: oids are often sequential, so spread them. */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int grow(oidmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    oidmap n = {calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(uint64_t)),
                calloc(cap, 1), cap, 0};
    if (!n.keys || !n.vals || !n.used) {
        oidmap_free(&n);
        return ZE_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i])
            oidmap_put(&n, m->keys[i], m->vals[i]);
    oidmap_free(m);
    *m = n;
    return 0;
}

int oidmap_put(oidmap *m, uint64_t key, uint64_t val)
{
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    size_t i = slot_of(key, m->cap);
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = key;
        m->count++;
    }
    m->vals[i] = val;
    return 0;
}

uint64_t *oidmap_ref(const oidmap *m, uint64_t key)
{
    if (!m->count)
        return NULL;
    size_t i = slot_of(key, m->cap);
    while (m->used[i]) {
        if (m->keys[i] == key)
            return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

int oidmap_get(const oidmap *m, uint64_t key, uint64_t *val)
{
    const uint64_t *v = oidmap_ref(m, key);
    if (v)
        *val = *v;
    return v != NULL;
}

void oidmap_del(oidmap *m, uint64_t key)
{
    if (!m->count)
        return;
    size_t mask = m->cap - 1, i = slot_of(key, m->cap);
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->used[i])
        return;
    /* Backward shift: move later members of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->used[hole] = 0;
    m->count--;
}

int oidmap_next(const oidmap *m, size_t *pos, uint64_t *key, uint64_t *val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->used[i]) {
            *key = m->keys[i];
            *val = m->vals[i];
            *pos = i + 1;
            return 1;
        }
    }
    *pos = m->cap;
    return 0;
}

void oidmap_clear(oidmap *m)
{
    if (m->used)
        memset(m->used, 0, m->cap);
    m->count = 0;
}

void oidmap_free(oidmap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}
