/*
 * The Deep Compression driver: prune -> retrain (iterated), quantize ->
 * fine-tune centroids, then hand the codes to the .eie writer, which stores
 * them with relative indexing and Huffman coding. Also the report table of
 * the paper (Deep Compression table 2-5).
 */
#include "eie/compress.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

eie_compress_opts_t eie_compress_opts_default(void)
{
    eie_compress_opts_t o = {
        .prune = 1,
        .quantize = 1,
        .huffman = 1,
        .prune_std = 0.0,
        .prune_iterations = 1,
        .kmeans_init = EIE_KMEANS_LINEAR,
        .retrain_epochs = 1,
        .train = eie_train_opts_default(),
        .retrain_lr_scale = 0.1f,
        .name = "model",
        .description = "",
        .seed = 1,
    };
    for (int i = 0; i < EIE_COMPRESS_MAX_FC; i++) {
        o.sparsity[i] = 0.9;
        o.bits[i] = 5;
    }
    return o;
}

/* EIE relative indexing: (code, 4-bit zero run) per nonzero, column by column, a filler per 16 zeros. */
static uint64_t count_entries(const eie_mlp_layer_t *l)
{
    uint64_t entries = 0;
    for (uint32_t j = 0; j < l->cols; j++) {
        unsigned z = 0;
        for (uint32_t i = 0; i < l->rows; i++) {
            if (l->w[(size_t)i * l->cols + j] == 0.0f) {
                z++;
                continue;
            }
            entries += z / 16 + 1;
            z = 0;
        }
    }
    return entries;
}

static eie_status_t retrain(eie_mlp_t *mlp, const eie_compress_opts_t *o, const char *stage,
                            unsigned round, eie_error_t *err)
{
    if (o->train_set == NULL || o->retrain_epochs == 0)
        return EIE_STATUS_OK;
    eie_train_opts_t t = o->train;
    t.epochs = o->retrain_epochs;
    t.lr *= o->retrain_lr_scale;
    t.seed = o->seed + round;
    t.stage = stage;
    return eie_train(mlp, o->train_set, &t, NULL, err);
}

