/*
 * Training of convolutional networks: the gradients of every image op and
 * attribute against central differences of a float64 reference written
 * here, shapes, and determinism of a seeded run.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eie/compress.h"
#include "eie/engine.h"
#include "eie/train.h"

/* ------------------------------------------------------------------ */
/* A float64 reference of one sample through the network               */

static const double *ref_in(const double *x, double **outs, size_t j)
{
    return j == 0 ? x : outs[j - 1];
}

static void ref_layer(const eie_mlp_layer_t *l, const double *w, const double *b,
                      const double *in, const double *in2, double *out)
{
    uint32_t C = l->in_c, H = l->in_h, Wd = l->in_w, Co = l->out_c, Ho = l->out_h, Wo = l->out_w;
    switch (l->kind) {
    case EIE_LAYER_FC:
        for (uint32_t r = 0; r < l->rows; r++) {
            double s = b[r];
            for (uint32_t k = 0; k < l->cols; k++)
                s += w[(size_t)r * l->cols + k] * in[k];
            out[r] = s;
        }
        break;
    case EIE_LAYER_CONV2D: {
        const eie_conv2d_params_t *p = &l->conv;
        uint32_t cg = C / p->groups, cog = Co / p->groups;
        for (uint32_t co = 0; co < Co; co++)
            for (uint32_t oy = 0; oy < Ho; oy++)
                for (uint32_t ox = 0; ox < Wo; ox++) {
                    double s = b[co];
                    uint32_t g = co / cog;
                    for (uint32_t ci = 0; ci < cg; ci++)
                        for (uint32_t ky = 0; ky < p->kernel_h; ky++)
                            for (uint32_t kx = 0; kx < p->kernel_w; kx++) {
                                long iy = (long)oy * p->stride_h - (long)p->pad_top +
                                          (long)ky * p->dilation_h;
                                long ix = (long)ox * p->stride_w - (long)p->pad_left +
                                          (long)kx * p->dilation_w;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= Wd)
                                    continue;
                                s += w[(size_t)co * l->cols + (ci * p->kernel_h + ky) * p->kernel_w +
                                       kx] *
                                     in[((size_t)(g * cg + ci) * H + iy) * Wd + ix];
                            }
                    out[((size_t)co * Ho + oy) * Wo + ox] = s;
                }
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D: {
        const eie_pool2d_params_t *p = &l->pool;
        for (uint32_t c = 0; c < C; c++)
            for (uint32_t oy = 0; oy < Ho; oy++)
                for (uint32_t ox = 0; ox < Wo; ox++) {
                    long y0 = (long)oy * p->stride_h - p->pad_top, x0 = (long)ox * p->stride_w - p->pad_left;
                    double best = -INFINITY, sum = 0.0;
                    long inside = 0, padded = 0;
                    for (long iy = y0; iy < y0 + (long)p->kernel_h; iy++)
                        for (long ix = x0; ix < x0 + (long)p->kernel_w; ix++) {
                            int in_pad = iy >= -(long)p->pad_top && iy < (long)H + p->pad_bottom &&
                                         ix >= -(long)p->pad_left && ix < (long)Wd + p->pad_right;
                            padded += in_pad;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= Wd)
                                continue;
                            double v = in[((size_t)c * H + iy) * Wd + ix];
                            best = v > best ? v : best;
                            sum += v;
                            inside++;
                        }
                    double o = l->kind == EIE_LAYER_MAXPOOL2D
                                   ? best
                                   : sum / (double)(p->count_include_pad ? padded : inside);
                    out[((size_t)c * Ho + oy) * Wo + ox] = o;
                }
        break;
    }
    case EIE_LAYER_GLOBAL_AVGPOOL:
        for (uint32_t c = 0; c < C; c++) {
            double s = 0.0;
            for (uint32_t k = 0; k < H * Wd; k++)
                s += in[(size_t)c * H * Wd + k];
            out[c] = s / (H * Wd);
        }
        break;
    case EIE_LAYER_ADD:
        for (size_t k = 0; k < (size_t)C * H * Wd; k++)
            out[k] = in[k] + in2[k];
        break;
    case EIE_LAYER_CONCAT: {
        size_t na = (size_t)C * H * Wd, nb = (size_t)(Co - C) * H * Wd;
        memcpy(out, in, na * sizeof *out);
        memcpy(out + na, in2, nb * sizeof *out);
        break;
    }
    default: {
        size_t n = (size_t)Co * Ho * Wo;
        for (size_t k = 0; k < n; k++) {
            double v = in[k];
            out[k] = l->act == EIE_ACT_RELU      ? (v > 0 ? v : 0)
                     : l->act == EIE_ACT_TANH    ? tanh(v)
                     : l->act == EIE_ACT_SIGMOID ? 1.0 / (1.0 + exp(-v))
                                                 : v;
        }
        break;
    }
    }
}

