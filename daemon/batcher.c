/* The micro-batcher; see batcher.h. */
#include "batcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* A model's requests waiting for the engine and its batches running: exists while there
   are any (or its window timer is armed), pointed at by the model meanwhile. */
struct eied_batch_queue {
    eied_batcher_t *batcher;
    eied_model_t *model;
    eied_infer_job_t *pending_head, *pending_tail;
    uint64_t pending_rows;
    uv_timer_t timer;
    bool timer_armed;
    bool released;     /* the model no longer points here; freed once the timer is closed */
    bool timer_closed; /* its close callback ran */
    unsigned inflight; /* batches in the engine */
    struct eied_batch_queue *prev, *next;
};
typedef struct eied_batch_queue batch_queue_t;

struct eied_batcher {
    uv_loop_t *loop;
    eied_server_t *srv;
    const eied_config_t *cfg;
    eied_job_done_fn done;
    void *ctx;
    batch_queue_t *queues;
    bool closing;
};

typedef struct infer_batch {
    batch_queue_t *queue;
    eied_version_t *version;
    eie_net_t *net;
    eie_engine_t *engine;
    eied_infer_job_t *jobs;
    uint32_t rows;
    float *input;  /* rows x input_dim; a job's own buffer when the batch has one job */
    float *output; /* rows x output_dim; a graph's outputs one after the other */
    float **io;    /* a graph (one job a batch): its input then its output pointers */
    uint64_t start_ns;
} infer_batch_t;

bool eied_net_is_graph_io(const eie_net_t *net)
{
    /* a sequence model's batch is time: its requests run one to a batch too */
    return eie_net_input_count(net) != 1 || eie_net_output_count(net) != 1 ||
           eie_net_is_sequence(net);
}

void eied_infer_job_free(eied_infer_job_t *job)
{
    eied_version_unref(job->version);
    free(job->id);
    free(job->input);
    free(job->out_sel);
    free(job);
}

static void job_fail(eied_batcher_t *bt, eied_infer_job_t *job, eie_status_t status,
                     const char *detail)
{
    eied_batch_result_t r = {.status = status, .detail = detail};
    bt->done(bt->ctx, job, &r);
}

/* ---- queues: one per busy model ------------------------------------------------ */

static batch_queue_t *queue_get(eied_batcher_t *bt, eied_model_t *m)
{
    if (m->batch_queue != NULL)
        return m->batch_queue;
    batch_queue_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->batcher = bt;
    q->model = m;
    uv_timer_init(bt->loop, &q->timer);
    q->timer.data = q;
    q->next = bt->queues;
    if (bt->queues != NULL)
        bt->queues->prev = q;
    bt->queues = q;
    m->batch_queue = q;
    return q;
}

static void queue_unlink_free(batch_queue_t *q)
{
    eied_batcher_t *bt = q->batcher;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        bt->queues = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    free(q);
}

static void queue_timer_closed(uv_handle_t *h)
{
    batch_queue_t *q = h->data;
    q->timer_closed = true;
    if (q->released)
        queue_unlink_free(q);
}

/* An idle queue goes, so the model can be forgotten and memory stays bounded by the
   models that are busy. */
static void queue_release_if_idle(batch_queue_t *q)
{
    if (q->pending_head != NULL || q->inflight > 0 || q->timer_armed || q->released)
        return;
    q->model->batch_queue = NULL;
    q->released = true;
    if (q->timer_closed)
        queue_unlink_free(q);
    else if (!uv_is_closing((uv_handle_t *)&q->timer))
        uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}

/* ---- PE thread: a batch is computed ------------------------------------------- */

static void batch_finished(void *arg);

