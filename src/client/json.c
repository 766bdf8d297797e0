/* json.c: a small JSON reader for the ruok status (objects of objects of
 * numbers, strings, booleans and null), into zv values. */
#include "client/client.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

typedef struct jreader {
    const char *start, *p, *end;
    zv_arena *a;
    zerr *err;
} jreader;

static void skip_ws(jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int fail(jreader *r, const char *what)
{
    return zerr_set(r->err, ZE_PROTO, "bad JSON at offset %zu: %s", (size_t)(r->p - r->start),
                    what);
}

static int parse_value(jreader *r, int depth, zv **out);

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
                   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                   : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 16;
        if (d == 16)
            return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

/* UTF-8 encode a code point (surrogates are kept as they come: the status
 * text is ASCII in practice). */
static size_t put_utf8(char *o, unsigned cp)
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
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

static int parse_string(jreader *r, zv **out)
{
    r->p++; /* opening quote */
    char *buf = zv_alloc(r->a, (size_t)(r->end - r->p) + 1);
    size_t n = 0;
    if (!buf)
        return zerr_set(r->err, ZE_NOMEM, "out of memory");
    while (r->p < r->end && *r->p != '"') {
        char ch = *r->p++;
        if (ch != '\\') {
            buf[n++] = ch;
            continue;
        }
        if (r->p >= r->end)
            break;
        char e = *r->p++;
        unsigned cp;
        switch (e) {
        case 'n': buf[n++] = '\n'; break;
        case 't': buf[n++] = '\t'; break;
        case 'r': buf[n++] = '\r'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'u':
            if (r->end - r->p < 4 || !hex4(r->p, &cp))
                return fail(r, "bad \\u escape");
            r->p += 4;
            n += put_utf8(buf + n, cp);
            break;
        default: buf[n++] = e; break;
        }
    }
    if (r->p >= r->end)
        return fail(r, "unterminated string");
    r->p++;
    *out = zv_str(r->a, buf, n);
    return *out ? 0 : zerr_set(r->err, ZE_NOMEM, "out of memory");
}

static int parse_number(jreader *r, zv **out)
{
    char *end;
    const char *start = r->p;
    int is_float = 0;
    for (const char *q = r->p; q < r->end && strchr("+-0123456789.eE", *q); q++)
        if (*q == '.' || *q == 'e' || *q == 'E')
            is_float = 1;
    if (is_float) {
        double d = strtod(start, &end);
        *out = zv_float(r->a, d);
    } else {
        long long v = strtoll(start, &end, 10);
        *out = zv_int(r->a, v);
    }
    if (end == start)
        return fail(r, "bad number");
    r->p = end;
    return *out ? 0 : zerr_set(r->err, ZE_NOMEM, "out of memory");
}

static int parse_word(jreader *r, zv **out)
{
    static const struct {
        const char *word;
        int kind; /* 0 null, 1 true, 2 false */
    } words[] = {{"null", 0}, {"true", 1}, {"false", 2}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(r->end - r->p) >= n && !memcmp(r->p, words[i].word, n)) {
            r->p += n;
            *out = words[i].kind ? zv_bool(r->a, words[i].kind == 1) : zv_none(r->a);
            return *out ? 0 : zerr_set(r->err, ZE_NOMEM, "out of memory");
        }
    }
    return fail(r, "unexpected character");
}

/* Members of an object or items of an array, collected then copied into a
 * container of the right size. */
static int parse_container(jreader *r, int depth, int object, zv **out)
{
    size_t n = 0, cap = 8;
    zv **items = malloc(cap * sizeof *items);
    int rc = items ? 0 : zerr_set(r->err, ZE_NOMEM, "out of memory");
    char close = object ? '}' : ']';
    r->p++;
    skip_ws(r);
    int first = 1;
    while (rc == 0 && (r->p >= r->end || *r->p != close)) {
        if (!first && (r->p >= r->end || *r->p++ != ',')) {
            rc = fail(r, "expected ','");
            break;
        }
        first = 0;
        skip_ws(r);
        if (n + 2 > cap) {
            zv **more = realloc(items, (cap *= 2) * sizeof *items);
            if (!more) {
                rc = zerr_set(r->err, ZE_NOMEM, "out of memory");
                break;
            }
            items = more;
        }
        if (object) {
            if (r->p >= r->end || *r->p != '"') {
                rc = fail(r, "expected a key");
                break;
            }
            if ((rc = parse_string(r, &items[n++])) < 0)
                break;
            skip_ws(r);
            if (r->p >= r->end || *r->p++ != ':') {
                rc = fail(r, "expected ':'");
                break;
            }
        }
        rc = parse_value(r, depth + 1, &items[n++]);
        skip_ws(r);
    }
    if (rc == 0) {
        r->p++;
        *out = object ? zv_dict(r->a, n / 2) : zv_list(r->a, n);
        if (*out && n)
            memcpy((*out)->u.seq.items, items, n * sizeof *items);
        else if (!*out)
            rc = zerr_set(r->err, ZE_NOMEM, "out of memory");
    }
    free(items);
    return rc;
}

static int parse_value(jreader *r, int depth, zv **out)
{
    skip_ws(r);
    if (depth > JSON_MAX_DEPTH)
        return fail(r, "nested too deeply");
    if (r->p >= r->end)
        return fail(r, "unexpected end");
    char ch = *r->p;
    if (ch == '{' || ch == '[')
        return parse_container(r, depth, ch == '{', out);
    if (ch == '"')
        return parse_string(r, out);
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return parse_number(r, out);
    return parse_word(r, out);
}

int zcl_json_parse(const char *text, zv_arena *a, zv **out, zerr *err)
{
    jreader r = {text, text, text + strlen(text), a, err};
    int rc = parse_value(&r, 0, out);
    skip_ws(&r);
    if (rc == 0 && r.p != r.end)
        rc = fail(&r, "trailing data");
    return rc;
}
