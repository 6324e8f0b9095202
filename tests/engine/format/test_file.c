/* eie/file.h: the bounded file read and the model signature check. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eie/file.h"

static char dir[] = "/tmp/eie-test-file-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

TestSuite(file, .init = setup, .fini = teardown);

Test(file, read_returns_the_bytes_and_a_nul_after_them)
{
    char path[128];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    write_file(path, "hello", 5);
    uint8_t *data;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read(path, 5, &data, &len, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(len, 5);
    cr_assert_str_eq((char *)data, "hello");
    free(data);
}

Test(file, read_over_the_limit_is_refused_naming_the_path)
{
    char path[128];
    snprintf(path, sizeof path, "%s/big", dir);
    write_file(path, "0123456789", 10);
    uint8_t *data = NULL;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read(path, 9, &data, &len, &err), EIE_STATUS_LIMIT);
    cr_assert(strstr(err.msg, path) != NULL && strstr(err.msg, "is larger than the 9 bytes allowed") != NULL, "%s",
              err.msg);
    cr_assert_null(data);
}

Test(file, read_of_a_missing_file_or_a_folder_is_an_error)
{
    char path[128];
    snprintf(path, sizeof path, "%s/missing", dir);
    uint8_t *data;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read(path, 100, &data, &len, &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
    cr_assert_eq(eie_file_read(dir, 100, &data, &len, &err), EIE_STATUS_IO);
    cr_assert(strstr(err.msg, "not a regular file") != NULL, "%s", err.msg);
}

Test(file, a_fifo_is_refused_at_once_unless_streams_are_asked_for)
{
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    uint8_t *data = NULL;
    size_t len;
    eie_error_t err;
    /* no writer: a blocking open would wait here for ever */
    cr_assert_eq(eie_file_read(path, 100, &data, &len, &err), EIE_STATUS_IO);
    cr_assert(strstr(err.msg, path) != NULL && strstr(err.msg, "(a FIFO)") != NULL, "%s",
              err.msg);
    cr_assert_null(data);
}

Test(file, streams_read_a_pipe_to_its_end_within_the_limit)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "0123456789", 10), 10);
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    uint8_t *data = NULL;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read(path, 100, &data, &len, &err), EIE_STATUS_IO);
    cr_assert_eq(eie_file_read_ex(path, 100, EIE_FILE_STREAMS, &data, &len, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    cr_assert_eq(len, 10);
    cr_assert_str_eq((char *)data, "0123456789");
    free(data);
    close(fds[0]);
}

Test(file, stream_over_the_limit_is_refused_naming_the_stream)
{
    char text[] = "0123456789";
    FILE *f = fmemopen(text, 10, "rb");
    cr_assert_not_null(f);
    uint8_t *data = NULL;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read_stream(f, "stdin", 9, 0, &data, &len, &err), EIE_STATUS_LIMIT);
    cr_assert_str_eq(err.msg, "stdin is larger than the 9 bytes allowed");
    cr_assert_null(data);
    rewind(f);
    cr_assert_eq(eie_file_read_stream(f, "stdin", 10, 0, &data, &len, &err), EIE_STATUS_OK);
    cr_assert_eq(len, 10);
    cr_assert_eq(memcmp(data, text, 10), 0);
    free(data);
    fclose(f);
}

Test(file, text_mode_refuses_a_nul_byte)
{
    char path[128];
    snprintf(path, sizeof path, "%s/bin", dir);
    write_file(path, "ab\0cd", 5);
    uint8_t *data = NULL;
    size_t len;
    eie_error_t err;
    cr_assert_eq(eie_file_read_ex(path, 100, EIE_FILE_TEXT, &data, &len, &err),
                 EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, path) != NULL && strstr(err.msg, "binary content") != NULL, "%s",
              err.msg);
    cr_assert_null(data);
    cr_assert_eq(eie_file_read(path, 100, &data, &len, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(len, 5);
    free(data);
}

/* A fresh Ed25519 key pair: the public half as PEM at pub_path. */
static EVP_PKEY *make_key(const char *pub_path)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(key);
    FILE *f = fopen(pub_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
    return key;
}

static void sign_to(EVP_PKEY *key, const uint8_t *data, size_t len, const char *sig_path)
{
    uint8_t sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
              EVP_DigestSign(ctx, sig, &sig_len, data, len) == 1);
    EVP_MD_CTX_free(ctx);
    write_file(sig_path, sig, sig_len);
}

Test(file, signature_check_accepts_a_good_signature_and_refuses_a_changed_file)
{
    char pub[128], model[128], sig[140];
    snprintf(pub, sizeof pub, "%s/key.pub.pem", dir);
    snprintf(model, sizeof model, "%s/m.eie", dir);
    snprintf(sig, sizeof sig, "%s.sig", model);
    EVP_PKEY *pkey = make_key(pub);
    const uint8_t data[] = "model bytes";
    sign_to(pkey, data, sizeof data, sig);
    EVP_PKEY_free(pkey);
    eie_pubkey_t *key;
    eie_error_t err;
    cr_assert_eq(eie_pubkey_read(pub, &key, &err), EIE_STATUS_OK, "%s", err.msg);
    const eie_pubkey_t *keys[] = {key};
    bool is_signed = false;
    cr_assert_eq(eie_model_signature_check(model, NULL, data, sizeof data, keys, 1, true,
                                           &is_signed, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert(is_signed);
    const uint8_t changed[] = "model bytez";
    cr_assert_eq(eie_model_signature_check(model, NULL, changed, sizeof changed, keys, 1, false,
                                           &is_signed, &err),
                 EIE_STATUS_PERMISSION_DENIED);
    cr_assert(!is_signed);
    cr_assert(strstr(err.msg, "does not verify") != NULL && strstr(err.msg, model) != NULL,
              "%s", err.msg);
    eie_pubkey_free(key);
}

Test(file, an_unsigned_model_passes_unless_signing_is_required)
{
    char model[128];
    snprintf(model, sizeof model, "%s/u.eie", dir);
    const uint8_t data[] = "x";
    bool is_signed = true;
    eie_error_t err;
    cr_assert_eq(eie_model_signature_check(model, NULL, data, 1, NULL, 0, false, &is_signed,
                                           &err),
                 EIE_STATUS_OK);
    cr_assert(!is_signed);
    cr_assert_eq(eie_model_signature_check(model, NULL, data, 1, NULL, 0, true, &is_signed, &err),
                 EIE_STATUS_PERMISSION_DENIED);
    cr_assert(strstr(err.msg, "unsigned") != NULL, "%s", err.msg);
}

Test(file, a_key_that_is_not_ed25519_pem_is_refused_naming_the_file)
{
    char pub[128];
    snprintf(pub, sizeof pub, "%s/junk.pem", dir);
    write_file(pub, "not a key\n", 10);
    eie_pubkey_t *key = NULL;
    eie_error_t err;
    cr_assert_eq(eie_pubkey_read(pub, &key, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, pub) != NULL, "%s", err.msg);
    cr_assert_null(key);
}
