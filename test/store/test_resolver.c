/* The store's resolver hook (store_options.resolver): which conflicts the
 * store offers it, with which three records, what it writes when the hook
 * resolves, and that a refusal leaves everything as without the hook. The
 * hook here is a counter: records "N:<value>", resolved as committed + new
 * - old, as BTrees.Length is. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct counter_hook {
    int calls, known_calls;
    int refuse;                               /* answer 0 */
    char old[32], committed[32], new_rec[32]; /* the last call's records */
} counter_hook;

static st_fixture f;
static counter_hook hook;

static int value_of(zslice r, long long *v)
{
    char buf[32];
    if (r.len < 3 || r.len >= sizeof buf || memcmp(r.p, "N:", 2))
        return -1;
    memcpy(buf, r.p, r.len);
    buf[r.len] = 0;
    *v = strtoll(buf + 2, NULL, 10);
    return 0;
}

static int hook_known(void *data, const uint8_t *rec, size_t len)
{
    counter_hook *h = data;
    h->known_calls++;
    return len >= 2 && !memcmp(rec, "N:", 2);
}

static void keep(char *dst, zslice r)
{
    snprintf(dst, 32, "%.*s", (int)r.len, (const char *)r.p);
}

static int hook_resolve(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                        zbuf *out)
{
    counter_hook *h = data;
    long long o, c, n;
    h->calls++;
    keep(h->old, old);
    keep(h->committed, committed);
    keep(h->new_rec, new_rec);
    if (h->refuse || value_of(old, &o) || value_of(committed, &c) || value_of(new_rec, &n))
        return 0;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "N:%lld", c + n - o);
    return zbuf_append(out, buf, (size_t)len) == 0;
}

static void setup(void)
{
    memset(&hook, 0, sizeof hook);
    store_options opt = {.create = 1, .no_sync = 1, .resolver = {hook_known, hook_resolve, &hook}};
    stt_open(&f, &opt);
}

static void teardown(void)
{
    stt_done(&f);
}

TestSuite(store_resolver, .init = setup, .fini = teardown);

static void expect(uint64_t oid, const char *text)
{
    char buf[64];
    cr_assert_eq(stt_load(f.r, oid, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, text);
}

static void store1(store_txn *t, uint64_t oid, uint64_t serial, const char *text)
{
    zerr e;
    cr_assert_eq(store_txn_store(t, oid, serial, text, strlen(text), &e), 0, "%s", e.msg);
}

Test(store_resolver, resolves_against_durable_data_and_lists_the_oid)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:10");
    uint64_t t1 = stt_commit1(f.s, 1, t0, "N:11");
    store_txn *t = stt_begin(f.s);
    store1(t, 1, t0, "N:20"); /* read 10, wrote 20 (+10) */
    store_vote_result res;
    zerr e;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(hook.calls, 1);
    cr_assert_str_eq(hook.old, "N:10");
    cr_assert_str_eq(hook.committed, "N:11");
    cr_assert_str_eq(hook.new_rec, "N:20");
    cr_assert_eq(res.n_conflicts, 0);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "%s", e.msg);
    store_txn_free(t);
    cr_assert_gt(tid, t1);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:21");
}

Test(store_resolver, resolves_against_a_commit_not_yet_durable)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:0");
    stt_gate g;
    stt_gate_close(&g, f.s);
    /* A is handed to the writer, which cannot write it yet. */
    store_txn *a = stt_begin(f.s);
    store1(a, 1, t0, "N:1");
    zerr e;
    cr_assert_eq(store_txn_vote(a, NULL, &e), 0);
    stt_done_flag d;
    stt_done_init(&d);
    uint64_t ta;
    cr_assert_eq(store_txn_commit(a, &ta, stt_on_commit, &d, &e), 0);
    /* B read 0 too, and is resolved against A's data, still pending. */
    store_txn *b = stt_begin(f.s);
    store1(b, 1, t0, "N:5");
    store_vote_result res;
    cr_assert_eq(store_txn_vote(b, &res, &e), 0, "%s", e.msg);
    cr_assert_str_eq(hook.committed, "N:1");
    cr_assert_eq(res.n_resolved, 1);
    stt_done_flag db;
    stt_done_init(&db);
    uint64_t tb;
    cr_assert_eq(store_txn_commit(b, &tb, stt_on_commit, &db, &e), 0);
    cr_assert_gt(tb, ta);
    stt_gate_open(&g);
    cr_assert_eq(stt_wait_done(&d), 0);
    cr_assert_eq(stt_wait_done(&db), 0);
    store_txn_free(a);
    store_txn_free(b);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:6");
}

