/* test_pg_faults.c: the PostgreSQL backend when things go wrong: the server
 * stopped under an open store and started again, a committing process
 * killed between vote and finish (a spawned pg_child), a full disk. The first and the last run
 * clusters of their own (test/pg/cluster.sh), so the shared one stays up. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "child.h"
#include "pgtest.h"
#include "testutil.h"

static char cluster[64];

static void private_cluster(long fsize_kb)
{
    snprintf(cluster, sizeof cluster, "/tmp/zlpgf-%d", (int)getpid());
    cr_assert_eq(tu_pg_cluster("start", cluster, fsize_kb), 0, "start %s", cluster);
}

static void cluster_down(void)
{
    if (*cluster)
        tu_pg_cluster("stop", cluster, 0);
    *cluster = '\0';
}

TestSuite(pg_faults, .fini = cluster_down);

static store *open_store(const char *uri, double retry, int lock_ms)
{
    store *s;
    zerr e;
    store_options opt = {.create = 1, .retry_seconds = retry, .lock_timeout_ms = lock_ms};
    cr_assert_eq(store_open(&s, uri, &opt, &e), 0, "open: %s", e.msg);
    return s;
}

/* One transaction storing (oid, serial, len bytes of text repeated): the
 * rc of vote or finish, *tid on success. */
static int commit(store *s, uint64_t oid, uint64_t serial, const char *text, size_t len,
                  uint64_t *tid, zerr *e)
{
    store_txn_meta m = {.status = ' '};
    store_txn *t;
    char *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = text[i % strlen(text)];
    int rc = store_txn_begin(s, &m, &t, e);
    if (!rc)
        rc = store_txn_store(t, oid, serial, buf, len, e);
    if (!rc)
        rc = store_txn_vote(t, NULL, e);
    if (!rc)
        rc = store_txn_finish(t, tid, e);
    if (rc)
        store_txn_abort(t);
    store_txn_free(t);
    free(buf);
    return rc;
}

static int load(store_reader *r, uint64_t oid, zbuf *data, uint64_t *start)
{
    uint64_t end;
    zerr e;
    store_reader_refresh(r, &e);
    return store_load_before(r, oid, STORE_TID_MAX, data, start, &end, &e);
}

