/* ztid: tid <-> time against ZODB's own TimeStamp.
 *
 * Every expected value below was computed with persistent's C TimeStamp
 * (Debian's python3-persistent, /usr/bin/python3), as ZODB does it:
 *   from persistent.TimeStamp import TimeStamp; import time
 *   TimeStamp(*time.gmtime(t)[:5] + (t % 60,)).raw().hex()      # from_time
 *   repr(TimeStamp(bytes.fromhex(tid)).timeTime())               # time
 *   TimeStamp(bytes.fromhex(s)).laterThan(TimeStamp(bytes.fromhex(last))).raw().hex()
 * The cases where zeolite departs from that code on purpose (it overflows or
 * raises there) say what Python gave.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/zerr.h"
#include "common/ztid.h"

typedef struct time_case {
    double t;
    uint64_t tid;
} time_case;

static uint64_t from_time(double t)
{
    uint64_t tid = 0xdeadbeef;
    int rc = ztid_from_time(t, &tid);
    cr_assert_eq(rc, 0, "ztid_from_time(%.17g) refused", t);
    return tid;
}

Test(ztid, from_time_is_zodbs_newtid_formula)
{
    static const time_case cases[] = {
        {-2208988800.0, 0x0000000000000000ull},       /* 1900-01-01 00:00:00, the first tid */
        {0.0, 0x023c2b0000000000ull},                  /* the epoch */
        {-0.25, 0x023c2afffeeeeeeeull},               /* gmtime floors, % is Python's */
        {-1.0, 0x023c2afffbbbbbbbull},
        {1e-07, 0x023c2b0000000007ull},
        {946684799.999999, 0x033161ffffffffbbull},    /* 1999-12-31 23:59:59.999999 */
        {946684800.0, 0x0331620000000000ull},         /* 2000-01-01 */
        {951782400.0, 0x0332ade000000000ull},         /* 2000-02-29, a leap day */
        {951868799.5, 0x0332b37ffdddddddull},
        {2147483647.0, 0x046863021dddddddull},        /* 2038-01-19 03:14:07 */
        {2147483647.999, 0x0468630222210a88ull},
        {2147483648.5, 0x0468630224444444ull},        /* past 32-bit time_t */
        {4102444800.0, 0x0662c40000000000ull},        /* 2100-01-01 */
        {1795620942.121551, 0x040d4167b3b7f755ull},   /* the spec's example */
        {1715938259.999999, 0x03f8a3baffffffbbull},   /* a minute's last microsecond */
        {1715938260.0, 0x03f8a3bb00000000ull},        /* the next minute */
        {1715938200.0, 0x03f8a3ba00000000ull},
        {59.99999999999999, 0x023c2b00ffffffffull},   /* the largest double below a minute */
        {119.99999999999999, 0x023c2b01ffffffffull},
        {250807810559.75, 0xfffffffffeeeeeeeull},     /* 9917-10-14 04:15:59.75, the last minute */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_eq(from_time(cases[i].t), cases[i].tid, "t=%.17g: %016llx, want %016llx",
                     cases[i].t, (unsigned long long)from_time(cases[i].t),
                     (unsigned long long)cases[i].tid);
}

Test(ztid, from_time_refuses_what_the_encoding_cannot_hold)
{
    /* Python: ValueError "year must be greater than 1900" for the first two;
     * the minute word wraps for the others (9999-12-31 23:59:59 gave
     * 02a001fffbbbbbbb, 9917-10-14 04:16:00 gave 0000000000000000). */
    static const double bad[] = {-2208988800.5, -2208988801.0, 253402300799.0,
                                 ZTID_TIME_END, 1e15, -1e300};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t tid = 42;
        cr_expect_eq(ztid_from_time(bad[i], &tid), ZE_INVAL, "t=%.17g", bad[i]);
        cr_expect_eq(tid, 42, "the tid is left alone on failure");
    }
    uint64_t tid;
    cr_expect_eq(ztid_from_time(NAN, &tid), ZE_INVAL);
    cr_expect_eq(ztid_from_time(INFINITY, &tid), ZE_INVAL);
    cr_expect_eq(ztid_from_time(-INFINITY, &tid), ZE_INVAL);
}

Test(ztid, a_remainder_rounded_up_to_sixty_stays_in_its_minute)
{
    /* -1e-20 % 60 is 60.0 in Python; C turns 60 / (60 / 2**32) into b = 0
     * and gives 023c2aff00000000, a minute before t. We keep b full. */
    cr_expect_eq(from_time(-1e-20), 0x023c2affffffffffull);
}

