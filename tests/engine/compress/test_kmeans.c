/* 1-D k-means and layer quantization. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "eie/compress.h"

Test(kmeans, linear_init_spreads_centroids_over_min_max)
{
    /* Two values only at the ends: linear init places centroids at min and max, done at once. */
    float x[] = {-1.0f, -1.0f, 3.0f, 3.0f, 3.0f};
    float c[2];
    unsigned iters;
    cr_assert_eq(eie_kmeans_1d(x, 5, 2, EIE_KMEANS_LINEAR, 1, 50, c, NULL, &iters, NULL),
                 EIE_STATUS_OK);
    cr_assert_float_eq(c[0], -1.0f, 1e-6);
    cr_assert_float_eq(c[1], 3.0f, 1e-6);
    cr_assert_eq(iters, 0);
}

Test(kmeans, converges_to_cluster_means)
{
    float x[300];
    for (int i = 0; i < 100; i++) {
        x[i] = -2.0f + 0.01f * (float)(i % 10);
        x[100 + i] = 0.5f + 0.01f * (float)(i % 10);
        x[200 + i] = 4.0f + 0.01f * (float)(i % 10);
    }
    float c[3];
    uint8_t assign[300];
    cr_assert_eq(eie_kmeans_1d(x, 300, 3, EIE_KMEANS_LINEAR, 1, 100, c, assign, NULL, NULL),
                 EIE_STATUS_OK);
    cr_assert_float_eq(c[0], -1.955f, 1e-4);
    cr_assert_float_eq(c[1], 0.545f, 1e-4);
    cr_assert_float_eq(c[2], 4.045f, 1e-4);
    cr_assert_eq(assign[0], 0);
    cr_assert_eq(assign[150], 1);
    cr_assert_eq(assign[299], 2);
}

Test(kmeans, empty_cluster_is_reseeded_not_left_dead)
{
    /* Linear init over [0, 10] puts centroids at 0, 5, 10; nothing is near 5. */
    float x[] = {0.0f, 0.1f, 0.2f, 9.8f, 9.9f, 10.0f, 0.3f, 9.7f};
    float c[3];
    uint8_t assign[8];
    cr_assert_eq(eie_kmeans_1d(x, 8, 3, EIE_KMEANS_LINEAR, 1, 100, c, assign, NULL, NULL),
                 EIE_STATUS_OK);
    int used[3] = {0};
    for (int i = 0; i < 8; i++)
        used[assign[i]] = 1;
    cr_assert(used[0] && used[1] && used[2], "a centroid stayed empty: %g %g %g", c[0], c[1], c[2]);
}

Test(kmeans, random_and_density_inits_work_and_are_seeded)
{
    float x[1000], a[8], b[8];
    for (int i = 0; i < 1000; i++)
        x[i] = sinf((float)i * 0.37f) * (float)(i % 7);
    for (int init = EIE_KMEANS_RANDOM; init <= EIE_KMEANS_DENSITY; init++) {
        cr_assert_eq(eie_kmeans_1d(x, 1000, 8, init, 5, 100, a, NULL, NULL, NULL), EIE_STATUS_OK);
        cr_assert_eq(eie_kmeans_1d(x, 1000, 8, init, 5, 100, b, NULL, NULL, NULL), EIE_STATUS_OK);
        for (int j = 0; j < 8; j++)
            cr_assert_eq(a[j], b[j]);
        for (int j = 1; j < 8; j++)
            cr_assert_leq(a[j - 1], a[j]);
    }
    cr_assert_eq(eie_kmeans_init_parse("density"), EIE_KMEANS_DENSITY);
    cr_assert_eq(eie_kmeans_init_parse("nope"), -1);
}

Test(kmeans, quantize_layer_reserves_code_zero_for_pruned_weights)
{
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init(10, &net, NULL), EIE_STATUS_OK);
    float w[40];
    for (int i = 0; i < 40; i++)
        w[i] = i % 3 == 0 ? 0.0f : (float)(i - 20) * 0.1f;
    cr_assert_eq(eie_mlp_add_fc(net, 4, w, NULL, NULL), EIE_STATUS_OK);
    eie_mlp_layer_t *l = &net->layers[0];
    cr_assert_eq(eie_quantize_layer(l, 2, EIE_KMEANS_LINEAR, 1, NULL), EIE_STATUS_OK);
    cr_assert_eq(l->code_bits, 2);
    cr_assert_eq(l->codebook[0], 0.0f);
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(l->codes[i] == 0, w[i] == 0.0f, "weight %d", i);
        cr_assert_eq(l->w[i], l->codebook[l->codes[i]]);
    }
    cr_assert_eq(eie_quantize_layer(l, 9, EIE_KMEANS_LINEAR, 1, NULL), EIE_STATUS_INVALID_ARGUMENT);
    eie_mlp_free(net);
}

Test(prune, target_sparsity_zeroes_the_smallest_magnitudes)
{
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init(10, &net, NULL), EIE_STATUS_OK);
    float w[100];
    for (int i = 0; i < 100; i++)
        w[i] = (i % 2 ? -1.0f : 1.0f) * (float)(i + 1);
    cr_assert_eq(eie_mlp_add_fc(net, 10, w, NULL, NULL), EIE_STATUS_OK);
    eie_mlp_layer_t *l = &net->layers[0];
    cr_assert_eq(eie_prune_sparsity(l, 0.9, NULL), EIE_STATUS_OK);
    cr_assert_float_eq(eie_layer_density(l), 0.1, 1e-9);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(l->mask[i], i >= 90);
    eie_mlp_free(net);
}

Test(prune, std_threshold_follows_quality_parameter)
{
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init(4, &net, NULL), EIE_STATUS_OK);
    float w[4] = {-2.0f, -0.1f, 0.1f, 2.0f}; /* std = sqrt((4+0.01+0.01+4)/4) ~ 1.0012 */
    cr_assert_eq(eie_mlp_add_fc(net, 1, w, NULL, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_prune_std(&net->layers[0], 1.0, NULL), EIE_STATUS_OK);
    cr_assert_eq(net->layers[0].w[1], 0.0f);
    cr_assert_eq(net->layers[0].w[3], 2.0f);
    cr_assert_eq(eie_prune_sparsity(&net->layers[0], 1.0, NULL), EIE_STATUS_INVALID_ARGUMENT);
    eie_mlp_free(net);
}
