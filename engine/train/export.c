/*
 * A trained network as an .eie graph: the tensor names "input" and
 * "output", a flatten node where an fc layer reads an image, weight layers
 * stored exactly (free weights) or as codes and codebook (weight-shared).
 */
#include <stdio.h>
#include <stdlib.h>

#include "eie/train.h"

static eie_weights_t weights_of(const eie_mlp_layer_t *l)
{
    if (l->codes)
        return (eie_weights_t){.storage = EIE_STORAGE_SHARED,
                               .code_bits = l->code_bits,
                               .codebook = l->codebook,
                               .codes = l->codes,
                               .bias = l->b};
    return (eie_weights_t){.storage = EIE_STORAGE_EXACT, .values = l->w, .bias = l->b};
}

eie_status_t eie_mlp_to_graph(const eie_mlp_t *mlp, const char *name, const char *description,
                              eie_builder_t **builder_out, eie_error_t *err)
{
    eie_builder_t *b;
    eie_status_t st = eie_builder_init_graph(name, description, &b, err);
    if (st != EIE_STATUS_OK)
        return st;
    int image = mlp->in_h > 1 || mlp->in_w > 1;
    eie_shape_t in = {.rank = image ? 4 : 2, .dims = {-1, mlp->in_c}};
    if (image)
        in.dims[2] = mlp->in_h, in.dims[3] = mlp->in_w;
    if ((st = eie_builder_add_input(b, "input", EIE_DTYPE_FP32, &in, err)) != EIE_STATUS_OK)
        goto error;
    /* names[i + 1]: tensor of layer i's output; names[0]: the input. */
    size_t nl = mlp->n_layers;
    char(*names)[24] = calloc(nl + 1, sizeof *names);
    if (names == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto error;
    }
    snprintf(names[0], sizeof names[0], "input");
    for (size_t i = 0; i < nl && st == EIE_STATUS_OK; i++) {
        const eie_mlp_layer_t *l = &mlp->layers[i];
        char node[32], flat[32];
        const char *inputs[2] = {names[i], names[l->in2]};
        snprintf(names[i + 1], sizeof names[i + 1], i + 1 == nl ? "output" : "t%zu", i + 1);
        if (l->kind == EIE_LAYER_FC && image) {
            /* The fc reads the image as one vector: [N, C, H, W] -> [N, C*H*W]. */
            snprintf(flat, sizeof flat, "flat%zu", i + 1);
            eie_node_desc_t f = {.kind = EIE_LAYER_FLATTEN, .name = flat, .n_inputs = 1,
                                 .inputs = inputs, .output = flat};
            if ((st = eie_builder_add_node(b, &f, err)) != EIE_STATUS_OK)
                break;
            inputs[0] = flat;
        }
        snprintf(node, sizeof node, "%s%zu", eie_layer_kind_name(l->kind), i + 1);
        eie_node_desc_t d = {.kind = l->kind, .name = node, .n_inputs = 1, .inputs = inputs,
                             .output = names[i + 1], .rows = l->rows, .conv = l->conv,
                             .pool = l->pool, .act = l->act, .axis = 1};
        if (eie_mlp_layer_has_weights(l))
            d.weights = weights_of(l);
        if (l->kind == EIE_LAYER_ADD || l->kind == EIE_LAYER_CONCAT)
            d.n_inputs = 2;
        st = eie_builder_add_node(b, &d, err);
        if (st != EIE_STATUS_OK)
            eie_error_prefix(err, "layer %zu (%s): ", i, eie_layer_kind_name(l->kind));
        if (l->kind == EIE_LAYER_FC)
            image = 0;
    }
    if (st == EIE_STATUS_OK)
        st = eie_builder_add_output(b, nl ? names[nl] : "input", err);
    free(names);
    if (st != EIE_STATUS_OK)
        goto error;
    *builder_out = b;
    return EIE_STATUS_OK;
error:
    eie_builder_free(b);
    return st;
}
