/*
 * models.h - the model registry: the models eied serves and their published
 * versions (loader.c loads them).
 *
 * A version (eied_version_t) is an immutable loaded model plus its engine
 * net, reference counted: the registry holds one reference while the
 * version is published, every request in flight holds one. Publication and
 * routing happen on the loop thread only, so a swap is a pointer store
 * there; a retired version is freed when its last request drops its
 * reference. Loading (file read, signature check, checksum, Huffman decode,
 * per-PE layout, warm-up run) happens on a libuv pool thread, never on the
 * loop or the PE threads.
 *
 * Models come from the [models] section (one file each; a reload publishes
 * the next version number) or from the repository (repository.c), laid out
 * <repo>/<model>/<version>/model.eie, with a version policy per model.
 */
#ifndef EIED_MODELS_H
#define EIED_MODELS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "eie/eie.h"

#define EIED_MODEL_NAME_MAX 128
#define EIED_REASON_MAX 512
#define EIED_MAX_VERSIONS 16
#define EIED_MAX_FAILED 16

/* Counters in the shape of Triton's statistics; updated from PE threads. */
typedef struct eied_stats {
    atomic_uint_fast64_t success_count, success_ns;
    atomic_uint_fast64_t fail_count, fail_ns;
    atomic_uint_fast64_t queue_count, queue_ns;
    atomic_uint_fast64_t compute_count, compute_ns;
    atomic_uint_fast64_t inference_count;   /* rows inferred */
    atomic_uint_fast64_t execution_count;   /* engine runs (batches) */
    atomic_uint_fast64_t last_inference_ms; /* wall clock, ms since the epoch */
    atomic_uint_fast64_t sim_cycles;        /* eie-sim backend */
    atomic_uint_fast64_t sim_energy_pj;
} eied_stats_t;

/* What identifies the bytes of a file on disk: a change means a new file. */
typedef struct eied_file_id {
    uint64_t size, mtime_ns, ino;
    uint64_t sig_size, sig_mtime_ns; /* the detached signature, 0 if none */
    uint64_t mode; /* a chmod that may cure EACCES makes the file worth another try */
} eied_file_id_t;

/* Fills id_out with what identifies path's bytes (and its .sig's); false if it cannot stat. */
bool eied_file_id_read(const char *path, eied_file_id_t *id_out);
/* True when a and b name the same bytes. */
bool eied_file_id_same(const eied_file_id_t *a, const eied_file_id_t *b);

/* ModelMetadata's properties of a version (names in loader.h, which works them out). */
#define EIED_VERSION_PROPS 10

typedef struct eied_version {
    atomic_int refs;
    char name[EIED_MODEL_NAME_MAX];
    uint64_t version;
    char path[EIED_CONFIG_STR_MAX];
    eied_file_id_t file;
    eie_model_t *model;
    eie_net_t *net;
    eie_engine_t *engine; /* the backend the net runs on: the model's */
    /* the same model prepared on the daemon's other backends, for requests that ask */
    eie_net_t *alt_nets[4];
    eie_engine_t *alt_engines[4];
    size_t n_alt;
    uint64_t bytes; /* charged to the memory budget: run-time layout + model */
    double load_seconds;
    /* compression facts (layers, nonzeros, density, bits, bytes, ratio), worked out at load */
    char props[EIED_VERSION_PROPS][256];
    eied_stats_t stats;
} eied_version_t;

typedef enum {
    EIED_MODEL_LOADING = 0,
    EIED_MODEL_READY,
    EIED_MODEL_UNAVAILABLE, /* loads failed and no version serves */
    EIED_MODEL_UNLOADED,
} eied_model_state_t;

