/*
 * bench.c - the calibration suite: the nine EIE benchmark layers (EIE
 * Table III: size, weight density, activation density; Table IV: the
 * paper's times) rebuilt as synthetic layers and simulated.
 *
 * A synthetic layer has a random pruning mask (the entry stream is drawn gap
 * by gap, so a 25088 x 4096 layer never exists densely), 4-bit codes uniform
 * over 1..15 with a codebook spread over [-1, 1], small random biases, and
 * an input with exactly round(act_density * in) nonzeros in (0, 1]
 * (post-ReLU activations). Two workloads:
 *  - EIE_SIM_BENCH_TABLE3: the mask is uniform at the layer's weight
 *    density, independent of the input. Weight x activation density then
 *    gives the multiply-adds, fewer than the paper's real layers have where
 *    nonzero activations meet denser weight columns (Table III's FLOP column).
 *  - EIE_SIM_BENCH_MATCHED: the columns of nonzero inputs get the density
 *    whose expected entries (fillers and bias included, 64 PEs) equal the
 *    paper's own theoretical time (Table IV: entries / 64 PEs at 800 MHz);
 *    the other columns keep the layer's overall weight density. The work is
 *    then the paper's, and the comparison measures the timing model alone.
 *  - EIE_SIM_BENCH_STRUCTURED: a trained layer's structure with no number
 *    from the paper beyond Table III's sizes and densities: row and column
 *    scales log-normal, one magnitude threshold to the layer's weight
 *    density, the nonzero inputs placed with a latent correlation to their
 *    column's scale (eie_sim_bench_structure_t). Its three numbers are
 *    measured on eie's own trained networks, the same for every layer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eie/sim.h"
#include "format/format.h"

static const eie_sim_bench_layer_t bench_layers[] = {
    {"Alex-6", 9216, 4096, 0.09, 0.351, 28.1, 30.3},
    {"Alex-7", 4096, 4096, 0.09, 0.353, 11.7, 12.2},
    {"Alex-8", 4096, 1000, 0.25, 0.375, 8.9, 9.9},
    {"VGG-6", 25088, 4096, 0.04, 0.183, 28.1, 34.4},
    {"VGG-7", 4096, 4096, 0.04, 0.375, 7.9, 8.7},
    {"VGG-8", 4096, 1000, 0.23, 0.411, 7.3, 8.4},
    {"NT-We", 4096, 600, 0.10, 1.0, 5.2, 8.0},
    {"NT-Wd", 600, 8791, 0.11, 1.0, 13.0, 13.9},
    {"NT-LSTM", 1201, 2400, 0.10, 1.0, 6.5, 7.5},
};

const eie_sim_bench_layer_t *eie_sim_bench_layers(size_t *n_out)
{
    *n_out = sizeof bench_layers / sizeof bench_layers[0];
    return bench_layers;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit_open(uint64_t *s) /* (0, 1] */
{
    return ((double)(splitmix(s) >> 11) + 1.0) / 9007199254740992.0;
}

/* Appends (code, run) to the entry stream, growing it. */
static int push_entry(eie_fc_t *fc, uint64_t *cap, uint8_t code, uint8_t run)
{
    if (fc->entries == *cap) {
        uint64_t nc = *cap ? *cap * 2 : 4096;
        uint8_t *c = realloc(fc->codes, nc), *r = realloc(fc->runs, nc);
        if (c != NULL)
            fc->codes = c;
        if (r != NULL)
            fc->runs = r;
        if (c == NULL || r == NULL)
            return -1;
        *cap = nc;
    }
    fc->codes[fc->entries] = code;
    fc->runs[fc->entries] = run;
    fc->entries++;
    return 0;
}

/* Appends a weight at flat (column-major) position pos, with the fillers
 * its zero-run needs; *last is the previous weight's position (-1 at first). */
static int push_weight(eie_fc_t *fc, uint64_t *cap, uint64_t *seed, uint64_t pos, int64_t *last)
{
    uint64_t gap = (uint64_t)((int64_t)pos - *last - 1);
    for (; gap > EIE_RUN_MAX; gap -= EIE_RUN_MAX + 1)
        if (push_entry(fc, cap, 0, EIE_RUN_MAX) != 0)
            return -1;
    if (push_entry(fc, cap, (uint8_t)(1 + splitmix(seed) % 15), (uint8_t)gap) != 0)
        return -1;
    fc->nnz++;
    *last = (int64_t)pos;
    return 0;
}

