/* test_pg_basic.c: the PostgreSQL backend's own behaviour: its schema, ids
 * past 2**63, the database lock, reads, commits and conflicts. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "pgtest.h"
#include "testutil.h"

static char *uri;
static store *st;
static store_reader *rd;

static void setup(void)
{
    zerr e;
    store_options opt = {.create = 1};
    uri = tu_pg_newdb(NULL);
    cr_assert_eq(store_open(&st, uri, &opt, &e), 0, "open: %s", e.msg);
    cr_assert_eq(store_reader_new(st, &rd, &e), 0, "reader: %s", e.msg);
}

static void teardown(void)
{
    store_reader_free(rd);
    store_close(st);
    tu_pg_dropdb(uri);
    free(uri);
}

TestSuite(pg_basic, .init = setup, .fini = teardown);

static store_txn *begin(store *s, uint64_t tid)
{
    store_txn_meta m = {(const uint8_t *)"u", 1, (const uint8_t *)"d", 1, NULL, 0, ' ', tid};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0, "begin: %s", e.msg);
    return t;
}

static uint64_t finish(store_txn *t)
{
    zerr e;
    store_vote_result res;
    uint64_t tid = 0;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "vote: %s", e.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "finish: %s", e.msg);
    store_txn_free(t);
    return tid;
}

static uint64_t commit1(uint64_t oid, uint64_t serial, const char *text)
{
    store_txn *t = begin(st, 0);
    zerr e;
    cr_assert_eq(store_txn_store(t, oid, serial, text, strlen(text), &e), 0, "store: %s", e.msg);
    return finish(t);
}

static int load(uint64_t oid, uint64_t before, char *out, size_t cap, uint64_t *start,
                uint64_t *end)
{
    zbuf b = ZBUF_INIT;
    zerr e;
    uint64_t s0, e0;
    store_reader_refresh(rd, &e);
    int rc = store_load_before(rd, oid, before, &b, start ? start : &s0, end ? end : &e0, &e);
    size_t n = rc == 0 ? (b.len < cap - 1 ? b.len : cap - 1) : 0;
    if (n)
        memcpy(out, b.data, n);
    out[n] = '\0';
    zbuf_free(&b);
    return rc;
}

Test(pg_basic, store_then_load_and_revisions)
{
    char buf[64];
    uint64_t s, e;
    uint64_t t1 = commit1(1, 0, "one");
    uint64_t t2 = commit1(1, t1, "two");
    cr_assert_gt(t2, t1);
    cr_assert_eq(load(1, UINT64_MAX, buf, sizeof buf, &s, &e), 0);
    cr_assert_str_eq(buf, "two");
    cr_assert_eq(s, t2);
    cr_assert_eq(e, 0);
    cr_assert_eq(load(1, t2, buf, sizeof buf, &s, &e), 0);
    cr_assert_str_eq(buf, "one");
    cr_assert_eq(s, t1);
    cr_assert_eq(e, t2);
    cr_assert_eq(load(1, t1, buf, sizeof buf, NULL, NULL), ZE_NOREV);
    cr_assert_eq(load(2, UINT64_MAX, buf, sizeof buf, NULL, NULL), ZE_NOTFOUND);
    cr_assert_eq(store_last_tid(st), t2);
}

Test(pg_basic, ids_at_and_above_two_to_the_63)
{
    static const uint64_t oids[] = {0x7fffffffffffffffull, 0x8000000000000000ull,
                                    0x8000000000000001ull, 0xfffffffffffffffeull, 5};
    uint64_t tid = 0x7ffffffffffffff0ull;
    char buf[64];
    for (size_t i = 0; i < sizeof oids / sizeof oids[0]; i++) {
        store_txn *t = begin(st, tid + i);
        zerr e;
        cr_assert_eq(store_txn_store(t, oids[i], 0, "x", 1, &e), 0, "%s", e.msg);
        cr_assert_eq(finish(t), tid + i);
    }
    /* the oid counter passed every stored oid without wrapping */
    uint64_t got;
    zerr e;
    cr_assert_eq(store_new_oids(st, 1, &got, &e), ZE_FULL, "%s", e.msg);
    for (size_t i = 0; i < sizeof oids / sizeof oids[0]; i++) {
        uint64_t s;
        cr_assert_eq(load(oids[i], UINT64_MAX, buf, sizeof buf, &s, NULL), 0);
        cr_assert_eq(s, tid + i);
    }
    /* a tid above 2**63 orders after the ones below it */
    store_txn *t = begin(st, 0x8000000000000005ull);
    cr_assert_eq(store_txn_store(t, 5, tid + 4, "y", 1, &e), 0);
    cr_assert_eq(finish(t), 0x8000000000000005ull);
    uint64_t s, en;
    cr_assert_eq(load(5, UINT64_MAX, buf, sizeof buf, &s, &en), 0);
    cr_assert_str_eq(buf, "y");
    cr_assert_eq(load(5, 0x8000000000000005ull, buf, sizeof buf, &s, &en), 0);
    cr_assert_str_eq(buf, "x");
    cr_assert_eq(en, 0x8000000000000005ull);
    /* record iteration goes through the oids in unsigned order */
    uint64_t oid, next, ctid;
    int has_next;
    zbuf d = ZBUF_INIT;
    cr_assert_eq(store_record_iternext(rd, 0x7fffffffffffffffull, &oid, &ctid, &d, &next,
                                       &has_next, &e), 1);
    cr_assert_eq(oid, 0x7fffffffffffffffull);
    cr_assert(has_next);
    cr_assert_eq(next, 0x8000000000000000ull);
    zbuf_free(&d);
}

