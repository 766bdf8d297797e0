/* listen.c: the listening sockets: TCP (IPv4/IPv6, every address a host name
 * resolves to) or a Unix socket (stale file removed, mode 0660). */
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

static int listen_unix(zsrv *s, const char *path, zerr *err)
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
    if (rc == 0)
        rc = uv_listen(&l->h.stream, BACKLOG, on_connection);
    if (rc < 0) {
        free(l->unix_path);
        l->unix_path = NULL;
        uv_close(&l->h.handle, listener_closed);
        return zerr_set(err, ZE_IO, "cannot listen on %s: %s", path, uv_strerror(rc));
    }
    l->next = s->listeners;
    s->listeners = l;
    zsrv__log(ZSRV_LOG_INFO, "listening on %s", path);
    return 0;
}

static int listen_addr(zsrv *s, const struct sockaddr *sa, zerr *err)
{
    char name[INET6_ADDRSTRLEN + 8] = "?";
    zsrv_listener *l = listener_new(s);
    if (!l)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    uv_tcp_init(s->loop, &l->h.tcp);
    int rc = uv_tcp_bind(&l->h.tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen(&l->h.stream, BACKLOG, on_connection);
    if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, name, sizeof name);
    else
        uv_ip4_name((const struct sockaddr_in *)sa, name, sizeof name);
    if (rc < 0) {
        uv_close(&l->h.handle, listener_closed);
        return zerr_set(err, ZE_IO, "cannot listen on %s: %s", name, uv_strerror(rc));
    }
    l->next = s->listeners;
    s->listeners = l;
    zsrv__log(ZSRV_LOG_INFO, "listening on %s port %d", name,
             ntohs(((const struct sockaddr_in *)sa)->sin_port));
    return 0;
}

/* Split HOST:PORT, [V6]:PORT, :PORT or PORT. host is "" for all interfaces. */
static int split_address(const char *addr, char *host, size_t cap, char *port, size_t pcap)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr) >= cap)
            return ZE_INVAL;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        colon = end + 1;
    } else if ((colon = strrchr(addr, ':'))) {
        if ((size_t)(colon - addr) >= cap)
            return ZE_INVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
    } else {
        host[0] = 0;
        colon = addr - 1;
    }
    if (strlen(colon + 1) >= pcap || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return ZE_INVAL;
    strcpy(port, colon + 1);
    return 0;
}

int zsrv__listen(zsrv *s, const char *address, zerr *err)
{
    if (strchr(address, '/'))
        return listen_unix(s, address, err);
    char host[256], port[16];
    if (split_address(address, host, sizeof host, port, sizeof port) < 0)
        return zerr_set(err, ZE_INVAL, "bad address '%s' (HOST:PORT or a socket path)", address);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    /* runzeo's empty host means every IPv4 interface. */
    int gai = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (gai)
        return zerr_set(err, ZE_INVAL, "cannot resolve '%s': %s", address, gai_strerror(gai));
    int ok = 0, rc = 0;
    zerr first = {0};
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if ((rc = listen_addr(s, ai->ai_addr, ok ? NULL : &first)) == 0)
            ok++;
    }
    freeaddrinfo(res);
    if (!ok)
        return zerr_set(err, rc < 0 ? rc : ZE_IO, "%s", first.msg[0] ? first.msg : "no address");
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

int zsrv__address_split(const char *addr, char *host, size_t cap, char *port, size_t pcap)
{
    return split_address(addr, host, cap, port, pcap);
}
