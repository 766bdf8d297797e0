/* helpers.c: see helpers.h. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

ts_server th_srv;

void th_serve(void)
{
    cr_assert_eq(ts_server_start(&th_srv, ""), 0, "server did not start");
}

void th_serve_m5(void)
{
    cr_assert_eq(ts_server_start(&th_srv, "--msgpack"), 0, "server did not start");
}

void th_unserve(void)
{
    ts_server_free(&th_srv);
}

void th_record(zbuf *out, const char *text)
{
    static const char cls[] = "\x80\x03" "czeolite.test\nThing\n" ".";
    uint32_t n = (uint32_t)strlen(text);
    uint8_t hdr[7] = {0x80, 0x03, 'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
                      (uint8_t)(n >> 24)};
    zbuf_append(out, cls, sizeof cls - 1);
    zbuf_append(out, hdr, sizeof hdr);
    zbuf_append(out, text, n);
    zbuf_append_byte(out, '.');
}

int th_record_has(const zbuf *rec, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= rec->len; i++)
        if (!memcmp(rec->data + i, text, n))
            return 1;
    return 0;
}

zcl_client *th_connect(const ts_server *s, const zcl_opts *opts)
{
    zcl_opts o;
    if (opts)
        o = *opts;
    else
        zcl_opts_init(&o);
    zcl_client *c = NULL;
    zerr err = {0};
    int rc = zcl_open_sync(s->addr, &o, &c, &err);
    cr_assert_eq(rc, 0, "connect to %s: %s", s->addr, err.msg);
    return c;
}

uint64_t th_new_oid(zcl_client *c)
{
    uint64_t oid;
    size_t got = 0;
    zerr err = {0};
    cr_assert_eq(zcl_new_oids_sync(c, 1, &oid, &got, &err), 0, "new_oids: %s", err.msg);
    cr_assert_eq(got, 1);
    return oid;
}

uint64_t th_commit(zcl_client *c, const uint64_t *oids, const uint64_t *serials, size_t n,
                   const char *text)
{
    zerr err = {0};
    zbuf rec = ZBUF_INIT;
    th_record(&rec, text);
    cr_assert_eq(zcl_tpc_begin(c, "tester", "th_commit", NULL), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(zcl_store(c, oids[i], serials ? serials[i] : 0, rec.data, rec.len), 0);
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "vote: %s", err.msg);
    uint64_t tid = 0;
    cr_assert_eq(zcl_tpc_finish_sync(c, &tid, &err), 0, "finish: %s", err.msg);
    cr_assert_neq(tid, 0);
    zbuf_free(&rec);
    return tid;
}
