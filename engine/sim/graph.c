/*
 * graph.c - version-2 graphs on the simulated accelerator (README.md,
 * "Graphs and convolutions").
 *
 * Sparse nodes (fc, conv2d) run on the PE array in 16-bit fixed point as
 * sim.c's fc layers do: rows interleaved over the PEs (EIE sec. III-B),
 * the LNZD broadcasting the nonzero inputs (sec. III-A), 48-bit accumulators,
 * write-back rounded and saturated to 16 bits. A convolution is its weight
 * matrix (Cout x C/groups*kh*kw, per group) applied at every output
 * position to that position's patch, each application timed by the same
 * cycle model (cycles.c) and summed; the EIE paper itself covers fc and
 * LSTM layers only. Every other node (pooling, add, concat, reshape,
 * activations) runs on the host in float on the dequantised values.
 *
 * Q formats: weights per node from max |value| (shared codebooks and exact
 * values alike are quantised per entry), bias likewise, activations from
 * the same 8 probe inputs as sim.c with 2 bits of headroom; a sparse node
 * whose input is another sparse node's output reads that node's output
 * format unchanged.
 */
#include "sim/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "cpu/exact.h"
#include "graph_ops.h"
#include "sim/cycles.h"
#include "sim/fixed.h"

#define N_PROBES 8
#define PROBE_STEPS 8
#define ACT_HEADROOM 4.0

typedef struct smat {
    eie_cpu_exact_t lay; /* per PE CSC: local rows and float values */
    int16_t **wq;        /* per PE: each entry's value in Q(wfrac) */
    uint32_t **eptr;     /* per PE: cols + 2 prefix sums of EIE entries, bias column last */
} smat_t;

typedef struct snode {
    eie_layer_kind_t kind;
    eie_act_t act;
    int32_t axis;
    eie_conv2d_params_t conv;
    eie_pool2d_params_t pool;
    uint32_t n_inputs, *inputs, output;
    uint32_t groups, rows_g, cols, rows;
    smat_t *m;
    float *bias;
    int64_t *bias_acc; /* per row: the 16-bit bias in the accumulator's Q(in + w) */
    int wfrac, bias_frac, in_frac, out_frac;
    long in_from; /* the sparse node whose output is this node's input, or -1 */
    size_t rep;   /* index among sparse nodes */
    double in_max, out_max;
    /* LSTM: the matrix laid out by units (eie_fc_lstm_rows), unit j on PE j mod N */
    uint32_t hidden, lanes;
    float *init[2]; /* initial h, c (lanes x H), or NULL for zeros; owned */
    uint32_t init_in[2]; /* graph inputs giving initial h, c each run, or UINT32_MAX */
} snode_t;

struct eie_sim_graph {
    eie_sim_params_t params;
    size_t n_t, n_nodes, n_sparse;
    eie_shape_t *shape;
    size_t *numel;
    snode_t *nodes;
    uint32_t input, output; /* the steps' input; the first output */
    size_t n_in;     /* graph inputs: input, and any lstm's fed initial states */
    uint32_t *in_t;  /* their tensors, in the model's order */
    size_t n_out;    /* graph outputs, in the model's order: */
    uint32_t *out_t; /* their tensors */
    long *out_node;  /* an lstm's final state (Y_h, Y_c): its node, else -1 */
    int *out_k;      /* 0 h, 1 c */
    uint32_t max_cols, max_rows;
    int sequence; /* has an lstm node: a run is a sequence of steps */
};

static void smat_clear(smat_t *s)
{
    for (unsigned p = 0; p < s->lay.n_pes; p++) {
        if (s->wq)
            free(s->wq[p]);
        if (s->eptr)
            free(s->eptr[p]);
    }
    free(s->wq);
    free(s->eptr);
    eie_cpu_exact_clear(&s->lay);
}

void eie_sim_graph_free(eie_sim_graph_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        snode_t *nd = &g->nodes[i];
        if (nd->m != NULL)
            for (uint32_t q = 0; q < nd->groups; q++)
                smat_clear(&nd->m[q]);
        free(nd->m);
        free(nd->bias);
        free(nd->bias_acc);
        free(nd->inputs);
        free(nd->init[0]);
        free(nd->init[1]);
    }
    free(g->nodes);
    free(g->in_t);
    free(g->out_t);
    free(g->out_node);
    free(g->out_k);
    free(g->shape);
    free(g->numel);
    free(g);
}

uint32_t eie_sim_graph_input_dim(const eie_sim_graph_t *g) { return (uint32_t)g->numel[g->input]; }
uint32_t eie_sim_graph_output_dim(const eie_sim_graph_t *g)
{
    return (uint32_t)g->numel[g->output];
}

