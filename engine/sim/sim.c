/*
 * sim.c - a model prepared for the simulated EIE accelerator, and one
 * inference on it: 16-bit fixed-point arithmetic (fixed.h) on the per-PE CSC
 * layout the backends share (pe/layout.h: EIE sec. III-B, row i on PE
 * i mod N), timed by the cycle model (cycles.c).
 *
 * Q formats are chosen at load (README.md, "Fixed point"):
 *  - codebook: per layer, the most fraction bits that hold max |LUT value|;
 *  - bias: per layer, likewise from max |bias|;
 *  - activations: per layer from value ranges found by running the float
 *    network once over 8 fixed probe inputs (4 uniform in [-1, 1], 4 in
 *    [0, 1], half the inputs nonzero), with 2 bits of headroom (4x the largest
 *    magnitude seen). An FC layer fed by another FC layer reads that layer's
 *    output format as is (the register file holds those bits).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "pe/layout.h"
#include "eie/sim.h"
#include "format/format.h"
#include "sim/cycles.h"
#include "sim/fixed.h"
#include "sim/graph.h"

#define N_PROBES 8
#define ACT_HEADROOM 4.0

enum { STEP_FC, STEP_ACT };

typedef struct sim_fc {
    size_t layer;          /* model layer index */
    eie_cpu_fc_t lay;      /* wide entries: local_row << 8 | code, fillers dropped */
    unsigned n_rb;         /* output batches: act_regs local rows per PE each */
    uint32_t ***eptr;      /* [batch][PE]: cols + 2 prefix sums of entries, fillers in, bias last */
    int16_t wq[256];       /* the LUT in Q(wfrac) */
    int wfrac, in_frac, out_frac, bias_frac;
    int in_from_fc;        /* the input is the previous FC's output, in its format */
    int64_t *bias_acc;     /* per row: the 16-bit bias aligned to the accumulator's Q(in+w) */
    int relu;              /* ReLU fused into write-back */
} sim_fc_t;

typedef struct step {
    int kind;
    size_t fc;   /* STEP_FC */
    eie_act_t act; /* STEP_ACT */
} step_t;

struct eie_sim {
    eie_sim_params_t params;
    uint32_t in_dim, out_dim, max_dim;
    step_t *steps;
    size_t n_steps;
    sim_fc_t *fcs;
    size_t n_fcs;
    eie_sim_graph_t *graph; /* a version-2 model (sim/graph.c); the rest unused */
};

eie_sim_params_t eie_sim_params_default(void)
{
    return (eie_sim_params_t){.n_pes = 64, .fifo_depth = 8, .pipeline_depth = 4,
                              .clock_mhz = 800.0, .act_regs = 64};
}

eie_status_t eie_sim_params_check(const eie_sim_params_t *p, eie_error_t *err)
{
    if (p->n_pes < 1 || p->n_pes > EIE_SIM_MAX_PES)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: PE count %u out of range 1..%u", p->n_pes, EIE_SIM_MAX_PES);
    if (p->fifo_depth < 1 || p->fifo_depth > EIE_SIM_MAX_FIFO)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: FIFO depth %u out of range 1..%u", p->fifo_depth,
                             EIE_SIM_MAX_FIFO);
    if (p->pipeline_depth < 1 || p->pipeline_depth > EIE_SIM_MAX_PIPELINE)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: pipeline depth %u out of range 1..%u", p->pipeline_depth,
                             EIE_SIM_MAX_PIPELINE);
    if (!(p->clock_mhz > 0.0 && p->clock_mhz <= EIE_SIM_MAX_CLOCK_MHZ))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: clock %g MHz out of range (0, %g]", p->clock_mhz,
                             EIE_SIM_MAX_CLOCK_MHZ);
    if (p->act_regs < 1 || p->act_regs > EIE_SIM_MAX_ACT_REGS)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: activation register file of %u entries out of range 1..%u",
                             p->act_regs, EIE_SIM_MAX_ACT_REGS);
    return EIE_STATUS_OK;
}

void eie_sim_report_clear(eie_sim_report_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_layers; i++)
        free(r->layers[i].pe_busy);
    free(r->layers);
    free(r->total.pe_busy);
    memset(r, 0, sizeof *r);
}

