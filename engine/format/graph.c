/*
 * graph.c - the rules of a model graph, shared by the reader and the
 * builder: which shapes a node accepts and what shape it produces
 * (engine/FORMAT.md, "Node kinds"), and the chain graph of a version-1 file.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"

uint64_t eie_shape_sample_elements(const eie_shape_t *s)
{
    uint64_t n = 1;
    for (uint32_t k = 1; k < s->rank && k < EIE_MAX_RANK; k++)
        n *= (uint64_t)s->dims[k];
    return n;
}

void eie_shape_format(const eie_shape_t *s, char *buf, size_t n)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, n, "[");
    for (uint32_t k = 0; k < s->rank && k < EIE_MAX_RANK && at < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64, k ? "," : "", s->dims[k]);
    if (at < n)
        snprintf(buf + at, n - at, "]");
}

int eie_shape_equal(const eie_shape_t *a, const eie_shape_t *b)
{
    if (a->rank != b->rank)
        return 0;
    for (uint32_t k = 0; k < a->rank; k++)
        if (a->dims[k] != b->dims[k])
            return 0;
    return 1;
}

static int why_set(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int why_set(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

int eie_shape_check(const eie_shape_t *s, const eie_limits_t *lim, char *why, size_t why_len)
{
    if (s->rank < 1 || s->rank > EIE_MAX_RANK)
        return why_set(why, why_len, "rank %u not in 1..%u", s->rank, EIE_MAX_RANK);
    if (s->dims[0] != -1 && (s->dims[0] < 1 || (uint64_t)s->dims[0] > lim->max_elements))
        return why_set(why, why_len, "batch dimension %" PRId64 " is neither -1 nor 1..%" PRIu64,
                       s->dims[0], lim->max_elements);
    uint64_t n = 1;
    for (uint32_t k = 1; k < s->rank; k++) {
        if (s->dims[k] < 1 || (uint64_t)s->dims[k] > lim->max_elements)
            return why_set(why, why_len,
                           "dimension %u is %" PRId64 ", must be 1..%" PRIu64
                           " (-1 is for the batch dimension only)",
                           k, s->dims[k], lim->max_elements);
        n *= (uint64_t)s->dims[k];
        if (n > lim->max_elements)
            return why_set(why, why_len, "a sample has over %" PRIu64 " elements (the limit)",
                           lim->max_elements);
    }
    return 0;
}

/* Output size of a window along one axis; 0 when the window does not fit. */
static uint64_t window_out(uint64_t in, uint64_t pb, uint64_t pe, uint64_t k_eff, uint64_t s,
                           int ceil_mode)
{
    uint64_t span = in + pb + pe;
    if (span < k_eff)
        return 0;
    uint64_t o = ceil_mode ? (span - k_eff + s - 1) / s + 1 : (span - k_eff) / s + 1;
    /* Ceil mode (as PyTorch and ONNX's reference): a last window that would
     * start in the end padding is dropped. */
    if (ceil_mode && o > 1 && (o - 1) * s >= in + pb)
        o--;
    return o;
}

static const eie_shape_t *in_shape(const eie_model_t *m, const eie_layer_t *l, uint32_t k)
{
    return &m->tensors[l->inputs[k]].shape;
}