size_t eie_sim_graph_output_count(const eie_sim_graph_t *g) { return g->n_out; }

uint32_t eie_sim_graph_output_dim_of(const eie_sim_graph_t *g, size_t o)
{
    return (uint32_t)g->numel[g->out_t[o]];
}

/* Packs one matrix (either storage) as exact values over the PEs, then its EIE entry counts. */
static eie_status_t smat_init(const eie_fc_t *fc, const eie_sim_params_t *p, smat_t *s,
                              eie_error_t *err)
{
    eie_fc_t view = *fc;
    float *vals = NULL;
    if (fc->storage == EIE_STORAGE_SHARED) {
        /* the codebook's values per entry: a shared layer is an exact one here */
        vals = malloc((fc->nnz ? fc->nnz : 1) * sizeof(float));
        if (vals == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        uint64_t k = 0;
        for (uint64_t e = 0; e < fc->entries; e++)
            if (fc->codes[e] != 0)
                vals[k++] = fc->codebook[fc->codes[e]];
        view.values = vals;
        view.storage = EIE_STORAGE_EXACT;
    }
    eie_status_t st = eie_cpu_exact_init(&view, p->n_pes, &s->lay, err);
    free(vals);
    if (st != EIE_STATUS_OK)
        return st;
    s->wq = calloc(p->n_pes, sizeof *s->wq);
    s->eptr = calloc(p->n_pes, sizeof *s->eptr);
    if (s->wq == NULL || s->eptr == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    for (unsigned pe = 0; pe < p->n_pes; pe++) {
        const eie_pe_exact_t *L = &s->lay.pe[pe];
        s->wq[pe] = malloc((L->n_ent ? L->n_ent : 1) * sizeof(int16_t));
        uint32_t *ep = s->eptr[pe] = malloc(((size_t)fc->cols + 2) * sizeof(uint32_t));
        if (s->wq[pe] == NULL || ep == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        /* EIE sec. III-B: a local zero-run over 15 needs a filler entry. */
        ep[0] = 0;
        for (uint32_t j = 0; j < fc->cols; j++) {
            uint32_t n = 0;
            int64_t prev = -1;
            for (uint32_t e = L->ptr[j]; e < L->ptr[j + 1]; e++) {
                n += (uint32_t)(((int64_t)L->row[e] - prev - 1) / 16 + 1);
                prev = L->row[e];
            }
            ep[j + 1] = ep[j] + n;
        }
        ep[fc->cols + 1] = ep[fc->cols]; /* the bias column: set once formats are known */
    }
    return EIE_STATUS_OK;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)v[i]) > m)
            m = fabs((double)v[i]);
    return m;
}

static uint64_t probe_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* ---- one inference ------------------------------------------------------- */

typedef struct srun {
    eie_sim_graph_t *g;
    int fixed;               /* 0: the float probe pass */
    float **t;               /* every tensor, one sample */
    float *patch;            /* max cols */
    int16_t *xq;             /* max cols */
    uint32_t *bcast;         /* max cols + 1 */
    int64_t *acc;            /* max rows (one group) */
    eie_sim_layer_report_t *reps; /* per sparse node */
    eie_error_t *err;
    float **state;           /* per node: an LSTM's h then c (lanes x H each), over steps */
    float *gates;            /* max rows */
    size_t step;             /* the step of the sequence being run */
} srun_t;

/* Adds one application's figures into a node's report. */
static void rep_add(eie_sim_layer_report_t *d, const eie_sim_layer_report_t *s)
{
    d->broadcasts += s->broadcasts;
    d->entries += s->entries;
    d->cycles += s->cycles;
    d->ideal_cycles += s->ideal_cycles;
    d->balanced_cycles += s->balanced_cycles;
    d->lnzd_stalls += s->lnzd_stalls;
    d->lnzd_waits += s->lnzd_waits;
    d->act_batches += s->act_batches;
    d->ptr_reads += s->ptr_reads;
    d->spmat_reads += s->spmat_reads;
    d->time_us += s->time_us;
    d->energy_uj += s->energy_uj;
    for (unsigned p = 0; p < d->n_pes && s->pe_busy != NULL; p++)
        d->pe_busy[p] += s->pe_busy[p];
}

