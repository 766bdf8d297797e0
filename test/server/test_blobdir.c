/* A client that can write into the shared blob folder (as storeBlobShared
 * requires) plants symlinks and hard links there to turn the server against
 * files outside its folder: chmod them, move them in, serve them, write new
 * blobs into an outside folder, or have pack delete there. Each test plants
 * canary files outside the server's folder and checks that their mode, link
 * count and contents are what they were, that the attacker gets a clear
 * error, and that a second, well-behaved connection commits during and after
 * the attack. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/zblob.h"
#include "common/zfile.h"
#include "helpers.h"
#include "testutil.h"

static th_server srv;
static tc a, b;          /* the attacker, and a well-behaved client */
static char out[1024];   /* a folder outside the server's */

static void client(tc *c)
{
    cr_assert_eq(tc_connect(c, srv.port, PROTO_PICKLE, NULL), 0);
    cr_assert_geq(tc_register(c), 0);
}

static void setup(void)
{
    cr_assert_eq(th_start(&srv, NULL), 0, "server did not start");
    client(&a);
    client(&b);
    snprintf(out, sizeof out, "%s/outside", srv.dir);
    cr_assert_eq(zfile_mkdirs(out, 0755, NULL), 0, "%s", out);
}

static void teardown(void)
{
    tc_close(&a);
    tc_close(&b);
    th_free(&srv);
}

TestSuite(server_blobdir, .init = setup, .fini = teardown, .timeout = 60);

/* ---- files inside and outside the server's folder ----------------------- */

/* srv.dir/db/blobs, or a path under it. */
static void blobs_path(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/db/blobs%s%s", srv.dir, rel ? "/" : "", rel ? rel : "");
}

static void oid_dir(uint64_t oid, char *buf, size_t cap)
{
    char blobs[1024];
    blobs_path(blobs, sizeof blobs, NULL);
    cr_assert_eq(zblob_oid_dir(blobs, ZBLOB_BUSHY, oid, buf, cap), 0);
}

static void blob_file(uint64_t oid, uint64_t tid, char *buf, size_t cap)
{
    char blobs[1024];
    blobs_path(blobs, sizeof blobs, NULL);
    cr_assert_eq(zblob_path(blobs, ZBLOB_BUSHY, oid, tid, buf, cap), 0);
}

static void canary_plant(tu_canary *c, const char *dir, const char *name, mode_t mode)
{
    cr_assert_eq(tu_canary_plant(c, dir, name, mode), 0, "%s/%s", dir, name);
}

/* The attacker's own links to it count as found. */
static void canary_note(tu_canary *c)
{
    cr_assert_eq(tu_canary_note(c), 0, "%s", c->path);
}

static void canary_intact(tu_canary *c)
{
    char why[1200];
    cr_expect(!tu_canary_changed(c, why, sizeof why), "canary %s", why);
    tu_canary_free(c);
}

/* ---- the protocol ------------------------------------------------------- */

static void begin(tc *c, int64_t txn)
{
    zv_arena *ar = c->a;
    tc_send(c, NULL, 1, "tpc_begin",
            tv_tuple(ar, 4, tv_int(ar, txn), tv_bytes(ar, "u"), tv_bytes(ar, "d"), tv_dict0(ar)));
}

static void store_shared(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *name)
{
    zv_arena *ar = c->a;
    tc_send(c, NULL, 1, "storeBlobShared",
            tv_tuple(ar, 5, tv_oid(ar, oid), tv_oid(ar, serial), tv_bytes(ar, "blob record"),
                     tv_str(ar, name), tv_int(ar, txn)));
}

static void store_upload(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *body)
{
    zv_arena *ar = c->a;
    tc_send(c, NULL, 1, "storeBlobStart", zv_tuple(ar, 0));
    tc_send(c, NULL, 1, "storeBlobChunk", tv_tuple(ar, 1, tv_bytes(ar, body)));
    tc_send(c, NULL, 1, "storeBlobEnd",
            tv_tuple(ar, 4, tv_oid(ar, oid), tv_oid(ar, serial), tv_bytes(ar, "blob record"),
                     tv_int(ar, txn)));
}

