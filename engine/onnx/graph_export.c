/*
 * ONNX export of a model with its names and full shapes: each node becomes
 * the ONNX op that eie_onnx_import_graph_* turns back into the same node,
 * sparse weights decoded to dense float initializers, so import -> export ->
 * import gives the same .eie byte for byte.
 */
#include "onnx/onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eie/eie.h"

/* Every allocation of one export, freed together. */
typedef struct arena {
    void **p;
    size_t n, cap;
    int failed;
} arena_t;

static void *ar_alloc(arena_t *a, size_t size)
{
    if (a->failed)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        void **grown = realloc(a->p, cap * sizeof *grown);
        if (grown == NULL) {
            a->failed = 1;
            return NULL;
        }
        a->p = grown;
        a->cap = cap;
    }
    void *q = calloc(1, size ? size : 1);
    if (q == NULL) {
        a->failed = 1;
        return NULL;
    }
    return a->p[a->n++] = q;
}

static char *ar_str(arena_t *a, const char *s)
{
    char *q = ar_alloc(a, strlen(s) + 1);
    if (q)
        memcpy(q, s, strlen(s) + 1);
    return q;
}

typedef struct gexp {
    const eie_model_t *m;
    arena_t a;
    Onnx__NodeProto **nodes;
    size_t n_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits;
} gexp_t;

static const char *tensor_name(const gexp_t *ex, size_t t)
{
    eie_tensor_info_t ti;
    return eie_model_tensor_info(ex->m, t, &ti) == EIE_STATUS_OK ? ti.name : "";
}

/* base + suffix, made unique among the model's tensors and the initializers so far. */
static char *init_name(gexp_t *ex, const char *base, const char *suffix)
{
    char buf[512];
    for (unsigned k = 0;; k++) {
        if (k == 0)
            snprintf(buf, sizeof buf, "%s%s", base, suffix);
        else
            snprintf(buf, sizeof buf, "%s%s_%u", base, suffix, k);
        int taken = eie_model_find_tensor(ex->m, buf) >= 0;
        for (size_t i = 0; i < ex->n_inits && !taken; i++)
            taken = strcmp(ex->inits[i]->name, buf) == 0;
        if (!taken)
            return ar_str(&ex->a, buf);
    }
}

/* An initializer of float data (copied) or int64 data (copied) with the given dims. */
static char *add_init(gexp_t *ex, const char *base, const char *suffix, const float *f,
                      const int64_t *i64, size_t count, const int64_t *dims, size_t rank)
{
    Onnx__TensorProto *t = ar_alloc(&ex->a, sizeof *t);
    int64_t *d = ar_alloc(&ex->a, rank * sizeof *d);
    size_t bytes = count * (f ? sizeof *f : sizeof *i64);
    uint8_t *raw = ar_alloc(&ex->a, bytes);
    char *name = t && d && raw ? init_name(ex, base, suffix) : NULL;
    if (name == NULL)
        return NULL;
    onnx__tensor_proto__init(t);
    t->name = name;
    t->has_data_type = 1;
    t->data_type = f ? EIE_ONNX_FLOAT : EIE_ONNX_INT64;
    memcpy(d, dims, rank * sizeof *d);
    t->n_dims = rank;
    t->dims = d;
    /* raw_data is little-endian, as is every host eie builds on. */
    memcpy(raw, f ? (const void *)f : (const void *)i64, bytes);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = raw;
    ex->inits[ex->n_inits++] = t;
    return name;
}

