/*
 * eie/file.h - reading model files from disk: a bounded whole-file read and
 * the detached Ed25519 signature of a model (MODEL.eie.sig, written by
 * `eiectl sign`). The daemon and the CLI read and verify with these, so a
 * file is judged the same way by both.
 *
 *     uint8_t *data; size_t len; eie_error_t err;
 *     if (eie_file_read("m.eie", 1 << 30, &data, &len, &err) != EIE_STATUS_OK)
 *         fail(err.msg);
 *     eie_pubkey_t *key;
 *     eie_pubkey_read("key.pub.pem", &key, &err);
 *     bool ok = eie_signature_verify(key, data, len, sig, sig_len);
 */
#ifndef EIE_FILE_H
#define EIE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A detached Ed25519 signature is 64 bytes; a .sig file over this is refused unread. */
#define EIE_SIGNATURE_FILE_MAX 1024

/*
 * Reads the whole regular file at path into a new buffer (the caller frees it) with a NUL
 * byte after the len bytes, so text can be parsed in place. NOT_FOUND when it does not exist,
 * LIMIT over max bytes, IO otherwise; the message names the path.
 */
eie_status_t eie_file_read(const char *path, uint64_t max, uint8_t **data_out, size_t *len_out,
                           eie_error_t *err);

/* An Ed25519 public key. */
typedef struct eie_pubkey eie_pubkey_t;

/* Reads a PEM Ed25519 public key; BAD_FORMAT (naming path) for anything else. */
eie_status_t eie_pubkey_read(const char *path, eie_pubkey_t **key_out, eie_error_t *err);
/* NULL is fine. */
void eie_pubkey_free(eie_pubkey_t *key);

/* True when sig is key's Ed25519 signature of the len bytes at data. */
bool eie_signature_verify(const eie_pubkey_t *key, const uint8_t *data, size_t len,
                          const uint8_t *sig, size_t sig_len);

/*
 * The signature check of a model file before it serves: reads sig_path (NULL: "<path>.sig";
 * absent is unsigned) and verifies the len bytes at data against each of the n_keys keys.
 * Unsigned passes unless required; a signature passes if one key verifies it, or when
 * there is no key and signing is not required (nothing to check against). Otherwise
 * PERMISSION_DENIED naming the file. *signed_out: a key verified it.
 */
eie_status_t eie_model_signature_check(const char *path, const char *sig_path,
                                       const uint8_t *data, size_t len,
                                       const eie_pubkey_t *const *keys, size_t n_keys,
                                       bool required, bool *signed_out, eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
