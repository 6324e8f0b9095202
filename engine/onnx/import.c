/*
 * ONNX import: a ModelProto whose graph is a chain of layers becomes an
 * eie_mlp_t. The importer walks the nodes in order (ONNX requires topological
 * order) and keeps one "running" tensor: every layer node must read it and
 * every other input must be a constant (initializer, Constant node or a
 * binding). Shapes are tracked as (batch, features) plus the rank, which is
 * all an FC network needs.
 */
#include "onnx/onnx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EIE_ONNX_MAX_CONSTS 65536
#define EIE_ONNX_MAX_IO     65536

static const char supported_ops[] =
    "Gemm, MatMul (+Add), Add (bias after a layer), Relu, Sigmoid, Tanh, Softmax, Flatten, "
    "Reshape to 2-D, Identity, Dropout, Constant, Transpose of a 2-D constant";

typedef struct konst {
    const char *name;
    const Onnx__TensorProto *proto;  /* an initializer or Constant value, or */
    const eie_onnx_tensor_t *bound;  /* a binding given by the caller or a folded tensor */
    eie_onnx_tensor_t *owned;        /* folded here (Transpose of a constant); freed at the end */
} konst_t;

typedef struct importer {
    const Onnx__GraphProto *g;
    konst_t *consts;
    size_t n_consts;
    eie_mlp_t *mlp;
    const char *cur;      /* the running tensor */
    uint32_t rank;        /* its rank; 0 when unknown */
    uint64_t feat;        /* features per batch row; 0 when unknown */
    int layout_fixed;     /* a layer or reshape has fixed the (batch, features) layout */
    int64_t in_dims[EIE_ONNX_MAX_RANK];
    uint32_t in_rank;
    const char *fc_out;   /* output of the last FC layer, for a following Add */
    eie_onnx_info_t info;
    char where[256];      /* "node 3 'fc1' (Gemm)" for messages */
    eie_error_t *err;
} importer_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

static const konst_t *find_const(const importer_t *imp, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return NULL;
    for (size_t i = imp->n_consts; i-- > 0;)
        if (strcmp(imp->consts[i].name, name) == 0)
            return &imp->consts[i];
    return NULL;
}

static eie_status_t add_const(importer_t *imp, const char *name, const Onnx__TensorProto *proto,
                              const eie_onnx_tensor_t *bound)
{
    if (imp->n_consts >= EIE_ONNX_MAX_CONSTS)
        return eie_error_set(imp->err, EIE_STATUS_LIMIT, "more than %d constant tensors",
                             EIE_ONNX_MAX_CONSTS);
    if (imp->n_consts % 64 == 0) {
        konst_t *grown = realloc(imp->consts, (imp->n_consts + 64) * sizeof *grown);
        if (grown == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for constants");
        imp->consts = grown;
    }
    imp->consts[imp->n_consts++] = (konst_t){str(name), proto, bound, NULL};
    return EIE_STATUS_OK;
}

/* A constant's shape and floats (malloc'd). */
static eie_status_t const_floats(importer_t *imp, const konst_t *k, uint32_t *rank,
                                 int64_t *dims, size_t *count, float **data)
{
    char what[400];
    snprintf(what, sizeof what, "%s: tensor '%.64s'", imp->where, k->name);
    return eie_onnx_const_floats(k->proto, k->bound, what, rank, dims, count, data, imp->err);
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i] && strcmp(str(n->attribute[i]->name), name) == 0)
            return n->attribute[i];
    return NULL;
}

static eie_status_t attr_int(importer_t *imp, const Onnx__NodeProto *n, const char *name,
                             int64_t dflt, int64_t *out)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    *out = dflt;
    if (a == NULL)
        return EIE_STATUS_OK;
    if (!a->has_i || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: attribute '%s' is not an integer", imp->where, name);
    *out = a->i;
    return EIE_STATUS_OK;
}

static eie_status_t attr_float(importer_t *imp, const Onnx__NodeProto *n, const char *name,
                               float dflt, float *out)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    *out = dflt;
    if (a == NULL)
        return EIE_STATUS_OK;
    if (!a->has_f || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: attribute '%s' is not a float",
                             imp->where, name);
    if (!isfinite(*out = a->f))
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: attribute '%s' is %g",
                             imp->where, name, (double)a->f);
    return EIE_STATUS_OK;
}

