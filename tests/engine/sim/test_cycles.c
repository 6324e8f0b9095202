/*
 * The cycle model on tiny layers, every count worked out by hand from the
 * rules in engine/sim/cycles.c: the LNZD tree makes its first broadcast
 * after one cycle per level (L1 = 1 on one PE, L2 = 2 on two: the PE's
 * detector, then one 4-input node), then at most one a cycle; a broadcast
 * made in cycle t is popped (and its pointers read) in t+1, its first entry
 * issues in t+2; one entry per PE per cycle; the layer ends pipeline_depth
 * (4) + 1 (register-file swap) cycles after the last issue.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../format/model_helpers.h"
#include "eie/sim.h"
#include "sim/cycles.h"

#define L1 1 /* LNZD levels on 1 PE */
#define L2 2 /* on 2 PEs */

/* Runs the cycle model on per-PE column work lists work[p][j] (entries). */
static eie_sim_layer_report_t cycles_of(unsigned n_pes, unsigned fifo, unsigned n_cols,
                                        const uint32_t *work)
{
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = n_pes;
    p.fifo_depth = fifo;
    uint32_t *eptr[8], bcast[16];
    for (unsigned pe = 0; pe < n_pes; pe++) {
        eptr[pe] = calloc(n_cols + 1, sizeof(uint32_t));
        for (unsigned j = 0; j < n_cols; j++)
            eptr[pe][j + 1] = eptr[pe][j] + work[pe * n_cols + j];
    }
    for (unsigned j = 0; j < n_cols; j++)
        bcast[j] = j;
    eie_sim_layer_report_t rep = {0};
    eie_error_t err;
    cr_assert_eq(eie_sim_cycles_layer(&p, (const uint32_t *const *)eptr, bcast, n_cols, &rep,
                                      &err),
                 EIE_STATUS_OK);
    for (unsigned pe = 0; pe < n_pes; pe++)
        free(eptr[pe]);
    return rep;
}

Test(cycles, one_pe_two_columns_costs_lnzd_plus_2_plus_entries_plus_5)
{
    uint32_t work[] = {3, 2};
    eie_sim_layer_report_t r = cycles_of(1, 8, 2, work);
    cr_assert_eq(r.cycles, L1 + 2 + 5 + 5);
    cr_assert_eq(r.lnzd_waits, L1);
    cr_assert_eq(r.act_batches, 1);
    cr_assert_eq(r.entries, 5);
    cr_assert_eq(r.ideal_cycles, 5);
    cr_assert_eq(r.pe_busy[0], 5);
    cr_assert_eq(r.ptr_reads, 2);
    cr_assert_eq(r.spmat_reads, 1); /* entries 0..4 lie in one 64-bit word */
    cr_assert_eq(r.lnzd_stalls, 0);
    cr_assert_float_eq(r.time_us, 13.0 / 800.0, 1e-12);
    free(r.pe_busy);
}

Test(cycles, two_pes_unequal_work_wait_for_the_busier_one)
{
    /* PE 0: 4 entries, PE 1: 1 entry in the one column. */
    uint32_t work[] = {4, 1};
    eie_sim_layer_report_t r = cycles_of(2, 8, 1, work);
    cr_assert_eq(r.cycles, L2 + 2 + 4 + 5);
    cr_assert_eq(r.ideal_cycles, 4);
    cr_assert_eq(r.balanced_cycles, 3);
    cr_assert_eq(r.pe_busy[0], 4);
    cr_assert_eq(r.pe_busy[1], 1);
    cr_assert_float_eq(r.efficiency, 5.0 / (2.0 * 13.0), 1e-12);
    free(r.pe_busy);
}

Test(cycles, empty_column_costs_its_pe_one_cycle)
{
    uint32_t work[] = {0, 0, 2};
    eie_sim_layer_report_t r = cycles_of(1, 8, 3, work);
    cr_assert_eq(r.cycles, L1 + 2 + (1 + 1 + 2) + 5);
    cr_assert_eq(r.pe_busy[0], 2);
    cr_assert_eq(r.ideal_cycles, 4);
    free(r.pe_busy);
}

