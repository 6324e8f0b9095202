/*
 * admin.h - authorization of the RPCs that change state (repository load
 * and unload): a bearer token (from [admin] token_file or token, compared
 * in constant time, never logged) and/or an mTLS client identity (subject
 * common name or SAN listed in [admin] allowed_identities). Missing
 * credentials answer UNAUTHENTICATED, wrong ones PERMISSION_DENIED.
 */
#ifndef EIED_ADMIN_H
#define EIED_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "call.h"
#include "config.h"
#include "eie/status.h"

typedef struct eied_admin eied_admin_t;

/* Reads the token file; NULL and err (naming the file) on error. */
eied_admin_t *eied_admin_create(const eied_config_t *cfg, eie_error_t *err);
/* Re-reads the token file (SIGHUP); the old token stays on error. */
bool eied_admin_reload(eied_admin_t *admin, eie_error_t *err);
void eied_admin_free(eied_admin_t *admin);

/* EIE_STATUS_OK if call may change state; else UNAUTHENTICATED or PERMISSION_DENIED, with
   err saying what the client must send. */
eie_status_t eied_admin_authorize(const eied_admin_t *admin, eied_call_t *call, eie_error_t *err);

#endif
