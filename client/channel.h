/*
 * channel.h - how eiectl reaches eied: plaintext or TLS (server-verified or
 * mutual), the CA, client certificate and server name from options or the
 * environment, and the rule that a bearer token never crosses a network in
 * plaintext. Every remote command builds its channels here.
 */
#ifndef EIECTL_CHANNEL_H
#define EIECTL_CHANNEL_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "eie/file.h"
#include "eie/status.h"

/* Largest PEM file (CA bundle, certificate chain, key) eiectl reads. */
#define EIECTL_PEM_MAX_BYTES EIE_PEM_FILE_MAX
/* Longest --server-name (a DNS name is at most 253 bytes). */
#define EIECTL_SERVER_NAME_MAX 253

/* getopt_long values of the TLS options; above any short option or a command's own. */
enum {
    EIECTL_OPT_TLS = 0x2000,
    EIECTL_OPT_NO_TLS,
    EIECTL_OPT_CA,
    EIECTL_OPT_CERT,
    EIECTL_OPT_KEY,
    EIECTL_OPT_SERVER_NAME,
    EIECTL_OPT_INSECURE_TOKEN,
};

/* getopt_long entries of the TLS options; splice into a command's table. */
#define EIECTL_TLS_LONG_OPTS                                                                   \
    {"tls", no_argument, NULL, EIECTL_OPT_TLS},                                                \
        {"no-tls", no_argument, NULL, EIECTL_OPT_NO_TLS},                                      \
        {"ca", required_argument, NULL, EIECTL_OPT_CA},                                        \
        {"cert", required_argument, NULL, EIECTL_OPT_CERT},                                    \
        {"key", required_argument, NULL, EIECTL_OPT_KEY},                                      \
        {"server-name", required_argument, NULL, EIECTL_OPT_SERVER_NAME},                      \
        {"insecure-token", no_argument, NULL, EIECTL_OPT_INSECURE_TOKEN}

/* Help lines of the TLS options. */
#define EIECTL_TLS_HELP                                                                        \
    "      --tls              TLS, verified against the system roots or --ca\n"                \
    "      --ca FILE          PEM CA bundle that signs the server's certificate\n"            \
    "      --cert FILE        PEM client certificate chain (mutual TLS; needs --key)\n"       \
    "      --key FILE         PEM private key of --cert, unencrypted\n"                        \
    "      --server-name NAME name the server's certificate must carry (default: the\n"       \
    "                         host of --addr)\n"                                               \
    "      --no-tls           plaintext even if EIECTL_TLS, EIECTL_CA... are set\n"            \
    "      --insecure-token   allow --token-file over plaintext to a non-loopback address\n"  \
    "  --ca, --cert, --key and --server-name imply --tls. Environment defaults:\n"             \
    "  EIECTL_ADDR, EIECTL_TLS (1/0), EIECTL_CA, EIECTL_CERT, EIECTL_KEY,\n"                   \
    "  EIECTL_SERVER_NAME; options override them.\n"

/* A setting and where it came from ("--ca" or "EIECTL_CA"), for error messages. */
typedef struct eiectl_setting {
    const char *value; /* NULL: not set; borrowed from argv or the environment */
    const char *from;
} eiectl_setting_t;

/* The transport options of a remote command, before any file is read. */
typedef struct eiectl_tls_opts {
    bool tls;    /* --tls */
    bool no_tls; /* --no-tls */
    eiectl_setting_t env_tls; /* EIECTL_TLS */
    eiectl_setting_t ca, cert, key, server_name;
    bool insecure_token;
} eiectl_tls_opts_t;

/* Defaults from the environment (EIECTL_TLS, EIECTL_CA, EIECTL_CERT, EIECTL_KEY,
   EIECTL_SERVER_NAME); nothing is read or checked yet. */
void eiectl_tls_opts_init(eiectl_tls_opts_t *opts);

/*
 * Handles a TLS option (an EIECTL_OPT_* value). Returns 1 if handled, 0 if
 * opt is not one, 2 on a bad value (usage message printed as "eiectl CMD: ...").
 */
int eiectl_tls_opt(const char *cmd, int opt, const char *arg, eiectl_tls_opts_t *opts);

/* How to open channels to one address: loaded and checked, ready for any number of channels. */
typedef struct eiectl_channel {
    const char *addr;  /* borrowed */
    bool tls;
    char *ca_pem;      /* NULL: the default roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH or
                          grpc's bundle) */
    char *cert_pem;    /* with key_pem, or both NULL */
    char *key_pem;
    char *server_name; /* NULL: the host of addr */
} eiectl_channel_t;

/*
 * Resolves opts against the environment and reads the PEM files: each is
 * at most EIECTL_PEM_MAX_BYTES, the CA and the certificate must hold at
 * least one certificate, the key must be an unencrypted private key that
 * matches the certificate. Errors name the option or variable and the file.
 * On failure nothing is left to free; err says why (BAD_CONFIG for
 * contradicting settings, INVALID_ARGUMENT for a bad file or name, IO,
 * LIMIT).
 */
eie_status_t eiectl_channel_init(eiectl_channel_t *ch, const char *addr,
                                 const eiectl_tls_opts_t *opts, eie_error_t *err);

/* Frees what eiectl_channel_init read. Accepts a zeroed or freed channel. */
void eiectl_channel_free(eiectl_channel_t *ch);

/*
 * Creates a channel with eiectl's reply size limit and ch's credentials; the
 * caller destroys it. own_connection gives the channel its own TCP
 * connection instead of sharing one with other channels to the same
 * address (bench --connections). grpc_init must have been called.
 */
grpc_channel *eiectl_channel_create(const eiectl_channel_t *ch, bool own_connection);

/*
 * True if addr (host:port, [v6]:port, or a gRPC target such as
 * dns:///host:port, ipv4:..., unix:...) stays on this host: 127.0.0.0/8,
 * ::1, "localhost" or a Unix socket. Names other than localhost count as
 * remote; nothing is resolved.
 */
bool eiectl_addr_is_local(const char *addr);

/*
 * Whether a bearer token may be sent: over TLS always, in plaintext only to
 * a local address or with insecure_token. On refusal returns BAD_CONFIG
 * with why in err.
 */
eie_status_t eiectl_token_allowed(const eiectl_channel_t *ch, bool insecure_token,
                                  const char *token_file, eie_error_t *err);

#endif
