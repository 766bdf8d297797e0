/* tid.c: ZODB TimeStamp tids <-> seconds since the epoch (spec section 12.2). */
#define _GNU_SOURCE /* timegm */
#include "client/client.h"

#include <math.h>
#include <time.h>

double zcl_tid_time(uint64_t tid)
{
    uint32_t a = (uint32_t)(tid >> 32), b = (uint32_t)tid;
    struct tm tm = {0};
    tm.tm_min = (int)(a % 60);
    tm.tm_hour = (int)(a / 60 % 24);
    tm.tm_mday = (int)(a / 1440 % 31 + 1);
    tm.tm_mon = (int)(a / 44640 % 12);
    tm.tm_year = (int)(a / 535680);
    return (double)timegm(&tm) + (double)b * 60.0 / 4294967296.0;
}

uint64_t zcl_tid_from_time(double t)
{
    time_t whole = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&whole, &tm);
    uint64_t a = ((((uint64_t)tm.tm_year * 12 + (uint64_t)tm.tm_mon) * 31 +
                   (uint64_t)tm.tm_mday - 1) * 24 + (uint64_t)tm.tm_hour) * 60 +
                 (uint64_t)tm.tm_min;
    double sec = (double)tm.tm_sec + (t - floor(t));
    uint64_t b = (uint64_t)(sec * 4294967296.0 / 60.0);
    if (b > 0xffffffffULL)
        b = 0xffffffffULL;
    return (a << 32) | b;
}
