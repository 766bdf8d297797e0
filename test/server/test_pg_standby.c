/* A zeolite server reading from a hot standby (issue 13): A serves a
 * private primary (--postgresql-shared), B the same database shared with
 * its reads on the primary's streaming standby (read-dsn in a zeo.conf, or
 * --postgresql-read), Unix sockets only. A commit through A reaches B's
 * client as an invalidation and then loads there, and the standby's own
 * count shows B's loads were served there; a standby stopped and started
 * again: B keeps serving (from the primary) and goes back to it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "pgtest.h"
#include "testutil.h"

static char pdir[64], sdir[64];
static th_server srv_a, srv_b;
static char *uri, *suri, db[64];

/* One primary and standby for the whole suite (pgtest.h). */
ReportHook(PRE_ALL)(struct criterion_test_set *set) { (void)set; tu_pg_pair_begin(); }
ReportHook(POST_ALL)(struct criterion_global_stats *stats) { (void)stats; tu_pg_pair_end(); }

static void pair_up(void)
{
    tu_pg_pair_take(pdir, sdir, sizeof pdir);
    uri = tu_pg_newdb(pdir);
    suri = tu_pg_uri_on(uri, sdir);
    tu_pg_dbname(uri, db, sizeof db);
}

static void pair_down(void)
{
    th_free(&srv_b);
    th_free(&srv_a);
    free(suri);
    free(uri);
}

TestSuite(server_pg_standby, .init = pair_up, .fini = pair_down, .timeout = 180);

static void start(th_server *s, const char *const *args, const char *sock)
{
    cr_assert_eq(th_spawn(s, args, sock), 0, "a server did not start: %s", th_log(s));
}

/* A on the primary; then, once the standby holds the schema A made, B. */
static void start_a(char *sock_a, size_t cap)
{
    memset(&srv_a, 0, sizeof srv_a);
    srv_a.dir = tu_tmpdir("sba");
    snprintf(sock_a, cap, "%s/a.sock", srv_a.dir);
    const char *args[] = {"-a", sock_a, "--postgresql-shared", uri, "--no-sync", NULL};
    start(&srv_a, args, sock_a);
    tu_pg_wait_replay(uri, sdir);
    memset(&srv_b, 0, sizeof srv_b);
    srv_b.dir = tu_tmpdir("sbb");
}

static void client(tc *c, const char *sock)
{
    cr_assert_eq(tc_open_unix(c, sock), 0, "connect %s", sock);
    uint8_t *p;
    size_t len;
    cr_assert_eq(tc_read(c, &p, &len, TC_TIMEOUT), 1, "no announcement");
    free(p);
    cr_assert_eq(tc_send_raw(c, "Z5", 2), 0);
    cr_assert_geq(tc_register(c), 0);
}

/* c is told of tid (writing oid), then loads data as oid's current state. */
static void told_then_loads(tc *c, uint64_t tid, uint64_t oid, const char *data)
{
    zv *inv = tc_wait_async(c, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv && zv_is_seq(inv) && inv->u.seq.n == 2, "no invalidation for %016llx",
              (unsigned long long)tid);
    cr_assert_eq(tv_u64(inv->u.seq.items[0]), tid);
    int64_t flag;
    zv *r = tc_load_current(c, oid, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "the load failed");
    const zv *d = r->u.seq.items[0];
    cr_assert(d->type == ZV_BYTES && d->u.s.len == strlen(data) &&
              !memcmp(d->u.s.p, data, d->u.s.len), "a stale state was loaded after the "
              "invalidation of %016llx", (unsigned long long)tid);
    cr_assert_eq(tv_u64(r->u.seq.items[1]), tid);
    tc_reset(c);
}

/* Transactions the standby counted in the database (from its postgres
 * database, so this query does not count). */
static long long standby_xacts(void)
{
    char *admin = NULL, sql[256];
    cr_assert(asprintf(&admin, "postgresql:///postgres?host=%s&user=postgres", sdir) > 0);
    snprintf(sql, sizeof sql, "SELECT xact_commit FROM pg_stat_database WHERE datname = '%s'",
             db);
    long long n = tu_pg_num(admin, sql);
    free(admin);
    return n;
}

/* After B stopped (its sessions' counts reach pg_stat_database as they
 * end): the standby served at least want transactions since from. */
static void standby_served(long long from, long long want)
{
    long long d = 0;
    for (int i = 0; i < 1500 && d < want; i++) {
        d = standby_xacts() - from;
        if (d < want)
            usleep(10000);
    }
    cr_assert_geq(d, want, "the standby served %lld transactions, not the %lld loads of B", d,
                  want);
}

/* n loads of oid through c, each answering data. */
static void loads(tc *c, uint64_t oid, const char *data, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t flag;
        zv *r = tc_load_current(c, oid, &flag);
        cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "load %d failed", i);
        const zv *d = r->u.seq.items[0];
        cr_assert(d->u.s.len == strlen(data) && !memcmp(d->u.s.p, data, d->u.s.len));
        tc_reset(c);
    }
}

/* The sample `name{storage="1"...more}` of the server's /metrics at port
 * (fetched with python3's urllib), or -1 when absent. */
