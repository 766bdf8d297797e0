/* store_bench.c: command line, the order of the phases, and the report.
 *
 * Human-readable lines go to stdout as each phase ends; with --json the last
 * line is one JSON object with every figure (see the README of the issue for
 * the names). This is a benchmark, not a test: it is never run by ctest.
 */
#include "store_bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zfile.h"

static uint64_t heap_peak;

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* RssAnon counts the heap and thread stacks but not LMDB's file-backed map,
 * which is what "the store's own memory" means here. */
uint64_t bench_heap_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f) && sscanf(line, "RssAnon: %llu kB", &kb) != 1)
        ;
    fclose(f);
    return kb * 1024;
}

void bench_sample_heap(void)
{
    uint64_t now = bench_heap_now();
    if (now > heap_peak)
        heap_peak = now;
}

uint64_t bench_heap_peak(void)
{
    return heap_peak;
}

void bench_heap_reset(void)
{
    heap_peak = 0;
    bench_sample_heap();
}

uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: store_bench --objects N [--revisions R] [--seconds S] [--dir DIR] [--compact]\n"
            "                   [--json]\n"
            "  Fills a fresh store with N ~300-byte objects (R revisions each, default 3)\n"
            "  and measures loads, durable commits, group commit and pack.\n"
            "  --seconds S  length of each timed phase (default 2)\n"
            "  --dir DIR    database folder (must not hold a database; default: a temp dir,\n"
            "               removed at the end)\n"
            "  --compact    measure on a compacting copy of the filled store (no LMDB\n"
            "               free list left by the fill)\n"
            "  --json       print every figure as one JSON object on the last line\n");
}