static eie_status_t ensure_mlp(importer_t *imp)
{
    if (imp->mlp)
        return EIE_STATUS_OK;
    if (imp->feat == 0 || imp->feat > EIE_MLP_MAX_DIM)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: the input width is unknown or over %u (give the graph input "
                             "a shape)",
                             imp->where, EIE_MLP_MAX_DIM);
    return eie_mlp_init((uint32_t)imp->feat, &imp->mlp, imp->err);
}

/* The node's weight input i as a constant, or an error naming it. */
static eie_status_t weight_input(importer_t *imp, const Onnx__NodeProto *n, size_t i,
                                 const konst_t **k_out)
{
    const char *name = i < n->n_input ? str(n->input[i]) : "";
    const konst_t *k = find_const(imp, name);
    if (k == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input %zu '%.64s' is not a constant; eie imports weights "
                             "stored as initializers",
                             imp->where, i, name);
    *k_out = k;
    return EIE_STATUS_OK;
}

/*
 * Turns C of a Gemm (or the Add after a MatMul) into a per-output bias of n
 * values times beta. Only shapes that do not vary along the batch are biases.
 */
static eie_status_t bias_from(importer_t *imp, const konst_t *k, uint32_t n, float beta,
                              float *bias)
{
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *c;
    eie_status_t st = const_floats(imp, k, &rank, dims, &count, &c);
    if (st != EIE_STATUS_OK)
        return st;
    if (count == 1) {
        for (uint32_t o = 0; o < n; o++)
            bias[o] = beta * c[0];
    } else if (count == n && (rank == 1 || (rank == 2 && dims[0] == 1))) {
        for (uint32_t o = 0; o < n; o++)
            bias[o] = beta * c[o];
    } else if (rank == 2 && dims[1] == n && dims[0] > 1) {
        /* (M, N): acceptable only when every row is the same. */
        for (int64_t r = 1; r < dims[0]; r++)
            if (memcmp(c, c + r * n, n * sizeof *c) != 0) {
                st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                   "%s: bias '%.64s' of shape (%lld, %u) varies along the batch "
                                   "axis; only a per-output bias (N), (1, N) or a scalar can "
                                   "become an FC layer",
                                   imp->where, k->name, (long long)dims[0], n);
                break;
            }
        for (uint32_t o = 0; o < n && st == EIE_STATUS_OK; o++)
            bias[o] = beta * c[o];
    } else {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: bias '%.64s' has %zu values, which does not broadcast to %u "
                           "outputs",
                           imp->where, k->name, count, n);
    }
    free(c);
    return st;
}

/* Y = alpha * A' B' + beta * C with B' = B^T when trans_b. */
static eie_status_t import_fc(importer_t *imp, const Onnx__NodeProto *n, const konst_t *bk,
                              int trans_b, float alpha, const konst_t *ck, float beta)
{
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *b = NULL, *w = NULL, *bias = NULL;
    eie_status_t st = const_floats(imp, bk, &rank, dims, &count, &b);
    if (st != EIE_STATUS_OK)
        return st;
    if (rank != 2) {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: weight '%.64s' has rank %u; eie needs a 2-D matrix", imp->where,
                           bk->name, rank);
        goto done;
    }
    uint64_t k_in = (uint64_t)(trans_b ? dims[1] : dims[0]);
    uint64_t n_out = (uint64_t)(trans_b ? dims[0] : dims[1]);
    if (imp->feat == 0 && !imp->layout_fixed)
        imp->feat = k_in;
    if (k_in != imp->feat) {
        st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                           "%s: weight '%.64s' takes %llu inputs but the running tensor '%.64s' "
                           "has %llu features",
                           imp->where, bk->name, (unsigned long long)k_in, imp->cur,
                           (unsigned long long)imp->feat);
        goto done;
    }
    if (n_out == 0 || n_out > EIE_MLP_MAX_DIM || k_in == 0) {
        st = eie_error_set(imp->err, EIE_STATUS_LIMIT, "%s: %llu x %llu layer outside 1..%u",
                           imp->where, (unsigned long long)n_out, (unsigned long long)k_in,
                           EIE_MLP_MAX_DIM);
        goto done;
    }
    if ((st = ensure_mlp(imp)) != EIE_STATUS_OK)
        goto done;
    w = malloc(count * sizeof *w);
    bias = calloc(n_out, sizeof *bias);
    if (w == NULL || bias == NULL) {
        st = eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
        goto done;
    }
    for (uint64_t o = 0; o < n_out; o++)
        for (uint64_t i = 0; i < k_in; i++)
            w[o * k_in + i] = alpha * (trans_b ? b[o * k_in + i] : b[i * n_out + o]);
    if (ck && (st = bias_from(imp, ck, (uint32_t)n_out, beta, bias)) != EIE_STATUS_OK)
        goto done;
    if ((st = eie_mlp_add_fc(imp->mlp, (uint32_t)n_out, w, bias, imp->err)) != EIE_STATUS_OK)
        goto done;
    imp->feat = n_out;
    imp->rank = 2;
    imp->layout_fixed = 1;
