/* The server as a process: Unix sockets, several storages, read-only
 * serving, clean shutdown with a commit in flight, restart after kill -9. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "testutil.h"

static th_server srv;

static void fresh(void)
{
    memset(&srv, 0, sizeof srv);
    srv.dir = tu_tmpdir("srvproc");
    cr_assert(srv.dir);
}

static void cleanup(void)
{
    th_free(&srv);
}

TestSuite(server_process, .init = fresh, .fini = cleanup, .timeout = 60);

static void path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", srv.dir, name);
}

static int hello_unix(tc *c, const char *sock)
{
    if (tc_open_unix(c, sock) < 0)
        return -1;
    uint8_t *p;
    size_t len;
    if (tc_read(c, &p, &len, TC_TIMEOUT) != 1)
        return -1;
    free(p);
    return tc_send_raw(c, "Z5", 2);
}

static zv *register_on(tc *c, const char *name, int read_only, int64_t *flag)
{
    return tc_call(c, "register", tv_tuple(c->a, 2, tv_str(c->a, name), zv_bool(c->a, read_only)),
                   flag);
}

Test(server_process, unix_socket_two_storages_and_restart_after_kill)
{
    char sock[1024], db1[1024], db2[1024];
    path_in(sock, sizeof sock, "zeo.sock");
    path_in(db1, sizeof db1, "one");
    path_in(db2, sizeof db2, "two");
    const char *args[] = {"-a", sock, "-f", db1, "-f", db2, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv, args, sock), 0, "server did not start");
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_expect_eq(st.st_mode & 0007, 0, "the socket must not be open to everyone");

    tc a, b;
    cr_assert_eq(hello_unix(&a, sock), 0);
    cr_assert_eq(hello_unix(&b, sock), 0);
    int64_t flag;
    cr_assert(register_on(&a, "1", 0, &flag) && flag == 0);
    cr_assert(register_on(&b, "2", 0, &flag) && flag == 0);
    uint64_t t = tc_commit_one(&a, 1, 0, 0, "in one");
    cr_assert_neq(t, 0);
    /* Storage 2 is another database: oid 0 does not exist there. */
    zv *r = tc_load_current(&b, 0, &flag);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.POSKeyError");
    cr_expect_null(tc_wait_async(&b, "invalidateTransaction", 200),
                   "storage 2 clients get no invalidations of storage 1");
    tc_close(&a);
    tc_close(&b);

    /* kill -9 leaves the socket file and the store's locks behind. */
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;
    cr_assert_eq(th_spawn(&srv, args, sock), 0, "no restart after kill -9");
    cr_assert_eq(hello_unix(&a, sock), 0);
    cr_assert(register_on(&a, "1", 0, &flag) && flag == 0);
    r = tc_load_current(&a, 0, &flag);
    cr_assert(r && flag == 0, "the commit did not survive the restart");
    cr_expect_eq(tv_u64(r->u.seq.items[1]), t);
    tc_close(&a);
    cr_expect_eq(th_stop(&srv), 0);
    cr_expect_neq(stat(sock, &st), 0, "the socket file is removed at exit");
}

Test(server_process, read_only_server_creates_and_serves)
{
    char db[1024];
    path_in(db, sizeof db, "ro");
    char addr[64];
    srv.port = tu_free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    const char *args[] = {"-a", addr, "-f", db, "--read-only", NULL};
    cr_assert_eq(th_spawn(&srv, args, NULL), 0, "read-only server did not start");
    tc c;
    cr_assert_eq(tc_connect(&c, srv.port, PROTO_PICKLE, NULL), 0);
    int64_t flag;
    zv *r = register_on(&c, "1", 0, &flag);
    cr_assert(r);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.ReadOnlyError");
    cr_expect_eq(r->u.seq.items[1]->u.seq.n, 0, "ReadOnlyError() has no args");
    r = register_on(&c, "1", 1, &flag);
    cr_assert(r && flag == 0);
    r = tc_call(&c, "new_oids", zv_tuple(c.a, 0), &flag);
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.ReadOnlyError");
    tc_send(&c, NULL, 1, "tpc_begin",
            tv_tuple(c.a, 4, tv_int(c.a, 1), tv_bytes(c.a, ""), tv_bytes(c.a, ""), tv_dict0(c.a)));
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "tpc_begin on a read-only server must close");
    tc_close(&c);
}

Test(server_process, sigterm_lets_a_voted_commit_finish)
{
    char pid_file[1024], db[1024], addr[64];
    path_in(pid_file, sizeof pid_file, "zeo.pid");
    path_in(db, sizeof db, "db");
    srv.port = tu_free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    const char *args[] = {"-a", addr, "-f", db, "--pid-file", pid_file, NULL};
    cr_assert_eq(th_spawn(&srv, args, NULL), 0);
    size_t len;
    char *pid_text = (char *)tu_read_file(pid_file, &len);
    cr_assert(pid_text, "no pid file");
    cr_expect_eq(atol(pid_text), (long)srv.pid);
    free(pid_text);

    tc a;
    cr_assert_eq(tc_connect(&a, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&a), 0);
    zv_arena *x = a.a;
    zv *id = tv_int(x, 5);
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(x, 4, id, tv_bytes(x, "u"), tv_bytes(x, "d"), tv_dict0(x)));
    tc_send(&a, NULL, 1, "storea",
            tv_tuple(x, 4, tv_oid(x, 0), tv_oid(x, 0), tv_bytes(x, "last words"), id));
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(x, 1, id), &flag);
    cr_assert(v && flag == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(srv.pid, SIGTERM);
    /* Still voted: tpc_finish goes through, then the server goes. */
    zv *tid = tc_call(&a, "tpc_finish", tv_tuple(x, 1, id), &flag);
    cr_expect(tid && flag == 0 && tv_u64(tid) != 0, "the voted commit was not finished");
    cr_expect(tc_wait_closed(&a, TC_TIMEOUT));
    tc_close(&a);
    int status = th_wait_exit(&srv);   /* the one SIGTERM above is enough */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (status != 0) {
        char *why = th_log(&srv);
        cr_log_error("the server's log:\n%s", why ? why : "(none)");
        free(why);
    }
    cr_expect_eq(status, 0, "exit status after SIGTERM");
    cr_expect_lt(secs, 2.5, "shutdown took %.2f s", secs);
    struct stat st;
    cr_expect_neq(stat(pid_file, &st), 0, "the pid file is removed at exit");
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "terminated by SIGTERM"));
    free(log);
}

