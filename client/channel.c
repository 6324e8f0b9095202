/* eiectl's channels: plaintext or TLS, options and environment; see channel.h. */
#include "channel.h"

#include <arpa/inet.h>
#include <grpc/grpc_security.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eie/status.h"
#include "input.h"
#include "report.h"
#include "rpc.h"

static eiectl_setting_t from_env(const char *name)
{
    const char *v = getenv(name);
    return (eiectl_setting_t){.value = v, .from = name};
}

void eiectl_tls_opts_init(eiectl_tls_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->env_tls = from_env("EIECTL_TLS");
    opts->ca = from_env("EIECTL_CA");
    opts->cert = from_env("EIECTL_CERT");
    opts->key = from_env("EIECTL_KEY");
    opts->server_name = from_env("EIECTL_SERVER_NAME");
}

int eiectl_tls_opt(const char *cmd, int opt, const char *arg, eiectl_tls_opts_t *opts)
{
    eiectl_setting_t *s;
    const char *name;
    switch (opt) {
    case EIECTL_OPT_TLS:
        opts->tls = true;
        return 1;
    case EIECTL_OPT_NO_TLS:
        opts->no_tls = true;
        return 1;
    case EIECTL_OPT_INSECURE_TOKEN:
        opts->insecure_token = true;
        return 1;
    case EIECTL_OPT_CA:
        s = &opts->ca, name = "--ca";
        break;
    case EIECTL_OPT_CERT:
        s = &opts->cert, name = "--cert";
        break;
    case EIECTL_OPT_KEY:
        s = &opts->key, name = "--key";
        break;
    case EIECTL_OPT_SERVER_NAME:
        s = &opts->server_name, name = "--server-name";
        break;
    default:
        return 0;
    }
    if (arg[0] == '\0')
        return eiectl_usage_error(cmd, "%s is empty", name);
    s->value = arg;
    s->from = name;
    return 1;
}

/* An environment variable set to "" counts as unset, as shells make that easy to do by accident. */
static bool is_set(const eiectl_setting_t *s)
{
    return s->value != NULL && s->value[0] != '\0';
}

/* Fails (with err) if the PEM text holds no certificate; else the first in *first_out if asked. */
static eie_status_t pem_has_certificate(const char *pem, size_t len, const char *from,
                                        const char *path, X509 **first_out, eie_error_t *err)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s %s: out of memory", from, path);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (x == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s %s: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                             from, path);
    if (first_out != NULL)
        *first_out = x;
    else
        X509_free(x);
    return EIE_STATUS_OK;
}

/* Never prompts for a passphrase: eiectl runs in scripts and health checks. */
static int no_passphrase(char *buf, int size, int rwflag, void *user)
{
    (void)buf, (void)size, (void)rwflag, (void)user;
    return -1;
}

/* Reads one PEM file of a setting into a NUL-terminated string. */
static eie_status_t read_pem(const eiectl_setting_t *s, char **pem_out, size_t *len_out,
                             eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    if (strcmp(s->value, "-") == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s: give a file, not '-' (stdin)",
                             s->from);
    eie_status_t st = eiectl_read_file_limited(s->value, EIECTL_PEM_MAX_BYTES, &data, &len, err);
    if (st != EIE_STATUS_OK) {
        eie_error_prefix(err, "%s ", s->from);
        return st;
    }
    if (memchr(data, '\0', len) != NULL) {
        free(data);
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s %s: a PEM file is text; this one has a NUL byte", s->from,
                             s->value);
    }
    char *pem = realloc(data, len + 1);
    if (pem == NULL) {
        free(data);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s %s: out of memory", s->from, s->value);
    }
    pem[len] = '\0';
    *pem_out = pem;
    *len_out = len;
    return EIE_STATUS_OK;
}

static bool server_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > EIECTL_SERVER_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_' || *p == ':' || *p == '*'))
            return false;
    return true;
}

