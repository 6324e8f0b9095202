/* eiectl sign and verify: the signature the CLI writes is the one the engine's check accepts. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/file.h"
#include "eiectl.h"

static char dir[] = "/tmp/eiectl-test-sign-XXXXXX";
static char key[128], pub[128], model[128], sig[140];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    fclose(f);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(pub, sizeof pub, "%s/key.pub.pem", dir);
    snprintf(model, sizeof model, "%s/m.eie", dir);
    snprintf(sig, sizeof sig, "%s.sig", model);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(k);
    FILE *f = fopen(key, "w");
    cr_assert(f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    f = fopen(pub, "w");
    cr_assert(f != NULL && PEM_write_PUBKEY(f, k) == 1);
    fclose(f);
    EVP_PKEY_free(k);
    write_file(model, "model bytes");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(sign, .init = setup, .fini = teardown);

static int sign(const char *key_path)
{
    char *argv[] = {"sign", "--key", (char *)key_path, model, NULL};
    return eiectl_cmd_sign(4, argv);
}

static int verify(void)
{
    char *argv[] = {"verify", "--pubkey", pub, model, NULL};
    return eiectl_cmd_verify(4, argv);
}

Test(sign, a_signed_model_verifies_and_passes_the_engine_check_until_it_changes)
{
    cr_assert_eq(sign(key), 0);
    cr_assert_eq(verify(), 0);
    /* the daemon's check (eie_model_signature_check) accepts what eiectl wrote */
    eie_pubkey_t *k;
    eie_error_t err;
    cr_assert_eq(eie_pubkey_read(pub, &k, &err), EIE_STATUS_OK, "%s", err.msg);
    const eie_pubkey_t *keys[] = {k};
    bool is_signed = false;
    const char data[] = "model bytes";
    cr_assert_eq(eie_model_signature_check(model, NULL, (const uint8_t *)data, strlen(data), keys,
                                           1, true, &is_signed, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert(is_signed);
    eie_pubkey_free(k);
    write_file(model, "model bytez");
    cr_assert_eq(verify(), 1);
}

Test(sign, a_key_that_is_missing_or_not_ed25519_is_refused)
{
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.pem", dir);
    cr_assert_eq(sign(missing), 1);
    cr_assert_eq(sign(pub), 1); /* a public key cannot sign */
    FILE *f = fopen(sig, "rb");
    cr_assert_null(f, "a refused signing left %s behind", sig);
}
