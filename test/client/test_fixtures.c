/* test_fixtures.c: frames recorded from the real Python ZEO 6 server
 * (shared/fixtures/wire), replayed to the client by a fake server: the
 * client must connect on them and apply the recorded invalidation, in both
 * encodings, without Python at hand. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "common/zjson.h"
#include "fake.h"
#include "testutil.h"

typedef struct replay {
    zbuf frames;          /* what the fake server sends */
    uint64_t register_tid;
    uint64_t inval_tid;   /* from the recorded invalidateTransaction */
    uint64_t inval_oids[16];
    size_t ninval;
} replay;

static int hexval(char ch)
{
    return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

static void append_frame(zbuf *out, const zv *hex)
{
    size_t n = hex->u.s.len / 2;
    uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    zbuf_append(out, hdr, 4);
    for (size_t i = 0; i < n; i++)
        zbuf_append_byte(out, (uint8_t)(hexval((char)hex->u.s.p[2 * i]) << 4 |
                                        hexval((char)hex->u.s.p[2 * i + 1])));
}

/* {"bytes": "hex"} -> u64 */
static uint64_t bytes8(const zv *v)
{
    const zv *h = zv_dict_get(v, "bytes");
    cr_assert(h && h->type == ZV_STR && h->u.s.len == 16);
    uint64_t x = 0;
    for (size_t i = 0; i < 16; i++)
        x = x << 4 | (uint64_t)hexval((char)h->u.s.p[i]);
    return x;
}

static const zv *tuple_items(const zv *v, size_t *n)
{
    const zv *t = v->type == ZV_DICT ? zv_dict_get(v, "tuple") : v;
    cr_assert(t && zv_is_seq(t));
    *n = t->u.seq.n;
    return t;
}

static int is_str(const zv *v, const char *s)
{
    return v && v->type == ZV_STR && v->u.s.len == strlen(s) && !memcmp(v->u.s.p, s, v->u.s.len);
}

/* Keep one connection's server frames the client can follow: the
 * announcement, the register and get_info replies, and async calls. */
static void take_frame(replay *r, const zv *line, int64_t conn)
{
    int64_t c, msgid = 0;
    const zv *d = zv_dict_get(line, "decoded");
    if (!zv_get_int(zv_dict_get(line, "conn"), &c) || c != conn ||
        !is_str(zv_dict_get(line, "dir"), "s2c") || !d)
        return;
    const zv *kind = zv_dict_get(d, "kind"), *args = zv_dict_get(d, "args");
    int reply = is_str(kind, "reply") && zv_get_int(zv_dict_get(d, "msgid"), &msgid) &&
                (msgid == 1 || msgid == 2);
    if (!reply && !is_str(kind, "handshake") && !is_str(kind, "async"))
        return;
    append_frame(&r->frames, zv_dict_get(line, "hex"));
    if (reply && msgid == 1)
        r->register_tid = bytes8(args);
    if (is_str(zv_dict_get(d, "name"), "invalidateTransaction")) {
        size_t n, k;
        const zv *t = tuple_items(args, &n);
        r->inval_tid = bytes8(t->u.seq.items[0]);
        const zv *oids = tuple_items(t->u.seq.items[1], &k);
        for (size_t i = 0; i < k && r->ninval < 16; i++)
            r->inval_oids[r->ninval++] = bytes8(oids->u.seq.items[i]);
    }
}

static void load_replay(replay *r, const char *rel, int64_t conn)
{
    char *path = tu_shared(rel);
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    cr_assert_not_null(text, "cannot read %s", path);
    zv_arena *a = zv_arena_new();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        zv *v = NULL;
        zv_arena_reset(a);
        cr_assert_eq(zjson_parse(line, strlen(line), a, &v, NULL), 0, "bad line in %s", rel);
        take_frame(r, v, conn);
    }
    zv_arena_free(a);
    free(text);
    free(path);
}

typedef struct seen {
    int calls;
    uint64_t tid, oids[16];
    size_t n;
} seen;

static void on_inval(zcl_client *c, uint64_t tid, const uint64_t *oids, size_t n, void *data)
{
    seen *s = data;
    s->calls++;
    s->tid = tid;
    s->n = n < 16 ? n : 16;
    memcpy(s->oids, oids, s->n * sizeof *oids);
}

static void replay_invalidation(const char *rel, proto_enc enc)
{
    replay r;
    memset(&r, 0, sizeof r);
    load_replay(&r, rel, 2); /* connection B receives A's invalidation */
    cr_assert_gt(r.ninval, 0, "no invalidateTransaction in %s", rel);
    fake_server fs;
    fake_start(&fs, r.frames.data, r.frames.len, 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", fs.port);
    seen s = {0};
    zcl_opts o;
    zcl_opts_init(&o);
    o.cache_size = 1 << 16;
    o.on_invalidate = on_inval;
    o.cb_data = &s;
    o.timeout_ms = 5000;
    zcl_client *c = NULL;
    zerr err = {0};
    cr_assert_eq(zcl_open_sync(addr, &o, &c, &err), 0, "%s", err.msg);
    cr_expect_eq(zcl_encoding(c), enc);
    cr_expect_not_null(zv_dict_get(zcl_info(c), "interfaces"));
    for (int i = 0; i < 500 && !s.calls; i++) {
        uv_run(zcl_loop(c), UV_RUN_NOWAIT);
        usleep(10000);
    }
    cr_assert_eq(s.calls, 1);
    cr_expect_eq(s.tid, r.inval_tid);
    cr_expect_gt(s.tid, r.register_tid);
    cr_expect_eq(zcl_last_tid(c), r.inval_tid);
    cr_assert_eq(s.n, r.ninval);
    for (size_t i = 0; i < s.n; i++)
        cr_expect_eq(s.oids[i], r.inval_oids[i]);
    zcl_free(c);
    fake_end(&fs);
    zbuf_free(&r.frames);
}

Test(client_fixtures, python_server_frames_z5)
{
    replay_invalidation("fixtures/wire/z5/invalidation.jsonl", PROTO_PICKLE);
}

Test(client_fixtures, python_server_frames_m5)
{
    replay_invalidation("fixtures/wire/m5/invalidation.jsonl", PROTO_MSGPACK);
}
