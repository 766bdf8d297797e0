/* fs_read_seeds: write libFuzzer seeds for fuzz_fs_read: every Data.fs of
 * shared/fixtures/datafs and datafs/bad. A file over MAX_SEED bytes is cut
 * after its last whole transaction that fits (a valid, shorter file).
 * Usage: fs_read_seeds OUTDIR (the seeds go to OUTDIR/fuzz_fs_read). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zbuf.h"
#include "testutil.h"

#define MAX_SEED 65536   /* scripts/fuzz.sh runs the targets with -max_len=65536 */

/* Length of the longest prefix of fs made of whole transactions, <= cap. */
static size_t whole_txns(const uint8_t *fs, size_t size, size_t cap)
{
    size_t pos = 4;
    while (pos + 16 <= size) {
        uint64_t tlen = zbe64(fs + pos + 8);
        if (tlen > size - pos - 8 || pos + tlen + 8 > cap)
            break;
        pos += tlen + 8;
    }
    return pos;
}

static size_t seeds_of(const char *rel, const char *outdir, const char *tag)
{
    char *dir = tu_shared(rel);
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t count = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name), size;
        if (n < 4 || strcmp(e->d_name + n - 3, ".fs"))
            continue;
        char *path = tu_path(dir, e->d_name), name[1024];
        uint8_t *fs = path ? tu_read_file(path, &size) : NULL;
        if (fs && size > MAX_SEED)
            size = whole_txns(fs, size, MAX_SEED);
        snprintf(name, sizeof name, "%s/%s%s", outdir, tag, e->d_name);
        if (fs && tu_write_file(name, fs, size) == 0)
            count++;
        free(fs);
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
        fprintf(stderr, "usage: fs_read_seeds OUTDIR\n");
        return 2;
    }
    snprintf(out, sizeof out, "%s/fuzz_fs_read", argv[1]);
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return 1;
    }
    size_t good = seeds_of("fixtures/datafs", out, ""),
           bad = seeds_of("fixtures/datafs/bad", out, "bad-");
    printf("fs_read_seeds: %zu good and %zu damaged files in %s\n", good, bad, out);
    if (!good || !bad) {
        fprintf(stderr, "fs_read_seeds: fixtures not found (set ZEOLITE_SHARED_DIR)\n");
        return 1;
    }
    return 0;
}
