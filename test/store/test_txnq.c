/* The transaction queue both backends share (txnq.h), on its own: its
 * hooks answer from tables here, so each decision is checked apart from
 * any backend (test_store checks the same through store.h on both). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/txnq.h"

typedef struct fake {
    txnq q;              /* first, as txnq.h asks */
    int discarded;       /* blob files given up */
} fake;

static fake f;

static int blob_check(txnq *q, const char *path, int linked_ok, uint64_t oid, zerr *err)
{
    return strstr(path, "bad") ? zerr_set(err, ZE_INVAL, "refused") : 0;
}

static void blob_discard(txnq *q, const char *path, int linked_ok)
{
    ((fake *)(void *)q)->discarded++;
}

/* Revision serial of any oid holds "r<serial>". */
static int revision(txnq *q, uint64_t oid, uint64_t serial, int committed, zbuf *out)
{
    char s[32];
    int n = snprintf(s, sizeof s, "r%llu", (unsigned long long)serial);
    return zbuf_set(out, s, (size_t)n) == 0;
}

static const txnq_hooks hooks = {blob_check, blob_discard, revision};

/* A resolver that writes "old|committed|new". */
static int resolve(void *data, uint64_t oid, zslice old, zslice committed, zslice new_rec,
                   zbuf *out)
{
    return !zbuf_append(out, old.p, old.len) && !zbuf_append(out, "|", 1) &&
           !zbuf_append(out, committed.p, committed.len) && !zbuf_append(out, "|", 1) &&
           !zbuf_append(out, new_rec.p, new_rec.len);
}

static store_resolver resolver;

static store_txn *open_txn(int with_resolver)
{
    store_txn_meta meta = {.user = (const uint8_t *)"u", .user_len = 1};
    resolver = (store_resolver){.resolve = with_resolver ? resolve : NULL};
    memset(&f, 0, sizeof f);
    cr_assert_eq(store__txnq_init(&f.q, NULL, &hooks, &meta, &resolver, 100, -1, "tmp", NULL),
                 0);
    return (store_txn *)(void *)&f;
}

static void fini(void)
{
    store__txnq_deinit(&f.q);
}

TestSuite(store_txnq, .fini = fini);

static void put(store_txn *t, uint64_t oid, uint64_t serial, const char *text)
{
    cr_assert_eq(store__txnq_store(t, oid, serial, text, strlen(text), NULL), 0);
}

/* A vote's judging of cur, the oids' current tids. */
static int judge(const uint64_t *cur, zerr *err)
{
    cr_assert_eq(store__txnq_vote_start(&f.q, NULL, NULL), 0);
    store__txnq_resolve_stores(&f.q, cur);
    return store__txnq_vote_end(&f.q, store__txnq_judge(&f.q, cur, err), NULL, err);
}

Test(store_txnq, a_store_after_a_conflict_replaces_the_conflicting_one)
{
    store_txn *t = open_txn(0);
    zerr e;
    put(t, 1, 5, "a");
    uint64_t cur[2] = {7, 7};
    cr_assert_eq(judge(cur, &e), ZE_CONFLICT);
    cr_assert_eq(f.q.n_conflicts, 1);
    cr_expect_eq(f.q.conflicts[0].committed, 7);
    cr_expect_eq(f.q.conflicts[0].data.len, 1);
    cr_expect_eq(memcmp(f.q.conflicts[0].data.p, "a", 1), 0);
    put(t, 1, 7, "b");
    cr_expect(f.q.ops[0].state & OPF_DROPPED);
    txn_rec_it it = {0, 0};
    const txn_op *op = store__txnq_next_rec(&f.q, &it);
    cr_assert(op && op == &f.q.ops[1], "the dropped store is not written");
    cr_expect_null(store__txnq_next_rec(&f.q, &it));
    cr_expect_eq(judge(cur, &e), 0, "%s", e.msg);
    cr_expect_eq(f.q.state, TXN_VOTED);
}

