/* cmdline.c: the flags of `zeolite serve` (runzeo's, and zeolite's own).
 *
 * -C FILE reads a zeo.conf (config.c) where it appears, so later flags
 * override the file. */
#include "server/server_int.h"

#include <getopt.h>
#include <stdio.h>

const char *zsrv_usage(void)
{
    return "usage: zeolite serve [options]\n"
           "  -a, --address ADDR        HOST:PORT, :PORT, PORT, [V6]:PORT or a socket path\n"
           "  -f, --filename DBDIR      serve DBDIR (created if missing) as storage 1, 2, ...\n"
           "      --postgresql URI      serve a PostgreSQL database (a libpq URI or conninfo;\n"
           "                            the schema is made if it is empty) as the next\n"
           "                            storage: -f and --postgresql number in order\n"
           "      --postgresql-shared URI  as --postgresql, for a database other zeolite\n"
           "                            servers serve too (each sees the others' commits)\n"
           "      --postgresql-read URI  a hot standby of the last --postgresql storage:\n"
           "                            loads, history and iteration go there\n"
           "      --read-max-lag SECONDS  how far that standby may lag behind a commit\n"
           "                            before reads go to the primary (default 5)\n"
           "  -C, --configure FILE      runzeo-style zeo.conf (with <lmdb NAME> and\n"
           "                            <postgresql NAME> storages)\n"
           "  -t, --timeout SECONDS     transaction timeout (abort a stalled voter)\n"
           "      --conflict-timeout SECONDS  abort a voter that resolves conflicts for\n"
           "                            longer, even without -t (default 30)\n"
           "      --read-only           serve every storage read-only\n"
           "      --msgpack             announce the msgpack encoding (M5)\n"
           "      --client-conflict-resolution  send every conflict to the client (by\n"
           "                            default BTrees and Length are resolved here)\n"
           "      --invalidation-queue-size N   transactions kept for getInvalidations\n"
           "      --invalidation-age SECONDS    iterate for older getInvalidations\n"
           "      --no-pack-gc          pack without garbage collection\n"
           "      --pid-file FILE       write the process id\n"
           "      --ssl-cert FILE --ssl-key FILE [--ssl-ca FILE|DIR]  TLS (client certs)\n"
           "      --max-frame BYTES     largest accepted message (default 64MB)\n"
           "      --request-memory BYTES  for the messages all connections are sending\n"
           "                            and their decoding (default 1GB)\n"
           "      --output-memory BYTES   replies buffered for slow readers before those\n"
           "                            holding most wait (default 256MB)\n"
           "      --max-connections N   open connections (default 1000)\n"
           "      --max-iterators N     iterators open on the whole server (default 256)\n"
           "      --handshake-timeout SECONDS  to finish the handshake or a begun message\n"
           "      --max-future-tid SECONDS     how far past the clock a client's tid may\n"
           "                            lie (tpc_begin with a tid; default 3600)\n"
           "      --log-file FILE --log-level LEVEL   (default stderr, INFO; FILE may be\n"
           "                            STDOUT or STDERR; LEVEL a name or 0..50)\n"
           "      --metrics HOST:PORT   serve Prometheus metrics at /metrics\n"
           "      --no-sync             do not fsync commits (tests only)\n"
           "      --test                check everything a start checks, create nothing, exit\n"
           "  -h, --help, --version\n";
}

enum {
    OPT_READ_ONLY = 256, OPT_MSGPACK, OPT_INVQ, OPT_INVAGE, OPT_NO_PACK_GC, OPT_PID,
    OPT_SSL_CERT, OPT_SSL_KEY, OPT_SSL_CA, OPT_MAX_FRAME, OPT_LOG_FILE, OPT_LOG_LEVEL,
    OPT_NO_SYNC, OPT_TEST, OPT_HANDSHAKE, OPT_FUTURE_TID, OPT_CONFLICT_TIMEOUT,
    OPT_MAX_ITERATORS, OPT_METRICS, OPT_VERSION, OPT_REQUEST_MEMORY, OPT_OUTPUT_MEMORY,
    OPT_MAX_CONNECTIONS, OPT_CCR, OPT_POSTGRESQL,
    OPT_POSTGRESQL_SHARED, OPT_POSTGRESQL_READ, OPT_READ_MAX_LAG,
};

