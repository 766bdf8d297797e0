/* The writer thread: group commit, the pending-commit overlay, async
 * commits, a full map and map growth. */
#include "storetest.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store_internal.h"

static size_t pending_count(store *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}

Test(store_writer, votes_see_commits_not_yet_durable)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t t0 = stt_commit1(f.s, 1, 0, "v0");
    stt_gate g;
    stt_gate_close(&g, f.s);
    /* A is handed to the writer but cannot be written yet. */
    store_txn *a = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(a, 1, t0, "A", 1, &e), 0);
    cr_assert_eq(store_txn_vote(a, NULL, &e), 0);
    stt_done_flag d;
    stt_done_init(&d);
    uint64_t ta;
    cr_assert_eq(store_txn_commit(a, &ta, stt_on_commit, &d, &e), 0);
    cr_assert_gt(ta, t0);
    /* B read the old serial: its vote must see A. */
    store_txn *b = stt_begin(f.s);
    cr_assert_eq(store_txn_store(b, 1, t0, "B", 1, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(b, &res, &e), ZE_CONFLICT);
    cr_assert_eq(res.conflicts[0].committed, ta);
    /* ... and A is not visible to readers before it is durable */
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, NULL, NULL), 0);
    uint64_t start;
    stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, &start, NULL);
    cr_assert_eq(start, t0);
    stt_gate_open(&g);
    cr_assert_eq(stt_wait_done(&d), 0);
    cr_assert_eq(d.tid, ta);
    store_txn_free(a);
    /* B resolves against A and commits after it */
    cr_assert_eq(store_txn_store(b, 1, ta, "B2", 2, &e), 0);
    uint64_t tb = stt_finish(b);
    cr_assert_gt(tb, ta);
    cr_assert_eq(pending_count(f.s), 0);
    stt_done(&f);
}

/* ---- group commit -------------------------------------------------------- */

typedef struct committer {
    store *s;
    pthread_mutex_t *commit_lock;   /* the server's commit lock: vote .. commit */
    uint64_t first_oid;
    int n;
    uint64_t tids[16];
    int rc;
} committer;

static void *commit_thread(void *arg)
{
    committer *c = arg;
    for (int i = 0; i < c->n; i++) {
        store_txn_meta m = {.status = ' '};
        store_txn *t;
        zerr e;
        stt_done_flag d;
        stt_done_init(&d);
        pthread_mutex_lock(c->commit_lock);
        int rc = store_txn_begin(c->s, &m, &t, &e);
        for (int k = 0; !rc && k < 10; k++)
            rc = store_txn_store(t, c->first_oid + (uint64_t)(i * 10 + k), 0, "obj", 3, &e);
        if (!rc)
            rc = store_txn_vote(t, NULL, &e);
        if (!rc)
            rc = store_txn_commit(t, &c->tids[i], stt_on_commit, &d, &e);
        pthread_mutex_unlock(c->commit_lock);
        if (!rc)
            rc = stt_wait_done(&d);
        store_txn_free(t);
        if (rc) {
            c->rc = rc;
            return NULL;
        }
    }
    return NULL;
}

Test(store_writer, group_commit_from_several_threads)
{
    st_fixture f;
    store_options opt = {.create = 1};   /* synced: durability is the point */
    stt_open(&f, &opt);
    enum { THREADS = 8, EACH = 5 };
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    committer c[THREADS];
    pthread_t th[THREADS];
    stt_gate g;
    /* Hold the writer until every thread has a commit queued. */
    stt_gate_close(&g, f.s);
    for (int i = 0; i < THREADS; i++) {
        c[i] = (committer){f.s, &lock, (uint64_t)(1000 * (i + 1)), EACH, {0}, 0};
        pthread_create(&th[i], NULL, commit_thread, &c[i]);
    }
    while (pending_count(f.s) < THREADS)
        usleep(1000);
    stt_gate_open(&g);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    store_stats st;
    store_get_stats(f.s, &st);
    cr_assert_eq(st.commits, THREADS * EACH);
    cr_assert_lt(st.syncs, st.commits, "syncs %llu commits %llu",
                 (unsigned long long)st.syncs, (unsigned long long)st.commits);
    /* every commit its own tid, all distinct, all loadable */
    uint64_t all[THREADS * EACH];
    for (int i = 0; i < THREADS; i++) {
        cr_assert_eq(c[i].rc, 0);
        for (int k = 0; k < EACH; k++) {
            all[i * EACH + k] = c[i].tids[k];
            if (k)
                cr_assert_gt(c[i].tids[k], c[i].tids[k - 1]);
        }
    }
    for (int i = 0; i < THREADS * EACH; i++)
        for (int j = i + 1; j < THREADS * EACH; j++)
            cr_assert_neq(all[i], all[j]);
    for (int i = 0; i < THREADS; i++) {
        uint64_t start;
        cr_assert_eq(stt_load(f.r, c[i].first_oid + EACH * 10 - 1, STORE_TID_MAX, NULL, 0,
                              &start, NULL), 0);
        cr_assert_eq(start, c[i].tids[EACH - 1]);
    }
    stt_done(&f);
}

