/* zeo.conf (config.c) and command-line (cmdline.c) parsing, in process. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "testutil.h"

static char *dir;
static zsrv_config cfg;

static void setup(void)
{
    dir = tu_tmpdir("srvconf");
    zsrv_config_init(&cfg);
}

static void teardown(void)
{
    zsrv_config_free(&cfg);
    tu_rmrf(dir);
    free(dir);
}

TestSuite(server_config, .init = setup, .fini = teardown);

static int parse(const char *text, zerr *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/zeo.conf", dir);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    return zsrv_config_file(&cfg, path, err);
}

Test(server_config, runzeo_file_with_lmdb_storages)
{
    zerr err = {0};
    int rc = parse("%define ROOT /var/db\n"
                   "<zeo>\n"
                   "  address 127.0.0.1:8100   \n"
                   "  read-only false\n"
                   "  invalidation-queue-size 250\n"
                   "  invalidation-age 3600\n"
                   "  transaction-timeout 30\n"
                   "  pid-filename $ROOT/zeo.pid\n"
                   "  client-conflict-resolution true\n"
                   "  msgpack yes\n"
                   "  <ssl>\n    certificate /c.pem\n    key /k.pem\n    authenticate /ca.pem\n  </ssl>\n"
                   "</zeo>\n"
                   "# a comment\n"
                   "<lmdb main>\n  path ${ROOT}/main\n</lmdb>\n"
                   "<lmdb 2>\n  path $ROOT/two\n  read-only true\n  pack-gc false\n</lmdb>\n"
                   "<eventlog>\n  level warning\n  <logfile>\n    path /tmp/x.log\n"
                   "    format %(message)s\n  </logfile>\n</eventlog>\n"
                   "<runner>\n  program runzeo\n</runner>\n",
                   &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_str_eq(cfg.address, "127.0.0.1:8100");
    cr_expect_eq(cfg.invq_size, 250);
    cr_expect_float_eq(cfg.inv_age, 3600, 1e-9);
    cr_expect_float_eq(cfg.txn_timeout, 30, 1e-9);
    cr_expect_str_eq(cfg.pid_file, "/var/db/zeo.pid");
    cr_expect_eq(cfg.msgpack, 1);
    cr_expect_eq(cfg.client_conflict_resolution, 1);
    cr_expect_str_eq(cfg.ssl_cert, "/c.pem");
    cr_expect_str_eq(cfg.ssl_ca, "/ca.pem");
    cr_assert_eq(cfg.n_storages, 2);
    cr_expect_str_eq(cfg.storages[0].name, "main");
    cr_expect_str_eq(cfg.storages[0].path, "/var/db/main");
    cr_expect_eq(cfg.storages[0].pack_gc, 1);
    cr_expect_str_eq(cfg.storages[1].path, "/var/db/two");
    cr_expect_eq(cfg.storages[1].read_only, 1);
    cr_expect_eq(cfg.storages[1].pack_gc, 0);
    cr_expect_eq(cfg.log_level, ZSRV_LOG_WARNING);
    cr_assert_eq(cfg.n_log_handlers, 1);
    cr_expect_str_eq(cfg.log_handlers[0].path, "/tmp/x.log");
    cr_expect_str_eq(cfg.log_handlers[0].format, "%(message)s");
    cr_expect_eq(zsrv_config_check(&cfg, &err), 0, "%s", err.msg);
}

Test(server_config, python_storages_point_to_import)
{
    zerr err = {0};
    int rc = parse("<zeo>\n address 8100\n</zeo>\n<filestorage 1>\n path /x/Data.fs\n</filestorage>\n",
                   &err);
    cr_expect_lt(rc, 0);
    cr_expect(strstr(err.msg, "zeolite import"), "%s", err.msg);
    cr_expect(strstr(err.msg, ":4:"), "the message names the line: %s", err.msg);
}

Test(server_config, python_only_features_are_clear_errors)
{
    const char *bad[] = {
        "<zeo>\n <ssl>\n  certificate /c\n  password-function a.b\n </ssl>\n</zeo>\n",
        "<zeo>\n no-such-key 1\n</zeo>\n",
        "<zeo>\n address $NOPE\n</zeo>\n",
        "<zeo>\n read-only maybe\n</zeo>\n",
        "<zeo>\n address 1\n",
        "<lmdb 1>\n</lmdb>\n",
        "<lmdb 1>\n path /a\n</lmdb>\n<lmdb 1>\n path /b\n</lmdb>\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zerr err = {0};
        zsrv_config_free(&cfg);
        zsrv_config_init(&cfg);
        cr_expect_lt(parse(bad[i], &err), 0, "accepted: %s", bad[i]);
        cr_expect_neq(err.msg[0], 0);
    }
}

Test(server_config, flags_name_storages_like_runzeo)
{
    char *argv[] = {"serve", "-a", "/tmp/zeo.sock", "-f", "/d1", "--filename=/d2", "-t", "2.5",
                    "--read-only", "--msgpack", "--invalidation-queue-size", "7",
                    "--no-pack-gc", "--max-frame", "64MB", NULL};
    zerr err = {0};
    cr_assert_eq(zsrv_config_args(&cfg, 15, argv, &err), 0, "%s", err.msg);
    cr_expect_str_eq(cfg.address, "/tmp/zeo.sock");
    cr_assert_eq(cfg.n_storages, 2);
    cr_expect_str_eq(cfg.storages[0].name, "1");
    cr_expect_str_eq(cfg.storages[1].name, "2");
    cr_expect_str_eq(cfg.storages[1].path, "/d2");
    cr_expect_eq(cfg.storages[0].pack_gc, 0);
    cr_expect_float_eq(cfg.txn_timeout, 2.5, 1e-9);
    cr_expect_eq(cfg.read_only, 1);
    cr_expect_eq(cfg.msgpack, 1);
    cr_expect_eq(cfg.invq_size, 7);
    cr_expect_eq(cfg.max_frame, 64u * 1024 * 1024);
}

/* ZEO's switch and its default: false, the server resolves what it can. */
Test(server_config, client_conflict_resolution_as_in_zeo)
{
    zerr err = {0};
    cr_expect_eq(cfg.client_conflict_resolution, 0);
    cr_assert_eq(parse("<zeo>\n address 8100\n client-conflict-resolution false\n</zeo>\n", &err),
                 0, "%s", err.msg);
    cr_expect_eq(cfg.client_conflict_resolution, 0);
    cr_assert_eq(parse("<zeo>\n address 8100\n client-conflict-resolution on\n</zeo>\n", &err), 0,
                 "%s", err.msg);
    cr_expect_eq(cfg.client_conflict_resolution, 1);
    cr_expect_lt(parse("<zeo>\n client-conflict-resolution sometimes\n</zeo>\n", &err), 0);
    zsrv_config_free(&cfg);
    zsrv_config_init(&cfg);
    char *argv[] = {"serve", "-f", "/d1", "--client-conflict-resolution", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 4, argv, &err), 0, "%s", err.msg);
    cr_expect_eq(cfg.client_conflict_resolution, 1);
}

