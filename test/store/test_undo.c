/* Transactional undo, undo log and history. */
#include "storetest.h"

#include <stdio.h>

static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_undo, .init = setup, .fini = teardown);

/* What a vote reported, copied before the txn is freed. */
typedef struct undo_res {
    size_t n_changed;
    uint64_t changed[8];
    size_t n_failed;
    store_undo_failure failed[8];
} undo_res;

static int undo(uint64_t tid, uint64_t *new_tid, undo_res *out)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    store_vote_result res;
    cr_assert_eq(store_txn_undo(t, tid, &e), 0);
    int rc = store_txn_vote(t, &res, &e);
    out->n_changed = res.n_changed;
    for (size_t i = 0; i < res.n_changed && i < 8; i++)
        out->changed[i] = res.changed[i];
    out->n_failed = res.n_undo_failures;
    for (size_t i = 0; i < res.n_undo_failures && i < 8; i++)
        out->failed[i] = res.undo_failures[i];   /* reasons are constants */
    cr_assert_eq(rc == ZE_UNDO || !res.n_undo_failures, 1, "failures only with ZE_UNDO");
    if (!rc) {
        cr_assert_eq(store_txn_finish(t, new_tid, &e), 0, "%s", e.msg);
    } else {
        store_txn_abort(t);
    }
    store_txn_free(t);
    return rc;
}

static void expect(uint64_t oid, const char *text)
{
    char buf[64];
    int rc = stt_load(f.r, oid, STORE_TID_MAX, buf, sizeof buf, NULL, NULL);
    if (!text) {
        cr_assert_eq(rc, ZE_NOTFOUND, "oid %llu: %d", (unsigned long long)oid, rc);
        return;
    }
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(buf, text);
}

Test(store_undo, revert_then_undo_of_undo)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "v1");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "v2");
    undo_res res;
    uint64_t u1, u2;
    cr_assert_eq(undo(t2, &u1, &res), 0);
    expect(1, "v1");
    uint64_t start;
    stt_load(f.r, 1, STORE_TID_MAX, NULL, 0, &start, NULL);
    cr_assert_eq(start, u1);   /* the revision's tid is the undo's own */
    /* undo of the undo brings v2 back */
    cr_assert_eq(undo(u1, &u2, &res), 0);
    expect(1, "v2");
    /* and the iterator shows back-pointers with one-link targets */
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    cr_assert_eq(store_iter_open(f.s, u1, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.kind, STORE_REC_BACKPTR);
    cr_assert_eq(rec.back_tid, t1);
    cr_assert_eq(rec.data.len, 2);
    cr_assert_eq(memcmp(rec.data.p, "v1", 2), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.kind, STORE_REC_BACKPTR);
    cr_assert_eq(rec.back_tid, t2);
    store_iter_close(it);
}

Test(store_undo, undo_of_creation_deletes)
{
    stt_commit1(f.s, 0, 0, "root");
    uint64_t t1 = stt_commit1(f.s, 2, 0, "new");
    undo_res res;
    uint64_t u;
    cr_assert_eq(undo(t1, &u, &res), 0);
    cr_assert_eq(res.n_changed, 1);
    cr_assert_eq(res.changed[0], 2);
    expect(2, NULL);
    expect(0, "root");
    /* undo of that undo restores the object through a back-pointer to t1 */
    uint64_t u2;
    cr_assert_eq(undo(u, &u2, &res), 0);
    expect(2, "new");
}

Test(store_undo, refused_when_changed_later)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "v1");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "v2");
    stt_commit1(f.s, 1, t2, "v3");
    undo_res res;
    uint64_t u;
    cr_assert_eq(undo(t2, &u, &res), ZE_UNDO);
    /* the vote result names the oid and FileStorage's reason */
    cr_assert_eq(res.n_failed, 1);
    cr_assert_eq(res.failed[0].oid, 1);
    cr_assert_str_eq(res.failed[0].reason, "Some data were modified by a later transaction");
    /* undoing a creation followed by changes is refused as well */
    cr_assert_eq(undo(t1, &u, &res), ZE_UNDO);
    cr_assert_eq(res.n_failed, 1);
    cr_assert_str_eq(res.failed[0].reason,
                     "Can't undo an add transaction followed by conflicting transactions.");
    expect(1, "v3");
    cr_assert_eq(undo(0x0123, &u, &res), ZE_UNDO);   /* no such transaction */
    cr_assert_eq(res.n_failed, 0, "no oid to name");
}

/* Every oid that fails is listed, in the undone transaction's order; one
 * that can be reverted is not. */
Test(store_undo, failures_list_every_oid)
{
    uint64_t t1 = stt_commit_n(f.s, 3, (uint64_t[]){7, 3, 5}, (uint64_t[]){0, 0, 0},
                               (const char *const[]){"a7", "a3", "a5"});
    uint64_t t2 = stt_commit_n(f.s, 3, (uint64_t[]){7, 3, 5}, (uint64_t[]){t1, t1, t1},
                               (const char *const[]){"b7", "b3", "b5"});
    stt_commit1(f.s, 7, t2, "c7");
    stt_commit1(f.s, 5, t2, "c5");
    undo_res res;
    uint64_t u;
    cr_assert_eq(undo(t2, &u, &res), ZE_UNDO);
    cr_assert_eq(res.n_failed, 2);
    cr_assert_eq(res.failed[0].oid, 7);
    cr_assert_eq(res.failed[1].oid, 5);
    expect(3, "b3");
}

