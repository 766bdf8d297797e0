#include "fsmini.h"

#include <stdlib.h>
#include <string.h>

#include "common/zbuf.h"
#include "testutil.h"

static int parse_records(fs_file *f, fs_txn *t, size_t pos, size_t end)
{
    while (pos < end) {
        if (pos + 42 > end)
            return -1;
        const uint8_t *p = f->buf + pos;
        fs_rec r = {.oid = zbe64(p), .prev = zbe64(p + 16), .pos = pos};
        uint64_t plen = zbe64(p + 34);
        if (zbe16(p + 32) != 0)
            return -1;
        if (plen) {
            r.data = p + 42;
            r.len = plen;
            pos += 42 + plen;
        } else {
            r.back = zbe64(p + 42);
            pos += 50;
        }
        fs_rec *recs = realloc(t->recs, (t->n + 1) * sizeof *recs);
        if (!recs || pos > end)
            return -1;
        t->recs = recs;
        t->recs[t->n++] = r;
    }
    return 0;
}

int fs_load(const char *path, fs_file *out)
{
    memset(out, 0, sizeof *out);
    out->buf = tu_read_file(path, &out->size);
    if (!out->buf || out->size < 4 || memcmp(out->buf, "FS30", 4))
        return -1;
    for (size_t pos = 4; pos + 23 <= out->size;) {
        const uint8_t *p = out->buf + pos;
        uint64_t tlen = zbe64(p + 8);
        if (p[16] == 'c' || pos + tlen + 8 > out->size)
            break;
        fs_txn t = {.tid = zbe64(p), .status = (char)p[16], .ulen = zbe16(p + 17),
                    .dlen = zbe16(p + 19), .elen = zbe16(p + 21)};
        t.user = p + 23;
        t.desc = t.user + t.ulen;
        t.ext = t.desc + t.dlen;
        if (parse_records(out, &t, pos + 23 + t.ulen + t.dlen + t.elen, pos + tlen)) {
            free(t.recs);
            return -1;
        }
        fs_txn *txns = realloc(out->txns, (out->n + 1) * sizeof *txns);
        if (!txns) {
            free(t.recs);
            return -1;
        }
        out->txns = txns;
        out->txns[out->n++] = t;
        pos += tlen + 8;
    }
    return 0;
}

void fs_free(fs_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->txns[i].recs);
    free(f->txns);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

int fs_find(const fs_file *f, uint64_t pos, const fs_txn **txn, size_t *index)
{
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = 0; j < f->txns[i].n; j++)
            if (f->txns[i].recs[j].pos == pos) {
                *txn = &f->txns[i];
                *index = j;
                return 0;
            }
    return -1;
}
