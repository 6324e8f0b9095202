/*
 * Deep Compression of a graph model: every sparse layer (fc and conv2d) is
 * pruned and weight-shared as the driver does for an FC chain, and the
 * graph around it (tensor names, shapes, the other nodes) is copied as it
 * is. A convolution's weights are its Cout x (C/groups x kh x kw) matrix,
 * the form Deep Compression prunes and quantizes conv layers in (sec. 3.1,
 * 8 bits for conv, 5 for fc in its AlexNet results).
 */
#include "eie/compress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* EIE relative indexing: (code, 4-bit zero run) per nonzero, column by column, a filler per 16
 * zeros. */
static uint64_t count_entries(const float *w, uint32_t rows, uint32_t cols)
{
    uint64_t entries = 0;
    for (uint32_t j = 0; j < cols; j++) {
        unsigned z = 0;
        for (uint32_t i = 0; i < rows; i++) {
            if (w[(size_t)i * cols + j] == 0.0f) {
                z++;
                continue;
            }
            entries += z / 16 + 1;
            z = 0;
        }
    }
    return entries;
}

static void layer_clear(eie_mlp_layer_t *l)
{
    free(l->w);
    free(l->b);
    free(l->mask);
    free(l->codes);
    free(l->codebook);
    memset(l, 0, sizeof *l);
}

/* The trained weight layer number k of mlp (fc and conv2d in order), or NULL. */
static const eie_mlp_layer_t *trained_layer(const eie_mlp_t *mlp, size_t k)
{
    size_t i = mlp ? eie_mlp_sparse_index(mlp, k) : SIZE_MAX;
    return i == SIZE_MAX ? NULL : &mlp->layers[i];
}

/*
 * Compresses sparse node i of g, the s-th sparse node, into l (as an FC
 * layer: dense w, bias, and codes + codebook when quantized). A trained FC
 * layer, when given, is taken as it is.
 */
static eie_status_t compress_node(const eie_model_t *g, size_t i, size_t s,
                                  const eie_layer_info_t *li, const eie_mlp_layer_t *trained,
                                  const eie_compress_opts_t *o, eie_mlp_layer_t *l,
                                  eie_error_t *err)
{
    size_t n = (size_t)li->rows * li->cols;
    l->kind = EIE_LAYER_FC;
    l->rows = li->rows;
    l->cols = li->cols;
    l->w = malloc((n ? n : 1) * sizeof *l->w);
    l->b = malloc(li->rows * sizeof *l->b);
    if (l->w == NULL || l->b == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory compressing node %zu", i);
    if (trained && trained->codes == NULL) {
        /* Kept exact (--bits 32): the retrained weights as they are. */
        if (trained->rows != li->rows || trained->cols != li->cols)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "node %zu: the retrained layer is %ux%u, the graph's %ux%u", i,
                                 trained->rows, trained->cols, li->rows, li->cols);
        memcpy(l->w, trained->w, n * sizeof *l->w);
        memcpy(l->b, trained->b, li->rows * sizeof *l->b);
        return EIE_STATUS_OK;
    }
    if (trained) {
        if (trained->rows != li->rows || trained->cols != li->cols)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "node %zu: the retrained layer is %ux%u, the graph's %ux%u", i,
                                 trained->rows, trained->cols, li->rows, li->cols);
        size_t nb = (size_t)1 << trained->code_bits;
        l->codes = malloc(n ? n : 1);
        l->codebook = malloc(nb * sizeof *l->codebook);
        if (l->codes == NULL || l->codebook == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory compressing node %zu",
                                 i);
        memcpy(l->w, trained->w, n * sizeof *l->w);
        memcpy(l->b, trained->b, li->rows * sizeof *l->b);
        memcpy(l->codes, trained->codes, n);
        memcpy(l->codebook, trained->codebook, nb * sizeof *l->codebook);
        l->code_bits = trained->code_bits;
        return EIE_STATUS_OK;
    }
    eie_status_t st = eie_model_fc_dense(g, i, l->w);
    if (st != EIE_STATUS_OK)
        return eie_error_set(err, st, "node %zu: cannot decode its weights", i);
    memcpy(l->b, eie_model_fc_bias(g, i), li->rows * sizeof *l->b);
    if (o->prune) {
        st = o->sparsity[s] >= 0.0 ? eie_prune_sparsity(l, o->sparsity[s], err)
                                   : eie_prune_std(l, o->prune_std, err);
        if (st != EIE_STATUS_OK)
            return st;
    }
    if (o->quantize && o->bits[s] != EIE_COMPRESS_EXACT_BITS)
        return eie_quantize_layer(l, o->bits[s], o->kmeans_init, o->seed + s, err);
    return EIE_STATUS_OK;
}