/* Mean softmax cross-entropy over n samples; the trailing softmax layer is the loss's. */
static double ref_loss(const eie_mlp_t *net, double *const *w, double *const *b, const float *x,
                       const uint8_t *y, size_t n)
{
    size_t end = net->n_layers - 1; /* the nets here end in softmax */
    double **outs = calloc(end, sizeof *outs);
    double *xd = malloc(net->input_dim * sizeof *xd);
    for (size_t i = 0; i < end; i++)
        outs[i] = calloc(eie_mlp_layer_out_size(&net->layers[i]), sizeof(double));
    double loss = 0.0;
    for (size_t r = 0; r < n; r++) {
        for (uint32_t k = 0; k < net->input_dim; k++)
            xd[k] = x[r * net->input_dim + k];
        for (size_t i = 0; i < end; i++) {
            const eie_mlp_layer_t *l = &net->layers[i];
            ref_layer(l, w[i], b[i], ref_in(xd, outs, i), ref_in(xd, outs, l->in2), outs[i]);
        }
        size_t classes = eie_mlp_layer_out_size(&net->layers[end - 1]);
        const double *z = outs[end - 1];
        double max = z[0], sum = 0.0;
        for (size_t k = 1; k < classes; k++)
            max = z[k] > max ? z[k] : max;
        for (size_t k = 0; k < classes; k++)
            sum += exp(z[k] - max);
        loss += log(sum) + max - z[y[r]];
    }
    for (size_t i = 0; i < end; i++)
        free(outs[i]);
    free(outs);
    free(xd);
    return loss / (double)n;
}

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) % 2001) / 1000.0f - 1.0f;
}

static void fill_weights(eie_mlp_t *net, unsigned seed)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        eie_mlp_layer_t *l = &net->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        for (size_t k = 0; k < (size_t)l->rows * l->cols; k++)
            l->w[k] = 0.5f * frand(&seed);
        for (uint32_t k = 0; k < l->rows; k++)
            l->b[k] = 0.1f * frand(&seed);
    }
}

/*
 * Analytic gradients of every weight and bias against central differences
 * of the float64 reference, and the loss against the reference's.
 */
