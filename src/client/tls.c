/* tls.c: TLS for a client link, with OpenSSL driven through memory BIOs so
 * that libuv keeps owning the socket. */
#include "client/client_int.h"

#include <arpa/inet.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static int tls_error(zerr *err, int code, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "unknown error");
    ERR_clear_error();
    return zerr_set(err, code, "TLS: %s: %s", what, buf);
}

int zcl__tls_ctx_new(const zcl_opts *o, SSL_CTX **out, zerr *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return tls_error(err, ZE_INVAL, "cannot create a context");
    int rc = 0;
    if (o->tls_ca) {
        if (SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL) != 1)
            rc = tls_error(err, ZE_INVAL, o->tls_ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (rc == 0 && o->tls_cert &&
        SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1)
        rc = tls_error(err, ZE_INVAL, o->tls_cert);
    const char *key = o->tls_key ? o->tls_key : o->tls_cert;
    if (rc == 0 && key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        rc = tls_error(err, ZE_INVAL, key);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

/* Name checks against the certificate: an IP address or a host name. */
static int set_peer_name(SSL *ssl, const char *name)
{
    unsigned char tmp[16];
    int is_ip = inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

int zcl__tls_attach(zcl_client *c, zcl_link *l)
{
    l->ssl = SSL_new(c->ssl_ctx);
    if (!l->ssl)
        return tls_error(&c->err, ZE_INVAL, "cannot create a session");
    l->rbio = BIO_new(BIO_s_mem());
    l->wbio = BIO_new(BIO_s_mem());
    if (!l->rbio || !l->wbio) {
        BIO_free(l->rbio);
        BIO_free(l->wbio);
        l->rbio = l->wbio = NULL;
        return zerr_set(&c->err, ZE_NOMEM, "TLS: out of memory");
    }
    SSL_set_bio(l->ssl, l->rbio, l->wbio);
    SSL_set_connect_state(l->ssl);
    const char *name = c->opts.tls_server_name;
    if (!name && c->addr.kind == ZCL_ADDR_TCP)
        name = c->addr.host;
    if (name && !set_peer_name(l->ssl, name))
        return tls_error(&c->err, ZE_INVAL, "bad server name");
    return 0;
}

/* Advance the handshake; 0 when it wants more input or is done. */
static int handshake_step(zcl_client *c, zcl_link *l)
{
    int r = SSL_do_handshake(l->ssl);
    if (r == 1) {
        l->tls_done = 1;
        zcl__on_transport_ready(c);
        return 0;
    }
    int e = SSL_get_error(l->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (c->reached.plain_zeo) {
        ERR_clear_error();
        return zerr_set(&c->err, ZE_IO, "TLS: the server answered in plain ZEO, without TLS");
    }
    long v = SSL_get_verify_result(l->ssl);
    if (v != X509_V_OK) {
        ERR_clear_error();
        return zerr_set(&c->err, ZE_IO, "TLS: server certificate: %s",
                        X509_verify_cert_error_string(v));
    }
    return tls_error(&c->err, ZE_IO, "handshake failed");
}

int zcl__tls_on_read(zcl_client *c, zcl_link *l, const char *p, size_t n)
{
    if (!l->tls_done && proto_is_announcement((const uint8_t *)p, n))
        c->reached.plain_zeo = 1;
    if (n && BIO_write(l->rbio, p, (int)n) != (int)n)
        return zerr_set(&c->err, ZE_NOMEM, "TLS: out of memory");
    if (!l->tls_done) {
        int rc = handshake_step(c, l);
        if (rc < 0 || !l->tls_done || !l->c)
            return rc;
    }
    uint8_t buf[16384];
    for (;;) {
        int r = SSL_read(l->ssl, buf, sizeof buf);
        if (r <= 0) {
            int e = SSL_get_error(l->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            if (e == SSL_ERROR_ZERO_RETURN)
                return zerr_set(&c->err, ZE_CLOSED, "server closed the TLS session");
            return tls_error(&c->err, ZE_IO, "read failed");
        }
        int rc = zcl__on_bytes(c, buf, (size_t)r);
        if (rc < 0 || !l->c)
            return rc;
    }
}

int zcl__tls_drain(zcl_link *l, zbuf *out)
{
    char buf[16384];
    int r;
    while ((r = BIO_read(l->wbio, buf, sizeof buf)) > 0) {
        if (zbuf_append(out, buf, (size_t)r) < 0)
            return ZE_NOMEM;
    }
    return 0;
}

int zcl__tls_encrypt(zcl_link *l, const uint8_t *p, size_t n, zbuf *out)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int r = SSL_write(l->ssl, p, chunk);
        if (r <= 0)
            return ZE_IO;
        p += r;
        n -= (size_t)r;
        int rc = zcl__tls_drain(l, out);
        if (rc < 0)
            return rc;
    }
    return 0;
}
