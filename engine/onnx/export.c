/*
 * ONNX export: every FC layer becomes a dense Gemm (transB = 1, so B is the
 * row-major rows x cols matrix as eie stores it) with its bias as C, every
 * activation its operator. Opset 13, one input (batch, input_dim).
 */
#include "onnx/onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct exporter {
    Onnx__NodeProto *nodes;
    Onnx__NodeProto **node_ptrs;
    Onnx__TensorProto *inits;
    Onnx__TensorProto **init_ptrs;
    Onnx__AttributeProto *attrs;
    Onnx__AttributeProto **attr_ptrs;
    char **strings; /* every string allocated, freed at the end */
    size_t n_strings;
    char **io;      /* node input/output arrays */
    size_t n_io;
} exporter_t;

static char *keep(exporter_t *ex, char *s)
{
    if (s != NULL)
        ex->strings[ex->n_strings++] = s;
    return s;
}

/* "<prefix><k><suffix>", kept for freeing. */
static char *fmt(exporter_t *ex, const char *prefix, size_t k, const char *suffix)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s%zu%s", prefix, k, suffix);
    return keep(ex, strdup(buf));
}

static const char *op_of(eie_act_t act)
{
    switch (act) {
    case EIE_ACT_RELU:
        return "Relu";
    case EIE_ACT_SIGMOID:
        return "Sigmoid";
    case EIE_ACT_TANH:
        return "Tanh";
    case EIE_ACT_SOFTMAX:
        return "Softmax";
    default:
        return "Identity";
    }
}

static void init_tensor(Onnx__TensorProto *t, char *name, const float *data, size_t n, int64_t *dims,
                        size_t rank)
{
    onnx__tensor_proto__init(t);
    t->name = name;
    t->has_data_type = 1;
    t->data_type = EIE_ONNX_FLOAT;
    t->n_dims = rank;
    t->dims = dims;
    t->has_raw_data = 1;
    t->raw_data.len = n * sizeof(float);
    t->raw_data.data = (uint8_t *)data;
}

