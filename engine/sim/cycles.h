/*
 * cycles.h - the cycle-level model of the EIE PE array for one FC layer
 * (internal). See README.md for what is modelled and what is not.
 */
#ifndef EIE_SIM_CYCLES_H
#define EIE_SIM_CYCLES_H

#include <stddef.h>
#include <stdint.h>

#include "eie/sim.h"
#include "eie/status.h"

/* Table II: one PE at 45 nm, 800 MHz, all modules active, in mW. */
#define EIE_SIM_PE_POWER_MW 9.157
/* Modules still clocked when a PE has no entry to issue: ActQueue (0.112 mW)
 * and ActRW (1.122 mW) keep taking broadcasts and holding the register file;
 * PtrRead, SpmatRead and ArithmUnit are idle. */
#define EIE_SIM_PE_IDLE_POWER_MW (0.112 + 1.122)
/* Width of a PE's activation SRAM port in bits. The paper gives the SRAM's
 * size (2 KB per PE, sec. IV) but not its width; 64 bits like the
 * sparse-matrix SRAM: four 16-bit activations a cycle. */
#define EIE_SIM_ACT_SRAM_BITS 64u

/* Levels of the LNZD tree on n_pes PEs: each PE's detector over its own
 * register file, then ceil(log4 n_pes) levels of 4-input LNZD nodes (EIE
 * sec. IV, Fig. 4: groups of 4 PEs, a quadtree up to the root); 4 on 64 PEs. */
unsigned eie_sim_lnzd_levels(unsigned n_pes);

/* Cycles to move one register file (act_regs 16-bit activations) between a
 * PE's activation SRAM and its register file: act_regs / 4 rounded up. */
unsigned eie_sim_act_sram_cycles(unsigned act_regs);

/* One FC layer's work on the PE array. */
typedef struct eie_sim_fc_work {
    uint32_t cols;          /* inputs; column cols is the bias column */
    unsigned n_row_batches; /* destination batches of act_regs rows per PE (>= 1) */
    /* [row batch][PE]: cols + 2 prefix sums of the entries (fillers in) that
     * the PE stores for each column within that batch's rows; the bias
     * column last. */
    const uint32_t *const *const *eptr;
    const uint32_t *bcast; /* nonzero columns in broadcast order (ascending), bias last */
    size_t n_bcast;
} eie_sim_fc_work_t;

/*
 * Simulates one layer, batched through the activation SRAM when its input or
 * output is longer than the register files hold (act_regs x n_pes). Fills in
 * rep: broadcasts, entries, cycles, ideal_cycles, balanced_cycles,
 * efficiency, lnzd_stalls, lnzd_waits, act_batches, ptr_reads, spmat_reads,
 * time_us, energy_uj, n_pes and pe_busy (allocated here, owned by rep).
 */
eie_status_t eie_sim_cycles_fc(const eie_sim_params_t *params, const eie_sim_fc_work_t *work,
                               eie_sim_layer_report_t *rep, eie_error_t *err);

/*
 * The same for a layer whose input and output fit the register files (one
 * batch): the LNZD broadcasts bcast[0..n_bcast) (column indices) in order;
 * PE p's entries of column j (fillers included) are eptr[p][j] ..
 * eptr[p][j+1] in its sparse-matrix SRAM.
 */
eie_status_t eie_sim_cycles_layer(const eie_sim_params_t *params, const uint32_t *const *eptr,
                                  const uint32_t *bcast, size_t n_bcast,
                                  eie_sim_layer_report_t *rep, eie_error_t *err);

#endif
