/* Ed25519 signatures of model files (OpenSSL EVP); see eie/file.h. */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/file.h"

struct eie_pubkey {
    EVP_PKEY *pkey;
};

eie_status_t eie_pubkey_read(const char *path, eie_pubkey_t **key_out, eie_error_t *err)
{
    uint8_t *pem;
    size_t len;
    eie_status_t st = eie_file_read(path, EIE_PEM_FILE_MAX, &pem, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(pem);
    if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: not an Ed25519 public key in PEM (make one with: openssl "
                             "pkey -in key.pem -pubout -out key.pub.pem)",
                             path);
    }
    eie_pubkey_t *key = malloc(sizeof *key);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory", path);
    }
    key->pkey = pkey;
    *key_out = key;
    return EIE_STATUS_OK;
}

void eie_pubkey_free(eie_pubkey_t *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

bool eie_signature_verify(const eie_pubkey_t *key, const uint8_t *data, size_t len,
                          const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

eie_status_t eie_model_signature_check(const char *path, const char *sig_path,
                                       const uint8_t *data, size_t len,
                                       const eie_pubkey_t *const *keys, size_t n_keys,
                                       bool required, bool *signed_out, eie_error_t *err)
{
    char default_sig[4096];
    if (sig_path == NULL) {
        snprintf(default_sig, sizeof default_sig, "%s.sig", path);
        sig_path = default_sig;
    }
    *signed_out = false;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    eie_error_t read_err;
    eie_status_t st = eie_file_read(sig_path, EIE_SIGNATURE_FILE_MAX, &sig, &sig_len, &read_err);
    if (st == EIE_STATUS_NOT_FOUND) {
        if (required)
            return eie_error_set(err, EIE_STATUS_PERMISSION_DENIED,
                                 "%s: unsigned (require_signed is on and %s is missing)", path,
                                 sig_path);
        return EIE_STATUS_OK;
    }
    if (st != EIE_STATUS_OK) {
        if (err != NULL)
            *err = read_err;
        return st;
    }
    bool ok = false;
    for (size_t i = 0; i < n_keys && !ok; i++)
        ok = eie_signature_verify(keys[i], data, len, sig, sig_len);
    free(sig);
    if (ok) {
        *signed_out = true;
        return EIE_STATUS_OK;
    }
    if (n_keys == 0 && !required)
        return EIE_STATUS_OK; /* nothing to check against; the signature is informational */
    return eie_error_set(err, EIE_STATUS_PERMISSION_DENIED,
                         "%s: signature %s does not verify with any of the %zu configured public "
                         "keys",
                         path, sig_path, n_keys);
}