eie_status_t eie_compress(eie_mlp_t *mlp, const eie_compress_opts_t *o,
                          eie_builder_t **builder_out, eie_compress_report_t *rep,
                          eie_error_t *err)
{
    eie_status_t st;
    eie_builder_t *b = NULL;
    size_t n_fc = eie_mlp_sparse_count(mlp);
    if (n_fc == 0 || n_fc > EIE_COMPRESS_MAX_FC)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%zu fc and conv2d layers outside 1..%d", n_fc, EIE_COMPRESS_MAX_FC);
    for (size_t k = 0; o->quantize && k < n_fc; k++)
        if ((o->bits[k] < 1 || o->bits[k] > 8) && o->bits[k] != EIE_COMPRESS_EXACT_BITS)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "sparse layer %zu: %u bits outside 1..8 (or 32: exact)", k,
                                 o->bits[k]);
    memset(rep, 0, sizeof *rep);
    rep->huffman = o->huffman;
    eie_eval_t ev;
    if (o->test_set) {
        if ((st = eie_evaluate(mlp, o->test_set, o->train.threads, &ev, err)) != EIE_STATUS_OK)
            return st;
        rep->have_accuracy = 1;
        rep->top1_before = ev.top1;
        rep->top5_before = ev.top5;
    }

    /* Pruning, reaching the target in prune_iterations steps (NIPS 2015 sec. 3.3). */
    unsigned rounds = o->prune_iterations ? o->prune_iterations : 1;
    for (unsigned r = 1; o->prune && r <= rounds; r++) {
        for (size_t k = 0; k < n_fc; k++) {
            eie_mlp_layer_t *l = &mlp->layers[eie_mlp_sparse_index(mlp, k)];
            if (o->sparsity[k] >= 0.0)
                st = eie_prune_sparsity(l, o->sparsity[k] * r / rounds, err);
            else
                st = eie_prune_std(l, o->prune_std * r / rounds, err);
            if (st != EIE_STATUS_OK) {
                eie_error_prefix(err, "sparse layer %zu: ", k);
                return st;
            }
        }
        if ((st = retrain(mlp, o, "prune-retrain", r, err)) != EIE_STATUS_OK)
            return st;
    }

    /*
     * Quantization. With the stage off, or 32 bits for a layer, weights are
     * kept as they are (the format's exact storage).
     */
    for (size_t k = 0; o->quantize && k < n_fc; k++) {
        eie_mlp_layer_t *l = &mlp->layers[eie_mlp_sparse_index(mlp, k)];
        if (o->bits[k] == EIE_COMPRESS_EXACT_BITS)
            continue;
        if ((st = eie_quantize_layer(l, o->bits[k], o->kmeans_init,
                                     o->seed + k, err)) != EIE_STATUS_OK) {
            eie_error_prefix(err, "sparse layer %zu: ", k);
            return st;
        }
    }
    if (o->quantize && (st = retrain(mlp, o, "finetune-centroids", 100, err)) != EIE_STATUS_OK)
        return st;

    /* An fc chain with every layer weight-shared is written as before (format version 1). */
    int chain = 1;
    for (size_t i = 0; i < mlp->n_layers; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        chain &= l->kind == EIE_LAYER_ACTIVATION || (l->kind == EIE_LAYER_FC && l->codes);
    }
    if (!chain) {
        if ((st = eie_mlp_to_graph(mlp, o->name, o->description, &b, err)) != EIE_STATUS_OK)
            return st;
    } else {
        if ((st = eie_builder_init(o->name, o->description, "input", "output", &b, err)))
            return st;
        for (size_t i = 0; i < mlp->n_layers; i++) {
            const eie_mlp_layer_t *l = &mlp->layers[i];
            st = l->kind == EIE_LAYER_FC
                     ? eie_builder_add_fc(b, l->rows, l->cols, l->code_bits, l->codebook,
                                          l->codes, l->b, err)
                     : eie_builder_add_activation(b, l->act, err);
            if (st != EIE_STATUS_OK)
                goto error;
        }
    }

    rep->n_layers = n_fc;
    for (size_t k = 0; k < n_fc; k++) {
        const eie_mlp_layer_t *l = &mlp->layers[eie_mlp_sparse_index(mlp, k)];
        eie_compress_layer_report_t *lr = &rep->layers[k];
        lr->kind = l->kind;
        lr->rows = l->rows;
        lr->cols = l->cols;
        lr->weights = (uint64_t)l->rows * l->cols;
        for (uint64_t i = 0; i < lr->weights; i++)
            lr->nnz += l->codes ? l->codes[i] != 0 : l->w[i] != 0.0f;
        lr->density = (double)lr->nnz / (double)lr->weights;
        lr->entries = count_entries(l);
        /* An exact layer keeps a float32 per nonzero and has no codebook. */
        lr->bits = l->codes ? l->code_bits : 32;
        lr->index_bits = 4.0;
        lr->bytes_pq = (lr->entries * (lr->bits + 4) + 7) / 8 +
                       (l->codes ? ((uint64_t)4 << l->code_bits) : 0) + 4ull * l->rows;
        rep->bytes_pq += lr->bytes_pq;
        rep->dense_bytes += 4 * (lr->weights + l->rows);
    }
    if (o->test_set) {
        if ((st = eie_evaluate(mlp, o->test_set, o->train.threads, &ev, err)) != EIE_STATUS_OK)
            goto error;
        rep->top1_after = ev.top1;
        rep->top5_after = ev.top5;
    }
    *builder_out = b;
    return EIE_STATUS_OK;
error:
    eie_builder_free(b);
    return st;
}

eie_status_t eie_compress_report_finish(eie_compress_report_t *rep, const char *path,
                                        eie_error_t *err)
{
    eie_model_t *m;
    eie_status_t st = eie_model_load_file(path, NULL, &m, err);
    if (st != EIE_STATUS_OK)
        return st;
    size_t k = 0;
    for (size_t i = 0; i < eie_model_layer_count(m) && k < rep->n_layers; i++) {
        eie_layer_info_t info;
        if (eie_model_layer_info(m, i, &info) != EIE_STATUS_OK ||
            (info.kind != EIE_LAYER_FC && info.kind != EIE_LAYER_CONV2D))
            continue;
        eie_compress_layer_report_t *lr = &rep->layers[k++];
        /* An exact layer's code stream only marks entries; its weights are 32-bit floats. */
        lr->bits_huffman = info.storage == EIE_STORAGE_EXACT ? 32.0 : info.code_bits_huffman;
        lr->index_bits_huffman = info.run_bits_huffman;
        lr->bytes = info.layer_bytes;
        lr->entries = info.entries;
    }
    rep->file_bytes = eie_model_file_bytes(m);
    eie_model_free(m);
    return EIE_STATUS_OK;
}

static double ratio(uint64_t dense, uint64_t now)
{
    return now ? (double)dense / (double)now : 0.0;
}

