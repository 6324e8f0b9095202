/*
 * eie/engine.h - running models: an engine (a backend and its pool of PE
 * threads) prepares a model into a net once, at load time, and then runs it.
 *
 *     eie_engine_opts_t opts = eie_engine_opts_default();   // "cpu", N = cores
 *     eie_engine_t *e;   eie_net_t *net;
 *     eie_engine_init(&opts, &e, &err);
 *     eie_net_init(e, model, &net, &err);                   // partition, pack
 *     eie_net_run(net, input, 1, output, NULL, &err);       // input_dim -> output_dim
 *     eie_net_free(net); eie_engine_free(e);
 *
 * EIE sec. III: row i of every weight matrix belongs to PE i mod N; each PE
 * walks the nonzero input activations and accumulates its own rows.
 */
#ifndef EIE_ENGINE_H
#define EIE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"
#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eie_engine eie_engine_t;
typedef struct eie_net eie_net_t;

typedef struct eie_engine_opts {
    const char *backend; /* "cpu" (default) or a name from eie_backend_names() */
    unsigned n_pes;      /* PE worker threads; 0 = online cores (eie-sim: simulated PEs, 0 = 64) */
    unsigned sim_fifo_depth;     /* eie-sim: activation FIFO depth per PE; 0 = 8 */
    unsigned sim_pipeline_depth; /* eie-sim: arithmetic pipeline stages; 0 = 4 */
    double sim_clock_mhz;        /* eie-sim: clock in MHz; 0 = 800 */
    unsigned sim_act_regs;       /* eie-sim: activations per PE register file; 0 = 64 */
    /* cpu: 1 = keep only the column form (the row form, kept for every
       layer where the layout limit allows, costs the entries a second time
       in memory, and speeds up batches, convolutions and batch-1 runs whose
       activations are nearly all nonzero). */
    int cpu_column_only;
    /* cpu: 1 = a sample's outputs are the same bits whatever batch it runs
       in. Batch-1 runs on dense inputs then take the column walk, which
       rounds each product as every batch form does, instead of the row form
       that fuses its multiply-adds (faster there: NT-We-sized layers 1.4x). */
    int cpu_batch_invariant;
    /* cpu: 1 = one layout per net. Else a graph with an lstm node whose
       one step of one sequence is too small for the PE pool (a step's
       barrier and wake-ups would cost more than it saves) also keeps its
       layout for one PE, and runs that small run on it: on one thread the
       PEs' layout walks each active column once a PE. The bundled charlm
       on 2 PEs: a step 4.4 us against 6.2, sixteen side by side 12.5 against
       18.5-19.0, for a second copy of its (small) layout. Same bits. */
    int cpu_one_layout;
    /* cpu: the kernel variant, "scalar", "avx2" or "avx512"; NULL = the
       environment variable EIE_KERNEL if set, else the fastest this CPU
       runs. A name this CPU does not run fails eie_engine_init. */
    const char *cpu_kernel;
    /* cpu: a net whose run-time layout would need more bytes than this is
       refused before it is allocated (EIE_STATUS_LIMIT); 0 = no limit. The
       layout grows with PEs x columns, not with the file: a tiny file of one
       wide empty layer would otherwise claim gigabytes at many PEs. */
    uint64_t max_layout_bytes;
    /* cpu: also refuse a layout over this many times the model's file bytes,
       a file counting as at least 256 KiB; 0 = no such limit. */
    uint64_t max_layout_ratio;
    /* Steps of a sequence a net with an lstm node runs (its batch dimension is
       time, FORMAT.md "LSTM"); a longer one is EIE_STATUS_LIMIT. 0 = 1024. */
    unsigned max_sequence;
} eie_engine_opts_t;

/* The default of eie_engine_opts_t.max_sequence. */
#define EIE_DEFAULT_MAX_SEQUENCE 1024u

/* Defaults: backend "cpu", n_pes 0, sim_* 0 (the EIE paper's values),
   cpu_column_only 0, cpu_batch_invariant 0, cpu_one_layout 0, cpu_kernel NULL,
   max_layout_bytes 0,
   max_layout_ratio 0 (no limits). */
eie_engine_opts_t eie_engine_opts_default(void);

/* NULL-terminated list of registered backend names, static storage. */
const char *const *eie_backend_names(void);

/*
 * Backend options. Each backend declares its own (name, type, default, range, help) in its
 * registry row; a front end lists them from here and sets them by name, so a new backend's
 * options need no new code in the daemon or the CLI. Each option is a field of
 * eie_engine_opts_t.
 */
typedef enum {
    EIE_OPTION_UINT,   /* a non-negative integer in [min, max] (an unsigned field) */
    EIE_OPTION_UINT64, /* the same in a uint64_t field (byte counts) */
    EIE_OPTION_DOUBLE, /* a number in [min, max] */
    EIE_OPTION_BOOL,   /* true or false */
    EIE_OPTION_STRING, /* text, kept by reference */
} eie_option_type_t;

