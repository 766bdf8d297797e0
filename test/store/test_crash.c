/* Durability: a committing process killed with SIGKILL loses nothing that
 * store_txn_finish reported as finished, and leaves nothing half-written. */
#include "storetest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child commits forever, reporting each finished (oid, tid) on fd. */
static void committer(const char *dir, int fd)
{
    store_options opt = {.create = 1, .exclusive = 1};
    store *s;
    zerr e;
    if (store_open(&s, dir, &opt, &e))
        _exit(2);
    for (uint64_t oid = 1;; oid++) {
        store_txn_meta m = {.status = ' '};
        store_txn *t;
        uint64_t rep[2] = {oid, 0};
        if (store_txn_begin(s, &m, &t, &e) ||
            store_txn_store(t, oid, 0, "payload", 7, &e) ||
            store_txn_store(t, oid + 1000000, 0, "second", 6, &e) ||
            store_txn_vote(t, NULL, &e) || store_txn_finish(t, &rep[1], &e))
            _exit(3);
        store_txn_free(t);
        if (write(fd, rep, sizeof rep) != sizeof rep)
            _exit(4);
    }
}

Test(store_crash, kill_9_loses_nothing_finished, .timeout = 120)
{
    char *dir = stt_spec_new("crash");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        committer(dir, p[1]);
    }
    close(p[1]);
    /* let it get well into committing, then kill it mid-stream */
    uint64_t rep[2];
    int n = 0;
    while (n < 40 && read(p[0], rep, sizeof rep) == sizeof rep)
        n++;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "child exited with %d", WEXITSTATUS(status));
    uint64_t reported[4096][2];
    int total = 0;
    ssize_t r;
    while (total < 4096 && (r = read(p[0], reported[total], sizeof rep)) == sizeof rep)
        total++;
    close(p[0]);
    /* the lock dies with the process (PostgreSQL: once its sessions have
     * ended, which the server notices a moment later) */
    for (int i = 0; i < 200 && store_is_locked(dir); i++)
        usleep(50000);
    cr_assert_eq(store_is_locked(dir), 0);
    st_fixture f = {.dir = dir};
    stt_reopen(&f, NULL);
    uint64_t last = 0;
    for (int i = 0; i < total; i++) {
        uint64_t start;
        cr_assert_eq(stt_load(f.r, reported[i][0], STORE_TID_MAX, NULL, 0, &start, NULL), 0,
                     "finished commit of oid %llu lost", (unsigned long long)reported[i][0]);
        cr_assert_eq(start, reported[i][1]);
        last = reported[i][1];
    }
    cr_assert_geq(store_last_tid(f.s), last);
    /* a commit in flight at the kill is all or nothing */
    uint64_t next = total ? reported[total - 1][0] + 1 : 1;
    int a = stt_load(f.r, next, STORE_TID_MAX, NULL, 0, NULL, NULL);
    int b = stt_load(f.r, next + 1000000, STORE_TID_MAX, NULL, 0, NULL, NULL);
    cr_assert_eq(a, b);
    stt_done(&f);
}
