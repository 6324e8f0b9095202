/*
 * ONNX import to a graph model (.eie version 2), exact by default.
 *
 * The nodes are walked in their (topological) order and turned into builder
 * nodes that keep the ONNX tensor names, so graph inputs and outputs keep
 * their names and full shapes. A sparse node (Gemm, MatMul, Conv) is held
 * back as "pending" until something other than a fold reads its output: a
 * BatchNormalization or a bias Add that is the only reader folds into it, in
 * float64, and the weights are rounded to float32 once when it is emitted.
 * Without a fold every weight is the file's float bit for bit. Each sparse
 * node is stored with a codebook when its nonzeros take at most 255 distinct
 * values (code 0 is the pruned zero, Deep Compression sec. 3), with the
 * fewest bits that hold them all, else with its exact values.
 */
#include "onnx/onnx_internal.h"
#include "format/format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONSTS 65536
#define MAX_REFS   65536

static const char supported_ops[] =
    "Gemm, MatMul, Add, Conv, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, "
    "Concat, Relu, Sigmoid, Tanh, Softmax, Flatten, Reshape, Squeeze, Unsqueeze, Identity, "
    "Dropout, Constant, Transpose of a 2-D constant, Shape (with Gather, Unsqueeze and Concat "
    "of its values), LSTM (forward), Expand of a constant";

typedef struct gconst {
    const char *name;
    const Onnx__TensorProto *proto;
    const eie_onnx_tensor_t *bound;
    eie_onnx_tensor_t *owned; /* folded here; freed at the end */
    int64_t *ints;            /* or a shape value folded here (Shape, Gather, ...), owned */
    uint32_t ints_rank;       /* 0 (a scalar) or 1 */
    size_t n_ints;
} gconst_t;

/* The batch size in a shape value: unknown at import, fixed at run time. */
#define BATCH_DIM INT64_MIN

/* An ONNX tensor that is another one's value (Identity, Dropout). */
typedef struct alias {
    const char *onnx;
    const char *eie;
} alias_t;

/* A sparse node not yet given to the builder, so folds can still change it. */
typedef struct pending {
    eie_layer_kind_t kind; /* FC or CONV2D */
    const char *name;      /* ONNX node name */
    const char *input;     /* builder tensor it reads */
    const char *output;    /* ONNX tensor it writes now (changes with each fold) */
    uint32_t rows, cols;
    uint32_t in_rank; /* FC: rank of its input (> 2: vectors along the last axis) */
    double *w; /* rows x cols */
    double *b; /* rows */
    /* whether b holds a fold yet: the first is copied, not added to +0.0,
       which would turn a bias of -0.0 (Conv's own B as export writes it)
       into +0.0, and import -> export -> import would change the file */
    int b_set;
    eie_conv2d_params_t conv;
} pending_t;

typedef struct gimp {
    const Onnx__GraphProto *g;
    int64_t opset;
    eie_builder_t *b;
    gconst_t *consts;
    size_t n_consts;
    size_t *slots;  /* hash index of consts by name: index + 1, 0 = empty */
    size_t n_slots; /* a power of two, over twice the most consts the graph can make */
    alias_t *aliases;
    size_t n_aliases;
    pending_t *pend;
    size_t n_pend;
    char where[256];
    const eie_onnx_opts_t *opts; /* may be NULL */
    eie_error_t *err;
} gimp_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

static int is_op(const Onnx__NodeProto *n, const char *op)
{
    return strcmp(str(n->op_type), op) == 0;
}

/* ---- constants --------------------------------------------------------- */

/*
 * Constants are looked up for every input of every node, so by a hash of
 * their names (FNV-1a, open addressing): a file with many initializers and
 * many nodes costs time in proportion to its size, not their product.
 */
static size_t *slot_of(const gimp_t *imp, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    for (size_t i = (size_t)h & (imp->n_slots - 1);; i = (i + 1) & (imp->n_slots - 1))
        if (imp->slots[i] == 0 || strcmp(imp->consts[imp->slots[i] - 1].name, name) == 0)
            return &imp->slots[i];
}

static const gconst_t *find_const(const gimp_t *imp, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return NULL;
    size_t *slot = slot_of(imp, name);
    return *slot ? &imp->consts[*slot - 1] : NULL;
}

static eie_status_t add_const(gimp_t *imp, const char *name, const Onnx__TensorProto *proto,
                              const eie_onnx_tensor_t *bound)
{
    if (imp->n_consts >= MAX_CONSTS || 2 * (imp->n_consts + 1) > imp->n_slots)
        return eie_error_set(imp->err, EIE_STATUS_LIMIT, "more than %zu constant tensors",
                             imp->n_slots / 2 < MAX_CONSTS ? imp->n_slots / 2 : MAX_CONSTS);
    if (imp->n_consts % 64 == 0) {
        gconst_t *grown = realloc(imp->consts, (imp->n_consts + 64) * sizeof *grown);
        if (grown == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for constants");
        imp->consts = grown;
    }
    imp->consts[imp->n_consts++] = (gconst_t){str(name), proto, bound, NULL, NULL, 0, 0};
    /* A later constant of the same name shadows the earlier one. */
    if (str(name)[0] != '\0')
        *slot_of(imp, str(name)) = imp->n_consts;
    return EIE_STATUS_OK;
}

static eie_status_t const_floats(gimp_t *imp, const gconst_t *k, uint32_t *rank, int64_t *dims,
                                 size_t *count, float **data)
{
    char what[400];
    snprintf(what, sizeof what, "%s: tensor '%.64s'", imp->where, k->name);
    return eie_onnx_const_floats(k->proto, k->bound, what, rank, dims, count, data, imp->err);
}

static eie_status_t const_int64s(gimp_t *imp, const gconst_t *k, size_t max, size_t *count,
                                 int64_t **data)
{
    char what[400];
    snprintf(what, sizeof what, "%s: tensor '%.64s'", imp->where, k->name);
    if (k->ints != NULL) {
        *count = k->n_ints;
        if ((*data = malloc((k->n_ints ? k->n_ints : 1) * sizeof **data)) == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", what);
        memcpy(*data, k->ints, k->n_ints * sizeof **data);
        return EIE_STATUS_OK;
    }
    if (k->proto == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED, "%s must be int64", what);
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    eie_status_t st = eie_onnx_tensor_shape(k->proto, what, &rank, dims, count, imp->err);
    if (st != EIE_STATUS_OK)
        return st;
    if (rank > 1 || *count > max)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s has %zu values in rank %u; expected a vector of at most %zu", what,
                             *count, rank, max);
    return eie_onnx_tensor_int64s(k->proto, what, *count, data, imp->err);
}

/* The node's input i as a constant, or an error naming it. */
static eie_status_t const_input(gimp_t *imp, const Onnx__NodeProto *n, size_t i,
                                const gconst_t **k_out)
{
    const char *name = i < n->n_input ? str(n->input[i]) : "";
    const gconst_t *k = find_const(imp, name);
    if (k == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input %zu '%.64s' is not a constant; eie imports weights "
                             "stored as initializers",
                             imp->where, i, name);
    *k_out = k;
    return EIE_STATUS_OK;
}

/* ---- attributes -------------------------------------------------------- */

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i] && strcmp(str(n->attribute[i]->name), name) == 0)
            return n->attribute[i];
    return NULL;
}

/* Refuses any attribute of n not in the NULL-terminated list allowed. */
static eie_status_t check_attrs(gimp_t *imp, const Onnx__NodeProto *n, const char *const *allowed)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *a = n->attribute[i] ? str(n->attribute[i]->name) : "";
        int ok = 0;
        for (size_t k = 0; allowed[k] && !ok; k++)
            ok = strcmp(a, allowed[k]) == 0;
        if (!ok)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute '%.64s' is not supported", imp->where, a);
    }
    return EIE_STATUS_OK;
}

static eie_status_t attr_int(gimp_t *imp, const Onnx__NodeProto *n, const char *name, int64_t dflt,
                             int64_t *out)
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

static eie_status_t attr_float(gimp_t *imp, const Onnx__NodeProto *n, const char *name, float dflt,
                               float *out)
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

/* An ints attribute of exactly want values (or absent: *have_out = 0). */
static eie_status_t attr_ints(gimp_t *imp, const Onnx__NodeProto *n, const char *name, size_t want,
                              int64_t lo, int64_t *out, int *have_out)
{
    const Onnx__AttributeProto *a = find_attr(n, name);
    *have_out = 0;
    if (a == NULL)
        return EIE_STATUS_OK;
    if (a->n_ints != want)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute '%s' has %zu values; eie takes %zu (2-D)", imp->where,
                             name, a->n_ints, want);
    for (size_t i = 0; i < want; i++) {
        if (a->ints[i] < lo || a->ints[i] > (int64_t)(1u << 20))
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute '%s' value %lld is outside %lld..%u", imp->where,
                                 name, (long long)a->ints[i], (long long)lo, 1u << 20);
        out[i] = a->ints[i];
    }
    *have_out = 1;
    return EIE_STATUS_OK;
}

/* ---- tensor names: aliases, pending nodes ------------------------------ */

static int is_graph_output(const gimp_t *imp, const char *name)
{
    for (size_t k = 0; k < imp->g->n_output; k++)
        if (imp->g->output[k] && strcmp(str(imp->g->output[k]->name), name) == 0)
            return 1;
    return 0;
}

/* Readers of name among the nodes, plus one if it is a graph output. */
static size_t uses(const gimp_t *imp, const char *name)
{
    size_t u = (size_t)is_graph_output(imp, name);
    for (size_t k = 0; k < imp->g->n_node; k++)
        for (size_t j = 0; j < imp->g->node[k]->n_input; j++)
            u += strcmp(str(imp->g->node[k]->input[j]), name) == 0;
    return u;
}

static pending_t *find_pending(gimp_t *imp, const char *name)
{
    for (size_t i = 0; i < imp->n_pend; i++)
        if (imp->pend[i].output && strcmp(imp->pend[i].output, name) == 0)
            return &imp->pend[i];
    return NULL;
}

static void pending_clear(pending_t *p)
{
    free(p->w);
    free(p->b);
    memset(p, 0, sizeof *p);
}

