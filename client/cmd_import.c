/*
 * eiectl import MODEL.onnx -o MODEL.eie [--name NAME] [--dim NAME=SIZE ...]: an ONNX model as a
 * .eie graph without changing any output: names, shapes and every weight
 * kept (a codebook where a layer's nonzeros take at most 255 values, else
 * the exact values). Prints what each sparse layer got and its bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"
#include "eie/onnx.h"
#include "eiectl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eiectl import MODEL.onnx -o MODEL.eie [--name NAME] [--dim NAME=SIZE ...]\n\n"
            "Converts an ONNX model to a .eie graph exactly: graph input and output\n"
            "names, datatypes and shapes are kept, and every weight bit for bit. A layer\n"
            "whose nonzero weights take at most 255 distinct values is stored with a\n"
            "codebook of the fewest bits that hold them, any other exactly.\n"
            "BatchNormalization is folded into the layer before it (in float64).\n\n"
            "  -o, --output FILE  the .eie to write\n"
            "  --name NAME        model name (default: the ONNX file's name without .onnx)\n"
            "  --dim NAME=SIZE    give the symbolic input dimension NAME a fixed size\n"
            "                     (eie keeps only the batch, dimension 0, variable), e.g.\n"
            "                     --dim batch_size=1 for an LSTM's [T, batch_size, I];\n"
            "                     repeatable, up to %d\n",
            EIE_ONNX_MAX_DIMS);
}

static void print_shape(const eie_shape_t *s)
{
    putchar('[');
    for (uint32_t d = 0; d < s->rank; d++)
        printf(d ? ",%lld" : "%lld", (long long)s->dims[d]);
    putchar(']');
}

/* The per-layer table, read back from the written file so the bytes are the file's. */
static int report(const char *path)
{
    eie_model_t *m;
    eie_error_t err;
    if (eie_model_load_file(path, NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl import: reading back %s: %s\n", path, err.msg);
        return 1;
    }
    printf("model %s: %zu nodes\n", eie_model_name(m), eie_model_layer_count(m));
    for (size_t i = 0; i < eie_model_input_count(m) + eie_model_output_count(m); i++) {
        eie_tensor_info_t ti;
        int is_in = i < eie_model_input_count(m);
        if (is_in)
            eie_model_input_info(m, i, &ti);
        else
            eie_model_output_info(m, i - eie_model_input_count(m), &ti);
        printf("  %-6s %s %s ", is_in ? "input" : "output", ti.name, eie_dtype_name(ti.dtype));
        print_shape(&ti.shape);
        putchar('\n');
    }
    printf("  %-4s %-24s %-10s %-12s %-16s %10s %12s\n", "#", "node", "kind", "weights", "storage",
           "nonzeros", "bytes");
    uint64_t total = 0;
    for (size_t i = 0; i < eie_model_layer_count(m); i++) {
        eie_layer_info_t li;
        eie_model_layer_info(m, i, &li);
        if (li.kind != EIE_LAYER_FC && li.kind != EIE_LAYER_CONV2D && li.kind != EIE_LAYER_LSTM)
            continue;
        char dims[32], storage[32];
        snprintf(dims, sizeof dims, "%ux%u", li.rows, li.cols);
        if (li.storage == EIE_STORAGE_EXACT)
            snprintf(storage, sizeof storage, "exact");
        else
            snprintf(storage, sizeof storage, "codebook %u-bit", li.code_bits);
        printf("  %-4zu %-24s %-10s %-12s %-16s %10llu %12llu\n", i, eie_model_layer_name(m, i),
               eie_layer_kind_name(li.kind), dims, storage, (unsigned long long)li.nnz,
               (unsigned long long)li.layer_bytes);
        total += li.layer_bytes;
    }
    printf("wrote %s: %llu bytes (sparse layers %llu)\n", path,
           (unsigned long long)eie_model_file_bytes(m), (unsigned long long)total);
    eie_model_free(m);
    return 0;
}

int eiectl_cmd_import(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *in = NULL, *out = NULL, *name = NULL;
    eie_onnx_dim_t dims[EIE_ONNX_MAX_DIMS];
    size_t n_dims = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dim") == 0) {
            if (i + 1 >= argc)
                return eiectl_usage_error("import", "--dim needs NAME=SIZE");
            char *spec = argv[++i], *eq = strchr(spec, '='), *end = NULL;
            if (eq == NULL || eq == spec)
                return eiectl_usage_error("import", "--dim '%s': expected NAME=SIZE", spec);
            errno = 0;
            long long v = strtoll(eq + 1, &end, 10);
            if (errno != 0 || end == eq + 1 || *end != '\0' || v < 1 || v > INT32_MAX)
                return eiectl_usage_error("import", "--dim '%s': SIZE must be an integer in 1..%d",
                                          spec, INT32_MAX);
            if (n_dims == EIE_ONNX_MAX_DIMS)
                return eiectl_usage_error("import", "--dim: at most %d", EIE_ONNX_MAX_DIMS);
            *eq = '\0';
            for (size_t k = 0; k < n_dims; k++)
                if (strcmp(dims[k].name, spec) == 0)
                    return eiectl_usage_error("import", "--dim %s given twice", spec);
            dims[n_dims++] = (eie_onnx_dim_t){.name = spec, .value = v};
        } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0 ||
                   strcmp(argv[i], "--name") == 0) {
            if (i + 1 >= argc)
                return eiectl_usage_error("import", "%s needs a value", argv[i]);
            if (argv[i][1] == 'o' || argv[i][2] == 'o')
                out = argv[++i];
            else
                name = argv[++i];
        } else if (argv[i][0] == '-') {
            return eiectl_usage_error("import", "unknown option '%s'", argv[i]);
        } else if (in == NULL) {
            in = argv[i];
        } else {
            return eiectl_usage_error("import", "one model file only (also got '%s')", argv[i]);
        }
    }
    if (in == NULL || out == NULL)
        return eiectl_usage_error("import", "MODEL.onnx and -o MODEL.eie are required");
    if (name != NULL && name[0] == '\0')
        return eiectl_usage_error("import", "--name must not be empty");
    eie_onnx_opts_t opts = {.model_name = name, .dims = dims, .n_dims = n_dims};
    eie_builder_t *b;
    eie_error_t err;
    if (eie_onnx_import_graph_file(in, &opts, &b, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl import: %s\n", err.msg);
        return 1;
    }
    eie_status_t st = eie_builder_write_file(b, out, &err);
    eie_builder_free(b);
    if (st != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl import: %s\n", err.msg);
        return 1;
    }
    return report(out);
}