/* The matrix of group q applied to one patch x (cols floats) into y[rows_g] (stride ys). */
static eie_status_t apply(srun_t *r, snode_t *nd, uint32_t q, const float *x, float *y,
                          size_t ys)
{
    eie_sim_graph_t *g = r->g;
    const smat_t *s = &nd->m[q];
    unsigned N = g->params.n_pes;
    uint32_t R = nd->rows_g, C = nd->cols;
    const float *bias = nd->bias + (size_t)q * R;
    if (!r->fixed) {
        double m = max_abs(x, C);
        nd->in_max = m > nd->in_max ? m : nd->in_max;
        for (uint32_t i = 0; i < R; i++)
            y[i * ys] = bias[i];
        for (uint32_t j = 0; j < C; j++)
            if (x[j] != 0.0f)
                for (unsigned p = 0; p < N; p++) {
                    const eie_pe_exact_t *L = &s->lay.pe[p];
                    for (uint32_t e = L->ptr[j]; e < L->ptr[j + 1]; e++)
                        y[((size_t)L->row[e] * N + p) * ys] += L->val[e] * x[j];
                }
        for (uint32_t i = 0; i < R; i++)
            nd->out_max = fabs((double)y[i * ys]) > nd->out_max ? fabs((double)y[i * ys])
                                                                : nd->out_max;
        return EIE_STATUS_OK;
    }
    eie_sim_layer_report_t *rep = &r->reps[nd->rep];
    size_t nb = 0;
    for (uint32_t j = 0; j < C; j++) {
        r->xq[j] = eie_fx_quantize(x[j], nd->in_frac, &rep->saturations);
        if (r->xq[j] != 0) /* EIE sec. III-A: only nonzero activations are broadcast */
            r->bcast[nb++] = j;
    }
    memset(r->acc, 0, R * sizeof *r->acc);
    uint64_t macs = 0, fillers = 0;
    for (size_t k = 0; k < nb; k++) {
        uint32_t j = r->bcast[k];
        int32_t a = r->xq[j];
        for (unsigned p = 0; p < N; p++) {
            const eie_pe_exact_t *L = &s->lay.pe[p];
            uint32_t e0 = L->ptr[j], e1 = L->ptr[j + 1];
            for (uint32_t e = e0; e < e1; e++) {
                size_t row = (size_t)L->row[e] * N + p;
                r->acc[row] = eie_fx_acc_add(r->acc[row], (int64_t)s->wq[p][e] * a);
            }
            macs += e1 - e0;
            fillers += (s->eptr[p][j + 1] - s->eptr[p][j]) - (e1 - e0);
        }
    }
    const int64_t *bacc = nd->bias_acc + (size_t)q * R;
    int has_bias = 0;
    for (uint32_t i = 0; i < R && !has_bias; i++)
        has_bias = bacc[i] != 0;
    if (has_bias) {
        /* EIE: the bias is a last column whose activation is 1.0. */
        r->bcast[nb++] = C;
        for (uint32_t i = 0; i < R; i++)
            r->acc[i] = eie_fx_acc_add(r->acc[i], bacc[i]);
    }
    int shift = nd->in_frac + nd->wfrac - nd->out_frac;
    for (uint32_t i = 0; i < R; i++) {
        int16_t v = eie_fx_sat16(eie_fx_shift(r->acc[i], shift), &rep->saturations);
        y[i * ys] = eie_fx_to_float(v, nd->out_frac);
    }
    eie_sim_layer_report_t one = {0};
    /* Inputs (patches) longer than the register files run in batches; the
     * rows of one node form one output batch whatever their number. */
    const uint32_t *const *batches[1] = {(const uint32_t *const *)s->eptr};
    eie_sim_fc_work_t w = {.cols = C, .n_row_batches = 1, .eptr = batches, .bcast = r->bcast,
                           .n_bcast = nb};
    eie_status_t st = eie_sim_cycles_fc(&g->params, &w, &one, r->err);
    if (st != EIE_STATUS_OK)
        return st;
    rep_add(rep, &one);
    free(one.pe_busy);
    rep->macs += macs;
    rep->fillers += fillers;
    return EIE_STATUS_OK;
}

