/* addr.c: server address strings, as ZEO's tools write them. */
#include "client/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return 0;
    *port = v;
    return 1;
}

static int set_storage(zcl_addr *out, const char *s, zerr *err)
{
    if (strlen(s) >= sizeof out->storage || !*s)
        return zerr_set(err, ZE_INVAL, "bad storage name '%s'", s);
    strcpy(out->storage, s);
    return 0;
}

/* A Unix socket path, with an optional ":STORAGE" after it; the socket path
 * itself must not contain ':' then. */
static int parse_unix(const char *s, int allow_storage, zcl_addr *out, zerr *err)
{
    const char *colon = allow_storage ? strrchr(s, ':') : NULL;
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n == 0 || n >= sizeof out->path)
        return zerr_set(err, ZE_INVAL, "bad socket path '%s'", s);
    out->kind = ZCL_ADDR_UNIX;
    memcpy(out->path, s, n);
    out->path[n] = '\0';
    return colon ? set_storage(out, colon + 1, err) : 0;
}

/* "[v6]:port[:storage]" or "host:port[:storage]" or "port". */
static int parse_tcp(const char *s, int allow_storage, zcl_addr *out, zerr *err)
{
    const char *host = s, *rest;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return zerr_set(err, ZE_INVAL, "bad address '%s'", s);
        host = s + 1;
        hlen = (size_t)(close - host);
        rest = close + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon) {
            host = "127.0.0.1";
            hlen = strlen(host);
            rest = s;
        } else {
            hlen = (size_t)(colon - s);
            rest = colon + 1;
        }
    }
    const char *pend = strchr(rest, ':');
    size_t plen = pend ? (size_t)(pend - rest) : strlen(rest);
    if (hlen == 0 || hlen >= sizeof out->host || !parse_port(rest, plen, &out->port))
        return zerr_set(err, ZE_INVAL, "bad address '%s' (want HOST:PORT or a socket path)", s);
    out->kind = ZCL_ADDR_TCP;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (!pend)
        return 0;
    if (!allow_storage)
        return zerr_set(err, ZE_INVAL, "bad address '%s'", s);
    return set_storage(out, pend + 1, err);
}

int zcl_addr_parse(const char *s, int allow_storage, zcl_addr *out, zerr *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return zerr_set(err, ZE_INVAL, "empty address");
    if (!strncmp(s, "unix:", 5))
        return parse_unix(s + 5, allow_storage, out, err);
    if (strchr(s, '/'))
        return parse_unix(s, allow_storage, out, err);
    return parse_tcp(s, allow_storage, out, err);
}

void zcl_addr_format(const zcl_addr *a, char *buf, size_t size)
{
    if (a->kind == ZCL_ADDR_UNIX)
        snprintf(buf, size, "%s", a->path);
    else if (strchr(a->host, ':'))
        snprintf(buf, size, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, size, "%s:%d", a->host, a->port);
}
