/* zblob.c: ZODB's blob folder layouts (see zblob.h). */
#include "common/zblob.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int zblob_repr(uint64_t id, char buf[ZBLOB_REPR_MAX])
{
    int bytes = 8;
    while (bytes > 1 && !(id >> (8 * (bytes - 1))))
        bytes--;
    return snprintf(buf, ZBLOB_REPR_MAX, "0x%0*llx", 2 * bytes, (unsigned long long)id);
}

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap ? 0 : ZE_TOOBIG;
}

int zblob_oid_dir(const char *dir, zblob_layout layout, uint64_t oid, char *buf, size_t cap)
{
    if (layout == ZBLOB_LAWN) {
        char repr[ZBLOB_REPR_MAX];
        zblob_repr(oid, repr);
        return fits(snprintf(buf, cap, "%s/%s", dir, repr), cap);
    }
    char sub[8 * 5 + 1];
    for (int i = 0; i < 8; i++)
        snprintf(sub + 5 * i, 6, "/0x%02x", (unsigned)(oid >> (56 - 8 * i)) & 0xff);
    return fits(snprintf(buf, cap, "%s%s", dir, sub), cap);
}

int zblob_path(const char *dir, zblob_layout layout, uint64_t oid, uint64_t tid, char *buf,
               size_t cap)
{
    int rc = zblob_oid_dir(dir, layout, oid, buf, cap);
    if (rc)
        return rc;
    size_t n = strlen(buf);
    char repr[ZBLOB_REPR_MAX];
    zblob_repr(tid, repr);
    return fits(snprintf(buf + n, cap - n, "/%s.blob", repr), cap - n);
}

const char *zblob_layout_name(zblob_layout layout)
{
    return layout == ZBLOB_LAWN ? "lawn" : "bushy";
}

int zblob_layout_read(const char *dir, zblob_layout *out, zerr *err)
{
    char path[4096], text[64];
    if (snprintf(path, sizeof path, "%s/.layout", dir) >= (int)sizeof path)
        return zerr_set(err, ZE_TOOBIG, "blob folder path too long: %s", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR
                   ? zerr_set(err, ZE_NOTFOUND, "%s: no layout marker", dir)
                   : zerr_sys(err, errno, "%s", path);
    size_t n = fread(text, 1, sizeof text - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return zerr_set(err, ZE_IO, "%s: read error", path);
    text[n] = 0;
    char *s = text, *e = text + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    if (!strcmp(s, "bushy"))
        *out = ZBLOB_BUSHY;
    else if (!strcmp(s, "lawn"))
        *out = ZBLOB_LAWN;
    else
        return zerr_set(err, ZE_INVAL, "%s: unknown blob folder layout '%.40s' "
                        "(expected bushy or lawn)", path, s);
    return 0;
}

/* 1 when dir has an entry whose name does not start with a dot. */
static int has_visible_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.';
    closedir(d);
    return found;
}

int zblob_layout_select(const char *dir, zblob_layout *out, zerr *err)
{
    int rc = zblob_layout_read(dir, out, err);
    if (rc != ZE_NOTFOUND)
        return rc;
    zerr_clear(err);
    *out = has_visible_entries(dir) ? ZBLOB_LAWN : ZBLOB_BUSHY;
    return 0;
}

int zblob_layout_write(const char *dir, zblob_layout layout, zerr *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.layout", dir) >= (int)sizeof path)
        return zerr_set(err, ZE_TOOBIG, "blob folder path too long: %s", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return zerr_sys(err, errno, "create %s", path);
    int bad = fputs(zblob_layout_name(layout), f) < 0;
    if (fclose(f) != 0 || bad)
        return zerr_sys(err, errno, "write %s", path);
    return 0;
}