int eie_graph_infer(const eie_model_t *m, const eie_layer_t *l, const eie_limits_t *lim,
                    const eie_shape_t *target, eie_shape_t *out, const char **field_out,
                    char *why, size_t why_len)
{
    char a[160], b[160];
    const eie_shape_t *x = l->n_inputs ? in_shape(m, l, 0) : NULL;
    /* an lstm's count follows its initial flags (checked below) */
    uint32_t want_in = l->kind == EIE_LAYER_ADD                                   ? 2
                       : l->kind == EIE_LAYER_CONCAT || l->kind == EIE_LAYER_LSTM ? 0
                                                                                  : 1;
    *field_out = "inputs";
    if (want_in != 0 && l->n_inputs != want_in)
        return why_set(why, why_len, "%s takes %u input%s, not %u", eie_layer_kind_name(l->kind),
                       want_in, want_in > 1 ? "s" : "", l->n_inputs);
    memset(out, 0, sizeof *out);
    eie_shape_format(x, a, sizeof a);
    switch (l->kind) {
    case EIE_LAYER_FC:
        /* [N, cols], or [N, ..., cols]: the matrix applies to the last axis (a sequence's
           [T, N, H] after an lstm) */
        if (x->rank < 2 || x->dims[x->rank - 1] != (int64_t)l->fc.cols)
            return why_set(why, why_len,
                           "input %s does not fit a %ux%u matrix (needs [N,%u] or [N,...,%u])",
                           a, l->fc.rows, l->fc.cols, l->fc.cols, l->fc.cols);
        *out = *x;
        out->dims[x->rank - 1] = l->fc.rows;
        break;
    case EIE_LAYER_CONV2D: {
        const eie_conv2d_params_t *p = &l->conv;
        *field_out = "params";
        if (x->rank != 4)
            return why_set(why, why_len, "input %s is not [N,C,H,W]", a);
        if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
            p->dilation_h < 1 || p->dilation_w < 1 || p->groups < 1)
            return why_set(why, why_len,
                           "kernel %ux%u, strides %u,%u, dilations %u,%u, groups %u: each must "
                           "be >= 1",
                           p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->dilation_h,
                           p->dilation_w, p->groups);
        if (p->kernel_h > lim->max_dim || p->kernel_w > lim->max_dim ||
            p->stride_h > lim->max_dim || p->stride_w > lim->max_dim ||
            p->dilation_h > lim->max_dim || p->dilation_w > lim->max_dim ||
            p->pad_top > lim->max_dim || p->pad_left > lim->max_dim ||
            p->pad_bottom > lim->max_dim || p->pad_right > lim->max_dim)
            return why_set(why, why_len, "a kernel size, stride, dilation or pad is over %u",
                           lim->max_dim);
        uint64_t C = (uint64_t)x->dims[1];
        /* each factor is bounded, so the product of two fits; the third is checked */
        uint64_t taps = (uint64_t)p->kernel_h * p->kernel_w;
        if (taps > lim->max_weights)
            return why_set(why, why_len, "a %ux%u kernel is over %" PRIu64 " weights",
                           p->kernel_h, p->kernel_w, lim->max_weights);
        if (C % p->groups != 0 || l->fc.rows % p->groups != 0)
            return why_set(why, why_len, "groups %u does not divide %" PRIu64
                           " input channels and %u output channels",
                           p->groups, C, l->fc.rows);
        uint64_t cols = C / p->groups * p->kernel_h * p->kernel_w;
        if (cols != l->fc.cols)
            return why_set(why, why_len,
                           "weights have %u columns but input %s with %u groups and a %ux%u "
                           "kernel needs %" PRIu64,
                           l->fc.cols, a, p->groups, p->kernel_h, p->kernel_w, cols);
        uint64_t kh = (uint64_t)p->dilation_h * (p->kernel_h - 1) + 1;
        uint64_t kw = (uint64_t)p->dilation_w * (p->kernel_w - 1) + 1;
        uint64_t ho = window_out((uint64_t)x->dims[2], p->pad_top, p->pad_bottom, kh, p->stride_h, 0);
        uint64_t wo = window_out((uint64_t)x->dims[3], p->pad_left, p->pad_right, kw, p->stride_w, 0);
        if (ho == 0 || wo == 0)
            return why_set(why, why_len, "a %" PRIu64 "x%" PRIu64
                           " (dilated) kernel does not fit input %s with its pads",
                           kh, kw, a);
        *out = (eie_shape_t){.rank = 4,
                             .dims = {x->dims[0], l->fc.rows, (int64_t)ho, (int64_t)wo}};
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D: {
        const eie_pool2d_params_t *p = &l->pool;
        *field_out = "params";
        if (x->rank != 4)
            return why_set(why, why_len, "input %s is not [N,C,H,W]", a);
        if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
            p->kernel_h > lim->max_dim || p->kernel_w > lim->max_dim ||
            p->stride_h > lim->max_dim || p->stride_w > lim->max_dim)
            return why_set(why, why_len, "kernel %ux%u, strides %u,%u: each must be 1..%u",
                           p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, lim->max_dim);
        if (p->pad_top >= p->kernel_h || p->pad_bottom >= p->kernel_h ||
            p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w)
            return why_set(why, why_len, "pads %u,%u,%u,%u (top, left, bottom, right) must be "
                           "smaller than the %ux%u kernel",
                           p->pad_top, p->pad_left, p->pad_bottom, p->pad_right, p->kernel_h,
                           p->kernel_w);
        if (p->ceil_mode > 1)
            return why_set(why, why_len, "ceil_mode %u is neither 0 nor 1", p->ceil_mode);
        if (p->count_include_pad > (l->kind == EIE_LAYER_AVGPOOL2D ? 1u : 0u))
            return why_set(why, why_len, "count_include_pad %u must be %s",
                           p->count_include_pad,
                           l->kind == EIE_LAYER_AVGPOOL2D ? "0 or 1" : "0 for maxpool2d");
        uint64_t ho = window_out((uint64_t)x->dims[2], p->pad_top, p->pad_bottom, p->kernel_h,
                                 p->stride_h, (int)p->ceil_mode);
        uint64_t wo = window_out((uint64_t)x->dims[3], p->pad_left, p->pad_right, p->kernel_w,
                                 p->stride_w, (int)p->ceil_mode);
        if (ho == 0 || wo == 0)
            return why_set(why, why_len, "a %ux%u window does not fit input %s with its pads",
                           p->kernel_h, p->kernel_w, a);
        *out = (eie_shape_t){.rank = 4,
                             .dims = {x->dims[0], x->dims[1], (int64_t)ho, (int64_t)wo}};
        break;
    }
    case EIE_LAYER_GLOBAL_AVGPOOL:
        if (x->rank != 4)
            return why_set(why, why_len, "input %s is not [N,C,H,W]", a);
        *out = (eie_shape_t){.rank = 4, .dims = {x->dims[0], x->dims[1], 1, 1}};
        break;
    case EIE_LAYER_ADD:
        eie_shape_format(in_shape(m, l, 1), b, sizeof b);
        if (!eie_shape_equal(x, in_shape(m, l, 1)))
            return why_set(why, why_len, "inputs %s and %s differ (add takes one shape)", a, b);
        *out = *x;
        break;
    case EIE_LAYER_CONCAT: {
        if (l->n_inputs < 2 || l->n_inputs > lim->max_tensors)
            return why_set(why, why_len, "concat takes 2..%u inputs, not %u", lim->max_tensors,
                           l->n_inputs);
        *field_out = "axis";
        if (l->axis < 1 || (uint32_t)l->axis >= x->rank)
            return why_set(why, why_len, "axis %d not in 1..%u for input %s", l->axis,
                           x->rank - 1, a);
        *out = *x;
        *field_out = "inputs";
        for (uint32_t k = 1; k < l->n_inputs; k++) {
            const eie_shape_t *y = in_shape(m, l, k);
            int ok = y->rank == x->rank;
            for (uint32_t d = 0; ok && d < x->rank; d++)
                ok = d == (uint32_t)l->axis || y->dims[d] == x->dims[d];
            if (!ok) {
                eie_shape_format(y, b, sizeof b);
                return why_set(why, why_len, "input %u %s does not match input 0 %s but on axis %d",
                               k, b, a, l->axis);
            }
            out->dims[l->axis] += y->dims[l->axis];
        }
        break;
    }
    case EIE_LAYER_FLATTEN:
        *out = (eie_shape_t){.rank = 2,
                             .dims = {x->dims[0], (int64_t)eie_shape_sample_elements(x)}};
        break;
    case EIE_LAYER_RESHAPE:
        *field_out = "output";
        if (target == NULL)
            return why_set(why, why_len, "reshape needs a target shape");
        eie_shape_format(target, b, sizeof b);
        if (target->rank < 1 || target->rank > EIE_MAX_RANK || target->dims[0] != x->dims[0] ||
            eie_shape_check(target, lim, why, why_len) != 0 ||
            eie_shape_sample_elements(target) != eie_shape_sample_elements(x))
            return why_set(why, why_len,
                           "cannot reshape %s to %s (same batch dimension and elements needed)", a,
                           b);
        *out = *target;
        break;
    case EIE_LAYER_LSTM: {
        uint32_t H = l->lstm.hidden;
        *field_out = "hidden_size";
        if (H < 1 || H > lim->max_dim / 4)
            return why_set(why, why_len, "hidden_size %u not in 1..%u", H, lim->max_dim / 4);
        *field_out = "inputs";
        if (x->rank != 3)
            return why_set(why, why_len, "input %s is not [T,N,I] (time, lanes, features)", a);
        if (l->fc.rows != 4 * H || (uint64_t)l->fc.cols != (uint64_t)x->dims[2] + H)
            return why_set(why, why_len,
                           "weights are %ux%u but input %s with hidden_size %u needs %ux%" PRId64
                           " (4H x (I+H))",
                           l->fc.rows, l->fc.cols, a, H, 4 * H, x->dims[2] + H);
        uint32_t fed = (l->lstm.initial_in[0] != UINT32_MAX) + (l->lstm.initial_in[1] != UINT32_MAX);
        if (l->n_inputs != 1 + fed)
            return why_set(why, why_len,
                           "%u inputs but the initial flags name %u (X, then the fed initial_h "
                           "and initial_c)",
                           l->n_inputs, 1 + fed);
        eie_shape_t ss = eie_lstm_state_shape(x, H);
        for (int k = 0; k < 2; k++) {
            uint32_t t = l->lstm.initial_in[k];
            if (t == UINT32_MAX)
                continue;
            const eie_tensor_t *st = &m->tensors[t];
            char c[160], d[160];
            eie_shape_format(&st->shape, c, sizeof c);
            eie_shape_format(&ss, d, sizeof d);
            if (l->lstm.initial[k] != NULL)
                return why_set(why, why_len, "initial_%c is both stored and fed by \"%s\"",
                               k ? 'c' : 'h', st->name);
            size_t i = 0;
            while (i < m->n_inputs && m->inputs[i] != t)
                i++;
            if (i == m->n_inputs)
                return why_set(why, why_len,
                               "initial_%c \"%s\" is not a graph input (a state fed at run time "
                               "must be one)",
                               k ? 'c' : 'h', st->name);
            if (st->dtype != EIE_DTYPE_FP32)
                return why_set(why, why_len, "initial_%c \"%s\": datatype %d is not FP32",
                               k ? 'c' : 'h', st->name, (int)st->dtype);
            if (!eie_shape_equal(&st->shape, &ss))
                return why_set(why, why_len,
                               "initial_%c \"%s\" is %s but input %s with hidden_size %u needs "
                               "%s ([1,N,H])",
                               k ? 'c' : 'h', st->name, c, a, H, d);
        }
        *out = (eie_shape_t){.rank = 4, .dims = {x->dims[0], 1, x->dims[1], H}};
        break;
    }
    case EIE_LAYER_ACTIVATION:
        *field_out = "act";
        if (eie_act_name(l->act) == NULL)
            return why_set(why, why_len, "unknown activation %d", (int)l->act);
        *field_out = "axis";
        if (l->act == EIE_ACT_SOFTMAX ? (l->axis < 1 || (uint32_t)l->axis >= x->rank)
                                      : l->axis != 0)
            return why_set(why, why_len, "axis %d for %s on %s (softmax: 1..rank-1, others 0)",
                           l->axis, eie_act_name(l->act), a);
        *out = *x;
        break;
    default:
        *field_out = "kind";
        return why_set(why, why_len, "unknown node kind %d", (int)l->kind);
    }
    *field_out = "output";
    return eie_shape_check(out, lim, why, why_len);
}

