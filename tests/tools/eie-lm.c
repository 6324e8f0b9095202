/*
 * eie-lm: trains the byte-level NeuralTalk-style language model of
 * engine/train/lm.c (We -> LSTM -> Wd) on a text file, compresses it to
 * EIE's NeuralTalk densities (Han et al., ISCA 2016, Table III: NT-We 10%,
 * NT-LSTM 10%, NT-Wd 11%) with masked retraining, shares the weights with
 * 4-bit codebooks, and reports held-out perplexity dense vs compressed as
 * the engine's cpu backend computes it from the .eie files:
 *   eie-lm TEXT OUTDIR [--epochs N] [--retrain N] [--rounds K] [--embed E]
 *          [--hidden H] [--density WE,LSTM,WD] [--bits B] [--lr X] [--seed S]
 * --rounds K reaches the densities in K prune -> retrain rounds (density
 * d^(k/K) in round k, Han et al., NIPS 2015 sec. 3.3), --retrain epochs each.
 * The last 10% of TEXT is held out. Writes OUTDIR/lm-dense.eie (exact
 * float weights) and OUTDIR/lm.eie (pruned, shared).
 *   eie-lm --bench TEXT OUTDIR [REPS]
 * times one held-out sequence of 1024 steps (batch 1: one lane) on the cpu
 * backend, the two files interleaved, 1 and 2 PEs; prints medians per step.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eie/engine.h"
#include "eie/lm.h"

#define SEQ 1024u /* the steps of one engine run */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Held-out perplexity of the .eie file at path on the cpu backend, runs of SEQ steps. */
static int engine_ppl(const eie_lm_t *lm, const char *path, const uint8_t *x, size_t n,
                      double *ppl_out, uint64_t *bytes_out)
{
    eie_error_t err;
    eie_model_t *m;
    if (eie_model_load_file(path, NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s\n", err.msg);
        return -1;
    }
    *bytes_out = eie_model_file_bytes(m);
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = 2;
    eie_engine_t *e;
    eie_net_t *net;
    if (eie_engine_init(&o, &e, &err) != EIE_STATUS_OK ||
        eie_net_init(e, m, &net, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s\n", err.msg);
        eie_model_free(m);
        return -1;
    }
    uint32_t V = lm->vocab;
    float *in = calloc((size_t)SEQ * V, sizeof(float)), *out = malloc((size_t)SEQ * V * 4);
    double loss = 0.0;
    size_t count = 0;
    int rc = 0;
    for (size_t at = 0; at + 1 < n && rc == 0; at += SEQ) {
        size_t T = n - 1 - at < SEQ ? n - 1 - at : SEQ;
        memset(in, 0, (size_t)SEQ * V * sizeof(float));
        for (size_t t = 0; t < T; t++)
            in[t * V + lm->token[x[at + t]]] = 1.0f;
        if (eie_net_run(net, in, T, out, NULL, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-lm: %s\n", err.msg);
            rc = -1;
            break;
        }
        for (size_t t = 0; t < T; t++) {
            double p = out[t * V + lm->token[x[at + t + 1]]];
            loss -= log(p > 1e-30 ? p : 1e-30);
        }
        count += T;
    }
    *ppl_out = exp(loss / (double)count);
    free(in);
    free(out);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --bench: per-step time of lm-dense.eie and lm.eie, interleaved, medians. */
static int bench(const char *text_path, const char *dir, int reps)
{
    FILE *f = fopen(text_path, "rb");
    if (f == NULL)
        return 1;
    uint8_t *text = malloc(EIE_LM_MAX_TEXT);
    size_t n = fread(text, 1, EIE_LM_MAX_TEXT, f);
    fclose(f);
    size_t n_train = n - n / 10;
    eie_lm_opts_t o = eie_lm_opts_default();
    eie_lm_t *lm;
    eie_error_t err;
    if (eie_lm_init(text, n_train, &o, &lm, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s\n", err.msg);
        return 1;
    }
    const char *names[2] = {"lm-dense.eie", "lm.eie"};
    eie_model_t *m[2];
    eie_engine_t *e[2];
    eie_net_t *net[2][2];
    for (int k = 0; k < 2; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (eie_model_load_file(path, NULL, &m[k], &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-lm: %s\n", err.msg);
            return 1;
        }
    }
    for (int pe = 0; pe < 2; pe++) {
        eie_engine_opts_t eo = eie_engine_opts_default();
        eo.n_pes = (unsigned)pe + 1;
        if (eie_engine_init(&eo, &e[pe], &err) != EIE_STATUS_OK)
            return 1;
        for (int k = 0; k < 2; k++)
            if (eie_net_init(e[pe], m[k], &net[pe][k], &err) != EIE_STATUS_OK) {
                fprintf(stderr, "eie-lm: %s\n", err.msg);
                return 1;
            }
    }
    uint32_t V = lm->vocab;
    size_t T = SEQ < n - n_train - 1 ? SEQ : n - n_train - 1;
    float *in = calloc(T * V, sizeof(float)), *out = malloc(T * V * sizeof(float));
    for (size_t t = 0; t < T; t++)
        in[t * V + lm->token[text[n_train + t]]] = 1.0f;
    double *us = malloc((size_t)reps * 5 * sizeof *us);
    for (int r = 0; r < reps; r++)
        for (int q = 0; q < 5; q++) {
            int c = (q + r) % 5, pe = c / 2, k = c % 2; /* the order rotates each round */
            double t0 = now_s();
            if (c == 4) {
                /* the float baseline: the trainer's dense forward (plain C loops, one thread) */
                (void)eie_lm_loss(lm, text + n_train, T + 1, SEQ);
                us[(size_t)c * reps + r] = (now_s() - t0) * 1e6 / (double)T;
                continue;
            }
            if (eie_net_run(net[pe][k], in, T, out, NULL, &err) != EIE_STATUS_OK) {
                fprintf(stderr, "eie-lm: %s\n", err.msg);
                return 1;
            }
            us[(size_t)c * reps + r] = (now_s() - t0) * 1e6 / (double)T;
        }
    printf("per step, batch 1 (one lane), %zu-step sequence, median of %d:\n", T, reps);
    qsort(us + (size_t)4 * reps, (size_t)reps, sizeof *us, cmp_double);
    printf("  float dense, plain C loops, 1 thread  %8.2f us\n", us[(size_t)4 * reps + reps / 2]);
    for (int c = 0; c < 4; c++) {
        qsort(us + (size_t)c * reps, (size_t)reps, sizeof *us, cmp_double);
        printf("  %-13s %u PE%s  %8.2f us  %llu layout bytes\n", names[c % 2], c / 2 + 1,
               c / 2 ? "s" : " ", us[(size_t)c * reps + reps / 2],
               (unsigned long long)eie_net_layout_bytes(net[c / 2][c % 2]));
    }
    for (int pe = 0; pe < 2; pe++) {
        for (int k = 0; k < 2; k++)
            eie_net_free(net[pe][k]);
        eie_engine_free(e[pe]);
    }
    for (int k = 0; k < 2; k++)
        eie_model_free(m[k]);
    eie_lm_free(lm);
    free(in);
    free(out);
    free(us);
    free(text);
    return 0;
}

static int write_model(const eie_lm_t *lm, const char *path)
{
    eie_builder_t *b;
    eie_error_t err;
    if (eie_lm_build(lm, "charlm", &b, &err) != EIE_STATUS_OK ||
        eie_builder_write_file(b, path, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s: %s\n", path, err.msg);
        return -1;
    }
    eie_builder_free(b);
    return 0;
}

static double density_of(const eie_mlp_layer_t *l)
{
    size_t n = (size_t)l->rows * l->cols, nz = 0;
    for (size_t i = 0; i < n; i++)
        nz += l->w[i] != 0.0f;
    return (double)nz / (double)n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: eie-lm TEXT OUTDIR [--epochs N] [--retrain N] [--embed E] "
                        "[--hidden H] [--density WE,LSTM,WD] [--bits B] [--lr X] [--seed S]\n");
        return 2;
    }
    if (strcmp(argv[1], "--bench") == 0)
    {
        int reps = argc >= 5 ? atoi(argv[4]) : 21;
        if (argc < 4 || reps < 1 || reps > 1000) {
            fprintf(stderr, "usage: eie-lm --bench TEXT OUTDIR [REPS 1..1000]\n");
            return 2;
        }
        return bench(argv[2], argv[3], reps);
    }
    eie_lm_opts_t o = eie_lm_opts_default();
    unsigned retrain = 4, bits = 4, rounds = 1;
    double density[3] = {0.10, 0.10, 0.11};
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--epochs") == 0)
            o.epochs = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--retrain") == 0)
            retrain = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(k, "--rounds") == 0 && atoi(v) >= 1 && atoi(v) <= 20)
            rounds = (unsigned)atoi(v);
        else if (strcmp(k, "--embed") == 0)
            o.embed = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--hidden") == 0)
            o.hidden = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "--bits") == 0)
            bits = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(k, "--lr") == 0)
            o.lr = strtod(v, NULL);
        else if (strcmp(k, "--seed") == 0)
            o.seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--density") == 0 &&
                 sscanf(v, "%lf,%lf,%lf", &density[0], &density[1], &density[2]) == 3)
            ;
        else {
            fprintf(stderr, "eie-lm: unknown option or bad value: %s %s\n", k, v);
            return 2;
        }
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        fprintf(stderr, "eie-lm: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    uint8_t *text = malloc(EIE_LM_MAX_TEXT);
    size_t n = text ? fread(text, 1, EIE_LM_MAX_TEXT, f) : 0;
    fclose(f);
    if (n < 100) {
        fprintf(stderr, "eie-lm: %s: %zu bytes, too little text\n", argv[1], n);
        return 1;
    }
    size_t n_train = n - n / 10;
    const uint8_t *held = text + n_train;
    size_t n_held = n - n_train;
    eie_error_t err;
    eie_lm_t *lm;
    char dense_path[4096], path[4096];
    snprintf(dense_path, sizeof dense_path, "%s/lm-dense.eie", argv[2]);
    snprintf(path, sizeof path, "%s/lm.eie", argv[2]);
    double t0 = now_s(), loss;
    if (eie_lm_init(text, n_train, &o, &lm, &err) != EIE_STATUS_OK ||
        eie_lm_train(lm, text, n_train, &o, &loss, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s\n", err.msg);
        return 1;
    }
    printf("text %s: %zu bytes, %zu train, %zu held out; vocabulary %u; E %u, H %u\n",
           argv[1], n, n_train, n_held, lm->vocab, lm->embed, lm->hidden);
    printf("dense: %u epochs in %.0f s, train loss %.3f nats/char\n", o.epochs, now_s() - t0,
           loss);
    double ppl_dense, ppl_pruned, ppl_c;
    uint64_t bytes_dense, bytes_c;
    double f_dense = exp(eie_lm_loss(lm, held, n_held, SEQ));
    if (write_model(lm, dense_path) || engine_ppl(lm, dense_path, held, n_held, &ppl_dense,
                                                  &bytes_dense))
        return 1;
    double f_pruned_only = 0.0;
    o.epochs = retrain;
    t0 = now_s();
    for (unsigned r = 1; r <= rounds; r++) {
        double d[3];
        for (int k = 0; k < 3; k++)
            d[k] = pow(density[k], (double)r / rounds);
        if (eie_lm_prune(lm, d, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-lm: %s\n", err.msg);
            return 1;
        }
        if (r == 1)
            f_pruned_only = exp(eie_lm_loss(lm, held, n_held, SEQ));
        if (retrain > 0 && eie_lm_train(lm, text, n_train, &o, &loss, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-lm: %s\n", err.msg);
            return 1;
        }
    }
    ppl_pruned = exp(eie_lm_loss(lm, held, n_held, SEQ));
    unsigned b3[3] = {bits, bits, bits};
    if (eie_lm_quantize(lm, b3, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-lm: %s\n", err.msg);
        return 1;
    }
    if (write_model(lm, path) || engine_ppl(lm, path, held, n_held, &ppl_c, &bytes_c))
        return 1;
    printf("pruned to We %.1f%%, LSTM %.1f%%, Wd %.1f%% in %u round%s of %u retraining epochs "
           "(%.0f s)\n",
           100 * density_of(&lm->we), 100 * density_of(&lm->lstm), 100 * density_of(&lm->wd),
           rounds, rounds > 1 ? "s" : "", retrain, now_s() - t0);
    printf("held-out perplexity (bits/char in brackets):\n");
    printf("  dense, trainer float          %8.3f (%.3f)\n", f_dense, log2(f_dense));
    printf("  dense .eie, engine cpu        %8.3f (%.3f)  %llu bytes\n", ppl_dense,
           log2(ppl_dense), (unsigned long long)bytes_dense);
    printf("  pruned (round 1), not retrained %6.3f (%.3f)\n", f_pruned_only,
           log2(f_pruned_only));
    printf("  pruned + retrained            %8.3f (%.3f)\n", ppl_pruned, log2(ppl_pruned));
    printf("  + %u-bit shared .eie, engine   %8.3f (%.3f)  %llu bytes (%.1fx smaller)\n", bits,
           ppl_c, log2(ppl_c), (unsigned long long)bytes_c, (double)bytes_dense / bytes_c);
    eie_lm_free(lm);
    free(text);
    return 0;
}
