/* store_stress.c: the store's writer thread under commits, reads and packs
 * from several threads at once, every result checked.
 *
 * A plain program, not a Criterion suite: Criterion's runner aborts under
 * ThreadSanitizer (Criterion issue 274), and scripts/test.sh builds this one
 * with -fsanitize=thread. ctest runs it in the other builds as well.
 *
 * COMMITTERS threads each run ROUNDS rounds. A round rewrites one of the
 * thread's own objects (a few KB, so the 1 MB map grows while readers read)
 * and increments a counter that every committer shares. A mutex plays the
 * server's commit lock for the counter: it is released as soon as
 * store_txn_commit returns, so the next vote meets a commit that is not yet
 * durable. Every few rounds a vote with a stale serial must conflict. READERS
 * threads refresh and load meanwhile, and a packer packs to the present.
 * Counts are fixed, so the run is bounded; nothing depends on timing.
 * Exit status: 0 when every check held, 1 otherwise (the first failure is
 * printed). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ztid.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "testutil.h"

#define COMMITTERS 4
#define READERS 2
#define ROUNDS 200
#define OWN_OIDS 3            /* objects per committer */
#define OBJ_SIZE 6000         /* bytes per object revision */
#define COUNTER_OID 1
#define PACKS 3

typedef struct shared {
    store *s;
    pthread_mutex_t lock;     /* the counter's commit lock */
    pthread_cond_t moved;     /* broadcast when count moves or a committer ends */
    uint64_t count, count_tid;
    atomic_int committers_left;
    atomic_int failed;
    uint64_t oids[COMMITTERS][ROUNDS];   /* from store_new_oids */
} shared;

