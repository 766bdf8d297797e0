/* listen.c: the listening sockets: TCP (IPv4/IPv6, every address a host name
 * resolves to) or a Unix socket (stale file removed, mode 0660).
 *
 * Binding and listening are two steps: the start binds first (a port in
 * use is found before anything is created on disk), opens its databases,
 * and listens last, so a client that can connect finds the server ready. */
#define _GNU_SOURCE
#include "server/server_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/znum.h"

#define BACKLOG 511

static void on_connection(uv_stream_t *server, int status)
{
    zsrv_listener *l = server->data;
    if (status < 0) {
        zsrv__log(ZSRV_LOG_WARNING, "accept failed: %s", uv_strerror(status));
        return;
    }
    zsrv__conn_accept(l->srv, server, l->unix_path != NULL);
}

static zsrv_listener *listener_new(zsrv *s)
{
    zsrv_listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->srv = s;
    l->h.handle.data = l;
    return l;
}

static void listener_closed(uv_handle_t *h)
{
    zsrv_listener *l = h->data;
    if (l->unix_path)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l);
}

/* Refuse to steal the socket of a running server; remove a dead one's file. */
static int clear_stale_socket(const char *path, zerr *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return zerr_set(err, ZE_EXISTS, "%s exists and is not a socket", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return zerr_sys(err, errno, "socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    if (live)
        return zerr_set(err, ZE_BUSY, "another server is listening on %s", path);
    if (unlink(path) < 0)
        return zerr_sys(err, errno, "cannot remove stale socket %s", path);
    zsrv__log(ZSRV_LOG_INFO, "removed stale socket %s", path);
    return 0;
}

static int bind_unix(zsrv *s, const char *path, zerr *err)
{
    int rc = clear_stale_socket(path, err);
    if (rc < 0)
        return rc;
    zsrv_listener *l = listener_new(s);
    if (!l || !(l->unix_path = strdup(path))) {
        free(l);
        return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    uv_pipe_init(s->loop, &l->h.pipe, 0);
    /* Owner and group only; umask could otherwise leave it world-writable. */
    mode_t old = umask(0117);
    rc = uv_pipe_bind(&l->h.pipe, path);
    umask(old);
    if (rc < 0) {
        free(l->unix_path);
        l->unix_path = NULL;
        uv_close(&l->h.handle, listener_closed);
        return zerr_set(err, ZE_IO, "cannot listen on %s: %s", path, uv_strerror(rc));
    }
    snprintf(l->name, sizeof l->name, "%.*s", (int)sizeof l->name - 1, path);
    snprintf(l->logged, sizeof l->logged, "%s", l->name);
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" of a socket address, for errors, and the log's
 * "HOST port PORT" (as the log has always said it). */
static void addr_names(const struct sockaddr *sa, zsrv_listener *l)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port;
    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(l->name, sizeof l->name, "[%s]:%d", ip, port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        snprintf(l->name, sizeof l->name, "%s:%d", ip, port);
    }
    snprintf(l->logged, sizeof l->logged, "%s port %d", ip, port);
}

/* A socket of our own, so that bind() reports a port in use at once (libuv's
 * uv_tcp_bind leaves EADDRINUSE to uv_listen). */
static int bind_socket(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), on = 1;
    if (fd < 0)
        return -errno;
    /* as libuv: a restarted server rebinds over its old connections */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, sa, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int bind_addr(zsrv *s, const struct addrinfo *ai, zerr *err)
{
    zsrv_listener *l = listener_new(s);
    if (!l)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    addr_names(ai->ai_addr, l);
    int fd = bind_socket(ai->ai_addr, ai->ai_addrlen), rc = fd;
    uv_tcp_init(s->loop, &l->h.tcp);
    if (fd >= 0 && (rc = uv_tcp_open(&l->h.tcp, fd)) < 0)
        close(fd);
    if (rc < 0) {
        zerr_set(err, ZE_IO, "cannot listen on %s: %s", l->name,
                 uv_strerror(uv_translate_sys_error(-rc)));
        uv_close(&l->h.handle, listener_closed);
        return ZE_IO;
    }
    l->next = s->listeners;
    s->listeners = l;
    return 0;
}

int zsrv__address_parse(const char *address, zsrv_address *out, zerr *err)
{
    memset(out, 0, sizeof *out);
    if (strchr(address, '/')) {
        if (strlen(address) >= sizeof ((struct sockaddr_un *)0)->sun_path)
            return zerr_set(err, ZE_INVAL, "socket path %s is too long", address);
        out->is_unix = 1;
        return 0;
    }
    const char *colon, *host = address;
    size_t hlen;
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':')
            return zerr_set(err, ZE_INVAL, "bad address '%s' (want [V6ADDR]:PORT)", address);
        host = address + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
    } else if ((colon = strrchr(address, ':'))) {
        hlen = (size_t)(colon - address);
    } else {
        hlen = 0;
        colon = address - 1;
    }
    long long port;
    if (hlen >= sizeof out->host)
        return zerr_set(err, ZE_INVAL, "bad address '%s': host name too long", address);
    if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        znum_int(colon + 1, 0, 99999999, &port))
        return zerr_set(err, ZE_INVAL, "bad address '%s' (HOST:PORT, PORT or a socket path)",
                        address);
    if (port < 1 || port > 65535)
        return zerr_set(err, ZE_INVAL, "bad address '%s': port %lld is outside 1-65535",
                        address, port);
    memcpy(out->host, host, hlen);
    snprintf(out->port, sizeof out->port, "%lld", port);
    return 0;
}

int zsrv__address_resolve(const char *address, const zsrv_address *a, struct addrinfo **res,
                          zerr *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    /* runzeo's empty host means every IPv4 interface. */
    int gai = getaddrinfo(a->host[0] ? a->host : "0.0.0.0", a->port, &hints, res);
    if (gai)
        return zerr_set(err, ZE_INVAL, "cannot resolve '%s' in address '%s': %s", a->host,
                        address, gai_strerror(gai));
    return 0;
}

int zsrv__bind(zsrv *s, const char *address, zerr *err)
{
    zsrv_address a;
    struct addrinfo *res;
    int rc = zsrv__address_parse(address, &a, err);
    if (rc < 0)
        return rc;
    if (a.is_unix)
        return bind_unix(s, address, err);
    if ((rc = zsrv__address_resolve(address, &a, &res, err)) < 0)
        return rc;
    int ok = 0;
    rc = 0;
    zerr first = {0};
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if ((rc = bind_addr(s, ai, ok ? NULL : &first)) == 0)
            ok++;
    }
    freeaddrinfo(res);
    if (!ok)
        return zerr_set(err, rc < 0 ? rc : ZE_IO, "%s", first.msg[0] ? first.msg : "no address");
    return 0;
}

int zsrv__listen_start(zsrv *s, zerr *err)
{
    for (zsrv_listener *l = s->listeners; l; l = l->next) {
        int rc = uv_listen(&l->h.stream, BACKLOG, on_connection);
        if (rc < 0)
            return zerr_set(err, ZE_IO, "cannot listen on %s: %s", l->name, uv_strerror(rc));
        zsrv__log(ZSRV_LOG_INFO, "listening on %s", l->logged);
    }
    return 0;
}

void zsrv__listen_close(zsrv *s)
{
    while (s->listeners) {
        zsrv_listener *l = s->listeners;
        s->listeners = l->next;
        uv_close(&l->h.handle, listener_closed);
    }
}
