/* json.c: the client's JSON entry point (the ruok status) over common/zjson. */
#include "client/client.h"

#include <string.h>

#include "common/zjson.h"

int zcl_json_parse(const char *text, zv_arena *a, zv **out, zerr *err)
{
    int rc = zjson_parse(text, strlen(text), a, out, err);
    /* Bad JSON here came from the server: a protocol error for our callers. */
    if (rc == ZE_CORRUPT) {
        if (err)
            err->code = ZE_PROTO;
        rc = ZE_PROTO;
    }
    return rc;
}
