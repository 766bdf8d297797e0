/* server.h: the zeolite ZEO server (the `zeolite serve` command).
 *
 * A libuv event loop speaking ZEO 5 (Z5 pickle or M5 msgpack) to real
 * ClientStorage clients over TCP, Unix sockets or TLS, serving one or more
 * named LMDB stores. Reads run on the loop thread from a store_reader; commits
 * go through each store's writer thread and come back through a uv_async_t, so
 * the loop never waits for an fsync. Write conflicts on BTrees and
 * BTrees.Length objects are resolved in the server, in C (src/resolve), as
 * ZEO's server resolves them by default; every other conflict goes back to
 * the client (ZEO's client-conflict-resolution mode), and the commit lock is
 * kept while the client resolves and votes again. client-conflict-resolution
 * true sends every conflict to the client.
 *
 * Usage: fill a zsrv_config (zsrv_config_init, then zsrv_config_args and/or
 * zsrv_config_file), then zsrv_run, which returns on SIGTERM/SIGINT/SIGHUP.
 */
#ifndef ZEOLITE_SERVER_H
#define ZEOLITE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/zerr.h"

/* Log levels: Python logging's numbers, which ZConfig's `level` accepts
 * beside the names (blather 15, trace 5, all 1; notset 0 lets everything
 * through). */
enum {
    ZSRV_LOG_CRITICAL = 50,
    ZSRV_LOG_ERROR = 40,
    ZSRV_LOG_WARNING = 30,
    ZSRV_LOG_INFO = 20,
    ZSRV_LOG_DEBUG = 10,
    ZSRV_LOG_NOTSET = 0,
};

/* One log handler of <eventlog>: ZConfig's <logfile> or <syslog>, with
 * ZConfig's keys. Strings are malloc'd and owned by the config. */
typedef enum zsrv_log_kind { ZSRV_LOGH_FILE, ZSRV_LOGH_SYSLOG } zsrv_log_kind;

typedef struct zsrv_log_cfg {
    zsrv_log_kind kind;
    char *path;               /* file: a path, or STDOUT / STDERR */
    char *address;            /* syslog: HOST:PORT over UDP or a Unix socket
                                 path; NULL: localhost:514 */
    int facility;             /* syslog: the facility's number (user: 1) */
    int level;                /* the handler's own level; 0: what the logger passes */
    char *format;             /* Python %-format (escapes already applied);
                                 NULL: the default of the handler's kind */
    char *dateformat;         /* strftime format of %(asctime)s; NULL: ISO 8601 */
    long long max_size;       /* rotate past this many bytes (0: no) */
    int old_files;            /* rotated files kept */
    char *when;               /* timed rotation: S, M, H, D, MIDNIGHT, W0..W6 */
    int interval;             /* units of `when` between rotations */
} zsrv_log_cfg;

/* One served database: the storage name clients register with, and either
 * an LMDB folder (path) or a PostgreSQL database (dsn: a libpq URI or
 * keyword=value conninfo, which may hold a password: it is never logged). */
typedef struct zsrv_storage_cfg {
    char *name;
    char *path;
    char *dsn;
    int read_only;
    int pack_gc;      /* garbage-collect unreachable objects when packing */
    /* PostgreSQL only (0: the store's defaults) */
    int pool_size;    /* connections for reads (default 4) */
    double retry_seconds;   /* how long a read retries a lost connection */
    int lock_timeout_ms;    /* how long a vote waits for an oid another holds */
    char *blob_cache; /* the folder of the blob cache (default: the store's own) */
    int shared;       /* other zeolite servers serve the database too (store.h:
                         "several stores on one database"): opened shared, with
                         the store's feed telling this one what they commit */
    char *read_dsn;   /* a hot standby for reads (store.h: "reads from a
                         standby"); NULL: reads on the primary */
    double read_max_lag;    /* seconds the standby may lag (0: the store's 5) */
} zsrv_storage_cfg;

/* Everything `zeolite serve` can be told. Strings are malloc'd and owned by
 * the config (zsrv_config_free releases them). */