/*
 * Columns (PE 0, PE 1): (8, 1), (1, 1), (1, 1), (1, 8). With FIFO depth 1,
 * the first broadcast goes out in cycle L2 = 2, and PE 0 holds column 1 in
 * its pointer register and column 2 in its FIFO while it works through
 * column 0's 8 entries (cycles 4..11), so the broadcast of column 3 stalls
 * in cycles 5..11 (7 stalls) and PE 1 idles; column 3 is broadcast in cycle
 * 12, popped by PE 1 in 13, issued 14..21: 22 + 5 = 27 cycles. With depth 8
 * every column is queued by cycle 5: PE 1 finishes column 3 in cycle 14
 * like PE 0: 15 + 5 = 20 cycles.
 */
Test(cycles, full_fifo_stalls_the_broadcast_and_idles_the_other_pe)
{
    uint32_t work[] = {8, 1, 1, 1, /* PE 1 */ 1, 1, 1, 8};
    eie_sim_layer_report_t shallow = cycles_of(2, 1, 4, work);
    cr_assert_eq(shallow.lnzd_stalls, 7);
    cr_assert_eq(shallow.cycles, 27);
    cr_assert_eq(shallow.lnzd_waits, L2);
    eie_sim_layer_report_t deep = cycles_of(2, 8, 4, work);
    cr_assert_eq(deep.lnzd_stalls, 0);
    cr_assert_eq(deep.cycles, 20);
    cr_assert_eq(deep.ideal_cycles, 11);
    free(shallow.pe_busy);
    free(deep.pe_busy);
}

Test(cycles, single_pe_fifo_depth_1_stalls_without_losing_time)
{
    /* 4 columns of 3: the PE is the bottleneck either way: L1 + 2 + 12 + 5. */
    uint32_t work[] = {3, 3, 3, 3};
    eie_sim_layer_report_t r = cycles_of(1, 1, 4, work);
    cr_assert_eq(r.lnzd_stalls, 2);
    cr_assert_eq(r.cycles, L1 + 2 + 12 + 5);
    free(r.pe_busy);
}

Test(cycles, no_broadcast_costs_the_empty_scan_the_drain_and_swap)
{
    /* The LNZD needs its L2 levels to report that nothing is nonzero. */
    eie_sim_layer_report_t r = cycles_of(2, 8, 0, NULL);
    cr_assert_eq(r.cycles, L2 + 5);
    cr_assert_eq(r.entries, 0);
    free(r.pe_busy);
}

Test(cycles, sparse_matrix_words_hold_8_entries_and_are_not_reread)
{
    /* Entries 0..9 (word 0-1), then 10..17 (word 1 again: held; word 2). */
    uint32_t work[] = {10, 8};
    eie_sim_layer_report_t r = cycles_of(1, 8, 2, work);
    cr_assert_eq(r.spmat_reads, 3);
    free(r.pe_busy);
}

