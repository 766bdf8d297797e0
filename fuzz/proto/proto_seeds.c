/* proto_seeds: write every recorded frame of shared/fixtures/wire as a seed
 * for fuzz_proto_decode (first byte 0 = Z5, 1 = M5, then the payload).
 * Usage: proto_seeds OUTDIR (the seeds go to OUTDIR/fuzz_proto_decode). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "wirefix.h"

static int write_seeds(const char *enc, uint8_t tag, const char *outdir, size_t *count)
{
    size_t n;
    char **paths = wf_list(enc, &n);
    if (!paths)
        return -1;
    for (size_t i = 0; i < n; i++) {
        wf_file f;
        if (wf_load(paths[i], &f))
            continue;
        for (size_t j = 0; j < f.n; j++) {
            char name[512];
            uint8_t buf[1 << 16];
            if (f.frames[j].len + 1 > sizeof buf || !strcmp(f.frames[j].kind, "handshake"))
                continue;
            buf[0] = tag;
            memcpy(buf + 1, f.frames[j].payload, f.frames[j].len);
            /* the file's number too: a scenario is recorded once per server mode */
            snprintf(name, sizeof name, "%s/%s-%zu-%s-%zu", outdir, enc, i, f.scenario, j);
            if (tu_write_file(name, buf, f.frames[j].len + 1) == 0)
                (*count)++;
        }
        wf_free(&f);
    }
    wf_list_free(paths, n);
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    char out[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: proto_seeds OUTDIR\n");
        return 2;
    }
    snprintf(out, sizeof out, "%s/fuzz_proto_decode", argv[1]);
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return 1;
    }
    if (write_seeds("z5", 0, out, &count) || write_seeds("m5", 1, out, &count) || !count) {
        fprintf(stderr, "proto_seeds: fixtures not found (set ZEOLITE_SHARED_DIR)\n");
        return 1;
    }
    printf("proto_seeds: %zu seeds in %s\n", count, out);
    return 0;
}
