/* decode.c: the unpickling machine. It runs the opcodes of protocols 0-5
 * that ZEO and ZODB write, building zv values in an arena; it never looks
 * up or calls anything (object opcodes become plain nodes, and in messages
 * builtins.dict applied by REDUCE becomes the dict it would build).
 *
 * Three invariants keep hostile input harmless:
 * - every compound value carries its height, and no value grows taller
 *   than PICKLE_MAX_DEPTH, so consumers may recurse over a tree;
 * - every compound value carries its size as a tree (shared parts counted
 *   each time they are reached): in records its nodes, bounded by the input
 *   size times PICKLE_MAX_EXPANSION, in messages the bytes a copy of it
 *   takes, bounded by the caller's max_bytes (pickle.h). DUP and memo GET
 *   cannot build a small DAG that walks, copies or encodes like a huge tree;
 * - a container reached twice (memo GET, DUP) is frozen: changing it later
 *   could only make a cycle, which no consumer could walk.
 */
#include "pickle/pickle.h"
#include "pickle/pickle_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2',
    OP_FLOAT = 'F', OP_INT = 'I', OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L',
    OP_BININT2 = 'M', OP_NONE = 'N', OP_PERSID = 'P', OP_BINPERSID = 'Q', OP_REDUCE = 'R',
    OP_STRING = 'S', OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U', OP_UNICODE = 'V',
    OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd',
    OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_GET = 'g', OP_BINGET = 'h', OP_INST = 'i',
    OP_LONG_BINGET = 'j', OP_LIST = 'l', OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p',
    OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't',
    OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINFLOAT = 'G', OP_BINBYTES = 'B',
    OP_SHORT_BINBYTES = 'C',
    OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82, OP_EXT2 = 0x83, OP_EXT4 = 0x84,
    OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_LONG4 = 0x8b, OP_SHORT_BINUNICODE = 0x8c,
    OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f, OP_ADDITEMS = 0x90,
    OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94,
    OP_FRAME = 0x95,
};

static const char *const op_names[256] = {
    [OP_MARK] = "MARK", [OP_STOP] = "STOP", [OP_POP] = "POP", [OP_POP_MARK] = "POP_MARK",
    [OP_DUP] = "DUP", [OP_FLOAT] = "FLOAT", [OP_INT] = "INT", [OP_BININT] = "BININT",
    [OP_BININT1] = "BININT1", [OP_LONG] = "LONG", [OP_BININT2] = "BININT2",
    [OP_NONE] = "NONE", [OP_PERSID] = "PERSID", [OP_BINPERSID] = "BINPERSID",
    [OP_REDUCE] = "REDUCE", [OP_STRING] = "STRING", [OP_BINSTRING] = "BINSTRING",
    [OP_SHORT_BINSTRING] = "SHORT_BINSTRING", [OP_UNICODE] = "UNICODE",
    [OP_BINUNICODE] = "BINUNICODE", [OP_APPEND] = "APPEND", [OP_BUILD] = "BUILD",
    [OP_GLOBAL] = "GLOBAL", [OP_DICT] = "DICT", [OP_EMPTY_DICT] = "EMPTY_DICT",
    [OP_APPENDS] = "APPENDS", [OP_GET] = "GET", [OP_BINGET] = "BINGET", [OP_INST] = "INST",
    [OP_LONG_BINGET] = "LONG_BINGET", [OP_LIST] = "LIST", [OP_EMPTY_LIST] = "EMPTY_LIST",
    [OP_OBJ] = "OBJ", [OP_PUT] = "PUT", [OP_BINPUT] = "BINPUT",
    [OP_LONG_BINPUT] = "LONG_BINPUT", [OP_SETITEM] = "SETITEM", [OP_TUPLE] = "TUPLE",
    [OP_EMPTY_TUPLE] = "EMPTY_TUPLE", [OP_SETITEMS] = "SETITEMS", [OP_BINFLOAT] = "BINFLOAT",
    [OP_BINBYTES] = "BINBYTES", [OP_SHORT_BINBYTES] = "SHORT_BINBYTES",
    [OP_PROTO] = "PROTO", [OP_NEWOBJ] = "NEWOBJ", [OP_EXT1] = "EXT1", [OP_EXT2] = "EXT2",
    [OP_EXT4] = "EXT4", [OP_TUPLE1] = "TUPLE1", [OP_TUPLE2] = "TUPLE2",
    [OP_TUPLE3] = "TUPLE3", [OP_NEWTRUE] = "NEWTRUE", [OP_NEWFALSE] = "NEWFALSE",
    [OP_LONG1] = "LONG1", [OP_LONG4] = "LONG4", [OP_SHORT_BINUNICODE] = "SHORT_BINUNICODE",
    [OP_BINUNICODE8] = "BINUNICODE8", [OP_BINBYTES8] = "BINBYTES8",
    [OP_EMPTY_SET] = "EMPTY_SET", [OP_ADDITEMS] = "ADDITEMS", [OP_FROZENSET] = "FROZENSET",
    [OP_NEWOBJ_EX] = "NEWOBJ_EX", [OP_STACK_GLOBAL] = "STACK_GLOBAL",
    [OP_MEMOIZE] = "MEMOIZE", [OP_FRAME] = "FRAME",
};

/* Header in front of every compound value the machine builds. */
typedef struct node {
    uint32_t height; /* 1 + the tallest child; scalars count 0 */
    uint8_t shared;  /* reached twice: never changed again */
    uint8_t items;   /* a ZV_BUILD standing for items added to an object */
    size_t cap;      /* item slots allocated (growing containers) */
    uint64_t size;   /* records: nodes of the tree it expands to (scalars
                        count 1); messages: its zv_copy_cost */
    zv v;
} node;

#define NODE(p) ((node *)((char *)(p) - offsetof(node, v)))

static int is_compound(zv_type t)
{
    switch (t) {
    case ZV_TUPLE:
    case ZV_LIST:
    case ZV_DICT:
    case ZV_SET:
    case ZV_FROZENSET:
    case ZV_CALL:
    case ZV_BUILD:
    case ZV_PERSID:
        return 1;
    default:
        return 0;
    }
}