/* What a failed or conflicting vote leaves: the conflicts, as without a hook. */
static int vote_conflicts(store_txn *t, store_vote_result *res)
{
    zerr e;
    return store_txn_vote(t, res, &e);
}

Test(store_resolver, refusal_is_the_conflict_as_without_a_hook)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:10");
    uint64_t t1 = stt_commit1(f.s, 1, t0, "N:11");
    hook.refuse = 1;
    store_txn *t = stt_begin(f.s);
    store1(t, 1, t0, "N:20");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(hook.calls, 1);
    cr_assert_eq(res.n_resolved, 0);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert_eq(res.conflicts[0].committed, t1);
    cr_assert_eq(res.conflicts[0].expected, t0);
    cr_assert(res.conflicts[0].data.len == 4 && !memcmp(res.conflicts[0].data.p, "N:20", 4));
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_resolver, only_data_records_of_known_classes_are_offered)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:1");
    uint64_t t1 = stt_commit1(f.s, 1, t0, "N:2");
    uint64_t u0 = stt_commit1(f.s, 2, 0, "X:1");
    stt_commit1(f.s, 2, u0, "X:2");
    zerr e;
    store_txn *t = stt_begin(f.s);
    store1(t, 2, u0, "X:3");                         /* unknown to the hook */
    cr_assert_eq(store_txn_delete(t, 1, t0, &e), 0); /* a stale delete */
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(hook.known_calls, 1);
    cr_assert_eq(hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
    /* a store that claims a new object where one exists: no old revision */
    t = stt_begin(f.s);
    store1(t, 1, 0, "N:5");
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
    /* a store with a blob */
    char path[4096];
    cr_assert_eq(store_blob_tmpname(f.s, path, sizeof path, &e), 0);
    cr_assert_eq(tu_write_file(path, "blob", 4), 0);
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_store_blob(t, 1, t0, "N:5", 3, path, &e), 0);
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(res.conflicts[0].committed, t1);
    cr_assert_eq(hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_resolver, a_later_store_of_the_oid_is_the_one_offered)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:1");
    uint64_t t1 = stt_commit1(f.s, 1, t0, "N:2");
    store_txn *t = stt_begin(f.s);
    store1(t, 1, t1, "N:7");
    store1(t, 1, t0, "N:3");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), 0);
    cr_assert_eq(hook.calls, 1);
    cr_assert_str_eq(hook.new_rec, "N:3");
    zerr e;
    cr_assert_eq(store_txn_finish(t, NULL, &e), 0);
    store_txn_free(t);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:4");
}

Test(store_resolver, resolved_stores_stay_resolved_while_the_client_resolves_others)
{
    uint64_t a0 = stt_commit1(f.s, 1, 0, "N:1");
    stt_commit1(f.s, 1, a0, "N:2");
    uint64_t b0 = stt_commit1(f.s, 2, 0, "X:1");
    uint64_t b1 = stt_commit1(f.s, 2, b0, "X:2");
    store_txn *t = stt_begin(f.s);
    store1(t, 1, a0, "N:11");
    store1(t, 2, b0, "X:3");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert_eq(res.conflicts[0].oid, 2);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    /* the client's resolution of oid 2, then the second vote */
    store1(t, 2, b1, "X:4");
    zerr e;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(hook.calls, 1);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    cr_assert_eq(store_txn_finish(t, NULL, &e), 0);
    store_txn_free(t);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:12");
    expect(2, "X:4");
}

Test(store_resolver, resolved_record_over_max_record_is_refused)
{
    stt_done(&f);
    store_options opt = {
        .create = 1, .no_sync = 1, .max_record = 4, .resolver = {hook_known, hook_resolve, &hook}};
    stt_open(&f, &opt);
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:9");
    stt_commit1(f.s, 1, t0, "N:99");
    store_txn *t = stt_begin(f.s);
    store1(t, 1, t0, "N:99"); /* 99 + 99 - 9 = 189: five bytes */
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(hook.calls, 1);
    cr_assert_eq(res.n_resolved, 0);
    store_txn_abort(t);
    store_txn_free(t);
}

/* ---- undo ------------------------------------------------------------------ */

