/* Two-phase commit, loads and conflicts. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>


static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_commit, .init = setup, .fini = teardown);

Test(store_commit, store_then_load_current)
{
    uint64_t tid = stt_commit1(f.s, 0, 0, "root");
    char buf[32];
    uint64_t start, end = 99;
    cr_assert_eq(stt_load(f.r, 0, STORE_TID_MAX, buf, sizeof buf, &start, &end), 0);
    cr_assert_str_eq(buf, "root");
    cr_assert_eq(start, tid);
    cr_assert_eq(end, 0);
    cr_assert_eq(store_last_tid(f.s), tid);
    cr_assert_eq(store_reader_last_tid(f.r), tid);
    uint64_t cur;
    cr_assert_eq(store_current_tid(f.r, 0, &cur, NULL), 0);
    cr_assert_eq(cur, tid);
    zbuf b = ZBUF_INIT;
    cr_assert_eq(store_load_serial(f.r, 0, tid, &b, NULL), 0);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(store_load_serial(f.r, 0, tid + 1, &b, NULL), ZE_NOTFOUND);
    zbuf_free(&b);
}

Test(store_commit, many_revisions_and_tid_boundaries)
{
    enum { N = 60 };
    uint64_t tids[N];
    uint64_t serial = 0;
    char text[32];
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "rev %d", i);
        tids[i] = serial = stt_commit1(f.s, 7, serial, text);
        if (i)
            cr_assert_gt(tids[i], tids[i - 1]);
        stt_commit1(f.s, 100 + (uint64_t)i, 0, "other");   /* neighbours in key order */
    }
    char buf[32], want[32];
    uint64_t start, end;
    for (int i = 0; i < N; i++) {
        /* exactly at a tid: the revision before it */
        int rc = stt_load(f.r, 7, tids[i], buf, sizeof buf, &start, &end);
        if (i == 0) {
            cr_assert_eq(rc, ZE_NOREV);
        } else {
            cr_assert_eq(rc, 0);
            snprintf(want, sizeof want, "rev %d", i - 1);
            cr_assert_str_eq(buf, want);
            cr_assert_eq(start, tids[i - 1]);
            cr_assert_eq(end, tids[i]);
        }
        /* just after it: that revision */
        cr_assert_eq(stt_load(f.r, 7, tids[i] + 1, buf, sizeof buf, &start, &end), 0);
        snprintf(want, sizeof want, "rev %d", i);
        cr_assert_str_eq(buf, want);
        cr_assert_eq(start, tids[i]);
        cr_assert_eq(end, i + 1 < N ? tids[i + 1] : 0);
    }
}

