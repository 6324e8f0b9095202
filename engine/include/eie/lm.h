/*
 * eie/lm.h - a small NeuralTalk-style language model trained on the CPU:
 * bytes of text -> We (embedding, fc on a one-hot byte) -> LSTM -> Wd
 * (decoder) -> softmax over the next byte. EIE's NT-We, NT-LSTM and NT-Wd
 * layers (Han et al., ISCA 2016, Table III) with the image feature replaced
 * by the previous character. Trained by truncated backpropagation through
 * time with Adam; pruned and weight-shared with the compression pipeline's
 * functions; written as a .eie graph that every backend runs.
 *
 *     eie_lm_opts_t o = eie_lm_opts_default();
 *     eie_lm_t *lm;
 *     eie_lm_init(text, n, &o, &lm, &err);              // vocabulary from the text
 *     eie_lm_train(lm, text, n, &o, NULL, &err);        // o.epochs of BPTT
 *     double nats = eie_lm_loss(lm, held_out, m);       // per character
 *     eie_lm_prune(lm, densities, &err); eie_lm_train(...);   // masked retraining
 *     eie_lm_quantize(lm, bits, &err);
 *     eie_lm_build(lm, "lm", &builder, &err);           // chars [T,1,V] -> probs [T,1,V]
 */
#ifndef EIE_LM_H
#define EIE_LM_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"
#include "eie/status.h"
#include "eie/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest embedding and hidden sizes, and text a call takes. */
#define EIE_LM_MAX_DIM 4096u
#define EIE_LM_MAX_TEXT (64u << 20)

typedef struct eie_lm_opts {
    uint32_t embed;  /* E, the We rows (NT-We's output) */
    uint32_t hidden; /* H, the LSTM's hidden size */
    uint32_t bptt;   /* steps a gradient flows back (truncation), 1..4096 */
    uint32_t seq;    /* the state restarts from zeros every seq characters, as an
                        engine run of seq steps does; 1..4096 */
    uint32_t epochs; /* passes over the text */
    double lr;       /* Adam's step size */
    double clip;     /* gradient norm clip per update; 0 = none */
    uint64_t seed;
} eie_lm_opts_t;

/* E 32, H 128, bptt 64, seq 1024, 10 epochs, lr 0.003, clip 5, seed 1. */
eie_lm_opts_t eie_lm_opts_default(void);

/* The model; layers are fc layers (masks and codebooks as eie_mlp_layer_t). */
typedef struct eie_lm {
    uint32_t vocab, embed, hidden;
    uint8_t token[256]; /* byte -> token; bytes not in the training text map to token 0 */
    uint8_t byte[256];  /* token -> byte */
    eie_mlp_layer_t we;   /* E x V, bias E */
    eie_mlp_layer_t lstm; /* 4H x (E + H), rows unit-major (FORMAT.md "LSTM"), bias 4H */
    eie_mlp_layer_t wd;   /* V x H, bias V */
} eie_lm_t;

/* Vocabulary from text (n bytes, 2..256 distinct), small random weights. Caller owns *lm_out. */
eie_status_t eie_lm_init(const uint8_t *text, size_t n, const eie_lm_opts_t *opts,
                         eie_lm_t **lm_out, eie_error_t *err);
void eie_lm_free(eie_lm_t *lm);

/* Trains on text for opts->epochs; pruned weights stay zero. *loss_out (may be NULL)
   gets the last epoch's mean loss in nats per character. */
eie_status_t eie_lm_train(eie_lm_t *lm, const uint8_t *text, size_t n, const eie_lm_opts_t *opts,
                          double *loss_out, eie_error_t *err);

/* Mean cross-entropy in nats per predicted character over text, float forward, the state
   restarting every seq characters. exp() of it is the perplexity. */
double eie_lm_loss(const eie_lm_t *lm, const uint8_t *text, size_t n, uint32_t seq);

/* Gradients of the loss of text (one window, zero initial state) into g_* (sizes of the
   layers' w and b), for tests; returns the summed loss in nats. */
double eie_lm_gradient(const eie_lm_t *lm, const uint8_t *text, size_t n, float *g_we,
                       float *g_wd, float *g_lstm, float *g_be, float *g_bd, float *g_bl);

/* Prunes each matrix to a density (We, LSTM, Wd; fraction kept) by magnitude. */
eie_status_t eie_lm_prune(eie_lm_t *lm, const double density[3], eie_error_t *err);
/* Weight-shares each matrix with 2^bits codes (k-means over its nonzeros). */
eie_status_t eie_lm_quantize(eie_lm_t *lm, const unsigned bits[3], eie_error_t *err);

/* The model as a graph: "chars" [T,1,V] one-hot -> fc We -> lstm -> fc Wd -> softmax
   "probs" [T,1,V]; shared storage where quantized, else exact. The description ends in
   "vocab (hex): " and the V bytes of the tokens in order. Caller owns *b_out. */
eie_status_t eie_lm_build(const eie_lm_t *lm, const char *name, eie_builder_t **b_out,
                          eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
