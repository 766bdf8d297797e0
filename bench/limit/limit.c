/* limit.c: zl_limit, the fastest ZEO server this machine can have (see
 * limit.h): one thread, level-triggered epoll, one read per readable
 * socket, and one write of replies built at start per batch of calls.
 *
 * It serves what `zeolite bench --workload load` asks of a server: the
 * handshake (Z5 or M5), register, get_info, lastTransaction, new_oids and
 * the setup's commits (async calls are taken and forgotten; vote, finish and
 * abort are answered), then loadBefore, always with the same object. A
 * reply echoes the call's msgid bytes; only tids and new oids change (they
 * count up). Nothing is allocated per call once a connection's buffers have
 * grown to its largest batch. A call it does not serve closes the
 * connection with a message on stderr.
 */
#define _GNU_SOURCE
#include "limit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zbench.h"

#define IN_ROOM (64u * 1024)         /* free input space for each read */
#define MAX_FRAME (64u * 1024 * 1024)
#define NEW_OIDS 100                  /* oids a new_oids reply gives */

enum { R_LOAD, R_TID, R_NONE, R_INFO, R_OIDS, NREPLIES };

static const struct {
    const char *name;
    int reply;
} methods[] = {
    {"loadBefore", R_LOAD},     {"register", R_TID},  {"lastTransaction", R_TID},
    {"tpc_finish", R_TID},      {"get_info", R_INFO}, {"new_oids", R_OIDS},
    {"vote", R_NONE},           {"tpc_abort", R_NONE}, {"ping", R_NONE},
    {"set_client_label", R_NONE},
};

typedef struct conn {
    int fd;
    int session;                 /* the client's hello has come */
    int dead;
    int want_out;                /* EPOLLOUT is armed */
    proto_enc enc;
    zbuf in;
    zbuf out;
    size_t out_off;              /* written part of out */
} conn;

typedef struct limit {
    int ep, lfd;
    long work;                   /* --work: busy loop iterations per load */
    proto_enc announce;
    lim_reply replies[2][NREPLIES];   /* [0] pickle, [1] msgpack */
    uint64_t tid, next_oid;
    unsigned long long calls, loads, conns;
} limit;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

/* ---- replies made at start --------------------------------------------- */

static zv *info_result(zv_arena *a)
{
    zv *d = zv_dict(a, 4);
    if (!d)
        return NULL;
    zv **it = d->u.seq.items;
    it[0] = zv_cstr(a, "length");
    it[1] = zv_int(a, 0);
    it[2] = zv_cstr(a, "size");
    it[3] = zv_int(a, 0);
    it[4] = zv_cstr(a, "name");
    it[5] = zv_cstr(a, "bench/limit");
    it[6] = zv_cstr(a, "supportsUndo");
    it[7] = zv_bool(a, 0);
    for (int i = 0; i < 8; i++)
        if (!it[i])
            return NULL;
    return d;
}

static zv *oids_result(zv_arena *a)
{
    zv *l = zv_list(a, NEW_OIDS);
    for (size_t i = 0; l && i < NEW_OIDS; i++)
        if (!(l->u.seq.items[i] = zv_oid(a, lim_placeholder(i))))
            return NULL;
    return l;
}

static int make_replies(limit *L, size_t object_size, zerr *err)
{
    static const proto_enc encs[2] = {PROTO_PICKLE, PROTO_MSGPACK};
    zv_arena *a = zv_arena_new();
    if (!a)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    zv *results[NREPLIES] = {
        [R_LOAD] = lim_load_result(a, object_size), [R_TID] = zv_oid(a, lim_placeholder(0)),
        [R_NONE] = zv_none(a), [R_INFO] = info_result(a), [R_OIDS] = oids_result(a),
    };
    int rc = 0;
    for (int r = 0; rc == 0 && r < NREPLIES; r++)
        if (!results[r])
            rc = zerr_set(err, ZE_NOMEM, "out of memory");
    for (int e = 0; e < 2; e++)
        for (int r = 0; rc == 0 && r < NREPLIES; r++)
            rc = lim_reply_init(&L->replies[e][r], encs[e], results[r], err);
    zv_arena_free(a);
    return rc;
}

