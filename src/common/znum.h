/* znum.h: numbers read from text that a person typed (command lines,
 * zeo.conf), checked: the whole text is the number, and it is in range.
 *
 * strtol/atof read "12abc" as 12 and "abc" as 0; every caller here wants a
 * refusal instead, with the same rules for every command and config key.
 */
#ifndef ZEOLITE_ZNUM_H
#define ZEOLITE_ZNUM_H

/**
 * @brief A decimal integer (optional sign, no spaces) in [min, max].
 * @return 0 with *out set, or ZE_INVAL (*out untouched).
 */
int znum_int(const char *s, long long min, long long max, long long *out);

/**
 * @brief A finite decimal number ("2", "2.5", "1e3") in [min, max].
 * @return 0 with *out set, or ZE_INVAL (*out untouched). NaN, infinities and
 *         hexadecimal floats are refused.
 */
int znum_double(const char *s, double min, double max, double *out);

/**
 * @brief A byte count as ZConfig writes them: digits with an optional KB, MB
 *        or GB suffix (powers of 1024, any case), at most max bytes.
 * @return 0 with *out set, or ZE_INVAL.
 */
int znum_size(const char *s, long long max, long long *out);

#endif
