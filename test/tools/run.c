/* run.c: see run.h. */
#define _GNU_SOURCE
#include "run.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

char *tr_dir;

void tr_dir_init(void)
{
    tr_dir = tu_tmpdir("cli");
    cr_assert(tr_dir);
}

void tr_dir_fini(void)
{
    tu_rmrf(tr_dir);
    free(tr_dir);
    tr_dir = NULL;
}

char *tr_path(const char *name)
{
    char *p = tu_path(tr_dir, name);
    cr_assert(p);
    return p;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while (buf && (got = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    cr_assert_not_null(buf);
    buf[n] = '\0';
    return buf;
}

void tr_run(tr_result *r, const char *const *args, const char *const *env)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = tu_zeolite_bin();
    for (size_t i = 0; args[i]; i++) {
        cr_assert_lt(n, 63);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    cr_assert(out && err);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r->out = slurp_fd(fileno(out));
    r->err = slurp_fd(fileno(err));
    fclose(out);
    fclose(err);
    cr_assert_neq(r->status, 127, "cannot run %s", argv[0]);
}

void tr_zeolite(tr_result *r, const char *arg, ...)
{
    const char *args[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a; a = va_arg(ap, const char *)) {
        cr_assert_lt(n, 63);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    tr_run(r, args, NULL);
}

void tr_free(tr_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int tr_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        n++;
    return n;
}

int tr_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

static int frame(int fd, const char *payload, size_t n)
{
    uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    return write_all(fd, hdr, 4) || write_all(fd, payload, n) ? -1 : 0;
}

static void *serve_ruok(void *arg)
{
    tr_ruok *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char got[8];
    size_t n = 0;
    ssize_t r;
    if (frame(c, "Z5", 2) == 0) {
        while (n < sizeof got && (r = read(c, got + n, sizeof got - n)) > 0)
            n += (size_t)r;
        s->got_ruok = n == 8 && !memcmp(got, "\0\0\0\4ruok", 8);
        if (s->got_ruok)
            frame(c, s->answer, strlen(s->answer));
    }
    close(c);
    return NULL;
}

void tr_ruok_start(tr_ruok *s, const char *answer)
{
    s->answer = answer;
    s->got_ruok = 0;
    s->fd = listen_loopback(&s->port);
    cr_assert_eq(pthread_create(&s->thread, NULL, serve_ruok, s), 0);
}

void tr_ruok_join(tr_ruok *s)
{
    /* A client that never connected leaves accept() waiting: unblock it. */
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

int tr_silent_port(int *port)
{
    return listen_loopback(port);
}
