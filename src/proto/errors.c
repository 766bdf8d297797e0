/* errors.c: the exceptions of error replies, in the shapes the Python client
 * rebuilds (spec 11.2), and the conflict dicts of a vote (spec 10). */
#include "proto/proto_int.h"

#include <string.h>

/* Code <-> class, both ways: the first row of a code is the class it is sent
 * as, the first row of a class the code a client reports it as. */
static const struct {
    int code;
    const char *class_path;
} exc_codes[] = {
    {ZE_NOTFOUND, PROTO_EXC_POSKEY},
    {ZE_CONFLICT, PROTO_EXC_CONFLICT},
    {ZE_CONFLICT, PROTO_EXC_BTREES_CONFLICT},
    {ZE_READCONFLICT, PROTO_EXC_READ_CONFLICT},
    {ZE_UNDO, PROTO_EXC_UNDO},
    {ZE_UNDO, PROTO_EXC_MULTIPLE_UNDO},
    {ZE_READONLY, PROTO_EXC_READONLY},
    {ZE_TXN, PROTO_EXC_TXN},
    {ZE_TYPE, PROTO_EXC_TYPE},
    {ZE_INVAL, PROTO_EXC_VALUE},
    {ZE_TOOBIG, PROTO_EXC_VALUE},
};

const char *proto_exc_class(int code)
{
    for (size_t i = 0; i < sizeof exc_codes / sizeof exc_codes[0]; i++)
        if (exc_codes[i].code == code)
            return exc_codes[i].class_path;
    return PROTO_EXC_STORAGE;
}

int proto_exc_code(const char *class_path)
{
    for (size_t i = 0; i < sizeof exc_codes / sizeof exc_codes[0]; i++)
        if (!strcmp(exc_codes[i].class_path, class_path))
            return exc_codes[i].code;
    return ZE_INVAL;
}

static int set(proto_exc *e, const char *class_path, zv *payload)
{
    if (!payload)
        return ZE_NOMEM;
    e->class_path = class_path;
    e->payload = payload;
    return 0;
}

/* A tuple of the n values given; NULL when one of them is NULL (a
 * constructor out of memory) or on failure. */
static zv *tuple(zv_arena *a, size_t n, zv *x, zv *y, zv *z)
{
    zv *in[3] = {x, y, z};
    zv *t = zv_tuple(a, n);

    for (size_t i = 0; t && i < n; i++)
        if (!(t->u.seq.items[i] = in[i]))
            return NULL;
    return t;
}

/* A dict of str keys and values; NULL as for tuple(). */
static zv *dict(zv_arena *a, size_t n, const char *const *keys, zv *const *values)
{
    zv *d = zv_dict(a, n);

    for (size_t i = 0; d && i < n; i++)
        if (!(d->u.seq.items[2 * i] = zv_cstr(a, keys[i])) ||
            !(d->u.seq.items[2 * i + 1] = values[i]))
            return NULL;
    return d;
}

int proto_exc_msg(proto_exc *e, zv_arena *a, const char *class_path, const char *message)
{
    return set(e, class_path, tuple(a, 1, zv_cstr(a, message), NULL, NULL));
}

int proto_exc_from_err(proto_exc *e, zv_arena *a, const zerr *err)
{
    if (err->code == ZE_READONLY)
        return set(e, PROTO_EXC_READONLY, zv_tuple(a, 0));
    if (err->code == ZE_UNDO)
        return proto_exc_undo(e, a, err->msg, NULL, 0);
    return proto_exc_msg(e, a, proto_exc_class(err->code), err->msg);
}

int proto_exc_poskey(proto_exc *e, zv_arena *a, uint64_t oid)
{
    return set(e, PROTO_EXC_POSKEY, tuple(a, 1, zv_oid(a, oid), NULL, NULL));
}

