/* ztid.c: ZODB TimeStamp arithmetic (see ztid.h for the contract and where
 * it departs from persistent's C code). */
#include "common/ztid.h"

#include <math.h>
#include <time.h>

#include "common/zerr.h"

/* Seconds per unit of b: 60 / 2**32, exact in a double. */
#define SEC_PER_UNIT (60.0 / 65536.0 / 65536.0)
#define MIN_PER_DAY 1440u
#define MIN_PER_MONTH (31u * MIN_PER_DAY)
#define MIN_PER_YEAR (12u * MIN_PER_MONTH)

static const unsigned char month_len[2][12] = {
    {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
    {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
};

static const short month_start[2][12] = {
    {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334},
    {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335},
};

static int leap(int y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* The date fields of a minute word; month and day from 0. */
typedef struct tparts {
    int year, month, day, minute;   /* minute of the day */
} tparts;

static tparts unpack(uint32_t a)
{
    return (tparts){(int)(a / MIN_PER_YEAR) + 1900, (int)(a % MIN_PER_YEAR / MIN_PER_MONTH),
                    (int)(a % MIN_PER_MONTH / MIN_PER_DAY), (int)(a % MIN_PER_DAY)};
}

/* The minute word of p, or UINT64_MAX when it is past the encoding. Years
 * stay below 10000 here, so nothing overflows 64 bits. */
static uint64_t pack(tparts p)
{
    uint64_t a = (((uint64_t)(p.year - 1900) * 12 + (uint64_t)p.month) * 31 + (uint64_t)p.day) *
                     MIN_PER_DAY + (uint64_t)p.minute;
    return a > UINT32_MAX ? UINT64_MAX : a;
}

/* _yad and _abst of _timestamp.c, kept to the same double operations so
 * that timeTime() comes out bit for bit the same. */
static double days_before_year(int y)
{
    y -= 1900;
    double d = (y - 1) * 365, s;
    if (y > 0) {
        s = 1.0;
        y -= 1;
    } else {
        s = -1.0;
        y = -y;
    }
    return d + s * (y / 4 - y / 100 + (y + 300) / 400);
}

static double abs_seconds(int y, int mo, int d, int m)
{
    return (days_before_year(y) + month_start[leap(y)][mo] + d) * 86400 + m * 60;
}

double ztid_time(uint64_t tid)
{
    tparts p = unpack((uint32_t)(tid >> 32));
    double epoch = abs_seconds(1970, 0, 0, 0);
    double sec = SEC_PER_UNIT * (uint32_t)tid;
    return abs_seconds(p.year, p.month, p.day, p.minute) + sec - epoch;
}

/* Howard Hinnant's days_from_civil inverse: the civil date of a day count
 * from 1970-01-01. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

int ztid_from_time(double t, uint64_t *tid)
{
    if (!(t >= ZTID_TIME_MIN && t < ZTID_TIME_END))
        return ZE_INVAL;   /* NaN fails the test too */
    /* time.gmtime floors a float; Python's % gives a result in [0, 60]. */
    int64_t whole = (int64_t)floor(t);
    int64_t days = whole >= 0 ? whole / 86400 : -((-whole + 86399) / 86400);
    int64_t of_day = whole - days * 86400;
    double sec = fmod(t, 60.0);
    if (sec < 0)
        sec += 60.0;
    tparts p = {0, 0, 0, (int)(of_day / 60)};
    civil_from_days(days, &p.year, &p.month, &p.day);
    p.month--;
    p.day--;
    double b = sec / SEC_PER_UNIT;
    /* Only sec == 60.0 (t % 60 rounded up) reaches 2**32. */
    uint32_t low = b >= 4294967295.0 ? UINT32_MAX : (uint32_t)b;
    *tid = pack(p) << 32 | low;
    return 0;
}

int ztid_later(uint64_t tid, uint64_t last, uint64_t *out)
{
    if (tid > last) {
        *out = tid;
        return 0;
    }
    if ((uint32_t)last != UINT32_MAX) {
        *out = last + 1;
        return 0;
    }
    tparts p = unpack((uint32_t)(last >> 32));
    if (p.minute < (int)MIN_PER_DAY - 1) {
        p.minute++;
    } else {
        p.minute = 0;
        if (p.day + 1 < month_len[leap(p.year)][p.month]) {
            p.day++;
        } else {
            p.day = 0;
            if (++p.month == 12) {
                p.month = 0;
                p.year++;
            }
        }
    }
    uint64_t a = pack(p);
    if (a == UINT64_MAX)
        return ZE_TOOBIG;
    *out = a << 32;
    return 0;
}

int ztid_now(uint64_t last, uint64_t *out)
{
    struct timespec ts;
    uint64_t tid;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = ztid_from_time((double)ts.tv_sec + (double)ts.tv_nsec / 1e9, &tid);
    return rc ? rc : ztid_later(tid, last, out);
}

bool ztid_fits(uint64_t tid)
{
    tparts p = unpack((uint32_t)(tid >> 32));
    return p.day < month_len[leap(p.year)][p.month];
}

int ztid_check_client(uint64_t tid, double now, double max_ahead, zerr *err)
{
    if (tid >= ZTID_ZODB_MAX)
        return zerr_set(err, ZE_INVAL, "tid %016llx is not below ZODB's maxtid %016llx",
                        (unsigned long long)tid, (unsigned long long)ZTID_ZODB_MAX);
    if (!ztid_fits(tid))
        return zerr_set(err, ZE_INVAL, "tid %016llx is not a date: its day is past the "
                        "end of its month", (unsigned long long)tid);
    double ahead = ztid_time(tid) - now;
    if (ahead > max_ahead)
        return zerr_set(err, ZE_INVAL, "tid %016llx lies %.0f seconds past the server's "
                        "clock (at most %g allowed)", (unsigned long long)tid, ahead, max_ahead);
    return 0;
}
