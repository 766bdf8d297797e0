/* log.c: the server's log, as ZConfig's <eventlog> configures runzeo's:
 * one logger level, then any number of handlers (<logfile> to a file,
 * STDOUT or STDERR, <syslog> to a UDP or Unix socket), each with its own
 * level, format and date format; files rotate by size (max-size, old-files)
 * or time (when, interval) as Python's rotating handlers do, and SIGUSR2
 * reopens them (rotating ones roll over, as ZConfig's reopen does).
 * Started by systemd with stderr or stdout on the journal (JOURNAL_STREAM),
 * each line of a stream handler carries the journal's <N> priority prefix.
 *
 * The log is a process resource like stderr, so its state is file-static;
 * everything else in the server is passed down from zsrv. Lines come from
 * the loop thread and from the store's operations on other threads (a pack
 * runs on the thread pool), so writing, rotating and reopening take one
 * lock. Before zsrv__log_setup (and after zsrv__log_close), lines go to
 * stderr in the default format. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FORMAT "%(asctime)s %(levelname)s %(name)s (%(process)d) %(message)s"
#define JOURNAL_FORMAT "%(levelname)s %(name)s %(message)s"
#define SYSLOG_FORMAT "%(name)s[%(process)d]: %(message)s"
#define DEFAULT_DATEFMT "%Y-%m-%dT%H:%M:%S"

typedef struct handler {
    zsrv_log_kind kind;
    int level;
    char *format, *datefmt;
    /* files and streams */
    char *path;
    int fd;                   /* -1: not open */
    int std;                  /* 1 or 2: stdout or stderr, never closed */
    int journal;              /* the stream is journald's: <N> prefixes */
    int regular;              /* a regular file: may rotate */
    long long size;
    long long max_size;
    int old_files;
    int when_secs;            /* S/M/H/D; 0: not timed */
    int midnight, weekday;    /* MIDNIGHT; W0..W6 (weekday 0..6), else -1 */
    int interval;
    double rollover_at;
    const char *suffix;       /* strftime suffix of a rotated file */
    /* syslog */
    int facility;
    int sock_stream;          /* a Unix stream socket: lines end with \n */
    struct sockaddr_storage sa;
    socklen_t sa_len;
} handler;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static handler *handlers;     /* swapped under log_lock */
static size_t n_handlers;
static int log_level = ZSRV_LOG_INFO;   /* read without the lock: atomics */
static double log_start;      /* relativeCreated's origin */
static double (*log_clock)(void);

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static double clock_now(void)
{
    return log_clock ? log_clock() : wall_now();
}

void zsrv__log_set_clock(double (*now)(void))
{
    pthread_mutex_lock(&log_lock);
    log_clock = now;
    pthread_mutex_unlock(&log_lock);
}

/* Syslog severity of a level (journald and syslog alike). */
static int severity(int level)
{
    return level >= 50 ? 2 : level >= 40 ? 3 : level >= 30 ? 4 : level >= 20 ? 6 : 7;
}

