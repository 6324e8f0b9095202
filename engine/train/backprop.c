/* Backpropagation for FC networks under softmax cross-entropy. */
#include "train/backprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/kernels.h"

size_t eie_bp_logits_end(const eie_mlp_t *mlp)
{
    size_t n = mlp->n_layers;
    if (n > 0 && mlp->layers[n - 1].kind == EIE_LAYER_ACTIVATION &&
        mlp->layers[n - 1].act == EIE_ACT_SOFTMAX)
        return n - 1;
    return n;
}

static uint32_t widest(const eie_mlp_t *mlp)
{
    uint32_t w = mlp->input_dim;
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (mlp->layers[i].kind == EIE_LAYER_FC && mlp->layers[i].rows > w)
            w = mlp->layers[i].rows;
    return w;
}

eie_status_t eie_bp_ws_init(const eie_mlp_t *mlp, size_t cap, eie_bp_ws_t **ws_out,
                            eie_error_t *err)
{
    eie_bp_ws_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        goto error;
    ws->cap = cap;
    ws->acts = calloc(mlp->n_layers + 1, sizeof *ws->acts);
    if (ws->acts == NULL)
        goto error;
    uint32_t dim = mlp->input_dim;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        if (mlp->layers[i].kind == EIE_LAYER_FC)
            dim = mlp->layers[i].rows;
        ws->acts[i] = malloc(cap * dim * sizeof(float));
        if (ws->acts[i] == NULL)
            goto error;
    }
    size_t w = widest(mlp);
    ws->d0 = malloc(cap * w * sizeof(float));
    ws->d1 = malloc(cap * w * sizeof(float));
    ws->probs = malloc(cap * w * sizeof(float));
    if (ws->d0 == NULL || ws->d1 == NULL || ws->probs == NULL)
        goto error;
    *ws_out = ws;
    return EIE_STATUS_OK;
error:
    eie_bp_ws_free(ws, mlp);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %zu", cap);
}

void eie_bp_ws_free(eie_bp_ws_t *ws, const eie_mlp_t *mlp)
{
    if (ws == NULL)
        return;
    if (ws->acts)
        for (size_t i = 0; i < mlp->n_layers; i++)
            free(ws->acts[i]);
    free(ws->acts);
    free(ws->d0);
    free(ws->d1);
    free(ws->probs);
    free(ws);
}

float **eie_bp_transposes(const eie_mlp_t *mlp)
{
    float **wts = calloc(mlp->n_layers ? mlp->n_layers : 1, sizeof *wts);
    if (wts == NULL)
        return NULL;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (l->kind != EIE_LAYER_FC)
            continue;
        wts[i] = malloc((size_t)l->rows * l->cols * sizeof(float));
        if (wts[i] == NULL) {
            eie_bp_transposes_free(mlp, wts);
            return NULL;
        }
    }
    eie_bp_transposes_update(mlp, wts);
    return wts;
}

void eie_bp_transposes_update(const eie_mlp_t *mlp, float **wts)
{
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (wts[i])
            eie_transpose(mlp->layers[i].w, mlp->layers[i].rows, mlp->layers[i].cols, wts[i]);
}

void eie_bp_transposes_free(const eie_mlp_t *mlp, float **wts)
{
    if (wts == NULL)
        return;
    for (size_t i = 0; i < mlp->n_layers; i++)
        free(wts[i]);
    free(wts);
}