Test(store_undo, several_records_and_multiple_undo)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_store(t, 1, 0, "a1", 2, &e), 0);
    cr_assert_eq(store_txn_store(t, 2, 0, "b1", 2, &e), 0);
    uint64_t t1 = stt_finish(t);
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_store(t, 1, t1, "a2", 2, &e), 0);
    cr_assert_eq(store_txn_store(t, 2, t1, "b2", 2, &e), 0);
    uint64_t t2 = stt_finish(t);
    uint64_t t3 = stt_commit1(f.s, 3, 0, "c1");
    /* undo two transactions in one */
    t = stt_begin(f.s);
    cr_assert_eq(store_txn_undo(t, t3, &e), 0);
    cr_assert_eq(store_txn_undo(t, t2, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
    cr_assert_eq(res.n_changed, 3);
    size_t n;
    const uint64_t *oids = store_txn_oids(t, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(oids[0], 3);
    uint64_t u;
    cr_assert_eq(store_txn_finish(t, &u, &e), 0);
    store_txn_free(t);
    expect(1, "a1");
    expect(2, "b1");
    expect(3, NULL);
}

typedef struct log_acc {
    int n;
    uint64_t tids[16];
    char status[16];
} log_acc;

static int acc_cb(const store_txn_info *info, void *ud)
{
    log_acc *a = ud;
    a->tids[a->n] = info->tid;
    a->status[a->n++] = info->status;
    return 0;
}

static int only_desc_x(const store_txn_info *info, void *ud)
{
    return info->description.len == 1 && info->description.p[0] == 'x';
}

Test(store_undo, undo_log_ranges_filter_and_packed_stop)
{
    uint64_t tids[6];
    zerr e;
    for (int i = 0; i < 6; i++) {
        store_txn_meta m = {(const uint8_t *)"user", 4, (const uint8_t *)(i % 2 ? "x" : "y"),
                            1, NULL, 0, i == 0 ? 'p' : ' ', 0};
        store_txn *t;
        cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), 0);
        cr_assert_eq(store_txn_store(t, 10 + (uint64_t)i, 0, "d", 1, &e), 0);
        tids[i] = stt_finish(t);
    }
    store_reader_refresh(f.r, &e);
    log_acc a = {0};
    cr_assert_eq(store_undo_log(f.r, 0, -20, NULL, NULL, acc_cb, &a, &e), 0);
    cr_assert_eq(a.n, 5);   /* stops at the packed first transaction */
    cr_assert_eq(a.tids[0], tids[5]);
    cr_assert_eq(a.tids[4], tids[1]);
    a = (log_acc){0};
    cr_assert_eq(store_undo_log(f.r, 1, 3, NULL, NULL, acc_cb, &a, &e), 0);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.tids[0], tids[4]);
    cr_assert_eq(a.tids[1], tids[3]);
    a = (log_acc){0};
    cr_assert_eq(store_undo_log(f.r, 0, 20, only_desc_x, NULL, acc_cb, &a, &e), 0);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(a.tids[0], tids[5]);
    cr_assert_eq(a.tids[2], tids[1]);
}

typedef struct hist {
    int n;
    uint64_t tids[8];
    uint64_t sizes[8];
} hist;

static int hist_cb(const store_txn_info *info, void *ud)
{
    hist *h = ud;
    h->tids[h->n] = info->tid;
    h->sizes[h->n++] = info->size;
    cr_assert_eq(info->user.len, 1);
    cr_assert_eq(info->user.p[0], 'u');
    return 0;
}

Test(store_undo, history_newest_first)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "one");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "two!");
    uint64_t t3 = stt_commit1(f.s, 1, t2, "three");
    zerr e;
    store_reader_refresh(f.r, &e);
    hist h = {0};
    cr_assert_eq(store_history(f.r, 1, 2, hist_cb, &h, &e), 0);
    cr_assert_eq(h.n, 2);
    cr_assert_eq(h.tids[0], t3);
    cr_assert_eq(h.sizes[0], 5);
    cr_assert_eq(h.tids[1], t2);
    h = (hist){0};
    cr_assert_eq(store_history(f.r, 1, 10, hist_cb, &h, &e), 0);
    cr_assert_eq(h.n, 3);
    cr_assert_eq(h.sizes[2], 3);
    cr_assert_eq(store_history(f.r, 2, 10, hist_cb, &h, &e), ZE_NOTFOUND);
}

/* Kind and back_tid of every record of transaction tid, in order. */
typedef struct listing {
    int n;
    uint64_t oids[8];
    store_rec_kind kinds[8];
    uint64_t back[8];
} listing;

