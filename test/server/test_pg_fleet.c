/* Several zeolite servers on one PostgreSQL database (issue 13): A serves
 * it with --postgresql-shared, B with `shared true` in its zeo.conf, each
 * on a Unix socket. A commit through one reaches the other's clients as an
 * invalidation, in order, before the new state loads there, and a client
 * of B never loads a state older than an invalidation it was sent while A
 * commits in a tight loop; an undo through one invalidates the other's
 * clients; a blob committed through one loads through the other; one oid
 * written through both gives one success and one conflict, while disjoint
 * oids vote and finish side by side; new_oids never overlap; one pack at a
 * time, the second refused with a clear error, zeopack's included; four
 * processes on two servers lose no increment; a server whose feed lags
 * answers register and lastTransaction only once it has caught up (never
 * behind the other); kill -9 of A under load leaves B serving, each
 * transaction all or nothing and no lock; a server that cannot follow the
 * others' commits closes and refuses its clients until it can. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "helpers.h"
#include "pgtest.h"
#include "testutil.h"

static th_server srv_a, srv_b;
static char *uri;
static char *cluster;   /* a private cluster's folder, or NULL */

static void fini(void)
{
    th_free(&srv_b);
    th_free(&srv_a);   /* drops the database (srv_a.pg) */
    uri = NULL;
    if (cluster) {
        tu_pg_cluster("stop", cluster, 0);
        free(cluster);
        cluster = NULL;
    }
}

TestSuite(server_pg_fleet, .fini = fini, .timeout = 120);

static void prepare(th_server *s)
{
    memset(s, 0, sizeof *s);
    s->dir = tu_tmpdir("fleet");
    cr_assert(s->dir);
}

/* Where s listens: DIR/zeo.sock (port 0: no TCP). */
static const char *sock_of(const th_server *s)
{
    static char buf[2][512];
    static int next;
    char *p = buf[next++ % 2];
    snprintf(p, sizeof buf[0], "%s/zeo.sock", s->dir);
    return p;
}

/* Connect to s and answer its announcement with enc: 0, or -1. */
static int fleet_connect(tc *c, const th_server *s, proto_enc enc)
{
    if (tc_open_unix(c, sock_of(s)) < 0) {
        tc_close(c);
        return -1;
    }
    uint8_t *p;
    size_t len;
    if (tc_read(c, &p, &len, TC_TIMEOUT) != 1) {
        tc_close(c);
        return -1;
    }
    free(p);
    c->enc = enc;
    return tc_send_raw(c, enc == PROTO_MSGPACK ? "M5" : "Z5", 2);
}

/* A on the flag, B on a zeo.conf: two servers on one new database. */
static void start_fleet(void)
{
    char addr[512], conf[1024], addr_b[512];
    prepare(&srv_a);
    prepare(&srv_b);
    uri = srv_a.pg = tu_pg_newdb(NULL);
    snprintf(addr, sizeof addr, "%s", sock_of(&srv_a));
    const char *args_a[] = {"-a", addr, "--postgresql-shared", uri, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv_a, args_a, addr), 0, "A did not start");
    snprintf(conf, sizeof conf, "%s/zeo.conf", srv_b.dir);
    FILE *f = fopen(conf, "w");
    cr_assert(f);
    fprintf(f, "<postgresql 1>\n  dsn %s\n  shared true\n</postgresql>\n", uri);
    cr_assert_eq(fclose(f), 0);
    snprintf(addr_b, sizeof addr_b, "%s", sock_of(&srv_b));
    const char *args_b[] = {"-a", addr_b, "-C", conf, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv_b, args_b, addr_b), 0, "B did not start");
}

/* Start s on a zeo.conf serving the database shared, with extra keys. */
static void start_conf(th_server *s, const char *extra)
{
    char addr[512], *conf = tu_path(s->dir, "zeo.conf"), *text = NULL;
    cr_assert(asprintf(&text, "<postgresql 1>\n  dsn %s\n  shared true\n%s</postgresql>\n",
                       uri, extra) > 0);
    cr_assert_eq(tu_write_file(conf, text, strlen(text)), 0);
    snprintf(addr, sizeof addr, "%s", sock_of(s));
    /* durable commits: PostgreSQL is crashed under them */
    const char *args[] = {"-a", addr, "-C", conf, NULL};
    cr_assert_eq(th_spawn(s, args, addr), 0, "a server did not start");
    free(conf);
    free(text);
}

static void client(tc *c, const th_server *s, proto_enc enc)
{
    cr_assert_eq(fleet_connect(c, s, enc), 0);
    cr_assert_geq(tc_register(c), 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The servers' logs to stderr, for a failure that depends on what they did. */
static void dump_logs(void)
{
    const th_server *all[2] = {&srv_a, &srv_b};
    for (int i = 0; i < 2; i++) {
        char *log = all[i]->dir ? th_log(all[i]) : NULL;
        fprintf(stderr, "---- %s's log ----\n%s---- end ----\n", i ? "B" : "A", log ? log : "");
        free(log);
    }
}

static uint64_t last_transaction(tc *c)
{
    int64_t flag;
    zv *r = tc_call(c, "lastTransaction", zv_tuple(c->a, 0), &flag);
    cr_assert(r && flag == 0);
    return tv_u64(r);
}

/* The invalidation c expects next: tid and the one oid it names. */
static void expect_invalidation(tc *c, uint64_t tid, uint64_t oid)
{
    zv *inv = tc_wait_async(c, "invalidateTransaction", TC_TIMEOUT);
    if (!inv)
        dump_logs();
    cr_assert(inv, "no invalidation for %016llx", (unsigned long long)tid);
    cr_assert(zv_is_seq(inv) && inv->u.seq.n == 2);
    cr_assert_eq(tv_u64(inv->u.seq.items[0]), tid, "invalidations out of order");
    const zv *oids = inv->u.seq.items[1];
    cr_assert(zv_is_seq(oids) && oids->u.seq.n == 1);
    cr_assert_eq(tv_u64(oids->u.seq.items[0]), oid);
}

static void expect_current(tc *c, uint64_t oid, const char *data, uint64_t tid)
{
    int64_t flag;
    zv *r = tc_load_current(c, oid, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "the load failed");
    const zv *d = r->u.seq.items[0];
    cr_assert(d->type == ZV_BYTES && d->u.s.len == strlen(data) &&
              !memcmp(d->u.s.p, data, d->u.s.len), "a stale or wrong state was loaded");
    cr_assert_eq(tv_u64(r->u.seq.items[1]), tid);
}

#define ROUNDS 20

/* Commits alternate between A and B on one oid: each reaches the other
 * server's client as its next invalidation, that server's lastTransaction
 * has moved to it, and the new state loads there. The lag from the
 * committer's tpc_finish reply to the other client's invalidation is
 * printed (indicative only: nothing here depends on timing). */
static void commits_cross(proto_enc ea, proto_enc eb)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, ea);
    client(&b, &srv_b, eb);
    uint64_t serial = 0;
    double lag[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        tc *from = i % 2 ? &b : &a, *to = i % 2 ? &a : &b;
        char data[32];
        snprintf(data, sizeof data, "state %d", i);
        uint64_t tid = tc_commit_one(from, 1 + i, 0, serial, data);
        double t0 = now_ms();
        cr_assert(tid > serial, "commit %d failed", i);
        expect_invalidation(to, tid, 0);
        lag[i] = now_ms() - t0;
        cr_assert_eq(last_transaction(to), tid);
        expect_current(to, 0, data, tid);
        serial = tid;
        tc_reset(&a);
        tc_reset(&b);
    }
    qsort(lag, ROUNDS, sizeof lag[0], cmp_double);
    fprintf(stderr, "invalidation lag across servers over %d commits: p50 %.2f ms, max %.2f ms\n",
            ROUNDS, lag[ROUNDS / 2], lag[ROUNDS - 1]);
    /* a client registering now gets the last tid from either server */
    tc c;
    cr_assert_eq(fleet_connect(&c, &srv_a, ea), 0);
    cr_assert_eq(tc_register(&c), (int64_t)serial);
    tc_close(&c);
    tc_close(&a);
    tc_close(&b);
}

