/* test_hot.c: hot objects through the server. Four client processes each
 * commit, round after round, an increment of one BTrees.Length and a change
 * of one IOBucket and one OOBucket: each inserts a key of its own and
 * deletes its own oldest one, so a bucket stays under BTrees' bucket size
 * and its first key is never deleted, the shapes BTrees always resolves.
 * The records are real ZODB pickles of those classes (src/pickle's writer).
 *
 * A round: every client loads the three objects (after a ping, so every
 * earlier commit's invalidation has reached its cache) and stores its
 * change; only then do they all vote. So in every round one vote passes and
 * three meet a conflict on each object: 9 conflicts a round, which the
 * server resolves in its default mode (no client sees one), and which with
 * --client-conflict-resolution go back to the clients, which resolve them
 * with the same C resolvers and vote again.
 *
 * After each commit a client checks what the server wrote at its tid: the
 * revision before it with this client's change applied, decoded and
 * compared item by item. A load through its cache after tpc_finish must give
 * that record too, not the one it sent: the cache dropped it. At the end
 * the Length is exact and each bucket holds exactly every client's last
 * keys, and ruok's counters say where the conflicts were resolved. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "pickle/record.h"
#include "resolve/resolve.h"

#define CLIENTS  4
#define ROUNDS   12
#define OWN_KEYS 3 /* live keys per client: 1 + 4 * 3 = 13 items, under 30 */

enum { LEN, IOB, OOB, NOBJ };

typedef struct hot {
    ts_server srv;
    uint64_t oid[NOBJ];
    int ccr; /* the server runs with --client-conflict-resolution */
} hot;

/* ---- records --------------------------------------------------------------- */

static zv *global(zv_arena *a, const char *module, const char *name)
{
    zv *g = zv_alloc(a, sizeof *g);
    if (g)
        *g = (zv){.type = ZV_GLOBAL, .u.global = {module, name}};
    return g;
}

static const char *const modules[NOBJ] = {"BTrees.Length", "BTrees.IOBTree", "BTrees.OOBTree"};
static const char *const classes[NOBJ] = {"Length", "IOBucket", "OOBucket"};

/* A record as ZODB writes it: the class, then the state, one pickler. A
 * bucket's state is ((k1, v1, k2, v2, ...),). */
static int encode(int kind, zv *state, zv_arena *a, zbuf *out)
{
    zbuf_reset(out);
    if (kind != LEN) {
        zv *outer = zv_tuple(a, 1);
        if (!outer)
            return -1;
        outer->u.seq.items[0] = state;
        state = outer;
    }
    zv *g = global(a, modules[kind], classes[kind]);
    return g ? record_encode(g, state, out, NULL) : -1;
}

/* The Length's value, or a bucket's flat items tuple. */
static zv *decode(int kind, const zbuf *rec, zv_arena *a)
{
    zv *meta, *state;
    if (record_decode(a, rec->data, rec->len, 0, &meta, &state, NULL) || meta->type != ZV_GLOBAL ||
        strcmp(meta->u.global.module, modules[kind]) || strcmp(meta->u.global.name, classes[kind]))
        return NULL;
    if (kind == LEN)
        return state->type == ZV_INT ? state : NULL;
    if (state->type != ZV_TUPLE || state->u.seq.n != 1 || state->u.seq.items[0]->type != ZV_TUPLE ||
        state->u.seq.items[0]->u.seq.n % 2)
        return NULL;
    return state->u.seq.items[0];
}

/* ---- each client's change -------------------------------------------------- */

static zv *own_key(int kind, int client, int round, zv_arena *a)
{
    if (kind == IOB)
        return zv_int(a, 1000 * (client + 1) + round);
    char s[32];
    snprintf(s, sizeof s, "k%d-%04d", client, round);
    return zv_cstr(a, s);
}

static zv *own_value(int kind, int client, int round, zv_arena *a)
{
    if (kind == OOB)
        return zv_int(a, 1000 * client + round);
    char s[32];
    snprintf(s, sizeof s, "v%d-%d", client, round);
    return zv_cstr(a, s);
}

/* Python's order for the keys used here: ints, or ASCII str. */
static int key_cmp(const zv *x, const zv *y)
{
    if (x->type == ZV_INT)
        return x->u.i < y->u.i ? -1 : x->u.i > y->u.i;
    size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
    int c = memcmp(x->u.s.p, y->u.s.p, n);
    return c ? c : (x->u.s.len > y->u.s.len) - (x->u.s.len < y->u.s.len);
}

