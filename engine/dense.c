/*
 * dense.c - the dense reference: every FC layer decoded to a float matrix
 * and multiplied plainly. Tests compare every backend against it.
 */
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "eie/engine.h"
#include "format/format.h"

eie_status_t eie_model_run_dense(const eie_model_t *model, const float *input, size_t batch,
                                 float *output, eie_error_t *err)
{
    size_t maxdim = model->input_dim;
    for (size_t l = 0; l < model->n_layers; l++)
        if (model->layers[l].kind == EIE_LAYER_FC && model->layers[l].fc.rows > maxdim)
            maxdim = model->layers[l].fc.rows;
    float *cur = malloc(batch * maxdim * sizeof(float));
    float *next = malloc(batch * maxdim * sizeof(float));
    float *w = NULL;
    eie_status_t st = EIE_STATUS_OK;
    if (cur == NULL || next == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
        goto done;
    }
    /* Activations live as batch rows of maxdim floats. */
    size_t dim = model->input_dim;
    for (size_t b = 0; b < batch; b++)
        memcpy(cur + b * maxdim, input + b * dim, dim * sizeof(float));
    for (size_t l = 0; l < model->n_layers; l++) {
        const eie_layer_t *ly = &model->layers[l];
        if (ly->kind == EIE_LAYER_FC) {
            const eie_fc_t *fc = &ly->fc;
            free(w);
            w = malloc((size_t)fc->rows * fc->cols * sizeof(float));
            if (w == NULL) {
                st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "dense: out of memory");
                goto done;
            }
            eie_model_fc_dense(model, l, w);
            for (size_t b = 0; b < batch; b++) {
                const float *x = cur + b * maxdim;
                for (uint32_t r = 0; r < fc->rows; r++) {
                    float s = 0.0f;
                    const float *wr = w + (size_t)r * fc->cols;
                    for (uint32_t c = 0; c < fc->cols; c++)
                        s += wr[c] * x[c];
                    next[b * maxdim + r] = s + fc->bias[r];
                }
            }
            float *t = cur;
            cur = next;
            next = t;
            dim = fc->rows;
        } else {
            for (size_t b = 0; b < batch; b++) {
                float *x = cur + b * maxdim;
                if (ly->act == EIE_ACT_SOFTMAX)
                    eie_act_softmax(x, dim, 1);
                else
                    for (size_t i = 0; i < dim; i++)
                        x[i] = eie_act_apply1(ly->act, x[i]);
            }
        }
    }
    for (size_t b = 0; b < batch; b++)
        memcpy(output + b * model->output_dim, cur + b * maxdim,
               model->output_dim * sizeof(float));
done:
    free(w);
    free(cur);
    free(next);
    return st;
}