eie_shape_t eie_lstm_state_shape(const eie_shape_t *x, uint32_t hidden)
{
    return (eie_shape_t){.rank = 3, .dims = {1, x->rank == 3 ? x->dims[1] : 1, hidden}};
}

int eie_model_is_lstm_initial(const eie_model_t *m, uint32_t t)
{
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == EIE_LAYER_LSTM &&
            (m->layers[i].lstm.initial_in[0] == t || m->layers[i].lstm.initial_in[1] == t))
            return 1;
    return 0;
}

/* The public form (model.h): graph input i is a fed LSTM state, not a per-step input. */
int eie_model_input_is_state(const eie_model_t *model, size_t i)
{
    return i < model->n_inputs && eie_model_is_lstm_initial(model, model->inputs[i]);
}

int eie_model_output_is_state(const eie_model_t *model, size_t i)
{
    if (i >= model->n_outputs)
        return 0;
    for (size_t k = 0; k < model->n_layers; k++) {
        const eie_layer_t *l = &model->layers[k];
        if (l->kind == EIE_LAYER_LSTM &&
            (l->lstm.state[0] == model->outputs[i] || l->lstm.state[1] == model->outputs[i]))
            return 1;
    }
    return 0;
}

int eie_graph_check_inputs(const eie_model_t *m, char *why, size_t why_len)
{
    /* which tensors are a fed initial state, marked once: a graph may hold many nodes and
       inputs, and every node input is looked up */
    uint8_t *state = calloc(m->n_tensors ? m->n_tensors : 1, 1);
    if (state == NULL)
        return why_set(why, why_len, "out of memory checking the inputs");
    for (size_t i = 0; i < m->n_layers; i++)
        for (int k = 0; m->layers[i].kind == EIE_LAYER_LSTM && k < 2; k++)
            if (m->layers[i].lstm.initial_in[k] < m->n_tensors)
                state[m->layers[i].lstm.initial_in[k]] = 1;
    int rc = 0;
    const eie_tensor_t *ref = NULL;
    for (size_t i = 0; i < m->n_inputs && rc == 0; i++) {
        const eie_tensor_t *x = &m->tensors[m->inputs[i]];
        if (state[m->inputs[i]])
            continue;
        if (ref == NULL)
            ref = x;
        else if (x->shape.dims[0] != ref->shape.dims[0])
            rc = why_set(why, why_len,
                         "input \"%s\" has batch dimension %" PRId64 " but \"%s\" has %" PRId64,
                         x->name, x->shape.dims[0], ref->name, ref->shape.dims[0]);
    }
    /* An initial state is one row a run, not one a step: only an lstm's state slots take it. */
    for (size_t i = 0; i < m->n_layers && rc == 0; i++) {
        const eie_layer_t *l = &m->layers[i];
        uint32_t per_step = l->kind == EIE_LAYER_LSTM ? 1 : l->n_inputs;
        for (uint32_t k = 0; k < per_step && rc == 0; k++)
            if (state[l->inputs[k]])
                rc = why_set(why, why_len,
                             "node %zu (%s) reads \"%s\" per step, but it is an lstm's "
                             "initial state (one row a run)",
                             i, eie_layer_kind_name(l->kind), m->tensors[l->inputs[k]].name);
    }
    free(state);
    return rc;
}

