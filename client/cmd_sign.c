/*
 * eiectl sign: a detached Ed25519 signature of a .eie file (OpenSSL EVP),
 * written next to it as MODEL.eie.sig, which eied verifies against the
 * public keys in its configuration before a version goes live.
 * eiectl verify checks one against a public key.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eie/file.h"
#include "eiectl.h"

#define SIGN_FILE_MAX (1ull << 30)

/* The whole file at path, at most limit bytes; NULL after saying why on stderr. */
static uint8_t *read_file(const char *cmd, const char *path, uint64_t limit, size_t *len_out)
{
    uint8_t *data;
    eie_error_t err;
    if (eie_file_read(path, limit, &data, len_out, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl %s: %s\n", cmd, err.msg);
        return NULL;
    }
    return data;
}

/* The Ed25519 private key that signs (the public side is eie_pubkey_read's). */
static EVP_PKEY *read_private_key(const char *path)
{
    size_t len;
    uint8_t *pem = read_file("sign", path, EIE_PEM_FILE_MAX, &len);
    if (pem == NULL)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        fprintf(stderr,
                "eiectl sign: %s: not an Ed25519 private key in PEM (make one with: openssl "
                "genpkey -algorithm ed25519 -out key.pem)\n",
                path);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int eiectl_cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *out_path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "k:o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            printf("usage: eiectl sign --key KEY.pem MODEL.eie [-o MODEL.eie.sig]\n\n"
                   "Writes a detached Ed25519 signature of MODEL.eie (default MODEL.eie.sig).\n"
                   "eied checks it against repository.public_keys before a version goes live.\n"
                   "Keys: openssl genpkey -algorithm ed25519 -out key.pem\n"
                   "      openssl pkey -in key.pem -pubout -out key.pub.pem\n");
            return 0;
        default:
            return 2;
        }
    }
    if (key_path == NULL)
        return eiectl_usage_error("sign", "--key KEY.pem is required");
    if (optind != argc - 1)
        return eiectl_usage_error("sign", "expected one MODEL.eie");
    const char *model = argv[optind];
    char sig_path[4096];
    if (out_path == NULL) {
        snprintf(sig_path, sizeof sig_path, "%s.sig", model);
        out_path = sig_path;
    }
    size_t len = 0;
    uint8_t *data = read_file("sign", model, SIGN_FILE_MAX, &len);
    EVP_PKEY *key = data != NULL ? read_private_key(key_path) : NULL;
    if (key == NULL) {
        free(data);
        return 1;
    }
    unsigned char sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 1;
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1) {
        fprintf(stderr, "eiectl sign: signing failed: %s\n",
                ERR_error_string(ERR_get_error(), NULL));
        goto out;
    }
    /* write to a temporary name and rename: a watcher never sees half a signature */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL || fwrite(sig, 1, sig_len, f) != sig_len || fclose(f) != 0 ||
        rename(tmp, out_path) != 0) {
        fprintf(stderr, "eiectl sign: cannot write %s: %s\n", out_path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    printf("%s\n", out_path);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    free(data);
    return rc;
}

int eiectl_cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pubkey", required_argument, NULL, 'p'},
        {"signature", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *sig_arg = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "p:s:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            key_path = optarg;
            break;
        case 's':
            sig_arg = optarg;
            break;
        case 'h':
            printf("usage: eiectl verify --pubkey KEY.pub.pem MODEL.eie [--signature SIG]\n\n"
                   "Checks the detached Ed25519 signature (default MODEL.eie.sig); exit 0 if it "
                   "verifies.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (key_path == NULL)
        return eiectl_usage_error("verify", "--pubkey KEY.pub.pem is required");
    if (optind != argc - 1)
        return eiectl_usage_error("verify", "expected one MODEL.eie");
    const char *model = argv[optind];
    char sig_path[4096];
    snprintf(sig_path, sizeof sig_path, "%s", sig_arg != NULL ? sig_arg : model);
    if (sig_arg == NULL)
        strncat(sig_path, ".sig", sizeof sig_path - strlen(sig_path) - 1);
    size_t len = 0, sig_len = 0;
    uint8_t *data = read_file("verify", model, SIGN_FILE_MAX, &len);
    uint8_t *sig =
        data != NULL ? read_file("verify", sig_path, EIE_SIGNATURE_FILE_MAX, &sig_len) : NULL;
    eie_pubkey_t *key = NULL;
    eie_error_t err;
    if (sig != NULL && eie_pubkey_read(key_path, &key, &err) != EIE_STATUS_OK)
        fprintf(stderr, "eiectl verify: %s\n", err.msg);
    int rc = 1;
    if (key != NULL) {
        bool ok = eie_signature_verify(key, data, len, sig, sig_len);
        printf("%s: signature %s\n", model, ok ? "OK" : "does NOT verify");
        rc = ok ? 0 : 1;
    }
    eie_pubkey_free(key);
    free(sig);
    free(data);
    return rc;
}
