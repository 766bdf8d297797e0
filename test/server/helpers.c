#define _GNU_SOURCE
#include "helpers.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pgtest.h"
#include "testutil.h"

/* ---- the server process ------------------------------------------------ */

int tc_open(tc *c, int port)
{
    return tc_open_rcvbuf(c, port, 0);
}

int tc_open_rcvbuf(tc *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_msgid = 1;
    c->enc = PROTO_PICKLE;
    if (!(c->a = zv_arena_new()))
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    return 0;
}

int th_on_pg(void)
{
    const char *b = getenv("ZEOLITE_STORE_BACKEND");
    return b && !strcmp(b, "postgresql");
}

/* The storage arguments of s: -f DIR/db, or on PostgreSQL -C DIR/pg.conf
 * (written on the first call, with a new database). 0 or -1. */
static int storage_args(th_server *s, const char **args, size_t *n, char *buf, size_t cap)
{
    if (!th_on_pg()) {
        snprintf(buf, cap, "%s/db", s->dir);
        args[(*n)++] = "-f";
        args[(*n)++] = buf;
        return 0;
    }
    snprintf(buf, cap, "%s/pg.conf", s->dir);
    args[(*n)++] = "-C";
    args[(*n)++] = buf;
    if (s->pg)
        return 0;
    /* Its blob cache where an LMDB storage's blobs are, for the suites
     * that look there. */
    s->pg = tu_pg_newdb(NULL);
    FILE *f = fopen(buf, "w");
    if (!f)
        return -1;
    fprintf(f, "<postgresql 1>\n  dsn %s\n  blob-cache %s/db/blobs\n</postgresql>\n", s->pg,
            s->dir);
    return fclose(f) == 0 ? 0 : -1;
}

int th_restart(th_server *s, const char *const *extra)
{
    char addr[64], storage[1100];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port);
    const char *args[40] = {"-a", addr};
    size_t n = 2;
    if (storage_args(s, args, &n, storage, sizeof storage) < 0)
        return -1;
    args[n++] = "--no-sync";
    for (size_t i = 0; extra && extra[i] && n < 39; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return th_spawn(s, args, NULL);
}

int th_start(th_server *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    s->dir = tu_tmpdir("server");
    s->port = tu_free_port();
    if (!s->dir || s->port < 0)
        return -1;
    return th_restart(s, extra);
}

int tc_open_unix(tc *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_msgid = 1;
    c->enc = PROTO_PICKLE;
    if (!(c->a = zv_arena_new()))
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

int th_spawn(th_server *s, const char *const *args, const char *wait_path)
{
    char log[1024];
    snprintf(log, sizeof log, "%s/log", s->dir);
    const char *argv[40] = {tu_zeolite_bin(), "serve"};
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = tu_spawn(argv, log);
    if (pid < 0)
        return -1;
    s->pid = pid;
    return tu_wait_accepting(&s->pid, wait_path, s->port, 5000);
}

/* A sanitizer report in the server's log fails the test, whether the server
 * halted on it (TSAN_OPTIONS=halt_on_error=1) or went on; the log is printed. */
static void expect_clean_log(const th_server *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/log", s->dir);
    char *report = tu_sanitizer_report(path);
    if (report) {
        char *log = th_log(s);
        fprintf(stderr, "---- %s ----\n%s---- end of %s ----\n", path, log ? log : "", path);
        free(log);
    }
    cr_expect(report == NULL, "the server's log has a sanitizer report: %s", report);
    free(report);
}

static int reap(th_server *s, int (*how)(pid_t, int))
{
    if (s->pid <= 0)
        return -1;
    int status = how(s->pid, 5000);
    s->pid = 0;
    expect_clean_log(s);
    return status;
}

int th_stop(th_server *s)
{
    return reap(s, tu_stop_process);
}

int th_wait_exit(th_server *s)
{
    return reap(s, tu_wait_process);
}

void th_free(th_server *s)
{
    if (s->pid > 0) {
        int status = th_stop(s);
        cr_expect_eq(status, 0, "the server exited with status %d after SIGTERM", status);
    } else if (s->dir) {
        expect_clean_log(s);
    }
    if (s->dir) {
        tu_rmrf(s->dir);
        free(s->dir);
    }
    s->dir = NULL;
    if (s->pg) {
        tu_pg_dropdb(s->pg);
        free(s->pg);
    }
    s->pg = NULL;
}

char *th_log(const th_server *s)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/log", s->dir);
    return (char *)tu_read_file(path, &len);
}

