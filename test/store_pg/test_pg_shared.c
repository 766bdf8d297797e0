/* test_pg_shared.c: several stores on one PostgreSQL database (store.h:
 * "Several stores on one database"): the shared DATABASE lock, tids and
 * oids across stores and processes, the per-oid locks in the database,
 * votes side by side, a process killed between vote and finish, and one
 * pack at a time. Where a second process matters, it runs pg_child. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/oidmap.h"
#include "store/store.h"
#include "child.h"
#include "pgs.h"
#include "pgtest.h"
#include "testutil.h"

TestSuite(pg_shared);

static store *open_shared(const char *uri, int lock_ms)
{
    store *s;
    zerr e;
    store_options opt = {.create = 1, .shared = 1, .lock_timeout_ms = lock_ms,
                         .retry_seconds = 5};
    cr_assert_eq(store_open(&s, uri, &opt, &e), 0, "open shared: %s", e.msg);
    return s;
}

static int begin_store(store *s, uint64_t oid, uint64_t serial, const char *data,
                       store_txn **t, zerr *e)
{
    store_txn_meta m = {.status = ' '};
    int rc = store_txn_begin(s, &m, t, e);
    if (!rc)
        rc = store_txn_store(*t, oid, serial, data, strlen(data), e);
    return rc;
}

static int load_current(store *s, uint64_t oid, zbuf *data, uint64_t *serial)
{
    store_reader *r;
    zerr e;
    uint64_t end;
    int rc = store_reader_new(s, &r, &e);
    if (!rc)
        rc = store_load_before(r, oid, STORE_TID_MAX, data, serial, &end, &e);
    store_reader_free(r);
    return rc;
}

Test(pg_shared, shared_stores_open_together_and_refuse_an_exclusive_one)
{
    char *uri = tu_pg_newdb(NULL);
    store *a = open_shared(uri, 0), *b = open_shared(uri, 0), *c;
    zerr e;
    cr_assert(store_caps(a) & STORE_CAP_SHARED);
    cr_assert_eq(store_is_locked(uri), 1, "shared holders count as holding the database");
    store_options excl = {0};
    cr_assert_eq(store_open(&c, uri, &excl, &e), ZE_BUSY, "%s", e.msg);
    cr_assert_eq(store_bulk_begin(a, &e), ZE_BUSY, "%s", e.msg);
    cr_assert(strstr(e.msg, "alone"), "%s", e.msg);
    /* a read-only opener takes no lock */
    store_options ro = {.read_only = 1};
    cr_assert_eq(store_open(&c, uri, &ro, &e), 0, "%s", e.msg);
    cr_assert_eq(store_feed_start(c, NULL, NULL, &e), ZE_INVAL);
    store_close(c);
    store_close(a);
    store_close(b);
    cr_assert_eq(store_is_locked(uri), 0);
    /* an exclusive holder refuses shared openers, and the other way round */
    cr_assert_eq(store_open(&c, uri, &excl, &e), 0, "%s", e.msg);
    store_options sh = {.shared = 1};
    cr_assert_eq(store_open(&a, uri, &sh, &e), ZE_BUSY);
    cr_assert(strstr(e.msg, "alone"), "%s", e.msg);
    cr_assert_eq(store_feed_start(c, NULL, NULL, &e), ZE_INVAL);
    store_close(c);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_shared, lmdb_refuses_shared_and_the_feed)
{
    char *dir = tu_tmpdir("shared");
    store *s;
    zerr e;
    store_options sh = {.create = 1, .shared = 1};
    cr_assert_eq(store_open(&s, dir, &sh, &e), ZE_NOTSUP);
    cr_assert(strstr(e.msg, "PostgreSQL"), "%s", e.msg);
    store_options o = {.create = 1};
    cr_assert_eq(store_open(&s, dir, &o, &e), 0, "%s", e.msg);
    cr_assert_not(store_caps(s) & STORE_CAP_SHARED);
    cr_assert_eq(store_feed_start(s, NULL, NULL, &e), ZE_NOTSUP);
    store_close(s);
    tu_rmrf(dir);
    free(dir);
}

/* ---- tids and oids across processes ------------------------------------------------ */

#define CHILD_COMMITS 25

