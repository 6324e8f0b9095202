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
    uint32_t n_jobs;
    uint32_t rows; /* every job's rows: a sequence model's steps, summed over its jobs */
    uint32_t min_rows, max_rows; /* of a job: a sequence model's shortest and longest */
    float *input;  /* rows x input_dim; a job's own buffer when the batch has one job */
    float *output; /* rows x output_dim; a graph's outputs one after the other, job by job */
    float **io;    /* a graph: the engine's input then output arrays */
    float *gathered; /* a graph of several jobs: the arrays io points to (graph_submit_many) */
    uint64_t start_ns;
} infer_batch_t;

bool eied_net_is_graph_io(const eie_net_t *net)
{
    /* a sequence model's batch is time: its requests run side by side, not as rows */
    return eie_net_input_count(net) != 1 || eie_net_output_count(net) != 1 ||
           eie_net_is_sequence(net);
}

/* Sequences of one run are at most this many times as long as its shortest: a run
   takes its longest one's steps for every sequence, so a run of mixed lengths does at
   most twice the steps its sequences need. */
#define SEQ_LENGTH_RATIO 2u

/* Whether job may join batch b (which has a first job): same version and net, and for a
 * sequence model while the engine takes more sequences side by side
 * (eie_net_max_sequences), each counting as one of max_batch, of lengths within
 * SEQ_LENGTH_RATIO of each other; for any other its rows within max_batch, unless the
 * model takes one batch size only. */
