/*
 * eiectl inspect MODEL.eie [--json]: what a compressed model holds, layer by
 * layer: shape, density, code bits, bytes, bytes per nonzero, compression
 * ratio against dense float32 (weights and bias), and the checksum status.
 */
#include <stdio.h>
#include <string.h>

#include "eie/eie.h"
#include "eiectl.h"
#include "report.h"

/* "784" for a version-1 model (its per-row width), "-1,1,28,28" for a graph. */
static void shape_text(const eie_model_t *m, const eie_shape_t *s, uint32_t dim, char *buf,
                       size_t len)
{
    if (eie_model_format_version(m) == 1) {
        snprintf(buf, len, "%u", dim);
        return;
    }
    size_t at = 0;
    buf[0] = 0;
    for (uint32_t k = 0; k < s->rank && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", k ? "," : "", (long long)s->dims[k]);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: eiectl inspect MODEL.eie [--json]\n\n"
                 "Print a .eie model: per layer shape, density, code bits, bytes, bytes per\n"
                 "nonzero, compression ratio vs dense float32, and the checksum status.\n"
                 "The file is fully validated (SHA-256 included); a bad file is an error.\n\n"
                 "  --json   machine-readable output\n");
}

int eiectl_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    if (eiectl_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-')
            return eiectl_usage_error("inspect", "unknown option '%s'", argv[i]);
        else if (path == NULL)
            path = argv[i];
        else
            return eiectl_usage_error("inspect", "one model file only");
    }
    if (path == NULL)
        return eiectl_usage_error("inspect", "missing MODEL.eie");
    eie_model_t *m;
    eie_error_t err;
    if (eie_model_load_file(path, NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl inspect: %s (%s)\n", err.msg, eie_status_name(err.status));
        return 1;
    }
    size_t n = eie_model_layer_count(m);
    uint64_t total_dense = 0, total_bytes = 0;
    /* Shapes as stored: a version-1 model's per-row width, a graph's full shapes. */
    char in_shape[160], out_shape[160];
    eie_tensor_info_t ti;
    eie_model_input_info(m, 0, &ti);
    shape_text(m, &ti.shape, eie_model_input_dim(m), in_shape, sizeof in_shape);
    eie_model_output_info(m, 0, &ti);
    shape_text(m, &ti.shape, eie_model_output_dim(m), out_shape, sizeof out_shape);
    if (json) {
        printf("{\"file\":");
        eiectl_json_string(stdout, path);
        printf(",\"name\":");
        eiectl_json_string(stdout, eie_model_name(m));
        printf(",\"description\":");
        eiectl_json_string(stdout, eie_model_description(m));
        printf(",\"input\":{\"name\":");
        eiectl_json_string(stdout, eie_model_input_name(m));
        printf(",\"shape\":[%s],\"datatype\":\"FP32\"},\"output\":{\"name\":", in_shape);
        eiectl_json_string(stdout, eie_model_output_name(m));
        printf(",\"shape\":[%s],\"datatype\":\"FP32\"},", out_shape);
        printf("\"file_bytes\":%llu,\"checksum\":{\"algorithm\":\"sha256\",\"status\":\"ok\","
               "\"value\":\"%s\"},\"layers\":[",
               (unsigned long long)eie_model_file_bytes(m), eie_model_checksum_hex(m));
    } else {
        printf("model       %s\n", eie_model_name(m));
        if (eie_model_description(m)[0])
            printf("description %s\n", eie_model_description(m));
        printf("input       %s [%s] FP32\n", eie_model_input_name(m), in_shape);
        printf("output      %s [%s] FP32\n", eie_model_output_name(m), out_shape);
        printf("file        %s, %llu bytes\n", path, (unsigned long long)eie_model_file_bytes(m));
        printf("checksum    sha256 ok %s\n\n", eie_model_checksum_hex(m));
        printf("%-3s %-10s %-12s %8s %4s %10s %10s %8s %8s\n", "#", "kind", "shape", "density",
               "bits", "nnz", "bytes", "B/nnz", "ratio");
    }
    for (size_t i = 0; i < n; i++) {
        eie_layer_info_t li;
        eie_model_layer_info(m, i, &li);
        if (li.kind == EIE_LAYER_ACTIVATION) {
            if (json)
                printf("%s{\"index\":%zu,\"kind\":\"activation\",\"activation\":\"%s\"}",
                       i ? "," : "", i, eie_act_name(li.act));
            else
                printf("%-3zu %-10s %s\n", i, "activation", eie_act_name(li.act));
            continue;
        }
        if (li.kind != EIE_LAYER_FC && li.kind != EIE_LAYER_CONV2D &&
            li.kind != EIE_LAYER_LSTM) {
            /* graph nodes without weights (pooling, add, concat, reshape) */
            if (json)
                printf("%s{\"index\":%zu,\"kind\":\"%s\"}", i ? "," : "", i,
                       eie_layer_kind_name(li.kind));
            else
                printf("%-3zu %s\n", i, eie_layer_kind_name(li.kind));
            continue;
        }
        uint64_t dense = ((uint64_t)li.rows * li.cols + li.rows) * 4;
        double density = (double)li.nnz / ((double)li.rows * li.cols);
        double bpn = li.nnz ? (double)li.layer_bytes / (double)li.nnz : 0.0;
        double ratio = li.layer_bytes ? (double)dense / (double)li.layer_bytes : 0.0;
        total_dense += dense;
        total_bytes += li.layer_bytes;
        if (json) {
            printf("%s{\"index\":%zu,\"kind\":\"%s\",\"rows\":%u,\"cols\":%u,\"nnz\":%llu,"
                   "\"entries\":%llu,\"density\":%.6f,\"code_bits\":%u,\"bytes\":%llu,"
                   "\"stream_bytes\":%llu,\"bytes_per_nonzero\":%.4f,"
                   "\"code_bits_huffman\":%.4f,\"run_bits_huffman\":%.4f,"
                   "\"compression_ratio\":%.3f",
                   i ? "," : "", i, eie_layer_kind_name(li.kind), li.rows, li.cols,
                   (unsigned long long)li.nnz,
                   (unsigned long long)li.entries, density, li.code_bits,
                   (unsigned long long)li.layer_bytes, (unsigned long long)li.stream_bytes, bpn,
                   li.code_bits_huffman, li.run_bits_huffman, ratio);
            if (li.kind == EIE_LAYER_LSTM) /* rows = 4H gates, cols = I + H (FORMAT.md) */
                printf(",\"hidden_size\":%u", li.hidden_size);
            printf("}");
        } else {
            char shape[32];
            snprintf(shape, sizeof shape, "%ux%u", li.rows, li.cols);
            printf("%-3zu %-10s %-12s %7.2f%% %4u %10llu %10llu %8.3f %7.1fx\n", i,
                   eie_layer_kind_name(li.kind), shape,
                   100.0 * density, li.code_bits, (unsigned long long)li.nnz,
                   (unsigned long long)li.layer_bytes, bpn, ratio);
        }
    }
    double total_ratio = total_bytes ? (double)total_dense / (double)total_bytes : 0.0;
    if (json)
        printf("],\"dense_fp32_bytes\":%llu,\"compression_ratio\":%.3f}\n",
               (unsigned long long)total_dense,
               eie_model_file_bytes(m) ? (double)total_dense / (double)eie_model_file_bytes(m)
                                       : 0.0);
    else
        printf("\nweights+bias: %llu bytes dense float32, %llu bytes in layers (%.1fx); whole "
               "file %.1fx\n",
               (unsigned long long)total_dense, (unsigned long long)total_bytes, total_ratio,
               (double)total_dense / (double)eie_model_file_bytes(m));
    eie_model_free(m);
    return 0;
}
