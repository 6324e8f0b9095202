/*
 * lm.c - a byte-level language model in the shape of EIE's NeuralTalk
 * layers (We -> LSTM -> Wd), trained by truncated backpropagation through
 * time (Adam), pruned and weight-shared with the compression pipeline's
 * functions (prune.c, kmeans.c), and written as a .eie graph.
 *
 * The LSTM is ONNX's (gates i, o, f, c; sigmoid, tanh, tanh) with its
 * matrix stored as the engine stores it: one 4H x (E + H) matrix over
 * [e_t, h_{t-1}], row 4j + g for gate g of hidden unit j.
 */
#include "eie/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "eie/compress.h"

#define LM_MAX_WINDOW 4096u

eie_lm_opts_t eie_lm_opts_default(void)
{
    return (eie_lm_opts_t){.embed = 32, .hidden = 128, .bptt = 64, .seq = 1024, .epochs = 10,
                           .lr = 0.003, .clip = 5.0, .seed = 1};
}

static uint64_t lm_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static float lm_uniform(uint64_t *s, float a) /* [-a, a) */
{
    return ((float)(lm_rand(s) >> 40) / (float)(1u << 24) * 2.0f - 1.0f) * a;
}

static void layer_clear(eie_mlp_layer_t *l)
{
    free(l->w);
    free(l->b);
    free(l->mask);
    free(l->codes);
    free(l->codebook);
    memset(l, 0, sizeof *l);
}

static int layer_init(eie_mlp_layer_t *l, uint32_t rows, uint32_t cols, uint64_t *seed)
{
    l->kind = EIE_LAYER_FC;
    l->rows = rows;
    l->cols = cols;
    l->w = malloc((size_t)rows * cols * sizeof *l->w);
    l->b = calloc(rows, sizeof *l->b);
    if (l->w == NULL || l->b == NULL)
        return -1;
    float a = 1.0f / sqrtf((float)cols);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        l->w[i] = lm_uniform(seed, a);
    return 0;
}

void eie_lm_free(eie_lm_t *lm)
{
    if (lm == NULL)
        return;
    layer_clear(&lm->we);
    layer_clear(&lm->lstm);
    layer_clear(&lm->wd);
    free(lm);
}

static eie_status_t check_opts(const eie_lm_opts_t *o, eie_error_t *err)
{
    if (o->embed < 1 || o->embed > EIE_LM_MAX_DIM || o->hidden < 1 || o->hidden > EIE_LM_MAX_DIM)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: embed %u and hidden %u must be 1..%u", o->embed, o->hidden,
                             EIE_LM_MAX_DIM);
    if (o->bptt < 1 || o->bptt > LM_MAX_WINDOW || o->seq < 1 || o->seq > LM_MAX_WINDOW)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: bptt %u and seq %u must be 1..%u", o->bptt, o->seq,
                             LM_MAX_WINDOW);
    if (!(o->lr > 0.0 && o->lr < 1.0) || !(o->clip >= 0.0))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: lr %g must be in (0, 1) and clip %g >= 0", o->lr, o->clip);
    return EIE_STATUS_OK;
}

eie_status_t eie_lm_init(const uint8_t *text, size_t n, const eie_lm_opts_t *opts,
                         eie_lm_t **lm_out, eie_error_t *err)
{
    eie_status_t st = check_opts(opts, err);
    if (st != EIE_STATUS_OK)
        return st;
    if (n < 2 || n > EIE_LM_MAX_TEXT)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: a text of %zu bytes (2..%u)", n, EIE_LM_MAX_TEXT);
    eie_lm_t *lm = calloc(1, sizeof *lm);
    if (lm == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "lm: out of memory");
    uint8_t seen[256] = {0};
    for (size_t i = 0; i < n; i++)
        seen[text[i]] = 1;
    for (unsigned c = 0; c < 256; c++)
        if (seen[c]) {
            lm->byte[lm->vocab] = (uint8_t)c;
            lm->token[c] = (uint8_t)lm->vocab++;
        }
    if (lm->vocab < 2) {
        eie_lm_free(lm);
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: the text has %u distinct bytes; at least 2 are needed",
                             lm->vocab);
    }
    lm->embed = opts->embed;
    lm->hidden = opts->hidden;
    uint64_t seed = opts->seed * 0x9e3779b97f4a7c15ull + 1;
    uint32_t V = lm->vocab, E = lm->embed, H = lm->hidden;
    if (layer_init(&lm->we, E, V, &seed) || layer_init(&lm->lstm, 4 * H, E + H, &seed) ||
        layer_init(&lm->wd, V, H, &seed)) {
        eie_lm_free(lm);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "lm: out of memory");
    }
    /* A forget-gate bias of 1 keeps the cell's memory early in training. */
    for (uint32_t j = 0; j < H; j++)
        lm->lstm.b[4 * j + 2] = 1.0f;
    *lm_out = lm;
    return EIE_STATUS_OK;
}

