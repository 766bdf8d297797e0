/* cases.c: reading gen_cases.py's case files. */
#include "cases.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int take(rcases *f, size_t n, const uint8_t **p)
{
    if (f->size - f->pos < n)
        return -1;
    *p = f->data + f->pos;
    f->pos += n;
    return 0;
}

static int take_u32(rcases *f, uint32_t *v)
{
    const uint8_t *p;
    if (take(f, 4, &p))
        return -1;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

static int take_name(rcases *f, char out[256])
{
    const uint8_t *p;
    if (take(f, 1, &p))
        return -1;
    size_t n = p[0];
    if (take(f, n, &p))
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

static int take_bytes(rcases *f, const uint8_t **p, size_t *len)
{
    uint32_t n;
    if (take_u32(f, &n) || take(f, n, p))
        return -1;
    *len = n;
    return 0;
}

int cases_open(rcases *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->data = tu_read_file(path, &f->size);
    const uint8_t *magic;
    if (!f->data || take(f, 8, &magic) || memcmp(magic, "ZRCASES1", 8) ||
        take_u32(f, &f->seed) || take_u32(f, &f->count)) {
        cases_close(f);
        return -1;
    }
    return 0;
}

int cases_next(rcases *f, rcase *c)
{
    const uint8_t *p;
    if (f->read == f->count)
        return f->pos == f->size ? 0 : -1;
    memset(c, 0, sizeof *c);
    if (take_name(f, c->klass) || take_name(f, c->kind) || take_u32(f, &c->index))
        return -1;
    for (int i = 0; i < 3; i++)
        if (take_bytes(f, &c->rec[i], &c->len[i]))
            return -1;
    if (take(f, 1, &p))
        return -1;
    c->answer = p[0];
    if (c->answer == CASE_RESOLVED) {
        if (take_bytes(f, &c->resolved, &c->resolved_len))
            return -1;
    } else if (c->answer == CASE_CONFLICT) {
        if (take(f, 1, &p))
            return -1;
        c->reason = p[0];
    } else if (c->answer != CASE_ERROR || take_name(f, c->error)) {
        return -1;
    }
    f->read++;
    return 1;
}

void cases_close(rcases *f)
{
    free(f->data);
    memset(f, 0, sizeof *f);
}