/* The client's change in round r applied to a state: the Length plus one;
 * a bucket with the round's own key inserted and the one OWN_KEYS rounds
 * older deleted. NULL when the state does not allow it (a bug shows). */
static zv *apply_change(int kind, const zv *state, int client, int r, zv_arena *a)
{
    if (kind == LEN)
        return zv_int(a, state->u.i + 1);
    zv *ins = own_key(kind, client, r, a),
       *del = r >= OWN_KEYS ? own_key(kind, client, r - OWN_KEYS, a) : NULL;
    size_t n = state->u.seq.n;
    zv *out = zv_tuple(a, n + 2);
    if (!ins || !out)
        return NULL;
    size_t o = 0;
    int inserted = 0, deleted = del == NULL;
    for (size_t i = 0; i + 1 < n; i += 2) {
        zv *k = state->u.seq.items[i];
        if (k->type != ins->type)
            return NULL;
        if (!inserted && key_cmp(ins, k) < 0) {
            out->u.seq.items[o++] = ins;
            out->u.seq.items[o++] = own_value(kind, client, r, a);
            inserted = 1;
        }
        if (del && !key_cmp(del, k)) {
            deleted = 1;
            continue;
        }
        out->u.seq.items[o++] = k;
        out->u.seq.items[o++] = state->u.seq.items[i + 1];
    }
    if (!inserted) {
        out->u.seq.items[o++] = ins;
        out->u.seq.items[o++] = own_value(kind, client, r, a);
    }
    out->u.seq.n = o;
    return deleted ? out : NULL;
}

/* ---- a client process -------------------------------------------------------- */

typedef struct child {
    const hot *h;
    int id;
    zcl_client *c;
    uint64_t serial[NOBJ];
    zbuf sent[NOBJ];
    zv_arena *a;
    int rd, wr; /* tokens from and to the parent */
} child;

static void die(child *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(child *ch, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "client %d: ", ch->id);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(1);
}

static char token(child *ch)
{
    char t;
    if (read(ch->rd, &t, 1) != 1)
        die(ch, "the parent went away");
    return t;
}

static void send_token(int fd, char t)
{
    if (write(fd, &t, 1) != 1)
        _exit(1);
}

/* Load the objects through the cache and store this round's change. */
static void prepare(child *ch, int r)
{
    zerr err = {0};
    zbuf rec = ZBUF_INIT;
    if (zcl_ping_sync(ch->c, &err) || zcl_tpc_begin(ch->c, "hot", "round", NULL))
        die(ch, "ping / begin: %s", err.msg);
    for (int k = 0; k < NOBJ; k++) {
        if (zcl_load_before_sync(ch->c, ch->h->oid[k], ZCL_MAXTID, &rec, &ch->serial[k], NULL,
                                 &err))
            die(ch, "load: %s", err.msg);
        zv *state = decode(k, &rec, ch->a),
           *next = state ? apply_change(k, state, ch->id, r, ch->a) : NULL;
        if (!next || encode(k, next, ch->a, &ch->sent[k]) ||
            zcl_store(ch->c, ch->h->oid[k], ch->serial[k], ch->sent[k].data, ch->sent[k].len))
            die(ch, "round %d: object %d cannot be changed", r, k);
    }
    zbuf_free(&rec);
}

/* What a Python client does with a conflict dict: its class's
 * _p_resolveConflict on (old, committed, new), here the C resolvers. */
static void resolve_here(child *ch, const zcl_conflict *k)
{
    int obj = -1;
    for (int i = 0; i < NOBJ; i++)
        if (ch->h->oid[i] == k->oid)
            obj = i;
    zbuf old = ZBUF_INIT, cur = ZBUF_INIT, out = ZBUF_INIT;
    zerr err = {0};
    if (obj < 0 || k->serial != ch->serial[obj] ||
        zcl_load_serial_sync(ch->c, k->oid, k->serial, &old, &err) ||
        zcl_load_serial_sync(ch->c, k->oid, k->committed, &cur, &err))
        die(ch, "conflict on %016llx: %s", (unsigned long long)k->oid, err.msg);
    resolve_status rs = resolve_records(old.data, old.len, cur.data, cur.len, ch->sent[obj].data,
                                        ch->sent[obj].len, &out, NULL);
    if (rs != RESOLVE_OK || zcl_store(ch->c, k->oid, k->committed, out.data, out.len))
        die(ch, "conflict on %016llx not resolved: %s", (unsigned long long)k->oid,
            resolve_status_name(rs));
    ch->serial[obj] = k->committed;
    zbuf_free(&old);
    zbuf_free(&cur);
    zbuf_free(&out);
}

