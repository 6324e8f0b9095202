/*
 * Fuzz target: the .eie reader (engine/format/reader.c).
 *
 * Every input is loaded twice: as it is (the SHA-256 trailer almost never
 * matches a mutated file, which covers the framing and checksum paths), and
 * with the trailer recomputed, so mutations reach the layer decoder. Each is
 * loaded with the default limits and with tight ones. A model that loads
 * must also work: decode every FC layer to dense weights, prepare it on a
 * 2-PE cpu engine and run it once on zeros.
 */
#include <string.h>

#include <openssl/evp.h>

#include "eie/eie.h"
#include "fuzz.h"

/* The heavy checks run on models that fit these limits, so one input costs
 * milliseconds and a few MiB at most. */
static const eie_limits_t tight = {
    .max_file_bytes = 1u << 20,
    .max_dim = 4096,
    .max_weights = 1u << 20,
    .max_layers = 16,
};

static eie_engine_t *engine(void)
{
    static eie_engine_t *e;
    if (e == NULL) {
        eie_engine_opts_t o = eie_engine_opts_default();
        eie_error_t err;
        o.n_pes = 2;
        FUZZ_CHECK(eie_engine_init(&o, &e, &err) == EIE_STATUS_OK, "%s", err.msg);
    }
    return e; /* lives for the process, like the daemon's */
}

static void exercise(const eie_model_t *m)
{
    eie_error_t err;
    size_t n_layers = eie_model_layer_count(m);
    FUZZ_CHECK(n_layers >= 1 && n_layers <= tight.max_layers, "%zu layers", n_layers);
    for (size_t i = 0; i < n_layers; i++) {
        eie_layer_info_t info;
        FUZZ_CHECK(eie_model_layer_info(m, i, &info) == EIE_STATUS_OK, "layer %zu", i);
        if (info.kind != EIE_LAYER_FC)
            continue;
        FUZZ_CHECK((uint64_t)info.rows * info.cols <= tight.max_weights, "layer %zu: %ux%u", i,
                   info.rows, info.cols);
        float *dense = malloc((size_t)info.rows * info.cols * sizeof(float));
        FUZZ_CHECK(dense != NULL, "out of memory");
        FUZZ_CHECK(eie_model_fc_dense(m, i, dense) == EIE_STATUS_OK, "layer %zu", i);
        free(dense);
    }
    eie_net_t *net = NULL;
    eie_status_t st = eie_net_init(engine(), m, &net, &err);
    FUZZ_CHECK(st == EIE_STATUS_OK, "a model that loads must prepare: %s", err.msg);
    uint32_t in_dim = eie_net_input_dim(net), out_dim = eie_net_output_dim(net);
    FUZZ_CHECK(in_dim == eie_model_input_dim(m) && out_dim == eie_model_output_dim(m),
               "net %ux%u, model %ux%u", in_dim, out_dim, eie_model_input_dim(m),
               eie_model_output_dim(m));
    float *x = calloc(in_dim, sizeof(float));
    float *y = malloc((size_t)out_dim * sizeof(float));
    FUZZ_CHECK(x != NULL && y != NULL, "out of memory");
    st = eie_net_run(net, x, 1, y, NULL, &err);
    FUZZ_CHECK(st == EIE_STATUS_OK, "a prepared model must run: %s", err.msg);
    free(x);
    free(y);
    eie_net_free(net);
}

static void load(const uint8_t *data, size_t size)
{
    eie_model_t *m = NULL;
    eie_error_t err;
    if (eie_model_load_memory(data, size, NULL, &m, &err) == EIE_STATUS_OK) {
        FUZZ_CHECK(eie_model_file_bytes(m) == size, "file_bytes");
        eie_model_free(m);
        m = NULL;
    }
    if (eie_model_load_memory(data, size, &tight, &m, &err) == EIE_STATUS_OK) {
        exercise(m);
        eie_model_free(m);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);
    if (size < 12 + 32)
        return 0;
    uint8_t *fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL, "out of memory");
    memcpy(fixed, data, size);
    unsigned sl = 0;
    FUZZ_CHECK(EVP_Digest(fixed, size - 32, fixed + size - 32, &sl, EVP_sha256(), NULL) && sl == 32,
               "SHA-256");
    if (memcmp(fixed, data, size) != 0)
        load(fixed, size);
    free(fixed);
    return 0;
}
