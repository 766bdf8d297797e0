/* The records index (index.h): reads answer the same whether a commit's
 * index entries are written yet or still in memory, after a reopen too, and
 * a reader kept open holds only the entries its own snapshot needs. */
#include "storetest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store_internal.h"

enum { NT = 8, NOID = 9 };

typedef struct hist {
    st_fixture f;
    uint64_t tid[NT];     /* commit i's tid */
    int n;
} hist;

static void open_hist(hist *h, uint32_t batch)
{
    store_options opt = {.create = 1, .no_sync = 1, .index_batch = batch};
    memset(h, 0, sizeof *h);
    stt_open(&h->f, &opt);
}

static uint64_t cur(hist *h, uint64_t oid)
{
    uint64_t tid = 0;
    store_reader_refresh(h->f.r, NULL);
    store_current_tid(h->f.r, oid, &tid, NULL);
    return tid;
}

static void restore(hist *h, uint64_t oid, const char *data, int prev_zero)
{
    store_txn *t = stt_begin(h->f.s);
    store_record rec = {.oid = oid, .kind = STORE_REC_DATA,
                        .data = {(const uint8_t *)data, strlen(data)}, .prev_zero = prev_zero};
    zerr e;
    cr_assert_eq(store_txn_restore_record(t, &rec, NULL, &e), 0, "%s", e.msg);
    h->tid[h->n++] = stt_finish(t);
}

/* The same history in any store: new objects, updates, a deletion, two
 * records of one oid in a transaction, an undo (back-pointers and a
 * deletion), imported records with prev = 0 (hidden older ones). */
