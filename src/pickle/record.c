/* record.c: persistent references and class names of ZODB object records.
 *
 * References are found as ZODB's referencesf finds them: every BINPERSID
 * (or PERSID) executed while reading the class pickle and then the state
 * pickle, in stream order, with one memo for both pickles. The persistent
 * id is classified by its shape (spec filestorage-format.md section 11).
 */
#include "pickle/record.h"
#include "pickle/pickle.h"
#include "pickle/pickle_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct scan {
    record_ref_cb cb;
    void *ud;
    pickle_vm *vm;
} scan;

static int str_like(const zv *v)
{
    return v->type == ZV_BYTES || v->type == ZV_STR;
}

/* An oid is 8 bytes: bytes (Python 3), a Python 2 str (decoded as bytes) or
 * an ASCII str (what ZODB would encode back to bytes). */
static int get_oid(const zv *v, uint64_t *oid)
{
    if (!str_like(v) || v->u.s.len != 8)
        return 0;
    if (v->type == ZV_STR)
        for (size_t i = 0; i < 8; i++)
            if (v->u.s.p[i] >= 0x80)
                return 0;
    *oid = zbe64(v->u.s.p);
    return 1;
}

static int is_tag(const zv *v, char c)
{
    return str_like(v) && v->u.s.len == 1 && v->u.s.p[0] == c;
}

/* Decoded strings are NUL-terminated; one with an inner NUL is no name. */
static int get_db(const zv *v, const char **db)
{
    if (!str_like(v) || v->u.s.len == 0 || memchr(v->u.s.p, 0, v->u.s.len))
        return 0;
    *db = (const char *)v->u.s.p;
    return 1;
}

/* ['w', (oid,)], ['w', (oid, db)], ['m', (db, oid, class)], ['n', (db, oid)]. */
static int classify_list(const zv *tag, const zv *args, record_ref *r)
{
    if (!zv_is_seq(args))
        return 0;
    zv *const *a = args->u.seq.items;
    size_t n = args->u.seq.n;
    if (is_tag(tag, 'w')) {
        r->weak = 1;
        return (n == 1 || (n == 2 && get_db(a[1], &r->database))) && get_oid(a[0], &r->oid);
    }
    if (is_tag(tag, 'm'))
        return n == 3 && get_db(a[0], &r->database) && get_oid(a[1], &r->oid);
    if (is_tag(tag, 'n'))
        return n == 2 && get_db(a[0], &r->database) && get_oid(a[1], &r->oid);
    return 0;
}

static int classify(const zv *pid, record_ref *r)
{
    memset(r, 0, sizeof *r);
    if (pid->type == ZV_TUPLE) /* (oid, class) or (oid, (module, name)) */
        return pid->u.seq.n >= 1 && get_oid(pid->u.seq.items[0], &r->oid);
    if (str_like(pid)) /* bare oid */
        return get_oid(pid, &r->oid);
    if (pid->type != ZV_LIST)
        return 0;
    if (pid->u.seq.n == 1) { /* legacy weak [oid] */
        r->weak = 1;
        return get_oid(pid->u.seq.items[0], &r->oid);
    }
    return pid->u.seq.n == 2 && classify_list(pid->u.seq.items[0], pid->u.seq.items[1], r);
}

static int on_persid(const zv *pid, void *ud)
{
    scan *s = ud;
    record_ref r;
    if (!classify(pid, &r)) {
        char *text = NULL;
        zv_repr_max(pid, 200, &text);
        zerr_set(s->vm->err, ZE_CORRUPT, "record: offset %zu: persistent id of unknown form %s",
                 s->vm->base + s->vm->op_pos, text ? text : "");
        free(text);
        return ZE_CORRUPT;
    }
    return s->cb(&r, s->ud);
}

