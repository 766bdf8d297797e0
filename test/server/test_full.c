/* A full disk: the server runs with a small file-size limit (RLIMIT_FSIZE,
 * the one way to fill a disk that needs no mount), so its database cannot
 * grow. A commit that does not fit fails with a clear error; the server and
 * its other clients go on; nothing that was acknowledged is lost. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "helpers.h"
#include "testutil.h"

#define LIMIT (2u << 20)      /* bytes any one file of the server may reach */
#define RECORD (48u << 10)    /* each commit stores one record this big */
#define MAX_COMMITS 200       /* LIMIT / RECORD is about 40 */

static th_server srv;

/* th_start with the file-size limit in force for the child only. */
static int start_limited(void)
{
    struct rlimit old, lim;
    if (getrlimit(RLIMIT_FSIZE, &old) < 0)
        return -1;
    lim = old;
    lim.rlim_cur = LIMIT;
    if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
        return -1;
    int rc = th_start(&srv, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    return rc;
}

static void stop(void)
{
    th_free(&srv);
}

TestSuite(server_full, .fini = stop, .timeout = 60);

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

/* Commit oid with a RECORD-sized value starting with its number; the tid,
 * or 0 with *err_class set when tpc_finish failed. */
static uint64_t commit_big(tc *c, uint64_t oid, char *data, const char **err_class)
{
    snprintf(data, 32, "%llu", (unsigned long long)oid);
    data[strlen(data)] = '-';
    tc_begin_store(c, (int64_t)oid + 1, oid, 0, data);
    int64_t flag;
    zv *v = tc_call(c, "vote", tv_tuple(c->a, 1, tv_int(c->a, (int64_t)oid + 1)), &flag);
    cr_assert(v && flag == 0 && v->u.seq.n == 0, "the vote of oid %llu failed",
              (unsigned long long)oid);
    zv *t = tc_call(c, "tpc_finish", tv_tuple(c->a, 1, tv_int(c->a, (int64_t)oid + 1)), &flag);
    cr_assert(t, "no answer to tpc_finish: the server died?");
    if (flag == 0)
        return tv_u64(t);
    *err_class = tv_error_class(t);
    return 0;
}

Test(server_full, a_commit_that_does_not_fit_fails_and_nothing_acknowledged_is_lost)
{
    cr_assert_eq(start_limited(), 0, "server did not start");
    tc a, b;
    client(&a);
    client(&b);
    char *data = malloc(RECORD + 1);
    cr_assert(data);
    memset(data, 'x', RECORD);
    data[RECORD] = '\0';
    uint64_t tids[MAX_COMMITS];
    const char *err_class = NULL;
    size_t n = 0;
    while (n < MAX_COMMITS && (tids[n] = commit_big(&a, n, data, &err_class)))
        tc_reset(&a), n++;
    cr_assert_lt(n, MAX_COMMITS, "the file-size limit never stopped a commit");
    cr_assert_gt(n, 0, "not even one commit fitted");
    cr_expect_str_eq(err_class, "ZODB.POSException.StorageError");
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "the file size limit"), "the log names the cause");
    free(log);

    /* The server goes on: another client loads what was acknowledged, and a
     * conflict that names the last good tid is answered (it must not wait
     * for the failed commit to become visible). */
    int64_t flag;
    zv *r = tc_load_current(&b, n - 1, &flag);
    cr_assert(r && flag == 0);
    cr_expect_eq(tv_u64(r->u.seq.items[1]), tids[n - 1]);
    r = tc_load_current(&b, n, &flag);
    cr_expect_eq(flag, 2, "the failed commit left nothing visible");
    tc_begin_store(&b, 999, 0, 0, "stale");
    zv *v = tc_call(&b, "vote", tv_tuple(b.a, 1, tv_int(b.a, 999)), &flag);
    cr_assert(v, "the conflict reply never came");
    cr_expect(flag == 0 && v->u.seq.n == 1, "a conflict with oid 0's commit");
    tc_call(&b, "tpc_abort", tv_tuple(b.a, 1, tv_int(b.a, 999)), &flag);
    tc_close(&a);
    tc_close(&b);

    /* With room again, every acknowledged commit is there and commits work. */
    cr_assert_eq(th_stop(&srv), 0, "the server did not stop cleanly");
    char addr[64], db[1024];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    snprintf(db, sizeof db, "%s/db", srv.dir);
    const char *args[] = {"-a", addr, "-f", db, "--no-sync", NULL};
    cr_assert_eq(th_spawn(&srv, args, NULL), 0, "no restart after the full disk");
    client(&a);
    for (size_t i = 0; i < n; i++) {
        r = tc_load_current(&a, i, &flag);
        cr_assert(r && flag == 0, "acknowledged commit %zu lost", i);
        cr_expect_eq(tv_u64(r->u.seq.items[1]), tids[i]);
        cr_expect_eq(r->u.seq.items[0]->u.s.len, RECORD);
        tc_reset(&a);
    }
    cr_expect_neq(commit_big(&a, n, data, &err_class), 0, "no commit after the restart");
    tc_close(&a);
    free(data);
}

Test(server_full, a_blob_that_does_not_fit_fails_the_vote_not_the_connection)
{
    cr_assert_eq(start_limited(), 0, "server did not start");
    tc a;
    client(&a);
    size_t chunk_len = LIMIT / 2;
    char *chunk = malloc(chunk_len + 1);
    cr_assert(chunk);
    memset(chunk, 'b', chunk_len);
    chunk[chunk_len] = '\0';
    zv_arena *ar = a.a;
    zv *id = tv_int(ar, 1);
    tc_send(&a, NULL, 1, "tpc_begin",
            tv_tuple(ar, 4, id, tv_bytes(ar, "u"), tv_bytes(ar, "d"), tv_dict0(ar)));
    tc_send(&a, NULL, 1, "storeBlobStart", zv_tuple(ar, 0));
    for (int i = 0; i < 3; i++)   /* 1.5 times the limit */
        tc_send(&a, NULL, 1, "storeBlobChunk", tv_tuple(ar, 1, tv_bytes(ar, chunk)));
    tc_send(&a, NULL, 1, "storeBlobEnd",
            tv_tuple(ar, 4, tv_oid(ar, 1), tv_oid(ar, 0), tv_bytes(ar, "blob record"), id));
    int64_t flag;
    zv *v = tc_call(&a, "vote", tv_tuple(ar, 1, id), &flag);
    cr_assert(v, "no vote reply: the connection was closed");
    cr_expect_eq(flag, 2);
    cr_expect_str_eq(tv_error_class(v), "ZODB.POSException.StorageError");
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "cannot write the blob file"), "the log names the blob");
    free(log);
    free(chunk);
    /* The same connection commits again; the failed upload left no file. */
    tc_reset(&a);
    cr_expect_neq(tc_commit_one(&a, 2, 1, 0, "small"), 0);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s/db/blobs/tmp", srv.dir);
    cr_expect_eq(tu_count_entries(tmp), 0, "the partial blob file was removed");
    tc_close(&a);
}
