/* undo.c: undoLog, undoInfo and undoa.
 *
 * Undo ids are what FileStorage uses, the base64 of the 8-byte tid (12 ASCII
 * bytes), so ids recorded against a Python server keep their shape. */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void undo_id(uint64_t tid, char out[12])
{
    uint8_t in[9];
    zbe64_put(in, tid);
    in[8] = 0;
    for (int i = 0, o = 0; i < 9; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[11] = '=';
}

static int b64_value(uint8_t c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* A 12-byte base64 id, or a raw 8-byte tid. */
static int parse_undo_id(zslice id, uint64_t *tid)
{
    if (id.len == 8) {
        *tid = zbe64(id.p);
        return 0;
    }
    if (id.len != 12 || id.p[11] != '=')
        return ZE_INVAL;
    uint8_t out[9];
    for (int i = 0, o = 0; i < 12; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = i + k == 11 ? 0 : b64_value(id.p[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return ZE_INVAL;
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        out[o++] = (uint8_t)(x >> 8);
        out[o++] = (uint8_t)x;
    }
    *tid = zbe64(out);
    return 0;
}

typedef struct undo_ctx {
    zv_arena *a;          /* the reply */
    zv_arena *scratch;    /* filter dicts, reset per transaction */
    const zv *spec;       /* undoInfo's specification dict, or NULL */
    uint64_t visible;     /* the call's snapshot: later transactions are not listed */
    zsrv_vec out;
    int nomem;
} undo_ctx;

static zv *entry(zv_arena *a, const store_txn_info *info)
{
    char id[12];
    undo_id(info->tid, id);
    return zsrv__txn_dict(a, info, "id", zv_bytes(a, id, sizeof id));
}

/* ZODB's rule: every key of the specification equals the entry's value;
 * and nothing committed after the call's snapshot is listed. */
static int spec_filter(const store_txn_info *info, void *ud)
{
    undo_ctx *u = ud;
    if (info->tid > u->visible)
        return 0;
    if (!u->spec)
        return 1;
    zv_arena_reset(u->scratch);
    zv *d = entry(u->scratch, info);
    if (!d) {
        u->nomem = 1;
        return 0;
    }
    for (size_t i = 0; i < u->spec->u.seq.n; i++) {
        const zv *k = u->spec->u.seq.items[2 * i], *want = u->spec->u.seq.items[2 * i + 1];
        const zv *have = NULL;
        for (size_t j = 0; k->type == ZV_STR && j < d->u.seq.n; j++) {
            const zv *dk = d->u.seq.items[2 * j];
            if (dk->u.s.len == k->u.s.len && !memcmp(dk->u.s.p, k->u.s.p, k->u.s.len))
                have = d->u.seq.items[2 * j + 1];   /* the last duplicate wins */
        }
        if (!have || !zv_equal(have, want))
            return 0;
    }
    return 1;
}

static int collect(const store_txn_info *info, void *ud)
{
    undo_ctx *u = ud;
    if (zsrv__vec_push(&u->out, entry(u->a, info)) < 0) {
        u->nomem = 1;
        return ZE_NOMEM;
    }
    return 0;
}

static int undo_list(zsrv_call *call, int64_t first, int64_t last, const zv *spec)
{
    undo_ctx u = {.a = call->a, .spec = spec, .visible = call->visible};
    if (spec && !(u.scratch = zv_arena_new()))
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    if (first < 0)
        first = 0;
    if (first > INT32_MAX || last > INT32_MAX || last < INT32_MIN) {
        zv_arena_free(u.scratch);
        return zerr_set(&call->err, ZE_INVAL, "undo range out of bounds");
    }
    /* A reader newer than the snapshot (off the loop) filters what came after it. */
    int filter = spec || store_reader_last_tid(call->rd) > call->visible;
    int rc = store_undo_log(call->rd, (int)first, (int)last, filter ? spec_filter : NULL, &u,
                            collect, &u, &call->err);
    zv_arena_free(u.scratch);
    zv *l = u.nomem || rc < 0 ? NULL : zsrv__vec_list(&u.out, call->a);
    free(u.out.items);
    if (rc < 0 && !u.nomem)
        return rc;
    if (!l)
        return zerr_set(&call->err, ZE_NOMEM, "out of memory");
    return zsrv__reply(call, l);
}

/* undoLog's and undoInfo's (first=0, last=-20). */
static int undo_range(zsrv_call *call, int64_t *first, int64_t *last)
{
    *first = 0;
    *last = -20;
    int rc = proto_arg_optional_int(call->args, 0, first, &call->err);
    return rc ? rc : proto_arg_optional_int(call->args, 1, last, &call->err);
}

static int undo_log_body(zsrv_call *call)
{
    int64_t first, last;
    int rc = undo_range(call, &first, &last);
    return rc ? rc : undo_list(call, first, last, NULL);
}

int zsrv__m_undo_log(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, undo_log_body, NULL, NULL, 0);
}

static int undo_info_body(zsrv_call *call)
{
    int64_t first, last;
    int rc = undo_range(call, &first, &last);
    if (rc)
        return rc;
    const zv *spec = proto_arg(call->args, 2);
    if (spec && spec->type == ZV_NONE)
        spec = NULL;
    if (spec && (rc = proto_arg_dict(call->args, 2, &spec, &call->err)) < 0)
        return rc;
    return undo_list(call, first, last, spec && spec->u.seq.n ? spec : NULL);
}

int zsrv__m_undo_info(zsrv_call *call)
{
    return zsrv__offload(call, ZSRV_LANE_READ, undo_info_body, NULL, NULL, 0);
}

int zsrv__m_undoa(zsrv_call *call)
{
    zslice id;
    uint64_t tid;
    int rc;
    if ((rc = proto_arg_bytes(call->args, 0, &id, &call->err)) < 0)
        return rc;
    zsrv_txn *x = zsrv__txn_open(call, call->argv[1]);
    if (!x)
        return call->err.code;
    if (parse_undo_id(id, &tid) < 0)
        return zerr_set(&call->err, ZE_UNDO, "undo id is not a transaction id");
    return store_txn_undo(x->t, tid, &call->err);
}