Test(pg_basic, conflicts_and_revote)
{
    uint64_t t1 = commit1(1, 0, "a");
    commit1(1, t1, "b");
    store_txn *t = begin(st, 0);
    zerr e;
    store_vote_result res;
    cr_assert_eq(store_txn_store(t, 1, t1, "c", 1, &e), 0);
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_CONFLICT);
    cr_assert_eq(res.n_conflicts, 1);
    cr_assert_eq(res.conflicts[0].expected, t1);
    cr_assert_eq(res.conflicts[0].data.len, 1);
    uint64_t cur = res.conflicts[0].committed;
    cr_assert_eq(store_txn_store(t, 1, cur, "resolved", 8, &e), 0);
    cr_assert_eq(finish(t) > cur, 1);
    char buf[64];
    cr_assert_eq(load(1, UINT64_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "resolved");
}

Test(pg_basic, read_and_delete_conflicts)
{
    uint64_t t1 = commit1(1, 0, "a");
    commit1(1, t1, "b");
    zerr e;
    store_vote_result res;
    store_txn *t = begin(st, 0);
    cr_assert_eq(store_txn_check_current(t, 1, t1, &e), 0);
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_READCONFLICT);
    cr_assert(res.conflicts[0].read_conflict);
    store_txn_abort(t);
    store_txn_free(t);
    t = begin(st, 0);
    cr_assert_eq(store_txn_delete(t, 1, t1, &e), 0);
    cr_assert_eq(store_txn_vote(t, &res, &e), ZE_CONFLICT);
    cr_assert(res.conflicts[0].delete_conflict);
    store_txn_abort(t);
    store_txn_free(t);
}

Test(pg_basic, duplicate_oid_in_one_transaction_loads_the_last)
{
    store_txn *t = begin(st, 0);
    zerr e;
    cr_assert_eq(store_txn_store(t, 3, 0, "first", 5, &e), 0);
    cr_assert_eq(store_txn_store(t, 3, 0, "second", 6, &e), 0);
    uint64_t tid = finish(t);
    char buf[64];
    cr_assert_eq(load(3, UINT64_MAX, buf, sizeof buf, NULL, NULL), 0);
    cr_assert_str_eq(buf, "second");
    store_iter *it;
    store_txn_info info;
    store_record rec;
    cr_assert_eq(store_iter_open(st, 0, 0, &it, &e), 0, "%s", e.msg);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 1);
    cr_assert_eq(info.tid, tid);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.data.len, 5);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 1);
    cr_assert_eq(rec.data.len, 6);
    cr_assert_eq(store_iter_next_record(it, &rec, &e), 0);
    cr_assert_eq(store_iter_next_txn(it, &info, &e), 0);
    store_iter_close(it);
}

