/*
 * mask.h - the kept-weight mask of a fully connected layer and the three
 * statistics of it that `eiectl simulate --structure` fits the structured
 * benchmark workload to: how unequal its rows' and its columns' densities
 * are, and how much more work it does on real inputs than a uniform mask.
 */
#ifndef EIECTL_MASK_H
#define EIECTL_MASK_H

#include <stddef.h>
#include <stdint.h>

/*
 * A layer with at most this share of nonzero weights is taken as already
 * pruned: its own mask is measured. A dense layer is pruned by magnitude.
 */
#define EIECTL_MASK_PRUNED_DENSITY 0.5

/*
 * Statistics of a rows x cols mask: spreads (std / mean, population std) of
 * the rows' and the columns' kept counts, and the multiply-adds per example
 * under input-nonzero probabilities p over those of a uniform mask of the
 * same density (sum_j n_j p_j / (mean_j n_j x sum_j p_j), n_j column j's
 * kept count).
 */
typedef struct eiectl_mask_stats {
    double row_cv, col_cv, excess;
} eiectl_mask_stats_t;

/*
 * The statistics of mask (rows x cols, row-major, nonzero = kept) under p
 * (cols); rn (rows) and cn (cols) are the caller's scratch. A spread of an
 * all-zero mask, or an excess with no kept weight or no nonzero input, is 0.
 */
eiectl_mask_stats_t eiectl_mask_stats(const uint8_t *mask, uint32_t rows, uint32_t cols,
                                      const double *p, double *rn, double *cn);

/* The mean of v[0 .. n), n > 0, and in *std_out its population standard deviation. */
double eiectl_mean_std(const double *v, size_t n, double *std_out);

/* The layer's own mask (mask_out[k] = w[k] != 0) of n weights; returns the share kept. */
double eiectl_mask_kept(const float *w, size_t n, uint8_t *mask_out);

/*
 * The mask of n weights pruned by magnitude to density d: kept are those
 * with |w| above the ascending magnitudes' entry at (1 - d) x n, sorted_abs
 * holding |w| in ascending order; d in (0, 1].
 */
void eiectl_mask_magnitude(const float *w, const float *sorted_abs, size_t n, double d,
                           uint8_t *mask_out);

#endif
