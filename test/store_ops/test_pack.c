/* test_pack.c: store_pack as FileStorage packs (spec filestorage-format.md
 * section 7): old revisions, garbage collection, back-pointer targets, blobs,
 * and the cases where nothing may be proven unreachable. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops_util.h"
#include "storetest.h"
#include "testutil.h"

static store *s;
static char *dir;

static void setup(void)
{
    s = ops_open(&dir, 0);
}

static void teardown(void)
{
    store_close(s);
    stt_spec_remove(dir);
    free(dir);
}

TestSuite(pack, .init = setup, .fini = teardown);

static double future(void)
{
    return (double)time(NULL) + 1e6;
}

static store_pack_stats pack(double t, int gc)
{
    store_pack_stats st;
    zerr err;
    cr_assert_eq(store_pack(s, t, gc, &st, &err), 0, "pack: %s", err.msg);
    return st;
}

/* The root (oid 0) referring strongly to n objects. */
static uint64_t put_root(uint64_t serial, const uint64_t *oids, int n)
{
    test_ref refs[8];
    for (int i = 0; i < n; i++)
        refs[i] = (test_ref){oids[i], REF_STRONG};
    return ops_put(s, 0, serial, refs, n, "root");
}

/* Assert oid's current data is the record ops_put wrote with that payload. */
static void expect_current(uint64_t oid, const char *payload, uint64_t tid)
{
    zbuf got = ZBUF_INIT, want = ZBUF_INIT;
    uint64_t at;
    ops_record(&want, NULL, 0, payload);
    cr_assert_eq(ops_load(s, oid, &got, &at), 0, "oid %llu lost", (unsigned long long)oid);
    cr_expect_eq(at, tid);
    cr_expect(got.len == want.len && !memcmp(got.data, want.data, got.len),
              "oid %llu: wrong data", (unsigned long long)oid);
    zbuf_free(&got);
    zbuf_free(&want);
}

static int exists(uint64_t oid)
{
    zbuf b = ZBUF_INIT;
    uint64_t tid;
    int rc = ops_load(s, oid, &b, &tid);
    zbuf_free(&b);
    cr_assert(rc == 0 || rc == ZE_NOTFOUND, "load: %s", zerr_name(rc));
    return rc == 0;
}

static int has_serial(uint64_t oid, uint64_t tid)
{
    zbuf b = ZBUF_INIT;
    int rc = ops_load_serial(s, oid, tid, &b);
    zbuf_free(&b);
    return rc == 0;
}

Test(pack, removes_revisions_not_current_at_pack_time)
{
    uint64_t a = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");
    uint64_t a3 = ops_put(s, a, a2, NULL, 0, "a3");

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.records_removed, 2);
    cr_expect_eq(st.objects_removed, 0);
    cr_expect_eq(st.txns_removed, 2, "the transactions of a1 and a2 kept nothing");
    cr_expect_not(has_serial(a, a1));
    cr_expect_not(has_serial(a, a2));
    expect_current(a, "a3", a3);
}

Test(pack, keeps_the_revision_current_at_pack_time)
{
    uint64_t a = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");
    ops_pause();
    uint64_t a3 = ops_put(s, a, a2, NULL, 0, "a3");

    store_pack_stats st = pack(ops_time_between(a2, a3), 1);
    cr_expect_eq(st.records_removed, 1);
    cr_expect_not(has_serial(a, a1));
    cr_expect(has_serial(a, a2), "a2 was current at the pack time");

    store_reader *r;
    zbuf got = ZBUF_INIT;
    uint64_t start, end;
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    cr_expect_eq(store_load_before(r, a, a3, &got, &start, &end, NULL), 0);
    cr_expect_eq(start, a2);
    cr_expect_eq(end, a3);
    cr_expect_eq(store_load_before(r, a, a2, &got, &start, &end, NULL), ZE_NOREV);
    store_reader_free(r);
    zbuf_free(&got);
}

/* A pack time is turned into FileStorage's stop tid (common/ztid.h): one
 * before 1900 has no tid and packs nothing; NaN is refused. */
Test(pack, a_time_before_any_tid_packs_nothing_and_nan_is_refused)
{
    uint64_t a = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");

    store_pack_stats st = pack(-3e9, 1);
    cr_expect_eq(st.records_removed, 0);
    cr_expect(has_serial(a, a1));
    zerr err;
    cr_expect_eq(store_pack(s, NAN, 1, &st, &err), ZE_INVAL);
    cr_expect(has_serial(a, a1), "a refused pack removes nothing");
    expect_current(a, "a2", a2);
}