static zv *txn_call(tc *c, const char *name, int64_t txn, int64_t *flag)
{
    zv *r = tc_call(c, name, tv_tuple(c->a, 1, tv_int(c->a, txn)), flag);
    cr_assert(r, "no answer to %s: the connection closed or the server died", name);
    return r;
}

/* The message of an error reply (class, (message, ...)), or "". */
static const char *error_text(const zv *reply)
{
    static char buf[1024];
    buf[0] = 0;
    const zv *args = zv_is_seq(reply) && reply->u.seq.n == 2 ? reply->u.seq.items[1] : NULL;
    if (args && zv_is_seq(args) && args->u.seq.n >= 1 && args->u.seq.items[0]->type == ZV_STR) {
        const zv *s = args->u.seq.items[0];
        snprintf(buf, sizeof buf, "%.*s", (int)s->u.s.len, (const char *)s->u.s.p);
    }
    return buf;
}

/* The vote of txn must fail with class cls and a message holding what. */
static void vote_fails(tc *c, int64_t txn, const char *cls, const char *what)
{
    int64_t flag;
    zv *r = txn_call(c, "vote", txn, &flag);
    cr_expect_eq(flag, 2, "the vote passed");
    if (flag == 2) {
        cr_expect_str_eq(tv_error_class(r), cls);
        cr_expect(strstr(error_text(r), what), "the message '%s' does not name '%s'",
                  error_text(r), what);
        return;
    }
    r = txn_call(c, "tpc_finish", txn, &flag);
    cr_expect_eq(flag, 2, "tpc_finish passed too");
    if (flag == 2)
        cr_log_warn("tpc_finish failed instead: %s: %s", tv_error_class(r), error_text(r));
}

/* Vote and finish; the tid, or 0 when either failed. */
static uint64_t vote_finish(tc *c, int64_t txn)
{
    int64_t flag;
    zv *r = txn_call(c, "vote", txn, &flag);
    if (flag != 0 || !zv_is_seq(r) || r->u.seq.n != 0)
        return 0;
    r = txn_call(c, "tpc_finish", txn, &flag);
    return flag == 0 ? tv_u64(r) : 0;
}

/* The well-behaved client commits a record of an oid of its own. */
static void good_commit(tc *c)
{
    static uint64_t next_oid = 1000;
    static int64_t next_txn = 5000;
    uint64_t tid = tc_commit_one(c, next_txn++, next_oid++, 0, "good record");
    cr_expect_neq(tid, 0, "the well-behaved client could not commit");
    tc_reset(c);
}

/* sendBlob(oid, tid): 1 and the streamed bytes in got (malloc'd), or 0 when
 * the server answered with an error (class in cls). */
static int send_blob(tc *c, uint64_t oid, uint64_t tid, char **got, size_t *len,
                     const char **cls)
{
    int64_t flag;
    zv *r = tc_call(c, "sendBlob", tv_tuple(c->a, 2, tv_oid(c->a, oid), tv_oid(c->a, tid)),
                    &flag);
    cr_assert(r, "no answer to sendBlob");
    *got = NULL;
    *len = 0;
    for (size_t i = 0; i < c->n_async; i++) {
        const proto_msg *m = &c->asyncs[i];
        if (strcmp(m->name, "receiveBlobChunk"))
            continue;
        const zv *chunk = m->args->u.seq.items[2];
        *got = realloc(*got, *len + chunk->u.s.len + 1);
        memcpy(*got + *len, chunk->u.s.p, chunk->u.s.len);
        *len += chunk->u.s.len;
        (*got)[*len] = 0;
    }
    *cls = flag == 2 ? tv_error_class(r) : "";
    tc_reset(c);
    return flag == 0;
}

