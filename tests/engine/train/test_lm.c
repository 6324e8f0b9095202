/*
 * The byte-level language model (engine/train/lm.c): its backward pass
 * against central differences, training that learns a repeating text,
 * and the .eie graph it writes computing on the engine what the trainer
 * computes, before and after pruning and weight sharing.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eie/engine.h"
#include "eie/lm.h"

#define PPL_BOUND 7.0 /* measured 6.09 */

static const char text[] = "the cat sat on the mat. the dog sat on the log. ";

static eie_lm_t *small_lm(uint32_t E, uint32_t H)
{
    eie_lm_opts_t o = eie_lm_opts_default();
    o.embed = E;
    o.hidden = H;
    eie_lm_t *lm;
    eie_error_t err;
    cr_assert_eq(eie_lm_init((const uint8_t *)text, strlen(text), &o, &lm, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    return lm;
}

/* d loss / d p[i] by central differences, in double around float weights. */
static double numeric(eie_lm_t *lm, float *p, const uint8_t *x, size_t n)
{
    float keep = *p;
    const float h = 1e-2f;
    *p = keep + h;
    double up = eie_lm_gradient(lm, x, n, NULL, NULL, NULL, NULL, NULL, NULL);
    *p = keep - h;
    double down = eie_lm_gradient(lm, x, n, NULL, NULL, NULL, NULL, NULL, NULL);
    *p = keep;
    return (up - down) / (2.0 * h);
}

Test(lm, backward_pass_matches_central_differences)
{
    eie_lm_t *lm = small_lm(5, 6);
    const uint8_t *x = (const uint8_t *)text;
    size_t n = 12;
    eie_mlp_layer_t *L[3] = {&lm->we, &lm->lstm, &lm->wd};
    float *gw[3], *gb[3];
    for (int k = 0; k < 3; k++) {
        gw[k] = calloc((size_t)L[k]->rows * L[k]->cols, sizeof(float));
        gb[k] = calloc(L[k]->rows, sizeof(float));
    }
    eie_lm_gradient(lm, x, n, gw[0], gw[2], gw[1], gb[0], gb[2], gb[1]);
    uint64_t s = 7;
    int checked = 0;
    for (int k = 0; k < 3; k++)
        for (int q = 0; q < 12; q++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t nw = (size_t)L[k]->rows * L[k]->cols;
            size_t i = (size_t)(s >> 33) % nw;
            double num = numeric(lm, &L[k]->w[i], x, n);
            double ana = gw[k][i];
            if (fabs(num) < 1e-4 && fabs(ana) < 1e-4)
                continue; /* an unused embedding column */
            cr_assert(fabs(num - ana) <= 2e-3 + 0.02 * fabs(num),
                      "layer %d weight %zu: analytic %.6g numeric %.6g", k, i, ana, num);
            checked++;
            size_t r = (size_t)(s >> 20) % L[k]->rows;
            num = numeric(lm, &L[k]->b[r], x, n);
            cr_assert(fabs(num - gb[k][r]) <= 2e-3 + 0.02 * fabs(num),
                      "layer %d bias %zu: analytic %.6g numeric %.6g", k, r, gb[k][r], num);
        }
    cr_assert(checked >= 12, "only %d weights had a gradient", checked);
    for (int k = 0; k < 3; k++) {
        free(gw[k]);
        free(gb[k]);
    }
    eie_lm_free(lm);
}

Test(lm, training_learns_a_repeating_text)
{
    eie_lm_t *lm = small_lm(8, 24);
    eie_lm_opts_t o = eie_lm_opts_default();
    o.embed = 8;
    o.hidden = 24;
    o.epochs = 60;
    o.bptt = 16;
    o.lr = 0.01;
    size_t n = strlen(text);
    double before = eie_lm_loss(lm, (const uint8_t *)text, n, 1024), after;
    eie_error_t err;
    cr_assert_eq(eie_lm_train(lm, (const uint8_t *)text, n, &o, &after, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    double now = eie_lm_loss(lm, (const uint8_t *)text, n, 1024);
    /* from about log(vocab) nats to well under half of it */
    cr_assert(before > 2.0 && now < 0.4 * before, "loss %.3f -> %.3f", before, now);
    eie_lm_free(lm);
}

/* Mean nats per character of the .eie graph on the cpu backend. */
static double engine_loss(const eie_lm_t *lm, const uint8_t *x, size_t n, unsigned pes)
{
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_lm_build(lm, "lm", &b, &err), EIE_STATUS_OK, "%s", err.msg);
    uint8_t *data;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &data, &len, &err), EIE_STATUS_OK);
    eie_builder_free(b);
    eie_model_t *m;
    cr_assert_eq(eie_model_load_memory(data, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    free(data);
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = pes;
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    uint32_t V = lm->vocab;
    size_t T = n - 1;
    float *in = calloc(T * V, sizeof(float)), *out = calloc(T * V, sizeof(float));
    for (size_t t = 0; t < T; t++)
        in[t * V + lm->token[x[t]]] = 1.0f;
    cr_assert_eq(eie_net_run(net, in, T, out, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    double loss = 0.0;
    for (size_t t = 0; t < T; t++)
        loss -= log((double)out[t * V + lm->token[x[t + 1]]]);
    free(in);
    free(out);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    return loss / (double)T;
}

Test(lm, the_eie_graph_computes_the_trainers_loss_dense_pruned_and_shared)
{
    eie_lm_t *lm = small_lm(8, 20);
    eie_lm_opts_t o = eie_lm_opts_default();
    o.embed = 8;
    o.hidden = 20;
    o.epochs = 10;
    o.bptt = 16;
    o.lr = 0.01;
    const uint8_t *x = (const uint8_t *)text;
    size_t n = strlen(text);
    eie_error_t err;
    cr_assert_eq(eie_lm_train(lm, x, n, &o, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    double want = eie_lm_loss(lm, x, n, 1024);
    for (unsigned pes = 1; pes <= 3; pes += 2) {
        double got = engine_loss(lm, x, n, pes);
        cr_assert(fabs(got - want) < 1e-4, "dense on %u PEs: engine %.6f trainer %.6f", pes,
                  got, want);
    }
    const double density[3] = {0.5, 0.3, 0.4};
    const unsigned bits[3] = {4, 4, 4};
    cr_assert_eq(eie_lm_prune(lm, density, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_lm_train(lm, x, n, &o, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    size_t nz = 0, nw = (size_t)lm->lstm.rows * lm->lstm.cols;
    for (size_t i = 0; i < nw; i++)
        nz += lm->lstm.w[i] != 0.0f;
    cr_assert(fabs((double)nz / (double)nw - 0.3) < 0.01, "LSTM density %zu / %zu", nz, nw);
    cr_assert_eq(eie_lm_quantize(lm, bits, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_lm_train(lm, x, n, &o, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    want = eie_lm_loss(lm, x, n, 1024);
    double got = engine_loss(lm, x, n, 2);
    cr_assert(fabs(got - want) < 1e-4, "shared: engine %.6f trainer %.6f", got, want);
    eie_lm_free(lm);
}

/* The bundled demo model (scripts/make-lm-model.sh): its vocabulary from the description,
   its nodes, and its perplexity on a sentence of GPL-3's held-out end. */
Test(lm, bundled_charlm_reads_held_out_license_text)
{
    const char *root = getenv("EIE_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/charlm/1/model.eie", root ? root : ".");
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_file(path, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    const char *hex = strstr(eie_model_description(m), "vocab (hex): ");
    cr_assert_not_null(hex);
    hex += strlen("vocab (hex): ");
    int token[256];
    for (int c = 0; c < 256; c++)
        token[c] = -1;
    uint32_t V = 0;
    for (unsigned b; sscanf(hex + 2 * V, "%2x", &b) == 1; V++)
        token[b] = (int)V;
    cr_assert_eq(V, eie_model_input_dim(m));
    static const eie_layer_kind_t kinds[] = {EIE_LAYER_FC, EIE_LAYER_LSTM, EIE_LAYER_RESHAPE,
                                             EIE_LAYER_FC, EIE_LAYER_ACTIVATION};
    cr_assert_eq(eie_model_layer_count(m), 5);
    for (size_t i = 0; i < 5; i++) {
        eie_layer_info_t li;
        eie_model_layer_info(m, i, &li);
        cr_assert_eq(li.kind, kinds[i], "node %zu", i);
        if (li.kind != EIE_LAYER_FC && li.kind != EIE_LAYER_LSTM)
            continue;
        cr_assert_eq(li.storage, EIE_STORAGE_SHARED);
        cr_assert_eq(li.code_bits, 4);
        cr_assert((double)li.nnz / ((double)li.rows * li.cols) < 0.115, "node %zu density", i);
    }
    const char *s = "This program is free software: you can redistribute it and/or modify";
    size_t n = strlen(s), T = n - 1;
    float *in = calloc(T * V, sizeof(float)), *out = calloc(T * V, sizeof(float));
    for (size_t t = 0; t < T; t++) {
        cr_assert_geq(token[(uint8_t)s[t]], 0);
        in[t * V + (size_t)token[(uint8_t)s[t]]] = 1.0f;
    }
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = 2;
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_run(net, in, T, out, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    double nats = 0.0;
    for (size_t t = 0; t < T; t++)
        nats -= log((double)out[t * V + (size_t)token[(uint8_t)s[t + 1]]]);
    double ppl = exp(nats / (double)T);
    /* uniform guessing is V = 84; the held-out average is 8.5 (README) */
    cr_assert(ppl < PPL_BOUND, "perplexity %.3f on \"%s\"", ppl, s);
    free(in);
    free(out);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}
