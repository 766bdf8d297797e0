/* text.c: the argument syntaxes of pickle protocol 0 (decimal ints, float
 * reprs, Python 2 string reprs, raw-unicode-escape) and UTF-8 checking.
 * Protocol 0 is rare (old records); the binary opcodes never come here
 * except for the UTF-8 check.
 */
#include "pickle/pickle_int.h"

#include "common/zbuf.h"

#include <stdlib.h>
#include <string.h>

int pickle__utf8_ok(const uint8_t *p, size_t n, int allow_surrogates)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            uint8_t d = p[i + k];
            if ((d & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (d & 0x3f);
        }
        if (cp < min || cp > 0x10ffff)
            return 0;
        if (!allow_surrogates && cp >= 0xd800 && cp <= 0xdfff)
            return 0;
        i += more + 1;
    }
    return 1;
}

size_t pickle__le_minimal(const uint8_t *le, size_t n)
{
    /* A top byte is redundant when it only repeats the sign bit below it. */
    while (n > 0) {
        uint8_t top = le[n - 1];
        if (top == 0x00 && (n == 1 || !(le[n - 2] & 0x80)))
            n--;
        else if (top == 0xff && n > 1 && (le[n - 2] & 0x80))
            n--;
        else
            break;
    }
    return n;
}

int pickle__le_to_i64(const uint8_t *le, size_t n, int64_t *out)
{
    n = pickle__le_minimal(le, n);
    if (n > 8)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)le[i] << (8 * i);
    if (n > 0 && n < 8 && (le[n - 1] & 0x80))
        v |= ~(uint64_t)0 << (8 * n);
    *out = (int64_t)v;
    return 1;
}

/* Decimal digits -> minimal two's complement, little-endian. Quadratic in
 * the digit count, which PICKLE_MAX_DIGITS keeps small. */
static int digits_to_le(zv_arena *a, const uint8_t *d, size_t nd, int neg, uint8_t **le,
                        size_t *le_len)
{
    size_t cap = nd / 2 + 2; /* log256(10) < 1/2, plus a sign byte */
    uint8_t *m = zv_alloc(a, cap);
    if (!m)
        return ZE_NOMEM;
    size_t mlen = 0;
    for (size_t i = 0; i < nd; i++) {
        unsigned carry = (unsigned)(d[i] - '0');
        for (size_t j = 0; j < mlen; j++) {
            unsigned v = m[j] * 10u + carry;
            m[j] = (uint8_t)v;
            carry = v >> 8;
        }
        while (carry) {
            m[mlen++] = (uint8_t)carry;
            carry >>= 8;
        }
    }
    m[mlen++] = 0;
    if (neg) {
        unsigned carry = 1;
        for (size_t j = 0; j < mlen; j++) {
            unsigned v = (uint8_t)~m[j] + carry;
            m[j] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    *le = m;
    *le_len = pickle__le_minimal(m, mlen);
    return 0;
}

int pickle__parse_int(zv_arena *a, const uint8_t *s, size_t n, int64_t *small, uint8_t **le,
                      size_t *le_len)
{
    size_t i = 0;
    int neg = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return ZE_CORRUPT;
    if (n - i > PICKLE_MAX_DIGITS)
        return ZE_TOOBIG;
    uint64_t mag = 0;
    int over = 0;
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return ZE_CORRUPT;
        unsigned d = (unsigned)(s[k] - '0');
        if (mag > (UINT64_MAX - d) / 10)
            over = 1;
        else
            mag = mag * 10 + d;
    }
    *le_len = 0;
    if (!over && !neg && mag <= (uint64_t)INT64_MAX) {
        *small = (int64_t)mag;
        return 0;
    }
    if (!over && neg && mag <= (uint64_t)INT64_MAX + 1) {
        *small = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        return 0;
    }
    return digits_to_le(a, s + i, n - i, neg, le, le_len);
}

int pickle__parse_float(const uint8_t *s, size_t n, double *out)
{
    char buf[512];
    if (n == 0 || n >= sizeof buf || memchr(s, 0, n))
        return ZE_CORRUPT;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    *out = strtod(buf, &end);
    return end == buf + n ? 0 : ZE_CORRUPT;
}

/* One backslash escape of a Python 2 str repr, s[*i] being the character
 * after the backslash. Appends to out; returns 0 or ZE_CORRUPT. */
static int escape_one(const uint8_t *s, size_t n, size_t *i, uint8_t *out, size_t *o)
{
    static const char from[] = "\\'\"abfnrtv";
    static const char to[] = "\\'\"\a\b\f\n\r\t\v";
    uint8_t c = s[(*i)++];
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        out[(*o)++] = (uint8_t)to[hit - from];
    } else if (c >= '0' && c <= '7') {
        unsigned v = c - '0';
        for (int k = 0; k < 2 && *i < n && s[*i] >= '0' && s[*i] <= '7'; k++)
            v = v * 8 + (unsigned)(s[(*i)++] - '0');
        out[(*o)++] = (uint8_t)v;
    } else if (c == 'x') {
        if (n - *i < 2 || zhex_digit(s[*i]) < 0 || zhex_digit(s[*i + 1]) < 0)
            return ZE_CORRUPT;
        out[(*o)++] = (uint8_t)(zhex_digit(s[*i]) * 16 + zhex_digit(s[*i + 1]));
        *i += 2;
    } else if (c != '\n') {
        out[(*o)++] = '\\';
        out[(*o)++] = c;
    }
    return 0;
}

int pickle__escape_decode(zv_arena *a, const uint8_t *s, size_t n, uint8_t **out,
                          size_t *out_len)
{
    uint8_t *b = zv_alloc(a, n + 1);
    if (!b)
        return ZE_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            b[o++] = s[i++];
            continue;
        }
        if (++i == n)
            return ZE_CORRUPT; /* trailing backslash */
        int rc = escape_one(s, n, &i, b, &o);
        if (rc)
            return rc;
    }
    b[o] = 0;
    *out = b;
    *out_len = o;
    return 0;
}

int pickle__raw_unicode_decode(zv_arena *a, const uint8_t *s, size_t n, uint8_t **out,
                               size_t *out_len)
{
    /* Worst growth: a latin-1 byte becomes 2 UTF-8 bytes; escapes shrink. */
    if (n > (SIZE_MAX - 1) / 2)
        return ZE_TOOBIG;
    uint8_t *b = zv_alloc(a, 2 * n + 1);
    if (!b)
        return ZE_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i++];
        if (c != '\\' || i == n || (s[i] != 'u' && s[i] != 'U')) {
            o += zv_utf8_put(b + o, c);
            continue;
        }
        size_t count = s[i++] == 'u' ? 4 : 8;
        if (n - i < count)
            return ZE_CORRUPT;
        uint32_t cp = 0;
        for (size_t k = 0; k < count; k++) {
            int h = zhex_digit(s[i++]);
            if (h < 0 || cp > 0x10ffff)
                return ZE_CORRUPT;
            cp = cp * 16 + (uint32_t)h;
        }
        if (cp > 0x10ffff)
            return ZE_CORRUPT;
        o += zv_utf8_put(b + o, cp);
    }
    b[o] = 0;
    *out = b;
    *out_len = o;
    return 0;
}
