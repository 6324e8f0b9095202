/*
 * graph.h - version-2 graphs on the simulated accelerator (internal); sim.c
 * hands a graph model here and keeps its chain path for version-1 models.
 */
#ifndef EIE_SIM_GRAPH_H
#define EIE_SIM_GRAPH_H

#include <stdint.h>

#include "eie/sim.h"
#include "format/format.h"

typedef struct eie_sim_graph eie_sim_graph_t;

/* Prepares a graph of one output and one input, plus any lstm's fed initial state
   (layout, Q formats). Caller owns *g_out. */
eie_status_t eie_sim_graph_init(const eie_model_t *model, const eie_sim_params_t *params,
                                eie_sim_graph_t **g_out, eie_error_t *err);
void eie_sim_graph_free(eie_sim_graph_t *g);
uint32_t eie_sim_graph_input_dim(const eie_sim_graph_t *g);
uint32_t eie_sim_graph_output_dim(const eie_sim_graph_t *g);

/* Graph inputs (1, or more with an lstm's fed initial state). */
size_t eie_sim_graph_input_count(const eie_sim_graph_t *g);
/* Graph outputs, and the floats of one sample of output o. */
size_t eie_sim_graph_output_count(const eie_sim_graph_t *g);
uint32_t eie_sim_graph_output_dim_of(const eie_sim_graph_t *g, size_t o);
/* steps inferences in order (one, or a sequence's steps when the graph has an lstm
   node); inputs[i] is graph input i (steps samples; a fed initial state: one);
   outputs[o] is graph output o (steps samples; an lstm's final state: one);
   fills rep's layers (one per sparse node, summed over the steps), not its total. */
eie_status_t eie_sim_graph_run(eie_sim_graph_t *g, const float *const *inputs, size_t steps,
                               float *const *outputs, eie_sim_report_t *rep, eie_error_t *err);
/* 1 if the graph has an lstm node. */
int eie_sim_graph_is_sequence(const eie_sim_graph_t *g);

#endif