/* Many storages and defines: the arrays grow past their first room, and a
 * zeo.conf given with -C mixes with -f flags in order. */
Test(server_config, many_storages_and_defines)
{
    char text[8192], *o = text;
    for (int i = 0; i < 20; i++)
        o += sprintf(o, "%%define D%d /data/%d\n", i, i);
    for (int i = 0; i < 20; i++)
        o += sprintf(o, "<lmdb s%d>\n  path $D%d\n</lmdb>\n", i, i);
    char path[1024];
    snprintf(path, sizeof path, "%s/zeo.conf", dir);
    cr_assert_eq(tu_write_file(path, text, strlen(text)), 0);
    char *argv[] = {"serve", "-f", "/first", "-C", path, "-f", "/last", NULL};
    zerr err = {0};
    cr_assert_eq(zsrv_config_args(&cfg, 7, argv, &err), 0, "%s", err.msg);
    cr_assert_eq(cfg.n_storages, 22);
    cr_expect_str_eq(cfg.storages[0].path, "/first");
    for (int i = 0; i < 20; i++) {
        char name[8], want[16];
        snprintf(name, sizeof name, "s%d", i);
        snprintf(want, sizeof want, "/data/%d", i);
        cr_expect_str_eq(cfg.storages[1 + i].name, name);
        cr_expect_str_eq(cfg.storages[1 + i].path, want);
    }
    cr_expect_str_eq(cfg.storages[21].name, "22");
    cr_expect_str_eq(cfg.storages[21].path, "/last");
}

