#include "common/zbuf.h"
#include "common/zerr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zbuf_reserve(zbuf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return ZE_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return ZE_NOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return ZE_NOMEM;
    b->data = p;
    b->cap = cap;
    return ZE_OK;
}

int zbuf_reserve_exact(zbuf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return ZE_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return ZE_NOMEM;
    uint8_t *p = realloc(b->data, b->len + extra);
    if (!p)
        return ZE_NOMEM;
    b->data = p;
    b->cap = b->len + extra;
    return ZE_OK;
}

int zbuf_append(zbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return ZE_OK;
    int rc = zbuf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return ZE_OK;
}

int zbuf_append_byte(zbuf *b, uint8_t c)
{
    return zbuf_append(b, &c, 1);
}

int zbuf_set(zbuf *b, const void *p, size_t n)
{
    b->len = 0;
    return zbuf_append(b, p, n);
}

void zbuf_free(zbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int zbuf_printf(zbuf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    int rc = n < 0 ? ZE_INVAL : zbuf_reserve(b, (size_t)n + 1);
    if (rc == ZE_OK) {
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return rc;
}