static eie_status_t run_sparse(srun_t *r, snode_t *nd)
{
    const eie_shape_t *xs = &r->g->shape[nd->inputs[0]], *ys = &r->g->shape[nd->output];
    const float *x = r->t[nd->inputs[0]];
    float *y = r->t[nd->output];
    if (nd->kind == EIE_LAYER_FC) {
        /* each vector along the last axis is one inference of the layer */
        for (size_t v = 0; v < r->g->numel[nd->inputs[0]] / nd->cols; v++) {
            eie_status_t st = apply(r, nd, 0, x + v * nd->cols, y + v * nd->rows, 1);
            if (st != EIE_STATUS_OK)
                return st;
        }
        return EIE_STATUS_OK;
    }
    const eie_conv2d_params_t *c = &nd->conv;
    int64_t H = xs->dims[2], W = xs->dims[3], Cg = xs->dims[1] / c->groups;
    size_t Ho = (size_t)ys->dims[2], Wo = (size_t)ys->dims[3], P = Ho * Wo;
    for (uint32_t q = 0; q < nd->groups; q++)
        for (size_t pos = 0; pos < P; pos++) {
            /* the patch of this output position, in the weight columns' order */
            int64_t iy0 = (int64_t)(pos / Wo) * c->stride_h - c->pad_top;
            int64_t ix0 = (int64_t)(pos % Wo) * c->stride_w - c->pad_left;
            size_t col = 0;
            for (int64_t ci = 0; ci < Cg; ci++)
                for (uint32_t ky = 0; ky < c->kernel_h; ky++)
                    for (uint32_t kx = 0; kx < c->kernel_w; kx++) {
                        int64_t iy = iy0 + (int64_t)ky * c->dilation_h;
                        int64_t ix = ix0 + (int64_t)kx * c->dilation_w;
                        r->patch[col++] = (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                              ? 0.0f
                                              : x[((q * Cg + ci) * H + iy) * W + ix];
                    }
            eie_status_t st = apply(r, nd, q, r->patch, y + (size_t)q * nd->rows_g * P + pos, P);
            if (st != EIE_STATUS_OK)
                return st;
        }
    return EIE_STATUS_OK;
}

/* Cycles of the element-wise unit for one lane's step: each PE updates its own hidden
   units, one a cycle (an assumption: EIE describes no LSTM unit; sec. III-B's
   interleave puts a unit's four gates on one PE, so it needs no exchange). */
static void lstm_unit_cost(const eie_sim_params_t *p, uint32_t H, eie_sim_layer_report_t *rep)
{
    uint32_t N = p->n_pes, per_pe = (H + N - 1) / N;
    double mw_cycles = 0.0;
    for (unsigned q = 0; q < N; q++) {
        uint32_t units = q < H ? (H - 1 - q) / N + 1 : 0;
        mw_cycles += units * EIE_SIM_PE_POWER_MW + (per_pe - units) * EIE_SIM_PE_IDLE_POWER_MW;
        if (rep->pe_busy != NULL)
            rep->pe_busy[q] += units;
    }
    rep->cycles += per_pe;
    rep->ideal_cycles += per_pe;
    rep->balanced_cycles += per_pe;
    rep->time_us += per_pe / p->clock_mhz;
    rep->energy_uj += mw_cycles / 800.0 / 1000.0;
}

/*
 * One step of an LSTM, lane by lane (EIE runs batch 1): the matrix over
 * [x_t, h_{t-1}] as one EIE pass (apply: 16-bit inputs, weights and
 * outputs), then the element-wise unit on the gates. h_t is what the next
 * pass reads (quantised there like any input); the cell state stays in
 * float.
 */
static eie_status_t run_lstm(srun_t *r, snode_t *nd, size_t ni)
{
    const eie_sim_graph_t *g = r->g;
    uint32_t H = nd->hidden, I = nd->cols - H, N = g->params.n_pes;
    const float *x = r->t[nd->inputs[0]];
    float *y = r->t[nd->output], *h = r->state[ni], *c = h + (size_t)nd->lanes * H;
    if (r->step == 0)
        for (int k = 0; k < 2; k++) {
            float *dst = k ? c : h;
            /* fed by a graph input this run, stored, or zeros */
            const float *src = nd->init_in[k] != UINT32_MAX ? r->t[nd->init_in[k]] : nd->init[k];
            if (src != NULL)
                memcpy(dst, src, (size_t)nd->lanes * H * sizeof(float));
            else
                memset(dst, 0, (size_t)nd->lanes * H * sizeof(float));
        }
    for (uint32_t n = 0; n < nd->lanes; n++) {
        memcpy(r->patch, x + (size_t)n * I, I * sizeof(float));
        memcpy(r->patch + I, h + (size_t)n * H, H * sizeof(float));
        eie_status_t st = apply(r, nd, 0, r->patch, r->gates, 1);
        if (st != EIE_STATUS_OK)
            return st;
        for (uint32_t j = 0; j < H; j++) {
            float gt[4];
            for (uint32_t q = 0; q < 4; q++)
                gt[q] = r->gates[eie_lstm_pe_row(4 * j + q, H, N)];
            y[(size_t)n * H + j] = eie_op_lstm_unit(gt, &c[(size_t)n * H + j]);
        }
        if (r->fixed)
            lstm_unit_cost(&g->params, H, &r->reps[nd->rep]);
    }
    memcpy(h, y, (size_t)nd->lanes * H * sizeof(float));
    return EIE_STATUS_OK;
}

/* A host node, in float. */
static void run_host(srun_t *r, const snode_t *nd)
{
    const eie_sim_graph_t *g = r->g;
    const eie_shape_t *xs = &g->shape[nd->inputs[0]], *ys = &g->shape[nd->output];
    const float *x = r->t[nd->inputs[0]];
    float *y = r->t[nd->output];
    size_t n = g->numel[nd->output];
    switch (nd->kind) {
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
        eie_op_pool2d(nd->kind == EIE_LAYER_MAXPOOL2D, &nd->pool, x, (uint32_t)xs->dims[1],
                      (uint32_t)xs->dims[2], (uint32_t)xs->dims[3], y, (uint32_t)ys->dims[2],
                      (uint32_t)ys->dims[3], 0, 1);
        break;
    case EIE_LAYER_GLOBAL_AVGPOOL:
        eie_op_global_avgpool(x, (uint32_t)xs->dims[1], (size_t)(xs->dims[2] * xs->dims[3]), y,
                              0, 1);
        break;
    case EIE_LAYER_ADD:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] + r->t[nd->inputs[1]][i];
        break;
    case EIE_LAYER_CONCAT: {
        size_t outer, na, inner, off = 0;
        eie_op_axis_split(ys, nd->axis, &outer, &na, &inner);
        for (uint32_t k = 0; k < nd->n_inputs; k++) {
            size_t chunk = (size_t)g->shape[nd->inputs[k]].dims[nd->axis] * inner;
            eie_op_concat_one(r->t[nd->inputs[k]], chunk, outer, na * inner, y + off, 0, 1);
            off += chunk;
        }
        break;
    }
    case EIE_LAYER_ACTIVATION:
        memcpy(y, x, n * sizeof(float));
        if (nd->act == EIE_ACT_SOFTMAX)
            eie_op_softmax_axis(y, ys, nd->axis, 0, 1);
        else
            for (size_t i = 0; i < n; i++)
                y[i] = eie_act_apply1(nd->act, y[i]);
        break;
    default: /* FLATTEN, RESHAPE */
        memcpy(y, x, n * sizeof(float));
        break;
    }
}

