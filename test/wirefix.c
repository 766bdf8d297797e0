/* wirefix.c: recorded frames from shared/fixtures/wire, parsed with jsonmini. */
#define _GNU_SOURCE
#include "wirefix.h"
#include "jsonmini.h"
#include "testutil.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int is_true(const zv *v)
{
    return v && v->type == ZV_BOOL && v->u.b;
}

static void read_meta(const zv *meta, wf_file *f)
{
    const zv *cfg = json_get(meta, "server_config");

    copy_str(f->scenario, sizeof f->scenario, json_str(meta, "scenario"));
    copy_str(f->encoding, sizeof f->encoding, json_str(meta, "encoding"));
    copy_str(f->server_mode, sizeof f->server_mode, json_str(meta, "server_mode"));
    f->msgpack = is_true(json_get(cfg, "msgpack"));
    f->read_only = is_true(json_get(cfg, "read-only"));
    copy_str(f->blob_dir, sizeof f->blob_dir, json_str(cfg, "blob-dir")); /* null: "" */
}

static int read_frame(const zv *rec, size_t lineno, wf_frame *fr)
{
    const zv *conn = json_get(rec, "conn");
    const char *dir = json_str(rec, "dir");
    const char *hex = json_str(rec, "hex");
    const char *kind = json_str(json_get(rec, "decoded"), "kind");

    memset(fr, 0, sizeof *fr);
    fr->line = lineno;
    if (!conn || conn->type != ZV_INT || !dir || !hex || !kind)
        return -1;
    fr->conn = (int)conn->u.i;
    copy_str(fr->label, sizeof fr->label, json_str(rec, "label"));
    copy_str(fr->kind, sizeof fr->kind, kind);
    if (strcmp(dir, "c2s") == 0)
        fr->dir = WF_C2S;
    else if (strcmp(dir, "s2c") == 0)
        fr->dir = WF_S2C;
    else
        return -1;
    fr->payload = json_unhex(hex, &fr->len);
    return fr->payload ? 0 : -1;
}

static int add_frame(wf_file *f, const zv *rec, size_t lineno, size_t *cap)
{
    if (f->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        wf_frame *nf = realloc(f->frames, ncap * sizeof *nf);
        if (!nf)
            return -1;
        f->frames = nf;
        *cap = ncap;
    }
    if (read_frame(rec, lineno, &f->frames[f->n]))
        return -1;
    f->n++;
    return 0;
}

/* One line: the meta object, a note (skipped) or a frame. */
static int read_line(wf_file *f, const char *line, size_t n, size_t lineno, zv_arena *a,
                     size_t *cap)
{
    zv *rec;
    const zv *meta;

    if (n == 0)
        return 0;
    if (json_parse(line, n, a, &rec, NULL) || rec->type != ZV_DICT)
        return -1;
    if ((meta = json_get(rec, "meta")))
        read_meta(meta, f);
    else if (json_get(rec, "dir"))
        return add_frame(f, rec, lineno, cap);
    return 0;
}

int wf_load(const char *path, wf_file *out)
{
    size_t size, cap = 0, lineno = 0;
    char *text = (char *)tu_read_file(path, &size);
    zv_arena *a = zv_arena_new();
    int rc = text && a ? 0 : -1;

    memset(out, 0, sizeof *out);
    for (size_t pos = 0; rc == 0 && pos < size;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - line) : size - pos;
        lineno++;
        rc = read_line(out, line, n, lineno, a, &cap);
        zv_arena_reset(a);
        pos += n + 1;
    }
    if (rc) {
        fprintf(stderr, "wirefix: %s:%zu: cannot read this line\n", path, lineno);
        wf_free(out);
    }
    zv_arena_free(a);
    free(text);
    return rc;
}

void wf_free(wf_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->frames[i].payload);
    free(f->frames);
    memset(f, 0, sizeof *f);
}

char **wf_list(const char *enc, size_t *n)
{
    char rel[64];
    glob_t g;

    snprintf(rel, sizeof rel, "fixtures/wire/%s/*.jsonl", enc);
    char *pattern = tu_shared(rel);
    if (!pattern)
        return NULL;
    int rc = glob(pattern, 0, NULL, &g); /* sorted by default */
    free(pattern);
    if (rc != 0)
        return NULL;
    char **paths = calloc(g.gl_pathc, sizeof *paths);
    for (size_t i = 0; paths && i < g.gl_pathc; i++)
        if (!(paths[i] = strdup(g.gl_pathv[i]))) {
            wf_list_free(paths, i);
            paths = NULL;
        }
    *n = paths ? g.gl_pathc : 0;
    globfree(&g);
    return paths;
}

void wf_list_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}