static void sim_fc_clear(sim_fc_t *f)
{
    for (unsigned rb = 0; f->eptr != NULL && rb < f->n_rb; rb++) {
        for (unsigned p = 0; f->eptr[rb] != NULL && p < f->lay.n_pes; p++)
            free(f->eptr[rb][p]);
        free(f->eptr[rb]);
    }
    free(f->eptr);
    free(f->bias_acc);
    eie_cpu_fc_clear(&f->lay);
}

void eie_sim_free(eie_sim_t *sim)
{
    if (sim == NULL)
        return;
    eie_sim_graph_free(sim->graph);
    for (size_t i = 0; i < sim->n_fcs; i++)
        sim_fc_clear(&sim->fcs[i]);
    free(sim->fcs);
    free(sim->steps);
    free(sim);
}

const eie_sim_params_t *eie_sim_params(const eie_sim_t *sim) { return &sim->params; }
uint32_t eie_sim_input_dim(const eie_sim_t *sim) { return sim->in_dim; }
uint32_t eie_sim_output_dim(const eie_sim_t *sim) { return sim->out_dim; }

static double max_abs(const float *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)v[i]) > m)
            m = fabs((double)v[i]);
    return m;
}

/* Pointer words the per-batch entry counts of one layer may take (1 GiB). */
#define MAX_EPTR_WORDS ((uint64_t)1 << 28)

/* EIE sec. III-B: the entries a PE stores for column j, fillers included:
 * a zero-run over 15 (counted from local row -1) needs gap / 16 fillers.
 * With more local rows than the destination register file holds (act_regs),
 * every output batch of act_regs rows is a matrix of its own (sec. IV:
 * batches), so runs count from the batch's first row - 1. */
