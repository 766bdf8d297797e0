/* Every frame recorded between the real ZEO 6 client and server
 * (shared/fixtures/wire) decodes, and encoding the decoded message again
 * gives back the recorded bytes: for s2c frames this shows zeolite writes
 * what the Python server writes; for c2s frames, what the Python client
 * writes. No frame class differs, so every frame is compared byte for byte. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "wirefix.h"

/* Encode m again the way its sender would have. */
static int reencode(proto_enc enc, wf_dir dir, const proto_msg *m, zbuf *out, zerr *err)
{
    if (strcmp(m->name, ".reply") == 0) {
        if (m->flag == 0)
            return proto_encode_reply(enc, out, m->msgid, m->args, err);
        cr_assert_eq(m->flag, 2);
        cr_assert(m->args->type == ZV_TUPLE && m->args->u.seq.n == 2 &&
                  m->args->u.seq.items[0]->type == ZV_STR);
        proto_exc e = {(const char *)m->args->u.seq.items[0]->u.s.p, m->args->u.seq.items[1]};
        return proto_encode_error(enc, out, m->msgid, &e, err);
    }
    if (dir == WF_S2C) {
        /* server -> client calls are always async with msgid 0 (spec 6.4) */
        cr_assert(m->async && m->msgid->type == ZV_INT && m->msgid->u.i == 0);
        return proto_encode_async(enc, out, m->name, m->args, err);
    }
    return proto_encode_call(enc, out, m->msgid, m->async, m->name, m->args, err);
}

/* The reference decoder's kind agrees with ours. */
static void check_kind(const wf_frame *fr, const proto_msg *m, const char *where)
{
    const char *kind = strcmp(m->name, ".reply") != 0 ? (m->async ? "async" : "call")
                       : proto_is_heartbeat(m)        ? "heartbeat"
                       : m->flag == 0                 ? "reply"
                                                      : "error";
    cr_assert_str_eq(kind, fr->kind, "%s", where);
}

static void replay_encoding(const char *enc_name, proto_enc enc)
{
    size_t nfiles, frames = 0;
    char **paths = wf_list(enc_name, &nfiles);
    zv_arena *a = zv_arena_new();
    zbuf out = ZBUF_INIT;

    cr_assert_not_null(paths);
    cr_assert_geq(nfiles, 20, "fixture files for %s", enc_name);
    for (size_t i = 0; i < nfiles; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0, "%s", paths[i]);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            char where[512];
            proto_msg m;
            zerr err;
            if (!strcmp(fr->kind, "handshake") || !strcmp(fr->kind, "ruok-reply"))
                continue;
            snprintf(where, sizeof where, "%s:%zu", paths[i], fr->line);
            zv_arena_reset(a);
            int rc = proto_decode(enc, fr->payload, fr->len, a, &m, &err);
            cr_assert_eq(rc, 0, "%s: %s", where, err.msg);
            check_kind(fr, &m, where);
            zbuf_reset(&out);
            rc = reencode(enc, fr->dir, &m, &out, &err);
            cr_assert_eq(rc, 0, "%s: %s", where, err.msg);
            cr_assert_eq(out.len, fr->len + 4, "%s: %zu bytes, recorded %zu", where,
                         out.len - 4, fr->len);
            cr_assert_eq(zbe32(out.data), fr->len);
            cr_assert_arr_eq(out.data + 4, fr->payload, fr->len, "%s: bytes differ", where);
            /* Real traffic is far from the decode bound: a copy of any
             * recorded message takes at most 8 bytes a byte and 4 KiB. */
            size_t cost = zv_copy_cost(m.msgid, SIZE_MAX) + zv_copy_cost(m.args, SIZE_MAX);
            cr_assert_leq(cost, 8 * fr->len + 4096, "%s: %zu bytes for %zu", where, cost, fr->len);
            frames++;
        }
        wf_free(&f);
    }
    /* Every file has traffic beyond the handshake. */
    cr_assert_gt(frames, 20 * nfiles);
    cr_log_info("%s: %zu frames in %zu files re-encoded byte for byte", enc_name, frames,
                nfiles);
    zbuf_free(&out);
    zv_arena_free(a);
    wf_list_free(paths, nfiles);
}

Test(proto_wire, every_z5_frame_round_trips) { replay_encoding("z5", PROTO_PICKLE); }
Test(proto_wire, every_m5_frame_round_trips) { replay_encoding("m5", PROTO_MSGPACK); }