static void build(hist *h)
{
    zerr e;
    h->tid[h->n++] = stt_commit_n(h->f.s, 5, (uint64_t[]){1, 2, 3, 4, 5},
                                  (uint64_t[]){0, 0, 0, 0, 0},
                                  (const char *const[]){"a1", "a2", "a3", "a4", "a5"});
    store_txn *t = stt_begin(h->f.s);
    cr_assert_eq(store_txn_store(t, 1, cur(h, 1), "b1", 2, &e), 0);
    cr_assert_eq(store_txn_store(t, 2, cur(h, 2), "b2", 2, &e), 0);
    cr_assert_eq(store_txn_delete(t, 3, cur(h, 3), &e), 0);
    h->tid[h->n++] = stt_finish(t);
    h->tid[h->n++] = stt_commit_n(h->f.s, 3, (uint64_t[]){4, 6, 4},
                                  (uint64_t[]){cur(h, 4), 0, cur(h, 4)},
                                  (const char *const[]){"c4", "c6", "c4'"});
    t = stt_begin(h->f.s);
    cr_assert_eq(store_txn_undo(t, h->tid[1], &e), 0);
    cr_assert_eq(store_txn_vote(t, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(store_txn_finish(t, &h->tid[h->n++], &e), 0, "%s", e.msg);
    store_txn_free(t);
    restore(h, 7, "d7", 0);
    restore(h, 7, "e7", 1);
    h->tid[h->n++] = stt_commit1(h->f.s, 1, cur(h, 1), "f1");
    h->tid[h->n++] = stt_commit_n(h->f.s, 2, (uint64_t[]){8, 2}, (uint64_t[]){0, cur(h, 2)},
                                  (const char *const[]){"g8", "g2"});
}

/* A tid as "T<commit number>" (or its value when it is none of them). */
static const char *name(const hist *h, uint64_t tid, char *buf)
{
    for (int i = 0; i < h->n; i++)
        if (h->tid[i] == tid) {
            sprintf(buf, "T%d", i);
            return buf;
        }
    sprintf(buf, tid ? "?%llx" : "0", (unsigned long long)tid);
    return buf;
}

static void say(zbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(zbuf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cr_assert_eq(zbuf_append(out, line, (size_t)n), 0);
}

typedef struct hist_out {
    const hist *h;
    zbuf *out;
} hist_out;

static int on_txn(const store_txn_info *info, void *ud)
{
    hist_out *o = ud;
    char b[32];
    say(o->out, " %s/%llu", name(o->h, info->tid, b), (unsigned long long)info->size);
    return 0;
}

static int on_oid(uint64_t oid, void *ud)
{
    say(ud, " %llu", (unsigned long long)oid);
    return 0;
}

static void dump_loads(const hist *h, store_reader *r, zbuf *out)
{
    zbuf d = ZBUF_INIT;
    char b1[32], b2[32];
    for (uint64_t oid = 1; oid <= NOID; oid++)
        for (int i = 0; i <= h->n; i++) {
            uint64_t before = i < h->n ? h->tid[i] : STORE_TID_MAX, start = 0, end = 0;
            int rc = store_load_before(r, oid, before, &d, &start, &end, NULL);
            say(out, "load %llu<%s: %d %.*s %s %s\n", (unsigned long long)oid,
                name(h, before, b1), rc, rc ? 0 : (int)d.len, (const char *)d.data,
                rc ? "-" : name(h, start, b2), rc ? "-" : name(h, end, b1));
            if (i < h->n) {
                rc = store_load_serial(r, oid, h->tid[i], &d, NULL);
                say(out, "serial %llu@T%d: %d %.*s\n", (unsigned long long)oid, i, rc,
                    rc ? 0 : (int)d.len, (const char *)d.data);
            }
        }
    zbuf_free(&d);
}

static void dump_lists(const hist *h, store_reader *r, zbuf *out)
{
    hist_out o = {h, out};
    zbuf d = ZBUF_INIT;
    char b[32];
    for (uint64_t oid = 1; oid <= NOID; oid++) {
        uint64_t tid = 0;
        int rc = store_current_tid(r, oid, &tid, NULL);
        say(out, "current %llu: %d", (unsigned long long)oid, rc);
        say(out, " %s history:", name(h, tid, b));
        store_history(r, oid, 20, on_txn, &o, NULL);
        say(out, "\n");
    }
    uint64_t from = 0, oid, tid, next;
    int has_next = 1;
    say(out, "iternext:");
    while (has_next &&
           store_record_iternext(r, from, &oid, &tid, &d, &next, &has_next, NULL) == 1) {
        say(out, " %llu@%s=%.*s", (unsigned long long)oid, name(h, tid, b), (int)d.len,
            (const char *)d.data);
        from = next;
    }
    say(out, "\nchanges:");
    store_changes_since(r, 0, &tid, on_oid, out, NULL);
    say(out, "\nundo log:");
    store_undo_log(r, 0, 20, NULL, NULL, on_txn, &o, NULL);
    say(out, "\n");
    zbuf_free(&d);
}

static void dump_iteration(const hist *h, store *s, zbuf *out)
{
    store_iter *it;
    store_txn_info info;
    store_record rec;
    char b1[32], b2[32];
    cr_assert_eq(store_iter_open(s, 0, 0, &it, NULL), 0);
    while (store_iter_next_txn(it, &info, NULL) == 1) {
        say(out, "txn %s:", name(h, info.tid, b1));
        while (store_iter_next_record(it, &rec, NULL) == 1)
            say(out, " %llu/%d/%.*s/%s:%u/%d", (unsigned long long)rec.oid, (int)rec.kind,
                (int)rec.data.len, (const char *)rec.data.p, name(h, rec.back_tid, b2),
                rec.back_index, rec.prev_zero);
        say(out, "\n");
    }
    store_iter_close(it);
}

static void dump(const hist *h, zbuf *out)
{
    zbuf_reset(out);
    cr_assert_eq(store_reader_refresh(h->f.r, NULL), 0);
    dump_loads(h, h->f.r, out);
    dump_lists(h, h->f.r, out);
    dump_iteration(h, h->f.s, out);
}

static void same(const zbuf *a, const zbuf *b, const char *what)
{
    size_t i = 0;
    while (i < a->len && i < b->len && a->data[i] == b->data[i])
        i++;
    cr_assert(a->len == b->len && i == a->len, "%s differ at byte %zu: ...%.80s... vs ...%.80s...",
              what, i, (const char *)a->data + (i > 40 ? i - 40 : 0),
              (const char *)b->data + (i > 40 ? i - 40 : 0));
}

Test(store_index, reads_agree_whether_the_index_is_written_or_in_memory)
{
    hist written, memory;
    zbuf a = ZBUF_INIT, b = ZBUF_INIT;
    open_hist(&written, 1);             /* entries written after each commit */
    open_hist(&memory, 1000000);        /* all still in the overlay */
    build(&written);
    build(&memory);
    cr_assert_eq(memory.f.s->indexed, 0, "the index was written: the test shows nothing");
    cr_assert_eq(written.f.s->indexed, written.tid[written.n - 1]);
    dump(&written, &a);
    dump(&memory, &b);
    same(&a, &b, "written and in-memory reads");
    /* a reopen writes the entries; a read-only open reads them from values */
    stt_close(&memory.f);
    store_options ro = {.read_only = 1};
    stt_reopen(&memory.f, &ro);
    dump(&memory, &b);
    same(&a, &b, "reads of a read-only open");
    stt_close(&memory.f);
    stt_reopen(&memory.f, NULL);
    cr_assert_eq(memory.f.s->indexed, memory.tid[memory.n - 1]);
    dump(&memory, &b);
    same(&a, &b, "reads after the reopen");
    zbuf_free(&a);
    zbuf_free(&b);
    stt_done(&written.f);
    stt_done(&memory.f);
}

Test(store_index, a_reader_kept_open_holds_only_its_own_entries)
{
    enum { BATCH = 50, PER = 10, COMMITS = 200 };
    st_fixture f;
    store_options opt = {.create = 1, .no_sync = 1, .index_batch = BATCH};
    stt_open(&f, &opt);
    uint64_t oids[PER], serials[PER] = {0};
    const char *texts[PER];
    char buf[PER][16];
    for (int i = 0; i < PER; i++)
        oids[i] = (uint64_t)i + 1, texts[i] = buf[i];
    for (int n = 0; n < COMMITS; n++) {
        for (int i = 0; i < PER; i++)
            snprintf(buf[i], sizeof buf[i], "%d.%d", n, i);
        uint64_t tid = stt_commit_n(f.s, PER, oids, serials, texts);
        for (int i = 0; i < PER; i++)
            serials[i] = tid;
        if (n == 7)
            cr_assert_eq(store_reader_refresh(f.r, NULL), 0);   /* pinned on commit 7 */
        pthread_mutex_lock(&f.s->ov.mu);
        size_t held = f.s->ov.n;
        pthread_mutex_unlock(&f.s->ov.mu);
        cr_assert_leq(held, 2 * BATCH + 8 * PER, "commit %d: %zu entries held", n, held);
    }
    /* the old snapshot still reads commit 7, for every object */
    char out[16];
    for (int i = 0; i < PER; i++) {
        zbuf d = ZBUF_INIT;
        cr_assert_eq(store_load_before(f.r, oids[i], STORE_TID_MAX, &d, NULL, NULL, NULL), 0);
        snprintf(out, sizeof out, "7.%d", i);
        cr_assert(d.len == strlen(out) && !memcmp(d.data, out, d.len));
        zbuf_free(&d);
    }
    stt_done(&f);
}

/* ---- recovery from "values" ------------------------------------------------ */

/* With the store closed: meta "indexed" set back to `indexed`, the index
 * entry (oid, tid) removed, and the kind byte of values(tid, 0) set to
 * `kind` (as a crash before the index batch leaves it, or damage). */
static void raw_edit(const char *dir, uint64_t indexed, uint64_t oid, uint64_t tid, uint8_t kind)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, records, values;
    uint8_t k8[8], key[ST_KEY_LEN], vkey[ST_VKEY_LEN], buf[256];
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    cr_assert_eq(mdb_dbi_open(txn, "records", 0, &records), 0);
    cr_assert_eq(mdb_dbi_open(txn, "values", 0, &values), 0);
    zbe64_put(k8, indexed);
    MDB_val k = {7, "indexed"}, v = {8, k8};
    cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    st_key(key, oid, tid);
    k = (MDB_val){ST_KEY_LEN, key};
    int rc = mdb_del(txn, records, &k, NULL);
    cr_assert(rc == 0 || rc == MDB_NOTFOUND);
    st_vkey(vkey, tid, 0);
    k = (MDB_val){ST_VKEY_LEN, vkey};
    cr_assert_eq(mdb_get(txn, values, &k, &v), 0);
    cr_assert_leq(v.mv_size, sizeof buf);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[0] = kind;
    v.mv_data = buf;
    cr_assert_eq(mdb_put(txn, values, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

Test(store_index, a_reopen_rebuilds_entries_from_values_and_refuses_a_damaged_one)
{
    st_fixture f;
    stt_open(&f, NULL);
    uint64_t t0 = stt_commit1(f.s, 1, 0, "x");
    uint64_t t1 = stt_commit1(f.s, 2, 0, "y");
    stt_close(&f);
    /* damaged: a record past "indexed" that does not decode */
    raw_edit(f.dir, t0, 2, t1, 9);
    store *s;
    zerr e;
    store_options opt = {.no_sync = 1};
    cr_assert_eq(store_open(&s, f.dir, &opt, &e), ZE_CORRUPT);
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)t1);
    cr_assert(strstr(e.msg, want), "%s", e.msg);
    /* whole again: its entry is rebuilt from the record */
    raw_edit(f.dir, t0, 2, t1, STORE_REC_DATA);
    stt_reopen(&f, NULL);
    char out[8];
    uint64_t start;
    cr_assert_eq(stt_load(f.r, 2, STORE_TID_MAX, out, sizeof out, &start, NULL), 0);
    cr_assert_str_eq(out, "y");
    cr_assert_eq(start, t1);
    cr_assert_eq(f.s->indexed, t1);
    stt_done(&f);
}
