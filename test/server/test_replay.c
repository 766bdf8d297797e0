/* Replay of the recorded conversations in shared/fixtures/wire/ (both
 * encodings) against zeolite: the client frames are sent in file order and
 * every server frame must equal the recorded one, kind, name, flag, msgid
 * and value by value, error payloads included, but for what legitimately
 * differs between the Python recording and this run (the wire README's
 * "What varies between runs"). Each exception is the narrowest that lets a
 * correct server pass, keyed by the call a frame answers and the dict key:
 *
 * - tids (8-byte values above 2^56, where every tid since 1932 lies and the
 *   recordings' oids do not): a recorded tid may meet another live tid, but
 *   always the same one, no two recorded tids the same live one, and in the
 *   recorded tids' order. Elsewhere in a value a tid is written as hex (the
 *   "last-transaction" of server_status and ruok, a blob's file name): the
 *   same rule applies to the tid it spells.
 * - undo ids ("id" in undoLog and undoInfo records): both servers spell
 *   them as the base64 of the tid, which is checked as a tid.
 * - times: "time" in history, undoLog and undoInfo records (the transaction
 *   was committed now, not when the recording was made), and "start" in
 *   server_status and ruok (when the server started, a ctime string).
 * - sizes: "size" in get_info and info (bytes on disk: a Data.fs against
 *   LMDB's pages) and in undoLog and undoInfo records (FileStorage gives the
 *   transaction's length in the Data.fs, headers included; zeolite the sum of
 *   its records). history's "size" (the record's length) must match.
 * - paths: "name" in get_info (the Data.fs path against the database
 *   folder), and the folder part of the path in sendBlob's POSKeyError
 *   message: what follows "blobs/" (the bushy layout, with the tid) must
 *   match.
 * - "interfaces" in get_info: zeolite always has blobs, so it also lists
 *   IBlobStorage and IBlobStorageRestoreable where the recorded server had
 *   no blob dir; every other interface must be there, and nothing more.
 * - ruok has one key of zeolite's own, conflicts_resolved_server (conflicts
 *   the server resolved itself), which must be a count; every other key is
 *   ZEO's and compared.
 *
 * Values that differ legitimately flow back into later client frames: each
 * recorded 8- or 12-byte value (tids, undo ids) seen in a server frame is
 * mapped to the live value at the same place, and client frames are rewritten
 * with that map before they are sent.
 *
 * The recordings of conflicts were made with client-conflict-resolution
 * true, the others contain none: all are replayed against a zeolite with
 * --client-conflict-resolution. Of the @default recordings (the Python server
 * in its default mode, resolving conflicts itself), conflict_resolved (a
 * BTrees.Length) and readcurrent_conflict are replayed against a zeolite in
 * its default mode, which resolves that conflict in C as the Python server
 * does. conflict_unresolved@default is not: there the Python server fails
 * the vote on a PersistentMapping it cannot resolve, where zeolite hands the
 * conflict to the client, as in the main recording. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "common/zblob.h"
#include "common/zfile.h"
#include "helpers.h"
#include "jsonmini.h"
#include "testutil.h"
#include "wirefix.h"

#define MAX_CONNS 8
#define MAX_MAP 512
#define MAX_CALLS 512
#define TID_MIN (1ull << 56)

typedef struct replay {
    const wf_file *f;
    th_server srv;
    tc conns[MAX_CONNS + 1];
    int open[MAX_CONNS + 1];
    zv_arena *a;
    struct { uint8_t rec[12], live[12]; size_t len; } map[MAX_MAP];
    size_t n_map;
    struct { uint64_t rec, live; } tids[MAX_MAP];   /* every pair met, for the checks */
    size_t n_tids;
    /* the calls sent, so that a reply can be told by the call it answers */
    struct { int conn; const zv *msgid; const char *name; } calls[MAX_CALLS];
    size_t n_calls;
    const char *call;   /* the call the frame being compared answers, or its own name */
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

/* ---- value comparison -------------------------------------------------- */

static void expect_equal(replay *r, const zv *rec, const zv *live, const char *path)
{
    if (zv_equal(rec, live))
        return;
    char *a = NULL, *b = NULL;
    zv_repr(rec, &a);
    zv_repr(live, &b);
    cr_expect_fail("%s at %s: recorded %.400s, got %.400s", r->where, path, a, b);
    free(a);
    free(b);
}