/* Vote until it passes; returns how many times the client had to resolve. */
static int vote(child *ch, uint64_t *tid)
{
    zerr err = {0};
    int rounds = 0;
    for (;;) {
        zcl_conflict *conf = NULL;
        size_t n = 0;
        int rc = zcl_tpc_vote_sync(ch->c, &conf, &n, &err);
        if (rc == 0)
            break;
        if (rc != ZE_CONFLICT || !ch->h->ccr || !n || ++rounds > 1)
            die(ch, "vote: %s (%zu conflicts)", err.msg, n);
        for (size_t i = 0; i < n; i++)
            resolve_here(ch, &conf[i]);
        zcl_conflicts_free(conf, n);
    }
    if (zcl_tpc_finish_sync(ch->c, tid, &err))
        die(ch, "finish: %s", err.msg);
    return rounds;
}

/* The record at tid is the one before it with this client's change; the
 * cache gives it too. */
static void check(child *ch, int r, uint64_t tid)
{
    zbuf mine = ZBUF_INIT, prev = ZBUF_INIT, cached = ZBUF_INIT;
    zerr err = {0};
    for (int k = 0; k < NOBJ; k++) {
        uint64_t oid = ch->h->oid[k], start = 0;
        if (zcl_load_serial_sync(ch->c, oid, tid, &mine, &err) ||
            zcl_load_before_sync(ch->c, oid, tid, &prev, NULL, NULL, &err) ||
            zcl_load_before_sync(ch->c, oid, ZCL_MAXTID, &cached, &start, NULL, &err))
            die(ch, "loads after the commit: %s", err.msg);
        zv *p = decode(k, &prev, ch->a), *m = decode(k, &mine, ch->a);
        zv *want = p ? apply_change(k, p, ch->id, r, ch->a) : NULL;
        if (!m || !want || !zv_equal(m, want))
            die(ch, "round %d: object %d at our tid is not the one before with our change", r, k);
        if (start < tid ||
            (start == tid && (cached.len != mine.len || memcmp(cached.data, mine.data, mine.len))))
            die(ch, "round %d: the cache gives object %d as sent, not as resolved", r, k);
    }
    zbuf_free(&mine);
    zbuf_free(&prev);
    zbuf_free(&cached);
}

static void child_run(child *ch)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.cache_size = 1 << 20;
    zerr err = {0};
    if (zcl_open_sync(ch->h->srv.addr, &o, &ch->c, &err))
        die(ch, "connect: %s", err.msg);
    for (int r = 0; r < ROUNDS; r++) {
        token(ch);
        prepare(ch, r);
        send_token(ch->wr, 'r');
        token(ch);
        uint64_t tid;
        int resolved_here = vote(ch, &tid);
        check(ch, r, tid);
        zv_arena_reset(ch->a);
        send_token(ch->wr, (char)('0' + resolved_here));
    }
    zcl_free(ch->c);
    _exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

static void create_objects(hot *h)
{
    zcl_client *c = th_connect(&h->srv, NULL);
    zv_arena *a = zv_arena_new();
    zv *first[NOBJ] = {zv_int(a, 0), zv_tuple(a, 2), zv_tuple(a, 2)};
    first[IOB]->u.seq.items[0] = zv_int(a, 0);
    first[IOB]->u.seq.items[1] = zv_cstr(a, "first");
    first[OOB]->u.seq.items[0] = zv_cstr(a, "a-first");
    first[OOB]->u.seq.items[1] = zv_int(a, 0);
    zbuf rec = ZBUF_INIT;
    zerr err = {0};
    cr_assert_eq(zcl_tpc_begin(c, "hot", "setup", NULL), 0);
    for (int k = 0; k < NOBJ; k++) {
        h->oid[k] = th_new_oid(c);
        cr_assert_eq(encode(k, first[k], a, &rec), 0);
        cr_assert_eq(zcl_store(c, h->oid[k], 0, rec.data, rec.len), 0);
    }
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_finish_sync(c, NULL, &err), 0, "%s", err.msg);
    zbuf_free(&rec);
    zv_arena_free(a);
    zcl_free(c);
}