/* A pending node that only a fold reads: its output has this one reader and is no graph output. */
static pending_t *foldable(gimp_t *imp, const char *name)
{
    pending_t *p = find_pending(imp, name);
    return p && uses(imp, name) == 1 ? p : NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/*
 * Chooses the storage of a sparse node's float weights w (rows x cols) and
 * fills ws: a codebook of the distinct nonzeros (sorted, so the choice does
 * not depend on the order of the weights) when there are at most 255 of
 * them, else the exact values. *book and *codes are malloc'd for the caller.
 */
static eie_status_t choose_storage(gimp_t *imp, const float *w, size_t n, eie_weights_t *ws,
                                   float **book, uint8_t **codes)
{
    float *vals = malloc((n ? n : 1) * sizeof *vals);
    if (vals == NULL)
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(w[i])) {
            free(vals);
            return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                 "%s: weight %zu is not finite (%g)", imp->where, i, (double)w[i]);
        }
        if (w[i] != 0.0f)
            vals[nv++] = w[i];
    }
    qsort(vals, nv, sizeof *vals, cmp_float);
    size_t nd = 0;
    for (size_t i = 0; i < nv; i++)
        if (nd == 0 || vals[i] != vals[nd - 1]) {
            if (nd == 255) {
                nd = 256;
                break;
            }
            vals[nd++] = vals[i];
        }
    int shared = nd <= 255;
    memset(ws, 0, sizeof *ws);
    *book = NULL;
    *codes = NULL;
    if (!shared) {
        free(vals);
        ws->storage = EIE_STORAGE_EXACT;
        ws->values = w;
        return EIE_STATUS_OK;
    }
    uint32_t bits = 1;
    while (((size_t)1 << bits) < nd + 1)
        bits++;
    *book = calloc((size_t)1 << bits, sizeof **book);
    *codes = malloc(n ? n : 1);
    if (*book == NULL || *codes == NULL) {
        free(vals);
        free(*book);
        free(*codes);
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
    }
    memcpy(*book + 1, vals, nd * sizeof *vals);
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0.0f) {
            (*codes)[i] = 0;
            continue;
        }
        const float *hit = bsearch(&w[i], vals, nd, sizeof *vals, cmp_float);
        (*codes)[i] = (uint8_t)(hit - vals + 1);
    }
    free(vals);
    ws->storage = EIE_STORAGE_SHARED;
    ws->code_bits = bits;
    ws->codebook = *book;
    ws->codes = *codes;
    return EIE_STATUS_OK;
}

static eie_status_t add_node(gimp_t *imp, eie_node_desc_t *d)
{
    eie_status_t st = eie_builder_add_node(imp->b, d, imp->err);
    if (st != EIE_STATUS_OK)
        eie_error_prefix(imp->err, "%s: ", imp->where);
    return st;
}

/* Gives a pending node to the builder, its weights rounded to float32 once. */
static eie_status_t flush(gimp_t *imp, pending_t *p)
{
    size_t n = (size_t)p->rows * p->cols;
    float *w = malloc((n ? n : 1) * sizeof *w), *b = malloc(p->rows * sizeof *b);
    float *book = NULL;
    uint8_t *codes = NULL;
    eie_status_t st;
    char saved[sizeof imp->where];
    memcpy(saved, imp->where, sizeof saved);
    snprintf(imp->where, sizeof imp->where, "node '%.64s' (%s)", p->name,
             p->kind == EIE_LAYER_FC ? "fc" : "conv2d");
    if (w == NULL || b == NULL) {
        st = eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        w[i] = (float)p->w[i];
    for (uint32_t r = 0; r < p->rows; r++)
        if (!isfinite(b[r] = (float)p->b[r])) {
            st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: bias %u is not finite",
                               imp->where, r);
            goto done;
        }
    eie_node_desc_t d = {.kind = p->kind,
                         .name = p->name,
                         .n_inputs = 1,
                         .inputs = &p->input,
                         .output = p->output,
                         .rows = p->rows,
                         .conv = p->conv};
    if ((st = choose_storage(imp, w, n, &d.weights, &book, &codes)) != EIE_STATUS_OK)
        goto done;
    d.weights.bias = b;
    st = add_node(imp, &d);
done:
    memcpy(imp->where, saved, sizeof saved);
    free(w);
    free(b);
    free(book);
    free(codes);
    pending_clear(p);
    return st;
}

/* The builder tensor holding ONNX tensor name (a pending producer is emitted first). */
static eie_status_t resolve(gimp_t *imp, const char *name, const char **out)
{
    for (size_t i = imp->n_aliases; i-- > 0;)
        if (strcmp(imp->aliases[i].onnx, name) == 0) {
            name = imp->aliases[i].eie;
            break;
        }
    pending_t *p = find_pending(imp, name);
    eie_status_t st = p ? flush(imp, p) : EIE_STATUS_OK;
    *out = name;
    return st;
}

/* The data input i of n resolved, and its shape. */
static eie_status_t data_input(gimp_t *imp, const Onnx__NodeProto *n, size_t i, const char **out,
                               eie_shape_t *shape)
{
    const char *name = i < n->n_input ? str(n->input[i]) : "";
    if (name[0] == '\0')
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: input %zu is missing",
                             imp->where, i);
    if (find_const(imp, name))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input %zu '%.64s' is a constant; eie takes a computed tensor "
                             "there",
                             imp->where, i, name);
    eie_status_t st = resolve(imp, name, out);
    if (st == EIE_STATUS_OK && eie_builder_tensor_shape(imp->b, *out, shape, imp->err) != 0) {
        st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                           "%s: input %zu '%.64s' is neither a graph input nor made by an "
                           "earlier node",
                           imp->where, i, name);
    }
    return st;
}

static eie_status_t new_pending(gimp_t *imp, const Onnx__NodeProto *n, pending_t **out)
{
    if (imp->n_pend % 16 == 0) {
        pending_t *grown = realloc(imp->pend, (imp->n_pend + 16) * sizeof *grown);
        if (grown == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
        imp->pend = grown;
    }
    /* Reuse a flushed slot when there is one. */
    for (size_t i = 0; i < imp->n_pend; i++)
        if (imp->pend[i].output == NULL) {
            *out = &imp->pend[i];
            goto fill;
        }
    *out = &imp->pend[imp->n_pend++];
fill:
    memset(*out, 0, sizeof **out);
    (*out)->name = str(n->name);
    (*out)->output = str(n->output[0]);
    return EIE_STATUS_OK;
}

static eie_status_t pending_alloc(gimp_t *imp, pending_t *p, uint64_t rows, uint64_t cols)
{
    eie_limits_t lim = eie_limits_default();
    if (rows == 0 || cols == 0 || rows > lim.max_dim || cols > lim.max_dim ||
        rows * cols > lim.max_weights)
        return eie_error_set(imp->err, EIE_STATUS_LIMIT,
                             "%s: a %llu x %llu weight matrix is empty or over the limits (%u, "
                             "%llu weights)",
                             imp->where, (unsigned long long)rows, (unsigned long long)cols,
                             lim.max_dim, (unsigned long long)lim.max_weights);
    p->rows = (uint32_t)rows;
    p->cols = (uint32_t)cols;
    p->w = malloc(rows * cols * sizeof *p->w);
    p->b = calloc(rows, sizeof *p->b);
    if (p->w == NULL || p->b == NULL)
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
    return EIE_STATUS_OK;
}

/*
 * Adds the constant k, times scale, to a pending node's bias when it is one
 * value per output: a scalar, (rows) or (1, rows) after an fc; (rows, 1, 1)
 * or (1, rows, 1, 1) after a conv2d (ONNX broadcasting), or (rows) as Conv's
 * own bias input B (own).
 */
static eie_status_t fold_bias(gimp_t *imp, pending_t *p, const gconst_t *k, double scale, int own)
{
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *c;
    eie_status_t st = const_floats(imp, k, &rank, dims, &count, &c);
    if (st != EIE_STATUS_OK)
        return st;
    int per_row = count == p->rows;
    if (per_row && p->kind == EIE_LAYER_FC)
        per_row = rank == 1 || (rank == 2 && dims[0] == 1);
    else if (per_row)
        per_row = (rank == 3 && dims[1] == 1 && dims[2] == 1) ||
                  (rank == 4 && dims[0] == 1 && dims[2] == 1 && dims[3] == 1) ||
                  (rank == 1 && (own || p->rows == 1));
    if (count == 1 || per_row) {
        for (uint32_t r = 0; r < p->rows; r++) {
            double add = scale * (double)c[count == 1 ? 0 : r];
            p->b[r] = p->b_set ? p->b[r] + add : add;
        }
        p->b_set = 1;
    } else {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: '%.64s' (%zu values, rank %u) is not one value per output of "
                           "the %u-output %s it is added to",
                           imp->where, k->name, count, rank, p->rows,
                           p->kind == EIE_LAYER_FC ? "fc" : "conv2d");
    }
    free(c);
    return st;
}

/* ---- the ops ----------------------------------------------------------- */

static const char *const no_attrs[] = {NULL};

static eie_status_t fc_node(gimp_t *imp, const Onnx__NodeProto *n, const gconst_t *bk, int trans_b,
                            float alpha, const gconst_t *ck, float beta, int any_rank)
{
    const char *x;
    eie_shape_t xs;
    eie_status_t st = data_input(imp, n, 0, &x, &xs);
    if (st != EIE_STATUS_OK)
        return st;
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *b;
    if ((st = const_floats(imp, bk, &rank, dims, &count, &b)) != EIE_STATUS_OK)
        return st;
    pending_t *p = NULL;
    if (rank != 2) {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: weight '%.64s' has rank %u; eie needs a 2-D matrix", imp->where,
                           bk->name, rank);
        goto done;
    }
    uint64_t k_in = (uint64_t)(trans_b ? dims[1] : dims[0]);
    uint64_t n_out = (uint64_t)(trans_b ? dims[0] : dims[1]);
    /* MatMul also takes [N, ..., k] (a sequence after an LSTM): the last axis */
    if (xs.rank < 2 || (xs.rank > 2 && !any_rank) ||
        (uint64_t)xs.dims[xs.rank - 1] != k_in) {
        char a[160];
        eie_shape_format(&xs, a, sizeof a);
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: input '%.64s' of shape %s does not fit weight '%.64s' (%llu "
                           "inputs); eie needs [N,%llu]%s",
                           imp->where, x, a, bk->name, (unsigned long long)k_in,
                           (unsigned long long)k_in, any_rank ? " or [N,...,k]" : "");
        goto done;
    }
    if ((st = new_pending(imp, n, &p)) != EIE_STATUS_OK ||
        (st = pending_alloc(imp, p, n_out, k_in)) != EIE_STATUS_OK)
        goto done;
    p->kind = EIE_LAYER_FC;
    p->in_rank = xs.rank;
    p->input = x;
    for (uint64_t o = 0; o < n_out; o++)
        for (uint64_t i = 0; i < k_in; i++)
            p->w[o * k_in + i] =
                (double)alpha * (double)(trans_b ? b[o * k_in + i] : b[i * n_out + o]);
    if (ck)
        st = fold_bias(imp, p, ck, beta, 1);
