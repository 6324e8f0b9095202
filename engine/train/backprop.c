/*
 * Backpropagation under softmax cross-entropy, layer by layer backwards.
 * Each layer output has its own gradient buffer; a layer read by two others
 * (a residual ADD, a CONCAT branch) gets the sum of both gradients.
 */
#include "train/backprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/conv.h"
#include "train/kernels.h"

size_t eie_bp_logits_end(const eie_mlp_t *mlp)
{
    size_t n = mlp->n_layers;
    if (n > 0 && mlp->layers[n - 1].kind == EIE_LAYER_ACTIVATION &&
        mlp->layers[n - 1].act == EIE_ACT_SOFTMAX)
        return n - 1;
    return n;
}

static eie_conv_geom_t conv_geom(const eie_mlp_layer_t *l)
{
    return (eie_conv_geom_t){.c = l->in_c, .h = l->in_h, .w = l->in_w, .cout = l->out_c,
                             .ho = l->out_h, .wo = l->out_w, .p = l->conv};
}

eie_status_t eie_bp_ws_init(const eie_mlp_t *mlp, size_t cap, int with_grads,
                            eie_bp_ws_t **ws_out, eie_error_t *err)
{
    size_t nl = mlp->n_layers ? mlp->n_layers : 1;
    eie_bp_ws_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL)
        goto error;
    ws->cap = cap;
    ws->acts = calloc(nl, sizeof *ws->acts);
    if (ws->acts == NULL)
        goto error;
    size_t widest = mlp->input_dim, col = 1;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        size_t size = eie_mlp_layer_out_size(l);
        widest = size > widest ? size : widest;
        if (l->kind == EIE_LAYER_CONV2D) {
            eie_conv_geom_t g = conv_geom(l);
            size_t c = eie_conv_col_floats(&g);
            col = c > col ? c : col;
        }
        if ((ws->acts[i] = malloc(cap * size * sizeof(float))) == NULL)
            goto error;
    }
    ws->probs = malloc(cap * widest * sizeof(float));
    ws->col = malloc(col * sizeof(float));
    if (ws->probs == NULL || ws->col == NULL)
        goto error;
    if (with_grads) {
        ws->grads = calloc(nl, sizeof *ws->grads);
        ws->written = calloc(nl, 1);
        ws->tmp = malloc(cap * widest * sizeof(float));
        ws->dcol = malloc(col * sizeof(float));
        if (ws->grads == NULL || ws->written == NULL || ws->tmp == NULL || ws->dcol == NULL)
            goto error;
        for (size_t i = 0; i < mlp->n_layers; i++)
            if ((ws->grads[i] = malloc(cap * eie_mlp_layer_out_size(&mlp->layers[i]) *
                                       sizeof(float))) == NULL)
                goto error;
    }
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
    for (size_t i = 0; i < mlp->n_layers; i++) {
        if (ws->acts)
            free(ws->acts[i]);
        if (ws->grads)
            free(ws->grads[i]);
    }
    free(ws->acts);
    free(ws->grads);
    free(ws->written);
    free(ws->tmp);
    free(ws->col);
    free(ws->dcol);
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

/* Output of layer j - 1, or the network's input for j == 0 (ADD and CONCAT's in2 convention). */
static const float *output_before(const eie_bp_ws_t *ws, const float *x, size_t j)
{
    return j == 0 ? x : ws->acts[j - 1];
}

