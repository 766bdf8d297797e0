/* A zeolite server on a primary that fails over to its standby (issue 13):
 * the server's DSN lists both hosts with target_session_attrs=read-write.
 * With synchronous replication, the primary stopped and the standby
 * promoted, every commit the server acknowledged is there and the same
 * client, on the same connection, commits again through the same server.
 * A standby promoted behind what the server served stops it, saying why.
 * Each test runs a primary and a standby of its own; the server listens
 * on a Unix socket. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "pgtest.h"
#include "testutil.h"

static th_server srv;
static tu_pg_pair pair;

static void fini(void)
{
    th_free(&srv);
    tu_pg_pair_down(&pair);
}

TestSuite(server_pg_promote, .fini = fini, .timeout = 180);

/* The server on dsn (both hosts; shared: as one of several servers on the
 * database), on a Unix socket in its folder: sock. */
static void start_server(const char *dsn, int shared, char *sock, size_t cap)
{
    memset(&srv, 0, sizeof srv);
    srv.dir = tu_tmpdir("promote");
    cr_assert(srv.dir);
    snprintf(sock, cap, "%s/zeo.sock", srv.dir);
    const char *args[] = {"-a", sock, shared ? "--postgresql-shared" : "--postgresql", dsn,
                          NULL};
    cr_assert_eq(th_spawn(&srv, args, sock), 0, "the server did not start");
}

static void client(tc *c, const char *sock)
{
    uint8_t *p;
    size_t len;
    cr_assert_eq(tc_open_unix(c, sock), 0);
    cr_assert_eq(tc_read(c, &p, &len, TC_TIMEOUT), 1, "no announcement");
    free(p);
    cr_assert_eq(tc_send_raw(c, "Z5", 2), 0);
    c->enc = PROTO_PICKLE;
    cr_assert_geq(tc_register(c), 0);
}

static uint64_t new_oid(tc *c)
{
    int64_t flag;
    zv *oids = tc_call(c, "new_oids", tv_tuple(c->a, 1, tv_int(c->a, 1)), &flag);
    cr_assert(oids && flag == 0 && zv_is_seq(oids) && oids->u.seq.n >= 1);
    return tv_u64(oids->u.seq.items[0]);
}

static void expect_current(tc *c, uint64_t oid, uint64_t tid)
{
    int64_t flag;
    zv *r = tc_load_current(c, oid, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n == 3, "oid %llu does not load",
              (unsigned long long)oid);
    cr_assert_eq(tv_u64(r->u.seq.items[1]), tid, "an acknowledged commit is lost");
}

#define N_ACKED 8

/* N_ACKED commits acknowledged; the primary stopped: a transaction fails
 * (StorageError) and is aborted, the connection stays; the standby
 * promoted: the same connection commits again, and every acknowledged
 * commit loads. */
static void failover(int shared)
{
    char sock[1024];
    tu_pg_pair_up(&pair, 1);
    start_server(pair.both_kv, shared, sock, sizeof sock);
    tc c;
    client(&c, sock);
    uint64_t oids[N_ACKED + 1], tids[N_ACKED + 1];
    for (int i = 0; i < N_ACKED; i++) {
        oids[i] = new_oid(&c);
        tids[i] = tc_commit_one(&c, 1 + i, oids[i], 0, "acknowledged");
        cr_assert(tids[i], "commit %d failed", i);
        tc_reset(&c);
    }
    cr_assert_eq(tu_pg_script("halt %s", pair.pdir), 0);
    /* no host takes writes: the vote fails, saying why */
    oids[N_ACKED] = new_oid(&c);
    cr_assert_eq(tc_commit_one(&c, 99, oids[N_ACKED], 0, "no primary"), 0);
    int64_t flag;
    cr_assert(tc_call(&c, "tpc_abort", tv_tuple(c.a, 1, tv_int(c.a, 99)), &flag) && flag == 0);
    tc_reset(&c);
    cr_assert_eq(tu_pg_script("promote %s", pair.sdir), 0);
    /* the same connection: its next transaction commits on the new primary
     * (how long it takes is printed, indicative only) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tids[N_ACKED] = tc_commit_one(&c, 100, oids[N_ACKED], 0, "after the promotion");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert(tids[N_ACKED] > tids[N_ACKED - 1], "the commit after the promotion failed");
    fprintf(stderr, "%s server: the first commit after the promotion took %.0f ms\n",
            shared ? "shared" : "unshared",
            (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    for (int i = 0; i <= N_ACKED; i++)
        expect_current(&c, oids[i], tids[i]);
    cr_assert_eq(tu_pg_num(pair.standby, "SELECT count(*) FROM zeolite.txns"), N_ACKED + 1);
    /* a client connecting now is told the last tid */
    tc d;
    client(&d, sock);
    zv *r = tc_call(&d, "lastTransaction", zv_tuple(d.a, 0), &flag);
    cr_assert(r && flag == 0);
    cr_assert_eq(tv_u64(r), tids[N_ACKED]);
    tc_close(&d);
    tc_close(&c);
}

Test(server_pg_promote, every_acknowledged_commit_survives_and_the_same_client_commits_on)
{
    failover(0);
}

Test(server_pg_promote, the_same_for_a_server_sharing_the_database)
{
    failover(1);
}

/* Up to 30 s for the server to exit by itself: its status. */
static int wait_exit(th_server *s)
{
    for (int i = 0; i < 300; i++) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(100000);
    }
    return -1;
}

Test(server_pg_promote, a_standby_promoted_behind_the_server_stops_it_saying_why)
{
    char sock[1024];
    tu_pg_pair_up(&pair, 0);
    start_server(pair.both, 0, sock, sizeof sock);
    tc c;
    client(&c, sock);
    uint64_t o1 = new_oid(&c), t1 = tc_commit_one(&c, 1, o1, 0, "replicated");
    cr_assert(t1);
    for (int i = 0; i < 600 && tu_pg_num(pair.standby, "SELECT count(*) FROM zeolite.txns") < 1;
         i++)
        usleep(100000);
    /* the standby stops before t2 (asynchronous: the primary alone has it),
     * the primary dies, the standby is promoted without t2 */
    cr_assert_eq(tu_pg_script("halt %s", pair.sdir), 0);
    tc_reset(&c);
    uint64_t o2 = new_oid(&c), t2 = tc_commit_one(&c, 2, o2, 0, "acknowledged, lost");
    cr_assert(t2 > t1);
    cr_assert_eq(tu_pg_script("halt %s", pair.pdir), 0);
    cr_assert_eq(tu_pg_script("resume %s", pair.sdir), 0);
    cr_assert_eq(tu_pg_script("promote %s", pair.sdir), 0);
    /* the next transaction fails, and the server stops serving the storage
     * (its only one: it exits), saying why with both tids */
    tc_reset(&c);
    cr_assert_eq(tc_commit_one(&c, 3, o1, t1, "refused"), 0);
    tc_close(&c);
    int status = wait_exit(&srv);
    char *log = th_log(&srv), h1[17], h2[17];
    cr_assert_eq(status, 1, "the server did not stop by itself (status %d): %s", status, log);
    snprintf(h1, sizeof h1, "%016llx", (unsigned long long)t1);
    snprintf(h2, sizeof h2, "%016llx", (unsigned long long)t2);
    cr_assert(log && strstr(log, "no longer served") && strstr(log, "behind"), "%s", log);
    cr_assert(strstr(log, h1) && strstr(log, h2), "the log does not name both tids: %s", log);
    free(log);
    cr_assert_eq(tu_pg_num(pair.standby, "SELECT count(*) FROM zeolite.txns"), 1,
                 "a refused server wrote");
}