void eie_compress_report_print(FILE *out, const eie_compress_report_t *r)
{
    fprintf(out, "%-6s %10s %8s %7s %7s %8s %8s %10s %10s %7s\n", "layer", "weights", "density",
            "wbits", "wbits", "idxbits", "idxbits", "bytes", "bytes", "ratio");
    fprintf(out, "%-6s %10s %8s %7s %7s %8s %8s %10s %10s %7s\n", "", "", "(P)", "(P+Q)",
            "(+H)", "(P+Q)", "(+H)", "(P+Q)", "(file)", "(x)");
    uint64_t w = 0, nnz = 0, ent = 0;
    double wb = 0, wbh = 0, ib = 0, ibh = 0;
    for (size_t k = 0; k < r->n_layers; k++) {
        const eie_compress_layer_report_t *l = &r->layers[k];
        uint64_t dense = 4 * (l->weights + l->rows);
        fprintf(out, "%s%-*zu %10" PRIu64 " %7.2f%% %7u %7.2f %8.2f %8.2f %10" PRIu64
                     " %10" PRIu64 " %6.1fx\n",
                l->kind == EIE_LAYER_CONV2D ? "conv" : "fc",
                l->kind == EIE_LAYER_CONV2D ? 2 : 4, k + 1, l->weights, 100.0 * l->density, l->bits, l->bits_huffman, l->index_bits,
                l->index_bits_huffman, l->bytes_pq, l->bytes, ratio(dense, l->bytes ? l->bytes : l->bytes_pq));
        w += l->weights;
        nnz += l->nnz;
        ent += l->entries;
        wb += (double)l->bits * l->entries;
        wbh += l->bits_huffman * l->entries;
        ib += l->index_bits * l->entries;
        ibh += l->index_bits_huffman * l->entries;
    }
    double e = ent ? (double)ent : 1.0;
    fprintf(out, "%-6s %10" PRIu64 " %7.2f%% %7.2f %7.2f %8.2f %8.2f %10" PRIu64 " %10" PRIu64
                 " %6.1fx\n",
            "total", w, w ? 100.0 * nnz / w : 0.0, wb / e, wbh / e, ib / e, ibh / e, r->bytes_pq,
            r->file_bytes, ratio(r->dense_bytes, r->file_bytes ? r->file_bytes : r->bytes_pq));
    fprintf(out, "float32 dense: %" PRIu64 " bytes; after P+Q: %" PRIu64 " bytes (%.2f%%); "
                 ".eie file%s: %" PRIu64 " bytes (%.2f%%, %.1fx smaller)\n",
            r->dense_bytes, r->bytes_pq, 100.0 * r->bytes_pq / (double)r->dense_bytes,
            r->huffman ? " (P+Q+H)" : "", r->file_bytes,
            100.0 * r->file_bytes / (double)r->dense_bytes, ratio(r->dense_bytes, r->file_bytes));
    if (r->have_accuracy)
        fprintf(out, "accuracy: top-1 %.2f%% -> %.2f%%, top-5 %.2f%% -> %.2f%%\n",
                100.0 * r->top1_before, 100.0 * r->top1_after, 100.0 * r->top5_before,
                100.0 * r->top5_after);
}

void eie_compress_report_json(FILE *out, const eie_compress_report_t *r)
{
    fprintf(out, "{\"layers\":[");
    for (size_t k = 0; k < r->n_layers; k++) {
        const eie_compress_layer_report_t *l = &r->layers[k];
        fprintf(out,
                "%s{\"kind\":\"%s\",\"rows\":%u,\"cols\":%u,\"weights\":%" PRIu64 ",\"nnz\":%" PRIu64
                ",\"entries\":%" PRIu64 ",\"density\":%.6f,\"weight_bits\":%u,"
                "\"weight_bits_huffman\":%.4f,\"index_bits\":%.1f,\"index_bits_huffman\":%.4f,"
                "\"bytes_pq\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                k ? "," : "", l->kind == EIE_LAYER_CONV2D ? "conv2d" : "fc", l->rows, l->cols,
                l->weights, l->nnz, l->entries, l->density,
                l->bits, l->bits_huffman, l->index_bits, l->index_bits_huffman, l->bytes_pq,
                l->bytes);
    }
    fprintf(out,
            "],\"dense_bytes\":%" PRIu64 ",\"bytes_pq\":%" PRIu64 ",\"file_bytes\":%" PRIu64
            ",\"ratio\":%.3f,\"huffman\":%s",
            r->dense_bytes, r->bytes_pq, r->file_bytes,
            ratio(r->dense_bytes, r->file_bytes ? r->file_bytes : r->bytes_pq),
            r->huffman ? "true" : "false");
    if (r->have_accuracy)
        fprintf(out, ",\"top1_before\":%.6f,\"top5_before\":%.6f,\"top1_after\":%.6f,"
                     "\"top5_after\":%.6f",
                r->top1_before, r->top5_before, r->top1_after, r->top5_after);
    fprintf(out, "}\n");
}