static float sigm(float x) { return eie_act_apply1(EIE_ACT_SIGMOID, x); }

/* What the forward pass keeps of one step for the backward pass. */
typedef struct lm_step {
    float *e;    /* E */
    float *act;  /* 4H: i, o, f, c~ per unit */
    float *c;    /* H */
    float *tc;   /* H: tanh(c) */
    float *h;    /* H */
    float *p;    /* V: softmax */
} lm_step_t;

/* One step: token x after state (hp, cp); fills s. */
static void step_forward(const eie_lm_t *lm, uint8_t x, const float *hp, const float *cp,
                         lm_step_t *s)
{
    uint32_t V = lm->vocab, E = lm->embed, H = lm->hidden, C = E + H;
    for (uint32_t k = 0; k < E; k++)
        s->e[k] = lm->we.w[(size_t)k * V + x] + lm->we.b[k];
    for (uint32_t j = 0; j < H; j++) {
        for (uint32_t q = 0; q < 4; q++) {
            uint32_t r = 4 * j + q;
            const float *w = lm->lstm.w + (size_t)r * C;
            float g = lm->lstm.b[r];
            for (uint32_t k = 0; k < E; k++)
                g += w[k] * s->e[k];
            for (uint32_t k = 0; k < H; k++)
                g += w[E + k] * hp[k];
            s->act[r] = q == 3 ? eie_tanhf(g) : sigm(g);
        }
        const float *a = s->act + 4 * j;
        s->c[j] = a[2] * cp[j] + a[0] * a[3];
        s->tc[j] = eie_tanhf(s->c[j]);
        s->h[j] = a[1] * s->tc[j];
    }
    float mx = -INFINITY;
    for (uint32_t v = 0; v < V; v++) {
        const float *w = lm->wd.w + (size_t)v * H;
        float z = lm->wd.b[v];
        for (uint32_t k = 0; k < H; k++)
            z += w[k] * s->h[k];
        s->p[v] = z;
        mx = z > mx ? z : mx;
    }
    double sum = 0.0;
    for (uint32_t v = 0; v < V; v++)
        sum += s->p[v] = expf(s->p[v] - mx);
    for (uint32_t v = 0; v < V; v++)
        s->p[v] = (float)(s->p[v] / sum);
}

/* Scratch for a window of up to LM_MAX_WINDOW steps. */
typedef struct lm_work {
    lm_step_t *st;
    float *mem;
    float *h0, *c0; /* the window's initial state */
    float *dh, *dc, *dg, *dz, *dl;
} lm_work_t;

static void work_free(lm_work_t *w)
{
    free(w->st);
    free(w->mem);
    memset(w, 0, sizeof *w);
}

static int work_init(lm_work_t *w, const eie_lm_t *lm, uint32_t len)
{
    uint32_t V = lm->vocab, E = lm->embed, H = lm->hidden;
    size_t per = (size_t)E + 4 * H + 3 * H + V;
    w->st = calloc(len, sizeof *w->st);
    w->mem = malloc(((size_t)len * per + 2 * H + 2 * H + 4 * H + E + H + V) * sizeof(float));
    if (w->st == NULL || w->mem == NULL)
        return -1;
    float *m = w->mem;
    for (uint32_t t = 0; t < len; t++) {
        lm_step_t *s = &w->st[t];
        s->e = m, m += E;
        s->act = m, m += 4 * H;
        s->c = m, m += H;
        s->tc = m, m += H;
        s->h = m, m += H;
        s->p = m, m += V;
    }
    w->h0 = m, m += H;
    w->c0 = m, m += H;
    w->dh = m, m += H;
    w->dc = m, m += H;
    w->dg = m, m += 4 * H;
    w->dz = m, m += E + H;
    w->dl = m;
    return 0;
}

