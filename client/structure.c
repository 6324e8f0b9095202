/*
 * eiectl simulate --structure: measures, on trained networks and their ReLU
 * activations over a dataset, the three numbers of the structured benchmark
 * workload (eie_sim_bench_structure_t), and checks the model they define
 * against the real layer's mask.
 *
 * Per FC layer whose input is a ReLU output and that has at least 64 rows
 * and 64 columns, a kept-weight mask: an already pruned layer's own (at
 * most EIECTL_MASK_PRUNED_DENSITY of its weights nonzero, e.g. the output
 * of `eiectl compress --data`, pruned and retrained), at its own density; a
 * dense layer pruned by magnitude to 10% (the middle of Table III's 4% ..
 * 25%). Three statistics of that mask are taken (mask.h): the spread
 * (std / mean) of its rows' densities, of its columns' densities, and its
 * multiply-adds per example under the inputs' measured nonzero rates over
 * those of a uniform mask (the excess that Table III's FLOP column shows).
 * Row sigma, column sigma and rho are the values for which the workload's
 * own synthetic layer of that shape, density and input density has the
 * same three statistics (bisection, common seeds). What matters for pruning
 * is the tail of the weights, which the spread of log row and column RMS
 * (printed beside) understates on a layer still close to its random
 * initialisation.
 *
 * A dense layer pruned to 4% and 25% against the model at those densities
 * checks that the fit carries over the range (a pruned layer has one mask
 * only). The structure printed last is the mean over every layer measured,
 * all networks given.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"
#include "eie/sim.h"
#include "eie/train.h"
#include "eiectl.h"
#include "mask.h"

#define FORWARD_BATCH 256
#define FIT_SEEDS     4
#define FIT_STEPS     16
#define FIT_DENSITY   0.10 /* the middle of Table III's weight densities (4% .. 25%) */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The fraction of examples in ds where each input of layer li is nonzero. */
static int input_rates(const eie_mlp_t *net, size_t li, const eie_dataset_t *ds, double *p_out)
{
    eie_mlp_t head = *net;
    head.n_layers = li;
    uint32_t n_in = net->layers[li].cols, dim = ds->rows * ds->cols;
    float *y = malloc((size_t)FORWARD_BATCH * n_in * sizeof *y);
    if (y == NULL)
        return -1;
    memset(p_out, 0, n_in * sizeof *p_out);
    eie_error_t err;
    for (uint32_t s = 0; s < ds->count; s += FORWARD_BATCH) {
        size_t b = ds->count - s < FORWARD_BATCH ? ds->count - s : FORWARD_BATCH;
        if (eie_mlp_forward(&head, ds->images + (size_t)s * dim, b, y, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl simulate: %s\n", err.msg);
            free(y);
            return -1;
        }
        for (size_t k = 0; k < b * n_in; k++)
            p_out[k % n_in] += y[k] > 0.0f;
    }
    for (uint32_t j = 0; j < n_in; j++)
        p_out[j] /= ds->count;
    free(y);
    return 0;
}

/* Scratch of one layer's measurement. */
typedef struct {
    uint32_t rows, cols;
    double pm;  /* mean input density */
    int pruned; /* the layer is already pruned: its own mask is measured */
    uint8_t *w; /* rows x cols mask */
    double *q, *rn, *cn;
} work_t;

/* The structured workload's layer of this shape at density d and the mean
 * input density, from structure st: its statistics, the mean over
 * FIT_SEEDS seeds (the same seeds at every call, so a bisection sees a
 * smooth function); multiply-adds counted with the one input it draws. */
static int model_stats(work_t *wk, double d, const eie_sim_bench_structure_t *st,
                       eiectl_mask_stats_t *out)
{
    eie_sim_bench_layer_t shape = {"fit", wk->cols, wk->rows, d, wk->pm, 0, 0};
    *out = (eiectl_mask_stats_t){0, 0, 0};
    for (uint64_t seed = 1; seed <= FIT_SEEDS; seed++) {
        eie_model_t *m;
        float *x;
        eie_error_t err;
        if (eie_sim_bench_build(&shape, EIE_SIM_BENCH_STRUCTURED, st, seed, &m, &x, &err) !=
            EIE_STATUS_OK) {
            fprintf(stderr, "eiectl simulate: %s\n", err.msg);
            return -1;
        }
        eie_status_t rc = eie_model_fc_codes(m, 0, wk->w);
        for (uint32_t j = 0; j < wk->cols; j++)
            wk->q[j] = x[j] != 0.0f;
        eie_model_free(m);
        free(x);
        if (rc != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl simulate: cannot decode the synthetic layer\n");
            return -1;
        }
        eiectl_mask_stats_t s = eiectl_mask_stats(wk->w, wk->rows, wk->cols, wk->q, wk->rn, wk->cn);
        out->row_cv += s.row_cv / FIT_SEEDS;
        out->col_cv += s.col_cv / FIT_SEEDS;
        out->excess += s.excess / FIT_SEEDS;
    }
    return 0;
}

/* Bisects *param over [lo, hi] until the model's statistic (0 row cv, 1
 * column cv, 2 excess) at density d equals want; it rises with *param. */
static int fit_one(work_t *wk, double d, eie_sim_bench_structure_t *st, double *param, double lo,
                   double hi, int which, double want)
{
    for (int it = 0; it < FIT_STEPS; it++) {
        *param = 0.5 * (lo + hi);
        eiectl_mask_stats_t s;
        if (model_stats(wk, d, st, &s) != 0)
            return -1;
        double got = which == 0 ? s.row_cv : which == 1 ? s.col_cv : s.excess;
        *(got < want ? &lo : &hi) = *param;
    }
    *param = 0.5 * (lo + hi);
    return 0;
}

/*
 * The layer's kept-weight mask at density d into wk->w, and its statistics:
 * an already pruned layer's own mask (d is its density), a dense layer's
 * pruned by magnitude to d (sorted_abs: its |w| ascending).
 */
static eiectl_mask_stats_t real_stats(work_t *wk, const float *w, const float *sorted_abs, double d,
                                      const double *p)
{
    size_t n = (size_t)wk->rows * wk->cols;
    if (wk->pruned)
        eiectl_mask_kept(w, n, wk->w);
    else
        eiectl_mask_magnitude(w, sorted_abs, n, d, wk->w);
    return eiectl_mask_stats(wk->w, wk->rows, wk->cols, p, wk->rn, wk->cn);
}

/* Measures layer li and prints its rows; its structure into *st_out. */
static int measure_layer(const eie_mlp_t *net, size_t li, const eie_dataset_t *ds,
                         eie_sim_bench_structure_t *st_out)
{
    const eie_mlp_layer_t *l = &net->layers[li];
    uint32_t rows = l->rows, cols = l->cols;
    size_t n = (size_t)rows * cols;
    work_t wk = {rows,
                 cols,
                 0.0,
                 0,
                 malloc(n),
                 malloc(cols * sizeof(double)),
                 malloc(rows * sizeof(double)),
                 malloc(cols * sizeof(double))};
    double *lr = malloc(rows * sizeof *lr), *lc = malloc(cols * sizeof *lc);
    double *p = malloc(cols * sizeof *p);
    float *sorted = malloc(n * sizeof *sorted);
    int rc = -1;
    if (lr == NULL || lc == NULL || p == NULL || sorted == NULL || wk.w == NULL || wk.q == NULL ||
        wk.rn == NULL || wk.cn == NULL)
        goto done;
    /* Spreads of log row and column RMS, for comparison (over the rows and
     * columns that keep a weight: a pruned layer may have empty ones). */
    memset(lc, 0, cols * sizeof *lc);
    size_t nr = 0, nc = 0;
    for (uint32_t i = 0; i < rows; i++) {
        double s = 0.0;
        for (uint32_t j = 0; j < cols; j++) {
            double v = l->w[(size_t)i * cols + j];
            s += v * v;
            lc[j] += v * v;
        }
        if (s > 0.0)
            lr[nr++] = 0.5 * log(s / cols);
    }
    for (uint32_t j = 0; j < cols; j++)
        if (lc[j] > 0.0)
            lc[nc++] = 0.5 * log(lc[j] / rows);
    double sr = 0.0, sc = 0.0, sp;
    if (nr > 0)
        eiectl_mean_std(lr, nr, &sr);
    if (nc > 0)
        eiectl_mean_std(lc, nc, &sc);
    if (input_rates(net, li, ds, p) != 0)
        goto done;
    wk.pm = eiectl_mean_std(p, cols, &sp);
    /* One mask to fit: the layer's own if it is pruned, else pruned to FIT_DENSITY. */
    double kept = eiectl_mask_kept(l->w, n, wk.w), fit_d = FIT_DENSITY;
    if (kept <= EIECTL_MASK_PRUNED_DENSITY) {
        wk.pruned = 1;
        fit_d = kept;
    } else {
        for (size_t k = 0; k < n; k++)
            sorted[k] = fabsf(l->w[k]);
        qsort(sorted, n, sizeof *sorted, cmp_float);
    }
    eiectl_mask_stats_t want = real_stats(&wk, l->w, sorted, fit_d, p);
    /* Fit: row sigma to the row spread, column sigma to the column spread
     * (each moves the other a little: two rounds), then rho to the excess. */
    eie_sim_bench_structure_t st = {0.0, 0.0, 0.0};
    for (int round = 0; round < 2; round++)
        if (fit_one(&wk, fit_d, &st, &st.row_sigma, 0.0, 3.0, 0, want.row_cv) != 0 ||
            fit_one(&wk, fit_d, &st, &st.col_sigma, 0.0, 3.0, 1, want.col_cv) != 0)
            goto done;
    if (fit_one(&wk, fit_d, &st, &st.act_rho, -0.99, 0.99, 2, want.excess) != 0)
        goto done;
    printf("layer %zu (%u x %u, %s), input density %.3f: row sigma %.3f, column sigma %.3f, "
           "rho %.3f (log RMS spreads: rows %.3f, columns %.3f)\n",
           li, cols, rows, wk.pruned ? "pruned, its own mask" : "dense, pruned by magnitude", wk.pm,
           st.row_sigma, st.col_sigma, st.act_rho, sr, sc);
    printf("  %-8s %9s %9s %9s %9s %9s %9s\n", "density", "row cv", "model", "col cv", "model",
           "excess", "model");
    static const double dens[] = {0.04, FIT_DENSITY, 0.25};
    size_t n_dens = sizeof dens / sizeof dens[0];
    for (size_t d = 0; d < (wk.pruned ? 1 : n_dens); d++) {
        double dd = wk.pruned ? fit_d : dens[d];
        eiectl_mask_stats_t r = real_stats(&wk, l->w, sorted, dd, p), m;
        if (model_stats(&wk, dd, &st, &m) != 0)
            goto done;
        printf("  %-8.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", dd, r.row_cv, m.row_cv, r.col_cv,
               m.col_cv, r.excess, m.excess);
    }
    *st_out = st;
    rc = 0;
done:
    free(lr);
    free(lc);
    free(p);
    free(sorted);
    free(wk.w);
    free(wk.q);
    free(wk.rn);
    free(wk.cn);
    return rc;
}

/* Measures every qualifying layer of one network, adding to *sum and *used. */
static int measure_network(const char *model, const char *data, uint32_t limit,
                           eie_sim_bench_structure_t *sum, unsigned *used)
{
    eie_mlp_t *net;
    if (eiectl_load_network("simulate", model, &net) != 0)
        return -1;
    eie_error_t err;
    eie_dataset_t *ds = NULL;
    int rc = -1;
    if (eie_dataset_load_dir(data, "t10k", 10, limit, &ds, &err) != EIE_STATUS_OK ||
        eie_dataset_check(ds, net, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl simulate: %s\n", err.msg);
        goto done;
    }
    printf("%s on %s/t10k (%u examples)\n", model, data, ds->count);
    for (size_t li = 1; li < net->n_layers; li++) {
        const eie_mlp_layer_t *l = &net->layers[li], *prev = &net->layers[li - 1];
        if (l->kind != EIE_LAYER_FC || prev->kind != EIE_LAYER_ACTIVATION ||
            prev->act != EIE_ACT_RELU || l->rows < 64 || l->cols < 64)
            continue;
        eie_sim_bench_structure_t s;
        if (measure_layer(net, li, ds, &s) != 0)
            goto done;
        sum->row_sigma += s.row_sigma;
        sum->col_sigma += s.col_sigma;
        sum->act_rho += s.act_rho;
        (*used)++;
    }
    rc = 0;
done:
    eie_dataset_free(ds);
    eie_mlp_free(net);
    return rc;
}

int eiectl_structure(const char *models, const char *data, uint32_t limit)
{
    eie_sim_bench_structure_t sum = {0, 0, 0};
    unsigned used = 0;
    char *list = strdup(models), *save = NULL;
    if (list == NULL)
        return 1;
    for (char *m = strtok_r(list, ",", &save); m != NULL; m = strtok_r(NULL, ",", &save))
        if (measure_network(m, data, limit, &sum, &used) != 0) {
            free(list);
            return 1;
        }
    free(list);
    if (used == 0) {
        fprintf(stderr,
                "eiectl simulate: no FC layer with a ReLU input and at least 64 rows "
                "and columns in %s\n",
                models);
        return 1;
    }
    printf("structure (mean of %u layers): row sigma %.3f, column sigma %.3f, rho %.3f\n", used,
           sum.row_sigma / used, sum.col_sigma / used, sum.act_rho / used);
    return 0;
}