static void bad_open(const char *sql, int code, const char *says)
{
    zerr e;
    store *s2;
    store_options opt = {.create = 1};
    char *u = tu_pg_newdb(NULL);
    char *out = tu_pg_exec(u, sql, e.msg, sizeof e.msg);
    cr_assert(out, "%s", e.msg);
    free(out);
    cr_assert_eq(store_open(&s2, u, &opt, &e), code, "%s", e.msg);
    cr_assert(strstr(e.msg, says), "%s", e.msg);
    tu_pg_dropdb(u);
    free(u);
}

Test(pg_basic, another_schema_or_version_is_refused_saying_what_was_found)
{
    bad_open("CREATE TABLE object_state (zoid bigint)", ZE_VERSION, "public.object_state");
    bad_open("CREATE SCHEMA zeolite; CREATE TABLE zeolite.meta (name text, value bigint); "
             "INSERT INTO zeolite.meta VALUES ('version', 7)", ZE_VERSION, "version 7");
}

Test(pg_basic, a_second_writer_is_refused_and_readers_are_not)
{
    zerr e;
    store *s2;
    store_options w = {0}, r = {.read_only = 1};
    cr_assert(store_is_locked(uri));
    cr_assert_eq(store_open(&s2, uri, &w, &e), ZE_BUSY, "%s", e.msg);
    cr_assert_eq(store_open(&s2, uri, &r, &e), 0, "%s", e.msg);
    store_close(s2);
}

Test(pg_basic, a_wrong_uri_fails_with_libpq_s_message_and_no_password)
{
    zerr e;
    store *s2;
    store_options opt = {.create = 1};
    cr_assert_eq(store_open(&s2, "postgresql://postgres:s3cret@/nodb?host=/nonexistent", &opt,
                            &e), ZE_IO);
    cr_assert(strstr(e.msg, "/nonexistent"), "%s", e.msg);
    cr_assert_null(strstr(e.msg, "s3cret"), "%s", e.msg);
    cr_assert_eq(store_open(&s2, "postgresql://%zz", &opt, &e), ZE_INVAL, "%s", e.msg);
}

Test(pg_basic, new_oids_are_unique_and_never_reused_after_reopen)
{
    zerr e;
    uint64_t a[10], b[10];
    cr_assert_eq(store_new_oids(st, 10, a, &e), 0, "%s", e.msg);
    for (int i = 1; i < 10; i++)
        cr_assert_eq(a[i], a[i - 1] + 1);
    cr_assert_gt(a[0], 0);
    store_reader_free(rd);
    store_close(st);
    store_options opt = {0};
    cr_assert_eq(store_open(&st, uri, &opt, &e), 0, "%s", e.msg);
    cr_assert_eq(store_reader_new(st, &rd, &e), 0);
    cr_assert_eq(store_new_oids(st, 10, b, &e), 0);
    cr_assert_gt(b[0], a[9]);
}

typedef struct cb_seen {
    pthread_mutex_t mu;
    int n, failed;
    uint64_t tids[8];
} cb_seen;

/* the committer thread's callback: no assertion here, the test checks */
static void on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    cb_seen *s = ud;
    (void)err;
    pthread_mutex_lock(&s->mu);
    s->failed += rc != 0;
    s->tids[s->n++] = tid;
    pthread_mutex_unlock(&s->mu);
    store_txn_free(t);
}

static int seen_count(cb_seen *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

Test(pg_basic, commits_through_the_committer_come_back_in_tid_order)
{
    cb_seen seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}};
    zerr e;
    store_vote_result res;
    for (int i = 0; i < 4; i++) {
        store_txn *t = begin(st, 0);
        uint64_t tid = 1;
        cr_assert_eq(store_txn_store(t, 10 + (uint64_t)i, 0, "v", 1, &e), 0);
        cr_assert_eq(store_txn_vote(t, &res, &e), 0, "%s", e.msg);
        cr_assert_eq(store_txn_commit(t, &tid, on_commit, &seen, &e), 0, "%s", e.msg);
        cr_assert_eq(tid, 0, "the tid is chosen when the commit runs");
    }
    while (seen_count(&seen) < 4)
        usleep(10000);
    cr_assert_eq(seen.failed, 0);
    for (int i = 1; i < 4; i++)
        cr_assert_gt(seen.tids[i], seen.tids[i - 1]);
}

