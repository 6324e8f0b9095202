/* Backpropagation against finite differences, and the dense network basics. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "eie/train.h"

static eie_mlp_t *make_net(eie_act_t hidden, int trailing_softmax)
{
    eie_error_t err;
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init(5, &net, &err), EIE_STATUS_OK);
    float w1[4 * 5], b1[4], w2[3 * 4], b2[3];
    unsigned s = 7;
    for (size_t i = 0; i < 20; i++)
        w1[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < 12; i++)
        w2[i] = (float)((s = s * 1103515245u + 12345u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < 4; i++)
        b1[i] = 0.1f * (float)i - 0.1f;
    for (size_t i = 0; i < 3; i++)
        b2[i] = -0.05f * (float)i;
    cr_assert_eq(eie_mlp_add_fc(net, 4, w1, b1, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, hidden, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_fc(net, 3, w2, b2, &err), EIE_STATUS_OK);
    if (trailing_softmax)
        cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_SOFTMAX, &err), EIE_STATUS_OK);
    return net;
}

static double loss_of(const eie_mlp_t *net, const float *x, const uint8_t *y, size_t n)
{
    eie_mlp_grad_t *g;
    double loss;
    cr_assert_eq(eie_mlp_grad_init(net, &g, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_backprop(net, x, y, n, g, &loss, NULL), EIE_STATUS_OK);
    eie_mlp_grad_free(g);
    return loss;
}

static void check_gradients(eie_act_t hidden, int trailing_softmax)
{
    eie_mlp_t *net = make_net(hidden, trailing_softmax);
    float x[3 * 5];
    for (size_t i = 0; i < 15; i++)
        x[i] = sinf((float)i);
    uint8_t y[3] = {0, 2, 1};
    eie_mlp_grad_t *g;
    double loss;
    cr_assert_eq(eie_mlp_grad_init(net, &g, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_backprop(net, x, y, 3, g, &loss, NULL), EIE_STATUS_OK);
    const float h = 1e-3f;
    for (size_t li = 0; li < net->n_layers; li++) {
        eie_mlp_layer_t *l = &net->layers[li];
        if (l->kind != EIE_LAYER_FC)
            continue;
        for (size_t k = 0; k < (size_t)l->rows * l->cols + l->rows; k++) {
            float *p = k < (size_t)l->rows * l->cols ? &l->w[k] : &l->b[k - l->rows * l->cols];
            float analytic = k < (size_t)l->rows * l->cols ? g->dw[li][k]
                                                            : g->db[li][k - l->rows * l->cols];
            float keep = *p;
            *p = keep + h;
            double up = loss_of(net, x, y, 3);
            *p = keep - h;
            double down = loss_of(net, x, y, 3);
            *p = keep;
            double numeric = (up - down) / (2.0 * h);
            cr_assert(fabs(numeric - analytic) < 2e-3 + 2e-2 * fabs(numeric),
                      "layer %zu param %zu: analytic %g numeric %g", li, k, analytic, numeric);
        }
    }
    eie_mlp_grad_free(g);
    eie_mlp_free(net);
}

Test(backprop, gradient_matches_finite_differences_relu_softmax)
{
    check_gradients(EIE_ACT_RELU, 1);
}

Test(backprop, gradient_matches_finite_differences_tanh_logits)
{
    check_gradients(EIE_ACT_TANH, 0);
}

Test(backprop, gradient_matches_finite_differences_sigmoid)
{
    check_gradients(EIE_ACT_SIGMOID, 1);
}

Test(backprop, gradient_matches_finite_differences_through_inner_softmax)
{
    check_gradients(EIE_ACT_SOFTMAX, 1);
}

Test(backprop, label_beyond_outputs_is_refused_with_its_index)
{
    eie_mlp_t *net = make_net(EIE_ACT_RELU, 1);
    eie_mlp_grad_t *g;
    eie_error_t err;
    float x[5] = {0};
    uint8_t y[1] = {7};
    double loss;
    cr_assert_eq(eie_mlp_grad_init(net, &g, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_backprop(net, x, y, 1, g, &loss, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "label 7 of example 0") != NULL, "%s", err.msg);
    eie_mlp_grad_free(g);
    eie_mlp_free(net);
}

Test(mlp, forward_computes_fc_and_activations)
{
    eie_error_t err;
    eie_mlp_t *net;
    float w[2 * 3] = {1, 2, 3, -1, -2, -3}, b[2] = {0.5f, 0.5f};
    cr_assert_eq(eie_mlp_init(3, &net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_fc(net, 2, w, b, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_RELU, &err), EIE_STATUS_OK);
    float x[2 * 3] = {1, 1, 1, 0, 1, 0}, y[4];
    cr_assert_eq(eie_mlp_forward(net, x, 2, y, &err), EIE_STATUS_OK);
    cr_assert_float_eq(y[0], 6.5f, 1e-6);
    cr_assert_float_eq(y[1], 0.0f, 1e-6);
    cr_assert_float_eq(y[2], 2.5f, 1e-6);
    cr_assert_float_eq(y[3], 0.0f, 1e-6);
    eie_mlp_free(net);
}

Test(mlp, oversized_layer_is_refused_before_allocating)
{
    eie_error_t err;
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init(1u << 20, &net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_fc(net, 1u << 20, NULL, NULL, &err), EIE_STATUS_LIMIT);
    cr_assert(strstr(err.msg, "over the limit") != NULL, "%s", err.msg);
    eie_mlp_free(net);
}