static void fail(shared *sh, const char *fmt, ...)
{
    va_list ap;
    if (atomic_fetch_add(&sh->failed, 1))
        return;
    va_start(ap, fmt);
    fputs("store_stress: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- waiting for the writer's callback ----------------------------------- */

typedef struct done_flag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
    uint64_t tid;
} done_flag;

static void on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    done_flag *d = ud;
    pthread_mutex_lock(&d->mu);
    d->done = 1;
    d->rc = rc;
    d->tid = tid;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void done_init(done_flag *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->done = d->rc = 0;
    d->tid = 0;
}

static int done_wait(done_flag *d, uint64_t *tid)
{
    pthread_mutex_lock(&d->mu);
    while (!d->done)
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    *tid = d->tid;
    return d->rc;
}

/* ---- object contents ------------------------------------------------------ */

/* "c<thread> r<round>" then filler derived from both, so a reader can check
 * that a revision is whole. */
static size_t obj_fill(char *buf, int thread, int round)
{
    int n = snprintf(buf, OBJ_SIZE, "c%d r%d ", thread, round);
    memset(buf + n, 'a' + (thread * 7 + round) % 26, OBJ_SIZE - (size_t)n);
    return OBJ_SIZE;
}

/* 1 when data is a whole revision of thread's object; *round is its round. */
static int obj_check(const zbuf *data, int thread, int *round)
{
    char want[OBJ_SIZE];
    int t;
    if (data->len != OBJ_SIZE || sscanf((const char *)data->data, "c%d r%d ", &t, round) != 2 ||
        t != thread)
        return 0;
    obj_fill(want, thread, *round);
    return memcmp(want, data->data, OBJ_SIZE) == 0;
}

static uint64_t own_oid(int thread, int k)
{
    return 1000 + (uint64_t)thread * 100 + (uint64_t)k;
}

/* ---- committers ----------------------------------------------------------- */

typedef struct committer {
    shared *sh;
    int id;
    store_reader *r;
    uint64_t serial[OWN_OIDS];
} committer;

static store_txn *begin(shared *sh)
{
    store_txn_meta m = {(const uint8_t *)"stress", 6, NULL, 0, NULL, 0, ' ', 0};
    store_txn *t = NULL;
    zerr e;
    if (store_txn_begin(sh->s, &m, &t, &e))
        fail(sh, "begin: %s", e.msg);
    return t;
}

/* Vote and hand over; the caller waits on d. 0 with *tid set, or -1. */
static int vote_commit(shared *sh, store_txn *t, uint64_t *tid, done_flag *d)
{
    zerr e;
    store_vote_result res;
    if (store_txn_vote(t, &res, &e)) {
        fail(sh, "vote: %s", e.msg);
        return -1;
    }
    if (store_txn_commit(t, tid, on_commit, d, &e)) {
        fail(sh, "commit: %s", e.msg);
        return -1;
    }
    return 0;
}

static void finish(shared *sh, store_txn *t, uint64_t tid, done_flag *d, const char *what)
{
    uint64_t cb_tid;
    int rc = done_wait(d, &cb_tid);
    if (rc || cb_tid != tid)
        fail(sh, "%s: callback rc %d tid %" PRIx64 ", commit said %" PRIx64, what, rc, cb_tid,
             tid);
    store_txn_free(t);
}

/* The newest revision of oid must be want_tid with the data of (thread, round). */
static void check_own(committer *c, uint64_t oid, uint64_t want_tid, int round)
{
    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    zerr e;
    int got;
    if (store_reader_refresh(c->r, &e) ||
        store_load_before(c->r, oid, STORE_TID_MAX, &data, &start, &end, &e))
        fail(c->sh, "load %" PRIx64 ": %s", oid, e.msg);
    else if (start != want_tid || end != 0 || !obj_check(&data, c->id, &got) || got != round)
        fail(c->sh, "oid %" PRIx64 ": tid %" PRIx64 " (want %" PRIx64 "), round %d", oid, start,
             want_tid, round);
    zbuf_free(&data);
}

static void own_round(committer *c, int round)
{
    shared *sh = c->sh;
    int k = round % OWN_OIDS;
    uint64_t oid = own_oid(c->id, k), tid = 0;
    char buf[OBJ_SIZE];
    size_t len = obj_fill(buf, c->id, round);
    zerr e;
    done_flag d;
    store_txn *t = begin(sh);
    if (!t)
        return;
    done_init(&d);
    if (store_txn_store(t, oid, c->serial[k], buf, len, &e)) {
        fail(sh, "store: %s", e.msg);
        store_txn_free(t);
        return;
    }
    if (vote_commit(sh, t, &tid, &d)) {
        store_txn_free(t);
        return;
    }
    finish(sh, t, tid, &d, "own object");
    c->serial[k] = tid;
    check_own(c, oid, tid, round);
}

/* With the lock held: a vote on the counter with an older serial conflicts,
 * naming the last handed-over (maybe not yet durable) tid. */
static void stale_vote(shared *sh, uint64_t stale)
{
    zerr e;
    store_vote_result res;
    store_txn *t = begin(sh);
    if (!t)
        return;
    if (store_txn_store(t, COUNTER_OID, stale, "stale", 5, &e))
        fail(sh, "store: %s", e.msg);
    else if (store_txn_vote(t, &res, &e) != ZE_CONFLICT || res.n_conflicts != 1 ||
             res.conflicts[0].committed != sh->count_tid)
        fail(sh, "a stale serial did not conflict with %" PRIx64, sh->count_tid);
    store_txn_abort(t);
    store_txn_free(t);
}

static void counter_round(committer *c, int round)
{
    shared *sh = c->sh;
    char text[32];
    uint64_t tid = 0, before;
    zerr e;
    done_flag d;
    pthread_mutex_lock(&sh->lock);
    before = sh->count_tid;
    store_txn *t = begin(sh);
    done_init(&d);
    int n = snprintf(text, sizeof text, "%" PRIu64, sh->count + 1);
    int ok = t && store_txn_store(t, COUNTER_OID, sh->count_tid, text, (size_t)n, &e) == 0;
    if (t && !ok)
        fail(sh, "store: %s", e.msg);
    if (ok && vote_commit(sh, t, &tid, &d) == 0) {
        sh->count++;
        sh->count_tid = tid;
        pthread_cond_broadcast(&sh->moved);
        if (before && round % 5 == 0)
            stale_vote(sh, before);
    } else {
        ok = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    if (ok)
        finish(sh, t, tid, &d, "counter");
    else if (t)
        store_txn_free(t);
}

static void *committer_main(void *arg)
{
    committer *c = arg;
    shared *sh = c->sh;
    zerr e;
    if (store_reader_new(sh->s, &c->r, &e)) {
        fail(sh, "reader: %s", e.msg);
    } else {
        for (int round = 0; round < ROUNDS && !atomic_load(&sh->failed); round++) {
            own_round(c, round);
            counter_round(c, round);
            if (store_new_oids(sh->s, 1, &sh->oids[c->id][round], &e))
                fail(sh, "new_oids: %s", e.msg);
        }
        store_reader_free(c->r);
    }
    pthread_mutex_lock(&sh->lock);
    atomic_fetch_sub(&sh->committers_left, 1);
    pthread_cond_broadcast(&sh->moved);
    pthread_mutex_unlock(&sh->lock);
    return NULL;
}

/* ---- readers and the packer ---------------------------------------------- */

typedef struct reader {
    shared *sh;
    uint64_t last_tid, count, store_tid, commits;
    int round[COMMITTERS][OWN_OIDS];
    unsigned long loads;
} reader;

static int history_cb(const store_txn_info *info, void *ud)
{
    uint64_t *prev = ud;
    if (*prev && info->tid >= *prev)
        return 1;   /* history goes newest first */
    *prev = info->tid;
    return 0;
}

static void read_counter(reader *rd, store_reader *r)
{
    zbuf data = ZBUF_INIT;
    uint64_t start, end, prev = 0;
    zerr e;
    int rc = store_load_before(r, COUNTER_OID, STORE_TID_MAX, &data, &start, &end, &e);
    if (rc == 0) {
        zbuf_append_byte(&data, 0);
        uint64_t v = strtoull((const char *)data.data, NULL, 10);
        if (v < rd->count || start > store_reader_last_tid(r))
            fail(rd->sh, "counter went back: %" PRIu64 " after %" PRIu64, v, rd->count);
        rd->count = v;
        rc = store_history(r, COUNTER_OID, 4, history_cb, &prev, &e);
        if (rc)
            fail(rd->sh, "history: %s", rc == 1 ? "not newest first" : e.msg);
    } else if (rc != ZE_NOTFOUND || rd->count) {
        fail(rd->sh, "load counter: %s", e.msg);
    }
    zbuf_free(&data);
}

static void read_own(reader *rd, store_reader *r, int thread, int k)
{
    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    zerr e;
    int round;
    int rc = store_load_before(r, own_oid(thread, k), STORE_TID_MAX, &data, &start, &end, &e);
    if (rc == 0) {
        if (!obj_check(&data, thread, &round) || round < rd->round[thread][k])
            fail(rd->sh, "object %d/%d: torn or older revision", thread, k);
        rd->round[thread][k] = round;
    } else if (rc != ZE_NOTFOUND || rd->round[thread][k] >= 0) {
        fail(rd->sh, "load object %d/%d: %s", thread, k, e.msg);
    }
    zbuf_free(&data);
    rd->loads++;
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    shared *sh = rd->sh;
    store_reader *r;
    zerr e;
    if (store_reader_new(sh->s, &r, &e)) {
        fail(sh, "reader: %s", e.msg);
        return NULL;
    }
    memset(rd->round, 0xff, sizeof rd->round);   /* -1: not seen yet */
    /* Bounded: the committers finish after a fixed count of rounds. */
    do {
        store_stats st;
        if (store_reader_refresh(r, &e))
            fail(sh, "refresh: %s", e.msg);
        uint64_t last = store_reader_last_tid(r);
        if (last < rd->last_tid)
            fail(sh, "a refresh went back in time");
        rd->last_tid = last;
        read_counter(rd, r);
        for (int i = 0; i < COMMITTERS; i++)
            for (int k = 0; k < OWN_OIDS; k++)
                read_own(rd, r, i, k);
        /* The store's own figures, read beside the writer, only go up. */
        uint64_t durable = store_last_tid(sh->s);
        store_get_stats(sh->s, &st);
        if (durable < rd->store_tid || st.commits < rd->commits)
            fail(sh, "store_last_tid or the commit count went back");
        rd->store_tid = durable;
        rd->commits = st.commits;
        (void)store_object_count(sh->s);
    } while (atomic_load(&sh->committers_left) > 0 && !atomic_load(&sh->failed));
    store_reader_free(r);
    return NULL;
}

/* Packs to the counter's last commit each time it has gone a quarter of
 * the way further (the last pack may find the committers done). */
static void *packer_main(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < PACKS && !atomic_load(&sh->failed); i++) {
        store_pack_stats ps;
        zerr e;
        uint64_t goal = (uint64_t)(i + 1) * COMMITTERS * ROUNDS / (PACKS + 1);
        pthread_mutex_lock(&sh->lock);
        while (sh->count < goal && atomic_load(&sh->committers_left) > 0)
            pthread_cond_wait(&sh->moved, &sh->lock);
        uint64_t tid = sh->count_tid;
        pthread_mutex_unlock(&sh->lock);
        if (tid && store_pack(sh->s, ztid_time(tid), 0, &ps, &e))
            fail(sh, "pack: %s", e.msg);
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_end(shared *sh, reader *rd)
{
    uint64_t all[COMMITTERS * ROUNDS];
    store_stats st;
    memcpy(all, sh->oids, sizeof all);
    qsort(all, COMMITTERS * ROUNDS, sizeof all[0], cmp_u64);
    for (size_t i = 1; i < COMMITTERS * ROUNDS; i++)
        if (all[i] == all[i - 1])
            fail(sh, "store_new_oids handed out %" PRIx64 " twice", all[i]);
    if (sh->count != COMMITTERS * ROUNDS)
        fail(sh, "counter %" PRIu64 ", want %d", sh->count, COMMITTERS * ROUNDS);
    store_get_stats(sh->s, &st);
    if (st.commits < 2 * COMMITTERS * ROUNDS)
        fail(sh, "%" PRIu64 " commits counted", st.commits);
    for (int i = 0; i < READERS; i++)
        if (!rd[i].loads)
            fail(sh, "reader %d loaded nothing", i);
}

/* After reopening: the counter's last value is durable. */
static void check_reopened(shared *sh, const char *dir)
{
    store_options opt = {.no_sync = 1};
    store *s;
    store_reader *r;
    zbuf data = ZBUF_INIT;
    uint64_t start, end;
    zerr e;
    if (store_open(&s, dir, &opt, &e) || store_reader_new(s, &r, &e)) {
        fail(sh, "reopen: %s", e.msg);
        return;
    }
    if (store_load_before(r, COUNTER_OID, STORE_TID_MAX, &data, &start, &end, &e))
        fail(sh, "load counter after reopen: %s", e.msg);
    else if (zbuf_append_byte(&data, 0), strtoull((const char *)data.data, NULL, 10) != sh->count ||
             start != sh->count_tid)
        fail(sh, "counter after reopen: %s", (const char *)data.data);
    zbuf_free(&data);
    store_reader_free(r);
    store_close(s);
}

int main(void)
{
    static shared sh;
    committer c[COMMITTERS];
    reader rd[READERS];
    pthread_t tc[COMMITTERS], tr[READERS], tp;
    /* index batches every 64 entries: the overlay is applied and dropped
     * under the readers again and again */
    store_options opt = {.create = 1, .no_sync = 1, .map_size = 1 << 20, .index_batch = 64};
    char *dir = tu_tmpdir("stress");
    zerr e;
    if (!dir || store_open(&sh.s, dir, &opt, &e)) {
        fprintf(stderr, "store_stress: open: %s\n", dir ? e.msg : "no temp dir");
        return 1;
    }
    sh.s->map_max = 256u << 20;   /* start small: the map grows under the readers */
    pthread_mutex_init(&sh.lock, NULL);
    pthread_cond_init(&sh.moved, NULL);
    atomic_init(&sh.committers_left, COMMITTERS);
    atomic_init(&sh.failed, 0);
    for (int i = 0; i < READERS; i++) {
        rd[i] = (reader){.sh = &sh};
        pthread_create(&tr[i], NULL, reader_main, &rd[i]);
    }
    pthread_create(&tp, NULL, packer_main, &sh);
    for (int i = 0; i < COMMITTERS; i++) {
        c[i] = (committer){.sh = &sh, .id = i};
        pthread_create(&tc[i], NULL, committer_main, &c[i]);
    }
    for (int i = 0; i < COMMITTERS; i++)
        pthread_join(tc[i], NULL);
    pthread_join(tp, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(tr[i], NULL);
    check_end(&sh, rd);
    uint64_t map_size = sh.s->map_size;
    if (map_size <= (1u << 20))
        fail(&sh, "the map never grew");
    store_close(sh.s);
    if (!atomic_load(&sh.failed))
        check_reopened(&sh, dir);
    tu_rmrf(dir);
    free(dir);
    if (atomic_load(&sh.failed))
        return 1;
    unsigned long loads = 0;
    for (int i = 0; i < READERS; i++)
        loads += rd[i].loads;
    printf("store_stress: %d commits from %d threads, %lu loads by %d readers, %d packs, "
           "map grown to %" PRIu64 " bytes: ok\n", 2 * COMMITTERS * ROUNDS, COMMITTERS, loads,
           READERS, PACKS, map_size);
    return 0;
}