Test(server_pg_fleet, a_commit_through_one_server_invalidates_and_loads_through_the_other)
{
    commits_cross(PROTO_PICKLE, PROTO_MSGPACK);
}

Test(server_pg_fleet, the_same_across_servers_in_the_other_encodings)
{
    commits_cross(PROTO_MSGPACK, PROTO_PICKLE);
}

/* Read messages until the reply to msgid id: its value, the flag in *flag
 * (async messages are kept for tc_wait_async, as tc_call keeps them). */
static zv *wait_reply(tc *c, int64_t id, int64_t *flag)
{
    for (;;) {
        proto_msg m;
        int64_t got;
        cr_assert_eq(tc_recv(c, &m, 30000), 1, "no reply");
        if (!strcmp(m.name, ".reply") && zv_get_int(m.msgid, &got) && got == id) {
            *flag = m.flag;
            return m.args;
        }
        if (c->n_async < sizeof c->asyncs / sizeof c->asyncs[0])
            c->asyncs[c->n_async++] = m;
    }
}

/* A holds oid 0 voted; B's vote on it waits for A's lock in the database,
 * then sees A's commit as a conflict: exactly one of them commits. */
static void one_oid_through_both(proto_enc ea, proto_enc eb)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, ea);
    client(&b, &srv_b, eb);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    cr_assert(t1);
    expect_invalidation(&b, t1, 0);
    int64_t flag;
    tc_begin_store(&a, 2, 0, t1, "through A");
    zv *r = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    cr_assert(r && flag == 0, "A's vote failed");
    tc_begin_store(&b, 3, 0, t1, "through B");
    int64_t vote_b = tc_send(&b, NULL, 0, "vote", tv_tuple(b.a, 1, tv_int(b.a, 3)));
    tu_pg_wait_lock(uri, "%pg_advisory_xact_lock%");
    r = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    cr_assert(r && flag == 0, "A's commit failed");
    uint64_t t2 = tv_u64(r);
    /* the vote lists the write conflict for the client to resolve: B's
     * transaction cannot commit as it stands */
    r = wait_reply(&b, vote_b, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 1, "B's vote did not report "
              "the conflict (flag %lld)", (long long)flag);
    proto_conflict w = {.oid = 0, .current = t2, .sent = t1,
                        .data = {(const uint8_t *)"through B", 9}};
    zv *item = NULL;
    cr_assert_eq(proto_conflict_item(&item, b.a, &w), 0);
    cr_expect(tv_equal_as(&b, r->u.seq.items[0], item), "the vote's conflict is not A's commit");
    tc_call(&b, "tpc_abort", tv_tuple(b.a, 1, tv_int(b.a, 3)), &flag);
    expect_invalidation(&b, t2, 0);
    expect_current(&b, 0, "through A", t2);
    /* B's client, told of A's commit, commits against it */
    uint64_t t3 = tc_commit_one(&b, 4, 0, t2, "then through B");
    cr_assert_gt(t3, t2);
    expect_invalidation(&a, t3, 0);
    expect_current(&a, 0, "then through B", t3);
    tc_close(&a);
    tc_close(&b);
}

Test(server_pg_fleet, one_oid_written_through_both_servers_commits_once)
{
    one_oid_through_both(PROTO_PICKLE, PROTO_PICKLE);
}

Test(server_pg_fleet, one_oid_through_both_servers_in_msgpack)
{
    one_oid_through_both(PROTO_MSGPACK, PROTO_MSGPACK);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

Test(server_pg_fleet, new_oids_through_both_servers_never_overlap)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_MSGPACK);
    enum { CALLS = 8, PER = 100 };
    uint64_t *all = calloc(2 * CALLS * PER, sizeof *all);
    size_t n = 0;
    for (int i = 0; i < 2 * CALLS; i++) {
        tc *c = i % 2 ? &b : &a;
        int64_t flag;
        zv *r = tc_call(c, "new_oids", tv_tuple(c->a, 1, tv_int(c->a, PER)), &flag);
        cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == PER);
        for (size_t k = 0; k < PER; k++)
            all[n++] = tv_u64(r->u.seq.items[k]);
        tc_reset(c);
    }
    qsort(all, n, sizeof *all, cmp_u64);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(all[i], all[i - 1], "oid %016llx handed out twice",
                      (unsigned long long)all[i]);
    cr_assert_neq(all[0], 0, "the root's oid was handed out");
    free(all);
    tc_close(&a);
    tc_close(&b);
}

/* `zeolite pack` on server s: its exit status, its output in *out. */
static int zeopack(const th_server *s, char **out)
{
    char *log = tu_path(s->dir, "pack.out");
    const char *argv[] = {tu_zeolite_bin(), "pack", sock_of(s), "-d", "0", NULL};
    pid_t pid = tu_spawn(argv, log);
    cr_assert_gt(pid, 0);
    int status = -1;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    size_t len;
    *out = (char *)tu_read_file(log, &len);
    free(log);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A's pack is held on its last row by a session of the test, so it stays
 * running: a pack through B is refused (to a client and to zeopack) with
 * the reason, B commits and loads meanwhile, and once A's pack is over B
 * may pack. */
Test(server_pg_fleet, a_second_pack_through_the_other_server_is_refused_while_one_runs)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "root 2");
    cr_assert(t1 && t2);
    PGconn *hold = PQconnectdb(uri);
    cr_assert_eq(PQstatus(hold), CONNECTION_OK);
    PGresult *res = PQexec(hold, "BEGIN; SELECT 1 FROM zeolite.meta WHERE name = 'pack_tid' "
                                 "FOR UPDATE");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(hold));
    PQclear(res);
    double when = (double)time(NULL) + 3600;
    int64_t pack_a = tc_send(&a, NULL, 0, "pack", tv_tuple(a.a, 1, zv_float(a.a, when)));
    tu_pg_wait_lock(uri, "%pack_tid%");

    int64_t flag;
    zv *r = tc_call(&b, "pack", tv_tuple(b.a, 1, zv_float(b.a, when)), &flag);
    cr_assert(r);
    cr_assert_eq(flag, 2, "a second pack ran");
    const zv *args = zv_is_seq(r) && r->u.seq.n == 2 ? r->u.seq.items[1] : NULL;
    const zv *msg = args && zv_is_seq(args) && args->u.seq.n ? args->u.seq.items[0] : NULL;
    cr_assert(msg && msg->type == ZV_STR, "the refusal has no message");
    cr_expect(memmem(msg->u.s.p, msg->u.s.len, "another pack", 12), "%.*s",
              (int)msg->u.s.len, (const char *)msg->u.s.p);
    char *out = NULL;
    cr_expect_neq(zeopack(&srv_b, &out), 0, "zeopack through B succeeded");
    cr_expect(out && strstr(out, "another pack"), "zeopack said: %s", out ? out : "");
    free(out);
    uint64_t t3 = tc_commit_one(&b, 3, 0, t2, "through B while A packs");
    cr_assert_gt(t3, t2);
    expect_current(&b, 0, "through B while A packs", t3);

    res = PQexec(hold, "ROLLBACK");
    PQclear(res);
    PQfinish(hold);
    r = wait_reply(&a, pack_a, &flag);
    cr_assert_eq(flag, 0, "A's pack failed");
    out = NULL;
    cr_expect_eq(zeopack(&srv_b, &out), 0, "B could not pack after A: %s", out ? out : "");
    free(out);
    expect_current(&a, 0, "through B while A packs", t3);
    tc_close(&a);
    tc_close(&b);
}