static void batch_done(void *user, eie_status_t status, const eie_run_info_t *info,
                       const eie_error_t *err)
{
    infer_batch_t *b = user;
    eied_batcher_t *bt = b->queue->batcher;
    uint64_t end_ns = eied_now_ns();
    eied_version_t *v = b->version;
    eied_stats_t *st = &v->stats;
    uint32_t out_dim = eie_net_output_dim(b->net);
    if (status == EIE_STATUS_OK) {
        atomic_fetch_add(&st->execution_count, 1);
        atomic_fetch_add(&st->compute_count, 1);
        atomic_fetch_add(&st->compute_ns, end_ns - b->start_ns);
        atomic_store(&st->last_inference_ms, eied_wall_ms());
        if (info != NULL && info->cycles > 0) {
            atomic_fetch_add(&st->sim_cycles, info->cycles);
            atomic_fetch_add(&st->sim_energy_pj, (uint64_t)(info->energy_uj * 1e6));
        }
    }
    char detail[1024];
    if (status != EIE_STATUS_OK)
        snprintf(detail, sizeof detail, "model '%.128s': %.512s", v->name,
                 err != NULL ? err->msg : eie_strerror(status));
    uint32_t row = 0;
    for (eied_infer_job_t *job = b->jobs, *next; job != NULL; job = next) {
        next = job->next;
        uint32_t rows = job->rows;
        eied_batch_result_t r = {
            .status = status,
            .detail = status != EIE_STATUS_OK ? detail : NULL,
            .output = b->output != NULL ? b->output + (size_t)row * out_dim : NULL,
            .batch_rows = b->rows,
            .engine = b->engine,
            .info = info,
        };
        bt->done(bt->ctx, job, &r);
        row += rows;
    }
    free(b->input);
    free(b->output);
    free(b->io);
    eied_version_unref(b->version);
    eied_server_post(bt->srv, batch_finished, b->queue);
    free(b);
}

/* ---- loop thread: batching ------------------------------------------------ */

static void queue_dispatch(batch_queue_t *q);

static void batch_finished(void *arg)
{
    batch_queue_t *q = arg;
    q->inflight--;
    queue_dispatch(q);
}

static void on_batch_timer(uv_timer_t *t)
{
    batch_queue_t *q = t->data;
    q->timer_armed = false;
    queue_dispatch(q);
}

static bool deadline_passed(gpr_timespec deadline)
{
    return gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) > 0;
}