static eie_status_t sim_fc_count_entries(sim_fc_t *f, unsigned act_regs, eie_error_t *err)
{
    const eie_cpu_fc_t *L = &f->lay;
    uint32_t max_rows = 0;
    for (unsigned p = 0; p < L->n_pes; p++)
        max_rows = L->pe[p].n_rows > max_rows ? L->pe[p].n_rows : max_rows;
    f->n_rb = max_rows > act_regs ? (max_rows + act_regs - 1) / act_regs : 1;
    uint64_t words = (uint64_t)f->n_rb * L->n_pes * ((uint64_t)L->cols + 2);
    if (f->n_rb > 1 && words > MAX_EPTR_WORDS)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: %u output rows in %u batches of %u per PE need %llu column "
                             "pointers, over %llu; use a larger activation register file",
                             L->rows, f->n_rb, act_regs, (unsigned long long)words,
                             (unsigned long long)MAX_EPTR_WORDS);
    f->eptr = calloc(f->n_rb, sizeof *f->eptr);
    if (f->eptr == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    for (unsigned rb = 0; rb < f->n_rb; rb++)
        if ((f->eptr[rb] = calloc(L->n_pes, sizeof **f->eptr)) == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    uint32_t batch_rows = f->n_rb > 1 ? act_regs : UINT32_MAX;
    for (unsigned p = 0; p < L->n_pes; p++) {
        const eie_pe_layer_t *pl = &L->pe[p];
        const uint32_t *ent = pl->ent;
        for (unsigned rb = 0; rb < f->n_rb; rb++) {
            uint32_t *ep = malloc(((size_t)L->cols + 2) * sizeof *ep);
            if ((f->eptr[rb][p] = ep) == NULL)
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
            ep[0] = 0;
        }
        for (uint32_t j = 0; j < L->cols; j++) {
            for (unsigned rb = 0; rb < f->n_rb; rb++)
                f->eptr[rb][p][j + 1] = f->eptr[rb][p][j];
            int64_t prev = -1;
            unsigned rb = 0;
            for (uint32_t e = pl->ptr[j]; e < pl->ptr[j + 1]; e++) {
                int64_t local = ent[e] >> 8;
                if (f->n_rb > 1 && (uint32_t)local / batch_rows != rb) {
                    rb = (unsigned)((uint32_t)local / batch_rows);
                    prev = (int64_t)rb * batch_rows - 1;
                }
                f->eptr[rb][p][j + 1] += (uint32_t)((local - prev - 1) / 16 + 1);
                prev = local;
            }
        }
        /* The bias column (activation 1.0): one entry per row with a nonzero bias. */
        for (unsigned rb = 0; rb < f->n_rb; rb++)
            f->eptr[rb][p][L->cols + 1] = f->eptr[rb][p][L->cols];
        for (uint32_t r = 0; r < pl->n_rows; r++)
            f->eptr[f->n_rb > 1 ? r / batch_rows : 0][p][L->cols + 1] +=
                f->bias_acc[(size_t)r * L->n_pes + p] != 0;
    }
    return EIE_STATUS_OK;
}

/* Float y = W x + b over the layout, for the load-time range probes. */
static void sim_fc_float(const sim_fc_t *f, const float *x, float *y)
{
    const eie_cpu_fc_t *L = &f->lay;
    memcpy(y, L->bias, L->rows * sizeof(float));
    for (uint32_t j = 0; j < L->cols; j++) {
        if (x[j] == 0.0f)
            continue;
        for (unsigned p = 0; p < L->n_pes; p++) {
            const eie_pe_layer_t *pl = &L->pe[p];
            const uint32_t *ent = pl->ent;
            for (uint32_t e = pl->ptr[j]; e < pl->ptr[j + 1]; e++)
                y[(size_t)(ent[e] >> 8) * L->n_pes + p] += L->codebook[ent[e] & 0xff] * x[j];
        }
    }
}

static void act_float(eie_act_t act, float *x, size_t n)
{
    if (act == EIE_ACT_SOFTMAX)
        eie_act_softmax(x, n, 1);
    else
        for (size_t i = 0; i < n; i++)
            x[i] = eie_act_apply1(act, x[i]);
}

static uint64_t probe_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Chooses every FC layer's activation formats from the probe ranges. */
static eie_status_t sim_choose_formats(eie_sim_t *sim, eie_error_t *err)
{
    double *in_max = calloc(sim->n_fcs, sizeof *in_max);
    double *out_max = calloc(sim->n_fcs, sizeof *out_max);
    float *a = malloc(sim->max_dim * sizeof *a), *b = malloc(sim->max_dim * sizeof *b);
    if (!in_max || !out_max || !a || !b) {
        free(in_max);
        free(out_max);
        free(a);
        free(b);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int pr = 0; pr < N_PROBES; pr++) {
        for (uint32_t i = 0; i < sim->in_dim; i++) {
            float u = (float)(probe_rand(&seed) >> 40) / (float)(1u << 24);
            float v = (float)(probe_rand(&seed) >> 40) / (float)(1u << 24);
            a[i] = u < 0.5f ? 0.0f : (pr % 2 ? v : 2.0f * v - 1.0f);
        }
        size_t dim = sim->in_dim;
        for (size_t s = 0; s < sim->n_steps; s++) {
            const step_t *st = &sim->steps[s];
            if (st->kind == STEP_FC) {
                sim_fc_t *f = &sim->fcs[st->fc];
                double m = max_abs(a, dim);
                in_max[st->fc] = m > in_max[st->fc] ? m : in_max[st->fc];
                sim_fc_float(f, a, b);
                dim = f->lay.rows;
                if (f->relu)
                    act_float(EIE_ACT_RELU, b, dim);
                m = max_abs(b, dim);
                out_max[st->fc] = m > out_max[st->fc] ? m : out_max[st->fc];
                float *t = a;
                a = b;
                b = t;
            } else {
                act_float(st->act, a, dim);
            }
        }
    }
    for (size_t i = 0; i < sim->n_fcs; i++) {
        sim_fc_t *f = &sim->fcs[i];
        f->in_frac = f->in_from_fc ? sim->fcs[i - 1].out_frac
                                   : eie_fx_frac_for(in_max[i], ACT_HEADROOM);
        f->out_frac = eie_fx_frac_for(out_max[i], ACT_HEADROOM);
        /* The bias in the accumulator's format Q(in + w), from its 16 bits. */
        uint64_t sat = 0;
        for (uint32_t r = 0; r < f->lay.rows; r++) {
            int16_t q = eie_fx_quantize(f->lay.bias[r], f->bias_frac, &sat);
            f->bias_acc[r] = eie_fx_shift(q, f->bias_frac - (f->in_frac + f->wfrac));
        }
    }
    free(in_max);
    free(out_max);
    free(a);
    free(b);
    return EIE_STATUS_OK;
}

eie_status_t eie_sim_init(const eie_model_t *model, const eie_sim_params_t *params,
                          eie_sim_t **sim_out, eie_error_t *err)
{
    eie_status_t st;
    eie_sim_params_t p = params ? *params : eie_sim_params_default();
    if ((st = eie_sim_params_check(&p, err)) != EIE_STATUS_OK)
        return st;
    eie_sim_t *sim = calloc(1, sizeof *sim);
    if (sim == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory");
    sim->params = p;
    if (model->version == EIE_FORMAT_VERSION_GRAPH) {
        if ((st = eie_sim_graph_init(model, &p, &sim->graph, err)) != EIE_STATUS_OK)
            goto error;
        sim->in_dim = eie_sim_graph_input_dim(sim->graph);
        sim->out_dim = eie_sim_graph_output_dim(sim->graph);
        *sim_out = sim;
        return EIE_STATUS_OK;
    }
    sim->in_dim = model->input_dim;
    sim->out_dim = model->output_dim;
    sim->max_dim = model->input_dim;
    sim->steps = calloc(model->n_layers + 1, sizeof *sim->steps);
    sim->fcs = calloc(model->n_layers + 1, sizeof *sim->fcs);
    if (sim->steps == NULL || sim->fcs == NULL)
        goto nomem;
    int prev_fc = 0; /* the running vector is an FC output, still in fixed point */
    for (size_t l = 0; l < model->n_layers; l++) {
        const eie_layer_t *ly = &model->layers[l];
        if (ly->kind == EIE_LAYER_FC) {
            sim_fc_t *f = &sim->fcs[sim->n_fcs];
            const eie_fc_t *fc = &ly->fc;
            f->layer = l;
            f->in_from_fc = prev_fc;
            /* EIE sec. III-B: row i on PE i mod N, CSC per PE (the cpu backend's packing). */
            if ((st = eie_cpu_fc_init(fc, p.n_pes, 1, 0, &f->lay, err)) != EIE_STATUS_OK) {
                eie_error_prefix(err, "layer %zu: ", l);
                goto error;
            }
            sim->n_fcs++;
            size_t ncb = (size_t)1 << fc->code_bits;
            f->wfrac = eie_fx_frac_for(max_abs(fc->codebook, ncb), 1.0);
            f->bias_frac = eie_fx_frac_for(max_abs(fc->bias, fc->rows), 1.0);
            uint64_t sat = 0;
            for (size_t c = 0; c < ncb; c++)
                f->wq[c] = eie_fx_quantize(fc->codebook[c], f->wfrac, &sat);
            f->bias_acc = malloc(fc->rows * sizeof *f->bias_acc);
            if (f->bias_acc == NULL)
                goto nomem;
            /* Provisional (nonzero where the 16-bit bias is) until formats are chosen. */
            for (uint32_t r = 0; r < fc->rows; r++)
                f->bias_acc[r] = eie_fx_quantize(fc->bias[r], f->bias_frac, &sat);
            if ((st = sim_fc_count_entries(f, p.act_regs, err)) != EIE_STATUS_OK)
                goto error;
            sim->steps[sim->n_steps++] = (step_t){.kind = STEP_FC, .fc = sim->n_fcs - 1};
            if (fc->rows > sim->max_dim)
                sim->max_dim = fc->rows;
            prev_fc = 1;
        } else if (ly->act == EIE_ACT_RELU && sim->n_steps > 0 &&
                   sim->steps[sim->n_steps - 1].kind == STEP_FC &&
                   !sim->fcs[sim->steps[sim->n_steps - 1].fc].relu) {
            /* EIE sec. III-C: ReLU is applied as results are written back. */
            sim->fcs[sim->steps[sim->n_steps - 1].fc].relu = 1;
        } else if (ly->act == EIE_ACT_RELU || ly->act == EIE_ACT_IDENTITY) {
            if (ly->act == EIE_ACT_RELU)
                sim->steps[sim->n_steps++] = (step_t){.kind = STEP_ACT, .act = ly->act};
        } else {
            sim->steps[sim->n_steps++] = (step_t){.kind = STEP_ACT, .act = ly->act};
            prev_fc = 0;
        }
    }
    if ((st = sim_choose_formats(sim, err)) != EIE_STATUS_OK)
        goto error;
    *sim_out = sim;
    return EIE_STATUS_OK;
nomem:
    st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory preparing the model");
error:
    eie_sim_free(sim);
    return st;
}

/* ---- one inference ------------------------------------------------------- */

typedef struct scratch {
    int16_t *xq, *yq;  /* fixed-point activations: source and destination register files */
    float *xf;         /* float activations (after a non-FC activation) */
    int64_t *acc;      /* accumulators, one per row */
    uint32_t *bcast;   /* the LNZD's broadcast list */
} scratch_t;

/* One FC layer: the LNZD list, the PE arithmetic, write-back, then the timing. */
static eie_status_t run_fc(const eie_sim_t *sim, const sim_fc_t *f, scratch_t *s,
                           eie_sim_layer_report_t *rep, eie_error_t *err)
{
    const eie_cpu_fc_t *L = &f->lay;
    unsigned N = L->n_pes;
    size_t nb = 0;
    for (uint32_t j = 0; j < L->cols; j++)
        if (s->xq[j] != 0) /* EIE sec. III-A: only nonzero activations are broadcast */
            s->bcast[nb++] = j;
    int has_bias = 0;
    for (uint32_t r = 0; r < L->rows && !has_bias; r++)
        has_bias = f->bias_acc[r] != 0;
    uint64_t macs = 0, fillers = 0;
    memset(s->acc, 0, L->rows * sizeof *s->acc);
    for (size_t k = 0; k < nb; k++) {
        uint32_t j = s->bcast[k];
        int32_t a = s->xq[j];
        for (unsigned p = 0; p < N; p++) {
            const eie_pe_layer_t *pl = &L->pe[p];
            const uint32_t *ent = pl->ent;
            uint32_t e0 = pl->ptr[j], e1 = pl->ptr[j + 1];
            for (uint32_t e = e0; e < e1; e++) {
                size_t row = (size_t)(ent[e] >> 8) * N + p;
                s->acc[row] = eie_fx_acc_add(s->acc[row], (int64_t)f->wq[ent[e] & 0xff] * a);
            }
            macs += e1 - e0;
            for (unsigned rb = 0; rb < f->n_rb; rb++)
                fillers += f->eptr[rb][p][j + 1] - f->eptr[rb][p][j];
            fillers -= e1 - e0;
        }
    }
    if (has_bias) {
        /* EIE: the bias is a last column whose activation is 1.0. */
        s->bcast[nb++] = L->cols;
        for (uint32_t r = 0; r < L->rows; r++)
            s->acc[r] = eie_fx_acc_add(s->acc[r], f->bias_acc[r]);
    }
    uint64_t sat = 0;
    int shift = f->in_frac + f->wfrac - f->out_frac;
    for (uint32_t r = 0; r < L->rows; r++) {
        int64_t v = eie_fx_shift(s->acc[r], shift);
        if (f->relu && v < 0)
            v = 0;
        s->yq[r] = eie_fx_sat16(v, &sat);
    }
    eie_sim_fc_work_t w = {.cols = L->cols, .n_row_batches = f->n_rb,
                           .eptr = (const uint32_t *const *const *)f->eptr, .bcast = s->bcast,
                           .n_bcast = nb};
    eie_status_t st = eie_sim_cycles_fc(&sim->params, &w, rep, err);
    if (st != EIE_STATUS_OK)
        return st;
    rep->layer = f->layer;
    rep->rows = L->rows;
    rep->cols = L->cols;
    rep->in_frac = f->in_frac;
    rep->weight_frac = f->wfrac;
    rep->out_frac = f->out_frac;
    rep->fillers = fillers;
    rep->macs = macs;
    rep->saturations += sat;
    rep->gops = rep->time_us > 0 ? 2.0 * (double)macs / (rep->time_us * 1e3) : 0.0;
    return EIE_STATUS_OK;
}

static void report_total(eie_sim_report_t *r)
{
    eie_sim_layer_report_t *t = &r->total;
    t->layer = r->n_layers;
    t->n_pes = r->params.n_pes;
    for (size_t i = 0; i < r->n_layers; i++) {
        const eie_sim_layer_report_t *l = &r->layers[i];
        t->broadcasts += l->broadcasts;
        t->entries += l->entries;
        t->fillers += l->fillers;
        t->macs += l->macs;
        t->cycles += l->cycles;
        t->ideal_cycles += l->ideal_cycles;
        t->balanced_cycles += l->balanced_cycles;
        t->lnzd_stalls += l->lnzd_stalls;
        t->lnzd_waits += l->lnzd_waits;
        t->act_batches += l->act_batches;
        t->ptr_reads += l->ptr_reads;
        t->spmat_reads += l->spmat_reads;
        t->saturations += l->saturations;
        t->time_us += l->time_us;
        t->energy_uj += l->energy_uj;
        if (t->pe_busy != NULL)
            for (unsigned p = 0; p < t->n_pes; p++)
                t->pe_busy[p] += l->pe_busy[p];
    }
    if (r->n_layers > 0) {
        t->rows = r->layers[r->n_layers - 1].rows;
        t->cols = r->layers[0].cols;
    }
    t->efficiency = t->cycles ? (double)t->entries / ((double)t->n_pes * (double)t->cycles) : 0.0;
    t->gops = t->time_us > 0 ? 2.0 * (double)t->macs / (t->time_us * 1e3) : 0.0;
}

int eie_sim_is_sequence(const eie_sim_t *sim)
{
    return sim->graph != NULL && eie_sim_graph_is_sequence(sim->graph);
}

size_t eie_sim_input_count(const eie_sim_t *sim)
{
    return sim->graph != NULL ? eie_sim_graph_input_count(sim->graph) : 1;
}

size_t eie_sim_output_count(const eie_sim_t *sim)
{
    return sim->graph != NULL ? eie_sim_graph_output_count(sim->graph) : 1;
}

uint32_t eie_sim_output_dim_of(const eie_sim_t *sim, size_t o)
{
    return sim->graph != NULL ? eie_sim_graph_output_dim_of(sim->graph, o) : sim->out_dim;
}

/* The single-array forms: one input and one output. */
static eie_status_t check_single(const eie_sim_t *sim, eie_error_t *err)
{
    if (eie_sim_input_count(sim) == 1 && eie_sim_output_count(sim) == 1)
        return EIE_STATUS_OK;
    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                         "eie-sim: the model has %zu inputs (an lstm's fed initial state) and "
                         "%zu outputs; use eie_sim_run_sequence_multi",
                         eie_sim_input_count(sim), eie_sim_output_count(sim));
}

eie_status_t eie_sim_run_sequence(eie_sim_t *sim, const float *input, size_t steps,
                                  float *output, eie_sim_report_t *report_out, eie_error_t *err)
{
    eie_status_t st = check_single(sim, err);
    if (st != EIE_STATUS_OK)
        return st;
    return eie_sim_run_sequence_multi(sim, &input, steps, &output, report_out, err);
}

eie_status_t eie_sim_run_sequence_multi(eie_sim_t *sim, const float *const *inputs, size_t steps,
                                        float *const *outputs, eie_sim_report_t *report_out,
                                        eie_error_t *err)
{
    if (steps == 0 || steps > EIE_SIM_MAX_STEPS)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "eie-sim: %zu steps not in 1..%u",
                             steps, EIE_SIM_MAX_STEPS);
    if (!eie_sim_is_sequence(sim) && steps != 1)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "eie-sim: the model has no lstm node; run its inputs one by one");
    if (sim->graph == NULL)
        return eie_sim_run(sim, inputs[0], outputs[0], report_out, err);
    eie_sim_report_t rep = {.params = sim->params, .steps = steps};
    eie_status_t st = EIE_STATUS_OK;
    rep.total.pe_busy = calloc(sim->params.n_pes, sizeof *rep.total.pe_busy);
    if (rep.total.pe_busy == NULL)
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
    else if ((st = eie_sim_graph_run(sim->graph, inputs, steps, outputs, &rep, err)) ==
             EIE_STATUS_OK)
        report_total(&rep);
    if (st == EIE_STATUS_OK && report_out != NULL)
        *report_out = rep;
    else
        eie_sim_report_clear(&rep);
    return st;
}