/* register on c: 0 when accepted; else the error's text in why. */
static int try_register(tc *c, const th_server *s, char *why, size_t cap)
{
    why[0] = 0;
    if (fleet_connect(c, s, PROTO_PICKLE) < 0)
        return -1;
    int64_t flag;
    zv *r = tc_call(c, "register", tv_tuple(c->a, 2, tv_str(c->a, "1"), zv_bool(c->a, 0)),
                    &flag);
    if (r && flag == 0)
        return 0;
    const zv *args = r && zv_is_seq(r) && r->u.seq.n == 2 ? r->u.seq.items[1] : NULL;
    const zv *m = args && zv_is_seq(args) && args->u.seq.n ? args->u.seq.items[0] : NULL;
    if (m && m->type == ZV_STR)
        snprintf(why, cap, "%.*s", (int)m->u.s.len, (const char *)m->u.s.p);
    tc_close(c);
    return -1;
}

static int log_has(const th_server *s, const char *what)
{
    char *log = th_log(s);
    int has = log && strstr(log, what);
    free(log);
    return has;
}

/* PostgreSQL away for longer than retry-seconds (a private cluster): B can
 * no longer say what A commits, so it closes its clients and refuses new
 * ones, saying why; once PostgreSQL is back it accepts them again, and a
 * commit through A reaches them. */
Test(server_pg_fleet, a_lost_feed_closes_and_refuses_clients_until_it_is_back, .timeout = 180)
{
    char *dir = NULL;
    cr_assert(asprintf(&dir, "/tmp/zlpgf-%d", (int)getpid()) > 0);
    cr_assert_eq(tu_pg_cluster("start", dir, 0), 0, "the private cluster did not start");
    cluster = dir;
    uri = tu_pg_newdb(dir);
    prepare(&srv_a);
    prepare(&srv_b);
    srv_a.pg = uri;
    start_conf(&srv_a, "  retry-seconds 1\n");
    start_conf(&srv_b, "  retry-seconds 1\n");
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_PICKLE);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "before");
    cr_assert(t1);
    expect_invalidation(&b, t1, 0);

    cr_assert_eq(tu_pg_cluster("halt", dir, 0), 0);
    cr_assert(tc_wait_closed(&b, 20000), "B kept a client it cannot keep up to date");
    tc_close(&b);
    char why[600];
    cr_assert_neq(try_register(&b, &srv_b, why, sizeof why), 0, "B accepted a client");
    cr_expect(strstr(why, "not served for now"), "the refusal says: %s", why);
    cr_expect(log_has(&srv_b, "refusing new ones"), "the loss was not logged");

    cr_assert_eq(tu_pg_cluster("resume", dir, 0), 0);
    int back = 0;
    for (int i = 0; i < 80 && !back; i++) {
        back = try_register(&b, &srv_b, why, sizeof why) == 0;
        if (!back)
            usleep(250000);
    }
    if (!back) {
        char *log = th_log(&srv_b);
        fprintf(stderr, "---- B's log ----\n%s---- end ----\n", log ? log : "");
        free(log);
    }
    cr_assert(back, "B never accepted clients again: %s", why);
    cr_expect(log_has(&srv_b, "clients are accepted"), "the return was not logged");
    expect_current(&b, 0, "before", t1);
    /* A reconnects by itself too; its next commit reaches B's client */
    tc_close(&a);
    uint64_t t2 = 0;
    for (int i = 0; i < 80 && !t2; i++) {
        if (try_register(&a, &srv_a, why, sizeof why) == 0) {
            t2 = tc_commit_one(&a, 10 + i, 0, t1, "after");
            tc_close(&a);
        }
        if (!t2)
            usleep(250000);
    }
    cr_assert_gt(t2, t1, "no commit through A after the outage");
    expect_invalidation(&b, t2, 0);
    expect_current(&b, 0, "after", t2);
    tc_close(&b);
}

#define COUNTER_CHILDREN 4
#define COUNTER_COMMITS 25

/* A child: COUNTER_COMMITS committed increments of the counter in oid 0
 * through server s, retrying each after a conflict. Exit status
 * 0, or 1 on failure. */
static void counter_child(const th_server *s, int index)
{
    tc c;
    if (fleet_connect(&c, s, index % 2 ? PROTO_MSGPACK : PROTO_PICKLE) < 0 ||
        tc_register(&c) < 0)
        _exit(1);
    for (int done = 0, txn = 1; done < COUNTER_COMMITS; txn++) {
        int64_t flag;
        zv *r = tc_load_current(&c, 0, &flag);
        if (!r || flag != 0 || !zv_is_seq(r) || r->u.seq.n != 3 ||
            r->u.seq.items[0]->type != ZV_BYTES)
            _exit(1);
        char data[32];
        const zv *d = r->u.seq.items[0];
        snprintf(data, sizeof data, "%.*s", (int)d->u.s.len, (const char *)d->u.s.p);
        uint64_t serial = tv_u64(r->u.seq.items[1]);
        snprintf(data, sizeof data, "%ld", atol(data) + 1);
        tc_begin_store(&c, txn, 0, serial, data);
        zv *v = tc_call(&c, "vote", tv_tuple(c.a, 1, tv_int(c.a, txn)), &flag);
        if (!v)
            _exit(1);
        if (flag != 0 || !zv_is_seq(v) || v->u.seq.n != 0) {   /* a conflict: again */
            tc_call(&c, "tpc_abort", tv_tuple(c.a, 1, tv_int(c.a, txn)), &flag);
        } else {
            zv *t = tc_call(&c, "tpc_finish", tv_tuple(c.a, 1, tv_int(c.a, txn)), &flag);
            if (!t || flag != 0)
                _exit(1);
            done++;
        }
        tc_reset(&c);
    }
    tc_close(&c);
    _exit(0);
}

