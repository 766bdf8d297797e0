/* methods.c: the blocking storage methods that are one call and a result. */
#include "client/client_int.h"

#include <string.h>

/* Call method with args and keep the result in a scratch arena or the
 * caller's. */
static int call(zcl_client *c, const char *method, zv *args, zv_arena *a, zv **res,
                zerr *err)
{
    if (!args)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    return zcl_call_sync(c, method, args, a, res, err);
}

static int call_tid(zcl_client *c, const char *method, zv *args, uint64_t *tid, zerr *err)
{
    zv_arena *a = zv_arena_new();
    zv *res = NULL;
    int rc = a ? call(c, method, args, a, &res, err) : ZE_NOMEM;
    if (rc == 0 && !zv_get_u64be(res, tid))
        rc = zerr_set(err, ZE_PROTO, "%s returned no tid", method);
    zv_arena_free(a);
    return rc;
}

int zcl_last_transaction_sync(zcl_client *c, uint64_t *tid, zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    return call_tid(c, "lastTransaction", zcl__args(c, 0), tid, err);
}

int zcl_new_oids_sync(zcl_client *c, unsigned n, uint64_t *oids, size_t *got, zerr *err)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    zv_arena_reset(c->tmp_arena);
    zv *res = NULL;
    int rc = call(c, "new_oids", zcl__args(c, 1, zv_int(c->tmp_arena, n)), a, &res, err);
    if (rc == 0 && !zv_is_seq(res))
        rc = zerr_set(err, ZE_PROTO, "malformed new_oids reply");
    *got = 0;
    for (size_t i = 0; rc == 0 && i < res->u.seq.n && *got < n; i++) {
        if (!zv_get_u64be(res->u.seq.items[i], &oids[*got]))
            rc = zerr_set(err, ZE_PROTO, "malformed oid in new_oids reply");
        else
            (*got)++;
    }
    zv_arena_free(a);
    return rc;
}

int zcl_ping_sync(zcl_client *c, zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    return call(c, "ping", zcl__args(c, 0), NULL, NULL, err);
}

int zcl_server_status_sync(zcl_client *c, zv_arena *a, zv **status, zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    int rc = call(c, "server_status", zcl__args(c, 0), a, status, err);
    if (rc == 0 && (!*status || (*status)->type != ZV_DICT))
        rc = zerr_set(err, ZE_PROTO, "malformed server_status reply");
    return rc;
}

int zcl_history_sync(zcl_client *c, uint64_t oid, int size, zv_arena *a, zv **list,
                     zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zcl__tid(c, oid), zv_int(c->tmp_arena, size));
    int rc = call(c, "history", args, a, list, err);
    if (rc == 0 && !zv_is_seq(*list))
        rc = zerr_set(err, ZE_PROTO, "malformed history reply");
    return rc;
}

int zcl_undo_log_sync(zcl_client *c, int first, int last, zv_arena *a, zv **list,
                      zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zv_int(c->tmp_arena, first), zv_int(c->tmp_arena, last));
    int rc = call(c, "undoLog", args, a, list, err);
    if (rc == 0 && !zv_is_seq(*list))
        rc = zerr_set(err, ZE_PROTO, "malformed undoLog reply");
    return rc;
}

int zcl_pack_sync(zcl_client *c, double t, zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zv_float(c->tmp_arena, t), zv_int(c->tmp_arena, 1));
    return call(c, "pack", args, NULL, NULL, err);
}

/* ---- iteration --------------------------------------------------------------- */

static zv *tid_or_none(zcl_client *c, uint64_t tid)
{
    return tid ? zcl__tid(c, tid) : zv_none(c->tmp_arena);
}

static int call_int(zcl_client *c, const char *method, zv *args, int64_t *out, zerr *err)
{
    zv_arena *a = zv_arena_new();
    zv *res = NULL;
    int rc = a ? call(c, method, args, a, &res, err) : ZE_NOMEM;
    if (rc == 0 && !zv_get_int(res, out))
        rc = zerr_set(err, ZE_PROTO, "%s returned no iterator id", method);
    zv_arena_free(a);
    return rc;
}

int zcl_iter_start_sync(zcl_client *c, uint64_t start, uint64_t stop, int64_t *iid,
                        zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, tid_or_none(c, start), tid_or_none(c, stop));
    return call_int(c, "iterator_start", args, iid, err);
}

int zcl_iter_next_sync(zcl_client *c, int64_t iid, zv_arena *a, zcl_txn_rec *rec,
                       zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *res = NULL;
    int rc = call(c, "iterator_next", zcl__args(c, 1, zv_int(c->tmp_arena, iid)), a, &res,
                  err);
    if (rc < 0)
        return rc;
    if (!res || res->type == ZV_NONE)
        return 0;
    const zv *st;
    if (!zv_is_seq(res) || res->u.seq.n != 5 || !zv_get_u64be(res->u.seq.items[0], &rec->tid) ||
        (st = res->u.seq.items[1])->type != ZV_STR)
        return zerr_set(err, ZE_PROTO, "malformed iterator_next reply");
    rec->status = st->u.s.len ? (char)st->u.s.p[0] : ' ';
    rec->user = res->u.seq.items[2];
    rec->description = res->u.seq.items[3];
    rec->extension = res->u.seq.items[4];
    return 1;
}

int zcl_iter_records_sync(zcl_client *c, int64_t iid, uint64_t tid, int64_t *riid,
                          zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *args = zcl__args(c, 2, zv_int(c->tmp_arena, iid), zcl__tid(c, tid));
    return call_int(c, "iterator_record_start", args, riid, err);
}

int zcl_iter_record_next_sync(zcl_client *c, int64_t riid, zv_arena *a, zcl_data_rec *rec,
                              zerr *err)
{
    zv_arena_reset(c->tmp_arena);
    zv *res = NULL;
    int rc = call(c, "iterator_record_next", zcl__args(c, 1, zv_int(c->tmp_arena, riid)), a,
                  &res, err);
    if (rc < 0)
        return rc;
    if (!res || res->type == ZV_NONE)
        return 0;
    memset(rec, 0, sizeof *rec);
    const zv *data, *dtxn;
    if (!zv_is_seq(res) || res->u.seq.n != 4 || !zv_get_u64be(res->u.seq.items[0], &rec->oid) ||
        !zv_get_u64be(res->u.seq.items[1], &rec->tid))
        return zerr_set(err, ZE_PROTO, "malformed iterator_record_next reply");
    data = res->u.seq.items[2];
    dtxn = res->u.seq.items[3];
    if (data->type == ZV_BYTES) {
        rec->data = data->u.s.p;
        rec->len = data->u.s.len;
    }
    if (dtxn->type != ZV_NONE)
        zv_get_u64be(dtxn, &rec->data_txn);
    return 1;
}

int zcl_iter_gc(zcl_client *c, const int64_t *iids, size_t n)
{
    zv_arena_reset(c->tmp_arena);
    zv *list = zv_list(c->tmp_arena, n);
    for (size_t i = 0; list && i < n; i++)
        if (!(list->u.seq.items[i] = zv_int(c->tmp_arena, iids[i])))
            list = NULL;
    zv *args = list ? zcl__args(c, 1, list) : NULL;
    if (!args)
        return ZE_NOMEM;
    return zcl_call_async(c, "iterator_gc", args);
}
