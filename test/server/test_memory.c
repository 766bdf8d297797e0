/* Hostile clients and memory (issue 10, items 1 and 6): each attack goes to
 * a real server as raw frames while a well-behaved client commits during and
 * after it. The server's own accounting (zeolite_memory: decoded_peak,
 * request_memory, output_memory) must stay within the stated bounds in every
 * build; its peak resident memory is checked too where that means something
 * (Release without sanitizers: ASan's shadow and quarantine make RSS
 * meaningless, so the ASan build runs the same attacks for crashes and
 * leaks only). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#if defined(NDEBUG) && !defined(SANITIZED)
#define RSS_CHECKS 1
#else
#define RSS_CHECKS 0
#endif

#define MB (1024 * 1024)

static th_server srv;

static void start_with(const char *const *extra)
{
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_memory, .fini = stop, .timeout = 240);

/* What one request may take, decoded with all its copies (proto.h). */
static long long request_bound(long long frame)
{
    return 8 * frame + MB;
}

static tc registered(proto_enc enc)
{
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, enc, NULL), 0);
    cr_assert_geq(tc_register(&c), 0);
    return c;
}

static void expect_peak_rss_below(long long bytes, const char *what)
{
    /* The suite may drive a sanitized server (CI's TSan stage) too. */
    if (!RSS_CHECKS || th_sanitized(&srv))
        return;
    long long rss = th_peak_rss(&srv);
    cr_assert_gt(rss, 0);
    cr_log_info("%s: the server's peak RSS is %lld MB", what, rss / MB);
    cr_expect_lt(rss, bytes, "%s: the server's peak RSS is %lld MB", what, rss / MB);
}

/* The largest request the server decoded stayed within its bound. */
static void expect_decoded_within_bound(tc *st)
{
    int64_t peak = tc_status_int(st, "decoded_peak");
    int64_t frame = tc_status_int(st, "decoded_peak_frame");
    cr_assert(peak > 0 && frame > 0, "no decoding counted");
    cr_expect_leq(peak, request_bound(frame), "a request of %lld bytes took %lld bytes",
                  (long long)frame, (long long)peak);
}

/* The next reply, past the invalidations the well-behaved commits send. */
static int recv_reply(tc *c, proto_msg *m)
{
    int r;
    while ((r = tc_recv(c, m, TC_TIMEOUT)) == 1 && strcmp(m->name, ".reply"))
        ;
    return r;
}

static int log_has(const char *needle)
{
    char *log = th_log(&srv);
    int found = log && strstr(log, needle);
    free(log);
    return found;
}

/* ---- raw pickle frames ------------------------------------------------- */

static void put(zbuf *b, const void *p, size_t n)
{
    cr_assert_eq(zbuf_append(b, p, n), 0);
}

