/*
 * backend.c - the "eie-sim" backend: the engine's interface over the
 * simulated accelerator (eie/sim.h). One worker thread per engine runs the
 * simulations in submission order; each input of a batch is one inference
 * (EIE has no batching: sec. VI runs batch 1), and the run info sums cycles,
 * time and energy over the batch.
 */
#include <stdlib.h>

#include "backend.h"
#include "pe/pool.h"
#include "eie/sim.h"

typedef struct sim_state {
    eie_pool_t *pool;
    eie_sim_params_t params;
} sim_state_t;

typedef struct sim_job {
    eie_pool_job_t base;
    eie_sim_t *sim;
    const float *const *ins; /* every graph input (in1 for the single-array forms) */
    float *const *outs;      /* every graph output (out1 likewise) */
    const float *in1;
    float *out1;
    size_t batch;
    eie_run_done_fn done;
    void *user;
    eie_status_t status;
    eie_run_info_t info;
    eie_error_t err;
} sim_job_t;

static eie_status_t sim_engine_init(const eie_engine_opts_t *opts, void **state_out,
                                    unsigned *n_pes_out, eie_error_t *err)
{
    eie_sim_params_t p = eie_sim_params_default();
    if (opts->n_pes != 0)
        p.n_pes = opts->n_pes;
    if (opts->sim_fifo_depth != 0)
        p.fifo_depth = opts->sim_fifo_depth;
    if (opts->sim_pipeline_depth != 0)
        p.pipeline_depth = opts->sim_pipeline_depth;
    if (opts->sim_clock_mhz != 0.0)
        p.clock_mhz = opts->sim_clock_mhz;
    if (opts->sim_act_regs != 0)
        p.act_regs = opts->sim_act_regs;
    eie_status_t st = eie_sim_params_check(&p, err);
    if (st != EIE_STATUS_OK)
        return st;
    sim_state_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    s->params = p;
    int rc = eie_pool_init(1, &s->pool);
    if (rc != 0) {
        free(s);
        return eie_error_set(err, EIE_STATUS_RESOURCE_EXHAUSTED,
                             "eie-sim: cannot start the simulation thread (error %d)", rc);
    }
    *state_out = s;
    *n_pes_out = p.n_pes;
    return EIE_STATUS_OK;
}

static void sim_engine_free(void *state)
{
    sim_state_t *s = state;
    eie_pool_free(s->pool);
    free(s);
}

static eie_status_t sim_net_init(void *state, const eie_model_t *model, void **net_out,
                                 uint64_t *layout_bytes_out, eie_error_t *err)
{
    sim_state_t *s = state;
    eie_sim_t *sim;
    eie_status_t st = eie_sim_init(model, &s->params, &sim, err);
    if (st != EIE_STATUS_OK)
        return st;
    /* What the PEs' SRAMs would hold: 1-byte entries, 16-bit pointers, 16-bit LUT and biases. */
    uint64_t bytes = 0;
    for (size_t l = 0; l < eie_model_layer_count(model); l++) {
        eie_layer_info_t li;
        eie_model_layer_info(model, l, &li);
        if (li.kind == EIE_LAYER_FC || li.kind == EIE_LAYER_CONV2D || li.kind == EIE_LAYER_LSTM)
            bytes += li.entries + (uint64_t)s->params.n_pes * (li.cols + 1) * 2 +
                     ((uint64_t)2 << li.code_bits) + 2ull * li.rows;
    }
    *layout_bytes_out = bytes;
    *net_out = sim;
    return EIE_STATUS_OK;
}

static void sim_net_free(void *net) { eie_sim_free(net); }

/* Most graph outputs a run takes (a run's per-sample pointers live on the stack). */
#define SIM_MAX_OUTPUTS 64

/* Adds one run's report into info (and its PE cycles into *pe_cycles). */
static void info_add(eie_run_info_t *info, const eie_sim_report_t *rep, double *pe_cycles)
{
    info->entries += rep->total.entries;
    info->nonzero_acts += rep->total.broadcasts;
    info->cycles += rep->total.cycles;
    info->sim_time_us += rep->total.time_us;
    info->energy_uj += rep->total.energy_uj;
    *pe_cycles += (double)rep->total.cycles * rep->params.n_pes;
}

/* Runs a batch: a sequence model's batch is one sequence, its steps in order (one
   run); any other model's, input by input, summing the reports into info. */
static eie_status_t run_batch(eie_sim_t *sim, const float *const *ins, size_t batch,
                              float *const *outs, eie_run_info_t *info, eie_error_t *err)
{
    *info = (eie_run_info_t){0};
    double pe_cycles = 0.0;
    size_t n_out = eie_sim_output_count(sim);
    if (n_out > SIM_MAX_OUTPUTS)
        return eie_error_set(err, EIE_STATUS_LIMIT, "eie-sim: %zu outputs, at most %d", n_out,
                             SIM_MAX_OUTPUTS);
    size_t runs = eie_sim_is_sequence(sim) ? 1 : batch;
    size_t steps = eie_sim_is_sequence(sim) ? batch : 1;
    for (size_t b = 0; b < runs; b++) {
        /* a model without an lstm has one input (eie_sim_init refuses others) */
        const float *in = ins[0] + b * eie_sim_input_dim(sim);
        float *out[SIM_MAX_OUTPUTS];
        for (size_t o = 0; o < n_out; o++)
            out[o] = outs[o] + b * eie_sim_output_dim_of(sim, o);
        eie_sim_report_t rep;
        eie_status_t st = eie_sim_run_sequence_multi(sim, runs == 1 ? ins : &in, steps, out,
                                                     &rep, err);
        if (st != EIE_STATUS_OK)
            return st;
        info_add(info, &rep, &pe_cycles);
        eie_sim_report_clear(&rep);
    }
    info->efficiency = pe_cycles > 0 ? (double)info->entries / pe_cycles : 0.0;
    return EIE_STATUS_OK;
}

