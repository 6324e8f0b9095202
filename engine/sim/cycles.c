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
 * A broadcast is seen by the PEs the cycle after it is made.
 *
 * The LNZD (sec. IV, "Distributed Leading Non-Zero Detection") is a
 * quadtree: each PE's detector finds the leading nonzero of its own
 * register file, and each LNZD node the leading one of its four children.
 * Every level is one register stage, so a scan delivers its first nonzero
 * to the root `levels` cycles after it starts and then one a cycle (each
 * node refills from its children while its parent takes its value); a scan
 * that finds nothing also takes `levels` cycles to say so. Zero activations
 * cost nothing else: every detector sees its whole register file at once.
 *
 * Batches (sec. IV, "Activation Read/Write"): a PE's register files hold
 * act_regs activations (64: 4K over 64 PEs); a longer vector lives in the
 * activation SRAM and the M x V runs in batches of act_regs x N.
 *  - Input batches: columns [c B, (c+1) B), B = act_regs x N (a_j sits on
 *    PE j mod N). Each is loaded from the SRAM into the source register file
 *    (act_regs / 4 cycles at 64 bits) and then scanned. The load of the next
 *    batch starts the cycle after the LNZD broadcast the last nonzero of the
 *    current one (the values are in the FIFOs by then), so it overlaps the
 *    PEs' remaining work but not the LNZD's. The bias column (activation 1.0)
 *    goes with the last batch. An input that fits is already in the register
 *    file (the previous layer's destination): no load.
 *  - Output batches: local rows [r act_regs, (r+1) act_regs) of every PE.
 *    The destination register file accumulates one batch over the whole
 *    input (all reduction in the registers, so no partial sum leaves them
 *    and the results are the unbatched ones bit for bit); then the pipeline
 *    drains and the batch is written to the SRAM (act_regs / 4 cycles)
 *    before the next batch starts.
 * The layer ends when the last entry has left the pipeline (pipeline_depth
 * cycles after it issued), after the last batch's write-back if any, plus
 * one cycle to swap the source and destination register files (sec. III-C).
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

/* What one pass (one output batch over the whole input) adds up. */
typedef struct pass_acc {
    uint64_t entries, ptr_reads, spmat_reads, stalls, waits, ideal;
} pass_acc_t;

unsigned eie_sim_lnzd_levels(unsigned n_pes)
{
    unsigned levels = 1;
    for (unsigned span = 1; span < n_pes; span *= 4)
        levels++;
    return levels;
}

unsigned eie_sim_act_sram_cycles(unsigned act_regs)
{
    unsigned per = EIE_SIM_ACT_SRAM_BITS / 16;
    return (act_regs + per - 1) / per;
}

/*
 * One pass: all PEs idle at its start; broadcasts bcast[0..n) whose input
 * batch (of n_cb) is batch_of(j); `load` cycles fill the source register file
 * before each batch's scan. Returns the cycles until the last entry issued
 * or the LNZD finished its last scan, whichever is later.
 */
static uint64_t run_pass(const eie_sim_params_t *P, const uint32_t *const *eptr,
                         const uint32_t *bcast, size_t n, uint32_t cols, unsigned n_cb,
                         unsigned load, pe_state_t *pe, uint32_t *ring, uint64_t *busy,
                         pass_acc_t *acc)
{
    unsigned N = P->n_pes, D = P->fifo_depth;
    uint64_t bw = (uint64_t)P->act_regs * N; /* activations in one input batch */
    uint64_t scan = (uint64_t)load + eie_sim_lnzd_levels(N); /* load and tree fill of a batch */
    memset(pe, 0, N * sizeof *pe);
    for (unsigned p = 0; p < N; p++)
        pe[p].last_word = UINT64_MAX;
#define BATCH_OF(j) (n_cb == 1 ? 0u : (unsigned)(((j) < cols ? (j) : cols - 1) / bw))
    /* The batch being scanned and the first cycle its next nonzero can go out. */
    unsigned cb = n ? BATCH_OF(bcast[0]) : n_cb - 1;
    uint64_t ready = (uint64_t)(cb + 1) * scan;
    uint64_t lnzd_end = n ? 0 : ready;
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
                acc->ptr_reads++;
                uint32_t b = eptr[p][j], e = eptr[p][j + 1];
                if (e > b) {
                    uint64_t fw = b / 8, lw = (e - 1) / 8;
                    acc->spmat_reads += lw - fw + 1 - (fw == s->last_word);
                    s->last_word = lw;
                }
                acc->entries += e - b;
                s->nxt = e > b ? e - b : 1;
                s->nxt_empty = e == b;
                s->work += s->nxt;
            }
            pending |= s->cur != 0 || s->nxt != 0 || s->count != 0;
        }
        if (k < n) {
            if (t < ready) {
                acc->waits++;
            } else if (n_full != 0) {
                acc->stalls++;
            } else {
                for (unsigned p = 0; p < N; p++) {
                    pe_state_t *s = &pe[p];
                    ring[(size_t)p * D + (s->head + s->count) % D] = (uint32_t)k;
                    if (++s->count == D)
                        n_full++;
                }
                k++;
                /* After a batch's last nonzero: load and scan the next
                 * batch, and every batch with no nonzero on the way. */
                unsigned next = k < n ? BATCH_OF(bcast[k]) : n_cb - 1;
                if (k == n)
                    lnzd_end = t + 1 + (uint64_t)(next - cb) * scan;
                else if (next != cb)
                    ready = t + 1 + (uint64_t)(next - cb) * scan;
                cb = next;
            }
            pending = 1;
        }
        t++;
        if (!pending)
            break;
    }
