/* proto_seeds: write every recorded frame of shared/fixtures/wire as a seed
 * for fuzz_proto_decode (first byte 0 = Z5, 1 = M5, then the payload).
 * Usage: proto_seeds OUTDIR */
#include <stdio.h>
#include <string.h>

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
            snprintf(name, sizeof name, "%s/%s-%s-%zu", outdir, enc, f.scenario, j);
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
    if (argc != 2) {
        fprintf(stderr, "usage: proto_seeds OUTDIR\n");
        return 2;
    }
    if (write_seeds("z5", 0, argv[1], &count) || write_seeds("m5", 1, argv[1], &count)) {
        fprintf(stderr, "proto_seeds: fixtures not found (set ZEOLITE_SHARED_DIR)\n");
        return 1;
    }
    printf("%zu seeds in %s\n", count, argv[1]);
    return 0;
}
