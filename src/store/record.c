/* record.c: reading records and transaction values (shared by loads,
 * iteration, undo, commit and pack). */
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

int store__rec_get(MDB_txn *txn, store *s, uint64_t oid, uint64_t tid, uint32_t index,
                   st_rec *out, zerr *err)
{
    uint8_t key[ST_KEY_LEN];
    st_key(key, oid, tid);
    MDB_val k = {ST_KEY_LEN, key}, v;
    int rc = mdb_get(txn, s->dbi_records, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return store__mdb_err(err, rc, "read record");
    if (!rc) {
        if (st_rec_decode(v.mv_data, v.mv_size, out))
            return zerr_set(err, ZE_CORRUPT, "damaged record %016llx@%016llx",
                            (unsigned long long)oid, (unsigned long long)tid);
        if (index == ST_INDEX_LAST || out->index == index)
            return 0;
    }
    if (index == ST_INDEX_LAST)
        return ZE_NOTFOUND;
    st_dupkey(key, tid, index);
    k.mv_size = ST_DUPKEY_LEN;
    rc = mdb_get(txn, s->dbi_dups, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ZE_NOTFOUND;
    if (rc)
        return store__mdb_err(err, rc, "read record");
    if (v.mv_size < 8 || zbe64(v.mv_data) != oid ||
        st_rec_decode((uint8_t *)v.mv_data + 8, v.mv_size - 8, out))
        return zerr_set(err, ZE_CORRUPT, "damaged record %u of transaction %016llx",
                        index, (unsigned long long)tid);
    return 0;
}

int store__rec_resolve(MDB_txn *txn, store *s, uint64_t oid, const st_rec *rec,
                       st_rec *out, zerr *err)
{
    if (rec->kind != STORE_REC_BACKPTR) {
        *out = *rec;
        return 0;
    }
    if (!rec->data_tid) {
        memset(out, 0, sizeof *out);
        out->kind = STORE_REC_DELETE;
        return 0;
    }
    int rc = store__rec_get(txn, s, oid, rec->data_tid, rec->data_index, out, err);
    if (rc == ZE_NOTFOUND || (!rc && out->kind != STORE_REC_DATA))
        return zerr_set(err, ZE_CORRUPT, "back-pointer of oid %016llx to a missing "
                        "record in %016llx", (unsigned long long)oid,
                        (unsigned long long)rec->data_tid);
    return rc;
}

int store__current(MDB_cursor *cur, uint64_t oid, uint64_t *tid, MDB_val *val)
{
    uint8_t key[ST_KEY_LEN];
    st_key(key, oid, UINT64_MAX);
    MDB_val k = {ST_KEY_LEN, key}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    else if (!rc && !(zbe64(k.mv_data) == oid && zbe64((uint8_t *)k.mv_data + 8) == UINT64_MAX))
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    if (rc || k.mv_size != ST_KEY_LEN || zbe64(k.mv_data) != oid)
        return ZE_NOTFOUND;
    *tid = zbe64((uint8_t *)k.mv_data + 8);
    if (val)
        *val = v;
    return 0;
}