done:
    free(b);
    free(w);
    free(bias);
    return st;
}

static eie_status_t need_rank2(importer_t *imp, const char *op)
{
    if (imp->rank != 0 && imp->rank != 2)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: %s of a rank-%u tensor; eie needs (batch, features) (add a "
                             "Flatten)",
                             imp->where, op, imp->rank);
    return EIE_STATUS_OK;
}

static eie_status_t import_gemm(importer_t *imp, const Onnx__NodeProto *n)
{
    int64_t ta, tb;
    float alpha, beta;
    const konst_t *bk, *ck = NULL;
    eie_status_t st;
    if ((st = attr_int(imp, n, "transA", 0, &ta)) || (st = attr_int(imp, n, "transB", 0, &tb)) ||
        (st = attr_float(imp, n, "alpha", 1.0f, &alpha)) ||
        (st = attr_float(imp, n, "beta", 1.0f, &beta)) || (st = need_rank2(imp, "Gemm")) ||
        (st = weight_input(imp, n, 1, &bk)))
        return st;
    if (n->n_input >= 3 && str(n->input[2])[0] != '\0' &&
        (st = weight_input(imp, n, 2, &ck)) != EIE_STATUS_OK)
        return st;
    if (ta) {
        /*
         * transA: the data arrive as (features, batch). That is a property of
         * how the caller lays out inputs, so it is allowed only on the graph
         * input itself and reported in info.input_transposed.
         */
        if (imp->layout_fixed || imp->in_rank != 2 || imp->in_dims[0] <= 0)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: transA = 1 is supported only on a 2-D graph input of known "
                                 "shape",
                                 imp->where);
        imp->feat = (uint64_t)imp->in_dims[0];
        imp->info.batch = imp->in_dims[1];
        imp->info.input_transposed = 1;
    }
    return import_fc(imp, n, bk, tb != 0, alpha, ck, beta);
}

static eie_status_t add_act(importer_t *imp, eie_act_t act)
{
    eie_status_t st = ensure_mlp(imp);
    if (st == EIE_STATUS_OK)
        st = eie_mlp_add_activation(imp->mlp, act, imp->err);
    return st;
}

static eie_status_t import_softmax(importer_t *imp, const Onnx__NodeProto *n)
{
    int64_t axis;
    eie_status_t st = attr_int(imp, n, "axis", imp->info.opset >= 13 ? -1 : 1, &axis);
    if (st != EIE_STATUS_OK)
        return st;
    int64_t rank = imp->rank ? imp->rank : 2;
    if (axis < 0)
        axis += rank;
    /*
     * eie applies softmax over the features of each row. Before opset 13 the
     * input is coerced to 2-D at axis, so axis 1 is that for any rank; from
     * 13 on it is axis 1 of a 2-D tensor only.
     */
    if (!(axis == 1 && (rank == 2 || imp->info.opset < 13)))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: softmax over axis %lld of a rank-%lld tensor (opset %lld); eie "
                             "supports softmax over all features of a row",
                             imp->where, (long long)axis, (long long)rank,
                             (long long)imp->info.opset);
    return add_act(imp, EIE_ACT_SOFTMAX);
}

