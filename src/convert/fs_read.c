/* fs_read.c: a streaming, checking FileStorage reader.
 *
 * The file is read front to back through one window (WIN_CAP bytes, refilled
 * with pread); only pickles bigger than half the window get a buffer of their
 * own. Every check fstest makes is made here, plus the converter's: prev
 * pointers follow the rule of spec section 5 (or are 0), back-pointers aim at
 * an earlier record start of the same oid, no versions, record tid equal to
 * the transaction's. A torn tail (what a crash leaves) ends the data quietly;
 * anything else that is wrong is an error naming the offset.
 */
#define _GNU_SOURCE
#include "convert/convert.h"
#include "convert/convert_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WIN_CAP (4u << 20)

struct zfs_reader {
    int fd;
    char *path;
    uint64_t size;
    zfs_reader_opts opts;
    uint8_t *win;           /* file bytes [wpos, wpos + wlen) */
    uint64_t wpos;
    size_t wlen;
    zbuf big;               /* pickles too big for the window */
    zbuf meta;              /* the current transaction's user, description, extension */
    zfs_index *ix;
    uint64_t pos;           /* next transaction header */
    uint64_t ltid;          /* last transaction's tid */
    int in_txn;
    uint64_t tpos, tend, tlen, tid;
    uint64_t rpos;          /* next record */
    uint32_t rindex;
    uint64_t ntxn, nundone;
    int done;
    zerr failure;           /* sticky: once damaged, always damaged */
    int torn;
    uint64_t tail_pos;
    char tail_what[200];
    uint64_t ndamaged, damaged_bytes;   /* salvage mode */
    uint64_t damage_pos;
    char damage_what[ZERR_MSG_MAX];
};

static int fail(zfs_reader *r, zerr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(zfs_reader *r, zerr *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failure.msg, sizeof r->failure.msg, fmt, ap);
    va_end(ap);
    r->failure.code = code;
    if (err)
        *err = r->failure;
    return code;
}

/* Hand the failure already recorded in r->failure to the caller. */
static int sticky(zfs_reader *r, zerr *err)
{
    if (err)
        *err = r->failure;
    return r->failure.code;
}

/* Point *out at file bytes [pos, pos + n); n <= WIN_CAP and pos + n <= size. */
static int get(zfs_reader *r, uint64_t pos, size_t n, const uint8_t **out, zerr *err)
{
    if (pos >= r->wpos && pos + n <= r->wpos + r->wlen) {
        *out = r->win + (pos - r->wpos);
        return 0;
    }
    size_t keep = 0;
    if (pos >= r->wpos && pos < r->wpos + r->wlen) {
        keep = (size_t)(r->wpos + r->wlen - pos);
        memmove(r->win, r->win + (pos - r->wpos), keep);
    }
    r->wpos = pos;
    r->wlen = keep;
    uint64_t left = r->size - (pos + keep);
    size_t want = WIN_CAP - keep;
    if (want > left)
        want = (size_t)left;
    while (want > 0) {
        ssize_t got = pread(r->fd, r->win + r->wlen, want, (off_t)(r->wpos + r->wlen));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            zerr_sys(&r->failure, errno, "%s: read at %" PRIu64, r->path, r->wpos + r->wlen);
            return sticky(r, err);
        }
        if (got == 0)
            break;
        r->wlen += (size_t)got;
        want -= (size_t)got;
    }
    if (r->wlen < n)
        return fail(r, err, ZE_IO, "%s: the file shrank while being read (at %" PRIu64 ")",
                    r->path, pos);
    *out = r->win;
    return 0;
}

