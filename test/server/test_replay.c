/* Replay of the recorded conversations in shared/fixtures/wire/ (both
 * encodings) against zeolite: the client frames are sent in file order and
 * every server frame is checked for shape (kind, name, error class, value
 * types and container sizes), since tids, times, sizes and paths differ.
 *
 * Values that differ legitimately flow back into later client frames: each
 * recorded 8- or 12-byte value (tids, undo ids) seen in a server frame is
 * mapped to the live value at the same place, and client frames are rewritten
 * with that map before they are sent. The @default recordings (the Python
 * server resolving conflicts itself) are reference only and are skipped. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "common/zblob.h"
#include "common/zfile.h"
#include "helpers.h"
#include "testutil.h"
#include "wirefix.h"

#define MAX_CONNS 8
#define MAX_MAP 512

typedef struct replay {
    const wf_file *f;
    th_server srv;
    tc conns[MAX_CONNS + 1];
    int open[MAX_CONNS + 1];
    zv_arena *a;
    struct { uint8_t rec[12], live[12]; size_t len; } map[MAX_MAP];
    size_t n_map;
    char where[160];
} replay;

/* ---- the tid / undo id map --------------------------------------------- */

static void map_add(replay *r, const zv *rec, const zv *live)
{
    size_t len = rec->u.s.len;
    if (len != 8 && len != 12)
        return;
    if (live->u.s.len != len || !memcmp(rec->u.s.p, live->u.s.p, len))
        return;
    for (size_t i = 0; i < r->n_map; i++)
        if (r->map[i].len == len && !memcmp(r->map[i].rec, rec->u.s.p, len))
            return;
    cr_assert_lt(r->n_map, MAX_MAP);
    memcpy(r->map[r->n_map].rec, rec->u.s.p, len);
    memcpy(r->map[r->n_map].live, live->u.s.p, len);
    r->map[r->n_map++].len = len;
}

/* A client derives tids from the ones it saw (loadBefore(oid, last + 1)):
 * an 8-byte value within a few units of a mapped tid maps alongside it. */
static int map_near(replay *r, zv *v)
{
    uint64_t x = zbe64(v->u.s.p);
    for (size_t i = 0; i < r->n_map; i++) {
        if (r->map[i].len != 8)
            continue;
        uint64_t rec = zbe64(r->map[i].rec);
        if (x > rec && x - rec <= 16) {
            zbe64_put((uint8_t *)v->u.s.p, zbe64(r->map[i].live) + (x - rec));
            return 1;
        }
    }
    return 0;
}

/* Rewrite recorded values in place (the value lives in r->a). */
static void map_apply(replay *r, zv *v)
{
    if (v->type == ZV_BYTES) {
        for (size_t i = 0; i < r->n_map; i++) {
            if (r->map[i].len == v->u.s.len && !memcmp(r->map[i].rec, v->u.s.p, v->u.s.len)) {
                memcpy((uint8_t *)v->u.s.p, r->map[i].live, v->u.s.len);
                return;
            }
        }
        if (v->u.s.len == 8)
            map_near(r, v);
        return;
    }
    if (v->type == ZV_TUPLE || v->type == ZV_LIST)
        for (size_t i = 0; i < v->u.seq.n; i++)
            map_apply(r, v->u.seq.items[i]);
    if (v->type == ZV_DICT)
        for (size_t i = 0; i < 2 * v->u.seq.n; i++)
            map_apply(r, v->u.seq.items[i]);
}

/* ---- shape comparison -------------------------------------------------- */

static int same_kind(const zv *x, const zv *y)
{
    int sx = x->type == ZV_TUPLE || x->type == ZV_LIST, sy = y->type == ZV_TUPLE || y->type == ZV_LIST;
    int ix = x->type == ZV_INT || x->type == ZV_BIGINT, iy = y->type == ZV_INT || y->type == ZV_BIGINT;
    return x->type == y->type || (sx && sy) || (ix && iy);
}

static const zv *dict_get_key(const zv *d, const zv *key)
{
    for (size_t i = 0; i < d->u.seq.n; i++)
        if (zv_equal(d->u.seq.items[2 * i], key))
            return d->u.seq.items[2 * i + 1];
    return NULL;
}