/* A model through eie_sim_run: layout, fillers, bias column, one inference. */
static eie_sim_report_t sim_of(uint32_t rows, uint32_t cols, const uint8_t *codes,
                               const float *bias, unsigned n_pes, const float *x)
{
    eie_builder_t *b;
    eie_error_t err;
    float cb[2] = {0.0f, 0.5f};
    cr_assert_eq(eie_builder_init("t", "", "in", "out", &b, &err), 0);
    cr_assert_eq(eie_builder_add_fc(b, rows, cols, 1, cb, codes, bias, &err), 0, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = n_pes;
    eie_sim_t *sim;
    cr_assert_eq(eie_sim_init(m, &p, &sim, &err), 0, "%s", err.msg);
    float y[64];
    eie_sim_report_t rep;
    cr_assert_eq(eie_sim_run(sim, x, y, &rep, &err), 0, "%s", err.msg);
    eie_sim_free(sim);
    eie_model_free(m);
    eie_builder_free(b);
    return rep;
}

Test(cycles, one_pe_dense_3x2_takes_lnzd_plus_2_plus_6_plus_5)
{
    uint8_t codes[6] = {1, 1, 1, 1, 1, 1};
    float x[2] = {1.0f, -1.0f};
    eie_sim_report_t r = sim_of(3, 2, codes, NULL, 1, x);
    cr_assert_eq(r.n_layers, 1);
    cr_assert_eq(r.total.broadcasts, 2);
    cr_assert_eq(r.total.cycles, L1 + 2 + 6 + 5);
    cr_assert_eq(r.total.macs, 6);
    eie_sim_report_clear(&r);
}

Test(cycles, zero_input_is_not_broadcast)
{
    uint8_t codes[6] = {1, 1, 1, 1, 1, 1};
    float x[2] = {0.0f, 1.0f};
    eie_sim_report_t r = sim_of(3, 2, codes, NULL, 1, x);
    cr_assert_eq(r.total.broadcasts, 1);
    cr_assert_eq(r.total.cycles, L1 + 2 + 3 + 5);
    eie_sim_report_clear(&r);
}

Test(cycles, run_of_40_zeros_costs_two_fillers)
{
    /* One PE, 41 x 1, only row 40 kept: 40 zeros before it = fillers at
     * rows 15 and 31, then the entry (z = 8): 3 entries, 3 cycles. */
    uint8_t codes[41] = {0};
    codes[40] = 1;
    float x[1] = {1.0f};
    eie_sim_report_t r = sim_of(41, 1, codes, NULL, 1, x);
    cr_assert_eq(r.total.fillers, 2);
    cr_assert_eq(r.total.entries, 3);
    cr_assert_eq(r.total.macs, 1);
    cr_assert_eq(r.total.cycles, L1 + 2 + 3 + 5);
    eie_sim_report_clear(&r);
}

Test(cycles, two_pes_rows_interleaved_unequal_work)
{
    /* 4 x 1, rows 0 and 2 kept (PE 0, local rows 0, 1), row 1 kept (PE 1). */
    uint8_t codes[4] = {1, 1, 1, 0};
    float x[1] = {1.0f};
    eie_sim_report_t r = sim_of(4, 1, codes, NULL, 2, x);
    cr_assert_eq(r.total.cycles, L2 + 2 + 2 + 5);
    cr_assert_eq(r.layers[0].pe_busy[0], 2);
    cr_assert_eq(r.layers[0].pe_busy[1], 1);
    cr_assert_eq(r.total.ideal_cycles, 2);
    eie_sim_report_clear(&r);
}

Test(cycles, bias_is_one_more_column_with_an_entry_per_row)
{
    uint8_t codes[4] = {1, 1, 1, 0};
    float bias[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    float x[1] = {1.0f};
    eie_sim_report_t r = sim_of(4, 1, codes, bias, 2, x);
    cr_assert_eq(r.total.broadcasts, 2);
    /* PE 0: column 0 (2) then bias (2); PE 1: 1 then 2. */
    cr_assert_eq(r.total.cycles, L2 + 2 + 4 + 5);
    cr_assert_eq(r.total.entries, 3 + 4);
    eie_sim_report_clear(&r);
}

Test(cycles, energy_scales_table_ii_power_by_busy_and_idle)
{
    uint32_t work[] = {4, 1};
    eie_sim_layer_report_t r = cycles_of(2, 8, 1, work);
    /* 13 cycles: 5 busy PE-cycles at 9.157 mW, 21 idle at 1.234 mW, 800 MHz. */
    double want = (5 * 9.157 + 21 * 1.234) / 800.0 / 1000.0;
    cr_assert_float_eq(r.energy_uj, want, 1e-12);
    free(r.pe_busy);
}

/* ---- the LNZD tree ------------------------------------------------------- */

Test(lnzd, levels_are_the_pe_detector_then_a_quadtree)
{
    /* 1 PE: its own detector; 2..4: one node above; 64: 16, 4, 1 nodes. */
    cr_assert_eq(eie_sim_lnzd_levels(1), 1);
    cr_assert_eq(eie_sim_lnzd_levels(2), 2);
    cr_assert_eq(eie_sim_lnzd_levels(4), 2);
    cr_assert_eq(eie_sim_lnzd_levels(5), 3);
    cr_assert_eq(eie_sim_lnzd_levels(16), 3);
    cr_assert_eq(eie_sim_lnzd_levels(17), 4);
    cr_assert_eq(eie_sim_lnzd_levels(64), 4);
    cr_assert_eq(eie_sim_lnzd_levels(65), 5);
    cr_assert_eq(eie_sim_lnzd_levels(1024), 6);
}

Test(lnzd, five_pes_wait_three_levels_for_the_first_nonzero)
{
    /* 5 PEs: detector, a node over PEs 0..3 and one over PE 4, the root:
     * the broadcast leaves in cycle 3; PE 0's 4 entries issue 5..8. */
    uint32_t work[] = {4, 1, 1, 1, 1};
    eie_sim_layer_report_t r = cycles_of(5, 8, 1, work);
    cr_assert_eq(r.cycles, 3 + 2 + 4 + 5);
    cr_assert_eq(r.lnzd_waits, 3);
    free(r.pe_busy);
}

Test(lnzd, after_the_fill_one_nonzero_a_cycle)
{
    /* 1 PE, 4 columns of one entry: broadcasts in cycles 1, 2, 3, 4, issues
     * in 3..6: the tree's latency is paid once, not per nonzero. */
    uint32_t work[] = {1, 1, 1, 1};
    eie_sim_layer_report_t r = cycles_of(1, 8, 4, work);
    cr_assert_eq(r.cycles, L1 + 2 + 4 + 5);
    cr_assert_eq(r.lnzd_waits, L1);
    cr_assert_eq(r.lnzd_stalls, 0);
    free(r.pe_busy);
}

/* ---- batches through the activation SRAM -------------------------------- */

/*
 * One PE with act_regs activations per register file; work[rb][j] are the
 * entries of column j in output batch rb (n_rb of them); the broadcast list
 * is the columns with bcast_mask set.
 */
static eie_sim_layer_report_t fc_of(unsigned act_regs, uint32_t cols, unsigned n_rb,
                                    const uint32_t *work, const int *bcast_mask)
{
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = 1;
    p.act_regs = act_regs;
    uint32_t *eptr[4], bcast[16];
    const uint32_t *const *batches[4];
    for (unsigned rb = 0; rb < n_rb; rb++) {
        eptr[rb] = calloc(cols + 2, sizeof(uint32_t));
        for (uint32_t j = 0; j < cols; j++)
            eptr[rb][j + 1] = eptr[rb][j] + work[rb * cols + j];
        eptr[rb][cols + 1] = eptr[rb][cols];
        batches[rb] = (const uint32_t *const *)&eptr[rb];
    }
    size_t nb = 0;
    for (uint32_t j = 0; j < cols; j++)
        if (bcast_mask[j])
            bcast[nb++] = j;
    eie_sim_fc_work_t w = {.cols = cols, .n_row_batches = n_rb, .eptr = batches,
                           .bcast = bcast, .n_bcast = nb};
    eie_sim_layer_report_t rep = {0};
    eie_error_t err;
    cr_assert_eq(eie_sim_cycles_fc(&p, &w, &rep, &err), EIE_STATUS_OK);
    for (unsigned rb = 0; rb < n_rb; rb++)
        free(eptr[rb]);
    return rep;
}

Test(batches, sram_port_moves_four_activations_a_cycle)
{
    cr_assert_eq(eie_sim_act_sram_cycles(64), 16);
    cr_assert_eq(eie_sim_act_sram_cycles(2), 1);
    cr_assert_eq(eie_sim_act_sram_cycles(5), 2);
}

/*
 * 1 PE, 2 activations per register file, 4 inputs of one entry each: two
 * input batches. Batch 0 is loaded (1 cycle) and scanned (L1): broadcasts in
 * cycles 2, 3; batch 1's load starts in 4, its first nonzero goes out in 6,
 * the next in 7; issues 4, 5, 8, 9: 10 + 5 = 15 cycles, 3 more than the
 * same layer in one batch (L1 + 2 + 4 + 5 = 12): a load per batch and a
 * tree fill per batch after the first.
 */
Test(batches, a_longer_input_is_loaded_and_scanned_batch_by_batch)
{
    uint32_t work[] = {1, 1, 1, 1};
    int all[] = {1, 1, 1, 1};
    eie_sim_layer_report_t one = fc_of(4, 4, 1, work, all);
    eie_sim_layer_report_t two = fc_of(2, 4, 1, work, all);
    cr_assert_eq(one.cycles, L1 + 2 + 4 + 5);
    cr_assert_eq(one.act_batches, 1);
    cr_assert_eq(two.cycles, 15);
    cr_assert_eq(two.act_batches, 2);
    cr_assert_eq(two.lnzd_waits, 2 + 2);
    cr_assert_eq(two.entries, one.entries);
    free(one.pe_busy);
    free(two.pe_busy);
}

Test(batches, an_all_zero_batch_still_costs_its_load_and_scan)
{
    /* 6 inputs in 3 batches, batch 1 all zero: after column 1 (cycle 3) the
     * LNZD loads and scans batch 1 (cycles 4, 5), then batch 2 (6, 7):
     * columns 4, 5 go out in 8, 9, issue 10, 11: 12 + 5 = 17. */
    uint32_t work[] = {1, 1, 0, 0, 1, 1};
    int mask[] = {1, 1, 0, 0, 1, 1};
    eie_sim_layer_report_t r = fc_of(2, 6, 1, work, mask);
    cr_assert_eq(r.cycles, 17);
    cr_assert_eq(r.act_batches, 3);
    free(r.pe_busy);
    /* Trailing zero batches: the last broadcast in 3, the scans of batches
     * 1 and 2 end in 8, after the PE's last issue (5): 8 + 5 = 13. */
    int head[] = {1, 1, 0, 0, 0, 0};
    r = fc_of(2, 6, 1, work, head);
    cr_assert_eq(r.cycles, 13);
    free(r.pe_busy);
}

/*
 * A longer output: 2 output batches, input in one batch. Each batch scans
 * the whole input again (L1), drains the pipeline (4) and writes its
 * register file to the SRAM (1 cycle for 2 activations): batch 0 with 2
 * entries ends its issue in cycle 5: 5 + 4 + 1 = 10; batch 1 with 3
 * entries: 6 + 4 + 1 = 11; the swap: 22 cycles, 9 more than one batch of 5
 * entries (L1 + 2 + 5 + 5 = 13).
 */
Test(batches, a_longer_output_runs_the_input_once_per_output_batch)
{
    uint32_t work[] = {2, /* batch 1 */ 3};
    int all[] = {1};
    eie_sim_layer_report_t r = fc_of(2, 1, 2, work, all);
    cr_assert_eq(r.cycles, 22);
    cr_assert_eq(r.entries, 5);
    cr_assert_eq(r.act_batches, 2);
    cr_assert_eq(r.ptr_reads, 2);
    cr_assert_eq(r.ideal_cycles, 2 + 3);
    free(r.pe_busy);
}

/* Through eie_sim_run: an output batch is a matrix of its own, so a zero-run
 * counts from the batch's first row and may need fewer fillers. */
Test(batches, zero_runs_restart_at_each_output_batch)
{
    /* 41 x 1, only row 40 kept. One batch: fillers at rows 15 and 31 (see
     * run_of_40_zeros_costs_two_fillers). Batches of 32 rows: row 40 is 8
     * rows into batch 1, no filler; batch 0's column is empty (1 cycle). */
    uint8_t codes[41] = {0};
    codes[40] = 1;
    float x[1] = {1.0f};
    eie_builder_t *b;
    eie_error_t err;
    float cb[2] = {0.0f, 0.5f};
    cr_assert_eq(eie_builder_init("t", "", "in", "out", &b, &err), 0);
    cr_assert_eq(eie_builder_add_fc(b, 41, 1, 1, cb, codes, NULL, &err), 0, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = 1;
    p.act_regs = 32;
    eie_sim_t *sim;
    cr_assert_eq(eie_sim_init(m, &p, &sim, &err), 0, "%s", err.msg);
    float y[41];
    eie_sim_report_t r;
    cr_assert_eq(eie_sim_run(sim, x, y, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.total.fillers, 0);
    cr_assert_eq(r.total.entries, 1);
    cr_assert_eq(r.total.act_batches, 2);
    /* batch 0: issue (empty column) in 3: 4 + 4 + 8 (32 activations out);
     * batch 1: the same with its entry; the swap: 33. */
    cr_assert_eq(r.total.cycles, 16 + 16 + 1);
    cr_assert_float_eq(y[40], 0.5f, 1e-6);
    eie_sim_report_clear(&r);
    eie_sim_free(sim);
    eie_model_free(m);
    eie_builder_free(b);
}

/*
 * A layer longer than the register files both ways (300 inputs, 40 outputs
 * on 4 PEs with 8 activations each: 10 input batches of 32 and 2 output
 * batches of 8 rows per PE) gives the same bits as in one batch, and takes
 * more cycles.
 */
Test(batches, batched_results_equal_the_unbatched_bit_for_bit)
{
    enum { ROWS = 40, COLS = 300 };
    static uint8_t codes[ROWS * COLS];
    static float x[COLS];
    float cb[16], bias[ROWS];
    uint64_t s = 7;
    for (int c = 0; c < 16; c++)
        cb[c] = c == 0 ? 0.0f : -0.8f + 0.1f * (float)c;
    for (size_t i = 0; i < ROWS * COLS; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        codes[i] = (s >> 33) % 5 == 0 ? (uint8_t)(1 + (s >> 40) % 15) : 0;
    }
    for (int i = 0; i < ROWS; i++)
        bias[i] = 0.01f * (float)(i % 7) - 0.03f;
    for (int j = 0; j < COLS; j++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[j] = (s >> 33) % 3 == 0 ? 0.0f : (float)((s >> 40) % 1000) / 1000.0f;
    }
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init("t", "", "in", "out", &b, &err), 0);
    cr_assert_eq(eie_builder_add_fc(b, ROWS, COLS, 4, cb, codes, bias, &err), 0, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    float y[2][ROWS];
    eie_sim_report_t r[2];
    for (int k = 0; k < 2; k++) {
        eie_sim_params_t p = eie_sim_params_default();
        p.n_pes = 4;
        p.act_regs = k == 0 ? 128 : 8; /* 128 x 4 PEs: all 300 inputs at once */
        eie_sim_t *sim;
        cr_assert_eq(eie_sim_init(m, &p, &sim, &err), 0, "%s", err.msg);
        cr_assert_eq(eie_sim_run(sim, x, y[k], &r[k], &err), 0, "%s", err.msg);
        eie_sim_free(sim);
    }
    cr_assert_eq(memcmp(y[0], y[1], sizeof y[0]), 0);
    cr_assert_eq(r[0].total.act_batches, 1);
    cr_assert_eq(r[1].total.act_batches, 10 * 2);
    cr_assert_eq(r[0].total.macs, r[1].total.macs);
    /* Each output batch broadcasts the input again. */
    cr_assert_eq(r[1].total.ptr_reads, 2 * r[0].total.ptr_reads);
    cr_assert_gt(r[1].total.cycles, r[0].total.cycles);
    eie_sim_report_clear(&r[0]);
    eie_sim_report_clear(&r[1]);
    eie_model_free(m);
    eie_builder_free(b);
}
