/* Admin authorization; see admin.h. */
#include "admin.h"

#include <grpc/grpc_security.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define TOKEN_MAX 4096

struct eied_admin {
    const eied_config_t *cfg;
    pthread_mutex_t lock;
    char token[TOKEN_MAX + 1];
    size_t token_len;
};

static bool read_token(const eied_config_t *cfg, char *out, size_t *len_out, eie_error_t *err)
{
    if (cfg->admin_token_file[0] == '\0') {
        snprintf(out, TOKEN_MAX + 1, "%s", cfg->admin_token);
        *len_out = strlen(out);
        return true;
    }
    uint8_t *data;
    size_t n;
    if (eied_config_file_read("admin.token_file", cfg->admin_token_file, TOKEN_MAX, 0, &data, &n,
                              err) != EIE_STATUS_OK)
        return false;
    memcpy(out, data, n);
    free(data);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        n--; /* a trailing newline is not part of the token */
    out[n] = '\0';
    if (n == 0) {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "admin.token_file: %s is empty",
                      cfg->admin_token_file);
        return false;
    }
    *len_out = n;
    return true;
}

eied_admin_t *eied_admin_create(const eied_config_t *cfg, eie_error_t *err)
{
    eied_admin_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    pthread_mutex_init(&a->lock, NULL);
    if (!read_token(cfg, a->token, &a->token_len, err)) {
        eied_admin_free(a);
        return NULL;
    }
    return a;
}

bool eied_admin_reload(eied_admin_t *a, eie_error_t *err)
{
    char token[TOKEN_MAX + 1];
    size_t len;
    if (!read_token(a->cfg, token, &len, err))
        return false;
    pthread_mutex_lock(&a->lock);
    memcpy(a->token, token, len + 1);
    a->token_len = len;
    pthread_mutex_unlock(&a->lock);
    OPENSSL_cleanse(token, sizeof token);
    return true;
}

void eied_admin_free(eied_admin_t *a)
{
    if (a == NULL)
        return;
    OPENSSL_cleanse(a->token, sizeof a->token);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* True if name is one of the comma-separated entries of list. */
static bool listed(const char *list, const char *name, size_t name_len)
{
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *e = end;
        while (e > p && e[-1] == ' ')
            e--;
        if ((size_t)(e - p) == name_len && name_len > 0 && memcmp(p, name, name_len) == 0)
            return true;
        p = end;
    }
    return false;
}

/* The peer's certificate names (CN, then SANs) checked against allowed_identities. */
static int identity_check(const eied_admin_t *a, eied_call_t *call, bool *presented)
{
    *presented = false;
    if (call->call == NULL) { /* a local call (REST): the names its front end verified */
        const char *p = call->local_peer_names;
        bool allowed = false;
        while (p != NULL && *p != '\0' && !allowed) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            *presented = true;
            allowed = listed(a->cfg->admin_identities, p, len);
            p = end ? end + 1 : NULL;
        }
        return allowed;
    }
    grpc_auth_context *ctx = grpc_call_auth_context(call->call);
    if (ctx == NULL)
        return 0;
    static const char *const props[] = {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME};
    bool allowed = false;
    for (size_t i = 0; i < 2 && !allowed; i++) {
        grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, props[i]);
        const grpc_auth_property *p;
        while ((p = grpc_auth_property_iterator_next(&it)) != NULL && !allowed) {
            *presented = true;
            allowed = listed(a->cfg->admin_identities, p->value, p->value_length);
        }
    }
    grpc_auth_context_release(ctx);
    return allowed;
}

eie_status_t eied_admin_authorize(const eied_admin_t *a, eied_call_t *call, eie_error_t *err)
{
    const eied_config_t *cfg = a->cfg;
    if (cfg->admin_allow_unauthenticated)
        return EIE_STATUS_OK;
    bool has_token_config = a->token_len > 0;
    bool has_identity_config = cfg->admin_identities[0] != '\0';
    if (!has_token_config && !has_identity_config) {
        return eie_error_set(err, EIE_STATUS_PERMISSION_DENIED,
                             "admin RPCs are disabled: configure [admin] token_file, "
                             "allowed_identities or allow_unauthenticated");
    }
    bool presented_cert = false;
    if (has_identity_config && identity_check(a, call, &presented_cert))
        return EIE_STATUS_OK;
    const char *value;
    size_t len;
    bool has_header = eied_call_metadata(call, "authorization", &value, &len);
    if (has_token_config && has_header) {
        static const char bearer[] = "Bearer ";
        bool ok = false;
        if (len > sizeof bearer - 1 && strncasecmp(value, bearer, sizeof bearer - 1) == 0) {
            const char *tok = value + sizeof bearer - 1;
            size_t tok_len = len - (sizeof bearer - 1);
            pthread_mutex_lock((pthread_mutex_t *)&a->lock);
            /* constant time in the token's bytes: no early exit on the first difference */
            ok = tok_len == a->token_len && CRYPTO_memcmp(tok, a->token, tok_len) == 0;
            pthread_mutex_unlock((pthread_mutex_t *)&a->lock);
        }
        if (ok)
            return EIE_STATUS_OK;
        return eie_error_set(err, EIE_STATUS_PERMISSION_DENIED, "the bearer token is not valid");
    }
    if (presented_cert)
        return eie_error_set(err, EIE_STATUS_PERMISSION_DENIED,
                             "the client certificate's identity is not in allowed_identities");
    return eie_error_set(err, EIE_STATUS_UNAUTHENTICATED,
                         "admin RPC without credentials: send 'authorization: Bearer <token>'%s",
                         has_identity_config ? " or an allowed client certificate" : "");
}