/* A synthetic FC layer of layer's shape with no weights yet: codebook
 * spread over [-1, 1] and small random biases drawn from seed. */
static eie_status_t bench_empty(const eie_sim_bench_layer_t *layer, uint64_t *seed,
                                eie_model_t **model_out, eie_error_t *err)
{
    eie_model_t *m = calloc(1, sizeof *m);
    eie_layer_t *ly = calloc(1, sizeof *ly);
    if (m == NULL || ly == NULL) {
        free(m);
        free(ly);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    }
    m->layers = ly;
    m->n_layers = m->cap_layers = 1;
    m->input_dim = layer->in;
    m->output_dim = layer->out;
    ly->kind = EIE_LAYER_FC;
    eie_fc_t *fc = &ly->fc;
    fc->rows = layer->out;
    fc->cols = layer->in;
    fc->code_bits = 4;
    fc->codebook = malloc(16 * sizeof(float));
    fc->bias = malloc(fc->rows * sizeof(float));
    if (fc->codebook == NULL || fc->bias == NULL) {
        eie_model_free(m);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    }
    fc->codebook[0] = 0.0f;
    for (int c = 1; c < 16; c++)
        fc->codebook[c] = -1.0f + 2.0f * (float)(c - 1) / 14.0f;
    for (uint32_t r = 0; r < fc->rows; r++)
        fc->bias[r] = (float)(unit_open(seed) * 0.2 - 0.1);
    *model_out = m;
    return EIE_STATUS_OK;
}

/* The synthetic model of layer: one FC layer, stream built in column-major
 * order; column j kept at density col_density[j] (NULL: the layer's). */
static eie_status_t bench_model(const eie_sim_bench_layer_t *layer, const double *col_density,
                                uint64_t *seed, eie_model_t **model_out, eie_error_t *err)
{
    eie_model_t *m;
    eie_status_t st = bench_empty(layer, seed, &m, err);
    if (st != EIE_STATUS_OK)
        return st;
    eie_fc_t *fc = &m->layers[0].fc;
    uint64_t cap = 0;
    int64_t last = -1;
    if (col_density != NULL) {
        /* Column by column, gaps geometric at the column's density. */
        for (uint32_t j = 0; j < fc->cols; j++) {
            double d = col_density[j];
            if (d <= 0.0)
                continue;
            double lq = d < 1.0 ? log1p(-d) : 0.0;
            for (uint64_t r = 0;; r++) {
                r += lq < 0.0 ? (uint64_t)floor(log(unit_open(seed)) / lq) : 0;
                if (r >= fc->rows)
                    break;
                if (push_weight(fc, &cap, seed, (uint64_t)j * fc->rows + r, &last) != 0)
                    goto nomem;
            }
        }
        *model_out = m;
        return EIE_STATUS_OK;
    }
    /* Gaps between kept weights are geometric at the weight density. */
    uint64_t total = (uint64_t)fc->rows * fc->cols;
    double lq = layer->weight_density < 1.0 ? log1p(-layer->weight_density) : 0.0;
    uint64_t pos = 0; /* next position that may hold a weight */
    for (;;) {
        uint64_t gap = lq < 0.0 ? (uint64_t)floor(log(unit_open(seed)) / lq) : 0;
        if (gap >= total - pos)
            break;
        pos += gap;
        if (push_weight(fc, &cap, seed, pos, &last) != 0)
            goto nomem;
        if (++pos >= total)
            break;
    }
    *model_out = m;
    return EIE_STATUS_OK;
nomem:
    eie_model_free(m);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory building %s",
                         layer->name);
}

/* The paper's machine, for which its theoretical times count entries. */
#define PAPER_PES 64u
#define PAPER_ACT_REGS 64u
#define PAPER_CLOCK_MHZ 800.0

/*
 * Expected EIE entries (weights and fillers) of one column over all PEs at
 * weight density d, rows interleaved over the paper's 64 PEs and batched by
 * 64 local rows: a weight at local row i whose zero-run (counted from the
 * batch's first row - 1, at most i mod 64 long) is g costs 1 + g / 16.
 */
