#define _GNU_SOURCE
#include "wirefix.h"
#include "testutil.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start of the value of top-level "key" in a line, or NULL. A key's quoted
 * form cannot occur inside a JSON string (its quotes would be escaped), so
 * the first match is the key itself. */
static const char *value_of(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(line, pat);
    return at ? at + strlen(pat) : NULL;
}

/* A JSON string value into buf (escapes other than \" and \\ are kept as is:
 * the fields read here never hold them). */
static int get_str(const char *line, const char *key, char *buf, size_t cap)
{
    const char *v = value_of(line, key);
    size_t n = 0;

    if (!v || *v != '"')
        return -1;
    for (v++; *v && *v != '"'; v++) {
        if (*v == '\\' && v[1])
            v++;
        if (n + 1 < cap)
            buf[n++] = *v;
    }
    buf[n] = 0;
    return *v == '"' ? 0 : -1;
}

static int get_bool(const char *line, const char *key)
{
    const char *v = value_of(line, key);
    return v && strncmp(v, "true", 4) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int get_hex(const char *line, uint8_t **out, size_t *len)
{
    const char *v = value_of(line, "hex");
    if (!v || *v != '"')
        return -1;
    v++;
    const char *end = strchr(v, '"');
    if (!end || (end - v) % 2)
        return -1;
    size_t n = (size_t)(end - v) / 2;
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            return -1;
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = p;
    *len = n;
    return 0;
}

static void read_meta(const char *line, wf_file *f)
{
    get_str(line, "scenario", f->scenario, sizeof f->scenario);
    get_str(line, "encoding", f->encoding, sizeof f->encoding);
    get_str(line, "server_mode", f->server_mode, sizeof f->server_mode);
    f->msgpack = get_bool(line, "msgpack");
    f->read_only = get_bool(line, "read-only");
    get_str(line, "blob-dir", f->blob_dir, sizeof f->blob_dir); /* null stays "" */
}

static int read_frame(const char *line, size_t lineno, wf_frame *fr)
{
    char dir[8];
    const char *conn = value_of(line, "conn");
    const char *decoded = value_of(line, "decoded");

    memset(fr, 0, sizeof *fr);
    fr->line = lineno;
    if (!conn || !decoded || get_str(line, "dir", dir, sizeof dir) ||
        get_str(line, "label", fr->label, sizeof fr->label) ||
        get_str(decoded, "kind", fr->kind, sizeof fr->kind) ||
        get_hex(line, &fr->payload, &fr->len))
        return -1;
    fr->conn = atoi(conn);
    if (strcmp(dir, "c2s") == 0)
        fr->dir = WF_C2S;
    else if (strcmp(dir, "s2c") == 0)
        fr->dir = WF_S2C;
    else
        return -1;
    return 0;
}

static int add_frame(wf_file *f, const char *line, size_t lineno, size_t *cap)
{
    if (f->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        wf_frame *nf = realloc(f->frames, ncap * sizeof *nf);
        if (!nf)
            return -1;
        f->frames = nf;
        *cap = ncap;
    }
    if (read_frame(line, lineno, &f->frames[f->n])) {
        free(f->frames[f->n].payload);
        return -1;
    }
    f->n++;
    return 0;
}

int wf_load(const char *path, wf_file *out)
{
    size_t len, cap = 0, lineno = 0;
    char *text = (char *)tu_read_file(path, &len);

    memset(out, 0, sizeof *out);
    if (!text) {
        fprintf(stderr, "wirefix: cannot read %s\n", path);
        return -1;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        if (strncmp(line, "{\"meta\":", 8) == 0)
            read_meta(line, out);
        else if (value_of(line, "dir") && add_frame(out, line, lineno, &cap)) {
            fprintf(stderr, "wirefix: %s:%zu: malformed frame line\n", path, lineno);
            wf_free(out);
            free(text);
            return -1;
        }
    }
    free(text);
    return 0;
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
