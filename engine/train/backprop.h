/*
 * backprop.h - forward and backward over one shard of a mini-batch, with the
 * workspace it needs. The trainer runs one shard per thread and sums the
 * shards' gradients in a fixed order, so results do not depend on threads.
 */
#ifndef EIE_TRAIN_BACKPROP_H
#define EIE_TRAIN_BACKPROP_H

#include "eie/train.h"

typedef struct eie_bp_ws {
    size_t cap;        /* rows the buffers hold */
    float **acts;      /* acts[i]: output of layer i (cap x its size) */
    float **grads;     /* grads[i]: gradient of the loss at acts[i]; NULL without gradients */
    uint8_t *written;  /* grads[i] holds a value in this backward pass */
    float *tmp;        /* cap x largest output: a gradient added into one already written */
    float *col, *dcol; /* im2col scratch of the largest conv2d */
    float *probs;      /* softmax of the logits (cap x classes) */
} eie_bp_ws_t;

/* Buffers for batches of up to cap rows; with_grads 0 for forward passes only. */
eie_status_t eie_bp_ws_init(const eie_mlp_t *mlp, size_t cap, int with_grads,
                            eie_bp_ws_t **ws_out, eie_error_t *err);
void eie_bp_ws_free(eie_bp_ws_t *ws, const eie_mlp_t *mlp);

/* Index one past the last layer that makes the logits (a trailing softmax is fused into the loss). */
size_t eie_bp_logits_end(const eie_mlp_t *mlp);

/*
 * Forward n rows of x (n <= ws->cap) with wts[i] = transpose of FC layer i's
 * weights; fills ws->probs; returns the summed cross-entropy. With grad and
 * labels (and a ws made with gradients), writes the summed (not averaged)
 * gradients into grad. labels may be NULL for a forward pass only (returns 0).
 */
double eie_bp_run(const eie_mlp_t *mlp, float *const *wts, const float *x, const uint8_t *labels,
                  size_t n, eie_bp_ws_t *ws, eie_mlp_grad_t *grad);

/* Transposes of every FC layer's weights (NULL entries elsewhere); NULL on no memory. */
float **eie_bp_transposes(const eie_mlp_t *mlp);
void eie_bp_transposes_update(const eie_mlp_t *mlp, float **wts);
void eie_bp_transposes_free(const eie_mlp_t *mlp, float **wts);

#endif
