/*
 * loader.h - starting the engines and loading model versions into the
 * registry (models.h).
 *
 * Loading (file read, Ed25519 signature check, checksum, Huffman decode,
 * per-PE layout, warm-up run) happens on a libuv pool thread, never on the
 * loop or the PE threads; publication happens on the loop, within
 * memory_budget, and retires what the version policy no longer wants.
 * A version is prepared on every backend the daemon runs, so a request can
 * pick one.
 */
#ifndef EIED_LOADER_H
#define EIED_LOADER_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "eie/eie.h"
#include "eie/file.h"
#include "models.h"

/* ModelMetadata's properties of a version: eied_version_prop_keys[i] = props[i]. */
extern const char *const eied_version_prop_keys[EIED_VERSION_PROPS];

typedef struct eied_loader {
    uv_loop_t *loop;
    const eied_config_t *cfg;
    eied_models_t *models; /* where versions are published */
    /* One engine per backend in use (engine.backend, [model_backend], extra_backends);
       [0] is the default. */
    eie_engine_t *engines[4];
    size_t n_engines;
    eie_pubkey_t *public_keys[8]; /* repository.public_keys, for signed models */
    size_t n_public_keys;
    /* Set by the owner, called on the loop: whenever a load finishes (readiness), and when
       a repository version failed (the version policy looks again). */
    void (*on_load_done)(void *ctx);
    void (*on_repo_load_failed)(void *ctx);
    void *hooks_ctx;
} eied_loader_t;

/* Starts the engines (backend + PE threads) cfg asks for and reads the public keys.
   Logs and returns NULL on failure. */
eied_loader_t *eied_loader_create(uv_loop_t *loop, const eied_config_t *cfg,
                                  eied_models_t *models);
/* Stops the engines; after the models' versions are gone. NULL is fine. */
void eied_loader_free(eied_loader_t *loader);

/* The engine that serves model name (its [model_backend] entry, else engine.backend). */
eie_engine_t *eied_loader_engine_for(eied_loader_t *loader, const char *name);

/* Starts loading every model of the [models] section in the background. */
void eied_loader_load_configured(eied_loader_t *loader);
/* (Re)loads a [models] entry from its file in the background, as the next version. */
eie_status_t eied_loader_reload(eied_loader_t *loader, eied_model_t *model, eie_error_t *err);
/* Loads version of a repository model from path in the background; file is what was
   scanned. */
eie_status_t eied_loader_load_version(eied_loader_t *loader, eied_model_t *model,
                                      uint64_t version, const char *path,
                                      const eied_file_id_t *file, eie_error_t *err);

#endif