Test(store_commit, norev_vs_notfound)
{
    uint64_t tid = stt_commit1(f.s, 5, 0, "five");
    cr_assert_eq(stt_load(f.r, 5, tid, NULL, 0, NULL, NULL), ZE_NOREV);
    cr_assert_eq(stt_load(f.r, 5, 0, NULL, 0, NULL, NULL), ZE_NOREV);
    cr_assert_eq(stt_load(f.r, 4, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    cr_assert_eq(stt_load(f.r, 6, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    cr_assert_eq(stt_load(f.r, UINT64_MAX, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    uint64_t cur;
    cr_assert_eq(store_current_tid(f.r, 4, &cur, NULL), ZE_NOTFOUND);
}

Test(store_commit, delete_object)
{
    uint64_t t1 = stt_commit1(f.s, 3, 0, "three");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_delete(t, 3, t1, &e), 0);
    uint64_t t2 = stt_finish(t);
    char buf[32];
    uint64_t start, end;
    cr_assert_eq(stt_load(f.r, 3, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), ZE_NOTFOUND);
    cr_assert_eq(stt_load(f.r, 3, t2, buf, sizeof buf, &start, &end), 0);
    cr_assert_str_eq(buf, "three");
    cr_assert_eq(end, t2);
    uint64_t cur;
    cr_assert_eq(store_current_tid(f.r, 3, &cur, NULL), ZE_NOTFOUND);
    /* the deletion's tid is the serial to store against */
    uint64_t t3 = stt_commit1(f.s, 3, t2, "again");
    cr_assert_eq(stt_load(f.r, 3, STORE_TID_MAX, buf, sizeof buf, &start, NULL), 0);
    cr_assert_eq(start, t3);
    /* deleting an unknown oid */
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_delete(t, 77, 0, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), ZE_NOTFOUND);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_commit, write_conflict_then_revote)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "v1");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "v2");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 2, 0, "new", 3, &e), 0);
    cr_assert_eq(store_txn_store(t, 1, t1, "mine", 4, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_CONFLICT);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert_eq(res.conflicts[0].oid, 1);
    cr_assert_eq(res.conflicts[0].committed, t2);
    cr_assert_eq(res.conflicts[0].expected, t1);
    cr_assert_eq(res.conflicts[0].read_conflict, 0);
    cr_assert_eq(res.conflicts[0].data.len, 4);
    cr_assert_eq(memcmp(res.conflicts[0].data.p, "mine", 4), 0);
    /* nothing is visible yet */
    cr_assert_eq(stt_load(f.r, 2, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    /* the client resolves and stores again */
    cr_assert_eq(store_txn_store(t, 1, t2, "resolved", 8, &e), 0);
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(res.n_conflicts, 0);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0);
    size_t n;
    const uint64_t *oids = store_txn_oids(t, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(oids[0], 2);
    cr_assert_eq(oids[1], 1);
    store_txn_free(t);
    char buf[32];
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "resolved");
    /* the dropped conflicting store is not part of the transaction */
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, tid, tid, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    int count = 0;
    while (store_iter_next_record(it, &rec, &e) == 1)
        count++;
    cr_assert_eq(count, 2);
    store_iter_close(it);
}

Test(store_commit, new_object_conflict)
{
    stt_commit1(f.s, 9, 0, "first");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 9, 0, "second", 6, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_CONFLICT);
    cr_assert_eq(res.conflicts[0].expected, 0);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_commit, read_conflict)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "v1");
    stt_commit1(f.s, 1, t1, "v2");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_check_current(t, 1, t1, &e), 0);
    cr_assert_eq(store_txn_store(t, 2, 0, "x", 1, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_READCONFLICT);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert(res.conflicts[0].read_conflict);
    store_txn_abort(t);
    store_txn_free(t);
    /* a current check passes and writes no record */
    t = stt_begin(f.s);
    uint64_t cur;
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_current_tid(f.r, 1, &cur, NULL), 0);
    cr_assert_eq(store_txn_check_current(t, 1, cur, &e), 0);
    uint64_t tid = stt_finish(t);
    cr_assert_gt(tid, cur);
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, &cur, NULL), 0);
    cr_assert_lt(cur, tid);
}

Test(store_commit, delete_conflict)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "v1");
    stt_commit1(f.s, 1, t1, "v2");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_delete(t, 1, t1, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_CONFLICT);
    cr_assert(res.conflicts[0].delete_conflict);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_commit, abort_leaves_nothing)
{
    uint64_t t0 = stt_commit1(f.s, 0, 0, "root");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 1, 0, "gone", 4, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0);
    store_txn_abort(t);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), ZE_TXN);
    store_txn_free(t);
    cr_assert_eq(store_last_tid(f.s), t0);
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    /* an unfinished transaction freed without abort leaves nothing either */
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_store(t, 2, 0, "never", 5, &e), 0);
    store_txn_free(t);
    cr_assert_eq(stt_load(f.r, 2, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    store_iter *it;
    store_txn_info info;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &it, &e), 0);
    int n = 0;
    while (store_iter_next_txn(it, &info, &e) == 1)
        n++;
    store_iter_close(it);
    cr_assert_eq(n, 1);
    /* the next commit still works */
    cr_assert_gt(stt_commit1(f.s, 1, 0, "now"), t0);
}

