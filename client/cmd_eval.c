/* eiectl eval: accuracy of a .onnx or .eie model on the t10k split of an IDX dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/train.h"
#include "eiectl.h"

int eiectl_cmd_eval(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        printf("usage: eiectl eval MODEL(.onnx|.eie) --data DIR [--split t10k|train] [--limit N]\n\n"
               "Prints top-1, top-5 and per-class accuracy of the model on DIR's IDX data.\n"
               "A .eie model is evaluated on its decoded (weight-shared) weights.\n");
        return 0;
    }
    const char *model = NULL, *data = NULL, *split = "t10k";
    uint32_t limit = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            model = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return eiectl_usage_error("eval", "%s needs a value", argv[i]);
        if (strcmp(argv[i], "--data") == 0)
            data = argv[++i];
        else if (strcmp(argv[i], "--split") == 0)
            split = argv[++i];
        else if (strcmp(argv[i], "--limit") == 0)
            limit = (uint32_t)strtoul(argv[++i], NULL, 10);
        else
            return eiectl_usage_error("eval", "unknown option '%s'", argv[i]);
    }
    if (model == NULL || data == NULL)
        return eiectl_usage_error("eval", "MODEL and --data are required");
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
    printf("%s on %s/%s (%u examples): top-1 %.2f%%  top-5 %.2f%%\n", model, data, split,
           ev.count, 100.0 * ev.top1, 100.0 * ev.top5);
    printf("class  examples  top-1\n");
    for (uint32_t k = 0; k < ev.classes; k++)
        if (ev.class_total[k])
            printf("%5u  %8u  %6.2f%%\n", k, ev.class_total[k],
                   100.0 * ev.class_correct[k] / ev.class_total[k]);
    rc = 0;
done:
    eie_dataset_free(ds);
    eie_mlp_free(net);
    return rc;
}