int record_refs_in(zv_arena *a, const uint8_t *rec, size_t len, record_ref_cb cb, void *ud,
                   zerr *err)
{
    pickle_vm vm;
    scan s = {cb, ud, &vm};
    zv *v;
    size_t used1, used2;
    pickle__vm_init(&vm, a, PICKLE_ALLOW_OBJECTS, err);
    vm.on_persid = on_persid;
    vm.persid_ud = &s;
    int rc = pickle__vm_run(&vm, rec, len, 0, &v, &used1);
    if (!rc)
        rc = pickle__vm_run(&vm, rec + used1, len - used1, used1, &v, &used2);
    return rc;
}

int record_decode(zv_arena *a, const uint8_t *rec, size_t len, int flags, zv **meta,
                  zv **state, zerr *err)
{
    pickle_vm vm;
    zv *m, *st;
    size_t used1, used2;
    pickle__vm_init(&vm, a, flags | PICKLE_ALLOW_OBJECTS, err);
    int rc = pickle__vm_run(&vm, rec, len, 0, &m, &used1);
    if (!rc)
        rc = pickle__vm_run(&vm, rec + used1, len - used1, used1, &st, &used2);
    if (!rc) {
        *meta = m;
        *state = st;
    }
    return rc;
}

int record_refs(const uint8_t *rec, size_t len, record_ref_cb cb, void *ud, zerr *err)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return zerr_set(err, ZE_NOMEM, "record: out of memory");
    int rc = record_refs_in(a, rec, len, cb, ud, err);
    zv_arena_free(a);
    return rc;
}

/* The class of a class-metadata value: a global (form 1) or a (module,
 * name) pair of strings (ZODB's get_pickle_metadata forms 5 and 6). */
static int class_parts(const zv *c, const char **mod, size_t *mod_len, const char **name,
                       size_t *name_len)
{
    if (c->type == ZV_GLOBAL) {
        *mod = c->u.global.module;
        *mod_len = strlen(*mod);
        *name = c->u.global.name;
        *name_len = strlen(*name);
        return 1;
    }
    if (c->type != ZV_TUPLE || c->u.seq.n != 2 || !str_like(c->u.seq.items[0]) ||
        !str_like(c->u.seq.items[1]))
        return 0;
    *mod = (const char *)c->u.seq.items[0]->u.s.p;
    *mod_len = c->u.seq.items[0]->u.s.len;
    *name = (const char *)c->u.seq.items[1]->u.s.p;
    *name_len = c->u.seq.items[1]->u.s.len;
    return 1;
}

int record_encode(const zv *meta, const zv *state, zbuf *out, zerr *err)
{
    pickle_memo memo = PICKLE_MEMO_INIT;
    size_t start = out->len;
    int rc = pickle_encode_memo(meta, &memo, out, err);
    if (!rc)
        rc = pickle_encode_memo(state, &memo, out, err);
    pickle_memo_free(&memo);
    if (rc)
        out->len = start;
    return rc;
}

int record_class_name(const uint8_t *rec, size_t len, char *buf, size_t cap)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return ZE_NOMEM;
    pickle_vm vm;
    zv *meta;
    size_t used;
    const char *mod, *name;
    size_t mod_len, name_len;
    pickle__vm_init(&vm, a, PICKLE_ALLOW_OBJECTS, NULL);
    int rc = pickle__vm_run(&vm, rec, len, 0, &meta, &used);
    if (!rc && !class_parts(meta, &mod, &mod_len, &name, &name_len)) {
        /* (class, args), ((module, name), args): the class comes first. */
        if (meta->type != ZV_TUPLE || meta->u.seq.n < 1 ||
            !class_parts(meta->u.seq.items[0], &mod, &mod_len, &name, &name_len))
            rc = ZE_NOTFOUND;
    }
    if (!rc && (cap < 2 || mod_len > cap - 2 || name_len > cap - 2 - mod_len))
        rc = ZE_TOOBIG;
    if (!rc) {
        memcpy(buf, mod, mod_len);
        buf[mod_len] = '.';
        memcpy(buf + mod_len + 1, name, name_len);
        buf[mod_len + 1 + name_len] = 0;
    }
    zv_arena_free(a);
    return rc;
}