/* One transaction storing oid with a blob file holding text. */
static uint64_t commit_blob(uint64_t oid, uint64_t serial, const char *text)
{
    char tmp[512];
    zerr e;
    cr_assert_eq(store_blob_tmpname(st, tmp, sizeof tmp, &e), 0, "%s", e.msg);
    cr_assert_eq(tu_write_file(tmp, text, strlen(text)), 0);
    store_txn *t = begin(st, 0);
    cr_assert_eq(store_txn_store_blob(t, oid, serial, "B", 1, tmp, &e), 0, "%s", e.msg);
    return finish(t);
}

static void expect_blob(uint64_t oid, uint64_t serial, const char *text)
{
    char path[512];
    zerr e;
    size_t n;
    store_reader_refresh(rd, &e);
    cr_assert_eq(store_load_blob(rd, oid, serial, path, sizeof path, &e), 0, "%s", e.msg);
    uint8_t *p = tu_read_file(path, &n);
    cr_assert(p, "%s", path);
    cr_assert_eq(n, strlen(text));
    cr_assert_eq(memcmp(p, text, n), 0);
    free(p);
}

Test(pg_basic, blobs_live_in_the_database_and_the_folder_is_a_cache)
{
    char big[3 * 1024 * 1024 + 17];   /* more than one chunk */
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)('a' + i % 23);
    big[sizeof big - 1] = '\0';
    uint64_t t1 = commit_blob(5, 0, big);
    uint64_t t2 = commit_blob(5, t1, "small");
    expect_blob(5, t1, big);
    /* the whole cache may go at any time: blobs come back from the database */
    tu_rmrf(store_blob_dir(st));
    expect_blob(5, t1, big);
    expect_blob(5, t2, "small");
    uint64_t t3 = commit_blob(6, 0, "after");
    expect_blob(6, t3, "after");
    /* a second store on the database, with its own cache, sees the same */
    store *s2;
    store_reader *r2;
    zerr e;
    char path[512];
    store_options ro = {.read_only = 1};
    cr_assert_eq(store_open(&s2, uri, &ro, &e), 0, "%s", e.msg);
    cr_assert_eq(store_reader_new(s2, &r2, &e), 0, "%s", e.msg);
    cr_assert_eq(store_load_blob(r2, 5, t2, path, sizeof path, &e), 0, "%s", e.msg);
    cr_assert_neq(strncmp(path, store_blob_dir(st), strlen(store_blob_dir(st))), 0);
    /* a shared blob folder is not offered: the caps say so */
    cr_assert_eq(store_caps(st) & STORE_CAP_SHARED_BLOBS, 0);
    store_txn *t = begin(st, 0);
    cr_assert_eq(store_txn_store_blob_shared(t, 7, 0, "B", 1, "name", &e), ZE_NOTSUP);
    store_txn_abort(t);
    store_txn_free(t);
    store_reader_free(r2);
    store_close(s2);
}

/* What LMDB has and PostgreSQL has not answers ZE_NOTSUP with a message that
 * says what to use instead; store_caps says so beforehand. */
Test(pg_basic, lmdb_only_operations_are_not_supported_with_a_reason)
{
    zerr e;
    store *s2;
    unsigned caps = store_caps(st);
    cr_assert_str_eq(store_backend_name(st), "postgresql");
    cr_assert(caps & STORE_CAP_BLOCKING);
    cr_assert(caps & STORE_CAP_LATE_TID);
    cr_assert_not(caps & (STORE_CAP_BACKUP | STORE_CAP_SHARED_BLOBS));
    char *dest = tu_tmpdir("pg_backup");
    cr_assert_eq(store_backup(st, dest, 0, &e), ZE_NOTSUP);
    cr_assert(strstr(e.msg, "pg_basebackup"), "%s", e.msg);
    tu_rmrf(dest);
    free(dest);
    store_txn *t = begin(st, 0);
    cr_assert_eq(store_txn_store_blob_shared(t, 1, 0, "x", 1, "0.blob", &e), ZE_NOTSUP);
    cr_assert(strstr(e.msg, "blob"), "%s", e.msg);
    store_txn_abort(t);
    store_txn_free(t);
    store_options big = {.map_size = 1ull << 30};
    cr_assert_eq(store_open(&s2, uri, &big, &e), ZE_NOTSUP);
    cr_assert(strstr(e.msg, "LMDB"), "%s", e.msg);
    uint64_t used, size;
    store_map_info(st, &used, &size);
    cr_assert_eq(size, 0);
    cr_assert_gt(used, 0);
}