/* The node as eie_builder_add_node takes it; names point into g. */
static void describe(const eie_model_t *g, size_t i, const eie_layer_info_t *li, const char **names,
                     eie_node_desc_t *d)
{
    eie_tensor_info_t t;
    for (size_t k = 0; k < li->n_inputs; k++) {
        eie_model_tensor_info(g, li->inputs[k], &t);
        names[k] = t.name;
    }
    eie_model_tensor_info(g, li->output, &t);
    *d = (eie_node_desc_t){.kind = li->kind,
                           .name = eie_model_layer_name(g, i),
                           .n_inputs = li->n_inputs,
                           .inputs = names,
                           .output = t.name,
                           .rows = li->rows,
                           .conv = li->conv,
                           .pool = li->pool,
                           .act = li->act,
                           .axis = li->axis,
                           .shape = t.shape};
    if (li->kind == EIE_LAYER_LSTM) {
        d->lstm = (eie_lstm_desc_t){.hidden_size = li->hidden_size,
                                    .initial_h = eie_model_lstm_initial(g, i, 0),
                                    .initial_c = eie_model_lstm_initial(g, i, 1)};
        d->n_inputs = 1; /* X; a fed state goes by name below */
        for (int k = 0; k < 2; k++)
            if (li->lstm_initial_input[k] != UINT32_MAX) {
                eie_model_tensor_info(g, li->lstm_initial_input[k], &t);
                *(k ? &d->lstm.initial_c_input : &d->lstm.initial_h_input) = t.name;
            }
        for (int k = 0; k < 2; k++)
            if (li->lstm_state[k] != UINT32_MAX) {
                eie_model_tensor_info(g, li->lstm_state[k], &t);
                *(k ? &d->lstm.output_c : &d->lstm.output_h) = t.name;
            }
    }
}

/* Layers whose matrix is pruned and quantized: fc, conv2d and lstm (EIE's NT-LSTM). */
static int is_sparse_kind(eie_layer_kind_t kind)
{
    return kind == EIE_LAYER_FC || kind == EIE_LAYER_CONV2D || kind == EIE_LAYER_LSTM;
}

static void report_layer(const eie_mlp_layer_t *l, const eie_layer_info_t *li,
                         eie_compress_layer_report_t *lr)
{
    lr->kind = li->kind;
    lr->rows = l->rows;
    lr->cols = l->cols;
    lr->weights = (uint64_t)l->rows * l->cols;
    for (uint64_t k = 0; k < lr->weights; k++)
        lr->nnz += l->w[k] != 0.0f;
    lr->density = (double)lr->nnz / (double)lr->weights;
    lr->entries = count_entries(l->w, l->rows, l->cols);
    /* Unquantized layers keep their own float per nonzero (exact storage). */
    lr->bits = l->codes ? l->code_bits : 32;
    lr->index_bits = 4.0;
    lr->bytes_pq = (lr->entries * (lr->bits + 4) + 7) / 8 +
                   (l->codes ? ((uint64_t)4 << l->code_bits) : 0) + 4ull * l->rows;
}

