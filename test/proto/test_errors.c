/* The exceptions of error replies and the conflict dicts of a vote (spec 10,
 * 11.2), and typed argument access: the code server and client run. */
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

/* The exception of a recorded error, rebuilt through the builder of its
 * class into *e; 1 if the class has one, else 0. */
static int rebuild_error(const proto_msg *m, proto_exc *e, const char *where)
{
    const char *cls = cstr(m->args->u.seq.items[0]);
    const zv *payload = m->args->u.seq.items[1];
    uint64_t oid, serial;
    static const char no_blob[] = "No blob file at ";

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
        cr_assert_eq(proto_exc_conflict(e, arena, &c), 0, "%s", where);
    } else if (!strcmp(cls, PROTO_EXC_POSKEY) && payload->u.seq.n == 1) {
        cr_assert(zv_get_u64be(payload->u.seq.items[0], &oid), "%s", where);
        cr_assert_eq(proto_exc_poskey(e, arena, oid), 0, "%s", where);
    } else if (!strcmp(cls, PROTO_EXC_POSKEY) && payload->u.seq.n == 3) {
        const char *msg = cstr(payload->u.seq.items[0]);
        cr_assert(!strncmp(msg, no_blob, sizeof no_blob - 1), "%s", where);
        cr_assert(zv_get_u64be(payload->u.seq.items[1], &oid), "%s", where);
        cr_assert(zv_get_u64be(payload->u.seq.items[2], &serial), "%s", where);
        cr_assert_eq(proto_exc_no_blob(e, arena, msg + sizeof no_blob - 1, oid, serial), 0);
    } else if (!strcmp(cls, PROTO_EXC_READONLY)) {
        zerr ro = {.code = ZE_READONLY, .msg = "read-only storage"};
        cr_assert_eq(proto_exc_from_err(e, arena, &ro), 0, "%s", where);
    } else {
        return 0;
    }
    return 1;
}

/* got (a frame) holds exactly the recorded frame's payload. */
static void same_frame(const wf_frame *fr, const char *where)
{
    cr_assert_eq(got.len, fr->len + 4, "%s", where);
    cr_assert_arr_eq(got.data + 4, fr->payload, fr->len, "%s: bytes differ", where);
}

/* What a check counted: frames rebuilt, conflicts and missing blobs among them. */
typedef struct counts {
    size_t frames, conflicts, blobs;
} counts;

typedef void (*frame_check)(proto_enc enc, const wf_frame *fr, const proto_msg *m,
                            const char *where, counts *n);

/* Decode every recorded frame of one kind ("error", "reply") in the
 * fixtures of an encoding and hand it to check. */
static counts each_recorded(const char *enc_name, proto_enc enc, const char *kind,
                            frame_check check)
{
    counts n = {0, 0, 0};
    size_t nfiles;
    char **paths = wf_list(enc_name, &nfiles);
    cr_assert_not_null(paths);
    for (size_t i = 0; i < nfiles; i++) {
        wf_file f;
        cr_assert_eq(wf_load(paths[i], &f), 0);
        for (size_t j = 0; j < f.n; j++) {
            const wf_frame *fr = &f.frames[j];
            char where[512];
            proto_msg m;
            if (strcmp(fr->kind, kind) != 0)
                continue;
            snprintf(where, sizeof where, "%s:%zu", paths[i], fr->line);
            cr_assert_eq(proto_decode(enc, fr->payload, fr->len, arena, &m, NULL), 0, "%s", where);
            check(enc, fr, &m, where, &n);
        }
        wf_free(&f);
    }
    wf_list_free(paths, nfiles);
    return n;
}

static void check_error(proto_enc enc, const wf_frame *fr, const proto_msg *m, const char *where,
                        counts *n)
{
    proto_exc e;
    if (!rebuild_error(m, &e, where))
        return;
    zbuf_reset(&got);
    cr_assert_eq(proto_encode_error(enc, &got, m->msgid, &e, NULL), 0, "%s", where);
    same_frame(fr, where);
    n->frames++;
    n->conflicts += strstr(where, "conflict") != NULL;
    n->blobs += strstr(where, "blobs_server") != NULL;
}