done:
    if (st != EIE_STATUS_OK && p)
        pending_clear(p);
    free(b);
    return st;
}

static eie_status_t op_gemm(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"alpha", "beta", "transA", "transB", NULL};
    int64_t ta, tb;
    float alpha, beta;
    const gconst_t *bk, *ck = NULL;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "transA", 0, &ta)) ||
        (st = attr_int(imp, n, "transB", 0, &tb)) ||
        (st = attr_float(imp, n, "alpha", 1.0f, &alpha)) ||
        (st = attr_float(imp, n, "beta", 1.0f, &beta)) || (st = const_input(imp, n, 1, &bk)))
        return st;
    if (ta != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'transA' = %lld is not supported in a graph (inputs "
                             "are [N, features])",
                             imp->where, (long long)ta);
    if (n->n_input >= 3 && str(n->input[2])[0] != '\0' &&
        (st = const_input(imp, n, 2, &ck)) != EIE_STATUS_OK)
        return st;
    return fc_node(imp, n, bk, tb != 0, alpha, ck, beta, 0);
}

static eie_status_t op_matmul(gimp_t *imp, const Onnx__NodeProto *n)
{
    const gconst_t *bk;
    eie_status_t st;
    if ((st = check_attrs(imp, n, no_attrs)) || (st = const_input(imp, n, 1, &bk)))
        return st;
    return fc_node(imp, n, bk, 0, 1.0f, NULL, 1.0f, 1);
}

/* ONNX auto_pad: SAME_UPPER puts the odd pad at the end, SAME_LOWER at the start. */
static eie_status_t auto_pads(gimp_t *imp, const Onnx__NodeProto *n, const int64_t *in,
                              const int64_t *k_eff, const int64_t *s, int64_t *pads, int *set)
{
    const Onnx__AttributeProto *a = find_attr(n, "auto_pad");
    *set = 0;
    if (a == NULL)
        return EIE_STATUS_OK;
    char mode[32];
    snprintf(mode, sizeof mode, "%.*s", (int)(a->has_s ? a->s.len : 0),
             a->has_s ? (const char *)a->s.data : "");
    if (strcmp(mode, "NOTSET") == 0 || mode[0] == '\0')
        return EIE_STATUS_OK;
    if (find_attr(n, "pads"))
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: attribute 'auto_pad' = %s together with 'pads'", imp->where,
                             mode);
    int upper = strcmp(mode, "SAME_UPPER") == 0, lower = strcmp(mode, "SAME_LOWER") == 0;
    if (!upper && !lower && strcmp(mode, "VALID") != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'auto_pad' = '%s' is not supported (NOTSET, "
                             "SAME_UPPER, SAME_LOWER, VALID)",
                             imp->where, mode);
    for (int d = 0; d < 2; d++) {
        int64_t total = 0;
        if (upper || lower) {
            int64_t out = (in[d] + s[d] - 1) / s[d];
            total = (out - 1) * s[d] + k_eff[d] - in[d];
            if (total < 0)
                total = 0;
        }
        pads[d] = upper ? total / 2 : total - total / 2;
        pads[d + 2] = total - pads[d];
    }
    *set = 1;
    return EIE_STATUS_OK;
}

/* kernel_shape, strides, pads, dilations of a 2-D window on input shape xs. */
static eie_status_t window_attrs(gimp_t *imp, const Onnx__NodeProto *n, const eie_shape_t *xs,
                                 int64_t *kernel, int64_t *strides, int64_t *pads,
                                 int64_t *dilations)
{
    int have;
    eie_status_t st;
    if (xs->rank != 4) {
        char a[160];
        eie_shape_format(xs, a, sizeof a);
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input of shape %s; eie supports 2-D windows on [N,C,H,W]",
                             imp->where, a);
    }
    strides[0] = strides[1] = dilations[0] = dilations[1] = 1;
    pads[0] = pads[1] = pads[2] = pads[3] = 0;
    if ((st = attr_ints(imp, n, "strides", 2, 1, strides, &have)) ||
        (st = attr_ints(imp, n, "dilations", 2, 1, dilations, &have)) ||
        (st = attr_ints(imp, n, "pads", 4, 0, pads, &have)))
        return st;
    int64_t k_eff[2] = {dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1};
    int64_t auto_p[4];
    if ((st = auto_pads(imp, n, &xs->dims[2], k_eff, strides, auto_p, &have)) != EIE_STATUS_OK)
        return st;
    if (have)
        memcpy(pads, auto_p, sizeof auto_p);
    for (int d = 0; d < 4; d++)
        if (pads[d] > (int64_t)(1u << 20))
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'auto_pad' asks for a pad of %lld, over %u",
                                 imp->where, (long long)pads[d], 1u << 20);
    return EIE_STATUS_OK;
}

static eie_status_t op_conv(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                     "pads",     "strides",   NULL};
    const gconst_t *wk, *bk = NULL;
    const char *x;
    eie_shape_t xs;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = const_input(imp, n, 1, &wk)))
        return st;
    if (n->n_input >= 3 && str(n->input[2])[0] != '\0' &&
        (st = const_input(imp, n, 2, &bk)) != EIE_STATUS_OK)
        return st;
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *w;
    if ((st = const_floats(imp, wk, &rank, dims, &count, &w)) != EIE_STATUS_OK)
        return st;
    pending_t *p = NULL;
    if (rank == 4 && count == 0) {
        st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: weight '%.64s' is empty",
                           imp->where, wk->name);
        goto done;
    }
    if (rank != 4) {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: weight '%.64s' has rank %u: a %u-D convolution; eie supports "
                           "2-D convolution only",
                           imp->where, wk->name, rank, rank >= 3 ? rank - 2 : 0);
        goto done;
    }
    int64_t group, kernel[2] = {dims[2], dims[3]}, ks[2], strides[2], pads[4], dil[2];
    int have;
    if ((st = attr_int(imp, n, "group", 1, &group)) ||
        (st = attr_ints(imp, n, "kernel_shape", 2, 1, ks, &have)))
        goto done;
    if (have && (ks[0] != kernel[0] || ks[1] != kernel[1])) {
        st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                           "%s: attribute 'kernel_shape' %lldx%lld differs from weight "
                           "'%.64s' (%lldx%lld)",
                           imp->where, (long long)ks[0], (long long)ks[1], wk->name,
                           (long long)kernel[0], (long long)kernel[1]);
        goto done;
    }
    if (group < 1 || group > (int64_t)(1u << 20)) {
        st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                           "%s: attribute 'group' = %lld is outside 1..%u", imp->where,
                           (long long)group, 1u << 20);
        goto done;
    }
    if ((st = data_input(imp, n, 0, &x, &xs)) ||
        (st = window_attrs(imp, n, &xs, kernel, strides, pads, dil)))
        goto done;
    if (xs.dims[1] != dims[1] * group) {
        st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                           "%s: input '%.64s' has %lld channels, weight '%.64s' with group "
                           "%lld needs %lld",
                           imp->where, x, (long long)xs.dims[1], wk->name, (long long)group,
                           (long long)(dims[1] * group));
        goto done;
    }
    if ((st = new_pending(imp, n, &p)) != EIE_STATUS_OK ||
        (st = pending_alloc(imp, p, (uint64_t)dims[0], count / (uint64_t)dims[0])))
        goto done;
    p->kind = EIE_LAYER_CONV2D;
    p->input = x;
    p->conv = (eie_conv2d_params_t){.kernel_h = (uint32_t)kernel[0],
                                    .kernel_w = (uint32_t)kernel[1],
                                    .stride_h = (uint32_t)strides[0],
                                    .stride_w = (uint32_t)strides[1],
                                    .pad_top = (uint32_t)pads[0],
                                    .pad_left = (uint32_t)pads[1],
                                    .pad_bottom = (uint32_t)pads[2],
                                    .pad_right = (uint32_t)pads[3],
                                    .dilation_h = (uint32_t)dil[0],
                                    .dilation_w = (uint32_t)dil[1],
                                    .groups = (uint32_t)group};
    /* ONNX's [Cout, C/group, kh, kw] is row co, column (ci*kh + ky)*kw + kx already. */
    for (size_t i = 0; i < count; i++)
        p->w[i] = (double)w[i];
    if (bk)
        st = fold_bias(imp, p, bk, 1.0, 1);
done:
    if (st != EIE_STATUS_OK && p)
        pending_clear(p);
    free(w);
    return st;
}

static eie_status_t op_pool(gimp_t *imp, const Onnx__NodeProto *n, int avg)
{
    static const char *const ok_max[] = {"auto_pad", "ceil_mode",     "dilations", "kernel_shape",
                                         "pads",     "storage_order", "strides",   NULL};
    static const char *const ok_avg[] = {
        "auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides", NULL};
    const char *x;
    eie_shape_t xs;
    int64_t kernel[2], strides[2], pads[4], dil[2], ceil_mode, cip;
    int have;
    eie_status_t st;
    if ((st = check_attrs(imp, n, avg ? ok_avg : ok_max)) ||
        (st = attr_ints(imp, n, "kernel_shape", 2, 1, kernel, &have)))
        return st;
    if (!have)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: attribute 'kernel_shape' is missing", imp->where);
    if ((st = attr_int(imp, n, "ceil_mode", 0, &ceil_mode)) ||
        (st = attr_int(imp, n, "count_include_pad", 0, &cip)))
        return st;
    if (n->n_output >= 2 && str(n->output[1])[0] != '\0' && uses(imp, n->output[1]) > 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: output 'Indices' ('%.64s') is used; eie computes values only",
                             imp->where, n->output[1]);
    if (ceil_mode != 0 && ceil_mode != 1)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: attribute 'ceil_mode' = %lld is neither 0 nor 1", imp->where,
                             (long long)ceil_mode);
    if (cip != 0 && cip != 1)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: attribute 'count_include_pad' = %lld is neither 0 nor 1",
                             imp->where, (long long)cip);
    if ((st = data_input(imp, n, 0, &x, &xs)) ||
        (st = window_attrs(imp, n, &xs, kernel, strides, pads, dil)))
        return st;
    if (dil[0] != 1 || dil[1] != 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'dilations' = %lld,%lld is not supported for pooling",
                             imp->where, (long long)dil[0], (long long)dil[1]);
    eie_node_desc_t d = {.kind = avg ? EIE_LAYER_AVGPOOL2D : EIE_LAYER_MAXPOOL2D,
                         .name = str(n->name),
                         .n_inputs = 1,
                         .inputs = &x,
                         .output = str(n->output[0]),
                         .pool = {.kernel_h = (uint32_t)kernel[0],
                                  .kernel_w = (uint32_t)kernel[1],
                                  .stride_h = (uint32_t)strides[0],
                                  .stride_w = (uint32_t)strides[1],
                                  .pad_top = (uint32_t)pads[0],
                                  .pad_left = (uint32_t)pads[1],
                                  .pad_bottom = (uint32_t)pads[2],
                                  .pad_right = (uint32_t)pads[3],
                                  .ceil_mode = (uint32_t)ceil_mode,
                                  .count_include_pad = (uint32_t)cip}};
    return add_node(imp, &d);
}

