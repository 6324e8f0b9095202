/*
 * DSD training (Han et al., ICLR 2017): dense -> sparse -> dense. The sparse
 * phase prunes the smallest weights and retrains under the mask; the
 * re-dense phase removes the mask, lets the pruned weights grow back from 0
 * and retrains the whole network at a lower learning rate.
 */
#include "eie/compress.h"

eie_dsd_opts_t eie_dsd_opts_default(void)
{
    eie_dsd_opts_t o = {
        .sparsity = 0.3,
        .sparse_epochs = 3,
        .redense_epochs = 3,
        .redense_lr_scale = 0.1f,
        .train = eie_train_opts_default(),
    };
    return o;
}

eie_status_t eie_dsd_train(eie_mlp_t *mlp, const eie_dataset_t *ds, const eie_dsd_opts_t *opts,
                           eie_error_t *err)
{
    eie_status_t st;
    for (size_t i = 0; i < mlp->n_layers; i++)
        if (eie_mlp_layer_has_weights(&mlp->layers[i]) &&
            (st = eie_prune_sparsity(&mlp->layers[i], opts->sparsity, err)) != EIE_STATUS_OK)
            return st;
    eie_train_opts_t t = opts->train;
    t.epochs = opts->sparse_epochs;
    t.stage = "dsd-sparse";
    if ((st = eie_train(mlp, ds, &t, NULL, err)) != EIE_STATUS_OK)
        return st;
    eie_mlp_unmask(mlp);
    t = opts->train;
    t.epochs = opts->redense_epochs;
    t.lr *= opts->redense_lr_scale;
    t.seed += 1;
    t.stage = "dsd-redense";
    return eie_train(mlp, ds, &t, NULL, err);
}
