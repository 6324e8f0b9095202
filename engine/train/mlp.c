/* The dense network: construction, copies, inference. */
#include "eie/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/kernels.h"
#include "train/rng.h"

eie_status_t eie_mlp_init(uint32_t input_dim, eie_mlp_t **mlp_out, eie_error_t *err)
{
    if (input_dim == 0 || input_dim > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "input width %u outside 1..%u", input_dim,
                             EIE_MLP_MAX_DIM);
    eie_mlp_t *mlp = calloc(1, sizeof *mlp);
    if (mlp == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a network");
    mlp->input_dim = input_dim;
    *mlp_out = mlp;
    return EIE_STATUS_OK;
}

static void layer_clear(eie_mlp_layer_t *l)
{
    free(l->w);
    free(l->b);
    free(l->mask);
    free(l->codes);
    free(l->codebook);
}

void eie_mlp_free(eie_mlp_t *mlp)
{
    if (mlp == NULL)
        return;
    for (size_t i = 0; i < mlp->n_layers; i++)
        layer_clear(&mlp->layers[i]);
    free(mlp->layers);
    free(mlp);
}

uint32_t eie_mlp_output_dim(const eie_mlp_t *mlp)
{
    for (size_t i = mlp->n_layers; i > 0; i--)
        if (mlp->layers[i - 1].kind == EIE_LAYER_FC)
            return mlp->layers[i - 1].rows;
    return mlp->input_dim;
}

size_t eie_mlp_fc_count(const eie_mlp_t *mlp)
{
    size_t n = 0;
    for (size_t i = 0; i < mlp->n_layers; i++)
        n += mlp->layers[i].kind == EIE_LAYER_FC;
    return n;
}

size_t eie_mlp_fc_index(const eie_mlp_t *mlp, size_t k)
{
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (mlp->layers[i].kind == EIE_LAYER_FC && k-- == 0)
            return i;
    return SIZE_MAX;
}

static eie_status_t push_layer(eie_mlp_t *mlp, eie_mlp_layer_t **layer_out, eie_error_t *err)
{
    if (mlp->n_layers >= EIE_MLP_MAX_LAYERS)
        return eie_error_set(err, EIE_STATUS_LIMIT, "more than %d layers", EIE_MLP_MAX_LAYERS);
    eie_mlp_layer_t *grown = realloc(mlp->layers, (mlp->n_layers + 1) * sizeof *grown);
    if (grown == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for layer %zu",
                             mlp->n_layers);
    mlp->layers = grown;
    *layer_out = memset(&grown[mlp->n_layers], 0, sizeof *grown);
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_fc(eie_mlp_t *mlp, uint32_t rows, const float *w, const float *b,
                            eie_error_t *err)
{
    uint32_t cols = eie_mlp_output_dim(mlp);
    if (rows == 0 || rows > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: %u outputs outside 1..%u",
                             mlp->n_layers, rows, EIE_MLP_MAX_DIM);
    uint64_t n = (uint64_t)rows * cols;
    if (n > EIE_MLP_MAX_WEIGHTS)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: %u x %u weights over the limit %llu",
                             mlp->n_layers, rows, cols, (unsigned long long)EIE_MLP_MAX_WEIGHTS);
    float *wc = w ? malloc(n * sizeof *wc) : calloc(n, sizeof *wc);
    float *bc = b ? malloc(rows * sizeof *bc) : calloc(rows, sizeof *bc);
    eie_mlp_layer_t *l;
    if (wc == NULL || bc == NULL) {
        free(wc);
        free(bc);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %u x %u weights", rows,
                             cols);
    }
    if (w)
        memcpy(wc, w, n * sizeof *wc);
    if (b)
        memcpy(bc, b, rows * sizeof *bc);
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK) {
        free(wc);
        free(bc);
        return st;
    }
    l->kind = EIE_LAYER_FC;
    l->rows = rows;
    l->cols = cols;
    l->w = wc;
    l->b = bc;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_activation(eie_mlp_t *mlp, eie_act_t act, eie_error_t *err)
{
    if (act < EIE_ACT_IDENTITY || act > EIE_ACT_SOFTMAX)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "unknown activation %d", (int)act);
    eie_mlp_layer_t *l;
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK)
        return st;
    l->kind = EIE_LAYER_ACTIVATION;
    l->act = act;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

static void *dup_bytes(const void *p, size_t n)
{
    if (p == NULL)
        return NULL;
    void *q = malloc(n ? n : 1);
    if (q != NULL)
        memcpy(q, p, n);
    return q;
}