/* sendBlob must refuse (oid, tid) with a POSKeyError and stream nothing. */
static void send_blob_refused(tc *c, uint64_t oid, uint64_t tid)
{
    char *got;
    size_t len;
    const char *cls;
    int ok = send_blob(c, oid, tid, &got, &len, &cls);
    cr_expect(!ok, "sendBlob served %zu bytes: '%.60s'", len, got ? got : "");
    if (!ok)
        cr_expect_str_eq(cls, "ZODB.POSException.POSKeyError");
    cr_expect_eq(len, 0, "bytes were streamed");
    free(got);
}

/* A normal-mode upload of oid committed by c: its tid. */
static uint64_t commit_upload(tc *c, int64_t txn, uint64_t oid, uint64_t serial, const char *body)
{
    begin(c, txn);
    store_upload(c, txn, oid, serial, body);
    uint64_t tid = vote_finish(c, txn);
    cr_assert_neq(tid, 0, "a normal blob commit failed");
    tc_reset(c);
    return tid;
}

/* ---- shared uploads ----------------------------------------------------- */

/* The attacker plants oid's upload file "evil.tmp" as plant(canary, file)
 * (symlink or link) and queues it with storeBlobShared while a well-behaved
 * client commits: the vote must fail with a StorageError naming the file
 * and why. Where it passes (the hole), tpc_finish and sendBlob show the rest:
 * the canary chmod'ed and served. */
static void shared_attack(uint64_t oid, mode_t mode, int (*plant)(const char *, const char *),
                          const char *why)
{
    char dir[1024], evil[1200];
    tu_canary c;
    canary_plant(&c, out, "secret", mode);
    oid_dir(oid, dir, sizeof dir);
    cr_assert_eq(zfile_mkdirs(dir, 0755, NULL), 0);
    snprintf(evil, sizeof evil, "%s/evil.tmp", dir);
    cr_assert_eq(plant(c.path, evil), 0);
    canary_note(&c);

    begin(&a, 1);
    store_shared(&a, 1, oid, 0, "evil.tmp");
    good_commit(&b);
    int64_t flag;
    zv *r = txn_call(&a, "vote", 1, &flag);
    cr_expect_eq(flag, 2, "the vote accepted the planted file (%s)", why);
    if (flag == 2) {
        cr_expect_str_eq(tv_error_class(r), "ZODB.POSException.StorageError");
        cr_expect(strstr(error_text(r), evil) && strstr(error_text(r), why),
                  "the message names the file and why: %s", error_text(r));
    } else {
        r = txn_call(&a, "tpc_finish", 1, &flag);
        char *got = NULL;
        size_t len;
        const char *cls;
        if (flag == 0 && send_blob(&b, oid, tv_u64(r), &got, &len, &cls))
            cr_expect(!strstr(got, "canary"), "sendBlob served the outside file: %s", got);
        free(got);
    }
    canary_intact(&c);
    cr_expect(tu_exists(evil), "the planted file was left where it was");
    good_commit(&b);
}

Test(server_blobdir, a_symlink_as_the_shared_upload_file_fails_the_vote)
{
    shared_attack(1, 0644, symlink, "symbolic link");
}

Test(server_blobdir, a_hard_link_as_the_shared_upload_file_fails_the_vote)
{
    shared_attack(2, 0600, link, "2 hard links");
}

Test(server_blobdir, an_upload_file_swapped_for_a_symlink_after_the_vote_fails_the_commit)
{
    char dir[1024], good[1200], evil[1200];
    tu_canary c;
    canary_plant(&c, out, "secret", 0644);
    oid_dir(3, dir, sizeof dir);
    cr_assert_eq(zfile_mkdirs(dir, 0755, NULL), 0);
    snprintf(good, sizeof good, "%s/up.tmp", dir);
    snprintf(evil, sizeof evil, "%s/evil", dir);
    cr_assert_eq(tu_write_file(good, "harmless", 8), 0);

    begin(&a, 1);
    store_shared(&a, 1, 3, 0, "up.tmp");
    int64_t flag;
    zv *r = txn_call(&a, "vote", 1, &flag);
    cr_assert_eq(flag, 0, "the vote failed: %s", error_text(r));
    /* Between the vote and tpc_finish, the file becomes a link. */
    cr_assert_eq(symlink(c.path, evil), 0);
    cr_assert_eq(rename(evil, good), 0);
    good_commit(&b);
    r = txn_call(&a, "tpc_finish", 1, &flag);
    cr_expect_eq(flag, 2, "tpc_finish installed a symlink as the blob");
    if (flag == 2)
        cr_expect(strstr(error_text(r), "symbolic link"), "why: %s", error_text(r));
    canary_intact(&c);
    good_commit(&b);
}

