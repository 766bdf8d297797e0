/* zerr.h: error codes and messages shared by every zeolite module.
 *
 * Every fallible call returns 0 (ZE_OK) or a negative ZE_* code, and, when the
 * caller passes a zerr, fills it with the same code and a message fit to print.
 * A NULL zerr is allowed everywhere: the code alone is then returned.
 * No module aborts on bad input; errors travel back up as these codes.
 */
#ifndef ZEOLITE_ZERR_H
#define ZEOLITE_ZERR_H

#include <stddef.h>

enum {
    ZE_OK = 0,
    ZE_NOTFOUND = -1,      /* unknown oid / record: ZODB's POSKeyError */
    ZE_NOREV = -2,         /* oid exists, but no revision before the tid */
    ZE_CONFLICT = -3,      /* write conflict: ConflictError */
    ZE_READCONFLICT = -4,  /* checkCurrentSerial failed: ReadConflictError */
    ZE_UNDO = -5,          /* undo impossible: UndoError */
    ZE_READONLY = -6,      /* write on a read-only storage: ReadOnlyError */
    ZE_TXN = -7,           /* two-phase-commit misuse: StorageTransactionError */
    ZE_FULL = -8,          /* disk or map full */
    ZE_IO = -9,            /* system call failed (errno in the message) */
    ZE_CORRUPT = -10,      /* damaged data on disk or on the wire */
    ZE_VERSION = -11,      /* database of another format version */
    ZE_BUSY = -12,         /* database in use by another process */
    ZE_INVAL = -13,        /* bad argument */
    ZE_NOMEM = -14,        /* allocation failed */
    ZE_TOOBIG = -15,       /* value over a size limit */
    ZE_PROTO = -16,        /* protocol violation by the peer */
    ZE_CLOSED = -17,       /* connection closed / disconnected */
    ZE_TIMEOUT = -18,      /* operation timed out */
    ZE_EXISTS = -19,       /* target already exists */
    ZE_TYPE = -20,         /* argument of the wrong type or count: TypeError */
    ZE_NOTSUP = -21,       /* an operation this backend does not offer */
};

#define ZERR_MSG_MAX 512

typedef struct zerr {
    int code;
    char msg[ZERR_MSG_MAX];
} zerr;

/* Record code and a printf-style message in e (if non-NULL); returns code. */
int zerr_set(zerr *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As zerr_set, appending ": strerror(errnum)". Returns ZE_IO, or ZE_FULL for
 * ENOSPC/EDQUOT/EFBIG (no room: the disk, a quota or the file size limit),
 * or ZE_NOMEM for ENOMEM. */
int zerr_sys(zerr *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset e to ZE_OK with an empty message. */
void zerr_clear(zerr *e);

/* Short constant name of a code, e.g. "ZE_CONFLICT". */
const char *zerr_name(int code);

#endif
