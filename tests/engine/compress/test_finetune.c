/* Centroid fine-tuning and DSD on a toy problem. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eie/compress.h"

static eie_dataset_t *blobs(uint32_t count)
{
    eie_dataset_t *ds = calloc(1, sizeof *ds);
    ds->count = count;
    ds->rows = ds->cols = 4;
    ds->classes = 4;
    ds->images = malloc(count * 16 * sizeof(float));
    ds->labels = malloc(count);
    unsigned s = 3;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t y = (uint8_t)(i % 4);
        ds->labels[i] = y;
        for (int k = 0; k < 16; k++) {
            s = s * 1103515245u + 12345u;
            float noise = (float)(s >> 16 & 0x7fff) / 32768.0f - 0.5f;
            ds->images[i * 16 + k] = (k % 4 == y ? 1.0f : 0.0f) + 0.8f * noise;
        }
    }
    return ds;
}

Test(finetune, centroid_training_lowers_loss_and_keeps_codes)
{
    eie_dataset_t *ds = blobs(400);
    uint32_t dims[] = {16, 16, 4};
    eie_mlp_t *net;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 2, &net, &err), EIE_STATUS_OK);
    eie_train_opts_t o = eie_train_opts_default();
    o.epochs = 4;
    o.batch = 16;
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_OK);
    for (size_t i = 0; i < net->n_layers; i++)
        if (net->layers[i].kind == EIE_LAYER_FC) {
            cr_assert_eq(eie_prune_sparsity(&net->layers[i], 0.5, &err), EIE_STATUS_OK);
            cr_assert_eq(eie_quantize_layer(&net->layers[i], 1, EIE_KMEANS_LINEAR, 1, &err),
                         EIE_STATUS_OK);
        }
    size_t n0 = 16 * 16;
    uint8_t *codes = malloc(n0);
    memcpy(codes, net->layers[0].codes, n0);
    eie_eval_t before, after;
    cr_assert_eq(eie_evaluate(net, ds, 1, &before, &err), EIE_STATUS_OK);
    o.epochs = 3;
    o.codebook_lr = 1e-3f;
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_evaluate(net, ds, 1, &after, &err), EIE_STATUS_OK);
    cr_assert_lt(after.loss, before.loss, "loss %g -> %g", before.loss, after.loss);
    cr_assert_eq(memcmp(codes, net->layers[0].codes, n0), 0, "codes changed");
    for (size_t k = 0; k < n0; k++) {
        cr_assert_eq(net->layers[0].w[k], net->layers[0].codebook[codes[k]]);
        if (codes[k] == 0)
            cr_assert_eq(net->layers[0].w[k], 0.0f, "pruned weight %zu came back", k);
    }
    free(codes);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}

Test(dsd, redense_phase_restores_full_density)
{
    eie_dataset_t *ds = blobs(200);
    uint32_t dims[] = {16, 8, 4};
    eie_mlp_t *net;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 4, &net, &err), EIE_STATUS_OK);
    eie_dsd_opts_t o = eie_dsd_opts_default();
    o.sparse_epochs = o.redense_epochs = 2;
    o.train.batch = 16;
    cr_assert_eq(eie_dsd_train(net, ds, &o, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_null(net->layers[0].mask);
    cr_assert_gt(eie_layer_density(&net->layers[0]), 0.9);
    eie_eval_t ev;
    cr_assert_eq(eie_evaluate(net, ds, 1, &ev, &err), EIE_STATUS_OK);
    cr_assert_gt(ev.top1, 0.9);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}