Test(store_commit, empty_transaction)
{
    uint64_t t0 = stt_commit1(f.s, 0, 0, "root");
    uint64_t t1 = stt_finish(stt_begin(f.s));
    cr_assert_gt(t1, t0);
    cr_assert_eq(store_last_tid(f.s), t1);
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    cr_assert_eq(store_iter_open(f.s, t1, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.tid, t1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 0);
    store_iter_close(it);
}

Test(store_commit, misuse_and_limits)
{
    zerr e;
    store_txn *t;
    uint8_t big[STORE_META_MAX + 1] = {0};
    store_txn_meta m = {big, sizeof big, NULL, 0, NULL, 0, ' ', 0};
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), ZE_TOOBIG);
    m = (store_txn_meta){.status = 'x'};
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), ZE_INVAL);
    t = stt_begin(f.s);
    uint64_t tid;
    cr_assert_eq(store_txn_commit(t, &tid, NULL, NULL, &e), ZE_TXN);   /* no vote */
    cr_assert_eq(store_txn_store(t, 1, 0, "", 0, &e), ZE_INVAL);         /* empty pickle */
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0);
    cr_assert_eq(store_txn_store(t, 1, 0, "x", 1, &e), ZE_TXN);          /* after vote */
    store_txn_abort(t);
    store_txn_free(t);
    /* an explicit tid must be after the last one */
    uint64_t last = stt_commit1(f.s, 0, 0, "root");
    m = (store_txn_meta){.status = ' ', .tid = last};
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), ZE_INVAL);
    m.tid = last + 10;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), 0);
    cr_assert_eq(stt_finish(t), last + 10);
}

Test(store_commit, oversize_record)
{
    stt_done(&f);
    store_options opt = {.create = 1, .no_sync = 1, .max_record = 100};
    stt_open(&f, &opt);
    char data[101];
    memset(data, 'a', sizeof data);
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 1, 0, data, 101, &e), ZE_TOOBIG);
    cr_assert(strstr(e.msg, "limit"), "%s", e.msg);
    cr_assert_eq(store_txn_store(t, 1, 0, data, 100, &e), 0);
    stt_finish(t);
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, NULL, NULL), 0);
}

Test(store_commit, duplicate_oid_in_one_transaction)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 4, 0, "first", 5, &e), 0);
    cr_assert_eq(store_txn_store(t, 5, 0, "other", 5, &e), 0);
    cr_assert_eq(store_txn_store(t, 4, 0, "second", 6, &e), 0);
    uint64_t tid = stt_finish(t);
    char buf[32];
    cr_assert_eq(stt_load(f.r, 4, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "second");
    cr_assert_eq(store_object_count(f.s), 2);
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.tid, tid);
    const char *want[] = {"first", "other", "second"};
    uint64_t oids[] = {4, 5, 4};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_iter_next_record(it, &rec, &e), 1, "%s", e.msg);
        cr_assert_eq(rec.oid, oids[i]);
        cr_assert_eq(rec.kind, STORE_REC_DATA);
        cr_assert_eq(rec.data.len, strlen(want[i]));
        cr_assert_eq(memcmp(rec.data.p, want[i], rec.data.len), 0);
    }
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 0);
    store_iter_close(it);
    /* history sees only the reachable (last) record */
    store_reader_refresh(f.r, &e);
}

Test(store_commit, large_transaction_spills_to_file)
{
    enum { N = 10, SIZE = 1 << 20 };
    char *data = malloc(SIZE);
    store_txn *t = stt_begin(f.s);
    zerr e;
    for (int i = 0; i < N; i++) {
        memset(data, 'a' + i, SIZE);
        cr_assert_eq(store_txn_store(t, (uint64_t)i, 0, data, SIZE, &e), 0, "%s", e.msg);
    }
    stt_finish(t);
    zbuf b = ZBUF_INIT;
    uint64_t start, end;
    store_reader_refresh(f.r, &e);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(store_load_before(f.r, (uint64_t)i, STORE_TID_MAX, &b, &start, &end, &e),
                     0, "%s", e.msg);
        cr_assert_eq(b.len, SIZE);
        cr_assert_eq(b.data[0], 'a' + i);
        cr_assert_eq(b.data[SIZE - 1], 'a' + i);
    }
    zbuf_free(&b);
    free(data);
}

static int count_cb(uint64_t oid, void *ud)
{
    (*(int *)ud)++;
    return 0;
}

