/* gen.c: write a CMS-like Data.fs for the import/export/verify bench.
 *
 * usage: zl_datafs_gen OUT.fs [--size BYTES] [--seed N] [--undo PERCENT]
 *
 * Shape (issue 4): record sizes log-normal around a 350-byte median, 1% of
 * records 50-500 KB (most of the bytes), hot objects with thousands of
 * revisions, transactions of 1-300 records, ~3% undo transactions made of
 * back-pointers (undo of undo included, so chains occur). Every record is a
 * valid protocol-3 class + state pickle with persistent references. Written
 * with zeolite's own FileStorage writer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"

#define HOT_OIDS 24
#define RING 64            /* recent transactions that undo may pick */
#define MAX_TXN_RECS 300

typedef struct cur_rec {   /* an oid's current record */
    uint64_t tid;
    uint32_t index;
} cur_rec;

typedef struct ring_rec {
    uint64_t oid;
    uint32_t index;
    cur_rec prev;          /* the record before it (tid 0: none) */
} ring_rec;

typedef struct ring_txn {
    uint64_t tid;
    size_t n;
    ring_rec recs[MAX_TXN_RECS];
} ring_txn;

typedef struct gen {
    uint64_t rng;
    zfs_writer *w;
    cur_rec *cur;          /* by oid; oids are dense from 0 */
    uint64_t noids, cap;
    uint64_t tid;
    ring_txn *ring;
    size_t ring_n, ring_next;
    zbuf pickle;
    char *filler;
    size_t filler_len;
    uint64_t txns, records, undos;
} gen;

static uint64_t rnd(gen *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 0x2545F4914F6CDD1Dull;
}

static double unif(gen *g)
{
    return (double)(rnd(g) >> 11) / 9007199254740992.0;
}