static void put_len(zbuf *b, uint8_t op, size_t n)
{
    uint8_t h[5] = {op, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(b, h, 5);
}

/* (B,) * times, B one memoized bytes of len: a copy takes len * times. */
static void shared_tuple(zbuf *b, size_t len, int times)
{
    put(b, "(", 1);
    put_len(b, 'B', len);
    for (size_t i = 0; i < len; i++)
        put(b, "m", 1);
    put(b, "q\x00", 2);
    for (int i = 1; i < times; i++)
        put(b, "h\x00", 2);
    put(b, "t", 1);
}

/* PROTO 3, MARK, the msgid's pickle, the flag, the name: the args and
 * "t." follow. */
static void message_head(zbuf *b, const char *msgid, size_t msgid_len, int async,
                         const char *name)
{
    put(b, "\x80\x03(", 3);
    put(b, msgid, msgid_len);
    put(b, async ? "\x88" : "\x89", 1);
    put_len(b, 'X', strlen(name));
    put(b, name, strlen(name));
}

/* The 1 MB bytes, memoized and reached 600 times, as a tpc_begin
 * transaction id (0), a msgid (1), a wrongly typed loadBefore argument (2)
 * and a set_client_label label (3). */
static void memo_attack(zbuf *b, int kind)
{
    zbuf shared = ZBUF_INIT;
    shared_tuple(&shared, MB, 600);
    switch (kind) {
    case 0:
        message_head(b, "K\x00", 2, 1, "tpc_begin");
        put(b, "(", 1);
        put(b, shared.data, shared.len);
        put(b, "C\x01uC\x01d}t", 8);
        break;
    case 1:
        message_head(b, (const char *)shared.data, shared.len, 0, "ping");
        put(b, ")", 1);
        break;
    case 2:
        message_head(b, "K\x05", 2, 0, "loadBefore");
        put(b, "(", 1);
        put(b, shared.data, shared.len);
        put(b, "C\x08\0\0\0\0\0\0\0\0t", 11);
        break;
    default:
        message_head(b, "K\x05", 2, 0, "set_client_label");
        put(b, "(", 1);
        put(b, shared.data, shared.len);
        put(b, "t", 1);
        break;
    }
    put(b, "t.", 2);
    zbuf_free(&shared);
}

/* Half a frame, a well-behaved commit while the server holds it, the other
 * half, and the attacker's connection must be closed. */
static void send_during_a_commit(tc *c, const zbuf *payload)
{
    zbuf frame = ZBUF_INIT;
    cr_assert_eq(proto_frame_append(&frame, payload->data, payload->len), 0);
    size_t half = frame.len / 2;
    cr_assert_eq(send(c->fd, frame.data, half, MSG_NOSIGNAL), (ssize_t)half);
    cr_expect_neq(th_commit_new(&srv), 0, "a commit failed during the attack");
    size_t off = half;
    while (off < frame.len) {
        ssize_t n = send(c->fd, frame.data + off, frame.len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    zbuf_free(&frame);
}

/* ---- item 1: decoding does not multiply memory -------------------------- */

Test(server_memory, memoized_bytes_are_not_multiplied)
{
    start_with(NULL);
    tc st = registered(PROTO_PICKLE);
    static const char *const what[] = {"transaction id", "msgid", "loadBefore argument",
                                       "label"};
    for (int kind = 0; kind < 4; kind++) {
        zbuf p = ZBUF_INIT;
        memo_attack(&p, kind);
        /* Three connections, as in the issue (1.8 GB before). */
        for (int i = 0; i < 3; i++) {
            tc c = registered(PROTO_PICKLE);
            send_during_a_commit(&c, &p);
            cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "%s: not refused", what[kind]);
            tc_close(&c);
        }
        zbuf_free(&p);
        cr_expect_neq(th_commit_new(&srv), 0, "a commit failed after the %s attack",
                      what[kind]);
    }
    cr_expect(log_has("expands to more than"), "the log does not say why");
    expect_decoded_within_bound(&st);
    tc_close(&st);
    expect_peak_rss_below(64LL * MB, "memoized bytes");
}

/* What a shared value may still do within the bound: a label repr is cut,
 * and a transaction id or a msgid kept past its call is small. */
Test(server_memory, kept_values_and_reprs_are_small)
{
    start_with(NULL);
    tc c = registered(PROTO_PICKLE);
    /* 100 KB reached 5 times fits the bound; the label's repr is cut. */
    zbuf p = ZBUF_INIT;
    message_head(&p, "K\x07", 2, 0, "set_client_label");
    put(&p, "(", 1);
    shared_tuple(&p, 100 * 1024, 5);
    put(&p, "tt.", 3);
    cr_assert_eq(tc_send_raw(&c, p.data, p.len), 0);
    zbuf_free(&p);
    proto_msg m;
    cr_assert_eq(recv_reply(&c, &m), 1);
    cr_expect_eq(m.flag, 0, "the label was refused");
    /* A transaction id and a msgid of 20 KB are refused with a ValueError. */
    zv_arena *a = c.a;
    char *big = malloc(20001);
    memset(big, 'i', 20000);
    big[20000] = 0;
    int64_t flag;
    zv *r = tc_call(&c, "tpc_begin",
                    tv_tuple(a, 4, tv_bytes(a, big), tv_bytes(a, "u"), tv_bytes(a, "d"),
                             tv_dict0(a)),
                    &flag);
    cr_assert(r && flag == 2, "a 20 KB transaction id was kept");
    cr_expect_str_eq(tv_error_class(r), PROTO_EXC_VALUE);
    zv *id = tv_int(a, 5);
    tc_send(&c, NULL, 1, "tpc_begin",
            tv_tuple(a, 4, id, tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a)));
    zv *msgid = tv_bytes(a, big);
    tc_send(&c, msgid, 0, "vote", tv_tuple(a, 1, id));
    cr_assert_eq(recv_reply(&c, &m), 1);
    cr_expect(zv_equal(m.msgid, msgid) && m.flag == 2, "a 20 KB vote msgid was kept");
    cr_expect_str_eq(tv_error_class(m.args), PROTO_EXC_VALUE);
    free(big);
    tc_close(&c);
    cr_expect_neq(th_commit_new(&srv), 0);
    /* Every log line, the label's included, stays short. */
    char *log = th_log(&srv);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "(b'mmmm"), "the label is not in the log");
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        cr_expect_lt(strlen(line), 1200, "a log line of %zu bytes", strlen(line));
    free(log);
}