Test(pack, collects_objects_unreachable_from_the_root)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s), c = ops_new_oid(s);
    put_root(0, &a, 1);
    test_ref to_c = {c, REF_BARE};
    ops_put(s, a, 0, &to_c, 1, "a");
    ops_put(s, b, 0, NULL, 0, "b");
    ops_put(s, c, 0, NULL, 0, "c");
    uint64_t before = store_object_count(s);

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.objects_removed, 1);
    cr_expect(exists(a));
    cr_expect(exists(c), "a bare-oid reference keeps its target");
    cr_expect_not(exists(b));
    cr_expect_eq(store_object_count(s), before - 1);
}

Test(pack, weak_and_cross_database_references_keep_nothing)
{
    uint64_t a = ops_new_oid(s), w = ops_new_oid(s), x = ops_new_oid(s);
    test_ref refs[3] = {{a, REF_STRONG}, {w, REF_WEAK}, {x, REF_XDB}};
    ops_put(s, 0, 0, refs, 3, "root");
    ops_put(s, a, 0, NULL, 0, "a");
    ops_put(s, w, 0, NULL, 0, "w");
    ops_put(s, x, 0, NULL, 0, "x");

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.objects_removed, 2);
    cr_expect(exists(a));
    cr_expect_not(exists(w));
    cr_expect_not(exists(x), "a reference into another database is not to this oid");
}

Test(pack, reachability_is_judged_at_pack_time)
{
    uint64_t a = ops_new_oid(s);
    uint64_t r1 = put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a");
    ops_pause();
    uint64_t r2 = put_root(r1, NULL, 0);

    pack(ops_time_between(a1, r2), 1);
    cr_expect(exists(a), "a was reachable at the pack time");
    pack(future(), 1);
    cr_expect_not(exists(a));
    cr_expect_not(has_serial(0, r1));
}

Test(pack, records_after_pack_time_keep_what_they_refer_to)
{
    uint64_t b = ops_new_oid(s), c = ops_new_oid(s);
    put_root(0, NULL, 0);
    uint64_t b1 = ops_put(s, b, 0, NULL, 0, "b");
    ops_pause();
    test_ref to_b = {b, REF_STRONG};
    uint64_t c1 = ops_put(s, c, 0, &to_b, 1, "c");

    store_pack_stats st = pack(ops_time_between(b1, c1), 1);
    cr_expect_eq(st.objects_removed, 0);
    expect_current(b, "b", b1);
    cr_expect(exists(c), "written after the pack time");
}