/* Runs steps samples in order (a sequence when the graph has an lstm node); fed holds
   every graph input (the model's order), of which the lstm initial states are read once,
   or is NULL: the probes, whose initial states are zeros. outputs[o] gets graph output o
   (steps samples; an lstm's final state one, after the last step), or is NULL: the
   probes, which only look at the ranges. */
static eie_status_t run_seq(eie_sim_graph_t *g, int fixed, const float *input,
                            const float *const *fed, size_t steps, float *const *outputs,
                            eie_sim_layer_report_t *reps, eie_error_t *err)
{
    eie_status_t st = EIE_STATUS_OK;
    srun_t r = {.g = g, .fixed = fixed, .reps = reps, .err = err};
    r.t = calloc(g->n_t, sizeof *r.t);
    r.state = calloc(g->n_nodes, sizeof *r.state);
    r.gates = malloc(((size_t)g->max_rows + 1) * sizeof *r.gates);
    if (!r.state || !r.gates) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
        goto done;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].kind == EIE_LAYER_LSTM &&
            (r.state[i] = malloc(2 * (size_t)g->nodes[i].lanes * g->nodes[i].hidden *
                                 sizeof(float))) == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
            goto done;
        }
    r.patch = malloc(((size_t)g->max_cols + 1) * sizeof *r.patch);
    r.xq = malloc(((size_t)g->max_cols + 1) * sizeof *r.xq);
    r.bcast = malloc(((size_t)g->max_cols + 1) * sizeof *r.bcast);
    r.acc = malloc(((size_t)g->max_rows + 1) * sizeof *r.acc);
    if (!r.t || !r.patch || !r.xq || !r.bcast || !r.acc) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
        goto done;
    }
    for (size_t i = 0; i < g->n_t; i++)
        if ((r.t[i] = malloc(g->numel[i] * sizeof(float))) == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
            goto done;
        }
    for (size_t i = 0; i < g->n_in; i++)
        if (g->in_t[i] != g->input) {
            if (fed != NULL)
                memcpy(r.t[g->in_t[i]], fed[i], g->numel[g->in_t[i]] * sizeof(float));
            else
                memset(r.t[g->in_t[i]], 0, g->numel[g->in_t[i]] * sizeof(float));
        }
    for (r.step = 0; r.step < steps && st == EIE_STATUS_OK; r.step++) {
        memcpy(r.t[g->input], input + r.step * g->numel[g->input],
               g->numel[g->input] * sizeof(float));
        for (size_t i = 0; i < g->n_nodes && st == EIE_STATUS_OK; i++) {
            snode_t *nd = &g->nodes[i];
            if (nd->kind == EIE_LAYER_LSTM)
                st = run_lstm(&r, nd, i);
            else if (nd->m != NULL)
                st = run_sparse(&r, nd);
            else
                run_host(&r, nd);
        }
        for (size_t o = 0; outputs != NULL && st == EIE_STATUS_OK && o < g->n_out; o++) {
            size_t n = g->numel[g->out_t[o]];
            if (g->out_node[o] < 0)
                memcpy(outputs[o] + r.step * n, r.t[g->out_t[o]], n * sizeof(float));
            else if (r.step + 1 == steps) /* state[node]: h, then c */
                memcpy(outputs[o], r.state[g->out_node[o]] + (size_t)g->out_k[o] * n,
                       n * sizeof(float));
        }
    }
