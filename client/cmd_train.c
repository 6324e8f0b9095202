/*
 * eiectl train: a dense network trained from scratch on IDX data: fully
 * connected (--layers, written as ONNX or .eie) or LeNet-5 (--arch lenet5,
 * written as an .eie graph).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eie/compress.h"
#include "eie/onnx.h"
#include "eie/train.h"
#include "eiectl.h"

void eiectl_train_progress(void *user, const char *stage, unsigned epoch, unsigned epochs,
                           size_t done, size_t total, double loss)
{
    (void)user;
    if (!isatty(STDERR_FILENO))
        return;
    fprintf(stderr, "\r%-20s epoch %u/%u  batch %zu/%zu  loss %.4f", stage, epoch, epochs, done,
            total, loss);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* A network for training from a loaded model; prints the error as cmd's. */
static int network_from_model(const char *cmd, const char *path, const eie_model_t *m,
                              eie_mlp_t **mlp_out)
{
    eie_error_t err;
    if (eie_mlp_from_model(m, mlp_out, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl %s: %s: %s\n", cmd, path, err.msg);
        return 1;
    }
    return 0;
}

int eiectl_load_network(const char *cmd, const char *path, eie_mlp_t **mlp_out)
{
    eie_error_t err;
    eie_model_t *m = NULL;
    size_t n = strlen(path);
    int rc = 1;
    if (n > 4 && strcmp(path + n - 4, ".eie") == 0) {
        if (eie_model_load_file(path, NULL, &m, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl %s: %s\n", cmd, err.msg);
            return 1;
        }
        rc = network_from_model(cmd, path, m, mlp_out);
        eie_model_free(m);
        return rc;
    }
    /* An fc network imports directly; anything else (conv) as a graph first. */
    if (eie_onnx_import_file(path, NULL, mlp_out, NULL, &err) == EIE_STATUS_OK)
        return 0;
    eie_builder_t *b = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    eie_onnx_opts_t io = {.model_name = "model"};
    if (eie_onnx_import_graph_file(path, &io, &b, &err) == EIE_STATUS_OK &&
        eie_builder_write_memory(b, &bytes, &len, &err) == EIE_STATUS_OK &&
        eie_model_load_memory(bytes, len, NULL, &m, &err) == EIE_STATUS_OK)
        rc = network_from_model(cmd, path, m, mlp_out);
    else
        fprintf(stderr, "eiectl %s: %s\n", cmd, err.msg);
    eie_model_free(m);
    free(bytes);
    eie_builder_free(b);
    return rc;
}

static eie_status_t write_eie(const eie_mlp_t *net, const char *name, const char *path,
                              eie_error_t *err)
{
    eie_builder_t *b = NULL;
    eie_status_t st = eie_mlp_to_graph(net, name, "trained by eiectl train", &b, err);
    if (st == EIE_STATUS_OK)
        st = eie_builder_write_file(b, path, err);
    eie_builder_free(b);
    return st;
}

static void usage(void)
{
    printf("usage: eiectl train --layers 784,300,100,10 --data DIR -o OUT.onnx|OUT.eie [options]\n"
           "       eiectl train --arch lenet5 --data DIR -o OUT.eie [options]\n\n"
           "Trains a fully connected network (ReLU hidden layers, softmax output) or\n"
           "LeNet-5 (Caffe's layout: conv 20 5x5, maxpool 2, conv 50 5x5, maxpool 2, fc 500,\n"
           "relu, fc classes) with mini-batch SGD and writes it as ONNX (fc networks) or as\n"
           "an .eie graph with exact weights. DIR holds train-/t10k-images-idx3-ubyte[.gz]\n"
           "and -labels-idx1-ubyte[.gz] (MNIST, Fashion-MNIST).\n\n"
           "  --layers W0,W1,..   widths, input first\n"
           "  --arch lenet5       LeNet-5 for the dataset's images (classes: 10)\n"
           "  --data DIR          IDX dataset directory\n"
           "  --epochs N          epochs (10)\n"
           "  --batch N           mini-batch size (64)\n"
           "  --lr X              learning rate (0.05), decayed x0.9 per epoch\n"
           "  --seed S            seed of initialisation and shuffling (1)\n"
           "  --limit N           use the first N training examples\n"
           "  -o, --output FILE   ONNX file to write\n");
}

int eiectl_cmd_train(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    const char *layers = NULL, *arch = NULL, *data = NULL, *out = NULL;
    eie_train_opts_t o = eie_train_opts_default();
    uint32_t limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return eiectl_usage_error("train", "%s needs a value", a);
        if (strcmp(a, "--layers") == 0)
            layers = v;
        else if (strcmp(a, "--arch") == 0)
            arch = v;
        else if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            out = v;
        else if (strcmp(a, "--epochs") == 0)
            o.epochs = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--batch") == 0)
            o.batch = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--lr") == 0)
            o.lr = strtof(v, NULL);
        else if (strcmp(a, "--seed") == 0)
            o.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--limit") == 0)
            limit = (uint32_t)strtoul(v, NULL, 10);
        else
            return eiectl_usage_error("train", "unknown option '%s'", a);
        i++;
    }
    if ((layers == NULL) == (arch == NULL) || data == NULL || out == NULL)
        return eiectl_usage_error("train", "one of --layers and --arch, --data and -o are required");
    if (arch && strcmp(arch, "lenet5") != 0)
        return eiectl_usage_error("train", "unknown --arch '%s' (lenet5, or --layers for fc)",
                                  arch);
    size_t out_len = strlen(out);
    int to_eie = out_len >= 4 && strcmp(out + out_len - 4, ".eie") == 0;
    if (arch && !to_eie)
        return eiectl_usage_error("train", "--arch %s is written as .eie: -o '%s' must end in .eie",
                                  arch, out);
    uint32_t dims[EIE_MLP_MAX_LAYERS];
    size_t n_dims = 0;
    for (const char *p = layers ? layers : ""; *p && n_dims < EIE_MLP_MAX_LAYERS;) {
        char *end;
        unsigned long w = strtoul(p, &end, 10);
        if (end == p || w == 0 || w > EIE_MLP_MAX_DIM)
            return eiectl_usage_error("train", "bad width in --layers '%s'", layers);
        dims[n_dims++] = (uint32_t)w;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return eiectl_usage_error("train", "bad --layers '%s'", layers);
    }
    eie_error_t err;
    eie_mlp_t *net = NULL;
    eie_dataset_t *train = NULL, *test = NULL;
    int rc = 1;
    uint32_t classes = arch ? 10 : dims[n_dims - 1] > 256 ? 256 : dims[n_dims - 1];
    if (eie_dataset_load_dir(data, "train", classes, limit, &train, &err) ||
        eie_dataset_load_dir(data, "t10k", classes, 0, &test, &err) ||
        (arch ? eie_mlp_init_lenet5(1, train->rows, train->cols, classes, o.seed, &net, &err)
              : eie_mlp_init_layers(dims, n_dims, o.seed, &net, &err))) {
        fprintf(stderr, "eiectl train: %s\n", err.msg);
        goto done;
    }
    o.progress = eiectl_train_progress;
    eie_train_stats_t stats;
    eie_eval_t ev;
    if (eie_train(net, train, &o, &stats, &err) || eie_evaluate(net, test, 0, &ev, &err) ||
        (to_eie ? write_eie(net, arch ? arch : "mlp", out, &err)
                : eie_onnx_export_file(net, "mlp", "input", "output", out, &err))) {
        fprintf(stderr, "eiectl train: %s\n", err.msg);
        goto done;
    }
    printf("trained %s for %u epochs in %.1f s (%.1f s/epoch): loss %.4f, test top-1 %.2f%%, "
           "top-5 %.2f%%\n",
           arch ? arch : layers, o.epochs, stats.seconds,
           o.epochs ? stats.seconds / o.epochs : 0.0, stats.last_loss, 100.0 * ev.top1,
           100.0 * ev.top5);
    printf("wrote %s\n", out);
    rc = 0;
done:
    eie_mlp_free(net);
    eie_dataset_free(train);
    eie_dataset_free(test);
    return rc;
}
