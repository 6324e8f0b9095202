/* TLS credentials with hot reload; see tls.h. */
#include "tls.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/file.h"
#include "log.h"

/* OpenSSL's default security level (1) refuses keys under 80 bits of strength (RSA
   under 1024 bits): such a key would fail every handshake, so it fails the start. */
#define MIN_KEY_SECURITY_BITS 80
#define EXPIRY_WARN_SECONDS (14 * 24 * 3600)

struct eied_tls {
    const eied_config_t *cfg;
    _Atomic int64_t not_after; /* the certificate's expiry, seconds since the epoch */
    pthread_mutex_t lock;
    grpc_ssl_server_certificate_config *pending; /* handed to gRPC at the next handshake */
};

static char *read_pem(const char *what, const char *path, eie_error_t *err)
{
    char key[32];
    snprintf(key, sizeof key, "tls.%s", what);
    uint8_t *pem;
    size_t len;
    if (eied_config_file_read(key, path, EIE_PEM_FILE_MAX, 0, &pem, &len, err) != EIE_STATUS_OK)
        return NULL;
    if (len == 0) {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: %s is empty", key, path);
        free(pem);
        return NULL;
    }
    return (char *)pem;
}

/* Checks with OpenSSL that the chain, the key and the CA parse and that key and cert match. */
static bool validate(const char *cert, const char *key, const char *ca, const eied_config_t *cfg,
                     int64_t *not_after_out, eie_error_t *err)
{
    bool ok = false;
    BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
    X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (x == NULL)
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "tls.cert: %s: no PEM certificate",
                      cfg->tls_cert);
    else if (k == NULL)
        eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                      "tls.key: %s: no PEM private key (encrypted keys are not supported)",
                      cfg->tls_key);
    else if (EVP_PKEY_get_security_bits(k) < MIN_KEY_SECURITY_BITS)
        eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                      "tls.key: %s: a %d-bit %s key is too weak to use (%d bits of security, "
                      "at least %d needed: RSA 2048 or EC P-256)",
                      cfg->tls_key, EVP_PKEY_get_bits(k), EVP_PKEY_get0_type_name(k),
                      EVP_PKEY_get_security_bits(k), MIN_KEY_SECURITY_BITS);
    else if (X509_check_private_key(x, k) != 1)
        eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                      "tls.key: %s does not match the certificate in %s", cfg->tls_key,
                      cfg->tls_cert);
    else
        ok = true;
    struct tm tm;
    if (ok && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        *not_after_out = (int64_t)timegm(&tm);
    if (ok && ca != NULL) {
        BIO *ab = BIO_new_mem_buf(ca, -1);
        X509 *a = PEM_read_bio_X509(ab, NULL, NULL, NULL);
        if (a == NULL) {
            eie_error_set(err, EIE_STATUS_BAD_CONFIG, "tls.client_ca: %s: no PEM certificate",
                          cfg->tls_client_ca);
            ok = false;
        }
        X509_free(a);
        BIO_free(ab);
    }
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return ok;
}

static grpc_ssl_server_certificate_config *read_config(const eied_config_t *cfg,
                                                       int64_t *not_after_out, eie_error_t *err)
{
    grpc_ssl_server_certificate_config *config = NULL;
    char *ca = NULL;
    char *cert = read_pem("cert", cfg->tls_cert, err);
    char *key = cert != NULL ? read_pem("key", cfg->tls_key, err) : NULL;
    if (key == NULL)
        goto out;
    if (cfg->tls_client_ca[0] != '\0' &&
        (ca = read_pem("client_ca", cfg->tls_client_ca, err)) == NULL)
        goto out;
    if (!validate(cert, key, ca, cfg, not_after_out, err))
        goto out;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    /* gRPC 1.51's reloading path asserts that root certificates are set even when no client
       certificate is requested; without client_ca they are never used, so the server's own
       chain stands in. */
    config = grpc_ssl_server_certificate_config_create(ca != NULL ? ca : cert, &pair, 1);
out:
    if (key != NULL)
        memset(key, 0, strlen(key)); /* do not leave the private key in freed memory */
    free(cert);
    free(key);
    free(ca);
    return config;
}