static void job_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    sim_job_t *job = (sim_job_t *)base;
    (void)pe;
    (void)pool;
    job->status = run_batch(job->sim, job->ins, job->batch, job->outs, &job->info, &job->err);
}

static void job_finish(eie_pool_job_t *base)
{
    sim_job_t *job = (sim_job_t *)base;
    eie_run_done_fn done = job->done;
    void *user = job->user;
    eie_status_t st = job->status;
    eie_run_info_t info = job->info;
    eie_error_t err = job->err;
    free(job);
    done(user, st, &info, st == EIE_STATUS_OK ? NULL : &err);
}

/* Every graph input and output of a model (the array stays the caller's until done). */
static eie_status_t sim_net_submit_multi(void *state, void *net, const float *const *inputs,
                                         size_t batch, float *const *outputs,
                                         eie_run_done_fn done, void *user, eie_error_t *err)
{
    sim_state_t *s = state;
    sim_job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory queueing a run");
    job->base.run = job_run;
    job->base.finish = job_finish;
    job->sim = net;
    job->ins = inputs;
    job->outs = outputs;
    job->batch = batch;
    job->done = done;
    job->user = user;
    eie_pool_submit(s->pool, &job->base);
    return EIE_STATUS_OK;
}

static eie_status_t sim_net_submit(void *state, void *net, const float *input, size_t batch,
                                   float *output, eie_run_done_fn done, void *user,
                                   eie_error_t *err)
{
    sim_state_t *s = state;
    sim_job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory queueing a run");
    job->base.run = job_run;
    job->base.finish = job_finish;
    job->sim = net;
    job->in1 = input;
    job->out1 = output;
    job->ins = &job->in1;
    job->outs = &job->out1;
    job->batch = batch;
    job->done = done;
    job->user = user;
    eie_pool_submit(s->pool, &job->base);
    return EIE_STATUS_OK;
}

/* The synchronous forms run on the caller's thread (the sim is reentrant). */
static eie_status_t sim_net_run_multi(void *state, void *net, const float *const *inputs,
                                      size_t batch, float *const *outputs,
                                      eie_run_info_t *info_out, eie_error_t *err)
{
    (void)state;
    eie_run_info_t info;
    eie_status_t st = run_batch(net, inputs, batch, outputs, &info, err);
    if (st == EIE_STATUS_OK && info_out != NULL)
        *info_out = info;
    return st;
}

static eie_status_t sim_net_run(void *state, void *net, const float *input, size_t batch,
                                float *output, eie_run_info_t *info_out, eie_error_t *err)
{
    return sim_net_run_multi(state, net, &input, batch, &output, info_out, err);
}

/* 0 keeps the EIE paper's value (engine/sim/README.md). */
static const eie_backend_option_t sim_options[] = {
    {"fifo_depth", EIE_OPTION_UINT, "0", 0, EIE_SIM_MAX_FIFO, "activation FIFO depth per PE; 0: 8",
     offsetof(eie_engine_opts_t, sim_fifo_depth)},
    {"pipeline_depth", EIE_OPTION_UINT, "0", 0, EIE_SIM_MAX_PIPELINE, "arithmetic pipeline stages; 0: 4",
     offsetof(eie_engine_opts_t, sim_pipeline_depth)},
    {"clock_mhz", EIE_OPTION_DOUBLE, "0", 0, EIE_SIM_MAX_CLOCK_MHZ, "clock in MHz; 0: 800",
     offsetof(eie_engine_opts_t, sim_clock_mhz)},
    {"act_regs", EIE_OPTION_UINT, "0", 0, EIE_SIM_MAX_ACT_REGS,
     "activations per PE register file; 0: 64 (4K over 64 PEs); longer inputs run in "
     "batches through the activation SRAM",
     offsetof(eie_engine_opts_t, sim_act_regs)},
};

const eie_backend_t eie_backend_sim = {
    .name = "eie-sim",
    .options = sim_options,
    .n_options = sizeof sim_options / sizeof sim_options[0],
    /* engine/sim/README.md, "Error bound": |sim - float| <= 2^-5 * max(1, |y|) */
    .tolerance = 1.0f / 32.0f,
    .engine_init = sim_engine_init,
    .engine_free = sim_engine_free,
    .net_init = sim_net_init,
    .net_free = sim_net_free,
    .net_submit = sim_net_submit,
    .net_run = sim_net_run,
    .net_submit_multi = sim_net_submit_multi,
    .net_run_multi = sim_net_run_multi,
};