static void compare(replay *r, const zv *rec, const zv *live, const char *path)
{
    cr_assert(same_kind(rec, live), "%s at %s: recorded type %d, got %d", r->where, path,
              rec->type, live->type);
    switch (rec->type) {
    case ZV_BYTES:
        map_add(r, rec, live);
        break;
    case ZV_TUPLE:
    case ZV_LIST:
        cr_assert_eq(rec->u.seq.n, live->u.seq.n, "%s at %s: %zu items recorded, got %zu",
                     r->where, path, rec->u.seq.n, live->u.seq.n);
        for (size_t i = 0; i < rec->u.seq.n; i++)
            compare(r, rec->u.seq.items[i], live->u.seq.items[i], path);
        break;
    case ZV_DICT:
        for (size_t i = 0; i < rec->u.seq.n; i++) {
            const zv *k = rec->u.seq.items[2 * i];
            const zv *lv = dict_get_key(live, k);
            char sub[200];
            snprintf(sub, sizeof sub, "%s[%.*s]", path,
                     k->type == ZV_STR ? (int)k->u.s.len : 1,
                     k->type == ZV_STR ? (const char *)k->u.s.p : "?");
            cr_assert(lv, "%s: key %s missing", r->where, sub);
            /* The interfaces a FileStorage lists may differ in number. */
            if (k->type == ZV_STR && k->u.s.len == 10 && !memcmp(k->u.s.p, "interfaces", 10))
                continue;
            compare(r, rec->u.seq.items[2 * i + 1], lv, sub);
        }
        break;
    default:
        break;
    }
}

/* ---- frames ------------------------------------------------------------ */

static tc *conn_for(replay *r, const wf_frame *fr)
{
    cr_assert(fr->conn >= 1 && fr->conn <= MAX_CONNS, "connection %d", fr->conn);
    tc *c = &r->conns[fr->conn];
    if (!r->open[fr->conn]) {
        cr_assert_eq(tc_open(c, r->srv.port), 0);
        c->enc = !strcmp(r->f->encoding, "m5") ? PROTO_MSGPACK : PROTO_PICKLE;
        r->open[fr->conn] = 1;
    }
    return c;
}

/* A storeBlobShared names a file the client wrote in the server's blob
 * folder (bushy layout): write it there, as the client would have. */
static void shared_blob_file(replay *r, const proto_msg *m)
{
    uint64_t oid = tv_u64(m->args->u.seq.items[0]);
    const zv *name = m->args->u.seq.items[3];
    char blobs[2048], path[2048];
    snprintf(blobs, sizeof blobs, "%s/db/blobs", r->srv.dir);
    cr_assert_eq(zblob_oid_dir(blobs, ZBLOB_BUSHY, oid, path, sizeof path), 0);
    cr_assert_eq(zfile_mkdirs(path, 0755, NULL), 0, "%s", path);
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, "/%.*s", (int)name->u.s.len, name->u.s.p);
    cr_assert_eq(tu_write_file(path, "shared blob", 11), 0, "%s", path);
}