/* Takes the pending jobs that go into one batch: same version, rows up to max_batch. */
static infer_batch_t *take_batch(batch_queue_t *q)
{
    eied_batcher_t *bt = q->batcher;
    uint64_t max_rows = bt->cfg->max_batch;
    bool batching = bt->cfg->batch_window_us > 0;
    infer_batch_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->queue = q;
    eied_infer_job_t **tail = &b->jobs;
    uint64_t now = eied_now_ns();
    while (q->pending_head != NULL) {
        eied_infer_job_t *job = q->pending_head;
        if (b->version != NULL && (!batching || job->version != b->version ||
                                   job->net != b->net || b->rows + job->rows > max_rows ||
                                   eied_net_is_graph_io(job->net)))
            break;
        q->pending_head = job->next;
        if (q->pending_head == NULL)
            q->pending_tail = NULL;
        q->pending_rows -= job->rows;
        job->next = NULL;
        atomic_fetch_add(&job->version->stats.queue_count, 1);
        atomic_fetch_add(&job->version->stats.queue_ns, now - job->arrived_ns);
        if (atomic_load(&job->call->closed)) {
            job_fail(bt, job, EIE_STATUS_CANCELLED, "cancelled by the client");
            continue;
        }
        if (deadline_passed(job->deadline)) {
            char detail[320];
            snprintf(detail, sizeof detail,
                     "model '%.128s': deadline passed after %llu us in the queue; not computed",
                     q->model->name, (unsigned long long)((now - job->arrived_ns) / 1000));
            job_fail(bt, job, EIE_STATUS_DEADLINE_EXCEEDED, detail);
            continue;
        }
        if (b->version == NULL) {
            b->version = job->version;
            eied_version_ref(b->version);
            b->net = job->net;
            b->engine = job->engine;
        }
        *tail = job;
        tail = &job->next;
        b->rows += job->rows;
    }
    if (b->jobs == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

/* A graph's batch (one job): its inputs and outputs as the engine takes them. */
static eie_status_t graph_submit(infer_batch_t *b, eie_error_t *err)
{
    size_t n_in = eie_net_input_count(b->net), n_out = eie_net_output_count(b->net);
    uint64_t out_total = 0;
    for (size_t i = 0; i < n_out; i++)
        out_total += (uint64_t)b->rows * eie_net_output_elements(b->net, i);
    b->input = b->jobs->input;
    b->jobs->input = NULL;
    b->output = malloc((out_total ? out_total : 1) * sizeof(float));
    b->io = calloc(n_in + n_out, sizeof *b->io);
    if (b->output == NULL || b->io == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %u rows",
                             b->rows);
    float *at = b->input;
    for (size_t i = 0; i < n_in; i++) {
        b->io[i] = at;
        /* an lstm's initial state: one sample whatever the steps */
        at += (size_t)(eie_net_input_is_state(b->net, i) ? 1 : b->rows) *
              eie_net_input_elements(b->net, i);
    }
    at = b->output;
    for (size_t i = 0; i < n_out; i++) {
        b->io[n_in + i] = at;
        at += (size_t)b->rows * eie_net_output_elements(b->net, i);
    }
    return eie_net_submit_multi(b->net, (const float *const *)b->io, b->rows, b->io + n_in,
                                batch_done, b, err);
}

static void batch_submit(batch_queue_t *q, infer_batch_t *b)
{
    uint32_t in_dim = eie_net_input_dim(b->net);
    uint32_t out_dim = eie_net_output_dim(b->net);
    eie_error_t err;
    if (eied_net_is_graph_io(b->net)) {
        q->inflight++;
        b->start_ns = eied_now_ns();
        eie_status_t st = graph_submit(b, &err);
        if (st != EIE_STATUS_OK)
            batch_done(b, st, NULL, &err);
        return;
    }
    b->output = malloc((size_t)b->rows * out_dim * sizeof(float));
    if (b->jobs->next == NULL) {
        b->input = b->jobs->input; /* one job: its buffer is the batch */
        b->jobs->input = NULL;
    } else {
        b->input = malloc((size_t)b->rows * in_dim * sizeof(float));
        size_t row = 0;
        for (eied_infer_job_t *j = b->jobs; j != NULL && b->input != NULL; j = j->next) {
            memcpy(b->input + row * in_dim, j->input, (size_t)j->rows * in_dim * sizeof(float));
            row += j->rows;
            free(j->input);
            j->input = NULL;
        }
    }
    q->inflight++;
    b->start_ns = eied_now_ns();
    eie_status_t st;
    if (b->output == NULL || b->input == NULL)
        st = eie_error_set(&err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %u rows",
                           b->rows);
    else
        st = eie_net_submit(b->net, b->input, b->rows, b->output, batch_done, b, &err);
    if (st != EIE_STATUS_OK)
        batch_done(b, st, NULL, &err); /* answers every job, posts batch_finished */
}

/*
 * Hands pending requests to the engine. A model with nothing running takes
 * its pending requests at once; with batches running it waits until
 * max_batch rows are pending or the oldest has waited batch_window_us.
 */
static void queue_dispatch(batch_queue_t *q)
{
    const eied_config_t *cfg = q->batcher->cfg;
    while (q->pending_head != NULL && q->inflight < cfg->max_inflight_batches) {
        uint64_t waited_us = (eied_now_ns() - q->pending_head->arrived_ns) / 1000;
        if (q->inflight > 0 && cfg->batch_window_us > 0 && q->pending_rows < cfg->max_batch &&
            waited_us < cfg->batch_window_us) {
            if (!q->timer_armed && !q->batcher->closing) {
                uint64_t left_ms = (cfg->batch_window_us - waited_us + 999) / 1000;
                uv_timer_start(&q->timer, on_batch_timer, left_ms, 0);
                q->timer_armed = true;
            }
            return;
        }
        infer_batch_t *b = take_batch(q);
        if (b == NULL)
            continue; /* every taken job was expired or cancelled */
        batch_submit(q, b);
    }
    queue_release_if_idle(q);
}

void eied_batcher_submit(eied_batcher_t *bt, eied_infer_job_t *job)
{
    batch_queue_t *q = queue_get(bt, job->model);
    if (q == NULL) {
        job_fail(bt, job, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    job->next = NULL;
    if (q->pending_tail != NULL)
        q->pending_tail->next = job;
    else
        q->pending_head = job;
    q->pending_tail = job;
    q->pending_rows += job->rows;
    queue_dispatch(q);
}

eied_batcher_t *eied_batcher_create(uv_loop_t *loop, eied_server_t *srv, const eied_config_t *cfg,
                                    eied_job_done_fn done, void *ctx)
{
    eied_batcher_t *bt = calloc(1, sizeof *bt);
    if (bt == NULL)
        return NULL;
    bt->loop = loop;
    bt->srv = srv;
    bt->cfg = cfg;
    bt->done = done;
    bt->ctx = ctx;
    return bt;
}

void eied_batcher_close(eied_batcher_t *bt)
{
    if (bt == NULL)
        return;
    bt->closing = true;
    for (batch_queue_t *q = bt->queues; q != NULL; q = q->next)
        if (!uv_is_closing((uv_handle_t *)&q->timer))
            uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}

void eied_batcher_free(eied_batcher_t *bt)
{
    if (bt == NULL)
        return;
    /* the loop has ended: every timer is closed; models may still point at a queue */
    for (batch_queue_t *q = bt->queues, *next; q != NULL; q = next) {
        next = q->next;
        if (!q->released)
            q->model->batch_queue = NULL;
        free(q);
    }
    free(bt);
}
