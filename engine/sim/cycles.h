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

/*
 * Simulates one layer: the LNZD broadcasts bcast[0..n_bcast) (column
 * indices) in order; PE p's entries of column j (fillers included) are
 * eptr[p][j] .. eptr[p][j+1] in its sparse-matrix SRAM. Fills in rep:
 * broadcasts, entries, cycles, ideal_cycles, balanced_cycles, efficiency,
 * lnzd_stalls, ptr_reads, spmat_reads, time_us, energy_uj, n_pes and pe_busy
 * (allocated here, owned by rep).
 */
eie_status_t eie_sim_cycles_layer(const eie_sim_params_t *params, const uint32_t *const *eptr,
                                  const uint32_t *bcast, size_t n_bcast,
                                  eie_sim_layer_report_t *rep, eie_error_t *err);

#endif