Test(store_txnq, a_read_conflict_wins_over_write_conflicts)
{
    store_txn *t = open_txn(0);
    zerr e;
    put(t, 1, 1, "a");
    cr_assert_eq(store__txnq_check_current(t, 2, 3, NULL), 0);
    uint64_t cur[2] = {2, 4};
    cr_expect_eq(judge(cur, &e), ZE_READCONFLICT);
    cr_assert_eq(f.q.n_conflicts, 2);
    cr_expect(!f.q.conflicts[0].read_conflict && f.q.conflicts[1].read_conflict);
    cr_expect_eq(f.q.state, TXN_OPEN);
}

Test(store_txnq, a_delete_of_an_oid_without_a_record_fails)
{
    store_txn *t = open_txn(0);
    zerr e;
    cr_assert_eq(store__txnq_delete(t, 3, 9, NULL), 0);
    uint64_t cur[1] = {0};
    cr_expect_eq(judge(cur, &e), ZE_NOTFOUND);
    cr_expect_str_eq(e.msg, "delete of oid 0000000000000003, which does not exist");
}

Test(store_txnq, each_new_object_counts_once_and_oids_come_once_in_store_order)
{
    store_txn *t = open_txn(0);
    zerr e;
    put(t, 2, 0, "a");
    put(t, 1, 0, "b");
    put(t, 2, 0, "c");
    uint64_t cur[3] = {0, 0, 0};
    cr_assert_eq(judge(cur, &e), 0, "%s", e.msg);
    cr_expect_eq(f.q.new_objects, 2);
    size_t n;
    const uint64_t *oids = store__txnq_oids(t, &n);
    cr_assert_eq(n, 2);
    cr_expect(oids[0] == 2 && oids[1] == 1);
}

Test(store_txnq, the_resolver_merges_a_conflicting_store)
{
    store_txn *t = open_txn(1);
    zerr e;
    put(t, 1, 5, "new");
    uint64_t cur[1] = {9};
    cr_assert_eq(judge(cur, &e), 0, "%s", e.msg);
    cr_assert_eq(f.q.n_resolved, 1);
    cr_expect_eq(f.q.resolved[0], 1);
    const txn_op *op = &f.q.ops[0];
    cr_expect_eq(op->serial, 9);
    char got[32] = {0};
    cr_assert_lt(op->len, sizeof got);
    cr_assert_eq(txnbuf_read(&f.q.buf, op->off, op->len, got, NULL), 0);
    cr_expect_str_eq(got, "r5|r9|new");
}

Test(store_txnq, records_over_the_limit_and_refused_blobs_are_not_queued)
{
    store_txn *t = open_txn(0);
    char big[101];
    memset(big, 'x', sizeof big);
    cr_expect_eq(store__txnq_store(t, 1, 0, big, sizeof big, NULL), ZE_TOOBIG);
    cr_expect_eq(store__txnq_store(t, 1, 0, "", 0, NULL), ZE_INVAL);
    cr_expect_eq(store__txnq_store_blob(t, 1, 0, "a", 1, "/tmp/bad", NULL), ZE_INVAL);
    cr_expect_eq(f.q.n_ops, 0);
    cr_assert_eq(store__txnq_store_blob(t, 1, 0, "a", 1, "/tmp/good", NULL), 0);
    store__txnq_abort(&f.q);
    cr_expect_eq(f.discarded, 1, "the queued blob file is given up");
    cr_expect_eq(store__txnq_store(t, 2, 0, "b", 1, NULL), ZE_TXN);
}

/* ---- undo, through hooks answering from a table ------------------------------ */

/* The undone transaction T = 10 writes oid 1 twice (as a blob store over
 * ZEO does); the record before it is (5, 0); oid 1's current record is
 * cur_tid, cur_index. */
typedef struct undo_world {
    uint64_t cur_tid;
    uint32_t cur_index;
    const char *cur_data;
} undo_world;