int proto_exc_no_blob(proto_exc *e, zv_arena *a, const char *path, uint64_t oid,
                      uint64_t serial)
{
    static const char prefix[] = "No blob file at ";
    size_t n = strlen(path);
    char *msg = zv_alloc(a, sizeof prefix + n);
    zv *text = NULL;

    if (msg) {
        memcpy(msg, prefix, sizeof prefix - 1);
        memcpy(msg + sizeof prefix - 1, path, n);
        text = zv_str(a, msg, sizeof prefix - 1 + n);
    }
    return set(e, PROTO_EXC_POSKEY, tuple(a, 3, text, zv_oid(a, oid), zv_oid(a, serial)));
}

int proto_exc_key(proto_exc *e, zv_arena *a, const zv *key)
{
    return set(e, PROTO_EXC_KEY, tuple(a, 1, (zv *)key, NULL, NULL));
}

int proto_exc_txn_mismatch(proto_exc *e, zv_arena *a, const zv *current, const zv *txn)
{
    zv *cur = current ? (zv *)current : zv_none(a);

    return set(e, PROTO_EXC_TXN, tuple(a, 2, cur, (zv *)txn, NULL));
}

/* (current, sent), or None for an unknown object. */
static zv *serials(zv_arena *a, const proto_conflict *c)
{
    if (c->no_oid)
        return zv_none(a);
    return tuple(a, 2, zv_oid(a, c->current), zv_oid(a, c->sent), NULL);
}

int proto_exc_conflict(proto_exc *e, zv_arena *a, const proto_conflict *c)
{
    static const char *const keys[4] = {"message", "oid", "class_name", "serials"};
    const char *message = c->message ? c->message
                          : c->read  ? "database read conflict error"
                                     : "database conflict error";
    zv *values[4] = {
        zv_cstr(a, message),
        c->no_oid ? zv_none(a) : zv_oid(a, c->oid),
        c->class_name ? zv_cstr(a, c->class_name) : zv_none(a),
        serials(a, c),
    };

    return set(e, c->read ? PROTO_EXC_READ_CONFLICT : PROTO_EXC_CONFLICT,
               dict(a, 4, keys, values));
}

int proto_conflict_item(zv **out, zv_arena *a, const proto_conflict *c)
{
    static const char *const keys[3] = {"oid", "serials", "data"};
    zv *values[3] = {zv_oid(a, c->oid), serials(a, c), zv_bytes(a, c->data.p, c->data.len)};

    *out = dict(a, 3, keys, values);
    return *out ? 0 : ZE_NOMEM;
}

int proto_conflict_parse(const zv *d, proto_conflict *c)
{
    memset(c, 0, sizeof *c);
    if (!d || d->type != ZV_DICT || !zv_get_u64be(zv_dict_get(d, "oid"), &c->oid))
        return 0;
    const zv *s = zv_dict_get(d, "serials");
    if (zv_is_seq(s) && s->u.seq.n == 2) {
        zv_get_u64be(s->u.seq.items[0], &c->current);
        zv_get_u64be(s->u.seq.items[1], &c->sent);
    }
    const zv *data = zv_dict_get(d, "data");
    if (data && data->type == ZV_BYTES) {
        c->data.p = data->u.s.p;
        c->data.len = data->u.s.len;
    }
    return 1;
}

int proto_exc_undo(proto_exc *e, zv_arena *a, const char *message, const proto_undo_error *errs,
                   size_t n)
{
    if (n == 0) {
        static const char *const keys[2] = {"_reason", "_oid"};
        zv *values[2] = {zv_cstr(a, message), zv_none(a)};
        return set(e, PROTO_EXC_UNDO, dict(a, 2, keys, values));
    }
    static const char *const key[1] = {"_errs"};
    zv *list = zv_list(a, n);
    for (size_t i = 0; list && i < n; i++)
        if (!(list->u.seq.items[i] =
                  tuple(a, 2, zv_oid(a, errs[i].oid), zv_cstr(a, errs[i].reason), NULL)))
            list = NULL;
    return set(e, PROTO_EXC_MULTIPLE_UNDO, list ? dict(a, 1, key, &list) : NULL);
}
