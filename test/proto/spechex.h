/* spechex.h: byte strings written the way the spec shows frames: hex pairs,
 * with "quoted text" standing for its ASCII bytes, spaces ignored. */
#ifndef ZEOLITE_TEST_SPECHEX_H
#define ZEOLITE_TEST_SPECHEX_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/zbuf.h"

static inline int spechex_nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parse s into b (replacing its contents); a malformed string fails the test. */
static inline void spechex(zbuf *b, const char *s)
{
    zbuf_reset(b);
    while (*s) {
        if (*s == ' ' || *s == '\n') {
            s++;
        } else if (*s == '"') {
            const char *end = strchr(s + 1, '"');
            cr_assert_not_null(end, "unterminated text in spec bytes");
            zbuf_append(b, s + 1, (size_t)(end - s - 1));
            s = end + 1;
        } else {
            int hi = spechex_nibble(s[0]), lo = spechex_nibble(s[1]);
            cr_assert(hi >= 0 && lo >= 0, "bad hex in spec bytes at \"%.8s\"", s);
            zbuf_append_byte(b, (uint8_t)(hi << 4 | lo));
            s += 2;
        }
    }
}

#endif