typedef struct eie_backend_option {
    const char *name; /* "fifo_depth" */
    eie_option_type_t type;
    const char *def; /* the default as text, as a configuration file writes it */
    double min, max; /* the range of a number */
    const char *help; /* one line */
    size_t offset;    /* the field of eie_engine_opts_t it sets */
} eie_backend_option_t;

/* What the registry knows of a backend. */
typedef struct eie_backend_info {
    const char *name;
    const eie_backend_option_t *options;
    size_t n_options;
    /* The largest difference from the float reference (eie_model_run_dense) it promises,
       relative to max(1, |reference|): 1e-5 for float backends, the fixed-point bound for
       eie-sim. The consistency suite holds every backend to its own. */
    float tolerance;
} eie_backend_info_t;

/* Registered backends: how many, and the i-th (NULL past the end). Static storage. */
size_t eie_backend_count(void);
const eie_backend_info_t *eie_backend_info(size_t i);
/* The backend called name, or NULL. */
const eie_backend_info_t *eie_backend_find(const char *name);
/* Backend be's option called key, or NULL. */
const eie_backend_option_t *eie_backend_option_find(const eie_backend_info_t *be, const char *key);

/* Sets backend's option key in opts from text (a string is kept by reference). NOT_FOUND
   for an unknown backend or key, INVALID_ARGUMENT for a value of the wrong type or out of
   range; the message names the backend, the key and the value. */
eie_status_t eie_engine_opts_set(eie_engine_opts_t *opts, const char *backend, const char *key,
                                 const char *value, eie_error_t *err);

/* Creates the backend and its PE threads (once per engine). Caller owns *engine_out. */
eie_status_t eie_engine_init(const eie_engine_opts_t *opts, eie_engine_t **engine_out,
                             eie_error_t *err);
/* Joins the PE threads; every net of the engine must be freed first. NULL is fine. */
void eie_engine_free(eie_engine_t *engine);
const char *eie_engine_backend(const eie_engine_t *engine);
unsigned eie_engine_pes(const eie_engine_t *engine);
/* The engine's settings in one line, for logs: for cpu "kernel avx512" and the
   options that change how it runs ("kernel avx2, batch_invariant"); "" where the
   backend has none to report. Valid while the engine lives. */
const char *eie_engine_describe(const eie_engine_t *engine);

/*
 * Prepares model for the engine: the load-time work (decode Huffman streams,
 * partition rows over PEs, pack the per-PE CSC layout, expand codebooks).
 * The net keeps no reference to model; the caller owns *net_out.
 */
eie_status_t eie_net_init(eie_engine_t *engine, const eie_model_t *model, eie_net_t **net_out,
                          eie_error_t *err);
void eie_net_free(eie_net_t *net);
/* Elements of one sample of graph input 0 / output 0. */
uint32_t eie_net_input_dim(const eie_net_t *net);
uint32_t eie_net_output_dim(const eie_net_t *net);
/* 1 if the graph has an lstm node: a run's batch is one sequence's steps, so requests
   must not be batched together. */
int eie_net_is_sequence(const eie_net_t *net);
/* Bytes of the run-time weight layout (per-PE entries + pointers + codebooks + biases). */
uint64_t eie_net_layout_bytes(const eie_net_t *net);

/* Figures a run reports; backends fill what they know, the rest stays 0. */
typedef struct eie_run_info {
    uint64_t entries;       /* weight entries processed (fillers included) */
    uint64_t nonzero_acts;  /* nonzero input activations broadcast, all layers */
    uint64_t cycles;        /* eie-sim: simulated cycles */
    double sim_time_us;     /* eie-sim: cycles at the configured clock */
    double efficiency;      /* eie-sim: load-balance efficiency */
    double energy_uj;       /* eie-sim: energy */
    /* cpu, a run split over the PE threads: the busiest and the least busy
       PE's time in the run (ns), waits for the other PEs left out; their
       ratio shows how evenly this machine's cores ran the PEs (EIE's load
       balance, measured). 0 when the run stayed on one thread. */
    uint64_t pe_busy_max_ns, pe_busy_min_ns;
} eie_run_info_t;

/*
 * Runs batch inputs (batch x input_dim floats, row-major) into output
 * (batch x output_dim). Blocks until done. Safe to call from many threads on
 * one net. info_out may be NULL. In a graph with an lstm node the batch is
 * the sequence's T steps, run in order; an output that is an LSTM's final
 * state (Y_h, Y_c) fills only its first sample.
 */
eie_status_t eie_net_run(eie_net_t *net, const float *input, size_t batch, float *output,
                         eie_run_info_t *info_out, eie_error_t *err);

