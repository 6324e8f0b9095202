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
#include <uv.h>

#include "config.h"
#include "eie/status.h"
#include "loader.h"
#include "models.h"

typedef struct eied_repository eied_repository_t;

/* A repository for cfg->repository (inactive when empty) whose versions loader loads into
   models;
   on_scanned(ctx) runs on the loop after every scan. NULL when out of memory. */
eied_repository_t *eied_repository_create(uv_loop_t *loop, const eied_config_t *cfg,
                                          eied_models_t *models, eied_loader_t *loader,
                                          void (*on_scanned)(void *ctx), void *ctx);
/* First scan, watches, poll timer; a no-op without a path. Fails if the path is no folder. */
eie_status_t eied_repository_start(eied_repository_t *repo, eie_error_t *err);
/* Closes the watches and timers (the server is stopping); later scans change nothing. */
void eied_repository_close(eied_repository_t *repo);
/* Frees what is left after the loop ended. NULL is fine. */
void eied_repository_free(eied_repository_t *repo);
/* Schedules a rescan soon (coalesced). */
void eied_repository_rescan(eied_repository_t *repo);
/* True once the first scan has been applied (or there is no repository). */
bool eied_repository_ready(const eied_repository_t *repo);

/* RepositoryModelLoad: a [models] entry reloads its file; a repository model is scanned in. */
eie_status_t eied_repository_load(eied_repository_t *repo, const char *name, eie_error_t *err);
/* RepositoryModelUnload: new requests get NOT_FOUND, requests in flight finish. */
eie_status_t eied_repository_unload(eied_repository_t *repo, const char *name, eie_error_t *err);

/* Model folders the last scan refused (over repository.max_models). */
uint64_t eied_repository_refused(const eied_repository_t *repo);

#endif
