/* hello.c: the protocol announcement and the client's first frame (spec 2, 3). */
#include "proto/proto.h"

#include <string.h>

const char *proto_announcement(proto_enc enc)
{
    switch (enc) {
    case PROTO_PICKLE: return "Z5";
    case PROTO_MSGPACK: return "M5";
    }
    return NULL;
}

int proto_is_announcement(const uint8_t *p, size_t len)
{
    if (len < 6 || p[0] || p[1] || p[2] || p[3] < 2 || p[3] > 8)
        return 0;
    return (p[4] == 'Z' || p[4] == 'M') && p[5] >= '0' && p[5] <= '9';
}

/* The reference server strips the first byte and accepts only the version
 * "5"; it then picks the encoding from that first byte, whatever it announced.
 * Any other letter (the reference hangs on "X5") or version is refused. */
proto_hello proto_parse_hello(const uint8_t *p, size_t len)
{
    if (len == 4 && memcmp(p, "ruok", 4) == 0)
        return PROTO_HELLO_RUOK;
    if (len != 2 || p[1] != '5')
        return PROTO_HELLO_BAD;
    if (p[0] == 'Z')
        return PROTO_HELLO_Z5;
    if (p[0] == 'M')
        return PROTO_HELLO_M5;
    return PROTO_HELLO_BAD;
}
