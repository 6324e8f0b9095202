/*
 * The whole pipeline on real data, small: LeNet-300-100 trained briefly on a
 * Fashion-MNIST subset, pruned, quantized, written as .eie by the engine and
 * read back. Asserts a sane size ratio and accuracy, and that the engine's
 * Huffman figures are within 1 bit of the entropy of the codes.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "eie/compress.h"
#include "eie/eie.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

Test(pipeline, lenet_subset_compresses_over_30x_and_keeps_accuracy, .timeout = 100)
{
    if (access(FASHION "/train-images-idx3-ubyte.gz", R_OK) != 0)
        cr_skip_test("dataset-fashion-mnist not installed");
    eie_error_t err;
    eie_dataset_t *train, *test;
    cr_assert_eq(eie_dataset_load_dir(FASHION, "train", 10, 6000, &train, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    cr_assert_eq(eie_dataset_load_dir(FASHION, "t10k", 10, 2000, &test, &err), EIE_STATUS_OK);
    uint32_t dims[] = {784, 300, 100, 10};
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init_layers(dims, 4, 1, &net, &err), EIE_STATUS_OK);
    eie_train_opts_t t = eie_train_opts_default();
    t.epochs = 2;
    cr_assert_eq(eie_train(net, train, &t, NULL, &err), EIE_STATUS_OK);

    eie_compress_opts_t o = eie_compress_opts_default();
    o.sparsity[0] = 0.92;
    o.sparsity[1] = 0.91;
    o.sparsity[2] = 0.74;
    o.retrain_epochs = 1;
    o.train_set = train;
    o.test_set = test;
    eie_builder_t *b;
    eie_compress_report_t rep;
    cr_assert_eq(eie_compress(net, &o, &b, &rep, &err), EIE_STATUS_OK, "%s", err.msg);
    char path[] = "/tmp/eie-pipeline-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(eie_builder_write_file(b, path, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_compress_report_finish(&rep, path, &err), EIE_STATUS_OK, "%s", err.msg);
    double r = (double)rep.dense_bytes / (double)rep.file_bytes;
    cr_assert_gt(r, 30.0, "ratio %.1f", r);
    cr_assert_gt(rep.top1_before, 0.70, "dense top-1 %g", rep.top1_before);
    cr_assert_gt(rep.top1_after, rep.top1_before - 0.03, "top-1 %g -> %g", rep.top1_before,
                 rep.top1_after);

    /* Huffman: average code length within 1 bit of the entropy of the codes. */
    eie_model_t *m;
    cr_assert_eq(eie_model_load_file(path, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_layer_info_t info;
    cr_assert_eq(eie_model_layer_info(m, 0, &info), EIE_STATUS_OK);
    uint8_t *codes = malloc((size_t)info.rows * info.cols);
    cr_assert_eq(eie_model_fc_codes(m, 0, codes), EIE_STATUS_OK);
    double hist[256] = {0}, n = 0;
    for (size_t i = 0; i < (size_t)info.rows * info.cols; i++)
        if (codes[i]) {
            hist[codes[i]]++;
            n++;
        }
    double h = 0;
    for (int k = 0; k < 256; k++)
        if (hist[k] > 0)
            h -= hist[k] / n * log2(hist[k] / n);
    /* Fillers (code 0) are a small share of entries; allow them in the bound. */
    cr_assert_lt(info.code_bits_huffman, h + 1.0, "huffman %.3f bits, entropy %.3f",
                 info.code_bits_huffman, h);
    cr_assert_lt(info.code_bits_huffman, (double)info.code_bits, "no gain over %u bits",
                 info.code_bits);

    /* The model computes what the compressed network computes. */
    float y0[10], y1[10];
    cr_assert_eq(eie_mlp_forward(net, test->images, 1, y0, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_model_run_dense(m, test->images, 1, y1, &err), EIE_STATUS_OK);
    for (int k = 0; k < 10; k++)
        cr_assert_float_eq(y0[k], y1[k], 1e-4);

    free(codes);
    eie_model_free(m);
    unlink(path);
    eie_builder_free(b);
    eie_mlp_free(net);
    eie_dataset_free(train);
    eie_dataset_free(test);
}