/* a: v1, v2, then a back-pointer to v1 (what undoing v2 writes). */
static void undo_history(uint64_t a, uint64_t tids[3])
{
    zerr err;
    store_txn *t;
    store_txn_meta meta = {.status = ' '};
    store_vote_result res;

    put_root(0, &a, 1);
    tids[0] = ops_put(s, a, 0, NULL, 0, "v1");
    tids[1] = ops_put(s, a, tids[0], NULL, 0, "v2");
    ops_pause();
    cr_assert_eq(store_txn_begin(s, &meta, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(store_txn_restore(t, a, NULL, 0, tids[0], &err), 0, "%s", err.msg);
    cr_assert_eq(store_txn_vote(t, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(store_txn_finish(t, &tids[2], &err), 0, "%s", err.msg);
    store_txn_free(t);
}

Test(pack, copies_a_current_back_pointer_inline)
{
    uint64_t a = ops_new_oid(s), tid[3];
    undo_history(a, tid);

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.records_removed, 2, "v1 and v2: the back-pointer now holds v1's data");
    cr_expect_not(has_serial(a, tid[0]));
    cr_expect_not(has_serial(a, tid[1]));
    expect_current(a, "v1", tid[2]);
}

Test(pack, back_pointer_after_pack_time_keeps_its_target)
{
    uint64_t a = ops_new_oid(s), tid[3];
    undo_history(a, tid);

    store_pack_stats st = pack(ops_time_between(tid[1], tid[2]), 1);
    cr_expect_eq(st.records_removed, 0, "v2 is current at the pack time, v1 a target");
    cr_expect(has_serial(a, tid[0]));
    cr_expect(has_serial(a, tid[1]));
    expect_current(a, "v1", tid[2]);
}

/* A back-pointer to a back-pointer (undo of an undo) written after the pack
 * time: the back-pointer it names and the data at the end of the chain stay. */
Test(pack, keeps_what_a_later_back_pointer_chain_needs)
{
    uint64_t a = ops_new_oid(s), tid[3], t4;
    undo_history(a, tid);
    ops_pause();
    store_txn_meta meta = {.status = ' '};
    store_vote_result res;
    store_txn *t;
    cr_assert_eq(store_txn_begin(s, &meta, &t, NULL), 0);
    cr_assert_eq(store_txn_restore(t, a, NULL, 0, tid[2], NULL), 0);
    cr_assert_eq(store_txn_vote(t, &res, NULL), 0);
    cr_assert_eq(store_txn_finish(t, &t4, NULL), 0);
    store_txn_free(t);

    store_pack_stats st = pack(ops_time_between(tid[2], t4), 1);
    cr_expect_eq(st.records_removed, 1, "only v2 goes");
    cr_expect(has_serial(a, tid[0]), "the data at the end of the chain");
    cr_expect(has_serial(a, tid[2]), "the link the later back-pointer names");
    expect_current(a, "v1", t4);
    store_pack_stats again = pack(future(), 1);
    cr_expect_eq(again.records_removed, 2, "then v1 and the middle link go");
    expect_current(a, "v1", t4);
}

/* The earlier of two records of one oid in one transaction is never current. */
Test(pack, removes_a_hidden_second_record_of_one_transaction)
{
    uint64_t a = ops_new_oid(s);
    put_root(0, &a, 1);
    zbuf data[2] = {ZBUF_INIT, ZBUF_INIT};
    ops_record(&data[0], NULL, 0, "first");
    ops_record(&data[1], NULL, 0, "second");
    uint64_t oids[2] = {a, a}, serials[2] = {0, 0};
    uint64_t t1 = ops_commit(s, 2, oids, serials, data);
    ops_put(s, a, t1, NULL, 0, "later");

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.records_removed, 2, "both records of t1");
    cr_expect_eq(st.txns_removed, 1);
    cr_expect_not(has_serial(a, t1));
    zbuf_free(&data[0]);
    zbuf_free(&data[1]);
}

static char *blob_file(uint64_t oid, uint64_t tid)
{
    char *p = malloc(4096);
    cr_assert_eq(store_blob_path(s, oid, tid, p, 4096), 0);
    return p;
}

Test(pack, removes_the_blob_files_of_removed_records)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put_blob(s, a, 0, "one");
    uint64_t a2 = ops_put_blob(s, a, a1, "two");
    uint64_t b1 = ops_put_blob(s, b, 0, "garbage");
    char *fa1 = blob_file(a, a1), *fa2 = blob_file(a, a2), *fb1 = blob_file(b, b1);
    cr_assert(ops_exists(fa1) && ops_exists(fa2) && ops_exists(fb1));

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.blobs_removed, 2);
    cr_expect_not(ops_exists(fa1), "old revision's blob");
    cr_expect_not(ops_exists(fb1), "unreachable object's blob");
    size_t len;
    char *content = (char *)tu_read_file(fa2, &len);
    cr_expect(content && len == 3 && !memcmp(content, "two", 3));

    store_reader *r;
    char path[4096];
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    cr_expect_eq(store_load_blob(r, a, a2, path, sizeof path, NULL), 0);
    store_reader_free(r);
    free(content);
    free(fa1), free(fa2), free(fb1);
}

Test(pack, dangling_references_are_skipped_safely)
{
    uint64_t a = ops_new_oid(s), ghost = ops_new_oid(s), d = ops_new_oid(s);
    uint64_t refs[3] = {a, ghost, d};
    put_root(0, refs, 3);
    ops_put(s, a, 0, NULL, 0, "a");
    uint64_t d1 = ops_put(s, d, 0, NULL, 0, "d");
    store_txn_meta meta = {.status = ' '};
    store_vote_result res;
    store_txn *t;
    uint64_t d2;
    cr_assert_eq(store_txn_begin(s, &meta, &t, NULL), 0);
    cr_assert_eq(store_txn_delete(t, d, d1, NULL), 0);
    cr_assert_eq(store_txn_vote(t, &res, NULL), 0);
    cr_assert_eq(store_txn_finish(t, &d2, NULL), 0);
    store_txn_free(t);

    store_pack_stats st = pack(future(), 1);
    cr_expect(exists(a), "the rest of the root's references still count");
    cr_expect_not(has_serial(d, d1));
    cr_expect_eq(st.objects_removed, 1, "the deleted object's records go");
}

Test(pack, unparsable_record_keeps_every_object)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s), c = ops_new_oid(s);
    put_root(0, &a, 1);
    zbuf junk = ZBUF_INIT;
    zbuf_append(&junk, "\xff\xfe not a pickle", 15);
    uint64_t zero = 0;
    ops_commit(s, 1, &a, &zero, &junk);
    uint64_t c1 = ops_put(s, c, 0, NULL, 0, "c1");
    ops_put(s, c, c1, NULL, 0, "c2");
    ops_put(s, b, 0, NULL, 0, "b");

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.objects_removed, 0);
    cr_expect(exists(b), "b cannot be proven unreachable: a's references are unknown");
    cr_expect(exists(c));
    zbuf_free(&junk);
}

