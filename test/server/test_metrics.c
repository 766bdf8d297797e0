/* The Prometheus endpoint of a real `zeolite serve --metrics`: scripted
 * traffic (loads, commits, conflicts, a pack, an iterator, lock expiries)
 * between two scrapes; every metric is present, the text parses with
 * Debian's prometheus_client (prom_samples.py), and each counter moved by
 * exactly what the script did. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <netinet/in.h>
#include <linux/tcp.h>   /* tcp_info with the byte counts */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/ztid.h"
#include "helpers.h"
#include "testutil.h"

static th_server srv;
static int mport;

#define BOUND "3"   /* seconds: transaction timeout and conflict bound */

static void start(void)
{
    mport = tu_free_port();
    char maddr[32];
    snprintf(maddr, sizeof maddr, "127.0.0.1:%d", mport);
    const char *extra[] = {"--metrics", maddr, "--no-pack-gc", "-t", BOUND,
                           "--conflict-timeout", BOUND, NULL};
    cr_assert_eq(th_start(&srv, extra), 0, "server did not start");
}

static void stop(void)
{
    cr_expect_eq(th_stop(&srv), 0);
    th_free(&srv);
}

TestSuite(server_metrics, .init = start, .fini = stop, .timeout = 120);

/* ---- scraping ---------------------------------------------------------- */

typedef struct scrape {
    char *headers, *samples;   /* samples: prom_samples.py's lines */
} scrape;

static char *http_get(const char *path, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)mport),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (ssize_t r; (r = read(fd, buf + len, cap - len - 1)) > 0;) {
        len += (size_t)r;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    cr_assert(sep, "no HTTP header: %s", buf);
    *sep = 0;
    *body = sep + 4;
    return buf;
}

static scrape get_metrics(void)
{
    char *body, *resp = http_get("/metrics", &body);
    cr_assert(!strncmp(resp, "HTTP/1.0 200", 12) || !strncmp(resp, "HTTP/1.1 200", 12), "%s", resp);
    cr_expect(strcasestr(resp, "Content-Type: text/plain; version=0.0.4"), "%s", resp);
    char *txt = tu_path(srv.dir, "metrics.txt"), *out = tu_path(srv.dir, "samples.txt");
    cr_assert_eq(tu_write_file(txt, body, strlen(body)), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/test/server/prom_samples.py' '%s' > '%s'",
             ZEOLITE_SOURCE_DIR, txt, out);
    cr_assert_eq(system(cmd), 0, "the exposition does not parse:\n%s", body);
    size_t len;
    scrape s = {resp, (char *)tu_read_file(out, &len)};
    cr_assert(s.samples);
    free(txt);
    free(out);
    return s;
}

static void scrape_free(scrape *s)
{
    free(s->headers);
    free(s->samples);
}

/* The value of the sample `key` (name{labels} as prom_samples.py writes
 * it); NAN when absent. */
static double value(const scrape *s, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = s->samples; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return NAN;
}

static double st_value(const scrape *s, const char *name, const char *more)
{
    char key[256];
    snprintf(key, sizeof key, "%s{%s%sstorage=\"1\"}", name, more ? more : "",
             more ? "," : "");
    return value(s, key);
}

static double latency_count(const scrape *s, const char *method)
{
    char key[256];
    snprintf(key, sizeof key, "zeolite_request_duration_seconds_count{method=\"%s\",storage=\"1\"}",
             method);
    double v = value(s, key);
    return isnan(v) ? 0 : v;
}

static double delta(const scrape *a, const scrape *b, const char *name)
{
    return st_value(b, name, NULL) - st_value(a, name, NULL);
}

/* ---- traffic ----------------------------------------------------------- */

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

static uint64_t sock_bytes(int fd, int sent)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    return sent ? ti.tcpi_bytes_acked - 1 : ti.tcpi_bytes_received;   /* acked counts the SYN */
}

