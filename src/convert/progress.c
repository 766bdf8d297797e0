/* progress.c: a one-line progress bar on stderr for long conversions. */
#define _GNU_SOURCE
#include "convert/convert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct zfs_progress {
    char label[32];
    uint64_t total;
    double start, last;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

zfs_progress *zfs_progress_new(const char *label, uint64_t total, int quiet)
{
    if (quiet || !isatty(STDERR_FILENO))
        return NULL;
    zfs_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start = p->last = now();
    return p;
}

void zfs_progress_update(zfs_progress *p, uint64_t bytes, uint64_t txns)
{
    if (!p)
        return;
    double t = now();
    if (t - p->last < 0.2)
        return;
    p->last = t;
    double mb = bytes / 1e6, rate = mb / (t - p->start > 1e-3 ? t - p->start : 1e-3);
    char eta[32] = "--:--";
    if (p->total && rate > 0 && bytes <= p->total) {
        long s = (long)((p->total - bytes) / 1e6 / rate);
        snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
    }
    int pct = p->total ? (int)(100.0 * bytes / p->total) : 0;
    fprintf(stderr, "\r%s %3d%%  %.1f/%.1f MB  %" PRIu64 " txns  %.1f MB/s  ETA %s\033[K",
            p->label, pct, mb, p->total / 1e6, txns, rate, eta);
}

void zfs_progress_done(zfs_progress *p)
{
    if (!p)
        return;
    fprintf(stderr, "\r\033[K");
    free(p);
}