eie_status_t eie_onnx_export_memory(const eie_mlp_t *mlp, const char *graph_name,
                                    const char *input_name, const char *output_name,
                                    uint8_t **data_out, size_t *len_out, eie_error_t *err)
{
    size_t nl = mlp->n_layers;
    size_t slots = nl ? nl : 1;
    exporter_t ex = {0};
    eie_status_t st = EIE_STATUS_NO_MEMORY;
    /* Shapes of the initializers live here: (rows, cols) and (rows) per layer. */
    int64_t *dims = calloc(3 * slots, sizeof *dims);
    ex.nodes = calloc(slots, sizeof *ex.nodes);
    ex.node_ptrs = calloc(slots, sizeof *ex.node_ptrs);
    ex.inits = calloc(2 * slots, sizeof *ex.inits);
    ex.init_ptrs = calloc(2 * slots, sizeof *ex.init_ptrs);
    ex.attrs = calloc(slots, sizeof *ex.attrs);
    ex.attr_ptrs = calloc(slots, sizeof *ex.attr_ptrs);
    ex.strings = calloc(6 * slots + 8, sizeof *ex.strings);
    ex.io = calloc(4 * slots, sizeof *ex.io);
    uint8_t *buf = NULL;
    if (!dims || !ex.nodes || !ex.node_ptrs || !ex.inits || !ex.init_ptrs || !ex.attrs ||
        !ex.attr_ptrs || !ex.strings || !ex.io)
        goto done;

    size_t n_nodes = 0, n_inits = 0;
    char *cur = keep(&ex, strdup(input_name));
    if (cur == NULL)
        goto done;
    if (nl == 0) {
        /* An empty network is the identity. */
        Onnx__NodeProto *node = &ex.nodes[n_nodes];
        onnx__node_proto__init(node);
        node->op_type = "Identity";
        node->n_input = node->n_output = 1;
        node->input = &ex.io[ex.n_io];
        ex.io[ex.n_io++] = cur;
        node->output = &ex.io[ex.n_io];
        ex.io[ex.n_io++] = (char *)output_name;
        ex.node_ptrs[n_nodes++] = node;
        cur = (char *)output_name;
    }
    for (size_t i = 0; i < nl; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        Onnx__NodeProto *node = &ex.nodes[n_nodes];
        onnx__node_proto__init(node);
        char *out = i + 1 == nl ? (char *)output_name : fmt(&ex, "t", i, "");
        if (out == NULL)
            goto done;
        node->name = fmt(&ex, "layer", i, "");
        node->input = &ex.io[ex.n_io];
        ex.io[ex.n_io++] = cur;
        node->n_input = 1;
        if (l->kind == EIE_LAYER_FC) {
            char *wn = fmt(&ex, "layer", i, ".weight"), *bn = fmt(&ex, "layer", i, ".bias");
            if (wn == NULL || bn == NULL)
                goto done;
            dims[3 * i] = l->rows;
            dims[3 * i + 1] = l->cols;
            dims[3 * i + 2] = l->rows;
            init_tensor(&ex.inits[n_inits], wn, l->w, (size_t)l->rows * l->cols, &dims[3 * i], 2);
            ex.init_ptrs[n_inits] = &ex.inits[n_inits];
            n_inits++;
            init_tensor(&ex.inits[n_inits], bn, l->b, l->rows, &dims[3 * i + 2], 1);
            ex.init_ptrs[n_inits] = &ex.inits[n_inits];
            n_inits++;
            ex.io[ex.n_io++] = wn;
            ex.io[ex.n_io++] = bn;
            node->n_input = 3;
            node->op_type = "Gemm";
            Onnx__AttributeProto *a = &ex.attrs[i];
            onnx__attribute_proto__init(a);
            a->name = "transB";
            a->has_type = 1;
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a->has_i = 1;
            a->i = 1;
            ex.attr_ptrs[i] = a;
            node->n_attribute = 1;
            node->attribute = &ex.attr_ptrs[i];
        } else {
            node->op_type = (char *)op_of(l->act);
        }
        node->n_output = 1;
        node->output = &ex.io[ex.n_io];
        ex.io[ex.n_io++] = out;
        ex.node_ptrs[n_nodes++] = node;
        cur = out;
    }

    /* Graph input (batch, input_dim) and output (batch, output_dim). */
    Onnx__TensorShapeProto__Dimension d_in[2], d_out[2], *pd_in[2], *pd_out[2];
    Onnx__TensorShapeProto s_in, s_out;
    Onnx__TypeProto__Tensor tt_in, tt_out;
    Onnx__TypeProto t_in, t_out;
    Onnx__ValueInfoProto v_in, v_out, *pv_in = &v_in, *pv_out = &v_out;
    Onnx__TensorShapeProto__Dimension *dd[2][2] = {{&d_in[0], &d_in[1]}, {&d_out[0], &d_out[1]}};
    uint32_t widths[2] = {mlp->input_dim, eie_mlp_output_dim(mlp)};
    for (int k = 0; k < 2; k++) {
        onnx__tensor_shape_proto__dimension__init(dd[k][0]);
        dd[k][0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        dd[k][0]->dim_param = "batch";
        onnx__tensor_shape_proto__dimension__init(dd[k][1]);
        dd[k][1]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dd[k][1]->dim_value = widths[k];
    }
    pd_in[0] = &d_in[0];
    pd_in[1] = &d_in[1];
    pd_out[0] = &d_out[0];
    pd_out[1] = &d_out[1];
    onnx__tensor_shape_proto__init(&s_in);
    s_in.n_dim = 2;
    s_in.dim = pd_in;
    onnx__tensor_shape_proto__init(&s_out);
    s_out.n_dim = 2;
    s_out.dim = pd_out;
    onnx__type_proto__tensor__init(&tt_in);
    tt_in.has_elem_type = 1;
    tt_in.elem_type = EIE_ONNX_FLOAT;
    tt_in.shape = &s_in;
    tt_out = tt_in;
    tt_out.shape = &s_out;
    onnx__type_proto__init(&t_in);
    t_in.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t_in.tensor_type = &tt_in;
    t_out = t_in;
    t_out.tensor_type = &tt_out;
    onnx__value_info_proto__init(&v_in);
    v_in.name = (char *)input_name;
    v_in.type = &t_in;
    v_out = v_in;
    v_out.name = (char *)output_name;
    v_out.type = &t_out;

    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)graph_name;
    g.n_node = n_nodes;
    g.node = ex.node_ptrs;
    g.n_initializer = n_inits;
    g.initializer = ex.init_ptrs;
    g.n_input = 1;
    g.input = &pv_in;
    g.n_output = 1;
    g.output = &pv_out;

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
    m.producer_version = "0.1.0";
    m.graph = &g;

    size_t len = onnx__model_proto__get_packed_size(&m);
    buf = malloc(len ? len : 1);
    if (buf == NULL)
        goto done;
    onnx__model_proto__pack(&m, buf);
    *data_out = buf;
    *len_out = len;
    buf = NULL;
    st = EIE_STATUS_OK;
done:
    if (st != EIE_STATUS_OK)
        eie_error_set(err, st, "out of memory exporting ONNX");
    for (size_t i = 0; i < ex.n_strings; i++)
        free(ex.strings[i]);
    free(ex.strings);
    free(ex.io);
    free(ex.nodes);
    free(ex.node_ptrs);
    free(ex.inits);
    free(ex.init_ptrs);
    free(ex.attrs);
    free(ex.attr_ptrs);
    free(dims);
    free(buf);
    return st;
}

eie_status_t eie_onnx_export_file(const eie_mlp_t *mlp, const char *graph_name,
                                  const char *input_name, const char *output_name,
                                  const char *path, eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st =
        eie_onnx_export_memory(mlp, graph_name, input_name, output_name, &data, &len, err);
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
