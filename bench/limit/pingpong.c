/* pingpong.c: zl_pingpong, loopback round trips of the load workload's
 * shape with nothing else in the way (see limit.h).
 *
 * Alone, it forks a bare server that answers every frame with one fixed
 * frame (a loadBefore reply), and drives it from a bare client: the rate
 * bench/limit must reach. With --connect it is only the bare client, after a
 * ZEO handshake and register, against any server (zl_limit, zeolite), so
 * that a server is measured without zeolite's client library in the way.
 * Both sides are one thread on level-triggered epoll, one read per readable
 * socket and one write per batch of frames.
 */
#define _GNU_SOURCE
#include "limit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zbench.h"

#define BUF_CAP (64u * 1024)
#define MSGID 300            /* a two-byte msgid: a 45-byte loadBefore call */

typedef struct opts {
    const char *connect;
    int clients, in_flight, json, use_unix;
    double duration;
    size_t object_size;
    uint64_t oid;
    char encoding;           /* 0: the server's */
    const char *storage;
} opts;

typedef struct peer {
    int fd;
    size_t in_len;
    uint8_t in[BUF_CAP];
} peer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            /* The peer is not reading: replies of 1 in flight never get here. */
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The bytes of the whole frames at the front of p->in; *count: how many. */
static size_t whole_frames(const peer *p, size_t *count)
{
    size_t pos = 0;
    *count = 0;
    while (p->in_len - pos >= 4) {
        uint32_t len = zbe32(p->in + pos);
        if (len > BUF_CAP - 4 || p->in_len - pos - 4 < len)
            break;
        pos += 4 + (size_t)len;
        ++*count;
    }
    return pos;
}

static void consume(peer *p, size_t n)
{
    memmove(p->in, p->in + n, p->in_len - n);
    p->in_len -= n;
}

/* ---- the bare server (a child process) --------------------------------- */

static void serve(int lfd, const uint8_t *reply, size_t rlen)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
    uint8_t *batch = malloc(rlen * 64);
    if (ep < 0 || !batch || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        _exit(1);
    for (size_t i = 0; i < 64; i++)
        memcpy(batch + i * rlen, reply, rlen);
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            peer *p = evs[i].data.ptr;
            if (!p) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0 || !(p = calloc(1, sizeof *p)))
                    _exit(1);
                p->fd = fd;
                lim_nodelay(fd);
                ev.data.ptr = p;
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                continue;
            }
            ssize_t r = read(p->fd, p->in + p->in_len, BUF_CAP - p->in_len);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                close(p->fd);
                free(p);
                continue;
            }
            if (r < 0)
                continue;
            p->in_len += (size_t)r;
            size_t k;
            consume(p, whole_frames(p, &k));
            while (k) {
                size_t m = k < 64 ? k : 64;
                if (write_all(p->fd, batch, m * rlen) < 0)
                    break;
                k -= m;
            }
        }
    }
}

/* ---- the client --------------------------------------------------------- */

/* A frame's payload, blocking (the handshake). */
static int read_frame(int fd, zbuf *out, zerr *err)
{
    uint8_t hdr[4];
    if (recv(fd, hdr, 4, MSG_WAITALL) != 4)
        return zerr_set(err, ZE_CLOSED, "the server closed the connection");
    uint32_t n = zbe32(hdr);
    zbuf_reset(out);
    if (n > (1u << 24) || zbuf_reserve(out, n) < 0)
        return zerr_set(err, ZE_TOOBIG, "a frame of %u bytes", n);
    if (n && recv(fd, out->data, n, MSG_WAITALL) != (ssize_t)n)
        return zerr_set(err, ZE_CLOSED, "the server closed the connection");
    out->len = n;
    return 0;
}

