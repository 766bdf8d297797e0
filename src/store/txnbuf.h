/* txnbuf.h: the bytes a transaction stores before its commit.
 *
 * Appends go to memory until the buffer passes a threshold, then everything
 * moves to an unlinked temporary file (as ZEO's TransactionBuffer does), so a
 * large transaction costs little memory. Offsets stay valid across the move.
 */
#ifndef ZEOLITE_STORE_TXNBUF_H
#define ZEOLITE_STORE_TXNBUF_H

#include <stdint.h>

#include "common/zbuf.h"
#include "common/zerr.h"

#define TXNBUF_SPILL (8u << 20)

typedef struct txnbuf {
    zbuf mem;            /* contents while in memory */
    int fd;              /* temp file once spilled, else -1 */
    uint64_t size;       /* bytes appended */
    int dirfd;           /* the folder the temp file goes to (borrowed); -1: /tmp */
    const char *shown;   /* its name in messages (borrowed) */
    size_t spill;        /* threshold */
} txnbuf;

/* The temp file has no name (O_TMPFILE), or one only while it is made:
 * nothing in dirfd's folder, which others may write into, can reach it. */
void txnbuf_init(txnbuf *b, int dirfd, const char *shown, size_t spill);
void txnbuf_free(txnbuf *b);
/* Append n bytes; *off gets their offset. */
int txnbuf_append(txnbuf *b, const void *p, size_t n, uint64_t *off, zerr *err);
/* Copy n bytes at off into dst. */
int txnbuf_read(const txnbuf *b, uint64_t off, size_t n, void *dst, zerr *err);
/* A pointer to n bytes at off: into memory, or read into scratch when spilled.
 * Valid until the next append or the next use of scratch. */
int txnbuf_view(const txnbuf *b, uint64_t off, size_t n, zbuf *scratch,
                const uint8_t **out, zerr *err);

#endif