Test(pack, future_pack_time_packs_to_the_last_transaction)
{
    uint64_t a = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.records_removed, 1);
    expect_current(a, "a2", a2);
    uint64_t a3 = ops_put(s, a, a2, NULL, 0, "a3");
    cr_expect_gt(a3, a2);
    expect_current(a, "a3", a3);
}

Test(pack, packing_twice_changes_nothing_more)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");
    ops_put(s, b, 0, NULL, 0, "b");

    store_pack_stats first = pack(future(), 1);
    cr_expect_eq(first.records_removed, 2);
    uint64_t last = store_last_tid(s);
    store_pack_stats again = pack(future(), 1);
    cr_expect_eq(again.records_removed, 0);
    cr_expect_eq(again.objects_removed, 0);
    cr_expect_eq(again.txns_removed, 0);
    cr_expect_eq(again.blobs_removed, 0);
    cr_expect_eq(store_last_tid(s), last);
    expect_current(a, "a2", a2);
}

Test(pack, without_gc_keeps_unreachable_objects)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s);
    put_root(0, &a, 1);
    ops_put(s, a, 0, NULL, 0, "a");
    uint64_t b1 = ops_put(s, b, 0, NULL, 0, "b1");
    uint64_t b2 = ops_put(s, b, b1, NULL, 0, "b2");

    store_pack_stats st = pack(future(), 0);
    cr_expect_eq(st.objects_removed, 0);
    cr_expect_eq(st.records_removed, 1);
    cr_expect_not(has_serial(b, b1));
    expect_current(b, "b2", b2);
}

Test(pack, marks_kept_transactions_packed_and_drops_empty_ones)
{
    uint64_t a = ops_new_oid(s);
    uint64_t r1 = put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    ops_put(s, a, a1, NULL, 0, "a2");

    pack(future(), 1);
    store_iter *it;
    store_txn_info info;
    cr_assert_eq(store_iter_open(s, r1, r1, &it, NULL), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, NULL), 1);
    cr_expect_eq(info.tid, r1);
    cr_expect_eq(info.status, 'p');
    store_iter_close(it);
    cr_assert_eq(store_iter_open(s, a1, a1, &it, NULL), 0);
    cr_expect_eq(store_iter_next_txn(it, &info, NULL), 0, "a1's transaction kept nothing");
    store_iter_close(it);
}

static int list_tid(const store_txn_info *info, void *ud)
{
    uint64_t *tids = ud;
    cr_assert_lt(tids[0], 3, "undo log lists too many transactions");
    tids[++tids[0]] = info->tid;
    return 0;
}

/* ZODB's checkPackUndoLog: a pack that removes nothing still marks every
 * transaction at or before the pack time 'p', so undoLog (which stops at the
 * first 'p') lists only the later ones. */
Test(pack, removing_nothing_still_marks_transactions_before_the_pack_time_packed)
{
    uint64_t a = ops_new_oid(s);
    uint64_t r1 = put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a1");
    ops_pause();
    uint64_t a2 = ops_put(s, a, a1, NULL, 0, "a2");

    store_pack_stats st = pack(ops_time_between(a1, a2), 1);
    cr_expect_eq(st.records_removed + st.txns_removed, 0, "both revisions were current");
    uint64_t tids[4] = {0};
    store_reader *r;
    zerr err;
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    cr_assert_eq(store_undo_log(r, 0, -20, NULL, NULL, list_tid, tids, &err), 0, "%s",
                 err.msg);
    store_reader_free(r);
    cr_expect_eq(tids[0], 1);
    cr_expect_eq(tids[1], a2);

    store_iter *it;
    store_txn_info info;
    cr_assert_eq(store_iter_open(s, 0, 0, &it, NULL), 0);
    uint64_t want[3] = {r1, a1, a2};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_iter_next_txn(it, &info, NULL), 1);
        cr_expect_eq(info.tid, want[i]);
        cr_expect_eq(info.status, i < 2 ? 'p' : ' ', "txn %d", i);
    }
    store_iter_close(it);
    expect_current(a, "a2", a2);
}

/* Commits do not write the last tid or the object count into meta: the last
 * tid comes from the last transaction, so when pack removes that one the
 * tid must still survive a reopen (a tid never goes back). */
