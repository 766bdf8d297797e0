/* jsonmini.c: recursive-descent JSON reader into zv trees (tests only). */
#include "jsonmini.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 512

typedef struct reader {
    const char *s;
    size_t len, pos;
    zv_arena *a;
    zerr *err;
} reader;

static int bad(reader *r, const char *what)
{
    return zerr_set(r->err, ZE_CORRUPT, "json: offset %zu: %s", r->pos, what);
}

static void skip_ws(reader *r)
{
    while (r->pos < r->len && strchr(" \t\r\n", r->s[r->pos]) && r->s[r->pos])
        r->pos++;
}

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n))
        return 0;
    r->pos += n;
    return 1;
}

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(reader *r, unsigned *out)
{
    if (r->len - r->pos < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexdigit(r->s[r->pos++]);
        if (d < 0)
            return 0;
        v = (v << 4) | (unsigned)d;
    }
    *out = v;
    return 1;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* \uXXXX, joining a surrogate pair when one follows. */
static int unicode_escape(reader *r, char *o, size_t *olen)
{
    unsigned cp, lo;
    if (!hex4(r, &cp))
        return bad(r, "bad \\u escape");
    if (cp >= 0xd800 && cp < 0xdc00 && r->len - r->pos >= 6 && r->s[r->pos] == '\\' &&
        r->s[r->pos + 1] == 'u') {
        size_t save = r->pos;
        r->pos += 2;
        if (hex4(r, &lo) && lo >= 0xdc00 && lo < 0xe000)
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        else
            r->pos = save;
    }
    *olen += utf8_put(o + *olen, cp);
    return 0;
}

/* Length of the raw string body starting at r->pos, up to the closing quote. */
static int body_length(reader *r, size_t *n)
{
    for (size_t i = r->pos; i < r->len; i++) {
        if (r->s[i] == '"') {
            *n = i - r->pos;
            return 0;
        }
        if (r->s[i] == '\\')
            i++;
    }
    return bad(r, "unterminated string");
}

static int parse_string(reader *r, zv **out)
{
    size_t raw = 0;
    r->pos++; /* opening quote */
    int rc = body_length(r, &raw);
    if (rc)
        return rc;
    /* Escapes only shrink the text: \uXXXX is 6 characters, at most 4 bytes. */
    char *buf = zv_alloc(r->a, raw + 1);
    if (!buf)
        return ZE_NOMEM;
    size_t o = 0, end = r->pos + raw;
    while (r->pos < end) {
        char c = r->s[r->pos++];
        if (c != '\\') {
            buf[o++] = c;
            continue;
        }
        c = r->s[r->pos++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = c ? strchr(from, c) : NULL;
        if (hit)
            buf[o++] = to[hit - from];
        else if (c != 'u' || (rc = unicode_escape(r, buf, &o)))
            return rc ? rc : bad(r, "bad escape");
    }
    r->pos = end + 1; /* closing quote */
    buf[o] = 0;
    zv *v = zv_alloc(r->a, sizeof *v);
    if (!v)
        return ZE_NOMEM;
    *v = (zv){.type = ZV_STR};
    v->u.s.p = (const uint8_t *)buf;
    v->u.s.len = o;
    *out = v;
    return 0;
}

static int parse_number(reader *r, zv **out)
{
    size_t start = r->pos;
    int integral = 1;
    while (r->pos < r->len && strchr("+-0123456789.eE", r->s[r->pos]) && r->s[r->pos]) {
        if (strchr(".eE", r->s[r->pos]))
            integral = 0;
        r->pos++;
    }
    char tmp[64];
    size_t n = r->pos - start;
    if (n == 0 || n >= sizeof tmp)
        return bad(r, "bad number");
    memcpy(tmp, r->s + start, n);
    tmp[n] = 0;
    char *end;
    if (integral) {
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (*end || errno)
            return bad(r, "bad or out-of-range integer");
        *out = zv_int(r->a, v);
    } else {
        double d = strtod(tmp, &end);
        if (*end)
            return bad(r, "bad number");
        *out = zv_float(r->a, d);
    }
    return *out ? 0 : ZE_NOMEM;
}

static int parse_value(reader *r, zv **out, int depth);

/* Items of an array (pairs of an object) collected in a growing arena array. */
typedef struct items {
    zv **v;
    size_t n, cap;
} items;

static int items_add(reader *r, items *it, zv *v)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 8;
        zv **nv = zv_alloc(r->a, cap * sizeof(zv *));
        if (!nv)
            return ZE_NOMEM;
        if (it->n)
            memcpy(nv, it->v, it->n * sizeof(zv *));
        it->v = nv;
        it->cap = cap;
    }
    it->v[it->n++] = v;
    return 0;
}