static Onnx__AttributeProto *attr_int(gexp_t *ex, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = ar_alloc(&ex->a, sizeof *a);
    if (a == NULL)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_ints(gexp_t *ex, const char *name, const int64_t *v, size_t n)
{
    Onnx__AttributeProto *a = ar_alloc(&ex->a, sizeof *a);
    int64_t *copy = ar_alloc(&ex->a, n * sizeof *copy);
    if (a == NULL || copy == NULL)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(copy, v, n * sizeof *copy);
    a->n_ints = n;
    a->ints = copy;
    return a;
}

static void window_attrs(gexp_t *ex, Onnx__AttributeProto **at, size_t *n, uint32_t kh, uint32_t kw,
                         uint32_t sh, uint32_t sw, uint32_t pt, uint32_t pl, uint32_t pb,
                         uint32_t pr)
{
    int64_t k[2] = {kh, kw}, s[2] = {sh, sw}, p[4] = {pt, pl, pb, pr};
    at[(*n)++] = attr_ints(ex, "kernel_shape", k, 2);
    at[(*n)++] = attr_ints(ex, "strides", s, 2);
    at[(*n)++] = attr_ints(ex, "pads", p, 4);
}

/*
 * An lstm node as ONNX's LSTM: the unit-major [W | R] rows back to W [1, 4H, I]
 * and R [1, 4H, H] in gate blocks i, o, f, c; B = [bias, -0.0] so that the
 * importer's Wb + Rb gives the bias back bit for bit.
 */
static eie_status_t export_lstm(gexp_t *ex, size_t i, const eie_layer_info_t *li,
                                const char *base, char **in, size_t *n_in, char **out,
                                size_t *n_out, Onnx__AttributeProto **at, size_t *n_at,
                                eie_error_t *err)
{
    uint64_t H = li->hidden_size, I = li->cols - H, cols = li->cols;
    eie_tensor_info_t xi;
    eie_model_tensor_info(ex->m, li->inputs[0], &xi);
    uint64_t N = (uint64_t)xi.shape.dims[1];
    float *dense = malloc(4 * H * cols * sizeof *dense);
    float *W = malloc((4 * H * I + 1) * sizeof *W), *R = malloc(4 * H * H * sizeof *R);
    float *B = malloc(8 * H * sizeof *B);
    if (!dense || !W || !R || !B) {
        free(dense);
        free(W);
        free(R);
        free(B);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
    }
    eie_model_fc_dense(ex->m, i, dense);
    const float *bias = eie_model_fc_bias(ex->m, i);
    for (uint64_t j = 0; j < H; j++)
        for (uint64_t g = 0; g < 4; g++) {
            uint64_t src = 4 * j + g, dst = g * H + j;
            memcpy(W + dst * I, dense + src * cols, I * sizeof *W);
            memcpy(R + dst * H, dense + src * cols + I, H * sizeof *R);
            B[dst] = bias[src];
            B[4 * H + dst] = -0.0f;
        }
    int64_t wd[3] = {1, (int64_t)(4 * H), (int64_t)I}, rd[3] = {1, (int64_t)(4 * H), (int64_t)H};
    int64_t bd[2] = {1, (int64_t)(8 * H)}, sd[3] = {1, (int64_t)N, (int64_t)H};
    in[(*n_in)++] = add_init(ex, base, ".W", W, NULL, 4 * H * I, wd, 3);
    in[(*n_in)++] = add_init(ex, base, ".R", R, NULL, 4 * H * H, rd, 3);
    in[(*n_in)++] = add_init(ex, base, ".B", B, NULL, 8 * H, bd, 2);
    free(dense);
    free(W);
    free(R);
    free(B);
    /* the initial state: stored (an initializer), fed by a graph input (its name), or none */
    const float *h0 = eie_model_lstm_initial(ex->m, i, 0), *c0 = eie_model_lstm_initial(ex->m, i, 1);
    uint32_t hin = li->lstm_initial_input[0], cin = li->lstm_initial_input[1];
    if (h0 || c0 || hin != UINT32_MAX || cin != UINT32_MAX) {
        in[(*n_in)++] = ar_str(&ex->a, ""); /* sequence_lens: every sequence is T long */
        in[(*n_in)++] = h0                  ? add_init(ex, base, ".initial_h", h0, NULL, N * H, sd, 3)
                        : hin != UINT32_MAX ? ar_str(&ex->a, tensor_name(ex, hin))
                                            : ar_str(&ex->a, "");
        if (c0)
            in[(*n_in)++] = add_init(ex, base, ".initial_c", c0, NULL, N * H, sd, 3);
        else if (cin != UINT32_MAX)
            in[(*n_in)++] = ar_str(&ex->a, tensor_name(ex, cin));
    }
    /* Y_c is only ever written after Y_h (FORMAT.md) */
    for (int k = 0; k < 2 && li->lstm_state[k] != UINT32_MAX; k++) {
        out[1 + k] = ar_str(&ex->a, tensor_name(ex, li->lstm_state[k]));
        *n_out = (size_t)k + 2;
    }
    at[(*n_at)++] = attr_int(ex, "hidden_size", (int64_t)H);
    return EIE_STATUS_OK;
}

/* Appends node with its inputs, outputs and attributes. */
static eie_status_t emit(gexp_t *ex, Onnx__NodeProto *node, char **in, size_t n_in, char **out,
                         size_t n_out, Onnx__AttributeProto **at, size_t n_at, eie_error_t *err)
{
    if (ex->a.failed)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
    node->n_input = n_in;
    node->input = in;
    node->n_output = n_out;
    node->output = out;
    node->n_attribute = n_at;
    node->attribute = at;
    ex->nodes[ex->n_nodes++] = node;
    return EIE_STATUS_OK;
}

/* An fc over a rank-3 or wider input (an LSTM's outputs, step by step) has
 * no Gemm form, which takes [N, features]: it goes out as MatMul over the
 * last axis with the weights transposed ([cols, rows]), then Add of the
 * bias, the pair the importer takes back as one fc node. */
static eie_status_t export_matmul(gexp_t *ex, size_t i, const eie_layer_info_t *li,
                                  Onnx__NodeProto *node, char **in, char **out, const char *base,
                                  eie_error_t *err)
{
    size_t n = (size_t)li->rows * li->cols;
    float *w = malloc((n ? n : 1) * sizeof *w), *wt = malloc((n ? n : 1) * sizeof *wt);
    if (w == NULL || wt == NULL) {
        free(w);
        free(wt);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
    }
    eie_model_fc_dense(ex->m, i, w);
    for (size_t r = 0; r < li->rows; r++)
        for (size_t c = 0; c < li->cols; c++)
            wt[c * li->rows + r] = w[r * li->cols + c];
    int64_t wd[2] = {li->cols, li->rows}, bd[1] = {li->rows};
    in[1] = add_init(ex, base, ".weight", wt, NULL, n, wd, 2);
    free(w);
    free(wt);
    char **add_in = ar_alloc(&ex->a, 2 * sizeof *add_in);
    char **add_out = ar_alloc(&ex->a, sizeof *add_out);
    Onnx__NodeProto *add = ar_alloc(&ex->a, sizeof *add);
    char *mm = init_name(ex, base, ".matmul"); /* MatMul's output, Add's input */
    if (add_in == NULL || add_out == NULL || add == NULL || mm == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
    node->op_type = "MatMul";
    add_out[0] = out[0];
    out[0] = mm;
    eie_status_t st = emit(ex, node, in, 2, out, 1, NULL, 0, err);
    if (st != EIE_STATUS_OK)
        return st;
    onnx__node_proto__init(add);
    add->op_type = "Add";
    char buf[512];
    snprintf(buf, sizeof buf, "%s.bias", base); /* base: the node's name, else its output's */
    add->name = ar_str(&ex->a, buf);
    add_in[0] = mm;
    add_in[1] = add_init(ex, base, ".bias", eie_model_fc_bias(ex->m, i), NULL, li->rows, bd, 1);
    return emit(ex, add, add_in, 2, add_out, 1, NULL, 0, err);
}

static eie_status_t export_node(gexp_t *ex, size_t i, eie_error_t *err)
{
    eie_layer_info_t li;
    eie_status_t st = eie_model_layer_info(ex->m, i, &li);
    if (st != EIE_STATUS_OK)
        return eie_error_set(err, st, "node %zu: no layer info", i);
    Onnx__NodeProto *node = ar_alloc(&ex->a, sizeof *node);
    char **in = ar_alloc(&ex->a, (li.n_inputs + 6) * sizeof *in);
    char **out = ar_alloc(&ex->a, 3 * sizeof *out);
    size_t n_out = 1;
    Onnx__AttributeProto **at = ar_alloc(&ex->a, 8 * sizeof *at);
    if (node == NULL || in == NULL || out == NULL || at == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
    onnx__node_proto__init(node);
    const char *name = eie_model_layer_name(ex->m, i);
    node->name = ar_str(&ex->a, name ? name : "");
    for (size_t k = 0; k < li.n_inputs; k++)
        in[k] = ar_str(&ex->a, tensor_name(ex, li.inputs[k]));
    out[0] = ar_str(&ex->a, tensor_name(ex, li.output));
    /* an lstm's fed initial state goes to its own ONNX slots (export_lstm) */
    size_t n_in = li.kind == EIE_LAYER_LSTM ? 1 : li.n_inputs, n_at = 0;
    /* Initializers are named after the node, or its output when it has no name. */
    const char *base = name && name[0] ? name : tensor_name(ex, li.output);
    eie_tensor_info_t xin;
    eie_model_tensor_info(ex->m, li.inputs[0], &xin);
    if (li.kind == EIE_LAYER_FC && xin.shape.rank > 2)
        return export_matmul(ex, i, &li, node, in, out, base, err);
    switch (li.kind) {
    case EIE_LAYER_FC:
    case EIE_LAYER_CONV2D: {
        size_t n = (size_t)li.rows * li.cols;
        float *w = malloc((n ? n : 1) * sizeof *w);
        if (w == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
        eie_model_fc_dense(ex->m, i, w);
        int64_t wd[4] = {li.rows, li.cols, 1, 1}, bd[1] = {li.rows};
        size_t wr = 2;
        if (li.kind == EIE_LAYER_CONV2D) {
            const eie_conv2d_params_t *c = &li.conv;
            wd[1] = li.cols / (c->kernel_h * c->kernel_w);
            wd[2] = c->kernel_h;
            wd[3] = c->kernel_w;
            wr = 4;
        }
        in[n_in++] = add_init(ex, base, ".weight", w, NULL, n, wd, wr);
        free(w);
        in[n_in++] = add_init(ex, base, ".bias", eie_model_fc_bias(ex->m, i), NULL, li.rows, bd, 1);
        if (li.kind == EIE_LAYER_FC) {
            node->op_type = "Gemm";
            at[n_at++] = attr_int(ex, "transB", 1);
        } else {
            const eie_conv2d_params_t *c = &li.conv;
            int64_t dil[2] = {c->dilation_h, c->dilation_w};
            node->op_type = "Conv";
            window_attrs(ex, at, &n_at, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w,
                         c->pad_top, c->pad_left, c->pad_bottom, c->pad_right);
            at[n_at++] = attr_ints(ex, "dilations", dil, 2);
            at[n_at++] = attr_int(ex, "group", c->groups);
        }
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D: {
        const eie_pool2d_params_t *p = &li.pool;
        node->op_type = li.kind == EIE_LAYER_MAXPOOL2D ? "MaxPool" : "AveragePool";
        window_attrs(ex, at, &n_at, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top,
                     p->pad_left, p->pad_bottom, p->pad_right);
        at[n_at++] = attr_int(ex, "ceil_mode", p->ceil_mode);
        if (li.kind == EIE_LAYER_AVGPOOL2D)
            at[n_at++] = attr_int(ex, "count_include_pad", p->count_include_pad);
        break;
    }
    case EIE_LAYER_GLOBAL_AVGPOOL:
        node->op_type = "GlobalAveragePool";
        break;
    case EIE_LAYER_ADD:
        node->op_type = "Add";
        break;
    case EIE_LAYER_CONCAT:
        node->op_type = "Concat";
        at[n_at++] = attr_int(ex, "axis", li.axis);
        break;
    case EIE_LAYER_FLATTEN:
        node->op_type = "Flatten";
        at[n_at++] = attr_int(ex, "axis", 1);
        break;
    case EIE_LAYER_RESHAPE: {
        eie_tensor_info_t ti;
        eie_model_tensor_info(ex->m, li.output, &ti);
        int64_t shape[EIE_MAX_RANK], rank = ti.shape.rank;
        /* 0 copies the batch dimension, whatever its size. */
        shape[0] = 0;
        for (uint32_t d = 1; d < ti.shape.rank; d++)
            shape[d] = ti.shape.dims[d];
        node->op_type = "Reshape";
        in[n_in++] = add_init(ex, base, ".shape", NULL, shape, ti.shape.rank, &rank, 1);
        break;
    }
    case EIE_LAYER_ACTIVATION:
        switch (li.act) {
        case EIE_ACT_RELU:
            node->op_type = "Relu";
            break;
        case EIE_ACT_SIGMOID:
            node->op_type = "Sigmoid";
            break;
        case EIE_ACT_TANH:
            node->op_type = "Tanh";
            break;
        case EIE_ACT_SOFTMAX:
            node->op_type = "Softmax";
            at[n_at++] = attr_int(ex, "axis", li.axis);
            break;
        default:
            node->op_type = "Identity";
            break;
        }
        break;
    case EIE_LAYER_LSTM:
        if ((st = export_lstm(ex, i, &li, base, in, &n_in, out, &n_out, at, &n_at, err)) != 0)
            return st;
        node->op_type = "LSTM";
        break;
    default:
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED, "node %zu: kind %d has no ONNX op", i,
                             (int)li.kind);
    }
    return emit(ex, node, in, n_in, out, n_out, at, n_at, err);
}

/* A graph input or output: FP32 with its full shape, the batch -1 as "N". */
static Onnx__ValueInfoProto *value_info(gexp_t *ex, const eie_tensor_info_t *ti)
{
    Onnx__ValueInfoProto *v = ar_alloc(&ex->a, sizeof *v);
    Onnx__TypeProto *t = ar_alloc(&ex->a, sizeof *t);
    Onnx__TypeProto__Tensor *tt = ar_alloc(&ex->a, sizeof *tt);
    Onnx__TensorShapeProto *s = ar_alloc(&ex->a, sizeof *s);
    Onnx__TensorShapeProto__Dimension **dims = ar_alloc(&ex->a, ti->shape.rank * sizeof *dims);
    if (!v || !t || !tt || !s || !dims)
        return NULL;
    for (uint32_t d = 0; d < ti->shape.rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = ar_alloc(&ex->a, sizeof *dim);
        if (dim == NULL)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dim);
        if (ti->shape.dims[d] < 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = "N";
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = ti->shape.dims[d];
        }
        dims[d] = dim;
    }
    onnx__tensor_shape_proto__init(s);
    s->n_dim = ti->shape.rank;
    s->dim = dims;
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = EIE_ONNX_FLOAT;
    tt->shape = s;
    onnx__type_proto__init(t);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    onnx__value_info_proto__init(v);
    v->name = ar_str(&ex->a, ti->name);
    v->type = t;
    return v->name ? v : NULL;
}

eie_status_t eie_onnx_export_model_memory(const eie_model_t *model, uint8_t **data_out,
                                          size_t *len_out, eie_error_t *err)
{
    gexp_t ex = {.m = model};
    eie_status_t st = EIE_STATUS_NO_MEMORY;
    size_t nl = eie_model_layer_count(model);
    size_t ni = eie_model_input_count(model), no = eie_model_output_count(model);
    ex.nodes = ar_alloc(&ex.a, 2 * nl * sizeof *ex.nodes); /* an fc may take MatMul + Add */
    ex.inits = ar_alloc(&ex.a, 5 * nl * sizeof *ex.inits); /* an lstm: W, R, B, h0, c0 */
    Onnx__ValueInfoProto **vin = ar_alloc(&ex.a, ni * sizeof *vin);
    Onnx__ValueInfoProto **vout = ar_alloc(&ex.a, no * sizeof *vout);
    if (ex.a.failed)
        goto fail;
    for (size_t i = 0; i < nl; i++)
        if ((st = export_node(&ex, i, err)) != EIE_STATUS_OK)
            goto done;
    for (size_t i = 0; i < ni + no; i++) {
        eie_tensor_info_t ti;
        if (i < ni)
            eie_model_input_info(model, i, &ti);
        else
            eie_model_output_info(model, i - ni, &ti);
        Onnx__ValueInfoProto *v = value_info(&ex, &ti);
        if (v == NULL)
            goto fail;
        if (i < ni)
            vin[i] = v;
        else
            vout[i - ni] = v;
    }
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)eie_model_name(model);
    g.n_node = ex.n_nodes;
    g.node = ex.nodes;
    g.n_initializer = ex.n_inits;
    g.initializer = ex.inits;
    g.n_input = ni;
    g.input = vin;
    g.n_output = no;
    g.output = vout;
    Onnx__OperatorSetIdProto opset, *popset = &opset;
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.n_opset_import = 1;
    m.opset_import = &popset;
    m.producer_name = "eie";
    m.producer_version = EIE_VERSION_STRING;
    m.doc_string = (char *)eie_model_description(model);
    m.graph = &g;
    size_t len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        goto fail;
    onnx__model_proto__pack(&m, buf);
    *data_out = buf;
    *len_out = len;
    st = EIE_STATUS_OK;
    goto done;
fail:
    st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory exporting ONNX");
done:
    for (size_t i = 0; i < ex.a.n; i++)
        free(ex.a.p[i]);
    free(ex.a.p);
    return st;
}

eie_status_t eie_onnx_export_model_file(const eie_model_t *model, const char *path,
                                        eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st = eie_onnx_export_model_memory(model, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        free(data);
        return eie_error_set(err, EIE_STATUS_IO, "cannot create %s", tmp);
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    free(data);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return eie_error_set(err, EIE_STATUS_IO, "cannot write %s", path);
    }
    return EIE_STATUS_OK;
}