eie_status_t eiectl_channel_init(eiectl_channel_t *ch, const char *addr,
                                 const eiectl_tls_opts_t *opts, eie_error_t *err)
{
    memset(ch, 0, sizeof *ch);
    ch->addr = addr;
    const eiectl_setting_t *settings[] = {&opts->ca, &opts->cert, &opts->key, &opts->server_name};
    bool env_tls = false;
    if (is_set(&opts->env_tls)) {
        const char *v = opts->env_tls.value;
        if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
            env_tls = true;
        else if (!(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 ||
                   strcasecmp(v, "no") == 0))
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "EIECTL_TLS '%s' is not 1, 0, true, false, yes or no", v);
    }
    if (opts->no_tls) {
        /* --no-tls overrides the environment, not other options on the same line. */
        if (opts->tls)
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "--tls and --no-tls contradict each other");
        for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
            if (is_set(settings[i]) && settings[i]->from[0] == '-')
                return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                     "%s needs TLS; it contradicts --no-tls", settings[i]->from);
        return EIE_STATUS_OK;
    }
    ch->tls = opts->tls || env_tls;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (is_set(settings[i]))
            ch->tls = true;
    if (!ch->tls)
        return EIE_STATUS_OK;

    if (is_set(&opts->cert) != is_set(&opts->key)) {
        const eiectl_setting_t *have = is_set(&opts->cert) ? &opts->cert : &opts->key;
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s is set but %s is not: a client certificate needs its key and a "
                             "key its certificate",
                             have->from,
                             is_set(&opts->cert) ? "--key (EIECTL_KEY)" : "--cert (EIECTL_CERT)");
    }
    if (is_set(&opts->server_name)) {
        if (!server_name_ok(opts->server_name.value))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s '%.64s' is not a host name (letters, digits, '-', '.', at "
                                 "most %d bytes)",
                                 opts->server_name.from, opts->server_name.value,
                                 EIECTL_SERVER_NAME_MAX);
        ch->server_name = strdup(opts->server_name.value);
        if (ch->server_name == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
    }

    size_t len;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    eie_status_t st = EIE_STATUS_OK;
    if (is_set(&opts->ca)) {
        if ((st = read_pem(&opts->ca, &ch->ca_pem, &len, err)) != EIE_STATUS_OK ||
            (st = pem_has_certificate(ch->ca_pem, len, opts->ca.from, opts->ca.value, NULL, err)) !=
                EIE_STATUS_OK)
            goto error;
    }
    if (is_set(&opts->cert)) {
        if ((st = read_pem(&opts->cert, &ch->cert_pem, &len, err)) != EIE_STATUS_OK ||
            (st = pem_has_certificate(ch->cert_pem, len, opts->cert.from, opts->cert.value, &cert,
                                      err)) != EIE_STATUS_OK)
            goto error;
        if ((st = read_pem(&opts->key, &ch->key_pem, &len, err)) != EIE_STATUS_OK)
            goto error;
        BIO *bio = BIO_new_mem_buf(ch->key_pem, (int)len);
        if (bio != NULL)
            key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        ERR_clear_error();
        if (key == NULL) {
            st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                               "%s %s: no unencrypted PEM private key in the file (eiectl does "
                               "not ask for passphrases)",
                               opts->key.from, opts->key.value);
            goto error;
        }
        int match = X509_check_private_key(cert, key);
        ERR_clear_error();
        if (match != 1) {
            st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                               "%s %s does not match the certificate %s %s", opts->key.from,
                               opts->key.value, opts->cert.from, opts->cert.value);
            goto error;
        }
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return EIE_STATUS_OK;
error:
    X509_free(cert);
    EVP_PKEY_free(key);
    eiectl_channel_free(ch);
    return st;
}

