/* test_tls.c: the client over TLS, with a self-signed certificate made by
 * the openssl command for this test. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "testutil.h"

static ts_server srv;
static char *certdir;

/* A self-signed certificate valid for 127.0.0.1, as DIR/NAME.{pem,key}. */
static void make_cert(const char *dir, const char *name)
{
    char *cmd = NULL;
    cr_assert_geq(asprintf(&cmd,
                           "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=zeolite "
                           "-addext subjectAltName=IP:127.0.0.1 -keyout %s/%s.key "
                           "-out %s/%s.pem >/dev/null 2>&1",
                           dir, name, dir, name), 0);
    cr_assert_eq(ts_run(cmd, NULL), 0, "openssl could not make a certificate");
    free(cmd);
}

static void start(void)
{
    certdir = tu_tmpdir("tls");
    make_cert(certdir, "server");
    make_cert(certdir, "other");
    char extra[512];
    snprintf(extra, sizeof extra, "--ssl-cert %s/server.pem --ssl-key %s/server.key", certdir,
             certdir);
    cr_assert_eq(ts_server_start(&srv, extra), 0, "TLS server did not start");
}

static void stop(void)
{
    ts_server_free(&srv);
    tu_rmrf(certdir);
    free(certdir);
}

TestSuite(client_tls, .init = start, .fini = stop);

Test(client_tls, commit_and_load_over_verified_tls)
{
    char ca[512], key[512];
    snprintf(ca, sizeof ca, "%s/server.pem", certdir);
    snprintf(key, sizeof key, "%s/server.key", certdir);
    zcl_opts o;
    zcl_opts_init(&o);
    o.tls = 1;
    o.tls_ca = ca;
    /* A client certificate too, for servers that require one. */
    o.tls_cert = ca;
    o.tls_key = key;
    zcl_client *c = th_connect(&srv, &o);
    uint64_t oid = th_new_oid(c);
    uint64_t tid = th_commit(c, &oid, NULL, 1, "secret");
    zbuf data = ZBUF_INIT;
    uint64_t start;
    zerr err = {0};
    cr_assert_eq(zcl_load_before_sync(c, oid, ZCL_MAXTID, &data, &start, NULL, &err), 0, "%s",
                 err.msg);
    cr_expect(th_record_has(&data, "secret"));
    cr_expect_eq(start, tid);
    zbuf_free(&data);
    zcl_free(c);
}

Test(client_tls, wrong_ca_is_refused)
{
    char ca[512];
    snprintf(ca, sizeof ca, "%s/other.pem", certdir);
    zcl_opts o;
    zcl_opts_init(&o);
    o.tls = 1;
    o.tls_ca = ca;
    o.timeout_ms = 10000;
    zcl_client *c = NULL;
    zerr err = {0};
    cr_expect_eq(zcl_open_sync(srv.addr, &o, &c, &err), ZE_IO);
    cr_expect_null(c);
}

Test(client_tls, plain_client_cannot_talk_to_tls_server)
{
    zcl_opts o;
    zcl_opts_init(&o);
    o.timeout_ms = 3000;
    zcl_client *c = NULL;
    zerr err = {0};
    cr_expect_lt(zcl_open_sync(srv.addr, &o, &c, &err), 0);
}