typedef struct zsrv_config {
    char *address;            /* HOST:PORT, :PORT, PORT, [V6]:PORT or a Unix socket path */
    zsrv_storage_cfg *storages;
    size_t n_storages, cap_storages;
    int read_only;            /* whole server read-only */
    int msgpack;              /* announce M5 instead of Z5 */
    int client_conflict_resolution; /* ZEO's switch: 1 sends every conflict to the
                                       client (none is resolved in the server, an
                                       undo's neither); 0 (the default) resolves
                                       BTrees and BTrees.Length ones here first */
    int invq_size;            /* invalidation queue length (transactions) */
    double inv_age;           /* seconds; 0 = no iteration fallback for getInvalidations */
    double txn_timeout;       /* seconds a voter may hold the commit lock; 0 = none */
    double max_future_tid;    /* seconds past the clock a client's explicit tid may lie */
    double conflict_timeout;  /* seconds a voter back from conflicts may keep its
                                 locks without voting again (> 0) */
    int max_iterators;        /* iterators open on the whole server */
    double handshake_timeout; /* seconds to finish the handshake */
    uint32_t max_frame;       /* largest accepted message payload */
    uint64_t request_memory;  /* frames being received and decoded, all connections */
    uint64_t output_memory;   /* replies buffered for slow readers, all connections */
    int max_connections;      /* open connections, handshakes included */
    char *pid_file;
    zsrv_log_cfg *log_handlers;    /* none: stderr */
    size_t n_log_handlers, cap_log_handlers;
    int log_level;            /* the logger's level (ZSRV_LOG_* or 0..50) */
    char *metrics_address;    /* HOST:PORT of the Prometheus endpoint, or NULL */
    char *ssl_cert, *ssl_key; /* server certificate and key (PEM) */
    char *ssl_ca;             /* client CA file or folder: require client certificates */
    int no_sync;              /* skip fsync (tests only; not durable) */
    int test_only;            /* check the configuration and storages, then exit */
} zsrv_config;

/* Defaults: Z5, invalidation queue 100, no transaction timeout, 30 s to
 * resolve conflicts (STORE_CONFLICT_HOLD), 64 MiB frames, 1 GiB of request
 * memory, 256 MiB of output memory, 1000 connections, a 30 s handshake
 * timeout, explicit tids up to an hour ahead, 256 iterators, INFO to
 * stderr. */
#define ZSRV_DEFAULT_MAX_FRAME (64u * 1024 * 1024)
#define ZSRV_DEFAULT_REQUEST_MEMORY (1024ull * 1024 * 1024)
#define ZSRV_DEFAULT_OUTPUT_MEMORY (256ull * 1024 * 1024)
#define ZSRV_DEFAULT_MAX_CONNECTIONS 1000
void zsrv_config_init(zsrv_config *c);
void zsrv_config_free(zsrv_config *c);

/* Apply command-line flags (argv[0] is the command name and is skipped).
 * Returns 0, 1 when --help was asked for (usage already printed to stdout),
 * 2 when --version was (for the caller to print), or ZE_INVAL with a message. -C FILE is read where it appears, so later
 * flags override the file. */
int zsrv_config_args(zsrv_config *c, int argc, char **argv, zerr *err);

/* Read a ZConfig-style zeo.conf (see config.c for the accepted sections).
 * Returns 0 or ZE_INVAL/ZE_IO with a message naming file and line. */
int zsrv_config_file(zsrv_config *c, const char *path, zerr *err);

/* Final checks of the configuration itself (an address with a port in
 * 1-65535, at least one storage, unique names); zsrv_run checks the files. */
int zsrv_config_check(const zsrv_config *c, zerr *err);

/* Check what the start needs (address, TLS files, pid-file and log folders,
 * storage paths; a FileStorage is refused with the import that converts
 * it), listen, and only then create the log file, the databases and the pid
 * file; serve until a stop signal. With test_only, stop after the checks,
 * having created nothing. Returns 0 after a SIGTERM/SIGINT (or a passed
 * test), 1 after SIGHUP (a supervisor restarts the server), or a negative
 * ZE_* code with a message naming what failed (not logged when the log is
 * stderr: the caller prints it). */
int zsrv_run(const zsrv_config *c, zerr *err);

/* Usage text of `zeolite serve`. */
const char *zsrv_usage(void);

#endif
