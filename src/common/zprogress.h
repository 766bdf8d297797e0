/* zprogress.h: progress of a long job (import, export, backup, pack) on
 * stderr.
 *
 * On a terminal: one line redrawn in place (a bar). Elsewhere (cron, systemd,
 * a pipe): a plain line at most every `interval` seconds, so a log shows the
 * job alive and how far it got; interval 0 prints one at every update, which
 * is also how the tests see the lines without timing anything. quiet: none.
 */
#ifndef ZEOLITE_ZPROGRESS_H
#define ZEOLITE_ZPROGRESS_H

#include <stdint.h>

#define ZPROGRESS_INTERVAL 5.0   /* seconds between lines off a terminal */

typedef struct zprogress zprogress;

typedef struct zprogress_opts {
    int quiet;           /* print nothing */
    double interval;     /* seconds between lines off a terminal; 0: every update */
    const char *unit;    /* what the count counts ("transactions", "files") */
} zprogress_opts;

/* quiet: for callers that pick between it and their options. */
extern const zprogress_opts zprogress_silent;

/**
 * @brief Start reporting the job @p label ("import") of @p total bytes
 *        (0 when unknown: no percentage, no ETA). @p o NULL: the defaults
 *        (a line every ZPROGRESS_INTERVAL seconds off a terminal).
 * @return the reporter (free it with zprogress_done), or NULL when there is
 *         nothing to report (quiet, or out of memory); every call accepts NULL.
 */
zprogress *zprogress_new(const char *label, uint64_t total, const zprogress_opts *o);

/* The job has done @p bytes of its total and @p count units. */
void zprogress_update(zprogress *p, uint64_t bytes, uint64_t count);

/* A free-form step ("packing storage 1 on HOST:PORT"), printed as the
 * updates are (at most every interval off a terminal; 0: always). */
void zprogress_note(zprogress *p, const char *what);

/* Clear the terminal line and free p (NULL is fine). */
void zprogress_done(zprogress *p);

#endif