/* See the top of the file: one live tid per recorded tid, in order. */
static void check_tid(replay *r, uint64_t rec, uint64_t live, const char *path)
{
    cr_expect(live >= TID_MIN, "%s at %s: %016" PRIx64 " is no tid", r->where, path, live);
    for (size_t i = 0; i < r->n_tids; i++) {
        uint64_t x = r->tids[i].rec, y = r->tids[i].live;
        if (x == rec || y == live) {
            cr_expect(x == rec && y == live, "%s at %s: recorded tid %016" PRIx64 " got %016"
                      PRIx64 ", but %016" PRIx64 " went with %016" PRIx64, r->where, path, rec,
                      live, x, y);
            return;
        }
        cr_expect((x < rec) == (y < live), "%s at %s: tid %016" PRIx64 " (recorded %016" PRIx64
                  ") is out of order with %016" PRIx64, r->where, path, live, rec, y);
    }
    cr_assert_lt(r->n_tids, MAX_MAP);
    r->tids[r->n_tids].rec = rec;
    r->tids[r->n_tids++].live = live;
}

static int is(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static int is_str(const zv *v, const char *s)
{
    return v->type == ZV_STR && v->u.s.len == strlen(s) && !memcmp(v->u.s.p, s, v->u.s.len);
}

/* 16 hex digits spelling a tid, or 0. */
static uint64_t hex_tid(const char *p, size_t len)
{
    char buf[17];
    char *end;
    if (len != 16)
        return 0;
    memcpy(buf, p, 16);
    buf[16] = 0;
    uint64_t v = strtoull(buf, &end, 16);
    return *end ? 0 : v;
}

/* An undo id: the base64 of a tid (12 characters), or 0. */
static uint64_t undo_id_tid(const zv *v)
{
    uint8_t out[12];
    if (v->type != ZV_BYTES || v->u.s.len != 12 ||
        EVP_DecodeBlock(out, (const unsigned char *)v->u.s.p, 12) != 9)
        return 0;
    return zbe64(out);
}

/* "No blob file at PATH": the same words, and under the blob folder the same
 * bushy folders and a file named 0x<tid>.blob; the folder itself aside. */
static void compare_blob_message(replay *r, const zv *rec, const zv *live, const char *path)
{
    static const char words[] = "No blob file at ";
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%.*s", (int)rec->u.s.len, (const char *)rec->u.s.p);
    snprintf(b, sizeof b, "%.*s", (int)live->u.s.len, (const char *)live->u.s.p);
    char *ra = strstr(a, "/blobs/"), *rb = strstr(b, "/blobs/");
    char *fa = strrchr(a, '/'), *fb = strrchr(b, '/');
    int ok = ra && rb && !strncmp(b, words, sizeof words - 1) && fb - rb == fa - ra &&
             !memcmp(ra, rb, (size_t)(fa - ra)) && strlen(fa) == 24 && strlen(fb) == 24 &&
             !strncmp(fb, "/0x", 3) && !strcmp(fb + 19, ".blob");
    cr_expect(ok, "%s at %s: got '%s', recorded '%s'", r->where, path, b, a);
    if (ok)
        check_tid(r, hex_tid(fa + 3, 16), hex_tid(fb + 3, 16), path);
}

static int has_item(const zv *seq, const zv *item)
{
    for (size_t i = 0; i < seq->u.seq.n; i++)
        if (zv_equal(seq->u.seq.items[i], item))
            return 1;
    return 0;
}

/* get_info's interfaces, a sequence of (module, name): see the top. */
static void compare_interfaces(replay *r, const zv *rec, const zv *live, const char *path)
{
    for (size_t i = 0; i < rec->u.seq.n; i++)
        if (!has_item(live, rec->u.seq.items[i]))
            expect_equal(r, rec, live, path);
    for (size_t i = 0; i < live->u.seq.n; i++) {
        const zv *it = live->u.seq.items[i];
        const zv *name = zv_is_seq(it) && it->u.seq.n == 2 ? it->u.seq.items[1] : it;
        int blob = is_str(name, "IBlobStorage") || is_str(name, "IBlobStorageRestoreable");
        if (!has_item(rec, it) && !(blob && !r->f->blob_dir[0]))
            expect_equal(r, rec, live, path);
    }
}

static void compare(replay *r, const zv *rec, const zv *live, const char *path,
                    const char *key);

/* The keys a live dict may have beyond the recorded ones (see the top):
 * ruok's conflicts_resolved_server, a count. */
static size_t zeolite_keys(replay *r, const zv *rec, const zv *live, const char *path)
{
    const zv *v = zv_dict_get(live, "conflicts_resolved_server");
    if (!is(r->call, "ruok") || !v || zv_dict_get(rec, "conflicts_resolved_server"))
        return 0;
    cr_expect(v->type == ZV_INT && v->u.i >= 0, "%s at %s: conflicts_resolved_server is no count",
              r->where, path);
    return 1;
}

static void compare_items(replay *r, const zv *rec, const zv *live, const char *path)
{
    char sub[256];
    if (rec->type == ZV_DICT) {
        size_t more = zeolite_keys(r, rec, live, path);
        cr_expect_eq(live->u.seq.n, rec->u.seq.n + more, "%s at %s: %zu keys, recorded %zu",
                     r->where, path, live->u.seq.n, rec->u.seq.n);
        for (size_t i = 0; i < rec->u.seq.n; i++) {
            const zv *k = rec->u.seq.items[2 * i], *lv = NULL;
            for (size_t j = 0; j < live->u.seq.n && !lv; j++)
                if (zv_equal(live->u.seq.items[2 * j], k))
                    lv = live->u.seq.items[2 * j + 1];
            char key[64];
            snprintf(key, sizeof key, "%.*s", k->type == ZV_STR ? (int)k->u.s.len : 1,
                     k->type == ZV_STR ? (const char *)k->u.s.p : "?");
            snprintf(sub, sizeof sub, "%s[%s]", path, key);
            cr_expect(lv != NULL, "%s: key %s missing", r->where, sub);
            if (lv)
                compare(r, rec->u.seq.items[2 * i + 1], lv, sub, key);
        }
        return;
    }
    cr_expect_eq(live->u.seq.n, rec->u.seq.n, "%s at %s: %zu items, recorded %zu", r->where,
                 path, live->u.seq.n, rec->u.seq.n);
    for (size_t i = 0; i < rec->u.seq.n && i < live->u.seq.n; i++) {
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        compare(r, rec->u.seq.items[i], live->u.seq.items[i], sub, NULL);
    }
}

/* Where a value may differ (see the top of the file); 1 when handled. */
static int compare_varying(replay *r, const zv *rec, const zv *live, const char *path,
                           const char *key)
{
    const char *call = r->call;
    int undo = is(call, "undoLog") || is(call, "undoInfo");
    int status = is(call, "server_status") || is(call, "ruok");
    if ((is(key, "time") && (undo || is(call, "history"))) || (is(key, "start") && status) ||
        (is(key, "size") && (is(call, "get_info") || is(call, "info") || undo)) ||
        (is(key, "name") && is(call, "get_info")))
        return 1;
    if (is(key, "interfaces") && is(call, "get_info")) {
        compare_interfaces(r, rec, live, path);
        return 1;
    }
    if (is(key, "id") && undo) {
        check_tid(r, undo_id_tid(rec), undo_id_tid(live), path);
        map_add(r, rec, live);
        return 1;
    }
    if (is(key, "last-transaction") && status && rec->type == ZV_STR && live->type == ZV_STR &&
        hex_tid((const char *)rec->u.s.p, rec->u.s.len)) {
        check_tid(r, hex_tid((const char *)rec->u.s.p, rec->u.s.len),
                  hex_tid((const char *)live->u.s.p, live->u.s.len), path);
        return 1;
    }
    if (is(call, "sendBlob") && rec->type == ZV_STR && live->type == ZV_STR &&
        rec->u.s.len > 16 && !memcmp(rec->u.s.p, "No blob file at ", 16)) {
        compare_blob_message(r, rec, live, path);
        return 1;
    }
    if (rec->type == ZV_BYTES && live->type == ZV_BYTES && rec->u.s.len == 8 &&
        live->u.s.len == 8 && zbe64(rec->u.s.p) >= TID_MIN) {
        check_tid(r, zbe64(rec->u.s.p), zbe64(live->u.s.p), path);
        map_add(r, rec, live);
        return 1;
    }
    return 0;
}

static int same_kind(const zv *x, const zv *y)
{
    int sx = zv_is_seq(x), sy = zv_is_seq(y);
    int ix = x->type == ZV_INT || x->type == ZV_BIGINT;
    int iy = y->type == ZV_INT || y->type == ZV_BIGINT;
    return x->type == y->type || (sx && sy) || (ix && iy);
}

/* rec and live equal but for compare_varying; key: the dict key that holds
 * them, or NULL. Tuples and lists are alike (M5 has only arrays). */
static void compare(replay *r, const zv *rec, const zv *live, const char *path,
                    const char *key)
{
    if (!same_kind(rec, live)) {
        expect_equal(r, rec, live, path);
        return;
    }
    if (compare_varying(r, rec, live, path, key))
        return;
    if (zv_is_seq(rec) || rec->type == ZV_DICT)
        compare_items(r, rec, live, path);
    else
        expect_equal(r, rec, live, path);
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
    if (!m.async) {
        cr_assert_lt(r->n_calls, MAX_CALLS);
        r->calls[r->n_calls].conn = fr->conn;
        r->calls[r->n_calls].msgid = m.msgid;
        r->calls[r->n_calls++].name = m.name;
    }
    zbuf b = ZBUF_INIT;
    if (proto_is_heartbeat(&m))
        cr_assert_eq(proto_encode_reply(c->enc, &b, m.msgid, m.args, &err), 0);
    else
        cr_assert_eq(proto_encode_call(c->enc, &b, m.msgid, m.async, m.name, m.args, &err), 0,
                     "%s: %s", r->where, err.msg);
    cr_assert_eq(send(c->fd, b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len, "%s: send", r->where);
    zbuf_free(&b);
}

/* The name of the call on conn that a reply with this msgid answers. */
static const char *answered_call(replay *r, int conn, const zv *msgid)
{
    for (size_t i = r->n_calls; i-- > 0;)
        if (r->calls[i].conn == conn && zv_equal(r->calls[i].msgid, msgid))
            return r->calls[i].name;
    cr_assert_fail("%s: a reply to no call", r->where);
    return NULL;
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
    proto_msg rec, live;
    zerr err = {0};
    if (!strcmp(fr->kind, "ruok-reply")) {
        zv *jrec, *jlive;
        cr_assert_eq(json_parse((const char *)fr->payload, fr->len, r->a, &jrec, &err), 0);
        cr_assert_eq(json_parse((const char *)p, len, r->a, &jlive, &err), 0,
                     "%s: ruok JSON: %s", r->where, err.msg);
        free(p);
        r->call = "ruok";
        compare(r, jrec, jlive, "ruok", NULL);
        return;
    }
    cr_assert_eq(proto_decode(c->enc, fr->payload, fr->len, r->a, &rec, &err), 0);
    cr_assert_eq(proto_decode(c->enc, p, len, r->a, &live, &err), 0, "%s: %s", r->where,
                 err.msg);
    free(p);
    cr_assert_str_eq(live.name, rec.name, "%s", r->where);
    cr_assert_eq(live.flag, rec.flag, "%s: flag %lld, recorded %lld", r->where,
                 (long long)live.flag, (long long)rec.flag);
    r->call = rec.name;   /* an async frame's own name */
    if (!strcmp(rec.name, ".reply"))
        r->call = answered_call(r, fr->conn, live.msgid);
    compare(r, rec.msgid, live.msgid, "msgid", NULL);
    compare(r, rec.args, live.args, rec.flag == 2 ? "error" : r->call, NULL);
}

/* The Python server's default mode where zeolite's default mode answers
 * the same (see the top of the file). */
static int default_mode(const char *path, int *replayed)
{
    *replayed = 1;
    if (strstr(path, "/conflict_resolved@default.") ||
        strstr(path, "/readcurrent_conflict@default."))
        return 1;
    *replayed = !strstr(path, "@default");
    return 0;
}

static void replay_file(const char *path, int dflt)
{
    wf_file f;
    cr_assert_eq(wf_load(path, &f), 0, "cannot load %s", path);
    replay *r = calloc(1, sizeof *r);
    r->f = &f;
    r->a = zv_arena_new();
    const char *extra[5] = {NULL};
    int n = 0;
    if (f.msgpack)
        extra[n++] = "--msgpack";
    if (f.read_only)
        extra[n++] = "--read-only";
    if (!dflt)
        extra[n++] = "--client-conflict-resolution";
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
    size_t played = 0, defaults = 0;
    for (size_t i = 0; i < n; i++) {
        int replayed, dflt = default_mode(paths[i], &replayed);
        /* A shared blob folder is not offered on PostgreSQL (test_server_pg
         * checks that storeBlobShared is refused there). */
        if (!replayed || (th_on_pg() && strstr(paths[i], "/blobs_shared.")))
            continue;
        replay_file(paths[i], dflt);
        played++;
        defaults += (size_t)dflt;
    }
    cr_expect_geq(played, 22, "only %zu %s scenarios", played, enc);
    cr_expect_eq(defaults, 2, "%zu %s @default scenarios", defaults, enc);
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