/* About 5 instructions an iteration that no compiler removes: what a
 * server spends per load beyond the limit's, to see what it costs. */
static void busy(long n)
{
    static volatile uint32_t sink;
    uint32_t x = sink;
    for (long i = 0; i < n; i++)
        x = x * 1664525u + 1013904223u;
    sink = x;
}

/* ---- connections --------------------------------------------------------- */

static void conn_close(conn *c, const char *why)
{
    if (why)
        fprintf(stderr, "zl_limit: closing a connection: %s\n", why);
    close(c->fd);
    zbuf_free(&c->in);
    zbuf_free(&c->out);
    free(c);
}

static int put_reply(limit *L, conn *c, const lim_call *call, int r)
{
    const lim_reply *rep = &L->replies[c->enc == PROTO_MSGPACK][r];
    uint64_t values[NEW_OIDS];
    if (r == R_TID) {
        if (lim_call_is(call, "tpc_finish"))
            L->tid++;
        values[0] = L->tid;
    } else if (r == R_OIDS) {
        for (size_t i = 0; i < NEW_OIDS; i++)
            values[i] = L->next_oid++;
    }
    size_t n = lim_reply_size(rep, c->enc, call);
    if (zbuf_reserve(&c->out, n) < 0)
        return ZE_NOMEM;
    c->out.len += lim_reply_put(rep, c->enc, call, values, c->out.data + c->out.len);
    return 0;
}

static void hello(conn *c, const uint8_t *p, uint32_t len)
{
    switch (proto_parse_hello(p, len)) {
    case PROTO_HELLO_Z5:
        c->enc = PROTO_PICKLE;
        c->session = 1;
        break;
    case PROTO_HELLO_M5:
        c->enc = PROTO_MSGPACK;
        c->session = 1;
        break;
    case PROTO_HELLO_RUOK:
        proto_frame_append(&c->out, "{}", 2);
        c->dead = 1;   /* after the flush */
        break;
    default:
        c->dead = 1;
        fprintf(stderr, "zl_limit: a client sent a bad handshake\n");
    }
}

static void on_frame(limit *L, conn *c, const uint8_t *p, uint32_t len)
{
    lim_call call;
    if (!c->session) {
        hello(c, p, len);
        return;
    }
    if (lim_scan(c->enc, p, len, &call) < 0) {
        fprintf(stderr, "zl_limit: a message of a shape it does not know\n");
        c->dead = 1;
        return;
    }
    /* Async calls (a transaction's begin and stores) get no reply; replies
     * from the client are its heartbeats. */
    if (call.async || lim_call_is(&call, ".reply"))
        return;
    L->calls++;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lim_call_is(&call, methods[i].name)) {
            if (methods[i].reply == R_LOAD) {
                L->loads++;
                busy(L->work);
            }
            if (put_reply(L, c, &call, methods[i].reply) < 0) {
                fprintf(stderr, "zl_limit: out of memory\n");
                c->dead = 1;
            }
            return;
        }
    }
    fprintf(stderr, "zl_limit: %.*s is not served here\n", (int)call.name_len, call.name);
    c->dead = 1;
}

/* Whole frames from the start of c->in, the rest moved to the front. */
static void take_frames(limit *L, conn *c)
{
    size_t pos = 0;
    while (!c->dead && c->in.len - pos >= 4) {
        uint32_t n = zbe32(c->in.data + pos);
        if (n > MAX_FRAME) {
            fprintf(stderr, "zl_limit: a frame of %u bytes\n", n);
            c->dead = 1;
        } else if (c->in.len - pos - 4 < n) {
            break;
        } else {
            on_frame(L, c, c->in.data + pos + 4, n);
            pos += 4 + (size_t)n;
        }
    }
    if (pos) {
        memmove(c->in.data, c->in.data + pos, c->in.len - pos);
        c->in.len -= pos;
    }
}

static void want_out(limit *L, conn *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (c->want_out != on && epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

/* 0, or -1 when the connection must go. */
static int flush(limit *L, conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            want_out(L, c, 1);
            return 0;
        }
        if (n < 0)
            return -1;
        c->out_off += (size_t)n;
    }
    c->out.len = c->out_off = 0;
    want_out(L, c, 0);
    return 0;
}

