/* zbuf.h: a growable byte buffer, big-endian integer and hex digit helpers.
 *
 * A zbuf owns its bytes; zbuf_free releases them. A zeroed zbuf (ZBUF_INIT)
 * is a valid empty buffer. Growth failures return ZE_NOMEM and leave the
 * buffer as it was.
 */
#ifndef ZEOLITE_ZBUF_H
#define ZEOLITE_ZBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct zbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
} zbuf;

#define ZBUF_INIT {NULL, 0, 0}

/* Ensure room for `extra` more bytes past len. */
int zbuf_reserve(zbuf *b, size_t extra);
/* The same, but a buffer that must grow gets exactly len + extra bytes:
 * for one large append whose size is known, where doubling could take
 * twice what it needs. */
int zbuf_reserve_exact(zbuf *b, size_t extra);
int zbuf_append(zbuf *b, const void *p, size_t n);
int zbuf_append_byte(zbuf *b, uint8_t c);
/* Append printf-formatted text (no NUL is kept). */
int zbuf_printf(zbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replace the contents with n bytes at p. */
int zbuf_set(zbuf *b, const void *p, size_t n);
/* Forget the contents, keep the allocation. */
static inline void zbuf_reset(zbuf *b) { b->len = 0; }
void zbuf_free(zbuf *b);

/* A borrowed view of bytes; never freed through the slice. */
typedef struct zslice {
    const uint8_t *p;
    size_t len;
} zslice;

static inline uint64_t zbe64(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) |
           ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32) |
           ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

static inline void zbe64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint32_t zbe32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void zbe32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint16_t zbe16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static inline void zbe16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Value of the hex digit c (either case), or -1 when c is not one. */
static inline int zhex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