/* Appends graph node i (info li) of model to mlp; in2 is the mlp index + 1 of its second input. */
static eie_status_t add_node(const eie_model_t *model, size_t i, const eie_layer_info_t *li,
                             size_t in2, eie_mlp_t *mlp, eie_error_t *err)
{
    switch (li->kind) {
    case EIE_LAYER_ACTIVATION:
        return eie_mlp_add_activation(mlp, li->act, err);
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
        return eie_mlp_add_pool(mlp, li->kind, &li->pool, err);
    case EIE_LAYER_GLOBAL_AVGPOOL:
        return eie_mlp_add_global_avgpool(mlp, err);
    case EIE_LAYER_ADD:
    case EIE_LAYER_CONCAT:
        if (li->kind == EIE_LAYER_CONCAT && li->axis != 1)
            return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                                 "concat along axis %d: training joins channels (axis 1) only",
                                 (int)li->axis);
        return eie_mlp_add_join(mlp, li->kind, in2, err);
    case EIE_LAYER_FC:
    case EIE_LAYER_CONV2D:
        break;
    default:
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED, "%s layers do not train here",
                             eie_layer_kind_name(li->kind));
    }
    size_t nw = (size_t)li->rows * li->cols;
    float *w = malloc((nw ? nw : 1) * sizeof *w);
    if (w == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for node %zu", i);
    eie_status_t st = eie_model_fc_dense(model, i, w);
    if (st != EIE_STATUS_OK)
        eie_error_set(err, st, "cannot decode its weights");
    else if (li->kind == EIE_LAYER_FC)
        st = eie_mlp_add_fc(mlp, li->rows, w, eie_model_fc_bias(model, i), err);
    else
        st = eie_mlp_add_conv2d(mlp, li->rows, &li->conv, w, eie_model_fc_bias(model, i), err);
    free(w);
    return st;
}

eie_status_t eie_mlp_from_model(const eie_model_t *model, eie_mlp_t **mlp_out, eie_error_t *err)
{
    eie_tensor_info_t in;
    eie_mlp_t *mlp = NULL;
    eie_status_t st;
    if (eie_model_input_count(model) != 1 || eie_model_output_count(model) != 1)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%zu inputs and %zu outputs: a network for training has one of each",
                             eie_model_input_count(model), eie_model_output_count(model));
    eie_model_input_info(model, 0, &in);
    if (in.shape.rank == 4)
        st = eie_mlp_init_image((uint32_t)in.shape.dims[1], (uint32_t)in.shape.dims[2],
                                (uint32_t)in.shape.dims[3], &mlp, err);
    else
        st = eie_mlp_init(eie_model_input_dim(model), &mlp, err);
    if (st != EIE_STATUS_OK)
        return st;
    /* src[t]: the mlp layer index + 1 whose output tensor t is (0: the input); SIZE_MAX: none. */
    size_t nt = eie_model_tensor_count(model);
    size_t *src = malloc((nt ? nt : 1) * sizeof *src);
    if (src == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto error;
    }
    for (size_t t = 0; t < nt; t++)
        src[t] = SIZE_MAX;
    src[eie_model_input_tensor(model, 0)] = 0;
    for (size_t i = 0; i < eie_model_layer_count(model); i++) {
        eie_layer_info_t info;
        if ((st = eie_model_layer_info(model, i, &info)) != EIE_STATUS_OK) {
            eie_error_set(err, st, "layer %zu: cannot describe", i);
            goto error;
        }
        /*
         * A network for training reads the output of the node before (a
         * flatten or reshape changes no value and drops out); add and
         * concat also read one earlier output.
         */
        int joins = info.kind == EIE_LAYER_ADD || info.kind == EIE_LAYER_CONCAT;
        int ok = info.n_inputs == (size_t)(joins ? 2 : 1) && src[info.inputs[0]] == mlp->n_layers &&
                 (!joins || src[info.inputs[1]] != SIZE_MAX);
        if (!ok) {
            st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                               "node %zu '%s' (%s): a network for training is a chain of layers "
                               "(add and concat may also read one earlier output)",
                               i, eie_model_layer_name(model, i), eie_layer_kind_name(info.kind));
            goto error;
        }
        if (info.kind == EIE_LAYER_FLATTEN || info.kind == EIE_LAYER_RESHAPE) {
            src[info.output] = src[info.inputs[0]];
            continue;
        }
        if ((st = add_node(model, i, &info, joins ? src[info.inputs[1]] : 0, mlp, err)) !=
            EIE_STATUS_OK) {
            eie_error_prefix(err, "node %zu '%s' (%s): ", i, eie_model_layer_name(model, i),
                             eie_layer_kind_name(info.kind));
            goto error;
        }
        src[info.output] = mlp->n_layers;
    }
    free(src);
    *mlp_out = mlp;
    return EIE_STATUS_OK;
error:
    free(src);
    eie_mlp_free(mlp);
    return st;
}
