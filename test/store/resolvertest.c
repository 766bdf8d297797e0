/* resolvertest.c: the store resolver suites' hook and fixture. */
#include "resolvertest.h"

#include <stdio.h>
#include <stdlib.h>

st_fixture rt_f;
counter_hook rt_hook;



static int value_of(zslice r, long long *v)
{
    char buf[32];
    if (r.len < 3 || r.len >= sizeof buf || memcmp(r.p, "N:", 2))
        return -1;
    memcpy(buf, r.p, r.len);
    buf[r.len] = 0;
    *v = strtoll(buf + 2, NULL, 10);
    return 0;
}

int rt_hook_known(void *data, const uint8_t *rec, size_t len)
{
    counter_hook *h = data;
    h->known_calls++;
    return len >= 2 && !memcmp(rec, "N:", 2);
}

static void keep(char *dst, zslice r)
{
    snprintf(dst, 32, "%.*s", (int)r.len, (const char *)r.p);
}

int rt_hook_resolve(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                        zbuf *out)
{
    counter_hook *h = data;
    long long o, c, n;
    h->calls++;
    keep(h->old, old);
    keep(h->committed, committed);
    keep(h->new_rec, new_rec);
    if (h->refuse || value_of(old, &o) || value_of(committed, &c) || value_of(new_rec, &n))
        return 0;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "N:%lld", c + n - o);
    return zbuf_append(out, buf, (size_t)len) == 0;
}

void rt_setup(void)
{
    memset(&rt_hook, 0, sizeof rt_hook);
    store_options opt = {.create = 1, .no_sync = 1, .resolver = {rt_hook_known, rt_hook_resolve, &rt_hook}};
    stt_open(&rt_f, &opt);
}

void rt_teardown(void)
{
    stt_done(&rt_f);
}

void rt_expect(uint64_t oid, const char *text)
{
    char buf[64];
    cr_assert_eq(stt_load(rt_f.r, oid, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, text);
}

void rt_store1(store_txn *t, uint64_t oid, uint64_t serial, const char *text)
{
    zerr e;
    cr_assert_eq(store_txn_store(t, oid, serial, text, strlen(text), &e), 0, "%s", e.msg);
}