eie_status_t eied_tls_read_pems(const eied_config_t *cfg, char **cert_out, char **key_out,
                                char **ca_out, eie_error_t *err)
{
    *cert_out = *key_out = *ca_out = NULL;
    char *cert = read_pem("cert", cfg->tls_cert, err), *ca = NULL;
    char *key = cert != NULL ? read_pem("key", cfg->tls_key, err) : NULL;
    bool ok = key != NULL;
    if (ok && cfg->tls_client_ca[0] != '\0')
        ok = (ca = read_pem("client_ca", cfg->tls_client_ca, err)) != NULL;
    int64_t not_after;
    if (!ok || !validate(cert, key, ca, cfg, &not_after, err)) {
        if (key != NULL)
            memset(key, 0, strlen(key));
        free(cert);
        free(key);
        free(ca);
        return err->status;
    }
    *cert_out = cert;
    *key_out = key;
    *ca_out = ca;
    return EIE_STATUS_OK;
}

double eied_tls_expiry_seconds(const eied_tls_t *tls)
{
    return (double)(atomic_load(&tls->not_after) - (int64_t)time(NULL));
}

/* An expired certificate fails every handshake; one about to expire soon will. */
static void warn_expiry(const eied_tls_t *tls)
{
    double left = eied_tls_expiry_seconds(tls);
    if (left >= EXPIRY_WARN_SECONDS)
        return;
    char days[32];
    snprintf(days, sizeof days, "%.1f", left / 86400.0);
    eied_log(EIED_LOG_WARN,
             left < 0 ? "TLS certificate has expired" : "TLS certificate expires within 14 days",
             "cert", tls->cfg->tls_cert, "days_left", days, NULL);
}

eied_tls_t *eied_tls_create(const eied_config_t *cfg, eie_error_t *err)
{
    eie_error_set(err, EIE_STATUS_OK, "%s", "");
    if (cfg->tls_cert[0] == '\0' && cfg->tls_key[0] == '\0') {
        if (cfg->tls_client_ca[0] != '\0' || cfg->tls_require_client_cert)
            eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                          "tls.client_ca/require_client_cert need tls.cert and tls.key");
        return NULL;
    }
    if (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0') {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "tls.cert and tls.key must both be set");
        return NULL;
    }
    if (cfg->tls_require_client_cert && cfg->tls_client_ca[0] == '\0') {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                      "tls.require_client_cert needs tls.client_ca to verify against");
        return NULL;
    }
    eied_tls_t *tls = calloc(1, sizeof *tls);
    if (tls == NULL) {
        eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        return NULL;
    }
    tls->cfg = cfg;
    pthread_mutex_init(&tls->lock, NULL);
    int64_t not_after = INT64_MAX;
    tls->pending = read_config(cfg, &not_after, err);
    if (tls->pending == NULL) {
        eied_tls_free(tls);
        return NULL;
    }
    atomic_store(&tls->not_after, not_after);
    warn_expiry(tls);
    return tls;
}

/* gRPC's threads, at each handshake: hand over re-read certificates once. */
static grpc_ssl_certificate_config_reload_status fetch(void *user,
                                                       grpc_ssl_server_certificate_config **out)
{
    eied_tls_t *tls = user;
    pthread_mutex_lock(&tls->lock);
    grpc_ssl_server_certificate_config *next = tls->pending;
    tls->pending = NULL;
    pthread_mutex_unlock(&tls->lock);
    if (next == NULL)
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    *out = next;
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

bool eied_tls_mutual(const eied_tls_t *tls)
{
    return tls != NULL && tls->cfg->tls_client_ca[0] != '\0';
}

grpc_server_credentials *eied_tls_credentials(eied_tls_t *tls)
{
    grpc_ssl_client_certificate_request_type req = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    if (tls->cfg->tls_client_ca[0] != '\0')
        req = tls->cfg->tls_require_client_cert
                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    grpc_ssl_server_credentials_options *opts =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch, tls);
    return grpc_ssl_server_credentials_create_with_options(opts);
}

bool eied_tls_reload(eied_tls_t *tls, eie_error_t *err)
{
    int64_t not_after = INT64_MAX;
    grpc_ssl_server_certificate_config *next = read_config(tls->cfg, &not_after, err);
    if (next == NULL)
        return false;
    atomic_store(&tls->not_after, not_after);
    warn_expiry(tls);
    pthread_mutex_lock(&tls->lock);
    grpc_ssl_server_certificate_config *old = tls->pending;
    tls->pending = next;
    pthread_mutex_unlock(&tls->lock);
    if (old != NULL)
        grpc_ssl_server_certificate_config_destroy(old);
    return true;
}

void eied_tls_free(eied_tls_t *tls)
{
    if (tls == NULL)
        return;
    if (tls->pending != NULL)
        grpc_ssl_server_certificate_config_destroy(tls->pending);
    pthread_mutex_destroy(&tls->lock);
    free(tls);
}
