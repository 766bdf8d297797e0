/* record.c: transaction values (shared by loads, iteration, undo, commit
 * and pack). Records are read through index.h. */
#include "store/txn.h"

int store__txnval_decode(const void *v, size_t len, st_txnval *out)
{
    const uint8_t *p = v;
    if (len < ST_TXN_HDR)
        return ZE_CORRUPT;
    size_t ulen = zbe16(p + 2), dlen = zbe16(p + 4), elen = zbe16(p + 6);
    uint32_t nrec = zbe32(p + 8);
    if (len != ST_TXN_HDR + ulen + dlen + elen + 8 * (size_t)nrec)
        return ZE_CORRUPT;
    const uint8_t *q = p + ST_TXN_HDR;
    out->status = (char)p[0];
    out->user = (zslice){q, ulen};
    out->description = (zslice){q + ulen, dlen};
    out->extension = (zslice){q + ulen + dlen, elen};
    out->nrec = nrec;
    out->size = zbe64(p + 16);
    out->oids = q + ulen + dlen + elen;
    return 0;
}

int store__txnval_encode(zbuf *b, char status, zslice user, zslice description,
                         zslice extension, uint64_t size, const uint8_t *oids,
                         uint32_t nrec)
{
    if (user.len > STORE_META_MAX || description.len > STORE_META_MAX ||
        extension.len > STORE_META_MAX)
        return ZE_TOOBIG;
    uint8_t h[ST_TXN_HDR] = {0};
    h[0] = (uint8_t)status;
    zbe16_put(h + 2, (uint16_t)user.len);
    zbe16_put(h + 4, (uint16_t)description.len);
    zbe16_put(h + 6, (uint16_t)extension.len);
    zbe32_put(h + 8, nrec);
    zbe64_put(h + 16, size);
    if (zbuf_append(b, h, sizeof h) || zbuf_append(b, user.p, user.len) ||
        zbuf_append(b, description.p, description.len) ||
        zbuf_append(b, extension.p, extension.len) ||
        zbuf_append(b, oids, 8 * (size_t)nrec))
        return ZE_NOMEM;
    return 0;
}
