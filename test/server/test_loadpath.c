/* loadBefore has two ways through the server: the direct one, for a call in
 * exactly the bytes the reference clients write, and the general dispatch
 * for any other spelling of the same call. Both give the same reply bytes
 * for every outcome (current revision, older revision, none before, missing
 * oid; int and (oid, tid) msgids; both encodings), and the direct one keeps
 * the general one's rules: an async call gets no reply, msgid -1 is a
 * heartbeat, nothing loads before register. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static th_server srv;

static void start_plain(void)
{
    cr_assert_eq(th_start(&srv, NULL), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_loadpath, .init = start_plain, .fini = stop, .timeout = 60);

#define MAXTID 0x7fffffffffffffffULL

/* loadBefore(oid, tid) as the reference clients write it; 1 when the
 * direct path takes it (not async, msgid not -1). */
static int direct_call(tc *c, const zv *msgid, int async, uint64_t oid, uint64_t tid,
                       zbuf *out)
{
    zbuf_reset(out);
    cr_assert_eq(proto_encode_call(c->enc, out, msgid, async, "loadBefore",
                                   tv_tuple(c->a, 2, tv_oid(c->a, oid), tv_oid(c->a, tid)), NULL),
                 0);
    memmove(out->data, out->data + 4, out->len - 4);   /* the payload alone */
    out->len -= 4;
    proto_load_call lc;
    return proto_decode_load_call(c->enc, out->data, out->len, &lc);
}

/* The same call spelled otherwise (the arguments as MARK ... TUPLE, or as an
 * array 16), which only the general dispatch reads. */
static void general_call(tc *c, const zv *msgid, uint64_t oid, uint64_t tid, zbuf *out)
{
    zbuf direct = ZBUF_INIT;
    cr_assert(direct_call(c, msgid, 0, oid, tid, &direct));
    const uint8_t *name = memmem(direct.data, direct.len, "loadBefore", 10);
    cr_assert_not_null(name);
    size_t at = (size_t)(name - direct.data) + 10;
    zbuf_reset(out);
    zbuf_append(out, direct.data, at);
    if (c->enc == PROTO_PICKLE) {
        /* ( C oid C tid t t . instead of C oid C tid TUPLE2 t . */
        zbuf_append_byte(out, '(');
        zbuf_append(out, direct.data + at, direct.len - at - 3);
        zbuf_append(out, "tt.", 3);
    } else {
        /* array 16 of 2 instead of fixarray 2 */
        cr_assert_eq(direct.data[at], 0x92);
        zbuf_append(out, "\xdc\x00\x02", 3);
        zbuf_append(out, direct.data + at + 1, direct.len - at - 1);
    }
    zbuf_free(&direct);
    proto_load_call lc;
    proto_msg m;
    cr_assert_eq(proto_decode_load_call(c->enc, out->data, out->len, &lc), 0);
    cr_assert_eq(proto_decode(c->enc, out->data, out->len, c->a, &m, NULL), 0);
    cr_assert_str_eq(m.name, "loadBefore");
}

/* Send payload, return the reply's payload (malloc'd) in *reply. */
static size_t exchange(tc *c, const zbuf *payload, uint8_t **reply)
{
    size_t len;
    cr_assert_eq(tc_send_raw(c, payload->data, payload->len), 0);
    cr_assert_eq(tc_read(c, reply, &len, TC_TIMEOUT), 1, "no reply");
    return len;
}

/* Both ways give the same bytes; the reply decodes to msgid, flag. */
static void both_ways(tc *c, const zv *msgid, uint64_t oid, uint64_t tid, int64_t want_flag)
{
    zbuf d = ZBUF_INIT, g = ZBUF_INIT;
    uint8_t *rd, *rg;
    cr_assert(direct_call(c, msgid, 0, oid, tid, &d));
    general_call(c, msgid, oid, tid, &g);
    size_t nd = exchange(c, &d, &rd), ng = exchange(c, &g, &rg);
    cr_assert_eq(nd, ng, "oid %llx tid %llx: %zu and %zu bytes", (unsigned long long)oid,
                 (unsigned long long)tid, nd, ng);
    cr_assert_arr_eq(rd, rg, nd, "oid %llx tid %llx", (unsigned long long)oid,
                     (unsigned long long)tid);
    proto_msg m;
    cr_assert_eq(proto_decode(c->enc, rd, nd, c->a, &m, NULL), 0);
    cr_assert(zv_equal(m.msgid, msgid));
    cr_assert_eq(m.flag, want_flag);
    free(rd);
    free(rg);
    zbuf_free(&d);
    zbuf_free(&g);
}

