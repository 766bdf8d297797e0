/* commitpath: what candidate commit paths write, on bare LMDB and files.
 *
 * The workload of `zeolite bench --workload commit --clients C
 * --objects-per-txn K`: commit n rewrites the K objects of client n mod C
 * (each client owns K oids), every record `size` bytes. Each layout runs the
 * same commits in a fresh folder and reports, per stored object:
 *   syscall  bytes handed to write calls (/proc/self/io wchar: no sockets here)
 *   dirtied  /proc/self/io write_bytes (page cache pages made dirty, per folio)
 *   syncs    fsync/fdatasync/O_DSYNC flushes per commit (LMDB commits count 2)
 *   size     the files' size at the end (LMDB: its last page; logs: their length)
 *   cpu      user+system time
 * Layouts (docs/commit-path.md):
 *   leaves     records in the B-tree leaves, one synced LMDB commit per commit
 *              (format 1)
 *   wal        a log append + fdatasync per commit; leaves written by one
 *              synced LMDB commit per M commits
 *   wal-nosync a log append + fdatasync per commit; an MDB_NOSYNC LMDB commit
 *              per commit, mdb_env_sync every M commits
 *   vfile      records appended to a value file (fdatasync), 24-byte index
 *              entries in one synced LMDB commit per commit
 *   vfile-wal  the value file is the log; index entries every M commits
 *   values     records appended to an LMDB table in the commit's synced LMDB
 *              commit; index entries every M commits (format 2, chosen)
 *
 * usage: commitpath DIR LAYOUT [-k K] [-c CLIENTS] [-n COMMITS] [-m M] [-s SIZE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

enum layout { LEAVES, WAL, WAL_NOSYNC, VFILE, VFILE_WAL, VALUES };
static const char *const layout_names[] = {"leaves", "wal", "wal-nosync", "vfile",
                                           "vfile-wal", "values"};

typedef struct cfg {
    const char *dir;
    enum layout layout;
    int k, clients, commits, m, size;
} cfg;

typedef struct run {
    cfg c;
    MDB_env *env;
    MDB_dbi records, txns, values;
    MDB_txn *txn;            /* the LMDB transaction being filled */
    int fd;                  /* the log or value file */
    uint64_t file_pos;
    uint8_t *buf;            /* one commit's log bytes */
    uint8_t *pend;           /* index entries waiting for the batch: key 16 + value 8 */
    size_t npend;
    long syncs;
} run;

static void die(const char *what, int rc)
{
    fprintf(stderr, "commitpath: %s: %s\n", what, rc > 0 ? strerror(rc) : mdb_strerror(rc));
    exit(1);
}

#define CK(what, x) do { int rc_ = (x); if (rc_) die(what, rc_); } while (0)

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static long long proc_io(const char *field)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = atoll(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- the pieces each layout is made of ------------------------------------- */

static int uses_log(enum layout l)
{
    return l == WAL || l == WAL_NOSYNC || l == VFILE || l == VFILE_WAL;
}

static void open_run(run *r)
{
    char path[4096];
    unsigned flags = MDB_NOTLS | (r->c.layout == WAL_NOSYNC ? MDB_NOSYNC : 0);
    if (mkdir(r->c.dir, 0755) && errno != EEXIST)
        die(r->c.dir, errno);
    CK("env", mdb_env_create(&r->env));
    CK("mapsize", mdb_env_set_mapsize(r->env, (size_t)64 << 30));
    CK("maxdbs", mdb_env_set_maxdbs(r->env, 4));
    CK(r->c.dir, mdb_env_open(r->env, r->c.dir, flags, 0644));
    CK("begin", mdb_txn_begin(r->env, NULL, 0, &r->txn));
    CK("records", mdb_dbi_open(r->txn, "records", MDB_CREATE, &r->records));
    CK("txns", mdb_dbi_open(r->txn, "txns", MDB_CREATE, &r->txns));
    CK("values", mdb_dbi_open(r->txn, "values", MDB_CREATE, &r->values));
    CK("commit", mdb_txn_commit(r->txn));
    r->txn = NULL;
    r->fd = -1;
    if (uses_log(r->c.layout)) {
        snprintf(path, sizeof path, "%s/log", r->c.dir);
        if ((r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644)) < 0)
            die(path, errno);
    }
    r->buf = malloc((size_t)r->c.k * ((size_t)r->c.size + 16) + 64);
    r->pend = malloc((size_t)r->c.k * (size_t)(r->c.m + 1) * 24);
    if (!r->buf || !r->pend)
        die("memory", ENOMEM);
}