eie_status_t eie_mlp_clone(const eie_mlp_t *src, eie_mlp_t **mlp_out, eie_error_t *err)
{
    eie_mlp_t *mlp;
    eie_status_t st = eie_mlp_init(src->input_dim, &mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    mlp->layers = calloc(src->n_layers ? src->n_layers : 1, sizeof *mlp->layers);
    if (mlp->layers == NULL)
        goto error;
    for (size_t i = 0; i < src->n_layers; i++) {
        const eie_mlp_layer_t *s = &src->layers[i];
        eie_mlp_layer_t *d = &mlp->layers[i];
        *d = *s;
        d->w = d->b = d->codebook = NULL;
        d->mask = d->codes = NULL;
        mlp->n_layers++;
        if (s->kind != EIE_LAYER_FC)
            continue;
        size_t n = (size_t)s->rows * s->cols;
        d->w = dup_bytes(s->w, n * sizeof(float));
        d->b = dup_bytes(s->b, s->rows * sizeof(float));
        d->mask = dup_bytes(s->mask, n);
        d->codes = dup_bytes(s->codes, n);
        d->codebook = dup_bytes(s->codebook, s->codes ? ((size_t)1 << s->code_bits) * sizeof(float) : 0);
        if (d->w == NULL || d->b == NULL || (s->mask && !d->mask) || (s->codes && !d->codes) ||
            (s->codebook && !d->codebook))
            goto error;
    }
    *mlp_out = mlp;
    return EIE_STATUS_OK;
error:
    eie_mlp_free(mlp);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory copying a network");
}

eie_status_t eie_mlp_init_layers(const uint32_t *dims, size_t n_dims, uint64_t seed,
                                 eie_mlp_t **mlp_out, eie_error_t *err)
{
    if (n_dims < 2)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "need at least an input and an output width, got %zu widths", n_dims);
    eie_mlp_t *mlp;
    eie_status_t st = eie_mlp_init(dims[0], &mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    eie_rng_t rng;
    eie_rng_seed(&rng, seed);
    for (size_t k = 1; k < n_dims; k++) {
        st = eie_mlp_add_fc(mlp, dims[k], NULL, NULL, err);
        if (st != EIE_STATUS_OK)
            goto error;
        eie_mlp_layer_t *l = &mlp->layers[mlp->n_layers - 1];
        /* He initialisation (uniform), suited to ReLU layers. */
        float limit = sqrtf(6.0f / (float)l->cols);
        size_t n = (size_t)l->rows * l->cols;
        for (size_t i = 0; i < n; i++)
            l->w[i] = (2.0f * eie_rng_float(&rng) - 1.0f) * limit;
        st = eie_mlp_add_activation(mlp, k + 1 < n_dims ? EIE_ACT_RELU : EIE_ACT_SOFTMAX, err);
        if (st != EIE_STATUS_OK)
            goto error;
    }
    *mlp_out = mlp;
    return EIE_STATUS_OK;
error:
    eie_mlp_free(mlp);
    return st;
}

eie_status_t eie_mlp_forward(const eie_mlp_t *mlp, const float *x, size_t batch, float *y_out,
                             eie_error_t *err)
{
    uint32_t width = mlp->input_dim;
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (mlp->layers[i].kind == EIE_LAYER_FC && mlp->layers[i].rows > width)
            width = mlp->layers[i].rows;
    float *a = malloc(batch * width * sizeof *a);
    float *b = malloc(batch * width * sizeof *b);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %zu", batch);
    }
    uint32_t dim = mlp->input_dim;
    memcpy(a, x, batch * dim * sizeof *a);
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (l->kind == EIE_LAYER_FC) {
            float *wt = malloc((size_t)l->rows * l->cols * sizeof *wt);
            if (wt == NULL) {
                free(a);
                free(b);
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for layer %zu", i);
            }
            eie_transpose(l->w, l->rows, l->cols, wt);
            eie_fc_forward(a, batch, l->cols, wt, l->b, l->rows, b);
            free(wt);
            float *t = a;
            a = b;
            b = t;
            dim = l->rows;
        } else {
            eie_act_forward(l->act, a, batch, dim);
        }
    }
    memcpy(y_out, a, batch * dim * sizeof *a);
    free(a);
    free(b);
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_mask_from_weights(eie_mlp_t *mlp, size_t li, eie_error_t *err)
{
    eie_mlp_layer_t *l = &mlp->layers[li];
    size_t n = (size_t)l->rows * l->cols;
    if (l->mask == NULL) {
        l->mask = malloc(n);
        if (l->mask == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a mask");
    }
    for (size_t i = 0; i < n; i++)
        l->mask[i] = l->w[i] != 0.0f;
    return EIE_STATUS_OK;
}

void eie_mlp_unmask(eie_mlp_t *mlp)
{
    for (size_t i = 0; i < mlp->n_layers; i++) {
        eie_mlp_layer_t *l = &mlp->layers[i];
        free(l->mask);
        free(l->codes);
        free(l->codebook);
        l->mask = l->codes = NULL;
        l->codebook = NULL;
        l->code_bits = 0;
    }
}