static void check_net(eie_mlp_t *net)
{
    enum { N = 3 };
    unsigned seed = 99;
    fill_weights(net, 5);
    float *x = malloc(N * net->input_dim * sizeof *x);
    for (size_t k = 0; k < N * net->input_dim; k++)
        x[k] = frand(&seed);
    uint8_t y[N] = {0, 2, 1};
    eie_mlp_grad_t *g;
    double loss;
    eie_error_t err;
    cr_assert_eq(eie_mlp_grad_init(net, &g, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_backprop(net, x, y, N, g, &loss, &err), EIE_STATUS_OK, "%s", err.msg);

    size_t nl = net->n_layers;
    double **w = calloc(nl, sizeof *w), **b = calloc(nl, sizeof *b);
    for (size_t i = 0; i < nl; i++) {
        const eie_mlp_layer_t *l = &net->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        w[i] = malloc((size_t)l->rows * l->cols * sizeof(double));
        b[i] = malloc(l->rows * sizeof(double));
        for (size_t k = 0; k < (size_t)l->rows * l->cols; k++)
            w[i][k] = l->w[k];
        for (uint32_t k = 0; k < l->rows; k++)
            b[i][k] = l->b[k];
    }
    double ref = ref_loss(net, w, b, x, y, N);
    cr_assert(fabs(ref - loss) <= 1e-5 * fabs(ref) + 1e-6, "loss %.9g, float64 reference %.9g",
              loss, ref);
    size_t checked = 0;
    const double h = 1e-5;
    for (size_t i = 0; i < nl; i++) {
        const eie_mlp_layer_t *l = &net->layers[i];
        if (!eie_mlp_layer_has_weights(l))
            continue;
        size_t nw = (size_t)l->rows * l->cols;
        for (size_t k = 0; k < nw + l->rows; k++) {
            double *p = k < nw ? &w[i][k] : &b[i][k - nw];
            double analytic = k < nw ? g->dw[i][k] : g->db[i][k - nw];
            double keep = *p;
            *p = keep + h;
            double up = ref_loss(net, w, b, x, y, N);
            *p = keep - h;
            double down = ref_loss(net, w, b, x, y, N);
            *p = keep;
            double numeric = (up - down) / (2 * h);
            cr_assert(fabs(analytic - numeric) <= 1e-3 * fabs(numeric) + 2e-5,
                      "layer %zu (%s) %s %zu: analytic %.8g, numeric %.8g", i,
                      eie_layer_kind_name(l->kind), k < nw ? "weight" : "bias",
                      k < nw ? k : k - nw, analytic, numeric);
            checked++;
        }
    }
    cr_assert_gt(checked, 0);
    for (size_t i = 0; i < nl; i++) {
        free(w[i]);
        free(b[i]);
    }
    free(w);
    free(b);
    free(x);
    eie_mlp_grad_free(g);
    eie_mlp_free(net);
}

static eie_conv2d_params_t conv(uint32_t k)
{
    return (eie_conv2d_params_t){.kernel_h = k, .kernel_w = k, .stride_h = 1, .stride_w = 1,
                                 .dilation_h = 1, .dilation_w = 1, .groups = 1,
                                 .pad_top = k / 2, .pad_left = k / 2, .pad_bottom = k / 2,
                                 .pad_right = k / 2};
}

static eie_pool2d_params_t pool(uint32_t k, uint32_t s)
{
    return (eie_pool2d_params_t){.kernel_h = k, .kernel_w = k, .stride_h = s, .stride_w = s};
}

/* input c x 7 x 6 -> [first conv] -> tanh -> [op under test] -> fc 3 -> softmax */
static eie_mlp_t *net_begin(uint32_t c, const eie_conv2d_params_t *p, uint32_t cout)
{
    eie_error_t err;
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init_image(c, 7, 6, &net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_conv2d(net, cout, p, NULL, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_TANH, &err), EIE_STATUS_OK);
    return net;
}

static eie_mlp_t *net_end(eie_mlp_t *net)
{
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_fc(net, 3, NULL, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_SOFTMAX, &err), EIE_STATUS_OK);
    return net;
}

Test(train_conv, conv2d_plain_gradients)
{
    eie_conv2d_params_t p = conv(3);
    check_net(net_end(net_begin(2, &p, 4)));
}

Test(train_conv, conv2d_stride_asymmetric_pads_gradients)
{
    eie_conv2d_params_t p = conv(3);
    p.stride_h = 2;
    p.stride_w = 3;
    p.pad_top = 0, p.pad_left = 2, p.pad_bottom = 1, p.pad_right = 0;
    eie_mlp_t *net = net_begin(2, &p, 3);
    cr_assert_eq(net->layers[0].out_h, 3); /* (7 + 0 + 1 - 3) / 2 + 1 */
    cr_assert_eq(net->layers[0].out_w, 2); /* (6 + 2 + 0 - 3) / 3 + 1 */
    check_net(net_end(net));
}

