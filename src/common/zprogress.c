/* zprogress.c: progress of a long job on stderr (see zprogress.h). */
#define _GNU_SOURCE
#include "common/zprogress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTY_REDRAW 0.2   /* seconds between redraws of the terminal line */

struct zprogress {
    char label[32];
    char unit[32];
    uint64_t total;
    int tty;
    double interval;
    double start, last;
    int printed;         /* a line was printed since the start */
};

const zprogress_opts zprogress_silent = {.quiet = 1};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

zprogress *zprogress_new(const char *label, uint64_t total, const zprogress_opts *o)
{
    if (o && o->quiet)
        return NULL;
    zprogress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", o && o->unit ? o->unit : "transactions");
    p->total = total;
    p->tty = isatty(STDERR_FILENO);
    p->interval = o ? o->interval : ZPROGRESS_INTERVAL;
    p->start = p->last = now();
    return p;
}

/* Whether a line is due now; marks it printed. */
static int due(zprogress *p, double t)
{
    double gap = p->tty ? TTY_REDRAW : p->interval;
    if (gap > 0 && t - p->last < gap)
        return 0;
    p->last = t;
    p->printed = 1;
    return 1;
}

static void eta_text(const zprogress *p, uint64_t bytes, double rate, char *buf, size_t cap)
{
    snprintf(buf, cap, "--:--");
    if (p->total && rate > 0 && bytes <= p->total) {
        long s = (long)((double)(p->total - bytes) / 1e6 / rate);
        snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
    }
}

void zprogress_update(zprogress *p, uint64_t bytes, uint64_t count)
{
    if (!p)
        return;
    double t = now();
    if (!due(p, t))
        return;
    double mb = bytes / 1e6, secs = t - p->start > 1e-3 ? t - p->start : 1e-3;
    double rate = mb / secs;
    char eta[32];
    eta_text(p, bytes, rate, eta, sizeof eta);
    int pct = p->total ? (int)(100.0 * (double)bytes / (double)p->total) : 0;
    if (p->tty && p->total)
        fprintf(stderr, "\r%s %3d%%  %.1f/%.1f MB  %" PRIu64 " %s  %.1f MB/s  ETA %s\033[K",
                p->label, pct, mb, p->total / 1e6, count, p->unit, rate, eta);
    else if (p->tty)
        fprintf(stderr, "\r%s  %.1f MB  %" PRIu64 " %s  %.1f MB/s\033[K", p->label, mb, count,
                p->unit, rate);
    else if (p->total)
        fprintf(stderr, "%s: %d%% (%.1f of %.1f MB), %" PRIu64 " %s, %.1f MB/s, ETA %s\n",
                p->label, pct, mb, p->total / 1e6, count, p->unit, rate, eta);
    else
        fprintf(stderr, "%s: %.1f MB, %" PRIu64 " %s, %.1f MB/s\n", p->label, mb, count,
                p->unit, rate);
}

void zprogress_note(zprogress *p, const char *what)
{
    if (!p)
        return;
    double t = now();
    if (!due(p, t))
        return;
    if (p->tty)
        fprintf(stderr, "\r%s: %s, %.0f s\033[K", p->label, what, t - p->start);
    else
        fprintf(stderr, "%s: %s, %.0f s\n", p->label, what, t - p->start);
}

void zprogress_done(zprogress *p)
{
    if (!p)
        return;
    if (p->tty && p->printed)
        fprintf(stderr, "\r\033[K");
    free(p);
}