/* 1 when fd is the stream JOURNAL_STREAM names (systemd's "DEV:INODE"). */
static int is_journal(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* ---- rotation ---------------------------------------------------------- */

static int file_open(handler *h, zerr *err)
{
    int fd = open(h->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return zerr_sys(err, e, "cannot open log file %s", h->path);
    }
    h->fd = fd;
    h->regular = S_ISREG(st.st_mode);
    h->size = (long long)st.st_size;
    return 0;
}

/* The next timed rollover after t, as TimedRotatingFileHandler computes it. */
static double next_rollover(const handler *h, double t)
{
    if (h->when_secs)
        return t + (double)h->when_secs * h->interval;
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    int days = 1;
    if (h->weekday >= 0) {   /* Python counts Monday as 0, C Sunday */
        int today = (tm.tm_wday + 6) % 7;
        days = h->weekday > today ? h->weekday - today : 7 - today + h->weekday;
    }
    tm.tm_mday += days;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (double)mktime(&tm);
}

static const char *time_suffix(const char *when)
{
    switch (toupper((unsigned char)when[0])) {
    case 'S': return "%Y-%m-%d_%H-%M-%S";
    case 'M': return strcasecmp(when, "midnight") ? "%Y-%m-%d_%H-%M" : "%Y-%m-%d";
    case 'H': return "%Y-%m-%d_%H";
    default: return "%Y-%m-%d";
    }
}

/* 1 when s has the digits-and-separators shape of the suffix format. */
static int suffix_match(const char *s, const char *suffix)
{
    char sample[64];
    struct tm tm = {.tm_year = 100, .tm_mon = 0, .tm_mday = 1};
    size_t n = strftime(sample, sizeof sample, suffix, &tm);
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (isdigit((unsigned char)sample[i]) ? !isdigit((unsigned char)s[i]) : s[i] != sample[i])
            return 0;
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the old_files newest timed backups (their names sort by time). */
static void remove_old_backups(const handler *h)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", h->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : h->path;
    if (slash)
        *slash = 0;
    DIR *d = opendir(slash ? (dir[0] ? dir : "/") : ".");
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0, blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, blen) || e->d_name[blen] != '.' ||
            !suffix_match(e->d_name + blen + 1, h->suffix))
            continue;
        char **m = n == cap ? realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *m) : names;
        if (!m || !(m[n] = strdup(e->d_name))) {
            names = m ? m : names;
            break;
        }
        names = m;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (i + (size_t)h->old_files < n) {
            char p[4096 + 256];
            snprintf(p, sizeof p, "%s%s%s", slash ? dir : "", slash ? "/" : "", names[i]);
            unlink(p);
        }
        free(names[i]);
    }
    free(names);
}

/* Move the file aside as Python's handlers do (path.1 .. path.N by size,
 * path.<the interval's start> by time), then start a new one. */
static void rollover(handler *h, double now)
{
    char dst[4096 + 64], src[4096 + 64];
    close(h->fd);
    h->fd = -1;
    if (h->max_size) {
        for (int i = h->old_files - 1; i > 0; i--) {
            snprintf(src, sizeof src, "%s.%d", h->path, i);
            snprintf(dst, sizeof dst, "%s.%d", h->path, i + 1);
            rename(src, dst);
        }
        snprintf(dst, sizeof dst, "%s.1", h->path);
        rename(h->path, dst);
    } else {
        /* Named for the interval's start, as Python names it. */
        double span = (double)(h->when_secs ? h->when_secs : h->weekday >= 0 ? 7 * 86400 : 86400) *
                      h->interval;
        time_t t = (time_t)(h->rollover_at - span);
        struct tm tm;
        char stamp[64];
        localtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, h->suffix, &tm);
        snprintf(dst, sizeof dst, "%s.%s", h->path, stamp);
        rename(h->path, dst);
        remove_old_backups(h);
        double next = next_rollover(h, now);
        while (next <= now)
            next = next_rollover(h, next);
        h->rollover_at = next;
    }
    zerr err = {0};
    if (file_open(h, &err) < 0)
        fprintf(stderr, "zeolite: %s\n", err.msg);   /* the log itself is gone */
}

/* ---- writing ----------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Each line with its journal priority prefix. */
static size_t journal_lines(int level, const char *text, char *buf, size_t cap)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 8 < cap;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > cap - o - 5)
            len = cap - o - 5;
        o += (size_t)snprintf(buf + o, cap - o, "<%d>", severity(level));
        memcpy(buf + o, p, len);
        o += len;
        buf[o++] = '\n';
        p += len + (nl && p + len == nl ? 1 : 0);
        if (!nl)
            break;
    }
    return o;
}

static void emit_file(handler *h, const zsrv_logrec *r, const char *text, size_t len)
{
    char buf[ZSRV_LOG_LINE + 1024];
    if (h->journal) {
        size_t n = journal_lines(r->level, text, buf, sizeof buf);
        write_all(h->fd, buf, n);
        return;
    }
    if (h->fd < 0)
        return;
    double now = clock_now();
    if (h->regular && h->max_size && h->size > 0 && h->size + (long long)len + 1 >= h->max_size)
        rollover(h, now);
    else if (h->regular && h->suffix && now >= h->rollover_at)
        rollover(h, now);
    if (h->fd < 0)
        return;
    memcpy(buf, text, len);
    buf[len] = '\n';
    write_all(h->fd, buf, len + 1);
    h->size += (long long)len + 1;
}