done:
    if (r.state != NULL)
        for (size_t i = 0; i < g->n_nodes; i++)
            free(r.state[i]);
    free(r.state);
    free(r.gates);
    if (r.t != NULL)
        for (size_t i = 0; i < g->n_t; i++)
            free(r.t[i]);
    free(r.t);
    free(r.patch);
    free(r.xq);
    free(r.bcast);
    free(r.acc);
    return st;
}

/* Chooses every sparse node's activation formats from probe ranges (see the top). */
static eie_status_t choose_formats(eie_sim_graph_t *g, eie_error_t *err)
{
    /* a sequence model's probes are sequences, so the recurrent input h sees its range */
    size_t steps = g->sequence ? PROBE_STEPS : 1;
    size_t nin = g->numel[g->input] * steps;
    float *a = malloc(nin * sizeof *a);
    eie_status_t st = EIE_STATUS_OK;
    if (a == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
        goto done;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int pr = 0; pr < N_PROBES && st == EIE_STATUS_OK; pr++) {
        for (size_t i = 0; i < nin; i++) {
            float u = (float)(probe_rand(&seed) >> 40) / (float)(1u << 24);
            float v = (float)(probe_rand(&seed) >> 40) / (float)(1u << 24);
            a[i] = u < 0.5f ? 0.0f : (pr % 2 ? v : 2.0f * v - 1.0f);
        }
        st = run_seq(g, 0, a, NULL, steps, NULL, NULL, err);
    }
    for (size_t i = 0; i < g->n_nodes && st == EIE_STATUS_OK; i++) {
        snode_t *nd = &g->nodes[i];
        if (nd->m == NULL)
            continue;
        if (nd->kind == EIE_LAYER_LSTM && nd->in_max < 1.0)
            nd->in_max = 1.0; /* h_{t-1} is in (-1, 1) whatever the probes saw */
        nd->out_frac = eie_fx_frac_for(nd->out_max, ACT_HEADROOM);
        nd->in_frac = nd->in_from >= 0 ? g->nodes[nd->in_from].out_frac
                                       : eie_fx_frac_for(nd->in_max, ACT_HEADROOM);
        uint64_t sat = 0;
        for (uint32_t r = 0; r < nd->rows; r++) {
            int16_t q = eie_fx_quantize(nd->bias[r], nd->bias_frac, &sat);
            nd->bias_acc[r] = eie_fx_shift(q, nd->bias_frac - (nd->in_frac + nd->wfrac));
        }
        /* the bias column's entries: one per row with a nonzero bias */
        for (uint32_t q = 0; q < nd->groups; q++)
            for (unsigned p = 0; p < g->params.n_pes; p++) {
                const eie_pe_exact_t *L = &nd->m[q].lay.pe[p];
                uint32_t nb = 0;
                for (uint32_t lr = 0; lr < L->n_rows; lr++)
                    nb += nd->bias_acc[(size_t)q * nd->rows_g + (size_t)lr * g->params.n_pes + p] != 0;
                nd->m[q].eptr[p][nd->cols + 1] = nd->m[q].eptr[p][nd->cols] + nb;
            }
    }
done:
    free(a);
    return st;
}

