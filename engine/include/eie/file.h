/*
 * eie/file.h - reading files from disk: a bounded whole-file read (models,
 * configuration, keys, tokens, inputs) and the detached Ed25519 signature of
 * a model (MODEL.eie.sig, written by `eiectl sign`). The daemon and the CLI
 * read and verify with these, so a file is judged the same way by both.
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
#include <stdio.h>

#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A detached Ed25519 signature is 64 bytes; a .sig file over this is refused unread. */
#define EIE_SIGNATURE_FILE_MAX 1024
/* A PEM key or certificate file over this is refused unread (a chain of a few certificates
   is a few kilobytes). */
#define EIE_PEM_FILE_MAX (1024 * 1024)

/*
 * The one bounded read of a whole file, used by the engine, the daemon and the CLI alike.
 * The result is a new buffer (the caller frees it) with a NUL byte after the len bytes, so
 * text can be parsed in place. Errors name the path (or stream name) and the limit:
 *   NOT_FOUND  it does not exist                  "PATH: cannot open: No such file..."
 *   IO         unreadable, or not a regular file  "PATH: not a regular file (a FIFO)"
 *   LIMIT      over max bytes                     "PATH is larger than the MAX bytes allowed"
 *   BAD_FORMAT EIE_FILE_TEXT and a NUL byte       "PATH: binary content, not text"
 */

/* How a read treats the file; flags combine with |. */
enum {
    /*
     * Pipes, FIFOs and character devices are read to their end too (a command-line tool's
     * input: /dev/stdin, <(...)). Without it only a regular file is read, and anything else
     * is refused at once: a FIFO is opened without waiting for a writer, so a wrong path in
     * a server's configuration cannot hang it.
     */
    EIE_FILE_STREAMS = 1 << 0,
    /* The content is text: a NUL byte is BAD_FORMAT. */
    EIE_FILE_TEXT = 1 << 1,
};

/* eie_file_read_ex with no flags: a regular file only, any bytes. */
eie_status_t eie_file_read(const char *path, uint64_t max, uint8_t **data_out, size_t *len_out,
                           eie_error_t *err);

/* Reads the whole file at path, at most max bytes, as flags (EIE_FILE_*) say. */
eie_status_t eie_file_read_ex(const char *path, uint64_t max, unsigned flags, uint8_t **data_out,
                              size_t *len_out, eie_error_t *err);

/*
 * Reads the open stream f to its end, at most max bytes (stdin, for one); name stands for it
 * in messages. f stays open. flags: EIE_FILE_TEXT or 0.
 */
eie_status_t eie_file_read_stream(FILE *f, const char *name, uint64_t max, unsigned flags,
                                  uint8_t **data_out, size_t *len_out, eie_error_t *err);

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