static double column_entries(uint32_t rows, double d)
{
    double q16 = pow(1.0 - d, 16.0), sum = 0.0;
    uint32_t batched = (rows + PAPER_PES - 1) / PAPER_PES > PAPER_ACT_REGS;
    for (unsigned p = 0; p < PAPER_PES; p++) {
        uint32_t R = rows / PAPER_PES + (p < rows % PAPER_PES);
        for (uint32_t i = 0; i < R; i++) {
            uint32_t span = batched ? i % PAPER_ACT_REGS : i;
            double e = 1.0, qk = 1.0;
            for (uint32_t k = 16; k <= span; k += 16)
                e += (qk *= q16);
            sum += d * e;
        }
    }
    return sum;
}

/* Standard normal deviate (Box-Muller, one of the pair). */
static double normal(uint64_t *s)
{
    return sqrt(-2.0 * log(unit_open(s))) * cos(6.283185307179586 * unit_open(s));
}

/*
 * P(|w| > T) for w ~ N(0, s^2), as a function of x = log(s / T): erfc(e^-x /
 * sqrt 2). Tabulated over [STRUCT_X0, STRUCT_X0 + STRUCT_STEPS / STRUCT_RES]
 * and interpolated; outside it the value is within 1e-9 of 0 or flat enough
 * that the end value stands.
 */
#define STRUCT_X0 (-4.0)
#define STRUCT_RES 256.0
#define STRUCT_STEPS 4096

static double keep_prob(const double *tab, double x)
{
    double u = (x - STRUCT_X0) * STRUCT_RES;
    if (u <= 0.0)
        return tab[0];
    if (u >= STRUCT_STEPS)
        return tab[STRUCT_STEPS];
    size_t k = (size_t)u;
    double f = u - (double)k;
    return tab[k] + f * (tab[k + 1] - tab[k]);
}

#define STRUCT_BINS 256

/* Histogram of v[0..n) over [lo, hi] in STRUCT_BINS bins: counts and centres. */
static void histogram(const double *v, uint32_t n, double lo, double hi, double *count,
                      double *centre)
{
    double w = (hi - lo) / STRUCT_BINS;
    for (int b = 0; b < STRUCT_BINS; b++) {
        count[b] = 0.0;
        centre[b] = lo + (b + 0.5) * w;
    }
    for (uint32_t i = 0; i < n; i++) {
        int b = w > 0.0 ? (int)((v[i] - lo) / w) : 0;
        count[b < 0 ? 0 : b >= STRUCT_BINS ? STRUCT_BINS - 1 : b] += 1.0;
    }
}

static void min_max(const double *v, uint32_t n, double *lo, double *hi)
{
    *lo = *hi = v[0];
    for (uint32_t i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

typedef struct {
    double u;
    uint32_t j;
} scored_t;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const scored_t *)a)->u, y = ((const scored_t *)b)->u;
    return x > y ? -1 : x < y ? 1 : (int)((const scored_t *)a)->j - (int)((const scored_t *)b)->j;
}

/*
 * The structured workload (eie_sim_bench_structure_t): log row and column
 * scales drawn, the nz inputs with the largest latent score made nonzero,
 * one magnitude threshold T found (by bisection on the scales' histograms)
 * so that the expected fraction of |w_ij| > T is the layer's weight density,
 * then each weight kept with probability P(|w_ij| > T), column by column, as
 * drawing w_ij itself and comparing would (the weights' values are not kept:
 * the codes stay uniform, as in the other workloads).
 */