/* BatchNormalization (inference) folds into the conv2d or fc whose only reader it is. */
static eie_status_t op_batchnorm(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"epsilon", "momentum", "spatial", "training_mode", NULL};
    int64_t training, spatial;
    float eps;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "training_mode", 0, &training)) ||
        (st = attr_int(imp, n, "spatial", 1, &spatial)) ||
        (st = attr_float(imp, n, "epsilon", 1e-5f, &eps)))
        return st;
    if (training != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'training_mode' = %lld is not supported (inference "
                             "only)",
                             imp->where, (long long)training);
    if (spatial != 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'spatial' = %lld is not supported", imp->where,
                             (long long)spatial);
    for (size_t o = 1; o < n->n_output; o++)
        if (str(n->output[o])[0] != '\0' && uses(imp, n->output[o]) > 0)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: training output %zu '%.64s' is used", imp->where, o,
                                 n->output[o]);
    const char *xname = n->n_input ? str(n->input[0]) : "";
    pending_t *p = foldable(imp, xname);
    if (p != NULL && p->kind == EIE_LAYER_FC && p->in_rank > 2)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input '%.64s' is a MatMul over a rank-%u tensor, whose axis 1 "
                             "is not its features; eie folds BatchNormalization into an fc of "
                             "[N, features] only",
                             imp->where, xname, p->in_rank);
    if (p == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input '%.64s' is not the output of a Conv, Gemm or MatMul read "
                             "by this node alone; eie folds BatchNormalization into the layer "
                             "before it",
                             imp->where, xname);
    float *v[4] = {NULL, NULL, NULL, NULL};
    const char *names[4] = {"scale", "B", "mean", "var"};
    for (size_t k = 0; k < 4 && st == EIE_STATUS_OK; k++) {
        const gconst_t *c;
        uint32_t rank;
        int64_t dims[EIE_ONNX_MAX_RANK];
        size_t count;
        if ((st = const_input(imp, n, k + 1, &c)) ||
            (st = const_floats(imp, c, &rank, dims, &count, &v[k])))
            break;
        if (count != p->rows)
            st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                               "%s: %s '%.64s' has %zu values for %u channels", imp->where,
                               names[k], c->name, count, p->rows);
    }
    if (st == EIE_STATUS_OK) {
        /* y = (x - mean) / sqrt(var + eps) * scale + B, so with s = scale / sqrt(var + eps):
           W' = s W and b' = s (b - mean) + B, exact in float64, rounded once at flush. */
        for (uint32_t r = 0; r < p->rows && st == EIE_STATUS_OK; r++) {
            double s = (double)v[0][r] / sqrt((double)v[3][r] + (double)eps);
            if (!isfinite(s)) {
                st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                   "%s: channel %u has var %g, scale %g: not a finite factor",
                                   imp->where, r, (double)v[3][r], (double)v[0][r]);
                break;
            }
            for (uint32_t c = 0; c < p->cols; c++)
                p->w[(size_t)r * p->cols + c] *= s;
            p->b[r] = s * (p->b[r] - (double)v[2][r]) + (double)v[1][r];
        }
        p->b_set = 1;
        p->output = str(n->output[0]);
    }
    for (size_t k = 0; k < 4; k++)
        free(v[k]);
    return st;
}

static eie_status_t op_add(gimp_t *imp, const Onnx__NodeProto *n)
{
    eie_status_t st = check_attrs(imp, n, no_attrs);
    if (st != EIE_STATUS_OK)
        return st;
    if (n->n_input != 2)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s has %zu inputs, not 2",
                             imp->where, n->n_input);
    const gconst_t *k0 = find_const(imp, n->input[0]), *k1 = find_const(imp, n->input[1]);
    if (k0 || k1) {
        const gconst_t *k = k0 ? k0 : k1;
        const char *other = str(n->input[k0 ? 1 : 0]);
        pending_t *p = k0 && k1 ? NULL : foldable(imp, other);
        if (p == NULL)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: adding constant '%.64s' is supported only as the bias of a "
                                 "Conv, Gemm or MatMul whose only reader is this Add",
                                 imp->where, k->name);
        if ((st = fold_bias(imp, p, k, 1.0, 0)) == EIE_STATUS_OK)
            p->output = str(n->output[0]);
        return st;
    }
    const char *in[2];
    eie_shape_t s[2];
    if ((st = data_input(imp, n, 0, &in[0], &s[0])) || (st = data_input(imp, n, 1, &in[1], &s[1])))
        return st;
    if (!eie_shape_equal(&s[0], &s[1])) {
        char a[160], b[160];
        eie_shape_format(&s[0], a, sizeof a);
        eie_shape_format(&s[1], b, sizeof b);
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: Add of shapes %s and %s; eie adds tensors of one shape (no "
                             "broadcasting)",
                             imp->where, a, b);
    }
    eie_node_desc_t d = {.kind = EIE_LAYER_ADD,
                         .name = str(n->name),
                         .n_inputs = 2,
                         .inputs = in,
                         .output = str(n->output[0])};
    return add_node(imp, &d);
}

static eie_status_t op_concat(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"axis", NULL};
    int64_t axis;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "axis", INT64_MIN, &axis)))
        return st;
    if (axis == INT64_MIN)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: attribute 'axis' is missing",
                             imp->where);
    if (n->n_input < 2 || n->n_input > 1024)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s has %zu inputs; eie concatenates 2..1024", imp->where, n->n_input);
    const char **in = calloc(n->n_input, sizeof *in);
    if (in == NULL)
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
    eie_shape_t s;
    for (size_t i = 0; i < n->n_input && st == EIE_STATUS_OK; i++)
        st = data_input(imp, n, i, &in[i], &s);
    if (st == EIE_STATUS_OK) {
        if (axis < 0)
            axis += s.rank;
        if (axis < 1 || axis >= (int64_t)s.rank)
            st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                               "%s: attribute 'axis' = %lld; eie concatenates along axes 1..%u "
                               "(not the batch)",
                               imp->where, (long long)axis, s.rank - 1);
    }
    if (st == EIE_STATUS_OK) {
        eie_node_desc_t d = {.kind = EIE_LAYER_CONCAT,
                             .name = str(n->name),
                             .n_inputs = n->n_input,
                             .inputs = in,
                             .output = str(n->output[0]),
                             .axis = (int32_t)axis};
        st = add_node(imp, &d);
    }
    free(in);
    return st;
}

static eie_status_t op_act(gimp_t *imp, const Onnx__NodeProto *n, eie_act_t act)
{
    static const char *const ok_softmax[] = {"axis", NULL};
    const char *x;
    eie_shape_t xs;
    int64_t axis = 0;
    eie_status_t st = check_attrs(imp, n, act == EIE_ACT_SOFTMAX ? ok_softmax : no_attrs);
    if (st == EIE_STATUS_OK)
        st = data_input(imp, n, 0, &x, &xs);
    if (st != EIE_STATUS_OK)
        return st;
    if (act == EIE_ACT_SOFTMAX) {
        if ((st = attr_int(imp, n, "axis", imp->opset >= 13 ? -1 : 1, &axis)) != EIE_STATUS_OK)
            return st;
        if (axis < 0)
            axis += xs.rank;
        /* Before opset 13 softmax runs over the input coerced to 2-D at axis, which is
           softmax over one axis only when that axis is the last. */
        if (axis < 1 || axis >= (int64_t)xs.rank ||
            (imp->opset < 13 && axis != (int64_t)xs.rank - 1))
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'axis' = %lld on a rank-%u tensor (opset %lld); "
                                 "eie takes softmax over one axis other than the batch",
                                 imp->where, (long long)axis, xs.rank, (long long)imp->opset);
    }
    eie_node_desc_t d = {.kind = EIE_LAYER_ACTIVATION,
                         .name = str(n->name),
                         .n_inputs = 1,
                         .inputs = &x,
                         .output = str(n->output[0]),
                         .act = act,
                         .axis = (int32_t)axis};
    return add_node(imp, &d);
}

static eie_status_t reshape_node(gimp_t *imp, const Onnx__NodeProto *n, const char *x,
                                 const eie_shape_t *target)
{
    eie_node_desc_t d = {.kind = EIE_LAYER_RESHAPE,
                         .name = str(n->name),
                         .n_inputs = 1,
                         .inputs = &x,
                         .output = str(n->output[0]),
                         .shape = *target};
    return add_node(imp, &d);
}

static eie_status_t op_flatten(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"axis", NULL};
    const char *x;
    eie_shape_t xs;
    int64_t axis;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "axis", 1, &axis)) ||
        (st = data_input(imp, n, 0, &x, &xs)))
        return st;
    if (axis < 0)
        axis += xs.rank;
    if (axis != 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'axis' = %lld would mix the batch into features; "
                             "eie supports axis 1",
                             imp->where, (long long)axis);
    eie_node_desc_t d = {.kind = EIE_LAYER_FLATTEN,
                         .name = str(n->name),
                         .n_inputs = 1,
                         .inputs = &x,
                         .output = str(n->output[0])};
    return add_node(imp, &d);
}