static int parse_container(reader *r, zv **out, int depth)
{
    int is_obj = r->s[r->pos++] == '{';
    char close = is_obj ? '}' : ']';
    items it = {0};
    skip_ws(r);
    if (r->pos < r->len && r->s[r->pos] == close) {
        r->pos++;
    } else {
        for (;;) {
            zv *v;
            skip_ws(r);
            if (is_obj && (r->pos >= r->len || r->s[r->pos] != '"'))
                return bad(r, "object key must be a string");
            int rc = is_obj ? parse_string(r, &v) : parse_value(r, &v, depth + 1);
            if (!rc)
                rc = items_add(r, &it, v);
            if (rc)
                return rc;
            skip_ws(r);
            if (is_obj) {
                if (r->pos >= r->len || r->s[r->pos++] != ':')
                    return bad(r, "expected ':'");
                rc = parse_value(r, &v, depth + 1);
                if (!rc)
                    rc = items_add(r, &it, v);
                if (rc)
                    return rc;
                skip_ws(r);
            }
            if (r->pos >= r->len)
                return bad(r, "unterminated container");
            char c = r->s[r->pos++];
            if (c == close)
                break;
            if (c != ',')
                return bad(r, "expected ',' or end of container");
        }
    }
    zv *c = is_obj ? zv_dict(r->a, it.n / 2) : zv_list(r->a, it.n);
    if (!c)
        return ZE_NOMEM;
    if (it.n)
        memcpy(c->u.seq.items, it.v, it.n * sizeof(zv *));
    *out = c;
    return 0;
}

static int parse_value(reader *r, zv **out, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return bad(r, "nested too deep");
    skip_ws(r);
    if (r->pos >= r->len)
        return bad(r, "unexpected end");
    char c = r->s[r->pos];
    if (c == '{' || c == '[')
        return parse_container(r, out, depth);
    if (c == '"')
        return parse_string(r, out);
    if (literal(r, "true"))
        *out = zv_bool(r->a, 1);
    else if (literal(r, "false"))
        *out = zv_bool(r->a, 0);
    else if (literal(r, "null"))
        *out = zv_none(r->a);
    else
        return parse_number(r, out);
    return *out ? 0 : ZE_NOMEM;
}

int json_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err)
{
    reader r = {text, len, 0, a, err};
    int rc = parse_value(&r, out, 0);
    if (rc)
        return rc;
    skip_ws(&r);
    return r.pos == len ? 0 : bad(&r, "trailing characters");
}

const zv *json_get(const zv *obj, const char *key)
{
    return zv_dict_get(obj, key);
}

const char *json_str(const zv *obj, const char *key)
{
    const zv *v = zv_dict_get(obj, key);
    return v && v->type == ZV_STR ? (const char *)v->u.s.p : NULL;
}

unsigned char *json_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2)
        return NULL;
    unsigned char *b = malloc(n / 2 + 1);
    if (!b)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexdigit(hex[2 * i]), lo = hexdigit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return NULL;
        }
        b[i] = (unsigned char)(hi * 16 + lo);
    }
    *len = n / 2;
    return b;
}
