/* Kept-weight masks of a layer and the statistics `--structure` fits (mask.h). */
#include "mask.h"

#include <math.h>
#include <string.h>

double eiectl_mean_std(const double *v, size_t n, double *std_out)
{
    double m = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++)
        m += v[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    *std_out = sqrt(s / (double)n);
    return m;
}

eiectl_mask_stats_t eiectl_mask_stats(const uint8_t *mask, uint32_t rows, uint32_t cols,
                                      const double *p, double *rn, double *cn)
{
    double macs = 0.0, kept = 0.0, psum = 0.0, sd;
    memset(rn, 0, rows * sizeof *rn);
    for (uint32_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < cols; j++)
            rn[i] += mask[(size_t)i * cols + j] != 0;
    for (uint32_t j = 0; j < cols; j++) {
        cn[j] = 0.0;
        for (uint32_t i = 0; i < rows; i++)
            cn[j] += mask[(size_t)i * cols + j] != 0;
        macs += cn[j] * p[j];
        kept += cn[j];
        psum += p[j];
    }
    eiectl_mask_stats_t st;
    double m = eiectl_mean_std(rn, rows, &sd);
    st.row_cv = m > 0.0 ? sd / m : 0.0;
    m = eiectl_mean_std(cn, cols, &sd);
    st.col_cv = m > 0.0 ? sd / m : 0.0;
    st.excess = kept > 0.0 && psum > 0.0 ? macs / (kept / cols * psum) : 0.0;
    return st;
}

double eiectl_mask_kept(const float *w, size_t n, uint8_t *mask_out)
{
    size_t kept = 0;
    for (size_t k = 0; k < n; k++) {
        mask_out[k] = w[k] != 0.0f;
        kept += mask_out[k];
    }
    return n > 0 ? (double)kept / (double)n : 0.0;
}

void eiectl_mask_magnitude(const float *w, const float *sorted_abs, size_t n, double d,
                           uint8_t *mask_out)
{
    float thr = sorted_abs[(size_t)((1.0 - d) * (double)n)];
    for (size_t k = 0; k < n; k++)
        mask_out[k] = fabsf(w[k]) > thr;
}