static void begin(run *r)
{
    if (!r->txn)
        CK("begin", mdb_txn_begin(r->env, NULL, 0, &r->txn));
}

static void commit(run *r, int synced)
{
    CK("commit", mdb_txn_commit(r->txn));
    r->txn = NULL;
    r->syncs += synced ? 2 : 0;   /* data fdatasync, then the O_DSYNC meta write */
}

/* One commit's records appended to the log (oid, header, length, data each)
 * and made durable; returns where its first record starts. */
static uint64_t log_commit(run *r, uint64_t first, const uint8_t *data)
{
    size_t at = 32;
    memset(r->buf, 0, at);
    for (int i = 0; i < r->c.k; i++, at += 16 + (size_t)r->c.size) {
        be64(r->buf + at, first + (uint64_t)i);
        memset(r->buf + at + 8, 0, 8);
        memcpy(r->buf + at + 16, data, (size_t)r->c.size);
    }
    if (write(r->fd, r->buf, at) != (ssize_t)at || fdatasync(r->fd))
        die("log", errno);
    r->syncs++;
    uint64_t pos = r->file_pos + 32;
    r->file_pos += at;
    return pos;
}

static void put(run *r, MDB_dbi dbi, const uint8_t *key, size_t klen, const void *val,
                size_t vlen, unsigned flags)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    CK("put", mdb_put(r->txn, dbi, &k, &v, flags));
}

/* The transaction's value: a header and its K oids, as both formats keep. */
static void put_txn(run *r, uint64_t tid, uint64_t first)
{
    uint8_t key[8], *v = r->buf;
    memset(v, 0, 24);
    for (int i = 0; i < r->c.k; i++)
        be64(v + 24 + 8 * i, first + (uint64_t)i);
    be64(key, tid);
    put(r, r->txns, key, 8, v, 24 + 8 * (size_t)r->c.k, MDB_APPEND);
}

static void put_leaves(run *r, uint64_t tid, uint64_t first, const uint8_t *data)
{
    uint8_t key[16], *v = r->buf;
    memset(v, 0, 8);
    memcpy(v + 8, data, (size_t)r->c.size);
    for (int i = 0; i < r->c.k; i++) {
        be64(key, first + (uint64_t)i);
        be64(key + 8, tid);
        put(r, r->records, key, 16, v, 8 + (size_t)r->c.size, 0);
    }
}

static void pend_entries(run *r, uint64_t tid, uint64_t first, uint64_t loc)
{
    for (int i = 0; i < r->c.k; i++, r->npend++) {
        uint8_t *e = r->pend + 24 * r->npend;
        be64(e, first + (uint64_t)i);
        be64(e + 8, tid);
        be64(e + 16, loc + (uint64_t)i);
    }
}

