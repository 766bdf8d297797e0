/* net.c: the sockets of bench/limit, TCP or Unix, without libuv. */
#define _GNU_SOURCE
#include "limit.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void lim_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void lim_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int unix_addr(const char *path, struct sockaddr_un *sa, zerr *err)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return zerr_set(err, ZE_INVAL, "socket path %s is too long", path);
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* HOST:PORT ([V6]:PORT) resolved for a listener (passive) or a client. */
static int resolve(const char *addr, int passive, struct addrinfo **res, zerr *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return zerr_set(err, ZE_INVAL, "address %s is not HOST:PORT or a socket path", addr);
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, res);
    if (rc != 0)
        return zerr_set(err, ZE_INVAL, "cannot resolve %s: %s", addr, gai_strerror(rc));
    return 0;
}

static int listen_unix(const char *path, zerr *err)
{
    struct sockaddr_un sa;
    struct stat st;
    int rc = unix_addr(path, &sa, err);
    if (rc < 0)
        return rc;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return zerr_sys(err, errno, "socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 511) < 0) {
        rc = zerr_sys(err, errno, "cannot listen on %s", path);
        close(fd);
        return rc;
    }
    return fd;
}

int lim_listen(const char *addr, zerr *err)
{
    if (strchr(addr, '/'))
        return listen_unix(addr, err);
    struct addrinfo *res;
    int rc = resolve(addr, 1, &res, err);
    if (rc < 0)
        return rc;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        rc = zerr_sys(err, errno, "socket");
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 511) < 0) {
            rc = zerr_sys(err, errno, "cannot listen on %s", addr);
            close(fd);
        }
    }
    freeaddrinfo(res);
    return rc < 0 ? rc : fd;
}

int lim_connect(const char *addr, zerr *err)
{
    int fd, rc;
    if (strchr(addr, '/')) {
        struct sockaddr_un sa;
        if ((rc = unix_addr(addr, &sa, err)) < 0)
            return rc;
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            return zerr_sys(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            rc = zerr_sys(err, errno, "cannot connect to %s", addr);
            close(fd);
            return rc;
        }
        return fd;
    }
    struct addrinfo *res;
    if ((rc = resolve(addr, 0, &res, err)) < 0)
        return rc;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = zerr_sys(err, errno, "socket");
    } else if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        rc = zerr_sys(err, errno, "cannot connect to %s", addr);
        close(fd);
    } else {
        lim_nodelay(fd);
    }
    freeaddrinfo(res);
    return rc < 0 ? rc : fd;
}

int lim_local_addr(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return ZE_IO;
    snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    return 0;
}