int zfs_reader_pread(zfs_reader *r, uint64_t pos, void *out, size_t n, zerr *err)
{
    if (pos > r->size || n > r->size - pos)
        return zerr_set(err, ZE_CORRUPT, "%s: %zu bytes at %" PRIu64 " are past the end",
                        r->path, n, pos);
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(r->fd, (char *)out + done, n - done, (off_t)(pos + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return zerr_sys(err, errno, "%s: read at %" PRIu64, r->path, pos + done);
        if (got == 0)
            return zerr_set(err, ZE_IO, "%s: the file shrank while being read", r->path);
        done += (size_t)got;
    }
    return 0;
}

int zfs_reader_open(zfs_reader **out, const char *path, const zfs_reader_opts *opts,
                    zerr *err)
{
    int rc;
    struct stat st;
    uint8_t magic[4];
    zfs_reader *r = calloc(1, sizeof *r);
    if (!r)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    r->fd = -1;
    if (opts)
        r->opts = *opts;
    r->path = strdup(path);
    r->win = malloc(WIN_CAP);
    r->ix = zfs__index_new();
    if (!r->path || !r->win || !r->ix) {
        rc = zerr_set(err, ZE_NOMEM, "out of memory");
        goto fail;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) < 0) {
        rc = zerr_sys(err, errno, "%s", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = zerr_set(err, ZE_INVAL, "%s: not a regular file", path);
        goto fail;
    }
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    r->size = (uint64_t)st.st_size;
    if (r->size == 0) {
        rc = zerr_set(err, ZE_CORRUPT, "%s: empty file (a FileStorage starts with \"FS30\")",
                      path);
        goto fail;
    }
    if (r->size < 4 || (rc = zfs_reader_pread(r, 0, magic, 4, err)) != 0 ||
        memcmp(magic, ZFS_MAGIC, 4) != 0) {
        if (r->size >= 4 && !memcmp(magic, "FS21", 4))
            rc = zerr_set(err, ZE_CORRUPT,
                          "%s: invalid file header at 0: \"FS21\" is a Python 2 FileStorage; "
                          "convert it with zodbupdate --convert-py3 first", path);
        else
            rc = zerr_set(err, ZE_CORRUPT,
                          "%s: invalid file header at 0: expected \"FS30\"", path);
        goto fail;
    }
    r->pos = 4;
    *out = r;
    return 0;
fail:
    zfs_reader_close(r);
    return rc;
}

void zfs_reader_close(zfs_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    zfs__index_free(r->ix);
    zbuf_free(&r->big);
    zbuf_free(&r->meta);
    free(r->win);
    free(r->path);
    free(r);
}

/* When the last 8 bytes of the file are a trailer leading back to a plausible
 * transaction header beyond pos, the file has committed data after pos: a bad
 * header at pos is corruption, not a torn tail. Returns that offset, or 0. */
static uint64_t later_txn(zfs_reader *r, uint64_t pos)
{
    uint8_t b[ZFS_TXN_HDR];
    if (r->size < pos + 8 + ZFS_TXN_HDR + 8 || zfs_reader_pread(r, r->size - 8, b, 8, NULL))
        return 0;
    uint64_t t = zbe64(b);
    if (t < ZFS_TXN_HDR || t > r->size - 8 - pos)
        return 0;
    uint64_t c = r->size - 8 - t;
    if (c <= pos || zfs_reader_pread(r, c, b, ZFS_TXN_HDR, NULL))
        return 0;
    uint64_t meta = ZFS_TXN_HDR + (uint64_t)zbe16(b + 17) + zbe16(b + 19) + zbe16(b + 21);
    if (zbe64(b + 8) != t || !strchr(" pcu", b[16]) || b[16] == 0 || meta > t ||
        zbe64(b) <= r->ltid)
        return 0;
    return c;
}

static int all_zero(zfs_reader *r, uint64_t pos)
{
    uint8_t b[4096];
    while (pos < r->size) {
        size_t n = r->size - pos < sizeof b ? (size_t)(r->size - pos) : sizeof b;
        if (zfs_reader_pread(r, pos, b, n, NULL))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (b[i])
                return 0;
        pos += n;
    }
    return 1;
}

static int torn_tail(zfs_reader *r, uint64_t pos, const char *what)
{
    r->torn = 1;
    r->done = 1;
    r->tail_pos = pos;
    snprintf(r->tail_what, sizeof r->tail_what, "%s", what);
    return 0;
}

/* A header at pos whose length cannot be right: torn tail or corruption. */
static int bad_length(zfs_reader *r, uint64_t pos, uint64_t tlen, uint64_t meta, zerr *err)
{
    char what[200];
    uint64_t later = later_txn(r, pos);
    uint64_t left = r->size - pos;
    if (later && tlen < meta)
        return fail(r, err, ZE_CORRUPT,
                    "%s has an invalid transaction header at %" PRIu64 ": length %" PRIu64
                    " is less than its %" PRIu64 " bytes of header and metadata, and a "
                    "committed transaction follows at %" PRIu64,
                    r->path, pos, tlen, meta, later);
    if (later)
        return fail(r, err, ZE_CORRUPT,
                    "%s truncated possibly because of damaged records at %" PRIu64
                    ": transaction length %" PRIu64 " runs past the end of the file, but a "
                    "committed transaction follows at %" PRIu64,
                    r->path, pos, tlen, later);
    if (all_zero(r, pos))
        snprintf(what, sizeof what, "%" PRIu64 " zero bytes after the last transaction", left);
    else if (tlen >= meta && tlen <= (uint64_t)1 << 40)
        snprintf(what, sizeof what,
                 "an incomplete transaction (length %" PRIu64 ", %" PRIu64
                 " bytes present): never committed", tlen + 8, left);
    else
        snprintf(what, sizeof what,
                 "%" PRIu64 " bytes after the last transaction that do not form one", left);
    return torn_tail(r, pos, what);
}

static int skip_undone(zfs_reader *r, uint64_t pos, uint64_t tlen, zerr *err)
{
    const uint8_t *p;
    int rc = get(r, pos + tlen, 8, &p, err);
    if (rc)
        return rc;
    if (zbe64(p) != tlen)
        return fail(r, err, ZE_CORRUPT,
                    "%s has inconsistent transaction length for undone transaction at %" PRIu64
                    ": trailer %" PRIu64 ", expected %" PRIu64,
                    r->path, pos + tlen, zbe64(p), tlen);
    r->nundone++;
    r->pos = pos + tlen + 8;
    return 0;
}

#define SKIPPED_UNDONE 3

/* Read the transaction header at r->pos: 1 when one starts, 0 at the end,
 * SKIPPED_UNDONE after a 'u' transaction (read the next one). */
static int read_header(zfs_reader *r, zfs_txn *txn, zerr *err)
{
    const uint8_t *h;
    uint64_t pos = r->pos;
    int rc;
    if (pos == r->size) {
        r->done = 1;
        return 0;
    }
    if (r->size - pos < ZFS_TXN_HDR) {
        char what[120];
        snprintf(what, sizeof what, "an incomplete transaction header (%" PRIu64
                 " bytes): never committed", r->size - pos);
        return torn_tail(r, pos, what);
    }
    if ((rc = get(r, pos, ZFS_TXN_HDR, &h, err)) != 0)
        return rc;
    uint64_t tid = zbe64(h), tlen = zbe64(h + 8);
    char status = (char)h[16];
    uint16_t ul = zbe16(h + 17), dl = zbe16(h + 19), el = zbe16(h + 21);
    uint64_t meta = ZFS_TXN_HDR + (uint64_t)ul + dl + el;
    if (tlen < meta || tlen > r->size - pos - 8)
        return bad_length(r, pos, tlen, meta, err);
    if (tid <= r->ltid)
        return fail(r, err, ZE_CORRUPT,
                    "%s time-stamp reduction at %" PRIu64 ": 0x%016" PRIx64 " <= 0x%016" PRIx64
                    " (tids must strictly increase)", r->path, pos, tid, r->ltid);
    if (status == 'c' && pos + tlen + 8 == r->size)
        return torn_tail(r, pos, "a transaction still marked 'c' (voted, never finished): "
                                 "never committed");
    if (status == 'c')
        return fail(r, err, ZE_CORRUPT,
                    "%s checkpoint flag was not cleared at %" PRIu64 ", and transactions follow "
                    "it: corruption, not a crash tail", r->path, pos);
    if (status != ' ' && status != 'p' && status != 'u') {
        char shown[8];
        snprintf(shown, sizeof shown, isprint((unsigned char)status) ? "%c" : "\\x%02x",
                 (unsigned char)status);
        return fail(r, err, ZE_CORRUPT,
                    "%s has invalid status '%s' at %" PRIu64 ": expected ' ', 'p' or 'u'",
                    r->path, shown, pos);
    }
    r->ltid = tid;
    if (status == 'u') {
        rc = skip_undone(r, pos, tlen, err);
        return rc ? rc : SKIPPED_UNDONE;
    }
    if ((rc = get(r, pos + ZFS_TXN_HDR, (size_t)(meta - ZFS_TXN_HDR), &h, err)) != 0 ||
        (rc = zbuf_set(&r->meta, h, (size_t)(meta - ZFS_TXN_HDR))) != 0 ||
        (rc = zfs__index_add_txn(r->ix, tid, pos, err)) != 0)
        return rc == ZE_NOMEM ? fail(r, err, rc, "out of memory") : rc;
    r->in_txn = 1;
    r->tpos = pos;
    r->tlen = tlen;
    r->tend = pos + tlen;
    r->tid = tid;
    r->rpos = pos + meta;
    r->rindex = 0;
    r->ntxn++;
    txn->pos = pos;
    txn->tid = tid;
    txn->tlen = tlen;
    txn->status = status;
    txn->user = (zslice){r->meta.data, ul};
    txn->description = (zslice){r->meta.data + ul, dl};
    txn->extension = (zslice){r->meta.data + ul + dl, el};
    return 1;
}

/* Salvage mode: is there a transaction at p that looks whole? Its header is
 * sane, its trailer matches and its first record names it. */
static int plausible_txn(zfs_reader *r, uint64_t p, zerr *err, int *yes)
{
    const uint8_t *h = NULL;
    int rc = get(r, p, ZFS_TXN_HDR, &h, err);
    *yes = 0;
    if (rc)
        return rc;
    uint64_t tid = zbe64(h), tlen = zbe64(h + 8);
    uint64_t meta = ZFS_TXN_HDR + (uint64_t)zbe16(h + 17) + zbe16(h + 19) + zbe16(h + 21);
    if (tid <= r->ltid || (h[16] != ' ' && h[16] != 'p') || tlen < meta ||
        tlen > r->size - p - 8)
        return 0;
    if ((rc = get(r, p + tlen, 8, &h, err)) != 0 || zbe64(h) != tlen)
        return rc;
    if (tlen - meta >= ZFS_REC_HDR &&
        ((rc = get(r, p + meta, ZFS_REC_HDR, &h, err)) != 0 || zbe64(h + 24) != p))
        return rc;
    *yes = 1;
    return 0;
}

/* Salvage mode: turn a ZE_CORRUPT failure into a skipped region. The damaged
 * transaction (and what was read of it) is dropped, and reading resumes at
 * the next plausible transaction after its start, as fsrecover does. Returns
 * ZFS_DROPPED, or code unchanged when not salvaging. */
static int salvage(zfs_reader *r, int code, zerr *err)
{
    if (!r->opts.salvage || code != ZE_CORRUPT)
        return code;
    uint64_t start = r->in_txn ? r->tpos : r->pos;
    if (!r->ndamaged++) {
        r->damage_pos = start;
        memcpy(r->damage_what, r->failure.msg, sizeof r->damage_what);
    }
    if (r->in_txn) {
        zfs__index_drop_txn(r->ix);
        r->in_txn = 0;
        r->ntxn--;
    }
    zerr_clear(&r->failure);
    uint64_t p = start + 1;
    for (int yes = 0; p + ZFS_TXN_HDR + 8 <= r->size; p++) {
        int rc = plausible_txn(r, p, err, &yes);
        if (rc)
            return rc;
        if (yes)
            break;
    }
    if (p + ZFS_TXN_HDR + 8 > r->size)
        p = r->size;
    r->damaged_bytes += p - start;
    r->pos = p;
    return ZFS_DROPPED;
}

int zfs_reader_next_txn(zfs_reader *r, zfs_txn *txn, zerr *err)
{
    if (r->failure.code)
        return sticky(r, err);
    while (r->in_txn) {
        zfs_rec rec;
        int rc = zfs_reader_next_record(r, &rec, err);
        if (rc < 0)
            return rc;
    }
    int rc;
    do {
        rc = r->done ? 0 : read_header(r, txn, err);
        if (rc < 0)
            rc = salvage(r, rc, err);
    } while (rc == SKIPPED_UNDONE || rc == ZFS_DROPPED);
    return rc;
}

static int end_txn(zfs_reader *r, zerr *err)
{
    const uint8_t *p;
    int rc = get(r, r->tend, 8, &p, err);
    if (rc)
        return rc;
    if (zbe64(p) != r->tlen)
        return fail(r, err, ZE_CORRUPT,
                    "%s has inconsistent transaction length at %" PRIu64 ": trailer %" PRIu64
                    ", expected %" PRIu64 " (the transaction at %" PRIu64 ")",
                    r->path, r->tend, zbe64(p), r->tlen, r->tpos);
    if ((rc = zfs__index_end_txn(r->ix, err)) != 0)
        return fail(r, err, rc, "out of memory");
    r->in_txn = 0;
    r->pos = r->tend + 8;
    return 0;
}

static int check_prev(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    uint64_t expect = zfs__index_last(r->ix, rec->oid);
    rec->prev_zero = 0;
    if (rec->prev == expect)
        return 0;
    if (rec->prev == 0) {
        rec->prev_zero = 1;  /* what pack writes: the start of the visible history */
        return 0;
    }
    if (r->opts.salvage)
        return 0;            /* history is rebuilt from the records themselves */
    if (!expect)
        return fail(r, err, ZE_CORRUPT,
                    "%s data record at %" PRIu64 " (oid 0x%016" PRIx64 ") has prev %" PRIu64
                    ", expected 0: the oid has no earlier record", r->path, rec->pos, rec->oid,
                    rec->prev);
    return fail(r, err, ZE_CORRUPT,
                "%s data record at %" PRIu64 " (oid 0x%016" PRIx64 ") has prev %" PRIu64
                ", expected %" PRIu64 " (the oid's last record before this transaction) or 0",
                r->path, rec->pos, rec->oid, rec->prev, expect);
}

static int check_back(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    uint8_t b[8];
    if (rec->back >= rec->pos ||
        zfs__index_find_pos(r->ix, rec->back, &rec->back_tid, &rec->back_index))
        return fail(r, err, ZE_CORRUPT,
                    "%s back-pointer at %" PRIu64 " (oid 0x%016" PRIx64 ") points at %" PRIu64
                    ": expected the start of an earlier data record", r->path, rec->pos,
                    rec->oid, rec->back);
    int rc = zfs_reader_pread(r, rec->back, b, 8, &r->failure);
    if (rc)
        return sticky(r, err);
    if (zbe64(b) != rec->oid)
        return fail(r, err, ZE_CORRUPT,
                    "%s back-pointer at %" PRIu64 " (oid 0x%016" PRIx64 ") points at the record"
                    " at %" PRIu64 " of oid 0x%016" PRIx64 ": expected a record of the same oid",
                    r->path, rec->pos, rec->oid, rec->back, zbe64(b));
    return 0;
}

static int load_data(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    const uint8_t *p;
    int rc;
    if (rec->plen <= WIN_CAP / 2) {
        if ((rc = get(r, rec->pos + ZFS_REC_HDR, (size_t)rec->plen, &p, err)) != 0)
            return rc;
        rec->data = (zslice){p, (size_t)rec->plen};
        return 0;
    }
    if (rec->plen > SIZE_MAX / 2 || zbuf_reserve(&r->big, (size_t)rec->plen))
        return fail(r, err, ZE_NOMEM, "%s: no memory for the %" PRIu64 "-byte record at %"
                    PRIu64, r->path, rec->plen, rec->pos);
    r->big.len = 0;
    if (zfs_reader_pread(r, rec->pos + ZFS_REC_HDR, r->big.data, (size_t)rec->plen,
                         &r->failure))
        return sticky(r, err);
    rec->data = (zslice){r->big.data, (size_t)rec->plen};
    return 0;
}

/* Decode and check the record header at r->rpos into rec. */
static int read_record(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    const uint8_t *h;
    uint64_t pos = r->rpos;
    int rc;
    if (r->tend - pos < ZFS_REC_HDR)
        return fail(r, err, ZE_CORRUPT,
                    "%s has data records that extend beyond the transaction record; end at %"
                    PRIu64 " (transaction at %" PRIu64 " ends at %" PRIu64 ")",
                    r->path, pos + ZFS_REC_HDR, r->tpos, r->tend);
    if ((rc = get(r, pos, ZFS_REC_HDR + 8, &h, err)) != 0)
        return rc;
    memset(rec, 0, sizeof *rec);
    rec->pos = pos;
    rec->oid = zbe64(h);
    rec->tid = zbe64(h + 8);
    rec->prev = zbe64(h + 16);
    uint64_t tloc = zbe64(h + 24);
    uint16_t vlen = zbe16(h + 32);
    rec->plen = zbe64(h + 34);
    rec->index = r->rindex;
    if (vlen)
        return fail(r, err, ZE_CORRUPT,
                    "%s data record at %" PRIu64 " has a version (vlen %u, expected 0): "
                    "versions (ZODB before 3.9) are not supported", r->path, pos, vlen);
    if (tloc != r->tpos)
        return fail(r, err, ZE_CORRUPT,
                    "%s data record exceeds transaction record at %" PRIu64 ": tloc %" PRIu64
                    " != tpos %" PRIu64, r->path, pos, tloc, r->tpos);
    uint64_t body = rec->plen ? rec->plen : 8;
    if (body > r->tend - pos - ZFS_REC_HDR)
        return fail(r, err, ZE_CORRUPT,
                    "%s has data records that extend beyond the transaction record; end at %"
                    PRIu64 " (transaction at %" PRIu64 " ends at %" PRIu64 ")", r->path,
                    rec->plen > r->size ? r->size : pos + ZFS_REC_HDR + body, r->tpos, r->tend);
    if (rec->tid != r->tid)
        return fail(r, err, ZE_CORRUPT,
                    "%s data record at %" PRIu64 " has tid 0x%016" PRIx64
                    ", expected its transaction's 0x%016" PRIx64, r->path, pos, rec->tid, r->tid);
    if (rec->plen == 0) {
        rec->back = zbe64(h + ZFS_REC_HDR);
        rec->kind = rec->back ? ZFS_BACKPTR : ZFS_DELETE;
    } else {
        rec->kind = ZFS_DATA;
    }
    return 0;
}

static int record_step(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    int rc;
    if (r->rpos == r->tend)
        return (rc = end_txn(r, err)) < 0 ? rc : 0;
    if ((rc = read_record(r, rec, err)) < 0 || (rc = check_prev(r, rec, err)) < 0)
        return rc;
    if (rec->kind == ZFS_BACKPTR && (rc = check_back(r, rec, err)) < 0)
        return rc;
    if (rec->kind == ZFS_DATA && r->opts.want_data && (rc = load_data(r, rec, err)) < 0)
        return rc;
    if ((rc = zfs__index_add_record(r->ix, rec->oid, rec->pos, err)) != 0)
        return fail(r, err, rc, "out of memory");
    r->rpos = rec->pos + ZFS_REC_HDR + (rec->plen ? rec->plen : 8);
    r->rindex++;
    return 1;
}

int zfs_reader_next_record(zfs_reader *r, zfs_rec *rec, zerr *err)
{
    if (r->failure.code)
        return sticky(r, err);
    if (!r->in_txn)
        return 0;
    int rc = record_step(r, rec, err);
    return rc < 0 ? salvage(r, rc, err) : rc;
}

int zfs_reader_resolve(zfs_reader *r, uint64_t back, uint64_t *data_pos, uint64_t *plen,
                       zerr *err)
{
    uint8_t h[ZFS_REC_HDR + 8];
    for (;;) {
        int rc = zfs_reader_pread(r, back, h, sizeof h, err);
        if (rc)
            return rc;
        *plen = zbe64(h + 34);
        *data_pos = back + ZFS_REC_HDR;
        if (*plen)
            return 0;
        uint64_t next = zbe64(h + ZFS_REC_HDR);
        if (next == 0)
            return 0;
        /* targets were checked to lie before their pointers: the walk ends */
        if (next >= back)
            return zerr_set(err, ZE_CORRUPT, "%s: back-pointer chain at %" PRIu64
                            " does not lead backwards", r->path, back);
        back = next;
    }
}

int zfs_reader_tail(const zfs_reader *r, uint64_t *pos, const char **what)
{
    if (!r->torn)
        return 0;
    *pos = r->tail_pos;
    *what = r->tail_what;
    return 1;
}

uint64_t zfs_reader_size(const zfs_reader *r)
{
    return r->size;
}

uint64_t zfs_reader_offset(const zfs_reader *r)
{
    return r->in_txn ? r->rpos : r->pos;
}

uint64_t zfs_reader_txn_count(const zfs_reader *r)
{
    return r->ntxn;
}

uint64_t zfs_reader_undone_count(const zfs_reader *r)
{
    return r->nundone;
}

uint64_t zfs_reader_damage(const zfs_reader *r, uint64_t *bytes, uint64_t *first_pos,
                           const char **first_what)
{
    if (bytes)
        *bytes = r->damaged_bytes;
    if (first_pos)
        *first_pos = r->damage_pos;
    if (first_what)
        *first_what = r->damage_what;
    return r->ndamaged;
}
