/* log.c: the server's log: levels, stderr or a file, reopened on SIGUSR2,
 * and the store's log lines.
 *
 * The log is a process resource like stderr, so its state is file-static;
 * everything else in the server is passed down from zsrv. Lines come from
 * the loop thread and from the store's operations on other threads (a pack
 * runs on the thread pool), so writing and reopening take one lock. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;        /* NULL: stderr; swapped under log_lock */
static char *log_path;
static int log_level = ZSRV_LOG_INFO;

static const char *const level_names[] = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"};

int zsrv__log_level_parse(const char *s)
{
    static const struct { const char *name; int level; } names[] = {
        {"critical", ZSRV_LOG_CRITICAL}, {"fatal", ZSRV_LOG_CRITICAL},
        {"error", ZSRV_LOG_ERROR},       {"warn", ZSRV_LOG_WARNING},
        {"warning", ZSRV_LOG_WARNING},   {"info", ZSRV_LOG_INFO},
        {"debug", ZSRV_LOG_DEBUG},       {"trace", ZSRV_LOG_DEBUG},
        {"blather", ZSRV_LOG_DEBUG},     {"all", ZSRV_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name))
            return names[i].level;
    return -1;
}

/* Write to f from now on (NULL: stderr) and close the file written so far. */
static void use_file(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    FILE *old = log_file;
    log_file = f;
    pthread_mutex_unlock(&log_lock);
    if (old)
        fclose(old);
}

int zsrv__log_open(const char *path, int level, zerr *err)
{
    log_level = level;
    if (!path || !strcmp(path, "STDERR") || !strcmp(path, "-"))
        return 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return zerr_sys(err, errno, "cannot open log file %s", path);
    setvbuf(f, NULL, _IOLBF, 0);
    free(log_path);
    log_path = strdup(path);
    if (!log_path) {
        fclose(f);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    use_file(f);
    return 0;
}

int zsrv__log_reopen(void)
{
    if (!log_path)
        return 0;
    FILE *f = fopen(log_path, "a");
    if (!f) {
        zsrv__log(ZSRV_LOG_ERROR, "cannot reopen log file %s: %s", log_path, strerror(errno));
        return ZE_IO;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    use_file(f);
    zsrv__log(ZSRV_LOG_INFO, "Log files reopened successfully");
    return 0;
}

void zsrv__log_close(void)
{
    use_file(NULL);
    free(log_path);
    log_path = NULL;
}

void zsrv__log(int level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    FILE *f = log_file ? log_file : stderr;
    fprintf(f, "%s.%03d %s zeolite.server %s\n", stamp, (int)(tv.tv_usec / 1000),
            level_names[level < 0 ? 0 : level > 4 ? 4 : level], line);
    pthread_mutex_unlock(&log_lock);
}

void zsrv__log_store(void *storage_name, int level, const char *msg)
{
    int lv = level == STORE_LOG_ERROR     ? ZSRV_LOG_ERROR
             : level == STORE_LOG_WARNING ? ZSRV_LOG_WARNING
                                          : ZSRV_LOG_INFO;
    zsrv__log(lv, "storage %s: %s", (const char *)storage_name, msg);
}