double eie_bp_run(const eie_mlp_t *mlp, float *const *wts, const float *x, const uint8_t *labels,
                  size_t n, eie_bp_ws_t *ws, eie_mlp_grad_t *grad)
{
    size_t end = eie_bp_logits_end(mlp);
    const float *in = x;
    uint32_t dim = mlp->input_dim;
    for (size_t i = 0; i < end; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        float *out = ws->acts[i];
        if (l->kind == EIE_LAYER_FC) {
            eie_fc_forward(in, n, l->cols, wts[i], l->b, l->rows, out);
            dim = l->rows;
        } else {
            memcpy(out, in, n * dim * sizeof *out);
            eie_act_forward(l->act, out, n, dim);
        }
        in = out;
    }
    /* Softmax of the logits, and the loss. */
    uint32_t classes = dim;
    memcpy(ws->probs, in, n * classes * sizeof *ws->probs);
    eie_act_forward(EIE_ACT_SOFTMAX, ws->probs, n, classes);
    if (labels == NULL)
        return 0.0;
    double loss = 0.0;
    for (size_t r = 0; r < n; r++) {
        float p = ws->probs[r * classes + labels[r]];
        /* Clamp tiny probabilities but let NaN through: it signals divergence. */
        loss -= isnan(p) ? (double)p : log(p > 1e-30f ? (double)p : 1e-30);
    }
    if (grad == NULL)
        return loss;

    /* d(loss)/d(logits) = p - onehot(label). */
    float *d = ws->d0, *dn = ws->d1;
    memcpy(d, ws->probs, n * classes * sizeof *d);
    for (size_t r = 0; r < n; r++)
        d[r * classes + labels[r]] -= 1.0f;
    for (size_t i = end; i-- > 0;) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        const float *layer_in = i == 0 ? x : ws->acts[i - 1];
        if (l->kind == EIE_LAYER_FC) {
            eie_fc_backward_weights(d, layer_in, n, l->rows, l->cols, grad->dw[i], grad->db[i]);
            if (i == 0)
                break; /* the input's gradient is not needed */
            /* dx = dy . W: the forward kernel with W (rows x cols) as "wt". */
            eie_fc_forward(d, n, l->rows, l->w, NULL, l->cols, dn);
            float *t = d;
            d = dn;
            dn = t;
        } else {
            uint32_t w = 0;
            /* The width of an activation is that of the layer before it. */
            w = mlp->input_dim;
            for (size_t k = i; k-- > 0;)
                if (mlp->layers[k].kind == EIE_LAYER_FC) {
                    w = mlp->layers[k].rows;
                    break;
                }
            eie_act_backward(l->act, ws->acts[i], d, n, w);
        }
    }
    return loss;
}

eie_status_t eie_mlp_grad_init(const eie_mlp_t *mlp, eie_mlp_grad_t **grad_out, eie_error_t *err)
{
    eie_mlp_grad_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        goto error;
    g->n_layers = mlp->n_layers;
    g->dw = calloc(mlp->n_layers ? mlp->n_layers : 1, sizeof *g->dw);
    g->db = calloc(mlp->n_layers ? mlp->n_layers : 1, sizeof *g->db);
    if (g->dw == NULL || g->db == NULL)
        goto error;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (l->kind != EIE_LAYER_FC)
            continue;
        g->dw[i] = calloc((size_t)l->rows * l->cols, sizeof(float));
        g->db[i] = calloc(l->rows, sizeof(float));
        if (g->dw[i] == NULL || g->db[i] == NULL)
            goto error;
    }
    *grad_out = g;
    return EIE_STATUS_OK;
error:
    eie_mlp_grad_free(g);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for gradients");
}

void eie_mlp_grad_free(eie_mlp_grad_t *grad)
{
    if (grad == NULL)
        return;
    for (size_t i = 0; i < grad->n_layers; i++) {
        if (grad->dw)
            free(grad->dw[i]);
        if (grad->db)
            free(grad->db[i]);
    }
    free(grad->dw);
    free(grad->db);
    free(grad);
}

eie_status_t eie_mlp_backprop(const eie_mlp_t *mlp, const float *x, const uint8_t *labels,
                              size_t batch, eie_mlp_grad_t *grad, double *loss_out,
                              eie_error_t *err)
{
    uint32_t classes = eie_mlp_output_dim(mlp);
    for (size_t r = 0; r < batch; r++)
        if (labels[r] >= classes)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "label %u of example %zu is not below %u classes", labels[r], r,
                                 classes);
    if (batch == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "empty batch");
    eie_bp_ws_t *ws;
    eie_status_t st = eie_bp_ws_init(mlp, batch, &ws, err);
    if (st != EIE_STATUS_OK)
        return st;
    float **wts = eie_bp_transposes(mlp);
    if (wts == NULL) {
        eie_bp_ws_free(ws, mlp);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for transposed weights");
    }
    double loss = eie_bp_run(mlp, wts, x, labels, batch, ws, grad);
    float scale = 1.0f / (float)batch;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        if (l->kind != EIE_LAYER_FC)
            continue;
        for (size_t k = 0; k < (size_t)l->rows * l->cols; k++)
            grad->dw[i][k] *= scale;
        for (uint32_t k = 0; k < l->rows; k++)
            grad->db[i][k] *= scale;
    }
    if (loss_out)
        *loss_out = loss / (double)batch;
    eie_bp_transposes_free(mlp, wts);
    eie_bp_ws_free(ws, mlp);
    return EIE_STATUS_OK;
}