Test(server_blobdir, a_missing_shared_upload_file_fails_the_vote_and_a_real_one_commits)
{
    char dir[1024], file[1200];
    oid_dir(4, dir, sizeof dir);
    snprintf(file, sizeof file, "%s/gone.tmp", dir);
    begin(&a, 1);
    store_shared(&a, 1, 4, 0, "gone.tmp");
    good_commit(&b);
    vote_fails(&a, 1, "ZODB.POSException.StorageError", file);
    tc_reset(&a);

    /* The same connection then commits a shared upload that is there. */
    cr_assert_eq(zfile_mkdirs(dir, 0755, NULL), 0);
    snprintf(file, sizeof file, "%s/real.tmp", dir);
    cr_assert_eq(tu_write_file(file, "shared content", 14), 0);
    begin(&a, 2);
    store_shared(&a, 2, 4, 0, "real.tmp");
    uint64_t tid = vote_finish(&a, 2);
    cr_assert_neq(tid, 0, "the shared upload did not commit");
    cr_expect(!tu_exists(file), "the upload file was moved into place");
    char path[1200];
    blob_file(4, tid, path, sizeof path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0444, "a committed blob is read-only");
    char *got;
    size_t len;
    const char *cls;
    cr_assert(send_blob(&b, 4, tid, &got, &len, &cls), "sendBlob failed: %s", cls);
    cr_expect(len == 14 && !memcmp(got, "shared content", 14));
    free(got);
    good_commit(&b);
}

/* ---- oid folders that are links ---------------------------------------- */

/* Replace the oid folder of oid (its parents made) with a symlink to dir. */
static void link_oid_dir(uint64_t oid, const char *dir)
{
    char path[1024];
    oid_dir(oid, path, sizeof path);
    cr_assert_eq(zfile_mkdirs_parent(path, 0755, NULL), 0);
    cr_assert_eq(zfile_rm_rf(path, NULL), 0);
    cr_assert_eq(symlink(dir, path), 0, "%s", path);
}

Test(server_blobdir, an_oid_folder_that_is_a_symlink_gets_no_new_blob)
{
    tu_canary c;
    canary_plant(&c, out, "keep", 0644);
    link_oid_dir(5, out);

    /* A normal upload for oid 5 ... */
    begin(&a, 1);
    store_upload(&a, 1, 5, 0, "blob body");
    good_commit(&b);
    char dir[1024];
    oid_dir(5, dir, sizeof dir);
    int64_t flag;
    zv *r = txn_call(&a, "vote", 1, &flag);
    cr_expect_eq(flag, 2, "the vote accepted a blob for a linked oid folder");
    if (flag == 2)
        cr_expect(strstr(error_text(r), dir) && strstr(error_text(r), "symbolic link"),
                  "the message names the folder and why: %s", error_text(r));
    else
        txn_call(&a, "tpc_finish", 1, &flag);
    tc_reset(&a);
    cr_expect_eq(tu_count_entries(out), 1, "a blob was written in the outside folder");

    /* ... and a shared one named in it. */
    char up[1200];
    snprintf(up, sizeof up, "%s/x.tmp", out);
    cr_assert_eq(tu_write_file(up, "outside upload", 14), 0);
    begin(&a, 2);
    store_shared(&a, 2, 5, 0, "x.tmp");
    r = txn_call(&a, "vote", 2, &flag);
    cr_expect_eq(flag, 2, "the vote accepted an upload file in a linked oid folder");
    if (flag != 2)
        txn_call(&a, "tpc_finish", 2, &flag);
    cr_expect_eq(tu_count_entries(out), 2, "a blob was written in the outside folder");
    cr_expect(tu_exists(up), "the outside file was moved");
    canary_intact(&c);
    good_commit(&b);
}