/* A 20 MB frame of empty tuples (1.5 GB before): refused at its bound. */
Test(server_memory, empty_tuples_are_bounded)
{
    start_with(NULL);
    tc st = registered(PROTO_PICKLE);
    tc c = registered(PROTO_PICKLE);
    size_t batches = 20 * 1000;
    zbuf p = ZBUF_INIT;
    message_head(&p, "K\x05", 2, 0, "ping");
    put(&p, "]", 1);
    char batch[1002];
    batch[0] = '(';
    memset(batch + 1, ')', 1000);
    batch[1001] = 'e';
    for (size_t i = 0; i < batches; i++)
        put(&p, batch, sizeof batch);
    put(&p, "\x85t.", 3);
    size_t frame = p.len;
    send_during_a_commit(&c, &p);
    zbuf_free(&p);
    cr_expect(tc_wait_closed(&c, 30000), "not refused");
    tc_close(&c);
    cr_expect_neq(th_commit_new(&srv), 0);
    expect_decoded_within_bound(&st);
    int64_t rm = tc_status_int(&st, "request_memory_peak");
    cr_expect(rm >= (int64_t)frame && rm <= (int64_t)frame + request_bound((long long)frame),
              "request memory peak %lld", (long long)rm);
    tc_close(&st);
    expect_peak_rss_below(9LL * (long long)frame + 32LL * MB, "empty tuples");
}

/* msgpack nils, 20 MB of them (32 bytes a value before). */
Test(server_memory, msgpack_nils_are_bounded)
{
    start_with(NULL);
    tc st = registered(PROTO_PICKLE);
    tc c = registered(PROTO_MSGPACK);
    size_t n = 20 * MB;
    zbuf p = ZBUF_INIT;
    put(&p, "\x94\x05\xc2\xa4ping\x91\xdd", 10);
    uint8_t cnt[4];
    zbe32_put(cnt, (uint32_t)n);
    put(&p, cnt, 4);
    char *nils = malloc(n);
    memset(nils, 0xc0, n);
    put(&p, nils, n);
    free(nils);
    send_during_a_commit(&c, &p);
    zbuf_free(&p);
    cr_expect(tc_wait_closed(&c, 30000), "not refused");
    tc_close(&c);
    cr_expect_neq(th_commit_new(&srv), 0);
    expect_decoded_within_bound(&st);
    cr_expect(log_has("take more than"), "the log does not say why");
    tc_close(&st);
    expect_peak_rss_below((long long)n + 32LL * MB, "msgpack nils");
}

