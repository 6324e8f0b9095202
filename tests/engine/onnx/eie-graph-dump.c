/*
 * eie-graph-dump: what a .eie graph holds, through the public accessors
 * only, for the import tests to compare with the ONNX file they came from:
 *   eie-graph-dump MODEL.eie OUTDIR [--run N IN0.f32 [IN1.f32 ...]]
 * writes OUTDIR/model.json (inputs, outputs, nodes and their parameters),
 * OUTDIR/w<i>.f32 and OUTDIR/b<i>.f32 (sparse node i's dense weights and
 * bias). With --run, N samples of each graph input (raw float32) go through
 * the dense reference and the cpu backend on 1 and 3 PEs, into
 * OUTDIR/dense<k>.f32, OUTDIR/cpu1_<k>.f32 and OUTDIR/cpu3_<k>.f32 for graph
 * output k.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/eie.h"

static int write_f32(const char *dir, const char *name, const float *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    int ok = fwrite(v, sizeof *v, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static float *read_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (f == NULL || v == NULL || fread(v, sizeof *v, n, f) != n || fgetc(f) != EOF) {
        fprintf(stderr, "eie-graph-dump: %s does not hold %zu floats\n", path, n);
        free(v);
        v = NULL;
    }
    if (f)
        fclose(f);
    return v;
}

static void json_tensor(FILE *j, const eie_tensor_info_t *t)
{
    fprintf(j, "{\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", t->name,
            eie_dtype_name(t->dtype));
    for (uint32_t d = 0; d < t->shape.rank; d++)
        fprintf(j, d ? ", %lld" : "%lld", (long long)t->shape.dims[d]);
    fprintf(j, "]}");
}

static int dump(const eie_model_t *m, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *j = fopen(path, "w");
    if (j == NULL)
        return -1;
    fprintf(j, "{\"name\": \"%s\", \"version\": %u, \"inputs\": [", eie_model_name(m),
            eie_model_format_version(m));
    for (size_t i = 0; i < eie_model_input_count(m); i++) {
        eie_tensor_info_t t;
        eie_model_input_info(m, i, &t);
        fprintf(j, i ? ", " : "");
        json_tensor(j, &t);
    }
    fprintf(j, "], \"outputs\": [");
    for (size_t i = 0; i < eie_model_output_count(m); i++) {
        eie_tensor_info_t t;
        eie_model_output_info(m, i, &t);
        fprintf(j, i ? ", " : "");
        json_tensor(j, &t);
    }
    fprintf(j, "], \"nodes\": [");
    int rc = 0;
    for (size_t i = 0; i < eie_model_layer_count(m); i++) {
        eie_layer_info_t li;
        eie_model_layer_info(m, i, &li);
        eie_tensor_info_t out;
        eie_model_tensor_info(m, li.output, &out);
        const eie_conv2d_params_t *c = &li.conv;
        const eie_pool2d_params_t *p = &li.pool;
        fprintf(j,
                "%s\n {\"name\": \"%s\", \"kind\": \"%s\", \"act\": \"%s\", \"axis\": %d, "
                "\"output\": \"%s\", \"inputs\": [",
                i ? "," : "", eie_model_layer_name(m, i), eie_layer_kind_name(li.kind),
                eie_act_name(li.act), li.axis, out.name);
        for (size_t k = 0; k < li.n_inputs; k++) {
            eie_tensor_info_t t;
            eie_model_tensor_info(m, li.inputs[k], &t);
            fprintf(j, "%s\"%s\"", k ? ", " : "", t.name);
        }
        fprintf(j,
                "], \"rows\": %u, \"cols\": %u, \"storage\": \"%s\", \"code_bits\": %u, "
                "\"nnz\": %llu, \"conv\": [%u, %u, %u, %u, %u, %u, %u, %u, %u, %u, %u], "
                "\"pool\": [%u, %u, %u, %u, %u, %u, %u, %u, %u, %u]}",
                li.rows, li.cols, li.storage == EIE_STORAGE_EXACT ? "exact" : "shared",
                li.code_bits, (unsigned long long)li.nnz, c->kernel_h, c->kernel_w, c->stride_h,
                c->stride_w, c->pad_top, c->pad_left, c->pad_bottom, c->pad_right, c->dilation_h,
                c->dilation_w, c->groups, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                p->pad_top, p->pad_left, p->pad_bottom, p->pad_right, p->ceil_mode,
                p->count_include_pad);
        if (li.kind == EIE_LAYER_FC || li.kind == EIE_LAYER_CONV2D || li.kind == EIE_LAYER_LSTM) {
            size_t n = (size_t)li.rows * li.cols;
            float *w = malloc(n * sizeof *w);
            char name[64];
            snprintf(name, sizeof name, "w%zu.f32", i);
            if (w == NULL || eie_model_fc_dense(m, i, w) != EIE_STATUS_OK ||
                write_f32(dir, name, w, n) != 0)
                rc = -1;
            free(w);
            snprintf(name, sizeof name, "b%zu.f32", i);
            if (write_f32(dir, name, eie_model_fc_bias(m, i), li.rows) != 0)
                rc = -1;
        }
    }
    fprintf(j, "\n]}\n");
    return fclose(j) == 0 ? rc : -1;
}

/* Runs the loaded inputs through the dense reference or the cpu backend on pes PEs. */
static int run(const eie_model_t *m, const char *dir, size_t batch, const float *const *in,
               unsigned pes)
{
    size_t no = eie_model_output_count(m);
    float **out = calloc(no, sizeof *out);
    eie_error_t err;
    eie_engine_t *e = NULL;
    eie_net_t *net = NULL;
    int rc = -1;
    for (size_t k = 0; k < no; k++) {
        eie_tensor_info_t t;
        eie_model_output_info(m, k, &t);
        if ((out[k] = calloc(batch * eie_shape_sample_elements(&t.shape), sizeof(float))) == NULL)
            goto done;
    }
    if (pes == 0) {
        if (eie_model_run_dense_multi(m, in, batch, out, &err) != EIE_STATUS_OK)
            goto fail;
    } else {
        eie_engine_opts_t o = eie_engine_opts_default();
        o.n_pes = pes;
        if (eie_engine_init(&o, &e, &err) != EIE_STATUS_OK ||
            eie_net_init(e, m, &net, &err) != EIE_STATUS_OK ||
            eie_net_run_multi(net, in, batch, out, NULL, &err) != EIE_STATUS_OK)
            goto fail;
    }
    rc = 0;
    for (size_t k = 0; k < no && rc == 0; k++) {
        eie_tensor_info_t t;
        eie_model_output_info(m, k, &t);
        char name[64];
        if (pes == 0)
            snprintf(name, sizeof name, "dense%zu.f32", k);
        else
            snprintf(name, sizeof name, "cpu%u_%zu.f32", pes, k);
        rc = write_f32(dir, name, out[k], batch * eie_shape_sample_elements(&t.shape));
    }
    goto done;
fail:
    fprintf(stderr, "eie-graph-dump: %s\n", err.msg);
done:
    eie_net_free(net);
    eie_engine_free(e);
    for (size_t k = 0; k < no; k++)
        free(out[k]);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc > 3 && (strcmp(argv[3], "--run") != 0 || argc < 5))) {
        fprintf(stderr, "usage: eie-graph-dump MODEL.eie OUTDIR [--run N IN0.f32 ...]\n");
        return 2;
    }
    eie_error_t err;
    eie_model_t *m;
    if (eie_model_load_file(argv[1], NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-graph-dump: %s\n", err.msg);
        return 1;
    }
    int rc = dump(m, argv[2]);
    if (rc == 0 && argc > 3) {
        size_t batch = strtoul(argv[4], NULL, 10), ni = eie_model_input_count(m);
        if (batch == 0 || (size_t)argc != 5 + ni) {
            fprintf(stderr, "eie-graph-dump: --run needs N >= 1 and %zu input files\n", ni);
            eie_model_free(m);
            return 2;
        }
        float **in = calloc(ni, sizeof *in);
        for (size_t i = 0; i < ni && rc == 0; i++) {
            eie_tensor_info_t t;
            eie_model_input_info(m, i, &t);
            /* an lstm's fed initial state is one sample whatever the steps */
            size_t rows = eie_model_input_is_state(m, i) ? 1 : batch;
            if ((in[i] = read_f32(argv[5 + i], rows * eie_shape_sample_elements(&t.shape))) ==
                NULL)
                rc = -1;
        }
        for (unsigned pes = 0; pes <= 3 && rc == 0; pes += pes == 0 ? 1 : 2)
            rc = run(m, argv[2], batch, (const float *const *)in, pes);
        for (size_t i = 0; i < ni; i++)
            free(in[i]);
        free(in);
    }
    eie_model_free(m);
    return rc == 0 ? 0 : 1;
}