static eie_status_t import_flatten(importer_t *imp, const Onnx__NodeProto *n)
{
    int64_t axis;
    eie_status_t st = attr_int(imp, n, "axis", 1, &axis);
    if (st != EIE_STATUS_OK)
        return st;
    if (imp->rank && axis < 0)
        axis += imp->rank;
    if (axis != 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: Flatten at axis %lld would mix the batch into features; eie "
                             "supports axis 1",
                             imp->where, (long long)axis);
    imp->rank = 2;
    imp->layout_fixed = 1;
    return EIE_STATUS_OK;
}

static eie_status_t import_reshape(importer_t *imp, const Onnx__NodeProto *n)
{
    const konst_t *k;
    eie_status_t st = weight_input(imp, n, 1, &k);
    if (st != EIE_STATUS_OK)
        return st;
    if (k->bound || k->proto == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED, "%s: shape must be int64", imp->where);
    char what[400];
    snprintf(what, sizeof what, "%s: shape '%.64s'", imp->where, k->name);
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK], *shape;
    size_t count;
    if ((st = eie_onnx_tensor_shape(k->proto, what, &rank, dims, &count, imp->err)) ||
        (st = eie_onnx_tensor_int64s(k->proto, what, count, &shape, imp->err)))
        return st;
    int64_t d0 = count == 2 ? shape[0] : 0, d1 = count == 2 ? shape[1] : 0;
    free(shape);
    int64_t batch = imp->info.batch;
    int ok = count == 2 && (d0 == -1 || d0 == 0 || (batch > 0 && d0 == batch)) &&
             ((d1 > 0 && imp->feat && (uint64_t)d1 == imp->feat) ||
              (d1 == -1 && d0 != -1) || (d1 == 0 && imp->rank == 2));
    if (!ok)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: Reshape to %zu-D (%lld, %lld) is not (batch, %llu); eie "
                             "supports Reshape to (batch, features)",
                             imp->where, count, (long long)d0, (long long)d1,
                             (unsigned long long)imp->feat);
    imp->rank = 2;
    imp->layout_fixed = 1;
    return EIE_STATUS_OK;
}

/* Is name read by any node after index i, or a graph output? */
static int used_later(const importer_t *imp, size_t i, const char *name)
{
    if (name[0] == '\0')
        return 0;
    for (size_t k = i + 1; k < imp->g->n_node; k++)
        for (size_t j = 0; j < imp->g->node[k]->n_input; j++)
            if (strcmp(str(imp->g->node[k]->input[j]), name) == 0)
                return 1;
    for (size_t k = 0; k < imp->g->n_output; k++)
        if (imp->g->output[k] && strcmp(str(imp->g->output[k]->name), name) == 0)
            return 1;
    return 0;
}

static int is_op(const Onnx__NodeProto *n, const char *op)
{
    return strcmp(str(n->op_type), op) == 0;
}

/* Transpose of a 2-D constant (PyTorch writes MatMul weights so) folds into a new constant. */
static eie_status_t fold_transpose(importer_t *imp, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *perm = find_attr(n, "perm");
    if (perm && !(perm->n_ints == 2 && perm->ints[0] == 1 && perm->ints[1] == 0))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: only the 2-D transpose (perm 1, 0) of a constant is supported",
                             imp->where);
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *data;
    eie_status_t st = const_floats(imp, find_const(imp, n->input[0]), &rank, dims, &count, &data);
    if (st != EIE_STATUS_OK)
        return st;
    eie_onnx_tensor_t *t = calloc(1, sizeof *t);
    float *out = malloc(count ? count * sizeof *out : 1);
    if (rank != 2 || t == NULL || out == NULL) {
        free(t);
        free(out);
        free(data);
        return rank != 2 ? eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                         "%s: Transpose of a rank-%u constant", imp->where, rank)
                         : eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
    }
    size_t r = (size_t)dims[0], c = (size_t)dims[1];
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++)
            out[j * r + i] = data[i * c + j];
    free(data);
    t->rank = 2;
    t->dims[0] = (int64_t)c;
    t->dims[1] = (int64_t)r;
    t->count = count;
    t->data = out;
    if ((st = add_const(imp, n->output[0], NULL, t)) != EIE_STATUS_OK) {
        eie_onnx_tensor_free(t);
        return st;
    }
    imp->consts[imp->n_consts - 1].owned = t;
    return EIE_STATUS_OK;
}