/* ---- request memory: large frames wait, too large ones are refused ------ */

/* (K n, False, 'set_client_label', (b'x' * len,)): a sync call of len bytes. */
static void label_call(zbuf *p, int n, size_t len)
{
    char id[2] = {'K', (char)n};
    message_head(p, id, 2, 0, "set_client_label");
    put(p, "(", 1);
    put_len(p, 'B', len);
    for (size_t i = 0; i < len; i++)
        put(p, "x", 1);
    put(p, "tt.", 3);
}

static int64_t status_until(tc *st, const char *key, int64_t want)
{
    int64_t v = -1;
    for (int i = 0; i < 500 && (v = tc_status_int(st, key)) != want; i++)
        usleep(10000);
    return v;
}

Test(server_memory, request_memory_is_shared_and_waits)
{
    const char *extra[] = {"--request-memory", "40MB", NULL};
    start_with(extra);
    tc st = registered(PROTO_PICKLE);
    /* 40 MB takes a frame of about 4.3 MB with its decoding: 6 MB never fits. */
    tc big = registered(PROTO_PICKLE);
    uint8_t hdr[8] = {0, 0x60, 0, 0, 0x80, 0x03, '(', 'K'};
    cr_assert_eq(send(big.fd, hdr, sizeof hdr, MSG_NOSIGNAL), (ssize_t)sizeof hdr);
    cr_expect(tc_wait_closed(&big, TC_TIMEOUT), "a frame that cannot fit was read");
    tc_close(&big);
    cr_expect_eq(tc_status_int(&st, "requests_refused"), 1);
    cr_expect(log_has("more than request-memory"), "the log does not say why");

    /* Six 3 MB calls: five fit with what decoding one takes, the sixth waits
     * (sent in part only: the server does not read it). */
    enum { N = 6 };
    tc c[N];
    zbuf f[N];
    size_t part[N];
    for (int i = 0; i < N; i++) {
        c[i] = registered(PROTO_PICKLE);
        memset(&f[i], 0, sizeof f[i]);
        zbuf p = ZBUF_INIT;
        label_call(&p, 10 + i, 3 * MB);
        cr_assert_eq(proto_frame_append(&f[i], p.data, p.len), 0);
        zbuf_free(&p);
        part[i] = i < N - 1 ? MB : 32 * 1024;
        cr_assert_eq(send(c[i].fd, f[i].data, part[i], MSG_NOSIGNAL), (ssize_t)part[i]);
        if (i < N - 1)
            cr_assert_eq(status_until(&st, "request_memory", (int64_t)(f[0].len - 4) * (i + 1)),
                         (int64_t)(f[0].len - 4) * (i + 1));
    }
    cr_expect_eq(status_until(&st, "waiting_for_memory", 1), 1, "the sixth frame did not wait");
    cr_expect_eq(tc_status_int(&st, "request_memory"), 5 * (int64_t)(f[0].len - 4));
    /* Small calls are never held up by large ones. */
    cr_expect_neq(th_commit_new(&srv), 0, "a commit waited behind large frames");
    /* One large call ends: the sixth is admitted; then all are answered. */
    cr_assert_eq(send(c[0].fd, f[0].data + part[0], f[0].len - part[0], MSG_NOSIGNAL),
                 (ssize_t)(f[0].len - part[0]));
    proto_msg m;
    cr_assert_eq(recv_reply(&c[0], &m), 1);
    cr_expect_eq(m.flag, 0);
    cr_expect_eq(status_until(&st, "waiting_for_memory", 0), 0, "the sixth frame still waits");
    for (int i = 1; i < N; i++) {
        size_t off = part[i];
        while (off < f[i].len) {
            ssize_t n = send(c[i].fd, f[i].data + off, f[i].len - off, MSG_NOSIGNAL);
            cr_assert_gt(n, 0);
            off += (size_t)n;
        }
        cr_assert_eq(recv_reply(&c[i], &m), 1, "call %d not answered", i);
        cr_expect_eq(m.flag, 0);
    }
    for (int i = 0; i < N; i++) {
        tc_close(&c[i]);
        zbuf_free(&f[i]);
    }
    cr_expect_eq(status_until(&st, "request_memory", 0), 0);
    int64_t peak = tc_status_int(&st, "request_memory_peak");
    cr_expect(peak > 0 && peak <= 40 * MB, "request memory peak %lld", (long long)peak);
    expect_decoded_within_bound(&st);
    tc_close(&st);
    cr_expect_neq(th_commit_new(&srv), 0);
}