Test(server_metrics, scripted_traffic_moves_each_metric_by_exactly_that)
{
    scrape before = get_metrics();
    tc a, b;
    client(&a);
    client(&b);
    enum { N = 5, M = 3 };
    uint64_t tid = 0;
    for (int i = 0; i < M; i++)
        cr_assert((tid = tc_commit_one(&a, 1 + i, 1, tid, "value")));
    int64_t flag;
    for (int i = 0; i < N; i++)
        cr_assert(tc_load_current(&a, 1, &flag) && flag == 0);
    /* K = 2 conflicts: b stores on an old serial twice; it aborts the
     * first, resolves the second (stores on the current serial, votes
     * again) and commits. */
    for (int k = 0; k < 2; k++) {
        int64_t txn = 100 + k;
        tc_begin_store(&b, txn, 1, 0, "stale");
        zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, txn)), &flag);
        cr_assert(v && flag == 0 && v->type == ZV_LIST && v->u.seq.n == 1, "no conflict");
        if (k == 0) {
            cr_assert(tc_call(&b, "tpc_abort", tv_tuple(b.a, 1, tv_int(b.a, txn)), &flag));
            continue;
        }
        tc_store(&b, txn, 1, tid, "resolved");
        v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, txn)), &flag);
        cr_assert(v && flag == 0 && v->type == ZV_LIST && v->u.seq.n == 0, "not resolved");
        zv *t = tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, txn)), &flag);
        cr_assert(t && flag == 0);
        tid = tv_u64(t);
    }
    /* one pack, waited for */
    zv *r = tc_call(&a, "pack", tv_tuple(a.a, 2, zv_float(a.a, (double)time(NULL) + 100),
                                         tv_int(a.a, 1)), &flag);
    cr_assert(r && flag == 0, "pack failed");
    /* one iterator left open */
    r = tc_call(&a, "iterator_start", tv_tuple(a.a, 2, tv_none(a.a), tv_none(a.a)), &flag);
    cr_assert(r && flag == 0, "iterator_start failed");
    uint64_t in = sock_bytes(a.fd, 1) + sock_bytes(b.fd, 1);
    uint64_t out = sock_bytes(a.fd, 0) + sock_bytes(b.fd, 0);

    scrape after = get_metrics();
    cr_expect_eq(delta(&before, &after, "zeolite_loads_total"), N);
    cr_expect_eq(delta(&before, &after, "zeolite_stores_total"), M + 3);
    cr_expect_eq(delta(&before, &after, "zeolite_commits_total"), M + 1);
    cr_expect_eq(delta(&before, &after, "zeolite_aborts_total"), 1);
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_total"), 2);
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_resolved_total"), 1);
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_resolved_server_total"), 0);
    cr_expect_eq(delta(&before, &after, "zeolite_packs_total"), 1);
    cr_expect_eq(st_value(&after, "zeolite_connections", NULL), 2);
    cr_expect_eq(value(&after, "zeolite_connections_open{}"), 2);
    cr_expect_eq(st_value(&after, "zeolite_active_transactions", NULL), 0);
    cr_expect_eq(st_value(&after, "zeolite_waiting_transactions", NULL), 0);
    cr_expect_eq(st_value(&after, "zeolite_objects", NULL), 1);
    /* no standby here (test_pg_standby counts one's reads in the store) */
    cr_expect_eq(st_value(&after, "zeolite_store_reads_total", "side=\"standby\""), 0);
    cr_expect_eq(st_value(&after, "zeolite_store_reads_total", "side=\"primary\""), 0);
    cr_expect_eq(st_value(&after, "zeolite_store_reading_primary", NULL), 0);
    cr_expect_eq(value(&after, "zeolite_iterators_open{}"), 1);
    cr_expect_eq(value(&after, "zeolite_iterators_max{}"), 256);
    cr_expect_eq(value(&after, "zeolite_output_buffered_bytes{}"), 0);
    cr_expect_eq(value(&after, "zeolite_connections_accepted_total{}") -
                 value(&before, "zeolite_connections_accepted_total{}"), 2);
    /* bytes: both directions of both connections, to the byte */
    double got_in = delta(&before, &after, "zeolite_received_bytes_total") +
                    value(&after, "zeolite_unregistered_received_bytes_total{}") -
                    value(&before, "zeolite_unregistered_received_bytes_total{}");
    double got_out = delta(&before, &after, "zeolite_sent_bytes_total") +
                     value(&after, "zeolite_unregistered_sent_bytes_total{}") -
                     value(&before, "zeolite_unregistered_sent_bytes_total{}");
    cr_expect_eq(got_in, (double)in);
    cr_expect_eq(got_out, (double)out);
    cr_expect_gt(delta(&before, &after, "zeolite_received_bytes_total"), 0);
    /* latency histograms: one observation a call */
    cr_expect_eq(latency_count(&after, "loadBefore") - latency_count(&before, "loadBefore"), N);
    cr_expect_eq(latency_count(&after, "vote"), M + 3);
    cr_expect_eq(latency_count(&after, "tpc_finish"), M + 1);
    cr_expect_eq(latency_count(&after, "tpc_begin"), M + 2);
    cr_expect_eq(latency_count(&after, "storea"), M + 3);
    cr_expect_eq(latency_count(&after, "tpc_abort"), 1);
    cr_expect_eq(latency_count(&after, "pack"), 1);
    cr_expect_eq(latency_count(&after, "register"), 2);
    cr_expect_eq(value(&after, "zeolite_request_duration_seconds_bucket{le=\"+Inf\",method=\"vote\","
                               "storage=\"1\"}"), M + 3);
    /* every first vote asked for its locks; the re-vote kept them */
    cr_expect_eq(st_value(&after, "zeolite_lock_wait_seconds_count", NULL) -
                 st_value(&before, "zeolite_lock_wait_seconds_count", NULL), M + 2);
    /* the last tid, exactly and as a time */
    char key[128];
    snprintf(key, sizeof key, "zeolite_last_tid_info{storage=\"1\",tid=\"%016llx\"}",
             (unsigned long long)tid);
    cr_expect_eq(value(&after, key), 1, "%s not in\n%s", key, after.samples);
    cr_expect_float_eq(st_value(&after, "zeolite_last_transaction_timestamp_seconds", NULL),
                       ztid_time(tid), 1e-3);
    double used = st_value(&after, "zeolite_lmdb_map_used_bytes", NULL);
    cr_expect(used > 0 && used < st_value(&after, "zeolite_lmdb_map_size_bytes", NULL));
    cr_expect_gt(value(&after, "process_resident_memory_bytes{}"), 0);
    cr_expect_gt(value(&after, "process_open_fds{}"), 0);
    cr_expect_gt(value(&after, "process_start_time_seconds{}"), 1.6e9);
    cr_expect(!isnan(value(&after, "process_cpu_seconds_total{}")));
    scrape_free(&before);
    scrape_free(&after);
    tc_close(&a);
    tc_close(&b);
}

