/* test_badserver.c: a scripted fake server sends what a broken or hostile
 * peer might; the client must fail the connect cleanly with the right code. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "fake.h"
#include "proto/proto.h"

/* Connect to the scripted server; the connect's status, and its message in
 * err when err is not NULL. */
static int try_connect_err(const void *bytes, size_t len, int hangup, zerr *err)
{
    fake_server s;
    fake_start(&s, bytes, len, hangup);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s.port);
    zcl_opts o;
    zcl_opts_init(&o);
    o.timeout_ms = 3000;
    o.max_frame = 1 << 20;
    zcl_client *c = NULL;
    zerr mine = {0};
    int rc = zcl_open_sync(addr, &o, &c, err ? err : &mine);
    if (rc == 0)
        zcl_free(c);
    fake_end(&s);
    return rc;
}

static int try_connect(const void *bytes, size_t len, int hangup)
{
    return try_connect_err(bytes, len, hangup, NULL);
}

Test(client_badserver, old_protocol_announcement)
{
    const uint8_t b[] = {0, 0, 0, 2, 'Z', '4'};
    cr_expect_eq(try_connect(b, sizeof b, 0), ZE_PROTO);
}

Test(client_badserver, unknown_encoding_letter)
{
    const uint8_t b[] = {0, 0, 0, 2, 'X', '5'};
    cr_expect_eq(try_connect(b, sizeof b, 0), ZE_PROTO);
}

Test(client_badserver, frame_over_the_limit)
{
    const uint8_t b[] = {0, 0, 0, 2, 'Z', '5', 0x7f, 0xff, 0xff, 0xff};
    cr_expect_eq(try_connect(b, sizeof b, 0), ZE_TOOBIG);
}

Test(client_badserver, garbage_instead_of_a_pickle)
{
    const uint8_t b[] = {0, 0, 0, 2, 'Z', '5', 0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef};
    int rc = try_connect(b, sizeof b, 0);
    cr_expect(rc == ZE_PROTO || rc == ZE_CORRUPT, "got %s", zerr_name(rc));
}

/* A well-formed reply to msgid 7, which nobody asked for. */
Test(client_badserver, reply_to_unknown_msgid)
{
    const uint8_t b[] = {0, 0, 0, 2, 'M', '5', 0, 0, 0, 10,
                         0x94, 0x07, 0x00, 0xa6, '.', 'r', 'e', 'p', 'l', 'y', 0xc0};
    uint8_t fixed[sizeof b];
    memcpy(fixed, b, sizeof b);
    fixed[9] = (uint8_t)(sizeof b - 10); /* payload length */
    cr_expect_eq(try_connect(fixed, sizeof fixed, 0), ZE_PROTO);
}

Test(client_badserver, hangup_mid_frame)
{
    const uint8_t b[] = {0, 0, 0, 2, 'Z', '5', 0, 0, 0, 30, 0x80, 0x03};
    cr_expect_eq(try_connect(b, sizeof b, 1), ZE_CLOSED);
}

Test(client_badserver, nobody_listening)
{
    zcl_addr a;
    cr_assert_eq(zcl_addr_parse("/nonexistent/zeo.sock", 0, &a, NULL), 0);
    zcl_client *c;
    cr_assert_eq(zcl_new(NULL, &a, NULL, &c, NULL), 0);
    zerr err = {0};
    cr_expect_eq(zcl_connect_sync(c, &err), ZE_IO);
    cr_expect_neq(err.msg[0], '\0');
    zcl_free(c);
}

/* The announcement, then the server call name(args): the client checks the
 * arguments with proto's checks, and the connect fails with ZE_PROTO naming
 * the argument. */
static void bad_server_call(const char *name, zv *args, const char *why)
{
    zbuf b = ZBUF_INIT;
    cr_assert_eq(zbuf_append(&b, "\0\0\0\2M5", 6), 0);
    cr_assert_eq(proto_encode_async(PROTO_MSGPACK, &b, name, args, NULL), 0);
    zerr err = {0};
    cr_expect_eq(try_connect_err(b.data, b.len, 0, &err), ZE_PROTO);
    cr_expect(strstr(err.msg, why), "%s: got \"%s\"", name, err.msg);
    zbuf_free(&b);
}

Test(client_badserver, malformed_server_calls)
{
    zv_arena *a = zv_arena_new();
    bad_server_call("invalidateTransaction", zv_tuple2(a, zv_bytes(a, "abc", 3), zv_list(a, 0)),
                    "malformed invalidateTransaction from server: argument 1 must be 8 bytes "
                    "(a tid), not bytes of length 3");
    bad_server_call("invalidateTransaction", zv_tuple2(a, zv_oid(a, 1), zv_int(a, 5)),
                    "argument 2 must be list, not int");
    bad_server_call("info", zv_tuple(a, 0), "malformed info from server: takes 1 argument, got 0");
    zv *one = zv_tuple(a, 1);
    one->u.seq.items[0] = zv_none(a);
    bad_server_call("info", one, "argument 1 must be dict, not None");
    zv_arena_free(a);
}
