/* Kept-weight masks and the statistics `eiectl simulate --structure` fits. */
#include <criterion/criterion.h>
#include <math.h>

#include "mask.h"

/*
 * A pruned 3 x 4 layer (rows are outputs): rows keep 2, 1, 3 weights,
 * columns 3, 2, 1, 0. -0.0 counts as pruned.
 */
static const float pruned_w[12] = {
    0.5f,   -0.25f, 0.0f,   0.0f, /* */
    -1.0f,  0.0f,   -0.0f,  0.0f, /* */
    0.125f, 2.0f,   -0.75f, 0.0f  /* */
};

Test(mask, a_pruned_layer_keeps_its_nonzeros_and_their_share)
{
    uint8_t m[12];
    static const uint8_t want[12] = {1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0};
    cr_assert_float_eq(eiectl_mask_kept(pruned_w, 12, m), 0.5, 1e-12);
    for (int k = 0; k < 12; k++)
        cr_assert_eq(m[k], want[k], "weight %d", k);
}

Test(mask, spreads_and_excess_of_a_hand_made_mask_are_the_hand_computed_ones)
{
    uint8_t m[12];
    double rn[3], cn[4];
    static const double p[4] = {0.5, 0.25, 0.0, 1.0};
    eiectl_mask_kept(pruned_w, 12, m);
    eiectl_mask_stats_t s = eiectl_mask_stats(m, 3, 4, p, rn, cn);
    /* Rows 2, 1, 3: mean 2, population std sqrt(2/3). */
    cr_assert_float_eq(s.row_cv, sqrt(2.0 / 3.0) / 2.0, 1e-12);
    /* Columns 3, 2, 1, 0: mean 1.5, std sqrt(1.25). */
    cr_assert_float_eq(s.col_cv, sqrt(1.25) / 1.5, 1e-12);
    /* Multiply-adds 3 x 0.5 + 2 x 0.25 = 2; a uniform mask's 1.5 x 1.75. */
    cr_assert_float_eq(s.excess, 2.0 / (1.5 * 1.75), 1e-12);
    static const double rows_kept[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(rn[i], rows_kept[i], 1e-12);
}

Test(mask, a_uniform_mask_has_no_spread_and_no_excess)
{
    /* Every row and column keeps 2 of 4: a diagonal band. */
    static const uint8_t m[16] = {1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1};
    static const double p[4] = {0.9, 0.1, 0.3, 0.0};
    double rn[4], cn[4];
    eiectl_mask_stats_t s = eiectl_mask_stats(m, 4, 4, p, rn, cn);
    cr_assert_float_eq(s.row_cv, 0.0, 1e-12);
    cr_assert_float_eq(s.col_cv, 0.0, 1e-12);
    cr_assert_float_eq(s.excess, 1.0, 1e-12);
}

Test(mask, an_empty_mask_has_zero_statistics)
{
    static const uint8_t m[4] = {0};
    static const double p[2] = {0.5, 0.5};
    double rn[2], cn[2];
    eiectl_mask_stats_t s = eiectl_mask_stats(m, 2, 2, p, rn, cn);
    cr_assert_eq(s.row_cv, 0.0);
    cr_assert_eq(s.col_cv, 0.0);
    cr_assert_eq(s.excess, 0.0);
}