Test(pg_faults, a_stopped_server_fails_commits_cleanly_and_the_store_reconnects, .timeout = 240)
{
    private_cluster(0);
    char *uri = tu_pg_newdb(cluster);
    store *s = open_store(uri, 2.0, 2000);
    store_reader *r;
    zerr e;
    uint64_t t1, t2, start;
    zbuf d = ZBUF_INIT;
    cr_assert_eq(store_reader_new(s, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(commit(s, 1, 0, "before", 6, &t1, &e), 0, "%s", e.msg);

    cr_assert_eq(tu_pg_cluster("halt", cluster, 0), 0);
    /* a commit during the outage fails, saying why, and leaves nothing */
    int rc = commit(s, 2, 0, "during", 6, &t2, &e);
    cr_assert_eq(rc, ZE_IO, "%s: %s", zerr_name(rc), e.msg);
    cr_assert(strstr(e.msg, "PostgreSQL"), "%s", e.msg);
    /* a read retries for a while, then fails */
    cr_assert_eq(store_load_before(r, 1, STORE_TID_MAX, &d, &start, &t2, &e), ZE_IO);

    cr_assert_eq(tu_pg_cluster("resume", cluster, 0), 0);
    /* the store reconnects by itself; the acknowledged commit is there */
    cr_assert_eq(load(r, 1, &d, &start), 0);
    cr_assert_eq(start, t1);
    cr_assert_eq(d.len, 6);
    cr_assert_eq(load(r, 2, &d, &start), ZE_NOTFOUND);
    cr_assert_eq(commit(s, 2, 0, "after", 5, &t2, &e), 0, "%s", e.msg);
    cr_assert_gt(t2, t1);
    /* the database lock was taken again: a second writer is refused */
    store *s2;
    store_options w = {0};
    cr_assert_eq(store_open(&s2, uri, &w, &e), ZE_BUSY, "%s", e.msg);
    zbuf_free(&d);
    store_reader_free(r);
    store_close(s);
    free(uri);
}

Test(pg_faults, kill_9_between_vote_and_finish_leaves_no_lock_and_nothing_written,
     .timeout = 120)
{
    char *uri = tu_pg_newdb(NULL);
    store *s = open_store(uri, 2.0, 2000);
    store_close(s);   /* the schema is made; the child takes the database lock */
    FILE *out;
    pid_t pid = pg_child_spawn(uri, "vote", "alone", &out);
    char line[16] = "";
    cr_assert(fgets(line, sizeof line, out) && !strcmp(line, "voted\n"),
              "the child did not vote");
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    fclose(out);
    /* its sessions end with it: the database lock goes, then the oid's */
    zerr e;
    store_options opt = {.lock_timeout_ms = 5000};
    int rc = ZE_BUSY;
    for (int i = 0; i < 100 && rc == ZE_BUSY; i++) {
        rc = store_open(&s, uri, &opt, &e);
        if (rc == ZE_BUSY)
            usleep(100000);
    }
    cr_assert_eq(rc, 0, "%s", e.msg);
    uint64_t tid, start;
    cr_assert_eq(commit(s, 1, 0, "parent", 6, &tid, &e), 0, "oid 1 is still locked: %s",
                 e.msg);
    store_reader *r;
    zbuf d = ZBUF_INIT;
    cr_assert_eq(store_reader_new(s, &r, &e), 0);
    cr_assert_eq(load(r, 1, &d, &start), 0);
    cr_assert_eq(d.len, 6, "the voted transaction left data behind");
    char *n = tu_pg_exec(uri, "SELECT count(*) FROM zeolite.txns", e.msg, sizeof e.msg);
    cr_assert_str_eq(n, "1");
    free(n);
    zbuf_free(&d);
    store_reader_free(r);
    store_close(s);
    tu_pg_dropdb(uri);
    free(uri);
}

Test(pg_faults, a_full_disk_fails_the_commit_and_nothing_else, .timeout = 240)
{
    private_cluster(65536);   /* relation files stop at 64 MB; WAL segments are 16 MB */
    char *uri = tu_pg_newdb(cluster);
    store *s = open_store(uri, 2.0, 2000);
    store_reader *r;
    zerr e;
    uint64_t tids[200], tid = 0, start;
    int n = 0, rc = 0;
    cr_assert_eq(store_reader_new(s, &r, &e), 0);
    /* pseudo-random text (PostgreSQL stores pickles uncompressed anyway) */
    char text[997];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = (char)('a' + (i * 7919 + i / 13) % 26);
    text[sizeof text - 1] = '\0';
    for (n = 0; n < 200; n++) {
        uint64_t serial = n ? tids[n - 1] : 0;
        if ((rc = commit(s, 1, serial, text, 1 << 20, &tid, &e)))
            break;
        tids[n] = tid;
    }
    cr_assert_eq(rc, ZE_FULL, "after %d commits: %s: %s", n, zerr_name(rc), e.msg);
    cr_assert(strstr(e.msg, "no room"), "%s", e.msg);
    cr_assert_gt(n, 10);
    /* everything acknowledged is there, and the store goes on serving */
    zbuf d = ZBUF_INIT;
    cr_assert_eq(load(r, 1, &d, &start), 0);
    cr_assert_eq(start, tids[n - 1]);
    cr_assert_eq(d.len, 1u << 20);
    cr_assert_eq(store_last_tid(s), tids[n - 1]);
    uint64_t oid;
    cr_assert_eq(store_new_oids(s, 1, &oid, &e), 0, "%s", e.msg);
    /* a small commit fits, or fails the same way: never anything else */
    rc = commit(s, 2, 0, "small", 5, &tid, &e);
    cr_assert(rc == 0 || rc == ZE_FULL, "%s: %s", zerr_name(rc), e.msg);
    cr_assert_eq(load(r, 1, &d, &start), 0);
    cr_assert_eq(start, tids[n - 1]);
    zbuf_free(&d);
    store_reader_free(r);
    store_close(s);
    free(uri);
}