/*
 * Forward over x[0..len) from (w->h0, w->c0), predicting x[t + 1]; then,
 * if g_* are given, backward through the window (truncated at its start),
 * accumulating gradients. Returns the summed loss in nats.
 */
static double window(const eie_lm_t *lm, lm_work_t *w, const uint8_t *x, uint32_t len,
                     float *g_we, float *g_be, float *g_l, float *g_bl, float *g_wd, float *g_bd)
{
    uint32_t V = lm->vocab, E = lm->embed, H = lm->hidden, C = E + H;
    double loss = 0.0;
    for (uint32_t t = 0; t < len; t++) {
        const float *hp = t ? w->st[t - 1].h : w->h0, *cp = t ? w->st[t - 1].c : w->c0;
        step_forward(lm, x[t], hp, cp, &w->st[t]);
        float py = w->st[t].p[x[t + 1]];
        loss -= log(py > 1e-30f ? (double)py : 1e-30);
    }
    if (g_we == NULL)
        return loss;
    memset(w->dh, 0, H * sizeof(float));
    memset(w->dc, 0, H * sizeof(float));
    for (uint32_t t = len; t-- > 0;) {
        const lm_step_t *s = &w->st[t];
        const float *hp = t ? w->st[t - 1].h : w->h0, *cp = t ? w->st[t - 1].c : w->c0;
        for (uint32_t v = 0; v < V; v++)
            w->dl[v] = s->p[v] - (v == x[t + 1]);
        /* decoder */
        for (uint32_t v = 0; v < V; v++) {
            float d = w->dl[v];
            g_bd[v] += d;
            float *gw = g_wd + (size_t)v * H;
            const float *wr = lm->wd.w + (size_t)v * H;
            for (uint32_t k = 0; k < H; k++) {
                gw[k] += d * s->h[k];
                w->dh[k] += d * wr[k];
            }
        }
        /* the cell */
        for (uint32_t j = 0; j < H; j++) {
            const float *a = s->act + 4 * j;
            float dh = w->dh[j];
            float dc = dh * a[1] * (1.0f - s->tc[j] * s->tc[j]) + w->dc[j];
            w->dg[4 * j + 0] = dc * a[3] * a[0] * (1.0f - a[0]);
            w->dg[4 * j + 1] = dh * s->tc[j] * a[1] * (1.0f - a[1]);
            w->dg[4 * j + 2] = dc * cp[j] * a[2] * (1.0f - a[2]);
            w->dg[4 * j + 3] = dc * a[0] * (1.0f - a[3] * a[3]);
            w->dc[j] = dc * a[2];
        }
        /* the matrix over [e, h_{t-1}] */
        memset(w->dz, 0, C * sizeof(float));
        for (uint32_t r = 0; r < 4 * H; r++) {
            float d = w->dg[r];
            g_bl[r] += d;
            float *gw = g_l + (size_t)r * C;
            const float *wr = lm->lstm.w + (size_t)r * C;
            for (uint32_t k = 0; k < E; k++) {
                gw[k] += d * s->e[k];
                w->dz[k] += d * wr[k];
            }
            for (uint32_t k = 0; k < H; k++) {
                gw[E + k] += d * hp[k];
                w->dz[E + k] += d * wr[E + k];
            }
        }
        /* the embedding: column x[t] of We */
        for (uint32_t k = 0; k < E; k++) {
            g_we[(size_t)k * V + x[t]] += w->dz[k];
            g_be[k] += w->dz[k];
        }
        memcpy(w->dh, w->dz + E, H * sizeof(float));
    }
    return loss;
}