/* ---- a raw client ------------------------------------------------------ */

void tc_close(tc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    zv_arena_free(c->a);
    c->a = NULL;
}

void tc_reset(tc *c)
{
    zv_arena_reset(c->a);
    c->n_async = 0;
}

int tc_send_raw(tc *c, const void *p, size_t len)
{
    zbuf b = ZBUF_INIT;
    if (proto_frame_append(&b, p, len) < 0)
        return -1;
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = send(c->fd, b.data + off, b.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            zbuf_free(&b);
            return -1;
        }
        off += (size_t)n;
    }
    zbuf_free(&b);
    return 0;
}

/* Read exactly n bytes: 1, 0 on close, -1 on timeout or error. */
static int read_exact(int fd, uint8_t *p, size_t n, int timeout_ms)
{
    while (n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = recv(fd, p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return errno == ECONNRESET ? 0 : -1;
        if (got == 0)
            return 0;
        p += got;
        n -= (size_t)got;
    }
    return 1;
}

int tc_read(tc *c, uint8_t **p, size_t *len, int timeout_ms)
{
    uint8_t hdr[4];
    int r = read_exact(c->fd, hdr, 4, timeout_ms);
    if (r <= 0)
        return r;
    uint32_t n = zbe32(hdr);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    if ((r = read_exact(c->fd, buf, n, timeout_ms)) <= 0) {
        free(buf);
        return r;
    }
    *p = buf;
    *len = n;
    return 1;
}

int tc_wait_closed(tc *c, int timeout_ms)
{
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r <= 0)
            return 0;
        ssize_t got = recv(c->fd, buf, sizeof buf, 0);
        if (got <= 0)
            return got == 0 || errno == ECONNRESET;
    }
}

int tc_connect(tc *c, int port, proto_enc enc, char announced[3])
{
    if (tc_open(c, port) < 0)
        return -1;
    uint8_t *p;
    size_t len;
    if (tc_read(c, &p, &len, TC_TIMEOUT) != 1)
        return -1;
    if (announced) {
        snprintf(announced, 3, "%.*s", (int)(len > 2 ? 2 : len), (const char *)p);
    }
    free(p);
    /* ZEOLITE_TEST_SWAP_ENC=1 runs a suite's conversations in the other
     * encoding (ctest runs the suites that matter both ways). */
    const char *swap = getenv("ZEOLITE_TEST_SWAP_ENC");
    if (swap && !strcmp(swap, "1"))
        enc = enc == PROTO_MSGPACK ? PROTO_PICKLE : PROTO_MSGPACK;
    c->enc = enc;
    return tc_send_raw(c, enc == PROTO_MSGPACK ? "M5" : "Z5", 2);
}

int64_t tc_send(tc *c, const zv *msgid, int async, const char *name, const zv *args)
{
    zv_arena *a = zv_arena_new();
    int64_t id = 0;
    if (!msgid) {
        id = async ? 0 : c->next_msgid++;
        msgid = zv_int(a, id);
    } else {
        zv_get_int(msgid, &id);
    }
    zbuf b = ZBUF_INIT;
    zerr err = {0};
    int rc = proto_encode_call(c->enc, &b, msgid, async, name, args, &err);
    zv_arena_free(a);
    if (rc < 0) {
        fprintf(stderr, "tc_send %s: %s\n", name, err.msg);
        zbuf_free(&b);
        return -1;
    }
    /* proto_encode_call wrote the header too: send as is. */
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = send(c->fd, b.data + off, b.len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            zbuf_free(&b);
            return -1;
        }
        off += (size_t)n;
    }
    zbuf_free(&b);
    return id;
}

