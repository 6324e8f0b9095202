/* The dense network: construction, copies, inference. */
#include "eie/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/conv.h"
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
    mlp->in_c = input_dim;
    mlp->in_h = mlp->in_w = 1;
    *mlp_out = mlp;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_init_image(uint32_t c, uint32_t h, uint32_t w, eie_mlp_t **mlp_out,
                                eie_error_t *err)
{
    uint64_t n = (uint64_t)c * h * w;
    if (c == 0 || h == 0 || w == 0 || n > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "input %u x %u x %u outside 1..%u elements",
                             c, h, w, EIE_MLP_MAX_DIM);
    eie_status_t st = eie_mlp_init((uint32_t)n, mlp_out, err);
    if (st != EIE_STATUS_OK)
        return st;
    (*mlp_out)->in_c = c;
    (*mlp_out)->in_h = h;
    (*mlp_out)->in_w = w;
    return EIE_STATUS_OK;
}

size_t eie_mlp_layer_out_size(const eie_mlp_layer_t *l)
{
    return (size_t)l->out_c * l->out_h * l->out_w;
}

/* The shape of one sample of what the next layer reads. */
static void current_shape(const eie_mlp_t *mlp, uint32_t *c, uint32_t *h, uint32_t *w)
{
    if (mlp->n_layers == 0) {
        *c = mlp->in_c, *h = mlp->in_h, *w = mlp->in_w;
        return;
    }
    const eie_mlp_layer_t *l = &mlp->layers[mlp->n_layers - 1];
    *c = l->out_c, *h = l->out_h, *w = l->out_w;
}

int eie_mlp_layer_has_weights(const eie_mlp_layer_t *l)
{
    return l->kind == EIE_LAYER_FC || l->kind == EIE_LAYER_CONV2D;
}

size_t eie_mlp_sparse_count(const eie_mlp_t *mlp)
{
    size_t n = 0;
    for (size_t i = 0; i < mlp->n_layers; i++)
        n += eie_mlp_layer_has_weights(&mlp->layers[i]);
    return n;
}