static double normal(gen *g)
{
    double u = unif(g), v = unif(g);
    return sqrt(-2.0 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}

static size_t record_size(gen *g)
{
    if (unif(g) < 0.01)
        return 50000 + (size_t)(unif(g) * 450000);
    double s = exp(log(350.0) + 0.9 * normal(g));
    return s < 80 ? 80 : s > 40000 ? 40000 : (size_t)s;
}

static size_t txn_records(gen *g)
{
    double u = unif(g);
    if (u < 0.6)
        return 1 + rnd(g) % 5;
    if (u < 0.9)
        return 5 + rnd(g) % 45;
    return 50 + rnd(g) % 251;
}

static void put_u32le(zbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    zbuf_append(b, x, 4);
}

static void put_text(zbuf *b, const char *s, size_t n)
{
    zbuf_append_byte(b, 'X');
    put_u32le(b, (uint32_t)n);
    zbuf_append(b, s, n);
}

/* The class pickle, then a dict state {'title': str, 'body': str|bytes,
 * 'parent': ref, 'related': [refs]} written as one pickler would (memo shared). */
static void make_pickle(gen *g, uint64_t oid, size_t size)
{
    static const char cls[] = "\x80\x03" "cplone.app.contenttypes.content\nDocument\nq\x00.";
    zbuf *b = &g->pickle;
    uint8_t ref[12] = {'C', 8};
    zbuf_reset(b);
    zbuf_append(b, cls, sizeof cls - 1);
    zbuf_append(b, "\x80\x03}q\x01(", 6);
    put_text(b, "title", 5);
    char title[48];
    int tl = snprintf(title, sizeof title, "Page %" PRIu64, oid);
    put_text(b, title, (size_t)tl);
    put_text(b, "parent", 6);
    zbe64_put(ref + 2, oid ? (rnd(g) % (oid < 1000 ? oid : 1000)) : 0);
    zbuf_append(b, ref, 10);
    zbuf_append(b, "h\x00\x86Q", 4);
    put_text(b, "related", 7);
    zbuf_append(b, "](", 2);
    for (int i = 0; i < 3 && g->noids; i++) {
        zbe64_put(ref + 2, rnd(g) % g->noids);
        zbuf_append(b, ref, 10);
        zbuf_append(b, "h\x00\x86Q", 4);
    }
    zbuf_append(b, "e", 1);
    put_text(b, "body", 4);
    size_t body = size > b->len + 16 ? size - b->len - 16 : 1;
    size_t off = rnd(g) % (g->filler_len - (body % g->filler_len) + 1);
    if (body > 40000) {  /* big records: a bytes payload, as files and images are */
        zbuf_append_byte(b, 'B');
        put_u32le(b, (uint32_t)body);
        for (size_t left = body; left > 0;) {
            size_t n = left < g->filler_len ? left : g->filler_len;
            zbuf_append(b, g->filler, n);
            left -= n;
        }
    } else {
        put_text(b, g->filler + off, body);
    }
    zbuf_append(b, "u.", 2);
}

static uint64_t pick_oid(gen *g, const uint64_t *used, size_t n)
{
    for (;;) {
        uint64_t oid;
        double u = unif(g);
        if (g->noids < HOT_OIDS || u < 0.25)
            oid = g->noids;                     /* a new object */
        else if (u < 0.40)
            oid = rnd(g) % HOT_OIDS;            /* catalog, folders: very hot */
        else
            oid = rnd(g) % g->noids;
        int dup = 0;
        for (size_t i = 0; i < n; i++)
            dup |= used[i] == oid;
        if (!dup)
            return oid;
    }
}

static int grow(gen *g, uint64_t oid)
{
    if (oid < g->cap)
        return 0;
    uint64_t cap = g->cap ? g->cap * 2 : 65536;
    cur_rec *c = realloc(g->cur, cap * sizeof *c);
    if (!c)
        return -1;
    memset(c + g->cap, 0, (cap - g->cap) * sizeof *c);
    g->cur = c;
    g->cap = cap;
    return 0;
}

static int begin(gen *g, const char *desc, zerr *err)
{
    static const char ext[] = "\x80\x03}q\x00X\x07\x00\x00\x00user_idq\x01X\x05\x00\x00\x00"
                              "adminq\x02s.";
    g->tid += 1 + rnd(g) % 0x40000000ull;
    zslice user = {(const uint8_t *)"/ admin", 7};
    zslice d = {(const uint8_t *)desc, strlen(desc)};
    zslice e = {(const uint8_t *)ext, sizeof ext - 1};
    return zfs_writer_begin(g->w, g->tid, ' ', user, d, e, err);
}

static ring_txn *ring_push(gen *g)
{
    ring_txn *t = &g->ring[g->ring_next];
    g->ring_next = (g->ring_next + 1) % RING;
    if (g->ring_n < RING)
        g->ring_n++;
    t->tid = g->tid;
    t->n = 0;
    return t;
}

static void note(gen *g, ring_txn *t, uint64_t oid, uint32_t index)
{
    ring_rec *r = &t->recs[t->n++];
    r->oid = oid;
    r->index = index;
    r->prev = g->cur[oid];
    g->cur[oid] = (cur_rec){g->tid, index};
}

static int edit_txn(gen *g, zerr *err)
{
    uint64_t used[MAX_TXN_RECS];
    size_t n = txn_records(g);
    char desc[64];
    snprintf(desc, sizeof desc, "edit /site/page-%" PRIu64, rnd(g) % 100000);
    int rc = begin(g, desc, err);
    ring_txn *t = ring_push(g);
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t oid = pick_oid(g, used, i);
        used[i] = oid;
        if (grow(g, oid))
            return zerr_set(err, ZE_NOMEM, "out of memory");
        if (oid == g->noids)
            g->noids++;
        make_pickle(g, oid, record_size(g));
        zfs_wrec w = {.oid = oid, .kind = ZFS_DATA,
                      .data = {g->pickle.data, g->pickle.len}};
        rc = zfs_writer_record(g->w, &w, err);
        note(g, t, oid, (uint32_t)i);
    }
    g->records += n;
    return rc ? rc : zfs_writer_end(g->w, err);
}