/* One served model name; lives on the loop thread. */
typedef struct eied_model {
    char name[EIED_MODEL_NAME_MAX];
    char path[EIED_CONFIG_STR_MAX]; /* [models]: the file; repository: the model's folder */
    bool from_repo;
    eied_model_state_t state;
    char reason[EIED_REASON_MAX];
    /* Published versions, ascending; current is the newest (routing's default). */
    eied_version_t *versions[EIED_MAX_VERSIONS];
    size_t n_versions;
    eied_version_t *current;
    /* Versions the policy wants (repository models), set by each scan. */
    uint64_t desired[EIED_MAX_VERSIONS];
    size_t n_desired;
    /* Loads in flight, and files that failed (not retried until they change). */
    uint64_t loading[EIED_MAX_VERSIONS];
    size_t n_loading;
    struct {
        uint64_t version;
        eied_file_id_t file;
        char reason[EIED_REASON_MAX]; /* RepositoryIndex's row for the version */
    } failed[EIED_MAX_FAILED];
    size_t n_failed;

    /* Set by the batcher (batcher.c) while it holds requests or batches of this model. */
    struct eied_batch_queue *batch_queue;
    atomic_uint_fast64_t queued; /* requests admitted and not yet answered */
    uint64_t removed_ns; /* when its repository folder went away; 0 while present */
    struct eied_model *next;
} eied_model_t;

typedef struct eied_models {
    const eied_config_t *cfg;
    eied_model_t *head;
    unsigned loads_pending;
    uint64_t bytes_published; /* memory budget accounting */
    atomic_uint_fast64_t load_failures, loads_ok;
} eied_models_t;

/* An empty registry for cfg (kept by reference); NULL when out of memory. */
eied_models_t *eied_models_create(const eied_config_t *cfg);

/* Frees every model; call after the loop has stopped. NULL is fine. */
void eied_models_free(eied_models_t *models);

/* The model called name, creating it if create; NULL if absent (or out of memory). */
eied_model_t *eied_models_get(eied_models_t *models, const char *name, bool create);
/* The model called name, or NULL. */
eied_model_t *eied_models_find(eied_models_t *models, const char *name);

/* Unpublishes one version (or every version with 0): new requests no longer see it. */
void eied_models_retire(eied_models_t *models, eied_model_t *model, uint64_t version);

/* Unpublishes every version of NAME: new requests get NOT_FOUND, in-flight ones finish. */
eie_status_t eied_models_unload(eied_models_t *models, const char *name, eie_error_t *err);

/* The net of v on the backend named backend (NULL or "": the model's own), or NULL. */
eie_net_t *eied_version_net(const eied_version_t *v, const char *backend,
                            eie_engine_t **engine_out);

/* The published version number v of model (0: the newest), or NULL. */
eied_version_t *eied_model_version(const eied_model_t *model, uint64_t v);

/* True if version of model is loading now. */
bool eied_model_is_loading(const eied_model_t *model, uint64_t version);

/* True if the file of version failed before and has not changed since. */
bool eied_model_failed_before(const eied_model_t *model, uint64_t version,
                              const eied_file_id_t *file);

/* Drops an unloaded model from the registry once nothing refers to it; loop thread. */
void eied_models_forget(eied_models_t *models, eied_model_t *model);

/* Forgets every remembered failure, so each file is tried again (SIGHUP). */
void eied_models_forget_failures(eied_models_t *models);

/* True when no load is pending and every model serves or was unloaded. */
bool eied_models_all_ready(const eied_models_t *models);

/* Publication (loader.c, loop thread): inserts v in version order (a reload of the same
   number replaces it) and charges its bytes; the registry takes the reference. */
void eied_models_insert_version(eied_models_t *models, eied_model_t *model, eied_version_t *v);
/* True when the version policy wants version (repository models). */
bool eied_model_is_desired(const eied_model_t *model, uint64_t version);
/* Bytes the publication of v frees: the version it replaces and those the policy drops. */
uint64_t eied_model_bytes_retired_by(const eied_model_t *model, const eied_version_t *v);
/* Remembers that version's file failed (not retried until it changes), with reason. */
void eied_model_remember_failure(eied_model_t *model, uint64_t version,
                                 const eied_file_id_t *file, const char *reason);
/* Forgets a failure of version (it loaded). */
void eied_model_forget_failure(eied_model_t *model, uint64_t version);
/* Recomputes current and state from the published versions and loads in flight. */
void eied_model_update_state(eied_model_t *model);

void eied_version_ref(eied_version_t *v);
/* Drops a reference; the last one frees the net and the model. Any thread. */
void eied_version_unref(eied_version_t *v);

const char *eied_model_state_name(eied_model_state_t state);

#endif
