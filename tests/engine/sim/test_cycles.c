/*
 * The cycle model on tiny layers, every count worked out by hand from the
 * rules in engine/sim/cycles.c: a broadcast made in cycle t is popped (and
 * its pointers read) in t+1, its first entry issues in t+2; one entry per PE
 * per cycle; the layer ends pipeline_depth (4) + 1 (register-file swap)
 * cycles after the last issue.
 */
#include <criterion/criterion.h>

#include "../format/model_helpers.h"
#include "eie/sim.h"
#include "sim/cycles.h"

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

Test(cycles, one_pe_two_columns_costs_2_plus_entries_plus_5)
{
    uint32_t work[] = {3, 2};
    eie_sim_layer_report_t r = cycles_of(1, 8, 2, work);
    cr_assert_eq(r.cycles, 2 + 5 + 5);
    cr_assert_eq(r.entries, 5);
    cr_assert_eq(r.ideal_cycles, 5);
    cr_assert_eq(r.pe_busy[0], 5);
    cr_assert_eq(r.ptr_reads, 2);
    cr_assert_eq(r.spmat_reads, 1); /* entries 0..4 lie in one 64-bit word */
    cr_assert_eq(r.lnzd_stalls, 0);
    cr_assert_float_eq(r.time_us, 12.0 / 800.0, 1e-12);
    free(r.pe_busy);
}

Test(cycles, two_pes_unequal_work_wait_for_the_busier_one)
{
    /* PE 0: 4 entries, PE 1: 1 entry in the one column. */
    uint32_t work[] = {4, 1};
    eie_sim_layer_report_t r = cycles_of(2, 8, 1, work);
    cr_assert_eq(r.cycles, 2 + 4 + 5);
    cr_assert_eq(r.ideal_cycles, 4);
    cr_assert_eq(r.balanced_cycles, 3);
    cr_assert_eq(r.pe_busy[0], 4);
    cr_assert_eq(r.pe_busy[1], 1);
    cr_assert_float_eq(r.efficiency, 5.0 / (2.0 * 11.0), 1e-12);
    free(r.pe_busy);
}

Test(cycles, empty_column_costs_its_pe_one_cycle)
{
    uint32_t work[] = {0, 0, 2};
    eie_sim_layer_report_t r = cycles_of(1, 8, 3, work);
    cr_assert_eq(r.cycles, 2 + (1 + 1 + 2) + 5);
    cr_assert_eq(r.pe_busy[0], 2);
    cr_assert_eq(r.ideal_cycles, 4);
    free(r.pe_busy);
}

/*
 * Columns (PE 0, PE 1): (8, 1), (1, 1), (1, 1), (1, 8). With FIFO depth 1,
 * PE 0 holds column 1 in its pointer register and column 2 in its FIFO
 * while it works through column 0's 8 entries (cycles 2..9), so the
 * broadcast of column 3 stalls in cycles 3..9 (7 stalls) and PE 1 idles;
 * column 3 is broadcast in cycle 10, popped by PE 1 in 11, issued 12..19:
 * 20 + 5 = 25 cycles. With depth 8 every column is queued by cycle 3: PE 1
 * finishes column 3 in cycle 12 like PE 0: 13 + 5 = 18 cycles.
 */
Test(cycles, full_fifo_stalls_the_broadcast_and_idles_the_other_pe)
{
    uint32_t work[] = {8, 1, 1, 1, /* PE 1 */ 1, 1, 1, 8};
    eie_sim_layer_report_t shallow = cycles_of(2, 1, 4, work);
    cr_assert_eq(shallow.lnzd_stalls, 7);
    cr_assert_eq(shallow.cycles, 25);
    eie_sim_layer_report_t deep = cycles_of(2, 8, 4, work);
    cr_assert_eq(deep.lnzd_stalls, 0);
    cr_assert_eq(deep.cycles, 18);
    cr_assert_eq(deep.ideal_cycles, 11);
    free(shallow.pe_busy);
    free(deep.pe_busy);
}

Test(cycles, single_pe_fifo_depth_1_stalls_without_losing_time)
{
    /* 4 columns of 3: the PE is the bottleneck either way: 2 + 12 + 5. */
    uint32_t work[] = {3, 3, 3, 3};
    eie_sim_layer_report_t r = cycles_of(1, 1, 4, work);
    cr_assert_eq(r.lnzd_stalls, 2);
    cr_assert_eq(r.cycles, 19);
    free(r.pe_busy);
}

Test(cycles, no_broadcast_costs_only_the_drain_and_swap)
{
    eie_sim_layer_report_t r = cycles_of(2, 8, 0, NULL);
    cr_assert_eq(r.cycles, 5);
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

Test(cycles, one_pe_dense_3x2_takes_2_plus_6_plus_5)
{
    uint8_t codes[6] = {1, 1, 1, 1, 1, 1};
    float x[2] = {1.0f, -1.0f};
    eie_sim_report_t r = sim_of(3, 2, codes, NULL, 1, x);
    cr_assert_eq(r.n_layers, 1);
    cr_assert_eq(r.total.broadcasts, 2);
    cr_assert_eq(r.total.cycles, 13);
    cr_assert_eq(r.total.macs, 6);
    eie_sim_report_clear(&r);
}

Test(cycles, zero_input_is_not_broadcast)
{
    uint8_t codes[6] = {1, 1, 1, 1, 1, 1};
    float x[2] = {0.0f, 1.0f};
    eie_sim_report_t r = sim_of(3, 2, codes, NULL, 1, x);
    cr_assert_eq(r.total.broadcasts, 1);
    cr_assert_eq(r.total.cycles, 2 + 3 + 5);
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
    cr_assert_eq(r.total.cycles, 2 + 3 + 5);
    eie_sim_report_clear(&r);
}

Test(cycles, two_pes_rows_interleaved_unequal_work)
{
    /* 4 x 1, rows 0 and 2 kept (PE 0, local rows 0, 1), row 1 kept (PE 1). */
    uint8_t codes[4] = {1, 1, 1, 0};
    float x[1] = {1.0f};
    eie_sim_report_t r = sim_of(4, 1, codes, NULL, 2, x);
    cr_assert_eq(r.total.cycles, 2 + 2 + 5);
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
    cr_assert_eq(r.total.cycles, 2 + 4 + 5);
    cr_assert_eq(r.total.entries, 3 + 4);
    eie_sim_report_clear(&r);
}

Test(cycles, energy_scales_table_ii_power_by_busy_and_idle)
{
    uint32_t work[] = {4, 1};
    eie_sim_layer_report_t r = cycles_of(2, 8, 1, work);
    /* 5 busy PE-cycles at 9.157 mW, 17 idle at 1.234 mW, 800 MHz. */
    double want = (5 * 9.157 + 17 * 1.234) / 800.0 / 1000.0;
    cr_assert_float_eq(r.energy_uj, want, 1e-12);
    free(r.pe_busy);
}
