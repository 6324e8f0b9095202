/*
 * backend.h - the interface every backend implements (internal).
 *
 * A small vtable in the manner of ggml's ggml_backend_i: engine.c owns the
 * registry table and the public wrappers; a backend fills the slots with C11
 * designated initialisers. Optional slots may be NULL and are checked by the
 * wrappers. A backend prepares a net from a model once (load time) and then
 * runs batches on it; all load-time work belongs in net_init.
 */
#ifndef EIE_BACKEND_H
#define EIE_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>

#include "eie/engine.h"
#include "eie/model.h"

typedef struct eie_backend {
    const char *name;
    /* Its options (eie/engine.h), and the accuracy it promises against the float
       reference. */
    const eie_backend_option_t *options;
    size_t n_options;
    float tolerance;
    /* Creates the backend's state (threads, tables); *n_pes_out = PEs used. */
    eie_status_t (*engine_init)(const eie_engine_opts_t *opts, void **state_out,
                                unsigned *n_pes_out, eie_error_t *err);
    void (*engine_free)(void *state);
    /* Optional: the engine's settings in one line, for logs (the cpu backend: its
       kernel variant and the options that change how it runs); NULL: none. */
    const char *(*engine_describe)(const void *state);
    /* Load-time preparation of a model; *layout_bytes_out = run-time weight bytes. */
    eie_status_t (*net_init)(void *state, const eie_model_t *model, void **net_out,
                             uint64_t *layout_bytes_out, eie_error_t *err);
    void (*net_free)(void *net);
    /* Queues a run; done is called exactly once, on a backend thread. */
    eie_status_t (*net_submit)(void *state, void *net, const float *input, size_t batch,
                               float *output, eie_run_done_fn done, void *user, eie_error_t *err);
    /* Optional: a synchronous run; NULL means submit and wait. */
    eie_status_t (*net_run)(void *state, void *net, const float *input, size_t batch,
                            float *output, eie_run_info_t *info_out, eie_error_t *err);
    /* Optional: graphs of several inputs/outputs (eie_net_submit_multi); NULL means the
       backend runs single-input single-output models only. */
    eie_status_t (*net_submit_multi)(void *state, void *net, const float *const *inputs,
                                     size_t batch, float *const *outputs, eie_run_done_fn done,
                                     void *user, eie_error_t *err);
    /* Optional: the synchronous form; NULL means submit_multi and wait. */
    eie_status_t (*net_run_multi)(void *state, void *net, const float *const *inputs,
                                  size_t batch, float *const *outputs, eie_run_info_t *info_out,
                                  eie_error_t *err);
    /* Optional: several sequences in one run (eie_net_submit_sequences), at most
       net_max_sequences of them; NULL means one at a time. */
    eie_status_t (*net_submit_sequences)(void *state, void *net, const float *const *inputs,
                                         size_t n_seq, size_t steps, const size_t *lengths,
                                         float *const *outputs, eie_run_done_fn done,
                                         void *user, eie_error_t *err);
    /* Optional: the synchronous form; NULL means submit_sequences and wait. */
    eie_status_t (*net_run_sequences)(void *state, void *net, const float *const *inputs,
                                      size_t n_seq, size_t steps, const size_t *lengths,
                                      float *const *outputs, eie_run_info_t *info_out,
                                      eie_error_t *err);
    size_t (*net_max_sequences)(const void *net);
} eie_backend_t;

/*
 * A synchronous run on top of an asynchronous one: eie_waiter_init, pass
 * eie_waiter_done and the waiter as a submit's done and user, then
 * eie_waiter_wait. The wait spins up to spin pauses before it sleeps on the
 * condition variable (0: sleep at once), and releases the waiter.
 */
typedef struct eie_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int done;
    eie_status_t status;
    eie_run_info_t info;
    eie_error_t err;
} eie_waiter_t;

void eie_waiter_init(eie_waiter_t *w);
void eie_waiter_done(void *user, eie_status_t status, const eie_run_info_t *info,
                     const eie_error_t *err);
eie_status_t eie_waiter_wait(eie_waiter_t *w, unsigned spin, eie_run_info_t *info_out,
                             eie_error_t *err);

/* The backends, defined in their own folders. */
extern const eie_backend_t eie_backend_cpu;
extern const eie_backend_t eie_backend_sim;

/* Largest batch one run accepts (a request limit, like every size a client controls). */
#define EIE_MAX_BATCH 4096u

#endif