static int syslog_connect(handler *h, zerr *err)
{
    int type = h->sa.ss_family == AF_UNIX && h->sock_stream ? SOCK_STREAM : SOCK_DGRAM;
    int fd = socket(h->sa.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return zerr_sys(err, errno, "cannot open a syslog socket");
    if (connect(fd, (struct sockaddr *)&h->sa, h->sa_len) < 0) {
        int e = errno;
        close(fd);
        if (e == EPROTOTYPE && type == SOCK_DGRAM) {   /* a stream socket, as Python retries */
            h->sock_stream = 1;
            return syslog_connect(h, err);
        }
        return zerr_sys(err, e, "cannot connect to syslog at %s", h->path);
    }
    h->fd = fd;
    return 0;
}

static void emit_syslog(handler *h, const zsrv_logrec *r, const char *text, size_t len)
{
    char buf[ZSRV_LOG_LINE + 64];
    int n = snprintf(buf, sizeof buf, "<%d>%.*s%s", h->facility * 8 + severity(r->level),
                     (int)len, text, h->sock_stream ? "\n" : "");
    if (n <= 0)
        return;
    size_t sz = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    /* A daemon that restarted (a dead stream, a stale datagram peer) gets
     * one reconnection per line. */
    if (h->fd < 0 || (send(h->fd, buf, sz, MSG_NOSIGNAL) < 0 && h->sa.ss_family == AF_UNIX)) {
        if (h->fd >= 0)
            close(h->fd);
        h->fd = -1;
        zerr err = {0};
        if (syslog_connect(h, &err) == 0)
            send(h->fd, buf, sz, MSG_NOSIGNAL);
    }
}

static void emit(int level, const char *name, const char *msg)
{
    zsrv_logrec r = {.level = level, .name = name, .message = msg, .pid = getpid(),
                     .thread = gettid()};
    double now = clock_now();
    r.tv.tv_sec = (time_t)now;
    r.tv.tv_usec = (suseconds_t)((now - (double)r.tv.tv_sec) * 1e6);
    r.relative_ms = log_start ? (now - log_start) * 1000 : 0;
    char text[ZSRV_LOG_LINE];
    pthread_mutex_lock(&log_lock);
    if (!n_handlers) {
        size_t n = zsrv__logfmt_render(DEFAULT_FORMAT, DEFAULT_DATEFMT, &r, text,
                                       sizeof text - 1);
        text[n++] = '\n';
        write_all(2, text, n);
    }
    for (size_t i = 0; i < n_handlers; i++) {
        handler *h = &handlers[i];
        if (level < h->level)
            continue;
        size_t n = zsrv__logfmt_render(h->format, h->datefmt, &r, text, sizeof text - 1);
        if (h->kind == ZSRV_LOGH_SYSLOG)
            emit_syslog(h, &r, text, n);
        else
            emit_file(h, &r, text, n);
    }
    pthread_mutex_unlock(&log_lock);
}

void zsrv__log(int level, const char *fmt, ...)
{
    if (level < __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    char msg[ZSRV_LOG_LINE / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, "zeolite.server", msg);
}

void zsrv__log_store(void *storage_name, int level, const char *msg)
{
    int lv = level == STORE_LOG_ERROR     ? ZSRV_LOG_ERROR
             : level == STORE_LOG_WARNING ? ZSRV_LOG_WARNING
                                          : ZSRV_LOG_INFO;
    if (lv < __atomic_load_n(&log_level, __ATOMIC_RELAXED))
        return;
    char line[ZSRV_LOG_LINE / 2];
    snprintf(line, sizeof line, "storage %s: %s", (const char *)storage_name, msg);
    emit(lv, "zeolite.store", line);
}

/* ---- set-up ------------------------------------------------------------ */

static void handler_free(handler *h)
{
    if (h->fd >= 0 && !h->std)
        close(h->fd);
    free(h->format);
    free(h->datefmt);
    free(h->path);
}

static void handlers_free(handler *hs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        handler_free(&hs[i]);
    free(hs);
}

/* A syslog address: a path (it has a '/'), else HOST[:PORT] over UDP. */
static int syslog_resolve(handler *h, const char *address, zerr *err)
{
    if (strchr(address, '/')) {
        struct sockaddr_un *un = (struct sockaddr_un *)&h->sa;
        if (strlen(address) >= sizeof un->sun_path)
            return zerr_set(err, ZE_INVAL, "syslog socket path too long: %s", address);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, address);
        h->sa_len = sizeof *un;
        return 0;
    }
    char host[256] = "localhost", port[16] = "514";
    const char *colon = strrchr(address, ':');
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || (end[1] && end[1] != ':'))
            return zerr_set(err, ZE_INVAL, "bad syslog address '%s'", address);
        snprintf(host, sizeof host, "%.*s", (int)(end - address - 1), address + 1);
        colon = end[1] ? end + 1 : NULL;
    } else if (colon && colon > address) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
    } else if (!colon && address[0]) {
        snprintf(host, sizeof host, "%s", address);
    }
    if (colon && colon[1])
        snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return zerr_set(err, ZE_INVAL, "cannot resolve syslog address '%s': %s", address,
                        gai_strerror(gai));
    memcpy(&h->sa, res->ai_addr, res->ai_addrlen);
    h->sa_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int timed_init(handler *h, const zsrv_log_cfg *c)
{
    const char *w = c->when;
    h->weekday = -1;
    h->interval = c->interval > 0 ? c->interval : 1;
    h->suffix = time_suffix(w);
    if (!strcasecmp(w, "midnight"))
        h->midnight = 1;
    else if (toupper((unsigned char)w[0]) == 'W')
        h->weekday = w[1] - '0';
    else
        h->when_secs = toupper((unsigned char)w[0]) == 'S'   ? 1
                       : toupper((unsigned char)w[0]) == 'M' ? 60
                       : toupper((unsigned char)w[0]) == 'H' ? 3600
                                                             : 86400;
    /* From the file's last change, as Python starts the first interval. */
    struct stat st;
    double base = h->fd >= 0 && fstat(h->fd, &st) == 0 && st.st_size ? (double)st.st_mtime
                                                                     : clock_now();
    h->rollover_at = next_rollover(h, base);
    return 0;
}

