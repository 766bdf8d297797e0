/* ops_util.c: helpers of the store operations suites. */
#include "ops_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/ztid.h"
#include "storetest.h"
#include "testutil.h"

static void put_oid(zbuf *b, uint64_t oid)
{
    uint8_t p[10] = {'C', 8};
    zbe64_put(p + 2, oid);
    zbuf_append(b, p, sizeof p);
}

static void put_str(zbuf *b, const char *s)
{
    size_t n = strlen(s);   /* BINUNICODE: little-endian length */
    uint8_t hdr[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    zbuf_append(b, hdr, sizeof hdr);
    zbuf_append(b, s, n);
}

/* The persistent id of one reference, then BINPERSID. */
static void put_ref(zbuf *b, const test_ref *r)
{
    switch (r->form) {
    case REF_STRONG:          /* (oid, <class memo 0>) */
        put_oid(b, r->oid);
        zbuf_append(b, "h\x00\x86", 3);
        break;
    case REF_BARE:
        put_oid(b, r->oid);
        break;
    case REF_WEAK:            /* ['w', (oid,)] */
        zbuf_append(b, "](", 2);
        put_str(b, "w");
        put_oid(b, r->oid);
        zbuf_append(b, "\x85" "e", 2);
        break;
    case REF_XDB:             /* ['m', ('other', oid, <class>)] */
        zbuf_append(b, "](", 2);
        put_str(b, "m");
        put_str(b, "other");
        put_oid(b, r->oid);
        zbuf_append(b, "h\x00\x87" "e", 4);
        break;
    }
    zbuf_append_byte(b, 'Q');
}

void ops_record(zbuf *out, const test_ref *refs, int nrefs, const char *payload)
{
    zbuf_reset(out);
    zbuf_append(out, "\x80\x03" "ctest\nObj\nq\x00.", 15);
    zbuf_append(out, "\x80\x03](", 4);
    for (int i = 0; i < nrefs; i++)
        put_ref(out, &refs[i]);
    put_str(out, payload);
    zbuf_append(out, "e.", 2);
}

store *ops_open(char **dir, int durable)
{
    store_options opt = {.create = 1, .exclusive = 1, .no_sync = !durable};
    store *s;
    zerr err;
    *dir = stt_spec_new("store_ops");
    cr_assert_eq(store_open(&s, *dir, &opt, &err), 0, "open: %s", err.msg);
    return s;
}

store *ops_reopen(const char *dir)
{
    store_options opt = {.exclusive = 1};
    store *s;
    zerr err;
    cr_assert_eq(store_open(&s, dir, &opt, &err), 0, "reopen: %s", err.msg);
    return s;
}

uint64_t ops_new_oid(store *s)
{
    uint64_t oid;
    zerr err;
    cr_assert_eq(store_new_oids(s, 1, &oid, &err), 0, "new_oids: %s", err.msg);
    return oid;
}

static store_txn *begin(store *s)
{
    store_txn_meta meta = {.user = (const uint8_t *)"test", .user_len = 4, .status = ' '};
    store_txn *t;
    zerr err;
    cr_assert_eq(store_txn_begin(s, &meta, &t, &err), 0, "begin: %s", err.msg);
    return t;
}

static uint64_t finish(store_txn *t)
{
    store_vote_result res;
    uint64_t tid;
    zerr err;
    cr_assert_eq(store_txn_vote(t, &res, &err), 0, "vote: %s", err.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &err), 0, "finish: %s", err.msg);
    store_txn_free(t);
    return tid;
}

uint64_t ops_commit(store *s, int n, const uint64_t *oids, const uint64_t *serials,
                    const zbuf *data)
{
    store_txn *t = begin(s);
    zerr err;
    for (int i = 0; i < n; i++)
        cr_assert_eq(store_txn_store(t, oids[i], serials[i], data[i].data, data[i].len, &err),
                     0, "store: %s", err.msg);
    return finish(t);
}

uint64_t ops_undo(store *s, uint64_t undo_tid)
{
    store_txn *t = begin(s);
    zerr err;
    cr_assert_eq(store_txn_undo(t, undo_tid, &err), 0, "undo: %s", err.msg);
    return finish(t);
}

uint64_t ops_put(store *s, uint64_t oid, uint64_t serial, const test_ref *refs, int nrefs,
                 const char *payload)
{
    zbuf b = ZBUF_INIT;
    ops_record(&b, refs, nrefs, payload);
    uint64_t tid = ops_commit(s, 1, &oid, &serial, &b);
    zbuf_free(&b);
    return tid;
}

uint64_t ops_put_blob(store *s, uint64_t oid, uint64_t serial, const char *content)
{
    char path[4096];
    zbuf b = ZBUF_INIT;
    zerr err;
    cr_assert_eq(store_blob_tmpname(s, path, sizeof path, &err), 0, "tmpname: %s", err.msg);
    cr_assert_eq(tu_write_file(path, content, strlen(content)), 0);
    ops_record(&b, NULL, 0, "blob");
    store_txn *t = begin(s);
    cr_assert_eq(store_txn_store_blob(t, oid, serial, b.data, b.len, path, &err), 0,
                 "store_blob: %s", err.msg);
    zbuf_free(&b);
    return finish(t);
}

int ops_load(store *s, uint64_t oid, zbuf *data, uint64_t *tid)
{
    store_reader *r;
    uint64_t end;
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    int rc = store_load_before(r, oid, STORE_TID_MAX, data, tid, &end, NULL);
    store_reader_free(r);
    if (rc)
        zbuf_reset(data);
    return rc;
}

int ops_load_serial(store *s, uint64_t oid, uint64_t serial, zbuf *data)
{
    store_reader *r;
    cr_assert_eq(store_reader_new(s, &r, NULL), 0);
    int rc = store_load_serial(r, oid, serial, data, NULL);
    store_reader_free(r);
    if (rc)
        zbuf_reset(data);
    return rc;
}

double ops_time_between(uint64_t a, uint64_t b)
{
    double ta = ztid_time(a), tb = ztid_time(b);
    cr_assert_lt(ta, tb, "commits too close together to split by time");
    return (ta + tb) / 2;
}

void ops_pause(void)
{
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int ops_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void *ops_commit_loop(void *arg)
{
    ops_committer *c = arg;
    char text[32];
    for (int i = 0; i < c->n; i++) {
        snprintf(text, sizeof text, "update %d", i);
        c->serial = ops_put(c->s, c->oid, c->serial, NULL, 0, text);
    }
    return NULL;
}
