/* test_crash.c: a committing process killed with SIGKILL loses nothing that
 * finished. The child reports each durable tid through a pipe; the parent
 * kills it mid-stream, reopens the store and checks every reported commit. */
#include <criterion/criterion.h>
#include <pthread.h>
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

/* Read reports, kill the child after `after` of them, and read on to EOF: a
 * report written is a commit finished. */
static size_t collect(int fd, pid_t pid, report *out, size_t cap, size_t after)
{
    size_t n = 0;
    report r;
    while (read(fd, &r, sizeof r) == sizeof r) {
        cr_assert_lt(n, cap);
        out[n++] = r;
        if (n == after)
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
        size_t n = collect(fds[0], pid, all + total, 4096, KILL_AFTER);
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

/* ---- the index batch and pack among commits -------------------------------- */

/* Commit number n rewrites K objects of a pool of P, (n * K) mod P onward,
 * each holding "n/i". The index is written every BATCH entries, so a kill
 * lands in or between index batches; the records of the last commits are
 * in "values" only and the reopen rebuilds their entries. */
enum { K = 40, P = 200, BATCH = 300 };

typedef struct pool {
    uint64_t oids[P];
    uint64_t serials[P];
} pool;

static store *open_batched(const char *dir)
{
    store_options opt = {.exclusive = 1, .index_batch = BATCH};
    store *s;
    zerr err;
    cr_assert_eq(store_open(&s, dir, &opt, &err), 0, "open: %s", err.msg);
    return s;
}

static void pool_text(char *buf, size_t cap, uint64_t n, int i)
{
    snprintf(buf, cap, "%llu/%d", (unsigned long long)n, i);
}

/* A pool of P objects under the root, each once committed as commit 0. */
static void make_pool(store *s, pool *p)
{
    test_ref refs[P];
    for (int i = 0; i < P; i++) {
        p->oids[i] = ops_new_oid(s);
        refs[i] = (test_ref){p->oids[i], REF_STRONG};
    }
    ops_put(s, 0, 0, refs, P, "root");
    zbuf data[P];
    char text[32];
    for (int i = 0; i < P; i++) {
        data[i] = (zbuf)ZBUF_INIT;
        pool_text(text, sizeof text, 0, i);
        ops_record(&data[i], NULL, 0, text);
        p->serials[i] = 0;
    }
    uint64_t tid = ops_commit(s, P, p->oids, p->serials, data);
    for (int i = 0; i < P; i++) {
        p->serials[i] = tid;
        zbuf_free(&data[i]);
    }
}

/* Commit number n (no Criterion asserts: it runs in a killed child). */
static int pool_commit(store *s, pool *p, uint64_t n, uint64_t *tid)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    zbuf b = ZBUF_INIT;
    char text[32];
    zerr e;
    if (store_txn_begin(s, &m, &t, &e))
        return -1;
    int rc = 0;
    for (int j = 0; j < K && !rc; j++) {
        int i = (int)((n * K + (uint64_t)j) % P);
        pool_text(text, sizeof text, n, i);
        zbuf_reset(&b);
        ops_record(&b, NULL, 0, text);
        rc = store_txn_store(t, p->oids[i], p->serials[i], b.data, b.len, &e);
    }
    if (!rc && !(rc = store_txn_vote(t, NULL, &e)) && !(rc = store_txn_finish(t, tid, &e)))
        for (int j = 0; j < K; j++)
            p->serials[(n * K + (uint64_t)j) % P] = *tid;
    store_txn_free(t);
    zbuf_free(&b);
    return rc;
}

typedef struct pool_child {
    store *s;
    pool p;
    int fd;
    uint64_t first;
} pool_child;

static void *pool_commits(void *arg)
{
    pool_child *c = arg;
    for (uint64_t n = c->first;; n++) {
        report r = {.n = n};
        if (pool_commit(c->s, &c->p, n, &r.tid) || write(c->fd, &r, sizeof r) != sizeof r)
            _exit(3);
    }
    return NULL;
}

/* The pool's current records: each object holds what the last reported
 * commit that wrote it holds, or the next commit's (finished but not
 * reported), for all its objects or for none. */
static void check_pool(store *s, const pool *p, const report *r, size_t n)
{
    zbuf got = ZBUF_INIT, want = ZBUF_INIT;
    char text[32];
    uint64_t next = r[n - 1].n + 1, tid, next_tid = 0;
    int next_seen = -1;
    for (int i = 0; i < P; i++) {
        uint64_t last = 0;   /* the last reported commit writing object i */
        for (size_t k = 0; k < n; k++)
            for (int j = 0; j < K; j++)
                if ((r[k].n * K + (uint64_t)j) % P == (uint64_t)i)
                    last = k + 1;
        int in_next = 0;
        for (int j = 0; j < K; j++)
            in_next |= (next * K + (uint64_t)j) % P == (uint64_t)i;
        cr_assert_eq(ops_load(s, p->oids[i], &got, &tid), 0, "object %d lost", i);
        if (in_next && (next_seen == 1 || (next_seen < 0 && (!last || tid > r[last - 1].tid)))) {
            cr_assert(next_seen != 0, "commit %llu half there", (unsigned long long)next);
            cr_assert(!next_tid || tid == next_tid);
            next_seen = 1;
            next_tid = tid;
            pool_text(text, sizeof text, next, i);
        } else {
            if (in_next)
                next_seen = 0;
            cr_assert(last, "object %d: no reported commit wrote it", i);
            cr_assert_eq(tid, r[last - 1].tid, "object %d: a finished commit lost", i);
            pool_text(text, sizeof text, r[last - 1].n, i);
        }
        ops_record(&want, NULL, 0, text);
        cr_assert(got.len == want.len && !memcmp(got.data, want.data, got.len),
                  "object %d holds other data", i);
    }
    zbuf_free(&got);
    zbuf_free(&want);
}

/* Every transaction lists all its records (the index names each), and the
 * newest one is the last tid. */
static void check_iteration(store *s)
{
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    uint64_t last = 0;
    int rc;
    cr_assert_eq(store_iter_open(s, 0, 0, &it, &e), 0, "%s", e.msg);
    while ((rc = store_iter_next_txn(it, &info, &e)) == 1) {
        while ((rc = store_iter_next_record(it, &rec, &e)) == 1)
            ;
        cr_assert_eq(rc, 0, "transaction %016llx: %s", (unsigned long long)info.tid, e.msg);
        last = info.tid;
    }
    cr_assert_eq(rc, 0, "%s", e.msg);
    store_iter_close(it);
    cr_assert_eq(last, store_last_tid(s));
}

/* Read the reports of a child that commits, kill it after `after`; the
 * reports up to EOF are the finished commits. */
static size_t run_child(pool_child *c, const char *dir, size_t after, report *out, size_t cap,
                        void (*body)(pool_child *c))
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        c->s = open_batched(dir);
        c->fd = fds[1];
        body(c);
        _exit(4);
    }
    close(fds[1]);
    size_t n = collect(fds[0], pid, out, cap, after);
    close(fds[0]);
    return n;
}