static bool joins(const infer_batch_t *b, const eied_infer_job_t *job, uint64_t max_rows)
{
    if (job->version != b->version || job->net != b->net)
        return false;
    if (eie_net_is_sequence(job->net)) {
        uint64_t lo = job->rows < b->min_rows ? job->rows : b->min_rows;
        uint64_t hi = job->rows > b->max_rows ? job->rows : b->max_rows;
        return hi <= SEQ_LENGTH_RATIO * lo && b->n_jobs < eie_net_max_sequences(job->net) &&
               b->n_jobs < max_rows;
    }
    /* a model that takes one batch size only (an export's fixed [1, ...]) runs alone */
    return b->rows + job->rows <= max_rows && eie_net_batch_size(job->net) == 0;
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

/* ---- a graph's batch of several jobs ------------------------------------------- */

/* Floats of all of a graph's outputs for one row (a job's outputs lie one after the
   other, each rows x its elements: eied_batch_result_t.output). */
static uint64_t graph_row_floats(const eie_net_t *net)
{
    uint64_t n = 0;
    for (size_t o = 0; o < eie_net_output_count(net); o++)
        n += eie_net_output_elements(net, o);
    return n;
}

/* Where sample t of job k (whose rows follow row0 rows of the jobs before it) lies in an
 * engine array of batch b: a sequence model's steps time-major, step t of job k at t K
 * + k (a shorter sequence's steps past its own are padding), and a state (an lstm's
 * initial or final one) at k; any other model's rows one job after another
 * (eie_net_submit_sequences, eie_net_submit_multi). */
static size_t graph_sample(const infer_batch_t *b, bool state, size_t k, size_t t, size_t row0)
{
    if (!eie_net_is_sequence(b->net))
        return row0 + t;
    return state ? k : t * b->n_jobs + k;
}

/* Copies between the jobs' own buffers and the engine's arrays: each job's input i (or
 * output) of rows x its elements, one after the other (a state one sample), to (or
 * from) array i. to_engine: inputs, from the jobs' input buffers; else outputs, into
 * the jobs' regions of b->output. */
static void graph_move(infer_batch_t *b, bool to_engine)
{
    size_t n_in = eie_net_input_count(b->net);
    size_t n = to_engine ? n_in : eie_net_output_count(b->net);
    uint64_t row_floats = graph_row_floats(b->net);
    size_t k = 0, row0 = 0;
    for (eied_infer_job_t *job = b->jobs; job != NULL; job = job->next, k++) {
        float *own = to_engine ? job->input : b->output + row0 * row_floats;
        for (size_t i = 0; i < n; i++) {
            bool state = to_engine ? eie_net_input_is_state(b->net, i)
                                   : eie_net_output_is_state(b->net, i);
            size_t e = to_engine ? eie_net_input_elements(b->net, i)
                                 : eie_net_output_elements(b->net, i);
            float *arr = b->io[to_engine ? i : n_in + i];
            size_t rows = state ? 1 : job->rows;
            for (size_t t = 0; t < rows; t++) {
                float *at = arr + graph_sample(b, state, k, t, row0) * e;
                if (to_engine)
                    memcpy(at, own + t * e, e * sizeof(float));
                else
                    memcpy(own + t * e, at, e * sizeof(float));
            }
            /* a job's buffer keeps rows x elements for a state output too (its first
               sample used), one sample for a state input */
            own += (to_engine && state ? 1 : job->rows) * e;
        }
        row0 += job->rows;
    }
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
    if (status == EIE_STATUS_OK && b->gathered != NULL)
        graph_move(b, false); /* each job's outputs out of the engine's arrays */
    uint64_t row_floats = eied_net_is_graph_io(b->net) ? graph_row_floats(b->net) : out_dim;
    uint32_t row = 0;
    for (eied_infer_job_t *job = b->jobs, *next; job != NULL; job = next) {
        next = job->next;
        uint32_t rows = job->rows;
        eied_batch_result_t r = {
            .status = status,
            .detail = status != EIE_STATUS_OK ? detail : NULL,
            .output = b->output != NULL ? b->output + (size_t)row * row_floats : NULL,
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
    free(b->gathered);
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
        if (b->version != NULL && (!batching || !joins(b, job, max_rows)))
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
        b->n_jobs++;
        if (b->n_jobs == 1 || job->rows < b->min_rows)
            b->min_rows = job->rows;
        if (job->rows > b->max_rows)
            b->max_rows = job->rows;
    }
    if (b->jobs == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

/* Floats of the engine's array a (inputs, then outputs) for batch b of several jobs: a
   state one sample a sequence, any other tensor every row of the batch (a sequence
   model's: the longest sequence's steps of each). */
static uint64_t graph_array_floats(const infer_batch_t *b, size_t a)
{
    size_t n_in = eie_net_input_count(b->net);
    bool state = a < n_in ? eie_net_input_is_state(b->net, a)
                          : eie_net_output_is_state(b->net, a - n_in);
    uint64_t e = a < n_in ? eie_net_input_elements(b->net, a)
                          : eie_net_output_elements(b->net, a - n_in);
    if (!eie_net_is_sequence(b->net))
        return (uint64_t)b->rows * e;
    return (uint64_t)b->n_jobs * (state ? 1 : b->max_rows) * e;
}

/* A graph's batch of several jobs: every input gathered into one array, the outputs
 * into arrays of their own, moved to the jobs when done (graph_move); a sequence
 * model's jobs as sequences side by side. */
static eie_status_t graph_submit_many(infer_batch_t *b, eie_error_t *err)
{
    size_t n_in = eie_net_input_count(b->net), n_out = eie_net_output_count(b->net);
    uint64_t total = 0;
    for (size_t a = 0; a < n_in + n_out; a++)
        total += graph_array_floats(b, a);
    b->output = malloc(((uint64_t)b->rows * graph_row_floats(b->net) + 1) * sizeof(float));
    b->gathered = calloc(total + 1, sizeof(float)); /* padding steps: zeros */
    b->io = calloc(n_in + n_out, sizeof *b->io);
    if (b->output == NULL || b->gathered == NULL || b->io == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %u rows",
                             b->rows);
    float *at = b->gathered;
    for (size_t a = 0; a < n_in + n_out; a++) {
        b->io[a] = at;
        at += graph_array_floats(b, a);
    }
    graph_move(b, true);
    for (eied_infer_job_t *job = b->jobs; job != NULL; job = job->next) {
        free(job->input);
        job->input = NULL;
    }
    if (eie_net_is_sequence(b->net)) {
        size_t *lens = malloc(b->n_jobs * sizeof *lens), k = 0;
        if (lens == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY,
                                 "out of memory for a batch of %u sequences", b->n_jobs);
        for (eied_infer_job_t *job = b->jobs; job != NULL; job = job->next)
            lens[k++] = job->rows;
        eie_status_t st =
            eie_net_submit_sequences(b->net, (const float *const *)b->io, b->n_jobs, b->max_rows,
                                     lens, b->io + n_in, batch_done, b, err);
        free(lens); /* the engine keeps its own */
        return st;
    }
    return eie_net_submit_multi(b->net, (const float *const *)b->io, b->rows, b->io + n_in,
                                batch_done, b, err);
}

/* A graph's batch: its inputs and outputs as the engine takes them; one job's own
   buffers as they are. */
static eie_status_t graph_submit(infer_batch_t *b, eie_error_t *err)
{
    if (b->n_jobs > 1)
        return graph_submit_many(b, err);
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