/* A transaction storing BTrees.Length(value) for oid 1 on serial; the vote's
 * reply (the oids it lists) with its flag. */
static zv *length_vote(tc *c, int64_t txn, uint64_t serial, int value, int64_t *flag)
{
    static const char cls[] = "\x80\x03"
                              "cBTrees.Length\nLength\n"
                              "q\x00.\x80\x03K";
    uint8_t rec[sizeof cls + 1];
    memcpy(rec, cls, sizeof cls - 1);
    rec[sizeof cls - 1] = (uint8_t)value;
    rec[sizeof cls] = '.';
    zv_arena *a = c->a;
    zv *id = tv_int(a, txn);
    tc_send(c, NULL, 1, "tpc_begin",
            tv_tuple(a, 4, id, tv_bytes(a, "user"), tv_bytes(a, "desc"), tv_dict0(a)));
    tc_send(c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_oid(a, 1), tv_oid(a, serial), zv_bytes(a, rec, sizeof rec), id));
    return tc_call(c, "vote", tv_tuple(a, 1, id), flag);
}

/* A Length conflict resolved in the server counts there, not among the
 * conflicts sent to clients. */
Test(server_metrics, conflicts_resolved_in_the_server)
{
    tc a, b;
    client(&a);
    client(&b);
    int64_t flag;
    zv *v = length_vote(&a, 1, 0, 1, &flag);
    cr_assert(v && flag == 0);
    uint64_t t1 = tv_u64(tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 1)), &flag));
    v = length_vote(&a, 2, t1, 2, &flag);
    cr_assert(v && flag == 0 && tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag));
    scrape before = get_metrics();
    v = length_vote(&b, 3, t1, 11, &flag); /* read 1 too: +10 */
    cr_assert(v && flag == 0 && v->type == ZV_LIST && v->u.seq.n == 1, "not resolved here");
    cr_expect_eq(tv_u64(v->u.seq.items[0]), 1);
    cr_assert(tc_call(&b, "tpc_finish", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag) && flag == 0);
    scrape after = get_metrics();
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_resolved_server_total"), 1);
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_total"), 0);
    cr_expect_eq(delta(&before, &after, "zeolite_conflicts_resolved_total"), 0);
    scrape_free(&before);
    scrape_free(&after);
    tc_close(&a);
    tc_close(&b);
}

/* A holder past the transaction timeout and a resolver past the conflict
 * bound are closed, each counted under its bound. */
