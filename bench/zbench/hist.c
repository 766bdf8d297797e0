/* hist.c: a fixed-size log-linear latency histogram. */
#include "bench_int.h"

#include <stdlib.h>

#define LINEAR 1024  /* exact microseconds below this */
#define SUB_BITS 9   /* 512 sub-buckets per power of two above */
#define TOP_BIT 44   /* ~ 200 days in us: nothing real is slower */

static size_t bucket_of(uint64_t us)
{
    if (us < LINEAR)
        return (size_t)us;
    int msb = 63 - __builtin_clzll(us);
    if (msb >= TOP_BIT)
        msb = TOP_BIT - 1, us = (1ULL << TOP_BIT) - 1;
    size_t sub = (size_t)(us >> (msb - SUB_BITS)) & ((1u << SUB_BITS) - 1);
    return LINEAR + (size_t)(msb - 10) * (1u << SUB_BITS) + sub;
}

/* The lowest value that falls into bucket b. */
static double bucket_value(size_t b)
{
    if (b < LINEAR)
        return (double)b;
    size_t k = b - LINEAR;
    int msb = (int)(k >> SUB_BITS) + 10;
    uint64_t sub = k & ((1u << SUB_BITS) - 1);
    return (double)((1ULL << msb) | (sub << (msb - SUB_BITS)));
}

int zb_hist_init(zb_hist *h)
{
    h->nbuckets = LINEAR + (size_t)(TOP_BIT - 10) * (1u << SUB_BITS);
    h->counts = calloc(h->nbuckets, sizeof *h->counts);
    h->n = 0;
    h->sum_us = h->max_us = 0;
    return h->counts ? 0 : ZE_NOMEM;
}

void zb_hist_free(zb_hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void zb_hist_add(zb_hist *h, uint64_t ns)
{
    uint64_t us = ns / 1000;
    h->counts[bucket_of(us)]++;
    h->n++;
    double v = (double)ns / 1000.0;
    h->sum_us += v;
    if (v > h->max_us)
        h->max_us = v;
}

double zb_hist_quantile(const zb_hist *h, double p)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < h->nbuckets; b++) {
        seen += h->counts[b];
        if (seen >= rank)
            return bucket_value(b);
    }
    return h->max_us;
}
