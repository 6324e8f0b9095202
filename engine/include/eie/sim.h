/*
 * eie/sim.h - the simulated EIE accelerator (Han et al., ISCA 2016): 16-bit
 * fixed-point arithmetic as the hardware computes it, a cycle-level model of
 * the PE array and an energy estimate from the paper's per-PE power. The
 * engine's "eie-sim" backend runs on this; tools call it directly for
 * per-layer reports, sweeps and the calibration suite.
 *
 *     eie_sim_params_t p = eie_sim_params_default();    // 64 PEs, FIFO 8, 800 MHz
 *     eie_sim_t *sim;  eie_sim_report_t rep;
 *     if (eie_sim_init(model, &p, &sim, &err) == EIE_STATUS_OK &&
 *         eie_sim_run(sim, x, y, &rep, &err) == EIE_STATUS_OK)
 *         printf("%llu cycles, %.1f us\n", rep.total.cycles, rep.total.time_us);
 *     eie_sim_report_clear(&rep); eie_sim_free(sim);
 *
 * The model (what is and is not simulated) is described in engine/sim/README.md.
 */
#ifndef EIE_SIM_H
#define EIE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"
#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest accepted parameter values (each one a limit, like every size a user controls). */
#define EIE_SIM_MAX_PES 1024u
#define EIE_SIM_MAX_FIFO 1024u
#define EIE_SIM_MAX_PIPELINE 64u
#define EIE_SIM_MAX_CLOCK_MHZ 10000.0
/* A PE's 2 KB activation SRAM holds 1024 16-bit activations (EIE sec. IV). */
#define EIE_SIM_MAX_ACT_REGS 1024u

/* Hardware parameters of one simulated accelerator. */
typedef struct eie_sim_params {
    unsigned n_pes;          /* processing elements (EIE: 64), 1..EIE_SIM_MAX_PES */
    unsigned fifo_depth;     /* activation FIFO entries per PE (EIE: 8), 1..EIE_SIM_MAX_FIFO */
    unsigned pipeline_depth; /* arithmetic pipeline stages (EIE: 4), 1..EIE_SIM_MAX_PIPELINE */
    double clock_mhz;        /* clock (EIE: 800), (0, EIE_SIM_MAX_CLOCK_MHZ] */
    unsigned act_regs;       /* activations per PE register file (EIE: 64, i.e. 4K over 64
                                PEs); longer vectors run in batches through the activation
                                SRAM; 1..EIE_SIM_MAX_ACT_REGS */
} eie_sim_params_t;

/* The paper's design point: 64 PEs, FIFO depth 8, 4-stage pipeline, 800 MHz,
 * 64 activations per PE register file. */
eie_sim_params_t eie_sim_params_default(void);

/* Checks every parameter; an error names the offending value and its range. */
eie_status_t eie_sim_params_check(const eie_sim_params_t *params, eie_error_t *err);

/* What one FC layer cost in one inference (or, in eie_sim_report_t.total, all of them). */
typedef struct eie_sim_layer_report {
    size_t layer;              /* model layer index (total: number of FC layers) */
    uint32_t rows, cols;       /* outputs, inputs */
    int in_frac, weight_frac, out_frac; /* Q formats: fraction bits of inputs, codebook, outputs */
    uint64_t broadcasts;       /* activations the LNZD broadcast (bias column included) */
    uint64_t entries;          /* entries the PEs issued: weights + fillers + bias */
    uint64_t fillers;          /* filler entries among them (zero-runs over 15) */
    uint64_t macs;             /* multiply-adds on nonzero weights (no fillers, no bias) */
    uint64_t cycles;           /* first broadcast to register-file swap */
    uint64_t ideal_cycles;     /* busiest PE's own work: the bound with infinite FIFOs */
    uint64_t balanced_cycles;  /* entries / N rounded up: the paper's "theoretical" time */
    double efficiency;         /* load-balance efficiency: entries / (N * cycles) */
    uint64_t lnzd_stalls;      /* cycles the broadcast waited on a full activation FIFO */
    uint64_t lnzd_waits;       /* cycles the broadcast waited on the LNZD tree or a batch load */
    uint64_t act_batches;      /* input batches x output batches through the activation SRAM */
    uint64_t ptr_reads;        /* pointer-pair reads (p_j, p_j+1), all PEs */
    uint64_t spmat_reads;      /* 64-bit sparse-matrix SRAM words read, all PEs */
    uint64_t saturations;      /* values clipped to 16 bits (input quantisation, write-back) */
    double time_us;            /* cycles at the clock */
    double energy_uj;          /* Table II per-PE power, busy/idle scaled */
    double gops;               /* 2 * macs / time, in 1e9 operations a second */
    unsigned n_pes;            /* length of pe_busy */
    uint64_t *pe_busy;         /* per PE: cycles issuing an entry (idle = cycles - busy); owned */
} eie_sim_layer_report_t;