Test(server_config, bad_flags_are_refused)
{
    char *argv1[] = {"serve", "-t", "soon", NULL};
    char *argv2[] = {"serve", "--bogus", NULL};
    char *argv3[] = {"serve", "-a", NULL};
    zerr err = {0};
    cr_expect_lt(zsrv_config_args(&cfg, 3, argv1, &err), 0);
    cr_expect_lt(zsrv_config_args(&cfg, 2, argv2, &err), 0);
    cr_expect_lt(zsrv_config_args(&cfg, 2, argv3, &err), 0);
    cr_expect_lt(zsrv_config_check(&cfg, &err), 0, "no address and no storage must fail");
}

Test(server_config, the_bounds_on_hostile_clients)
{
    zerr err = {0};
    cr_expect_float_eq(cfg.max_future_tid, 3600, 1e-9);
    cr_assert_eq(parse("<zeo>\n  max-future-tid 60\n</zeo>\n", &err), 0, "%s", err.msg);
    cr_expect_float_eq(cfg.max_future_tid, 60, 1e-9);
    char *argv[] = {"serve", "--max-future-tid", "0.5", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 3, argv, &err), 0, "%s", err.msg);
    cr_expect_float_eq(cfg.max_future_tid, 0.5, 1e-9);
    char *bad[] = {"serve", "--max-future-tid", "nan", NULL};
    cr_expect_lt(zsrv_config_args(&cfg, 3, bad, &err), 0);
    cr_expect_lt(parse("<zeo>\n  max-future-tid -1\n</zeo>\n", &err), 0);

    cr_expect_float_eq(cfg.conflict_timeout, 30, 1e-9);
    cr_assert_eq(parse("<zeo>\n  conflict-timeout 5\n</zeo>\n", &err), 0, "%s", err.msg);
    cr_expect_float_eq(cfg.conflict_timeout, 5, 1e-9);
    char *ct[] = {"serve", "--conflict-timeout", "0.25", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 3, ct, &err), 0, "%s", err.msg);
    cr_expect_float_eq(cfg.conflict_timeout, 0.25, 1e-9);
    /* The bound cannot be switched off: no 0, no infinity. */
    cr_expect_lt(parse("<zeo>\n  conflict-timeout 0\n</zeo>\n", &err), 0);
    char *inf[] = {"serve", "--conflict-timeout", "inf", NULL};
    cr_expect_lt(zsrv_config_args(&cfg, 3, inf, &err), 0);

    cr_expect_eq(cfg.max_iterators, 256);
    cr_assert_eq(parse("<zeo>\n  max-iterators 1000\n</zeo>\n", &err), 0, "%s", err.msg);
    cr_expect_eq(cfg.max_iterators, 1000);
    char *mi[] = {"serve", "--max-iterators", "3", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 3, mi, &err), 0, "%s", err.msg);
    cr_expect_eq(cfg.max_iterators, 3);
    cr_expect_lt(parse("<zeo>\n  max-iterators many\n</zeo>\n", &err), 0);
}

/* The memory bounds (issue 10): defaults, zeo.conf keys, flags over them. */
Test(server_config, memory_bounds_in_zeo_conf_and_flags)
{
    cr_expect_eq(cfg.max_frame, 64u << 20);
    cr_expect_eq(cfg.request_memory, 1ull << 30);
    cr_expect_eq(cfg.output_memory, 256ull << 20);
    cr_expect_eq(cfg.max_connections, 1000);
    zerr err = {0};
    cr_assert_eq(parse("<zeo>\n address 8100\n max-frame 100MB\n request-memory 2GB\n"
                       " output-memory 64MB\n max-connections 50\n</zeo>\n", &err), 0, "%s",
                 err.msg);
    cr_expect_eq(cfg.max_frame, 100u << 20);
    cr_expect_eq(cfg.request_memory, 2ull << 30);
    cr_expect_eq(cfg.output_memory, 64ull << 20);
    cr_expect_eq(cfg.max_connections, 50);
    char path[1024];
    snprintf(path, sizeof path, "%s/zeo.conf", dir);
    char *argv[] = {"serve", "-C", path, "--output-memory", "8MB", "--max-connections", "7",
                    "--request-memory", "512MB", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 9, argv, &err), 0, "%s", err.msg);
    cr_expect_eq(cfg.output_memory, 8ull << 20);
    cr_expect_eq(cfg.max_connections, 7);
    cr_expect_eq(cfg.request_memory, 512ull << 20);
    cr_expect_eq(cfg.max_frame, 100u << 20);
    const char *bad[] = {"request-memory 1MB", "output-memory 10", "max-connections 0",
                         "max-frame 12", "request-memory lots"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "<zeo>\n %s\n</zeo>\n", bad[i]);
        cr_expect_lt(parse(text, &err), 0, "accepted: %s", bad[i]);
        cr_expect(strstr(err.msg, ":2:"), "%s", err.msg);
    }
    char *argv2[] = {"serve", "--max-connections", "-3", NULL};
    cr_expect_lt(zsrv_config_args(&cfg, 3, argv2, &err), 0);
}

