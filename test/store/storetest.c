#include "storetest.h"

#include <stdlib.h>

void stt_open(st_fixture *f, const store_options *opt)
{
    store_options def = {.create = 1, .no_sync = 1};
    f->dir = tu_tmpdir("store");
    cr_assert(f->dir);
    zerr e;
    int rc = store_open(&f->s, f->dir, opt ? opt : &def, &e);
    cr_assert_eq(rc, 0, "open: %s", e.msg);
    cr_assert_eq(store_reader_new(f->s, &f->r, &e), 0, "reader: %s", e.msg);
}

void stt_close(st_fixture *f)
{
    store_reader_free(f->r);
    store_close(f->s);
    f->r = NULL;
    f->s = NULL;
}

void stt_done(st_fixture *f)
{
    stt_close(f);
    tu_rmrf(f->dir);
    free(f->dir);
    f->dir = NULL;
}

void stt_reopen(st_fixture *f, const store_options *opt)
{
    store_options def = {.no_sync = 1};
    zerr e;
    int rc = store_open(&f->s, f->dir, opt ? opt : &def, &e);
    cr_assert_eq(rc, 0, "reopen: %s", e.msg);
    cr_assert_eq(store_reader_new(f->s, &f->r, &e), 0, "reader: %s", e.msg);
}

store_txn *stt_begin(store *s)
{
    store_txn_meta m = {(const uint8_t *)"u", 1, (const uint8_t *)"d", 1, NULL, 0, ' ', 0};
    store_txn *t;
    zerr e;
    cr_assert_eq(store_txn_begin(s, &m, &t, &e), 0, "begin: %s", e.msg);
    return t;
}

uint64_t stt_finish(store_txn *t)
{
    zerr e;
    store_vote_result res;
    uint64_t tid = 0;
    cr_assert_eq(store_txn_vote(t, &res, &e), 0, "vote: %s", e.msg);
    cr_assert_eq(store_txn_finish(t, &tid, &e), 0, "finish: %s", e.msg);
    store_txn_free(t);
    return tid;
}

uint64_t stt_commit1(store *s, uint64_t oid, uint64_t serial, const char *text)
{
    store_txn *t = stt_begin(s);
    zerr e;
    cr_assert_eq(store_txn_store(t, oid, serial, text, strlen(text), &e), 0, "store: %s", e.msg);
    return stt_finish(t);
}

uint64_t stt_commit_n(store *s, int n, const uint64_t *oids, const uint64_t *serials,
                      const char *const *texts)
{
    store_txn *t = stt_begin(s);
    zerr e;
    for (int i = 0; i < n; i++)
        cr_assert_eq(store_txn_store(t, oids[i], serials[i], texts[i], strlen(texts[i]), &e),
                     0, "store: %s", e.msg);
    return stt_finish(t);
}

int stt_load(store_reader *r, uint64_t oid, uint64_t before, char *out, size_t cap,
             uint64_t *start, uint64_t *end)
{
    zbuf b = ZBUF_INIT;
    uint64_t s0, e0;
    zerr e;
    store_reader_refresh(r, &e);
    int rc = store_load_before(r, oid, before, &b, start ? start : &s0, end ? end : &e0, &e);
    if (out && cap) {
        size_t n = rc == 0 ? (b.len < cap - 1 ? b.len : cap - 1) : 0;
        if (n)
            memcpy(out, b.data, n);
        out[n] = '\0';
    }
    zbuf_free(&b);
    return rc;
}
