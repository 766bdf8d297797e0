/* tjson.c: the manifests' tj trees, read with the common JSON reader
 * (common/zjson.h) and copied into malloc'd nodes the tests free one by one. */
#include "tjson.h"

#include <stdlib.h>
#include <string.h>

#include "common/zjson.h"
#include "jsonmini.h"
#include "testutil.h"

static tj *from_zv(const zv *v);

/* Items of an array, or members of an object (named by key), into t. */
static int copy_items(tj *t, const zv *v)
{
    int obj = v->type == ZV_DICT;
    t->n = v->u.seq.n;
    if (t->n && !(t->items = calloc(t->n, sizeof *t->items)))
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        const zv *item = obj ? v->u.seq.items[2 * i + 1] : v->u.seq.items[i];
        if (!(t->items[i] = from_zv(item)))
            return -1;
        if (obj && !(t->items[i]->key = strdup((const char *)v->u.seq.items[2 * i]->u.s.p)))
            return -1;
    }
    return 0;
}

static tj *from_zv(const zv *v)
{
    tj *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    int ok = 1;
    switch (v->type) {
    case ZV_BOOL: t->type = TJ_BOOL; t->num = v->u.b; break;
    case ZV_INT: t->type = TJ_NUM; t->num = (double)v->u.i; break;
    case ZV_FLOAT: t->type = TJ_NUM; t->num = v->u.f; break;
    case ZV_STR:
        t->type = TJ_STR;
        ok = (t->str = strdup((const char *)v->u.s.p)) != NULL;
        break;
    case ZV_LIST: t->type = TJ_ARR; ok = copy_items(t, v) == 0; break;
    case ZV_DICT: t->type = TJ_OBJ; ok = copy_items(t, v) == 0; break;
    default: t->type = TJ_NULL; break;
    }
    if (!ok) {
        tj_free(t);
        return NULL;
    }
    return t;
}

tj *tj_parse_file(const char *path)
{
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    zv_arena *a = zv_arena_new();
    zv *v;
    tj *t = NULL;
    if (text && a && zjson_parse(text, len, a, &v, NULL) == 0)
        t = from_zv(v);
    zv_arena_free(a);
    free(text);
    return t;
}

void tj_free(tj *v)
{
    if (!v)
        return;
    for (size_t i = 0; v->items && i < v->n; i++)
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
    return json_unhex(s, len);
}
