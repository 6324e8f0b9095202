/* SGD on small synthetic problems: learning, masks, determinism. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eie/train.h"

/* 4 Gaussian-ish blobs in 16-D (as a 4x4 "image"), 4 classes. */
static eie_dataset_t *blobs(uint32_t count)
{
    eie_dataset_t *ds = calloc(1, sizeof *ds);
    ds->count = count;
    ds->rows = ds->cols = 4;
    ds->classes = 4;
    ds->images = malloc(count * 16 * sizeof(float));
    ds->labels = malloc(count);
    unsigned s = 1;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t y = (uint8_t)(i % 4);
        ds->labels[i] = y;
        for (int k = 0; k < 16; k++) {
            s = s * 1103515245u + 12345u;
            float noise = (float)(s >> 16 & 0x7fff) / 32768.0f - 0.5f;
            ds->images[i * 16 + k] = (k % 4 == y ? 1.0f : 0.0f) + 0.6f * noise;
        }
    }
    return ds;
}

static eie_train_opts_t quick_opts(void)
{
    eie_train_opts_t o = eie_train_opts_default();
    o.epochs = 5;
    o.batch = 16;
    o.lr = 0.05f;
    return o;
}

Test(sgd, training_lowers_the_loss_and_learns_blobs)
{
    eie_dataset_t *ds = blobs(400);
    uint32_t dims[] = {16, 12, 4};
    eie_mlp_t *net;
    eie_eval_t before, after;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 3, &net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_evaluate(net, ds, 0, &before, &err), EIE_STATUS_OK);
    eie_train_opts_t o = quick_opts();
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_evaluate(net, ds, 0, &after, &err), EIE_STATUS_OK);
    cr_assert_lt(after.loss, before.loss);
    cr_assert_gt(after.top1, 0.95, "top1 %g", after.top1);
    cr_assert_eq(after.top5, 1.0);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}

Test(sgd, pruning_mask_survives_retraining)
{
    eie_dataset_t *ds = blobs(400);
    uint32_t dims[] = {16, 12, 4};
    eie_mlp_t *net;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 3, &net, &err), EIE_STATUS_OK);
    eie_mlp_layer_t *l = &net->layers[0];
    for (size_t k = 0; k < (size_t)l->rows * l->cols; k += 2)
        l->w[k] = 0.0f;
    cr_assert_eq(eie_mlp_mask_from_weights(net, 0, &err), EIE_STATUS_OK);
    eie_train_opts_t o = quick_opts();
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_OK);
    size_t nonzero_odd = 0;
    for (size_t k = 0; k < (size_t)l->rows * l->cols; k++) {
        if (k % 2 == 0)
            cr_assert_eq(l->w[k], 0.0f, "pruned weight %zu came back as %g", k, l->w[k]);
        else
            nonzero_odd += l->w[k] != 0.0f;
    }
    cr_assert_gt(nonzero_odd, 0);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}

Test(sgd, same_seed_same_weights_whatever_the_threads)
{
    eie_dataset_t *ds = blobs(200);
    uint32_t dims[] = {16, 8, 4};
    eie_mlp_t *a, *b;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 9, &a, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 9, &b, NULL), EIE_STATUS_OK);
    eie_train_opts_t o = quick_opts();
    o.threads = 1;
    cr_assert_eq(eie_train(a, ds, &o, NULL, NULL), EIE_STATUS_OK);
    o.threads = 4;
    cr_assert_eq(eie_train(b, ds, &o, NULL, NULL), EIE_STATUS_OK);
    cr_assert_eq(memcmp(a->layers[0].w, b->layers[0].w, 8 * 16 * sizeof(float)), 0);
    cr_assert_eq(memcmp(a->layers[2].w, b->layers[2].w, 4 * 8 * sizeof(float)), 0);
    eie_mlp_free(a);
    eie_mlp_free(b);
    eie_dataset_free(ds);
}

Test(sgd, divergence_is_reported_not_hidden)
{
    eie_dataset_t *ds = blobs(64);
    uint32_t dims[] = {16, 8, 4};
    eie_mlp_t *net;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 3, 9, &net, NULL), EIE_STATUS_OK);
    eie_train_opts_t o = quick_opts();
    o.lr = 1e30f;
    o.momentum = 0.0f;
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_FAILED_PRECONDITION);
    cr_assert(strstr(err.msg, "diverged") != NULL, "%s", err.msg);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}