void eiectl_channel_free(eiectl_channel_t *ch)
{
    if (ch->key_pem != NULL) /* a private key does not linger in freed memory */
        memset(ch->key_pem, 0, strlen(ch->key_pem));
    free(ch->ca_pem);
    free(ch->cert_pem);
    free(ch->key_pem);
    free(ch->server_name);
    ch->ca_pem = ch->cert_pem = ch->key_pem = ch->server_name = NULL;
}

grpc_channel *eiectl_channel_create(const eiectl_channel_t *ch, bool own_connection)
{
    grpc_arg args[3];
    size_t n = 0;
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[n].value.integer = EIECTL_RPC_MAX_RECEIVE_BYTES;
    n++;
    if (own_connection) {
        /* Channels share subchannels (connections) by default. */
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
        args[n].value.integer = 1;
        n++;
    }
    if (ch->tls && ch->server_name != NULL) {
        /* The name checked against the certificate and sent as SNI and :authority. */
        args[n].type = GRPC_ARG_STRING;
        args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[n].value.string = ch->server_name;
        n++;
    }
    grpc_channel_args chargs = {.num_args = n, .args = args};
    grpc_channel_credentials *creds;
    if (ch->tls) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = ch->key_pem,
                                           .cert_chain = ch->cert_pem};
        creds = grpc_ssl_credentials_create(ch->ca_pem, ch->cert_pem != NULL ? &pair : NULL,
                                            NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    if (creds == NULL)
        return NULL;
    grpc_channel *c = grpc_channel_create(ch->addr, creds, &chargs);
    grpc_channel_credentials_release(creds);
    return c;
}

/* The host of host:port, [v6]:port or a bare v6 address, copied into out. */
static void host_of(const char *hostport, char *out, size_t cap)
{
    const char *start = hostport, *end;
    if (*start == '[') {
        start++;
        end = strchr(start, ']');
        if (end == NULL)
            end = start + strlen(start);
    } else {
        const char *colon = strchr(start, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            end = start + strlen(start); /* two colons and no brackets: a bare v6 address */
        else
            end = colon != NULL ? colon : start + strlen(start);
    }
    size_t n = (size_t)(end - start);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static bool host_is_local(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

bool eiectl_addr_is_local(const char *addr)
{
    /* gRPC target schemes (naming.md): unix sockets never leave the host. */
    if (strncmp(addr, "unix:", 5) == 0 || strncmp(addr, "unix-abstract:", 14) == 0)
        return true;
    const char *rest = addr;
    if (strncmp(rest, "dns:", 4) == 0) {
        rest += 4;
        if (strncmp(rest, "//", 2) == 0) {
            /* dns://AUTHORITY/host:port: skip the DNS server's authority */
            const char *slash = strchr(rest + 2, '/');
            rest = slash != NULL ? slash + 1 : rest + 2;
        }
    } else if (strncmp(rest, "ipv4:", 5) == 0 || strncmp(rest, "ipv6:", 5) == 0) {
        /* a comma-separated list: local only if every address is */
        rest += 5;
        char item[256];
        while (*rest) {
            size_t n = strcspn(rest, ",");
            if (n >= sizeof item)
                return false;
            memcpy(item, rest, n);
            item[n] = '\0';
            char host[256];
            host_of(item, host, sizeof host);
            if (!host_is_local(host))
                return false;
            rest += n;
            if (*rest == ',')
                rest++;
        }
        return true;
    }
    char host[256];
    host_of(rest, host, sizeof host);
    return host_is_local(host);
}

eie_status_t eiectl_token_allowed(const eiectl_channel_t *ch, bool insecure_token,
                                  const char *token_file, eie_error_t *err)
{
    if (ch->tls || insecure_token || eiectl_addr_is_local(ch->addr))
        return EIE_STATUS_OK;
    return eie_error_set(
        err, EIE_STATUS_BAD_CONFIG,
        "refusing to send the token from %s in plaintext to %s, which is "
        "not a loopback address: use --tls (with --ca), or --insecure-token if the "
        "network is trusted",
        token_file, ch->addr);
}