int eie_model_is_lstm_state(const eie_model_t *m, uint32_t t)
{
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == EIE_LAYER_LSTM &&
            (m->layers[i].lstm.state[0] == t || m->layers[i].lstm.state[1] == t))
            return 1;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

eie_status_t eie_model_chain_graph(eie_model_t *m, eie_error_t *err)
{
    size_t n = m->n_layers;
    m->tensors = calloc(n + 1, sizeof *m->tensors);
    m->inputs = malloc(sizeof *m->inputs);
    m->outputs = malloc(sizeof *m->outputs);
    if (m->tensors == NULL || m->inputs == NULL || m->outputs == NULL)
        goto nomem;
    m->cap_tensors = n + 1;
    m->n_tensors = n + 1;
    m->inputs[0] = 0;
    m->outputs[0] = (uint32_t)n;
    m->n_inputs = m->n_outputs = m->cap_inputs = m->cap_outputs = 1;
    uint32_t dim = m->input_dim;
    for (size_t t = 0; t <= n; t++) {
        char tmp[32];
        const char *name = tmp;
        if (t == 0)
            name = m->input_name;
        else if (t == n)
            name = m->output_name;
        else
            snprintf(tmp, sizeof tmp, "layer%zu", t - 1);
        if (t > 0 && m->layers[t - 1].kind == EIE_LAYER_FC)
            dim = m->layers[t - 1].fc.rows;
        m->tensors[t].name = dup_str(name);
        m->tensors[t].dtype = EIE_DTYPE_FP32;
        m->tensors[t].shape = (eie_shape_t){.rank = 2, .dims = {-1, dim}};
        if (m->tensors[t].name == NULL)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        eie_layer_t *l = &m->layers[i];
        if ((l->name = dup_str("")) == NULL || (l->inputs = malloc(sizeof *l->inputs)) == NULL)
            goto nomem;
        l->n_inputs = 1;
        l->inputs[0] = (uint32_t)i;
        l->output = (uint32_t)i + 1;
        if (l->kind == EIE_LAYER_ACTIVATION && l->act == EIE_ACT_SOFTMAX)
            l->axis = 1;
    }
    return EIE_STATUS_OK;
nomem:
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
}

