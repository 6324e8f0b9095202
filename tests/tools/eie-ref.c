/*
 * eie-ref: runs a model on raw little-endian float32 rows and writes the
 * outputs the same way, so end-to-end tests can compare what the daemon
 * answers with the engine's results computed in-process:
 *   eie-ref MODEL.eie IN.f32 OUT.f32 [--dense]
 * --dense uses the dense reference (float GEMV over the decoded weights)
 * instead of the cpu backend. A graph of several inputs (outputs) reads
 * (writes) them one after the other: all rows of input 0, then input 1...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "--dense") != 0)) {
        fprintf(stderr, "usage: eie-ref MODEL.eie IN.f32 OUT.f32 [--dense]\n");
        return 2;
    }
    eie_error_t err;
    eie_model_t *m = NULL;
    eie_engine_t *e = NULL;
    eie_net_t *net = NULL;
    float *in = NULL, *out = NULL;
    int rc = 1;
    if (eie_model_load_file(argv[1], NULL, &m, &err) != EIE_STATUS_OK)
        goto fail;
    FILE *f = fopen(argv[2], "rb");
    if (f == NULL) {
        eie_error_set(&err, EIE_STATUS_IO, "%s: cannot open", argv[2]);
        goto fail;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n_in = eie_model_input_count(m), n_out = eie_model_output_count(m);
    size_t in_dim = 0, out_dim = 0;
    const float *ins[64];
    float *outs[64];
    eie_tensor_info_t ti;
    if (n_in > 64 || n_out > 64) {
        eie_error_set(&err, EIE_STATUS_LIMIT, "more than 64 inputs or outputs");
        fclose(f);
        goto fail;
    }
    for (size_t i = 0; i < n_in; i++) {
        eie_model_input_info(m, i, &ti);
        in_dim += eie_shape_sample_elements(&ti.shape);
    }
    for (size_t i = 0; i < n_out; i++) {
        eie_model_output_info(m, i, &ti);
        out_dim += eie_shape_sample_elements(&ti.shape);
    }
    size_t rows = (size_t)bytes / (in_dim * sizeof(float));
    in = malloc((size_t)bytes + 1);
    out = malloc(rows * out_dim * sizeof(float) + 1);
    if (rows == 0 || (size_t)bytes != rows * in_dim * sizeof(float) || in == NULL || out == NULL ||
        fread(in, 1, (size_t)bytes, f) != (size_t)bytes) {
        fclose(f);
        eie_error_set(&err, EIE_STATUS_INVALID_ARGUMENT, "%s: not a whole number of %zu-float rows",
                      argv[2], in_dim);
        goto fail;
    }
    fclose(f);
    size_t at = 0;
    for (size_t i = 0; i < n_in; i++) {
        eie_model_input_info(m, i, &ti);
        ins[i] = in + at;
        at += rows * eie_shape_sample_elements(&ti.shape);
    }
    at = 0;
    for (size_t i = 0; i < n_out; i++) {
        eie_model_output_info(m, i, &ti);
        outs[i] = out + at;
        at += rows * eie_shape_sample_elements(&ti.shape);
    }
    if (argc == 5) {
        if (eie_model_run_dense_multi(m, ins, rows, outs, &err) != EIE_STATUS_OK)
            goto fail;
    } else {
        eie_engine_opts_t opts = eie_engine_opts_default();
        if (eie_engine_init(&opts, &e, &err) != EIE_STATUS_OK ||
            eie_net_init(e, m, &net, &err) != EIE_STATUS_OK ||
            eie_net_run_multi(net, ins, rows, outs, NULL, &err) != EIE_STATUS_OK)
            goto fail;
    }
    f = fopen(argv[3], "wb");
    if (f == NULL || fwrite(out, sizeof(float), rows * out_dim, f) != rows * out_dim) {
        if (f != NULL)
            fclose(f);
        eie_error_set(&err, EIE_STATUS_IO, "%s: cannot write", argv[3]);
        goto fail;
    }
    fclose(f);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "eie-ref: %s\n", err.msg);
done:
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    free(in);
    free(out);
    return rc;
}
