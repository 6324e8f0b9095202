/*
 * dense.c - the dense reference: every sparse layer decoded to a float
 * matrix and multiplied plainly (a convolution as direct loops over the
 * decoded kernel, accumulated in double). Tests compare every backend
 * against it.
 */
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "eie/engine.h"
#include "format/format.h"
#include "graph_ops.h"

/* One sample of a convolution: in [C,H,W], w rows x cols dense, out [Cout,Ho,Wo]. */
static void dense_conv(const eie_layer_t *l, const float *w, const eie_shape_t *xs,
                       const eie_shape_t *ys, const float *in, float *out)
{
    const eie_conv2d_params_t *p = &l->conv;
    int64_t C = xs->dims[1], H = xs->dims[2], W = xs->dims[3];
    int64_t Co = ys->dims[1], Ho = ys->dims[2], Wo = ys->dims[3];
    int64_t Cg = C / p->groups, Og = Co / p->groups;
    for (int64_t co = 0; co < Co; co++) {
        int64_t g = co / Og;
        const float *wr = w + (size_t)co * l->fc.cols;
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                double s = 0.0;
                for (int64_t ci = 0; ci < Cg; ci++)
                    for (int64_t ky = 0; ky < p->kernel_h; ky++) {
                        int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                        if (iy < 0 || iy >= H)
                            continue;
                        for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                            if (ix < 0 || ix >= W)
                                continue;
                            s += (double)wr[(ci * p->kernel_h + ky) * p->kernel_w + kx] *
                                 in[((g * Cg + ci) * H + iy) * W + ix];
                        }
                    }
                out[(co * Ho + oy) * Wo + ox] = (float)(s + l->fc.bias[co]);
            }
    }
}

/*
 * One time step of an LSTM (the sample is step t of the sequence): for each
 * lane, the gates over [x_t, h_{t-1}] in double, then the unit update.
 * state holds h then c (lanes x H each), carried from step to step.
 */
static void dense_lstm(const eie_layer_t *l, const float *w, const float *x, float *y,
                       float *state, float *gates)
{
    uint32_t H = l->lstm.hidden, I = l->fc.cols - H, N = l->lstm.lanes;
    float *h = state, *c = state + (size_t)N * H;
    for (uint32_t n = 0; n < N; n++) {
        for (uint32_t r = 0; r < 4 * H; r++) {
            const float *wr = w + (size_t)r * l->fc.cols;
            double s = 0.0;
            for (uint32_t k = 0; k < I; k++)
                s += (double)wr[k] * x[(size_t)n * I + k];
            for (uint32_t k = 0; k < H; k++)
                s += (double)wr[I + k] * h[(size_t)n * H + k];
            gates[r] = (float)(s + l->fc.bias[r]);
        }
        for (uint32_t j = 0; j < H; j++)
            y[(size_t)n * H + j] = eie_op_lstm_unit(gates + 4 * j, &c[(size_t)n * H + j]);
    }
    memcpy(h, y, (size_t)N * H * sizeof(float));
}

/* Sets an LSTM's state to its initial values: fed by a graph input this run (one
   sample), stored, or zeros. */
static void dense_lstm_reset(const eie_model_t *m, const eie_layer_t *l,
                             const float *const *inputs, float *state)
{
    size_t n = (size_t)l->lstm.lanes * l->lstm.hidden;
    for (int k = 0; k < 2; k++) {
        size_t i = 0;
        while (i < m->n_inputs && m->inputs[i] != l->lstm.initial_in[k])
            i++;
        if (i < m->n_inputs)
            memcpy(state + k * n, inputs[i], n * sizeof(float));
        else if (l->lstm.initial[k] != NULL)
            memcpy(state + k * n, l->lstm.initial[k], n * sizeof(float));
        else
            memset(state + k * n, 0, n * sizeof(float));
    }
}

