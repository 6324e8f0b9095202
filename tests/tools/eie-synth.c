/*
 * eie-synth: writes a synthetic compressed model with the engine's own
 * writer, for tests and benchmarks that need a model before (or without)
 * the compression pipeline:
 *   eie-synth OUT.eie --layers 784,300,100,10 [--density 0.1] [--bits 4]
 *             [--seed N] [--name NAME] [--act relu] [--softmax]
 *   eie-synth OUT.eie --cnn [--seed N] [--name NAME]
 *   eie-synth OUT.eie --two [--seed N] [--name NAME]
 * Weights: a random pruning mask at the given density, codes uniform over
 * 1..2^bits-1, a codebook spread over [-1, 1], small random biases; ReLU
 * between layers (softmax at the end with --softmax). --cnn writes a small
 * format-version-2 graph instead: "image" [-1,1,8,8] -> conv 4x3x3 (pad 1)
 * -> relu -> maxpool 2x2 -> flatten -> fc 10 -> "logits" [-1,10]. --two: two
 * inputs and two outputs: "left" [-1,6] -> fc 4 -> "l"; "right" [-1,3,2] ->
 * flatten -> fc 4 -> "r"; "sum" = l + r [-1,4]; "lrelu" = relu(l) [-1,4].
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64: reproducible across platforms */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static int usage(void)
{
    fprintf(stderr, "usage: eie-synth OUT.eie --layers N0,N1,...[,Nk] [--density D] [--bits B] "
                    "[--seed S] [--name NAME] [--softmax]\n");
    return 2;
}

/* Random shared weights (rows x cols, 4-bit codes) for a graph node. */
static eie_weights_t cnn_weights(uint32_t rows, uint32_t cols, uint8_t *codes, float *codebook,
                                 float *bias)
{
    codebook[0] = 0.0f;
    for (uint32_t c = 1; c < 16; c++)
        codebook[c] = -1.0f + 2.0f * (float)(c - 1) / 14.0f;
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        codes[i] = rng_unit() < 0.5 ? (uint8_t)(1 + rng_next() % 15) : 0;
    for (uint32_t r = 0; r < rows; r++)
        bias[r] = (float)(rng_unit() * 0.2 - 0.1);
    return (eie_weights_t){.storage = EIE_STORAGE_SHARED, .code_bits = 4, .codebook = codebook,
                           .codes = codes, .bias = bias};
}

static int write_cnn(const char *out, const char *name)
{
    eie_error_t err;
    eie_builder_t *b = NULL;
    uint8_t codes[640];
    float codebook[16], bias[10];
    eie_shape_t in = {.rank = 4, .dims = {-1, 1, 8, 8}};
    const char *x[1];
    if (eie_builder_init_graph(name, "synthetic conv net written by eie-synth", &b, &err) != 0 ||
        eie_builder_add_input(b, "image", EIE_DTYPE_FP32, &in, &err) != 0)
        goto fail;
    eie_node_desc_t d = {.kind = EIE_LAYER_CONV2D, .name = "conv", .n_inputs = 1, .inputs = x,
                         .output = "conv", .rows = 4,
                         .conv = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    x[0] = "image";
    d.weights = cnn_weights(4, 9, codes, codebook, bias);
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_ACTIVATION, .name = "relu", .n_inputs = 1,
                          .inputs = x, .output = "relu", .act = EIE_ACT_RELU};
    x[0] = "conv";
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_MAXPOOL2D, .name = "pool", .n_inputs = 1,
                          .inputs = x, .output = "pool", .pool = {2, 2, 2, 2, 0, 0, 0, 0, 0, 0}};
    x[0] = "relu";
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_FLATTEN, .name = "flat", .n_inputs = 1, .inputs = x,
                          .output = "flat"};
    x[0] = "pool";
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_FC, .name = "fc", .n_inputs = 1, .inputs = x,
                          .output = "logits", .rows = 10};
    x[0] = "flat";
    d.weights = cnn_weights(10, 64, codes, codebook, bias);
    if (eie_builder_add_node(b, &d, &err) != 0 || eie_builder_add_output(b, "logits", &err) != 0 ||
        eie_builder_write_file(b, out, &err) != 0)
        goto fail;
    eie_builder_free(b);
    return 0;
fail:
    fprintf(stderr, "eie-synth: %s\n", err.msg);
    eie_builder_free(b);
    return 1;
}

