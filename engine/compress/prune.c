/*
 * Magnitude pruning (Han et al., NIPS 2015 sec. 3): connections with small
 * |w| are removed and a mask keeps them removed during retraining.
 */
#include "eie/compress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static eie_status_t apply_threshold(eie_mlp_layer_t *l, float threshold, size_t keep_at_most,
                                    eie_error_t *err)
{
    size_t n = (size_t)l->rows * l->cols;
    if (l->mask == NULL && (l->mask = malloc(n ? n : 1)) == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a mask");
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        /* Ties at the threshold: keep no more than asked for. */
        int keep = fabsf(l->w[i]) > threshold && l->w[i] != 0.0f && kept < keep_at_most;
        kept += keep;
        l->mask[i] = (uint8_t)keep;
        if (!keep)
            l->w[i] = 0.0f;
    }
    return EIE_STATUS_OK;
}

eie_status_t eie_prune_sparsity(eie_mlp_layer_t *l, double sparsity, eie_error_t *err)
{
    if (!eie_mlp_layer_has_weights(l))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "pruning a layer without weights");
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "sparsity %g outside [0, 1)",
                             sparsity);
    size_t n = (size_t)l->rows * l->cols;
    size_t n_zero = (size_t)llround(sparsity * (double)n);
    if (n_zero == 0)
        return apply_threshold(l, -1.0f, n, err);
    float *mag = malloc(n * sizeof *mag);
    if (mag == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for pruning");
    for (size_t i = 0; i < n; i++)
        mag[i] = fabsf(l->w[i]);
    qsort(mag, n, sizeof *mag, cmp_float);
    float threshold = mag[n_zero - 1];
    free(mag);
    return apply_threshold(l, threshold, n - n_zero, err);
}

eie_status_t eie_prune_std(eie_mlp_layer_t *l, double q, eie_error_t *err)
{
    if (!eie_mlp_layer_has_weights(l))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "pruning a layer without weights");
    if (!(q >= 0.0 && q < 100.0))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "quality parameter %g outside [0, 100)",
                             q);
    size_t n = (size_t)l->rows * l->cols;
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += l->w[i];
        sq += (double)l->w[i] * l->w[i];
    }
    double mean = sum / (double)n;
    double std = sqrt(fmax(sq / (double)n - mean * mean, 0.0));
    return apply_threshold(l, (float)(q * std), n, err);
}

double eie_layer_density(const eie_mlp_layer_t *l)
{
    size_t n = (size_t)l->rows * l->cols, nnz = 0;
    for (size_t i = 0; i < n; i++)
        nnz += l->w[i] != 0.0f;
    return n ? (double)nnz / (double)n : 0.0;
}