static int parse_args(int argc, char **argv, bench_cfg *cfg)
{
    *cfg = (bench_cfg){.objects = 100000, .revisions = 3, .seconds = 2.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            cfg->json = 1;
        } else if (!strcmp(a, "--compact")) {
            cfg->compact = 1;
        } else if (v && !strcmp(a, "--objects")) {
            cfg->objects = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--revisions")) {
            cfg->revisions = atoi(v), i++;
        } else if (v && !strcmp(a, "--seconds")) {
            cfg->seconds = atof(v), i++;
        } else if (v && !strcmp(a, "--dir")) {
            cfg->dir = v, i++;
        } else {
            fprintf(stderr, "store_bench: bad argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (cfg->objects < 200 || cfg->revisions < 1 || cfg->seconds <= 0) {
        fprintf(stderr, "store_bench: need --objects >= 200, --revisions >= 1, --seconds > 0\n");
        return -1;
    }
    return 0;
}

#define COMMIT_ROUNDS 4

typedef struct bench_result {
    double fill_s;
    uint64_t fill_heap_peak;    /* the fill's big transactions, apart */
    bench_rate load, raw_load, commit1, commit10, commit100, raw_commit;
    group_result group;
    double pack_s;
    store_pack_stats pack;
} bench_result;

static int run_pack(bench_db *db, bench_result *r)
{
    zerr err;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double t0 = bench_now();
    int rc = store_pack(db->s, (double)now.tv_sec, 1, &r->pack, &err);
    r->pack_s = bench_now() - t0;
    if (rc)
        fprintf(stderr, "store_bench: pack: %s\n", err.msg);
    return rc;
}

/* 1-object commits and bare synced LMDB commits in alternating rounds, so
 * both see the same disk and the same neighbours on a shared machine. */
static int run_commits(bench_db *db, const bench_cfg *cfg, bench_result *r)
{
    raw_env *raw;
    double slice = cfg->seconds / COMMIT_ROUNDS;
    int rc = bench_raw_open(db->dir, &raw);
    for (int i = 0; i < COMMIT_ROUNDS && !rc; i++)
        if (!(rc = bench_raw_commits(raw, slice, &r->raw_commit)))
            rc = bench_commit_serial(db, slice, 1, &r->commit1);
    bench_raw_close(raw);
    if (rc || (rc = bench_commit_serial(db, cfg->seconds, 10, &r->commit10)) ||
        (rc = bench_commit_serial(db, cfg->seconds, 100, &r->commit100)))
        return rc;
    printf("durable commits/s: 1 object %.0f, 10 objects %.0f, 100 objects %.0f; "
           "bare synced LMDB %.0f\n",
           bench_per_s(&r->commit1), bench_per_s(&r->commit10), bench_per_s(&r->commit100),
           bench_per_s(&r->raw_commit));
    return 0;
}

static int run_phases(bench_db *db, const bench_cfg *cfg, bench_result *r)
{
    int rc;
    if ((rc = bench_fill(db, cfg, &r->fill_s)))
        return rc;
    r->fill_heap_peak = bench_heap_peak();
    bench_heap_reset();
    printf("fill: %llu objects x %d revisions in %.1f s (heap now %llu bytes)\n",
           (unsigned long long)cfg->objects, cfg->revisions, r->fill_s,
           (unsigned long long)bench_heap_now());
    if ((rc = bench_load(db, cfg, &r->load, &r->raw_load)))
        return rc;
    printf("load_before: %.0f/s, raw LMDB: %.0f/s (ratio %.2f)\n", bench_per_s(&r->load),
           bench_per_s(&r->raw_load), bench_per_s(&r->load) / bench_per_s(&r->raw_load));
    if ((rc = run_commits(db, cfg, r)) || (rc = bench_commit_group(db, cfg, 8, 10, &r->group)))
        return rc;
    printf("group commit, 8 threads x 10 objects: %.0f commits/s, %llu commits in %llu syncs\n",
           r->group.rate, (unsigned long long)r->group.commits,
           (unsigned long long)r->group.syncs);
    if ((rc = run_pack(db, r)))
        return rc;
    printf("pack: %.2f s, %llu -> %llu bytes, %llu records and %llu objects removed "
           "(heap now %llu bytes)\n", r->pack_s,
           (unsigned long long)r->pack.bytes_before, (unsigned long long)r->pack.bytes_after,
           (unsigned long long)r->pack.records_removed,
           (unsigned long long)r->pack.objects_removed, (unsigned long long)bench_heap_now());
    bench_sample_heap();
    printf("heap (RssAnon) peak: %llu bytes after the fill, %llu during it\n",
           (unsigned long long)bench_heap_peak(), (unsigned long long)r->fill_heap_peak);
    return 0;
}

typedef struct json_field {
    const char *name;
    double value;
    int decimals;
} json_field;

static void print_json(const bench_cfg *cfg, const bench_result *r)
{
    double gb = (double)r->pack.bytes_before / 1e9;
    double load = bench_per_s(&r->load), raw_load = bench_per_s(&r->raw_load);
    double c1 = bench_per_s(&r->commit1), raw_c = bench_per_s(&r->raw_commit);
    const json_field f[] = {
        {"objects", (double)cfg->objects, 0},
        {"revisions", cfg->revisions, 0},
        {"fill_seconds", r->fill_s, 2},
        {"load_before_per_s", load, 0},
        {"raw_lmdb_per_s", raw_load, 0},
        {"load_ratio", load / raw_load, 3},
        {"commit_per_s_1", c1, 1},
        {"commit_per_s_10", bench_per_s(&r->commit10), 1},
        {"commit_per_s_100", bench_per_s(&r->commit100), 1},
        {"raw_lmdb_sync_commit_per_s", raw_c, 1},
        {"commit1_cost_vs_raw", raw_c / c1, 3},
        {"group_commit_per_s_8", r->group.rate, 1},
        {"group_commits", (double)r->group.commits, 0},
        {"group_syncs", (double)r->group.syncs, 0},
        {"heap_peak_bytes", (double)bench_heap_peak(), 0},
        {"fill_heap_peak_bytes", (double)r->fill_heap_peak, 0},
        {"pack_seconds", r->pack_s, 3},
        {"pack_bytes_before", (double)r->pack.bytes_before, 0},
        {"pack_bytes_after", (double)r->pack.bytes_after, 0},
        {"pack_records_removed", (double)r->pack.records_removed, 0},
        {"pack_seconds_per_gb", gb > 0 ? r->pack_s / gb : 0.0, 3},
    };
    printf("{\"compact\": %s", cfg->compact ? "true" : "false");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        printf(", \"%s\": %.*f", f[i].name, f[i].decimals, f[i].value);
    printf("}\n");
}

static int make_dir(const bench_cfg *cfg, bench_db *db)
{
    if (cfg->dir) {
        snprintf(db->dir, sizeof db->dir, "%s", cfg->dir);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(db->dir, sizeof db->dir, "%s/store_bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(db->dir)) {
        fprintf(stderr, "store_bench: mkdtemp %s: %s\n", db->dir, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_cfg cfg;
    bench_db db = {0};
    bench_result r = {0};

    if (parse_args(argc, argv, &cfg) || make_dir(&cfg, &db))
        return 2;
    char root[sizeof db.dir];   /* db.dir moves into it with --compact */
    memcpy(root, db.dir, sizeof root);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = run_phases(&db, &cfg, &r);
    store_close(db.s);
    free(db.oids);
    zerr err;
    if (!cfg.dir && zfile_rm_rf(root, &err) != 0)
        fprintf(stderr, "store_bench: could not remove %s: %s\n", root, err.msg);
    if (rc)
        return 1;
    if (cfg.json)
        print_json(&cfg, &r);
    return 0;
}