/* Z5/M5, then register(storage, False); the session's encoding. */
static int zeo_session(int fd, const opts *o, proto_enc *enc, zerr *err)
{
    zbuf f = ZBUF_INIT, out = ZBUF_INIT;
    int rc = read_frame(fd, &f, err);
    if (rc == 0 && (f.len != 2 || (f.data[0] != 'Z' && f.data[0] != 'M') || f.data[1] != '5'))
        rc = zerr_set(err, ZE_PROTO, "the server did not announce Z5 or M5");
    if (rc < 0) {
        zbuf_free(&f);
        return rc;
    }
    *enc = o->encoding ? (proto_enc)o->encoding : (proto_enc)f.data[0];
    zv_arena *a = zv_arena_new();
    zv *args = a ? zv_tuple(a, 2) : NULL;
    zv id = {.type = ZV_INT, .u.i = 1};
    if (!args || !(args->u.seq.items[0] = zv_cstr(a, o->storage)) ||
        !(args->u.seq.items[1] = zv_bool(a, 0)))
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
    if (rc == 0)
        rc = proto_frame_append(&out, proto_announcement(*enc), 2);
    if (rc == 0)
        rc = proto_encode_call(*enc, &out, &id, 0, "register", args, err);
    if (rc == 0 && write_all(fd, out.data, out.len) < 0)
        rc = zerr_sys(err, errno, "cannot write");
    lim_call c;
    if (rc == 0)
        rc = read_frame(fd, &f, err);
    if (rc == 0 && (lim_scan(*enc, f.data, f.len, &c) < 0 || c.async))
        rc = zerr_set(err, ZE_PROTO, "register failed (storage %s?)", o->storage);
    zv_arena_free(a);
    zbuf_free(&f);
    zbuf_free(&out);
    return rc;
}

typedef struct run {
    const opts *o;
    proto_enc enc;
    zbuf call;                 /* in_flight copies of the request frame */
    size_t call_len;
    peer *peers;
    unsigned long long ops;
    size_t reply_len;
} run;

/* Frames read from p: replies are counted and each sends the next call;
 * the server's own calls (invalidations, info) are passed over. */
static int on_frames(run *R, peer *p, zerr *err)
{
    size_t count, end = whole_frames(p, &count), k = 0;
    for (size_t pos = 0; pos < end;) {
        uint32_t len = zbe32(p->in + pos);
        lim_call c;
        if (lim_scan(R->enc, p->in + pos + 4, len, &c) < 0)
            return zerr_set(err, ZE_PROTO, "a reply of a shape it does not know");
        if (lim_call_is(&c, ".reply") && c.async)
            return zerr_set(err, ZE_PROTO, "the server answered loadBefore with an error "
                            "(no object %llu?)", (unsigned long long)R->o->oid);
        if (lim_call_is(&c, ".reply")) {
            R->reply_len = 4 + (size_t)len;
            k++;
        }
        pos += 4 + (size_t)len;
    }
    consume(p, end);
    R->ops += k;
    while (k) {
        size_t m = k < (size_t)R->o->in_flight ? k : (size_t)R->o->in_flight;
        if (write_all(p->fd, R->call.data, R->call_len * m) < 0)
            return zerr_sys(err, errno, "cannot write");
        k -= m;
    }
    return 0;
}

static int drive(run *R, double *elapsed, zerr *err)
{
    const opts *o = R->o;
    int ep = epoll_create1(0), rc = 0;
    if (ep < 0)
        return zerr_sys(err, errno, "epoll");
    for (int i = 0; i < o->clients && rc == 0; i++) {
        peer *p = &R->peers[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
        lim_nonblock(p->fd);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev) < 0 ||
            write_all(p->fd, R->call.data, R->call.len) < 0)
            rc = zerr_sys(err, errno, "cannot start client %d", i);
    }
    double t0 = now_s(), end = t0 + o->duration, last = t0;
    unsigned long long seen = 0;
    struct epoll_event evs[64];
    while (rc == 0) {
        int n = epoll_wait(ep, evs, 64, 100);
        double t = now_s();
        if (t >= end)
            break;
        if (R->ops != seen) {
            seen = R->ops;
            last = t;
        } else if (t - last > 10) {
            rc = zerr_set(err, ZE_TIMEOUT, "no reply for 10 s");
        }
        for (int i = 0; i < n && rc == 0; i++) {
            peer *p = evs[i].data.ptr;
            ssize_t r = read(p->fd, p->in + p->in_len, BUF_CAP - p->in_len);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                rc = zerr_set(err, ZE_CLOSED, "the server closed a connection");
            } else if (r > 0) {
                p->in_len += (size_t)r;
                rc = on_frames(R, p, err);
            }
        }
    }
    *elapsed = now_s() - t0;
    close(ep);
    return rc;
}