/* One read per readiness, as libuv does, unless it filled the room given. */
static void on_readable(limit *L, conn *c)
{
    for (;;) {
        if (zbuf_reserve(&c->in, IN_ROOM) < 0) {
            c->dead = 1;
            break;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t n = read(c->fd, c->in.data + c->in.len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN)
                c->dead = 1;
            break;
        }
        c->in.len += (size_t)n;
        take_frames(L, c);
        if ((size_t)n < room || c->dead)
            break;
    }
}

static void on_event(limit *L, conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(L, c);
    if (flush(L, c) < 0 || c->dead)
        conn_close(c, NULL);
}

static void on_accept(limit *L)
{
    for (;;) {
        int fd = accept4(L->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        const char *hi = proto_announcement(L->announce);
        if (!c || zbuf_reserve(&c->in, IN_ROOM) < 0 ||
            proto_frame_append(&c->out, hi, strlen(hi)) < 0) {
            if (c)
                zbuf_free(&c->in);
            free(c);
            close(fd);
            fprintf(stderr, "zl_limit: out of memory\n");
            continue;
        }
        c->fd = fd;
        lim_nodelay(fd);   /* fails harmlessly on a Unix socket */
        L->conns++;
        if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0 || flush(L, c) < 0)
            conn_close(c, "cannot start");
    }
}

static void run(limit *L)
{
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(L->ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                on_accept(L);
            else
                on_event(L, evs[i].data.ptr, evs[i].events);
        }
    }
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: zl_limit -a HOST:PORT|SOCKET [--object-size BYTES] [--msgpack] [--work N]\n"
               "\n"
               "A bare ZEO server for `zeolite bench --workload load`: every loadBefore\n"
               "gets the same object of BYTES bytes of state (default %d, the bench's),\n"
               "from a reply built at start. --msgpack announces M5 instead of Z5.\n"
               "--work N adds N turns of a busy loop (about 5N instructions) to every\n"
               "load: what a server's own work per load costs it on this machine.\n"
               "Runs until SIGTERM or SIGINT, then prints what it served on stderr.\n",
            ZBENCH_OBJECT_SIZE);
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    long object_size = ZBENCH_OBJECT_SIZE;
    limit L = {.announce = PROTO_PICKLE, .tid = LIM_TID, .next_oid = 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-a") && i + 1 < argc) {
            addr = argv[++i];
        } else if (!strcmp(argv[i], "--object-size") && i + 1 < argc) {
            char *end;
            object_size = strtol(argv[++i], &end, 10);
            if (*end || object_size < 0 || object_size > (1l << 26)) {
                fprintf(stderr, "zl_limit: --object-size must be 0..%ld\n", 1l << 26);
                return 2;
            }
        } else if (!strcmp(argv[i], "--work") && i + 1 < argc) {
            L.work = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--msgpack")) {
            L.announce = PROTO_MSGPACK;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!addr) {
        usage(stderr);
        return 2;
    }
    zerr err = {0};
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (make_replies(&L, (size_t)object_size, &err) < 0 ||
        (L.lfd = lim_listen(addr, &err)) < 0) {
        fprintf(stderr, "zl_limit: %s\n", err.msg);
        return 1;
    }
    if ((L.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        epoll_ctl(L.ep, EPOLL_CTL_ADD, L.lfd, &ev) < 0) {
        perror("zl_limit: epoll");
        return 1;
    }
    char where[300];
    fprintf(stderr, "zl_limit: listening on %s\n",
            lim_local_addr(L.lfd, where, sizeof where) == 0 ? where : addr);
    run(&L);
    if (strchr(addr, '/'))
        unlink(addr);
    fprintf(stderr, "zl_limit: %llu connections, %llu calls answered, %llu loads\n", L.conns,
            L.calls, L.loads);
    for (int e = 0; e < 2; e++)
        for (int r = 0; r < NREPLIES; r++)
            lim_reply_free(&L.replies[e][r]);
    return 0;
}