static void send_frame(replay *r, const wf_frame *fr)
{
    tc *c = conn_for(r, fr);
    if (!strcmp(fr->kind, "handshake") || (fr->len == 4 && !memcmp(fr->payload, "ruok", 4))) {
        cr_assert_eq(tc_send_raw(c, fr->payload, fr->len), 0);
        return;
    }
    proto_msg m;
    zerr err = {0};
    cr_assert_eq(proto_decode(c->enc, fr->payload, fr->len, r->a, &m, &err), 0, "%s: %s",
                 r->where, err.msg);
    map_apply(r, m.args);
    map_apply(r, m.msgid);
    if (!strcmp(m.name, "pack")) {
        /* The recording packed up to its own present: pack up to ours. */
        struct timeval tv;
        gettimeofday(&tv, NULL);
        m.args->u.seq.items[0] = zv_float(r->a, (double)tv.tv_sec + tv.tv_usec / 1e6);
    }
    if (!strcmp(m.name, "storeBlobShared"))
        shared_blob_file(r, &m);
    zbuf b = ZBUF_INIT;
    if (proto_is_heartbeat(&m))
        cr_assert_eq(proto_encode_reply(c->enc, &b, m.msgid, m.args, &err), 0);
    else
        cr_assert_eq(proto_encode_call(c->enc, &b, m.msgid, m.async, m.name, m.args, &err), 0,
                     "%s: %s", r->where, err.msg);
    cr_assert_eq(send(c->fd, b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len, "%s: send", r->where);
    zbuf_free(&b);
}

static void check_frame(replay *r, const wf_frame *fr)
{
    tc *c = conn_for(r, fr);
    uint8_t *p;
    size_t len;
    int got = tc_read(c, &p, &len, TC_TIMEOUT);
    cr_assert_eq(got, 1, "%s: expected a %s frame, got %s", r->where, fr->kind,
                 got == 0 ? "a closed connection" : "nothing");
    if (!strcmp(fr->kind, "handshake")) {
        cr_assert(len == fr->len && !memcmp(p, fr->payload, len), "%s: announcement", r->where);
        free(p);
        return;
    }
    if (!strcmp(fr->kind, "ruok-reply")) {
        cr_assert(len > 2 && p[0] == '{' && p[len - 1] == '}', "%s: ruok JSON", r->where);
        free(p);
        return;
    }
    proto_msg rec, live;
    zerr err = {0};
    cr_assert_eq(proto_decode(c->enc, fr->payload, fr->len, r->a, &rec, &err), 0);
    cr_assert_eq(proto_decode(c->enc, p, len, r->a, &live, &err), 0, "%s: %s", r->where,
                 err.msg);
    free(p);
    cr_assert_str_eq(live.name, rec.name, "%s", r->where);
    cr_assert_eq(live.flag, rec.flag, "%s: flag %lld, recorded %lld", r->where,
                 (long long)live.flag, (long long)rec.flag);
    compare(r, rec.msgid, live.msgid, "msgid");
    if (rec.flag == 2) {
        cr_assert_str_eq(tv_error_class(live.args), tv_error_class(rec.args), "%s", r->where);
        return;
    }
    compare(r, rec.args, live.args, "result");
}

static void replay_file(const char *path)
{
    wf_file f;
    cr_assert_eq(wf_load(path, &f), 0, "cannot load %s", path);
    replay *r = calloc(1, sizeof *r);
    r->f = &f;
    r->a = zv_arena_new();
    const char *extra[4] = {NULL};
    int n = 0;
    if (f.msgpack)
        extra[n++] = "--msgpack";
    if (f.read_only)
        extra[n++] = "--read-only";
    cr_assert_eq(th_start(&r->srv, extra), 0, "%s: server did not start", f.scenario);
    for (size_t i = 0; i < f.n; i++) {
        const wf_frame *fr = &f.frames[i];
        snprintf(r->where, sizeof r->where, "%s/%s line %zu (conn %s)", f.encoding, f.scenario,
                 fr->line, fr->label);
        if (fr->dir == WF_C2S)
            send_frame(r, fr);
        else
            check_frame(r, fr);
    }
    for (int i = 1; i <= MAX_CONNS; i++)
        if (r->open[i])
            tc_close(&r->conns[i]);
    th_free(&r->srv);
    zv_arena_free(r->a);
    free(r);
    wf_free(&f);
}

static void replay_all(const char *enc)
{
    size_t n;
    char **paths = wf_list(enc, &n);
    cr_assert(paths && n > 0, "no %s fixtures", enc);
    size_t played = 0;
    for (size_t i = 0; i < n; i++) {
        if (strstr(paths[i], "@default"))
            continue;
        replay_file(paths[i]);
        played++;
    }
    cr_expect_geq(played, 20, "only %zu %s scenarios", played, enc);
    wf_list_free(paths, n);
}

Test(server_replay, every_z5_scenario, .timeout = 300)
{
    replay_all("z5");
}

Test(server_replay, every_m5_scenario, .timeout = 300)
{
    replay_all("m5");
}
