/* fixtures.c: locate fixtures, read manifests, hash, and match offsets. */
#define _GNU_SOURCE
#include "fixtures.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **fx_names(int bad)
{
    char *dir = tu_shared(bad ? "fixtures/datafs/bad" : "fixtures/datafs");
    DIR *d = opendir(dir);
    /* A test that loops over no fixtures would pass having checked nothing. */
    cr_assert_not_null(d, "fixtures folder %s: %s (set ZEOLITE_SHARED_DIR)", dir, strerror(errno));
    char **names = calloc(64, sizeof *names);
    cr_assert_not_null(names);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 9 || strcmp(e->d_name + len - 8, ".fs.json"))
            continue;
        cr_assert_lt(n, 63, "more than 63 manifests in %s", dir);
        int made = asprintf(&names[n], "%s%.*s", bad ? "bad/" : "", (int)(len - 8), e->d_name);
        cr_assert_gt(made, 0);
        n++;
    }
    closedir(d);
    cr_assert_gt(n, 0, "no manifests (*.fs.json) in %s", dir);
    free(dir);
    qsort(names, n, sizeof *names, by_name);
    return names;
}

void fx_free_names(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

char *fx_path(const char *name, const char *suffix)
{
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/datafs/%s%s", name, suffix);
    return tu_shared(rel);
}

tj *fx_manifest(const char *name)
{
    char *p = fx_path(name, ".fs.json");
    tj *m = tj_parse_file(p);
    cr_assert_not_null(m, "cannot read the manifest %s", p);
    free(p);
    return m;
}

void fx_sha256(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

char *fx_hex(const void *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; s && i < n; i++)
        sprintf(s + 2 * i, "%02x", ((const unsigned char *)p)[i]);
    if (s)
        s[2 * n] = 0;
    return s;
}

/* The first number after "at " in fstest's message, or -1. */
static long long fstest_offset(const tj *bad)
{
    const tj *fs = tj_get(tj_get(bad, "observed"), "fstest");
    const char *msg = tj_gets(fs, "stderr");
    const char *at = msg ? strstr(msg, "at ") : NULL;
    while (at && !isdigit((unsigned char)at[3]))
        at = strstr(at + 3, "at ");
    return at ? atoll(at + 3) : -1;
}

int fx_names_offset(const tj *bad, const char *msg)
{
    long long defect = (long long)tj_getn(tj_get(bad, "defect"), "offset");
    long long fst = fstest_offset(bad);
    for (const char *s = msg; *s; s++) {
        if (!isdigit((unsigned char)*s) || (s > msg && isalnum((unsigned char)s[-1])))
            continue;
        long long n = atoll(s);
        if ((n <= defect && defect - n < 64) || n == fst)
            return 1;
        while (isdigit((unsigned char)s[1]))
            s++;
    }
    return 0;
}

void fx_tail(const tj *bad, uint64_t *tail_pos, size_t *ntxn)
{
    /* derived_from names the good file ("small.fs"); manifests go by "small" */
    char from[128];
    snprintf(from, sizeof from, "%s", tj_gets(bad, "derived_from"));
    char *dot = strstr(from, ".fs");
    if (dot)
        *dot = 0;
    tj *good = fx_manifest(from);
    uint64_t size = (uint64_t)tj_getn(bad, "size");
    const tj *txns = tj_get(good, "transactions");
    *tail_pos = (uint64_t)tj_getn(good, "size");
    *ntxn = txns ? txns->n : 0;
    for (size_t i = 0; txns && i < txns->n; i++) {
        uint64_t pos = (uint64_t)tj_getn(txns->items[i], "pos");
        uint64_t tlen = (uint64_t)tj_getn(txns->items[i], "tlen");
        if (pos + tlen + 8 > size) {
            *tail_pos = pos;
            *ntxn = i;
            break;
        }
    }
    tj_free(good);
}