static eie_status_t op_reshape(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"allowzero", NULL};
    const gconst_t *k;
    const char *x;
    eie_shape_t xs;
    int64_t allowzero, *shape = NULL;
    size_t count;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "allowzero", 0, &allowzero)) ||
        (st = const_input(imp, n, 1, &k)) || (st = data_input(imp, n, 0, &x, &xs)) ||
        (st = const_int64s(imp, k, EIE_MAX_RANK, &count, &shape)))
        return st;
    eie_shape_t t = {.rank = (uint32_t)count};
    int64_t infer = -1;
    uint64_t known = 1;
    for (size_t i = 0; i < count && st == EIE_STATUS_OK; i++) {
        int64_t v = shape[i];
        if (v == 0 && !allowzero && i < xs.rank)
            v = xs.dims[i];
        if (i == 0) {
            /* The batch stays where it is: 0 (copy), -1 or the input's fixed batch. */
            if (!(shape[0] == 0 || shape[0] == -1 || shape[0] == BATCH_DIM ||
                  (xs.dims[0] > 0 && v == xs.dims[0])))
                st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                   "%s: shape '%.64s' puts %lld in the batch dimension; eie "
                                   "reshapes within a sample (use 0 or -1 first)",
                                   imp->where, k->name, (long long)shape[0]);
            t.dims[0] = xs.dims[0];
            continue;
        }
        if (v == BATCH_DIM) {
            st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                               "%s: shape '%.64s' puts the batch size in dimension %zu; eie "
                               "reshapes within a sample",
                               imp->where, k->name, i);
        } else if (v == -1 && infer < 0) {
            infer = (int64_t)i;
        } else if (v < 1 || v > (int64_t)(1u << 28)) {
            st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                               "%s: shape '%.64s' dimension %zu is %lld", imp->where, k->name, i,
                               (long long)shape[i]);
        } else {
            t.dims[i] = v;
            known *= (uint64_t)v;
        }
    }
    free(shape);
    if (st != EIE_STATUS_OK)
        return st;
    if (count < 1)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED, "%s: shape '%.64s' is empty",
                             imp->where, k->name);
    if (infer > 0) {
        uint64_t all = eie_shape_sample_elements(&xs);
        if (known == 0 || all % known != 0)
            return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                 "%s: shape '%.64s' does not divide %llu elements", imp->where,
                                 k->name, (unsigned long long)all);
        t.dims[infer] = (int64_t)(all / known);
    }
    return reshape_node(imp, n, x, &t);
}

/* Squeeze / Unsqueeze: axes from the attribute (opset < 13) or input 1. */
static eie_status_t op_squeeze(gimp_t *imp, const Onnx__NodeProto *n, int unsqueeze)
{
    static const char *const ok[] = {"axes", NULL};
    const char *x;
    eie_shape_t xs;
    int64_t axes[EIE_MAX_RANK];
    size_t n_axes = 0;
    eie_status_t st;
    if ((st = check_attrs(imp, n, ok)) || (st = data_input(imp, n, 0, &x, &xs)))
        return st;
    const Onnx__AttributeProto *a = find_attr(n, "axes");
    if (a) {
        if (a->n_ints > EIE_MAX_RANK)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED, "%s: %zu axes", imp->where,
                                 a->n_ints);
        n_axes = a->n_ints;
        if (n_axes > 0) /* an empty list has no array (protobuf-c: NULL) */
            memcpy(axes, a->ints, n_axes * sizeof *axes);
    } else if (n->n_input >= 2 && str(n->input[1])[0] != '\0') {
        const gconst_t *k;
        int64_t *v;
        if ((st = const_input(imp, n, 1, &k)) ||
            (st = const_int64s(imp, k, EIE_MAX_RANK, &n_axes, &v)))
            return st;
        memcpy(axes, v, n_axes * sizeof *axes);
        free(v);
    }
    uint32_t out_rank = unsqueeze ? xs.rank + (uint32_t)n_axes : xs.rank;
    if (unsqueeze && (n_axes == 0 || out_rank > EIE_MAX_RANK))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: %zu axes on a rank-%u tensor; eie needs 1 to rank %u", imp->where,
                             n_axes, xs.rank, EIE_MAX_RANK);
    int mark[EIE_MAX_RANK] = {0};
    for (size_t i = 0; i < n_axes; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + out_rank : axes[i];
        if (ax < 1 || ax >= (int64_t)out_rank || mark[ax])
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: axis %lld is the batch, repeated or outside a rank-%u "
                                 "tensor; eie changes a sample's shape only",
                                 imp->where, (long long)axes[i], out_rank);
        if (!unsqueeze && xs.dims[ax] != 1)
            return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                 "%s: axis %lld has size %lld, not 1", imp->where,
                                 (long long)axes[i], (long long)xs.dims[ax]);
        mark[ax] = 1;
    }
    if (!unsqueeze && n_axes == 0)
        for (uint32_t d = 1; d < xs.rank; d++)
            mark[d] = xs.dims[d] == 1;
    eie_shape_t t = {.rank = 0};
    for (uint32_t d = 0, src = 0; d < (unsqueeze ? out_rank : xs.rank); d++) {
        if (unsqueeze)
            t.dims[t.rank++] = mark[d] ? 1 : xs.dims[src++];
        else if (!mark[d])
            t.dims[t.rank++] = xs.dims[d];
    }
    return reshape_node(imp, n, x, &t);
}

/* Identity, Dropout: the output names the input's value, unless it is a graph output. */
static eie_status_t op_identity(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok_dropout[] = {"ratio", "seed", "is_test", NULL};
    eie_status_t st = check_attrs(imp, n, is_op(n, "Dropout") ? ok_dropout : no_attrs);
    if (st != EIE_STATUS_OK)
        return st;
    if (n->n_output >= 2 && str(n->output[1])[0] != '\0' && uses(imp, n->output[1]) > 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: the dropout mask output '%.64s' is used; eie imports "
                             "inference graphs",
                             imp->where, n->output[1]);
    const char *out = str(n->output[0]);
    if (is_graph_output(imp, out)) {
        /* A graph output keeps its name: an identity node makes it. */
        const char *x;
        eie_shape_t xs;
        if ((st = data_input(imp, n, 0, &x, &xs)) != EIE_STATUS_OK)
            return st;
        eie_node_desc_t d = {.kind = EIE_LAYER_ACTIVATION,
                             .name = str(n->name),
                             .n_inputs = 1,
                             .inputs = &x,
                             .output = out,
                             .act = EIE_ACT_IDENTITY};
        return add_node(imp, &d);
    }
    if (n->n_input < 1)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s has no input", imp->where);
    const char *in = str(n->input[0]);
    /* The identity of a constant is that constant (PyTorch writes these for shared weights). */
    const gconst_t *k = find_const(imp, in);
    if (k != NULL)
        return add_const(imp, out, k->proto, k->bound);
    for (size_t i = imp->n_aliases; i-- > 0;)
        if (strcmp(imp->aliases[i].onnx, in) == 0) {
            in = imp->aliases[i].eie;
            break;
        }
    if (imp->n_aliases % 64 == 0) {
        alias_t *grown = realloc(imp->aliases, (imp->n_aliases + 64) * sizeof *grown);
        if (grown == NULL)
            return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
        imp->aliases = grown;
    }
    imp->aliases[imp->n_aliases++] = (alias_t){out, in};
    return EIE_STATUS_OK;
}

static eie_status_t fold_transpose(gimp_t *imp, const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *perm = find_attr(n, "perm");
    static const char *const ok[] = {"perm", NULL};
    eie_status_t st = check_attrs(imp, n, ok);
    if (st != EIE_STATUS_OK)
        return st;
    if (perm && !(perm->n_ints == 2 && perm->ints[0] == 1 && perm->ints[1] == 0))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'perm' is supported only as (1, 0) on a 2-D constant",
                             imp->where);
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *data;
    if ((st = const_floats(imp, find_const(imp, n->input[0]), &rank, dims, &count, &data)))
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
    *t = (eie_onnx_tensor_t){
        .rank = 2, .dims = {(int64_t)c, (int64_t)r}, .count = count, .data = out};
    if ((st = add_const(imp, n->output[0], NULL, t)) != EIE_STATUS_OK) {
        eie_onnx_tensor_free(t);
        return st;
    }
    imp->consts[imp->n_consts - 1].owned = t;
    return EIE_STATUS_OK;
}

/* ---- shape arithmetic, folded at import -------------------------------- */

/* Is k an int64 constant (a shape value or an int64 tensor)? */
static int is_int_const(const gconst_t *k)
{
    return k && (k->ints ||
                 (k->proto && k->proto->has_data_type && k->proto->data_type == EIE_ONNX_INT64));
}

/* The values and rank (0 or 1) of an int64 constant of at most EIE_MAX_RANK values. */
static eie_status_t int_values(gimp_t *imp, const gconst_t *k, int64_t *vals, size_t *n,
                               uint32_t *rank)
{
    int64_t *v;
    eie_status_t st = const_int64s(imp, k, EIE_MAX_RANK, n, &v);
    if (st != EIE_STATUS_OK)
        return st;
    memcpy(vals, v, *n * sizeof *vals);
    free(v);
    *rank = k->ints ? k->ints_rank : (uint32_t)k->proto->n_dims;
    return EIE_STATUS_OK;
}

static eie_status_t add_shape_value(gimp_t *imp, const char *name, const int64_t *vals, size_t n,
                                    uint32_t rank)
{
    int64_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (copy == NULL)
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
    memcpy(copy, vals, n * sizeof *copy);
    eie_status_t st = add_const(imp, name, NULL, NULL);
    if (st != EIE_STATUS_OK) {
        free(copy);
        return st;
    }
    gconst_t *k = &imp->consts[imp->n_consts - 1];
    k->ints = copy;
    k->n_ints = n;
    k->ints_rank = rank;
    return EIE_STATUS_OK;
}

/* Shape of a computed tensor: its dimensions, the batch as a marker that Reshape copies. */
static eie_status_t op_shape(gimp_t *imp, const Onnx__NodeProto *n)
{
    const char *x;
    eie_shape_t xs;
    eie_status_t st = check_attrs(imp, n, no_attrs);
    if (st == EIE_STATUS_OK)
        st = data_input(imp, n, 0, &x, &xs);
    if (st != EIE_STATUS_OK)
        return st;
    int64_t v[EIE_MAX_RANK];
    for (uint32_t d = 0; d < xs.rank; d++)
        v[d] = d == 0 && xs.dims[0] < 0 ? BATCH_DIM : xs.dims[d];
    return add_shape_value(imp, n->output[0], v, xs.rank, 1);
}

