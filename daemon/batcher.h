/*
 * batcher.h - the micro-batcher: requests of one model that arrive while it
 * computes wait at most inference.batch_window_us, or until max_batch rows
 * wait, and run as one engine batch, so each compressed weight entry is
 * decoded once for all of them (EIE sec. III: the activations of a batch
 * share one pass over the sparse matrix). A request that finds its model
 * idle runs at once. Expired and cancelled requests are answered and
 * skipped, never computed. A sequence model's requests (its batch is time)
 * run side by side instead (eie_net_submit_sequences), of lengths within
 * twice each other's; a model whose inputs take one fixed batch size runs
 * each request alone.
 *
 * Threads: submit and dispatch on the loop thread; a batch's jobs are
 * answered on the PE thread that computed it (the done callback), then the
 * loop is told the model has room for the next batch.
 */
#ifndef EIED_BATCHER_H
#define EIED_BATCHER_H

#include <grpc/support/time.h>
#include <stdint.h>
#include <uv.h>

#include "call.h"
#include "config.h"
#include "eie/eie.h"
#include "models.h"
#include "server.h"

/* One admitted request; the front end fills it, the batcher owns it once submitted. */
typedef struct eied_infer_job {
    eied_call_t *call;
    eie_net_t *net; /* the version's net on the backend this request runs on */
    eie_engine_t *engine;
    gpr_timespec deadline;   /* monotonic */
    eied_version_t *version; /* a reference: the version this request started on */
    eied_model_t *model;
    char *id;
    uint32_t rows;
    float *input;    /* rows x input_dim; a graph's inputs one after the other */
    size_t *out_sel; /* a graph: the outputs to answer (model output indices) */
    size_t n_sel;
    uint64_t arrived_ns;
    struct eied_infer_job *next;
} eied_infer_job_t;

/* How a job's batch ended, for the done callback. */
typedef struct eied_batch_result {
    eie_status_t status;    /* OK: output holds the job's rows */
    const char *detail;     /* not OK: what to tell the client */
    const float *output;    /* the job's outputs (a graph's one after the other) */
    uint32_t batch_rows;    /* rows of the whole batch */
    eie_engine_t *engine;   /* the backend that ran it */
    const eie_run_info_t *info; /* backend figures; NULL if none */
} eied_batch_result_t;

/* Answers job (reply or error) and frees it with eied_infer_job_free; any thread. */
typedef void (*eied_job_done_fn)(void *ctx, eied_infer_job_t *job, const eied_batch_result_t *r);

typedef struct eied_batcher eied_batcher_t;

/* A batcher on loop with cfg's [inference] limits; finished batches are posted to srv's loop.
   NULL when out of memory. */
eied_batcher_t *eied_batcher_create(uv_loop_t *loop, eied_server_t *srv, const eied_config_t *cfg,
                                    eied_job_done_fn done, void *ctx);
/* Queues job behind its model's pending requests and runs what can run; loop thread. */
void eied_batcher_submit(eied_batcher_t *batcher, eied_infer_job_t *job);
/* Closes the timers (the loop is stopping). */
void eied_batcher_close(eied_batcher_t *batcher);
/* Frees what is left after the loop ended. NULL is fine. */
void eied_batcher_free(eied_batcher_t *batcher);

/* True for a model of several inputs or outputs, or a sequence model: its jobs carry
   each input's samples one input after another, and get their outputs likewise. */
bool eied_net_is_graph_io(const eie_net_t *net);

/* Drops the job's version reference and frees it. */
void eied_infer_job_free(eied_infer_job_t *job);

#endif