Test(server_memory, max_connections_bounds_the_fixed_cost)
{
    const char *extra[] = {"--max-connections", "4", NULL};
    start_with(extra);
    tc c[4];
    for (int i = 0; i < 4; i++)
        c[i] = registered(PROTO_PICKLE);
    for (int i = 0; i < 3; i++) {
        tc over;
        cr_assert_eq(tc_open(&over, srv.port), 0);
        cr_expect(tc_wait_closed(&over, TC_TIMEOUT), "connection %d over the limit served", i);
        tc_close(&over);
    }
    char *log = th_log(&srv);
    const char *first = log ? strstr(log, "too many connections") : NULL;
    cr_expect(first, "the log does not say why");
    cr_expect(!first || !strstr(first + 1, "too many connections"), "logged more than once");
    free(log);
    tc_close(&c[0]);
    /* The closed one's place is free again once the server saw it go. */
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        tc again;
        ok = tc_connect(&again, srv.port, PROTO_PICKLE, NULL) == 0 && tc_register(&again) >= 0;
        tc_close(&again);
        if (!ok)
            usleep(20000);
    }
    cr_expect(ok, "no connection after one closed");
    for (int i = 1; i < 4; i++)
        tc_close(&c[i]);
}

/* ---- item 6: a global output budget -------------------------------------- */

/* A 16 MB record (oid 1) or blob (oid 2, its record "blob") committed on c:
 * the tid. */
static uint64_t commit_big(tc *c, int blob, size_t len)
{
    char *data = malloc(len + 1);
    memset(data, 'r', len);
    data[len] = 0;
    uint64_t tid;
    if (!blob) {
        tid = tc_commit_one(c, 1, 1, 0, data);
    } else {
        zv_arena *a = c->a;
        zv *id = tv_int(a, 2);
        tc_send(c, NULL, 1, "tpc_begin",
                tv_tuple(a, 4, id, tv_bytes(a, "u"), tv_bytes(a, "d"), tv_dict0(a)));
        tc_send(c, NULL, 1, "storeBlobStart", zv_tuple(a, 0));
        for (size_t off = 0; off < len; off += MB)
            tc_send(c, NULL, 1, "storeBlobChunk",
                    tv_tuple(a, 1, zv_bytes(a, data, len - off < MB ? len - off : MB)));
        tc_send(c, NULL, 1, "storeBlobEnd",
                tv_tuple(a, 4, tv_oid(a, 2), tv_oid(a, 0), tv_bytes(a, "blob"), id));
        int64_t flag;
        zv *v = tc_call(c, "vote", tv_tuple(a, 1, id), &flag);
        cr_assert(v && flag == 0, "the blob's vote failed");
        zv *t = tc_call(c, "tpc_finish", tv_tuple(a, 1, id), &flag);
        tid = t && flag == 0 ? tv_u64(t) : 0;
    }
    free(data);
    tc_reset(c);
    return tid;
}

/* Read what h[i] was sent up to its reply: the record's or the blob's bytes. */
static size_t read_answer(tc *c)
{
    size_t got = 0;
    proto_msg m;
    while (tc_recv(c, &m, TC_TIMEOUT) == 1) {
        if (!strcmp(m.name, "receiveBlobChunk") && m.args->u.seq.n == 3)
            got += m.args->u.seq.items[2]->u.s.len;
        if (!strcmp(m.name, ".reply")) {
            if (m.flag == 0 && zv_is_seq(m.args) && m.args->u.seq.n == 3)
                got += m.args->u.seq.items[0]->u.s.len;
            return got;
        }
        tc_reset(c);
    }
    return 0;
}