Test(pg_shared, two_processes_commit_one_counter_with_unique_increasing_tids, .timeout = 240)
{
    char *uri = tu_pg_newdb(NULL);
    store *s = open_shared(uri, 0);   /* the schema, and a third store beside them */
    FILE *out[2];
    pid_t pid[2];
    char n[16];
    snprintf(n, sizeof n, "%d", CHILD_COMMITS);
    for (int k = 0; k < 2; k++)
        pid[k] = pg_child_spawn(uri, "increment", n, &out[k]);
    uint64_t tids[2][CHILD_COMMITS];
    for (int k = 0; k < 2; k++) {
        int got = 0;
        unsigned long long v;
        while (got < CHILD_COMMITS && fscanf(out[k], "%llx", &v) == 1)
            tids[k][got++] = v;
        int status;
        waitpid(pid[k], &status, 0);
        fclose(out[k]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", k,
                  status);
        cr_assert_eq(got, CHILD_COMMITS);
        for (int i = 1; i < CHILD_COMMITS; i++)
            cr_assert_gt(tids[k][i], tids[k][i - 1], "a process's tids go back");
    }
    oidmap seen = OIDMAP_INIT;
    uint64_t one;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < CHILD_COMMITS; i++) {
            cr_assert_not(oidmap_get(&seen, tids[k][i], &one), "tid %016llx twice",
                          (unsigned long long)tids[k][i]);
            cr_assert_eq(oidmap_put(&seen, tids[k][i], 1), 0);
        }
    oidmap_free(&seen);
    /* no increment lost, none counted twice */
    zbuf d = ZBUF_INIT;
    uint64_t serial;
    cr_assert_eq(load_current(s, 1, &d, &serial), 0);
    char want[16];
    snprintf(want, sizeof want, "%d", 2 * CHILD_COMMITS);
    cr_assert_eq(d.len, strlen(want));
    cr_assert_eq(memcmp(d.data, want, d.len), 0, "counter %.*s, not %s", (int)d.len,
                 (const char *)d.data, want);
    cr_assert_eq(tu_pg_num(uri, "SELECT count(*) FROM zeolite.txns"), 2 * CHILD_COMMITS);
    /* a third store sees every commit: its next tid follows all of them */
    uint64_t t3;
    zerr e;
    store_reader *r;
    cr_assert_eq(store_reader_new(s, &r, &e), 0);
    cr_assert_eq(store_reader_last_tid(r), serial);
    store_reader_free(r);
    cr_assert_eq(pgs_commit(s, 2, 0, "third", &t3, &e), 0, "%s", e.msg);
    cr_assert_gt(t3, serial);
    zbuf_free(&d);
    store_close(s);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_shared, tids_increase_across_stores_in_commit_order)
{
    char *uri = tu_pg_newdb(NULL);
    store *s[2] = {open_shared(uri, 0), open_shared(uri, 0)};
    uint64_t last = 0, tid;
    zerr e;
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(pgs_commit(s[i % 2], 10 + (uint64_t)i, 0, "x", &tid, &e), 0, "%s", e.msg);
        cr_assert_gt(tid, last, "commit %d through store %d", i, i % 2);
        last = tid;
    }
    store_close(s[0]);
    store_close(s[1]);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_shared, new_oids_of_two_stores_never_overlap)
{
    char *uri = tu_pg_newdb(NULL);
    store *s[2] = {open_shared(uri, 0), open_shared(uri, 0)};
    oidmap seen = OIDMAP_INIT;
    uint64_t oids[1000], one;
    zerr e;
    /* past several reservations of each store, interleaved */
    for (int round = 0; round < 8; round++)
        for (int k = 0; k < 2; k++) {
            int n = 300 + 100 * k + 50 * round % 400;
            cr_assert_eq(store_new_oids(s[k], n, oids, &e), 0, "%s", e.msg);
            for (int i = 0; i < n; i++) {
                cr_assert_not(oidmap_get(&seen, oids[i], &one), "oid %llu twice",
                              (unsigned long long)oids[i]);
                cr_assert_eq(oidmap_put(&seen, oids[i], 1), 0);
            }
        }
    oidmap_free(&seen);
    store_close(s[0]);
    store_close(s[1]);
    tu_pg_dropdb(uri);
    free(uri);
}

/* ---- per-oid locks across stores ------------------------------------------------------ */

typedef struct voter_args {
    store_txn *t;
    int rc;
    store_vote_result res;
    zerr e;
} voter_args;

