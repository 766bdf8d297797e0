/* Framing: the 4-byte big-endian length prefix (spec 1.2). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* A stream of frames of assorted sizes, zero-length included. */
static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 30, 255, 256, 1000};
#define NFRAMES (sizeof sizes / sizeof sizes[0])

static void build_stream(zbuf *s)
{
    uint8_t body[1000];
    for (size_t i = 0; i < NFRAMES; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            body[j] = (uint8_t)(i * 31 + j);
        cr_assert_eq(proto_frame_append(s, body, sizes[i]), 0);
    }
}

/* Take every frame available; check each against the next expected one. */
static void drain(proto_framer *f, size_t *seen)
{
    const uint8_t *p;
    uint32_t len;
    int rc;
    while ((rc = proto_framer_next(f, &p, &len)) == 1) {
        cr_assert_lt(*seen, NFRAMES);
        cr_assert_eq(len, sizes[*seen]);
        for (size_t j = 0; j < len; j++)
            cr_assert_eq(p[j], (uint8_t)(*seen * 31 + j));
        (*seen)++;
    }
    cr_assert_eq(rc, 0);
}

Test(proto_frame, header_is_big_endian_length)
{
    zbuf out = ZBUF_INIT;
    cr_assert_eq(proto_frame_append(&out, "Z5", 2), 0);
    /* spec 2.1: the announcement on the wire */
    static const uint8_t want[] = {0, 0, 0, 2, 0x5a, 0x35};
    cr_assert_eq(out.len, sizeof want);
    cr_assert_arr_eq(out.data, want, sizeof want);
    zbuf_free(&out);
}

Test(proto_frame, many_frames_in_one_feed)
{
    zbuf s = ZBUF_INIT;
    proto_framer f;
    size_t seen = 0;

    build_stream(&s);
    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_feed(&f, s.data, s.len), 0);
    drain(&f, &seen);
    cr_assert_eq(seen, NFRAMES);
    cr_assert_eq(proto_framer_pending(&f), 0);
    proto_framer_free(&f);
    zbuf_free(&s);
}

Test(proto_frame, split_at_every_byte_position)
{
    zbuf s = ZBUF_INIT;

    build_stream(&s);
    for (size_t cut = 0; cut <= s.len; cut++) {
        proto_framer f;
        size_t seen = 0;
        proto_framer_init(&f, 0);
        cr_assert_eq(proto_framer_feed(&f, s.data, cut), 0);
        drain(&f, &seen);
        cr_assert_eq(proto_framer_feed(&f, s.data + cut, s.len - cut), 0);
        drain(&f, &seen);
        cr_assert_eq(seen, NFRAMES, "cut at %zu", cut);
        cr_assert_eq(proto_framer_pending(&f), 0);
        proto_framer_free(&f);
    }
    zbuf_free(&s);
}

Test(proto_frame, one_byte_at_a_time)
{
    zbuf s = ZBUF_INIT;
    proto_framer f;
    size_t seen = 0;

    build_stream(&s);
    proto_framer_init(&f, 0);
    for (size_t i = 0; i < s.len; i++) {
        cr_assert_eq(proto_framer_feed(&f, s.data + i, 1), 0);
        drain(&f, &seen);
    }
    cr_assert_eq(seen, NFRAMES);
    /* Consumed bytes were dropped along the way: the buffer never held the
     * whole stream. */
    cr_assert_lt(f.in.cap, s.len);
    proto_framer_free(&f);
    zbuf_free(&s);
}

Test(proto_frame, pending_counts_a_partial_frame)
{
    static const uint8_t part[] = {0, 0, 0, 10, 1, 2, 3};
    proto_framer f;
    const uint8_t *p;
    uint32_t len;

    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_feed(&f, part, sizeof part), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 0);
    cr_assert_eq(proto_framer_pending(&f), sizeof part);
    proto_framer_free(&f);
}

Test(proto_frame, four_gib_length_is_too_big_without_allocating)
{
    static const uint8_t hdr[] = {0xff, 0xff, 0xff, 0xff, 'x'};
    proto_framer f;
    const uint8_t *p;
    uint32_t len;

    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_feed(&f, hdr, sizeof hdr), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), ZE_TOOBIG);
    cr_assert_eq(proto_framer_next(&f, &p, &len), ZE_TOOBIG, "the error sticks");
    cr_assert_leq(f.in.cap, 64, "nothing was reserved for the announced length");
    proto_framer_free(&f);
}

Test(proto_frame, max_frame_is_inclusive)
{
    uint8_t buf[4 + 17] = {0, 0, 0, 16};
    proto_framer f;
    const uint8_t *p;
    uint32_t len;

    proto_framer_init(&f, 16);
    cr_assert_eq(proto_framer_feed(&f, buf, 20), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 1);
    cr_assert_eq(len, 16);
    proto_framer_free(&f);

    buf[3] = 17;
    proto_framer_init(&f, 16);
    cr_assert_eq(proto_framer_feed(&f, buf, 4), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), ZE_TOOBIG);
    proto_framer_free(&f);
}

