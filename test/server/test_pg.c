/* What serving from PostgreSQL adds to the server (issue 12): one server per
 * database, start-up failures with libpq's message and never a password,
 * the shared blob folder refused, and a database that goes away under a
 * running server (clean errors, the server stays up, reconnects by itself,
 * nothing acknowledged lost). The suites that matter for correctness run
 * against a server on PostgreSQL too (ctest's *_on_pg runs, both
 * encodings); this file holds what only PostgreSQL has. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "pgtest.h"
#include "testutil.h"

#define PASSWORD "sekrit-pw-0451"

static th_server srv;
static char *cluster;   /* a private cluster's folder, or NULL */

static void init(void)
{
    setenv("ZEOLITE_STORE_BACKEND", "postgresql", 1);
}

static void fini(void)
{
    th_free(&srv);
    if (cluster) {
        tu_pg_cluster("stop", cluster, 0);
        free(cluster);
        cluster = NULL;
    }
}

TestSuite(server_pg, .init = init, .fini = fini, .timeout = 120);

static void client(tc *c, int port)
{
    cr_assert_eq(tc_connect(c, port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

/* `zeolite serve ARGS...` that must fail at start: its exit status, its
 * output (stderr and the log) in *out. */
static int serve_fails(const char *const *args, char **out)
{
    char *dir = tu_tmpdir("pgfail"), *log = tu_path(dir, "log");
    const char *argv[16] = {tu_zeolite_bin(), "serve"};
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = tu_spawn(argv, log);
    cr_assert_gt(pid, 0);
    int status = -1;
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(50000);
    }
    if (!WIFEXITED(status)) {
        tu_stop_process(pid, 1000);
        cr_assert_fail("the server did not exit");
    }
    size_t len;
    *out = (char *)tu_read_file(log, &len);
    tu_rmrf(dir);
    free(dir);
    free(log);
    return WEXITSTATUS(status);
}

/* uri with a password added (trust authentication ignores it). */
static char *with_password(const char *uri)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s&password=%s", uri, PASSWORD) > 0);
    return p;
}

/* The message of an error reply (class, (message, ...)), or "". */
static const char *error_text(const zv *reply)
{
    static char buf[1024];
    buf[0] = 0;
    const zv *args = zv_is_seq(reply) && reply->u.seq.n == 2 ? reply->u.seq.items[1] : NULL;
    if (args && zv_is_seq(args) && args->u.seq.n >= 1 && args->u.seq.items[0]->type == ZV_STR) {
        const zv *s = args->u.seq.items[0];
        snprintf(buf, sizeof buf, "%.*s", (int)s->u.s.len, (const char *)s->u.s.p);
    }
    return buf;
}

Test(server_pg, a_second_server_on_the_database_is_refused_by_name)
{
    cr_assert_eq(th_start(&srv, NULL), 0);
    tc a;
    client(&a, srv.port);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "root");
    cr_assert(t1);

    char addr[64], *uri = with_password(srv.pg), *out = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tu_free_port());
    const char *args[] = {"-a", addr, "--postgresql", uri, NULL};
    cr_expect_eq(serve_fails(args, &out), 1);
    cr_assert(out);
    cr_expect(strstr(out, "in use by another zeolite process"), "%s", out);
    const char *db = strstr(srv.pg, ":///") + 4;
    char name[64];
    snprintf(name, sizeof name, "dbname=%.*s", (int)strcspn(db, "?"), db);
    cr_expect(strstr(out, name), "the message does not name the database: %s", out);
    cr_expect(!strstr(out, PASSWORD), "the password was shown: %s", out);
    free(out);
    free(uri);

    /* The first server never noticed. */
    uint64_t t2 = tc_commit_one(&a, 2, 0, t1, "root2");
    cr_expect_gt(t2, t1);
    tc_close(&a);
}