/* Gather, Unsqueeze and Concat of int64 constants (PyTorch's x.view(x.size(0), -1)). */
static eie_status_t fold_ints(gimp_t *imp, const Onnx__NodeProto *n)
{
    int64_t a[EIE_MAX_RANK], out[EIE_MAX_RANK];
    size_t na, n_out = 0;
    uint32_t ra, r_out = 1;
    eie_status_t st;
    if (is_op(n, "Gather")) {
        static const char *const ok[] = {"axis", NULL};
        int64_t axis, idx[EIE_MAX_RANK];
        size_t ni;
        uint32_t ri;
        if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "axis", 0, &axis)) ||
            (st = int_values(imp, find_const(imp, n->input[0]), a, &na, &ra)) ||
            (st = int_values(imp, find_const(imp, n->input[1]), idx, &ni, &ri)))
            return st;
        if (axis != 0 || ra != 1)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'axis' = %lld on a rank-%u value; eie folds "
                                 "Gather of a vector only",
                                 imp->where, (long long)axis, ra);
        for (size_t i = 0; i < ni; i++) {
            int64_t j = idx[i] < 0 ? idx[i] + (int64_t)na : idx[i];
            if (j < 0 || j >= (int64_t)na)
                return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                     "%s: index %lld outside a %zu-value vector", imp->where,
                                     (long long)idx[i], na);
            out[n_out++] = a[j];
        }
        r_out = ri;
    } else if (is_op(n, "Unsqueeze")) {
        static const char *const ok[] = {"axes", NULL};
        const Onnx__AttributeProto *axes = find_attr(n, "axes");
        int64_t ax[EIE_MAX_RANK];
        size_t nx = 0;
        uint32_t rx;
        if ((st = check_attrs(imp, n, ok)) ||
            (st = int_values(imp, find_const(imp, n->input[0]), a, &na, &ra)))
            return st;
        if (axes) {
            nx = axes->n_ints;
            ax[0] = nx ? axes->ints[0] : 1;
        } else if (n->n_input < 2 || (st = int_values(imp, find_const(imp, n->input[1]), ax, &nx,
                                                      &rx)) != EIE_STATUS_OK) {
            return st != EIE_STATUS_OK
                       ? st
                       : eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s: no axes", imp->where);
        }
        if (ra != 0 || nx != 1 || (ax[0] != 0 && ax[0] != -1))
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: eie folds Unsqueeze of a scalar at axis 0 only", imp->where);
        memcpy(out, a, na * sizeof *a);
        n_out = na;
    } else {
        static const char *const ok[] = {"axis", NULL};
        int64_t axis;
        if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "axis", 0, &axis)))
            return st;
        if (axis != 0 && axis != -1)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'axis' = %lld on vectors", imp->where,
                                 (long long)axis);
        for (size_t i = 0; i < n->n_input; i++) {
            if ((st = int_values(imp, find_const(imp, n->input[i]), a, &na, &ra)))
                return st;
            if (ra != 1 || n_out + na > EIE_MAX_RANK)
                return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                     "%s: eie folds Concat of vectors of at most %u values",
                                     imp->where, EIE_MAX_RANK);
            memcpy(out + n_out, a, na * sizeof *a);
            n_out += na;
        }
    }
    return add_shape_value(imp, n->output[0], out, n_out, r_out);
}

/*
 * Expand of a float constant to a constant shape (exporters broadcast a stored
 * LSTM initial state over the batch this way: Shape, Gather, Concat, Expand),
 * folded to the broadcast constant.
 */
static eie_status_t fold_expand(gimp_t *imp, const Onnx__NodeProto *n)
{
    eie_status_t st = check_attrs(imp, n, no_attrs);
    const gconst_t *k = find_const(imp, n->input[0]);
    int64_t shape[EIE_MAX_RANK];
    size_t ns;
    uint32_t rs, rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    float *data;
    if (st != EIE_STATUS_OK || (st = int_values(imp, find_const(imp, n->input[1]), shape, &ns,
                                                &rs)) != EIE_STATUS_OK)
        return st;
    if ((st = const_floats(imp, k, &rank, dims, &count, &data)) != EIE_STATUS_OK)
        return st;
    uint64_t total = 1;
    int ok = ns >= rank && ns <= EIE_MAX_RANK;
    int64_t od[EIE_MAX_RANK];
    for (size_t d = 0; ok && d < ns; d++) {
        int64_t in = d + rank >= ns ? dims[d + rank - ns] : 1;
        od[d] = shape[d] == BATCH_DIM ? -1 : (in > shape[d] ? in : shape[d]);
        ok = od[d] >= 1 && (in == 1 || in == od[d]) && od[d] <= (int64_t)EIE_ONNX_MAX_ELEMENTS;
        total *= ok ? (uint64_t)od[d] : 1;
        ok = ok && total <= EIE_ONNX_MAX_ELEMENTS;
    }
    if (!ok) {
        free(data);
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: eie folds Expand of a constant to a fixed shape it broadcasts "
                             "to (not the batch size, at most %llu values)",
                             imp->where, (unsigned long long)EIE_ONNX_MAX_ELEMENTS);
    }
    eie_onnx_tensor_t *t = calloc(1, sizeof *t);
    float *out = malloc(total * sizeof *out);
    if (t == NULL || out == NULL) {
        free(t);
        free(out);
        free(data);
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
    }
    for (uint64_t i = 0; i < total; i++) {
        uint64_t rem = i, src = 0, stride = 1;
        for (size_t d = ns; d-- > 0;) {
            uint64_t c = rem % (uint64_t)od[d];
            rem /= (uint64_t)od[d];
            if (d + rank >= ns) {
                int64_t in = dims[d + rank - ns];
                src += (in == 1 ? 0 : c) * stride;
                stride *= (uint64_t)in;
            }
        }
        out[i] = data[src];
    }
    free(data);
    *t = (eie_onnx_tensor_t){.rank = (uint32_t)ns, .count = total, .data = out};
    memcpy(t->dims, od, ns * sizeof *od);
    if ((st = add_const(imp, n->output[0], NULL, t)) != EIE_STATUS_OK) {
        eie_onnx_tensor_free(t);
        return st;
    }
    imp->consts[imp->n_consts - 1].owned = t;
    return EIE_STATUS_OK;
}

/* An optional constant input's floats, which must hold exactly want values. */
static eie_status_t lstm_const(gimp_t *imp, const Onnx__NodeProto *n, size_t i, const char *what,
                               size_t want, float **out)
{
    *out = NULL;
    if (i >= n->n_input || str(n->input[i])[0] == '\0')
        return EIE_STATUS_OK;
    const gconst_t *k = find_const(imp, n->input[i]);
    if (k == NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input '%s' ('%.64s') is computed; eie takes it as an "
                             "initializer (or a constant Expand of one)%s",
                             imp->where, what, n->input[i],
                             i >= 5 ? " or a graph input" : "");
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count;
    eie_status_t st = const_floats(imp, k, &rank, dims, &count, out);
    if (st == EIE_STATUS_OK && count != want) {
        free(*out);
        *out = NULL;
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: input '%s' has %zu values, needs %zu", imp->where, what, count,
                             want);
    }
    return st;
}

/* sequence_lens, int32 as ONNX defines it (int64 accepted too): at most max values. */
static eie_status_t lstm_lens(gimp_t *imp, const gconst_t *k, size_t max, size_t *n,
                              int64_t **out)
{
    const Onnx__TensorProto *t = k->proto;
    if (t == NULL || !t->has_data_type || t->data_type != 6 /* INT32 */)
        return const_int64s(imp, k, max, n, out);
    size_t count = 1;
    for (size_t d = 0; d < t->n_dims; d++)
        count *= t->dims[d] >= 0 && t->dims[d] <= (int64_t)max ? (size_t)t->dims[d] : max + 1;
    int raw = t->has_raw_data && t->raw_data.len > 0;
    if (t->n_dims != 1 || count > max || (raw ? t->raw_data.len != 4 * count
                                              : t->n_int32_data != count))
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                             "%s: input 'sequence_lens' is not a vector of %zu int32 values",
                             imp->where, max);
    if ((*out = malloc((count ? count : 1) * sizeof **out)) == NULL)
        return eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < count; i++) {
        int32_t v;
        if (raw)
            memcpy(&v, t->raw_data.data + 4 * i, 4);
        else
            v = t->int32_data[i];
        (*out)[i] = v;
    }
    *n = count;
    return EIE_STATUS_OK;
}

/*
 * ONNX LSTM (opsets 7-14), forward, default activations, layout 0: one lstm
 * node whose matrix is [W | R] with rows unit-major (FORMAT.md "LSTM").
 * What eie does not compute is refused naming the attribute or input.
 */
