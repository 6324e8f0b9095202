/*
 * graph.h - the cpu backend's executor for version-2 graphs (internal).
 * cpu.c keeps its tuned chain path for version-1 models and hands graphs
 * here; both run on the same pool of PE threads and the same kernels.
 */
#ifndef EIE_CPU_GRAPH_H
#define EIE_CPU_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/kernels.h"
#include "pe/pool.h"
#include "eie/engine.h"

typedef struct eie_cpu_graph eie_cpu_graph_t;

/* Prepares model (load time: partition, pack, plan buffers) for n_pes PEs and kernel k;
 * with_rows: fc, conv2d and lstm nodes with shared weights also keep the row form
 * (layout.h), and runs take it where it pays, as a chain's do (cpu.c); fused_b1: a
 * batch-1 run on a dense input may take the row form that fuses its multiply-adds
 * (false: batch-invariant bits, eie_engine_opts_t.cpu_batch_invariant). */
eie_status_t eie_cpu_graph_init(const eie_model_t *model, unsigned n_pes, const eie_cpu_kernel_t *k,
                                int with_rows, bool fused_b1, bool one_pe_copy,
                                eie_cpu_graph_t **graph_out, uint64_t *layout_bytes_out,
                                eie_error_t *err);
void eie_cpu_graph_free(eie_cpu_graph_t *g);

/*
 * Which slot of group q's layout PE p runs. Each group of a grouped
 * convolution is packed as its own matrix of rows_g rows, slot v holding its
 * rows v, v + N, ...; PE p takes the slot whose rows are global output
 * channels q * rows_g + v + kN == p (mod N), so channel i runs on PE i mod N
 * as an fc row does (EIE sec. III-B), and a depthwise layer (one channel a
 * group) spreads over all PEs instead of landing on PE 0.
 */
static inline unsigned eie_cpu_group_slot(unsigned n_pes, uint32_t q, uint32_t rows_g, unsigned p)
{
    unsigned shift = (unsigned)(((uint64_t)q * rows_g) % n_pes);
    return (p + n_pes - shift) % n_pes;
}

/* Queues a run on pool (see eie_net_submit_multi); join: the caller takes a PE slot. */
eie_status_t eie_cpu_graph_submit(eie_pool_t *pool, eie_cpu_graph_t *g,
                                  const float *const *inputs, size_t batch,
                                  float *const *outputs, eie_run_done_fn done, void *user,
                                  int join, eie_error_t *err);
/* Queues a run of n_seq sequences side by side (eie_net_submit_sequences: steps x n_seq
 * samples time-major, lengths NULL or each 1..steps; n_seq up to
 * eie_cpu_graph_max_sequences); join as eie_cpu_graph_submit. */
eie_status_t eie_cpu_graph_submit_sequences(eie_pool_t *pool, eie_cpu_graph_t *g,
                                            const float *const *inputs, size_t n_seq,
                                            size_t steps, const size_t *lengths,
                                            float *const *outputs, eie_run_done_fn done,
                                            void *user, int join, eie_error_t *err);
/* The sequences one run of g takes side by side (graph.c, SEQ_LANES). */
size_t eie_cpu_graph_max_sequences(const eie_cpu_graph_t *g);

#endif
