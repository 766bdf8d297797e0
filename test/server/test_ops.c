/* A real `zeolite serve` as an operator runs it: the log on STDOUT, on
 * journald's stream, a log key refused at start, and the systemd unit
 * (systemd-analyze verify on a copy naming the built binary, with the built
 * man page on MANPATH, then its command line with NOTIFY_SOCKET on a
 * datagram socket of the test and the package's zeo.conf). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "testutil.h"

static char *dir;

static void setup(void)
{
    dir = tu_tmpdir("srvops");
    cr_assert(dir);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
}

TestSuite(server_ops, .init = setup, .fini = teardown, .timeout = 60);

static char *in_dir(const char *name)
{
    char *p = tu_path(dir, name);
    cr_assert(p);
    return p;
}

static char *slurp(const char *name)
{
    char *p = in_dir(name);
    size_t len;
    char *s = (char *)tu_read_file(p, &len);
    free(p);
    return s;
}

/* Fork and exec argv with stdout and stderr in two files of dir. */
static pid_t spawn2(char *const *argv, const char *out, const char *err)
{
    char *po = in_dir(out), *pe = in_dir(err);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fo = open(po, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fe = open(pe, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fo < 0 || fe < 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    free(po);
    free(pe);
    cr_assert_gt(pid, 0);
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A zeo.conf serving dir/db on port, with the extra text appended. */
static char *write_conf(int port, const char *extra)
{
    char *path = in_dir("zeo.conf"), text[4096];
    snprintf(text, sizeof text, "<zeo>\n  address 127.0.0.1:%d\n</zeo>\n<lmdb 1>\n  path %s/db\n"
             "</lmdb>\n%s", port, dir, extra);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    return path;
}

/* <logfile> path STDOUT: the lines on stdout, in runzeo's shape with the
 * pid; nothing on stderr. */
Test(server_ops, the_log_on_stdout)
{
    int port = tu_free_port();
    char *conf = write_conf(port, "<eventlog>\n <logfile>\n  path STDOUT\n </logfile>\n"
                                  "</eventlog>\n");
    char *argv[] = {(char *)tu_zeolite_bin(), "serve", "-C", conf, "--no-sync", NULL};
    pid_t pid = spawn2(argv, "out", "err");
    cr_assert_eq(tu_wait_accepting(&pid, NULL, port, 5000), 0);
    cr_expect_eq(tu_stop_process(pid, 5000), 0);
    char *out = slurp("out"), *err = slurp("err"), want[128];
    snprintf(want, sizeof want, " INFO zeolite.server (%d) listening on 127.0.0.1 port %d\n",
             (int)pid, port);
    cr_expect(out && strstr(out, want), "%s", out);
    cr_expect(err && !err[0], "stderr: %s", err);
    free(out);
    free(err);
    free(conf);
}

/* Started by systemd with stderr on the journal: <N> priorities, and no
 * time or pid in the line (the journal has both). */
Test(server_ops, journald_priority_prefixes)
{
    char *errp = in_dir("err");
    cr_assert_eq(tu_write_file(errp, "", 0), 0);
    struct stat st;
    cr_assert_eq(stat(errp, &st), 0);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    int port = tu_free_port();
    char addr[32], *db = in_dir("db");
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    char *argv[] = {(char *)tu_zeolite_bin(), "serve", "-a", addr, "-f", db, "--no-sync", NULL};
    pid_t pid = spawn2(argv, "out", "err");
    unsetenv("JOURNAL_STREAM");
    cr_assert_eq(tu_wait_accepting(&pid, NULL, port, 5000), 0);
    /* a bad handshake: a WARNING */
    tc c;
    cr_assert_eq(tc_open(&c, port), 0);
    cr_assert_eq(tc_send_raw(&c, "XX", 2), 0);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
    cr_expect_eq(tu_stop_process(pid, 5000), 0);
    char *log = slurp("err"), want[96];
    cr_assert(log);
    snprintf(want, sizeof want, "<6>INFO zeolite.server listening on 127.0.0.1 port %d\n", port);
    cr_expect(strstr(log, want), "%s", log);
    cr_expect(strstr(log, "<4>WARNING zeolite.server 127.0.0.1:"), "%s", log);
    for (char *line = log; *line; line = strchr(line, '\n') + 1) {
        cr_expect_eq(line[0], '<', "a line without its priority: %s", line);
        if (!strchr(line, '\n'))
            break;
    }
    free(log);
    free(errp);
    free(db);
}

Test(server_ops, a_log_key_zeolite_cannot_honour_stops_the_start)
{
    int port = tu_free_port();
    char *conf = write_conf(port, "<eventlog>\n <logfile>\n  path x.log\n  formatter "
                                  "zope.exceptions.log.Formatter\n </logfile>\n</eventlog>\n");
    char *argv[] = {(char *)tu_zeolite_bin(), "serve", "-C", conf, NULL};
    pid_t pid = spawn2(argv, "out", "err");
    cr_expect_neq(wait_exit(pid), 0);
    char *err = slurp("err");
    cr_expect(err && strstr(err, "formatter") && strstr(err, "zeo.conf:10:"), "%s", err);
    char *db = in_dir("db");
    cr_expect(!tu_exists(db), "nothing was created");
    free(db);
    free(err);
    free(conf);
}

/* ---- systemd ----------------------------------------------------------- */

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    cr_assert(at, "'%s' not in the unit", from);
    char *out = NULL;
    cr_assert(asprintf(&out, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from)) > 0);
    return out;
}

/* The unit, its ExecStart naming the built binary and a test zeo.conf. */
static char *unit_copy(const char *conf)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/etc/zeolite.service", ZEOLITE_SOURCE_DIR);
    char *unit = (char *)tu_read_file(path, &len);
    cr_assert(unit, "no %s", path);
    cr_expect(strstr(unit, "\nType=notify\n") && strstr(unit, "\nExecReload=") &&
              strstr(unit, "\nProtectSystem=strict\n") && strstr(unit, "\nNoNewPrivileges=yes\n") &&
              strstr(unit, "\nReadWritePaths=/var/lib/zeolite"));
    char *a = replace(unit, "ExecStart=/usr/bin/zeolite ", "ExecStart=@BIN@ ");
    char *b = replace(a, "@BIN@", tu_zeolite_bin());
    char opt[4200];
    snprintf(opt, sizeof opt, "-C %s", conf);
    char *c = replace(b, "-C /etc/zeolite/zeo.conf", opt);
    free(unit);
    free(a);
    free(b);
    return c;
}