/* The final state: the Length counts every commit, each bucket holds its
 * first key and each client's last OWN_KEYS keys. */
static void check_final(hot *h)
{
    zcl_client *c = th_connect(&h->srv, NULL);
    zv_arena *a = zv_arena_new();
    zbuf rec = ZBUF_INIT;
    zerr err = {0};
    for (int k = 0; k < NOBJ; k++) {
        cr_assert_eq(zcl_load_before_sync(c, h->oid[k], ZCL_MAXTID, &rec, NULL, NULL, &err), 0);
        zv *state = decode(k, &rec, a);
        cr_assert(state, "object %d does not decode", k);
        if (k == LEN) {
            cr_expect_eq(state->u.i, CLIENTS * ROUNDS);
            continue;
        }
        cr_assert_eq(state->u.seq.n, 2 * (1 + CLIENTS * OWN_KEYS));
        size_t i = 2;
        for (int cl = 0; cl < CLIENTS; cl++)
            for (int r = ROUNDS - OWN_KEYS; r < ROUNDS; r++, i += 2) {
                cr_expect(zv_equal(state->u.seq.items[i], own_key(k, cl, r, a)),
                          "object %d item %zu", k, i / 2);
                cr_expect(zv_equal(state->u.seq.items[i + 1], own_value(k, cl, r, a)));
            }
    }
    zbuf_free(&rec);
    zv_arena_free(a);
    zcl_free(c);
}

static long long ruok_count(hot *h, const char *key)
{
    zcl_addr addr;
    zerr err = {0};
    char *json = NULL, pat[64];
    cr_assert_eq(zcl_addr_parse(h->srv.addr, 0, &addr, &err), 0);
    cr_assert_eq(zcl_ruok(&addr, NULL, 0, &json, NULL, &err), 0, "%s", err.msg);
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    cr_assert(p, "ruok has no %s: %s", key, json);
    long long v = strtoll(p + strlen(pat), NULL, 10);
    free(json);
    return v;
}

/* Runs the rounds; returns how many conflicts the clients resolved. */
static int run_clients(hot *h)
{
    int to[CLIENTS][2], from[CLIENTS][2];
    pid_t pid[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_eq(pipe(to[i]), 0);
        cr_assert_eq(pipe(from[i]), 0);
        fflush(NULL);
        if ((pid[i] = fork()) == 0) {
            child ch = {.h = h, .id = i, .rd = to[i][0], .wr = from[i][1], .a = zv_arena_new()};
            child_run(&ch);
        }
        cr_assert_gt(pid[i], 0);
        close(to[i][0]);
        close(from[i][1]);
    }
    int client_rounds = 0, ok = 1;
    for (int r = 0; r < ROUNDS && ok; r++)
        for (int step = 0; step < 2 && ok; step++) {
            for (int i = 0; i < CLIENTS; i++)
                send_token(to[i][1], 'g');
            for (int i = 0; i < CLIENTS && ok; i++) {
                char t;
                ok = read(from[i][0], &t, 1) == 1;
                if (ok && step == 1)
                    client_rounds += t - '0';
            }
        }
    for (int i = 0; i < CLIENTS; i++) {
        int status;
        close(to[i][1]);
        close(from[i][0]);
        if (!ok)
            kill(pid[i], SIGTERM);
        cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
        cr_expect(ok || WIFSIGNALED(status) || WEXITSTATUS(status), "client %d", i);
        if (ok)
            cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client %d failed", i);
    }
    cr_assert(ok, "a client failed (its message is above)");
    return client_rounds;
}

static void hot_run(const char *flags, int ccr)
{
    hot h = {.ccr = ccr};
    cr_assert_eq(ts_server_start(&h.srv, flags), 0, "server did not start");
    create_objects(&h);
    int client_rounds = run_clients(&h);
    check_final(&h);
    long long per_round = (CLIENTS - 1) * NOBJ;
    if (ccr) {
        cr_expect_eq(client_rounds, (CLIENTS - 1) * ROUNDS);
        cr_expect_eq(ruok_count(&h, "conflicts"), per_round * ROUNDS);
        cr_expect_eq(ruok_count(&h, "conflicts_resolved"), (CLIENTS - 1) * ROUNDS);
        cr_expect_eq(ruok_count(&h, "conflicts_resolved_server"), 0);
    } else {
        cr_expect_eq(client_rounds, 0);
        cr_expect_eq(ruok_count(&h, "conflicts"), 0);
        cr_expect_eq(ruok_count(&h, "conflicts_resolved"), 0);
        cr_expect_eq(ruok_count(&h, "conflicts_resolved_server"), per_round * ROUNDS);
    }
    ts_server_free(&h.srv);
}

