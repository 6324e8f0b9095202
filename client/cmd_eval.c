/*
 * eiectl eval: accuracy of a .onnx or .eie model on an IDX dataset split.
 * A .eie model runs on an engine backend (cpu by default: the results a
 * server would give); --backend decoded evaluates its decoded
 * (weight-shared) float weights, as a .onnx model always is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"
#include "eie/train.h"
#include "eiectl.h"

/* Examples per engine run: a batch decodes each weight entry once. */
#define EVAL_BATCH 64

static void print_eval(const char *model, const char *data, const char *split,
                       const char *backend, const eie_eval_t *ev)
{
    printf("%s on %s/%s (%u examples, %s): top-1 %.2f%%  top-5 %.2f%%\n", model, data, split,
           ev->count, backend, 100.0 * ev->top1, 100.0 * ev->top5);
    printf("class  examples  top-1\n");
    for (uint32_t k = 0; k < ev->classes; k++)
        if (ev->class_total[k])
            printf("%5u  %8u  %6.2f%%\n", k, ev->class_total[k],
                   100.0 * ev->class_correct[k] / ev->class_total[k]);
}

/* The decoded-weights path: the network as float layers (eie_evaluate). */
static int eval_decoded(const char *model, const char *data, const char *split, uint32_t limit)
{
    eie_mlp_t *net;
    if (eiectl_load_network("eval", model, &net) != 0)
        return 1;
    eie_error_t err;
    eie_dataset_t *ds = NULL;
    eie_eval_t ev;
    uint32_t out = eie_mlp_output_dim(net);
    int rc = 1;
    if (eie_dataset_load_dir(data, split, out > 256 ? 256 : out, limit, &ds, &err) ||
        eie_evaluate(net, ds, 0, &ev, &err)) {
        fprintf(stderr, "eiectl eval: %s\n", err.msg);
        goto done;
    }
    print_eval(model, data, split, "decoded", &ev);
    rc = 0;
done:
    eie_dataset_free(ds);
    eie_mlp_free(net);
    return rc;
}

/* The engine path: the .eie model prepared and run by a backend. */
static int eval_engine(const char *model, const char *backend, unsigned pes, const char *data,
                       const char *split, uint32_t limit)
{
    eie_error_t err;
    eie_model_t *m = NULL;
    eie_engine_t *e = NULL;
    eie_net_t *net = NULL;
    eie_dataset_t *ds = NULL;
    float *y = NULL;
    int rc = 1;
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = pes;
    if (eie_model_load_file(model, NULL, &m, &err) || eie_engine_init(&o, &e, &err) ||
        eie_net_init(e, m, &net, &err)) {
        fprintf(stderr, "eiectl eval: %s: %s\n", model, err.msg);
        goto done;
    }
    uint32_t in = eie_model_input_dim(m), out = eie_model_output_dim(m);
    if (eie_dataset_load_dir(data, split, out > 256 ? 256 : out, limit, &ds, &err)) {
        fprintf(stderr, "eiectl eval: %s\n", err.msg);
        goto done;
    }
    if ((uint64_t)ds->rows * ds->cols != in) {
        fprintf(stderr, "eiectl eval: %s takes %u inputs but %s/%s images are %ux%u = %u pixels\n",
                model, in, data, split, ds->rows, ds->cols, ds->rows * ds->cols);
        goto done;
    }
    if (ds->count == 0) {
        fprintf(stderr, "eiectl eval: %s/%s: empty dataset\n", data, split);
        goto done;
    }
    if ((y = malloc((size_t)EVAL_BATCH * out * sizeof(float))) == NULL) {
        fprintf(stderr, "eiectl eval: out of memory\n");
        goto done;
    }
    eie_eval_t ev;
    memset(&ev, 0, sizeof ev);
    ev.classes = ds->classes;
    for (uint32_t a = 0; a < ds->count; a += EVAL_BATCH) {
        size_t n = ds->count - a < EVAL_BATCH ? ds->count - a : EVAL_BATCH;
        if (eie_net_run(net, ds->images + (size_t)a * in, n, y, NULL, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl eval: %s: %s\n", model, err.msg);
            goto done;
        }
        for (size_t r = 0; r < n; r++)
            eie_eval_add(&ev, y + r * out, ds->labels[a + r]);
    }
    eie_eval_finish(&ev);
    print_eval(model, data, split, backend, &ev);
    rc = 0;
done:
    free(y);
    eie_dataset_free(ds);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    return rc;
}

int eiectl_cmd_eval(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        printf("usage: eiectl eval MODEL(.onnx|.eie) --data DIR [--split t10k|train] [--limit N]\n"
               "                  [--backend cpu|eie-sim|decoded] [--pes N]\n\n"
               "Prints top-1, top-5 and per-class accuracy of the model on DIR's IDX data.\n"
               "A .eie model runs on an engine backend, cpu by default (what eied serves);\n"
               "--backend decoded evaluates its decoded weight-shared float weights instead,\n"
               "as a .onnx model always is. --pes sets the backend's PE count (default:\n"
               "online cores).\n");
        return 0;
    }
    const char *model = NULL, *data = NULL, *split = "t10k", *backend = NULL;
    uint32_t limit = 0;
    unsigned pes = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            model = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return eiectl_usage_error("eval", "%s needs a value", argv[i]);
        if (strcmp(argv[i], "--data") == 0) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--split") == 0) {
            split = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0) {
            limit = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--backend") == 0) {
            backend = argv[++i];
        } else if (strcmp(argv[i], "--pes") == 0) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*argv[i] == '\0' || *end != '\0' || v < 1 || v > 1024)
                return eiectl_usage_error("eval", "--pes '%s': expected 1..1024", argv[i]);
            pes = (unsigned)v;
        } else {
            return eiectl_usage_error("eval", "unknown option '%s'", argv[i]);
        }
    }
    if (model == NULL || data == NULL)
        return eiectl_usage_error("eval", "MODEL and --data are required");
    size_t n = strlen(model);
    int is_eie = n > 4 && strcmp(model + n - 4, ".eie") == 0;
    if (backend == NULL)
        backend = is_eie ? "cpu" : "decoded";
    if (strcmp(backend, "decoded") == 0)
        return eval_decoded(model, data, split, limit);
    if (!is_eie)
        return eiectl_usage_error("eval", "--backend %s runs .eie models; %s is not one "
                                          "(use --backend decoded, or compress it first)",
                                  backend, model);
    return eval_engine(model, backend, pes, data, split, limit);
}