Test(train_conv, conv2d_dilation_with_stride_gradients)
{
    eie_conv2d_params_t p = conv(3);
    p.dilation_h = 2, p.dilation_w = 2, p.stride_h = 2;
    eie_mlp_t *net = net_begin(2, &p, 3);
    cr_assert_eq(net->layers[0].out_h, 3); /* (7 + 2 - 5) / 2 + 1 */
    check_net(net_end(net));
}

Test(train_conv, conv2d_groups_nonsquare_kernel_gradients)
{
    eie_conv2d_params_t p = conv(3);
    p.kernel_w = 2, p.groups = 2, p.pad_left = 1, p.pad_right = 0;
    eie_mlp_t *net = net_begin(4, &p, 6);
    cr_assert_eq(net->layers[0].cols, 2 * 3 * 2);
    eie_error_t err;
    /* A second conv behind the first: its input gradient reaches conv 1. */
    eie_conv2d_params_t q = conv(3);
    q.groups = 3;
    cr_assert_eq(eie_mlp_add_conv2d(net, 3, &q, NULL, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    check_net(net_end(net));
}

Test(train_conv, relu_sigmoid_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(1, &p, 3);
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_conv2d(net, 2, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_SIGMOID, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_conv2d(net, 2, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_RELU, &err), EIE_STATUS_OK);
    check_net(net_end(net));
}

Test(train_conv, maxpool_floor_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 3);
    eie_pool2d_params_t q = pool(2, 2);
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_MAXPOOL2D, &q, &err), EIE_STATUS_OK);
    cr_assert_eq(net->layers[2].out_h, 3);
    check_net(net_end(net));
}

Test(train_conv, maxpool_ceil_mode_pads_overlap_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 3);
    eie_pool2d_params_t q = pool(3, 2);
    q.ceil_mode = 1, q.pad_top = 1, q.pad_right = 2;
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_MAXPOOL2D, &q, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(net->layers[2].out_h, 4); /* ceil((7 + 1 - 3) / 2) + 1 */
    cr_assert_eq(net->layers[2].out_w, 3); /* 4, but the last window would start at 6 >= 6 + 0 */
    check_net(net_end(net));
}

static void avgpool_case(uint32_t include_pad, uint32_t ceil)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 3);
    eie_pool2d_params_t q = pool(3, 2);
    q.pad_top = 1, q.pad_left = 1, q.pad_bottom = 2, q.pad_right = 0;
    q.count_include_pad = include_pad, q.ceil_mode = ceil;
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_AVGPOOL2D, &q, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    check_net(net_end(net));
}

Test(train_conv, avgpool_count_include_pad_0_gradients)
{
    avgpool_case(0, 0);
}

Test(train_conv, avgpool_count_include_pad_1_gradients)
{
    avgpool_case(1, 0);
}

Test(train_conv, avgpool_ceil_mode_both_divisors_gradients)
{
    avgpool_case(0, 1);
    avgpool_case(1, 1);
}

Test(train_conv, global_avgpool_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 5);
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_global_avgpool(net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_output_dim(net), 5);
    check_net(net_end(net));
}

Test(train_conv, residual_add_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 3);
    eie_error_t err;
    /* tanh (layer 1) -> conv -> add with tanh's output: two paths into layer 1. */
    cr_assert_eq(eie_mlp_add_conv2d(net, 3, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_ADD, 2, &err), EIE_STATUS_OK, "%s", err.msg);
    check_net(net_end(net));
}

Test(train_conv, concat_with_input_and_branch_gradients)
{
    eie_conv2d_params_t p = conv(3);
    eie_mlp_t *net = net_begin(2, &p, 3);
    eie_error_t err;
    cr_assert_eq(eie_mlp_add_conv2d(net, 2, &p, NULL, NULL, &err), EIE_STATUS_OK);
    /* channels: conv 2's 2, then the first conv's 3 (through tanh) */
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_CONCAT, 2, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(net->layers[3].out_c, 5);
    /* and the network's input (2 channels) */
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_CONCAT, 0, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(net->layers[4].out_c, 7);
    check_net(net_end(net));
}