static int handler_open(handler *h, const zsrv_log_cfg *c, zerr *err)
{
    h->fd = -1;
    h->kind = c->kind;
    h->level = c->level;
    h->facility = c->facility;
    const char *addr = c->address ? c->address : "localhost:514";
    int std = c->kind == ZSRV_LOGH_FILE && c->path
                  ? !strcmp(c->path, "STDOUT") ? 1 : !strcmp(c->path, "STDERR") ? 2 : 0
                  : 0;
    h->journal = std && is_journal(std);
    const char *fmt = c->format                          ? c->format
                      : c->kind == ZSRV_LOGH_SYSLOG      ? SYSLOG_FORMAT
                      : h->journal                       ? JOURNAL_FORMAT
                                                         : DEFAULT_FORMAT;
    h->format = strdup(fmt);
    h->datefmt = strdup(c->dateformat ? c->dateformat : DEFAULT_DATEFMT);
    h->path = strdup(c->kind == ZSRV_LOGH_SYSLOG ? addr : c->path ? c->path : "STDERR");
    if (!h->format || !h->datefmt || !h->path)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    if (c->kind == ZSRV_LOGH_SYSLOG) {
        int rc = syslog_resolve(h, addr, err);
        return rc < 0 ? rc : syslog_connect(h, err);
    }
    if (std) {
        h->fd = h->std = std;
        return 0;
    }
    h->max_size = c->max_size;
    h->old_files = c->old_files;
    int rc = file_open(h, err);
    if (rc == 0 && c->when && c->when[0])
        rc = timed_init(h, c);
    return rc;
}