static eie_status_t bench_structured(const eie_sim_bench_layer_t *layer,
                                     const eie_sim_bench_structure_t *st, uint32_t nz,
                                     uint64_t *seed, float *x, eie_model_t **model_out,
                                     eie_error_t *err)
{
    eie_status_t rc = EIE_STATUS_OK;
    double *lr = malloc(layer->out * sizeof *lr), *lc = malloc(layer->in * sizeof *lc);
    scored_t *sc = malloc(layer->in * sizeof *sc);
    double *tab = malloc((STRUCT_STEPS + 1) * sizeof *tab);
    eie_model_t *m = NULL;
    if (lr == NULL || lc == NULL || sc == NULL || tab == NULL) {
        rc = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < layer->out; i++)
        lr[i] = st->row_sigma * normal(seed);
    double rho = st->act_rho, rest = sqrt(1.0 - rho * rho);
    for (uint32_t j = 0; j < layer->in; j++) {
        double z = normal(seed);
        lc[j] = st->col_sigma * z;
        sc[j].u = rho * z + rest * normal(seed);
        sc[j].j = j;
    }
    qsort(sc, layer->in, sizeof *sc, by_score_desc);
    for (uint32_t k = 0; k < nz; k++)
        x[sc[k].j] = (float)(0.05 + 0.95 * unit_open(seed));
    for (int k = 0; k <= STRUCT_STEPS; k++)
        tab[k] = erfc(exp(-(STRUCT_X0 + k / STRUCT_RES)) / sqrt(2.0));
    /* The threshold: log T such that the mean keep probability is the density. */
    double rc_[STRUCT_BINS], rx[STRUCT_BINS], cc[STRUCT_BINS], cx[STRUCT_BINS], lo, hi;
    min_max(lr, layer->out, &lo, &hi);
    histogram(lr, layer->out, lo, hi, rc_, rx);
    min_max(lc, layer->in, &lo, &hi);
    histogram(lc, layer->in, lo, hi, cc, cx);
    double tlo = -12.0, thi = 12.0, cells = (double)layer->out * layer->in;
    for (int it = 0; it < 60; it++) {
        double t = 0.5 * (tlo + thi), d = 0.0;
        for (int a = 0; a < STRUCT_BINS; a++)
            if (rc_[a] > 0.0)
                for (int b = 0; b < STRUCT_BINS; b++)
                    if (cc[b] > 0.0)
                        d += rc_[a] * cc[b] * keep_prob(tab, rx[a] + cx[b] - t);
        *(d / cells > layer->weight_density ? &tlo : &thi) = t;
    }
    double logt = 0.5 * (tlo + thi);
    /* One uniform draw per cell against its keep probability. */
    if ((rc = bench_empty(layer, seed, &m, err)) != EIE_STATUS_OK)
        goto done;
    eie_fc_t *fc = &m->layers[0].fc;
    uint64_t cap = 0;
    int64_t last = -1;
    for (uint32_t j = 0; j < layer->in; j++) {
        double b = lc[j] - logt;
        for (uint32_t i = 0; i < layer->out; i++) {
            double p = keep_prob(tab, lr[i] + b);
            if ((double)(splitmix(seed) >> 11) * (1.0 / 9007199254740992.0) < p &&
                push_weight(fc, &cap, seed, (uint64_t)j * layer->out + i, &last) != 0) {
                rc = eie_error_set(err, EIE_STATUS_NO_MEMORY,
                                   "eie-sim: out of memory building %s", layer->name);
                goto done;
            }
        }
    }
    *model_out = m;
    m = NULL;
done:
    eie_model_free(m);
    free(lr);
    free(lc);
    free(sc);
    free(tab);
    return rc;
}

/*
 * Measured by scripts/measure-structure.sh (`eiectl simulate --structure`)
 * on three dense networks eie trains on Fashion-MNIST (LeNet-300-100 and
 * 784-512-512-512-10, 20 epochs; 784-1024-1024-1024-10, 5 epochs): the
 * mean over their five FC layers with a ReLU input and at least 64 rows
 * and columns, each fitted at 10% density (engine/sim/README.md,
 * Calibration). Not fitted to the paper's times.
 */
eie_sim_bench_structure_t eie_sim_bench_structure_default(void)
{
    return (eie_sim_bench_structure_t){.row_sigma = 0.126, .col_sigma = 0.181, .act_rho = 0.286};
}