Test(train_conv, bad_shapes_are_refused_with_their_values)
{
    eie_error_t err;
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init_image(3, 5, 5, &net, &err), EIE_STATUS_OK);
    eie_conv2d_params_t p = conv(7);
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 0;
    cr_assert_eq(eie_mlp_add_conv2d(net, 4, &p, NULL, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "7x7") && strstr(err.msg, "5x5"), "%s", err.msg);
    p = conv(3);
    p.groups = 2;
    cr_assert_eq(eie_mlp_add_conv2d(net, 4, &p, NULL, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "2 groups"), "%s", err.msg);
    eie_pool2d_params_t q = pool(2, 2);
    q.pad_top = 2;
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_MAXPOOL2D, &q, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_ADD, 3, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "second input 3"), "%s", err.msg);
    p = conv(3);
    cr_assert_eq(eie_mlp_add_conv2d(net, 4, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_ADD, 0, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "4 x 5 x 5 and 3 x 5 x 5"), "%s", err.msg);
    eie_mlp_free(net);
}

/* A small seeded dataset of 8x8 images whose class is the brightest quadrant. */
static eie_dataset_t *quadrants(uint32_t count)
{
    eie_dataset_t *ds = calloc(1, sizeof *ds);
    ds->count = count, ds->rows = 8, ds->cols = 8, ds->classes = 4;
    ds->images = malloc((size_t)count * 64 * sizeof(float));
    ds->labels = malloc(count);
    unsigned s = 11;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t c = (uint8_t)(i % 4);
        ds->labels[i] = c;
        for (uint32_t k = 0; k < 64; k++) {
            uint32_t q = (k / 8 >= 4) * 2 + (k % 8 >= 4);
            ds->images[(size_t)i * 64 + k] = 0.5f * (frand(&s) + 1.0f) * (q == c ? 1.0f : 0.4f);
        }
    }
    return ds;
}

static eie_mlp_t *small_cnn(void)
{
    eie_error_t err;
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init_image(1, 8, 8, &net, &err), EIE_STATUS_OK);
    eie_conv2d_params_t p = conv(3);
    eie_pool2d_params_t q = pool(2, 2);
    cr_assert_eq(eie_mlp_add_conv2d(net, 4, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_RELU, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_MAXPOOL2D, &q, &err), EIE_STATUS_OK);
    net_end(net);
    fill_weights(net, 3);
    return net;
}

