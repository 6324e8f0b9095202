/*
 * Trained quantization (Deep Compression sec. 3): 1-D k-means over a layer's
 * surviving weights; each weight keeps only the index of its centroid.
 * Linear initialisation over [min, max] keeps the rare large weights, which
 * matter most, represented (sec. 3.2, fig. 4).
 */
#include "eie/compress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/rng.h"

const char *eie_kmeans_init_name(eie_kmeans_init_t init)
{
    switch (init) {
    case EIE_KMEANS_LINEAR:
        return "linear";
    case EIE_KMEANS_RANDOM:
        return "random";
    case EIE_KMEANS_DENSITY:
        return "density";
    }
    return "unknown";
}

int eie_kmeans_init_parse(const char *s)
{
    for (int i = 0; i <= EIE_KMEANS_DENSITY; i++)
        if (strcmp(s, eie_kmeans_init_name((eie_kmeans_init_t)i)) == 0)
            return i;
    return -1;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Index of the centroid nearest v in sorted c[0..k). */
static unsigned nearest(const float *c, unsigned k, float v)
{
    unsigned lo = 0, hi = k;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (v >= c[mid])
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 < k && fabsf(c[lo + 1] - v) < fabsf(v - c[lo]))
        return lo + 1;
    return lo;
}

eie_status_t eie_kmeans_1d(const float *x, size_t n, unsigned k, eie_kmeans_init_t init,
                           uint64_t seed, unsigned max_iter, float *centroids_out,
                           uint8_t *assign_out, unsigned *iters_out, eie_error_t *err)
{
    if (k == 0 || k > 256)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "k = %u outside 1..256", k);
    if (n == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "k-means of no values");
    float *sorted = malloc(n * sizeof *sorted);
    double *sum = malloc(k * sizeof *sum);
    size_t *cnt = malloc(k * sizeof *cnt);
    if (sorted == NULL || sum == NULL || cnt == NULL) {
        free(sorted);
        free(sum);
        free(cnt);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for k-means of %zu", n);
    }
    memcpy(sorted, x, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_float);
    float lo = sorted[0], hi = sorted[n - 1];
    float *c = centroids_out;
    eie_rng_t rng;
    eie_rng_seed(&rng, seed);
    for (unsigned j = 0; j < k; j++) {
        switch (init) {
        case EIE_KMEANS_RANDOM:
            c[j] = sorted[eie_rng_below(&rng, n)];
            break;
        case EIE_KMEANS_DENSITY:
            /* Evenly spaced over the CDF: dense regions get more centroids. */
            c[j] = sorted[(size_t)(((double)j + 0.5) / k * (double)n)];
            break;
        default:
            c[j] = k == 1 ? 0.5f * (lo + hi) : lo + (hi - lo) * (float)j / (float)(k - 1);
            break;
        }
    }
    qsort(c, k, sizeof *c, cmp_float);
    unsigned it = 0;
    for (; it < max_iter; it++) {
        memset(sum, 0, k * sizeof *sum);
        memset(cnt, 0, k * sizeof *cnt);
        /* sorted is ascending, so assignments are monotone: one pass, no search. */
        unsigned j = 0;
        for (size_t i = 0; i < n; i++) {
            /* <= steps over equal centroids instead of stopping at them. */
            while (j + 1 < k && fabsf(c[j + 1] - sorted[i]) <= fabsf(sorted[i] - c[j]))
                j++;
            sum[j] += sorted[i];
            cnt[j]++;
        }
        /* New means of the non-empty clusters, packed to the front. */
        int moved = 0;
        unsigned m = 0;
        for (unsigned q = 0; q < k; q++) {
            if (cnt[q] == 0) {
                moved = 1;
                continue;
            }
            float nc = (float)(sum[q] / (double)cnt[q]);
            moved |= nc != c[q];
            c[m++] = nc;
        }
        /*
         * Each empty cluster moves to the value farthest from the centroids
         * placed so far, where it reduces the error most; one at a time, so
         * two of them never land on the same value.
         */
        while (m < k) {
            qsort(c, m, sizeof *c, cmp_float);
            float worst = -1.0f, nc = c[0];
            for (size_t i = 0; i < n; i += 1 + n / 4096) {
                float d = fabsf(sorted[i] - c[nearest(c, m, sorted[i])]);
                if (d > worst) {
                    worst = d;
                    nc = sorted[i];
                }
            }
            c[m++] = nc;
        }
        qsort(c, k, sizeof *c, cmp_float);
        if (!moved)
            break;
    }
    if (assign_out)
        for (size_t i = 0; i < n; i++)
            assign_out[i] = (uint8_t)nearest(c, k, x[i]);
    if (iters_out)
        *iters_out = it;
    free(sorted);
    free(sum);
    free(cnt);
    return EIE_STATUS_OK;
}

eie_status_t eie_quantize_layer(eie_mlp_layer_t *l, unsigned bits, eie_kmeans_init_t init,
                                uint64_t seed, eie_error_t *err)
{
    if (!eie_mlp_layer_has_weights(l))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "quantizing a layer without weights");
    if (bits < 1 || bits > 8)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%u bits per weight outside 1..8 (code 0 is reserved for zero)", bits);
    size_t n = (size_t)l->rows * l->cols, nnz = 0;
    unsigned k = (1u << bits) - 1;
    float *vals = malloc((n ? n : 1) * sizeof *vals);
    uint8_t *assign = malloc(n ? n : 1);
    uint8_t *codes = calloc(n ? n : 1, 1);
    float *book = calloc((size_t)1 << bits, sizeof *book);
    eie_status_t st = EIE_STATUS_OK;
    if (vals == NULL || assign == NULL || codes == NULL || book == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory quantizing a layer");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (l->w[i] != 0.0f)
            vals[nnz++] = l->w[i];
    if (nnz > 0) {
        unsigned kk = nnz < k ? (unsigned)nnz : k;
        if ((st = eie_kmeans_1d(vals, nnz, kk, init, seed, 100, book + 1, assign, NULL, err)))
            goto done;
        for (size_t i = 0, j = 0; i < n; i++)
            if (l->w[i] != 0.0f)
                codes[i] = (uint8_t)(assign[j++] + 1);
    }
    for (size_t i = 0; i < n; i++)
        l->w[i] = book[codes[i]];
    free(l->codes);
    free(l->codebook);
    l->codes = codes;
    l->codebook = book;
    l->code_bits = bits;
    codes = NULL;
    book = NULL;
done:
    free(vals);
    free(assign);
    free(codes);
    free(book);
    return st;
}
