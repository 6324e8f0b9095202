/*
 * eiectl compress: Deep Compression of an ONNX (or .eie) model into a .eie
 * graph that keeps the model's tensor names and shapes, with the paper's
 * table. Conv and fc layers are pruned and quantized alike (per-layer
 * options in graph order); retraining (--data, --dsd) needs a chain of
 * layers (add and concat may read one earlier output), whose retrained
 * weights then go into the graph. Without data, pruning is kept small.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/compress.h"
#include "eie/eie.h"
#include "eie/onnx.h"
#include "eie/train.h"
#include "eiectl.h"

/*
 * The most a layer is pruned without retraining. Pruning without retraining
 * costs accuracy fast past about half the weights (Han et al., NIPS 2015,
 * fig. 5); on a 10-epoch LeNet-300-100 on Fashion-MNIST (88.51%) pruning
 * every layer by 50% / 70% / 90% without retraining gave 88.26% / 87.21% /
 * 66.33%. Beyond this, compress asks for --data (or --force).
 */
#define UNRETRAINED_SPARSITY 0.5

static void usage(void)
{
    printf("usage: eiectl compress IN.onnx|IN.eie -o OUT.eie [options]\n\n"
           "Prunes, quantizes (k-means weight sharing) and Huffman-codes the conv and fc\n"
           "layers of a model (Deep Compression, ICLR 2016), keeping its tensor names and\n"
           "shapes. Per-layer lists follow the conv and fc layers in graph order (e.g.\n"
           "--bits 8,8,5,5 for LeNet-5: 8 for conv, 5 for fc as in the paper). With --data\n"
           "(a chain of layers; add and concat may read one earlier output), retrains\n"
           "after pruning, fine-tunes the shared centroids, and reports accuracy before\n"
           "and after.\n\n"
           "  --sparsity S[,S..]    fraction of weights pruned, per layer (0.9 with --data;\n"
           "                        without it 0.5, and more is refused unless --force)\n"
           "  --prune-std Q         prune |w| < Q x std(w) instead (NIPS 2015)\n"
           "  --prune-iterations N  reach the sparsity in N prune -> retrain rounds (1)\n"
           "  --bits B[,B..]        weight bits per layer, 1..8 (5), or 32: exact float32\n"
           "  --kmeans-init I       linear (default), random or density\n"
           "  --no-prune --no-quant --no-huffman   switch stages off (--no-quant, or its\n"
           "                        alias --exact, keeps each weight as its float32; the\n"
           "                        .eie writer always Huffman-codes, --no-huffman reports\n"
           "                        P+Q sizes only)\n"
           "  --force               prune beyond 0.5 without --data (accuracy not checked)\n"
           "  --data DIR            IDX dataset for retraining and accuracy\n"
           "  --limit N             use the first N training examples\n"
           "  --retrain-epochs N    epochs per prune round and for centroid fine-tuning (1)\n"
           "  --lr X                the original learning rate (0.05); retraining uses X/10\n"
           "  --dsd                 DSD-train (dense -> sparse -> dense) before compressing\n"
           "  --dsd-sparsity S      fraction pruned in DSD's sparse phase (0.3); 0 runs the\n"
           "                        same schedule without pruning (learning-rate restart only)\n"
           "  --seed S              seed (1)\n"
           "  --name NAME           the model's name in the .eie file (the input file's name)\n"
           "  --description TEXT    the model's description in the .eie file\n"
           "  --json                print the report as JSON\n");
}

/*
 * Parses "a,b,c" into up to max doubles; a single value fills every slot,
 * a shorter list leaves the remaining slots as they were.
 */
static int parse_list(const char *s, double *out, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        if (end == s || (*end != ',' && *end != '\0'))
            return -1;
        s = *end ? end + 1 : end;
    }
    for (size_t i = n; n == 1 && i < max; i++)
        out[i] = out[0];
    return (int)n;
}

/* The model as a graph: an ONNX file imported exactly, or a .eie file loaded. */
static eie_status_t load_graph(const char *path, const char *name, eie_model_t **model_out,
                               eie_error_t *err)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".eie") == 0)
        return eie_model_load_file(path, NULL, model_out, err);
    eie_onnx_opts_t io = {.model_name = name};
    eie_builder_t *b;
    uint8_t *bytes = NULL;
    size_t len = 0;
    eie_status_t st = eie_onnx_import_graph_file(path, &io, &b, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eie_builder_write_memory(b, &bytes, &len, err);
    eie_builder_free(b);
    if (st == EIE_STATUS_OK)
        st = eie_model_load_memory(bytes, len, NULL, model_out, err);
    free(bytes);
    return st;
}