static eie_status_t prep_sparse(eie_sim_graph_t *g, snode_t *nd, const eie_fc_t *fc,
                                eie_error_t *err)
{
    nd->rows = fc->rows;
    nd->rows_g = fc->rows / nd->groups;
    nd->cols = fc->cols;
    nd->m = calloc(nd->groups, sizeof *nd->m);
    nd->bias = malloc(fc->rows * sizeof(float));
    nd->bias_acc = calloc(fc->rows, sizeof *nd->bias_acc);
    if (!nd->m || !nd->bias || !nd->bias_acc)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    memcpy(nd->bias, fc->bias, fc->rows * sizeof(float));
    double wmax = 0.0;
    for (uint32_t q = 0; q < nd->groups; q++) {
        eie_fc_t sub;
        const eie_fc_t *src = fc;
        if (nd->groups > 1) {
            if (eie_fc_rows(fc, q * nd->rows_g, nd->rows_g, &sub) != 0) {
                eie_fc_rows_free(&sub);
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
            }
            src = &sub;
        }
        eie_status_t st = smat_init(src, &g->params, &nd->m[q], err);
        if (nd->groups > 1)
            eie_fc_rows_free(&sub);
        if (st != EIE_STATUS_OK)
            return st;
        for (unsigned p = 0; p < g->params.n_pes; p++) {
            const eie_pe_exact_t *L = &nd->m[q].lay.pe[p];
            double m = max_abs(L->val, L->n_ent);
            wmax = m > wmax ? m : wmax;
        }
    }
    nd->wfrac = eie_fx_frac_for(wmax, 1.0);
    nd->bias_frac = eie_fx_frac_for(max_abs(fc->bias, fc->rows), 1.0);
    uint64_t sat = 0;
    for (uint32_t q = 0; q < nd->groups; q++)
        for (unsigned p = 0; p < g->params.n_pes; p++) {
            const eie_pe_exact_t *L = &nd->m[q].lay.pe[p];
            for (uint64_t e = 0; e < L->n_ent; e++)
                nd->m[q].wq[p][e] = eie_fx_quantize(L->val[e], nd->wfrac, &sat);
        }
    if (fc->cols > g->max_cols)
        g->max_cols = fc->cols;
    if (nd->rows_g > g->max_rows)
        g->max_rows = nd->rows_g;
    return EIE_STATUS_OK;
}