static eie_status_t import_node(importer_t *imp, size_t *i)
{
    const Onnx__NodeProto *n = imp->g->node[*i];
    const char *op = str(n->op_type);
    eie_status_t st;
    snprintf(imp->where, sizeof imp->where, "node %zu '%.64s' (%.32s)", *i, str(n->name), op);
    const char *domain = str(n->domain);
    if (domain[0] != '\0' && strcmp(domain, "ai.onnx") != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: operator domain '%.64s' is not supported (supported: the "
                             "default domain: %s)",
                             imp->where, domain, supported_ops);
    if (n->n_output < 1 || str(n->output[0])[0] == '\0')
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s has no output", imp->where);

    if (is_op(n, "Constant")) {
        const Onnx__AttributeProto *a = find_attr(n, "value");
        if (a == NULL || a->t == NULL)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: only Constant with a 'value' tensor is supported",
                                 imp->where);
        return add_const(imp, n->output[0], a->t, NULL);
    }
    if (is_op(n, "Transpose") && n->n_input == 1 && find_const(imp, n->input[0]))
        return fold_transpose(imp, n);
    if (n->n_input < 1 || strcmp(str(n->input[0]), imp->cur) != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s reads '%.64s', not the running tensor '%.64s'; eie imports a "
                             "chain of layers (supported: %s)",
                             imp->where, n->n_input ? str(n->input[0]) : "", imp->cur,
                             supported_ops);

    const char *out = n->output[0];
    if (is_op(n, "Gemm")) {
        st = import_gemm(imp, n);
        imp->fc_out = out;
    } else if (is_op(n, "MatMul")) {
        const konst_t *bk, *ck = NULL;
        if ((st = need_rank2(imp, "MatMul")) || (st = weight_input(imp, n, 1, &bk)))
            return st;
        /* MatMul followed by an Add of a constant is one FC layer with a bias. */
        if (*i + 1 < imp->g->n_node) {
            const Onnx__NodeProto *a = imp->g->node[*i + 1];
            if (is_op(a, "Add") && a->n_input == 2 && a->n_output >= 1) {
                const char *other = strcmp(str(a->input[0]), out) == 0   ? str(a->input[1])
                                    : strcmp(str(a->input[1]), out) == 0 ? str(a->input[0])
                                                                         : NULL;
                if (other && (ck = find_const(imp, other)) != NULL) {
                    *i += 1;
                    out = a->output[0];
                }
            }
        }
        st = import_fc(imp, n, bk, 0, 1.0f, ck, 1.0f);
        imp->fc_out = out;
    } else if (is_op(n, "Add")) {
        /* A bias added after a layer folds into that layer. */
        const konst_t *ck;
        if (imp->fc_out == NULL || strcmp(imp->fc_out, imp->cur) != 0)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: Add is supported only as the bias right after a Gemm or "
                                 "MatMul",
                                 imp->where);
        if ((st = weight_input(imp, n, 1, &ck)) != EIE_STATUS_OK)
            return st;
        eie_mlp_layer_t *l = &imp->mlp->layers[imp->mlp->n_layers - 1];
        float *extra = malloc(l->rows * sizeof *extra);
        if (extra == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
        if ((st = bias_from(imp, ck, l->rows, 1.0f, extra)) == EIE_STATUS_OK)
            for (uint32_t o = 0; o < l->rows; o++)
                l->b[o] += extra[o];
        free(extra);
        imp->fc_out = out;
    } else if (is_op(n, "Relu")) {
        st = add_act(imp, EIE_ACT_RELU);
    } else if (is_op(n, "Sigmoid")) {
        st = add_act(imp, EIE_ACT_SIGMOID);
    } else if (is_op(n, "Tanh")) {
        st = add_act(imp, EIE_ACT_TANH);
    } else if (is_op(n, "Softmax")) {
        st = import_softmax(imp, n);
    } else if (is_op(n, "Flatten")) {
        st = import_flatten(imp, n);
    } else if (is_op(n, "Reshape")) {
        st = import_reshape(imp, n);
    } else if (is_op(n, "Identity")) {
        st = EIE_STATUS_OK;
    } else if (is_op(n, "Dropout")) {
        /* Inference: Dropout is the identity; its mask output must be unused. */
        if (n->n_output >= 2 && used_later(imp, *i, str(n->output[1])))
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: the dropout mask output '%.64s' is used; eie imports "
                                 "inference graphs",
                                 imp->where, str(n->output[1]));
        st = EIE_STATUS_OK;
    } else {
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: op type '%.32s' is not supported (supported: %s)", imp->where,
                             op, supported_ops);
    }
    if (st == EIE_STATUS_OK)
        imp->cur = out;
    return st;
}

