/* pickle_seeds: write libFuzzer seeds for the pickle targets: every Z5
 * frame of shared/fixtures/wire/z5 (for fuzz_pickle_decode) and every data
 * record of shared/fixtures/datafs (each .fs file, for fuzz_record_refs),
 * one file each.
 * Usage: pickle_seeds OUTDIR (the seeds go to OUTDIR/<target>). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zbuf.h"
#include "jsonmini.h"
#include "testutil.h"

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n > k && !strcmp(s + n - k, tail);
}

static size_t frames_of(const char *path, const char *outdir, const char *tag)
{
    size_t size, count = 0;
    char *text = (char *)tu_read_file(path, &size);
    zv_arena *a = zv_arena_new();
    for (char *line = text; text && a && line < text + size;) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(text + size - line);
        zv *rec;
        const zv *dec;
        const char *kind;
        size_t len;
        uint8_t *frame;
        if (n && json_parse(line, n, a, &rec, NULL) == 0 && (dec = json_get(rec, "decoded")) &&
            (kind = json_str(dec, "kind")) && strcmp(kind, "handshake") &&
            strcmp(kind, "ruok-reply") && (frame = json_unhex(json_str(rec, "hex"), &len))) {
            char name[1024];
            snprintf(name, sizeof name, "%s/%s-%zu", outdir, tag, count++);
            tu_write_file(name, frame, len);
            free(frame);
        }
        zv_arena_reset(a);
        line += n + 1;
    }
    zv_arena_free(a);
    free(text);
    return count;
}

/* Data records of a Data.fs (filestorage-format.md sections 2-4). */
static size_t records_of(const char *path, const char *outdir, const char *tag)
{
    size_t size, count = 0;
    uint8_t *fs = tu_read_file(path, &size);
    for (size_t pos = 4; fs && pos + 23 <= size;) {
        uint64_t tlen = zbe64(fs + pos + 8);
        if (tlen > size - pos)
            break;
        size_t r = pos + 23 + zbe16(fs + pos + 17) + zbe16(fs + pos + 19) + zbe16(fs + pos + 21);
        while (r + 42 <= pos + tlen) {
            uint64_t plen = zbe64(fs + r + 34);
            if (plen > pos + tlen - r - 42)
                break;
            if (plen) {
                char name[1024];
                snprintf(name, sizeof name, "%s/%s-%zu", outdir, tag, count++);
                tu_write_file(name, fs + r + 42, plen);
            }
            r += plen ? 42 + plen : 50;
        }
        pos += tlen + 8;
    }
    free(fs);
    return count;
}

static size_t each_file(const char *rel, const char *suffix, const char *outdir,
                        size_t (*fn)(const char *, const char *, const char *))
{
    char *dir = tu_shared(rel);
    DIR *d = opendir(dir);
    size_t count = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!ends_with(e->d_name, suffix))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        count += fn(path, outdir, e->d_name);
    }
    if (d)
        closedir(d);
    free(dir);
    return count;
}

/* OUTDIR/target, created; 0 or -1. */
static int target_dir(char *out, size_t cap, const char *outdir, const char *target)
{
    snprintf(out, cap, "%s/%s", outdir, target);
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char frames_dir[1024], records_dir[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: pickle_seeds OUTDIR\n");
        return 2;
    }
    if (target_dir(frames_dir, sizeof frames_dir, argv[1], "fuzz_pickle_decode") ||
        target_dir(records_dir, sizeof records_dir, argv[1], "fuzz_record_refs"))
        return 1;
    size_t frames = each_file("fixtures/wire/z5", ".jsonl", frames_dir, frames_of);
    size_t records = each_file("fixtures/datafs", ".fs", records_dir, records_of);
    printf("pickle_seeds: %zu frames, %zu records\n", frames, records);
    if (!frames || !records) {
        fprintf(stderr, "pickle_seeds: fixtures not found (set ZEOLITE_SHARED_DIR)\n");
        return 1;
    }
    return 0;
}