/* Wait (on its invalidations) until c's server has told it of tid. */
static void wait_seen(tc *c, uint64_t tid)
{
    for (int i = 0; i < 1000 && last_transaction(c) < tid; i++) {
        cr_assert(tc_wait_async(c, "invalidateTransaction", TC_TIMEOUT),
                  "no invalidation up to %016llx", (unsigned long long)tid);
        tc_reset(c);
    }
    cr_assert_geq(last_transaction(c), tid);
}

/* Four processes, two on each server, increment one counter: every
 * committed increment is in the final value, none twice. */
Test(server_pg_fleet, four_processes_on_two_servers_lose_no_increment)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_PICKLE);
    uint64_t t0 = tc_commit_one(&a, 1, 0, 0, "0");
    cr_assert(t0);
    expect_invalidation(&b, t0, 0);   /* B serves the counter from now on */
    pid_t pids[COUNTER_CHILDREN];
    for (int i = 0; i < COUNTER_CHILDREN; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0)
            counter_child(i < COUNTER_CHILDREN / 2 ? &srv_a : &srv_b, i);
    }
    for (int i = 0; i < COUNTER_CHILDREN; i++) {
        int status;
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    char want[32];
    snprintf(want, sizeof want, "%d", COUNTER_CHILDREN * COUNTER_COMMITS);
    /* each server has told its client of every commit, the other's too */
    uint64_t la = last_transaction(&a), lb = last_transaction(&b);
    wait_seen(&a, la > lb ? la : lb);
    wait_seen(&b, la > lb ? la : lb);
    int64_t flag;
    zv *r = tc_load_current(&b, 0, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3);
    const zv *d = r->u.seq.items[0];
    cr_expect(d->u.s.len == strlen(want) && !memcmp(d->u.s.p, want, d->u.s.len),
              "the counter is %.*s, not %s", (int)d->u.s.len, (const char *)d->u.s.p, want);
    uint64_t last_b = last_transaction(&b);
    cr_expect_eq(last_transaction(&a), last_b, "the servers disagree on the last transaction");
    tc_close(&a);
    tc_close(&b);
}

/* ---- a server whose feed lags ---------------------------------------------- */

/* Is the oldest async message c kept an invalidation of tid? */
static int kept_invalidation(const tc *c, uint64_t tid)
{
    for (size_t i = 0; i < c->n_async; i++) {
        const proto_msg *m = &c->asyncs[i];
        if (!strcmp(m->name, "invalidateTransaction") && zv_is_seq(m->args) &&
            m->args->u.seq.n == 2 && tv_u64(m->args->u.seq.items[0]) == tid)
            return 1;
    }
    return 0;
}

/* B's feed delivers A's commits to its loop a second late
 * (ZEOLITE_FEED_HOLD_MS), as a lagging server's would: B's store knows
 * them, its clients not yet. A client of B asking lastTransaction right
 * after A's commit, and a client registering on B then, get A's tid, never
 * an older one (which a ZEO client whose cache came from A refuses as
 * "Server behind client"), and the registered client has the invalidation
 * before the answer, so nothing it reads next is older. The test asks at
 * once: B's feed may not have heard of A's commit yet, and store_sync asks
 * the primary. */
/* A, and B whose feed holds each of A's commits hold_ms (test hook). */
static void start_lagging_fleet(const char *hold_ms)
{
    prepare(&srv_a);
    prepare(&srv_b);
    uri = srv_a.pg = tu_pg_newdb(NULL);
    char addr[512];
    snprintf(addr, sizeof addr, "%s", sock_of(&srv_a));
    const char *args_a[] = {"-a", addr, "--postgresql-shared", uri, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv_a, args_a, addr), 0, "A did not start");
    cr_assert_eq(setenv("ZEOLITE_FEED_HOLD_MS", hold_ms, 1), 0);
    snprintf(addr, sizeof addr, "%s", sock_of(&srv_b));
    const char *args_b[] = {"-a", addr, "--postgresql-shared", uri, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv_b, args_b, addr), 0, "B did not start");
    unsetenv("ZEOLITE_FEED_HOLD_MS");
}

Test(server_pg_fleet, a_lagging_server_answers_the_last_tid_only_once_caught_up)
{
    start_lagging_fleet("1000");

    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_PICKLE);
    uint64_t serial = 0;
    for (int round = 0; round < 2; round++) {
        /* B's client: pickle, then the one registered in round 0 (msgpack);
         * the one registering: msgpack, then pickle */
        proto_enc enc = round ? PROTO_PICKLE : PROTO_MSGPACK;
        char data[32];
        snprintf(data, sizeof data, "round %d", round);
        uint64_t t1 = tc_commit_one(&a, 10 + round, 0, serial, data);
        cr_assert(t1 > serial);
        /* a client of B already registered: lastTransaction */
        uint64_t last = last_transaction(&b);
        cr_assert_eq(last, t1, "B answered %016llx, behind A's %016llx",
                     (unsigned long long)last, (unsigned long long)t1);
        cr_assert(kept_invalidation(&b, t1), "the answer came before the invalidation");
        expect_current(&b, 0, data, t1);
        tc_reset(&b);
        /* a client registering on B now */
        uint64_t t2 = tc_commit_one(&a, 20 + round, 0, t1, "again");
        cr_assert(t2 > t1);
        tc c;
        cr_assert_eq(fleet_connect(&c, &srv_b, enc), 0);
        int64_t reg = tc_register(&c);
        cr_assert_eq(reg, (int64_t)t2, "register on B answered %016llx, behind A's %016llx",
                     (unsigned long long)reg, (unsigned long long)t2);
        expect_current(&c, 0, "again", t2);
        serial = t2;
        tc_reset(&a);
        tc_close(&b);
        b = c;
    }
    cr_expect(!log_has(&srv_b, "may be behind"), "a sync failed");
    tc_close(&a);
    tc_close(&b);
}

/* While B lags: lastTransaction calls pipelined by one client are all
 * answered, in order, with A's tid, after its invalidation; a client that
 * goes while its register waits costs nothing (B serves on, and stops
 * cleanly at the end: no sanitizer report, exit 0). */
