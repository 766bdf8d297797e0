/* oids.c: new_oids. Oids are reserved durably in batches, so most calls
 * cost no write: a restart skips the unused rest of a batch, never reuses.
 *
 * The counter only grows and saturates at ST_OID_END: oids at or past it
 * are never handed out, so no oid wraps to 0 (the root) and on. */
#include "store/writer.h"

#define OID_RESERVE 1000

static int reserve(store *s, MDB_txn *txn, void *ud, zerr *err)
{
    uint64_t want = *(uint64_t *)ud, have = 0;
    int rc = store__meta_get(txn, s, "next_oid", &have, err);
    if (rc && rc != ZE_NOTFOUND)
        return rc;
    return have >= want ? 0 : store__meta_put(txn, s, "next_oid", want, err);
}

uint64_t store__oid_after(uint64_t oid)
{
    return oid >= ST_OID_END - 1 ? ST_OID_END : oid + 1;
}

int store__lmdb_new_oids(store *s, int n, uint64_t *out, zerr *err)
{
    if (n < 1 || n > 1000)
        return zerr_set(err, ZE_INVAL, "new_oids(%d): n must be 1..1000", n);
    if (s->opt.read_only)
        return zerr_set(err, ZE_READONLY, "%s is open read-only", s->dir);
    for (;;) {
        pthread_mutex_lock(&s->oid_mu);
        uint64_t next = s->next_oid;
        if (ST_OID_END - next < (uint64_t)n) {
            pthread_mutex_unlock(&s->oid_mu);
            return zerr_set(err, ZE_FULL, "no oids left: new_oids(%d) would pass "
                            "%016llx (oids up to %016llx are in use or handed out)", n,
                            (unsigned long long)(ST_OID_END - 1),
                            (unsigned long long)(next - 1));
        }
        if (next + (uint64_t)n <= s->oid_limit) {
            for (int i = 0; i < n; i++)
                out[i] = s->next_oid++;
            pthread_mutex_unlock(&s->oid_mu);
            return 0;
        }
        uint64_t want = ST_OID_END - next - (uint64_t)n < OID_RESERVE
                            ? ST_OID_END : next + (uint64_t)n + OID_RESERVE;
        pthread_mutex_unlock(&s->oid_mu);
        int rc = store__write(s, reserve, &want, err);
        if (rc)
            return rc;
        pthread_mutex_lock(&s->oid_mu);
        if (s->oid_limit < want)
            s->oid_limit = want;
        pthread_mutex_unlock(&s->oid_mu);
    }
}