/* ---- main ----------------------------------------------------------------- */

static pid_t start_server(const opts *o, char *addr, size_t cap, const lim_call *c,
                          zerr *err)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/zl_pingpong-%d.sock", (int)getpid());
    int lfd = lim_listen(o->use_unix ? path : "127.0.0.1:0", err);
    if (lfd < 0)
        return lfd;
    if (o->use_unix)
        snprintf(addr, cap, "%s", path);
    else
        lim_local_addr(lfd, addr, cap);
    zv_arena *a = zv_arena_new();
    zv *res = a ? lim_load_result(a, o->object_size) : NULL;
    lim_reply rep;
    int rc = res ? lim_reply_init(&rep, PROTO_PICKLE, res, err)
                 : zerr_set(err, ZE_NOMEM, "out of memory");
    zv_arena_free(a);
    if (rc < 0)
        return rc;
    uint8_t *reply = malloc(lim_reply_size(&rep, PROTO_PICKLE, c));
    if (!reply)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    size_t rlen = lim_reply_put(&rep, PROTO_PICKLE, c, NULL, reply);
    lim_reply_free(&rep);
    pid_t pid = fork();
    if (pid == 0)
        serve(lfd, reply, rlen);
    free(reply);
    close(lfd);
    return pid < 0 ? zerr_sys(err, errno, "fork") : pid;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    *o = (opts){.clients = 16, .in_flight = 1, .duration = 5,
                .object_size = ZBENCH_OBJECT_SIZE, .oid = 1, .storage = "1"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--unix")) {
            o->use_unix = 1;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--connect"))
            o->connect = v;
        else if (!strcmp(a, "--clients"))
            o->clients = atoi(v);
        else if (!strcmp(a, "--in-flight"))
            o->in_flight = atoi(v);
        else if (!strcmp(a, "--duration"))
            o->duration = atof(v);
        else if (!strcmp(a, "--object-size"))
            o->object_size = (size_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--oid"))
            o->oid = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--storage"))
            o->storage = v;
        else if (!strcmp(a, "--encoding") && (v[0] == 'Z' || v[0] == 'M') && !v[1])
            o->encoding = v[0];
        else
            return -1;
    }
    if (o->clients < 1 || o->clients > 1000 || o->in_flight < 1 || o->in_flight > 64 ||
        !(o->duration > 0) || o->object_size > (1u << 16))
        return -1;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: zl_pingpong [--clients N] [--in-flight M] [--duration S] [--object-size B]\n"
            "                   [--unix] [--json]\n"
            "       zl_pingpong --connect ADDR [--clients N] [--in-flight M] [--duration S]\n"
            "                   [--oid N] [--storage NAME] [--encoding Z|M] [--json]\n"
            "\n"
            "Alone: round trips of a 45-byte loadBefore call and its reply (196 bytes\n"
            "for objects of 128 bytes) between a bare client and a bare server it forks,\n"
            "on 127.0.0.1 or (--unix) a Unix socket. With --connect: the bare client\n"
            "alone, loading object --oid (default 1) from a ZEO server after register.\n"
            "Defaults: 16 clients, 1 in flight, 5 s.\n");
}