Test(proto_frame, zero_length_frame)
{
    static const uint8_t z[] = {0, 0, 0, 0};
    proto_framer f;
    const uint8_t *p;
    uint32_t len = 99;

    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_feed(&f, z, 4), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 1);
    cr_assert_eq(len, 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 0);
    proto_framer_free(&f);
}

/* Streaming far more than any one frame, in reads that end mid-frame, keeps
 * the buffer near the size of one frame plus one read. */
Test(proto_frame, buffer_stays_bounded_while_streaming)
{
    uint8_t frame[4 + 700];
    uint8_t stream[3 * sizeof frame];
    proto_framer f;
    const uint8_t *p;
    uint32_t len;
    size_t got = 0, fed = 0, max_cap = 0;

    memset(frame, 0xab, sizeof frame);
    zbe32_put(frame, 700);
    for (int i = 0; i < 3; i++)
        memcpy(stream + i * sizeof frame, frame, sizeof frame);
    proto_framer_init(&f, 0);
    for (int round = 0; round < 2000; round++) {
        size_t chunk = 997; /* prime: every phase against the frame size */
        size_t off = fed % sizeof stream;
        size_t n = chunk < sizeof stream - off ? chunk : sizeof stream - off;
        cr_assert_eq(proto_framer_feed(&f, stream + off, n), 0);
        fed += n;
        while (proto_framer_next(&f, &p, &len) == 1) {
            cr_assert_eq(len, 700);
            got++;
        }
        if (f.in.cap > max_cap)
            max_cap = f.in.cap;
    }
    cr_assert_eq(got, fed / sizeof frame);
    cr_assert_leq(max_cap, 4096, "buffer grew to %zu", max_cap);
    proto_framer_free(&f);
}

Test(proto_frame, large_drained_buffer_is_released)
{
    size_t n = 3u << 20;
    zbuf s = ZBUF_INIT;
    uint8_t *body = calloc(1, n);
    proto_framer f;
    const uint8_t *p;
    uint32_t len;

    cr_assert_eq(proto_frame_append(&s, body, n), 0);
    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_feed(&f, s.data, s.len), 0);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 1);
    cr_assert_eq(len, n);
    cr_assert_eq(proto_framer_feed(&f, s.data, 2), 0);
    cr_assert_lt(f.in.cap, (size_t)1 << 20);
    proto_framer_free(&f);
    zbuf_free(&s);
    free(body);
}

/* A server looks at a frame's length before taking it, makes room for a
 * large one at once, and may give a frame back to take it again later. */
Test(proto_frame, peek_expect_and_unget)
{
    proto_framer f;
    const uint8_t *p;
    uint32_t len;
    size_t big = 8u << 20;
    uint8_t *frame = calloc(1, 4 + big);
    zbe32_put(frame, (uint32_t)big);
    frame[4 + big - 1] = 'z';

    proto_framer_init(&f, 0);
    cr_assert_eq(proto_framer_peek(&f, &len), 0);
    cr_assert_eq(proto_framer_expect(&f), 0);
    cr_assert_eq(proto_framer_feed(&f, frame, 3), 0);
    cr_assert_eq(proto_framer_peek(&f, &len), 0);
    cr_assert_eq(proto_framer_feed(&f, frame + 3, 65536 - 3), 0);
    cr_assert_eq(proto_framer_peek(&f, &len), 1);
    cr_assert_eq(len, big);
    cr_assert_eq(proto_framer_expect(&f), 0);
    size_t cap = f.in.cap;
    cr_assert(cap >= 4 + big && cap <= 4 + big + 65536, "%zu", cap);
    /* The rest arrives read by read: the buffer does not grow again. */
    for (size_t off = 65536; off < 4 + big; off += 65536) {
        size_t n = 4 + big - off < 65536 ? 4 + big - off : 65536;
        cr_assert_eq(proto_framer_feed(&f, frame + off, n), 0);
    }
    cr_assert_eq(f.in.cap, cap);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 1);
    cr_assert_eq(len, big);
    cr_assert_eq(p[big - 1], 'z');
    proto_framer_unget(&f, len);
    cr_assert_eq(proto_framer_pending(&f), 4 + big);
    cr_assert_eq(proto_framer_next(&f, &p, &len), 1);
    cr_assert_eq(len, big);
    cr_assert_eq(proto_framer_pending(&f), 0);
    /* Drained, the large buffer goes back at the next feed. */
    cr_assert_eq(proto_framer_feed(&f, "\0\0\0\1x", 5), 0);
    cr_assert_lt(f.in.cap, 1 << 20);
    proto_framer_free(&f);
    free(frame);
    /* Over max_frame: peek says so as next does. */
    proto_framer_init(&f, 1024);
    cr_assert_eq(proto_framer_feed(&f, "\0\0\4\1", 4), 0);
    cr_assert_eq(proto_framer_peek(&f, &len), ZE_TOOBIG);
    proto_framer_free(&f);
}