static const struct option long_opts[] = {
    {"address", required_argument, NULL, 'a'},
    {"filename", required_argument, NULL, 'f'},
    {"configure", required_argument, NULL, 'C'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"msgpack", no_argument, NULL, OPT_MSGPACK},
    {"client-conflict-resolution", no_argument, NULL, OPT_CCR},
    {"invalidation-queue-size", required_argument, NULL, OPT_INVQ},
    {"invalidation-age", required_argument, NULL, OPT_INVAGE},
    {"no-pack-gc", no_argument, NULL, OPT_NO_PACK_GC},
    {"pid-file", required_argument, NULL, OPT_PID},
    {"ssl-cert", required_argument, NULL, OPT_SSL_CERT},
    {"ssl-key", required_argument, NULL, OPT_SSL_KEY},
    {"ssl-ca", required_argument, NULL, OPT_SSL_CA},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"no-sync", no_argument, NULL, OPT_NO_SYNC},
    {"test", no_argument, NULL, OPT_TEST},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
    {"max-future-tid", required_argument, NULL, OPT_FUTURE_TID},
    {"conflict-timeout", required_argument, NULL, OPT_CONFLICT_TIMEOUT},
    {"max-iterators", required_argument, NULL, OPT_MAX_ITERATORS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"version", no_argument, NULL, OPT_VERSION},
    {"request-memory", required_argument, NULL, OPT_REQUEST_MEMORY},
    {"output-memory", required_argument, NULL, OPT_OUTPUT_MEMORY},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"postgresql", required_argument, NULL, OPT_POSTGRESQL},
    {"postgresql-shared", required_argument, NULL, OPT_POSTGRESQL_SHARED},
    {"postgresql-read", required_argument, NULL, OPT_POSTGRESQL_READ},
    {"read-max-lag", required_argument, NULL, OPT_READ_MAX_LAG},
    {NULL, 0, NULL, 0},
};

/* The storage a standby flag is for: the last one, on PostgreSQL. */
static zsrv_storage_cfg *last_postgresql(zsrv_config *c, const char *flag, zerr *err)
{
    if (!c->n_storages || !c->storages[c->n_storages - 1].dsn) {
        zerr_set(err, ZE_INVAL, "%s follows the --postgresql (or --postgresql-shared) of "
                 "the database it is for", flag);
        return NULL;
    }
    return &c->storages[c->n_storages - 1];
}