eie_status_t eie_compress_graph(const eie_model_t *g, const eie_mlp_t *trained,
                                const eie_compress_opts_t *o, eie_builder_t **builder_out,
                                eie_compress_report_t *rep, eie_error_t *err)
{
    size_t nl = eie_model_layer_count(g), n_sparse = 0;
    for (size_t i = 0; i < nl; i++) {
        eie_layer_info_t li;
        eie_model_layer_info(g, i, &li);
        n_sparse += is_sparse_kind(li.kind);
    }
    if (n_sparse == 0 || n_sparse > EIE_COMPRESS_MAX_FC)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%zu fc and conv2d layers outside 1..%d", n_sparse,
                             EIE_COMPRESS_MAX_FC);
    for (size_t k = 0; o->quantize && k < n_sparse; k++)
        if ((o->bits[k] < 1 || o->bits[k] > 8) && o->bits[k] != EIE_COMPRESS_EXACT_BITS)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "sparse layer %zu: %u bits outside 1..8 (or 32: exact)", k,
                                 o->bits[k]);
    eie_compress_report_t keep = *rep;
    memset(rep, 0, sizeof *rep);
    rep->huffman = o->huffman;
    if (trained) {
        /* Accuracy figures come from the retraining driver's run. */
        rep->have_accuracy = keep.have_accuracy;
        rep->top1_before = keep.top1_before;
        rep->top5_before = keep.top5_before;
        rep->top1_after = keep.top1_after;
        rep->top5_after = keep.top5_after;
    }
    eie_builder_t *b = NULL;
    const char **names = NULL;
    eie_mlp_layer_t l = {0};
    eie_status_t st = eie_builder_init_graph(o->name, o->description, &b, err);
    if (st != EIE_STATUS_OK)
        return st;
    for (size_t i = 0; i < eie_model_input_count(g); i++) {
        eie_tensor_info_t t;
        eie_model_input_info(g, i, &t);
        if ((st = eie_builder_add_input(b, t.name, t.dtype, &t.shape, err)) != EIE_STATUS_OK)
            goto error;
    }
    size_t s = 0, fc = 0;
    for (size_t i = 0; i < nl; i++) {
        eie_layer_info_t li;
        eie_node_desc_t d;
        eie_model_layer_info(g, i, &li);
        free(names);
        if ((names = malloc(li.n_inputs * sizeof *names)) == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
            goto error;
        }
        describe(g, i, &li, names, &d);
        if (is_sparse_kind(li.kind)) {
            /* lstm matrices are compressed without retraining: training has no lstm */
            bool trainable = li.kind == EIE_LAYER_FC || li.kind == EIE_LAYER_CONV2D;
            const eie_mlp_layer_t *t = trained && trainable ? trained_layer(trained, fc++) : NULL;
            if (trained && trainable && (t == NULL || t->kind != li.kind)) {
                st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                   "node %zu (%s): the retrained network's weight layer %zu is %s",
                                   i, eie_layer_kind_name(li.kind), fc - 1,
                                   t ? eie_layer_kind_name(t->kind) : "missing");
                goto error;
            }
            if ((st = compress_node(g, i, s, &li, t, o, &l, err)) != EIE_STATUS_OK) {
                eie_error_prefix(err, "node %zu '%s' (%s): ", i, d.name,
                                 eie_layer_kind_name(li.kind));
                goto error;
            }
            d.weights = (eie_weights_t){.storage = l.codes ? EIE_STORAGE_SHARED : EIE_STORAGE_EXACT,
                                        .code_bits = l.code_bits,
                                        .codebook = l.codebook,
                                        .codes = l.codes,
                                        .values = l.w,
                                        .bias = l.b};
            report_layer(&l, &li, &rep->layers[s]);
            rep->bytes_pq += rep->layers[s].bytes_pq;
            rep->dense_bytes += 4 * (rep->layers[s].weights + l.rows);
            s++;
        }
        st = eie_builder_add_node(b, &d, err);
        layer_clear(&l);
        if (st != EIE_STATUS_OK)
            goto error;
    }
    rep->n_layers = s;
    for (size_t i = 0; i < eie_model_output_count(g); i++) {
        eie_tensor_info_t t;
        eie_model_output_info(g, i, &t);
        if ((st = eie_builder_add_output(b, t.name, err)) != EIE_STATUS_OK)
            goto error;
    }
    free(names);
    *builder_out = b;
    return EIE_STATUS_OK;
error:
    layer_clear(&l);
    free(names);
    eie_builder_free(b);
    return st;
}
