/*
 * tls.h - TLS (and mTLS) on the gRPC port from PEM files. Certificates are
 * validated with OpenSSL when read; gRPC asks for them through a config
 * fetcher at each handshake, so SIGHUP swaps in re-read certificates for new
 * connections while connections in flight keep theirs.
 */
#ifndef EIED_TLS_H
#define EIED_TLS_H

#include <grpc/grpc_security.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "eie/status.h"

typedef struct eied_tls eied_tls_t;

/* Reads cfg's [tls] files. NULL with err->status OK: TLS is off; NULL with another status:
   an error, err naming the file. */
eied_tls_t *eied_tls_create(const eied_config_t *cfg, eie_error_t *err);
/* Server credentials that fetch the current certificates at each handshake (caller releases). */
grpc_server_credentials *eied_tls_credentials(eied_tls_t *tls);
/* Re-reads the files; on error the old certificates stay and err says what is wrong. */
bool eied_tls_reload(eied_tls_t *tls, eie_error_t *err);
/* True when clients must present a certificate the CA signed. */
bool eied_tls_mutual(const eied_tls_t *tls);
/* Seconds until the certificate expires (negative once it has); any thread. */
double eied_tls_expiry_seconds(const eied_tls_t *tls);
void eied_tls_free(eied_tls_t *tls);
/* Reads and checks cfg's certificate, key and client CA (NULL when none) as PEM text for
   another front end (REST); the caller frees them (clearing *key_out first). */
eie_status_t eied_tls_read_pems(const eied_config_t *cfg, char **cert_out, char **key_out,
                                char **ca_out, eie_error_t *err);

#endif
