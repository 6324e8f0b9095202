/*
 * bench.c - the calibration suite: the nine EIE benchmark layers (EIE
 * Table III: size, weight density, activation density; Table IV: the
 * paper's times) rebuilt as synthetic layers and simulated.
 *
 * A synthetic layer has a uniform random pruning mask at the layer's weight
 * density (the entry stream is drawn gap by gap, so a 25088 x 4096 layer
 * never exists densely), 4-bit codes uniform over 1..15 with a codebook
 * spread over [-1, 1], small random biases, and an input with exactly
 * round(act_density * in) nonzeros in (0, 1] (post-ReLU activations).
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

/* The synthetic model of layer: one FC layer, stream built in column-major order. */
static eie_status_t bench_model(const eie_sim_bench_layer_t *layer, uint64_t *seed,
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
    if (fc->codebook == NULL || fc->bias == NULL)
        goto nomem;
    fc->codebook[0] = 0.0f;
    for (int c = 1; c < 16; c++)
        fc->codebook[c] = -1.0f + 2.0f * (float)(c - 1) / 14.0f;
    for (uint32_t r = 0; r < fc->rows; r++)
        fc->bias[r] = (float)(unit_open(seed) * 0.2 - 0.1);
    /* Gaps between kept weights are geometric at the weight density. */
    uint64_t total = (uint64_t)fc->rows * fc->cols, cap = 0;
    double lq = layer->weight_density < 1.0 ? log1p(-layer->weight_density) : 0.0;
    uint64_t pos = 0; /* next position that may hold a weight */
    for (;;) {
        uint64_t gap = lq < 0.0 ? (uint64_t)floor(log(unit_open(seed)) / lq) : 0;
        if (gap >= total - pos)
            break;
        pos += gap;
        for (; gap > EIE_RUN_MAX; gap -= EIE_RUN_MAX + 1)
            if (push_entry(fc, &cap, 0, EIE_RUN_MAX) != 0)
                goto nomem;
        if (push_entry(fc, &cap, (uint8_t)(1 + splitmix(seed) % 15), (uint8_t)gap) != 0)
            goto nomem;
        fc->nnz++;
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

eie_status_t eie_sim_bench_run(const eie_sim_bench_layer_t *layer, const eie_sim_params_t *params,
                               uint64_t seed, eie_sim_report_t *report_out, eie_error_t *err)
{
    eie_model_t *m = NULL;
    eie_sim_t *sim = NULL;
    float *x = NULL, *y = NULL;
    uint32_t *idx = NULL;
    eie_status_t st = bench_model(layer, &seed, &m, err);
    if (st != EIE_STATUS_OK)
        return st;
    x = calloc(layer->in, sizeof *x);
    y = malloc(layer->out * sizeof *y);
    idx = malloc(layer->in * sizeof *idx);
    if (x == NULL || y == NULL || idx == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        goto done;
    }
    /* Exactly round(density * in) nonzero inputs: a partial Fisher-Yates shuffle. */
    uint32_t nz = (uint32_t)floor(layer->act_density * layer->in + 0.5);
    for (uint32_t i = 0; i < layer->in; i++)
        idx[i] = i;
    for (uint32_t i = 0; i < nz; i++) {
        uint32_t j = i + (uint32_t)(splitmix(&seed) % (layer->in - i));
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        x[idx[i]] = (float)(0.05 + 0.95 * unit_open(&seed));
    }
    if ((st = eie_sim_init(m, params, &sim, err)) != EIE_STATUS_OK)
        goto done;
    st = eie_sim_run(sim, x, y, report_out, err);
done:
    eie_sim_free(sim);
    eie_model_free(m);
    free(x);
    free(y);
    free(idx);
    return st;
}
