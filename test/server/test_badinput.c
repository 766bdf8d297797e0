/* Hostile and broken clients: each is closed with a log line or gets an
 * error reply, and the server goes on serving everyone else. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include "helpers.h"

static th_server srv;

static void start(void)
{
    const char *extra[] = {"--handshake-timeout", "1", "--max-frame", "1048576", NULL};
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_badinput, .init = start, .fini = stop, .timeout = 90);

/* Someone else can still commit and load. */
static void still_serving(void)
{
    static int64_t txn = 1000;
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0, "server stopped accepting");
    cr_assert_geq(tc_register(&c), 0, "server stopped registering");
    int64_t flag;
    zv *oids = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 1)), &flag);
    cr_assert(oids && flag == 0);
    uint64_t oid = tv_u64(oids->u.seq.items[0]);
    cr_expect_neq(tc_commit_one(&c, txn++, oid, 0, "still-works"), 0, "commits broke");
    tc_close(&c);
}

static tc registered(void)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    return c;
}

Test(server_badinput, garbage_before_the_handshake)
{
    tc c;
    cr_assert_eq(tc_open(&c, srv.port), 0);
    const char junk[] = "\x00\x00\x00\x05" "hello" "\x00\x00\x00\x03" "abc";
    cr_assert_eq(send(c.fd, junk, sizeof junk - 1, 0), (ssize_t)sizeof junk - 1);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
    still_serving();
}

Test(server_badinput, garbage_after_the_handshake)
{
    tc c = registered();
    cr_assert_eq(tc_send_raw(&c, "\x80\x03\xff\xfe not a pickle", 17), 0);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
    still_serving();
}

Test(server_badinput, pickle_globals_are_refused)
{
    /* (1, False, 'ping', builtins.exec(...)): must be closed, never run. */
    static const char p[] = "\x80\x03(K\x01\x89X\x04\x00\x00\x00" "ping"
                            "cbuiltins\nexec\nX\x01\x00\x00\x00" "1" "\x85R\x85t.";
    tc c = registered();
    cr_assert_eq(tc_send_raw(&c, p, sizeof p - 1), 0);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
    still_serving();
}

Test(server_badinput, huge_length_is_refused_without_allocating)
{
    const uint8_t hdr[][4] = {{0xff, 0xff, 0xff, 0xff}, {'G', 'E', 'T', ' '}};
    for (int i = 0; i < 2; i++) {
        tc c = registered();
        cr_assert_eq(send(c.fd, hdr[i], 4, 0), 4);
        cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "a %u-byte frame was accepted", zbe32(hdr[i]));
        tc_close(&c);
    }
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "size limit"));
    free(log);
    still_serving();
}

Test(server_badinput, stalled_handshake_and_stalled_frame_are_closed)
{
    tc a, b;
    cr_assert_eq(tc_open(&a, srv.port), 0);     /* never answers the announcement */
    b = registered();
    cr_assert_eq(send(b.fd, "\x00\x00\x01\x00\x80\x03", 6, 0), 6);   /* half a frame */
    cr_expect(tc_wait_closed(&a, 4000), "stalled handshake not closed");
    cr_expect(tc_wait_closed(&b, 4000), "stalled frame not closed");
    tc_close(&a);
    tc_close(&b);
    /* An idle registered client is not dropped. */
    tc idle = registered();
    proto_msg m;
    cr_expect_eq(tc_recv(&idle, &m, 2000), -1);
    int64_t flag;
    cr_expect(tc_call(&idle, "ping", zv_tuple(idle.a, 0), &flag), "idle client was dropped");
    tc_close(&idle);
}

/* A sync call with a wrong argument gets exactly the TypeError that proto's
 * checks word (what the Python client rebuilds as a TypeError). */
Test(server_badinput, wrong_argument_types_get_error_replies)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    int64_t flag;
    zv_arena *a = c.a;
    static const struct {
        const char *name, *why;
    } want[] = {
        {"loadBefore", "argument 2 must be 8 bytes (a tid), not str of length 7"},
        {"loadBefore", "argument 1 must be 8 bytes (an oid), not bytes of length 2"},
        {"loadBefore", "takes 2 arguments, got 1"},
        {"history", "argument 2 must be None or int, not str of length 1"},
        {"new_oids", "argument 1 must be None or int, not bytes of length 1"},
        {"undoLog", "argument 2 must be None or int, not float"},
        {"getInvalidations", "argument 1 must be 8 bytes (a tid), not int"},
        {"undoInfo", "argument 3 must be dict, not int"},
        {"iterator_gc", "argument 1 must be list, not int"},
        {"pack", "argument 1 must be float, not str of length 1"},
        {"loadSerial", "argument 2 must be 8 bytes (a serial), not str of length 3"},
    };
    zv *args[] = {
        tv_tuple(a, 2, tv_oid(a, 0), tv_str(a, "notatid")),
        tv_tuple(a, 2, tv_bytes(a, "ab"), tv_oid(a, 1)),
        tv_tuple(a, 1, tv_oid(a, 0)),
        tv_tuple(a, 2, tv_oid(a, 0), tv_str(a, "x")),
        tv_tuple(a, 1, tv_bytes(a, "x")),
        tv_tuple(a, 2, tv_int(a, 0), zv_float(a, 1.5)),
        tv_tuple(a, 1, tv_int(a, 5)),
        tv_tuple(a, 3, tv_int(a, 0), tv_int(a, 10), tv_int(a, 5)),
        tv_tuple(a, 1, tv_int(a, 5)),
        tv_tuple(a, 1, tv_str(a, "x")),
        tv_tuple(a, 2, tv_oid(a, 0), tv_str(a, "abc")),
    };
    zv_arena *x = zv_arena_new();
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        zv *r = tc_call(&c, want[i].name, args[i], &flag);
        cr_assert(r, "%s: connection lost", want[i].name);
        cr_expect_eq(flag, 2, "%s: expected an error reply", want[i].name);
        proto_exc e;
        zerr err;
        zerr_set(&err, ZE_TYPE, "%s", want[i].why);
        cr_assert_eq(proto_exc_from_err(&e, x, &err), 0);
        cr_expect(tv_is_exc(r, &e), "%s: got %s %s", want[i].name, tv_error_class(r),
                  zv_is_seq(r) && zv_is_seq(r->u.seq.items[1]) && r->u.seq.items[1]->u.seq.n
                      ? (const char *)r->u.seq.items[1]->u.seq.items[0]->u.s.p
                      : "?");
    }
    /* an unknown iterator is a KeyError of the id, as ZEO's */
    zv *r = tc_call(&c, "iterator_next", tv_tuple(a, 1, tv_int(a, 42)), &flag);
    proto_exc e;
    cr_assert_eq(proto_exc_key(&e, x, tv_int(x, 42)), 0);
    cr_expect(r && flag == 2 && tv_is_exc(r, &e));
    zv_arena_free(x);
    tc_close(&c);
    still_serving();
}

