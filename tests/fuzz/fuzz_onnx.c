/*
 * Fuzz target: the ONNX importers (engine/onnx/). Each input is imported as a
 * ModelProto twice, as a chain for training and as a graph, and, since
 * TensorProto parsing is the importer's other entry point, also loaded as a
 * serialised tensor. A chain that imports must run on zeros, export, and
 * import again with the same shape; a graph that imports must write a file
 * the reader accepts, and export then import to the same bytes.
 */
#include <string.h>

#include "eie/onnx.h"
#include "fuzz.h"

static void exercise(const eie_mlp_t *mlp)
{
    eie_error_t err;
    uint32_t in_dim = mlp->input_dim, out_dim = eie_mlp_output_dim(mlp);
    float *x = calloc(in_dim ? in_dim : 1, sizeof(float));
    float *y = malloc((out_dim ? out_dim : 1) * sizeof(float));
    FUZZ_CHECK(x != NULL && y != NULL, "out of memory");
    FUZZ_CHECK(eie_mlp_forward(mlp, x, 1, y, &err) == EIE_STATUS_OK,
               "an imported network must run: %s", err.msg);
    free(x);
    free(y);

    uint8_t *onnx = NULL;
    size_t len = 0;
    FUZZ_CHECK(eie_onnx_export_memory(mlp, "fuzz", "input", "output", &onnx, &len, &err) ==
                   EIE_STATUS_OK,
               "an imported network must export: %s", err.msg);
    eie_mlp_t *again = NULL;
    FUZZ_CHECK(eie_onnx_import_memory(onnx, len, NULL, &again, NULL, &err) == EIE_STATUS_OK,
               "an exported network must import: %s", err.msg);
    FUZZ_CHECK(again->input_dim == in_dim && eie_mlp_output_dim(again) == out_dim &&
                   eie_mlp_fc_count(again) == eie_mlp_fc_count(mlp),
               "re-import changed the shape: %u->%u (%zu fc) became %u->%u (%zu fc)", in_dim,
               out_dim, eie_mlp_fc_count(mlp), again->input_dim, eie_mlp_output_dim(again),
               eie_mlp_fc_count(again));
    eie_mlp_free(again);
    free(onnx);
}

/* The graph import's promise: what it builds is a valid .eie, and its ONNX export
   imports to the identical file. */
static void exercise_graph(const eie_builder_t *b)
{
    eie_error_t err;
    uint8_t *file = NULL, *onnx = NULL, *again_file = NULL;
    size_t file_len = 0, onnx_len = 0, again_len = 0;
    FUZZ_CHECK(eie_builder_write_memory(b, &file, &file_len, &err) == EIE_STATUS_OK,
               "an imported graph must write: %s", err.msg);
    eie_model_t *m = NULL;
    FUZZ_CHECK(eie_model_load_memory(file, file_len, NULL, &m, &err) == EIE_STATUS_OK,
               "an imported graph must write a file the reader accepts: %s", err.msg);
    FUZZ_CHECK(eie_onnx_export_model_memory(m, &onnx, &onnx_len, &err) == EIE_STATUS_OK,
               "an imported graph must export: %s", err.msg);
    eie_onnx_opts_t o = {.model_name = eie_model_name(m)};
    eie_builder_t *again = NULL;
    FUZZ_CHECK(eie_onnx_import_graph_memory(onnx, onnx_len, &o, &again, &err) == EIE_STATUS_OK,
               "an exported graph must import: %s", err.msg);
    FUZZ_CHECK(eie_builder_write_memory(again, &again_file, &again_len, &err) == EIE_STATUS_OK,
               "a re-imported graph must write: %s", err.msg);
    FUZZ_CHECK(again_len == file_len && memcmp(again_file, file, file_len) == 0,
               "import -> export -> import changed the file (%zu -> %zu bytes)", file_len,
               again_len);
    eie_builder_free(again);
    eie_model_free(m);
    free(again_file);
    free(onnx);
    free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eie_builder_t *graph = NULL;
    eie_error_t graph_err;
    if (eie_onnx_import_graph_memory(data, size, NULL, &graph, &graph_err) == EIE_STATUS_OK) {
        exercise_graph(graph);
        eie_builder_free(graph);
    } else {
        FUZZ_CHECK(graph_err.msg[0] != '\0', "a graph refusal must say why");
    }

    eie_error_t err;
    eie_mlp_t *mlp = NULL;
    eie_onnx_info_t info;
    if (eie_onnx_import_memory(data, size, NULL, &mlp, &info, &err) == EIE_STATUS_OK) {
        exercise(mlp);
        eie_mlp_free(mlp);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
    }

    eie_onnx_tensor_t *t = NULL;
    if (eie_onnx_tensor_load_memory(data, size, &t, &err) == EIE_STATUS_OK) {
        FUZZ_CHECK(t->rank <= EIE_ONNX_MAX_RANK, "rank %u", t->rank);
        size_t count = 1;
        for (uint32_t i = 0; i < t->rank; i++)
            count *= (size_t)t->dims[i];
        FUZZ_CHECK(count == t->count, "count %zu, dims give %zu", t->count, count);
        volatile float sum = 0; /* every value is readable */
        for (size_t i = 0; i < t->count; i++)
            sum += t->data[i];
        (void)sum;
        eie_onnx_tensor_free(t);
    }
    return 0;
}
