/* The store's resolver hook (store_options.resolver): which conflicts the
 * store offers it, with which three records, what it writes when the hook
 * resolves, and that a refusal leaves everything as without the hook. The
 * hook here is a counter: records "N:<value>", resolved as committed + new
 * - old, as BTrees.Length is. */
#include "resolvertest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* What a failed or conflicting vote leaves: the conflicts, as without the hook. */
static int vote_conflicts(store_txn *t, store_vote_result *res)
{
    zerr e;
    return store_txn_vote(t, res, &e);
}

TestSuite(store_resolver, .init = rt_setup, .fini = rt_teardown);
Test(store_resolver, resolves_against_durable_data_and_lists_the_oid)
{
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:10");
    uint64_t t1 = stt_commit1(rt_f.s, 1, t0, "N:11");
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 1, t0, "N:20"); /* read 10, wrote 20 (+10) */
    store_vote_result res;
    zerr e;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(rt_hook.calls, 1);
    cr_assert_str_eq(rt_hook.old, "N:10");
    cr_assert_str_eq(rt_hook.committed, "N:11");
    cr_assert_str_eq(rt_hook.new_rec, "N:20");
    cr_assert_eq(res.n_conflicts, 0);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "%s", e.msg);
    store_txn_free(t);
    cr_assert_gt(tid, t1);
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:21");
}

Test(store_resolver, refusal_is_the_conflict_as_without_a_hook)
{
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:10");
    uint64_t t1 = stt_commit1(rt_f.s, 1, t0, "N:11");
    rt_hook.refuse = 1;
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 1, t0, "N:20");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(rt_hook.calls, 1);
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
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:1");
    uint64_t t1 = stt_commit1(rt_f.s, 1, t0, "N:2");
    uint64_t u0 = stt_commit1(rt_f.s, 2, 0, "X:1");
    stt_commit1(rt_f.s, 2, u0, "X:2");
    zerr e;
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 2, u0, "X:3");                         /* unknown to the rt_hook */
    cr_assert_eq(store_txn_delete(t, 1, t0, &e), 0); /* a stale delete */
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(rt_hook.known_calls, 1);
    cr_assert_eq(rt_hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
    /* a store that claims a new object where one exists: no old revision */
    t = stt_begin(rt_f.s);
    rt_store1(t, 1, 0, "N:5");
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(rt_hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
    /* a store with a blob */
    char path[4096];
    cr_assert_eq(store_blob_tmpname(rt_f.s, path, sizeof path, &e), 0);
    cr_assert_eq(tu_write_file(path, "blob", 4), 0);
    t = stt_begin(rt_f.s);
    cr_assert_eq(store_txn_store_blob(t, 1, t0, "N:5", 3, path, &e), 0);
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(res.conflicts[0].committed, t1);
    cr_assert_eq(rt_hook.calls, 0);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_resolver, a_later_store_of_the_oid_is_the_one_offered)
{
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:1");
    uint64_t t1 = stt_commit1(rt_f.s, 1, t0, "N:2");
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 1, t1, "N:7");
    rt_store1(t, 1, t0, "N:3");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), 0);
    cr_assert_eq(rt_hook.calls, 1);
    cr_assert_str_eq(rt_hook.new_rec, "N:3");
    zerr e;
    cr_assert_eq(store_txn_finish(t, NULL, &e), 0);
    store_txn_free(t);
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:4");
}

Test(store_resolver, resolved_stores_stay_resolved_while_the_client_resolves_others)
{
    uint64_t a0 = stt_commit1(rt_f.s, 1, 0, "N:1");
    stt_commit1(rt_f.s, 1, a0, "N:2");
    uint64_t b0 = stt_commit1(rt_f.s, 2, 0, "X:1");
    uint64_t b1 = stt_commit1(rt_f.s, 2, b0, "X:2");
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 1, a0, "N:11");
    rt_store1(t, 2, b0, "X:3");
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert_eq(res.conflicts[0].oid, 2);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    /* the client's resolution of oid 2, then the second vote */
    rt_store1(t, 2, b1, "X:4");
    zerr e;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(rt_hook.calls, 1);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_eq(res.resolved[0], 1);
    cr_assert_eq(store_txn_finish(t, NULL, &e), 0);
    store_txn_free(t);
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:12");
    rt_expect(2, "X:4");
}

Test(store_resolver, resolved_record_over_max_record_is_refused)
{
    stt_done(&rt_f);
    store_options opt = {
        .create = 1, .no_sync = 1, .max_record = 4, .resolver = {rt_hook_known, rt_hook_resolve, &rt_hook}};
    stt_open(&rt_f, &opt);
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:9");
    stt_commit1(rt_f.s, 1, t0, "N:99");
    store_txn *t = stt_begin(rt_f.s);
    rt_store1(t, 1, t0, "N:99"); /* 99 + 99 - 9 = 189: five bytes */
    store_vote_result res;
    cr_assert_eq(vote_conflicts(t, &res), ZE_CONFLICT);
    cr_assert_eq(rt_hook.calls, 1);
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
    store_txn *t = stt_begin(rt_f.s);
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
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    return rc;
}

Test(store_resolver, undo_merges_the_record_before_into_later_changes)
{
    uint64_t t1 = stt_commit1(rt_f.s, 1, 0, "N:1");
    uint64_t t2 = stt_commit1(rt_f.s, 1, t1, "N:5"); /* +4, to be undone */
    stt_commit1(rt_f.s, 1, t2, "N:7");               /* +2 */
    undo_out res;
    cr_assert_eq(undo(t2, &res), 0);
    cr_assert_eq(res.n_undo_resolved, 1);
    cr_assert_eq(res.n_changed, 1);
    cr_assert_str_eq(rt_hook.old, "N:5");
    cr_assert_str_eq(rt_hook.committed, "N:7");
    cr_assert_str_eq(rt_hook.new_rec, "N:1");
    rt_expect(1, "N:3");
}

Test(store_resolver, undo_refused_by_the_hook_fails_as_without_it)
{
    uint64_t t1 = stt_commit1(rt_f.s, 1, 0, "N:1");
    uint64_t t2 = stt_commit1(rt_f.s, 1, t1, "N:5");
    stt_commit1(rt_f.s, 1, t2, "N:7");
    rt_hook.refuse = 1;
    undo_out res;
    cr_assert_eq(undo(t2, &res), ZE_UNDO);
    cr_assert_eq(rt_hook.calls, 1);
    cr_assert_eq(res.n_failures, 1);
    cr_assert_str_eq(res.reason, "Some data were modified by a later transaction");
    rt_expect(1, "N:7");
}

Test(store_resolver, undo_of_a_creation_is_never_offered)
{
    uint64_t t1 = stt_commit1(rt_f.s, 1, 0, "N:1");
    stt_commit1(rt_f.s, 1, t1, "N:2");
    undo_out res;
    cr_assert_eq(undo(t1, &res), ZE_UNDO);
    cr_assert_eq(rt_hook.calls, 0);
    cr_assert_str_eq(res.reason,
                     "Can't undo an add transaction followed by conflicting transactions.");
    rt_expect(1, "N:2");
}

/* A commit resolved against another's data before that one was durable
 * commits only if that one does: here the first fails in the writer (its
 * blob file is gone), so the second must fail too, not keep its increment
 * on top of an increment that never happened. */
