/* Converter fidelity (filestorage-format.md section 14): exact records,
 * back-pointer targets, prev_zero, metadata bytes, bulk mode. */
#include "storetest.h"

#include <stdio.h>

static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_fidelity, .init = setup, .fini = teardown);

static store_txn *begin_at(uint64_t tid, char status)
{
    store_txn_meta m = {.status = status, .tid = tid};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), 0, "%s", e.msg);
    return t;
}

static void rec_data(store_txn *t, uint64_t oid, const char *text, int prev_zero)
{
    store_record r = {.oid = oid, .kind = STORE_REC_DATA,
                      .data = {(const uint8_t *)text, strlen(text)}, .prev_zero = prev_zero};
    zerr e;
    cr_assert_eq(store_txn_restore_record(t, &r, NULL, &e), 0, "%s", e.msg);
}

static void rec_back(store_txn *t, uint64_t oid, uint64_t back_tid, uint32_t back_index)
{
    store_record r = {.oid = oid, .kind = STORE_REC_BACKPTR, .back_tid = back_tid,
                      .back_index = back_index};
    zerr e;
    cr_assert_eq(store_txn_restore_record(t, &r, NULL, &e), 0, "%s", e.msg);
}

static void finish_at(store_txn *t, uint64_t want)
{
    cr_assert_eq(stt_finish(t), want);
}

/* packed.fs, oid 3: records at a3333333 and b4444444, the second with prev
 * 0; Python's loadBefore(oid 3, b4444444) is None although the first record
 * exists, kept as the target of a later back-pointer. */
Test(store_fidelity, prev_zero_hides_older_records)
{
    const uint64_t A = 0x03f8a3baa3333333ull, B = 0x03f8a3bab4444444ull,
                   C = 0x03f8a3bac5555555ull;
    store_txn *t = begin_at(A, 'p');
    rec_data(t, 3, "old", 0);
    finish_at(t, A);
    t = begin_at(B, 'p');
    rec_data(t, 3, "new", 1);
    finish_at(t, B);
    char buf[16];
    uint64_t start, end;
    cr_assert_eq(stt_load(f.r, 3, B, buf, sizeof buf, NULL, NULL), ZE_NOREV);
    cr_assert_eq(stt_load(f.r, 3, A + 1, buf, sizeof buf, NULL, NULL), ZE_NOREV);
    cr_assert_eq(stt_load(f.r, 3, B + 1, buf, sizeof buf, &start, &end), 0);
    cr_assert_str_eq(buf, "new");
    cr_assert_eq(end, 0);
    zbuf b = ZBUF_INIT;
    zerr e;
    cr_assert_eq(store_load_serial(f.r, 3, A, &b, &e), ZE_NOTFOUND);
    /* the hidden record is still a back-pointer target */
    t = begin_at(C, ' ');
    rec_back(t, 3, A, 0);
    finish_at(t, C);
    cr_assert_eq(stt_load(f.r, 3, STORE_TID_MAX, buf, sizeof buf, &start, NULL), 0);
    cr_assert_str_eq(buf, "old");
    cr_assert_eq(start, C);
    cr_assert_eq(stt_load(f.r, 3, C, buf, sizeof buf, &start, &end), 0);
    cr_assert_str_eq(buf, "new");
    cr_assert_eq(end, C);
    /* the iterator lists everything with its flags */
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.status, 'p');
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.prev_zero, 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.prev_zero, 1);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.status, ' ');
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.kind, STORE_REC_BACKPTR);
    cr_assert_eq(rec.back_tid, A);
    cr_assert_eq(rec.back_index, 0);
    cr_assert_eq(rec.data.len, 3);
    cr_assert_eq(memcmp(rec.data.p, "old", 3), 0);
    store_iter_close(it);
    zbuf_free(&b);
}