Test(server_pg_fleet, pipelined_calls_and_a_client_gone_while_a_lagging_server_syncs)
{
    start_lagging_fleet("500");
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_MSGPACK);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "one");
    cr_assert(t1);
    tc gone;
    cr_assert_eq(fleet_connect(&gone, &srv_b, PROTO_PICKLE), 0);
    tc_send(&gone, NULL, 0, "register", tv_tuple(gone.a, 2, tv_str(gone.a, "1"),
                                                  zv_bool(gone.a, 0)));
    enum { CALLS = 5 };
    int64_t ids[CALLS];
    for (int i = 0; i < CALLS; i++)
        ids[i] = tc_send(&b, NULL, 0, "lastTransaction", zv_tuple(b.a, 0));
    tc_close(&gone);
    int invalidated = 0, answered = 0;
    while (answered < CALLS) {
        proto_msg m;
        cr_assert_eq(tc_recv(&b, &m, TC_TIMEOUT), 1, "B did not answer");
        if (!strcmp(m.name, "invalidateTransaction")) {
            cr_assert_eq(tv_u64(m.args->u.seq.items[0]), t1);
            invalidated++;
            continue;
        }
        int64_t id;
        cr_assert(!strcmp(m.name, ".reply") && zv_get_int(m.msgid, &id));
        cr_assert_eq(id, ids[answered], "the answers came out of order");
        cr_assert(invalidated, "an answer came before the invalidation");
        cr_assert_eq(tv_u64(m.args), t1, "B answered %016llx, behind A's %016llx",
                     (unsigned long long)tv_u64(m.args), (unsigned long long)t1);
        answered++;
    }
    cr_assert_eq(invalidated, 1);
    tc_reset(&b);
    uint64_t t2 = tc_commit_one(&b, 2, 0, t1, "two");
    cr_assert_gt(t2, t1, "B could not commit after its client went");
    tc c;
    client(&c, &srv_b, PROTO_PICKLE);
    expect_current(&c, 0, "two", t2);
    tc_close(&c);
    tc_close(&a);
    tc_close(&b);
}

/* ---- undo and blobs across servers ------------------------------------------- */

/* The vote and tpc_finish of txn on c: the vote's list in *voted, the tid. */
static uint64_t vote_finish(tc *c, int64_t txn, zv **voted)
{
    int64_t flag;
    zv *r = tc_call(c, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    cr_assert(r && flag == 0, "the vote failed: %s", r ? tv_error_class(r) : "no answer");
    if (voted)
        *voted = r;
    r = tc_call(c, "tpc_finish", tv_tuple(c->a, 1, tv_int(c->a, txn)), &flag);
    cr_assert(r && flag == 0, "tpc_finish failed");
    return tv_u64(r);
}

/* Two commits through A; B's client undoes the second: A's client is sent
 * the undo's invalidation and loads the first state back, at the undo's
 * tid. */
static void undo_across(proto_enc ea, proto_enc eb)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, ea);
    client(&b, &srv_b, eb);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "first");
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "second");
    cr_assert(t1 && t2);
    expect_invalidation(&b, t1, 0);
    expect_invalidation(&b, t2, 0);
    tc_reset(&a);
    tc_reset(&b);
    tc_send(&b, NULL, 1, "tpc_begin",
            tv_tuple(b.a, 4, tv_int(b.a, 3), tv_bytes(b.a, "u"), tv_bytes(b.a, "undo"),
                     tv_dict0(b.a)));
    tc_send(&b, NULL, 1, "undoa", tv_tuple(b.a, 2, tv_oid(b.a, t2), tv_int(b.a, 3)));
    zv *voted = NULL;
    uint64_t t3 = vote_finish(&b, 3, &voted);
    cr_assert(zv_is_seq(voted) && voted->u.seq.n == 1 && tv_u64(voted->u.seq.items[0]) == 0,
              "the undo's vote does not name oid 0");
    cr_assert_gt(t3, t2);
    expect_invalidation(&a, t3, 0);
    expect_current(&a, 0, "first", t3);
    expect_current(&b, 0, "first", t3);
    tc_close(&a);
    tc_close(&b);
}

Test(server_pg_fleet, an_undo_through_one_server_invalidates_the_other_servers_clients)
{
    undo_across(PROTO_PICKLE, PROTO_MSGPACK);
}

Test(server_pg_fleet, the_undo_across_servers_in_the_other_encodings)
{
    undo_across(PROTO_MSGPACK, PROTO_PICKLE);
}

/* sendBlob(oid, tid) on c: the bytes streamed (malloc'd, NUL-terminated). */
static char *send_blob(tc *c, uint64_t oid, uint64_t tid)
{
    int64_t flag;
    zv *r = tc_call(c, "sendBlob", tv_tuple(c->a, 2, tv_oid(c->a, oid), tv_oid(c->a, tid)),
                    &flag);
    cr_assert(r && flag == 0, "sendBlob failed: %s", r ? tv_error_class(r) : "no answer");
    char *got = calloc(1, 1);
    size_t len = 0;
    int stopped = 0;
    /* the chunks and the stop, whether they came before the reply or after */
    for (size_t i = 0; !stopped; i++) {
        proto_msg m;
        if (i < c->n_async)
            m = c->asyncs[i];
        else
            cr_assert_eq(tc_recv(c, &m, TC_TIMEOUT), 1, "the blob's stream stopped short");
        stopped = !strcmp(m.name, "receiveBlobStop");
        if (strcmp(m.name, "receiveBlobChunk"))
            continue;
        const zv *chunk = m.args->u.seq.items[2];
        got = realloc(got, len + chunk->u.s.len + 1);
        memcpy(got + len, chunk->u.s.p, chunk->u.s.len);
        len += chunk->u.s.len;
        got[len] = 0;
    }
    tc_reset(c);
    return got;
}

/* A blob uploaded through A (storeBlobStart/Chunk/End) streams through B
 * to clients of either encoding, from the database: B's blob cache is its
 * own. */
Test(server_pg_fleet, a_blob_committed_through_one_server_loads_through_the_other)
{
    start_fleet();
    tc a, b1, b2;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b1, &srv_b, PROTO_PICKLE);
    client(&b2, &srv_b, PROTO_MSGPACK);
    enum { BODY = 300000 };
    char *body = malloc(BODY + 1);
    for (size_t i = 0; i < BODY; i++)
        body[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    body[BODY] = 0;
    zv_arena *ar = a.a;
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(ar, 4, tv_int(ar, 1), tv_bytes(ar, "u"), tv_bytes(ar, "blob"),
                     tv_dict0(ar)));
    tc_send(&a, NULL, 1, "storeBlobStart", zv_tuple(ar, 0));
    for (size_t off = 0; off < BODY; off += 65536) {
        size_t n = BODY - off < 65536 ? BODY - off : 65536;
        tc_send(&a, NULL, 1, "storeBlobChunk",
                tv_tuple(ar, 1, zv_bytes(ar, (const uint8_t *)body + off, n)));
    }
    tc_send(&a, NULL, 1, "storeBlobEnd",
            tv_tuple(ar, 4, tv_oid(ar, 5), tv_oid(ar, 0), tv_bytes(ar, "blob record"),
                     tv_int(ar, 1)));
    uint64_t t = vote_finish(&a, 1, NULL);
    cr_assert_gt(t, 0);
    tc *bs[2] = {&b1, &b2};
    for (int i = 0; i < 2; i++) {
        expect_invalidation(bs[i], t, 5);
        expect_current(bs[i], 5, "blob record", t);
        char *got = send_blob(bs[i], 5, t);
        cr_assert_eq(strlen(got), BODY, "B streamed %zu bytes of %d", strlen(got), BODY);
        cr_assert(!memcmp(got, body, BODY), "B streamed other bytes");
        free(got);
    }
    free(body);
    tc_close(&a);
    tc_close(&b1);
    tc_close(&b2);
}