static void train_small(eie_mlp_t *net, eie_dataset_t *ds, unsigned threads)
{
    eie_error_t err;
    eie_train_opts_t o = eie_train_opts_default();
    o.epochs = 3, o.batch = 16, o.lr = 0.05f, o.seed = 7, o.threads = threads;
    cr_assert_eq(eie_train(net, ds, &o, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
}

Test(train_conv, seeded_training_is_identical_on_1_and_2_threads_and_learns)
{
    eie_dataset_t *ds = quadrants(256);
    ds->classes = 3; /* quadrant 3 examples relabelled below */
    for (uint32_t i = 0; i < ds->count; i++)
        ds->labels[i] = ds->labels[i] % 3;
    eie_mlp_t *a = small_cnn(), *b = small_cnn();
    eie_eval_t before, after;
    eie_error_t err;
    cr_assert_eq(eie_evaluate(a, ds, 1, &before, &err), EIE_STATUS_OK, "%s", err.msg);
    train_small(a, ds, 1);
    train_small(b, ds, 2);
    for (size_t i = 0; i < a->n_layers; i++) {
        const eie_mlp_layer_t *la = &a->layers[i], *lb = &b->layers[i];
        if (!eie_mlp_layer_has_weights(la))
            continue;
        cr_assert_eq(memcmp(la->w, lb->w, (size_t)la->rows * la->cols * sizeof(float)), 0,
                     "layer %zu differs between 1 and 2 threads", i);
        cr_assert_eq(memcmp(la->b, lb->b, la->rows * sizeof(float)), 0);
    }
    cr_assert_eq(eie_evaluate(a, ds, 2, &after, &err), EIE_STATUS_OK);
    cr_assert_lt(after.loss, before.loss, "loss %g -> %g", before.loss, after.loss);
    eie_mlp_free(a);
    eie_mlp_free(b);
    eie_dataset_free(ds);
}

Test(train_conv, pruned_conv_weights_stay_zero)
{
    eie_dataset_t *ds = quadrants(64);
    ds->classes = 3;
    for (uint32_t i = 0; i < ds->count; i++)
        ds->labels[i] = ds->labels[i] % 3;
    eie_mlp_t *net = small_cnn();
    eie_mlp_layer_t *c = &net->layers[0];
    for (size_t k = 0; k < (size_t)c->rows * c->cols; k += 2)
        c->w[k] = 0.0f;
    eie_error_t err;
    cr_assert_eq(eie_mlp_mask_from_weights(net, 0, &err), EIE_STATUS_OK);
    train_small(net, ds, 2);
    for (size_t k = 0; k < (size_t)c->rows * c->cols; k++)
        cr_assert((k % 2 == 0) == (c->w[k] == 0.0f), "weight %zu = %g", k, (double)c->w[k]);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}

Test(train_conv, graph_export_and_import_keep_every_output)
{
    eie_error_t err;
    eie_conv2d_params_t p = conv(3);
    eie_pool2d_params_t q = pool(2, 2);
    q.ceil_mode = 1, q.count_include_pad = 1, q.pad_top = 1;
    eie_mlp_t *net = net_begin(2, &p, 3);
    cr_assert_eq(eie_mlp_add_conv2d(net, 3, &p, NULL, NULL, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_ADD, 2, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_join(net, EIE_LAYER_CONCAT, 0, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_pool(net, EIE_LAYER_AVGPOOL2D, &q, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(eie_mlp_add_global_avgpool(net, &err), EIE_STATUS_OK);
    net_end(net);
    fill_weights(net, 8);
    eie_builder_t *b;
    cr_assert_eq(eie_mlp_to_graph(net, "cnn", "", &b, &err), EIE_STATUS_OK, "%s", err.msg);
    uint8_t *bytes;
    size_t len;
    eie_model_t *m;
    cr_assert_eq(eie_builder_write_memory(b, &bytes, &len, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_model_load_memory(bytes, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_mlp_t *back;
    cr_assert_eq(eie_mlp_from_model(m, &back, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(back->n_layers, net->n_layers);
    float x[2 * 2 * 7 * 6], y0[2 * 3], y1[2 * 3];
    unsigned s = 4;
    for (size_t k = 0; k < sizeof x / sizeof *x; k++)
        x[k] = frand(&s);
    cr_assert_eq(eie_mlp_forward(net, x, 2, y0, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_forward(back, x, 2, y1, &err), EIE_STATUS_OK);
    cr_assert_eq(memcmp(y0, y1, sizeof y0), 0, "outputs differ after export and import");
    /* The engine's dense reference reads the same graph the same way. */
    float y2[2 * 3];
    cr_assert_eq(eie_model_run_dense(m, x, 2, y2, &err), EIE_STATUS_OK, "%s", err.msg);
    for (size_t k = 0; k < 6; k++)
        cr_assert(fabsf(y2[k] - y0[k]) <= 1e-5f * fabsf(y0[k]) + 1e-6f, "output %zu: %g vs %g", k,
                  (double)y2[k], (double)y0[k]);
    eie_mlp_free(back);
    eie_model_free(m);
    free(bytes);
    eie_builder_free(b);
    eie_mlp_free(net);
}
