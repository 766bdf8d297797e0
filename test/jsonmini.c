/* jsonmini.c: fixture lookups over common/zjson.c (tests only). */
#include "jsonmini.h"

#include <stdlib.h>
#include <string.h>

#include "common/zbuf.h"

int json_parse(const char *text, size_t len, zv_arena *a, zv **out, zerr *err)
{
    return zjson_parse(text, len, a, out, err);
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
        int hi = zhex_digit(hex[2 * i]), lo = zhex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return NULL;
        }
        b[i] = (unsigned char)(hi * 16 + lo);
    }
    *len = n / 2;
    return b;
}