static listing list_txn(uint64_t tid)
{
    store_iter *it;
    store_txn_info info;
    store_record rec;
    listing l = {0};
    zerr e;
    int rc;
    cr_assert_eq(store_iter_open(f.s, tid, tid, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    while ((rc = store_iter_next_record(it, &rec, &e)) == 1 && l.n < 8) {
        l.oids[l.n] = rec.oid;
        l.kinds[l.n] = rec.kind;
        l.back[l.n++] = rec.kind == STORE_REC_BACKPTR ? rec.back_tid : 0;
    }
    cr_assert_eq(rc, 0, "%s", e.msg);
    store_iter_close(it);
    return l;
}

/* FileStorage writes one revert record per record of T: two records of one
 * oid (a blob store over ZEO) give two back-pointers to the previous txn. */
Test(store_undo, duplicate_oid_undo_and_redo)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a");
    uint64_t t2 = stt_commit_n(f.s, 3, (uint64_t[]){1, 2, 1}, (uint64_t[]){t1, 0, t1},
                               (const char *const[]){"b", "new", "b"});
    undo_res res;
    uint64_t u1, u2;
    cr_assert_eq(undo(t2, &u1, &res), 0);
    cr_assert_eq(res.n_changed, 2);
    expect(1, "a");
    expect(2, NULL);
    listing l = list_txn(u1);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.oids[0], 1);
    cr_assert_eq(l.kinds[0], STORE_REC_BACKPTR);
    cr_assert_eq(l.back[0], t1);
    cr_assert_eq(l.kinds[1], STORE_REC_DELETE);
    cr_assert_eq(l.oids[2], 1);
    cr_assert_eq(l.back[2], t1);
    /* redo: the undo transaction itself holds oid 1 twice */
    cr_assert_eq(undo(u1, &u2, &res), 0);
    expect(1, "b");
    expect(2, "new");
    l = list_txn(u2);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.back[0], t2);
    cr_assert_eq(l.back[2], t2);
}

Test(store_undo, duplicate_oid_undo_of_creation)
{
    uint64_t t1 = stt_commit_n(f.s, 2, (uint64_t[]){4, 4}, (uint64_t[]){0, 0},
                               (const char *const[]){"n", "n"});
    undo_res res;
    uint64_t u1, u2;
    cr_assert_eq(undo(t1, &u1, &res), 0);
    expect(4, NULL);
    listing l = list_txn(u1);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.kinds[0], STORE_REC_DELETE);
    cr_assert_eq(l.kinds[1], STORE_REC_DELETE);
    cr_assert_eq(undo(u1, &u2, &res), 0);
    expect(4, "n");
}

/* The first record's failure (its data is not the current data) is
 * forgiven by the second, current one; only the second is reverted. */
Test(store_undo, duplicate_oid_with_different_data_second_chance)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a");
    uint64_t t2 = stt_commit_n(f.s, 2, (uint64_t[]){1, 1}, (uint64_t[]){t1, t1},
                               (const char *const[]){"b1", "b2"});
    uint64_t t3 = stt_commit_n(f.s, 2, (uint64_t[]){5, 5}, (uint64_t[]){0, 0},
                               (const char *const[]){"c1", "c2"});
    undo_res res;
    uint64_t u;
    cr_assert_eq(undo(t2, &u, &res), 0);
    expect(1, "a");
    listing l = list_txn(u);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.back[0], t1);
    /* a creation: the first record cannot be undone, the second can */
    cr_assert_eq(undo(t3, &u, &res), 0);
    expect(5, NULL);
    l = list_txn(u);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.kinds[0], STORE_REC_DELETE);
}

/* Only a LATER record of the oid forgives: when the last one fails, the
 * undo fails and names the oid. */
Test(store_undo, duplicate_oid_changed_later_fails)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a");
    uint64_t t2 = stt_commit_n(f.s, 2, (uint64_t[]){1, 1}, (uint64_t[]){t1, t1},
                               (const char *const[]){"b", "b"});
    stt_commit1(f.s, 1, t2, "c");
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_undo(t, t2, &e), 0);
    store_vote_result res;
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_UNDO);
    cr_assert(strstr(e.msg, "oid 0000000000000001: Some data were modified"), "%s", e.msg);
    cr_assert_eq(res.n_undo_failures, 1, "the forgiven first record is not listed");
    cr_assert_eq(res.undo_failures[0].oid, 1);
    store_txn_abort(t);
    store_txn_free(t);
    expect(1, "c");
}

/* FileStorage compares pickles: a later revision with R's very bytes is
 * no change, and R can still be reverted. */
Test(store_undo, same_pickle_written_later_is_undoable)
{
    uint64_t t1 = stt_commit1(f.s, 1, 0, "a");
    uint64_t t2 = stt_commit1(f.s, 1, t1, "b");
    stt_commit1(f.s, 1, t2, "b");
    undo_res res;
    uint64_t u;
    cr_assert_eq(undo(t2, &u, &res), 0);
    expect(1, "a");
}
