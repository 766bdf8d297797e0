/* resolve_seeds: write libFuzzer seeds for fuzz_resolve from a case file
 * of gen_cases.py (test/resolve/fixtures/cases.bin): every case as three
 * whole records, and its states alone after the class byte.
 * Usage: resolve_seeds OUTDIR [CASES_FILE] (the seeds go to
 * OUTDIR/fuzz_resolve; the cases file defaults to the committed one). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zbuf.h"
#include "resolve/cases.h"
#include "testutil.h"

static const char *const families[] = {"IO", "II", "IF", "LO", "LL", "LF", "OO", "OI", "OL"};
static const char *const shapes[] = {"Bucket", "Set", "BTree", "TreeSet"};

/* fuzz_resolve's class number of "BTrees.XXBTree.XXShape" or Length. */
static int class_number(const char *klass)
{
    if (!strcmp(klass, "BTrees.Length.Length"))
        return 36;
    for (int f = 0; f < 9; f++)
        for (int s = 0; s < 4; s++) {
            char name[80];
            snprintf(name, sizeof name, "BTrees.%sBTree.%s%s", families[f], families[f], shapes[s]);
            if (!strcmp(name, klass))
                return f * 4 + s;
        }
    return 38;
}

/* Where the state starts: after the class pickle, which ends with the
 * first STOP of a plain "PROTO 3, GLOBAL, BINPUT 0, STOP" class pickle. */
static size_t state_at(const uint8_t *rec, size_t len)
{
    const uint8_t *stop = memchr(rec, '.', len);
    while (stop && (size_t)(stop - rec) + 1 < len && stop[-1] != 0)
        stop = memchr(stop + 1, '.', len - (size_t)(stop - rec) - 1);
    return stop ? (size_t)(stop - rec) + 1 : len;
}

static void write_seed(const char *dir, unsigned n, const rcase *c, int whole)
{
    zbuf b = ZBUF_INIT;
    uint8_t head[6] = {(uint8_t)class_number(c->klass), (uint8_t)whole};
    const uint8_t *p[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        size_t skip = whole ? 0 : state_at(c->rec[i], c->len[i]);
        p[i] = c->rec[i] + skip;
        len[i] = c->len[i] - skip;
    }
    if (len[0] > 0xffff || len[1] > 0xffff)
        return;
    head[2] = (uint8_t)len[0];
    head[3] = (uint8_t)(len[0] >> 8);
    head[4] = (uint8_t)len[1];
    head[5] = (uint8_t)(len[1] >> 8);
    zbuf_append(&b, head, sizeof head);
    for (int i = 0; i < 3; i++)
        zbuf_append(&b, p[i], len[i]);
    char path[1024];
    snprintf(path, sizeof path, "%s/case-%u-%s", dir, n, whole ? "records" : "states");
    tu_write_file(path, b.data, b.len);
    zbuf_free(&b);
}

int main(int argc, char **argv)
{
    rcases f;
    rcase c;
    unsigned n = 0;
    char out[1024];
    const char *cases = argc > 2 ? argv[2] : ZEOLITE_RESOLVE_FIXTURE;
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: resolve_seeds OUTDIR [CASES_FILE]\n");
        return 2;
    }
    snprintf(out, sizeof out, "%s/fuzz_resolve", argv[1]);
    if (mkdir(out, 0755) && errno != EEXIST) {
        perror(out);
        return 1;
    }
    if (cases_open(&f, cases)) {
        fprintf(stderr, "resolve_seeds: cannot read %s\n", cases);
        return 1;
    }
    while (cases_next(&f, &c) == 1) {
        write_seed(out, n, &c, 1);
        write_seed(out, n, &c, 0);
        n++;
    }
    cases_close(&f);
    printf("resolve_seeds: %u cases, %u seeds in %s\n", n, 2 * n, out);
    return n ? 0 : 1;
}
