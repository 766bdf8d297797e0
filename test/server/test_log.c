/* The log (log.c, logfmt.c) and its zeo.conf keys (config.c), in process:
 * levels, formats, several handlers, size and time rotation under a test
 * clock, reopening, syslog to sockets the test binds, and every key
 * zeolite cannot honour refused by name. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"
#include "testutil.h"

static char *dir;
static zsrv_config cfg;
static double fake_now;

static double test_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    dir = tu_tmpdir("srvlog");
    zsrv_config_init(&cfg);
    setenv("TZ", "UTC", 1);
    tzset();
    unsetenv("JOURNAL_STREAM");
}

static void teardown(void)
{
    zsrv__log_close();
    zsrv__log_set_clock(NULL);
    zsrv_config_free(&cfg);
    tu_rmrf(dir);
    free(dir);
}

TestSuite(server_log, .init = setup, .fini = teardown);

static int parse(const char *text, zerr *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/zeo.conf", dir);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    zsrv_config_free(&cfg);
    zsrv_config_init(&cfg);
    return zsrv_config_file(&cfg, path, err);
}

static int vparse(zerr *err, const char *fmt, va_list ap)
{
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    return parse(text, err);
}

/* parse() a zeo.conf made with printf. */
static int parsef(zerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parsef(zerr *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vparse(err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Read a zeo.conf made with printf and set the log up from it. */
static void start_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void start_log(const char *fmt, ...)
{
    zerr err = {0};
    va_list ap;
    va_start(ap, fmt);
    int rc = vparse(&err, fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(zsrv__log_setup(&cfg, &err), 0, "%s", err.msg);
}

static char *slurp(const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return (char *)tu_read_file(path, &len);
}

static int exists(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return tu_exists(path);
}

Test(server_log, levels_as_zconfig_accepts_them)
{
    const char *names[] = {"critical", "FATAL", "error", "warn", "Warning", "info", "blather",
                           "debug", "trace", "all", "notset", "0", "20", "50", "15"};
    const int want[] = {50, 50, 40, 30, 30, 20, 15, 10, 5, 1, 0, 0, 20, 50, 15};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_eq(zsrv__log_level_parse(names[i]), want[i], "%s", names[i]);
    const char *bad[] = {"51", "-1", "loud", "", "20x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(zsrv__log_level_parse(bad[i]), -1, "%s", bad[i]);
    char buf[32];
    cr_expect_str_eq(zsrv__log_level_name(30, buf, sizeof buf), "WARNING");
    cr_expect_str_eq(zsrv__log_level_name(15, buf, sizeof buf), "Level 15");
}

Test(server_log, python_format_fields)
{
    zsrv_logrec r = {.level = 30, .name = "zeolite.server", .message = "m 1", .pid = 4242,
                     .thread = 7, .relative_ms = 1500.25};
    r.tv.tv_sec = 1700000000;   /* 2023-11-14T22:13:20 UTC */
    r.tv.tv_usec = 123456;
    char out[512];
    zsrv__logfmt_render("%(asctime)s.%(msecs)03d %(levelname)-8s|%(levelno)d %(name)s "
                        "(%(process)d) %(message)r %% %(created).1f %(relativeCreated)s "
                        "%(thread)x",
                        "%Y-%m-%dT%H:%M:%S", &r, out, sizeof out);
    cr_expect_str_eq(out, "2023-11-14T22:13:20.123 WARNING |30 zeolite.server (4242) 'm 1' % "
                          "1700000000.1 1500.25 7");
    zsrv__logfmt_render("------\n%(asctime)s %(message)s", "%d/%m/%Y", &r, out, sizeof out);
    cr_expect_str_eq(out, "------\n14/11/2023 m 1");
}

Test(server_log, unknown_format_fields_are_refused_by_name)
{
    zerr err = {0};
    cr_expect_eq(zsrv__logfmt_check("%(asctime)s %(levelname)s %(name)s %(message)s", &err), 0);
    cr_expect_lt(zsrv__logfmt_check("%(lineno)d %(message)s", &err), 0);
    cr_expect(strstr(err.msg, "'lineno'"), "%s", err.msg);
    cr_expect_lt(zsrv__logfmt_check("%(funcName)s", &err), 0);
    cr_expect(strstr(err.msg, "'funcName'"), "%s", err.msg);
    cr_expect_lt(zsrv__logfmt_check("%s", &err), 0, "a bare %%s names no field");
    cr_expect_lt(zsrv__logfmt_check("%(message)d", &err), 0, "text as a number");
    cr_expect_lt(zsrv__logfmt_check("%(message", &err), 0);
    cr_expect_lt(zsrv__logfmt_check("%(process)q", &err), 0);
    /* through zeo.conf: the file, the line and the field */
    cr_expect_lt(parse("<eventlog>\n <logfile>\n  path x\n  format %(module)s %(message)s\n"
                       " </logfile>\n</eventlog>\n", &err), 0);
    cr_expect(strstr(err.msg, ":4:") && strstr(err.msg, "'module'"), "%s", err.msg);
}

Test(server_log, handler_keys_zeolite_cannot_honour_are_refused_by_name)
{
    static const struct { const char *body, *word; } bad[] = {
        {" <logfile>\n  path x\n  formatter zope.exceptions.log.Formatter\n", "formatter"},
        {" <logfile>\n  path x\n  style format\n", "style"},
        {" <logfile>\n  path x\n  delay true\n", "delay"},
        {" <logfile>\n  path x\n  encoding latin-1\n", "encoding"},
        {" <logfile>\n  path x\n  arbitrary-fields true\n", "arbitrary-fields"},
        {" <logfile>\n  path x\n  bogus 1\n", "bogus"},
        {" <logfile>\n  path STDOUT\n  max-size 1MB\n  old-files 2\n", "cannot rotate STDOUT"},
        {" <logfile>\n  path x\n  max-size 1MB\n", "old-files must be set"},
        {" <logfile>\n  path x\n  max-size 1MB\n  when D\n  old-files 1\n", "both"},
        {" <logfile>\n  path x\n  interval 3\n  old-files 1\n", "max-size or when"},
        {" <logfile>\n  path x\n  when fortnightly\n", "when"},
        {" <logfile>\n  path x\n  level loud\n", "loud"},
        {" <syslog>\n  facility bogus\n", "facility"},
        {" <syslog>\n  path /dev/log\n", "'path'"},
        {" <logfile>\n  level info\n", "needs a path"},
    };
    char text[4096];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *sec = strstr(bad[i].body, "syslog") ? "syslog" : "logfile";
        snprintf(text, sizeof text, "<eventlog>\n%s </%s>\n</eventlog>\n", bad[i].body, sec);
        zerr err = {0};
        cr_expect_lt(parse(text, &err), 0, "accepted: %s", text);
        cr_expect(strstr(err.msg, bad[i].word), "'%s' not named in: %s", bad[i].word, err.msg);
    }
    zerr err = {0};
    cr_expect_lt(parse("<eventlog>\n <email-notifier>\n  to a@b\n </email-notifier>\n"
                       "</eventlog>\n", &err), 0);
    cr_expect(strstr(err.msg, "email-notifier"), "%s", err.msg);
    cr_expect_lt(parse("<eventlog>\n</eventlog>\n<eventlog>\n</eventlog>\n", &err), 0);
    cr_expect(strstr(err.msg, "second <eventlog>"), "%s", err.msg);
    cr_expect_lt(parse("<eventlog>\n level 51\n</eventlog>\n", &err), 0);
}

Test(server_log, zconfig_keys_and_defaults)
{
    zerr err = {0};
    int rc = parse("<eventlog>\n  level 5\n"
                   "  <logfile>\n    path /var/log/a.log\n    level blather\n"
                   "    max-size 10MB\n    old-files 3\n    dateformat %H:%M\n"
                   "    format ------\\n%(asctime)s\\t%(message)s\n  </logfile>\n"
                   "  <logfile>\n    path /var/log/b.log\n    when midnight\n    old-files 7\n"
                   "    encoding utf-8\n    delay false\n    style classic\n  </logfile>\n"
                   "  <logfile>\n    path STDOUT\n    level notset\n  </logfile>\n"
                   "  <syslog>\n    facility local3\n  </syslog>\n"
                   "  <syslog>\n    address /dev/log\n    level 40\n  </syslog>\n"
                   "</eventlog>\n", &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_eq(cfg.log_level, 5);
    cr_assert_eq(cfg.n_log_handlers, 5, "two <logfile> sections are two handlers");
    zsrv_log_cfg *h = cfg.log_handlers;
    cr_expect_str_eq(h[0].path, "/var/log/a.log");
    cr_expect_eq(h[0].level, 15);
    cr_expect_eq(h[0].max_size, 10LL * 1024 * 1024);
    cr_expect_eq(h[0].old_files, 3);
    cr_expect_str_eq(h[0].dateformat, "%H:%M");
    cr_expect_str_eq(h[0].format, "------\n%(asctime)s\t%(message)s", "ZConfig's escapes");
    cr_expect_str_eq(h[1].when, "midnight");
    cr_expect_eq(h[1].interval, 0);
    cr_expect_eq(h[1].level, 0, "a handler's level defaults to notset");
    cr_expect_null(h[1].format, "the default format");
    cr_expect_str_eq(h[2].path, "STDOUT");
    cr_expect_eq(h[3].kind, ZSRV_LOGH_SYSLOG);
    cr_expect_null(h[3].address, "localhost:514");
    cr_expect_eq(h[3].facility, 19);
    cr_expect_eq(h[4].facility, 1, "facility user by default");
    cr_expect_str_eq(h[4].address, "/dev/log");
    cr_expect_eq(h[4].level, 40);
    /* --log-file replaces them all, later flags winning over the file */
    char *argv[] = {"serve", "--log-file", "-", "--log-level", "25", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 5, argv, &err), 0, "%s", err.msg);
    cr_assert_eq(cfg.n_log_handlers, 1);
    cr_expect_str_eq(cfg.log_handlers[0].path, "STDERR");
    cr_expect_eq(cfg.log_level, 25);
}

/* Two files at two levels and formats, the store's lines beside the
 * server's, and the logger's own level before any handler's. */
Test(server_log, several_handlers_each_with_its_level_and_format)
{
    start_log("<eventlog>\n level info\n"
             " <logfile>\n  path %s/all.log\n  format %%(levelname)s %%(name)s %%(message)s\n"
             " </logfile>\n"
             " <logfile>\n  path %s/errors.log\n  level error\n"
             "  format %%(process)d|%%(levelno)d|%%(message)s\n </logfile>\n</eventlog>\n",
             dir, dir);
    zsrv__log(ZSRV_LOG_DEBUG, "not at info");
    zsrv__log(ZSRV_LOG_INFO, "one %d", 1);
    zsrv__log(ZSRV_LOG_ERROR, "two");
    zsrv__log_store("main", STORE_LOG_WARNING, "three");
    zsrv__log(ZSRV_LOG_CRITICAL, "four");
    zsrv__log_close();
    char *all = slurp("all.log"), *errors = slurp("errors.log");
    cr_assert(all && errors);
    cr_expect_str_eq(all, "INFO zeolite.server one 1\nERROR zeolite.server two\n"
                          "WARNING zeolite.store storage main: three\n"
                          "CRITICAL zeolite.server four\n");
    char want[128];
    snprintf(want, sizeof want, "%d|40|two\n%d|50|four\n", (int)getpid(), (int)getpid());
    cr_expect_str_eq(errors, want);
    free(all);
    free(errors);
}

Test(server_log, the_default_line_carries_the_pid_as_runzeo_does)
{
    zsrv__log_set_clock(test_clock);
    fake_now = 1700000000.5;
    start_log("<eventlog>\n <logfile>\n  path %s/z.log\n </logfile>\n</eventlog>\n", dir);
    zsrv__log(ZSRV_LOG_WARNING, "hello");
    zsrv__log_close();
    char *log = slurp("z.log"), want[128];
    snprintf(want, sizeof want, "2023-11-14T22:13:20 WARNING zeolite.server (%d) hello\n",
             (int)getpid());
    cr_expect_str_eq(log, want);
    free(log);
}

/* max-size/old-files: Python's RotatingFileHandler's names and order. */
Test(server_log, rotation_by_size_keeps_old_files)
{
    start_log("<eventlog>\n <logfile>\n  path %s/s.log\n  max-size 100\n"
             "  old-files 2\n  format %%(message)s\n </logfile>\n</eventlog>\n", dir);
    for (int i = 0; i < 30; i++)   /* 30 lines of 20 bytes: 4 per file */
        zsrv__log(ZSRV_LOG_INFO, "line %02d ...........", i);
    zsrv__log_close();
    char *cur = slurp("s.log"), *one = slurp("s.log.1"), *two = slurp("s.log.2");
    cr_assert(cur && one && two);
    cr_expect(!exists("s.log.3"), "old-files 2 keeps two");
    cr_expect_str_eq(cur, "line 28 ...........\nline 29 ...........\n");
    cr_expect(!strncmp(one, "line 24", 7) && strlen(one) == 80, "%s", one);
    cr_expect(!strncmp(two, "line 20", 7) && strlen(two) == 80, "%s", two);
    free(cur);
    free(one);
    free(two);
}

static size_t count_prefixed(const char *prefix)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

/* when/interval: the file is renamed for the interval it covers, at the
 * first line past the interval's end, and old-files are kept. */
Test(server_log, rotation_by_time_under_a_test_clock)
{
    zsrv__log_set_clock(test_clock);
    fake_now = 1700000000;   /* 22:13:20 */
    start_log("<eventlog>\n <logfile>\n  path %s/t.log\n  when S\n"
             "  interval 10\n  old-files 2\n  format %%(message)s\n </logfile>\n</eventlog>\n",
             dir);
    zsrv__log(ZSRV_LOG_INFO, "a");
    fake_now += 9.5;
    zsrv__log(ZSRV_LOG_INFO, "b");
    cr_expect_eq(count_prefixed("t.log."), 0, "not before the interval ends");
    fake_now += 0.5;
    zsrv__log(ZSRV_LOG_INFO, "c");
    char *first = slurp("t.log.2023-11-14_22-13-20");
    cr_assert(first, "renamed for the interval's start");
    cr_expect_str_eq(first, "a\nb\n");
    fake_now += 25;   /* 22:13:55: the next interval ended at 22:13:40 */
    zsrv__log(ZSRV_LOG_INFO, "d");
    char *second = slurp("t.log.2023-11-14_22-13-30");
    cr_assert(second);
    cr_expect_str_eq(second, "c\n");
    fake_now += 100;
    zsrv__log(ZSRV_LOG_INFO, "e");
    cr_expect_eq(count_prefixed("t.log."), 2, "old-files 2");
    cr_expect(!exists("t.log.2023-11-14_22-13-20"), "the oldest went");
    zsrv__log_close();
    char *cur = slurp("t.log");
    cr_expect_str_eq(cur, "e\n");
    free(first);
    free(second);
    free(cur);
}

Test(server_log, rotation_at_midnight)
{
    zsrv__log_set_clock(test_clock);
    fake_now = 1704153590;   /* 2024-01-01T23:59:50 */
    start_log("<eventlog>\n <logfile>\n  path %s/m.log\n  when MIDNIGHT\n"
             "  old-files 5\n  format %%(message)s\n </logfile>\n</eventlog>\n", dir);
    zsrv__log(ZSRV_LOG_INFO, "new year's day");
    fake_now += 15;
    zsrv__log(ZSRV_LOG_INFO, "the day after");
    zsrv__log_close();
    char *old = slurp("m.log.2024-01-01"), *cur = slurp("m.log");
    cr_assert(old && cur);
    cr_expect_str_eq(old, "new year's day\n");
    cr_expect_str_eq(cur, "the day after\n");
    free(old);
    free(cur);
}

/* SIGUSR2's work: a plain file is reopened (logrotate moved it), a
 * rotating one rolls over, as ZConfig's reopen does. */
Test(server_log, reopen_after_logrotate_and_rollover_of_rotating_files)
{
    start_log("<eventlog>\n <logfile>\n  path %s/p.log\n  format %%(message)s\n"
             " </logfile>\n <logfile>\n  path %s/r.log\n  max-size 1MB\n  old-files 3\n"
             "  format %%(message)s\n </logfile>\n</eventlog>\n", dir, dir);
    zsrv__log(ZSRV_LOG_INFO, "before");
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/p.log", dir);
    snprintf(to, sizeof to, "%s/p.log.moved", dir);
    cr_assert_eq(rename(from, to), 0);
    cr_expect_eq(zsrv__log_reopen(), 0);
    zsrv__log(ZSRV_LOG_INFO, "after");
    zsrv__log_close();
    char *moved = slurp("p.log.moved"), *plain = slurp("p.log"), *r1 = slurp("r.log.1"),
         *r = slurp("r.log");
    cr_assert(moved && plain && r1 && r);
    cr_expect_str_eq(moved, "before\n");
    cr_expect(!strncmp(plain, "Log files reopened successfully\nafter\n", 38), "%s", plain);
    cr_expect_str_eq(r1, "before\n");
    cr_expect_str_eq(r, "Log files reopened successfully\nafter\n");
    free(moved);
    free(plain);
    free(r1);
    free(r);
}

static int bind_unix_dgram(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    return fd;
}

static int bind_udp(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void recv_expect(int fd, const char *want)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    cr_assert_gt(n, 0, "no syslog datagram");
    buf[n] = 0;
    cr_expect_str_eq(buf, want);
}

/* <syslog>: a Unix datagram socket (as /dev/log) and UDP, each with its
 * facility, the priority from the level, and the pid in the tag. */
Test(server_log, syslog_to_sockets_the_test_binds)
{
    char sock[1024];
    snprintf(sock, sizeof sock, "%s/log.sock", dir);
    int ufd = bind_unix_dgram(sock), port;
    int ifd = bind_udp(&port);
    char text[4096];
    snprintf(text, sizeof text,
             "<eventlog>\n <syslog>\n  address %s\n  facility local3\n </syslog>\n"
             " <syslog>\n  address 127.0.0.1:%d\n  level error\n  format %%(levelname)s %%(message)s\n"
             " </syslog>\n</eventlog>\n", sock, port);
    zerr err = {0};
    cr_assert_eq(parse(text, &err), 0, "%s", err.msg);
    cr_assert_eq(zsrv__log_setup(&cfg, &err), 0, "%s", err.msg);
    zsrv__log(ZSRV_LOG_WARNING, "disk %d%% full", 91);
    zsrv__log(ZSRV_LOG_ERROR, "disk full");
    char want[256];
    snprintf(want, sizeof want, "<156>zeolite.server[%d]: disk 91%% full", (int)getpid());
    recv_expect(ufd, want);   /* local3 (19) * 8 + warning (4) */
    snprintf(want, sizeof want, "<155>zeolite.server[%d]: disk full", (int)getpid());
    recv_expect(ufd, want);
    recv_expect(ifd, "<11>ERROR disk full");   /* user (1) * 8 + error (3); warning filtered */
    zsrv__log_close();
    close(ufd);
    close(ifd);
}

Test(server_log, a_syslog_socket_that_is_not_there_stops_the_start)
{
    zerr err = {0};
    cr_assert_eq(parsef(&err, "<eventlog>\n <syslog>\n  address %s/none.sock\n </syslog>\n"
                        "</eventlog>\n", dir), 0, "%s", err.msg);
    cr_expect_lt(zsrv__log_setup(&cfg, &err), 0);
    cr_expect(strstr(err.msg, "none.sock"), "%s", err.msg);
    cr_expect_lt(zsrv__log_check(&cfg, &err), 0, "--test finds it too, creating nothing");
}

Test(server_log, log_check_creates_nothing)
{
    zerr err = {0};
    cr_assert_eq(parsef(&err, "<eventlog>\n <logfile>\n  path %s/new.log\n </logfile>\n"
                        " <logfile>\n  path %s/missing/x.log\n </logfile>\n</eventlog>\n", dir,
                        dir), 0, "%s", err.msg);
    cr_expect_lt(zsrv__log_check(&cfg, &err), 0);
    cr_expect(strstr(err.msg, "missing/x.log"), "%s", err.msg);
    cr_expect(!exists("new.log"));
}
