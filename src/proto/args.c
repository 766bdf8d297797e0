/* args.c: typed access to a call's argument tuple, so that server and client
 * check argument shapes, and word the TypeError, in one place. */
#include "proto/proto_int.h"

#include <stdio.h>

/* ZE_TYPE "argument 2 must be <expected>, not <what was sent>". The type and
 * length of the value, never its bytes: the message goes back to the client
 * as a str and must stay valid UTF-8. */
static int wrong(const zv *args, size_t i, const char *expected, zerr *err)
{
    const zv *v = proto_arg(args, i);
    char got[48];

    if (!v)
        return zerr_set(err, ZE_TYPE, "argument %zu is missing", i + 1);
    if (v->type == ZV_BYTES || v->type == ZV_STR)
        snprintf(got, sizeof got, "%s of length %zu", proto__type_name(v), v->u.s.len);
    else
        snprintf(got, sizeof got, "%s", proto__type_name(v));
    return zerr_set(err, ZE_TYPE, "argument %zu must be %s, not %s", i + 1, expected, got);
}

const zv *proto_arg(const zv *args, size_t i)
{
    if (!args || args->type != ZV_TUPLE || i >= args->u.seq.n)
        return NULL;
    return args->u.seq.items[i];
}

int proto_args_count(const zv *args, size_t min, size_t max, zerr *err)
{
    if (!args || args->type != ZV_TUPLE)
        return zerr_set(err, ZE_TYPE, "arguments are not a tuple");
    size_t n = args->u.seq.n;
    if (n < min || n > max) {
        if (min == max)
            return zerr_set(err, ZE_TYPE, "takes %zu argument%s, got %zu", min,
                            min == 1 ? "" : "s", n);
        return zerr_set(err, ZE_TYPE, "takes %zu to %zu arguments, got %zu", min, max, n);
    }
    return 0;
}

static int arg_p64(const zv *args, size_t i, const char *what, uint64_t *out, zerr *err)
{
    if (!zv_get_u64be(proto_arg(args, i), out))
        return wrong(args, i, what, err);
    return 0;
}

int proto_arg_oid(const zv *args, size_t i, uint64_t *out, zerr *err)
{
    return arg_p64(args, i, "8 bytes (an oid)", out, err);
}

int proto_arg_tid(const zv *args, size_t i, uint64_t *out, zerr *err)
{
    return arg_p64(args, i, "8 bytes (a tid)", out, err);
}

int proto_arg_serial(const zv *args, size_t i, uint64_t *out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (v && v->type == ZV_NONE) {
        *out = 0;
        return 0;
    }
    if (v && v->type == ZV_STR && v->u.s.len == 8) {
        for (size_t k = 0; k < 8; k++)
            if (v->u.s.p[k] >= 0x80)
                return wrong(args, i, "8 bytes (a serial)", err);
        *out = zbe64(v->u.s.p);
        return 0;
    }
    return arg_p64(args, i, "8 bytes (a serial)", out, err);
}

int proto_args_oid_serial(const zv *args, uint64_t *oid, uint64_t *serial, zerr *err)
{
    int rc = proto_arg_oid(args, 0, oid, err);

    return rc ? rc : proto_arg_serial(args, 1, serial, err);
}

int proto_args_store(const zv *args, uint64_t *oid, uint64_t *serial, zslice *data, zerr *err)
{
    int rc = proto_args_oid_serial(args, oid, serial, err);

    return rc ? rc : proto_arg_bytes(args, 2, data, err);
}

int proto_arg_optional_tid(const zv *args, size_t i, uint64_t *out, int *present, zerr *err)
{
    const zv *v = proto_arg(args, i);

    *present = 0;
    if (!v || v->type == ZV_NONE)
        return 0;
    if (!zv_get_u64be(v, out))
        return wrong(args, i, "None or 8 bytes (a tid)", err);
    *present = 1;
    return 0;
}

static int arg_string(const zv *args, size_t i, zv_type t, zslice *out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (!v || v->type != t)
        return wrong(args, i, t == ZV_STR ? "str" : "bytes", err);
    out->p = v->u.s.p;
    out->len = v->u.s.len;
    return 0;
}

int proto_arg_bytes(const zv *args, size_t i, zslice *out, zerr *err)
{
    return arg_string(args, i, ZV_BYTES, out, err);
}

int proto_arg_text(const zv *args, size_t i, zslice *out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (v && v->type == ZV_STR)
        return arg_string(args, i, ZV_STR, out, err);
    return arg_string(args, i, ZV_BYTES, out, err);
}

int proto_arg_optional_bytes(const zv *args, size_t i, zslice *out, int *present, zerr *err)
{
    const zv *v = proto_arg(args, i);

    *present = 0;
    if (!v || v->type == ZV_NONE)
        return 0;
    if (v->type != ZV_BYTES)
        return wrong(args, i, "None or bytes", err);
    *present = 1;
    return arg_string(args, i, ZV_BYTES, out, err);
}

int proto_arg_str(const zv *args, size_t i, zslice *out, zerr *err)
{
    return arg_string(args, i, ZV_STR, out, err);
}

int proto_arg_int(const zv *args, size_t i, int64_t *out, zerr *err)
{
    if (!zv_get_int(proto_arg(args, i), out))
        return wrong(args, i, "int", err);
    return 0;
}

int proto_arg_optional_int(const zv *args, size_t i, int64_t *out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (!v || v->type == ZV_NONE)
        return 0;
    if (!zv_get_int(v, out))
        return wrong(args, i, "None or int", err);
    return 0;
}

int proto_arg_float(const zv *args, size_t i, double *out, zerr *err)
{
    const zv *v = proto_arg(args, i);
    int64_t n;

    if (v && v->type == ZV_FLOAT) {
        *out = v->u.f;
        return 0;
    }
    if (!zv_get_int(v, &n))
        return wrong(args, i, "float", err);
    *out = (double)n;
    return 0;
}

int proto_arg_dict(const zv *args, size_t i, const zv **out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (!v || v->type != ZV_DICT)
        return wrong(args, i, "dict", err);
    *out = v;
    return 0;
}

int proto_arg_seq(const zv *args, size_t i, const zv **out, zerr *err)
{
    const zv *v = proto_arg(args, i);

    if (!zv_is_seq(v))
        return wrong(args, i, "list", err);
    *out = v;
    return 0;
}
