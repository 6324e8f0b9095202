/*
 * Fuzz target: the .eie reader (engine/format/reader.c).
 *
 * Every input is loaded twice: as it is (the SHA-256 trailer almost never
 * matches a mutated file, which covers the framing and checksum paths), and
 * with the trailer recomputed, so mutations reach the layer decoder. Each is
 * loaded with the default limits and with tight ones. A model that loads
 * must also work: decode every weighted layer (fc, conv, lstm) to dense
 * weights, prepare it on cpu engines of 1, 2 and 3 PEs and on eie-sim, and
 * run each on the same inputs (sequences for a graph with an lstm node):
 * the cpu runs must give the same bits on every PE count (a NaN's sign
 * aside).
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
    .max_tensors = 64,
    .max_elements = 1u << 16,
};

/* The engines every model that loads runs on: the cpu backend on 1, 2 and 3
 * PEs (3 without the one-PE copy of a small LSTM graph, so that runs too
 * small for the pool also walk a multi-PE layout on one thread), and eie-sim.
 * They live for the process, like the daemon's. */
enum { E_CPU1, E_CPU2, E_CPU3, E_SIM, N_ENGINES };

static eie_engine_t *engine(int which)
{
    static eie_engine_t *e[N_ENGINES];
    if (e[which] == NULL) {
        eie_engine_opts_t o = eie_engine_opts_default();
        eie_error_t err;
        if (which == E_SIM) {
            o.backend = "eie-sim";
            o.n_pes = 4;
        } else {
            o.n_pes = which == E_CPU1 ? 1 : which == E_CPU2 ? 2 : 3;
            o.cpu_one_layout = which == E_CPU3;
        }
        o.max_sequence = 8;
        FUZZ_CHECK(eie_engine_init(&o, &e[which], &err) == EIE_STATUS_OK, "%s", err.msg);
    }
    return e[which];
}

enum { MAX_IO = 8, STEPS = 3 };

/* Floats a run moves, over which its inputs are not run: a model that fits
 * the tight limits can still name large tensors, and one input must cost
 * milliseconds. */
#define MAX_RUN_FLOATS (1u << 16)

/* A run's inputs: zeros among small values, so that both skipped and walked
 * columns occur, the same for every engine. */
static void pattern(float *x, size_t n, size_t salt)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)((i + 1) * 2654435761u + salt * 40503u) >> 16;
        x[i] = v % 3 == 0 ? 0.0f : ((float)(v % 17) - 8.0f) * 0.125f;
    }
}

/* One run's shape: samples of each input and output. A sequence net (an
 * lstm node) runs n_seq sequences of STEPS steps, the second one step
 * shorter; a fed or final state holds one sample a sequence. */
typedef struct run_shape {
    int sequence;
    size_t n_seq, batch, n_in, n_out;
    size_t in_len[MAX_IO], out_len[MAX_IO];
} run_shape_t;

static int shape_of(eie_net_t *net, size_t n_seq, run_shape_t *rs)
{
    *rs = (run_shape_t){.sequence = eie_net_is_sequence(net), .n_seq = n_seq};
    rs->n_in = eie_net_input_count(net);
    rs->n_out = eie_net_output_count(net);
    if (rs->n_in > MAX_IO || rs->n_out > MAX_IO)
        return 0;
    uint64_t fixed = eie_net_batch_size(net);
    rs->batch = rs->sequence ? STEPS * n_seq : fixed ? (size_t)fixed : 2;
    if (rs->sequence && fixed != 0 && fixed != STEPS * n_seq)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < rs->n_in + rs->n_out; i++) {
        int in = i < rs->n_in;
        size_t k = in ? i : i - rs->n_in;
        uint64_t el = in ? eie_net_input_elements(net, k) : eie_net_output_elements(net, k);
        int state = in ? eie_net_input_is_state(net, k) : eie_net_output_is_state(net, k);
        uint64_t n = el * (state ? n_seq : rs->batch);
        if (el == 0 || el > MAX_RUN_FLOATS || n > MAX_RUN_FLOATS)
            return 0;
        (in ? rs->in_len : rs->out_len)[k] = (size_t)n;
        total += n;
    }
    return total <= 4 * MAX_RUN_FLOATS;
}

/* The same bits, or both NaN: two forms whose sums agree bit for bit may
 * add their operands the other way round, and with two NaNs of different
 * signs the first one's sign wins (x86). */
static size_t first_difference(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0 && !(a[i] != a[i] && b[i] != b[i]))
            return i;
    return n;
}

