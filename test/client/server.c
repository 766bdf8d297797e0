/* server.c: start and stop a server process for the client tests. */
#define _GNU_SOURCE
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static int unix_accepts(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A free port: bind to 0 and let the kernel choose. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Replace every {key} of tmpl; returns malloc'd text. */
static char *expand(const char *tmpl, const char *addr, const char *dir)
{
    size_t cap = strlen(tmpl) + 4 * (strlen(addr) + strlen(dir)) + 1;
    char *out = malloc(cap), *o = out;
    for (const char *p = tmpl; out && *p;) {
        if (!strncmp(p, "{addr}", 6)) {
            o = stpcpy(o, addr);
            p += 6;
        } else if (!strncmp(p, "{dir}", 5)) {
            o = stpcpy(o, dir);
            p += 5;
        } else {
            *o++ = *p++;
        }
    }
    if (out)
        *o = '\0';
    return out;
}

static int spawn(ts_server *s)
{
    const char *tmpl = getenv("ZCL_TEST_SERVER");
    char *base = NULL, *cmd = NULL;
    if (tmpl && *tmpl)
        base = expand(tmpl, s->addr, s->dir);
    else if (asprintf(&base, "%s serve -a %s -f %s/db --no-sync", tu_zeolite_bin(), s->addr,
                      s->dir) < 0)
        base = NULL;
    if (!base || asprintf(&cmd, "exec %s %s >>%s/server.log 2>&1", base, s->extra, s->dir) < 0) {
        free(base);
        return -1;
    }
    free(base);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    free(cmd);
    if (pid < 0)
        return -1;
    s->pid = pid;
    int is_unix = s->addr[0] == '/';
    int port = is_unix ? 0 : atoi(strrchr(s->addr, ':') + 1);
    for (int i = 0; i < 200; i++) { /* up to 20 s: Python servers start slowly */
        if (is_unix ? unix_accepts(s->addr) : port_accepts(port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        usleep(100000);
    }
    ts_server_stop(s);
    return -1;
}

int ts_server_start(ts_server *s, const char *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = tu_tmpdir("client");
    int port = free_port();
    if (!s->dir || port < 0)
        return -1;
    if (extra && !strcmp(extra, "unix")) {
        snprintf(s->addr, sizeof s->addr, "%s/zeo.sock", s->dir);
        extra = "";
    } else {
        snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", port);
    }
    snprintf(s->extra, sizeof s->extra, "%s", extra ? extra : "");
    return spawn(s);
}

void ts_server_stop(ts_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
        usleep(50000);
    if (waitpid(s->pid, NULL, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

int ts_server_restart(ts_server *s)
{
    ts_server_stop(s);
    return spawn(s);
}

void ts_server_free(ts_server *s)
{
    ts_server_stop(s);
    tu_rmrf(s->dir);
    free(s->dir);
    s->dir = NULL;
}

int ts_run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more)
                break;
            buf = more;
        }
    }
    if (buf)
        buf[n] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
