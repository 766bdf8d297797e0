/* TLS: the ZEO byte stream inside TLS, and client-certificate
 * authentication that refuses unknown clients. Certificates are made with
 * the openssl command for this test. */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "testutil.h"

static th_server srv;
static char *certs;

static void sh(const char *fmt, const char *dir)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, dir, dir, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static void setup(void)
{
    certs = tu_tmpdir("tlscerts");
    cr_assert(certs);
    const char *subj = "-days 2 -nodes -newkey rsa:2048 2>/dev/null";
    char fmt[1024];
    snprintf(fmt, sizeof fmt, "cd %%s && openssl req -x509 -keyout ca.key -out ca.pem -subj /CN=ca %s", subj);
    sh(fmt, certs);
    snprintf(fmt, sizeof fmt, "cd %%s && openssl req -keyout srv.key -out srv.csr -subj /CN=localhost %s"
             " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem"
             " -days 2 2>/dev/null", subj);
    sh(fmt, certs);
    snprintf(fmt, sizeof fmt, "cd %%s && openssl req -keyout cli.key -out cli.csr -subj /CN=client %s"
             " && openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem"
             " -days 2 2>/dev/null", subj);
    sh(fmt, certs);
    char cert[1024], key[1024], ca[1024];
    snprintf(cert, sizeof cert, "%s/srv.pem", certs);
    snprintf(key, sizeof key, "%s/srv.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    const char *extra[] = {"--ssl-cert", cert, "--ssl-key", key, "--ssl-ca", ca, NULL};
    cr_assert_eq(th_start(&srv, extra), 0, "TLS server did not start");
}

static void teardown(void)
{
    th_free(&srv);
    tu_rmrf(certs);
    free(certs);
}

TestSuite(server_tls, .init = setup, .fini = teardown, .timeout = 60);

/* A TLS session on a new connection; with_cert: present cli.pem. */
static SSL *tls_connect(tc *c, int with_cert, SSL_CTX **ctx_out)
{
    cr_assert_eq(tc_open(c, srv.port), 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char path[1024], key[1024];
    snprintf(path, sizeof path, "%s/ca.pem", certs);
    cr_assert_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (with_cert) {
        snprintf(path, sizeof path, "%s/cli.pem", certs);
        snprintf(key, sizeof key, "%s/cli.key", certs);
        cr_assert_eq(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
        cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c->fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    *ctx_out = ctx;
    return ssl;
}

static int tls_read_frame(SSL *ssl, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t hdr[4];
    size_t got = 0;
    while (got < 4) {
        int n = SSL_read(ssl, hdr + got, (int)(4 - got));
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    *len = zbe32(hdr);
    if (*len > cap)
        return -1;
    for (got = 0; got < *len;) {
        int n = SSL_read(ssl, buf + got, (int)(*len - got));
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

Test(server_tls, a_known_client_speaks_zeo_inside_tls)
{
    tc c;
    SSL_CTX *ctx;
    SSL *ssl = tls_connect(&c, 1, &ctx);
    cr_assert_eq(SSL_connect(ssl), 1, "handshake failed");
    uint8_t buf[4096];
    size_t len;
    cr_assert_eq(tls_read_frame(ssl, buf, sizeof buf, &len), 0);
    cr_expect(len == 2 && !memcmp(buf, "Z5", 2), "no announcement inside TLS");
    zbuf out = ZBUF_INIT;
    proto_frame_append(&out, "Z5", 2);
    cr_assert_eq(proto_encode_call(PROTO_PICKLE, &out, tv_int(c.a, 1), 0, "register",
                                   tv_tuple(c.a, 2, tv_str(c.a, "1"), zv_bool(c.a, 0)), NULL), 0);
    cr_assert_eq(SSL_write(ssl, out.data, (int)out.len), (int)out.len);
    zbuf_free(&out);
    cr_assert_eq(tls_read_frame(ssl, buf, sizeof buf, &len), 0, "no register reply");
    proto_msg m;
    cr_assert_eq(proto_decode(PROTO_PICKLE, buf, len, c.a, &m, NULL), 0);
    cr_expect_str_eq(m.name, ".reply");
    cr_expect_eq(m.flag, 0);
    cr_expect(m.args->type == ZV_BYTES && m.args->u.s.len == 8);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    tc_close(&c);
}

Test(server_tls, an_unknown_client_is_refused)
{
    tc c;
    SSL_CTX *ctx;
    SSL *ssl = tls_connect(&c, 0, &ctx);
    /* TLS 1.3 may finish the client side before the server checks: the
     * refusal then shows as a failed read. */
    uint8_t buf[64];
    size_t len;
    int ok = SSL_connect(ssl) == 1 && tls_read_frame(ssl, buf, sizeof buf, &len) == 0;
    cr_expect(!ok, "a client without a certificate got the announcement");
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    tc_close(&c);
    char *log = th_log(&srv);
    cr_expect(log && strstr(log, "TLS handshake failed"));
    free(log);
}

Test(server_tls, plaintext_zeo_on_a_tls_port_is_closed)
{
    tc c;
    cr_assert_eq(tc_open(&c, srv.port), 0);
    cr_assert_eq(tc_send_raw(&c, "Z5", 2), 0);
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT));
    tc_close(&c);
}

/* A client that ends its TLS session cleanly (close_notify, as Python's
 * asyncio does) is a disconnect like any other: INFO, no WARNING. */
Test(server_tls, a_clean_tls_disconnect_is_info)
{
    tc c;
    SSL_CTX *ctx;
    SSL *ssl = tls_connect(&c, 1, &ctx);
    cr_assert_eq(SSL_connect(ssl), 1, "handshake failed");
    uint8_t buf[256];
    size_t len;
    cr_assert_eq(tls_read_frame(ssl, buf, sizeof buf, &len), 0);
    cr_assert_geq(SSL_shutdown(ssl), 0, "close_notify not sent");
    /* The server closes on it (a FIN of ours first would be an EOF). */
    cr_expect(tc_wait_closed(&c, TC_TIMEOUT), "the server kept the connection");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    tc_close(&c);
    char *log = NULL;
    for (int i = 0; i < 500; i++) {   /* until the server has logged it, 5 s at most */
        free(log);
        log = th_log(&srv);
        if (log && strstr(log, "closing: "))
            break;
        usleep(10000);
    }
    cr_assert(log);
    char *line = strstr(log, "closing: ");
    cr_assert(line, "%s", log);
    while (line > log && line[-1] != '\n')
        line--;
    char *info = strstr(line, " INFO zeolite.server ");
    cr_expect(info && info < strstr(line, "closing: disconnected"), "%s", line);
    cr_expect(!strstr(log, "WARNING"), "%s", log);
    free(log);
}
