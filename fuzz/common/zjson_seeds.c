/* zjson_seeds: write libFuzzer seeds for fuzz_zjson: every ruok reply of
 * shared/fixtures/wire (the JSON the reader exists for) and every Data.fs
 * manifest of shared/fixtures/datafs up to MAX_SEED bytes (larger JSON with
 * every value type).
 * Usage: zjson_seeds OUTDIR (the seeds go to OUTDIR/fuzz_zjson). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "wirefix.h"

#define MAX_SEED 65536

static size_t ruok_replies(const char *enc, const char *outdir)
{
    size_t n, count = 0;
    char **paths = wf_list(enc, &n);
    for (size_t i = 0; paths && i < n; i++) {
        wf_file f;
        if (wf_load(paths[i], &f))
            continue;
        for (size_t j = 0; j < f.n; j++) {
            char name[1024];
            if (strcmp(f.frames[j].kind, "ruok-reply"))
                continue;
            snprintf(name, sizeof name, "%s/ruok-%s-%s-%zu", outdir, enc, f.scenario, j);
            if (tu_write_file(name, f.frames[j].payload, f.frames[j].len) == 0)
                count++;
        }
        wf_free(&f);
    }
    if (paths)
        wf_list_free(paths, n);
    return count;
}

static size_t manifests(const char *rel, const char *outdir, const char *tag)
{
    char *dir = tu_shared(rel);
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t count = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name), size;
        if (n < 6 || strcmp(e->d_name + n - 5, ".json"))
            continue;
        char *path = tu_path(dir, e->d_name), name[1024];
        uint8_t *text = path ? tu_read_file(path, &size) : NULL;
        snprintf(name, sizeof name, "%s/%s%s", outdir, tag, e->d_name);
        if (text && size <= MAX_SEED && tu_write_file(name, text, size) == 0)
            count++;
        free(text);
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    return count;
}

int main(int argc, char **argv)
{
    char out[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: zjson_seeds OUTDIR\n");
        return 2;
    }
    snprintf(out, sizeof out, "%s/fuzz_zjson", argv[1]);
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return 1;
    }
    size_t ruok = ruok_replies("z5", out) + ruok_replies("m5", out);
    size_t json = manifests("fixtures/datafs", out, "") +
                  manifests("fixtures/datafs/bad", out, "bad-");
    printf("zjson_seeds: %zu ruok replies and %zu manifests in %s\n", ruok, json, out);
    if (!ruok || !json) {
        fprintf(stderr, "zjson_seeds: fixtures not found (set ZEOLITE_SHARED_DIR)\n");
        return 1;
    }
    return 0;
}