Test(pack, last_tid_and_object_count_survive_removing_the_last_transaction)
{
    uint64_t a = ops_new_oid(s), g = ops_new_oid(s);
    put_root(0, &a, 1);
    uint64_t a1 = ops_put(s, a, 0, NULL, 0, "a");
    uint64_t last = ops_put(s, g, 0, NULL, 0, "garbage");
    cr_assert_eq(store_object_count(s), 3);

    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.objects_removed, 1);
    cr_expect_eq(st.txns_removed, 1, "the last transaction held only garbage");
    store_close(s);
    s = ops_reopen(dir);
    cr_expect_eq(store_last_tid(s), last);
    cr_expect_eq(store_object_count(s), 2);
    cr_expect_gt(ops_put(s, a, a1, NULL, 0, "a2"), last);
}

Test(pack, empty_store_packs_to_nothing)
{
    store_pack_stats st = pack(future(), 1);
    cr_expect_eq(st.records_removed + st.objects_removed + st.txns_removed, 0);
}

/* Pack leaves the positions of removed records in a kept transaction empty
 * (indices stay stable for back-pointers); iteration skips them in a 'p'
 * transaction, and a back-pointer into such a transaction names its target
 * by the position iteration lists it at. */
Test(pack, iteration_lists_only_the_records_a_packed_transaction_kept)
{
    uint64_t a = ops_new_oid(s), b = ops_new_oid(s);
    put_root(0, &a, 1);
    zbuf data[2] = {ZBUF_INIT, ZBUF_INIT};
    ops_record(&data[0], NULL, 0, "b");
    ops_record(&data[1], NULL, 0, "a");
    uint64_t oids[2] = {b, a}, serials[2] = {0, 0};
    uint64_t t1 = ops_commit(s, 2, oids, serials, data);
    ops_pause();
    uint64_t a2 = ops_put(s, a, t1, NULL, 0, "a2");

    pack(ops_time_between(t1, a2), 1);
    /* a's record in t1 is store position 1, listed as 0 once b is gone */
    uint64_t u = ops_undo(s, a2);
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(s, t1, t1, &it, NULL), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, NULL), 1);
    cr_expect_eq(info.status, 'p');
    cr_assert_eq(store_iter_next_record(it, &rec, NULL), 1);
    cr_expect_eq(rec.oid, a, "b was collected");
    cr_expect(rec.data.len == data[1].len && !memcmp(rec.data.p, data[1].data, rec.data.len));
    cr_expect_eq(store_iter_next_record(it, &rec, NULL), 0);
    store_iter_close(it);

    cr_assert_eq(store_iter_open(s, u, u, &it, NULL), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, NULL), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, NULL), 1);
    cr_expect_eq(rec.kind, STORE_REC_BACKPTR);
    cr_expect_eq(rec.back_tid, t1);
    cr_expect_eq(rec.back_index, 0);
    cr_expect(rec.data.len == data[1].len && !memcmp(rec.data.p, data[1].data, rec.data.len));
    store_iter_close(it);
    zbuf_free(&data[0]);
    zbuf_free(&data[1]);
}

Test(pack, runs_while_commits_go_on)
{
    enum { N = 300, GARBAGE = 100 };
    uint64_t oids[N + GARBAGE], serials[N + GARBAGE] = {0};
    zbuf data[N + GARBAGE];
    test_ref refs[N];
    for (int i = 0; i < N + GARBAGE; i++) {
        oids[i] = ops_new_oid(s);
        data[i] = (zbuf)ZBUF_INIT;
        ops_record(&data[i], NULL, 0, "old");
    }
    for (int i = 0; i < N; i++)
        refs[i] = (test_ref){oids[i], REF_STRONG};
    ops_put(s, 0, 0, refs, N, "root");
    for (int rev = 0; rev < 3; rev++) {
        uint64_t tid = ops_commit(s, N + GARBAGE, oids, serials, data);
        for (int i = 0; i < N + GARBAGE; i++)
            serials[i] = tid;
    }

    ops_committer c = {s, oids[0], serials[0], 60};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, ops_commit_loop, &c), 0);
    store_pack_stats st = pack(future(), 1);
    pthread_join(th, NULL);

    cr_expect_eq(st.objects_removed, GARBAGE);
    expect_current(oids[0], "update 59", c.serial);
    for (int i = 1; i < N; i++)
        expect_current(oids[i], "old", serials[i]);
    for (int i = N; i < N + GARBAGE; i++)
        cr_expect_not(exists(oids[i]));
    for (int i = 0; i < N + GARBAGE; i++)
        zbuf_free(&data[i]);
}
