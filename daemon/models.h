/*
 * models.h - the models eied serves and their loaded versions.
 *
 * A version (eied_version_t) is an immutable loaded model plus its engine
 * net, reference counted: the registry holds one reference while the
 * version is published, every request in flight holds one. Publication and
 * routing happen on the loop thread only, so a swap is a pointer store there;
 * a retired version is freed when its last request drops its reference.
 * Loading (file read, checksum, Huffman decode, per-PE layout) runs on a
 * libuv pool thread, never on the loop or the PE threads.
 */
#ifndef EIED_MODELS_H
#define EIED_MODELS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "eie/eie.h"
#include "server.h"

#define EIED_MODEL_NAME_MAX 128
#define EIED_REASON_MAX 512

/* Counters in the shape of Triton's statistics; updated from PE threads. */
typedef struct eied_stats {
    atomic_uint_fast64_t success_count, success_ns;
    atomic_uint_fast64_t fail_count, fail_ns;
    atomic_uint_fast64_t queue_count, queue_ns;
    atomic_uint_fast64_t compute_count, compute_ns;
    atomic_uint_fast64_t inference_count; /* rows inferred */
    atomic_uint_fast64_t execution_count; /* engine runs (batches) */
    atomic_uint_fast64_t last_inference_ms; /* wall clock, ms since the epoch */
    atomic_uint_fast64_t sim_cycles;        /* eie-sim backend */
    atomic_uint_fast64_t sim_energy_pj;
} eied_stats_t;

typedef struct eied_version {
    atomic_int refs;
    char name[EIED_MODEL_NAME_MAX];
    uint64_t version;
    char path[EIED_CONFIG_STR_MAX];
    eie_model_t *model;
    eie_net_t *net;
    double load_seconds;
    eied_stats_t stats;
} eied_version_t;

typedef enum {
    EIED_MODEL_LOADING = 0,
    EIED_MODEL_READY,
    EIED_MODEL_UNAVAILABLE, /* the last load failed and nothing serves */
    EIED_MODEL_UNLOADED,
} eied_model_state_t;

typedef struct eied_infer_job eied_infer_job_t;

/* One served model name; lives on the loop thread. */
typedef struct eied_model {
    char name[EIED_MODEL_NAME_MAX];
    char path[EIED_CONFIG_STR_MAX];
    eied_model_state_t state;
    char reason[EIED_REASON_MAX];
    eied_version_t *current; /* the newest ready version, or NULL */
    bool load_in_progress;

    /* Micro-batching state (rpc_infer.c), loop thread. */
    eied_infer_job_t *pending_head, *pending_tail;
    uint64_t pending_rows;
    uint64_t pending_count;
    uv_timer_t batch_timer;
    bool batch_timer_armed;
    unsigned inflight_batches;
    atomic_uint_fast64_t queued; /* requests admitted and not yet answered */
    eied_server_t *srv;
    struct eied_model *next;
} eied_model_t;

typedef struct eied_models {
    eied_server_t *srv;
    eie_engine_t *engine;
    eied_model_t *head;
    unsigned loads_pending;
    atomic_uint_fast64_t load_failures;
    /* called on the loop whenever a load finishes (readiness, tests) */
    void (*on_load_done)(eied_server_t *srv);
} eied_models_t;

/* Creates the registry and the engine (backend + PE threads) from cfg. Logs errors. */
eied_models_t *eied_models_create(eied_server_t *srv, const eied_config_t *cfg);
/* Frees every model; call after the loop has stopped. NULL is fine. */
void eied_models_free(eied_models_t *models);

/* Starts loading every model of cfg->models in the background. */
void eied_models_load_configured(eied_models_t *models, const eied_config_t *cfg);

/* Loads (or reloads) NAME from path in the background; loop thread. */
bool eied_models_load(eied_models_t *models, const char *name, const char *path, char *why,
                      size_t why_len);

/* Unpublishes NAME: new requests get NOT_FOUND, in-flight ones finish. */
bool eied_models_unload(eied_models_t *models, const char *name, char *why, size_t why_len);

/* The model called name, or NULL. */
eied_model_t *eied_models_find(eied_models_t *models, const char *name);

/* True when no load is pending and every configured model is ready. */
bool eied_models_all_ready(const eied_models_t *models);

/* Closes the models' uv handles (the loop is stopping). */
void eied_models_close_handles(eied_models_t *models);

void eied_version_ref(eied_version_t *v);
/* Drops a reference; the last one frees the net and the model. Any thread. */
void eied_version_unref(eied_version_t *v);

const char *eied_model_state_name(eied_model_state_t state);

/* Milliseconds since the epoch (for last_inference). */
uint64_t eied_wall_ms(void);

#endif