static int apply_opt(zsrv_config *c, int opt, const char *v, int *no_gc, zerr *err)
{
    zsrv_storage_cfg *sc;
    long long n;
    switch (opt) {
    case 'a': return zsrv__conf_str(&c->address, v, err);
    case 'f': return zsrv__conf_add_storage(c, NULL, v, NULL, err);
    case OPT_POSTGRESQL: return zsrv__conf_add_storage(c, NULL, NULL, v, err);
    case OPT_POSTGRESQL_SHARED:
        if (zsrv__conf_add_storage(c, NULL, NULL, v, err) < 0)
            return err->code;
        c->storages[c->n_storages - 1].shared = 1;
        return 0;
    case OPT_POSTGRESQL_READ:
        if (!(sc = last_postgresql(c, "--postgresql-read", err)))
            return err->code;
        return zsrv__conf_str(&sc->read_dsn, v, err);
    case OPT_READ_MAX_LAG:
        if (!(sc = last_postgresql(c, "--read-max-lag", err)))
            return err->code;
        if (zsrv__conf_bound(v, &sc->read_max_lag))
            return zerr_set(err, ZE_INVAL, "bad --read-max-lag '%s' (seconds, more than 0)", v);
        return 0;
    case 'C': return zsrv_config_file(c, v, err);
    case 't':
        if (zsrv__conf_number(v, &c->txn_timeout))
            return zerr_set(err, ZE_INVAL, "bad --timeout '%s'", v);
        return 0;
    case OPT_READ_ONLY: c->read_only = 1; return 0;
    case OPT_MSGPACK: c->msgpack = 1; return 0;
    case OPT_CCR: c->client_conflict_resolution = 1; return 0;
    case OPT_INVQ:
        if (zsrv__conf_size(v, 10000000, &n))
            return zerr_set(err, ZE_INVAL, "bad --invalidation-queue-size '%s'", v);
        c->invq_size = (int)n;
        return 0;
    case OPT_INVAGE:
        if (zsrv__conf_number(v, &c->inv_age))
            return zerr_set(err, ZE_INVAL, "bad --invalidation-age '%s'", v);
        return 0;
    case OPT_NO_PACK_GC: *no_gc = 1; return 0;
    case OPT_PID: return zsrv__conf_str(&c->pid_file, v, err);
    case OPT_SSL_CERT: return zsrv__conf_str(&c->ssl_cert, v, err);
    case OPT_SSL_KEY: return zsrv__conf_str(&c->ssl_key, v, err);
    case OPT_SSL_CA: return zsrv__conf_str(&c->ssl_ca, v, err);
    case OPT_MAX_FRAME:
        if (zsrv__conf_memory(c, "max-frame", v))
            return zerr_set(err, ZE_INVAL, "bad --max-frame '%s' (1024 .. 4GB-1)", v);
        return 0;
    case OPT_REQUEST_MEMORY:
        if (zsrv__conf_memory(c, "request-memory", v))
            return zerr_set(err, ZE_INVAL, "bad --request-memory '%s' (at least 4MB)", v);
        return 0;
    case OPT_OUTPUT_MEMORY:
        if (zsrv__conf_memory(c, "output-memory", v))
            return zerr_set(err, ZE_INVAL, "bad --output-memory '%s' (at least 1MB)", v);
        return 0;
    case OPT_MAX_CONNECTIONS:
        if (zsrv__conf_memory(c, "max-connections", v))
            return zerr_set(err, ZE_INVAL, "bad --max-connections '%s' (1 .. 1000000)", v);
        return 0;
    case OPT_LOG_FILE: return zsrv__conf_log_file(c, v, err);
    case OPT_LOG_LEVEL:
        if ((c->log_level = zsrv__log_level_parse(v)) < 0)
            return zerr_set(err, ZE_INVAL, "unknown log level '%s'", v);
        return 0;
    case OPT_NO_SYNC: c->no_sync = 1; return 0;
    case OPT_HANDSHAKE:
        if (zsrv__conf_number(v, &c->handshake_timeout))
            return zerr_set(err, ZE_INVAL, "bad --handshake-timeout '%s'", v);
        return 0;
    case OPT_FUTURE_TID:
        if (zsrv__conf_number(v, &c->max_future_tid))
            return zerr_set(err, ZE_INVAL, "bad --max-future-tid '%s'", v);
        return 0;
    case OPT_CONFLICT_TIMEOUT:
        if (zsrv__conf_bound(v, &c->conflict_timeout))
            return zerr_set(err, ZE_INVAL, "bad --conflict-timeout '%s' (seconds, more than 0)",
                            v);
        return 0;
    case OPT_MAX_ITERATORS:
        if (zsrv__conf_size(v, 1000000, &n))
            return zerr_set(err, ZE_INVAL, "bad --max-iterators '%s'", v);
        c->max_iterators = (int)n;
        return 0;
    case OPT_METRICS: return zsrv__conf_str(&c->metrics_address, v, err);
    case OPT_TEST: c->test_only = 1; return 0;
    default: return zerr_set(err, ZE_INVAL, "unknown option");
    }
}

int zsrv_config_args(zsrv_config *c, int argc, char **argv, zerr *err)
{
    int no_gc = 0, opt, rc;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":a:f:C:t:h", long_opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(zsrv_usage(), stdout);
            return 1;
        }
        if (opt == OPT_VERSION)
            return 2;
        if (opt == '?')
            return zerr_set(err, ZE_INVAL, "unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return zerr_set(err, ZE_INVAL, "option '%s' needs a value", argv[optind - 1]);
        if ((rc = apply_opt(c, opt, optarg, &no_gc, err)) < 0)
            return rc;
    }
    if (optind < argc)
        return zerr_set(err, ZE_INVAL, "unexpected argument '%s'", argv[optind]);
    for (size_t i = 0; no_gc && i < c->n_storages; i++)
        c->storages[i].pack_gc = 0;
    return 0;
}

