/* The store resolver against a commit not yet durable: LMDB's writer hands
 * commits off before they are durable (PostgreSQL's commits are durable
 * before any vote can read them). */
#include "resolvertest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

TestSuite(store_resolver_lmdb, .init = rt_setup, .fini = rt_teardown);

Test(store_resolver_lmdb, resolves_against_a_commit_not_yet_durable)
{
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:0");
    stt_gate g;
    stt_gate_close(&g, rt_f.s);
    /* A is handed to the writer, which cannot write it yet. */
    store_txn *a = stt_begin(rt_f.s);
    rt_store1(a, 1, t0, "N:1");
    zerr e;
    cr_assert_eq(store_txn_vote(a, NULL, &e), 0);
    stt_done_flag d;
    stt_done_init(&d);
    uint64_t ta;
    cr_assert_eq(store_txn_commit(a, &ta, stt_on_commit, &d, &e), 0);
    /* B read 0 too, and is resolved against A's data, still pending. */
    store_txn *b = stt_begin(rt_f.s);
    rt_store1(b, 1, t0, "N:5");
    store_vote_result res;
    cr_assert_eq(store_txn_vote(b, &res, &e), 0, "%s", e.msg);
    cr_assert_str_eq(rt_hook.committed, "N:1");
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
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:6");
}

Test(store_resolver_lmdb, a_commit_built_on_a_failed_one_fails)
{
    uint64_t t0 = stt_commit1(rt_f.s, 1, 0, "N:0");
    zerr e;
    char blob[4096];
    cr_assert_eq(store_blob_tmpname(rt_f.s, blob, sizeof blob, &e), 0);
    cr_assert_eq(tu_write_file(blob, "blob", 4), 0);
    stt_gate g;
    stt_gate_close(&g, rt_f.s);
    store_txn *a = stt_begin(rt_f.s), *b = stt_begin(rt_f.s);
    rt_store1(a, 1, t0, "N:1");
    cr_assert_eq(store_txn_store_blob(a, 2, 0, "X:blob", 6, blob, &e), 0);
    cr_assert_eq(store_txn_vote(a, NULL, &e), 0, "%s", e.msg);
    stt_done_flag da, db;
    stt_done_init(&da);
    stt_done_init(&db);
    cr_assert_eq(store_txn_commit(a, NULL, stt_on_commit, &da, &e), 0);
    rt_store1(b, 1, t0, "N:10");
    store_vote_result res;
    cr_assert_eq(store_txn_vote(b, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(res.n_resolved, 1);
    cr_assert_str_eq(rt_hook.committed, "N:1");
    cr_assert_eq(store_txn_commit(b, NULL, stt_on_commit, &db, &e), 0);
    cr_assert_eq(unlink(blob), 0);
    stt_gate_open(&g);
    cr_assert_lt(stt_wait_done(&da), 0);
    cr_assert_eq(stt_wait_done(&db), ZE_IO);
    store_txn_free(a);
    store_txn_free(b);
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:0");
    /* and a later commit resolves against what is there */
    store_txn *c = stt_begin(rt_f.s);
    rt_store1(c, 1, t0, "N:3");
    stt_finish(c);
    cr_assert_eq(store_reader_refresh(rt_f.r, &e), 0);
    rt_expect(1, "N:3");
}