int tc_recv(tc *c, proto_msg *m, int timeout_ms)
{
    uint8_t *p;
    size_t len;
    int r = tc_read(c, &p, &len, timeout_ms);
    if (r != 1)
        return r;
    zerr err = {0};
    int rc = proto_decode(c->enc, p, len, c->a, m, &err);
    free(p);
    if (rc < 0) {
        fprintf(stderr, "tc_recv: %s\n", err.msg);
        return -1;
    }
    return 1;
}

zv *tc_call(tc *c, const char *name, const zv *args, int64_t *flag)
{
    int64_t id = tc_send(c, NULL, 0, name, args);
    if (id < 0)
        return NULL;
    for (;;) {
        proto_msg m;
        if (tc_recv(c, &m, TC_TIMEOUT) != 1)
            return NULL;
        int64_t got;
        if (!strcmp(m.name, ".reply") && zv_get_int(m.msgid, &got) && got == id) {
            if (flag)
                *flag = m.flag;
            return m.args;
        }
        if (c->n_async < sizeof c->asyncs / sizeof c->asyncs[0])
            c->asyncs[c->n_async++] = m;
    }
}

zv *tc_wait_async(tc *c, const char *name, int timeout_ms)
{
    for (size_t i = 0; i < c->n_async; i++) {
        if (!strcmp(c->asyncs[i].name, name)) {
            zv *args = c->asyncs[i].args;
            memmove(&c->asyncs[i], &c->asyncs[i + 1], (c->n_async - i - 1) * sizeof c->asyncs[0]);
            c->n_async--;
            return args;
        }
    }
    for (;;) {
        proto_msg m;
        if (tc_recv(c, &m, timeout_ms) != 1)
            return NULL;
        if (!strcmp(m.name, name))
            return m.args;
        if (c->n_async < sizeof c->asyncs / sizeof c->asyncs[0])
            c->asyncs[c->n_async++] = m;
    }
}

/* ---- values ------------------------------------------------------------ */