static void every_outcome(proto_enc enc)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, enc, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    int64_t flag;
    zv *oids = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 1)), &flag);
    cr_assert(oids && flag == 0 && oids->u.seq.n == 1);
    uint64_t oid = tv_u64(oids->u.seq.items[0]);
    uint64_t t1 = tc_commit_one(&c, 1, oid, 0, "first");
    uint64_t t2 = tc_commit_one(&c, 2, oid, t1, "second");
    cr_assert(t1 && t2 > t1);
    zv *ids[] = {tv_int(c.a, 7), tv_int(c.a, 300), tv_int(c.a, 70000),
                 tv_tuple(c.a, 2, tv_oid(c.a, oid), tv_oid(c.a, MAXTID))};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        both_ways(&c, ids[i], oid, MAXTID, 0);   /* current: end None */
        both_ways(&c, ids[i], oid, t2, 0);       /* older: end t2 */
        both_ways(&c, ids[i], oid, t1, 0);       /* none before t1: None */
        both_ways(&c, ids[i], oid + 999, MAXTID, 2);   /* POSKeyError */
    }
    /* The current revision's reply is ("second", t2, None). */
    zv *r = tc_load_current(&c, oid, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3);
    cr_expect_eq(r->u.seq.items[0]->u.s.len, 6);
    cr_expect_arr_eq(r->u.seq.items[0]->u.s.p, "second", 6);
    cr_expect_eq(tv_u64(r->u.seq.items[1]), t2);
    cr_expect_eq(r->u.seq.items[2]->type, ZV_NONE);
    tc_close(&c);
}

Test(server_loadpath, both_ways_alike_pickle)
{
    every_outcome(PROTO_PICKLE);
}

Test(server_loadpath, both_ways_alike_msgpack)
{
    every_outcome(PROTO_MSGPACK);
}

Test(server_loadpath, async_and_heartbeat_loads_get_no_reply)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    int64_t flag;
    zv *oids = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 1)), &flag);
    uint64_t oid = tv_u64(oids->u.seq.items[0]);
    cr_assert(tc_commit_one(&c, 1, oid, 0, "data"));
    zbuf p = ZBUF_INIT;
    cr_assert_not(direct_call(&c, tv_int(c.a, 5000), 1, oid, MAXTID, &p));   /* async */
    cr_assert_eq(tc_send_raw(&c, p.data, p.len), 0);
    cr_assert_not(direct_call(&c, tv_int(c.a, -1), 0, oid, MAXTID, &p));     /* heartbeat's id */
    cr_assert_eq(tc_send_raw(&c, p.data, p.len), 0);
    zbuf_free(&p);
    /* The next message is ping's reply: neither load was answered. */
    int64_t id = tc_send(&c, NULL, 0, "ping", zv_tuple(c.a, 0));
    proto_msg m;
    int64_t got;
    cr_assert_eq(tc_recv(&c, &m, TC_TIMEOUT), 1);
    cr_expect_str_eq(m.name, ".reply");
    cr_expect(zv_get_int(m.msgid, &got) && got == id, "a reply to a load came first");
    tc_close(&c);
}

Test(server_loadpath, no_load_before_register)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    zbuf p = ZBUF_INIT;
    cr_assert(direct_call(&c, tv_int(c.a, 1), 0, 1, MAXTID, &p));
    cr_assert_eq(tc_send_raw(&c, p.data, p.len), 0);
    zbuf_free(&p);
    cr_expect_eq(tc_wait_closed(&c, TC_TIMEOUT), 1, "an unregistered load closes");
    tc_close(&c);
}
