/* ztid.h: tids <-> time, as ZODB's persistent.TimeStamp computes them.
 *
 * A tid is a TimeStamp: two big-endian 32-bit words (a, b).
 *   a = ((((year - 1900) * 12 + month - 1) * 31 + day - 1) * 24 + hour) * 60 + minute
 *       (UTC; every month counted as 31 days, so not every a is a real date)
 *   b = seconds within the minute / (60 / 2**32), truncated
 *
 * The behaviour is that of persistent's C TimeStamp (persistent/_timestamp.c),
 * which is what ZODB runs on CPython, bit for bit where that code is defined:
 *   ztid_from_time(t)   TimeStamp(*time.gmtime(t)[:5] + (t % 60,)).raw()
 *                       (ZODB.utils.newTid, FileStorage's pack stop tid)
 *   ztid_time(tid)      TimeStamp(tid).timeTime(): the same double, not
 *                       rounded to microseconds (only the pure-Python
 *                       fallback rounds)
 *   ztid_later(t, last) TimeStamp(t).laterThan(TimeStamp(last)).raw()
 *
 * Where the C code overflows or raises, zeolite refuses or stays in range
 * instead; no arithmetic here can overflow:
 *   - a time before 1900-01-01 (ValueError) or at or after 9917-10-14 04:16
 *     UTC (the minute word wraps past 2**32 - 1 in C) is refused;
 *   - a time whose t % 60 rounds up to 60.0 (a negative t a hair below a
 *     whole minute) gives b = 2**32 - 1; C wraps it to b = 0, a minute early;
 *   - laterThan the very last tid, ffffffffffffffff, is refused (C wraps to
 *     0000000000000000);
 *   - laterThan a tid whose day is past its month's end (e.g. Feb 30, which
 *     TimeStamp(raw) accepts) with b full carries to the next month's 1st,
 *     00:00 (C raises ValueError building the invalid date).
 *
 * Policy (how far in the future a server lets a client's tid lie) is the
 * caller's; ztid_check_client applies the rules that hold for every bound.
 */
#ifndef ZEOLITE_COMMON_ZTID_H
#define ZEOLITE_COMMON_ZTID_H

#include <stdbool.h>
#include <stdint.h>

#include "common/zerr.h"

/* ZODB.utils.maxtid: ZODB loads current data with loadBefore(oid, maxtid),
 * so a revision at or past it is never seen, and persistent's pickle cache
 * refuses such a serial (ValueError: long integer out of range). */
#define ZTID_ZODB_MAX 0x7fffffffffffffffull

/* Seconds since the epoch of the first tid, 0000000000000000 (1900-01-01). */
#define ZTID_TIME_MIN (-2208988800.0)
/* The first time past the encoding: 9917-10-14 04:16:00 UTC, the minute after
 * the last tid's (ztid_time(UINT64_MAX) is this value exactly). */
#define ZTID_TIME_END 250807810560.0

/**
 * @brief The tid ZODB makes for time @p t: TimeStamp(*gmtime(t)[:5] + (t % 60,)).
 *
 * @param[in]  t    seconds since the epoch (UTC)
 * @param[out] tid  set on success only
 * @return 0; ZE_INVAL when @p t is NaN or outside [ZTID_TIME_MIN, ZTID_TIME_END).
 */
int ztid_from_time(double t, uint64_t *tid);

/**
 * @brief Seconds since the epoch of @p tid, as TimeStamp(tid).timeTime().
 *
 * Defined for every 64-bit value; a day past its month's end counts on into
 * the next month (Feb 30 is Mar 2 in a non-leap year), as timeTime() does.
 */
double ztid_time(uint64_t tid);

/**
 * @brief laterThan: @p tid when it is greater than @p last, else the tid one
 *        unit of b after @p last.
 *
 * When b of @p last is full (2**32 - 1), the next tid is the next minute at
 * second 0, carrying into the day, month and year with real month lengths.
 * This is what keeps tids strictly increasing when the clock goes backwards.
 *
 * @param[out] out  set on success only
 * @return 0; ZE_TOOBIG when @p tid <= @p last and no tid follows @p last
 *         (@p last is ffffffffffffffff).
 */
int ztid_later(uint64_t tid, uint64_t last, uint64_t *out);

/**
 * @brief A new tid from the clock, greater than @p last: ZODB.utils.newTid(last).
 *
 * @param[out] out  set on success only
 * @return 0; ZE_TOOBIG when no tid follows @p last; ZE_INVAL when the clock
 *         reads a time outside the encoding.
 */
int ztid_now(uint64_t last, uint64_t *out);

/**
 * @brief Whether @p tid is a date ZODB's TimeStamp(y, mo, d, h, mi, s) can
 *        make: its day is within its month (every other field always is).
 *
 * ZODB's laterThan raises on a tid that does not fit when its b is full;
 * ztid_later gives every tid but the last a successor.
 */
bool ztid_fits(uint64_t tid);

/**
 * @brief Whether a client may name @p tid (an explicit tid in tpc_begin, as
 *        copyTransactionsFrom sends): a date ZODB makes (ztid_fits), below
 *        ZTID_ZODB_MAX, and at most @p max_ahead seconds past @p now.
 *
 * A tid that broke one of these would break every client: later commits
 * invisible to loads, or no tid left to follow it.
 *
 * @param now        the server's clock, seconds since the epoch
 * @param max_ahead  seconds a tid may lie past now (>= 0)
 * @return 0; ZE_INVAL with a message naming the tid and the rule it breaks.
 */
int ztid_check_client(uint64_t tid, double now, double max_ahead, zerr *err);

#endif