/* The one graph input that is not a constant: its name and shape. */
static eie_status_t find_data_input(importer_t *imp)
{
    const Onnx__GraphProto *g = imp->g;
    const Onnx__ValueInfoProto *in = NULL;
    size_t n_data = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        if (g->input[i] == NULL || find_const(imp, g->input[i]->name))
            continue;
        n_data++;
        if (in == NULL)
            in = g->input[i];
    }
    if (n_data != 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "graph has %zu non-constant inputs; eie imports networks with exactly "
                             "one data input (weights must be initializers)",
                             n_data);
    imp->cur = str(in->name);
    snprintf(imp->info.input_name, sizeof imp->info.input_name, "%s", imp->cur);
    imp->info.batch = -1;
    const Onnx__TypeProto *t = in->type;
    if (t == NULL || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || t->tensor_type == NULL)
        return EIE_STATUS_OK; /* no shape: the first layer tells the width */
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (tt->has_elem_type && tt->elem_type != EIE_ONNX_FLOAT)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "graph input '%.64s' has element type %d; eie takes float (1)",
                             imp->cur, (int)tt->elem_type);
    if (tt->shape == NULL)
        return EIE_STATUS_OK;
    if (tt->shape->n_dim > EIE_ONNX_MAX_RANK || tt->shape->n_dim < 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "graph input '%.64s' has rank %zu; eie takes ranks 1..%d", imp->cur,
                             tt->shape->n_dim, EIE_ONNX_MAX_RANK);
    imp->in_rank = (uint32_t)tt->shape->n_dim;
    uint64_t feat = 1;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        int64_t v = d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                        ? d->dim_value
                        : -1;
        if (v == 0 || v > (int64_t)EIE_ONNX_MAX_ELEMENTS || v < -1)
            return eie_error_set(imp->err, EIE_STATUS_LIMIT,
                                 "graph input '%.64s': dimension %zu is %lld", imp->cur, i,
                                 (long long)v);
        imp->in_dims[i] = v;
        if (i == 0)
            continue;
        if (v < 0 || feat == 0)
            feat = 0;
        else if ((feat *= (uint64_t)v) > EIE_ONNX_MAX_ELEMENTS)
            return eie_error_set(imp->err, EIE_STATUS_LIMIT,
                                 "graph input '%.64s' has over %llu features", imp->cur,
                                 (unsigned long long)EIE_ONNX_MAX_ELEMENTS);
    }
    if (imp->in_rank == 1) {
        /* A vector is one example of in_dims[0] features. */
        feat = imp->in_dims[0] > 0 ? (uint64_t)imp->in_dims[0] : 0;
        imp->info.batch = 1;
        imp->rank = 2;
    } else {
        imp->info.batch = imp->in_dims[0];
        imp->rank = imp->in_rank;
    }
    imp->feat = feat;
    return EIE_STATUS_OK;
}