static eie_status_t op_lstm(gimp_t *imp, const Onnx__NodeProto *n)
{
    static const char *const ok[] = {"hidden_size", "direction", "layout", "activations",
                                     "activation_alpha", "activation_beta", "clip",
                                     "input_forget", NULL};
    static const char *const dflt_act[] = {"Sigmoid", "Tanh", "Tanh"};
    eie_status_t st;
    int64_t hs, layout, input_forget;
    if ((st = check_attrs(imp, n, ok)) || (st = attr_int(imp, n, "hidden_size", 0, &hs)) ||
        (st = attr_int(imp, n, "layout", 0, &layout)) ||
        (st = attr_int(imp, n, "input_forget", 0, &input_forget)))
        return st;
    const Onnx__AttributeProto *a;
    if ((a = find_attr(n, "direction")) != NULL &&
        !(a->s.len == 7 && memcmp(a->s.data, "forward", 7) == 0))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'direction' = '%.*s'; eie computes 'forward' only",
                             imp->where, (int)(a->s.len > 32 ? 32 : a->s.len),
                             (const char *)a->s.data);
    if (layout != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'layout' = %lld; eie takes layout 0 ([T, N, I])",
                             imp->where, (long long)layout);
    if (find_attr(n, "clip") != NULL)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'clip' is not supported (eie does not clip the "
                             "cell input)",
                             imp->where);
    if (input_forget != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'input_forget' = %lld is not supported", imp->where,
                             (long long)input_forget);
    if (find_attr(n, "activation_alpha") || find_attr(n, "activation_beta"))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute '%s' is not supported (default activations only)",
                             imp->where,
                             find_attr(n, "activation_alpha") ? "activation_alpha"
                                                              : "activation_beta");
    if ((a = find_attr(n, "activations")) != NULL) {
        int same = a->n_strings == 3;
        for (size_t k = 0; same && k < 3; k++)
            same = a->strings[k].len == strlen(dflt_act[k]) &&
                   memcmp(a->strings[k].data, dflt_act[k], a->strings[k].len) == 0;
        if (!same)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'activations' is not (Sigmoid, Tanh, Tanh); eie "
                                 "computes the default activations only",
                                 imp->where);
    }
    if (n->n_input > 7 && str(n->input[7])[0] != '\0')
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input 'P' (peepholes) is not supported", imp->where);
    const char *x;
    eie_shape_t xs;
    const gconst_t *wk, *rk;
    if ((st = data_input(imp, n, 0, &x, &xs)) || (st = const_input(imp, n, 1, &wk)) ||
        (st = const_input(imp, n, 2, &rk)))
        return st;
    if (xs.rank != 3) {
        char sb[160];
        eie_shape_format(&xs, sb, sizeof sb);
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: input X is %s, not [T, N, I]", imp->where, sb);
    }
    uint64_t I = (uint64_t)xs.dims[2], N = (uint64_t)xs.dims[1];
    if (hs < 1 || hs > (1 << 18))
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: attribute 'hidden_size' = %lld not in 1..%d", imp->where,
                             (long long)hs, 1 << 18);
    uint64_t H = (uint64_t)hs, cols = I + H;
    /* An initial state that is no constant is fed by a graph input, [1, N, H] each run
       (the builder checks it is one, of that shape). */
    const char *fed[2] = {NULL, NULL};
    for (size_t k = 0; k < 2; k++) {
        const char *in = 5 + k < n->n_input ? str(n->input[5 + k]) : "";
        eie_shape_t ss;
        if (in[0] != '\0' && find_const(imp, in) == NULL &&
            (st = data_input(imp, n, 5 + k, &fed[k], &ss)) != EIE_STATUS_OK)
            return st;
    }
    float *W = NULL, *R = NULL, *B = NULL, *h0 = NULL, *c0 = NULL, *dense = NULL, *bias = NULL;
    float *book = NULL;
    uint8_t *codes = NULL;
    char *names = NULL;
    if ((st = lstm_const(imp, n, 1, "W", 4 * H * I, &W)) ||
        (st = lstm_const(imp, n, 2, "R", 4 * H * H, &R)) ||
        (st = lstm_const(imp, n, 3, "B", 8 * H, &B)) ||
        (!fed[0] && (st = lstm_const(imp, n, 5, "initial_h", N * H, &h0))) ||
        (!fed[1] && (st = lstm_const(imp, n, 6, "initial_c", N * H, &c0))))
        goto done;
    if (n->n_input > 4 && str(n->input[4])[0] != '\0') {
        const gconst_t *k = find_const(imp, n->input[4]);
        int64_t *lens = NULL;
        size_t nl = 0;
        if (k == NULL)
            st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                               "%s: input 'sequence_lens' is computed; eie runs sequences of one "
                               "length, the input's T",
                               imp->where);
        else if ((st = lstm_lens(imp, k, N, &nl, &lens)) == EIE_STATUS_OK) {
            for (size_t q = 0; q < nl && st == EIE_STATUS_OK; q++)
                if (lens[q] != xs.dims[0])
                    st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                       "%s: input 'sequence_lens'[%zu] = %lld but eie runs every "
                                       "sequence for the input's T = %lld steps",
                                       imp->where, q, (long long)lens[q], (long long)xs.dims[0]);
        }
        free(lens);
        if (st != EIE_STATUS_OK)
            goto done;
    }
    dense = calloc(4 * H * cols, sizeof *dense);
    bias = malloc(4 * H * sizeof *bias);
    names = malloc(3 * 300);
    if (dense == NULL || bias == NULL || names == NULL) {
        st = eie_error_set(imp->err, EIE_STATUS_NO_MEMORY, "out of memory for %s", imp->where);
        goto done;
    }
    /* ONNX's gate blocks i, o, f, c of H rows each become rows 4j + g. */
    for (uint64_t j = 0; j < H; j++)
        for (uint64_t g = 0; g < 4; g++) {
            uint64_t src = g * H + j, dst = 4 * j + g;
            memcpy(dense + dst * cols, W + src * I, I * sizeof *dense);
            memcpy(dense + dst * cols + I, R + src * H, H * sizeof *dense);
            bias[dst] = B ? B[src] + B[4 * H + src] : 0.0f;
            if (!isfinite(bias[dst])) {
                st = eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                   "%s: bias Wb + Rb of row %llu is not finite", imp->where,
                                   (unsigned long long)src);
                goto done;
            }
        }
    /* Y is always made; an absent Y next to a used Y_h gets a name of its own. */
    const char *outs[3];
    for (size_t o = 0; o < 3; o++) {
        outs[o] = o < n->n_output ? str(n->output[o]) : "";
        if (outs[o][0] == '\0' && (o == 0 || (o == 1 && n->n_output > 2 &&
                                              str(n->output[2])[0] != '\0'))) {
            snprintf(names + o * 300, 300, "%.200s:lstm_%s", str(n->name), o ? "Y_h" : "Y");
            outs[o] = names + o * 300;
        }
        if (o > 0 && outs[o][0] != '\0' &&
            uses(imp, outs[o]) > (size_t)is_graph_output(imp, outs[o])) {
            st = eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                               "%s: output '%s' ('%.64s') is read by another node; eie gives an "
                               "LSTM's final state as a graph output only",
                               imp->where, o == 1 ? "Y_h" : "Y_c", outs[o]);
            goto done;
        }
    }
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .name = str(n->name), .n_inputs = 1,
                         .inputs = &x, .output = outs[0], .rows = (uint32_t)(4 * H)};
    d.lstm = (eie_lstm_desc_t){.hidden_size = (uint32_t)H, .initial_h = h0, .initial_c = c0,
                               .initial_h_input = fed[0], .initial_c_input = fed[1],
                               .output_h = outs[1][0] ? outs[1] : NULL,
                               .output_c = outs[2][0] ? outs[2] : NULL};
    if ((st = choose_storage(imp, dense, 4 * H * cols, &d.weights, &book, &codes)) != 0)
        goto done;
    d.weights.bias = bias;
    st = add_node(imp, &d);
done:
    free(W);
    free(R);
    free(B);
    free(h0);
    free(c0);
    free(dense);
    free(bias);
    free(book);
    free(codes);
    free(names);
    return st;
}

/* Are all of n's inputs int64 constants (n folds to one)? */
static int reads_int_consts(const gimp_t *imp, const Onnx__NodeProto *n)
{
    if (n->n_input == 0)
        return 0;
    for (size_t i = 0; i < n->n_input; i++)
        if (!is_int_const(find_const(imp, n->input[i])))
            return 0;
    return 1;
}

static eie_status_t import_node(gimp_t *imp, size_t i)
{
    const Onnx__NodeProto *n = imp->g->node[i];
    const char *op = str(n->op_type);
    snprintf(imp->where, sizeof imp->where, "node %zu '%.64s' (%.32s)", i, str(n->name), op);
    const char *domain = str(n->domain);
    if (domain[0] != '\0' && strcmp(domain, "ai.onnx") != 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "%s: operator domain '%.64s' is not supported (supported: the "
                             "default domain: %s)",
                             imp->where, domain, supported_ops);
    if (n->n_output < 1 || str(n->output[0])[0] == '\0')
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "%s has no output", imp->where);
    if (is_op(n, "Constant")) {
        static const char *const ok[] = {"value", NULL};
        eie_status_t st = check_attrs(imp, n, ok);
        if (st != EIE_STATUS_OK)
            return st;
        const Onnx__AttributeProto *a = find_attr(n, "value");
        if (a == NULL || a->t == NULL)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s: attribute 'value' (a tensor) is missing", imp->where);
        return add_const(imp, n->output[0], a->t, NULL);
    }
    if (is_op(n, "Transpose") && n->n_input == 1 && find_const(imp, n->input[0]))
        return fold_transpose(imp, n);
    if (is_op(n, "Shape"))
        return op_shape(imp, n);
    if ((is_op(n, "Gather") || is_op(n, "Unsqueeze") || is_op(n, "Concat")) &&
        reads_int_consts(imp, n))
        return fold_ints(imp, n);
    if (is_op(n, "Expand") && n->n_input == 2 && find_const(imp, n->input[0]) &&
        is_int_const(find_const(imp, n->input[1])))
        return fold_expand(imp, n);
    if (is_op(n, "LSTM"))
        return op_lstm(imp, n);
    if (is_op(n, "Gemm"))
        return op_gemm(imp, n);
    if (is_op(n, "MatMul"))
        return op_matmul(imp, n);
    if (is_op(n, "Conv"))
        return op_conv(imp, n);
    if (is_op(n, "MaxPool"))
        return op_pool(imp, n, 0);
    if (is_op(n, "AveragePool"))
        return op_pool(imp, n, 1);
    if (is_op(n, "GlobalAveragePool")) {
        const char *x;
        eie_shape_t xs;
        eie_status_t st = check_attrs(imp, n, no_attrs);
        if (st == EIE_STATUS_OK)
            st = data_input(imp, n, 0, &x, &xs);
        if (st != EIE_STATUS_OK)
            return st;
        eie_node_desc_t d = {.kind = EIE_LAYER_GLOBAL_AVGPOOL,
                             .name = str(n->name),
                             .n_inputs = 1,
                             .inputs = &x,
                             .output = str(n->output[0])};
        return add_node(imp, &d);
    }
    if (is_op(n, "BatchNormalization"))
        return op_batchnorm(imp, n);
    if (is_op(n, "Add"))
        return op_add(imp, n);
    if (is_op(n, "Concat"))
        return op_concat(imp, n);
    if (is_op(n, "Relu"))
        return op_act(imp, n, EIE_ACT_RELU);
    if (is_op(n, "Sigmoid"))
        return op_act(imp, n, EIE_ACT_SIGMOID);
    if (is_op(n, "Tanh"))
        return op_act(imp, n, EIE_ACT_TANH);
    if (is_op(n, "Softmax"))
        return op_act(imp, n, EIE_ACT_SOFTMAX);
    if (is_op(n, "Flatten"))
        return op_flatten(imp, n);
    if (is_op(n, "Reshape"))
        return op_reshape(imp, n);
    if (is_op(n, "Squeeze"))
        return op_squeeze(imp, n, 0);
    if (is_op(n, "Unsqueeze"))
        return op_squeeze(imp, n, 1);
    if (is_op(n, "Identity") || is_op(n, "Dropout"))
        return op_identity(imp, n);
    return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                         "%s: op type '%.32s' is not supported (supported: %s)", imp->where, op,
                         supported_ops);
}

/* The size given for the symbolic dimension dim (eie_onnx_dim_t), marking it used; 0: none. */
static int64_t dim_given(const gimp_t *imp, const Onnx__TensorShapeProto__Dimension *dim,
                         bool *used)
{
    if (dim == NULL || dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ||
        imp->opts == NULL)
        return 0;
    for (size_t k = 0; k < imp->opts->n_dims; k++)
        if (strcmp(imp->opts->dims[k].name, str(dim->dim_param)) == 0) {
            used[k] = true;
            return imp->opts->dims[k].value;
        }
    return 0;
}