/* --postgresql takes the next number, mixed with -f in command-line order;
 * its URI is kept as given (a password too: only ever handed to libpq). */
Test(server_config, postgresql_flags_number_with_lmdb_ones)
{
    char *argv[] = {"serve", "-a", ":8100", "-f", "/d1",
                    "--postgresql", "postgresql://zeo:secret@db.example/zodb",
                    "-f", "/d3", "--postgresql=dbname=other host=/run/postgresql", NULL};
    zerr err = {0};
    cr_assert_eq(zsrv_config_args(&cfg, 10, argv, &err), 0, "%s", err.msg);
    cr_assert_eq(cfg.n_storages, 4);
    const char *names[] = {"1", "2", "3", "4"};
    for (int i = 0; i < 4; i++)
        cr_expect_str_eq(cfg.storages[i].name, names[i]);
    cr_expect_str_eq(cfg.storages[0].path, "/d1");
    cr_expect_null(cfg.storages[0].dsn);
    cr_expect_null(cfg.storages[1].path);
    cr_expect_str_eq(cfg.storages[1].dsn, "postgresql://zeo:secret@db.example/zodb");
    cr_expect_str_eq(cfg.storages[2].path, "/d3");
    cr_expect_str_eq(cfg.storages[3].dsn, "dbname=other host=/run/postgresql");
    cr_expect_eq(cfg.storages[3].pack_gc, 1);
    cr_expect_eq(zsrv_config_check(&cfg, &err), 0, "%s", err.msg);
}

Test(server_config, postgresql_sections_beside_lmdb_ones)
{
    zerr err = {0};
    int rc = parse("<zeo>\n  address :8100\n</zeo>\n"
                   "<postgresql main>\n"
                   "  dsn dbname=zodb host=/run/postgresql user=zeo\n"
                   "  pool-size 8\n  retry-seconds 30\n  lock-timeout 2.5\n"
                   "  blob-cache /var/cache/zeolite/main\n  pack-gc false\n"
                   "  shared-blob-dir false\n"
                   "</postgresql>\n"
                   "<lmdb local>\n  path /var/db/local\n</lmdb>\n"
                   "<postgresql ro>\n  dsn postgresql:///zodb?host=/run/postgresql\n"
                   "  read-only true\n</postgresql>\n",
                   &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(cfg.n_storages, 3);
    zsrv_storage_cfg *m = &cfg.storages[0];
    cr_expect_str_eq(m->name, "main");
    cr_expect_str_eq(m->dsn, "dbname=zodb host=/run/postgresql user=zeo");
    cr_expect_null(m->path);
    cr_expect_eq(m->pool_size, 8);
    cr_expect_float_eq(m->retry_seconds, 30, 1e-9);
    cr_expect_eq(m->lock_timeout_ms, 2500);
    cr_expect_str_eq(m->blob_cache, "/var/cache/zeolite/main");
    cr_expect_eq(m->pack_gc, 0);
    cr_expect_str_eq(cfg.storages[1].path, "/var/db/local");
    cr_expect_str_eq(cfg.storages[2].dsn, "postgresql:///zodb?host=/run/postgresql");
    cr_expect_eq(cfg.storages[2].read_only, 1);
    cr_expect_eq(cfg.storages[2].pool_size, 0, "the store's default");
    cr_expect_eq(zsrv_config_check(&cfg, &err), 0, "%s", err.msg);
}

Test(server_config, postgresql_sections_are_checked)
{
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"<postgresql 1>\n  pool-size 4\n</postgresql>\n", "needs a dsn"},
        {"<postgresql 1>\n  path /var/db\n</postgresql>\n", "takes a dsn"},
        {"<postgresql 1>\n  dsn dbname=x\n  pool-size 0\n</postgresql>\n", "bad pool-size"},
        {"<postgresql 1>\n  dsn dbname=x\n  pool-size 4k\n</postgresql>\n", "bad pool-size"},
        {"<postgresql 1>\n  dsn dbname=x\n  lock-timeout 0\n</postgresql>\n", "bad lock-timeout"},
        {"<postgresql 1>\n  dsn dbname=x\n  retry-seconds never\n</postgresql>\n",
         "bad retry-seconds"},
        {"<postgresql 1>\n  dsn dbname=x\n  shared-blob-dir true\n</postgresql>\n",
         "not offered on PostgreSQL"},
        {"<postgresql 1>\n  dsn dbname=x\n  map-size 1GB\n</postgresql>\n",
         "unknown key 'map-size' in <postgresql>"},
        {"<zeo>\n  <postgresql 1>\n  </postgresql>\n</zeo>\n", "must be at the top level"},
        {"<lmdb 1>\n  path /a\n</lmdb>\n<postgresql 1>\n  dsn dbname=x\n</postgresql>\n",
         "two storages are named '1'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zsrv_config_free(&cfg);
        zsrv_config_init(&cfg);
        zerr err = {0};
        cr_expect_lt(parse(bad[i].text, &err), 0, "accepted: %s", bad[i].text);
        cr_expect(strstr(err.msg, bad[i].says), "'%s' for %s", err.msg, bad[i].text);
    }
}