/* Every error the reference server sent in the recordings is reproduced
 * byte for byte by the builder of its class. */
static void recorded_errors(const char *enc_name, proto_enc enc)
{
    counts n = each_recorded(enc_name, enc, "error", check_error);
    cr_assert_gt(n.frames, 10);
    cr_assert_gt(n.conflicts, 0);
    cr_assert_gt(n.blobs, 0);
}

Test(proto_errors, recorded_errors_z5) { recorded_errors("z5", PROTO_PICKLE); }
Test(proto_errors, recorded_errors_m5) { recorded_errors("m5", PROTO_MSGPACK); }

/* A client-conflict-resolution vote reply: each conflict dict read back and
 * built again gives the recorded bytes. */
static void check_vote_reply(proto_enc enc, const wf_frame *fr, const proto_msg *m,
                             const char *where, counts *n)
{
    const zv *l = m->args;
    if (!zv_is_seq(l) || !l->u.seq.n || l->u.seq.items[0]->type != ZV_DICT ||
        !zv_dict_get(l->u.seq.items[0], "data"))
        return;
    zv *rebuilt = zv_list(arena, l->u.seq.n);
    for (size_t k = 0; k < l->u.seq.n; k++) {
        proto_conflict c;
        cr_assert_eq(proto_conflict_parse(l->u.seq.items[k], &c), 1, "%s", where);
        cr_assert_eq(proto_conflict_item(&rebuilt->u.seq.items[k], arena, &c), 0);
        n->conflicts++;
    }
    zbuf_reset(&got);
    cr_assert_eq(proto_encode_reply(enc, &got, m->msgid, rebuilt, NULL), 0);
    same_frame(fr, where);
    n->frames++;
}

static void recorded_vote_conflicts(const char *enc_name, proto_enc enc)
{
    counts n = each_recorded(enc_name, enc, "reply", check_vote_reply);
    cr_assert_gt(n.conflicts, 0);
}

Test(proto_errors, recorded_vote_conflicts_z5) { recorded_vote_conflicts("z5", PROTO_PICKLE); }
Test(proto_errors, recorded_vote_conflicts_m5) { recorded_vote_conflicts("m5", PROTO_MSGPACK); }