/* ---- order under a stream of commits ------------------------------------------- */

#define ORDER_OIDS 8
#define ORDER_TXNS 150
#define ORDER_LOADS 4   /* loads in flight on each client of B */

/* Transaction i (0: all of them) writes the decimal i to these oids. */
static int order_writes(int i, uint64_t oid)
{
    return i == 0 || oid == 1 + (uint64_t)(i % ORDER_OIDS) ||
           oid == 1 + (uint64_t)((i + 3) % ORDER_OIDS);
}

/* What a client of B has been told and has loaded, per oid. */
typedef struct watcher {
    tc c;
    int n_inv;                         /* invalidations received: the next is txn n_inv */
    uint64_t last_tid;
    uint64_t inv_tid[ORDER_OIDS + 1];  /* the last invalidation naming the oid */
    int inv_txn[ORDER_OIDS + 1];       /* ... and its transaction */
    int loaded[ORDER_OIDS + 1];        /* the newest value loaded */
    uint64_t sent[ORDER_LOADS];        /* the oids of the loads in flight, by msgid % */
    int64_t first_id;
    size_t loads;
} watcher;

static void watch_invalidation(watcher *w, const zv *args)
{
    cr_assert(zv_is_seq(args) && args->u.seq.n == 2);
    uint64_t tid = tv_u64(args->u.seq.items[0]);
    cr_assert_gt(tid, w->last_tid, "invalidations out of order");
    w->last_tid = tid;
    int txn = w->n_inv++;
    const zv *oids = args->u.seq.items[1];
    for (size_t k = 0; k < oids->u.seq.n; k++) {
        uint64_t oid = tv_u64(oids->u.seq.items[k]);
        cr_assert(oid >= 1 && oid <= ORDER_OIDS && order_writes(txn, oid),
                  "invalidation %d names oid %016llx", txn, (unsigned long long)oid);
        w->inv_tid[oid] = tid;
        w->inv_txn[oid] = txn;
    }
}

/* A load's reply: never older than an invalidation received before it. */
static void watch_load(watcher *w, uint64_t oid, const zv *r, int64_t flag)
{
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "loading oid %llu through B "
              "failed (%s) after the invalidation of transaction %d",
              (unsigned long long)oid, r ? tv_error_class(r) : "no answer", w->inv_txn[oid]);
    const zv *d = r->u.seq.items[0];
    char text[32];
    snprintf(text, sizeof text, "%.*s", (int)d->u.s.len, (const char *)d->u.s.p);
    int value = atoi(text);
    uint64_t start = tv_u64(r->u.seq.items[1]);
    cr_assert_geq(start, w->inv_tid[oid], "oid %llu loaded at %016llx after its invalidation "
                  "%016llx", (unsigned long long)oid, (unsigned long long)start,
                  (unsigned long long)w->inv_tid[oid]);
    cr_assert_geq(value, w->inv_txn[oid], "oid %llu: state %d loaded after the invalidation "
                  "of transaction %d", (unsigned long long)oid, value, w->inv_txn[oid]);
    cr_assert_geq(value, w->loaded[oid], "oid %llu went back from %d to %d",
                  (unsigned long long)oid, w->loaded[oid], value);
    cr_assert(order_writes(value, oid), "oid %llu holds %d", (unsigned long long)oid, value);
    cr_assert_eq(r->u.seq.items[2]->type, ZV_NONE, "a current load has an end tid");
    w->loaded[oid] = value;
    w->loads++;
}

/* Send ORDER_LOADS loads, the oids last invalidated first. */
static void watch_send(watcher *w, int round)
{
    w->first_id = w->c.next_msgid;
    for (int k = 0; k < ORDER_LOADS; k++) {
        uint64_t oid = k < 2 && w->n_inv > 0
                           ? 1 + (uint64_t)((w->n_inv - 1 + 3 * k) % ORDER_OIDS)
                           : 1 + (uint64_t)((round + k) % ORDER_OIDS);
        w->sent[k] = oid;
        tc_send(&w->c, NULL, 0, "loadBefore",
                tv_tuple(w->c.a, 2, tv_oid(w->c.a, oid), tv_oid(w->c.a, 0x7fffffffffffffffULL)));
    }
}

/* Read until every load sent has its reply, in the order they come. */
static void watch_drain(watcher *w)
{
    for (int got = 0; got < ORDER_LOADS;) {
        proto_msg m;
        cr_assert_eq(tc_recv(&w->c, &m, TC_TIMEOUT), 1, "B did not answer");
        int64_t id;
        if (!strcmp(m.name, "invalidateTransaction")) {
            watch_invalidation(w, m.args);
        } else if (!strcmp(m.name, ".reply") && zv_get_int(m.msgid, &id)) {
            cr_assert(id >= w->first_id && id < w->first_id + ORDER_LOADS);
            watch_load(w, w->sent[id - w->first_id], m.args, m.flag);
            got++;
        }
    }
    tc_reset(&w->c);
}

/* A commits ORDER_TXNS transactions in a tight loop (two oids of eight
 * each) while two clients of B, one in each encoding, keep loads in
 * flight, those oids it was just told of first; B's reads wait for a
 * commit after their dispatch (ZEOLITE_OFFLOOP_HOLD_MS) so that its
 * workers read newer snapshots than the calls' own. Every load is at least
 * as new as the last invalidation of its oid received before it, no value
 * goes back, and both clients end on the last state. */
Test(server_pg_fleet, a_client_of_B_never_loads_a_state_older_than_its_invalidations)
{
    cr_assert_eq(setenv("ZEOLITE_OFFLOOP_HOLD_MS", "20", 1), 0);
    start_fleet();
    unsetenv("ZEOLITE_OFFLOOP_HOLD_MS");
    tc a;
    client(&a, &srv_a, PROTO_PICKLE);
    static watcher ws[2];
    memset(ws, 0, sizeof ws);
    client(&ws[0].c, &srv_b, PROTO_PICKLE);
    client(&ws[1].c, &srv_b, PROTO_MSGPACK);
    uint64_t serial[ORDER_OIDS + 1] = {0};
    for (int i = 0; i <= ORDER_TXNS; i++) {
        if (i > 0)
            for (int k = 0; k < 2; k++)
                watch_send(&ws[k], i);
        zv_arena *ar = a.a;
        tc_send(&a, NULL, 1, "tpc_begin",
                tv_tuple(ar, 4, tv_int(ar, i + 1), tv_bytes(ar, "u"), tv_bytes(ar, "d"),
                         tv_dict0(ar)));
        char data[16];
        snprintf(data, sizeof data, "%d", i);
        for (uint64_t oid = 1; oid <= ORDER_OIDS; oid++)
            if (order_writes(i, oid))
                tc_store(&a, i + 1, oid, serial[oid], data);
        uint64_t tid = vote_finish(&a, i + 1, NULL);
        for (uint64_t oid = 1; oid <= ORDER_OIDS; oid++)
            if (order_writes(i, oid))
                serial[oid] = tid;
        tc_reset(&a);
        for (int k = 0; k < 2; k++) {
            if (i > 0) {
                watch_drain(&ws[k]);
                continue;
            }
            /* the oids exist for B's clients from here on */
            zv *inv = tc_wait_async(&ws[k].c, "invalidateTransaction", TC_TIMEOUT);
            cr_assert(inv, "B did not tell of A's first transaction");
            watch_invalidation(&ws[k], inv);
            tc_reset(&ws[k].c);
        }
    }
    for (int k = 0; k < 2; k++) {
        watcher *w = &ws[k];
        while (w->n_inv <= ORDER_TXNS) {
            zv *inv = tc_wait_async(&w->c, "invalidateTransaction", TC_TIMEOUT);
            cr_assert(inv, "client %d was told of %d transactions of %d", k, w->n_inv,
                      ORDER_TXNS + 1);
            watch_invalidation(w, inv);
        }
        tc_reset(&w->c);
        for (uint64_t oid = 1; oid <= ORDER_OIDS; oid++) {
            int64_t flag;
            zv *r = tc_load_current(&w->c, oid, &flag);
            watch_load(w, oid, r, flag);
            cr_assert_eq(tv_u64(r->u.seq.items[1]), serial[oid], "not the last state");
            tc_reset(&w->c);
        }
        cr_log_info("client %d: %zu loads checked", k, w->loads);
        tc_close(&w->c);
    }
    tc_close(&a);
}

