/* tjson.c: a small recursive-descent JSON parser (manifests are trusted input). */
#include "tjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *p, *end; } rd;

static void ws(rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static tj *node(tj_type t)
{
    tj *v = calloc(1, sizeof *v);
    if (v)
        v->type = t;
    return v;
}

static int put_utf8(char *o, unsigned c)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 63)); return 2; }
    o[0] = (char)(0xe0 | c >> 12);
    o[1] = (char)(0x80 | ((c >> 6) & 63));
    o[2] = (char)(0x80 | (c & 63));
    return 3;
}

static char *str(rd *r)
{
    if (r->p >= r->end || *r->p != '"')
        return NULL;
    r->p++;
    const char *s = r->p;
    while (r->p < r->end && *r->p != '"')
        r->p += *r->p == '\\' ? 2 : 1;
    if (r->p >= r->end)
        return NULL;
    char *out = malloc((size_t)(r->p - s) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *q = s; q < r->p; q++) {
        if (*q != '\\') {
            *o++ = *q;
            continue;
        }
        q++;
        switch (*q) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned c = 0;
            sscanf(q + 1, "%4x", &c);
            q += 4;
            o += put_utf8(o, c);
            break;
        }
        default: *o++ = *q;
        }
    }
    *o = 0;
    r->p++;
    return out;
}

static tj *value(rd *r);

static int add(tj *v, tj *item)
{
    tj **n = realloc(v->items, (v->n + 1) * sizeof *n);
    if (!n)
        return -1;
    v->items = n;
    v->items[v->n++] = item;
    return 0;
}

static tj *container(rd *r, char close, int obj)
{
    tj *v = node(obj ? TJ_OBJ : TJ_ARR);
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        ws(r);
        if (obj) {
            key = str(r);
            ws(r);
            if (!key || r->p >= r->end || *r->p != ':') {
                free(key);
                goto bad;
            }
            r->p++;
        }
        tj *item = value(r);
        if (!item) {
            free(key);
            goto bad;
        }
        item->key = key;
        if (add(v, item)) {
            tj_free(item);
            goto bad;
        }
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return v;
        }
        goto bad;
    }
bad:
    tj_free(v);
    return NULL;
}

static tj *value(rd *r)
{
    ws(r);
    if (r->p >= r->end)
        return NULL;
    char c = *r->p;
    if (c == '{')
        return container(r, '}', 1);
    if (c == '[')
        return container(r, ']', 0);
    if (c == '"') {
        tj *v = node(TJ_STR);
        if (v && !(v->str = str(r))) {
            free(v);
            return NULL;
        }
        return v;
    }
    if (!strncmp(r->p, "null", 4)) {
        r->p += 4;
        return node(TJ_NULL);
    }
    if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) {
        tj *v = node(TJ_BOOL);
        v->num = c == 't';
        r->p += c == 't' ? 4 : 5;
        return v;
    }
    char *e;
    double d = strtod(r->p, &e);
    if (e == r->p)
        return NULL;
    r->p = e;
    tj *v = node(TJ_NUM);
    v->num = d;
    return v;
}

tj *tj_parse_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    rd r = {buf, buf + n};
    tj *v = value(&r);
    free(buf);
    return v;
}

void tj_free(tj *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        tj_free(v->items[i]);
    free(v->items);
    free(v->str);
    free(v->key);
    free(v);
}

tj *tj_get(const tj *obj, const char *key)
{
    if (!obj || obj->type != TJ_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->items[i]->key, key))
            return obj->items[i];
    return NULL;
}

const char *tj_gets(const tj *obj, const char *key)
{
    tj *v = tj_get(obj, key);
    return v && v->type == TJ_STR ? v->str : NULL;
}

double tj_getn(const tj *obj, const char *key)
{
    tj *v = tj_get(obj, key);
    return v && (v->type == TJ_NUM || v->type == TJ_BOOL) ? v->num : 0;
}

uint64_t tj_hex64(const char *s)
{
    return s ? strtoull(s, NULL, 16) : 0;
}

uint8_t *tj_unhex(const char *s, size_t *len)
{
    size_t n = strlen(s) / 2;
    uint8_t *out = malloc(n + 1);
    for (size_t i = 0; out && i < n; i++) {
        unsigned b;
        sscanf(s + 2 * i, "%2x", &b);
        out[i] = (uint8_t)b;
    }
    *len = n;
    return out;
}
