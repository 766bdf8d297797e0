/* logfmt.c: a log record as Python's logging.Formatter writes it, from the
 * %-format strings ZConfig's `format` and `dateformat` keys hold, and
 * ZConfig's level names and numbers.
 *
 * Only the record fields a C server has are offered; any other field
 * (lineno, funcName...) is refused by name when the configuration is read,
 * as ZConfig refuses a field a LogRecord lacks. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int zsrv__log_level_parse(const char *s)
{
    /* ZConfig.components.logger.datatypes.logging_level */
    static const struct { const char *name; int level; } names[] = {
        {"critical", 50}, {"fatal", 50}, {"error", 40}, {"warn", 30}, {"warning", 30},
        {"info", 20},     {"blather", 15}, {"debug", 10}, {"trace", 5}, {"all", 1},
        {"notset", 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name))
            return names[i].level;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 50)
        return -1;
    return (int)v;
}

const char *zsrv__log_level_name(int level, char *buf, size_t cap)
{
    /* logging.getLevelName: blather and trace are not registered names. */
    switch (level) {
    case 50: return "CRITICAL";
    case 40: return "ERROR";
    case 30: return "WARNING";
    case 20: return "INFO";
    case 10: return "DEBUG";
    case 0: return "NOTSET";
    default: snprintf(buf, cap, "Level %d", level); return buf;
    }
}

/* ---- fields ------------------------------------------------------------ */

typedef enum { F_STR, F_INT, F_FLOAT } ftype;

static const struct field {
    const char *name;
    ftype type;
} fields[] = {
    {"asctime", F_STR},   {"created", F_FLOAT}, {"levelname", F_STR},
    {"levelno", F_INT},   {"message", F_STR},   {"msecs", F_FLOAT},
    {"name", F_STR},      {"process", F_INT},   {"relativeCreated", F_FLOAT},
    {"thread", F_INT},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static int find_field(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strlen(fields[i].name) == len && !memcmp(fields[i].name, name, len))
            return (int)i;
    return -1;
}

/* One %-directive: "%(name)<flags><width>.<prec><conv>". */
typedef struct spec {
    int field;                 /* index in fields, -1 for "%%" */
    char flags[8], conv;
    int width, prec;           /* -1: none */
    size_t len;                /* bytes of the directive */
} spec;

/* Parse the directive at p (p[0] == '%'). 0, or ZE_INVAL with a message. */
static int parse_spec(const char *p, spec *sp, zerr *err)
{
    memset(sp, 0, sizeof *sp);
    sp->width = sp->prec = -1;
    const char *s = p + 1;
    if (*s == '%') {
        sp->field = -1;
        sp->len = 2;
        return 0;
    }
    if (*s != '(')
        return zerr_set(err, ZE_INVAL, "log format '%s': a %% directive without a "
                        "field name (write %%(message)s, or %%%% for a %%)", p);
    const char *name = ++s, *close = strchr(name, ')');
    if (!close)
        return zerr_set(err, ZE_INVAL, "log format: unclosed '%%(' in '%s'", p);
    if ((sp->field = find_field(name, (size_t)(close - name))) < 0)
        return zerr_set(err, ZE_INVAL, "log format field '%.*s' is not available in zeolite "
                        "(it has asctime, created, levelname, levelno, message, msecs, name, "
                        "process, relativeCreated, thread)", (int)(close - name), name);
    s = close + 1;
    size_t nf = 0;
    while (*s && strchr("#0- +", *s) && nf < sizeof sp->flags - 1)
        sp->flags[nf++] = *s++;
    if (isdigit((unsigned char)*s))
        sp->width = (int)strtol(s, (char **)&s, 10);
    if (*s == '.') {
        s++;
        sp->prec = (int)strtol(s, (char **)&s, 10);
    }
    if (sp->width > 200 || sp->prec > 200)
        return zerr_set(err, ZE_INVAL, "log format '%s': width or precision over 200", p);
    if (*s == 'h' || *s == 'l' || *s == 'L')   /* Python ignores length modifiers */
        s++;
    if (!*s || !strchr("diouxXeEfFgGcrsa", *s))
        return zerr_set(err, ZE_INVAL, "log format '%s': unknown conversion '%c'", p,
                        *s ? *s : ' ');
    sp->conv = *s;
    if (sp->conv == 'c' || (fields[sp->field].type == F_STR && !strchr("rsa", sp->conv)))
        return zerr_set(err, ZE_INVAL, "log format: %%(%s)%c does not fit a %s field",
                        fields[sp->field].name, sp->conv,
                        fields[sp->field].type == F_STR ? "text" : "number");
    sp->len = (size_t)(s + 1 - p);
    return 0;
}

int zsrv__logfmt_check(const char *fmt, zerr *err)
{
    for (const char *p = fmt; (p = strchr(p, '%'));) {
        spec sp;
        int rc = parse_spec(p, &sp, err);
        if (rc < 0)
            return rc;
        p += sp.len;
    }
    return 0;
}

