/* znum.c: checked numbers from text (see znum.h). */
#include "common/znum.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/zerr.h"

/* strto* skip leading spaces and read "0x" forms; a person's "12" is plain. */
static int plain_start(const char *s)
{
    return s && *s && !isspace((unsigned char)*s);
}

int znum_int(const char *s, long long min, long long max, long long *out)
{
    if (!plain_start(s))
        return ZE_INVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return ZE_INVAL;
    *out = v;
    return 0;
}

int znum_double(const char *s, double min, double max, double *out)
{
    if (!plain_start(s) || strpbrk(s, "xXpP"))
        return ZE_INVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return ZE_INVAL;
    *out = v;
    return 0;
}

int znum_size(const char *s, long long max, long long *out)
{
    static const struct { const char *suffix; long long mul; } units[] = {
        {"", 1}, {"KB", 1024}, {"MB", 1024 * 1024}, {"GB", 1024LL * 1024 * 1024}};
    if (!plain_start(s) || !isdigit((unsigned char)*s))
        return ZE_INVAL;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno)
        return ZE_INVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix))
            continue;
        if (n > max / units[i].mul)
            return ZE_INVAL;
        *out = n * units[i].mul;
        return 0;
    }
    return ZE_INVAL;
}