static int u_undone(void *ud, uint64_t T, char *status, zerr *err)
{
    *status = ' ';
    return T == 10 ? 0 : ZE_NOTFOUND;
}

static int u_records(void *ud, uint64_t T, uint32_t *n, zerr *err)
{
    *n = 2;
    return 0;
}

static int u_record(void *ud, uint64_t T, uint32_t i, uint64_t *oid, txnq_rec *out, zerr *err)
{
    *oid = 1;
    *out = (txnq_rec){.tid = T, .index = i, .kind = STORE_REC_DATA};
    return 0;
}

static void u_records_end(void *ud)
{
}

static int u_current(void *ud, uint64_t oid, txnq_rec *out, zerr *err)
{
    const undo_world *w = ud;
    *out = (txnq_rec){.tid = w->cur_tid, .index = w->cur_index, .kind = STORE_REC_DATA};
    return 0;
}

static int u_prev(void *ud, uint64_t oid, uint64_t T, txnq_rec *out, zerr *err)
{
    *out = (txnq_rec){.tid = 5, .index = 0, .kind = STORE_REC_DATA};
    return 0;
}

/* (10, 0) holds "x1", (10, 1) "x2", (5, 0) "p", the current record its data. */
static int u_data(void *ud, uint64_t oid, uint64_t tid, uint32_t index, txnq_rec *out,
                  zerr *err)
{
    const undo_world *w = ud;
    const char *d = tid == 5 ? "p" : tid == 10 ? (index ? "x2" : "x1")
                    : tid == w->cur_tid ? w->cur_data : NULL;
    if (!d)
        return ZE_NOTFOUND;
    *out = (txnq_rec){.tid = tid, .index = index, .kind = STORE_REC_DATA,
                      .data = (const uint8_t *)d, .len = strlen(d)};
    return 0;
}

static void u_done(void *ud, txnq_rec *r)
{
}

static void u_revert_blob(void *ud, txn_op *op, const txnq_rec *d)
{
}

static const txnq_undo_hooks undo_hooks = {u_undone, u_records, u_record, u_records_end,
                                           u_current, u_prev, u_data, u_done, u_revert_blob};

/* A transaction undoing T in world w, expanded. */
static int undo_in(undo_world w, uint64_t T, zerr *e)
{
    cr_assert_eq(store__txnq_undo(open_txn(0), T, NULL), 0);
    return store__txnq_undo_expand(&f.q, &undo_hooks, &w, e);
}

Test(store_txnq, a_later_record_of_the_oid_forgives_an_earlier_failure)
{
    zerr e;
    /* (10, 0) is not current and its data differ: it fails; (10, 1) is. */
    cr_assert_eq(undo_in((undo_world){10, 1, "x2"}, 10, &e), 0, "%s", e.msg);
    cr_assert_eq(f.q.n_gen, 1);
    cr_expect(f.q.gen[0].kind == STORE_REC_BACKPTR && f.q.gen[0].back_tid == 5);
    cr_expect(f.q.n_changed == 1 && f.q.changed[0] == 1);
}

Test(store_txnq, data_changed_later_fail_the_undo_with_filestorages_reason)
{
    zerr e;
    cr_assert_eq(undo_in((undo_world){12, 0, "y"}, 10, &e), ZE_UNDO);
    cr_assert_eq(f.q.n_undo_failures, 1, "one oid failed, listed once");
    cr_expect_str_eq(f.q.undo_failures[0].reason,
                     "Some data were modified by a later transaction");
    cr_expect_str_eq(e.msg, "cannot undo 000000000000000a: oid 0000000000000001: Some data "
                            "were modified by a later transaction (1 oid failed)");
}

Test(store_txnq, an_undo_of_a_transaction_that_does_not_exist_fails)
{
    zerr e;
    cr_expect_eq(undo_in((undo_world){10, 1, "x2"}, 11, &e), ZE_UNDO);
    cr_expect_str_eq(e.msg, "no transaction 000000000000000b to undo");
    cr_expect_eq(f.q.n_gen, 0);
}