Test(server_metrics, lock_expiries_are_counted_by_bound)
{
    tc a, b, c;
    client(&a);
    client(&b);
    client(&c);
    uint64_t t1 = tc_commit_one(&a, 1, 7, 0, "v1");
    uint64_t t2 = tc_commit_one(&a, 2, 7, t1, "v2");
    cr_assert(t1 && t2);
    int64_t flag;
    /* b holds oid 8 and never finishes; c gets a conflict and never re-votes */
    tc_begin_store(&b, 10, 8, 0, "held");
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 10)), &flag);
    cr_assert(v && flag == 0);
    tc_begin_store(&c, 11, 7, t1, "stale");
    v = tc_call(&c, "vote", tv_tuple(c.a, 1, tv_int(c.a, 11)), &flag);
    cr_assert(v && flag == 0 && v->type == ZV_LIST && v->u.seq.n == 1);
    /* d waits for b's oid: a waiting transaction, the oldest lock's age */
    tc d;
    client(&d);
    tc_begin_store(&d, 12, 8, 0, "after b");
    int64_t vote_id = tc_send(&d, NULL, 0, "vote", tv_tuple(d.a, 1, tv_int(d.a, 12)));
    scrape mid = {0};
    for (int i = 0; i < 500; i++) {   /* until d's vote has queued */
        scrape_free(&mid);
        mid = get_metrics();
        if (st_value(&mid, "zeolite_waiting_transactions", NULL) == 1)
            break;
    }
    cr_expect_eq(st_value(&mid, "zeolite_waiting_transactions", NULL), 1);
    cr_expect_eq(st_value(&mid, "zeolite_active_transactions", NULL), 3);
    double held = st_value(&mid, "zeolite_lock_oldest_held_seconds", NULL);
    cr_expect(held >= 0 && held < 60, "%g", held);
    scrape_free(&mid);
    cr_expect(tc_wait_closed(&b, 20000), "the transaction timeout did not close b");
    proto_msg m;   /* b's locks went to d */
    cr_assert_eq(tc_recv(&d, &m, 20000), 1);
    cr_expect(m.msgid && m.msgid->type == ZV_INT && m.msgid->u.i == vote_id);
    cr_assert(tc_call(&d, "tpc_abort", tv_tuple(d.a, 1, tv_int(d.a, 12)), &flag));
    cr_expect(tc_wait_closed(&c, 20000), "the conflict bound did not close c");
    scrape s = get_metrics();
    /* c holds too: whichever bound fires first for it is the one counted */
    double tt = st_value(&s, "zeolite_lock_expirations_total", "bound=\"transaction-timeout\"");
    double ct = st_value(&s, "zeolite_lock_expirations_total", "bound=\"conflict-timeout\"");
    cr_expect_eq(tt + ct, 2, "%s", s.samples);
    cr_expect_geq(tt, 1, "b's expiry");
    cr_expect_eq(st_value(&s, "zeolite_connections", NULL), 2);
    cr_expect_eq(st_value(&s, "zeolite_waiting_transactions", NULL), 0);
    cr_expect_eq(st_value(&s, "zeolite_lock_oldest_held_seconds", NULL), 0);
    scrape_free(&s);
    tc_close(&d);
    tc_close(&a);
    tc_close(&b);
    tc_close(&c);
}

/* A client that does not read: its replies wait in the server, and the
 * gauge says how many bytes; once it reads them all, none. */
Test(server_metrics, buffered_reply_bytes)
{
    tc a, slow;
    client(&a);
    static char big[1 << 20];
    memset(big, 'x', sizeof big - 1);
    uint64_t tid = tc_commit_one(&a, 1, 3, 0, big);
    cr_assert(tid);
    client(&slow);
    /* More than the kernel's buffers on both sides hold (at most 4 MB to
     * send, 6 MB to receive by default): the server keeps the rest, and
     * stops reading the requests at 4 MB (ZSRV_OUT_HIGH). */
    enum { LOADS = 24 };
    zv *args = tv_tuple(slow.a, 2, tv_oid(slow.a, 3), tv_oid(slow.a, 0x7fffffffffffffffULL));
    for (int i = 0; i < LOADS; i++)
        tc_send(&slow, NULL, 0, "loadBefore", args);
    scrape s = {0};
    double buffered = 0;
    for (int i = 0; i < 500 && buffered < 1 << 20; i++) {   /* until the server has them */
        scrape_free(&s);
        s = get_metrics();
        buffered = value(&s, "zeolite_output_buffered_bytes{}");
        usleep(10000);
    }
    cr_expect_geq(buffered, 1 << 20, "24 MB of replies to a client reading nothing");
    scrape_free(&s);
    for (int i = 0; i < LOADS; i++) {
        uint8_t *p;
        size_t len;
        cr_assert_eq(tc_read(&slow, &p, &len, TC_TIMEOUT), 1);
        free(p);
    }
    s = get_metrics();
    cr_expect_eq(value(&s, "zeolite_output_buffered_bytes{}"), 0);
    scrape_free(&s);
    tc_close(&a);
    tc_close(&slow);
}

Test(server_metrics, only_get_metrics)
{
    char *body, *resp = http_get("/", &body);
    cr_expect(strstr(resp, " 404 "), "%s", resp);
    free(resp);
}