int zsrv__log_setup(const zsrv_config *c, zerr *err)
{
    handler *hs = calloc(c->n_log_handlers ? c->n_log_handlers : 1, sizeof *hs);
    if (!hs)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    zsrv_log_cfg dflt = {.kind = ZSRV_LOGH_FILE, .path = "STDERR"};
    const zsrv_log_cfg *cfgs = c->n_log_handlers ? c->log_handlers : &dflt;
    size_t n = c->n_log_handlers ? c->n_log_handlers : 1;
    for (size_t i = 0; i < n; i++) {
        int rc = handler_open(&hs[i], &cfgs[i], err);
        if (rc < 0) {
            handlers_free(hs, i + 1);
            return rc;
        }
    }
    pthread_mutex_lock(&log_lock);
    handler *old = handlers;
    size_t n_old = n_handlers;
    handlers = hs;
    n_handlers = n;
    __atomic_store_n(&log_level, c->log_level, __ATOMIC_RELAXED);
    if (!log_start)
        log_start = clock_now();
    pthread_mutex_unlock(&log_lock);
    handlers_free(old, n_old);
    return 0;
}

int zsrv__log_check(const zsrv_config *c, zerr *err)
{
    for (size_t i = 0; i < c->n_log_handlers; i++) {
        const zsrv_log_cfg *h = &c->log_handlers[i];
        if (h->kind == ZSRV_LOGH_SYSLOG) {
            handler tmp = {.fd = -1};
            int rc = syslog_resolve(&tmp, h->address ? h->address : "localhost:514", err);
            if (rc < 0)
                return rc;
            if (h->address && strchr(h->address, '/') && access(h->address, W_OK) < 0)
                return zerr_sys(err, errno, "cannot connect to syslog at %s", h->address);
            continue;
        }
        if (!strcmp(h->path, "STDOUT") || !strcmp(h->path, "STDERR"))
            continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", h->path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash == dir ? (void)(dir[1] = 0) : (void)(*slash = 0);
        const char *check = access(h->path, F_OK) == 0 ? h->path : slash ? dir : ".";
        if (access(check, W_OK) < 0)
            return zerr_sys(err, errno, "cannot write log file %s", h->path);
    }
    return 0;
}

int zsrv__log_reopen(void)
{
    int failed = 0;
    pthread_mutex_lock(&log_lock);
    double now = clock_now();
    for (size_t i = 0; i < n_handlers; i++) {
        handler *h = &handlers[i];
        if (h->kind != ZSRV_LOGH_FILE || h->std)
            continue;
        if (h->regular && (h->max_size || h->suffix)) {
            rollover(h, now);   /* ZConfig's reopen of a rotating handler */
        } else {
            zerr err = {0};
            if (h->fd >= 0)
                close(h->fd);
            h->fd = -1;
            if (file_open(h, &err) < 0) {
                fprintf(stderr, "zeolite: %s\n", err.msg);
                failed = 1;
            }
        }
        failed |= h->fd < 0;
    }
    pthread_mutex_unlock(&log_lock);
    if (failed) {
        zsrv__log(ZSRV_LOG_ERROR, "cannot reopen every log file");
        return ZE_IO;
    }
    zsrv__log(ZSRV_LOG_INFO, "Log files reopened successfully");
    return 0;
}

int zsrv__log_reaches_stderr(void)
{
    pthread_mutex_lock(&log_lock);
    int yes = n_handlers == 0;
    for (size_t i = 0; i < n_handlers; i++)
        yes |= handlers[i].kind == ZSRV_LOGH_FILE && handlers[i].std == 2;
    pthread_mutex_unlock(&log_lock);
    return yes;
}

void zsrv__log_close(void)
{
    pthread_mutex_lock(&log_lock);
    handler *old = handlers;
    size_t n_old = n_handlers;
    handlers = NULL;
    n_handlers = 0;
    __atomic_store_n(&log_level, ZSRV_LOG_INFO, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&log_lock);
    handlers_free(old, n_old);
}