Test(store_commit, reader_snapshot_and_changes_since)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a");
    zerr e;
    store_reader_refresh(f.r, &e);
    uint64_t t2 = stt_commit1(f.s, 2, 0, "b");
    /* the reader still sees the old snapshot */
    zbuf b = ZBUF_INIT;
    uint64_t start, end;
    cr_assert_eq(store_load_before(f.r, 2, STORE_TID_MAX, &b, &start, &end, &e), ZE_NOTFOUND);
    cr_assert_eq(store_reader_last_tid(f.r), t1);
    store_reader_refresh(f.r, &e);
    cr_assert_eq(store_load_before(f.r, 2, STORE_TID_MAX, &b, &start, &end, &e), 0);
    zbuf_free(&b);
    store_txn *t = stt_begin(f.s);
    cr_assert_eq(store_txn_store(t, 3, 0, "c", 1, &e), 0);
    cr_assert_eq(store_txn_store(t, 3, 0, "c2", 2, &e), 0);
    cr_assert_eq(store_txn_store(t, 4, 0, "d", 1, &e), 0);
    uint64_t t3 = stt_finish(t);
    store_reader_refresh(f.r, &e);
    int n = 0;
    uint64_t latest;
    cr_assert_eq(store_changes_since(f.r, t1, &latest, count_cb, &n, &e), 0);
    cr_assert_eq(n, 3);   /* oid 2; oids 3 and 4 (3 once) */
    cr_assert_eq(latest, t3);
    n = 0;
    cr_assert_eq(store_changes_since(f.r, t3, &latest, count_cb, &n, &e), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(latest, t3);
    (void)t2;
}

Test(store_commit, record_iternext_skips_deleted)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "one");
    stt_commit1(f.s, 2, 0, "two");
    stt_commit1(f.s, 9, 0, "nine");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_delete(t, 1, t1, &e), 0);
    stt_finish(t);
    store_reader_refresh(f.r, &e);
    uint64_t oid, tid, next;
    int has_next;
    zbuf b = ZBUF_INIT;
    cr_assert_eq(store_record_iternext(f.r, 0, &oid, &tid, &b, &next, &has_next, &e), 1);
    cr_assert_eq(oid, 2);
    cr_assert_eq(has_next, 1);
    cr_assert_eq(next, 9);
    cr_assert_eq(store_record_iternext(f.r, next, &oid, &tid, &b, &next, &has_next, &e), 1);
    cr_assert_eq(oid, 9);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(has_next, 0);
    cr_assert_eq(store_record_iternext(f.r, 10, &oid, &tid, &b, &next, &has_next, &e), 0);
    zbuf_free(&b);
}

Test(store_commit, stats_and_counts)
{
    uint64_t size0 = store_size_bytes(f.s);
    uint64_t t1 = stt_commit1(f.s, 1, 0, "one");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 1, t1, "one'", 4, &e), 0);
    cr_assert_eq(store_txn_check_current(t, 9, 0, &e), 0);   /* no record */
    cr_assert_eq(store_txn_store(t, 2, 0, "two", 3, &e), 0);
    stt_finish(t);
    store_stats st;
    store_get_stats(f.s, &st);
    cr_assert_eq(st.commits, 2);
    cr_assert_eq(st.transactions, 2);
    cr_assert_eq(st.records, 3);
    cr_assert_geq(st.syncs, 1);
    cr_assert_eq(store_object_count(f.s), 2);
    char *big = calloc(1, 1 << 20);
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_store(t, 3, 0, big, 1 << 20, &e), 0);
    stt_finish(t);
    free(big);
    cr_assert_gt(store_size_bytes(f.s), size0 + (1 << 20));
}

/* seen[0]: how many; then oid, writes pairs. */
static int collect(uint64_t oid, int writes, void *ud)
{
    uint64_t *seen = ud;
    seen[1 + 2 * seen[0]] = oid;
    seen[2 + 2 * seen[0]] = (uint64_t)writes;
    return ++seen[0] == 4 ? 42 : 0;   /* stop after four, to see the stop */
}