/* One node on one sample; buffers hold every tensor's sample. */
static void dense_node(const eie_model_t *m, size_t li, const float *w, float **t, float *state,
                       float *gates)
{
    const eie_layer_t *l = &m->layers[li];
    const eie_shape_t *xs = &m->tensors[l->inputs[0]].shape;
    const eie_shape_t *ys = &m->tensors[l->output].shape;
    const float *x = t[l->inputs[0]];
    float *y = t[l->output];
    size_t n = eie_shape_sample_elements(ys);
    switch (l->kind) {
    case EIE_LAYER_FC:
        /* each vector along the last axis */
        for (size_t v = 0; v < n / l->fc.rows; v++)
            for (uint32_t r = 0; r < l->fc.rows; r++) {
                double s = 0.0;
                for (uint32_t c = 0; c < l->fc.cols; c++)
                    s += (double)w[(size_t)r * l->fc.cols + c] * x[v * l->fc.cols + c];
                y[v * l->fc.rows + r] = (float)(s + l->fc.bias[r]);
            }
        break;
    case EIE_LAYER_CONV2D:
        dense_conv(l, w, xs, ys, x, y);
        break;
    case EIE_LAYER_LSTM:
        dense_lstm(l, w, x, y, state, gates);
        break;
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
        eie_op_pool2d(l->kind == EIE_LAYER_MAXPOOL2D, &l->pool, x, (uint32_t)xs->dims[1],
                      (uint32_t)xs->dims[2], (uint32_t)xs->dims[3], y, (uint32_t)ys->dims[2],
                      (uint32_t)ys->dims[3], 0, 1);
        break;
    case EIE_LAYER_GLOBAL_AVGPOOL:
        eie_op_global_avgpool(x, (uint32_t)xs->dims[1], (size_t)(xs->dims[2] * xs->dims[3]), y,
                              0, 1);
        break;
    case EIE_LAYER_ADD:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] + t[l->inputs[1]][i];
        break;
    case EIE_LAYER_CONCAT: {
        size_t outer, na, inner, off = 0;
        eie_op_axis_split(ys, l->axis, &outer, &na, &inner);
        for (size_t k = 0; k < l->n_inputs; k++) {
            size_t chunk = (size_t)m->tensors[l->inputs[k]].shape.dims[l->axis] * inner;
            eie_op_concat_one(t[l->inputs[k]], chunk, outer, na * inner, y + off, 0, 1);
            off += chunk;
        }
        break;
    }
    case EIE_LAYER_FLATTEN:
    case EIE_LAYER_RESHAPE:
        memcpy(y, x, n * sizeof(float));
        break;
    case EIE_LAYER_ACTIVATION:
        memcpy(y, x, n * sizeof(float));
        if (l->act == EIE_ACT_SOFTMAX)
            eie_op_softmax_axis(y, ys, l->axis, 0, 1);
        else
            for (size_t i = 0; i < n; i++)
                y[i] = eie_act_apply1(l->act, y[i]);
        break;
    }
}

eie_status_t eie_model_run_dense_multi(const eie_model_t *m, const float *const *inputs,
                                       size_t batch, float *const *outputs, eie_error_t *err)
{
    eie_status_t st = EIE_STATUS_OK;
    float **t = calloc(m->n_tensors, sizeof *t);
    float **w = calloc(m->n_layers, sizeof *w);
    float **state = calloc(m->n_layers, sizeof *state); /* LSTM: h, c */
    float *gates = NULL;
    size_t max_gates = 1;
    if (t == NULL || w == NULL || state == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
        goto done;
    }
    for (size_t i = 0; i < m->n_tensors; i++)
        if ((t[i] = malloc(eie_shape_sample_elements(&m->tensors[i].shape) * sizeof(float))) ==
            NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
            goto done;
        }
    for (size_t i = 0; i < m->n_layers; i++) {
        const eie_fc_t *fc = eie_model_fc(m, i);
        if (fc == NULL)
            continue;
        if ((w[i] = malloc((size_t)fc->rows * fc->cols * sizeof(float))) == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
            goto done;
        }
        eie_model_fc_dense(m, i, w[i]);
        const eie_layer_t *l = &m->layers[i];
        if (l->kind != EIE_LAYER_LSTM)
            continue;
        if (fc->rows > max_gates)
            max_gates = fc->rows;
        state[i] = malloc(2 * (size_t)l->lstm.lanes * l->lstm.hidden * sizeof(float));
        if (state[i] == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
            goto done;
        }
        dense_lstm_reset(m, l, inputs, state[i]);
    }
    if ((gates = malloc(max_gates * sizeof(float))) == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
        goto done;
    }
    for (size_t b = 0; b < batch; b++) {
        for (size_t i = 0; i < m->n_inputs; i++) {
            size_t n = eie_shape_sample_elements(&m->tensors[m->inputs[i]].shape);
            if (!eie_model_is_lstm_initial(m, m->inputs[i])) /* one sample, read at reset */
                memcpy(t[m->inputs[i]], inputs[i] + b * n, n * sizeof(float));
        }
        for (size_t i = 0; i < m->n_layers; i++)
            dense_node(m, i, w[i], t, state[i], gates);
        for (size_t i = 0; i < m->n_outputs; i++) {
            size_t n = eie_shape_sample_elements(&m->tensors[m->outputs[i]].shape);
            if (!eie_model_is_lstm_state(m, m->outputs[i]))
                memcpy(outputs[i] + b * n, t[m->outputs[i]], n * sizeof(float));
        }
    }
    /* An LSTM's final state (Y_h, Y_c): one row, after the last step. */
    for (size_t i = 0; i < m->n_layers; i++) {
        const eie_layer_t *l = &m->layers[i];
        size_t n = (size_t)l->lstm.lanes * l->lstm.hidden;
        for (size_t o = 0; l->kind == EIE_LAYER_LSTM && o < m->n_outputs; o++)
            for (int k = 0; k < 2; k++)
                if (m->outputs[o] == l->lstm.state[k])
                    memcpy(outputs[o], state[i] + k * n, n * sizeof(float));
    }
done:
    if (t != NULL)
        for (size_t i = 0; i < m->n_tensors; i++)
            free(t[i]);
    if (w != NULL)
        for (size_t i = 0; i < m->n_layers; i++)
            free(w[i]);
    if (state != NULL)
        for (size_t i = 0; i < m->n_layers; i++)
            free(state[i]);
    free(state);
    free(gates);
    free(t);
    free(w);
    return st;
}

