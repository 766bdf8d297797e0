#include "storetest.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "pgtest.h"

int stt_pg(void)
{
    const char *b = getenv("ZEOLITE_STORE_BACKEND");
    return b && !strcmp(b, "postgresql");
}

char *stt_spec_new(const char *tag)
{
    return stt_pg() ? tu_pg_newdb(NULL) : tu_tmpdir(tag);
}

void stt_spec_remove(const char *spec)
{
    if (store_spec_is_postgresql(spec))
        tu_pg_dropdb(spec);
    else
        tu_rmrf(spec);
}

char *stt_spec_shown(const char *spec)
{
    const char *db = strstr(spec, ":///"), *end = db ? strchr(db + 4, '?') : NULL;
    if (!store_spec_is_postgresql(spec) || !db || !end)
        return strdup(spec);
    size_t n = (size_t)(end - db - 4) + sizeof "dbname=";
    char *out = malloc(n);
    cr_assert(out);
    snprintf(out, n, "dbname=%s", db + 4);
    return out;
}

#include "store/store_internal.h"

void stt_open(st_fixture *f, const store_options *opt)
{
    store_options def = {.create = 1, .no_sync = 1};
    f->dir = stt_spec_new("store");
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
    stt_spec_remove(f->dir);
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

/* ---- a gate that holds the writer thread -------------------------------- */

static int wait_gate(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    stt_gate *g = ud;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void *gate_thread(void *arg)
{
    stt_gate *g = arg;
    store__write(g->s, wait_gate, g, NULL);
    return NULL;
}

void stt_gate_close(stt_gate *g, store *s)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = g->entered = 0;
    g->s = s;
    pthread_create(&g->th, NULL, gate_thread, g);
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

void stt_gate_open(stt_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
}

/* ---- async completion ---------------------------------------------------- */

void stt_on_commit(store_txn *t, int rc, uint64_t tid, const zerr *err, void *ud)
{
    stt_done_flag *d = ud;
    pthread_mutex_lock(&d->mu);
    d->done = 1;
    d->rc = rc;
    d->tid = tid;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

int stt_wait_done(stt_done_flag *d)
{
    pthread_mutex_lock(&d->mu);
    while (!d->done)
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
    return d->rc;
}

void stt_done_init(stt_done_flag *d)
{
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->done = d->rc = 0;
    d->tid = 0;
}

void stt_blob_tmp(store *s, char *buf, size_t cap, const char *text)
{
    zerr e;
    cr_assert_eq(store_blob_tmpname(s, buf, cap, &e), 0, "%s", e.msg);
    cr_assert_eq(tu_write_file(buf, text, strlen(text)), 0);
}

uint64_t stt_commit_blob(store *s, uint64_t oid, uint64_t serial, const char *text)
{
    char tmp[512];
    stt_blob_tmp(s, tmp, sizeof tmp, text);
    store_txn *t = stt_begin(s);
    zerr e;
    cr_assert_eq(store_txn_store_blob(t, oid, serial, "B", 1, tmp, &e), 0, "%s", e.msg);
    uint64_t tid = stt_finish(t);
    cr_assert_neq(access(tmp, F_OK), 0);   /* moved into place */
    return tid;
}

void stt_expect_file(const char *path, const char *text)
{
    size_t n;
    uint8_t *p = tu_read_file(path, &n);
    cr_assert(p, "missing %s", path);
    cr_assert_eq(n, strlen(text));
    cr_assert_eq(memcmp(p, text, n), 0);
    free(p);
}
