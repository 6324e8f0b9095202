/*
 * repository.h - the model repository: <repo>/<model>/<version>/model.eie.
 *
 * Versions are positive integers (TF Serving's and Triton's layout);
 * anything else, and names starting with '.' or ending in .tmp/.partial,
 * is ignored with a log line. The documented way to deploy is to write
 * under a temporary name and rename into place; a file that changes while
 * being read is retried on the next scan, never served.
 *
 * Control modes (Triton's): poll watches the repository (uv_fs_event plus a
 * periodic rescan as fallback); explicit changes what serves only through
 * RepositoryModelLoad/Unload; none loads at start. SIGHUP rescans in every
 * mode (in explicit mode, the models already loaded).
 * Directory scans run on a libuv pool thread; decisions on the loop.
 */
#ifndef EIED_REPOSITORY_H
#define EIED_REPOSITORY_H

#include <stdbool.h>
#include <stddef.h>

#include "server.h"

typedef struct eied_repository eied_repository_t;

/* Starts the repository of cfg->repository (no-op if empty): first scan, watches, SIGHUP. */
bool eied_repository_start(eied_server_t *srv);
/* Closes the watches and timers (loop stopping). */
void eied_repository_close(eied_server_t *srv);
/* Frees what is left after the loop ended. */
void eied_repository_free(eied_server_t *srv);
/* Schedules a rescan soon (coalesced). */
void eied_repository_rescan(eied_server_t *srv);

/* RepositoryModelLoad: returns a gRPC status code; why names the reason when not OK. */
int eied_repository_load(eied_server_t *srv, const char *name, char *why, size_t why_len);
/* RepositoryModelUnload: likewise. */
int eied_repository_unload(eied_server_t *srv, const char *name, char *why, size_t why_len);

/* Model folders the last scan refused (over repository.max_models). */
uint64_t eied_repository_refused(const eied_server_t *srv);

#endif