Test(hot_objects, resolved_in_the_server_z5, .timeout = 120)
{
    hot_run("", 0);
}

Test(hot_objects, resolved_in_the_server_m5, .timeout = 120)
{
    hot_run("--msgpack", 0);
}

Test(hot_objects, sent_to_the_clients_with_the_switch_z5, .timeout = 120)
{
    hot_run("--client-conflict-resolution", 1);
}

Test(hot_objects, sent_to_the_clients_with_the_switch_m5, .timeout = 120)
{
    hot_run("--msgpack --client-conflict-resolution", 1);
}

/* ---- undo ---------------------------------------------------------------- */

static uint64_t commit_length(zcl_client *c, uint64_t oid, uint64_t serial, int64_t value)
{
    zv_arena *a = zv_arena_new();
    zbuf rec = ZBUF_INIT;
    zerr err = {0};
    uint64_t tid = 0;
    cr_assert_eq(encode(LEN, zv_int(a, value), a, &rec), 0);
    cr_assert_eq(zcl_tpc_begin(c, "hot", "length", NULL), 0);
    cr_assert_eq(zcl_store(c, oid, serial, rec.data, rec.len), 0);
    cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(zcl_tpc_finish_sync(c, &tid, &err), 0, "%s", err.msg);
    zbuf_free(&rec);
    zv_arena_free(a);
    return tid;
}

/* Undo of a Length's +4 after a later +2: FileStorage's undo resolves it
 * (committed + new - old = 7 + 1 - 5). With the switch, as in ZEO, nothing
 * is resolved in the server: the undo fails and the Length stays 7. */
static void undo_run(const char *flags, int ccr)
{
    hot h = {0};
    cr_assert_eq(ts_server_start(&h.srv, flags), 0, "server did not start");
    zcl_opts o;
    zcl_opts_init(&o);
    o.cache_size = 1 << 20;
    zcl_client *c = th_connect(&h.srv, &o);
    uint64_t oid = th_new_oid(c);
    uint64_t t1 = commit_length(c, oid, 0, 1);
    uint64_t t2 = commit_length(c, oid, t1, 5);
    commit_length(c, oid, t2, 7);
    zv_arena *a = zv_arena_new();
    zv *log = NULL;
    zerr err = {0};
    cr_assert_eq(zcl_undo_log_sync(c, 0, -20, a, &log, &err), 0, "%s", err.msg);
    cr_assert_eq(log->u.seq.n, 3);
    const zv *id = zv_dict_get(log->u.seq.items[1], "id"); /* t2's */
    cr_assert(id && id->type == ZV_BYTES);
    cr_assert_eq(zcl_tpc_begin(c, "", "undo", NULL), 0);
    cr_assert_eq(zcl_undo(c, id->u.s.p, id->u.s.len), 0);
    uint64_t t4 = 0;
    if (ccr) {
        cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), ZE_UNDO, "%s", err.msg);
        cr_assert(strstr(err.msg, "modified by a later transaction"), "%s", err.msg);
        cr_assert_eq(zcl_tpc_abort_sync(c, &err), 0, "%s", err.msg);
    } else {
        cr_assert_eq(zcl_tpc_vote_sync(c, NULL, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(zcl_tpc_finish_sync(c, &t4, &err), 0, "%s", err.msg);
    }
    zbuf rec = ZBUF_INIT;
    uint64_t start;
    cr_assert_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, &rec, &start, NULL, &err), 0);
    if (!ccr)
        cr_expect_eq(start, t4);
    zv *v = decode(LEN, &rec, a);
    cr_assert(v);
    cr_expect_eq(v->u.i, ccr ? 7 : 3);
    cr_expect_eq(ruok_count(&h, "conflicts_resolved_server"), !ccr);
    zbuf_free(&rec);
    zv_arena_free(a);
    zcl_free(c);
    ts_server_free(&h.srv);
}

Test(hot_objects, undo_resolved_in_the_server, .timeout = 60)
{
    undo_run("", 0);
}

Test(hot_objects, undo_fails_with_the_switch, .timeout = 60)
{
    undo_run("--msgpack --client-conflict-resolution", 1);
}