/* ---- side by side, and a server killed ----------------------------------------- */

/* Advisory locks granted in the database: votes holding their oids. */
static long long vote_locks(void)
{
    return tu_pg_num(uri, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                          "granted AND database = (SELECT oid FROM pg_database WHERE "
                          "datname = current_database())");
}

/* One server's client holds its vote on oid 1 (voted, not finished) while
 * the other server's client commits oid 2 from begin to finish: no lock
 * spans a whole vote-to-finish across servers. Then the held one finishes
 * after it, and each client is told of the other's commit. Both ways. */
Test(server_pg_fleet, disjoint_oids_vote_and_finish_side_by_side_across_servers)
{
    start_fleet();
    tc a, b;
    client(&a, &srv_a, PROTO_PICKLE);
    client(&b, &srv_b, PROTO_MSGPACK);
    tc_begin_store(&a, 1, 1, 0, "one");
    tc_store(&a, 1, 2, 0, "two");
    uint64_t s1 = vote_finish(&a, 1, NULL), s2 = s1;
    zv *inv = tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT);
    cr_assert(inv && tv_u64(inv->u.seq.items[0]) == s1);
    tc_reset(&a);
    tc_reset(&b);
    for (int round = 0; round < 2; round++) {
        tc *holder = round ? &b : &a, *other = round ? &a : &b;
        int64_t txn = 10 + 2 * round, flag;
        tc_begin_store(holder, txn, 1, s1, "held");
        zv *r = tc_call(holder, "vote", tv_tuple(holder->a, 1, tv_int(holder->a, txn)), &flag);
        cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 0, "the held vote failed");
        cr_assert_gt(vote_locks(), 0, "the held vote holds no lock in the database");
        uint64_t t2 = tc_commit_one(other, txn + 1, 2, s2, "passed");
        cr_assert_gt(t2, s2, "a commit on another oid did not pass the held vote");
        cr_assert_gt(vote_locks(), 0, "the held vote lost its lock");
        r = tc_call(holder, "tpc_finish", tv_tuple(holder->a, 1, tv_int(holder->a, txn)), &flag);
        cr_assert(r && flag == 0, "the held transaction could not finish");
        uint64_t t1 = tv_u64(r);
        cr_assert_gt(t1, t2, "tids out of commit order");
        expect_invalidation(holder, t2, 2);
        expect_invalidation(other, t1, 1);
        expect_current(other, 1, "held", t1);
        expect_current(holder, 2, "passed", t2);
        s1 = t1;
        s2 = t2;
        tc_reset(&a);
        tc_reset(&b);
    }
    tc_close(&a);
    tc_close(&b);
}

/* `zeolite bench` committing through s until killed: its pid. */
static pid_t bench_commits(const th_server *s)
{
    char *log = tu_path(s->dir, "bench.out");
    const char *argv[] = {tu_zeolite_bin(), "bench", sock_of(s), "--workload", "commit",
                          "--clients", "2", "--objects-per-txn", "3", "--duration", "60",
                          NULL};
    pid_t pid = tu_spawn(argv, log);
    free(log);
    cr_assert_gt(pid, 0);
    return pid;
}

/* oids first..first+n-1 through c: 1 when each holds `state` at one tid
 * (in *tid), 0 when each holds something else at one tid; fails on a mix. */
static int all_or_nothing(tc *c, uint64_t first, int n, const char *state, uint64_t *tid)
{
    int news = 0;
    uint64_t tids[8];
    for (int i = 0; i < n; i++) {
        int64_t flag;
        zv *r = tc_load_current(c, first + (uint64_t)i, &flag);
        cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "a load through B failed");
        const zv *d = r->u.seq.items[0];
        news += d->u.s.len == strlen(state) && !memcmp(d->u.s.p, state, d->u.s.len);
        tids[i] = tv_u64(r->u.seq.items[1]);
        cr_assert_eq(tids[i], tids[0], "oids %llu..%llu are of several transactions",
                     (unsigned long long)first, (unsigned long long)first + n - 1);
        tc_reset(c);
    }
    cr_assert(news == 0 || news == n, "a transaction is half there: %d of %d oids", news, n);
    *tid = tids[0];
    return news == n;
}

/* A is killed (SIGKILL) while `zeolite bench` commits through it, one of
 * its clients holds a vote on oids 1-3 and another has just sent
 * tpc_finish for oids 4-6. B keeps serving its client; the held
 * transaction is not there at all, the finishing one all or nothing; the
 * dead server's locks are gone: one transaction through B on all six oids
 * commits at once (a lock left would hold its vote for the lock timeout
 * and fail it). */
