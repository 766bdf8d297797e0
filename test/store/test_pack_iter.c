/* Reading a store after pack: iteration lists exactly the records pack left
 * (what ZODB's PackableStorage._sanity_check walks), back-pointers name
 * their targets as iteration numbers them, and a record missing anywhere
 * pack did not remove it is still reported as damage. */
#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/ztid.h"

static st_fixture f;

static void setup(void) { stt_open(&f, NULL); }
static void teardown(void) { stt_done(&f); }

TestSuite(store_pack_iter, .init = setup, .fini = teardown);

/* Commits that a pack time can tell apart (tids carry ~0.2 us steps, but
 * the clock must move between them). */
static void pause_ms(void)
{
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static double time_between(uint64_t a, uint64_t b)
{
    double ta = ztid_time(a), tb = ztid_time(b);
    cr_assert_lt(ta, tb, "commits too close together to split by time");
    return (ta + tb) / 2;
}

static uint64_t undo(uint64_t tid)
{
    store_txn *t = stt_begin(f.s);
    zerr e;
    cr_assert_eq(store_txn_undo(t, tid, &e), 0);
    return stt_finish(t);
}

typedef struct seen_rec {
    uint64_t oid;
    store_rec_kind kind;
    char data[16];
    uint64_t back_tid;
    uint32_t back_index;
} seen_rec;

typedef struct seen_txn {
    uint64_t tid;
    char status;
    int n;
    seen_rec recs[4];
} seen_txn;

/* Every transaction and record, as _sanity_check walks them; each record
 * that has data must also load by its serial. Returns the count of txns.
 * resumable: through store_iter_open_resumable, which must list the same. */
static int walk(seen_txn *out, int cap, int resumable)
{
    store_iter *it;
    store_txn_info info;
    store_record rec;
    zerr e;
    int n = 0, rc;
    rc = resumable ? store_iter_open_resumable(f.s, 0, 0, &it, &e)
                   : store_iter_open(f.s, 0, 0, &it, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    store_reader_refresh(f.r, &e);
    while ((rc = store_iter_next_txn(it, &info, &e)) == 1) {
        cr_assert_lt(n, cap);
        seen_txn *t = &out[n++];
        *t = (seen_txn){.tid = info.tid, .status = info.status};
        while ((rc = store_iter_next_record(it, &rec, &e)) == 1) {
            cr_assert_lt(t->n, 4);
            seen_rec *r = &t->recs[t->n++];
            *r = (seen_rec){rec.oid, rec.kind, "", rec.back_tid, rec.back_index};
            cr_assert_lt(rec.data.len, sizeof r->data);
            memcpy(r->data, rec.data.p, rec.data.len);
            if (rec.kind == STORE_REC_DELETE)
                continue;
            zbuf b = ZBUF_INIT;
            cr_assert_eq(store_load_serial(f.r, rec.oid, rec.tid, &b, &e), 0, "%s", e.msg);
            cr_assert(b.len == rec.data.len && !memcmp(b.data, rec.data.p, b.len));
            zbuf_free(&b);
        }
        cr_assert_eq(rc, 0, "record: %s", e.msg);
    }
    cr_assert_eq(rc, 0, "transaction: %s", e.msg);
    store_iter_close(it);
    return n;
}

static int walk_all(seen_txn *out, int cap)
{
    seen_txn again[8];
    int n = walk(out, cap, 0);
    cr_assert_leq(n, 8);
    cr_assert_eq(walk(again, 8, 1), n, "a resumable iterator lists another count");
    for (int i = 0; i < n; i++) {
        cr_assert(again[i].tid == out[i].tid && again[i].status == out[i].status &&
                  again[i].n == out[i].n);
        for (int k = 0; k < out[i].n; k++) {
            const seen_rec *a = &out[i].recs[k], *b = &again[i].recs[k];
            cr_assert(a->oid == b->oid && a->kind == b->kind && !strcmp(a->data, b->data) &&
                      a->back_tid == b->back_tid && a->back_index == b->back_index);
        }
    }
    return n;
}

Test(store_pack_iter, iteration_lists_what_pack_left)
{
    /* T1: x, y.  T2: x twice (a blob store over ZEO).  T3: y.  T4: undo T3,
     * a back-pointer to y's record in T1, which is record 1 there. */
    uint64_t t1 = stt_commit_n(f.s, 2, (uint64_t[]){1, 2}, (uint64_t[]){0, 0},
                               (const char *const[]){"x1", "y1"});
    uint64_t t2 = stt_commit_n(f.s, 2, (uint64_t[]){1, 1}, (uint64_t[]){t1, t1},
                               (const char *const[]){"x2", "x2"});
    pause_ms();
    uint64_t t3 = stt_commit1(f.s, 2, t1, "y3");
    uint64_t t4 = undo(t3);
    store_pack_stats st;
    zerr e;
    cr_assert_eq(store_pack(f.s, time_between(t2, t3), 0, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.records_removed, 2);   /* x in T1, the first x in T2 */
    seen_txn txns[8];
    cr_assert_eq(walk_all(txns, 8), 4);
    /* T1 keeps y only, and lists it first */
    cr_assert_eq(txns[0].tid, t1);
    cr_assert_eq(txns[0].status, 'p');
    cr_assert_eq(txns[0].n, 1);
    cr_assert_eq(txns[0].recs[0].oid, 2);
    cr_assert_str_eq(txns[0].recs[0].data, "y1");
    cr_assert_eq(txns[1].tid, t2);
    cr_assert_eq(txns[1].status, 'p');
    cr_assert_eq(txns[1].n, 1);
    cr_assert_str_eq(txns[1].recs[0].data, "x2");
    cr_assert_eq(txns[2].status, ' ');
    cr_assert_eq(txns[2].n, 1);
    /* the undo's back-pointer names y's record as T1 is listed now */
    cr_assert_eq(txns[3].tid, t4);
    cr_assert_eq(txns[3].recs[0].kind, STORE_REC_BACKPTR);
    cr_assert_eq(txns[3].recs[0].back_tid, t1);
    cr_assert_eq(txns[3].recs[0].back_index, 0);
    cr_assert_eq(txns[0].recs[txns[3].recs[0].back_index].oid, 2);
    cr_assert_str_eq(txns[3].recs[0].data, "y1");
}

Test(store_pack_iter, a_resumable_iterator_goes_on_across_a_pack)
{
    uint64_t t1 = stt_commit_n(f.s, 2, (uint64_t[]){1, 2}, (uint64_t[]){0, 0},
                               (const char *const[]){"x1", "y1"});
    uint64_t t2 = stt_commit_n(f.s, 2, (uint64_t[]){1, 1}, (uint64_t[]){t1, t1},
                               (const char *const[]){"x2", "x2"});
    pause_ms();
    uint64_t t3 = stt_commit1(f.s, 2, t1, "y3");
    uint64_t t4 = undo(t3);
    store_iter *snap, *res;
    store_txn_info info;
    store_record rec;
    zerr e;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &snap, &e), 0);
    cr_assert_eq(store_iter_open_resumable(f.s, 0, 0, &res, &e), 0);
    for (store_iter *it = snap; it; it = it == snap ? res : NULL) {
        cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
        cr_assert_eq(info.tid, t1);
        cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
        cr_assert_eq(rec.oid, 1);
    }
    /* Pack removes x from T1 and T2's first record, and marks them 'p'. */
    cr_assert_eq(store_pack(f.s, time_between(t2, t3), 0, NULL, &e), 0, "%s", e.msg);
    uint64_t t5 = stt_commit1(f.s, 3, 0, "after");
    /* The snapshot still reads what was there; the resumable iterator what
     * is there now, up to what was committed when it was opened. */
    cr_assert_eq(store_iter_next_record(snap, &rec, &e), 1);
    cr_expect(rec.oid == 2 && rec.data.len == 2 && !memcmp(rec.data.p, "y1", 2));
    cr_assert_eq(store_iter_next_record(res, &rec, &e), 1, "%s", e.msg);
    cr_expect(rec.oid == 2 && rec.data.len == 2 && !memcmp(rec.data.p, "y1", 2));
    cr_expect_eq(store_iter_next_record(res, &rec, &e), 0);
    cr_assert_eq(store_iter_next_txn(res, &info, &e), 1);
    cr_expect(info.tid == t2 && info.status == 'p');
    int n = 0;
    while (store_iter_next_record(res, &rec, &e) == 1)
        n++;
    cr_expect_eq(n, 1, "T2 keeps its last x only");
    cr_assert_eq(store_iter_next_txn(res, &info, &e), 1);
    cr_expect_eq(info.tid, t3);
    cr_assert_eq(store_iter_next_txn(res, &info, &e), 1);
    cr_expect_eq(info.tid, t4);
    cr_assert_eq(store_iter_next_record(res, &rec, &e), 1);
    cr_expect(rec.kind == STORE_REC_BACKPTR && rec.back_tid == t1 && rec.back_index == 0,
              "the back-pointer names y as T1 is listed after the pack");
    cr_expect_eq(store_iter_next_txn(res, &info, &e), 0, "%016llx was committed after the "
                 "iterator was opened", (unsigned long long)t5);
    store_iter_close(res);
    store_iter_close(snap);
}

/* The invalidation walk and the undo log read the same oid lists. */
static int count_oid(uint64_t oid, void *ud)
{
    (void)oid;
    ++*(int *)ud;
    return 0;
}

static int count_txn(const store_txn_info *info, void *ud)
{
    (void)info;
    ++*(int *)ud;
    return 0;
}

Test(store_pack_iter, changes_since_and_undo_log_after_pack)
{
    uint64_t t1 = stt_commit_n(f.s, 2, (uint64_t[]){1, 2}, (uint64_t[]){0, 0},
                               (const char *const[]){"x1", "y1"});
    uint64_t t2 = stt_commit1(f.s, 1, t1, "x2");
    pause_ms();
    uint64_t t3 = stt_commit1(f.s, 2, t1, "y3");
    zerr e;
    cr_assert_eq(store_pack(f.s, time_between(t2, t3), 0, NULL, &e), 0, "%s", e.msg);
    store_reader_refresh(f.r, &e);
    int n = 0;
    uint64_t latest;
    cr_assert_eq(store_changes_since(f.r, 0, &latest, count_oid, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(latest, t3);
    /* LMDB: the oid lists stay whole (extra invalidations only); PostgreSQL:
     * the oid of the record pack removed is listed by its later record */
    cr_assert_eq(n, stt_pg() ? 3 : 4);
    n = 0;
    cr_assert_eq(store_undo_log(f.r, 0, -20, NULL, NULL, count_txn, &n, &e), 0);
    cr_assert_eq(n, 1);   /* stops at the packed T2 */
    /* a packed transaction cannot be undone */
    store_txn *t = stt_begin(f.s);
    cr_assert_eq(store_txn_undo(t, t1, &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), ZE_UNDO);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(store_pack_iter, missing_record_elsewhere_is_damage)
{
    uint64_t t1 = stt_commit_n(f.s, 2, (uint64_t[]){1, 2}, (uint64_t[]){0, 0},
                               (const char *const[]){"x1", "y1"});
    zerr e;
    stt_cut_record(&f, 1, t1);
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(f.s, 0, 0, &it, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), ZE_CORRUPT);
    cr_assert(strstr(e.msg, "record 0 of transaction"), "%s", e.msg);
    store_iter_close(it);
}

/* ---- the store's log ------------------------------------------------------ */

typedef struct log_lines {
    int n, level;
    char last[1024];
} log_lines;

static void capture(void *data, int level, const char *msg)
{
    log_lines *l = data;
    l->n++;
    l->level = level;
    snprintf(l->last, sizeof l->last, "%s", msg);
}

/* Run a GC pack of a store that has no root object (a warning), with
 * stderr sent to a file; the bytes written to stderr meanwhile. */
static long pack_stderr_bytes(store *s)
{
    char path[] = "/tmp/zeolite-stderr-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_eq(dup2(fd, 2), 2);
    zerr e;
    int rc = store_pack(s, (double)time(NULL) + 1e6, 1, NULL, &e);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert_eq(rc, 0, "%s", e.msg);
    long n = lseek(fd, 0, SEEK_END);
    close(fd);
    return n;
}

/* A pack's warnings go to the log its opener gave (store_options.log),
 * and without one nowhere: the store never writes to stderr. */
Test(store_log, pack_warnings_go_to_the_log_never_to_stderr)
{
    log_lines got = {0};
    store_options o = {.create = 1, .no_sync = 1, .log = capture, .log_data = &got};
    st_fixture g;
    stt_open(&g, &o);
    stt_commit1(g.s, 5, 0, "no root");
    cr_expect_eq(pack_stderr_bytes(g.s), 0);
    cr_assert_eq(got.n, 1);
    cr_expect_eq(got.level, STORE_LOG_WARNING);
    char *name = stt_spec_shown(g.dir);
    cr_expect(strstr(got.last, "pack ") && strstr(got.last, name), "%s", got.last);
    free(name);
    cr_expect(strstr(got.last, "no root object (oid 0) at the pack time: garbage collection "
                               "skipped"), "%s", got.last);
    stt_close(&g);
    store_options quiet = {.no_sync = 1};
    stt_reopen(&g, &quiet);
    cr_expect_eq(pack_stderr_bytes(g.s), 0, "a store without a log says nothing");
    stt_done(&g);
}