eie_status_t eie_model_run_dense(const eie_model_t *model, const float *input, size_t batch,
                                 float *output, eie_error_t *err)
{
    if (model->version == EIE_FORMAT_VERSION_GRAPH)
        return eie_model_run_dense_multi(model, &input, batch, &output, err);
    size_t maxdim = model->input_dim;
    for (size_t l = 0; l < model->n_layers; l++)
        if (model->layers[l].kind == EIE_LAYER_FC && model->layers[l].fc.rows > maxdim)
            maxdim = model->layers[l].fc.rows;
    float *cur = malloc(batch * maxdim * sizeof(float));
    float *next = malloc(batch * maxdim * sizeof(float));
    float *w = NULL;
    eie_status_t st = EIE_STATUS_OK;
    if (cur == NULL || next == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
        goto done;
    }
    /* Activations live as batch rows of maxdim floats. */
    size_t dim = model->input_dim;
    for (size_t b = 0; b < batch; b++)
        memcpy(cur + b * maxdim, input + b * dim, dim * sizeof(float));
    for (size_t l = 0; l < model->n_layers; l++) {
        const eie_layer_t *ly = &model->layers[l];
        if (ly->kind == EIE_LAYER_FC) {
            const eie_fc_t *fc = &ly->fc;
            free(w);
            w = malloc((size_t)fc->rows * fc->cols * sizeof(float));
            if (w == NULL) {
                st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
                goto done;
            }
            eie_model_fc_dense(model, l, w);
            for (size_t b = 0; b < batch; b++) {
                const float *x = cur + b * maxdim;
                for (uint32_t r = 0; r < fc->rows; r++) {
                    float s = 0.0f;
                    const float *wr = w + (size_t)r * fc->cols;
                    for (uint32_t c = 0; c < fc->cols; c++)
                        s += wr[c] * x[c];
                    next[b * maxdim + r] = s + fc->bias[r];
                }
            }
            float *t = cur;
            cur = next;
            next = t;
            dim = fc->rows;
        } else {
            for (size_t b = 0; b < batch; b++) {
                float *x = cur + b * maxdim;
                if (ly->act == EIE_ACT_SOFTMAX)
                    eie_act_softmax(x, dim, 1);
                else
                    for (size_t i = 0; i < dim; i++)
                        x[i] = eie_act_apply1(ly->act, x[i]);
            }
        }
    }
    for (size_t b = 0; b < batch; b++)
        memcpy(output + b * model->output_dim, cur + b * maxdim,
               model->output_dim * sizeof(float));
done:
    free(w);
    free(cur);
    free(next);
    return st;
}