static void commit_forever(pool_child *c)
{
    pool_commits(c);
}

/* After each kill the parent carries the pool's serials on from the store. */
static void reload_serials(store *s, pool *p)
{
    zbuf got = ZBUF_INIT;
    for (int i = 0; i < P; i++)
        cr_assert_eq(ops_load(s, p->oids[i], &got, &p->serials[i]), 0);
    zbuf_free(&got);
}

static void kill_rounds(void (*body)(pool_child *c), const size_t *kill_after, int rounds)
{
    char *dir;
    store *s = ops_open(&dir, 1);
    pool_child c = {0};
    make_pool(s, &c.p);
    store_close(s);
    report *r = calloc(4096, sizeof *r);
    uint64_t first = 1;
    for (int round = 0; round < rounds; round++) {
        c.first = first;
        size_t n = run_child(&c, dir, kill_after[round], r, 4096, body);
        cr_assert_geq(n, kill_after[round]);
        s = ops_reopen(dir);
        check_pool(s, &c.p, r, n);
        check_iteration(s);
        reload_serials(s, &c.p);
        first = r[n - 1].n + 2;   /* past the commit that may have finished unreported */
        store_close(s);
    }
    free(r);
    tu_rmrf(dir);
    free(dir);
}

Test(crash, kill_9_during_index_batches_loses_nothing, .timeout = 240)
{
    static const size_t after[] = {7, 23, 61};   /* 280, 920, 2440 records: 0, 3, 8 batches */
    kill_rounds(commit_forever, after, 3);
}

/* Commits go on in one thread while the other packs again and again: the
 * kill lands in a commit, an index batch or a pack write, or between. */
static void commit_and_pack(pool_child *c)
{
    pthread_t th;
    if (pthread_create(&th, NULL, pool_commits, c))
        _exit(5);
    for (;;)
        if (store_pack(c->s, (double)time(NULL) + 1e6, 1, NULL, NULL))
            _exit(6);
}

Test(crash, kill_9_while_packing_among_commits_loses_nothing, .timeout = 240)
{
    static const size_t after[] = {11, 37, 73};
    kill_rounds(commit_and_pack, after, 3);
}
