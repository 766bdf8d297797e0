/* resolve.c: one conflict, from three records to the resolved record.
 *
 * The steps of ZODB's tryToResolveConflict: read the class from the new
 * record, load the three states with one persistent-reference table (new
 * first, then old, then committed), call the class's rule, and pickle the
 * class metadata and the result with one pickler, protocol 3.
 */
#include "resolve/resolve.h"
#include "resolve/resolve_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pickle/pickle.h"
#include "pickle/record.h"

/* Comparison work allowed per byte of the records. A merge compares each
 * key a few times (at most twice per step it is current, once for the
 * order check), each time costing at most its size, so honest states stay
 * far below this. */
#define RESOLVE_WORK_PER_BYTE 64

resolve_status rs__fail(rs_ctx *c, resolve_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->info->msg, sizeof c->info->msg, fmt, ap);
    va_end(ap);
    return status;
}

resolve_status rs__refuse(rs_ctx *c, int btrees_reason)
{
    c->info->btrees_reason = btrees_reason;
    return rs__fail(c, RESOLVE_CONFLICT, "BTrees refuses: conflict reason %d", btrees_reason);
}

const char *resolve_status_name(resolve_status s)
{
    static const char *const names[] = {
        [RESOLVE_OK] = "RESOLVE_OK",
        [RESOLVE_CONFLICT] = "RESOLVE_CONFLICT",
        [RESOLVE_UNORDERABLE] = "RESOLVE_UNORDERABLE",
        [RESOLVE_BADVALUE] = "RESOLVE_BADVALUE",
        [RESOLVE_CLASS] = "RESOLVE_CLASS",
        [RESOLVE_MALFORMED] = "RESOLVE_MALFORMED",
        [RESOLVE_UNSUPPORTED] = "RESOLVE_UNSUPPORTED",
        [RESOLVE_TOOBIG] = "RESOLVE_TOOBIG",
        [RESOLVE_NOMEM] = "RESOLVE_NOMEM",
    };
    if ((unsigned)s < sizeof names / sizeof names[0] && names[s])
        return names[s];
    return "RESOLVE_?";
}

/* Decode one record; *meta and *state in c's arena. */
static resolve_status read_record(rs_ctx *c, const char *which, const uint8_t *rec, size_t len,
                                  zv **meta, zv **state)
{
    zerr err;
    if (len > RESOLVE_MAX_RECORD)
        return rs__fail(c, RESOLVE_TOOBIG, "%s record of %zu bytes", which, len);
    int rc = record_decode(c->arena, rec, len, PICKLE_PY2_ASCII, meta, state, &err);
    if (rc == ZE_NOMEM)
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    if (rc)
        return rs__fail(c, rc == ZE_TOOBIG ? RESOLVE_TOOBIG : RESOLVE_MALFORMED, "%s record: %s",
                        which, err.msg);
    return RESOLVE_OK;
}

/* The class of the new record (its global made canonical first, so that it
 * is the pickler's memo entry 0, as the class is in ZODB's output). */
static resolve_status read_class(rs_ctx *c, zv *meta)
{
    c->cls = rs__class_of_meta(meta);
    if (!c->cls)
        return rs__fail(c, RESOLVE_CLASS, "not a class resolved here");
    snprintf(c->info->klass, sizeof c->info->klass, "%s.%s", c->cls->module, c->cls->name);
    zv **g = meta->type == ZV_TUPLE ? &meta->u.seq.items[0] : NULL;
    zv *canon;
    resolve_status s = rs__global(c, g ? *g : meta, &canon);
    if (g)
        *g = canon;
    c->cls_global = canon;
    return s;
}

static resolve_status resolve_length(rs_ctx *c, zv *states[3], zv **out)
{
    for (int i = 0; i < 3; i++)
        if (!rs__is_int(states[i]))
            return rs__fail(c, RESOLVE_UNSUPPORTED, "Length state is not an int");
    /* Length._p_resolveConflict(old, s1, s2): s1 + s2 - old */
    return rs__int_add_sub(c, states[1], states[2], states[0], out);
}

static resolve_status encode(rs_ctx *c, zv *meta, zv *state, zbuf *out)
{
    zerr err;
    int rc = record_encode(meta, state, out, &err);
    if (!rc)
        return RESOLVE_OK;
    if (rc == ZE_NOMEM)
        return rs__fail(c, RESOLVE_NOMEM, "out of memory");
    return rs__fail(c, rc == ZE_TOOBIG ? RESOLVE_TOOBIG : RESOLVE_UNSUPPORTED, "%s", err.msg);
}

static resolve_status resolve_in(rs_ctx *c, const uint8_t *recs[3], const size_t lens[3],
                                 zbuf *out)
{
    static const char *const which[3] = {"old", "committed", "new"};
    zv *meta[3], *states[3], *result;
    resolve_status s;
    /* ZODB reads the class and the state of new first, then old, then
     * committed; the first spelling of each reference is the one kept. */
    static const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        int i = order[k];
        if ((s = read_record(c, which[i], recs[i], lens[i], &meta[i], &states[i])))
            return s;
        if (i == 2 && (s = read_class(c, meta[i])))
            return s;
        if (i != 2 && rs__class_of_meta(meta[i]) != c->cls)
            return rs__fail(c, RESOLVE_CLASS, "%s record of another class", which[i]);
        if ((s = rs__canon(c, states[i])))
            return s;
    }
    if (c->cls->shape == RS_LENGTH)
        s = resolve_length(c, states, &result);
    else
        s = rs__merge_states(c, states, &result);
    return s ? s : encode(c, meta[2], result, out);
}

resolve_status resolve_records(const uint8_t *old_rec, size_t old_len, const uint8_t *committed,
                               size_t committed_len, const uint8_t *new_rec, size_t new_len,
                               zbuf *out, resolve_info *info)
{
    resolve_info scratch;
    rs_ctx c = {.info = info ? info : &scratch};
    c.info->btrees_reason = -1;
    c.info->klass[0] = 0;
    c.info->msg[0] = 0;
    const uint8_t *recs[3] = {old_rec, committed, new_rec};
    const size_t lens[3] = {old_len, committed_len, new_len};
    c.work = RESOLVE_WORK_PER_BYTE * ((uint64_t)old_len + committed_len + new_len) + (1u << 20);
    c.arena = zv_arena_new();
    c.refs = rs__refs_new();
    resolve_status s = c.arena && c.refs ? resolve_in(&c, recs, lens, out)
                                         : rs__fail(&c, RESOLVE_NOMEM, "out of memory");
    rs__refs_free(c.refs);
    zv_arena_free(c.arena);
    return s;
}

int resolve_class_known(const uint8_t *rec, size_t len)
{
    zv_arena *a = len <= RESOLVE_MAX_RECORD ? zv_arena_new() : NULL;
    zv *meta;
    size_t used;
    int known = a && !pickle_decode(rec, len, PICKLE_ALLOW_OBJECTS, a, &meta, &used, NULL) &&
                rs__class_of_meta(meta);
    zv_arena_free(a);
    return known;
}
