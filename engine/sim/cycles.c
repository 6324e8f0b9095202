/*
 * cycles.c - the cycle-level model of one FC layer on the PE array.
 *
 * Per cycle, in this order (EIE sec. III-IV):
 *  1. Every PE's entry stage: when its current column is done and a column
 *     is waiting in the pointer register, that column becomes current (no
 *     bubble: the pointer read overlapped the previous column). A column
 *     holds the stage for max(1, entries) cycles: one entry (v, z) per cycle
 *     into the arithmetic pipeline, fillers included (sec. III-B: a filler is
 *     an entry like any other); an empty column (p_j == p_j+1) still costs
 *     the one cycle in which the PE learns that it is empty.
 *  2. Every PE's pointer stage: if the pointer register is free, pop the
 *     next (a_j, j) from the activation FIFO and read p_j and p_j+1 from the
 *     even and odd pointer banks in this one cycle (sec. IV: two banks), and
 *     fetch the 64-bit sparse-matrix words the column spans (8 entries a
 *     word; a word already held from the previous column is not read again).
 *  3. The LNZD broadcasts the next nonzero activation to all PEs, at most one
 *     a cycle, unless some PE's FIFO is full (after this cycle's pops); then
 *     the broadcast stalls (sec. III-A).
 * A broadcast is seen by the PEs the cycle after it is made. The layer ends
 * when the last entry has left the pipeline (pipeline_depth cycles after it
 * issued) plus one cycle to swap the source and destination activation
 * register files (sec. III-C).
 */
#include "sim/cycles.h"

#include <stdlib.h>
#include <string.h>

typedef struct pe_state {
    uint32_t head, count; /* activation FIFO: a ring of broadcast indices */
    uint32_t cur, nxt;    /* cycles left in the current column; of the prefetched one (0: none) */
    uint8_t cur_empty, nxt_empty; /* the column is an empty-column bubble */
    uint64_t last_word;   /* last sparse-matrix word read, UINT64_MAX for none */
    uint64_t work;        /* max(1, entries) summed: the PE's own cycles */
} pe_state_t;

eie_status_t eie_sim_cycles_layer(const eie_sim_params_t *params, const uint32_t *const *eptr,
                                  const uint32_t *bcast, size_t n_bcast,
                                  eie_sim_layer_report_t *rep, eie_error_t *err)
{
    unsigned N = params->n_pes, D = params->fifo_depth;
    pe_state_t *pe = calloc(N, sizeof *pe);
    uint32_t *ring = malloc((size_t)N * D * sizeof *ring);
    uint64_t *busy = calloc(N, sizeof *busy);
    if (pe == NULL || ring == NULL || busy == NULL) {
        free(pe);
        free(ring);
        free(busy);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory (%u PEs)", N);
    }
    for (unsigned p = 0; p < N; p++)
        pe[p].last_word = UINT64_MAX;
    uint64_t entries = 0, ptr_reads = 0, spmat_reads = 0, stalls = 0;
    uint64_t t = 0, end = 0;
    unsigned n_full = 0;
    size_t k = 0;
    for (;;) {
        int pending = 0;
        for (unsigned p = 0; p < N; p++) {
            pe_state_t *s = &pe[p];
            if (s->cur == 0 && s->nxt != 0) {
                s->cur = s->nxt;
                s->cur_empty = s->nxt_empty;
                s->nxt = 0;
            }
            if (s->cur != 0) {
                s->cur--;
                busy[p] += !s->cur_empty;
                end = t + 1;
            }
            if (s->nxt == 0 && s->count != 0) {
                uint32_t j = bcast[ring[(size_t)p * D + s->head]];
                s->head = (s->head + 1) % D;
                if (s->count-- == D)
                    n_full--;
                ptr_reads++;
                uint32_t b = eptr[p][j], e = eptr[p][j + 1];
                if (e > b) {
                    uint64_t fw = b / 8, lw = (e - 1) / 8;
                    spmat_reads += lw - fw + 1 - (fw == s->last_word);
                    s->last_word = lw;
                }
                entries += e - b;
                s->nxt = e > b ? e - b : 1;
                s->nxt_empty = e == b;
                s->work += s->nxt;
            }
            pending |= s->cur != 0 || s->nxt != 0 || s->count != 0;
        }
        if (k < n_bcast) {
            if (n_full == 0) {
                for (unsigned p = 0; p < N; p++) {
                    pe_state_t *s = &pe[p];
                    ring[(size_t)p * D + (s->head + s->count) % D] = (uint32_t)k;
                    if (++s->count == D)
                        n_full++;
                }
                k++;
            } else {
                stalls++;
            }
            pending = 1;
        }
        t++;
        if (!pending)
            break;
    }
    uint64_t cycles = end + params->pipeline_depth + 1;
    uint64_t ideal = 0, busy_sum = 0;
    for (unsigned p = 0; p < N; p++) {
        if (pe[p].work > ideal)
            ideal = pe[p].work;
        busy_sum += busy[p];
    }
    rep->broadcasts = n_bcast;
    rep->entries = entries;
    rep->cycles = cycles;
    rep->ideal_cycles = ideal;
    rep->balanced_cycles = (entries + N - 1) / N;
    rep->efficiency = (double)entries / ((double)N * (double)cycles);
    rep->lnzd_stalls = stalls;
    rep->ptr_reads = ptr_reads;
    rep->spmat_reads = spmat_reads;
    rep->time_us = (double)cycles / params->clock_mhz;
    /* mW x cycles / MHz = nJ; the power figures are the paper's at 800 MHz
     * and scale with the clock for dynamic power (energy per cycle fixed). */
    double mw_cycles = EIE_SIM_PE_POWER_MW * (double)busy_sum +
                       EIE_SIM_PE_IDLE_POWER_MW * ((double)N * (double)cycles - (double)busy_sum);
    rep->energy_uj = mw_cycles / 800.0 / 1000.0;
    rep->n_pes = N;
    rep->pe_busy = busy;
    free(pe);
    free(ring);
    return EIE_STATUS_OK;
}