/* Undo a recent transaction whose records are all still current, as ZODB
 * does: a back-pointer to each record's previous revision, or a deletion
 * where the transaction created the object. */
static int undo_txn(gen *g, zerr *err)
{
    for (int tries = 0; tries < 8 && g->ring_n; tries++) {
        /* recent transactions are the likely ones to be still current */
        size_t back = 1 + rnd(g) % (g->ring_n < 4 ? g->ring_n : 4);
        ring_txn *src = &g->ring[(g->ring_next + RING - back) % RING];
        int ok = src->n > 0;
        for (size_t i = 0; ok && i < src->n; i++) {
            const ring_rec *r = &src->recs[i];
            cur_rec c = g->cur[r->oid];
            ok = c.tid == src->tid && c.index == r->index;
        }
        if (!ok)
            continue;
        ring_rec recs[MAX_TXN_RECS];
        size_t n = src->n;
        memcpy(recs, src->recs, n * sizeof *recs);
        char desc[64];
        snprintf(desc, sizeof desc, "Undo %016" PRIx64, src->tid);
        int rc = begin(g, desc, err);
        ring_txn *t = ring_push(g);
        for (size_t i = 0; !rc && i < n; i++) {
            zfs_wrec w = {.oid = recs[i].oid, .kind = ZFS_DELETE};
            if (recs[i].prev.tid)
                w = (zfs_wrec){.oid = recs[i].oid, .kind = ZFS_BACKPTR,
                               .back_tid = recs[i].prev.tid, .back_index = recs[i].prev.index};
            rc = zfs_writer_record(g->w, &w, err);
            note(g, t, recs[i].oid, (uint32_t)i);
        }
        g->records += n;
        g->undos++;
        return rc ? rc : zfs_writer_end(g->w, err);
    }
    return edit_txn(g, err);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    uint64_t size = 1ull << 30;
    double undo_pct = 3.0;
    gen g = {.rng = 0x9E3779B97F4A7C15ull};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            g.rng ^= strtoull(argv[++i], NULL, 0) * 0xBF58476D1CE4E5B9ull;
        else if (!strcmp(argv[i], "--undo") && i + 1 < argc)
            undo_pct = atof(argv[++i]);
        else if (!out && argv[i][0] != '-')
            out = argv[i];
        else {
            fprintf(stderr, "usage: %s OUT.fs [--size BYTES] [--seed N] [--undo PERCENT]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "usage: %s OUT.fs [--size BYTES] [--seed N] [--undo PERCENT]\n", argv[0]);
        return 2;
    }
    zerr err = {0};
    g.tid = 0x03d1a00000000000ull;   /* early 2020 */
    g.ring = calloc(RING, sizeof *g.ring);
    g.filler_len = 1 << 16;
    g.filler = malloc(g.filler_len);
    if (!g.ring || !g.filler)
        return 1;
    static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do ";
    for (size_t i = 0; i < g.filler_len; i++)
        g.filler[i] = words[(i * 7 + (i >> 5)) % (sizeof words - 1)];
    int rc = zfs_writer_open(&g.w, out, &err);
    while (!rc && zfs_writer_size(g.w) < size) {
        rc = unif(&g) * 100 < undo_pct ? undo_txn(&g, &err) : edit_txn(&g, &err);
        g.txns++;
    }
    if (!rc)
        rc = zfs_writer_finish(g.w, &err);
    else
        zfs_writer_abort(g.w);
    if (rc) {
        fprintf(stderr, "zl_datafs_gen: %s\n", err.msg);
        return 1;
    }
    printf("%s: %" PRIu64 " transactions (%" PRIu64 " undo), %" PRIu64 " records, %" PRIu64
           " oids\n", out, g.txns, g.undos, g.records, g.noids);
    free(g.cur);
    free(g.ring);
    free(g.filler);
    zbuf_free(&g.pickle);
    return 0;
}