/* 40 connections ask for a 16 MB record (or blob) each and never read (693
 * MB before); a well-behaved client commits meanwhile; then they all read,
 * and every reply that waited is sent. */
static void held_replies(int blob)
{
    const char *extra[] = {"--output-memory", "64MB", NULL};
    start_with(extra);
    tc st = registered(PROTO_PICKLE);
    size_t rec = 16 * MB;
    uint64_t tid = commit_big(&st, blob, rec);
    cr_assert_neq(tid, 0);
    long long rss_base = th_peak_rss(&srv);

    enum { N = 40 };
    static tc h[N];
    for (int i = 0; i < N; i++) {
        h[i] = registered(PROTO_PICKLE);
        zv_arena *a = h[i].a;
        if (blob)
            tc_send(&h[i], NULL, 0, "sendBlob", tv_tuple(a, 2, tv_oid(a, 2), tv_oid(a, tid)));
        else
            tc_send(&h[i], NULL, 0, "loadBefore",
                    tv_tuple(a, 2, tv_oid(a, 1), tv_oid(a, 0x7fffffffffffffffULL)));
    }
    /* Every request is in: a few replies are held, the rest wait (records),
     * or every download is paused with a share of output (blobs). */
    int64_t waiting = -1, held = -1;
    for (int i = 0; i < 1000; i++) {
        waiting = tc_status_int(&st, "waiting_for_memory");
        held = tc_status_int(&st, "output_memory");
        if (blob ? held >= 64 * MB : waiting >= N - 5)
            break;
        usleep(10000);
    }
    if (!blob)
        cr_expect_geq(waiting, N - 5, "only %lld replies wait", (long long)waiting);
    cr_expect_neq(th_commit_new(&srv), 0, "a commit failed while replies were held");
    int64_t peak = tc_status_int(&st, "output_memory_peak");
    /* Past output-memory: a download goes on to a share of 64 KiB and one
     * chunk of 59,000 bytes; a reply that did not fit waited. */
    long long most = 64LL * MB + (blob ? N * (64 * 1024 + 60000) : 0) + MB;
    cr_expect_leq(peak, most, "output held peaked at %lld MB", (long long)peak / MB);
    cr_expect_geq(peak, 32 * MB, "the replies were not held: %lld", (long long)peak);
    expect_peak_rss_below(rss_base + most + 4 * (long long)rec + 32LL * MB,
                          blob ? "held blobs" : "held replies");
    /* They read at last, whichever has something to read: every reply
     * comes, the ones that waited too. */
    int left = N;
    while (left) {
        struct pollfd pfd[N];
        int idx[N], n = 0;
        for (int i = 0; i < N; i++)
            if (h[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = h[i].fd, .events = POLLIN};
                idx[n++] = i;
            }
        cr_assert_gt(poll(pfd, (nfds_t)n, TC_TIMEOUT), 0, "%d replies never came", left);
        for (int k = 0; k < n; k++) {
            if (!(pfd[k].revents & POLLIN))
                continue;
            tc *c = &h[idx[k]];
            size_t got = read_answer(c);
            cr_expect_eq(got, rec, "connection %d got %zu bytes, not 16 MB", idx[k], got);
            tc_close(c);
            left--;
        }
    }
    cr_expect_eq(status_until(&st, "output_memory", 0), 0);
    cr_expect_eq(tc_status_int(&st, "waiting_for_memory"), 0);
    tc_close(&st);
    cr_expect_neq(th_commit_new(&srv), 0, "a commit failed after the attack");
    cr_expect_eq(th_stop(&srv), 0, "the server did not stop cleanly");
}