size_t eie_mlp_sparse_index(const eie_mlp_t *mlp, size_t k)
{
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (eie_mlp_layer_has_weights(&mlp->layers[i]) && k-- == 0)
            return i;
    return SIZE_MAX;
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
    if (mlp->n_layers == 0)
        return mlp->input_dim;
    return (uint32_t)eie_mlp_layer_out_size(&mlp->layers[mlp->n_layers - 1]);
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
    eie_mlp_layer_t *l = NULL;
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
    current_shape(mlp, &l->in_c, &l->in_h, &l->in_w);
    l->kind = EIE_LAYER_FC;
    l->rows = rows;
    l->cols = cols;
    l->w = wc;
    l->b = bc;
    l->out_c = rows;
    l->out_h = l->out_w = 1;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_activation(eie_mlp_t *mlp, eie_act_t act, eie_error_t *err)
{
    if (act < EIE_ACT_IDENTITY || act > EIE_ACT_SOFTMAX)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "unknown activation %d", (int)act);
    eie_mlp_layer_t *l = NULL;
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK)
        return st;
    current_shape(mlp, &l->in_c, &l->in_h, &l->in_w);
    l->kind = EIE_LAYER_ACTIVATION;
    l->act = act;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_conv2d(eie_mlp_t *mlp, uint32_t cout, const eie_conv2d_params_t *p,
                                const float *w, const float *b, eie_error_t *err)
{
    uint32_t c, h, wd;
    current_shape(mlp, &c, &h, &wd);
    size_t li = mlp->n_layers;
    if (p->kernel_h == 0 || p->kernel_w == 0 || p->stride_h == 0 || p->stride_w == 0 ||
        p->dilation_h == 0 || p->dilation_w == 0 || p->groups == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: conv2d kernel %ux%u, stride %ux%u, dilation %ux%u, "
                             "groups %u must all be >= 1",
                             li, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                             p->dilation_h, p->dilation_w, p->groups);
    if (cout == 0 || cout > EIE_MLP_MAX_DIM || c % p->groups || cout % p->groups)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: conv2d of %u -> %u channels in %u groups", li, c, cout,
                             p->groups);
    if (p->kernel_h > EIE_MLP_MAX_DIM || p->kernel_w > EIE_MLP_MAX_DIM ||
        p->pad_top > EIE_MLP_MAX_DIM || p->pad_bottom > EIE_MLP_MAX_DIM ||
        p->pad_left > EIE_MLP_MAX_DIM || p->pad_right > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: conv2d kernel or pad over %u", li,
                             EIE_MLP_MAX_DIM);
    uint32_t ho = eie_conv_out_dim(h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                                   p->dilation_h);
    uint32_t wo = eie_conv_out_dim(wd, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                                   p->dilation_w);
    if (ho == 0 || wo == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: a %ux%u kernel does not fit a %ux%u input", li,
                             p->kernel_h, p->kernel_w, h, wd);
    if ((uint64_t)cout * ho * wo > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: output %u x %u x %u over %u", li,
                             cout, ho, wo, EIE_MLP_MAX_DIM);
    uint64_t cols = (uint64_t)(c / p->groups) * p->kernel_h * p->kernel_w;
    uint64_t n = cols * cout;
    if (cols > EIE_MLP_MAX_DIM || n > EIE_MLP_MAX_WEIGHTS ||
        cols * ho * wo > EIE_MLP_MAX_WEIGHTS)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: %u x %llu weights over the limit",
                             li, cout, (unsigned long long)cols);
    float *wc = w ? malloc(n * sizeof *wc) : calloc(n, sizeof *wc);
    float *bc = b ? malloc(cout * sizeof *bc) : calloc(cout, sizeof *bc);
    eie_mlp_layer_t *l = NULL;
    eie_status_t st = wc && bc ? push_layer(mlp, &l, err)
                               : eie_error_set(err, EIE_STATUS_NO_MEMORY,
                                               "out of memory for layer %zu", li);
    if (st != EIE_STATUS_OK) {
        free(wc);
        free(bc);
        return st;
    }
    if (w)
        memcpy(wc, w, n * sizeof *wc);
    if (b)
        memcpy(bc, b, cout * sizeof *bc);
    l->kind = EIE_LAYER_CONV2D;
    l->rows = cout;
    l->cols = (uint32_t)cols;
    l->w = wc;
    l->b = bc;
    l->conv = *p;
    l->in_c = c, l->in_h = h, l->in_w = wd;
    l->out_c = cout, l->out_h = ho, l->out_w = wo;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_pool(eie_mlp_t *mlp, eie_layer_kind_t kind, const eie_pool2d_params_t *p,
                              eie_error_t *err)
{
    uint32_t c, h, w;
    current_shape(mlp, &c, &h, &w);
    size_t li = mlp->n_layers;
    if (kind != EIE_LAYER_MAXPOOL2D && kind != EIE_LAYER_AVGPOOL2D)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "layer %zu: %s is not a pooling",
                             li, eie_layer_kind_name(kind));
    if (p->kernel_h == 0 || p->kernel_w == 0 || p->stride_h == 0 || p->stride_w == 0 ||
        p->pad_top >= p->kernel_h || p->pad_bottom >= p->kernel_h ||
        p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w || p->ceil_mode > 1 ||
        p->count_include_pad > 1 || (kind == EIE_LAYER_MAXPOOL2D && p->count_include_pad))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: pooling kernel %ux%u stride %ux%u pads %u,%u,%u,%u "
                             "(each pad below its kernel) ceil_mode %u count_include_pad %u",
                             li, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top,
                             p->pad_left, p->pad_bottom, p->pad_right, p->ceil_mode,
                             p->count_include_pad);
    uint32_t ho = eie_pool_out_dim(h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                                   (int)p->ceil_mode);
    uint32_t wo = eie_pool_out_dim(w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                                   (int)p->ceil_mode);
    if (ho == 0 || wo == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: a %ux%u window does not fit a %ux%u input", li,
                             p->kernel_h, p->kernel_w, h, w);
    eie_mlp_layer_t *l = NULL;
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK)
        return st;
    l->kind = kind;
    l->pool = *p;
    l->in_c = c, l->in_h = h, l->in_w = w;
    l->out_c = c, l->out_h = ho, l->out_w = wo;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_global_avgpool(eie_mlp_t *mlp, eie_error_t *err)
{
    eie_mlp_layer_t *l = NULL;
    uint32_t c, h, w;
    current_shape(mlp, &c, &h, &w);
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK)
        return st;
    l->kind = EIE_LAYER_GLOBAL_AVGPOOL;
    l->in_c = c, l->in_h = h, l->in_w = w;
    l->out_c = c, l->out_h = l->out_w = 1;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_add_join(eie_mlp_t *mlp, eie_layer_kind_t kind, size_t in2,
                              eie_error_t *err)
{
    uint32_t c, h, w, c2, h2, w2;
    size_t li = mlp->n_layers;
    current_shape(mlp, &c, &h, &w);
    if (kind != EIE_LAYER_ADD && kind != EIE_LAYER_CONCAT)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "layer %zu: %s is not add or concat",
                             li, eie_layer_kind_name(kind));
    if (in2 > li)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: second input %zu is not an earlier layer's output (0..%zu)",
                             li, in2, li);
    if (in2 == 0)
        c2 = mlp->in_c, h2 = mlp->in_h, w2 = mlp->in_w;
    else
        c2 = mlp->layers[in2 - 1].out_c, h2 = mlp->layers[in2 - 1].out_h,
        w2 = mlp->layers[in2 - 1].out_w;
    if (h != h2 || w != w2 || (kind == EIE_LAYER_ADD && c != c2))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "layer %zu: %s of %u x %u x %u and %u x %u x %u", li,
                             eie_layer_kind_name(kind), c, h, w, c2, h2, w2);
    if (kind == EIE_LAYER_CONCAT && (uint64_t)(c + c2) * h * w > EIE_MLP_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_LIMIT, "layer %zu: concat over %u elements", li,
                             EIE_MLP_MAX_DIM);
    eie_mlp_layer_t *l = NULL;
    eie_status_t st = push_layer(mlp, &l, err);
    if (st != EIE_STATUS_OK)
        return st;
    l->kind = kind;
    l->in2 = in2;
    l->in_c = c, l->in_h = h, l->in_w = w;
    l->out_c = kind == EIE_LAYER_ADD ? c : c + c2, l->out_h = h, l->out_w = w;
    mlp->n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_mlp_init_lenet5(uint32_t c, uint32_t h, uint32_t w, uint32_t classes,
                                 uint64_t seed, eie_mlp_t **mlp_out, eie_error_t *err)
{
    eie_mlp_t *mlp;
    eie_status_t st = eie_mlp_init_image(c, h, w, &mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    const eie_conv2d_params_t conv5 = {.kernel_h = 5, .kernel_w = 5, .stride_h = 1, .stride_w = 1,
                                       .dilation_h = 1, .dilation_w = 1, .groups = 1};
    const eie_pool2d_params_t pool2 = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    if ((st = eie_mlp_add_conv2d(mlp, 20, &conv5, NULL, NULL, err)) ||
        (st = eie_mlp_add_pool(mlp, EIE_LAYER_MAXPOOL2D, &pool2, err)) ||
        (st = eie_mlp_add_conv2d(mlp, 50, &conv5, NULL, NULL, err)) ||
        (st = eie_mlp_add_pool(mlp, EIE_LAYER_MAXPOOL2D, &pool2, err)) ||
        (st = eie_mlp_add_fc(mlp, 500, NULL, NULL, err)) ||
        (st = eie_mlp_add_activation(mlp, EIE_ACT_RELU, err)) ||
        (st = eie_mlp_add_fc(mlp, classes, NULL, NULL, err)) ||
        (st = eie_mlp_add_activation(mlp, EIE_ACT_SOFTMAX, err))) {
        eie_mlp_free(mlp);
        return st;
    }
    /* Caffe's "xavier" filler of its LeNet: uniform, limit sqrt(3 / fan-in). */
    eie_rng_t rng;
    eie_rng_seed(&rng, seed);
    for (size_t i = 0; i < mlp->n_layers; i++) {
        eie_mlp_layer_t *l = &mlp->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        float limit = sqrtf(3.0f / (float)l->cols);
        for (size_t k = 0; k < (size_t)l->rows * l->cols; k++)
            l->w[k] = (2.0f * eie_rng_float(&rng) - 1.0f) * limit;
    }
    *mlp_out = mlp;
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
    mlp->in_c = src->in_c, mlp->in_h = src->in_h, mlp->in_w = src->in_w;
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
        if (!eie_mlp_layer_has_weights(s))
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
