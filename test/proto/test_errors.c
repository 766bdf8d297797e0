/* Standard error replies (spec 11.2) and typed argument access. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "wirefix.h"

static zv_arena *arena;
static zbuf got;

static void setup(void)
{
    arena = zv_arena_new();
}

static void teardown(void)
{
    zv_arena_free(arena);
    zbuf_free(&got);
}

TestSuite(proto_errors, .init = setup, .fini = teardown);

static const char *cstr(const zv *v)
{
    cr_assert(v && v->type == ZV_STR);
    return (const char *)v->u.s.p;
}

/* Encode the recorded error again through the typed constructor for its
 * class; 1 if the class has one (and the bytes matched), else 0. */
static int reencode_error(proto_enc enc, const proto_msg *m, const char *where)
{
    const char *cls = cstr(m->args->u.seq.items[0]);
    const zv *payload = m->args->u.seq.items[1];
    uint64_t oid;
    int rc;

    zbuf_reset(&got);
    if (!strcmp(cls, PROTO_EXC_CONFLICT) || !strcmp(cls, PROTO_EXC_READ_CONFLICT)) {
        const zv *serials = zv_dict_get(payload, "serials");
        const zv *name = zv_dict_get(payload, "class_name");
        proto_conflict c = {.read = !strcmp(cls, PROTO_EXC_READ_CONFLICT)};
        cr_assert(zv_get_u64be(zv_dict_get(payload, "oid"), &c.oid), "%s", where);
        cr_assert(zv_is_seq(serials) && serials->u.seq.n == 2, "%s", where);
        cr_assert(zv_get_u64be(serials->u.seq.items[0], &c.current));
        cr_assert(zv_get_u64be(serials->u.seq.items[1], &c.sent));
        c.class_name = name->type == ZV_NONE ? NULL : cstr(name);
        /* the default message is the reference server's */
        rc = proto_encode_conflict(enc, &got, m->msgid, &c, NULL);
    } else if (!strcmp(cls, PROTO_EXC_POSKEY) && payload->u.seq.n == 1) {
        cr_assert(zv_get_u64be(payload->u.seq.items[0], &oid), "%s", where);
        rc = proto_encode_poskey(enc, &got, m->msgid, oid, NULL);
    } else if (!strcmp(cls, PROTO_EXC_READONLY)) {
        rc = proto_encode_readonly(enc, &got, m->msgid, NULL);
    } else {
        return 0;
    }
    cr_assert_eq(rc, 0, "%s", where);
    return 1;
}

/* Every error the reference server sent in the recordings is reproduced
 * byte for byte by the typed constructor of its class. */
static void recorded_errors(const char *enc_name, proto_enc enc)
{
    size_t nfiles, typed = 0, conflicts = 0;
    char **paths = wf_list(enc_name, &nfiles);
    cr_assert_not_null(paths);
    for (size_t i = 0; i < nfiles; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            char where[512];
            proto_msg m;
            if (strcmp(fr->kind, "error") != 0)
                continue;
            snprintf(where, sizeof where, "%s:%zu", paths[i], fr->line);
            cr_assert_eq(proto_decode(enc, fr->payload, fr->len, arena, &m, NULL), 0, "%s", where);
            if (!reencode_error(enc, &m, where))
                continue;
            cr_assert_eq(got.len, fr->len + 4, "%s", where);
            cr_assert_arr_eq(got.data + 4, fr->payload, fr->len, "%s: bytes differ", where);
            typed++;
            conflicts += strstr(where, "conflict") != NULL;
        }
        wf_free(&f);
    }
    cr_assert_gt(typed, 10);
    cr_assert_gt(conflicts, 0);
    wf_list_free(paths, nfiles);
}

Test(proto_errors, recorded_errors_z5) { recorded_errors("z5", PROTO_PICKLE); }
Test(proto_errors, recorded_errors_m5) { recorded_errors("m5", PROTO_MSGPACK); }

/* Decode an encoded error reply; return its (class, payload). */
static const zv *decode_error(proto_enc enc, const char **cls)
{
    proto_msg m;
    cr_assert_eq(proto_decode(enc, got.data + 4, got.len - 4, arena, &m, NULL), 0);
    cr_assert_str_eq(m.name, ".reply");
    cr_assert_eq(m.flag, 2);
    cr_assert_eq(m.args->u.seq.n, 2);
    *cls = cstr(m.args->u.seq.items[0]);
    return m.args->u.seq.items[1];
}