static void layer_forward(const eie_mlp_layer_t *l, const float *wt, const float *in,
                          const float *in2, size_t n, eie_bp_ws_t *ws, float *out)
{
    switch (l->kind) {
    case EIE_LAYER_FC:
        eie_fc_forward(in, n, l->cols, wt, l->b, l->rows, out);
        break;
    case EIE_LAYER_CONV2D: {
        eie_conv_geom_t g = conv_geom(l);
        eie_conv2d_forward(&g, in, n, l->w, l->b, out, ws->col);
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
        eie_maxpool_forward(&l->pool, in, n, l->in_c, l->in_h, l->in_w, l->out_h, l->out_w, out);
        break;
    case EIE_LAYER_AVGPOOL2D:
        eie_avgpool_forward(&l->pool, in, n, l->in_c, l->in_h, l->in_w, l->out_h, l->out_w, out);
        break;
    case EIE_LAYER_GLOBAL_AVGPOOL:
        eie_gap_forward(in, n, l->in_c, l->in_h * l->in_w, out);
        break;
    case EIE_LAYER_ADD: {
        size_t size = eie_mlp_layer_out_size(l);
        memcpy(out, in, n * size * sizeof *out);
        eie_add_into(out, in2, n * size);
        break;
    }
    case EIE_LAYER_CONCAT: {
        size_t na = (size_t)l->in_c * l->in_h * l->in_w;
        eie_concat_forward(in, na, in2, eie_mlp_layer_out_size(l) - na, n, out);
        break;
    }
    default: /* ACTIVATION */
        memcpy(out, in, n * eie_mlp_layer_out_size(l) * sizeof *out);
        eie_act_forward(l->act, out, n, (uint32_t)eie_mlp_layer_out_size(l));
        break;
    }
}

/*
 * Where a layer writes the gradient at the output of layer j - 1: straight
 * into grads[j - 1] if nothing wrote it yet in this pass, else into tmp, to
 * be added by grad_done (an output read by two layers sums both).
 * NULL for j == 0: the network's input needs no gradient.
 */
static float *grad_begin(eie_bp_ws_t *ws, size_t j)
{
    if (j == 0)
        return NULL;
    if (!ws->written[j - 1]) {
        ws->written[j - 1] = 1;
        return ws->grads[j - 1];
    }
    return ws->tmp;
}

static void grad_done(eie_bp_ws_t *ws, size_t j, const float *g, size_t count)
{
    if (j > 0 && g == ws->tmp)
        eie_add_into(ws->grads[j - 1], ws->tmp, count);
}

/* Gradients of layer i from dy = grads[i]: its weights' into grad, its inputs' into grads[]. */
static void layer_backward(const eie_mlp_t *mlp, size_t i, const float *x, size_t n,
                           eie_bp_ws_t *ws, eie_mlp_grad_t *grad)
{
    const eie_mlp_layer_t *l = &mlp->layers[i];
    const float *in = output_before(ws, x, i);
    float *dy = ws->grads[i];
    size_t in_size = (size_t)l->in_c * l->in_h * l->in_w, out_size = eie_mlp_layer_out_size(l);
    float *dx;
    switch (l->kind) {
    case EIE_LAYER_FC:
        eie_fc_backward_weights(dy, in, n, l->rows, l->cols, grad->dw[i], grad->db[i]);
        if ((dx = grad_begin(ws, i)) != NULL) {
            /* dx = dy . W: the forward kernel with W (rows x cols) as "wt". */
            eie_fc_forward(dy, n, l->rows, l->w, NULL, l->cols, dx);
            grad_done(ws, i, dx, n * in_size);
        }
        break;
    case EIE_LAYER_CONV2D: {
        eie_conv_geom_t g = conv_geom(l);
        dx = grad_begin(ws, i);
        eie_conv2d_backward(&g, in, dy, n, l->w, grad->dw[i], grad->db[i], dx, ws->col, ws->dcol);
        grad_done(ws, i, dx, n * in_size);
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
    case EIE_LAYER_GLOBAL_AVGPOOL:
        if ((dx = grad_begin(ws, i)) == NULL)
            break;
        if (l->kind == EIE_LAYER_MAXPOOL2D)
            eie_maxpool_backward(&l->pool, in, dy, n, l->in_c, l->in_h, l->in_w, l->out_h,
                                 l->out_w, dx);
        else if (l->kind == EIE_LAYER_AVGPOOL2D)
            eie_avgpool_backward(&l->pool, dy, n, l->in_c, l->in_h, l->in_w, l->out_h, l->out_w,
                                 dx);
        else
            eie_gap_backward(dy, n, l->in_c, l->in_h * l->in_w, dx);
        grad_done(ws, i, dx, n * in_size);
        break;
    case EIE_LAYER_ADD:
    case EIE_LAYER_CONCAT: {
        size_t n2 = l->kind == EIE_LAYER_ADD ? in_size : out_size - in_size;
        if ((dx = grad_begin(ws, i)) != NULL) {
            if (l->kind == EIE_LAYER_ADD)
                memcpy(dx, dy, n * in_size * sizeof *dx);
            else
                eie_concat_backward(dy, in_size, n2, n, dx, NULL);
            grad_done(ws, i, dx, n * in_size);
        }
        if ((dx = grad_begin(ws, l->in2)) != NULL) {
            if (l->kind == EIE_LAYER_ADD)
                memcpy(dx, dy, n * n2 * sizeof *dx);
            else
                eie_concat_backward(dy, in_size, n2, n, NULL, dx);
            grad_done(ws, l->in2, dx, n * n2);
        }
        break;
    }
    default: /* ACTIVATION: in place, then handed down (same size) */
        eie_act_backward(l->act, ws->acts[i], dy, n, (uint32_t)out_size);
        if (i == 0)
            break;
        if (!ws->written[i - 1]) {
            ws->grads[i] = ws->grads[i - 1];
            ws->grads[i - 1] = dy;
            ws->written[i - 1] = 1;
        } else {
            eie_add_into(ws->grads[i - 1], dy, n * out_size);
        }
        break;
    }
}

double eie_bp_run(const eie_mlp_t *mlp, float *const *wts, const float *x, const uint8_t *labels,
                  size_t n, eie_bp_ws_t *ws, eie_mlp_grad_t *grad)
{
    size_t end = eie_bp_logits_end(mlp);
    for (size_t i = 0; i < end; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        layer_forward(l, wts[i], output_before(ws, x, i), output_before(ws, x, l->in2), n, ws,
                      ws->acts[i]);
    }
    /* Softmax of the logits, and the loss. */
    const float *logits = output_before(ws, x, end);
    uint32_t classes = end ? (uint32_t)eie_mlp_layer_out_size(&mlp->layers[end - 1])
                           : mlp->input_dim;
    memcpy(ws->probs, logits, n * classes * sizeof *ws->probs);
    eie_act_forward(EIE_ACT_SOFTMAX, ws->probs, n, classes);
    if (labels == NULL)
        return 0.0;
    double loss = 0.0;
    for (size_t r = 0; r < n; r++) {
        float p = ws->probs[r * classes + labels[r]];
        /* Clamp tiny probabilities but let NaN through: it signals divergence. */
        loss -= isnan(p) ? (double)p : log(p > 1e-30f ? (double)p : 1e-30);
    }
    if (grad == NULL || ws->grads == NULL || end == 0)
        return loss;

    /* d(loss)/d(logits) = p - onehot(label). */
    memset(ws->written, 0, mlp->n_layers);
    float *d = ws->grads[end - 1];
    ws->written[end - 1] = 1;
    memcpy(d, ws->probs, n * classes * sizeof *d);
    for (size_t r = 0; r < n; r++)
        d[r * classes + labels[r]] -= 1.0f;
    for (size_t i = end; i-- > 0;) {
        if (!ws->written[i]) {
            /* An output nothing reads has no gradient. */
            memset(ws->grads[i], 0, n * eie_mlp_layer_out_size(&mlp->layers[i]) * sizeof(float));
            ws->written[i] = 1;
        }
        layer_backward(mlp, i, x, n, ws, grad);
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
        if (!eie_mlp_layer_has_weights(l))
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
    eie_status_t st = eie_bp_ws_init(mlp, batch, 1, &ws, err);
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
        if (!eie_mlp_layer_has_weights(l))
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

/* Inference on the float model is the forward half of a training step. */
eie_status_t eie_mlp_forward(const eie_mlp_t *mlp, const float *x, size_t batch, float *y_out,
                             eie_error_t *err)
{
    if (batch == 0)
        return EIE_STATUS_OK;
    eie_bp_ws_t *ws;
    eie_status_t st = eie_bp_ws_init(mlp, batch, 0, &ws, err);
    if (st != EIE_STATUS_OK)
        return st;
    float **wts = eie_bp_transposes(mlp);
    if (wts == NULL) {
        eie_bp_ws_free(ws, mlp);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %zu", batch);
    }
    eie_bp_run(mlp, wts, x, NULL, batch, ws, NULL);
    /* A trailing softmax is the probabilities bp_run made; otherwise the last output. */
    size_t end = eie_bp_logits_end(mlp);
    const float *y = end < mlp->n_layers ? ws->probs : end ? ws->acts[end - 1] : x;
    memcpy(y_out, y, batch * eie_mlp_output_dim(mlp) * sizeof *y_out);
    eie_bp_transposes_free(mlp, wts);
    eie_bp_ws_free(ws, mlp);
    return EIE_STATUS_OK;
}
