/* tls.c: TLS over libuv streams with OpenSSL memory BIOs.
 *
 * The socket bytes go through two memory BIOs: what arrives is written to
 * rbio and SSL_read gives the plaintext; what SSL writes collects in wbio and
 * is sent by the connection's normal write path. Plaintext the server writes
 * before the handshake is complete (the protocol announcement) waits in
 * pending. With a CA configured, clients must present a certificate it
 * signed (the `authenticate` of ZEO's <ssl>). */
#include "server/server_int.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/stat.h>

struct zsrv_tls {
    SSL *ssl;
    BIO *rbio, *wbio;     /* owned by ssl */
    zbuf pending;
    int ready;
};

static int ssl_error(zerr *err, const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return zerr_set(err, ZE_PROTO, "%s: %s", what, e ? buf : "TLS failure");
}

int zsrv__tls_ctx_new(zsrv *s, const zsrv_config *cfg, zerr *err)
{
    if (!cfg->ssl_cert)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return ssl_error(err, "SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    const char *key = cfg->ssl_key ? cfg->ssl_key : cfg->ssl_cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->ssl_cert) != 1) {
        SSL_CTX_free(ctx);
        return ssl_error(err, cfg->ssl_cert);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return ssl_error(err, key);
    }
    if (cfg->ssl_ca) {
        struct stat st;
        int is_dir = stat(cfg->ssl_ca, &st) == 0 && S_ISDIR(st.st_mode);
        if (SSL_CTX_load_verify_locations(ctx, is_dir ? NULL : cfg->ssl_ca,
                                          is_dir ? cfg->ssl_ca : NULL) != 1) {
            SSL_CTX_free(ctx);
            return ssl_error(err, cfg->ssl_ca);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->ssl_ctx = ctx;
    return 0;
}

void zsrv__tls_ctx_free(zsrv *s)
{
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = NULL;
}

zsrv_tls *zsrv__tls_new(zsrv *s)
{
    zsrv_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(s->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void zsrv__tls_free(zsrv_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    zbuf_free(&t->pending);
    free(t);
}

static int drain(zsrv_tls *t, zbuf *cipher)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(t->wbio, buf, sizeof buf)) > 0)
        if (zbuf_append(cipher, buf, (size_t)n) < 0)
            return ZE_NOMEM;
    return 0;
}

static int encrypt(zsrv_tls *t, const void *p, size_t n, zbuf *cipher, zerr *err)
{
    const uint8_t *b = p;
    while (n) {
        int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
        int w = SSL_write(t->ssl, b, chunk);
        if (w <= 0)
            return ssl_error(err, "TLS write");
        b += w;
        n -= (size_t)w;
        if (drain(t, cipher) < 0)
            return zerr_set(err, ZE_NOMEM, "out of memory");
    }
    return 0;
}

static int handshake(zsrv_tls *t, zbuf *cipher, zerr *err)
{
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return drain(t, cipher) < 0 ? zerr_set(err, ZE_NOMEM, "out of memory") : 0;
        drain(t, cipher);   /* the alert, if any */
        return ssl_error(err, "TLS handshake failed");
    }
    t->ready = 1;
    int rc = encrypt(t, t->pending.data, t->pending.len, cipher, err);
    zbuf_free(&t->pending);
    return rc;
}

int zsrv__tls_read(zsrv_tls *t, const void *p, size_t n, zbuf *plain, zbuf *cipher, zerr *err)
{
    if (BIO_write(t->rbio, p, (int)n) != (int)n)
        return zerr_set(err, ZE_NOMEM, "out of memory");
    int rc;
    if (!t->ready && ((rc = handshake(t, cipher, err)) < 0 || !t->ready))
        return rc;
    char buf[16384];
    for (;;) {
        int r = SSL_read(t->ssl, buf, sizeof buf);
        if (r > 0) {
            if (zbuf_append(plain, buf, (size_t)r) < 0)
                return zerr_set(err, ZE_NOMEM, "out of memory");
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN)
            return zerr_set(err, ZE_CLOSED, "TLS session closed by the peer");
        return ssl_error(err, "TLS read");
    }
    return drain(t, cipher) < 0 ? zerr_set(err, ZE_NOMEM, "out of memory") : 0;
}

int zsrv__tls_write(zsrv_tls *t, const void *p, size_t n, zbuf *cipher, zerr *err)
{
    if (!t->ready)
        return zbuf_append(&t->pending, p, n) < 0 ? zerr_set(err, ZE_NOMEM, "out of memory") : 0;
    return encrypt(t, p, n, cipher, err);
}