zv *tv_tuple(zv_arena *a, size_t n, ...)
{
    zv *t = zv_tuple(a, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        t->u.seq.items[i] = va_arg(ap, zv *);
    va_end(ap);
    return t;
}

zv *tv_oid(zv_arena *a, uint64_t oid) { return zv_oid(a, oid); }
zv *tv_bytes(zv_arena *a, const char *s) { return zv_bytes(a, s, strlen(s)); }
zv *tv_str(zv_arena *a, const char *s) { return zv_cstr(a, s); }
zv *tv_int(zv_arena *a, int64_t i) { return zv_int(a, i); }
zv *tv_none(zv_arena *a) { return zv_none(a); }
zv *tv_dict0(zv_arena *a) { return zv_dict(a, 0); }

const char *tv_error_class(const zv *reply)
{
    static char buf[128];
    if (!reply || !zv_is_seq(reply) || reply->u.seq.n != 2 ||
        reply->u.seq.items[0]->type != ZV_STR)
        return "";
    const zv *s = reply->u.seq.items[0];
    snprintf(buf, sizeof buf, "%.*s", (int)s->u.s.len, (const char *)s->u.s.p);
    return buf;
}

int tv_is_exc(const zv *reply, const proto_exc *e)
{
    return !strcmp(tv_error_class(reply), e->class_path) &&
           zv_equal(reply->u.seq.items[1], e->payload);
}

/* zv_equal, but a list equals the tuple of the same items (msgpack has
 * only arrays, read as tuples). Dicts compare pair by pair, in order. */
static int equal_any_seq(const zv *a, const zv *b)
{
    int pairs = a->type == ZV_DICT && b->type == ZV_DICT;
    if (!pairs && !(zv_is_seq(a) && zv_is_seq(b)))
        return zv_equal(a, b);
    size_t n = a->u.seq.n * (pairs ? 2 : 1);
    if (a->u.seq.n != b->u.seq.n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!equal_any_seq(a->u.seq.items[i], b->u.seq.items[i]))
            return 0;
    return 1;
}

int tv_equal_as(const tc *c, const zv *a, const zv *b)
{
    return c->enc == PROTO_PICKLE ? zv_equal(a, b) : equal_any_seq(a, b);
}

int tv_is_exc_as(const tc *c, const zv *reply, const proto_exc *e)
{
    return !strcmp(tv_error_class(reply), e->class_path) &&
           tv_equal_as(c, reply->u.seq.items[1], e->payload);
}

uint64_t tv_u64(const zv *v)
{
    uint64_t x = 0;
    return v && zv_get_u64be(v, &x) ? x : 0;
}

int64_t tc_register(tc *c)
{
    int64_t flag;
    zv *r = tc_call(c, "register", tv_tuple(c->a, 2, tv_str(c->a, "1"), zv_bool(c->a, 0)), &flag);
    if (!r || flag != 0 || r->type != ZV_BYTES || r->u.s.len != 8)
        return -1;
    return (int64_t)tv_u64(r);
}

zv *tc_load_current(tc *c, uint64_t oid, int64_t *flag)
{
    return tc_call(c, "loadBefore",
                   tv_tuple(c->a, 2, tv_oid(c->a, oid), tv_oid(c->a, 0x7fffffffffffffffULL)),
                   flag);
}

void tc_begin_store(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data)
{
    zv_arena *a = c->a;
    zv *id = tv_int(a, txn);
    tc_send(c, NULL, 1, "tpc_begin",
            tv_tuple(a, 4, id, tv_bytes(a, "user"), tv_bytes(a, "desc"), tv_dict0(a)));
    tc_store(c, txn, oid, serial, data);
}

void tc_store(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data)
{
    zv_arena *a = c->a;
    tc_send(c, NULL, 1, "storea",
            tv_tuple(a, 4, tv_oid(a, oid), tv_oid(a, serial), tv_bytes(a, data),
                     tv_int(a, txn)));
}

uint64_t tc_commit_one(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *data)
{
    zv_arena *a = c->a;
    zv *id = tv_int(a, txn);
    tc_begin_store(c, txn, oid, serial, data);
    int64_t flag;
    zv *v = tc_call(c, "vote", tv_tuple(a, 1, id), &flag);
    if (!v || flag != 0 || !zv_is_seq(v) || v->u.seq.n != 0)
        return 0;
    zv *t = tc_call(c, "tpc_finish", tv_tuple(a, 1, id), &flag);
    if (!t || flag != 0)
        return 0;
    return tv_u64(t);
}

uint64_t th_commit_new(const th_server *s)
{
    static int64_t txn = 900000;
    tc c;
    uint64_t tid = 0;
    if (tc_connect(&c, s->port, PROTO_PICKLE, NULL) < 0 || tc_register(&c) < 0)
        goto out;
    int64_t flag;
    zv *oids = tc_call(&c, "new_oids", tv_tuple(c.a, 1, tv_int(c.a, 1)), &flag);
    if (!oids || flag != 0 || !zv_is_seq(oids) || oids->u.seq.n < 1)
        goto out;
    uint64_t oid = tv_u64(oids->u.seq.items[0]);
    tid = tc_commit_one(&c, txn++, oid, 0, "well-behaved");
    zv *r = tid ? tc_load_current(&c, oid, &flag) : NULL;
    if (!r || flag != 0 || !zv_is_seq(r) || r->u.seq.n != 3 ||
        tv_u64(r->u.seq.items[1]) != tid)
        tid = 0;
out:
    tc_close(&c);
    return tid;
}

int64_t tc_status_int(tc *c, const char *key)
{
    int64_t flag, v;
    zv *d = tc_call(c, "zeolite_memory", zv_tuple(c->a, 0), &flag);
    if (!d || flag != 0 || !zv_get_int(zv_dict_get(d, key), &v))
        return -1;
    return v;
}

int th_sanitized(const th_server *s)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)s->pid);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "libasan") || strstr(line, "libtsan") || strstr(line, "libmsan");
    if (f)
        fclose(f);
    return found;
}

long long th_peak_rss(const th_server *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atoll(line + 6);
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}