/* Encode e, decode it back; return its payload and class. */
static const zv *round_trip(proto_enc enc, const proto_exc *e, const char **cls)
{
    proto_msg m;
    zbuf_reset(&got);
    cr_assert_eq(proto_encode_error(enc, &got, zv_int(arena, 7), e, NULL), 0);
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
    for (size_t k = 0; k < 2; k++) {
        const char *cls;
        const zv *p;
        proto_exc e;

        cr_assert_eq(proto_exc_msg(&e, arena, PROTO_EXC_VALUE, "unknown storage: nosuch"), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "builtins.ValueError");
        cr_assert_eq(p->type, ZV_TUPLE);
        cr_assert_eq(p->u.seq.n, 1);
        cr_assert_str_eq(cstr(p->u.seq.items[0]), "unknown storage: nosuch");

        cr_assert_eq(proto_exc_txn_mismatch(&e, arena, NULL, zv_int(arena, 123)), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.StorageTransactionError");
        cr_assert_eq(p->u.seq.n, 2);
        cr_assert_eq(p->u.seq.items[0]->type, ZV_NONE);
        cr_assert_eq(p->u.seq.items[1]->u.i, 123);

        cr_assert_eq(proto_exc_txn_mismatch(&e, arena, zv_int(arena, 5), zv_int(arena, 6)), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_eq(p->u.seq.items[0]->u.i, 5);
        cr_assert_eq(p->u.seq.items[1]->u.i, 6);

        cr_assert_eq(proto_exc_key(&e, arena, zv_int(arena, 42)), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "builtins.KeyError");
        cr_assert(p->u.seq.n == 1 && p->u.seq.items[0]->u.i == 42);
    }
}

Test(proto_errors, conflicts)
{
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    for (size_t k = 0; k < 2; k++) {
        const char *cls;
        const zv *p;
        proto_exc e;
        uint64_t u;

        proto_conflict c = {.oid = 1, .current = 3, .sent = 2};
        cr_assert_eq(proto_exc_conflict(&e, arena, &c), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.ConflictError");
        cr_assert_eq(p->u.seq.n, 4);
        cr_assert_str_eq(cstr(p->u.seq.items[0]), "message", "the reference's key order");
        cr_assert_str_eq(cstr(p->u.seq.items[2]), "oid");
        cr_assert_str_eq(cstr(p->u.seq.items[4]), "class_name");
        cr_assert_str_eq(cstr(p->u.seq.items[6]), "serials");
        cr_assert_str_eq(cstr(zv_dict_get(p, "message")), "database conflict error");
        cr_assert_eq(zv_dict_get(p, "class_name")->type, ZV_NONE);
        cr_assert(zv_get_u64be(zv_dict_get(p, "oid"), &u) && u == 1);

        proto_conflict r = {.read = 1, .no_oid = 1, .message = "stale"};
        cr_assert_eq(proto_exc_conflict(&e, arena, &r), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.ReadConflictError");
        cr_assert_str_eq(cstr(zv_dict_get(p, "message")), "stale");
        cr_assert_eq(zv_dict_get(p, "oid")->type, ZV_NONE);
        cr_assert_eq(zv_dict_get(p, "serials")->type, ZV_NONE);

        proto_conflict w = {.oid = 9, .current = 8, .sent = 7,
                            .data = {(const uint8_t *)"rec", 3}};
        zv *item;
        cr_assert_eq(proto_conflict_item(&item, arena, &w), 0);
        proto_conflict back;
        cr_assert_eq(proto_conflict_parse(item, &back), 1);
        cr_assert(back.oid == 9 && back.current == 8 && back.sent == 7);
        cr_assert(back.data.len == 3 && !memcmp(back.data.p, "rec", 3));
        cr_assert_eq(proto_conflict_parse(zv_int(arena, 1), &back), 0, "not a dict");
    }
}

/* FileStorage's MultipleUndoErrors, and the plain UndoError's attributes. */
Test(proto_errors, undo_errors)
{
    static const proto_enc encs[] = {PROTO_PICKLE, PROTO_MSGPACK};
    static const proto_undo_error errs[2] = {
        {1, "Some data were modified by a later transaction"},
        {2, "_loadBack() failed"},
    };
    for (size_t k = 0; k < 2; k++) {
        const char *cls;
        const zv *p;
        proto_exc e;
        uint64_t u;

        cr_assert_eq(proto_exc_undo(&e, arena, "cannot undo", errs, 2), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.MultipleUndoErrors");
        cr_assert_eq(p->u.seq.n, 1);
        const zv *l = zv_dict_get(p, "_errs");
        cr_assert(zv_is_seq(l) && l->u.seq.n == 2);
        for (size_t i = 0; i < 2; i++) {
            const zv *pair = l->u.seq.items[i];
            cr_assert(zv_is_seq(pair) && pair->u.seq.n == 2);
            cr_assert(zv_get_u64be(pair->u.seq.items[0], &u) && u == errs[i].oid);
            cr_assert_str_eq(cstr(pair->u.seq.items[1]), errs[i].reason);
        }

        zerr err = {.code = ZE_UNDO, .msg = "no transaction 0102 to undo"};
        cr_assert_eq(proto_exc_from_err(&e, arena, &err), 0);
        p = round_trip(encs[k], &e, &cls);
        cr_assert_str_eq(cls, "ZODB.POSException.UndoError");
        cr_assert_eq(p->type, ZV_DICT);
        cr_assert_str_eq(cstr(p->u.seq.items[0]), "_reason");
        cr_assert_str_eq(cstr(p->u.seq.items[1]), "no transaction 0102 to undo");
        cr_assert_str_eq(cstr(p->u.seq.items[2]), "_oid");
        cr_assert_eq(p->u.seq.items[3]->type, ZV_NONE);
    }
}

/* Each code's class, and back: what the server sends is what the client
 * reads, for every code proto names. */
Test(proto_errors, classes_and_codes)
{
    static const struct {
        int code;
        const char *cls;
    } table[] = {
        {ZE_NOTFOUND, "ZODB.POSException.POSKeyError"},
        {ZE_CONFLICT, "ZODB.POSException.ConflictError"},
        {ZE_READCONFLICT, "ZODB.POSException.ReadConflictError"},
        {ZE_UNDO, "ZODB.POSException.UndoError"},
        {ZE_READONLY, "ZODB.POSException.ReadOnlyError"},
        {ZE_TXN, "ZODB.POSException.StorageTransactionError"},
        {ZE_TYPE, "builtins.TypeError"},
        {ZE_INVAL, "builtins.ValueError"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        cr_assert_str_eq(proto_exc_class(table[i].code), table[i].cls);
        cr_assert_eq(proto_exc_code(table[i].cls), table[i].code, "%s", table[i].cls);
    }
    cr_assert_str_eq(proto_exc_class(ZE_TOOBIG), PROTO_EXC_VALUE);
    cr_assert_str_eq(proto_exc_class(ZE_IO), PROTO_EXC_STORAGE);
    cr_assert_str_eq(proto_exc_class(ZE_FULL), PROTO_EXC_STORAGE);
    cr_assert_eq(proto_exc_code(PROTO_EXC_BTREES_CONFLICT), ZE_CONFLICT);
    cr_assert_eq(proto_exc_code(PROTO_EXC_MULTIPLE_UNDO), ZE_UNDO);
    cr_assert_eq(proto_exc_code(PROTO_EXC_STORAGE), ZE_INVAL);
    cr_assert_eq(proto_exc_code("some.Other"), ZE_INVAL);

    /* from_err: the message as args, but ReadOnlyError() has none */
    const char *cls;
    proto_exc e;
    zerr err = {.code = ZE_TYPE, .msg = "argument 1 must be int, not str of length 1"};
    cr_assert_eq(proto_exc_from_err(&e, arena, &err), 0);
    const zv *p = round_trip(PROTO_PICKLE, &e, &cls);
    cr_assert_str_eq(cls, "builtins.TypeError");
    cr_assert(p->u.seq.n == 1 && !strcmp(cstr(p->u.seq.items[0]), err.msg));
    err.code = ZE_READONLY;
    cr_assert_eq(proto_exc_from_err(&e, arena, &err), 0);
    p = round_trip(PROTO_MSGPACK, &e, &cls);
    cr_assert_str_eq(cls, "ZODB.POSException.ReadOnlyError");
    cr_assert(p->type == ZV_TUPLE && p->u.seq.n == 0);
}

/* ---- typed arguments ---------------------------------------------------- */

static zv *sample_args(void)
{
    zv *t = zv_tuple(arena, 11);
    zv **it = t->u.seq.items;
    it[0] = zv_oid(arena, 0x0102030405060708ull);
    it[1] = zv_bytes(arena, "abc", 3);
    it[2] = zv_none(arena);
    it[3] = zv_cstr(arena, " ");
    it[4] = zv_int(arena, -5);
    it[5] = zv_float(arena, 1.5);
    it[6] = zv_dict(arena, 0);
    it[7] = zv_bool(arena, 1);
    it[8] = zv_str(arena, "\0\0\0\0\0\0\0\x02", 8);
    it[9] = zv_cstr(arena, "\xc3\xa9t\xc3\xa9t\xc3\xa9");   /* 8 bytes, not ASCII */
    it[10] = zv_list(arena, 0);
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
    const zv *v;

    cr_assert_eq(proto_args_count(args, 11, 11, NULL), 0);
    cr_assert_eq(proto_args_count(args, 1, 7, NULL), ZE_TYPE);
    cr_assert_eq(proto_arg_oid(args, 0, &u, NULL), 0);
    cr_assert_eq(u, 0x0102030405060708ull);
    cr_assert_eq(proto_arg_tid(args, 0, &u, NULL), 0);
    cr_assert_eq(proto_arg_bytes(args, 1, &s, NULL), 0);
    cr_assert(s.len == 3 && !memcmp(s.p, "abc", 3));
    cr_assert_eq(proto_arg_optional_tid(args, 2, &u, &present, NULL), 0);
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_optional_tid(args, 0, &u, &present, NULL), 0);
    cr_assert_eq(present, 1);
    cr_assert_eq(proto_arg_optional_tid(args, 11, &u, &present, NULL), 0, "a defaulted tid");
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_optional_bytes(args, 2, &s, &present, NULL), 0);
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_optional_bytes(args, 1, &s, &present, NULL), 0);
    cr_assert(present && s.len == 3);
    cr_assert_eq(proto_arg_optional_bytes(args, 11, &s, &present, NULL), 0);
    cr_assert_eq(present, 0);
    cr_assert_eq(proto_arg_str(args, 3, &s, NULL), 0);
    cr_assert(s.len == 1 && s.p[0] == ' ');
    cr_assert_eq(proto_arg_int(args, 4, &i, NULL), 0);
    cr_assert_eq(i, -5);
    cr_assert_eq(proto_arg_int(args, 7, &i, NULL), 0, "bool is an int, as in Python");
    i = 42;
    cr_assert_eq(proto_arg_optional_int(args, 2, &i, NULL), 0, "None keeps the default");
    cr_assert_eq(proto_arg_optional_int(args, 11, &i, NULL), 0, "so does a missing one");
    cr_assert_eq(i, 42);
    cr_assert_eq(proto_arg_optional_int(args, 4, &i, NULL), 0);
    cr_assert_eq(i, -5);
    cr_assert_eq(proto_arg_optional_int(args, 5, &i, NULL), ZE_TYPE, "a float");
    cr_assert_eq(proto_arg_float(args, 5, &d, NULL), 0);
    cr_assert_eq(d, 1.5);
    cr_assert_eq(proto_arg_float(args, 4, &d, NULL), 0);
    cr_assert_eq(d, -5.0);
    cr_assert_eq(proto_arg_dict(args, 6, &v, NULL), 0);
    cr_assert_eq(v, args->u.seq.items[6]);
    cr_assert_eq(proto_arg_seq(args, 10, &v, NULL), 0, "a list");
    cr_assert_eq(proto_arg_seq(args, 0, &v, NULL), ZE_TYPE);
    cr_assert_eq(proto_arg(args, 11), NULL);
}

/* The forms ZEO's server takes beyond the plain ones. */
Test(proto_errors, serial_and_text_forms)
{
    zv *args = sample_args();
    uint64_t u = 1;
    zslice s;
    zerr err;

    cr_assert_eq(proto_arg_serial(args, 0, &u, NULL), 0, "8 bytes");
    cr_assert_eq(u, 0x0102030405060708ull);
    cr_assert_eq(proto_arg_serial(args, 2, &u, NULL), 0, "None is z64");
    cr_assert_eq(u, 0);
    cr_assert_eq(proto_arg_serial(args, 8, &u, NULL), 0, "an 8-character ASCII str");
    cr_assert_eq(u, 2);
    cr_assert_eq(proto_arg_serial(args, 9, &u, &err), ZE_TYPE, "8 bytes of UTF-8, not ASCII");
    cr_assert_str_eq(err.msg, "argument 10 must be 8 bytes (a serial), not str of length 8");
    cr_assert_eq(proto_arg_serial(args, 3, &u, &err), ZE_TYPE, "a short str");
    cr_assert_eq(proto_arg_serial(args, 1, &u, &err), ZE_TYPE, "3 bytes");
    cr_assert_eq(proto_arg_serial(args, 4, &u, &err), ZE_TYPE);

    uint64_t oid = 1;
    cr_assert_eq(proto_args_oid_serial(args, &oid, &u, NULL), ZE_TYPE, "3 bytes are no serial");
    zv *pair = zv_tuple2(arena, zv_oid(arena, 7), zv_none(arena));
    cr_assert_eq(proto_args_oid_serial(pair, &oid, &u, NULL), 0);
    cr_assert(oid == 7 && u == 0);
    pair = zv_tuple2(arena, zv_none(arena), zv_oid(arena, 7));
    cr_assert_eq(proto_args_oid_serial(pair, &oid, &u, &err), ZE_TYPE, "None is no oid");
    cr_assert_str_eq(err.msg, "argument 1 must be 8 bytes (an oid), not None");
    zslice data;
    zv *store = zv_tuple(arena, 3);
    store->u.seq.items[0] = zv_oid(arena, 9);
    store->u.seq.items[1] = zv_oid(arena, 8);
    store->u.seq.items[2] = zv_bytes(arena, "rec", 3);
    cr_assert_eq(proto_args_store(store, &oid, &u, &data, NULL), 0);
    cr_assert(oid == 9 && u == 8 && data.len == 3 && !memcmp(data.p, "rec", 3));
    store->u.seq.items[2] = zv_cstr(arena, "rec");
    cr_assert_eq(proto_args_store(store, &oid, &u, &data, &err), ZE_TYPE, "a str record");
    cr_assert_str_eq(err.msg, "argument 3 must be bytes, not str of length 3");

    cr_assert_eq(proto_arg_text(args, 1, &s, NULL), 0, "bytes");
    cr_assert(s.len == 3 && !memcmp(s.p, "abc", 3));
    cr_assert_eq(proto_arg_text(args, 9, &s, NULL), 0, "a str, as its UTF-8 bytes");
    cr_assert(s.len == 8 && !memcmp(s.p, "\xc3\xa9t\xc3\xa9t\xc3\xa9", 8));
    cr_assert_eq(proto_arg_text(args, 2, &s, &err), ZE_TYPE, "None is no text");
    cr_assert_str_eq(err.msg, "argument 3 must be bytes, not None");
}

Test(proto_errors, wrong_arguments_say_why)
{
    zv *args = sample_args();
    uint64_t u;
    int64_t i;
    int present;
    zslice s;
    zerr err;

    cr_assert_eq(proto_arg_oid(args, 1, &u, &err), ZE_TYPE, "3 bytes are no oid");
    cr_assert_str_eq(err.msg, "argument 2 must be 8 bytes (an oid), not bytes of length 3");
    cr_assert_eq(proto_arg_oid(args, 3, &u, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "argument 4 must be 8 bytes (an oid), not str of length 1");
    cr_assert_eq(proto_arg_tid(args, 4, &u, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "argument 5 must be 8 bytes (a tid), not int");
    cr_assert_eq(proto_arg_oid(args, 11, &u, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "argument 12 is missing");
    cr_assert_eq(proto_arg_optional_tid(args, 1, &u, &present, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "argument 2 must be None or 8 bytes (a tid), not bytes of length 3");
    cr_assert_eq(proto_arg_bytes(args, 3, &s, &err), ZE_TYPE, "str is not bytes");
    cr_assert_eq(proto_arg_str(args, 1, &s, &err), ZE_TYPE, "bytes is not str");
    cr_assert_eq(proto_arg_optional_bytes(args, 3, &s, &present, &err), ZE_TYPE);
    cr_assert_eq(proto_arg_int(args, 5, &i, &err), ZE_TYPE, "float is not int");
    cr_assert_str_eq(err.msg, "argument 6 must be int, not float");
    cr_assert_eq(proto_arg_dict(args, 2, NULL, &err), ZE_TYPE);
    cr_assert_eq(proto_args_count(args, 2, 3, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "takes 2 to 3 arguments, got 11");
    cr_assert_eq(proto_args_count(args, 1, 1, &err), ZE_TYPE);
    cr_assert_str_eq(err.msg, "takes 1 argument, got 11");
    cr_assert_eq(proto_args_count(zv_none(arena), 0, 0, &err), ZE_TYPE);
}