/* ---- rendering --------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t cap, len;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len + 1 >= o->cap)
        return;
    if (n > o->cap - 1 - o->len)
        n = o->cap - 1 - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

/* A printf conversion spec from sp with conversion conv and length mod. */
static void cspec(const spec *sp, const char *mod, char conv, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%%%s", sp->flags);
    if (sp->width >= 0)
        n += snprintf(buf + n, cap - (size_t)n, "%d", sp->width);
    if (sp->prec >= 0)
        n += snprintf(buf + n, cap - (size_t)n, ".%d", sp->prec);
    snprintf(buf + n, cap - (size_t)n, "%s%c", mod, conv);
}

/* Python's str() of a float: the shortest digits that read back the same. */
static void py_float_str(double d, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void put_text(out *o, const spec *sp, const char *s)
{
    char f[32], tmp[4096];
    if (sp->conv != 's') {   /* repr() of a str */
        snprintf(tmp, sizeof tmp, "'%s'", s);
        s = tmp;
    }
    cspec(sp, "", 's', f, sizeof f);
    char line[4096 + 256];
    int n = snprintf(line, sizeof line, f, s);
    if (n > 0)
        put(o, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void put_number(out *o, const spec *sp, int is_float, long long i, double d)
{
    char f[32], buf[256];
    int n;
    if (strchr("rsa", sp->conv)) {
        char num[64];
        if (is_float)
            py_float_str(d, num, sizeof num);
        else
            snprintf(num, sizeof num, "%lld", i);
        spec s2 = *sp;
        s2.conv = 's';
        put_text(o, &s2, num);
        return;
    }
    if (strchr("eEfFgG", sp->conv)) {
        cspec(sp, "", sp->conv, f, sizeof f);
        n = snprintf(buf, sizeof buf, f, is_float ? d : (double)i);
    } else {
        /* %d of a float truncates, as Python's does */
        long long v = is_float ? (long long)d : i;
        cspec(sp, "ll", sp->conv == 'u' ? 'd' : sp->conv, f, sizeof f);
        n = snprintf(buf, sizeof buf, f, v);
    }
    if (n > 0)
        put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

size_t zsrv__logfmt_render(const char *fmt, const char *datefmt, const zsrv_logrec *r,
                           char *buf, size_t cap)
{
    out o = {buf, cap, 0};
    if (cap)
        buf[0] = 0;
    char level[32], stamp[256] = "";
    double created = (double)r->tv.tv_sec + r->tv.tv_usec / 1e6;
    for (const char *p = fmt; *p;) {
        const char *pc = strchr(p, '%');
        if (!pc) {
            put(&o, p, strlen(p));
            break;
        }
        put(&o, p, (size_t)(pc - p));
        spec sp;
        zerr err;
        if (parse_spec(pc, &sp, &err) < 0) {   /* checked at start: not reached */
            put(&o, pc, strlen(pc));
            break;
        }
        p = pc + sp.len;
        if (sp.field < 0) {
            put(&o, "%", 1);
            continue;
        }
        const char *name = fields[sp.field].name;
        if (!strcmp(name, "asctime")) {
            if (!stamp[0]) {
                struct tm tm;
                time_t t = r->tv.tv_sec;
                localtime_r(&t, &tm);
                strftime(stamp, sizeof stamp, datefmt, &tm);
            }
            put_text(&o, &sp, stamp);
        } else if (!strcmp(name, "levelname")) {
            put_text(&o, &sp, zsrv__log_level_name(r->level, level, sizeof level));
        } else if (!strcmp(name, "message")) {
            put_text(&o, &sp, r->message);
        } else if (!strcmp(name, "name")) {
            put_text(&o, &sp, r->name);
        } else if (!strcmp(name, "levelno")) {
            put_number(&o, &sp, 0, r->level, 0);
        } else if (!strcmp(name, "process")) {
            put_number(&o, &sp, 0, (long long)r->pid, 0);
        } else if (!strcmp(name, "thread")) {
            put_number(&o, &sp, 0, (long long)r->thread, 0);
        } else if (!strcmp(name, "created")) {
            put_number(&o, &sp, 1, 0, created);
        } else if (!strcmp(name, "msecs")) {
            put_number(&o, &sp, 1, 0, r->tv.tv_usec / 1000.0);
        } else {   /* relativeCreated: ms since the logger started */
            put_number(&o, &sp, 1, 0, r->relative_ms);
        }
    }
    return o.len;
}

char *zsrv__log_unescape(const char *v)
{
    /* ZConfig's escaped_string: \n \t \b \f \r as in Python literals */
    char *s = malloc(strlen(v) + 1), *o = s;
    if (!s)
        return NULL;
    for (const char *p = v; *p; p++) {
        const char *esc = p[0] == '\\' && p[1] ? strchr("ntbfr", p[1]) : NULL;
        if (esc) {
            *o++ = "\n\t\b\f\r"[esc - "ntbfr"];
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return s;
}