Test(store_fidelity, backpointer_to_first_of_two_records)
{
    const uint64_t T1 = 0x03f8a3ba10000000ull, T2 = 0x03f8a3ba20000000ull,
                   T3 = 0x03f8a3ba30000000ull;
    store_txn *t = begin_at(T1, ' ');
    rec_data(t, 4, "first", 0);
    rec_data(t, 4, "second", 0);
    finish_at(t, T1);
    char buf[16];
    cr_assert_eq(stt_load(f.r, 4, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "second");
    t = begin_at(T2, ' ');
    rec_back(t, 4, T1, 0);
    finish_at(t, T2);
    cr_assert_eq(stt_load(f.r, 4, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "first");
    /* a chain: a back-pointer to a back-pointer needs one lookup */
    t = begin_at(T3, ' ');
    rec_back(t, 4, T2, 0);
    finish_at(t, T3);
    cr_assert_eq(stt_load(f.r, 4, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "first");
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    cr_assert_eq(store_iter_open(f.s, T3, T3, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.back_tid, T2);   /* one link, not the end of the chain */
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 0);
    store_iter_close(it);
    /* a back-pointer to a record that does not exist fails the vote */
    t = begin_at(T3 + 1, ' ');
    rec_back(t, 4, T1, 7);
    cr_assert_eq(store_txn_vote(t, NULL, &e), ZE_NOTFOUND);
    store_txn_free(t);
    /* ... or, in bulk mode where the vote cannot see the open write, the commit */
    cr_assert_eq(store_bulk_begin(f.s, &e), 0);
    t = begin_at(T3 + 2, ' ');
    rec_back(t, 4, T3 + 1, 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0);
    uint64_t tid;
    cr_assert_eq(store_txn_finish(t, &tid, &e), ZE_NOTFOUND);
    store_txn_free(t);
    cr_assert_eq(store_bulk_end(f.s, &e), 0);
    cr_assert_eq(store_last_tid(f.s), T3);
}

Test(store_fidelity, deletion_and_restore_forms)
{
    const uint64_t T1 = 0x03f8a3ba10000000ull, T2 = T1 + 1, T3 = T1 + 2;
    store_txn *t = begin_at(T1, ' ');
    zerr e;
    cr_assert_eq(store_txn_restore(t, 8, "eight", 5, 0, &e), 0);
    finish_at(t, T1);
    t = begin_at(T2, ' ');
    cr_assert_eq(store_txn_restore(t, 8, NULL, 0, 0, &e), 0);     /* deletion */
    finish_at(t, T2);
    cr_assert_eq(stt_load(f.r, 8, STORE_TID_MAX, NULL, 0, NULL, NULL), ZE_NOTFOUND);
    t = begin_at(T3, ' ');
    cr_assert_eq(store_txn_restore(t, 8, NULL, 0, T1, &e), 0);    /* back-pointer */
    finish_at(t, T3);
    char buf[16];
    cr_assert_eq(stt_load(f.r, 8, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "eight");
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, T2, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.kind, STORE_REC_DELETE);
    cr_assert_eq(rec.data.len, 0);
    store_iter_close(it);
}

Test(store_fidelity, raw_metadata_bytes)
{
    const uint8_t user[] = {'/', ' ', 0xc3, 0xa9, 0x00, 'x'};
    const uint8_t desc[] = {0x00, 0xff};
    const uint8_t ext[] = {0x80, 0x03, '}', 'q', 0x00, '.'};
    store_txn_meta m = {user, sizeof user, desc, sizeof desc, ext, sizeof ext, 'p', 0};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(f.s, &m, &t, &e), 0);
    uint64_t tid = stt_finish(t);
    store_iter *it;
    store_txn_info info;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.tid, tid);
    cr_assert_eq(info.status, 'p');
    cr_assert_eq(info.user.len, sizeof user);
    cr_assert_eq(memcmp(info.user.p, user, sizeof user), 0);
    cr_assert_eq(info.description.len, sizeof desc);
    cr_assert_eq(memcmp(info.description.p, desc, sizeof desc), 0);
    cr_assert_eq(info.extension.len, sizeof ext);
    cr_assert_eq(memcmp(info.extension.p, ext, sizeof ext), 0);
    store_iter_close(it);
}

Test(store_fidelity, bulk_import)
{
    enum { N = 300 };
    const uint64_t T0 = 0x03f8a3ba00000000ull;
    zerr e;
    cr_assert_eq(store_bulk_begin(f.s, &e), 0, "%s", e.msg);
    cr_assert_eq(store_bulk_begin(f.s, &e), ZE_TXN);
    char text[32];
    for (int i = 0; i < N; i++) {
        store_txn *t = begin_at(T0 + (uint64_t)i + 1, ' ');
        snprintf(text, sizeof text, "obj %d", i);
        rec_data(t, (uint64_t)(i % 50), text, 0);
        if (i >= 50)   /* a back-pointer into the same bulk write */
            rec_back(t, 1000, T0 + 1, 1);
        else if (i == 0)
            rec_data(t, 1000, "target", 0);
        finish_at(t, T0 + (uint64_t)i + 1);
    }
    cr_assert_eq(store_bulk_end(f.s, &e), 0, "%s", e.msg);
    cr_assert_eq(store_last_tid(f.s), T0 + N);
    char buf[32];
    uint64_t start;
    cr_assert_eq(stt_load(f.r, 49, STORE_TID_MAX, buf, sizeof buf, &start, NULL), 0);
    snprintf(text, sizeof text, "obj %d", N - 1);
    cr_assert_str_eq(buf, text);
    cr_assert_eq(start, T0 + N);
    cr_assert_eq(stt_load(f.r, 1000, STORE_TID_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "target");
    cr_assert_eq(store_object_count(f.s), 51);
    uint64_t oid;
    cr_assert_eq(store_new_oids(f.s, 1, &oid, &e), 0);
    cr_assert_eq(oid, 1001);
    /* ordinary commits work again afterwards */
    cr_assert_gt(stt_commit1(f.s, 5000, 0, "after"), T0 + N);
    cr_assert_eq(store_bulk_end(f.s, &e), ZE_TXN);
}