/* Per-layer and total figures of one inference; free with eie_sim_report_clear. */
typedef struct eie_sim_report {
    eie_sim_params_t params;       /* what it ran with */
    size_t n_layers;               /* FC layers */
    eie_sim_layer_report_t *layers; /* n_layers, owned */
    eie_sim_layer_report_t total;  /* sums over layers; efficiency over all cycles */
    size_t steps;                  /* inferences summed: 1, or a sequence's steps */
} eie_sim_report_t;

/* Frees what a report owns and zeroes it; NULL is fine. */
void eie_sim_report_clear(eie_sim_report_t *report);

/* A model prepared for the simulated accelerator (layout, Q formats). */
typedef struct eie_sim eie_sim_t;

/*
 * Prepares model for the accelerator params describes: partitions rows over
 * the PEs, packs the per-PE CSC, chooses each layer's Q formats. The sim keeps
 * no reference to model; the caller owns *sim_out.
 */
eie_status_t eie_sim_init(const eie_model_t *model, const eie_sim_params_t *params,
                          eie_sim_t **sim_out, eie_error_t *err);
/* Frees a sim; NULL is fine. */
void eie_sim_free(eie_sim_t *sim);
/* The parameters the sim was prepared with, owned by the sim. */
const eie_sim_params_t *eie_sim_params(const eie_sim_t *sim);
/* Floats one input has. */
uint32_t eie_sim_input_dim(const eie_sim_t *sim);
/* Floats one output has. */
uint32_t eie_sim_output_dim(const eie_sim_t *sim);

/*
 * Runs one input (input_dim floats) into output (output_dim floats), bit for
 * bit as the accelerator would; fills *report_out (may be NULL; the caller
 * clears it). Safe to call from many threads on one sim.
 */
eie_status_t eie_sim_run(eie_sim_t *sim, const float *input, float *output,
                         eie_sim_report_t *report_out, eie_error_t *err);

/* Most steps eie_sim_run_sequence takes. */
#define EIE_SIM_MAX_STEPS 4096u

/* 1 if the model has an lstm node: its inputs are the steps of a sequence. */
int eie_sim_is_sequence(const eie_sim_t *sim);

/*
 * Runs the steps (1..EIE_SIM_MAX_STEPS inputs) of one sequence in order
 * through a model with an lstm node, its state carried from step to step;
 * the report sums the steps (an lstm layer: one EIE pass per lane and step
 * plus the element-wise unit), so per step is its figure / steps. A model
 * without an lstm node takes steps = 1 (eie_sim_run).
 */
eie_status_t eie_sim_run_sequence(eie_sim_t *sim, const float *input, size_t steps,
                                  float *output, eie_sim_report_t *report_out, eie_error_t *err);

/* Graph inputs the model has: 1, or more where an lstm's initial state is fed. */
size_t eie_sim_input_count(const eie_sim_t *sim);
/* Graph outputs the model has, and the floats of one sample of output o. */
size_t eie_sim_output_count(const eie_sim_t *sim);
uint32_t eie_sim_output_dim_of(const eie_sim_t *sim, size_t o);