static void report(const run *R, double elapsed, double client_cpu, double server_cpu)
{
    const opts *o = R->o;
    double per_s = elapsed > 0 ? (double)R->ops / elapsed : 0;
    double ops = R->ops ? (double)R->ops : 1;
    if (o->json) {
        printf("{\"mode\": \"%s\", \"clients\": %d, \"in_flight\": %d, \"request_bytes\": %zu, "
               "\"reply_bytes\": %zu, \"duration_s\": %.3f, \"ops\": %llu, "
               "\"ops_per_s\": %.1f, \"client_cpu_us_per_op\": %.2f",
               o->connect ? "connect" : "pingpong", o->clients, o->in_flight, R->call_len,
               R->reply_len, elapsed, R->ops, per_s, client_cpu * 1e6 / ops);
        if (server_cpu >= 0)
            printf(", \"server_cpu_us_per_op\": %.2f", server_cpu * 1e6 / ops);
        printf("}\n");
        return;
    }
    printf("%s: %d clients, %d in flight, %zu-byte calls, %zu-byte replies, %.1f s\n",
           o->connect ? o->connect : "ping-pong", o->clients, o->in_flight, R->call_len,
           R->reply_len, elapsed);
    printf("  %.1f round trips/s; client CPU %.2f us per round trip", per_s,
           client_cpu * 1e6 / ops);
    if (server_cpu >= 0)
        printf(", server %.2f us", server_cpu * 1e6 / ops);
    printf("\n");
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    run R = {.o = &o, .enc = PROTO_PICKLE};
    zerr err = {0};
    char addr[300];
    pid_t server = 0;
    int rc = lim_load_call(PROTO_PICKLE, MSGID, o.oid, &R.call, &err);
    lim_call c;
    if (rc == 0 && !o.connect && lim_scan(PROTO_PICKLE, R.call.data + 4, R.call.len - 4, &c) == 0)
        rc = server = start_server(&o, addr, sizeof addr, &c, &err);
    R.peers = calloc((size_t)o.clients, sizeof *R.peers);
    if (!R.peers && rc >= 0)
        rc = zerr_set(&err, ZE_NOMEM, "out of memory");
    for (int i = 0; rc >= 0 && i < o.clients; i++) {
        R.peers[i].fd = lim_connect(o.connect ? o.connect : addr, &err);
        rc = R.peers[i].fd;
        if (rc >= 0 && o.connect)
            rc = zeo_session(R.peers[i].fd, &o, &R.enc, &err);
    }
    if (rc >= 0 && R.enc != PROTO_PICKLE) {
        zbuf_reset(&R.call);
        rc = lim_load_call(R.enc, MSGID, o.oid, &R.call, &err);
    }
    R.call_len = R.call.len;
    if (rc >= 0 && zbuf_reserve(&R.call, R.call_len * (size_t)o.in_flight) < 0)
        rc = zerr_set(&err, ZE_NOMEM, "out of memory");
    for (int i = 1; rc >= 0 && i < o.in_flight; i++) {
        memcpy(R.call.data + R.call.len, R.call.data, R.call_len);
        R.call.len += R.call_len;
    }
    double elapsed = 0, cpu0 = cpu_s(RUSAGE_SELF), server_cpu = -1;
    if (rc >= 0)
        rc = drive(&R, &elapsed, &err);
    double client_cpu = cpu_s(RUSAGE_SELF) - cpu0;
    for (int i = 0; R.peers && i < o.clients; i++)
        if (R.peers[i].fd > 0)
            close(R.peers[i].fd);
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
        server_cpu = cpu_s(RUSAGE_CHILDREN);
        if (o.use_unix)
            unlink(addr);
    }
    if (rc < 0) {
        fprintf(stderr, "zl_pingpong: %s\n", err.msg);
        return 1;
    }
    report(&R, elapsed, client_cpu, server_cpu);
    free(R.peers);
    zbuf_free(&R.call);
    return 0;
}
