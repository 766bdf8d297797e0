/* The order a client relies on when the server runs its store calls off the
 * loop (ZEOLITE_OFFLOOP, as for a network store): replies come in the order
 * of their requests; an invalidation never overtakes an older reply (one
 * whose snapshot precedes it: a loadBefore that says "current" then keeps a
 * stale object in the client's cache for ever); no reply shows a tid before
 * the client got that tid's invalidation (ZODB's MVCC: once a reply has
 * come, every earlier invalidation has). Spec zeo-protocol.md section 8.1.
 *
 * The server holds each read on its worker until a commit has completed
 * after the read was dispatched (ZEOLITE_OFFLOOP_HOLD_MS), then reads from
 * a snapshot that has that commit: every round, readers in both encodings
 * pipeline loads and other reads, and once the server has them all under
 * way (zeolite_memory's "jobs"), a writer commits new revisions of the
 * objects they read; every frame the readers get is checked as it comes.
 * Nothing here depends on timing. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

static th_server srv;

enum { N_OIDS = 4, ROUNDS = 12, JOBS_A_ROUND = 7, READERS = 2, MAX_TIDS = ROUNDS + 8, MAX_PENDING = 1024 };
#define OID0 1
#define MAXTID 0x7fffffffffffffffULL

/* What the writer committed: each tid, and the value every oid got then. */
typedef struct history_t {
    uint64_t tids[MAX_TIDS];
    int n;
} history_t;

static history_t written;

static int written_index(uint64_t tid)
{
    for (int i = 0; i < written.n; i++)
        if (written.tids[i] == tid)
            return i;
    return -1;
}

/* One reader and what it has been sent so far. */
typedef struct reader {
    tc c;
    int64_t pending[MAX_PENDING];  /* msgids in the order sent */
    uint64_t pending_oid[MAX_PENDING];   /* loadBefore's oid, else 0 */
    size_t head, tail;
    uint64_t invalidated[MAX_TIDS];   /* tids, in the order received */
    int n_inv;
    uint64_t first;                /* the last tid when it registered */
    int replies, raced;            /* "current" replies an invalidation followed */
} reader;

static reader rd[READERS];

static void start(void)
{
    setenv("ZEOLITE_OFFLOOP", "1", 1);
    setenv("ZEOLITE_OFFLOOP_HOLD_MS", "2000", 1);
    cr_assert_eq(th_start(&srv, NULL), 0);
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_order, .init = start, .fini = stop, .timeout = 120);

static int invalidated(const reader *r, uint64_t tid)
{
    for (int i = 0; i < r->n_inv; i++)
        if (r->invalidated[i] == tid)
            return 1;
    return 0;
}

/* Every written tid a value shows must have been invalidated before. */
static void check_revealed(reader *r, const zv *v, const char *what)
{
    if (v->type == ZV_BYTES && v->u.s.len == 8) {
        uint64_t tid = tv_u64(v);
        if (tid > r->first && written_index(tid) >= 0)
            cr_expect(invalidated(r, tid), "%s shows %016llx before its invalidation", what,
                      (unsigned long long)tid);
        return;
    }
    if (zv_is_seq(v))
        for (size_t i = 0; i < v->u.seq.n; i++)
            check_revealed(r, v->u.seq.items[i], what);
    if (v->type == ZV_DICT)
        for (size_t i = 0; i < 2 * v->u.seq.n; i++)
            check_revealed(r, v->u.seq.items[i], what);
}

/* A loadBefore reply (data, start, end) for oid: the revision written at
 * start, and, when it says current, no invalidation of a later commit
 * came before it. */
static void check_load(reader *r, uint64_t oid, const zv *v)
{
    cr_assert(zv_is_seq(v) && v->u.seq.n == 3, "loadBefore(%llu): not a (data, start, end)",
              (unsigned long long)oid);
    uint64_t start = tv_u64(v->u.seq.items[1]);
    const zv *data = v->u.seq.items[0];
    int at = written_index(start);
    cr_assert_geq(at, 0, "loadBefore(%llu) started at %016llx, which nobody wrote",
                  (unsigned long long)oid, (unsigned long long)start);
    char want[32];
    snprintf(want, sizeof want, "oid%llu-v%d", (unsigned long long)oid, at);
    cr_expect(data->u.s.len == strlen(want) && !memcmp(data->u.s.p, want, data->u.s.len),
              "loadBefore(%llu) at %016llx: got '%.*s', not '%s'", (unsigned long long)oid,
              (unsigned long long)start, (int)data->u.s.len, (const char *)data->u.s.p, want);
    if (v->u.seq.items[2]->type != ZV_NONE)
        return;
    r->replies++;
    for (int i = 0; i < r->n_inv; i++)
        cr_expect(r->invalidated[i] <= start,
                  "an invalidation (%016llx) overtook a reply calling %016llx of oid %llu "
                  "current", (unsigned long long)r->invalidated[i], (unsigned long long)start,
                  (unsigned long long)oid);
}

