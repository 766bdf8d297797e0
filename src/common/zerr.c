#include "common/zerr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int zerr_set(zerr *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int zerr_sys(zerr *e, int errnum, const char *fmt, ...)
{
    int code = ZE_IO;
    if (errnum == ENOSPC || errnum == EDQUOT || errnum == EFBIG)
        code = ZE_FULL;
    else if (errnum == ENOMEM)
        code = ZE_NOMEM;
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof e->msg)
            snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
        e->code = code;
    }
    return code;
}

void zerr_clear(zerr *e)
{
    if (e) {
        e->code = ZE_OK;
        e->msg[0] = '\0';
    }
}

const char *zerr_name(int code)
{
    switch (code) {
    case ZE_OK: return "ZE_OK";
    case ZE_NOTFOUND: return "ZE_NOTFOUND";
    case ZE_NOREV: return "ZE_NOREV";
    case ZE_CONFLICT: return "ZE_CONFLICT";
    case ZE_READCONFLICT: return "ZE_READCONFLICT";
    case ZE_UNDO: return "ZE_UNDO";
    case ZE_READONLY: return "ZE_READONLY";
    case ZE_TXN: return "ZE_TXN";
    case ZE_FULL: return "ZE_FULL";
    case ZE_IO: return "ZE_IO";
    case ZE_CORRUPT: return "ZE_CORRUPT";
    case ZE_VERSION: return "ZE_VERSION";
    case ZE_BUSY: return "ZE_BUSY";
    case ZE_INVAL: return "ZE_INVAL";
    case ZE_NOMEM: return "ZE_NOMEM";
    case ZE_TOOBIG: return "ZE_TOOBIG";
    case ZE_PROTO: return "ZE_PROTO";
    case ZE_CLOSED: return "ZE_CLOSED";
    case ZE_TIMEOUT: return "ZE_TIMEOUT";
    case ZE_EXISTS: return "ZE_EXISTS";
    case ZE_TYPE: return "ZE_TYPE";
    case ZE_NOTSUP: return "ZE_NOTSUP";
    default: return "ZE_UNKNOWN";
    }
}
