#include "pktest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "jsonmini.h"

size_t pt_bytes(const char *spec, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const char *s = spec; *s;) {
        if (*s == ' ' || *s == '\n') {
            s++;
        } else if (*s == '"') {
            const char *end = strchr(s + 1, '"');
            cr_assert_not_null(end, "unterminated quote in %s", spec);
            size_t k = (size_t)(end - s - 1);
            cr_assert_leq(n + k, cap);
            memcpy(out + n, s + 1, k);
            n += k;
            s = end + 1;
        } else {
            char pair[3] = {s[0], s[1], 0};
            char *end;
            cr_assert_leq(n + 1, cap);
            out[n++] = (uint8_t)strtoul(pair, &end, 16);
            cr_assert(*end == 0 && s[1], "bad hex near %s", s);
            s += 2;
        }
    }
    return n;
}

static zv *from_items(zv_arena *a, const zv *list, zv_type t)
{
    cr_assert(list && list->type == ZV_LIST);
    size_t n = list->u.seq.n;
    zv *v = t == ZV_TUPLE ? zv_tuple(a, n) : zv_list(a, n);
    for (size_t i = 0; i < n; i++)
        v->u.seq.items[i] = pt_from_fixture_json(a, list->u.seq.items[i]);
    return v;
}

zv *pt_from_fixture_json(zv_arena *a, const zv *j)
{
    if (j->type == ZV_LIST)
        return from_items(a, j, ZV_LIST);
    if (j->type != ZV_DICT)
        return zv_copy(a, j);
    const zv *x;
    if ((x = json_get(j, "tuple")))
        return from_items(a, x, ZV_TUPLE);
    if ((x = json_get(j, "bytes"))) {
        size_t len;
        unsigned char *b = json_unhex((const char *)x->u.s.p, &len);
        cr_assert_not_null(b);
        zv *v = zv_bytes(a, b, len);
        free(b);
        return v;
    }
    x = json_get(j, "dict");
    cr_assert(x && x->type == ZV_LIST, "unknown fixture value form");
    zv *d = zv_dict(a, x->u.seq.n);
    for (size_t i = 0; i < x->u.seq.n; i++) {
        const zv *pair = x->u.seq.items[i];
        cr_assert(pair->type == ZV_LIST && pair->u.seq.n == 2);
        d->u.seq.items[2 * i] = pt_from_fixture_json(a, pair->u.seq.items[0]);
        d->u.seq.items[2 * i + 1] = pt_from_fixture_json(a, pair->u.seq.items[1]);
    }
    return d;
}

zv *pt_tuple4(zv_arena *a, zv *a0, zv *a1, zv *a2, zv *a3)
{
    zv *t = zv_tuple(a, 4);
    cr_assert_not_null(t, "out of memory");
    t->u.seq.items[0] = a0;
    t->u.seq.items[1] = a1;
    t->u.seq.items[2] = a2;
    t->u.seq.items[3] = a3;
    return t;
}