static int write_two(const char *out, const char *name)
{
    eie_error_t err;
    eie_builder_t *b = NULL;
    uint8_t codes[64];
    float codebook[16], bias[4];
    eie_shape_t left = {.rank = 2, .dims = {-1, 6}}, right = {.rank = 3, .dims = {-1, 3, 2}};
    const char *x[2];
    if (eie_builder_init_graph(name, "synthetic two-input model written by eie-synth", &b,
                               &err) != 0 ||
        eie_builder_add_input(b, "left", EIE_DTYPE_FP32, &left, &err) != 0 ||
        eie_builder_add_input(b, "right", EIE_DTYPE_FP32, &right, &err) != 0)
        goto fail;
    eie_node_desc_t d = {.kind = EIE_LAYER_FC, .name = "l", .n_inputs = 1, .inputs = x,
                         .output = "l", .rows = 4};
    x[0] = "left";
    d.weights = cnn_weights(4, 6, codes, codebook, bias);
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_FLATTEN, .name = "rf", .n_inputs = 1, .inputs = x,
                          .output = "rf"};
    x[0] = "right";
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_FC, .name = "r", .n_inputs = 1, .inputs = x,
                          .output = "r", .rows = 4};
    x[0] = "rf";
    d.weights = cnn_weights(4, 6, codes, codebook, bias);
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_ADD, .name = "sum", .n_inputs = 2, .inputs = x,
                          .output = "sum"};
    x[0] = "l";
    x[1] = "r";
    if (eie_builder_add_node(b, &d, &err) != 0)
        goto fail;
    d = (eie_node_desc_t){.kind = EIE_LAYER_ACTIVATION, .name = "lrelu", .n_inputs = 1,
                          .inputs = x, .output = "lrelu", .act = EIE_ACT_RELU};
    if (eie_builder_add_node(b, &d, &err) != 0 || eie_builder_add_output(b, "sum", &err) != 0 ||
        eie_builder_add_output(b, "lrelu", &err) != 0 || eie_builder_write_file(b, out, &err) != 0)
        goto fail;
    eie_builder_free(b);
    return 0;
fail:
    fprintf(stderr, "eie-synth: %s\n", err.msg);
    eie_builder_free(b);
    return 1;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *layers = NULL, *name = "synthetic";
    double density = 0.1;
    unsigned bits = 4;
    bool softmax = false, cnn = false, two = false;
    rng_state = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc)
            layers = argv[++i];
        else if (strcmp(argv[i], "--density") == 0 && i + 1 < argc)
            density = atof(argv[++i]);
        else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc)
            bits = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--softmax") == 0)
            softmax = true;
        else if (strcmp(argv[i], "--cnn") == 0)
            cnn = true;
        else if (strcmp(argv[i], "--two") == 0)
            two = true;
        else if (argv[i][0] != '-' && out == NULL)
            out = argv[i];
        else
            return usage();
    }
    if (cnn && out != NULL)
        return write_cnn(out, name);
    if (two && out != NULL)
        return write_two(out, name);
    if (out == NULL || layers == NULL || bits < 1 || bits > 8 || !(density > 0 && density <= 1))
        return usage();
    uint32_t dims[64];
    size_t n_dims = 0;
    for (char *p = (char *)layers; *p && n_dims < 64;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > 1u << 20)
            return usage();
        dims[n_dims++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (n_dims < 2)
        return usage();

    eie_error_t err;
    eie_builder_t *b = NULL;
    if (eie_builder_init(name, "synthetic model written by eie-synth", "input", "output", &b,
                         &err) != EIE_STATUS_OK)
        goto fail;
    for (size_t l = 0; l + 1 < n_dims; l++) {
        uint32_t rows = dims[l + 1], cols = dims[l];
        size_t n = (size_t)rows * cols;
        uint32_t k = 1u << bits;
        uint8_t *codes = malloc(n);
        float *codebook = malloc(k * sizeof(float));
        float *bias = malloc(rows * sizeof(float));
        if (codes == NULL || codebook == NULL || bias == NULL) {
            eie_error_set(&err, EIE_STATUS_NO_MEMORY, "out of memory");
            goto fail;
        }
        codebook[0] = 0.0f;
        for (uint32_t c = 1; c < k; c++)
            codebook[c] = k > 2 ? -1.0f + 2.0f * (float)(c - 1) / (float)(k - 2) : 0.5f;
        for (size_t i = 0; i < n; i++)
            codes[i] = rng_unit() < density ? (uint8_t)(1 + rng_next() % (k - 1)) : 0;
        for (uint32_t r = 0; r < rows; r++)
            bias[r] = (float)(rng_unit() * 0.2 - 0.1);
        eie_status_t st = eie_builder_add_fc(b, rows, cols, bits, codebook, codes, bias, &err);
        free(codes);
        free(codebook);
        free(bias);
        if (st != EIE_STATUS_OK)
            goto fail;
        eie_act_t act = l + 2 < n_dims ? EIE_ACT_RELU : (softmax ? EIE_ACT_SOFTMAX : EIE_ACT_IDENTITY);
        if (act != EIE_ACT_IDENTITY && eie_builder_add_activation(b, act, &err) != EIE_STATUS_OK)
            goto fail;
    }
    if (eie_builder_write_file(b, out, &err) != EIE_STATUS_OK)
        goto fail;
    eie_builder_free(b);
    return 0;
fail:
    fprintf(stderr, "eie-synth: %s\n", err.msg);
    eie_builder_free(b);
    return 1;
}