eie_status_t eie_sim_run(eie_sim_t *sim, const float *input, float *output,
                         eie_sim_report_t *report_out, eie_error_t *err)
{
    eie_status_t st = EIE_STATUS_OK;
    eie_sim_report_t rep = {.params = sim->params, .steps = 1};
    scratch_t s = {0};
    if ((st = check_single(sim, err)) != EIE_STATUS_OK)
        goto done;
    if (sim->graph != NULL) {
        rep.total.pe_busy = calloc(sim->params.n_pes, sizeof *rep.total.pe_busy);
        if (rep.total.pe_busy == NULL)
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
        else if ((st = eie_sim_graph_run(sim->graph, &input, 1, &output, &rep, err)) ==
                 EIE_STATUS_OK)
            report_total(&rep);
        goto done;
    }
    s.xq = malloc(sim->max_dim * sizeof *s.xq);
    s.yq = malloc(sim->max_dim * sizeof *s.yq);
    s.xf = malloc(sim->max_dim * sizeof *s.xf);
    s.acc = malloc(sim->max_dim * sizeof *s.acc);
    s.bcast = malloc(((size_t)sim->max_dim + 1) * sizeof *s.bcast);
    rep.layers = calloc(sim->n_fcs + 1, sizeof *rep.layers);
    rep.total.pe_busy = calloc(sim->params.n_pes, sizeof *rep.total.pe_busy);
    if (!s.xq || !s.yq || !s.xf || !s.acc || !s.bcast || !rep.layers || !rep.total.pe_busy) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "eie-sim: out of memory running");
        goto done;
    }
    /* The running vector is either fixed point (xq in Q(frac)) or float (xf). */
    int fixed = 0, frac = 0;
    size_t dim = sim->in_dim;
    memcpy(s.xf, input, dim * sizeof(float));
    for (size_t k = 0; k < sim->n_steps; k++) {
        const step_t *stp = &sim->steps[k];
        if (stp->kind == STEP_FC) {
            const sim_fc_t *f = &sim->fcs[stp->fc];
            eie_sim_layer_report_t *lr = &rep.layers[rep.n_layers++];
            if (!fixed) {
                /* The host loads float activations into the register file in Q(in_frac). */
                for (size_t i = 0; i < dim; i++)
                    s.xq[i] = eie_fx_quantize(s.xf[i], f->in_frac, &lr->saturations);
            }
            if ((st = run_fc(sim, f, &s, lr, err)) != EIE_STATUS_OK)
                goto done;
            int16_t *t = s.xq;
            s.xq = s.yq;
            s.yq = t;
            dim = f->lay.rows;
            fixed = 1;
            frac = f->out_frac;
        } else if (stp->act == EIE_ACT_RELU && fixed) {
            for (size_t i = 0; i < dim; i++)
                s.xq[i] = s.xq[i] < 0 ? 0 : s.xq[i];
        } else {
            /* Not an FC layer: EIE computes FC layers only; the host (or a
             * lookup-table unit) evaluates this on the dequantised values. */
            if (fixed)
                for (size_t i = 0; i < dim; i++)
                    s.xf[i] = eie_fx_to_float(s.xq[i], frac);
            fixed = 0;
            act_float(stp->act, s.xf, dim);
        }
    }
    for (size_t i = 0; i < dim; i++)
        output[i] = fixed ? eie_fx_to_float(s.xq[i], frac) : s.xf[i];
    report_total(&rep);
done:
    free(s.xq);
    free(s.yq);
    free(s.xf);
    free(s.acc);
    free(s.bcast);
    if (st == EIE_STATUS_OK && report_out != NULL)
        *report_out = rep;
    else
        eie_sim_report_clear(&rep);
    return st;
}
