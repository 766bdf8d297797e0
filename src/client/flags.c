/* flags.c: the connection flags shared by the zeolite client commands. */
#include "client/client.h"

#include <string.h>

const char zcl_opts_flags_help[] =
    "  --storage NAME         storage to use (default 1)\n"
    "  --encoding Z|M         force pickle (Z5) or msgpack (M5); default: the server's\n"
    "  --tls                  connect with TLS\n"
    "  --tls-ca FILE          CA certificate(s) to verify the server with\n"
    "  --tls-cert FILE        client certificate (PEM)\n"
    "  --tls-key FILE         client key (PEM; default: in the certificate file)\n"
    "  --tls-server-name NAME name to check in the server certificate\n";

int zcl_opts_parse_flag(zcl_opts *o, int argc, char **argv, int *i, zerr *err)
{
    static const char *const with_value[] = {"--storage", "--encoding", "--tls-ca",
                                             "--tls-cert", "--tls-key", "--tls-server-name"};
    const char *flag = argv[*i];
    if (!strcmp(flag, "--tls")) {
        o->tls = 1;
        return 1;
    }
    size_t k = 0;
    while (k < sizeof with_value / sizeof *with_value && strcmp(flag, with_value[k]))
        k++;
    if (k == sizeof with_value / sizeof *with_value)
        return 0;
    if (*i + 1 >= argc)
        return zerr_set(err, ZE_INVAL, "%s needs a value", flag);
    const char *v = argv[++*i];
    switch (k) {
    case 0: o->storage = v; break;
    case 1:
        if (strcmp(v, "Z") && strcmp(v, "M"))
            return zerr_set(err, ZE_INVAL, "--encoding takes Z or M, not '%s'", v);
        o->encoding = v[0] == 'Z' ? PROTO_PICKLE : PROTO_MSGPACK;
        break;
    case 2: o->tls_ca = v; o->tls = 1; break;
    case 3: o->tls_cert = v; o->tls = 1; break;
    case 4: o->tls_key = v; o->tls = 1; break;
    default: o->tls_server_name = v; o->tls = 1; break;
    }
    return 1;
}