Test(server_pg_fleet, kill_9_of_one_server_under_load_leaves_the_other_serving_and_no_lock)
{
    start_fleet();
    tc a1, a2, b;
    client(&a1, &srv_a, PROTO_PICKLE);
    client(&a2, &srv_a, PROTO_MSGPACK);
    client(&b, &srv_b, PROTO_PICKLE);
    tc_send(&a1, NULL, 1, "tpc_begin",
            tv_tuple(a1.a, 4, tv_int(a1.a, 1), tv_bytes(a1.a, "u"), tv_bytes(a1.a, "d"),
                     tv_dict0(a1.a)));
    for (uint64_t oid = 1; oid <= 6; oid++)
        tc_store(&a1, 1, oid, 0, "old");
    uint64_t t0 = vote_finish(&a1, 1, NULL);
    tc_reset(&a1);
    pid_t bench = bench_commits(&srv_a);
    /* B's client is told of the bench's commits: A is under load */
    int seen = 0;
    for (int i = 0; i < 400 && seen < 5; i++) {
        zv *inv = tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT);
        cr_assert(inv, "B was told of no commit through A");
        seen += tv_u64(inv->u.seq.items[0]) > t0;
        tc_reset(&b);
    }
    int64_t flag;
    /* held: voted on 1-3, never finished */
    tc_send(&a1, NULL, 1, "tpc_begin",
            tv_tuple(a1.a, 4, tv_int(a1.a, 2), tv_bytes(a1.a, "u"), tv_bytes(a1.a, "d"),
                     tv_dict0(a1.a)));
    for (uint64_t oid = 1; oid <= 3; oid++)
        tc_store(&a1, 2, oid, t0, "new");
    zv *r = tc_call(&a1, "vote", tv_tuple(a1.a, 1, tv_int(a1.a, 2)), &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 0, "the held vote failed");
    /* finishing: tpc_finish on its way as A dies */
    tc_send(&a2, NULL, 1, "tpc_begin",
            tv_tuple(a2.a, 4, tv_int(a2.a, 3), tv_bytes(a2.a, "u"), tv_bytes(a2.a, "d"),
                     tv_dict0(a2.a)));
    for (uint64_t oid = 4; oid <= 6; oid++)
        tc_store(&a2, 3, oid, t0, "new");
    r = tc_call(&a2, "vote", tv_tuple(a2.a, 1, tv_int(a2.a, 3)), &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 0, "the second vote failed");
    tc_send(&a2, NULL, 0, "tpc_finish", tv_tuple(a2.a, 1, tv_int(a2.a, 3)));
    cr_assert_eq(kill(srv_a.pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(srv_a.pid, &status, 0), srv_a.pid);
    srv_a.pid = 0;
    kill(bench, SIGKILL);
    waitpid(bench, &status, 0);
    tc_close(&a1);
    tc_close(&a2);

    /* B serves on: its client, and a new one */
    uint64_t last = last_transaction(&b);
    cr_assert_geq(last, t0);
    tc_reset(&b);
    tc c;
    client(&c, &srv_b, PROTO_MSGPACK);
    uint64_t held_tid, fin_tid;
    cr_assert(!all_or_nothing(&c, 1, 3, "new", &held_tid), "an unfinished transaction is there");
    cr_assert_eq(held_tid, t0);
    int finished = all_or_nothing(&c, 4, 3, "new", &fin_tid);
    cr_assert(finished ? fin_tid > t0 : fin_tid == t0);
    cr_log_info("the transaction finishing as A died: %s", finished ? "committed" : "not there");

    tc_send(&c, NULL, 1, "tpc_begin",
            tv_tuple(c.a, 4, tv_int(c.a, 4), tv_bytes(c.a, "u"), tv_bytes(c.a, "d"),
                     tv_dict0(c.a)));
    for (uint64_t oid = 1; oid <= 6; oid++)
        tc_store(&c, 4, oid, oid <= 3 ? held_tid : fin_tid, "after");
    uint64_t t = vote_finish(&c, 4, NULL);
    cr_assert_gt(t, last);
    expect_current(&c, 1, "after", t);
    expect_current(&c, 6, "after", t);
    cr_expect(!log_has(&srv_b, "cannot be followed"), "B lost its feed");
    tc_close(&c);
    tc_close(&b);
}

/* ---- the C client's cache across servers ------------------------------------------ */

typedef struct seen_inval {
    uint64_t tid, oid;
} seen_inval;

static void on_inval(zcl_client *c, uint64_t tid, const uint64_t *oids, size_t n, void *data)
{
    (void)c;
    seen_inval *s = data;
    for (size_t i = 0; i < n; i++) {
        s->tid = tid;
        s->oid = oids[i];
    }
}

static zcl_client *zclient(const th_server *s, proto_enc enc, seen_inval *seen)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.encoding = (int)enc;
    o.cache_size = 1 << 20;
    o.on_invalidate = on_inval;
    o.cb_data = seen;
    zcl_client *c = NULL;
    zerr err = {0};
    cr_assert_eq(zcl_open_sync(sock_of(s), &o, &c, &err), 0, "%s", err.msg);
    return c;
}

/* Commit data to oid through c: its tid. */
static uint64_t zcommit(zcl_client *c, uint64_t oid, uint64_t serial, const char *data)
{
    zerr err = {0};
    uint64_t tid = 0;
    cr_assert_eq(zcl_tpc_begin(c, "u", "d", NULL), 0);
    cr_assert_eq(zcl_store(c, oid, serial, data, strlen(data)), 0);
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_finish_sync(c, &tid, &err), 0, "%s", err.msg);
    return tid;
}

/* c's load of oid from its cache or its server: the data, at tid. */
static void zexpect(zcl_client *c, uint64_t oid, const char *data, uint64_t tid)
{
    zbuf b = ZBUF_INIT;
    uint64_t start, end;
    zerr err = {0};
    cr_assert_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, &b, &start, &end, &err), 0, "%s",
                 err.msg);
    cr_assert(b.len == strlen(data) && !memcmp(b.data, data, b.len),
              "the C client loaded '%.*s', not '%s'", (int)b.len, (const char *)b.data, data);
    cr_assert_eq(start, tid);
    zbuf_free(&b);
}

/* B's lastTransaction to c: at least A's last commit (store_sync asks the
 * primary before B answers). */
static uint64_t z_last(zcl_client *c)
{
    uint64_t last = 0;
    zerr err = {0};
    cr_assert_eq(zcl_last_transaction_sync(c, &last, &err), 0, "%s", err.msg);
    return last;
}

/* zeolite's C client (src/client) with its cache on B, in each encoding,
 * while another on A commits: each commit through A reaches B's client as
 * an invalidation, which ends the cached state, and the next load brings
 * the new one; B's lastTransaction is never behind A's commit. */
Test(server_pg_fleet, the_c_clients_cache_on_one_server_follows_commits_through_the_other)
{
    start_fleet();
    for (int round = 0; round < 2; round++) {
        proto_enc ea = round ? PROTO_MSGPACK : PROTO_PICKLE;
        proto_enc eb = round ? PROTO_PICKLE : PROTO_MSGPACK;
        seen_inval sa = {0}, sb = {0};
        zcl_client *a = zclient(&srv_a, ea, &sa), *b = zclient(&srv_b, eb, &sb);
        cr_assert_eq(zcl_encoding(b), eb);
        uint64_t oid;
        size_t got;
        zerr err = {0};
        cr_assert_eq(zcl_new_oids_sync(a, 1, &oid, &got, &err), 0, "%s", err.msg);
        uint64_t t1 = zcommit(a, oid, 0, "first");
        cr_assert_geq(z_last(b), t1, "B answered behind A's commit");
        zexpect(b, oid, "first", t1);
        zexpect(b, oid, "first", t1);
        zcl_cache_stats st;
        zcl_cache_stats_get(b, &st);
        cr_assert_geq(st.hits, 1, "the second load did not come from the cache");
        uint64_t t2 = zcommit(a, oid, t1, "second");
        cr_assert_geq(z_last(b), t2, "B answered behind A's commit");
        cr_assert_eq(sb.tid, t2, "B's client was not told of A's commit");
        cr_assert_eq(sb.oid, oid);
        zexpect(b, oid, "second", t2);
        zcl_free(a);
        zcl_free(b);
    }
}
