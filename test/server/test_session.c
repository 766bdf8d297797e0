/* Handshake, ruok, registration and the method table (spec sections 2, 3, 6, 7). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
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

TestSuite(server_session, .init = start_plain, .fini = stop, .timeout = 60);

static void handshake_and_register(proto_enc enc)
{
    tc c;
    char ann[3];
    cr_assert_eq(tc_connect(&c, srv.port, enc, ann), 0);
    cr_expect_str_eq(ann, "Z5");
    int64_t tid = tc_register(&c);
    cr_expect_eq(tid, 0, "an empty storage's last tid is z64");
    int64_t flag;
    zv *info = tc_call(&c, "get_info", zv_tuple(c.a, 0), &flag);
    cr_assert(info && flag == 0);
    cr_expect_eq(info->type, ZV_DICT);
    const zv *ifaces = zv_dict_get(info, "interfaces");
    cr_assert(ifaces && zv_is_seq(ifaces) && ifaces->u.seq.n > 0);
    cr_expect(zv_dict_get(info, "supportsUndo") && zv_truthy(zv_dict_get(info, "supportsUndo")));
    zv *last = tc_call(&c, "lastTransaction", zv_tuple(c.a, 0), &flag);
    cr_expect(last && last->type == ZV_BYTES && last->u.s.len == 8);
    tc_close(&c);
}

Test(server_session, handshake_pickle)
{
    handshake_and_register(PROTO_PICKLE);
}

Test(server_session, handshake_msgpack_on_a_z5_server)
{
    /* The client's first byte chooses the encoding (spec 2.3). */
    handshake_and_register(PROTO_MSGPACK);
}

Test(server_session, ruok_answers_json_and_closes)
{
    tc c;
    cr_assert_eq(tc_open(&c, srv.port), 0);
    uint8_t *p;
    size_t len;
    cr_assert_eq(tc_read(&c, &p, &len, TC_TIMEOUT), 1);
    free(p);
    cr_assert_eq(tc_send_raw(&c, "ruok", 4), 0);
    cr_assert_eq(tc_read(&c, &p, &len, TC_TIMEOUT), 1);
    char *json = strndup((char *)p, len);
    free(p);
    const char *keys[] = {"\"1\": {", "\"connections\": ", "\"loads\": ", "\"stores\": ",
                          "\"commits\": ", "\"aborts\": ", "\"active_txns\": ",
                          "\"lock_time\": null", "\"conflicts\": ", "\"conflicts_resolved\": ",
                          "\"start\": \"", "\"waiting\": 0", "\"timeout-thread-is-alive\": ",
                          "\"last-transaction\": \"0000000000000000\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect(strstr(json, keys[i]), "ruok lacks %s: %s", keys[i], json);
    cr_expect_eq(json[0], '{');
    cr_expect_eq(json[len - 1], '}');
    free(json);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "ruok must close the connection");
    tc_close(&c);
}

Test(server_session, bad_versions_close_without_data)
{
    const char *bad[] = {"Z4", "Z3101", "Z6", "X5", "GET / HTTP/1.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tc c;
        cr_assert_eq(tc_open(&c, srv.port), 0);
        uint8_t *p;
        size_t len;
        cr_assert_eq(tc_read(&c, &p, &len, TC_TIMEOUT), 1);
        free(p);
        tc_send_raw(&c, bad[i], strlen(bad[i]));
        cr_expect_eq(tc_read(&c, &p, &len, TC_TIMEOUT), 0, "%s: expected a silent close", bad[i]);
        tc_close(&c);
    }
}

Test(server_session, unknown_storage_is_a_value_error_and_retry_works)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    int64_t flag;
    zv *r = tc_call(&c, "register", tv_tuple(c.a, 2, tv_str(c.a, "nosuch"), zv_bool(c.a, 0)),
                    &flag);
    cr_assert(r);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "builtins.ValueError");
    cr_expect_geq(tc_register(&c), 0, "the connection stays usable after a failed register");
    tc_close(&c);
}

Test(server_session, methods_before_register_close)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    tc_send(&c, NULL, 0, "lastTransaction", zv_tuple(c.a, 0));
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
}

Test(server_session, second_register_and_unknown_methods_close)
{
    const char *names[] = {"register", "no_such_method", ".reply"};
    for (size_t i = 0; i < 3; i++) {
        tc c;
        cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
        cr_assert_geq(tc_register(&c), 0);
        tc_send(&c, NULL, 0, names[i], tv_tuple(c.a, 2, tv_str(c.a, "1"), zv_bool(c.a, 0)));
        cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "%s must close the connection", names[i]);
        tc_close(&c);
    }
}

Test(server_session, heartbeat_is_ignored_and_msgids_are_echoed)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    zbuf b = ZBUF_INIT;
    cr_assert_eq(proto_encode_reply(PROTO_PICKLE, &b, zv_int(c.a, -1), zv_none(c.a), NULL), 0);
    cr_assert_eq(send(c.fd, b.data, b.len, 0), (ssize_t)b.len);
    zbuf_free(&b);
    /* A string msgid and a tuple msgid come back unchanged. */
    zv *ids[] = {tv_str(c.a, "abc"), tv_tuple(c.a, 2, tv_oid(c.a, 0), tv_oid(c.a, 9))};
    for (int i = 0; i < 2; i++) {
        tc_send(&c, ids[i], 0, "ping", zv_tuple(c.a, 0));
        proto_msg m;
        cr_assert_eq(tc_recv(&c, &m, TC_TIMEOUT), 1, "no reply after a heartbeat");
        cr_expect_str_eq(m.name, ".reply");
        cr_expect(zv_equal(m.msgid, ids[i]), "msgid not echoed");
        cr_expect_eq(m.args->type, ZV_NONE);
    }
    tc_close(&c);
}

Test(server_session, new_oids_clamps_and_never_repeats)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    int64_t flag;
    zv *a = tc_call(&c, "new_oids", zv_tuple(c.a, 0), &flag);
    zv *b = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 3)), &flag);
    zv *d = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 1000)), &flag);
    cr_assert(a && b && d);
    cr_expect_eq(a->u.seq.n, 100);
    cr_expect_eq(b->u.seq.n, 3);
    cr_expect_eq(d->u.seq.n, 100);
    uint64_t last = 0;
    zv *all[] = {a, b, d};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < all[k]->u.seq.n; i++) {
            uint64_t oid = tv_u64(all[k]->u.seq.items[i]);
            cr_expect_gt(oid, last, "oids must be new and increasing");
            last = oid;
        }
    tc_close(&c);
}

Test(server_session, load_of_a_missing_oid_is_poskeyerror)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_MSGPACK, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    int64_t flag;
    zv *r = tc_load_current(&c, 0x63, &flag);
    cr_assert(r);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.POSKeyError");
    cr_expect_eq(tv_u64(r->u.seq.items[1]->u.seq.items[0]), 0x63);
    tc_close(&c);
}