/*
 * eie_sim_run_sequence for a model of several inputs or outputs: inputs[i]
 * is graph input i in the model's order, the steps' input (steps samples)
 * and each fed initial state ([1,N,H], one sample, read at step 0);
 * outputs[o] is graph output o, steps samples, or one for an lstm's final
 * state (Y_h, Y_c: written after the last step). A model without an lstm
 * node takes steps = 1. eie_sim_run and eie_sim_run_sequence are this with
 * one input and one output (they refuse other models, naming this one).
 */
eie_status_t eie_sim_run_sequence_multi(eie_sim_t *sim, const float *const *inputs, size_t steps,
                                        float *const *outputs, eie_sim_report_t *report_out,
                                        eie_error_t *err);

/* One of the nine EIE benchmark layers (EIE Table III and IV). */
typedef struct eie_sim_bench_layer {
    const char *name;          /* "Alex-6" */
    uint32_t in, out;          /* columns, rows */
    double weight_density;     /* fraction of weights kept */
    double act_density;        /* fraction of nonzero input activations */
    double paper_theoretical_us; /* Table IV "EIE theoretical" */
    double paper_actual_us;    /* Table IV "EIE actual" (64 PEs, 800 MHz) */
} eie_sim_bench_layer_t;

/* The nine layers, static storage; *n_out = 9. */
const eie_sim_bench_layer_t *eie_sim_bench_layers(size_t *n_out);

/* How a benchmark layer's weights are drawn (engine/sim/bench.c). */
typedef enum eie_sim_bench_workload {
    /* a uniform random mask at Table III's weight density, independent of the input */
    EIE_SIM_BENCH_TABLE3,
    /* nonzero inputs' columns as dense as the entries of the paper's theoretical time need */
    EIE_SIM_BENCH_MATCHED,
    /* a trained layer's row and column scales, magnitude-pruned to Table III's weight density;
       inputs on denser columns more often nonzero (eie_sim_bench_structure_t) */
    EIE_SIM_BENCH_STRUCTURED,
} eie_sim_bench_workload_t;

/*
 * The structure EIE_SIM_BENCH_STRUCTURED gives a layer: weight w_ij drawn
 * N(0, (r_i c_j)^2) with log r_i ~ N(0, row_sigma^2) and log c_j ~
 * N(0, col_sigma^2), pruned by one magnitude threshold; input j nonzero for
 * the largest act_rho z_j + sqrt(1 - act_rho^2) e_j, z_j = log c_j /
 * col_sigma, e_j ~ N(0, 1). Measured on trained networks, never on the paper.
 */
typedef struct eie_sim_bench_structure {
    double row_sigma; /* spread of log row RMS of a trained layer */
    double col_sigma; /* spread of log column RMS */
    double act_rho;   /* latent correlation of log column RMS with the input being nonzero */
} eie_sim_bench_structure_t;

/* The values measured on eie's own trained networks (engine/sim/README.md, Calibration). */
eie_sim_bench_structure_t eie_sim_bench_structure_default(void);

/*
 * Builds a synthetic layer with layer's shape and densities (random pruning
 * mask drawn as workload says, random input, 4-bit codes, from seed) and
 * simulates one inference of it; the caller clears *report_out.
 */
eie_status_t eie_sim_bench_run(const eie_sim_bench_layer_t *layer, const eie_sim_params_t *params,
                               eie_sim_bench_workload_t workload, uint64_t seed,
                               eie_sim_report_t *report_out, eie_error_t *err);

/*
 * Builds the synthetic layer eie_sim_bench_run simulates (structure: NULL for
 * the default; read by EIE_SIM_BENCH_STRUCTURED only) and its input vector
 * (layer->in floats). The caller frees *model_out and *x_out.
 */
eie_status_t eie_sim_bench_build(const eie_sim_bench_layer_t *layer,
                                 eie_sim_bench_workload_t workload,
                                 const eie_sim_bench_structure_t *structure, uint64_t seed,
                                 eie_model_t **model_out, float **x_out, eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