static int bind_notify(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static char *next_notice(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, 0);
    cr_assert_gt(n, 0, "no notification from the server: %s", slurp("err"));
    buf[n] = 0;
    return buf;
}

static int port_accepts(int port)
{
    tc c;
    int ok = tc_open(&c, port) == 0;
    tc_close(&c);
    return ok;
}

/* The package's zeo.conf (etc/zeo.conf) serving dir/db on port, its log on
 * stderr. */
static char *write_package_conf(int port)
{
    char path[4096], addr[32], *db = in_dir("db");
    size_t len;
    snprintf(path, sizeof path, "%s/etc/zeo.conf", ZEOLITE_SOURCE_DIR);
    char *text = (char *)tu_read_file(path, &len);
    cr_assert(text, "no %s", path);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    char *a = replace(text, "\n  address 127.0.0.1:8100\n", "\n  address @ADDR@\n");
    char *b = replace(a, "@ADDR@", addr);
    char *c = replace(b, "%define DBDIR /var/lib/zeolite\n", "%define DBDIR @DB@\n");
    char *d = replace(c, "@DB@", db), *conf = in_dir("zeo.conf");
    cr_assert_eq(tu_write_file(conf, d, strlen(d)), 0);
    free(text);
    free(a);
    free(b);
    free(c);
    free(d);
    free(db);
    return conf;
}

Test(server_ops, the_systemd_unit_verifies_and_its_command_notifies)
{
    int port = tu_free_port();
    char *conf = write_package_conf(port);
    char *unit = unit_copy(conf), *unit_path = in_dir("zeolite.service");
    cr_assert_eq(tu_write_file(unit_path, unit, strlen(unit)), 0);

    /* systemd-analyze verify: rc 0 and not a word (unknown keys only warn);
     * Documentation=man:zeolite(1) is found in the build's man folder. */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "MANPATH='%s/doc/man' systemd-analyze verify '%s' > "
             "'%s/verify.out' 2>&1", ZEOLITE_BINARY_DIR, unit_path, dir);
    int rc = system(cmd);
    char *out = slurp("verify.out");
    cr_expect(rc == 0 && out && !out[0], "systemd-analyze verify: rc %d: %s", rc, out);
    free(out);

    /* ExecStart's command line, with NOTIFY_SOCKET */
    char *line = strstr(unit, "\nExecStart=") + strlen("\nExecStart=");
    char *end = strchr(line, '\n'), *argv[16];
    *end = 0;
    int argc = 0;
    for (char *tok = strtok(line, " "); tok && argc < 15; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    char *sock = in_dir("notify.sock");
    int nfd = bind_notify(sock);
    setenv("NOTIFY_SOCKET", sock, 1);
    pid_t pid = spawn2(argv, "out", "err");
    unsetenv("NOTIFY_SOCKET");
    char buf[512];
    /* The first word is READY=1, and the port accepts once it came. */
    cr_expect(!strncmp(next_notice(nfd, buf, sizeof buf), "READY=1\n", 8), "%s", buf);
    cr_expect(strstr(buf, "STATUS=serving 1 storage"), "%s", buf);
    cr_expect(port_accepts(port), "READY=1 before the port accepts");
    kill(pid, SIGUSR2);   /* ExecReload */
    cr_expect(!strncmp(next_notice(nfd, buf, sizeof buf), "RELOADING=1\nMONOTONIC_USEC=", 27),
              "%s", buf);
    cr_expect_str_eq(next_notice(nfd, buf, sizeof buf), "READY=1");
    kill(pid, SIGTERM);
    cr_expect_str_eq(next_notice(nfd, buf, sizeof buf), "STOPPING=1");
    cr_expect_eq(wait_exit(pid), 0);
    /* The package's zeo.conf: the log on stderr (the journal), the database
     * where its %define says. */
    char *err = slurp("err"), want[96], *mdb = in_dir("db/data.mdb");
    snprintf(want, sizeof want, "listening on 127.0.0.1 port %d\n", port);
    cr_expect(err && strstr(err, want), "stderr: %s", err);
    cr_expect(tu_exists(mdb), "no database in %s/db", dir);
    free(err);
    free(mdb);
    close(nfd);
    free(sock);
    free(unit_path);
    free(unit);
    free(conf);
}