static void *vote_thread(void *arg)
{
    voter_args *v = arg;
    v->rc = store_txn_vote(v->t, &v->res, &v->e);
    return NULL;
}

Test(pg_shared, one_oid_written_through_two_stores_gives_one_commit_and_one_conflict)
{
    char *uri = tu_pg_newdb(NULL);
    store *a = open_shared(uri, 30000), *b = open_shared(uri, 30000);
    zerr e;
    uint64_t t0, ta;
    cr_assert_eq(pgs_commit(a, 1, 0, "v0", &t0, &e), 0, "%s", e.msg);
    store_txn *ta_txn, *tb_txn;
    cr_assert_eq(begin_store(a, 1, t0, "from a", &ta_txn, &e), 0);
    cr_assert_eq(store_txn_vote(ta_txn, NULL, &e), 0, "%s", e.msg);
    /* B's vote on the same oid waits for A's lock, in the database */
    cr_assert_eq(begin_store(b, 1, t0, "from b", &tb_txn, &e), 0);
    voter_args v = {.t = tb_txn};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, vote_thread, &v), 0);
    tu_pg_wait_lock(uri, "%pg_advisory_xact_lock%");
    cr_assert_eq(store_txn_finish(ta_txn, &ta, &e), 0, "%s", e.msg);
    pthread_join(th, NULL);
    /* ... and then sees A's commit: a conflict, never a second success */
    cr_assert_eq(v.rc, ZE_CONFLICT, "%s: %s", zerr_name(v.rc), v.e.msg);
    cr_assert_eq(v.res.n_conflicts, 1);
    cr_assert_eq(v.res.conflicts[0].oid, 1);
    cr_assert_eq(v.res.conflicts[0].committed, ta);
    cr_assert_eq(v.res.conflicts[0].expected, t0);
    store_txn_abort(tb_txn);
    store_txn_free(tb_txn);
    store_txn_free(ta_txn);
    zbuf d = ZBUF_INIT;
    uint64_t serial;
    cr_assert_eq(load_current(b, 1, &d, &serial), 0);
    cr_assert_eq(serial, ta);
    cr_assert_eq(d.len, 6);
    cr_assert_eq(memcmp(d.data, "from a", 6), 0);
    zbuf_free(&d);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_shared, disjoint_oids_vote_and_finish_side_by_side)
{
    char *uri = tu_pg_newdb(NULL);
    /* a vote that had to wait for the other's would fail at once */
    store *a = open_shared(uri, 1), *b = open_shared(uri, 1);
    zerr e;
    store_txn *ta_txn;
    uint64_t ta, tb;
    cr_assert_eq(begin_store(a, 1, 0, "a", &ta_txn, &e), 0);
    cr_assert_eq(store_txn_vote(ta_txn, NULL, &e), 0, "%s", e.msg);
    /* A holds its vote open while B votes and finishes another oid */
    for (uint64_t oid = 2; oid < 5; oid++)
        cr_assert_eq(pgs_commit(b, oid, 0, "b", &tb, &e), 0, "oid %llu: %s",
                     (unsigned long long)oid, e.msg);
    cr_assert_eq(store_txn_finish(ta_txn, &ta, &e), 0, "%s", e.msg);
    cr_assert_gt(ta, tb, "A's tid is chosen at its commit, after B's");
    store_txn_free(ta_txn);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

/* ---- a process killed between vote and finish -------------------------------------------- */

Test(pg_shared, kill_9_between_vote_and_finish_leaves_the_other_store_nothing_locked,
     .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    store *s = open_shared(uri, 30000);   /* it stays open beside the child */
    FILE *out;
    pid_t pid = pg_child_spawn(uri, "vote", NULL, &out);
    char line[16] = "";
    cr_assert(fgets(line, sizeof line, out), "the child did not vote");
    cr_assert_str_eq(line, "voted\n");
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    fclose(out);
    /* the child's session ends and rolls back: its oid lock goes with it
     * (the vote below waits for that, up to its lock timeout) */
    zerr e;
    uint64_t tid, serial;
    cr_assert_eq(pgs_commit(s, 1, 0, "parent", &tid, &e), 0, "oid 1 is still locked: %s",
                 e.msg);
    zbuf d = ZBUF_INIT;
    cr_assert_eq(load_current(s, 1, &d, &serial), 0);
    cr_assert_eq(serial, tid);
    cr_assert_eq(d.len, 6, "the voted transaction left data behind");
    cr_assert_eq(load_current(s, 2, &d, &serial), ZE_NOTFOUND);
    cr_assert_eq(tu_pg_num(uri, "SELECT count(*) FROM zeolite.txns"), 1);
    cr_assert_eq(tu_pg_num(uri, "SELECT count(*) FROM zeolite.records"), 1);
    cr_assert_eq(tu_pg_num(uri, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                              "AND objsubid = 1"), 0, "an oid lock is left");
    zbuf_free(&d);
    store_close(s);
    tu_pg_dropdb(uri);
    free(uri);
}

/* ---- one pack at a time ----------------------------------------------------------------- */

typedef struct pack_args {
    store *s;
    int rc;
    zerr e;
} pack_args;

static void *pack_thread(void *arg)
{
    pack_args *a = arg;
    a->rc = store_pack(a->s, (double)time(NULL) + 3600, 1, NULL, &a->e);
    return NULL;
}

Test(pg_shared, a_second_pack_is_refused_while_one_runs_and_commits_go_on, .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    store *a = open_shared(uri, 60000), *b = open_shared(uri, 5000);
    zerr e;
    uint64_t t1, t2, t3, serial;
    cr_assert_eq(pgs_commit(a, 0, 0, "root", &t1, &e), 0, "%s", e.msg);
    cr_assert_eq(pgs_commit(a, 0, t1, "root2", &t2, &e), 0, "%s", e.msg);
    /* hold the row pack writes last, so that A's pack stays running */
    PGconn *hold = PQconnectdb(uri);
    cr_assert_eq(PQstatus(hold), CONNECTION_OK);
    PGresult *r = PQexec(hold, "BEGIN; SELECT 1 FROM zeolite.meta WHERE name = 'pack_tid' "
                               "FOR UPDATE");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(hold));
    PQclear(r);
    pack_args pa = {.s = a};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, pack_thread, &pa), 0);
    tu_pg_wait_lock(uri, "%pack_tid%");
    /* B's pack is refused, saying why; B commits and loads meanwhile */
    cr_assert_eq(store_pack(b, (double)time(NULL) + 3600, 1, NULL, &e), ZE_BUSY);
    cr_assert(strstr(e.msg, "another pack"), "%s", e.msg);
    cr_assert_eq(pgs_commit(b, 0, t2, "root3", &t3, &e), 0, "%s", e.msg);
    zbuf d = ZBUF_INIT;
    cr_assert_eq(load_current(b, 0, &d, &serial), 0);
    cr_assert_eq(serial, t3);
    r = PQexec(hold, "ROLLBACK");
    PQclear(r);
    PQfinish(hold);
    pthread_join(th, NULL);
    cr_assert_eq(pa.rc, 0, "%s", pa.e.msg);
    /* the pack is over: B may pack now */
    cr_assert_eq(store_pack(b, (double)time(NULL) + 3600, 1, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(load_current(a, 0, &d, &serial), 0);
    cr_assert_eq(serial, t3);
    zbuf_free(&d);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_shared, a_blob_committed_through_one_store_loads_through_the_other)
{
    char *uri = tu_pg_newdb(NULL);
    store *a = open_shared(uri, 0), *b = open_shared(uri, 0);
    char path[1024];
    int fd;
    zerr e;
    cr_assert_eq(store_blob_tmpfile(a, path, sizeof path, &fd, &e), 0, "%s", e.msg);
    cr_assert_eq(write(fd, "blob bytes", 10), 10);
    close(fd);
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    uint64_t tid;
    cr_assert_eq(store_txn_begin(a, &m, &t, &e), 0);
    cr_assert_eq(store_txn_store_blob(t, 7, 0, "rec", 3, path, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "%s", e.msg);
    store_txn_free(t);
    cr_assert_neq(strcmp(store_blob_dir(a), store_blob_dir(b)), 0);
    store_reader *r;
    char got[32] = "";
    cr_assert_eq(store_reader_new(b, &r, &e), 0);
    cr_assert_eq(store_open_blob(r, 7, tid, path, sizeof path, &fd, &e), 0, "%s", e.msg);
    cr_assert_eq(read(fd, got, sizeof got), 10);
    close(fd);
    cr_assert_eq(memcmp(got, "blob bytes", 10), 0);
    store_reader_free(r);
    store_close(a);
    store_close(b);
    tu_pg_dropdb(uri);
    free(uri);
}