Test(server_memory, replies_held_for_readers_that_never_read_are_bounded)
{
    held_replies(0);
}

Test(server_memory, blobs_sent_to_readers_that_never_read_are_bounded)
{
    held_replies(1);
}

/* A reader that reads nothing while output memory is short is closed once
 * its output has not moved for handshake-timeout seconds: nothing else would
 * stop the invalidations piling up for it, which cannot wait (256 MiB before
 * a connection was closed). */
Test(server_memory, a_reader_that_reads_nothing_is_closed_when_memory_is_short)
{
    const char *extra[] = {"--output-memory", "1MB", "--handshake-timeout", "1", NULL};
    start_with(extra);
    tc w = registered(PROTO_PICKLE);
    cr_assert_neq(commit_big(&w, 0, 16 * MB), 0);
    tc r;
    cr_assert_eq(tc_open_rcvbuf(&r, srv.port, 4096), 0);
    uint8_t *hello;
    size_t len;
    cr_assert_eq(tc_read(&r, &hello, &len, TC_TIMEOUT), 1);
    free(hello);
    cr_assert_eq(tc_send_raw(&r, "Z5", 2), 0);
    cr_assert_geq(tc_register(&r), 0);
    zv_arena *a = r.a;
    tc_send(&r, NULL, 0, "loadBefore",
            tv_tuple(a, 2, tv_oid(a, 1), tv_oid(a, 0x7fffffffffffffffULL)));
    cr_expect_neq(th_commit_new(&srv), 0, "a commit failed while r held its reply");
    /* Reading would drain it: watch the log instead. */
    int closed = 0;
    for (int i = 0; i < 200 && !(closed = log_has("does not read what it is sent")); i++)
        usleep(50000);
    cr_expect(closed, "a client that reads nothing was kept");
    tc_close(&r);
    cr_expect_eq(status_until(&w, "output_memory", 0), 0);
    tc_close(&w);
    cr_expect_neq(th_commit_new(&srv), 0);
}

/* Readers that never read cannot hold output-memory, and with it everyone's
 * large replies, for ever: while a reply waits, one whose output has not
 * moved for handshake-timeout seconds is closed. */
Test(server_memory, readers_that_never_read_do_not_lock_out_others)
{
    const char *extra[] = {"--output-memory", "16MB", "--handshake-timeout", "1", NULL};
    start_with(extra);
    tc st = registered(PROTO_PICKLE);
    size_t rec = 8 * MB;
    cr_assert_neq(commit_big(&st, 0, rec), 0);
    enum { N = 2 };
    tc h[N];
    for (int i = 0; i < N; i++) {
        h[i] = registered(PROTO_PICKLE);
        zv_arena *a = h[i].a;
        tc_send(&h[i], NULL, 0, "loadBefore",
                tv_tuple(a, 2, tv_oid(a, 1), tv_oid(a, 0x7fffffffffffffffULL)));
    }
    cr_expect_geq(status_until(&st, "waiting_for_memory", 1), 1, "nothing waits");
    /* A reader that reads gets the record once the others are closed. */
    tc good = registered(PROTO_PICKLE);
    zv_arena *a = good.a;
    tc_send(&good, NULL, 0, "loadBefore",
            tv_tuple(a, 2, tv_oid(a, 1), tv_oid(a, 0x7fffffffffffffffULL)));
    proto_msg m;
    int r = 0;
    for (int i = 0; i < 6 && (r = tc_recv(&good, &m, TC_TIMEOUT)) == -1; i++)
        ;
    cr_assert_eq(r, 1, "the reader that reads never got its reply");
    cr_expect(zv_is_seq(m.args) && m.args->u.seq.n == 3 &&
              m.args->u.seq.items[0]->u.s.len == rec);
    cr_expect(log_has("does not read what it is sent"));
    for (int i = 0; i < N; i++)
        tc_close(&h[i]);
    tc_close(&good);
    tc_close(&st);
    cr_expect_neq(th_commit_new(&srv), 0);
}