eie_status_t eie_sim_bench_build(const eie_sim_bench_layer_t *layer,
                                 eie_sim_bench_workload_t workload,
                                 const eie_sim_bench_structure_t *structure, uint64_t seed,
                                 eie_model_t **model_out, float **x_out, eie_error_t *err)
{
    eie_model_t *m = NULL;
    float *x = NULL;
    uint32_t *idx = NULL;
    double *dens = NULL;
    eie_status_t st;
    if (layer->in == 0 || layer->out == 0 || !(layer->weight_density > 0.0) ||
        layer->weight_density > 1.0 || !(layer->act_density >= 0.0) || layer->act_density > 1.0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: benchmark layer %s: %u x %u at densities %g, %g out of "
                             "range",
                             layer->name, layer->in, layer->out, layer->weight_density,
                             layer->act_density);
    x = calloc(layer->in, sizeof *x);
    idx = malloc(layer->in * sizeof *idx);
    if (workload == EIE_SIM_BENCH_MATCHED)
        dens = malloc(layer->in * sizeof *dens);
    if (x == NULL || idx == NULL || (workload == EIE_SIM_BENCH_MATCHED && dens == NULL)) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        goto done;
    }
    uint32_t nz = (uint32_t)floor(layer->act_density * layer->in + 0.5);
    if (workload == EIE_SIM_BENCH_STRUCTURED) {
        eie_sim_bench_structure_t def = eie_sim_bench_structure_default();
        uint64_t s = seed ^ 0x2545f4914f6cdd1dull; /* a stream of its own */
        st = bench_structured(layer, structure ? structure : &def, nz, &s, x, &m, err);
        goto done;
    }
    /* The table-III workload draws its weights first, as it always has. */
    uint64_t wseed = seed;
    if (workload == EIE_SIM_BENCH_TABLE3 &&
        (st = bench_model(layer, NULL, &seed, &m, err)) != EIE_STATUS_OK)
        goto done;
    /* Exactly round(density * in) nonzero inputs: a partial Fisher-Yates shuffle. */
    for (uint32_t i = 0; i < layer->in; i++)
        idx[i] = i;
    for (uint32_t i = 0; i < nz; i++) {
        uint32_t j = i + (uint32_t)(splitmix(&seed) % (layer->in - i));
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        x[idx[i]] = (float)(0.05 + 0.95 * unit_open(&seed));
    }
    if (workload == EIE_SIM_BENCH_MATCHED) {
        /* Entries the paper's theoretical time stands for, less one bias
         * entry per row, spread over the nonzero columns: bisect for the
         * density that gives them. */
        double want = layer->paper_theoretical_us * PAPER_CLOCK_MHZ * PAPER_PES - layer->out;
        double per_col = nz ? want / nz : 0.0, lo = 0.0, hi = 1.0;
        for (int it = 0; it < 60; it++) {
            double mid = 0.5 * (lo + hi);
            *(column_entries(layer->out, mid) < per_col ? &lo : &hi) = mid;
        }
        double d1 = 0.5 * (lo + hi);
        double d0 = nz < layer->in ? (layer->weight_density * layer->in - d1 * nz) /
                                         (double)(layer->in - nz)
                                   : 0.0;
        d0 = d0 < 0.0 ? 0.0 : d0 > 1.0 ? 1.0 : d0;
        for (uint32_t i = 0; i < layer->in; i++)
            dens[i] = x[i] != 0.0f ? d1 : d0;
        wseed ^= 0x5851f42d4c957f2dull; /* a stream of its own, apart from the input's */
        if ((st = bench_model(layer, dens, &wseed, &m, err)) != EIE_STATUS_OK)
            goto done;
    }
    st = EIE_STATUS_OK;
done:
    if (st == EIE_STATUS_OK) {
        *model_out = m;
        *x_out = x;
    } else {
        eie_model_free(m);
        free(x);
    }
    free(idx);
    free(dens);
    return st;
}

eie_status_t eie_sim_bench_run(const eie_sim_bench_layer_t *layer, const eie_sim_params_t *params,
                               eie_sim_bench_workload_t workload, uint64_t seed,
                               eie_sim_report_t *report_out, eie_error_t *err)
{
    eie_model_t *m = NULL;
    eie_sim_t *sim = NULL;
    float *x = NULL, *y = malloc(layer->out * sizeof *y);
    eie_status_t st;
    if (y == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        goto done;
    }
    if ((st = eie_sim_bench_build(layer, workload, NULL, seed, &m, &x, err)) != EIE_STATUS_OK)
        goto done;
    if ((st = eie_sim_init(m, params, &sim, err)) != EIE_STATUS_OK)
        goto done;
    st = eie_sim_run(sim, x, y, report_out, err);
done:
    eie_sim_free(sim);
    eie_model_free(m);
    free(x);
    free(y);
    return st;
}