/* ---- full map and growth ------------------------------------------------- */

Test(store_writer, full_map_gives_ze_full_and_keeps_committed_data)
{
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .map_size = 1 << 20};
    stt_open(&f, &opt);
    char *data = malloc(20000);
    memset(data, 'x', 20000);
    int committed = 0, rc = 0;
    zerr e;
    for (int i = 0; i < 200 && !rc; i++) {
        store_txn *t = stt_begin(f.s);
        cr_assert_eq(store_txn_store(t, (uint64_t)i, 0, data, 20000, &e), 0);
        cr_assert_eq(store_txn_vote(t, NULL, &e), 0);
        uint64_t tid;
        rc = store_txn_finish(t, &tid, &e);
        store_txn_free(t);
        if (!rc)
            committed++;
    }
    cr_assert_eq(rc, ZE_FULL, "%s", e.msg);
    cr_assert_gt(committed, 10);
    stt_close(&f);
    store_options again = {.no_sync = 1, .map_size = 1 << 20};
    stt_reopen(&f, &again);
    for (int i = 0; i < committed; i++)
        cr_assert_eq(stt_load(f.r, (uint64_t)i, STORE_TID_MAX, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(stt_load(f.r, (uint64_t)committed, STORE_TID_MAX, NULL, 0, NULL, NULL),
                 ZE_NOTFOUND);
    free(data);
    stt_done(&f);
}

Test(store_writer, map_grows_when_allowed)
{
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .map_size = 1 << 20};
    stt_open(&f, &opt);
    f.s->map_max = 64u << 20;   /* the default cap is far larger: lower it for the test */
    uint64_t t0 = stt_commit1(f.s, 0, 0, "root");
    zbuf b = ZBUF_INIT;
    zerr e;
    /* a reader positioned before the growth */
    cr_assert_eq(store_load_before(f.r, 0, STORE_TID_MAX, &b, NULL, NULL, &e), ZE_NOTFOUND);
    char *data = malloc(100000);
    memset(data, 'y', 100000);
    for (int i = 1; i <= 40; i++) {
        store_txn *t = stt_begin(f.s);
        cr_assert_eq(store_txn_store(t, (uint64_t)i, 0, data, 100000, &e), 0);
        stt_finish(t);
    }
    cr_assert_gt(f.s->map_size, 1u << 20);
    /* the old snapshot still reads, through renewed cursors */
    cr_assert_eq(store_load_before(f.r, 0, STORE_TID_MAX, &b, NULL, NULL, &e), ZE_NOTFOUND);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    uint64_t start;
    cr_assert_eq(store_load_before(f.r, 0, STORE_TID_MAX, &b, &start, NULL, &e), 0);
    cr_assert_eq(start, t0);
    cr_assert_eq(store_load_before(f.r, 40, STORE_TID_MAX, &b, NULL, NULL, &e), 0);
    cr_assert_eq(b.len, 100000);
    zbuf_free(&b);
    free(data);
    stt_done(&f);
}

/* A read-only process sees data written after the writer process grew the
 * map (LMDB reports MDB_MAP_RESIZED; the reader adopts the new size). */