int eiectl_cmd_compress(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    eie_compress_opts_t o = eie_compress_opts_default();
    const char *in = NULL, *out = NULL, *data = NULL, *name = NULL;
    const char *description = "compressed by eiectl compress (Deep Compression: pruning, "
                              "trained quantization, Huffman coding)";
    int json = 0, dsd = 0, huffman = 1, force = 0, sparsity_given = 0, sparsity_n = 0;
    double dsd_sparsity = eie_dsd_opts_default().sparsity;
    uint32_t limit = 0;
    double list[EIE_COMPRESS_MAX_FC];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--json") == 0)
            json = 1, takes = 0;
        else if (strcmp(a, "--dsd") == 0)
            dsd = 1, takes = 0;
        else if (strcmp(a, "--no-prune") == 0)
            o.prune = 0, takes = 0;
        else if (strcmp(a, "--no-quant") == 0 || strcmp(a, "--exact") == 0)
            o.quantize = 0, takes = 0;
        else if (strcmp(a, "--force") == 0)
            force = 1, takes = 0;
        else if (strcmp(a, "--no-huffman") == 0)
            huffman = 0, takes = 0;
        else if (a[0] != '-') {
            in = a;
            continue;
        } else if (v == NULL)
            return eiectl_usage_error("compress", "%s needs a value", a);
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            out = v;
        else if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--description") == 0)
            description = v;
        else if (strcmp(a, "--dsd-sparsity") == 0) {
            char *end;
            dsd_sparsity = strtod(v, &end);
            if (*end != '\0' || !(dsd_sparsity >= 0.0 && dsd_sparsity < 1.0))
                return eiectl_usage_error("compress", "--dsd-sparsity '%s' outside [0, 1)", v);
        } else if (strcmp(a, "--limit") == 0)
            limit = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--sparsity") == 0) {
            if ((sparsity_n = parse_list(v, o.sparsity, EIE_COMPRESS_MAX_FC)) < 1)
                return eiectl_usage_error("compress", "bad --sparsity '%s'", v);
            sparsity_given = 1;
        } else if (strcmp(a, "--prune-std") == 0) {
            o.prune_std = strtod(v, NULL);
            for (int k = 0; k < EIE_COMPRESS_MAX_FC; k++)
                o.sparsity[k] = -1.0;
            sparsity_given = 1;
        } else if (strcmp(a, "--prune-iterations") == 0)
            o.prune_iterations = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--bits") == 0) {
            /* Layers past the end of a short list keep their bits (5). */
            for (int k = 0; k < EIE_COMPRESS_MAX_FC; k++)
                list[k] = o.bits[k];
            int n = parse_list(v, list, EIE_COMPRESS_MAX_FC);
            if (n < 1)
                return eiectl_usage_error("compress", "bad --bits '%s'", v);
            for (int k = 0; k < EIE_COMPRESS_MAX_FC; k++) {
                if (!((list[k] >= 1.0 && list[k] <= 8.0) || list[k] == EIE_COMPRESS_EXACT_BITS) ||
                    list[k] != (double)(int)list[k])
                    return eiectl_usage_error(
                        "compress",
                        "--bits '%s': each layer takes 1..8 bits (weight sharing) or 32 (its "
                        "exact float32; --exact keeps every layer exact)",
                        v);
                o.bits[k] = (unsigned)list[k];
            }
        } else if (strcmp(a, "--kmeans-init") == 0) {
            int init = eie_kmeans_init_parse(v);
            if (init < 0)
                return eiectl_usage_error("compress", "unknown --kmeans-init '%s'", v);
            o.kmeans_init = (eie_kmeans_init_t)init;
        } else if (strcmp(a, "--retrain-epochs") == 0)
            o.retrain_epochs = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--lr") == 0)
            o.train.lr = strtof(v, NULL);
        else if (strcmp(a, "--seed") == 0)
            o.seed = o.train.seed = strtoull(v, NULL, 10);
        else
            return eiectl_usage_error("compress", "unknown option '%s'", a);
        i += takes;
    }
    if (in == NULL || out == NULL)
        return eiectl_usage_error("compress", "IN.onnx and -o OUT.eie are required");
    o.huffman = huffman;
    if (o.prune && data == NULL && !force) {
        /* Without data nothing can retrain or measure the pruned model: prune little. */
        /* Layers no --sparsity value reaches get the default without data. */
        for (int k = sparsity_given ? sparsity_n : 0; sparsity_n != 1 && k < EIE_COMPRESS_MAX_FC;
             k++)
            o.sparsity[k] = UNRETRAINED_SPARSITY;
        if (o.prune_std > 0.0)
            return eiectl_usage_error(
                "compress",
                "--prune-std %g without --data prunes an unknown share without retraining; "
                "give --data DIR to retrain, --sparsity S (S <= %g) to prune a bounded share, "
                "or --force",
                o.prune_std, UNRETRAINED_SPARSITY);
        for (int k = 0; k < EIE_COMPRESS_MAX_FC; k++)
            if (o.sparsity[k] > UNRETRAINED_SPARSITY)
                return eiectl_usage_error(
                    "compress",
                    "--sparsity %g (layer %d) without --data prunes beyond %g with no "
                    "retraining, which loses accuracy; give --data DIR to retrain after "
                    "pruning, --sparsity %g or less, --no-prune to quantize only, or --force "
                    "to prune anyway",
                    o.sparsity[k], k + 1, UNRETRAINED_SPARSITY, UNRETRAINED_SPARSITY);
    }

    char stem[256];
    if (name == NULL) {
        const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
        snprintf(stem, sizeof stem, "%s", base);
        char *dot = strrchr(stem, '.');
        if (dot && dot != stem)
            *dot = '\0';
        name = stem;
    }
    o.name = name;
    o.description = description;
    eie_error_t err;
    eie_model_t *graph = NULL;
    if (load_graph(in, name, &graph, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl compress: %s\n", err.msg);
        return 1;
    }
    eie_mlp_t *net = NULL;
    eie_dataset_t *train = NULL, *test = NULL;
    eie_builder_t *b = NULL;
    eie_compress_report_t rep;
    memset(&rep, 0, sizeof rep);
    int rc = 1;
    if (data || dsd) {
        /* Retraining runs on the dense FC network, then its layers go into the graph. */
        if (eiectl_load_network("compress", in, &net) != 0) {
            fprintf(stderr, "eiectl compress: retraining (--data, --dsd) works on a chain of "
                            "layers (add and concat may read one earlier output)\n");
            goto done;
        }
        uint32_t classes = eie_mlp_output_dim(net);
        classes = classes > 256 ? 256 : classes;
        if (data && (eie_dataset_load_dir(data, "train", classes, limit, &train, &err) ||
                     eie_dataset_load_dir(data, "t10k", classes, 0, &test, &err))) {
            fprintf(stderr, "eiectl compress: %s\n", err.msg);
            goto done;
        }
        o.train_set = train;
        o.test_set = test;
        o.train.progress = eiectl_train_progress;
        if (dsd) {
            if (train == NULL) {
                rc = eiectl_usage_error("compress", "--dsd needs --data");
                goto done;
            }
            eie_dsd_opts_t d = eie_dsd_opts_default();
            d.sparsity = dsd_sparsity;
            d.train = o.train;
            if (eie_dsd_train(net, train, &d, &err) != EIE_STATUS_OK) {
                fprintf(stderr, "eiectl compress: DSD: %s\n", err.msg);
                goto done;
            }
        }
        if (eie_compress(net, &o, &b, &rep, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl compress: %s\n", err.msg);
            goto done;
        }
        eie_builder_free(b);
        b = NULL;
    }
    if (eie_compress_graph(graph, net, &o, &b, &rep, &err) ||
        eie_builder_write_file(b, out, &err) || eie_compress_report_finish(&rep, out, &err)) {
        fprintf(stderr, "eiectl compress: %s\n", err.msg);
        goto done;
    }
    if (json) {
        eie_compress_report_json(stdout, &rep);
    } else {
        eie_compress_report_print(stdout, &rep);
        printf("wrote %s\n", out);
    }
    rc = 0;
done:
    eie_builder_free(b);
    eie_model_free(graph);
    eie_mlp_free(net);
    eie_dataset_free(train);
    eie_dataset_free(test);
    return rc;
}