/* Runs net on the pattern; outputs into fresh buffers the caller frees. */
static eie_status_t run(eie_net_t *net, const run_shape_t *rs, float **y, eie_error_t *err)
{
    float *x[MAX_IO] = {0};
    for (size_t i = 0; i < rs->n_in; i++) {
        x[i] = malloc(rs->in_len[i] * sizeof(float));
        FUZZ_CHECK(x[i] != NULL, "out of memory");
        pattern(x[i], rs->in_len[i], i);
    }
    for (size_t i = 0; i < rs->n_out; i++) {
        y[i] = malloc(rs->out_len[i] * sizeof(float));
        FUZZ_CHECK(y[i] != NULL, "out of memory");
    }
    eie_status_t st;
    if (rs->sequence) {
        size_t lengths[2] = {STEPS, STEPS - 1};
        st = eie_net_run_sequences(net, (const float *const *)x, rs->n_seq, STEPS, lengths, y,
                                   NULL, err);
    } else {
        st = eie_net_run_multi(net, (const float *const *)x, rs->batch, y, NULL, err);
    }
    for (size_t i = 0; i < rs->n_in; i++)
        free(x[i]);
    return st;
}

static void exercise(const eie_model_t *m)
{
    eie_error_t err;
    size_t n_layers = eie_model_layer_count(m);
    FUZZ_CHECK(n_layers >= 1 && n_layers <= tight.max_layers, "%zu layers", n_layers);
    for (size_t i = 0; i < n_layers; i++) {
        eie_layer_info_t info;
        FUZZ_CHECK(eie_model_layer_info(m, i, &info) == EIE_STATUS_OK, "layer %zu", i);
        if (info.kind != EIE_LAYER_FC && info.kind != EIE_LAYER_CONV2D &&
            info.kind != EIE_LAYER_LSTM)
            continue;
        FUZZ_CHECK((uint64_t)info.rows * info.cols <= tight.max_weights, "layer %zu: %ux%u", i,
                   info.rows, info.cols);
        float *dense = malloc((size_t)info.rows * info.cols * sizeof(float));
        FUZZ_CHECK(dense != NULL, "out of memory");
        FUZZ_CHECK(eie_model_fc_dense(m, i, dense) == EIE_STATUS_OK, "layer %zu", i);
        free(dense);
    }
    eie_net_t *net[N_ENGINES] = {0};
    size_t n_seq = 2;
    for (int k = 0; k < N_ENGINES; k++) {
        eie_status_t st = eie_net_init(engine(k), m, &net[k], &err);
        if (k == E_SIM && st != EIE_STATUS_OK) {
            /* eie-sim computes a subset of the graph ops: a refusal says why */
            FUZZ_CHECK(err.msg[0] != '\0', "eie-sim refused without a message");
            continue;
        }
        FUZZ_CHECK(st == EIE_STATUS_OK, "a model that loads must prepare (engine %d): %s", k,
                   err.msg);
        FUZZ_CHECK(eie_net_input_dim(net[k]) == eie_model_input_dim(m) &&
                       eie_net_output_dim(net[k]) == eie_model_output_dim(m),
                   "net %ux%u, model %ux%u", eie_net_input_dim(net[k]),
                   eie_net_output_dim(net[k]), eie_model_input_dim(m), eie_model_output_dim(m));
        if (eie_net_is_sequence(net[k]) && eie_net_max_sequences(net[k]) < n_seq)
            n_seq = eie_net_max_sequences(net[k]);
    }
    run_shape_t rs;
    if (n_seq >= 1 && shape_of(net[E_CPU1], n_seq, &rs)) {
        /* Every output is the same bits on any number of PEs (README, Engine). */
        float *ref[MAX_IO] = {0};
        eie_status_t st = run(net[E_CPU1], &rs, ref, &err);
        FUZZ_CHECK(st == EIE_STATUS_OK, "a prepared model must run: %s", err.msg);
        for (int k = E_CPU2; k <= E_CPU3; k++) {
            float *y[MAX_IO] = {0};
            st = run(net[k], &rs, y, &err);
            FUZZ_CHECK(st == EIE_STATUS_OK, "a prepared model must run (engine %d): %s", k,
                       err.msg);
            for (size_t i = 0; i < rs.n_out; i++) {
                size_t at = first_difference(y[i], ref[i], rs.out_len[i]);
                FUZZ_CHECK(at == rs.out_len[i],
                           "output %zu on engine %d differs from one PE's at %zu: %a, %a", i, k,
                           at, (double)y[i][at], (double)ref[i][at]);
                free(y[i]);
            }
        }
        for (size_t i = 0; i < rs.n_out; i++)
            free(ref[i]);
        if (net[E_SIM] != NULL) {
            run_shape_t ss;
            if (shape_of(net[E_SIM], 1, &ss)) {
                float *y[MAX_IO] = {0};
                st = run(net[E_SIM], &ss, y, &err);
                FUZZ_CHECK(st == EIE_STATUS_OK, "eie-sim must run what it prepared: %s",
                           err.msg);
                for (size_t i = 0; i < ss.n_out; i++)
                    free(y[i]);
            }
        }
    }
    for (int k = 0; k < N_ENGINES; k++)
        eie_net_free(net[k]);
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