static int reader_process(const char *dir, int ready_fd, int go_fd)
{
    store_options ro = {.read_only = 1, .map_size = 1 << 20};   /* the size before growth */
    store *s;
    store_reader *r;
    zerr e;
    char c = 'r';
    if (store_open(&s, dir, &ro, &e) || store_reader_new(s, &r, &e))
        return 2;
    if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
        return 3;
    zbuf b = ZBUF_INIT;
    int rc = store_reader_refresh(r, &e);
    if (!rc)
        rc = store_load_before(r, 40, STORE_TID_MAX, &b, NULL, NULL, &e);
    int ok = !rc && b.len == 100000;
    zbuf_free(&b);
    store_reader_free(r);
    store_close(s);
    return ok ? 0 : 4;
}

Test(store_writer, reader_process_follows_map_growth)
{
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .map_size = 1 << 20};
    stt_open(&f, &opt);
    f.s->map_max = 64u << 20;
    stt_commit1(f.s, 0, 0, "root");
    int ready[2], go[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(reader_process(f.dir, ready[1], go[0]));
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    char *data = calloc(1, 100000);
    zerr e;
    for (int i = 1; i <= 40; i++) {
        store_txn *t = stt_begin(f.s);
        cr_assert_eq(store_txn_store(t, (uint64_t)i, 0, data, 100000, &e), 0);
        stt_finish(t);
    }
    cr_assert_gt(f.s->map_size, 1u << 20);
    cr_assert_eq(write(go[1], "g", 1), 1);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    free(data);
    stt_done(&f);
}

/* Readers on other threads keep loading while the writer commits and grows
 * the map under them. */
typedef struct reader_arg {
    store *s;
    volatile int *stop;
    atomic_int *ready; /* counts readers that have loaded once */
    int loads;
    int bad;
} reader_arg;

static void *reader_thread(void *arg)
{
    reader_arg *a = arg;
    store_reader *r;
    zbuf b = ZBUF_INIT;
    if (store_reader_new(a->s, &r, NULL)) {
        a->bad++;
        atomic_fetch_add(a->ready, 1); /* the test must not wait for it */
        return NULL;
    }
    uint64_t last_seen = 0;
    while (!*a->stop) {
        uint64_t start, end;
        int rc = store_load_before(r, 1, STORE_TID_MAX, &b, &start, &end, NULL);
        if (rc == 0) {
            /* each revision of oid 1 is 50000 bytes of one letter */
            if (b.len != 50000 || b.data[0] != b.data[49999] || start < last_seen)
                a->bad++;
            last_seen = start;
        } else if (rc != ZE_NOTFOUND) {
            a->bad++;
        }
        if (a->loads++ == 0)
            atomic_fetch_add(a->ready, 1);
        if (a->loads % 16 == 0 && store_reader_refresh(r, NULL))
            a->bad++;
    }
    zbuf_free(&b);
    store_reader_free(r);
    return NULL;
}

Test(store_writer, concurrent_readers_during_commits_and_growth)
{
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .map_size = 1 << 20};
    stt_open(&f, &opt);
    f.s->map_max = 256u << 20;
    volatile int stop = 0;
    atomic_int ready = 0;
    reader_arg a[2] = {{f.s, &stop, &ready, 0, 0}, {f.s, &stop, &ready, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader_thread, &a[i]);
    /* The commits start once both readers are loading, however the threads
     * are scheduled, so the loads always overlap them. */
    while (atomic_load(&ready) < 2)
        sched_yield();
    char *data = malloc(50000);
    uint64_t serial = 0;
    zerr e;
    for (int i = 0; i < 120; i++) {
        memset(data, 'a' + i % 26, 50000);
        store_txn *t = stt_begin(f.s);
        cr_assert_eq(store_txn_store(t, 1, serial, data, 50000, &e), 0);
        cr_assert_eq(store_txn_store(t, 1000 + (uint64_t)i, 0, data, 50000, &e), 0);
        serial = stt_finish(t);
    }
    stop = 1;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].bad, 0);
        cr_assert_gt(a[i].loads, 0);
    }
    cr_assert_gt(f.s->map_size, 1u << 20);
    free(data);
    stt_done(&f);
}
