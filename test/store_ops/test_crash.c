/* test_crash.c: a committing process killed with SIGKILL loses nothing that
 * finished. The child reports each durable tid through a pipe; the parent
 * kills it mid-stream, reopens the store and checks every reported commit. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops_util.h"
#include "testutil.h"

#define KILL_AFTER 25   /* reports read before the kill */
#define ROUNDS 3        /* kill, reopen, check, and again on the same store */

typedef struct report {
    uint64_t tid, oid, n;   /* tid of commit number n, which created oid */
} report;

static void payload(char *buf, size_t cap, uint64_t n)
{
    snprintf(buf, cap, "commit %llu", (unsigned long long)n);
}

/* Each commit updates the root and creates one object, both holding n. */
static uint64_t commit_numbered(store *s, uint64_t n, uint64_t root_serial, uint64_t oid)
{
    char text[64];
    zbuf data[2] = {ZBUF_INIT, ZBUF_INIT};
    test_ref ref = {oid, REF_STRONG};
    payload(text, sizeof text, n);
    ops_record(&data[0], &ref, 1, text);
    ops_record(&data[1], NULL, 0, text);
    uint64_t oids[2] = {0, oid}, serials[2] = {root_serial, 0};
    uint64_t tid = ops_commit(s, 2, oids, serials, data);
    zbuf_free(&data[0]);
    zbuf_free(&data[1]);
    return tid;
}

static void child(const char *dir, int fd, uint64_t first)
{
    store *s = ops_reopen(dir);
    uint64_t root = store_last_tid(s);
    for (uint64_t n = first;; n++) {
        report r = {.oid = ops_new_oid(s), .n = n};
        r.tid = root = commit_numbered(s, n, root, r.oid);
        if (write(fd, &r, sizeof r) != sizeof r)
            _exit(3);
    }
}

/* Read reports until the kill and then to EOF: a report written is a commit finished. */
static size_t collect(int fd, pid_t pid, report *out, size_t cap)
{
    size_t n = 0;
    ssize_t got;
    report r;
    while ((got = read(fd, &r, sizeof r)) == sizeof r) {
        cr_assert_lt(n, cap);
        out[n++] = r;
        if (n == KILL_AFTER)
            kill(pid, SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child ended by itself (status %d)", status);
    return n;
}

static void check(store *s, const report *r, size_t n)
{
    char text[64];
    zbuf want = ZBUF_INIT, got = ZBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        payload(text, sizeof text, r[i].n);
        ops_record(&want, NULL, 0, text);
        cr_assert_eq(ops_load_serial(s, r[i].oid, r[i].tid, &got), 0, "commit %llu lost",
                     (unsigned long long)r[i].n);
        cr_expect(got.len == want.len && !memcmp(got.data, want.data, got.len));
        cr_expect_eq(ops_load_serial(s, 0, r[i].tid, &got), 0, "root of commit %llu lost",
                     (unsigned long long)r[i].n);
    }
    cr_expect_geq(store_last_tid(s), r[n - 1].tid);
    zbuf_free(&want);
    zbuf_free(&got);
}

Test(crash, kill_9_loses_no_finished_commit, .timeout = 120)
{
    char *dir;
    store *s = ops_open(&dir, 1);
    ops_put(s, 0, 0, NULL, 0, "root");
    store_close(s);

    report *all = calloc(ROUNDS * 4096, sizeof *all);
    size_t total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, fds[1], total + 1);
        }
        close(fds[1]);
        size_t n = collect(fds[0], pid, all + total, 4096);
        close(fds[0]);
        cr_assert_geq(n, KILL_AFTER);
        total += n;

        s = ops_reopen(dir);
        check(s, all, total);
        uint64_t last = store_last_tid(s);
        uint64_t tid = commit_numbered(s, 1000000 + round, last, ops_new_oid(s));
        cr_expect_gt(tid, last, "the store commits after the crash");
        store_close(s);
    }
    free(all);
    tu_rmrf(dir);
    free(dir);
}

enum { LIVE = 10000, DEAD = 4000 };   /* more removals than one pack batch */

/* LIVE objects under the root and DEAD unreachable ones, 3 revisions each. */
static void fill_for_pack(store *s, uint64_t *oids, uint64_t *serials)
{
    zbuf *data = calloc(LIVE + DEAD, sizeof *data);
    test_ref *refs = calloc(LIVE, sizeof *refs);
    for (int i = 0; i < LIVE + DEAD; i++) {
        oids[i] = ops_new_oid(s);
        serials[i] = 0;
        ops_record(&data[i], NULL, 0, "payload of a packed object");
    }
    for (int i = 0; i < LIVE; i++)
        refs[i] = (test_ref){oids[i], REF_STRONG};
    ops_put(s, 0, 0, refs, LIVE, "root");
    for (int rev = 0; rev < 3; rev++) {
        uint64_t tid = ops_commit(s, LIVE + DEAD, oids, serials, data);
        for (int i = 0; i < LIVE + DEAD; i++)
            serials[i] = tid;
    }
    for (int i = 0; i < LIVE + DEAD; i++)
        zbuf_free(&data[i]);
    free(data);
    free(refs);
}

static void expect_live(store *s, const uint64_t *oids, const uint64_t *serials)
{
    zbuf got = ZBUF_INIT;
    uint64_t tid;
    for (int i = 0; i < LIVE; i++) {
        cr_assert_eq(ops_load(s, oids[i], &got, &tid), 0, "live object %d lost", i);
        cr_assert_eq(tid, serials[i]);
    }
    zbuf_free(&got);
}

Test(crash, kill_9_during_pack_loses_nothing, .timeout = 120)
{
    char *dir;
    store *s = ops_open(&dir, 1);
    uint64_t *oids = calloc(LIVE + DEAD, sizeof *oids);
    uint64_t *serials = calloc(LIVE + DEAD, sizeof *serials);
    fill_for_pack(s, oids, serials);
    store_close(s);

    /* kill later and later, until a pack finishes before its kill */
    int finished = 0;
    for (int delay_ms = 10; !finished && delay_ms < 5000; delay_ms *= 2) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            store *c = ops_reopen(dir);
            char go = 1;
            if (write(fds[1], &go, 1) != 1)
                _exit(3);
            store_pack(c, (double)time(NULL) + 1e6, 1, NULL, NULL);
            store_close(c);
            _exit(0);
        }
        char go;
        cr_assert_eq(read(fds[0], &go, 1), 1);
        usleep((useconds_t)delay_ms * 1000);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        finished = WIFEXITED(status);
        close(fds[0]);
        close(fds[1]);

        s = ops_reopen(dir);
        expect_live(s, oids, serials);
        store_close(s);
    }
    s = ops_reopen(dir);
    store_pack_stats st;
    cr_assert_eq(store_pack(s, (double)time(NULL) + 1e6, 1, &st, NULL), 0);
    expect_live(s, oids, serials);
    for (int i = LIVE; i < LIVE + DEAD; i++) {
        zbuf got = ZBUF_INIT;
        uint64_t tid;
        cr_expect_eq(ops_load(s, oids[i], &got, &tid), ZE_NOTFOUND, "garbage left");
        zbuf_free(&got);
    }
    store_close(s);
    free(oids);
    free(serials);
    tu_rmrf(dir);
    free(dir);
}