Test(ztid, time_is_timetime_to_the_bit)
{
    static const time_case cases[] = {
        {-2208988800.0, 0x0000000000000000ull},
        {1795620942.121551, 0x040d4167b3b7f755ull},
        {1715938202.0, 0x03f8a3ba08888888ull},
        {1044593700.0, 0x034ab8c6ffffffffull},    /* b full rounds into the next minute */
        {-2208988740.0, 0x0000000100000001ull},
        {124299454080.0, 0x7fffffffffffffffull},  /* maxtid: 5908-11-23 02:07:60 */
        {250807810500.0, 0xffffffff00000000ull},
        {250807810560.0, 0xffffffffffffffffull},  /* the last tid */
        {951782400.0, 0x0332ade000000000ull},     /* 2000-02-29 */
        {-2203891200.0, 0x00014be000000000ull},   /* "1900-02-29" counts on into March 1 */
        {983620800.0, 0x033ae87000000000ull},     /* "2001-02-31 12:00" */
        {988761600.0, 0x033c47ffffffffffull},     /* "2001-04-31 23:59:60" */
        {0.0, 0x023c2affffffffffull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_eq(ztid_time(cases[i].tid), cases[i].t, "%016llx: %.17g, want %.17g",
                     (unsigned long long)cases[i].tid, ztid_time(cases[i].tid), cases[i].t);
    cr_expect_eq(ztid_time(UINT64_MAX), ZTID_TIME_END);
    cr_expect_eq(ztid_time(0), ZTID_TIME_MIN);
}

typedef struct later_case {
    uint64_t tid, last, want;
} later_case;

Test(ztid, later_is_laterthan)
{
    static const later_case cases[] = {
        {0x040d4167b3b7f755ull, 0x040d4167b3b7f754ull, 0x040d4167b3b7f755ull},  /* already later */
        {0x040d4167b3b7f755ull, 0x040d4167b3b7f755ull, 0x040d4167b3b7f756ull},  /* equal */
        {0x040d4167b3b7f755ull, 0x040d4167b3b7f756ull, 0x040d4167b3b7f757ull},  /* clock behind */
        {0x0000000000000000ull, 0x040d4167b3b7f755ull, 0x040d4167b3b7f756ull},
        /* b full: the next minute, with real month lengths */
        {0, 0x040d4167ffffffffull, 0x040d416800000000ull},   /* 2026-11-25 15:35 */
        {0, 0x033a3cdfffffffffull, 0x033a3ce000000000ull},   /* 2001-01-31 23:59 -> 02-01 */
        {0, 0x00014bdfffffffffull, 0x00015cc000000000ull},   /* 1900-02-28 -> 03-01 (no leap) */
        {0, 0x0332addfffffffffull, 0x0332ade000000000ull},   /* 2000-02-28 -> 02-29 */
        {0, 0x0332b37fffffffffull, 0x0332bec000000000ull},   /* 2000-02-29 -> 03-01 */
        {0, 0x033161ffffffffffull, 0x0331620000000000ull},   /* 1999-12-31 -> 2000-01-01 */
        {0, 0x033c425fffffffffull, 0x033c480000000000ull},   /* 2001-04-30 -> 05-01 */
        {0, 0x033c3fb2ffffffffull, 0x033c3fb300000000ull},   /* 12:34 -> 12:35 */
        {0, 0xfffffffeffffffffull, 0xffffffff00000000ull},   /* into the last minute */
        {0, 0xfffffffffffffffeull, 0xffffffffffffffffull},   /* the last tid */
        {0, 0x7fffffffffffffffull, 0x8000000000000000ull},   /* past maxtid: policy is the caller's */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t out = 0;
        cr_expect_eq(ztid_later(cases[i].tid, cases[i].last, &out), 0);
        cr_expect_eq(out, cases[i].want, "later(%016llx, %016llx) = %016llx, want %016llx",
                     (unsigned long long)cases[i].tid, (unsigned long long)cases[i].last,
                     (unsigned long long)out, (unsigned long long)cases[i].want);
    }
}

Test(ztid, nothing_follows_the_last_tid)
{
    /* Python's laterThan wraps to 0000000000000000 here. */
    uint64_t out = 7;
    cr_expect_eq(ztid_later(0, UINT64_MAX, &out), ZE_TOOBIG);
    cr_expect_eq(ztid_later(UINT64_MAX, UINT64_MAX, &out), ZE_TOOBIG);
    cr_expect_eq(out, 7);
    cr_expect_eq(ztid_now(UINT64_MAX, &out), ZE_TOOBIG);
    cr_expect_eq(out, 7);
}

Test(ztid, a_day_past_its_month_carries_to_the_next_month)
{
    /* Python raises ValueError ("day must be between 1 and 30: 32", "... 28:
     * 30") building these dates; we carry on as the calendar does. */
    uint64_t out;
    cr_expect_eq(ztid_later(0, 0x033c47ffffffffffull, &out), 0);   /* "2001-04-31 23:59" */
    cr_expect_eq(out, 0x033c480000000000ull);                      /* 2001-05-01 00:00 */
    cr_expect_eq(ztid_later(0, 0x033ae293ffffffffull, &out), 0);   /* "2001-02-30 10:59" */
    cr_expect_eq(out, 0x033ae29400000000ull);                      /* "2001-02-30 11:00" */
}

Test(ztid, fits_says_whether_the_date_is_real)
{
    cr_expect(ztid_fits(0));
    cr_expect(ztid_fits(UINT64_MAX));                 /* 9917-10-14 04:15 */
    cr_expect(ztid_fits(0x0332ade000000000ull));      /* 2000-02-29 */
    cr_expect(ztid_fits(0x033c425fffffffffull));      /* 2001-04-30 */
    cr_expect(!ztid_fits(0x00014be000000000ull));     /* 1900-02-29: 1900 is no leap year */
    cr_expect(!ztid_fits(0x033c47ffffffffffull));     /* 2001-04-31 */
    cr_expect(!ztid_fits(0x033ae293ffffffffull));     /* 2001-02-30 */
    cr_expect(!ztid_fits(0x033ae87000000000ull));     /* 2001-02-31 */
}

Test(ztid, the_clock_going_backwards_still_gives_increasing_tids)
{
    /* Commits at 42.12 s, then the clock steps back 40 s: each new tid is
     * the last plus one unit until the clock catches up. */
    uint64_t last = from_time(1795620942.121551), tid;
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(ztid_later(from_time(1795620902.0 + i), last, &tid), 0);
        cr_expect_eq(tid, 0x040d4167b3b7f755ull + (uint64_t)i);
        last = tid;
    }
    cr_assert_eq(ztid_later(from_time(1795620950.0), last, &tid), 0);
    cr_expect_eq(tid, from_time(1795620950.0), "the clock is ahead again: its own tid");
}

Test(ztid, every_minute_of_a_leap_year_increases_and_decodes)
{
    /* 2000: a leap year whose February ends on the 29th. Each minute's tid
     * fits, follows the previous one, and laterThan of its predecessor's
     * full b is exactly it. */
    uint64_t prev = 0;
    for (double t = 946684800.0; t < 978307200.0; t += 60.0) {
        uint64_t tid = from_time(t), next;
        cr_assert((uint32_t)tid == 0 && ztid_fits(tid), "%.0f", t);
        cr_assert_eq(ztid_time(tid), t, "%.0f", t);
        if (prev) {
            cr_assert_gt(tid, prev);
            cr_assert_eq(ztid_later(0, prev | UINT32_MAX, &next), 0);
            cr_assert_eq(next, tid, "%.0f: %016llx after %016llx", t, (unsigned long long)next,
                         (unsigned long long)prev);
        }
        prev = tid;
    }
}

Test(ztid, now_reads_the_clock_and_stays_after_last)
{
    struct timespec a, b;
    uint64_t tid, lo, hi;
    clock_gettime(CLOCK_REALTIME, &a);
    cr_assert_eq(ztid_now(0, &tid), 0);
    clock_gettime(CLOCK_REALTIME, &b);
    lo = from_time((double)a.tv_sec);
    hi = from_time((double)b.tv_sec + 1.0);
    cr_expect(tid >= lo && tid <= hi, "%016llx not within [%016llx, %016llx]",
              (unsigned long long)tid, (unsigned long long)lo, (unsigned long long)hi);
    uint64_t future = from_time(4102444800.0);
    cr_assert_eq(ztid_now(future, &tid), 0);
    cr_expect_eq(tid, future + 1);
}

Test(ztid, a_client_tid_is_a_date_below_maxtid_and_not_far_ahead)
{
    const double now = 1700000000.0;   /* 2023-11-14 22:13:20 UTC */
    zerr e;
    cr_expect_eq(ztid_check_client(from_time(now), now, 3600, &e), 0, "%s", e.msg);
    cr_expect_eq(ztid_check_client(from_time(now - 86400 * 365), now, 3600, &e), 0);
    cr_expect_eq(ztid_check_client(0, now, 0, &e), 0);
    cr_expect_eq(ztid_check_client(from_time(now + 3599), now, 3600, &e), 0, "%s", e.msg);
    cr_expect_eq(ztid_check_client(from_time(now + 3660), now, 3600, &e), ZE_INVAL);
    cr_expect(strstr(e.msg, "lies 3660 seconds past the server's clock"), "%s", e.msg);
    cr_expect_eq(ztid_check_client(from_time(now + 30), now, 0, &e), ZE_INVAL);
    /* 2001-02-30 is long past, but no TimeStamp(y, m, d...) makes it. */
    cr_expect_eq(ztid_check_client(0x033ae293ffffffffull, now, 3600, &e), ZE_INVAL);
    cr_expect(strstr(e.msg, "past the end of its month"), "%s", e.msg);
    /* Whatever the bound, nothing at or past maxtid: ZODB could not load it. */
    cr_expect_eq(ztid_check_client(0x7ffffffffffffffeull, now, 3600, &e), ZE_INVAL);
    cr_expect_eq(ztid_check_client(0x7ffffffffffffffeull, now, INFINITY, &e), 0, "%s", e.msg);
    cr_expect_eq(ztid_check_client(ZTID_ZODB_MAX, now, INFINITY, &e), ZE_INVAL);
    cr_expect(strstr(e.msg, "maxtid"), "%s", e.msg);
    cr_expect_eq(ztid_check_client(UINT64_MAX, now, INFINITY, &e), ZE_INVAL);
}