eie_status_t eie_sim_graph_init(const eie_model_t *m, const eie_sim_params_t *params,
                                eie_sim_graph_t **g_out, eie_error_t *err)
{
    eie_status_t st;
    size_t n_main = 0, main_in = 0;
    for (size_t i = 0; i < m->n_inputs; i++)
        if (!eie_model_is_lstm_initial(m, m->inputs[i])) {
            n_main++;
            main_in = i;
        }
    if (n_main != 1)
        return eie_error_set(err, EIE_STATUS_UNIMPLEMENTED,
                             "eie-sim: runs graphs of one input (and an lstm's fed initial "
                             "state); this one has %zu",
                             n_main);
    eie_sim_graph_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    g->params = *params;
    g->n_t = m->n_tensors;
    g->n_nodes = m->n_layers;
    g->input = m->inputs[main_in];
    g->output = m->outputs[0];
    g->n_in = m->n_inputs;
    if ((g->in_t = malloc(g->n_in * sizeof *g->in_t)) == NULL) {
        free(g);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    }
    memcpy(g->in_t, m->inputs, g->n_in * sizeof *g->in_t);
    g->shape = calloc(g->n_t, sizeof *g->shape);
    g->numel = calloc(g->n_t, sizeof *g->numel);
    g->nodes = calloc(g->n_nodes, sizeof *g->nodes);
    long *producer = malloc(g->n_t * sizeof *producer);
    if (!g->shape || !g->numel || !g->nodes || !producer)
        goto nomem;
    g->n_out = m->n_outputs;
    g->out_t = malloc(g->n_out * sizeof *g->out_t);
    g->out_node = malloc(g->n_out * sizeof *g->out_node);
    g->out_k = malloc(g->n_out * sizeof *g->out_k);
    if (!g->out_t || !g->out_node || !g->out_k)
        goto nomem;
    for (size_t o = 0; o < g->n_out; o++) {
        g->out_t[o] = m->outputs[o];
        g->out_node[o] = -1;
        g->out_k[o] = 0;
        for (size_t i = 0; i < m->n_layers; i++)
            for (int k = 0; k < 2 && m->layers[i].kind == EIE_LAYER_LSTM; k++)
                if (m->layers[i].lstm.state[k] == m->outputs[o]) {
                    g->out_node[o] = (long)i;
                    g->out_k[o] = k;
                }
    }
    for (size_t t = 0; t < g->n_t; t++) {
        g->shape[t] = m->tensors[t].shape;
        g->numel[t] = eie_shape_sample_elements(&g->shape[t]);
        producer[t] = -1;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const eie_layer_t *l = &m->layers[i];
        snode_t *nd = &g->nodes[i];
        nd->kind = l->kind;
        nd->act = l->act;
        nd->axis = l->axis;
        nd->conv = l->conv;
        nd->pool = l->pool;
        nd->n_inputs = l->n_inputs;
        nd->output = l->output;
        nd->in_from = -1;
        if ((nd->inputs = malloc(l->n_inputs * sizeof *nd->inputs)) == NULL)
            goto nomem;
        memcpy(nd->inputs, l->inputs, l->n_inputs * sizeof *nd->inputs);
        if (l->kind == EIE_LAYER_LSTM) {
            eie_fc_t pe_fc;
            nd->groups = 1;
            nd->hidden = l->lstm.hidden;
            nd->lanes = l->lstm.lanes;
            nd->init_in[0] = l->lstm.initial_in[0];
            nd->init_in[1] = l->lstm.initial_in[1];
            nd->rep = g->n_sparse++;
            nd->in_from = -1; /* [x_t, h_{t-1}] is its own input */
            g->sequence = 1;
            for (int k = 0; k < 2; k++)
                if (l->lstm.initial[k] != NULL) {
                    size_t n = (size_t)nd->lanes * nd->hidden * sizeof(float);
                    if ((nd->init[k] = malloc(n)) == NULL)
                        goto nomem;
                    memcpy(nd->init[k], l->lstm.initial[k], n);
                }
            if (eie_fc_lstm_rows(&l->fc, params->n_pes, &pe_fc) != 0) {
                eie_fc_lstm_rows_free(&pe_fc);
                goto nomem;
            }
            st = prep_sparse(g, nd, &pe_fc, err);
            eie_fc_lstm_rows_free(&pe_fc);
            if (st != EIE_STATUS_OK) {
                eie_error_prefix(err, "node %zu: ", i);
                goto error;
            }
            producer[l->output] = (long)i;
            continue;
        }
        if (l->kind == EIE_LAYER_FC || l->kind == EIE_LAYER_CONV2D) {
            nd->groups = l->kind == EIE_LAYER_CONV2D ? l->conv.groups : 1;
            nd->rep = g->n_sparse++;
            nd->in_from = producer[l->inputs[0]];
            if ((st = prep_sparse(g, nd, &l->fc, err)) != EIE_STATUS_OK) {
                eie_error_prefix(err, "node %zu: ", i);
                goto error;
            }
            producer[l->output] = (long)i;
        }
    }
    free(producer);
    producer = NULL;
    if ((st = choose_formats(g, err)) != EIE_STATUS_OK)
        goto error;
    *g_out = g;
    return EIE_STATUS_OK;
nomem:
    st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory preparing the graph");
error:
    free(producer);
    eie_sim_graph_free(g);
    return st;
}

int eie_sim_graph_is_sequence(const eie_sim_graph_t *g) { return g->sequence; }

size_t eie_sim_graph_input_count(const eie_sim_graph_t *g) { return g->n_in; }

eie_status_t eie_sim_graph_run(eie_sim_graph_t *g, const float *const *inputs, size_t steps,
                               float *const *outputs, eie_sim_report_t *rep, eie_error_t *err)
{
    const float *input = NULL;
    for (size_t i = 0; i < g->n_in; i++)
        if (g->in_t[i] == g->input)
            input = inputs[i];
    rep->n_layers = g->n_sparse;
    rep->layers = calloc(g->n_sparse + 1, sizeof *rep->layers);
    if (rep->layers == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const snode_t *nd = &g->nodes[i];
        if (nd->m == NULL)
            continue;
        eie_sim_layer_report_t *l = &rep->layers[nd->rep];
        l->layer = i;
        l->rows = nd->kind == EIE_LAYER_LSTM ? 4 * nd->hidden : nd->rows; /* not the padding */
        l->cols = nd->cols;
        l->in_frac = nd->in_frac;
        l->weight_frac = nd->wfrac;
        l->out_frac = nd->out_frac;
        l->n_pes = g->params.n_pes;
        if ((l->pe_busy = calloc(g->params.n_pes, sizeof *l->pe_busy)) == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
    }
    eie_status_t st = run_seq(g, 1, input, inputs, steps, outputs, rep->layers, err);
    for (size_t i = 0; i < g->n_sparse; i++) {
        eie_sim_layer_report_t *l = &rep->layers[i];
        l->efficiency = l->cycles ? (double)l->entries / ((double)l->n_pes * (double)l->cycles)
                                  : 0.0;
        l->gops = l->time_us > 0 ? 2.0 * (double)l->macs / (l->time_us * 1e3) : 0.0;
    }
    return st;
}