/* Text as tokens (bytes outside the vocabulary: token 0). */
static uint8_t *tokens(const eie_lm_t *lm, const uint8_t *text, size_t n)
{
    uint8_t *x = malloc(n ? n : 1);
    if (x != NULL)
        for (size_t i = 0; i < n; i++)
            x[i] = lm->token[text[i]];
    return x;
}

double eie_lm_gradient(const eie_lm_t *lm, const uint8_t *text, size_t n, float *g_we,
                       float *g_wd, float *g_lstm, float *g_be, float *g_bd, float *g_bl)
{
    lm_work_t w = {0};
    uint8_t *x = tokens(lm, text, n);
    double loss = NAN;
    if (x != NULL && n >= 2 && n - 1 <= LM_MAX_WINDOW && work_init(&w, lm, (uint32_t)(n - 1)) == 0) {
        memset(w.h0, 0, lm->hidden * sizeof(float));
        memset(w.c0, 0, lm->hidden * sizeof(float));
        loss = window(lm, &w, x, (uint32_t)(n - 1), g_we, g_be, g_lstm, g_bl, g_wd, g_bd);
    }
    work_free(&w);
    free(x);
    return loss;
}

double eie_lm_loss(const eie_lm_t *lm, const uint8_t *text, size_t n, uint32_t seq)
{
    lm_work_t w = {0};
    uint8_t *x = tokens(lm, text, n);
    double loss = 0.0;
    size_t count = 0;
    if (seq < 1 || seq > LM_MAX_WINDOW)
        seq = 1024;
    if (x == NULL || n < 2 || work_init(&w, lm, seq) != 0) {
        work_free(&w);
        free(x);
        return NAN;
    }
    /* runs of seq steps from a zero state, as the engine runs them */
    for (size_t at = 0; at + 1 < n; at += seq) {
        uint32_t len = (uint32_t)(n - 1 - at < seq ? n - 1 - at : seq);
        memset(w.h0, 0, lm->hidden * sizeof(float));
        memset(w.c0, 0, lm->hidden * sizeof(float));
        loss += window(lm, &w, x + at, len, NULL, NULL, NULL, NULL, NULL, NULL);
        count += len;
    }
    work_free(&w);
    free(x);
    return loss / (double)count;
}

/* Adam over one array; masked weights stay zero. */
typedef struct adam {
    float *m, *v;
} adam_t;

static void adam_step(float *p, const float *g, adam_t *a, size_t n, const uint8_t *mask,
                      double lr, double scale, uint64_t t)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double c1 = 1.0 - pow(b1, (double)t), c2 = 1.0 - pow(b2, (double)t);
    for (size_t i = 0; i < n; i++) {
        if (mask != NULL && mask[i] == 0) {
            p[i] = 0.0f;
            continue;
        }
        double gi = g[i] * scale;
        a->m[i] = (float)(b1 * a->m[i] + (1.0 - b1) * gi);
        a->v[i] = (float)(b2 * a->v[i] + (1.0 - b2) * gi * gi);
        p[i] -= (float)(lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps));
    }
}