Test(store_commit, each_oid_lists_what_the_vote_locks)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "one");
    store_txn *t = stt_begin(f.s);
    cr_assert_eq(store_txn_store(t, 5, 0, "x", 1, NULL), 0);
    cr_assert_eq(store_txn_check_current(t, 1, t1, NULL), 0);
    cr_assert_eq(store_txn_restore(t, 9, "r", 1, 0, NULL), 0);
    cr_assert_eq(store_txn_delete(t, 1, t1, NULL), 0);
    cr_assert_eq(store_txn_store(t, 5, 0, "y", 1, NULL), 0);
    uint64_t seen[16] = {0};
    cr_assert_eq(store_txn_each_oid(t, collect, seen), 42, "the callback's value stops the walk");
    cr_assert_eq(seen[0], 4);
    cr_expect(seen[1] == 5 && seen[3] == 1 && seen[5] == 9 && seen[7] == 1, "queue order");
    cr_expect(seen[2] == 1 && seen[4] == 0 && seen[6] == 1 && seen[8] == 1,
              "a store, a restore and a delete write; a check does not");
    cr_expect_eq(store_txn_exclusive(t), 0);
    store_txn_abort(t);
    store_txn_free(t);

    /* An undo, or an explicit tid, must be alone between vote and commit. */
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_undo(t, t1, NULL), 0);
    cr_expect_eq(store_txn_exclusive(t), 1);
    store_txn_abort(t);
    store_txn_free(t);
    store_txn_meta meta = {.status = ' ', .tid = t1 + 1000};
    cr_assert_eq(store_txn_begin(f.s, &meta, &t, NULL), 0);
    cr_expect_eq(store_txn_exclusive(t), 1);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_commit, disjoint_votes_stay_true_in_either_commit_order)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a1");
    uint64_t t2 = stt_commit1(f.s, 2, 0, "b1");
    /* A writes 1 and reads 3; B writes 2: both vote before either commits. */
    store_txn *a = stt_begin(f.s), *b = stt_begin(f.s);
    cr_assert_eq(store_txn_store(a, 1, t1, "a2", 2, NULL), 0);
    cr_assert_eq(store_txn_check_current(a, 3, 0, NULL), 0);
    cr_assert_eq(store_txn_store(b, 2, t2, "b2", 2, NULL), 0);
    cr_assert_eq(store_txn_vote(a, NULL, NULL), 0);
    cr_assert_eq(store_txn_vote(b, NULL, NULL), 0);
    uint64_t tb, ta;
    cr_assert_eq(store_txn_finish(b, &tb, NULL), 0);
    cr_assert_eq(store_txn_finish(a, &ta, NULL), 0);
    cr_expect_gt(ta, tb, "tids follow the commits, not the votes");
    store_txn_free(a);
    store_txn_free(b);
    cr_assert_eq(store_reader_refresh(f.r, NULL), 0);
    char buf[8];
    uint64_t start, end;
    cr_assert_eq(stt_load(f.r, 1, STORE_TID_MAX, buf, sizeof buf, &start, &end), 0);
    cr_expect(!strcmp(buf, "a2") && start == ta);
    cr_assert_eq(stt_load(f.r, 2, STORE_TID_MAX, buf, sizeof buf, &start, &end), 0);
    cr_expect(!strcmp(buf, "b2") && start == tb);
    cr_expect_eq(store_last_tid(f.s), ta);
}

/* Tids come from common/ztid: past a last tid whose low word is full they
 * carry into the next minute, and after the very last tid there is none, so
 * the commit fails instead of wrapping to 0000000000000000. */
Test(store_commit, tids_carry_and_never_wrap)
{
    store_txn_meta m = {.status = ' ', .tid = 0xfffffffeffffffffull};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_store(t, 0, 0, "root", 4, &e), 0);
    cr_assert_eq(stt_finish(t), 0xfffffffeffffffffull);
    uint64_t next = stt_commit1(f.s, 1, 0, "one");
    cr_expect_eq(next, 0xffffffff00000000ull, "the next minute, second 0: %016llx",
                 (unsigned long long)next);

    /* No client or import may name the last tid: nothing could follow it. */
    m.tid = UINT64_MAX;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), ZE_INVAL);
    cr_expect(strstr(e.msg, "no tid can follow"), "%s", e.msg);
    /* A database an earlier build let reach it still refuses to wrap. */
    stt_set_last_tid(&f, UINT64_MAX);
    stt_close(&f);
    stt_reopen(&f, NULL);

    t = stt_begin(f.s);
    uint64_t tid = 0;
    cr_assert_eq(store_txn_store(t, 3, 0, "none", 4, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(store_txn_finish(t, &tid, &e), ZE_TOOBIG);
    cr_expect(strstr(e.msg, "ffffffffffffffff"), "%s", e.msg);
    store_txn_abort(t);
    store_txn_free(t);
    cr_expect_eq(store_last_tid(f.s), UINT64_MAX);
    cr_assert_eq(store_reader_refresh(f.r, NULL), 0);
    cr_expect_eq(stt_load(f.r, 3, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND,
                 "the refused commit wrote nothing");
}
