/* frame.c: the 4-byte big-endian length prefix that wraps every ZEO message. */
#include "proto/proto.h"

#include <string.h>

/* A buffer this large is given back to the allocator once drained, so that a
 * connection that once received a big record does not keep its memory. */
#define KEEP_CAP (128u * 1024)
/* Room kept past an expected frame: what one read may bring of the next. */
#define FEED_SLACK (64u * 1024)

void proto_framer_init(proto_framer *f, uint32_t max_frame)
{
    memset(f, 0, sizeof *f);
    f->max_frame = max_frame ? max_frame : PROTO_DEFAULT_MAX_FRAME;
}

void proto_framer_free(proto_framer *f)
{
    zbuf_free(&f->in);
    f->pos = 0;
}

/* Drop the consumed prefix before appending. Moving only happens when the
 * consumed part is at least as large as what is left, so every byte is moved
 * at most once on average: buffering stays linear however the input is cut. */
static void compact(proto_framer *f)
{
    size_t left = f->in.len - f->pos;

    if (left == 0) {
        if (f->in.cap > KEEP_CAP)
            zbuf_free(&f->in);
        f->in.len = 0;
        f->pos = 0;
        return;
    }
    if (f->pos >= left) {
        memmove(f->in.data, f->in.data + f->pos, left);
        f->in.len = left;
        f->pos = 0;
    }
}

int proto_framer_feed(proto_framer *f, const void *p, size_t n)
{
    if (f->pos)
        compact(f);
    return zbuf_append(&f->in, p, n);
}

int proto_framer_peek(const proto_framer *f, uint32_t *len)
{
    if (f->in.len - f->pos < 4)
        return 0;
    *len = zbe32(f->in.data + f->pos);
    return *len > f->max_frame ? ZE_TOOBIG : 1;
}

int proto_framer_expect(proto_framer *f)
{
    uint32_t n;
    if (proto_framer_peek(f, &n) != 1)
        return 0;
    size_t end = f->pos + 4 + (size_t)n + FEED_SLACK;
    if (end <= f->in.cap)
        return 0;
    return zbuf_reserve_exact(&f->in, end - f->in.len);
}

void proto_framer_unget(proto_framer *f, uint32_t len)
{
    f->pos -= 4 + (size_t)len;
}

int proto_framer_next(proto_framer *f, const uint8_t **payload, uint32_t *len)
{
    size_t avail = f->in.len - f->pos;
    uint32_t n;
    int r = proto_framer_peek(f, &n);

    if (r != 1)
        return r;
    const uint8_t *hdr = f->in.data + f->pos;
    if (avail - 4 < n)
        return 0;
    *payload = hdr + 4;
    *len = n;
    f->pos += 4 + (size_t)n;
    return 1;
}

size_t proto_framer_pending(const proto_framer *f)
{
    return f->in.len - f->pos;
}

int proto_frame_append(zbuf *out, const void *payload, size_t len)
{
    uint8_t hdr[4];

    if (len > UINT32_MAX)
        return ZE_TOOBIG;
    if (zbuf_reserve(out, 4 + len))
        return ZE_NOMEM;
    zbe32_put(hdr, (uint32_t)len);
    zbuf_append(out, hdr, 4);
    zbuf_append(out, payload, len);
    return ZE_OK;
}