eie_status_t eie_lm_train(eie_lm_t *lm, const uint8_t *text, size_t n, const eie_lm_opts_t *o,
                          double *loss_out, eie_error_t *err)
{
    eie_status_t st = check_opts(o, err);
    if (st != EIE_STATUS_OK)
        return st;
    if (n < 2 || n > EIE_LM_MAX_TEXT)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "lm: a text of %zu bytes (2..%u)",
                             n, EIE_LM_MAX_TEXT);
    if (lm->we.codes || lm->lstm.codes || lm->wd.codes)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "lm: the model is weight-shared already; train before quantizing");
    uint32_t V = lm->vocab, E = lm->embed, H = lm->hidden;
    eie_mlp_layer_t *L[3] = {&lm->we, &lm->lstm, &lm->wd};
    size_t nw[3], nb[3], total = 0;
    for (int k = 0; k < 3; k++) {
        nw[k] = (size_t)L[k]->rows * L[k]->cols;
        nb[k] = L[k]->rows;
        total += 3 * (nw[k] + nb[k]); /* gradient, Adam m and v */
    }
    (void)V;
    (void)E;
    float *mem = calloc(total, sizeof(float));
    uint8_t *x = tokens(lm, text, n);
    lm_work_t w = {0};
    if (mem == NULL || x == NULL || work_init(&w, lm, o->bptt) != 0) {
        free(mem);
        free(x);
        work_free(&w);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "lm: out of memory training");
    }
    float *gw[3], *gb[3];
    adam_t aw[3], ab[3];
    float *m = mem;
    for (int k = 0; k < 3; k++) {
        gw[k] = m, m += nw[k];
        gb[k] = m, m += nb[k];
        aw[k].m = m, m += nw[k];
        aw[k].v = m, m += nw[k];
        ab[k].m = m, m += nb[k];
        ab[k].v = m, m += nb[k];
    }
    uint64_t t = 0;
    double epoch_loss = 0.0;
    float *h = malloc(2 * (size_t)H * sizeof *h);
    if (h == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "lm: out of memory training");
        goto done;
    }
    for (uint32_t ep = 0; ep < o->epochs; ep++) {
        double sum = 0.0;
        size_t count = 0;
        /* runs of seq characters from a zero state, each cut into bptt windows whose
           state carries over (truncated backpropagation) */
        for (size_t run = 0; run + 1 < n; run += o->seq) {
            size_t run_end = run + o->seq < n - 1 ? run + o->seq : n - 1;
            memset(w.h0, 0, 2 * (size_t)H * sizeof(float));
            for (size_t at = run; at < run_end; at += o->bptt) {
                uint32_t len = (uint32_t)(run_end - at < o->bptt ? run_end - at : o->bptt);
                for (int k = 0; k < 3; k++) {
                    memset(gw[k], 0, nw[k] * sizeof(float));
                    memset(gb[k], 0, nb[k] * sizeof(float));
                }
                sum += window(lm, &w, x + at, len, gw[0], gb[0], gw[1], gb[1], gw[2], gb[2]);
                count += len;
                double norm = 0.0;
                for (int k = 0; k < 3; k++) {
                    for (size_t i = 0; i < nw[k]; i++)
                        norm += (double)gw[k][i] * gw[k][i];
                    for (size_t i = 0; i < nb[k]; i++)
                        norm += (double)gb[k][i] * gb[k][i];
                }
                norm = sqrt(norm) / len;
                double scale = 1.0 / len;
                if (o->clip > 0.0 && norm > o->clip)
                    scale *= o->clip / norm;
                t++;
                for (int k = 0; k < 3; k++) {
                    adam_step(L[k]->w, gw[k], &aw[k], nw[k], L[k]->mask, o->lr, scale, t);
                    adam_step(L[k]->b, gb[k], &ab[k], nb[k], NULL, o->lr, scale, t);
                }
                /* the next window starts where this one ended */
                memcpy(w.h0, w.st[len - 1].h, H * sizeof(float));
                memcpy(w.c0, w.st[len - 1].c, H * sizeof(float));
            }
        }
        epoch_loss = count ? sum / (double)count : 0.0;
        if (!isfinite(epoch_loss)) {
            st = eie_error_set(err, EIE_STATUS_INTERNAL,
                               "lm: the loss diverged in epoch %u (lr %g too large?)", ep + 1,
                               o->lr);
            goto done;
        }
    }
    if (loss_out != NULL)
        *loss_out = epoch_loss;
done:
    free(h);
    free(mem);
    free(x);
    work_free(&w);
    return st;
}

eie_status_t eie_lm_prune(eie_lm_t *lm, const double density[3], eie_error_t *err)
{
    eie_mlp_layer_t *L[3] = {&lm->we, &lm->lstm, &lm->wd};
    static const char *const names[3] = {"We", "LSTM", "Wd"};
    for (int k = 0; k < 3; k++) {
        if (!(density[k] > 0.0 && density[k] <= 1.0))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "lm: %s density %g not in (0, 1]", names[k], density[k]);
        eie_status_t st = eie_prune_sparsity(L[k], 1.0 - density[k], err);
        if (st != EIE_STATUS_OK) {
            eie_error_prefix(err, "lm: %s: ", names[k]);
            return st;
        }
    }
    return EIE_STATUS_OK;
}