eie_status_t eie_model_graph_summary(eie_model_t *m, eie_error_t *err)
{
    const eie_tensor_t *in = &m->tensors[m->inputs[0]];
    const eie_tensor_t *out = &m->tensors[m->outputs[0]];
    free(m->input_name);
    free(m->output_name);
    m->input_name = dup_str(in->name);
    m->output_name = dup_str(out->name);
    if (m->input_name == NULL || m->output_name == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
    uint64_t ni = eie_shape_sample_elements(&in->shape);
    uint64_t no = eie_shape_sample_elements(&out->shape);
    m->input_dim = ni > UINT32_MAX ? UINT32_MAX : (uint32_t)ni;
    m->output_dim = no > UINT32_MAX ? UINT32_MAX : (uint32_t)no;
    return EIE_STATUS_OK;
}

/*
 * The rows [r0, r0 + nr) of fc as a matrix of their own (a group of a
 * grouped convolution): entries re-encoded over the smaller matrix, fillers
 * where a run exceeds 15. codebook and bias are borrowed from fc.
 */
int eie_fc_rows(const eie_fc_t *fc, uint32_t r0, uint32_t nr, eie_fc_t *out)
{
    memset(out, 0, sizeof *out);
    out->rows = nr;
    out->cols = fc->cols;
    out->code_bits = fc->code_bits;
    out->storage = fc->storage;
    out->codebook = fc->codebook;
    out->bias = fc->bias + r0;
    uint64_t cap = fc->entries + fc->nnz + 1, e = 0, k = 0, kin = 0;
    out->codes = malloc(cap);
    out->runs = malloc(cap);
    out->values = fc->storage == EIE_STORAGE_EXACT ? malloc((fc->nnz + 1) * sizeof(float)) : NULL;
    if (!out->codes || !out->runs || (fc->storage == EIE_STORAGE_EXACT && !out->values))
        return -1;
    uint64_t pos = (uint64_t)-1, prev = (uint64_t)-1;
    for (uint64_t q = 0; q < fc->entries; q++) {
        pos += (uint64_t)fc->runs[q] + 1;
        if (fc->codes[q] == 0)
            continue;
        float v = fc->storage == EIE_STORAGE_EXACT ? fc->values[kin] : 0.0f;
        kin++;
        uint32_t row = (uint32_t)(pos % fc->rows), col = (uint32_t)(pos / fc->rows);
        if (row < r0 || row >= r0 + nr)
            continue;
        uint64_t p2 = (uint64_t)col * nr + (row - r0);
        uint64_t gap = p2 - prev - 1;
        while (gap > EIE_RUN_MAX && e < cap) {
            out->codes[e] = 0;
            out->runs[e++] = EIE_RUN_MAX;
            gap -= EIE_RUN_MAX + 1;
        }
        if (e >= cap) {
            /* More fillers than the bound: enlarge (sparse groups of tall matrices). */
            cap = cap * 2 + gap / (EIE_RUN_MAX + 1) + 2;
            uint8_t *c2 = realloc(out->codes, cap), *r2 = c2 ? realloc(out->runs, cap) : NULL;
            if (c2 == NULL || r2 == NULL) {
                if (c2 != NULL)
                    out->codes = c2;
                return -1;
            }
            out->codes = c2;
            out->runs = r2;
            while (gap > EIE_RUN_MAX) {
                out->codes[e] = 0;
                out->runs[e++] = EIE_RUN_MAX;
                gap -= EIE_RUN_MAX + 1;
            }
        }
        out->codes[e] = fc->codes[q];
        out->runs[e++] = (uint8_t)gap;
        if (out->values != NULL)
            out->values[k] = v;
        k++;
        prev = p2;
    }
    out->entries = e;
    out->nnz = k;
    return 0;
}

void eie_fc_rows_free(eie_fc_t *f)
{
    free(f->codes);
    free(f->runs);
    free(f->values);
}


uint32_t eie_lstm_pe_rows(uint32_t hidden, unsigned n_pes)
{
    return 4 * ((hidden + n_pes - 1) / n_pes) * n_pes;
}

uint32_t eie_lstm_pe_row(uint32_t r, uint32_t hidden, unsigned n_pes)
{
    uint32_t j = r / 4, g = r % 4, units = (hidden + n_pes - 1) / n_pes;
    return (g * units + j / n_pes) * n_pes + j % n_pes;
}

typedef struct perm_entry {
    uint64_t pos;
    uint8_t code;
    float value;
} perm_entry_t;

static int perm_cmp(const void *a, const void *b)
{
    uint64_t x = ((const perm_entry_t *)a)->pos, y = ((const perm_entry_t *)b)->pos;
    return x < y ? -1 : x > y;
}

int eie_fc_lstm_rows(const eie_fc_t *fc, unsigned n_pes, eie_fc_t *out)
{
    uint32_t hidden = fc->rows / 4, rows = eie_lstm_pe_rows(hidden, n_pes);
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = fc->cols;
    out->code_bits = fc->code_bits;
    out->storage = fc->storage;
    out->codebook = fc->codebook;
    perm_entry_t *pe = malloc((fc->nnz + 1) * sizeof *pe);
    out->bias = calloc(rows, sizeof(float));
    /* every gap needs at most gap/16 fillers: bounded by the new matrix's size / 16 */
    uint64_t cap = fc->nnz + (uint64_t)rows * fc->cols / (EIE_RUN_MAX + 1) + 1;
    out->codes = malloc(cap);
    out->runs = malloc(cap);
    out->values = fc->storage == EIE_STORAGE_EXACT ? malloc((fc->nnz + 1) * sizeof(float)) : NULL;
    if (!pe || !out->bias || !out->codes || !out->runs ||
        (fc->storage == EIE_STORAGE_EXACT && !out->values)) {
        free(pe);
        return -1;
    }
    for (uint32_t r = 0; r < fc->rows; r++)
        out->bias[eie_lstm_pe_row(r, hidden, n_pes)] = fc->bias[r];
    uint64_t pos = (uint64_t)-1, k = 0;
    for (uint64_t q = 0; q < fc->entries; q++) {
        pos += (uint64_t)fc->runs[q] + 1;
        if (fc->codes[q] == 0)
            continue;
        uint32_t row = (uint32_t)(pos % fc->rows), col = (uint32_t)(pos / fc->rows);
        pe[k].pos = (uint64_t)col * rows + eie_lstm_pe_row(row, hidden, n_pes);
        pe[k].code = fc->codes[q];
        pe[k].value = fc->storage == EIE_STORAGE_EXACT ? fc->values[k] : 0.0f;
        k++;
    }
    qsort(pe, k, sizeof *pe, perm_cmp);
    uint64_t e = 0, prev = (uint64_t)-1;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t gap = pe[i].pos - prev - 1;
        while (gap > EIE_RUN_MAX) {
            out->codes[e] = 0;
            out->runs[e++] = EIE_RUN_MAX;
            gap -= EIE_RUN_MAX + 1;
        }
        out->codes[e] = pe[i].code;
        out->runs[e++] = (uint8_t)gap;
        if (out->values != NULL)
            out->values[i] = pe[i].value;
        prev = pe[i].pos;
    }
    out->entries = e;
    out->nnz = k;
    free(pe);
    return 0;
}

void eie_fc_lstm_rows_free(eie_fc_t *f)
{
    free(f->bias);
    eie_fc_rows_free(f);
}