Test(server_pg, a_database_that_cannot_be_reached_fails_the_start_with_libpqs_message)
{
    char *missing = NULL, *out = NULL;
    cr_assert(asprintf(&missing, "postgresql:///zl_no_such_db?host=%s&user=postgres"
                                 "&password=%s", tu_pg_host(), PASSWORD) > 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", tu_free_port());
    const char *args[] = {"-a", addr, "--postgresql", missing, NULL};
    cr_expect_eq(serve_fails(args, &out), 1);
    cr_assert(out);
    cr_expect(strstr(out, "zl_no_such_db") && strstr(out, "does not exist"), "%s", out);
    cr_expect(!strstr(out, PASSWORD), "the password was shown: %s", out);
    free(out);
    free(missing);

    /* A conninfo libpq cannot parse, in a zeo.conf section. */
    char *dir = tu_tmpdir("pgconf"), *conf = tu_path(dir, "zeo.conf");
    const char *text = "<postgresql 1>\n  dsn host=/tmp dbname='unterminated\n</postgresql>\n";
    cr_assert_eq(tu_write_file(conf, text, strlen(text)), 0);
    const char *args2[] = {"-a", addr, "-C", conf, NULL};
    cr_expect_eq(serve_fails(args2, &out), 1);
    cr_expect(out && strstr(out, "unterminated"), "%s", out ? out : "");
    free(out);
    tu_rmrf(dir);
    free(dir);
    free(conf);
}

Test(server_pg, store_blob_shared_is_refused_and_the_connection_goes_on)
{
    cr_assert_eq(th_start(&srv, NULL), 0);
    tc a;
    client(&a, srv.port);
    zv_arena *ar = a.a;
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(ar, 4, tv_int(ar, 1), tv_bytes(ar, ""), tv_bytes(ar, ""), tv_dict0(ar)));
    tc_send(&a, NULL, 1, "storeBlobShared",
            tv_tuple(ar, 5, tv_oid(ar, 0), tv_oid(ar, 0), tv_bytes(ar, "blob record"),
                     tv_str(ar, "upload.tmp"), tv_int(ar, 1)));
    int64_t flag;
    zv *r = tc_call(&a, "vote", tv_tuple(ar, 1, tv_int(ar, 1)), &flag);
    cr_assert(r, "no answer to the vote");
    cr_expect_eq(flag, 2, "a shared blob was accepted");
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.StorageError");
    cr_expect(strstr(error_text(r), "PostgreSQL"), "the refusal does not say why: %s",
              error_text(r));
    tc_call(&a, "tpc_abort", tv_tuple(ar, 1, tv_int(ar, 1)), &flag);
    uint64_t t = tc_commit_one(&a, 2, 0, 0, "root");
    cr_expect(t, "the connection could not commit after the refusal");
    tc_close(&a);
}

/* A transaction storing data for oid against serial, up to its vote: the
 * vote's reply, its flag in *flag. */
static zv *store_and_vote(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data,
                          int64_t *flag)
{
    tc_begin_store(c, txn, oid, serial, data);
    return tc_call(c, "vote", tv_tuple(c->a, 1, tv_int(c->a, txn)), flag);
}

static int log_has(const char *what)
{
    char *log = th_log(&srv);
    int has = log && strstr(log, what);
    free(log);
    return has;
}

/* kill -9 between vote and finish: the next server on the database sees
 * none of the transaction, and no lock of it is left (its sessions ended
 * with the process, rolling back). */
Test(server_pg, kill_9_between_vote_and_finish_leaves_nothing_locked_or_written)
{
    cr_assert_eq(th_start(&srv, NULL), 0);
    tc a;
    client(&a, srv.port);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "committed");
    cr_assert(t1);
    int64_t flag;
    zv *r = store_and_vote(&a, 2, 0, t1, "voted, then killed", &flag);
    cr_assert(r && flag == 0, "the vote failed");
    cr_assert_eq(kill(srv.pid, SIGKILL), 0);
    cr_assert_eq(waitpid(srv.pid, NULL, 0), srv.pid);
    srv.pid = 0;
    tc_close(&a);

    cr_assert_eq(th_restart(&srv, NULL), 0, "no server could start after the kill");
    client(&a, srv.port);
    r = tc_call(&a, "lastTransaction", zv_tuple(a.a, 0), &flag);
    cr_expect(r && flag == 0 && tv_u64(r) == t1, "the killed transaction committed");
    /* oid 0 is not locked: a commit against t1 goes through at once. */
    uint64_t t2 = tc_commit_one(&a, 3, 0, t1, "after the kill");
    cr_expect_gt(t2, t1);
    tc_close(&a);
}

/* PostgreSQL stopped under a running server (a private cluster: the
 * shared one serves the other suites), then started again. */