eie_status_t eie_onnx_import_memory(const void *data, size_t len, const eie_onnx_opts_t *opts,
                                    eie_mlp_t **mlp_out, eie_onnx_info_t *info_out,
                                    eie_error_t *err)
{
    importer_t imp = {.err = err};
    eie_status_t st;
    if (len > EIE_ONNX_MAX_FILE)
        return eie_error_set(err, EIE_STATUS_LIMIT, "model of %zu bytes over the limit %llu", len,
                             (unsigned long long)EIE_ONNX_MAX_FILE);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
    if (m == NULL)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "not an ONNX model: the ModelProto does not parse");
    const Onnx__GraphProto *g = m->graph;
    if (g == NULL) {
        st = eie_error_set(err, EIE_STATUS_BAD_FORMAT, "ONNX model has no graph");
        goto done;
    }
    imp.g = g;
    imp.info.ir_version = m->has_ir_version ? m->ir_version : 0;
    imp.info.opset = 1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        const char *d = o ? str(o->domain) : "x";
        if ((d[0] == '\0' || strcmp(d, "ai.onnx") == 0) && o->has_version)
            imp.info.opset = o->version;
    }
    snprintf(imp.info.producer, sizeof imp.info.producer, "%s", str(m->producer_name));
    if (g->n_node > EIE_ONNX_MAX_NODES || g->n_input > EIE_ONNX_MAX_IO ||
        g->n_initializer > EIE_ONNX_MAX_CONSTS) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "graph has %zu nodes, %zu inputs, %zu initializers (limits %d, %d, %d)",
                           g->n_node, g->n_input, g->n_initializer, EIE_ONNX_MAX_NODES,
                           EIE_ONNX_MAX_IO, EIE_ONNX_MAX_CONSTS);
        goto done;
    }
    if (g->n_sparse_initializer > 0) {
        st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                           "graph has sparse initializers; eie imports dense initializers");
        goto done;
    }
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((st = add_const(&imp, g->initializer[i]->name, g->initializer[i], NULL)))
            goto done;
    for (size_t i = 0; opts && i < opts->n_bindings; i++)
        if ((st = add_const(&imp, opts->bindings[i].name, NULL, opts->bindings[i].tensor)))
            goto done;
    if ((st = find_data_input(&imp)) != EIE_STATUS_OK)
        goto done;
    for (size_t i = 0; i < g->n_node; i++) {
        if (g->node[i] == NULL) {
            st = eie_error_set(err, EIE_STATUS_BAD_FORMAT, "node %zu is empty", i);
            goto done;
        }
        if ((st = import_node(&imp, &i)) != EIE_STATUS_OK)
            goto done;
    }
    if (g->n_output != 1 || g->output[0] == NULL || strcmp(str(g->output[0]->name), imp.cur) != 0) {
        st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                           "graph has %zu outputs (first '%.64s'); eie imports one output, the "
                           "end of the layer chain '%.64s'",
                           g->n_output, g->n_output && g->output[0] ? str(g->output[0]->name) : "",
                           imp.cur);
        goto done;
    }
    snprintf(imp.info.output_name, sizeof imp.info.output_name, "%s", imp.cur);
    snprintf(imp.where, sizeof imp.where, "graph input '%.64s'", imp.info.input_name);
    if ((st = ensure_mlp(&imp)) != EIE_STATUS_OK)
        goto done;
    *mlp_out = imp.mlp;
    imp.mlp = NULL;
    if (info_out)
        *info_out = imp.info;
    st = EIE_STATUS_OK;
done:
    eie_mlp_free(imp.mlp);
    for (size_t i = 0; i < imp.n_consts; i++)
        eie_onnx_tensor_free(imp.consts[i].owned);
    free(imp.consts);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

eie_status_t eie_onnx_import_file(const char *path, const eie_onnx_opts_t *opts,
                                  eie_mlp_t **mlp_out, eie_onnx_info_t *info_out,
                                  eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st = eie_file_read(path, EIE_ONNX_MAX_FILE, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eie_onnx_import_memory(data, len, opts, mlp_out, info_out, err);
    if (st != EIE_STATUS_OK)
        eie_error_prefix(err, "%s: ", path);
    free(data);
    return st;
}
