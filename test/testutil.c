#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/zfile.h"

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/zeolite-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

void tu_rmrf(const char *path)
{
    if (path)
        zfile_rm_rf(path, NULL);
}

char *tu_shared(const char *rel)
{
    const char *base = getenv("ZEOLITE_SHARED_DIR");
    char *path = NULL;
    if (asprintf(&path, "%s/%s", base && *base ? base : ZEOLITE_SHARED_DIR, rel) < 0)
        return NULL;
    return path;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

int tu_write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(p, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

const char *tu_zeolite_bin(void)
{
    const char *b = getenv("ZEOLITE_BIN");
    return b && *b ? b : ZEOLITE_BINARY_DIR "/src/tools/zeolite";
}

char *tu_sanitizer_report(const char *path)
{
    size_t len;
    char *text = (char *)tu_read_file(path, &len), *found = NULL;
    for (char *line = text; text && line < text + len && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (strstr(line, "Sanitizer:") || strstr(line, ": runtime error: "))
            found = strdup(line);
        line = nl ? nl + 1 : text + len;
    }
    free(text);
    return found;
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

pid_t tu_spawn(const char *const *argv, const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid < 0 ? -1 : pid;
#ifdef __linux__
    /* A test that aborts must not leave its server behind. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static int accepts(const char *unix_path, int port)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    struct sockaddr_in si = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr *sa = unix_path ? (struct sockaddr *)&su : (struct sockaddr *)&si;
    socklen_t len = unix_path ? sizeof su : sizeof si;
    if (unix_path)
        snprintf(su.sun_path, sizeof su.sun_path, "%s", unix_path);
    int fd = socket(sa->sa_family, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, sa, len) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int tu_wait_accepting(pid_t *pid, const char *unix_path, int port, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (accepts(unix_path, port))
            return 0;
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

int tu_stop_process(pid_t pid, int grace_ms)
{
    kill(pid, SIGTERM);
    return tu_wait_process(pid, grace_ms);
}

int tu_wait_process(pid_t pid, int grace_ms)
{
    int status = 0;
    for (int waited = 0; waited < grace_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

char *tu_path(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

int tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

int tu_canary_note(tu_canary *c)
{
    free(c->data);
    c->data = tu_read_file(c->path, &c->len);
    return c->data && lstat(c->path, &c->st) == 0 ? 0 : -1;
}

int tu_canary_plant(tu_canary *c, const char *dir, const char *name, mode_t mode)
{
    char text[300];
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s/%s", dir, name);
    snprintf(text, sizeof text, "canary %s: nothing may touch it\n", name);
    if (tu_write_file(c->path, text, strlen(text)) || chmod(c->path, mode))
        return -1;
    return tu_canary_note(c);
}

int tu_canary_changed(const tu_canary *c, char *why, size_t cap)
{
    struct stat st;
    size_t len = 0;
    uint8_t *now = NULL;
    if (lstat(c->path, &st) < 0)
        snprintf(why, cap, "%s was removed", c->path);
    else if (st.st_ino != c->st.st_ino)
        snprintf(why, cap, "%s was replaced", c->path);
    else if (st.st_mode != c->st.st_mode)
        snprintf(why, cap, "%s: mode %o became %o", c->path, (unsigned)c->st.st_mode & 07777,
                 (unsigned)st.st_mode & 07777);
    else if (st.st_nlink != c->st.st_nlink)
        snprintf(why, cap, "%s: %lu links became %lu", c->path, (unsigned long)c->st.st_nlink,
                 (unsigned long)st.st_nlink);
    else if (!(now = tu_read_file(c->path, &len)) || len != c->len ||
             memcmp(now, c->data, len))
        snprintf(why, cap, "%s was rewritten", c->path);
    else
        why = NULL;
    free(now);
    return why != NULL;
}

void tu_canary_free(tu_canary *c)
{
    free(c->data);
    c->data = NULL;
}

int tu_same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}