/* What an undo's vote said, copied before the txn is freed. */
typedef struct undo_out {
    size_t n_changed, n_undo_resolved, n_failures;
    const char *reason; /* the first failure's: a constant string */
} undo_out;

static int undo(uint64_t tid, undo_out *out)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    store_vote_result res;
    cr_assert_eq(store_txn_undo(t, tid, &e), 0);
    int rc = store_txn_vote(t, &res, &e);
    *out = (undo_out){res.n_changed, res.n_undo_resolved, res.n_undo_failures,
                      res.n_undo_failures ? res.undo_failures[0].reason : NULL};
    if (!rc)
        cr_assert_eq(store_txn_finish(t, NULL, &e), 0, "%s", e.msg);
    else
        store_txn_abort(t);
    store_txn_free(t);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    return rc;
}

Test(store_resolver, undo_merges_the_record_before_into_later_changes)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "N:1");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "N:5"); /* +4, to be undone */
    stt_commit1(f.s, 1, t2, "N:7");               /* +2 */
    undo_out res;
    cr_assert_eq(undo(t2, &res), 0);
    cr_assert_eq(res.n_undo_resolved, 1);
    cr_assert_eq(res.n_changed, 1);
    cr_assert_str_eq(hook.old, "N:5");
    cr_assert_str_eq(hook.committed, "N:7");
    cr_assert_str_eq(hook.new_rec, "N:1");
    expect(1, "N:3");
}

Test(store_resolver, undo_refused_by_the_hook_fails_as_without_it)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "N:1");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "N:5");
    stt_commit1(f.s, 1, t2, "N:7");
    hook.refuse = 1;
    undo_out res;
    cr_assert_eq(undo(t2, &res), ZE_UNDO);
    cr_assert_eq(hook.calls, 1);
    cr_assert_eq(res.n_failures, 1);
    cr_assert_str_eq(res.reason, "Some data were modified by a later transaction");
    expect(1, "N:7");
}

Test(store_resolver, undo_of_a_creation_is_never_offered)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "N:1");
    stt_commit1(f.s, 1, t1, "N:2");
    undo_out res;
    cr_assert_eq(undo(t1, &res), ZE_UNDO);
    cr_assert_eq(hook.calls, 0);
    cr_assert_str_eq(res.reason,
                     "Can't undo an add transaction followed by conflicting transactions.");
    expect(1, "N:2");
}

/* A commit resolved against another's data before that one was durable
 * commits only if that one does: here the first fails in the writer (its
 * blob file is gone), so the second must fail too, not keep its increment
 * on top of an increment that never happened. */
Test(store_resolver, a_commit_built_on_a_failed_one_fails)
{
    uint64_t t0 = stt_commit1(f.s, 1, 0, "N:0");
    zerr e;
    char blob[4096];
    cr_assert_eq(store_blob_tmpname(f.s, blob, sizeof blob, &e), 0);
    cr_assert_eq(tu_write_file(blob, "blob", 4), 0);
    stt_gate g;
    stt_gate_close(&g, f.s);
    store_txn *a = stt_begin(f.s), *b = stt_begin(f.s);
    store1(a, 1, t0, "N:1");
    cr_assert_eq(store_txn_store_blob(a, 2, 0, "X:blob", 6, blob, &e), 0);
    cr_assert_eq(store_txn_vote(a, NULL, &e), 0, "%s", e.msg);
    stt_done_flag da, db;
    stt_done_init(&da);
    stt_done_init(&db);
    cr_assert_eq(store_txn_commit(a, NULL, stt_on_commit, &da, &e), 0);
    store1(b, 1, t0, "N:10");
    store_vote_result res;
    cr_assert_eq(store_txn_vote(b, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_str_eq(hook.committed, "N:1");
    cr_assert_eq(store_txn_commit(b, NULL, stt_on_commit, &db, &e), 0);
    cr_assert_eq(unlink(blob), 0);
    stt_gate_open(&g);
    cr_assert_lt(stt_wait_done(&da), 0);
    cr_assert_eq(stt_wait_done(&db), ZE_IO);
    store_txn_free(a);
    store_txn_free(b);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:0");
    /* and a later commit resolves against what is there */
    store_txn *c = stt_begin(f.s);
    store1(c, 1, t0, "N:3");
    stt_finish(c);
    cr_assert_eq(store_reader_refresh(f.r, &e), 0);
    expect(1, "N:3");
}
