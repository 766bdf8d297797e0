/* output.c: encoding replies, errors and callbacks onto a connection.
 *
 * Everything a connection sends goes through here, in the connection's
 * encoding, appended to its output tail (c->out, or behind its last reply
 * slot: slot.c) in production order (which is what keeps an invalidation
 * ahead of any later reply). An encoding failure of a reply is answered
 * with the ValueError ZEO sends for an unpicklable response. */
#include "server/server_int.h"

#include <string.h>

/* proto's encoders leave the buffer as it was when they fail. */
static int after_encode(zsrv_conn *c, int rc, const zerr *err)
{
    if (rc < 0) {
        zsrv__log(ZSRV_LOG_ERROR, "%s: cannot encode a message: %s", c->peer, err->msg);
        return rc;
    }
    zsrv__slots_count(c);
    zsrv__conn_mark_dirty(c);
    return 0;
}

int zsrv__send_reply(zsrv_conn *c, const zv *msgid, const zv *result)
{
    if (c->state == ZSRV_CONN_CLOSING)
        return ZE_CLOSED;
    zerr err = {0};
    int rc = proto_encode_reply(c->enc, zsrv__out_tail(c), msgid, result, &err);
    if (rc < 0) {
        zsrv__log(ZSRV_LOG_ERROR, "%s: cannot encode a reply: %s", c->peer, err.msg);
        return zsrv__send_error_msg(c, msgid, PROTO_EXC_VALUE, "Couldn't pickle response");
    }
    return after_encode(c, rc, &err);
}

int zsrv__send_error(zsrv_conn *c, const zv *msgid, const proto_exc *e)
{
    if (c->state == ZSRV_CONN_CLOSING)
        return ZE_CLOSED;
    zerr err = {0};
    return after_encode(c, proto_encode_error(c->enc, zsrv__out_tail(c), msgid, e, &err), &err);
}

int zsrv__send_error_msg(zsrv_conn *c, const zv *msgid, const char *cls, const char *msg)
{
    zv_arena *a = zv_arena_new();
    if (!a)
        return ZE_NOMEM;
    proto_exc e;
    int rc = proto_exc_msg(&e, a, cls, msg);
    if (rc == 0)
        rc = zsrv__send_error(c, msgid, &e);
    zv_arena_free(a);
    return rc;
}

int zsrv__send_async(zsrv_conn *c, const char *name, const zv *args)
{
    if (c->state == ZSRV_CONN_CLOSING)
        return ZE_CLOSED;
    zerr err = {0};
    return after_encode(c, proto_encode_async(c->enc, zsrv__out_tail(c), name, args, &err), &err);
}