Test(server_process, sigusr2_reopens_the_log_file)
{
    char log[1024], moved[1024], db[1024], addr[64];
    path_in(log, sizeof log, "zeo.log");
    path_in(moved, sizeof moved, "zeo.log.1");
    path_in(db, sizeof db, "db");
    srv.port = tu_free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    const char *args[] = {"-a", addr, "-f", db, "--log-file", log, NULL};
    cr_assert_eq(th_spawn(&srv, args, NULL), 0);
    cr_assert_eq(rename(log, moved), 0, "no log file at %s", log);
    kill(srv.pid, SIGUSR2);
    size_t len = 0;
    char *text = NULL;
    for (int i = 0; i < 200 && !text; i++) {
        text = (char *)tu_read_file(log, &len);
        if (!text)
            usleep(10000);
    }
    cr_assert(text, "the log file was not reopened");
    cr_expect(strstr(text, "Log files reopened"), "%s", text);
    free(text);
    cr_expect_eq(th_stop(&srv), 0);
}

/* The data a commit of the kill test stores: oid and round, so every
 * revision differs. */
static void round_data(char *buf, size_t cap, uint64_t oid, int round)
{
    snprintf(buf, cap, "oid %llu round %d", (unsigned long long)oid, round);
}

Test(server_process, kill_9_mid_commit_loses_no_acknowledged_commit)
{
    enum { OIDS = 8, ROUNDS = 60 };
    int port = tu_free_port();
    cr_assert_geq(port, 0);
    srv.port = port;
    char addr[64], db[1024];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    path_in(db, sizeof db, "db");
    const char *args[] = {"-a", addr, "-f", db, NULL};   /* durable: fsync on */
    cr_assert_eq(th_spawn(&srv, args, NULL), 0, "server did not start");
    tc a;
    cr_assert_eq(tc_connect(&a, port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&a), 0);
    srand((unsigned)time(NULL));
    int kill_at = 20 + rand() % (ROUNDS - 20);
    uint64_t acked[ROUNDS], serial[OIDS] = {0};
    char data[64];
    int64_t flag;
    for (int i = 0; i < kill_at; i++) {
        uint64_t oid = (uint64_t)i % OIDS;
        round_data(data, sizeof data, oid, i);
        acked[i] = tc_commit_one(&a, i + 1, oid, serial[oid], data);
        cr_assert_neq(acked[i], 0, "commit %d failed", i);
        serial[oid] = acked[i];
        tc_reset(&a);
    }
    /* The next commit is killed after its tpc_finish left: not acknowledged. */
    uint64_t open_oid = (uint64_t)kill_at % OIDS;
    round_data(data, sizeof data, open_oid, kill_at);
    tc_begin_store(&a, kill_at + 1, open_oid, serial[open_oid], data);
    zv *v = tc_call(&a, "vote", tv_tuple(a.a, 1, tv_int(a.a, kill_at + 1)), &flag);
    cr_assert(v && flag == 0);
    tc_send(&a, NULL, 0, "tpc_finish", tv_tuple(a.a, 1, tv_int(a.a, kill_at + 1)));
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;
    tc_close(&a);

    cr_assert_eq(th_spawn(&srv, args, NULL), 0, "no restart after kill -9");
    cr_assert_eq(tc_connect(&a, port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&a), 0);
    for (int i = 0; i < kill_at; i++) {
        uint64_t oid = (uint64_t)i % OIDS;
        round_data(data, sizeof data, oid, i);
        zv *r = tc_call(&a, "loadSerial", tv_tuple(a.a, 2, tv_oid(a.a, oid), tv_oid(a.a, acked[i])),
                        &flag);
        cr_assert(r && flag == 0, "acknowledged commit %d of %d lost", i, kill_at);
        cr_expect(r->u.s.len == strlen(data) && !memcmp(r->u.s.p, data, r->u.s.len));
        tc_reset(&a);
    }
    /* The killed commit is all or nothing: its oid holds its data or the last acknowledged. */
    zv *r = tc_load_current(&a, open_oid, &flag);
    cr_assert(r && flag == 0);
    uint64_t cur = tv_u64(r->u.seq.items[1]);
    if (cur != serial[open_oid]) {
        cr_expect_gt(cur, serial[open_oid]);
        cr_expect(r->u.seq.items[0]->u.s.len == strlen(data) &&
                  !memcmp(r->u.seq.items[0]->u.s.p, data, strlen(data)));
    }
    cr_expect_neq(tc_commit_one(&a, 999, open_oid, cur, "after"), 0, "no commit after restart");
    tc_close(&a);
}