Test(server_pg, a_database_that_goes_away_fails_calls_cleanly_and_is_reconnected, .timeout = 180)
{
    char *dir = NULL;
    cr_assert(asprintf(&dir, "/tmp/zlpgs-%d", (int)getpid()) > 0);
    cr_assert_eq(tu_pg_cluster("start", dir, 0), 0, "the private cluster did not start");
    cluster = dir;
    char *uri = tu_pg_newdb(dir);

    memset(&srv, 0, sizeof srv);
    srv.dir = tu_tmpdir("server");
    srv.port = tu_free_port();
    char addr[64], *conf = tu_path(srv.dir, "zeo.conf"), *text = NULL;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    cr_assert(asprintf(&text, "<postgresql 1>\n  dsn %s\n  retry-seconds 1\n</postgresql>\n",
                       uri) > 0);
    cr_assert_eq(tu_write_file(conf, text, strlen(text)), 0);
    const char *args[] = {"-a", addr, "-C", conf, NULL};   /* durable commits */
    cr_assert_eq(th_spawn(&srv, args, NULL), 0, "the server did not start");

    tc a, b;
    client(&a, srv.port);
    client(&b, srv.port);
    uint64_t t1 = tc_commit_one(&a, 1, 0, 0, "acknowledged");
    cr_assert(t1);
    int64_t flag;
    zv *r = tc_load_current(&b, 0, &flag);
    cr_assert(r && flag == 0);

    /* Voted before the outage, finished during it: the tpc_finish fails
     * with a StorageError (nothing was committed, and nothing is said to
     * be). */
    r = store_and_vote(&a, 3, 0, t1, "voted, never committed", &flag);
    cr_assert(r && flag == 0, "the vote before the outage failed");
    cr_assert_eq(tu_pg_cluster("halt", dir, 0), 0);
    r = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 3)), &flag);
    cr_assert(r, "no answer to tpc_finish during the outage");
    cr_expect_eq(flag, 2, "a commit was acknowledged with the database down");
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.StorageError");
    /* A commit during the outage fails cleanly; a load gives up after
     * retry-seconds with an error; the connections stay open. */
    r = store_and_vote(&a, 2, 0, t1, "during the outage", &flag);
    cr_assert(r, "no answer to the vote during the outage");
    cr_expect_eq(flag, 2, "a vote passed with the database down");
    cr_log_info("vote during the outage: %s: %s", tv_error_class(r), error_text(r));
    cr_expect(strstr(tv_error_class(r), "StorageError") || strstr(tv_error_class(r), "Error"));
    tc_call(&a, "tpc_abort", tv_tuple(a.a, 1, tv_int(a.a, 2)), &flag);
    r = tc_load_current(&b, 0, &flag);
    cr_assert(r, "no answer to a load during the outage");
    cr_expect_eq(flag, 2, "a load answered with the database down");
    cr_expect(!strstr(tv_error_class(r), "POSKeyError"), "the object was reported missing");
    r = tc_call(&b, "lastTransaction", zv_tuple(b.a, 0), &flag);
    cr_expect(r && flag == 0 && tv_u64(r) == t1, "the server stopped answering");

    cr_assert_eq(tu_pg_cluster("resume", dir, 0), 0);
    /* The server reconnects by itself: the next commit (after a backoff of
     * at most 2 s between attempts) goes through. */
    uint64_t t2 = 0;
    for (int i = 0; i < 40 && !t2; i++) {
        r = store_and_vote(&a, 10 + i, 0, t1, "after the outage", &flag);
        if (r && flag == 0) {
            zv *t = tc_call(&a, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, 10 + i)), &flag);
            t2 = t && flag == 0 ? tv_u64(t) : 0;
            cr_assert(t2, "a vote passed and its commit failed");
        } else {
            tc_call(&a, "tpc_abort", tv_tuple(a.a, 1, tv_int(a.a, 10 + i)), &flag);
            usleep(250000);
        }
    }
    cr_assert_gt(t2, t1, "the server never reconnected");
    cr_expect(log_has("again"), "the reconnection was not logged");
    /* Nothing acknowledged was lost, and the other client sees the new
     * commit: its invalidation came. */
    cr_expect(tc_wait_async(&b, "invalidateTransaction", TC_TIMEOUT), "no invalidation");
    r = tc_load_current(&b, 0, &flag);
    cr_assert(r && flag == 0 && zv_is_seq(r) && r->u.seq.n >= 2);
    cr_expect_eq(tv_u64(r->u.seq.items[1]), t2);
    int64_t hflag;
    zv *h = tc_call(&b, "loadBefore", tv_tuple(b.a, 2, tv_oid(b.a, 0), tv_oid(b.a, t2)), &hflag);
    cr_assert(h && hflag == 0 && zv_is_seq(h) && h->u.seq.n >= 2, "the revision before t2");
    cr_expect_eq(tv_u64(h->u.seq.items[1]), t1, "the failed commit left a revision");
    cr_expect(h->u.seq.items[0]->type == ZV_BYTES && h->u.seq.items[0]->u.s.len == 12 &&
                  !memcmp(h->u.seq.items[0]->u.s.p, "acknowledged", 12),
              "the acknowledged data changed");
    tc_close(&a);
    tc_close(&b);
    free(conf);
    free(text);
    free(uri);
}