static const char *type_name(zv_type t)
{
    static const char *const names[] = {
        [ZV_NONE] = "None", [ZV_BOOL] = "bool", [ZV_INT] = "int", [ZV_BIGINT] = "int",
        [ZV_FLOAT] = "float", [ZV_BYTES] = "bytes", [ZV_STR] = "str", [ZV_TUPLE] = "tuple",
        [ZV_LIST] = "list", [ZV_DICT] = "dict", [ZV_SET] = "set",
        [ZV_FROZENSET] = "frozenset", [ZV_GLOBAL] = "global", [ZV_CALL] = "object",
        [ZV_BUILD] = "object", [ZV_PERSID] = "persistent id",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static int fail(pickle_vm *vm, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(pickle_vm *vm, int code, const char *fmt, ...)
{
    if (!vm->err)
        return code;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = op_names[vm->op];
    if (name)
        return zerr_set(vm->err, code, "pickle: offset %zu, %s: %s", vm->base + vm->op_pos,
                        name, msg);
    return zerr_set(vm->err, code, "pickle: offset %zu, opcode 0x%02x: %s",
                    vm->base + vm->op_pos, vm->op, msg);
}

static int nomem(pickle_vm *vm)
{
    if (zv_arena_at_limit(vm->arena) && vm->max_bytes)
        return fail(vm, ZE_TOOBIG, "decoding takes more than %llu bytes",
                    (unsigned long long)vm->max_bytes);
    if (zv_arena_at_limit(vm->arena))
        return fail(vm, ZE_TOOBIG, "decoding reaches the arena's memory limit");
    return fail(vm, ZE_NOMEM, "out of memory");
}

static int is_message(const pickle_vm *vm)
{
    return !(vm->flags & PICKLE_ALLOW_OBJECTS);
}

void pickle__vm_init(pickle_vm *vm, zv_arena *a, int flags, zerr *err)
{
    memset(vm, 0, sizeof *vm);
    vm->arena = a;
    vm->flags = flags;
    vm->err = err;
}

/* ---- arrays, stack, marks, memo --------------------------------------- */

/* Grow an arena array of cap elements to hold need (and at most limit). */
static int grow(pickle_vm *vm, void **arr, size_t *cap, size_t elem, size_t need, size_t limit)
{
    size_t ncap = *cap ? *cap * 2 : 32;
    if (ncap < need)
        ncap = need;
    if (ncap > limit)
        ncap = limit;
    char *na = zv_alloc(vm->arena, ncap * elem);
    if (!na)
        return nomem(vm);
    if (*cap)
        memcpy(na, *arr, *cap * elem);
    memset(na + *cap * elem, 0, (ncap - *cap) * elem);
    *arr = na;
    *cap = ncap;
    return 0;
}

static int push(pickle_vm *vm, zv *v)
{
    if (!v)
        return nomem(vm);
    if (vm->sp == vm->stack_cap) {
        if (vm->sp >= PICKLE_MAX_STACK)
            return fail(vm, ZE_TOOBIG, "stack over %d entries", PICKLE_MAX_STACK);
        int rc = grow(vm, (void **)&vm->stack, &vm->stack_cap, sizeof(zv *), vm->sp + 1,
                      PICKLE_MAX_STACK);
        if (rc)
            return rc;
    }
    vm->stack[vm->sp++] = v;
    return 0;
}

/* Opcodes see only the items above the innermost MARK, as in Python. */
static size_t fence(const pickle_vm *vm)
{
    return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

static int need_items(pickle_vm *vm, size_t n)
{
    if (vm->sp - fence(vm) < n)
        return fail(vm, ZE_CORRUPT, "stack underflow (%zu item%s needed)", n, n == 1 ? "" : "s");
    return 0;
}

static zv *pop(pickle_vm *vm)
{
    return vm->stack[--vm->sp];
}

static int push_mark(pickle_vm *vm)
{
    if (vm->nmarks >= PICKLE_MAX_DEPTH)
        return fail(vm, ZE_TOOBIG, "more than %d open MARKs", PICKLE_MAX_DEPTH);
    if (vm->nmarks == vm->marks_cap) {
        int rc = grow(vm, (void **)&vm->marks, &vm->marks_cap, sizeof(size_t), vm->nmarks + 1,
                      PICKLE_MAX_DEPTH);
        if (rc)
            return rc;
    }
    vm->marks[vm->nmarks++] = vm->sp;
    return 0;
}

static int pop_mark(pickle_vm *vm, size_t *k)
{
    *k = 0;
    if (!vm->nmarks)
        return fail(vm, ZE_CORRUPT, "no MARK on the stack");
    *k = vm->marks[--vm->nmarks];
    return 0;
}

static void share(zv *v)
{
    if (is_compound(v->type))
        NODE(v)->shared = 1;
}

static int memo_put(pickle_vm *vm, size_t key)
{
    int rc = need_items(vm, 1);
    if (rc)
        return rc;
    /* Python numbers memo keys from 0, one per PUT, so a key beyond the
     * bytes read so far is hostile: refusing it bounds the memo array by
     * the input size. */
    size_t seen = vm->base + vm->pos;
    size_t limit = seen < PICKLE_MAX_MEMO ? seen : PICKLE_MAX_MEMO;
    if (key >= limit)
        return fail(vm, key >= PICKLE_MAX_MEMO ? ZE_TOOBIG : ZE_CORRUPT,
                    "memo key %zu out of range", key);
    if (key >= vm->memo_cap) {
        rc = grow(vm, (void **)&vm->memo, &vm->memo_cap, sizeof(zv *), key + 1, limit);
        if (rc)
            return rc;
    }
    if (!vm->memo[key])
        vm->memo_count++;
    vm->memo[key] = vm->stack[vm->sp - 1];
    return 0;
}

static int memo_get(pickle_vm *vm, size_t key)
{
    if (key >= vm->memo_cap || !vm->memo[key])
        return fail(vm, ZE_CORRUPT, "memo key %zu not found", key);
    zv *v = vm->memo[key];
    share(v);
    return push(vm, v);
}

/* ---- reading arguments ------------------------------------------------ */

static int need(pickle_vm *vm, size_t n)
{
    if (vm->len - vm->pos < n)
        return fail(vm, ZE_CORRUPT, "truncated: %zu bytes needed, %zu left", n,
                    vm->len - vm->pos);
    return 0;
}

static uint64_t read_le(pickle_vm *vm, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)vm->p[vm->pos + i] << (8 * i);
    vm->pos += n;
    return v;
}

/* A count of `width` bytes followed by that many bytes of payload. */
static int read_counted(pickle_vm *vm, size_t width, int is_signed, const uint8_t **s,
                        size_t *n)
{
    *s = NULL;
    *n = 0;
    int rc = need(vm, width);
    if (rc)
        return rc;
    uint64_t count = read_le(vm, width);
    if (is_signed && (count >> (8 * width - 1)))
        return fail(vm, ZE_CORRUPT, "negative length");
    if (count > vm->len - vm->pos)
        return fail(vm, ZE_CORRUPT, "length %llu exceeds the %zu bytes left",
                    (unsigned long long)count, vm->len - vm->pos);
    *s = vm->p + vm->pos;
    *n = (size_t)count;
    vm->pos += *n;
    return 0;
}

/* A newline-terminated argument (protocol 0); the newline is not included. */
static int read_line(pickle_vm *vm, const uint8_t **s, size_t *n)
{
    const uint8_t *start = vm->p + vm->pos;
    const uint8_t *nl = memchr(start, '\n', vm->len - vm->pos);
    *s = NULL;
    *n = 0;
    if (!nl)
        return fail(vm, ZE_CORRUPT, "truncated: no newline");
    *s = start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return 0;
}

static int read_key(pickle_vm *vm, size_t *key)
{
    *key = 0;
    const uint8_t *s;
    size_t n;
    int64_t v;
    uint8_t *big;
    size_t big_len;
    int rc = read_line(vm, &s, &n);
    if (rc)
        return rc;
    rc = pickle__parse_int(vm->arena, s, n, &v, &big, &big_len);
    if (rc || big_len || v < 0)
        return fail(vm, ZE_CORRUPT, "bad memo key");
    *key = (size_t)v;
    return 0;
}

/* ---- building values -------------------------------------------------- */

static zv *scalar(pickle_vm *vm, zv_type t)
{
    zv *v = zv_alloc(vm->arena, sizeof *v);
    if (v)
        *v = (zv){.type = t};
    return v;
}

static zv *new_int(pickle_vm *vm, int64_t i)
{
    zv *v = scalar(vm, ZV_INT);
    if (v)
        v->u.i = i;
    return v;
}

/* One allocation for the value and its bytes: strings are most of a
 * message. n is bounded by the input, so the sum cannot overflow. */
static zv *new_string(pickle_vm *vm, zv_type t, const uint8_t *p, size_t n)
{
    zv *v = zv_alloc(vm->arena, sizeof *v + n + 1);
    if (!v)
        return NULL;
    uint8_t *copy = (uint8_t *)(v + 1);
    if (n)
        memcpy(copy, p, n);
    copy[n] = 0; /* STR and BYTES double as C strings, as zvalue.c's do */
    *v = (zv){.type = t};
    v->u.s.p = copy;
    v->u.s.len = n;
    return v;
}

/* Integer from little-endian two's complement bytes: ZV_INT when it fits. */
static zv *new_le_int(pickle_vm *vm, const uint8_t *le, size_t n)
{
    int64_t i;
    if (pickle__le_to_i64(le, n, &i))
        return new_int(vm, i);
    return new_string(vm, ZV_BIGINT, le, pickle__le_minimal(le, n));
}

/* The size of a compound value without its items (see node.size). */
static uint64_t shell_size(const pickle_vm *vm)
{
    return is_message(vm) ? sizeof(zv) : 1;
}

static zv *compound(pickle_vm *vm, zv_type t, size_t slots)
{
    node *nd = zv_alloc(vm->arena, sizeof *nd);
    if (!nd)
        return NULL;
    memset(nd, 0, sizeof *nd);
    nd->size = shell_size(vm);
    nd->v.type = t;
    if (slots) {
        nd->v.u.seq.items = zv_alloc(vm->arena, slots * sizeof(zv *));
        if (!nd->v.u.seq.items)
            return NULL;
    }
    nd->cap = slots;
    return &nd->v;
}

static uint32_t height(const zv *v)
{
    return is_compound(v->type) ? NODE(v)->height : 0;
}

static uint64_t tree_size(const pickle_vm *vm, const zv *v)
{
    if (is_compound(v->type))
        return NODE(v)->size;
    return is_message(vm) ? zv_node_cost(v) : 1;
}

/* In a message the only global is builtins.dict (see pickle.h), and the
 * only use of it is REDUCE: it may never become, or be part of, a value. */
static int misplaced_dict(pickle_vm *vm)
{
    return fail(vm, ZE_CORRUPT, "builtins.dict may only be applied by REDUCE in a message");
}

/* v gains the children kids[0..n): its height and size cover them (in a
 * message, with the item slot each takes in a copy). */
static int adopt(pickle_vm *vm, zv *v, zv *const *kids, size_t n)
{
    node *nd = NODE(v);
    uint32_t h = 0;
    uint64_t size = nd->size;
    uint64_t slot = is_message(vm) ? sizeof(zv *) : 0;
    for (size_t i = 0; i < n; i++) {
        if (kids[i]->type == ZV_GLOBAL && is_message(vm))
            return misplaced_dict(vm);
        if (height(kids[i]) > h)
            h = height(kids[i]);
        size += slot + tree_size(vm, kids[i]);
        if (size > vm->max_size)
            return fail(vm, ZE_TOOBIG, "value expands to more than %llu %s",
                        (unsigned long long)vm->max_size, slot ? "bytes" : "nodes");
    }
    if (h + 1 > PICKLE_MAX_DEPTH)
        return fail(vm, ZE_TOOBIG, "values nested deeper than %d", PICKLE_MAX_DEPTH);
    if (h + 1 > nd->height)
        nd->height = h + 1;
    nd->size = size;
    return 0;
}

/* Recount a CALL or BUILD node whose child changed. */
static int recount_pair(pickle_vm *vm, zv *v)
{
    zv *kids[2] = {v->u.build.obj, v->u.build.state};
    if (v->type == ZV_CALL) {
        kids[0] = v->u.call.callable;
        kids[1] = v->u.call.args;
    }
    NODE(v)->height = 0;
    NODE(v)->size = shell_size(vm);
    return adopt(vm, v, kids, 2);
}

/* None, True, False and (), made once per machine: nothing can change
 * them, so every occurrence may be the same value. */
static zv *immutable(pickle_vm *vm, zv **slot, zv_type t, int b)
{
    if (*slot)
        return *slot;
    if (t == ZV_TUPLE) {
        zv *e = compound(vm, ZV_TUPLE, 0);
        if (e) {
            NODE(e)->height = 1;
            NODE(e)->shared = 1;
        }
        return *slot = e;
    }
    zv *v = scalar(vm, t);
    if (v)
        v->u.b = b;
    return *slot = v;
}

/* Replace stack[k..sp) by one container of type t holding them. */
static int make_seq(pickle_vm *vm, zv_type t, size_t k)
{
    size_t n = vm->sp - k;
    if (t == ZV_DICT && n % 2)
        return fail(vm, ZE_CORRUPT, "odd number of items for a dict");
    if (t == ZV_TUPLE && n == 0)
        return push(vm, immutable(vm, &vm->empty_tuple, ZV_TUPLE, 0));
    zv *v = compound(vm, t, n);
    if (!v)
        return nomem(vm);
    if (n)
        memcpy(v->u.seq.items, vm->stack + k, n * sizeof(zv *));
    v->u.seq.n = t == ZV_DICT ? n / 2 : n;
    /* v->u.seq.items, not vm->stack + k: the stack is NULL until the first push. */
    int rc = adopt(vm, v, v->u.seq.items, n);
    if (rc)
        return rc;
    vm->sp = k;
    return push(vm, v);
}

static int seq_from_mark(pickle_vm *vm, zv_type t)
{
    size_t k;
    int rc = pop_mark(vm, &k);
    return rc ? rc : make_seq(vm, t, k);
}

static int seq_from_top(pickle_vm *vm, zv_type t, size_t n)
{
    int rc = need_items(vm, n);
    return rc ? rc : make_seq(vm, t, vm->sp - n);
}

/* A two-child node (CALL, BUILD), counted. */
static zv *pair_node(pickle_vm *vm, zv_type t, zv *a, zv *b, int *rc)
{
    zv *v = compound(vm, t, 0);
    if (!v) {
        *rc = nomem(vm);
        return NULL;
    }
    if (t == ZV_CALL) {
        v->u.call.callable = a;
        v->u.call.args = b;
    } else {
        v->u.build.obj = a;
        v->u.build.state = b;
    }
    *rc = recount_pair(vm, v);
    return *rc ? NULL : v;
}

static int push_call(pickle_vm *vm, zv *callable, zv *args, int newobj)
{
    int rc;
    zv *v = pair_node(vm, ZV_CALL, callable, args, &rc);
    if (!v)
        return rc;
    v->u.call.newobj = newobj;
    return push(vm, v);
}

/* Append n more item slots' worth of values to container c. */
static int add_items(pickle_vm *vm, zv *c, zv *const *items, size_t n)
{
    node *nd = NODE(c);
    size_t used = c->type == ZV_DICT ? 2 * c->u.seq.n : c->u.seq.n;
    if (n > nd->cap - used) {
        size_t cap = 2 * nd->cap > used + n ? 2 * nd->cap : used + n;
        zv **arr = zv_alloc(vm->arena, cap * sizeof(zv *));
        if (!arr)
            return nomem(vm);
        if (used)
            memcpy(arr, c->u.seq.items, used * sizeof(zv *));
        c->u.seq.items = arr;
        nd->cap = cap;
    }
    if (n)
        memcpy(c->u.seq.items + used, items, n * sizeof(zv *));
    c->u.seq.n += c->type == ZV_DICT ? n / 2 : n;
    return adopt(vm, c, items, n);
}

/* The container that items for stack slot `slot` go into. Python adds
 * list/dict/set items to objects too (list and dict subclasses, OrderedDict
 * after REDUCE); such an object becomes BUILD(obj, container of the items). */
static int items_target(pickle_vm *vm, zv **slot, zv_type want, zv **out)
{
    zv *t = *slot;
    *out = NULL;
    if (t->type == want) {
        *out = t;
        return 0;
    }
    if (t->type == ZV_BUILD && NODE(t)->items && t->u.build.state->type == want) {
        *out = t->u.build.state;
        return 0;
    }
    if (t->type != ZV_CALL && t->type != ZV_BUILD)
        return fail(vm, ZE_CORRUPT, "cannot add items to a value of type %s",
                    type_name(t->type));
    zv *c = compound(vm, want, 0);
    if (!c)
        return nomem(vm);
    NODE(c)->height = 1;
    int rc;
    zv *w = pair_node(vm, ZV_BUILD, t, c, &rc);
    if (!w)
        return rc;
    NODE(w)->items = 1;
    *slot = w;
    *out = c;
    return 0;
}

/* APPEND(S), SETITEM(S), ADDITEMS: stack[k..sp) go into stack[k - 1]. */
static int extend(pickle_vm *vm, zv_type want, size_t k)
{
    if (k <= fence(vm))
        return fail(vm, ZE_CORRUPT, "stack underflow (no container)");
    size_t n = vm->sp - k;
    if (want == ZV_DICT && n % 2)
        return fail(vm, ZE_CORRUPT, "odd number of items for a dict");
    zv **slot = &vm->stack[k - 1];
    zv *c;
    int rc = items_target(vm, slot, want, &c);
    if (rc)
        return rc;
    if (NODE(c)->shared || NODE(*slot)->shared)
        return fail(vm, ZE_CORRUPT, "recursive structure (%s changed after being shared)",
                    type_name(c->type));
    rc = add_items(vm, c, vm->stack + k, n);
    if (!rc && *slot != c)
        rc = recount_pair(vm, *slot);
    vm->sp = k;
    return rc;
}

static int extend_from_mark(pickle_vm *vm, zv_type want)
{
    size_t k;
    int rc = pop_mark(vm, &k);
    return rc ? rc : extend(vm, want, k);
}

static int extend_from_top(pickle_vm *vm, zv_type want, size_t n)
{
    int rc = need_items(vm, n);
    return rc ? rc : extend(vm, want, vm->sp - n);
}

/* ---- opcodes with arguments ------------------------------------------- */

/* The type a Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) decodes to:
 * bytes, or with PICKLE_PY2_ASCII what ZODB's conflict resolution reads
 * (an ASCII str; anything else fails its strict ASCII decoding). */
static int py2_string_type(pickle_vm *vm, const uint8_t *s, size_t n, zv_type *t)
{
    *t = ZV_BYTES;
    if (!(vm->flags & PICKLE_PY2_ASCII))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return fail(vm, ZE_CORRUPT, "Python 2 string is not ASCII");
    *t = ZV_STR;
    return 0;
}

static int op_bytes(pickle_vm *vm, zv_type t, size_t width, int is_signed)
{
    const uint8_t *s;
    size_t n;
    int rc = read_counted(vm, width, is_signed, &s, &n);
    if (!rc && (vm->op == OP_SHORT_BINSTRING || vm->op == OP_BINSTRING))
        rc = py2_string_type(vm, s, n, &t);
    if (rc)
        return rc;
    if (t == ZV_STR && !pickle__utf8_ok(s, n, 1))
        return fail(vm, ZE_CORRUPT, "invalid UTF-8");
    return push(vm, new_string(vm, t, s, n));
}

static int op_long(pickle_vm *vm, size_t width)
{
    const uint8_t *s;
    size_t n;
    int rc = read_counted(vm, width, 1, &s, &n);
    return rc ? rc : push(vm, new_le_int(vm, s, n));
}

static int push_parsed_int(pickle_vm *vm, const uint8_t *s, size_t n)
{
    int64_t i;
    uint8_t *le;
    size_t le_len;
    int rc = pickle__parse_int(vm->arena, s, n, &i, &le, &le_len);
    if (rc == ZE_NOMEM)
        return nomem(vm);
    if (rc)
        return fail(vm, rc, "bad integer text");
    return push(vm, le_len ? new_string(vm, ZV_BIGINT, le, le_len) : new_int(vm, i));
}

static int op_text_int(pickle_vm *vm)
{
    const uint8_t *s;
    size_t n;
    int rc = read_line(vm, &s, &n);
    if (rc)
        return rc;
    if (vm->op == OP_INT && n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
        zv *b = scalar(vm, ZV_BOOL);
        if (b)
            b->u.b = s[1] == '1';
        return push(vm, b);
    }
    if (vm->op == OP_LONG && n > 0 && s[n - 1] == 'L')
        n--;
    return push_parsed_int(vm, s, n);
}

static int op_text_float(pickle_vm *vm)
{
    const uint8_t *s;
    size_t n;
    double d;
    int rc = read_line(vm, &s, &n);
    if (rc)
        return rc;
    if (pickle__parse_float(s, n, &d))
        return fail(vm, ZE_CORRUPT, "bad float text");
    zv *v = scalar(vm, ZV_FLOAT);
    if (v)
        v->u.f = d;
    return push(vm, v);
}

static int op_binfloat(pickle_vm *vm)
{
    int rc = need(vm, 8);
    if (rc)
        return rc;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | vm->p[vm->pos + i];
    vm->pos += 8;
    zv *v = scalar(vm, ZV_FLOAT);
    if (v)
        memcpy(&v->u.f, &bits, sizeof bits);
    return push(vm, v);
}

/* STRING (Python 2 str repr) and UNICODE (raw-unicode-escape). */
static int op_text_string(pickle_vm *vm)
{
    const uint8_t *s;
    size_t n;
    uint8_t *out;
    size_t out_len;
    int rc = read_line(vm, &s, &n);
    if (rc)
        return rc;
    if (vm->op == OP_UNICODE) {
        rc = pickle__raw_unicode_decode(vm->arena, s, n, &out, &out_len);
    } else {
        if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
            return fail(vm, ZE_CORRUPT, "string argument not quoted");
        rc = pickle__escape_decode(vm->arena, s + 1, n - 2, &out, &out_len);
    }
    if (rc == ZE_NOMEM)
        return nomem(vm);
    if (rc)
        return fail(vm, rc, "bad escape sequence");
    zv_type t = ZV_STR;
    if (vm->op == OP_STRING && (rc = py2_string_type(vm, out, out_len, &t)))
        return rc;
    zv *v = scalar(vm, t);
    if (v) {
        v->u.s.p = out;
        v->u.s.len = out_len;
    }
    return push(vm, v);
}

static const char *dup_name(pickle_vm *vm, const uint8_t *s, size_t n)
{
    char *c = zv_alloc(vm->arena, n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

static zv *new_global(pickle_vm *vm, const uint8_t *mod, size_t mod_len, const uint8_t *name,
                      size_t name_len)
{
    zv *v = scalar(vm, ZV_GLOBAL);
    if (!v || !(v->u.global.module = dup_name(vm, mod, mod_len)) ||
        !(v->u.global.name = dup_name(vm, name, name_len)))
        return NULL;
    return v;
}

static int name_ok(const uint8_t *s, size_t n)
{
    return !memchr(s, 0, n) && pickle__utf8_ok(s, n, 0);
}

/* GLOBAL and INST: "module\nname\n". */
static int read_global(pickle_vm *vm, zv **out)
{
    const uint8_t *mod = NULL, *name = NULL;
    size_t mod_len = 0, name_len = 0;
    *out = NULL;
    int rc = read_line(vm, &mod, &mod_len);
    if (!rc)
        rc = read_line(vm, &name, &name_len);
    if (rc)
        return rc;
    if (!name_ok(mod, mod_len) || !name_ok(name, name_len))
        return fail(vm, ZE_CORRUPT, "bad module or class name");
    *out = new_global(vm, mod, mod_len, name, name_len);
    return *out ? 0 : nomem(vm);
}

static int op_stack_global(pickle_vm *vm)
{
    int rc = need_items(vm, 2);
    if (rc)
        return rc;
    zv *name = pop(vm), *mod = pop(vm);
    if (mod->type != ZV_STR || name->type != ZV_STR || !name_ok(mod->u.s.p, mod->u.s.len) ||
        !name_ok(name->u.s.p, name->u.s.len))
        return fail(vm, ZE_CORRUPT, "module and name must be str");
    return push(vm, new_global(vm, mod->u.s.p, mod->u.s.len, name->u.s.p, name->u.s.len));
}

static int op_inst(pickle_vm *vm)
{
    zv *cls;
    size_t k;
    int rc = read_global(vm, &cls);
    if (!rc)
        rc = pop_mark(vm, &k);
    if (!rc)
        rc = make_seq(vm, ZV_TUPLE, k);
    return rc ? rc : push_call(vm, cls, pop(vm), 0);
}

static int op_obj(pickle_vm *vm)
{
    size_t k;
    int rc = pop_mark(vm, &k);
    if (rc)
        return rc;
    if (vm->sp == k)
        return fail(vm, ZE_CORRUPT, "no class after MARK");
    zv *cls = vm->stack[k];
    rc = make_seq(vm, ZV_TUPLE, k + 1);
    if (rc)
        return rc;
    zv *args = pop(vm);
    vm->sp--; /* cls */
    return push_call(vm, cls, args, 0);
}

/* REDUCE, NEWOBJ, NEWOBJ_EX. NEWOBJ_EX's args become the pair (args, kwargs). */
static int op_call(pickle_vm *vm)
{
    int ex = vm->op == OP_NEWOBJ_EX;
    int rc = need_items(vm, ex ? 3 : 2);
    if (rc)
        return rc;
    zv *kwargs = ex ? pop(vm) : NULL;
    zv *args = pop(vm);
    zv *callable = pop(vm);
    if (args->type != ZV_TUPLE || (kwargs && kwargs->type != ZV_DICT))
        return fail(vm, ZE_CORRUPT, "arguments must be a tuple");
    if (ex) {
        zv *pair = compound(vm, ZV_TUPLE, 2);
        if (!pair)
            return nomem(vm);
        pair->u.seq.items[0] = args;
        pair->u.seq.items[1] = kwargs;
        pair->u.seq.n = 2;
        rc = adopt(vm, pair, pair->u.seq.items, 2);
        if (rc)
            return rc;
        args = pair;
    }
    return push_call(vm, callable, args, ex ? 2 : vm->op == OP_NEWOBJ);
}

static int op_build(pickle_vm *vm)
{
    int rc = need_items(vm, 2);
    if (rc)
        return rc;
    zv *state = pop(vm), *obj = pop(vm);
    zv *v = pair_node(vm, ZV_BUILD, obj, state, &rc);
    return v ? push(vm, v) : rc;
}

static int push_persid(pickle_vm *vm, zv *pid)
{
    if (vm->on_persid) {
        int rc = vm->on_persid(pid, vm->persid_ud);
        if (rc)
            return rc;
    }
    zv *v = compound(vm, ZV_PERSID, 0);
    if (!v)
        return nomem(vm);
    v->u.persid = pid;
    int rc = adopt(vm, v, &pid, 1);
    return rc ? rc : push(vm, v);
}

static int op_persid(pickle_vm *vm)
{
    if (vm->op == OP_BINPERSID) {
        int rc = need_items(vm, 1);
        return rc ? rc : push_persid(vm, pop(vm));
    }
    const uint8_t *s;
    size_t n;
    int rc = read_line(vm, &s, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return fail(vm, ZE_CORRUPT, "persistent id is not ASCII");
    zv *pid = new_string(vm, ZV_STR, s, n);
    return pid ? push_persid(vm, pid) : nomem(vm);
}

/* The copyreg extension registry is never consulted: an EXT code becomes
 * the global "__extension__.<code>". */
static int op_ext(pickle_vm *vm, size_t width)
{
    int rc = need(vm, width);
    if (rc)
        return rc;
    uint64_t code = read_le(vm, width);
    if (!code)
        return fail(vm, ZE_CORRUPT, "extension code 0");
    char name[24];
    int len = snprintf(name, sizeof name, "%llu", (unsigned long long)code);
    return push(vm, new_global(vm, (const uint8_t *)"__extension__", 13, (const uint8_t *)name,
                               (size_t)len));
}

static int op_pop(pickle_vm *vm)
{
    /* As CPython: an empty frame over a MARK pops the mark. */
    if (vm->nmarks && vm->marks[vm->nmarks - 1] == vm->sp) {
        vm->nmarks--;
        return 0;
    }
    int rc = need_items(vm, 1);
    if (!rc)
        vm->sp--;
    return rc;
}

static int op_proto(pickle_vm *vm)
{
    int rc = need(vm, 1);
    if (rc)
        return rc;
    if (vm->p[vm->pos++] > 5)
        return fail(vm, ZE_CORRUPT, "unsupported protocol %u", vm->p[vm->pos - 1]);
    return 0;
}

static int op_frame(pickle_vm *vm)
{
    int rc = need(vm, 8);
    if (rc)
        return rc;
    uint64_t n = read_le(vm, 8);
    if (n > vm->len - vm->pos)
        return fail(vm, ZE_CORRUPT, "frame of %llu bytes exceeds the %zu bytes left",
                    (unsigned long long)n, vm->len - vm->pos);
    return 0;
}

static int op_memo(pickle_vm *vm)
{
    size_t key;
    int rc = 0;
    switch (vm->op) {
    case OP_PUT:
    case OP_GET: rc = read_key(vm, &key); break;
    case OP_BINPUT:
    case OP_BINGET:
        rc = need(vm, 1);
        key = rc ? 0 : (size_t)read_le(vm, 1);
        break;
    case OP_LONG_BINPUT:
    case OP_LONG_BINGET:
        rc = need(vm, 4);
        key = rc ? 0 : (size_t)read_le(vm, 4);
        break;
    default: key = vm->memo_count; break; /* MEMOIZE */
    }
    if (rc)
        return rc;
    if (vm->op == OP_GET || vm->op == OP_BINGET || vm->op == OP_LONG_BINGET)
        return memo_get(vm, key);
    return memo_put(vm, key);
}

static int op_small_int(pickle_vm *vm, size_t width)
{
    int rc = need(vm, width);
    if (rc)
        return rc;
    uint64_t v = read_le(vm, width);
    return push(vm, new_int(vm, width == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v));
}

/* ---- the one object form allowed in messages --------------------------
 * A message may apply builtins.dict with REDUCE (pickle.h says which client
 * sends it); the REDUCE is rewritten into the dict it would build, so
 * nothing is looked up or called. */

static int is_dict_global(const zv *g)
{
    return g->type == ZV_GLOBAL && !strcmp(g->u.global.name, "dict") &&
           (!strcmp(g->u.global.module, "builtins") || !strcmp(g->u.global.module, "__builtin__"));
}

static int wire_global(pickle_vm *vm)
{
    zv *g;
    int rc = read_global(vm, &g);
    if (rc)
        return rc;
    if (!is_dict_global(g))
        return fail(vm, ZE_CORRUPT, "global %.64s.%.64s is not allowed in a message",
                    g->u.global.module, g->u.global.name);
    return push(vm, g);
}

/* The dict that dict(), or dict(x) for x a dict or a tuple or list of
 * 2-item tuples or lists, returns: pairs in order, a dict copied shallowly
 * (a new node, as Python makes a new dict: items added to one later must
 * not show in the other). */
static int dict_from_arg(pickle_vm *vm, const zv *x, zv **out)
{
    size_t n = x ? x->u.seq.n : 0;
    zv *d = compound(vm, ZV_DICT, 2 * n);
    if (!d)
        return nomem(vm);
    if (x && x->type == ZV_DICT) {
        memcpy(d->u.seq.items, x->u.seq.items, 2 * n * sizeof(zv *));
    } else {
        for (size_t i = 0; i < n; i++) {
            const zv *pair = x->u.seq.items[i];
            if (!zv_is_seq(pair) || pair->u.seq.n != 2)
                return fail(vm, ZE_CORRUPT, "builtins.dict: item %zu is not a pair", i);
            d->u.seq.items[2 * i] = pair->u.seq.items[0];
            d->u.seq.items[2 * i + 1] = pair->u.seq.items[1];
        }
    }
    d->u.seq.n = n;
    *out = d;
    return adopt(vm, d, d->u.seq.items, 2 * n);
}

static int wire_reduce(pickle_vm *vm)
{
    int rc = need_items(vm, 2);
    if (rc)
        return rc;
    zv *args = pop(vm), *callable = pop(vm);
    if (!is_dict_global(callable))
        return fail(vm, ZE_CORRUPT, "only builtins.dict may be called in a message, not a %s",
                    type_name(callable->type));
    if (args->type != ZV_TUPLE || args->u.seq.n > 1)
        return fail(vm, ZE_CORRUPT, "builtins.dict takes a tuple of at most one argument");
    zv *x = args->u.seq.n ? args->u.seq.items[0] : NULL;
    if (x && x->type != ZV_DICT && !zv_is_seq(x))
        return fail(vm, ZE_CORRUPT, "builtins.dict: argument is a %s, not a dict or pairs",
                    type_name(x->type));
    zv *d = NULL;
    rc = dict_from_arg(vm, x, &d);
    return rc ? rc : push(vm, d);
}

/* What STOP leaves behind in a message: no builtins.dict unapplied. */
static int wire_stack_ok(pickle_vm *vm)
{
    for (size_t i = 0; i < vm->sp; i++)
        if (vm->stack[i]->type == ZV_GLOBAL)
            return misplaced_dict(vm);
    return 0;
}

static int op_object(pickle_vm *vm)
{
    int rc;
    if (!(vm->flags & PICKLE_ALLOW_OBJECTS)) {
        if (vm->op == OP_GLOBAL)
            return wire_global(vm);
        if (vm->op == OP_REDUCE)
            return wire_reduce(vm);
        return fail(vm, ZE_CORRUPT, "object opcodes are not allowed here");
    }
    switch (vm->op) {
    case OP_GLOBAL: {
        zv *g;
        rc = read_global(vm, &g);
        return rc ? rc : push(vm, g);
    }
    case OP_STACK_GLOBAL: return op_stack_global(vm);
    case OP_INST: return op_inst(vm);
    case OP_OBJ: return op_obj(vm);
    case OP_REDUCE:
    case OP_NEWOBJ:
    case OP_NEWOBJ_EX: return op_call(vm);
    case OP_BUILD: return op_build(vm);
    case OP_EXT1: return op_ext(vm, 1);
    case OP_EXT2: return op_ext(vm, 2);
    case OP_EXT4: return op_ext(vm, 4);
    default: return op_persid(vm);
    }
}

static int step(pickle_vm *vm)
{
    switch (vm->op) {
    case OP_MARK: return push_mark(vm);
    case OP_POP: return op_pop(vm);
    case OP_POP_MARK: {
        size_t k;
        int rc = pop_mark(vm, &k);
        if (!rc)
            vm->sp = k;
        return rc;
    }
    case OP_DUP: {
        int rc = need_items(vm, 1);
        if (rc)
            return rc;
        share(vm->stack[vm->sp - 1]);
        return push(vm, vm->stack[vm->sp - 1]);
    }
    case OP_PROTO: return op_proto(vm);
    case OP_FRAME: return op_frame(vm);
    case OP_NONE: return push(vm, immutable(vm, &vm->none, ZV_NONE, 0));
    case OP_NEWTRUE: return push(vm, immutable(vm, &vm->yes, ZV_BOOL, 1));
    case OP_NEWFALSE: return push(vm, immutable(vm, &vm->no, ZV_BOOL, 0));
    case OP_BININT1: return op_small_int(vm, 1);
    case OP_BININT2: return op_small_int(vm, 2);
    case OP_BININT: return op_small_int(vm, 4);
    case OP_LONG1: return op_long(vm, 1);
    case OP_LONG4: return op_long(vm, 4);
    case OP_INT:
    case OP_LONG: return op_text_int(vm);
    case OP_BINFLOAT: return op_binfloat(vm);
    case OP_FLOAT: return op_text_float(vm);
    case OP_SHORT_BINBYTES: return op_bytes(vm, ZV_BYTES, 1, 0);
    case OP_BINBYTES: return op_bytes(vm, ZV_BYTES, 4, 0);
    case OP_BINBYTES8: return op_bytes(vm, ZV_BYTES, 8, 0);
    case OP_SHORT_BINSTRING: return op_bytes(vm, ZV_BYTES, 1, 0);
    case OP_BINSTRING: return op_bytes(vm, ZV_BYTES, 4, 1);
    case OP_SHORT_BINUNICODE: return op_bytes(vm, ZV_STR, 1, 0);
    case OP_BINUNICODE: return op_bytes(vm, ZV_STR, 4, 0);
    case OP_BINUNICODE8: return op_bytes(vm, ZV_STR, 8, 0);
    case OP_STRING:
    case OP_UNICODE: return op_text_string(vm);
    case OP_EMPTY_TUPLE: return make_seq(vm, ZV_TUPLE, vm->sp);
    case OP_TUPLE1: return seq_from_top(vm, ZV_TUPLE, 1);
    case OP_TUPLE2: return seq_from_top(vm, ZV_TUPLE, 2);
    case OP_TUPLE3: return seq_from_top(vm, ZV_TUPLE, 3);
    case OP_TUPLE: return seq_from_mark(vm, ZV_TUPLE);
    case OP_EMPTY_LIST: return make_seq(vm, ZV_LIST, vm->sp);
    case OP_LIST: return seq_from_mark(vm, ZV_LIST);
    case OP_EMPTY_DICT: return make_seq(vm, ZV_DICT, vm->sp);
    case OP_DICT: return seq_from_mark(vm, ZV_DICT);
    case OP_EMPTY_SET: return make_seq(vm, ZV_SET, vm->sp);
    case OP_FROZENSET: return seq_from_mark(vm, ZV_FROZENSET);
    case OP_APPEND: return extend_from_top(vm, ZV_LIST, 1);
    case OP_APPENDS: return extend_from_mark(vm, ZV_LIST);
    case OP_SETITEM: return extend_from_top(vm, ZV_DICT, 2);
    case OP_SETITEMS: return extend_from_mark(vm, ZV_DICT);
    case OP_ADDITEMS: return extend_from_mark(vm, ZV_SET);
    case OP_PUT:
    case OP_BINPUT:
    case OP_LONG_BINPUT:
    case OP_MEMOIZE:
    case OP_GET:
    case OP_BINGET:
    case OP_LONG_BINGET: return op_memo(vm);
    case OP_GLOBAL:
    case OP_STACK_GLOBAL:
    case OP_INST:
    case OP_OBJ:
    case OP_REDUCE:
    case OP_NEWOBJ:
    case OP_NEWOBJ_EX:
    case OP_BUILD:
    case OP_EXT1:
    case OP_EXT2:
    case OP_EXT4:
    case OP_PERSID:
    case OP_BINPERSID: return op_object(vm);
    default: return fail(vm, ZE_CORRUPT, "unknown or unsupported opcode");
    }
}

int pickle__vm_run(pickle_vm *vm, const uint8_t *p, size_t len, size_t base, zv **out,
                   size_t *used)
{
    vm->p = p;
    vm->len = len;
    vm->pos = 0;
    vm->base = base;
    vm->sp = 0;
    vm->nmarks = 0;
    if (!is_message(vm))
        vm->max_size = (uint64_t)(base + len) * PICKLE_MAX_EXPANSION + PICKLE_MIN_NODES;
    else
        vm->max_size = vm->max_bytes ? vm->max_bytes : PICKLE_MSG_BOUND(base + len);
    for (;;) {
        vm->op_pos = vm->pos;
        if (vm->pos == vm->len) {
            vm->op = OP_STOP;
            return fail(vm, ZE_CORRUPT, "input ends before STOP");
        }
        vm->op = p[vm->pos++];
        if (vm->op == OP_STOP)
            break;
        int rc = step(vm);
        if (rc)
            return rc;
    }
    int rc = need_items(vm, 1);
    if (!rc && !(vm->flags & PICKLE_ALLOW_OBJECTS))
        rc = wire_stack_ok(vm);
    if (rc)
        return rc;
    *out = pop(vm);
    *used = vm->pos;
    return 0;
}

int pickle_decode_max(const uint8_t *p, size_t len, int flags, uint64_t max_bytes,
                      zv_arena *a, zv **out, size_t *used, zerr *err)
{
    pickle_vm vm;
    size_t n = 0;
    pickle__vm_init(&vm, a, flags, err);
    if (!max_bytes && !(flags & PICKLE_ALLOW_OBJECTS))
        max_bytes = PICKLE_MSG_BOUND(len);
    vm.max_bytes = max_bytes;
    /* The arena's own limit, if tighter, stays. */
    size_t prev = zv_arena_set_limit(a, 0);
    size_t now = zv_arena_bytes(a);
    size_t lim = !max_bytes ? 0 : max_bytes > SIZE_MAX - now ? SIZE_MAX : now + (size_t)max_bytes;
    zv_arena_set_limit(a, prev && (!lim || prev < lim) ? prev : lim);
    int rc = pickle__vm_run(&vm, p, len, 0, out, &n);
    zv_arena_set_limit(a, prev);
    if (!rc && used)
        *used = n;
    return rc;
}

int pickle_decode(const uint8_t *p, size_t len, int flags, zv_arena *a, zv **out, size_t *used,
                  zerr *err)
{
    return pickle_decode_max(p, len, flags, 0, a, out, used, err);
}