/* Spec 11.2's observed payloads, in both encodings. */
Test(proto_errors, message_and_txn_errors)
{
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    for (size_t e = 0; e < 2; e++) {
        const char *cls;
        const zv *p;

        zbuf_reset(&got);
        cr_assert_eq(proto_encode_error_msg(encs[e], &got, zv_int(arena, 1), PROTO_EXC_VALUE,
                                            "unknown storage: nosuch", NULL), 0);
        p = decode_error(encs[e], &cls);
        cr_assert_str_eq(cls, "builtins.ValueError");
        cr_assert_eq(p->type, ZV_TUPLE);
        cr_assert_eq(p->u.seq.n, 1);
        cr_assert_str_eq(cstr(p->u.seq.items[0]), "unknown storage: nosuch");

        zbuf_reset(&got);
        cr_assert_eq(proto_encode_txn_mismatch(encs[e], &got, zv_int(arena, 2), NULL,
                                               zv_int(arena, 123), NULL), 0);
        p = decode_error(encs[e], &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.StorageTransactionError");
        cr_assert_eq(p->u.seq.n, 2);
        cr_assert_eq(p->u.seq.items[0]->type, ZV_NONE);
        cr_assert_eq(p->u.seq.items[1]->u.i, 123);

        zbuf_reset(&got);
        proto_conflict c = {.oid = 1, .current = 3, .sent = 2};
        cr_assert_eq(proto_encode_conflict(encs[e], &got, zv_int(arena, 3), &c, NULL), 0);
        p = decode_error(encs[e], &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.ConflictError");
        cr_assert_str_eq(cstr(zv_dict_get(p, "message")), "database conflict error");
        cr_assert_eq(zv_dict_get(p, "class_name")->type, ZV_NONE);
    }
}

/* ---- typed arguments ---------------------------------------------------- */

static zv *sample_args(void)
{
    zv *t = zv_tuple(arena, 8);
    zv **it = t->u.seq.items;
    it[0] = zv_oid(arena, 0x0102030405060708ull);
    it[1] = zv_bytes(arena, "abc", 3);
    it[2] = zv_none(arena);
    it[3] = zv_cstr(arena, " ");
    it[4] = zv_int(arena, -5);
    it[5] = zv_float(arena, 1.5);
    it[6] = zv_dict(arena, 0);
    it[7] = zv_bool(arena, 1);
    return t;
}

Test(proto_errors, typed_arguments)
{
    zv *args = sample_args();
    uint64_t u;
    int64_t i;
    double d;
    int present;
    zslice s;
    const zv *dict;

    cr_assert_eq(proto_args_count(args, 8, 8, NULL), 0);
    cr_assert_eq(proto_args_count(args, 1, 7, NULL), ZE_INVAL);
    cr_assert_eq(proto_arg_oid(args, 0, &u, NULL), 0);
    cr_assert_eq(u, 0x0102030405060708ull);
    cr_assert_eq(proto_arg_tid(args, 0, &u, NULL), 0);
    cr_assert_eq(proto_arg_bytes(args, 1, &s, NULL), 0);
    cr_assert(s.len == 3 && !memcmp(s.p, "abc", 3));
    cr_assert_eq(proto_arg_optional_tid(args, 2, &u, &present, NULL), 0);
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_optional_tid(args, 0, &u, &present, NULL), 0);
    cr_assert_eq(present, 1);
    cr_assert_eq(proto_arg_optional_bytes(args, 2, &s, &present, NULL), 0);
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_optional_bytes(args, 1, &s, &present, NULL), 0);
    cr_assert(present && s.len == 3);
    cr_assert_eq(proto_arg_str(args, 3, &s, NULL), 0);
    cr_assert(s.len == 1 && s.p[0] == ' ');
    cr_assert_eq(proto_arg_int(args, 4, &i, NULL), 0);
    cr_assert_eq(i, -5);
    cr_assert_eq(proto_arg_int(args, 7, &i, NULL), 0, "bool is an int, as in Python");
    cr_assert_eq(proto_arg_float(args, 5, &d, NULL), 0);
    cr_assert_eq(d, 1.5);
    cr_assert_eq(proto_arg_float(args, 4, &d, NULL), 0);
    cr_assert_eq(d, -5.0);
    cr_assert_eq(proto_arg_dict(args, 6, &dict, NULL), 0);
    cr_assert_eq(dict, args->u.seq.items[6]);
    cr_assert_eq(proto_arg(args, 8), NULL);
}

Test(proto_errors, wrong_arguments_say_why)
{
    zv *args = sample_args();
    uint64_t u;
    int64_t i;
    int present;
    zslice s;
    zerr err;

    cr_assert_eq(proto_arg_oid(args, 1, &u, &err), ZE_INVAL, "3 bytes are no oid");
    cr_assert_str_eq(err.msg, "argument 2: expected an oid (8 bytes), got bytes");
    cr_assert_eq(proto_arg_oid(args, 3, &u, &err), ZE_INVAL);
    cr_assert_str_eq(err.msg, "argument 4: expected an oid (8 bytes), got str");
    cr_assert_eq(proto_arg_oid(args, 9, &u, &err), ZE_INVAL);
    cr_assert_str_eq(err.msg, "argument 10 is missing");
    cr_assert_eq(proto_arg_optional_tid(args, 1, &u, &present, &err), ZE_INVAL);
    cr_assert_eq(proto_arg_bytes(args, 3, &s, &err), ZE_INVAL, "str is not bytes");
    cr_assert_eq(proto_arg_str(args, 1, &s, &err), ZE_INVAL, "bytes is not str");
    cr_assert_eq(proto_arg_optional_bytes(args, 3, &s, &present, &err), ZE_INVAL);
    cr_assert_eq(proto_arg_int(args, 5, &i, &err), ZE_INVAL, "float is not int");
    cr_assert_eq(proto_arg_dict(args, 2, NULL, &err), ZE_INVAL);
    cr_assert_eq(proto_args_count(args, 2, 3, &err), ZE_INVAL);
    cr_assert_str_eq(err.msg, "takes 2 to 3 arguments, got 8");
    cr_assert_eq(proto_args_count(zv_none(arena), 0, 0, &err), ZE_INVAL);
}