/*
 * The asynchronous form used by the daemon: queues the run on the engine's PE
 * threads and returns at once. done is called exactly once, on a PE thread,
 * when output is written (or with a non-OK status). input and output must stay
 * valid until then.
 */
typedef void (*eie_run_done_fn)(void *user, eie_status_t status, const eie_run_info_t *info,
                                const eie_error_t *err);
eie_status_t eie_net_submit(eie_net_t *net, const float *input, size_t batch, float *output,
                            eie_run_done_fn done, void *user, eie_error_t *err);

/*
 * Graphs with several inputs or outputs. inputs[i] holds batch samples of
 * graph input i (batch x eie_net_input_elements(net, i) floats, row-major:
 * [N, C, H, W] for an image); outputs[i] receives graph output i likewise.
 * An input that is an lstm's fed initial state (eie_model_input_is_state)
 * holds one sample, [1, N, H], whatever the batch (the sequence's steps).
 * The single-array calls above are these with one input and one output.
 */
/* Graph inputs / outputs of the model the net was made from. */
size_t eie_net_input_count(const eie_net_t *net);
size_t eie_net_output_count(const eie_net_t *net);
/* 1 if graph input i is an lstm's fed initial state: one sample a run, whatever the batch
   (eie_model_input_is_state). */
int eie_net_input_is_state(const eie_net_t *net, size_t i);
/* 1 if graph output i is an lstm's final state: one sample a run, whatever the batch
   (eie_model_output_is_state). */
int eie_net_output_is_state(const eie_net_t *net, size_t i);
/* The one batch size every run of net takes (a graph whose inputs have a fixed first
   dimension, as an export's [1, 784]), or 0 where the batch is free. */
uint64_t eie_net_batch_size(const eie_net_t *net);
/* Elements of one sample of graph input i / output i (0 if i is out of range). */
uint64_t eie_net_input_elements(const eie_net_t *net, size_t i);
uint64_t eie_net_output_elements(const eie_net_t *net, size_t i);
/* Runs batch samples through the graph; blocks until done; info_out may be NULL. */
eie_status_t eie_net_run_multi(eie_net_t *net, const float *const *inputs, size_t batch,
                               float *const *outputs, eie_run_info_t *info_out,
                               eie_error_t *err);
/* The asynchronous form; inputs, outputs and the arrays they point to must stay
   valid until done is called (exactly once, on a PE thread). */
eie_status_t eie_net_submit_multi(eie_net_t *net, const float *const *inputs, size_t batch,
                                  float *const *outputs, eie_run_done_fn done, void *user,
                                  eie_error_t *err);

/*
 * Several sequences in one run, on a net with an lstm node
 * (eie_net_is_sequence): their lanes go through the LSTM side by side, and
 * every other node takes their samples of a step as one batch, so each
 * weight entry is decoded once for all of them (EIE sec. III: a batch
 * shares one pass over the sparse matrix). inputs[i] holds steps x n_seq
 * samples of graph input i, time-major: step t of sequence k is sample
 * t * n_seq + k; a fed initial state holds n_seq samples, one a sequence
 * ([1, N, H] each). outputs[i] likewise; an LSTM's final state gets n_seq
 * samples. lengths: NULL where every sequence has steps steps, else
 * sequence k's, 1 .. steps: its samples past its length are not read
 * (any value), its outputs there are zeros, and its final state is the
 * one at its own last step. n_seq is 1 .. eie_net_max_sequences(net);
 * steps is at most the engine's max_sequence. Each sequence's outputs are
 * those of running it alone, bit for bit where the engine keeps
 * batch-invariant bits (cpu_batch_invariant), else within the backend's
 * tolerance.
 */
eie_status_t eie_net_submit_sequences(eie_net_t *net, const float *const *inputs, size_t n_seq,
                                      size_t steps, const size_t *lengths, float *const *outputs,
                                      eie_run_done_fn done, void *user, eie_error_t *err);
/* The synchronous form; info_out may be NULL. */
eie_status_t eie_net_run_sequences(eie_net_t *net, const float *const *inputs, size_t n_seq,
                                   size_t steps, const size_t *lengths, float *const *outputs,
                                   eie_run_info_t *info_out, eie_error_t *err);
/* How many sequences one run of net takes (eie_net_submit_sequences): 0 for a
   net without an lstm node, 1 where its backend runs one at a time. */
size_t eie_net_max_sequences(const eie_net_t *net);

/* The dense reference: float GEMV over the decoded weights, for tests. */
eie_status_t eie_model_run_dense(const eie_model_t *model, const float *input, size_t batch,
                                 float *output, eie_error_t *err);
/* The dense reference for any graph: plain loops over decoded weights, for tests. */
eie_status_t eie_model_run_dense_multi(const eie_model_t *model, const float *const *inputs,
                                       size_t batch, float *const *outputs, eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