/* Take one message: an invalidation, or the reply to the oldest request. */
static void take(reader *r, const proto_msg *m)
{
    if (!strcmp(m->name, "invalidateTransaction")) {
        uint64_t tid = tv_u64(m->args->u.seq.items[0]);
        cr_expect(!r->n_inv || tid > r->invalidated[r->n_inv - 1],
                  "invalidations out of tid order");
        cr_assert_lt(r->n_inv, MAX_TIDS);
        /* Replies saying "current" that came before this one were raced. */
        r->raced += r->replies;
        r->replies = 0;
        r->invalidated[r->n_inv++] = tid;
        return;
    }
    cr_assert_str_eq(m->name, ".reply", "unexpected %s", m->name);
    cr_assert_lt(r->head, r->tail, "a reply nobody asked for");
    int64_t id;
    cr_assert(zv_get_int(m->msgid, &id));
    cr_expect_eq(id, r->pending[r->head % MAX_PENDING], "reply %lld came out of order",
                 (long long)id);
    uint64_t oid = r->pending_oid[r->head % MAX_PENDING];
    r->head++;
    cr_expect_eq(m->flag, 0, "request %lld failed", (long long)id);
    if (m->flag)
        return;
    check_revealed(r, m->args, "a reply");
    if (oid)
        check_load(r, oid, m->args);
}

static void ask(reader *r, const char *name, zv *args, uint64_t load_oid)
{
    cr_assert_lt(r->tail - r->head, MAX_PENDING);
    r->pending_oid[r->tail % MAX_PENDING] = load_oid;
    r->pending[r->tail++ % MAX_PENDING] = tc_send(&r->c, NULL, 0, name, args);
}

/* A round's reads: every object's current revision, and the other reads
 * that show tids. */
static void ask_round(reader *r)
{
    zv_arena *a = r->c.a;
    for (uint64_t k = 0; k < N_OIDS; k++)
        ask(r, "loadBefore", tv_tuple(a, 2, tv_oid(a, OID0 + k), tv_oid(a, MAXTID)), OID0 + k);
    ask(r, "getTid", tv_tuple(a, 1, tv_oid(a, OID0)), 0);
    ask(r, "history", tv_tuple(a, 2, tv_oid(a, OID0 + 1), tv_int(a, 3)), 0);
    ask(r, "record_iternext", tv_tuple(a, 0), 0);
    ask(r, "lastTransaction", tv_tuple(a, 0), 0);
}

/* Read until every reply is in. */
static void receive(reader *r)
{
    proto_msg m;
    while (r->head < r->tail) {
        cr_assert_eq(tc_recv(&r->c, &m, TC_TIMEOUT), 1, "%zu replies never came",
                     r->tail - r->head);
        take(r, &m);
        tc_reset(&r->c);
    }
}

/* Wait until the server has n calls under way off the loop: the round's
 * reads are all dispatched, and held. */
static void wait_jobs(tc *w, int64_t n)
{
    int64_t jobs = -1;
    for (int i = 0; i < 2000 && (jobs = tc_status_int(w, "jobs")) != n; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        tc_reset(w);
    }
    cr_assert_eq(jobs, n, "the server has %lld calls under way, not %lld", (long long)jobs,
                 (long long)n);
}

/* The writer's transaction: every object gets its round's value. */
static void commit_round(tc *w, int64_t txn)
{
    int n = written.n;
    uint64_t serial = n ? written.tids[n - 1] : 0;
    zv_arena *a = w->a;
    for (uint64_t k = 0; k < N_OIDS; k++) {
        char value[32];
        snprintf(value, sizeof value, "oid%llu-v%d", (unsigned long long)(OID0 + k), n);
        if (k == 0)
            tc_begin_store(w, txn, OID0 + k, serial, value);
        else
            tc_store(w, txn, OID0 + k, serial, value);
    }
    int64_t flag;
    zv *v = tc_call(w, "vote", tv_tuple(a, 1, tv_int(a, txn)), &flag);
    cr_assert(v && flag == 0 && zv_is_seq(v) && v->u.seq.n == 0, "the writer's vote failed");
    zv *t = tc_call(w, "tpc_finish", tv_tuple(a, 1, tv_int(a, txn)), &flag);
    cr_assert(t && flag == 0, "the writer's commit failed");
    cr_assert_lt(written.n, MAX_TIDS);
    written.tids[written.n++] = tv_u64(t);
    tc_reset(w);
}

Test(server_order, invalidations_keep_their_place_among_replies_off_the_loop)
{
    tc w;
    cr_assert_eq(tc_connect(&w, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(&w), 0);
    /* The objects' first revisions, before the readers come. */
    commit_round(&w, 1);
    for (int i = 0; i < READERS; i++) {
        reader *r = &rd[i];
        cr_assert_eq(tc_connect(&r->c, srv.port, i % 2 ? PROTO_MSGPACK : PROTO_PICKLE, NULL), 0);
        int64_t last = tc_register(&r->c);
        cr_assert_eq((uint64_t)last, written.tids[0]);
        r->first = (uint64_t)last;
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < READERS; i++)
            ask_round(&rd[i]);
        wait_jobs(&w, READERS * JOBS_A_ROUND);
        commit_round(&w, 100 + round);
        for (int i = 0; i < READERS; i++)
            receive(&rd[i]);
    }
    for (int i = 0; i < READERS; i++) {
        reader *r = &rd[i];
        /* Every commit is invalidated, once, in order. */
        while (r->n_inv < written.n - 1) {
            proto_msg m;
            cr_assert_eq(tc_recv(&r->c, &m, TC_TIMEOUT), 1, "invalidations are missing");
            take(r, &m);
            tc_reset(&r->c);
        }
        cr_expect_eq(r->n_inv, written.n - 1);
        for (int k = 1; k < written.n && k - 1 < r->n_inv; k++)
            cr_expect_eq(r->invalidated[k - 1], written.tids[k]);
        /* Every round's loads met the race the test is about. */
        cr_expect_eq(r->raced, ROUNDS * N_OIDS, "%d replies were followed by an "
                     "invalidation of a later commit", r->raced);
        tc_close(&r->c);
    }
    tc_close(&w);
}
