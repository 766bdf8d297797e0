/* zjson.c: recursive-descent JSON reader into zv trees. */
#include "common/zjson.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/zbuf.h"

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

static int nomem(reader *r)
{
    return zerr_set(r->err, ZE_NOMEM, "json: out of memory");
}

static void skip_ws(reader *r)
{
    while (r->pos < r->len && r->s[r->pos] && strchr(" \t\r\n", r->s[r->pos]))
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

static int hex4(reader *r, unsigned *out)
{
    if (r->len - r->pos < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = zhex_digit(r->s[r->pos++]);
        if (d < 0)
            return 0;
        v = (v << 4) | (unsigned)d;
    }
    *out = v;
    return 1;
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
    *olen += zv_utf8_put((uint8_t *)o + *olen, cp);
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
        return nomem(r);
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
    /* The decoded text is already in the arena: wrap it rather than copy. */
    zv *v = zv_alloc(r->a, sizeof *v);
    if (!v)
        return nomem(r);
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
    while (r->pos < r->len && r->s[r->pos] && strchr("+-0123456789.eE", r->s[r->pos])) {
        if (strchr(".eE", r->s[r->pos]))
            integral = 0;
        r->pos++;
    }
    /* strtoll/strtod need a NUL-terminated copy: text is length-bounded. */
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
    return *out ? 0 : nomem(r);
}

static int parse_value(reader *r, zv **out, int depth);

/* Items of an array (keys and values of an object) collected in a growing
 * arena array, then copied into a container of the right size. */
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
            return nomem(r);
        if (it->n)
            memcpy(nv, it->v, it->n * sizeof(zv *));
        it->v = nv;
        it->cap = cap;
    }
    it->v[it->n++] = v;
    return 0;
}

/* One array item, or one object member (key and value), into it. */
static int parse_item(reader *r, items *it, int is_obj, int depth)
{
    zv *v;
    int rc;
    skip_ws(r);
    if (is_obj) {
        if (r->pos >= r->len || r->s[r->pos] != '"')
            return bad(r, "object key must be a string");
        if ((rc = parse_string(r, &v)) || (rc = items_add(r, it, v)))
            return rc;
        skip_ws(r);
        if (r->pos >= r->len || r->s[r->pos++] != ':')
            return bad(r, "expected ':'");
    }
    if ((rc = parse_value(r, &v, depth + 1)) || (rc = items_add(r, it, v)))
        return rc;
    skip_ws(r);
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
            int rc = parse_item(r, &it, is_obj, depth);
            if (rc)
                return rc;
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
        return nomem(r);
    if (it.n)
        memcpy(c->u.seq.items, it.v, it.n * sizeof(zv *));
    *out = c;
    return 0;
}

static int parse_value(reader *r, zv **out, int depth)
{
    if (depth > ZJSON_MAX_DEPTH)
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
    return *out ? 0 : nomem(r);
}

int zjson_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err)
{
    reader r = {text, len, 0, a, err};
    zv *v = NULL;
    int rc = parse_value(&r, &v, 0);
    if (rc)
        return rc;
    skip_ws(&r);
    if (r.pos != len)
        return bad(&r, "trailing characters");
    *out = v;
    return 0;
}