/* A standby for reads: read-dsn and read-max-lag in <postgresql>, or
 * --postgresql-read and --read-max-lag after the --postgresql they are for. */
Test(server_config, a_standby_for_reads_in_zeo_conf_and_flags)
{
    zerr err = {0};
    int rc = parse("<postgresql main>\n  dsn dbname=zodb host=primary\n  shared true\n"
                   "  read-dsn dbname=zodb host=standby\n  read-max-lag 2.5\n</postgresql>\n",
                   &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_expect_str_eq(cfg.storages[0].read_dsn, "dbname=zodb host=standby");
    cr_expect_float_eq(cfg.storages[0].read_max_lag, 2.5, 1e-9);
    zsrv_config_free(&cfg);
    zsrv_config_init(&cfg);
    char *argv[] = {"serve", "-f", "/d1", "--postgresql", "dbname=a", "--postgresql-read",
                    "dbname=a host=standby", "--read-max-lag", "0.5", NULL};
    cr_assert_eq(zsrv_config_args(&cfg, 9, argv, &err), 0, "%s", err.msg);
    cr_expect_null(cfg.storages[0].read_dsn);
    cr_expect_str_eq(cfg.storages[1].read_dsn, "dbname=a host=standby");
    cr_expect_float_eq(cfg.storages[1].read_max_lag, 0.5, 1e-9);
    static struct {
        char *argv[6];
        const char *says;
    } bad[] = {
        {{"serve", "--postgresql-read", "dbname=a", NULL}, "follows the --postgresql"},
        {{"serve", "-f", "/d", "--read-max-lag", "1"}, "follows the --postgresql"},
        {{"serve", "--postgresql", "dbname=a", "--read-max-lag", "0"}, "bad --read-max-lag"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zsrv_config_free(&cfg);
        zsrv_config_init(&cfg);
        int argc = 0;
        while (bad[i].argv[argc])
            argc++;
        cr_expect_lt(zsrv_config_args(&cfg, argc, bad[i].argv, &err), 0, "accepted %s",
                     bad[i].says);
        cr_expect(strstr(err.msg, bad[i].says), "'%s'", err.msg);
    }
    zsrv_config_free(&cfg);
    zsrv_config_init(&cfg);
    cr_expect_lt(parse("<lmdb 1>\n  path /a\n  read-dsn dbname=x\n</lmdb>\n", &err), 0);
    cr_expect(strstr(err.msg, "unknown key 'read-dsn' in <lmdb>"), "'%s'", err.msg);
    cr_expect_lt(parse("<postgresql 2>\n  dsn dbname=x\n  read-max-lag -1\n</postgresql>\n",
                       &err), 0);
}