/* Each of these async calls must close its connection and leave the
 * storage working for everyone (the Python server broke on some). */
Test(server_badinput, bad_transactions_are_refused)
{
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            continue;   /* a bad store argument: see the next test */
        tc c = registered();
        zv_arena *a = c.a;
        zv *id = tv_int(a, 7);
        zv *begin = tv_tuple(a, 6, id, tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a),
                             tv_none(a), tv_str(a, " "));
        switch (i) {
        case 0: begin->u.seq.items[5] = tv_str(a, "XX"); break;                 /* status */
        case 1: begin->u.seq.items[3] = zv_list(a, 0); break;                   /* extension */
        case 2: begin->u.seq.items[1] = tv_int(a, 5); break;                    /* user */
        case 3: begin->u.seq.items[4] = zv_list(a, 0); break;                   /* tid */
        case 5: {                                                               /* 70,000 bytes */
            static char big[70001];
            memset(big, 'd', 70000);
            begin->u.seq.items[2] = tv_bytes(a, big);
            break;
        }
        default: break;
        }
        tc_send(&c, NULL, 1, "tpc_begin", begin);
        cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "bad transaction %d accepted", i);
        tc_close(&c);
        still_serving();
    }
}

/* A bad argument in a call of the open transaction (a 2-byte oid, which
 * broke the Python server for everyone) never reaches the store: the vote
 * fails with TypeError and aborts the transaction, the connection stays
 * usable, and an abort instead of the vote would simply discard it. */
Test(server_badinput, bad_store_argument_fails_the_vote)
{
    tc c = registered();
    zv_arena *a = c.a;
    zv *id = tv_int(a, 7);
    tc_send(&c, NULL, 1, "tpc_begin",
            tv_tuple(a, 6, id, tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a), tv_none(a),
                     tv_str(a, " ")));
    tc_send(&c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_bytes(a, "ab"), tv_oid(a, 0), tv_bytes(a, "x"), id));
    tc_send(&c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_oid(a, 3), tv_oid(a, 0), tv_str(a, "not bytes"), id));
    int64_t flag;
    zv *v = tc_call(&c, "vote", tv_tuple(a, 1, id), &flag);
    cr_assert(v, "the connection was closed");
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "builtins.TypeError");
    /* The transaction is gone; the same connection commits normally. */
    zv *n = tc_call(&c, "tpc_abort", tv_tuple(a, 1, id), &flag);
    cr_expect(n && n->type == ZV_NONE);
    cr_expect_neq(tc_commit_one(&c, 8, 3, 0, "fine"), 0);
    /* A bad store followed by an abort leaves nothing behind either. */
    tc_send(&c, NULL, 1, "tpc_begin",
            tv_tuple(a, 6, tv_int(a, 9), tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a),
                     tv_none(a), tv_str(a, " ")));
    tc_send(&c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_bytes(a, "ab"), tv_oid(a, 0), tv_bytes(a, "x"), tv_int(a, 9)));
    n = tc_call(&c, "tpc_abort", tv_tuple(a, 1, tv_int(a, 9)), &flag);
    cr_expect(n && flag == 0 && n->type == ZV_NONE);
    tc_close(&c);
    still_serving();
}

Test(server_badinput, many_connections_opened_and_dropped)
{
    for (int i = 0; i < 1000; i++) {
        tc c;
        cr_assert_eq(tc_open(&c, srv.port), 0, "connection %d refused", i);
        if (i % 2)
            send(c.fd, "\x00\x00\x00\x02Z5", 6, 0);
        tc_close(&c);
    }
    still_serving();
    tc c = registered();
    int64_t flag;
    zv *st = tc_call(&c, "server_status", zv_tuple(c.a, 0), &flag);
    int64_t conns = -1;
    zv_get_int(zv_dict_get(st, "connections"), &conns);
    cr_expect_eq(conns, 1, "dropped connections are still counted");
    tc_close(&c);
}