Test(server_blobdir, an_intermediate_bushy_folder_that_is_a_symlink_is_refused)
{
    char top[1024];
    blobs_path(top, sizeof top, "0x00");
    cr_assert_eq(zfile_rm_rf(top, NULL), 0);
    cr_assert_eq(symlink(out, top), 0);

    begin(&a, 1);
    store_upload(&a, 1, 6, 0, "blob body");
    good_commit(&b);
    vote_fails(&a, 1, "ZODB.POSException.StorageError", "symbolic link");
    cr_expect_eq(tu_count_entries(out), 0, "folders or blobs were made in the outside folder");
    good_commit(&b);
}

/* ---- sendBlob ----------------------------------------------------------- */

Test(server_blobdir, send_blob_never_serves_through_a_link)
{
    char path[1200];
    tu_canary c;
    canary_plant(&c, out, "private", 0600);

    /* The committed file becomes a symlink to the canary. */
    uint64_t tid = commit_upload(&a, 1, 7, 0, "real blob");
    blob_file(7, tid, path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(symlink(c.path, path), 0);
    send_blob_refused(&b, 7, tid);
    good_commit(&b);

    /* Then a hard link to it. */
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(link(c.path, path), 0);
    send_blob_refused(&b, 7, tid);
    cr_assert_eq(unlink(path), 0);

    /* Then the oid folder is a symlink to a folder holding a file of that name. */
    char name[64];
    snprintf(name, sizeof name, "%s", strrchr(path, '/') + 1);
    tu_canary d;
    canary_plant(&d, out, name, 0644);
    link_oid_dir(7, out);
    send_blob_refused(&b, 7, tid);
    canary_intact(&c);
    canary_intact(&d);
    good_commit(&b);
}

/* ---- pack --------------------------------------------------------------- */

static void pack_now(tc *c)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t flag;
    zv *r = tc_call(c, "pack",
                    tv_tuple(c->a, 2, zv_float(c->a, (double)tv.tv_sec + tv.tv_usec / 1e6 + 1),
                             zv_bool(c->a, 1)), &flag);
    cr_assert(r, "no answer to pack");
    cr_expect_eq(flag, 0, "pack failed: %s", error_text(r));
    tc_reset(c);
}

Test(server_blobdir, pack_never_deletes_through_a_link)
{
    char path[1200];

    /* Two revisions of oid 8 and of oid 9: pack removes the first of each. */
    uint64_t t8 = commit_upload(&a, 1, 8, 0, "first of 8");
    commit_upload(&a, 2, 8, t8, "second of 8");
    uint64_t t9 = commit_upload(&a, 3, 9, 0, "first of 9");
    commit_upload(&a, 4, 9, t9, "second of 9");

    /* Oid 8's folder becomes a symlink to an outside folder holding a file
     * named as its first revision's blob. */
    blob_file(8, t8, path, sizeof path);
    tu_canary c8;
    canary_plant(&c8, out, strrchr(path, '/') + 1, 0644);
    char moved[1024];
    snprintf(moved, sizeof moved, "%s/moved", srv.dir);
    char dir8[1024];
    oid_dir(8, dir8, sizeof dir8);
    cr_assert_eq(rename(dir8, moved), 0);
    cr_assert_eq(symlink(out, dir8), 0);

    /* Oid 9's first blob becomes a hard link to another outside file. */
    tu_canary c9;
    canary_plant(&c9, out, "linked", 0600);
    blob_file(9, t9, path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(link(c9.path, path), 0);
    canary_note(&c9);

    good_commit(&b);
    pack_now(&a);
    canary_intact(&c8);
    canary_intact(&c9);
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "symbolic link") && strstr(log, "2 hard links") &&
                  strstr(log, "left in place"), "the log names what pack left: %s", log);
    free(log);
    good_commit(&b);
}