static double metric(int port, const char *name, const char *more)
{
    char cmd[512], key[256], *text = NULL;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import urllib.request; print(urllib."
             "request.urlopen('http://127.0.0.1:%d/metrics').read().decode())\"", port);
    snprintf(key, sizeof key, "\n%s{storage=\"1\"%s} ", name, more);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "%s", cmd);
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;)
        fwrite(buf, 1, got, m);
    fclose(m);
    cr_assert_eq(pclose(p), 0, "%s", cmd);
    const char *at = strstr(text, key);
    double v = at ? strtod(at + strlen(key), NULL) : -1;
    free(text);
    return v;
}

static int log_has(const th_server *s, const char *needle)
{
    char *log = th_log(s);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p++)
        n++;
    free(log);
    return n;
}

static int wait_log(const th_server *s, const char *needle, int count, double seconds)
{
    for (double t = 0; t < seconds; t += 0.02) {
        if (log_has(s, needle) >= count)
            return 1;
        usleep(20000);
    }
    return 0;
}

Test(server_pg_standby, a_commit_through_a_is_seen_through_b_which_loads_from_the_standby)
{
    char sock_a[1024], sock_b[1024], conf[1024];
    start_a(sock_a, sizeof sock_a);
    snprintf(sock_b, sizeof sock_b, "%s/b.sock", srv_b.dir);
    snprintf(conf, sizeof conf, "%s/zeo.conf", srv_b.dir);
    FILE *f = fopen(conf, "w");
    cr_assert(f);
    int mport = tu_free_port();
    cr_assert_gt(mport, 0);
    fprintf(f, "<zeo>\n  address %s\n  metrics 127.0.0.1:%d\n</zeo>\n<postgresql 1>\n"
               "  dsn %s\n  shared true\n  read-dsn %s\n  read-max-lag 10\n</postgresql>\n",
            sock_b, mport, uri, suri);
    cr_assert_eq(fclose(f), 0);
    const char *args_b[] = {"-C", conf, "--no-sync", NULL};
    start(&srv_b, args_b, sock_b);
    cr_assert_eq(log_has(&srv_b, "reads go to the standby"), 1, "%s", th_log(&srv_b));
    long long before = standby_xacts();

    tc a, b;
    client(&a, sock_a);
    client(&b, sock_b);
    uint64_t serial = 0;
    char data[32];
    for (int i = 0; i < 10; i++) {
        snprintf(data, sizeof data, "state %d", i);
        uint64_t tid = tc_commit_one(&a, 1 + i, 0, serial, data);
        cr_assert(tid > serial, "commit %d through A failed", i);
        told_then_loads(&b, tid, 0, data);
        serial = tid;
    }
    loads(&b, 0, data, 100);
    /* the server's own count */
    cr_assert_geq(metric(mport, "zeolite_store_reads_total", ",side=\"standby\""), 110);
    cr_assert_eq(metric(mport, "zeolite_store_reads_total", ",side=\"primary\""), 0);
    cr_assert_eq(metric(mport, "zeolite_store_reading_primary", ""), 0);
    tc_close(&a);
    tc_close(&b);
    cr_assert_eq(log_has(&srv_b, "reads go to the primary"), 0, "%s", th_log(&srv_b));
    cr_assert_eq(th_stop(&srv_b), 0);
    standby_served(before, 110);
}

Test(server_pg_standby, a_stopped_standby_sends_b_to_the_primary_and_back)
{
    char sock_a[1024], sock_b[1024];
    start_a(sock_a, sizeof sock_a);
    snprintf(sock_b, sizeof sock_b, "%s/b.sock", srv_b.dir);
    const char *args_b[] = {"-a", sock_b, "--postgresql-shared", uri, "--postgresql-read", suri,
                            "--read-max-lag", "10", "--no-sync", NULL};
    start(&srv_b, args_b, sock_b);
    tc a, b;
    client(&a, sock_a);
    client(&b, sock_b);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "before");
    told_then_loads(&b, t1, 0, "before");

    /* the standby stopped: B's next commit and loads go on, from the primary */
    cr_assert_eq(tu_pg_cluster("halt", sdir, 0), 0);
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "standby down");
    cr_assert(t2 > t1);
    told_then_loads(&b, t2, 0, "standby down");
    cr_assert(wait_log(&srv_b, "reads go to the primary", 1, 5), "%s", th_log(&srv_b));

    /* started again: it catches up, B's reads go back to it */
    cr_assert_eq(tu_pg_cluster("resume", sdir, 0), 0);
    cr_assert(wait_log(&srv_b, "reads are back on the standby", 1, 60), "%s",
              th_log(&srv_b));
    long long before = standby_xacts();
    uint64_t t3 = tc_commit_one(&a, 3, 0, t2, "standby back");
    told_then_loads(&b, t3, 0, "standby back");
    loads(&b, 0, "standby back", 50);
    tc_close(&a);
    tc_close(&b);
    cr_assert_eq(log_has(&srv_b, "reads go to the primary"), 1, "%s", th_log(&srv_b));
    cr_assert_eq(th_stop(&srv_b), 0);
    standby_served(before, 51);
}