/* Graph inputs that are not constants, with their datatypes and full shapes. */
static eie_status_t add_inputs(gimp_t *imp)
{
    const Onnx__GraphProto *g = imp->g;
    size_t n_data = 0, n_dims = imp->opts ? imp->opts->n_dims : 0;
    bool used[EIE_ONNX_MAX_DIMS] = {false};
    if (n_dims > EIE_ONNX_MAX_DIMS)
        return eie_error_set(imp->err, EIE_STATUS_LIMIT,
                             "%zu dimension sizes given; at most %d", n_dims, EIE_ONNX_MAX_DIMS);
    for (size_t k = 0; k < n_dims; k++)
        if (imp->opts->dims[k].value < 1 || imp->opts->dims[k].value > INT32_MAX)
            return eie_error_set(imp->err, EIE_STATUS_INVALID_ARGUMENT,
                                 "dimension '%.64s' given size %lld; sizes are 1..%d",
                                 imp->opts->dims[k].name, (long long)imp->opts->dims[k].value,
                                 INT32_MAX);
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *in = g->input[i];
        if (in == NULL || find_const(imp, in->name))
            continue;
        const char *name = str(in->name);
        snprintf(imp->where, sizeof imp->where, "graph input '%.64s'", name);
        const Onnx__TypeProto *t = in->type;
        if (t == NULL || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
            t->tensor_type == NULL || t->tensor_type->shape == NULL)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s has no tensor type with a shape; eie needs its full shape",
                                 imp->where);
        const Onnx__TypeProto__Tensor *tt = t->tensor_type;
        if (!tt->has_elem_type || tt->elem_type != EIE_ONNX_FLOAT)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s has element type %d; eie takes float (1)", imp->where,
                                 tt->has_elem_type ? (int)tt->elem_type : 0);
        if (tt->shape->n_dim < 1 || tt->shape->n_dim > EIE_MAX_RANK)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s has rank %zu; eie takes ranks 1..%u", imp->where,
                                 tt->shape->n_dim, EIE_MAX_RANK);
        eie_shape_t s = {.rank = (uint32_t)tt->shape->n_dim};
        for (size_t d = 0; d < s.rank; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            int fixed =
                dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            int64_t given = fixed ? 0 : dim_given(imp, dim, used);
            if (given > 0) {
                s.dims[d] = given;
                continue;
            }
            if (!fixed && d == 0) {
                s.dims[0] = -1;
                continue;
            }
            if (!fixed && dim != NULL &&
                dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
                return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                     "%s: dimension %zu is symbolic ('%.64s'); eie needs fixed "
                                     "sizes but for the batch (dimension 0): give it one "
                                     "(eiectl import --dim %.64s=SIZE)",
                                     imp->where, d, str(dim->dim_param), str(dim->dim_param));
            if (!fixed || dim->dim_value < 1)
                return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                     "%s: dimension %zu is %s; eie needs fixed sizes but for "
                                     "the batch (dimension 0)",
                                     imp->where, d, fixed ? "below 1" : "symbolic");
            s.dims[d] = dim->dim_value;
        }
        eie_status_t st = eie_builder_add_input(imp->b, name, EIE_DTYPE_FP32, &s, imp->err);
        if (st != EIE_STATUS_OK) {
            eie_error_prefix(imp->err, "%s: ", imp->where);
            return st;
        }
        n_data++;
    }
    if (n_data == 0)
        return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                             "graph has no input that is not a constant");
    for (size_t k = 0; k < n_dims; k++)
        if (!used[k])
            return eie_error_set(imp->err, EIE_STATUS_INVALID_ARGUMENT,
                                 "dimension '%.64s' given a size, but no graph input has a "
                                 "symbolic dimension of that name",
                                 imp->opts->dims[k].name);
    return EIE_STATUS_OK;
}

static eie_status_t add_outputs(gimp_t *imp)
{
    const Onnx__GraphProto *g = imp->g;
    if (g->n_output == 0)
        return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT, "graph has no output");
    for (size_t i = 0; i < g->n_output; i++) {
        const char *name = g->output[i] ? str(g->output[i]->name) : "";
        snprintf(imp->where, sizeof imp->where, "graph output '%.64s'", name);
        const Onnx__TypeProto *t = g->output[i] ? g->output[i]->type : NULL;
        if (t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type &&
            t->tensor_type->has_elem_type && t->tensor_type->elem_type != EIE_ONNX_FLOAT)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s has element type %d; eie computes float (1)", imp->where,
                                 (int)t->tensor_type->elem_type);
        const char *eie_name;
        eie_status_t st = resolve(imp, name, &eie_name);
        if (st != EIE_STATUS_OK)
            return st;
        if (find_const(imp, name) || strcmp(eie_name, name) != 0)
            return eie_error_set(imp->err, EIE_STATUS_UNSUPPORTED,
                                 "%s is a constant or another tensor's alias", imp->where);
        /* A declared shape must be what the graph computes (symbolic sizes match any). */
        eie_shape_t have;
        const Onnx__TensorShapeProto *ds =
            t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type
                ? t->tensor_type->shape
                : NULL;
        if (ds && eie_builder_tensor_shape(imp->b, name, &have, imp->err) == EIE_STATUS_OK) {
            int ok = ds->n_dim == have.rank;
            for (size_t d = 0; ok && d < ds->n_dim; d++)
                ok = !(ds->dim[d] && ds->dim[d]->value_case ==
                                         ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) ||
                     ds->dim[d]->dim_value == have.dims[d];
            if (!ok) {
                char a[160];
                eie_shape_format(&have, a, sizeof a);
                return eie_error_set(imp->err, EIE_STATUS_BAD_FORMAT,
                                     "%s: its declared shape (rank %zu) differs from the "
                                     "computed %s",
                                     imp->where, ds->n_dim, a);
            }
        }
        if ((st = eie_builder_add_output(imp->b, name, imp->err)) != EIE_STATUS_OK) {
            eie_error_prefix(imp->err, "%s: ", imp->where);
            return st;
        }
    }
    return EIE_STATUS_OK;
}

/* "lenet" from ".../lenet.onnx". */
static void name_from_path(const char *path, char *out, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, n, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

eie_status_t eie_onnx_import_graph_memory(const void *data, size_t len, const eie_onnx_opts_t *opts,
                                          eie_builder_t **builder_out, eie_error_t *err)
{
    gimp_t imp = {.err = err, .opts = opts};
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
    imp.opset = 1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        const char *d = o ? str(o->domain) : "x";
        if ((d[0] == '\0' || strcmp(d, "ai.onnx") == 0) && o->has_version)
            imp.opset = o->version;
    }
    if (g->n_node > EIE_ONNX_MAX_NODES || g->n_input > MAX_CONSTS ||
        g->n_output > EIE_ONNX_MAX_NODES || g->n_initializer > MAX_CONSTS) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "graph has %zu nodes, %zu inputs, %zu outputs, %zu initializers "
                           "(limits %d, %d, %d, %d)",
                           g->n_node, g->n_input, g->n_output, g->n_initializer, EIE_ONNX_MAX_NODES,
                           MAX_CONSTS, EIE_ONNX_MAX_NODES, MAX_CONSTS);
        goto done;
    }
    if (g->n_sparse_initializer > 0) {
        st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                           "graph has sparse initializers; eie imports dense initializers");
        goto done;
    }
    /* Readers of a tensor are counted by walking every node's inputs, so their
       total is bounded too. */
    size_t n_refs = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (g->node[i] == NULL) {
            st = eie_error_set(err, EIE_STATUS_BAD_FORMAT, "node %zu is empty", i);
            goto done;
        }
        n_refs += g->node[i]->n_input + g->node[i]->n_output;
    }
    if (n_refs > MAX_REFS) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "graph nodes name %zu inputs and outputs in all (limit %d)", n_refs,
                           MAX_REFS);
        goto done;
    }
    /* Each node makes at most one constant (Constant, a fold, an identity). */
    size_t most = g->n_initializer + g->n_node + (opts ? opts->n_bindings : 0) + 1;
    if (most > MAX_CONSTS) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "graph could make %zu constant tensors (limit %d)", most, MAX_CONSTS);
        goto done;
    }
    for (imp.n_slots = 64; imp.n_slots < 2 * most;)
        imp.n_slots *= 2;
    if ((imp.slots = calloc(imp.n_slots, sizeof *imp.slots)) == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for constants");
        goto done;
    }
    const char *name = opts && opts->model_name ? opts->model_name : "model";
    if ((st = eie_builder_init_graph(name, str(m->doc_string), &imp.b, err)) != EIE_STATUS_OK)
        goto done;
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((st = add_const(&imp, g->initializer[i]->name, g->initializer[i], NULL)))
            goto done;
    for (size_t i = 0; opts && i < opts->n_bindings; i++)
        if ((st = add_const(&imp, opts->bindings[i].name, NULL, opts->bindings[i].tensor)))
            goto done;
    if ((st = add_inputs(&imp)) != EIE_STATUS_OK)
        goto done;
    for (size_t i = 0; i < g->n_node; i++)
        if ((st = import_node(&imp, i)) != EIE_STATUS_OK)
            goto done;
    if ((st = add_outputs(&imp)) != EIE_STATUS_OK)
        goto done;
    /* Sparse nodes nobody reads still belong to the model. */
    for (size_t i = 0; i < imp.n_pend; i++)
        if (imp.pend[i].output && (st = flush(&imp, &imp.pend[i])) != EIE_STATUS_OK)
            goto done;
    /* the rules on the whole graph (its inputs' batch dimension), here, so that an
       import that succeeds always writes */
    if ((st = eie_builder_check(imp.b, "graph", err)) != EIE_STATUS_OK)
        goto done;
    *builder_out = imp.b;
    imp.b = NULL;
    st = EIE_STATUS_OK;
done:
    eie_builder_free(imp.b);
    for (size_t i = 0; i < imp.n_pend; i++)
        pending_clear(&imp.pend[i]);
    free(imp.pend);
    free(imp.aliases);
    for (size_t i = 0; i < imp.n_consts; i++) {
        eie_onnx_tensor_free(imp.consts[i].owned);
        free(imp.consts[i].ints);
    }
    free(imp.consts);
    free(imp.slots);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

eie_status_t eie_onnx_import_graph_file(const char *path, const eie_onnx_opts_t *opts,
                                        eie_builder_t **builder_out, eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    char name[256];
    eie_onnx_opts_t o = opts ? *opts : (eie_onnx_opts_t){0};
    if (o.model_name == NULL) {
        name_from_path(path, name, sizeof name);
        o.model_name = name;
    }
    eie_status_t st = eie_file_read(path, EIE_ONNX_MAX_FILE, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eie_onnx_import_graph_memory(data, len, &o, builder_out, err);
    if (st != EIE_STATUS_OK)
        eie_error_prefix(err, "%s: ", path);
    free(data);
    return st;
}