static int by_key(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void apply_entries(run *r)
{
    qsort(r->pend, r->npend, 24, by_key);
    for (size_t i = 0; i < r->npend; i++)
        put(r, r->records, r->pend + 24 * i, 16, r->pend + 24 * i + 16, 8, 0);
    r->npend = 0;
}

static void append_values(run *r, uint64_t tid, uint64_t first, const uint8_t *data)
{
    uint8_t key[12], *v = r->buf;
    memset(v, 0, 12);
    memcpy(v + 12, data, (size_t)r->c.size);
    for (int i = 0; i < r->c.k; i++) {
        be64(key, tid);
        key[8] = (uint8_t)(i >> 24), key[9] = (uint8_t)(i >> 16);
        key[10] = (uint8_t)(i >> 8), key[11] = (uint8_t)i;
        be64(v + 4, first + (uint64_t)i);
        put(r, r->values, key, 12, v, 12 + (size_t)r->c.size, MDB_APPEND);
    }
}

/* ---- the layouts ----------------------------------------------------------- */

/* The reader pinned on the last synced snapshot, so that no page of it is
 * reused before the next sync (what an MDB_NOSYNC apply needs to survive an
 * OS crash at all). */
static MDB_txn *pinned;

static void pin_synced(run *r)
{
    if (pinned)
        mdb_txn_abort(pinned);
    CK("pin", mdb_txn_begin(r->env, NULL, MDB_RDONLY, &pinned));
}

static void one_commit(run *r, int n, const uint8_t *data)
{
    uint64_t tid = (uint64_t)n + 1, first = 1 + (uint64_t)(n % r->c.clients) * (uint64_t)r->c.k;
    int batch_due = (n + 1) % r->c.m == 0 || n + 1 == r->c.commits;
    uint64_t loc = uses_log(r->c.layout) ? log_commit(r, first, data) : 0;
    begin(r);
    switch (r->c.layout) {
    case LEAVES:
    case WAL:
    case WAL_NOSYNC:
        put_leaves(r, tid, first, data);
        put_txn(r, tid, first);
        if (r->c.layout == LEAVES || r->c.layout == WAL_NOSYNC || batch_due)
            commit(r, r->c.layout != WAL_NOSYNC);
        if (r->c.layout == WAL_NOSYNC && batch_due) {
            CK("sync", mdb_env_sync(r->env, 1));
            r->syncs++;
            pin_synced(r);
        }
        break;
    case VFILE:
        pend_entries(r, tid, first, loc);
        apply_entries(r);
        put_txn(r, tid, first);
        commit(r, 1);
        break;
    case VFILE_WAL:
        pend_entries(r, tid, first, loc);
        put_txn(r, tid, first);
        if (batch_due) {
            apply_entries(r);
            commit(r, 1);
        }
        break;
    case VALUES:
        append_values(r, tid, first, data);
        pend_entries(r, tid, first, 0);
        put_txn(r, tid, first);
        if (batch_due)
            apply_entries(r);
        commit(r, 1);
        break;
    }
}

static void report(const run *r, long long wchar, long long dirtied, double cpu)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(r->env, &info);
    mdb_env_stat(r->env, &st);
    double objs = (double)r->c.commits * r->c.k;
    double lmdb = (double)(info.me_last_pgno + 1) * st.ms_psize;
    double kept = r->c.layout == VFILE || r->c.layout == VFILE_WAL ? (double)r->file_pos : 0;
    printf("%-10s K=%d clients=%d commits=%d M=%d size=%d: syscall %.0f B/obj (%.2fx), "
           "dirtied %.0f B/obj, syncs %.2f/commit, size %.0f B/obj (lmdb %.0f + file %.0f), "
           "cpu %.2f us/obj\n",
           layout_names[r->c.layout], r->c.k, r->c.clients, r->c.commits, r->c.m, r->c.size,
           wchar / objs, wchar / objs / r->c.size, dirtied / objs,
           (double)r->syncs / r->c.commits, (lmdb + kept) / objs, lmdb / objs, kept / objs,
           cpu * 1e6 / objs);
}

static int parse(int argc, char **argv, cfg *c)
{
    *c = (cfg){.k = 1000, .clients = 2, .commits = 600, .m = 128, .size = 333};
    if (argc < 3)
        return -1;
    c->dir = argv[1];
    c->layout = (enum layout)-1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(argv[2], layout_names[i]))
            c->layout = (enum layout)i;
    for (int i = 3; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        switch (argv[i][1]) {
        case 'k': c->k = v; break;
        case 'c': c->clients = v; break;
        case 'n': c->commits = v; break;
        case 'm': c->m = v; break;
        case 's': c->size = v; break;
        default: return -1;
        }
    }
    return (int)c->layout < 0 || c->k < 1 || c->clients < 1 || c->commits < 1 || c->m < 1 ||
                   c->size < 1 || (argc - 3) % 2 ? -1 : 0;
}

int main(int argc, char **argv)
{
    run r = {0};
    if (parse(argc, argv, &r.c)) {
        fprintf(stderr, "usage: commitpath DIR leaves|wal|wal-nosync|vfile|vfile-wal|values "
                        "[-k K] [-c CLIENTS] [-n COMMITS] [-m M] [-s SIZE]\n");
        return 2;
    }
    uint8_t *data = malloc((size_t)r.c.size);
    if (!data)
        die("memory", ENOMEM);
    memset(data, 0x5a, (size_t)r.c.size);
    open_run(&r);
    if (r.c.layout == WAL_NOSYNC)
        pin_synced(&r);
    long long w0 = proc_io("wchar"), d0 = proc_io("write_bytes");
    double t0 = cpu_seconds();
    for (int n = 0; n < r.c.commits; n++)
        one_commit(&r, n, data);
    report(&r, proc_io("wchar") - w0, proc_io("write_bytes") - d0, cpu_seconds() - t0);
    if (pinned)
        mdb_txn_abort(pinned);
    mdb_env_close(r.env);
    if (r.fd >= 0)
        close(r.fd);
    free(r.buf);
    free(r.pend);
    free(data);
    return 0;
}