#undef BATCH_OF
    uint64_t ideal = 0;
    for (unsigned p = 0; p < N; p++)
        ideal = pe[p].work > ideal ? pe[p].work : ideal;
    acc->ideal += ideal;
    return end > lnzd_end ? end : lnzd_end;
}

eie_status_t eie_sim_cycles_fc(const eie_sim_params_t *params, const eie_sim_fc_work_t *work,
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
    /* cols == 0: a layer known to fit the register files (one input batch). */
    uint64_t bw = (uint64_t)params->act_regs * N;
    unsigned n_cb = work->cols == 0 ? 1 : (unsigned)((work->cols + bw - 1) / bw);
    unsigned n_rb = work->n_row_batches ? work->n_row_batches : 1;
    unsigned io = eie_sim_act_sram_cycles(params->act_regs);
    pass_acc_t acc = {0};
    uint64_t cycles = 0;
    for (unsigned rb = 0; rb < n_rb; rb++) {
        cycles += run_pass(params, work->eptr[rb], work->bcast, work->n_bcast, work->cols, n_cb,
                           n_cb > 1 ? io : 0, pe, ring, busy, &acc) +
                  params->pipeline_depth;
        if (n_rb > 1)
            cycles += io; /* write the destination batch to the SRAM */
    }
    cycles += 1; /* swap the register files */
    uint64_t busy_sum = 0;
    for (unsigned p = 0; p < N; p++)
        busy_sum += busy[p];
    rep->broadcasts = work->n_bcast;
    rep->entries = acc.entries;
    rep->cycles = cycles;
    rep->ideal_cycles = acc.ideal;
    rep->balanced_cycles = (acc.entries + N - 1) / N;
    rep->efficiency = (double)acc.entries / ((double)N * (double)cycles);
    rep->lnzd_stalls = acc.stalls;
    rep->lnzd_waits = acc.waits;
    rep->act_batches = (uint64_t)n_cb * n_rb;
    rep->ptr_reads = acc.ptr_reads;
    rep->spmat_reads = acc.spmat_reads;
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

eie_status_t eie_sim_cycles_layer(const eie_sim_params_t *params, const uint32_t *const *eptr,
                                  const uint32_t *bcast, size_t n_bcast,
                                  eie_sim_layer_report_t *rep, eie_error_t *err)
{
    const uint32_t *const *batches[1] = {eptr};
    eie_sim_fc_work_t w = {.cols = 0, .n_row_batches = 1, .eptr = batches, .bcast = bcast,
                           .n_bcast = n_bcast};
    return eie_sim_cycles_fc(params, &w, rep, err);
}
