/* setup.c: records and the untimed object pool. */
#include "bench_int.h"

#include <stdlib.h>
#include <string.h>

#define SETUP_BATCH 100

int zbench_record(zbuf *out, size_t size, uint32_t seed)
{
    static const char cls[] = "\x80\x03" "czeolite.bench\nObject\n" ".";
    uint8_t hdr[7] = {0x80, 0x03, 'B', (uint8_t)size, (uint8_t)(size >> 8),
                      (uint8_t)(size >> 16), (uint8_t)(size >> 24)};
    zbuf_reset(out);
    if (size > 0xffffffffu || zbuf_reserve(out, sizeof cls + sizeof hdr + size + 1) < 0)
        return ZE_NOMEM;
    zbuf_append(out, cls, sizeof cls - 1);
    zbuf_append(out, hdr, sizeof hdr);
    /* Bytes that do not compress to nothing, cheaply. */
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out->data[out->len++] = (uint8_t)x;
    }
    return zbuf_append_byte(out, '.');
}

static int commit_batch(zcl_client *c, const uint64_t *oids, size_t n, size_t size,
                        uint64_t *tid, zerr *err)
{
    zbuf rec = ZBUF_INIT;
    int rc = zcl_tpc_begin(c, "zeolite bench", "setup", NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = zbench_record(&rec, size, (uint32_t)oids[i]);
        if (rc == 0)
            rc = zcl_store(c, oids[i], 0, rec.data, rec.len);
    }
    zbuf_free(&rec);
    if (rc < 0) {
        if (err)
            *err = *zcl_last_error(c);
        return rc;
    }
    if ((rc = zcl_tpc_vote_sync(c, NULL, NULL, err)) < 0) {
        zcl_tpc_abort_sync(c, NULL);
        return rc;
    }
    return zcl_tpc_finish_sync(c, tid, err);
}

int zb_make_objects(zcl_client *c, size_t n, size_t size, uint64_t **oids_out,
                    uint64_t **serials_out, zerr *err)
{
    uint64_t *oids = calloc(n ? n : 1, sizeof *oids);
    uint64_t *serials = calloc(n ? n : 1, sizeof *serials);
    int rc = oids && serials ? 0 : zerr_set(err, ZE_NOMEM, "out of memory");
    for (size_t done = 0; rc == 0 && done < n;) {
        size_t want = n - done < SETUP_BATCH ? n - done : SETUP_BATCH, got = 0;
        /* Big objects go a few at a time to keep transactions small. */
        if (size >= (1u << 20))
            want = 1;
        rc = zcl_new_oids_sync(c, (unsigned)want, oids + done, &got, err);
        if (rc == 0 && got == 0)
            rc = zerr_set(err, ZE_PROTO, "new_oids returned nothing");
        uint64_t tid = 0;
        if (rc == 0)
            rc = commit_batch(c, oids + done, got, size, &tid, err);
        for (size_t i = 0; rc == 0 && i < got; i++)
            serials[done + i] = tid;
        done += got;
    }
    if (rc < 0) {
        free(oids);
        free(serials);
        return rc;
    }
    *oids_out = oids;
    *serials_out = serials;
    return 0;
}
