/* fs_index_file.c: write the Data.fs.index that FileStorage saves (spec
 * section 8), so that Python opens an exported file without scanning it.
 *
 * The file is a run of protocol-3 pickles written without memo, exactly as
 * ZODB's fsIndex.save writes them: the end offset as an int; one
 * (prefix, packed) tuple per group of oids sharing their first 6 bytes, in
 * oid order, packed = the 2-byte oid suffixes then the 6-byte offsets; None.
 */
#define _GNU_SOURCE
#include "convert/convert.h"
#include "convert/convert_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Python pickles a non-negative int with the smallest of these opcodes. */
static void put_int(FILE *f, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    if (v < 256) {
        b[n++] = 'K';
        b[n++] = (uint8_t)v;
    } else if (v < 65536) {
        b[n++] = 'M';
        b[n++] = (uint8_t)v;
        b[n++] = (uint8_t)(v >> 8);
    } else if (v < 0x80000000u) {
        b[n++] = 'J';
        for (int i = 0; i < 4; i++)
            b[n++] = (uint8_t)(v >> (8 * i));
    } else {
        /* LONG1: little-endian two's complement, a 0 byte when the top bit is set */
        uint8_t len = 0, digits[9];
        for (uint64_t x = v; x; x >>= 8)
            digits[len++] = (uint8_t)x;
        if (digits[len - 1] & 0x80)
            digits[len++] = 0;
        b[n++] = 0x8a;
        b[n++] = len;
        memcpy(b + n, digits, len);
        n += len;
    }
    fwrite(b, 1, n, f);
}

static void put_bytes(FILE *f, const uint8_t *p, size_t len)
{
    if (len < 256) {
        uint8_t h[2] = {'C', (uint8_t)len};
        fwrite(h, 1, 2, f);
    } else {
        uint8_t h[5] = {'B', (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24)};
        fwrite(h, 1, 5, f);
    }
    fwrite(p, 1, len, f);
}

/* One (prefix, packed) pickle for the oids e[0..n), which share a prefix. */
static int put_group(FILE *f, const zfs_oidpos *e, size_t n, zbuf *packed)
{
    uint8_t prefix[8], b[8];
    zbuf_reset(packed);
    if (zbuf_reserve(packed, 8 * n))
        return ZE_NOMEM;
    for (size_t i = 0; i < n; i++) {
        zbe16_put(b, (uint16_t)e[i].oid);
        zbuf_append(packed, b, 2);
    }
    for (size_t i = 0; i < n; i++) {
        zbe64_put(b, e[i].pos);
        zbuf_append(packed, b + 2, 6);
    }
    zbe64_put(prefix, e[0].oid);
    fwrite("\x80\x03", 1, 2, f);
    put_bytes(f, prefix, 6);
    put_bytes(f, packed->data, packed->len);
    fwrite("\x86.", 1, 2, f);
    return 0;
}

int zfs__write_index(zfs_index *ix, uint64_t end, const char *path, zerr *err)
{
    const zfs_oidpos *e;
    size_t n;
    zbuf packed = ZBUF_INIT;
    int rc = zfs__index_take_sorted(ix, &e, &n);
    if (rc)
        return zerr_set(err, rc, "index: out of memory");
    FILE *f = fopen(path, "wbx");
    if (!f)
        return zerr_sys(err, errno, "%s", path);
    fwrite("\x80\x03", 1, 2, f);
    put_int(f, end);
    fputc('.', f);
    for (size_t i = 0; !rc && i < n;) {
        size_t j = i + 1;
        while (j < n && (e[j].oid >> 16) == (e[i].oid >> 16))
            j++;
        rc = put_group(f, e + i, j - i, &packed);
        i = j;
    }
    fwrite("\x80\x03N.", 1, 4, f);
    zbuf_free(&packed);
    if (rc) {
        fclose(f);
        unlink(path);
        return zerr_set(err, rc, "index: out of memory");
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || ferror(f)) {
        rc = zerr_sys(err, errno, "write %s", path);
        fclose(f);
        unlink(path);
        return rc;
    }
    if (fclose(f) != 0) {
        unlink(path);
        return zerr_sys(err, errno, "close %s", path);
    }
    return 0;
}
