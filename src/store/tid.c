/* tid.c: ZODB TimeStamps (spec zeo-protocol.md section 12).
 *
 * High u32: minutes since 1900-01-01 UTC in a calendar of 12 months of 31
 * days. Low u32: seconds within the minute as a fraction of 60 (truncated). */
#include "store/store.h"

#include <math.h>
#include <time.h>

#define SCONV (60.0 / 4294967296.0)   /* seconds per unit of the low word */

static uint64_t tid_from_tm(const struct tm *tm, double seconds)
{
    uint64_t a = ((((uint64_t)(tm->tm_year) * 12 + (uint64_t)tm->tm_mon) * 31 +
                   (uint64_t)(tm->tm_mday - 1)) * 24 + (uint64_t)tm->tm_hour) * 60 +
                 (uint64_t)tm->tm_min;
    double b = seconds / SCONV;
    if (b >= 4294967295.0)
        b = 4294967295.0;
    return (a << 32) | (uint32_t)b;
}

static void tm_from_tid(uint64_t tid, struct tm *tm)
{
    uint32_t a = (uint32_t)(tid >> 32);
    *tm = (struct tm){0};
    tm->tm_min = (int)(a % 60);
    tm->tm_hour = (int)(a / 60 % 24);
    tm->tm_mday = (int)(a / 1440 % 31) + 1;
    tm->tm_mon = (int)(a / 44640 % 12);
    tm->tm_year = (int)(a / 535680);
}

uint64_t store_tid_from_time(double t)
{
    if (t < 0)
        t = 0;
    time_t whole = (time_t)t;
    struct tm tm;
    gmtime_r(&whole, &tm);
    return tid_from_tm(&tm, fmod(t, 60.0));
}

double store_tid_time(uint64_t tid)
{
    struct tm tm;
    tm_from_tid(tid, &tm);
    double t = (double)timegm(&tm) + (double)(uint32_t)tid * SCONV;
    return round(t * 1e6) / 1e6;
}

/* laterThan(last): last plus one unit of the low word, carrying into the
 * minute (with real month lengths) when the low word is full. */
static uint64_t tid_after(uint64_t last)
{
    if ((uint32_t)last != UINT32_MAX)
        return last + 1;
    struct tm tm;
    tm_from_tid(last, &tm);
    time_t t = timegm(&tm) + 60;
    gmtime_r(&t, &tm);
    return tid_from_tm(&tm, 0);
}

uint64_t store_tid_now(uint64_t last)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    uint64_t tid = store_tid_from_time(now);
    return tid > last ? tid : tid_after(last);
}