eie_status_t eie_lm_quantize(eie_lm_t *lm, const unsigned bits[3], eie_error_t *err)
{
    eie_mlp_layer_t *L[3] = {&lm->we, &lm->lstm, &lm->wd};
    static const char *const names[3] = {"We", "LSTM", "Wd"};
    for (int k = 0; k < 3; k++) {
        eie_status_t st = eie_quantize_layer(L[k], bits[k], EIE_KMEANS_LINEAR, 1 + (uint64_t)k, err);
        if (st != EIE_STATUS_OK) {
            eie_error_prefix(err, "lm: %s: ", names[k]);
            return st;
        }
    }
    return EIE_STATUS_OK;
}

static eie_weights_t weights_of(const eie_mlp_layer_t *l)
{
    if (l->codes != NULL)
        return (eie_weights_t){.storage = EIE_STORAGE_SHARED, .code_bits = l->code_bits,
                               .codebook = l->codebook, .codes = l->codes, .bias = l->b};
    return (eie_weights_t){.storage = EIE_STORAGE_EXACT, .values = l->w, .bias = l->b};
}

eie_status_t eie_lm_build(const eie_lm_t *lm, const char *name, eie_builder_t **b_out,
                          eie_error_t *err)
{
    eie_builder_t *b;
    /* The vocabulary goes in the description, so a client can encode and decode bytes. */
    char desc[160 + 2 * 256];
    int at = snprintf(desc, sizeof desc,
                      "byte-level language model (We -> LSTM -> Wd); input token k (one-hot) is "
                      "byte vocab[k]; vocab (hex): ");
    for (uint32_t k = 0; k < lm->vocab; k++)
        at += snprintf(desc + at, sizeof desc - (size_t)at, "%02x", lm->byte[k]);
    eie_status_t st = eie_builder_init_graph(name, desc, &b, err);
    if (st != EIE_STATUS_OK)
        return st;
    uint32_t V = lm->vocab, H = lm->hidden;
    eie_shape_t xs = {.rank = 3, .dims = {-1, 1, V}};
    eie_shape_t hs = {.rank = 3, .dims = {-1, 1, H}};
    const char *in_chars[1] = {"chars"}, *in_e[1] = {"embed"}, *in_y[1] = {"Y"},
               *in_h[1] = {"h"}, *in_z[1] = {"logits"};
    eie_node_desc_t we = {.kind = EIE_LAYER_FC, .name = "We", .n_inputs = 1, .inputs = in_chars,
                          .output = "embed", .rows = lm->embed, .weights = weights_of(&lm->we)};
    eie_node_desc_t ls = {.kind = EIE_LAYER_LSTM, .name = "LSTM", .n_inputs = 1, .inputs = in_e,
                          .output = "Y", .rows = 4 * H, .weights = weights_of(&lm->lstm)};
    ls.lstm.hidden_size = H;
    eie_node_desc_t sq = {.kind = EIE_LAYER_RESHAPE, .name = "squeeze", .n_inputs = 1,
                          .inputs = in_y, .output = "h", .shape = hs};
    eie_node_desc_t wd = {.kind = EIE_LAYER_FC, .name = "Wd", .n_inputs = 1, .inputs = in_h,
                          .output = "logits", .rows = V, .weights = weights_of(&lm->wd)};
    eie_node_desc_t sm = {.kind = EIE_LAYER_ACTIVATION, .name = "softmax", .n_inputs = 1,
                          .inputs = in_z, .output = "probs", .act = EIE_ACT_SOFTMAX, .axis = 2};
    if ((st = eie_builder_add_input(b, "chars", EIE_DTYPE_FP32, &xs, err)) ||
        (st = eie_builder_add_node(b, &we, err)) || (st = eie_builder_add_node(b, &ls, err)) ||
        (st = eie_builder_add_node(b, &sq, err)) || (st = eie_builder_add_node(b, &wd, err)) ||
        (st = eie_builder_add_node(b, &sm, err)) ||
        (st = eie_builder_add_output(b, "probs", err))) {
        eie_builder_free(b);
        return st;
    }
    *b_out = b;
    return EIE_STATUS_OK;
}
