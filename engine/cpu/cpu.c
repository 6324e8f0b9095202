/*
 * cpu.c - the cpu backend: float accumulation over the per-PE compressed
 * layout, on a pool of PE threads created once per engine.
 *
 * A run goes layer by layer (EIE sec. III): every PE finds the nonzero input
 * activations itself (the LNZD broadcast, without the broadcast), walks
 * their columns in its own rows, accumulating into a private, cache-line-
 * aligned, compactly indexed buffer (no two PEs write one line), then adds
 * the bias, applies the activation and writes its rows; a barrier; the next
 * layer. Activations between layers are kept feature-major ([dim][S], S =
 * eie_cpu_batch_stride(B)) so a kernel reads a column's activations as one
 * vector; a batch's input, batch-major, is transposed to that form first.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act.h"
#include "backend.h"
#include "cpu/graph.h"
#include "cpu/kernels.h"
#include "pe/layout.h"
#include "pe/pool.h"
#include "format/format.h"

#define CACHE_LINE 64

typedef struct cpu_state {
    eie_pool_t *pool;
    unsigned n_pes;
    const eie_cpu_kernel_t *kernel;
    bool column_only; /* no row form (eie_engine_opts_t.cpu_column_only) */
    bool fused_b1;    /* the fused batch-1 row form may run (not cpu_batch_invariant) */
    bool one_layout;  /* no one-PE copy of a small sequence graph (cpu_one_layout) */
    char describe[96];                           /* eie_engine_describe */
    uint64_t max_layout_bytes, max_layout_ratio; /* eie_engine_opts_t; 0 = none */
} cpu_state_t;

enum { STEP_FC, STEP_ACT, STEP_SOFTMAX };

#define MAX_FUSED 8

typedef struct step {
    int kind;
    size_t fc;          /* STEP_FC: index into net->fcs */
    eie_act_t act;      /* STEP_ACT */
    eie_act_t fused[MAX_FUSED]; /* STEP_FC: element-wise activations applied on write */
    unsigned n_fused;
    /* STEP_FC: the input may be dense (the model's, or not a ReLU's output),
       and a batch-1 run may take the fused row form (kernels.h, rows_b1)
       unless the engine is batch-invariant */
    bool dense_in;
    uint32_t in_dim, out_dim;
} step_t;

/* Inputs of up to this many columns are transposed by each PE into its
 * own copy (1 MiB at 16 lanes, a Zen 5 core's L2; as EIE_ROW_SPAN_MIN_COLS,
 * layout.h), wider ones in shares of one copy: the memory a PE's copy takes
 * stays bounded whatever the input. */
#define XT_PRIVATE_MAX_COLS EIE_ROW_SPAN_MIN_COLS

typedef struct pe_scratch {
    float *acc;       /* max local rows * EIE_KERNEL_MAX_BATCH + EIE_ACC_SLACK, aligned */
    uint32_t *active; /* 2 x (max cols + EIE_ACTIVE_SLACK): a layer's active columns, and
                         past cols + EIE_ACTIVE_SLACK eie_cpu_split_pays's scratch */
    float *xt;        /* a batch's input, feature-major: in_dim * EIE_KERNEL_MAX_BATCH; its own
                         copy, or (xt_shared) PE 0's for all */
    uint64_t entries; /* entries this PE walked in the current job */
    char pad[CACHE_LINE];
} pe_scratch_t;

typedef struct cpu_net {
    cpu_state_t *s;
    unsigned n;
    step_t *steps;
    size_t n_steps;
    eie_cpu_fc_t *fcs;
    size_t n_fcs;
    uint32_t in_dim, out_dim;
    float *buf[2]; /* feature-major activations, max_dim * EIE_KERNEL_MAX_BATCH */
    pe_scratch_t *pe;
    float **acc; /* pe[q].acc for every PE q (eie_cpu_gather_share) */
    uint64_t nnz; /* all FC layers: what one input row costs at most */
    eie_cpu_graph_t *graph; /* a version-2 model: run by cpu/graph.c, the rest unused */
} cpu_net_t;

/* An input over XT_PRIVATE_MAX_COLS: the PEs share PE 0's copy, filled in shares. */
static bool xt_shared(const cpu_net_t *net)
{
    return net->in_dim > XT_PRIVATE_MAX_COLS;
}

/*
 * A run is split over the PEs only when each stretch between two barriers
 * (one per FC layer and 16-row chunk) holds at least this much work, in
 * batch-1 entry visits (~1 ns each): waking PEs and meeting at a barrier
 * costs microseconds, and on a loaded server the spinning PEs take cycles
 * from gRPC. Below it, one thread walks every PE's rows in turn (LeNet:
 * ~21k entries a row over 3 layers). A chunk of up to 16 rows costs about
 * twice one row (the batch kernels decode each entry once: 2.4x at 16 rows,
 * 1.6x at 4, measured on an Alex-7-sized layer). Results are identical
 * either way: each PE's rows are computed by the same kernel in the same
 * order.
 */
#define PARALLEL_MIN_WORK (1u << 15)

static bool job_is_parallel(const cpu_net_t *net, size_t batch)
{
    uint64_t chunks = (batch + EIE_KERNEL_MAX_BATCH - 1) / EIE_KERNEL_MAX_BATCH;
    uint64_t work = batch <= 1 ? net->nnz : net->nnz * 2 * chunks;
    uint64_t barriers = chunks * (net->n_fcs ? net->n_fcs : 1);
    return work >= PARALLEL_MIN_WORK * barriers;
}

typedef struct cpu_job {
    eie_pool_job_t base;
    cpu_net_t *net;
    const float *in;
    float *out;
    size_t batch;
    eie_run_done_fn done;
    void *user;
    uint64_t nonzero_acts;
    /* Sum of the PEs' entries, added as each PE's run() ends: finish may run
     * after the pool has started the next job, which reuses the net's
     * per-PE scratch. */
    _Atomic uint64_t entries;
} cpu_job_t;

static void *alloc_aligned(size_t n)
{
    void *p = NULL;
    n = (n + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    if (posix_memalign(&p, CACHE_LINE, n ? n : CACHE_LINE) != 0)
        return NULL;
    return p;
}

/* ---- engine ------------------------------------------------------------- */

static eie_status_t cpu_engine_init(const eie_engine_opts_t *opts, void **state_out,
                                    unsigned *n_pes_out, eie_error_t *err)
{
    unsigned n = opts->n_pes;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    const eie_cpu_kernel_t *kernel;
    eie_status_t st = eie_cpu_kernel_select(opts->cpu_kernel, &kernel, err);
    if (st != EIE_STATUS_OK)
        return st;
    cpu_state_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    s->n_pes = n;
    s->kernel = kernel;
    s->column_only = opts->cpu_column_only != 0;
    s->fused_b1 = opts->cpu_batch_invariant == 0;
    s->one_layout = opts->cpu_one_layout != 0;
    snprintf(s->describe, sizeof s->describe, "kernel %s%s%s%s", kernel->name,
             s->column_only ? ", column_only" : "", s->fused_b1 ? "" : ", batch_invariant",
             s->one_layout ? ", one_layout" : "");
    s->max_layout_bytes = opts->max_layout_bytes;
    s->max_layout_ratio = opts->max_layout_ratio;
    int rc = eie_pool_init(n, &s->pool);
    if (rc != 0) {
        free(s);
        return eie_error_set(err, EIE_STATUS_RESOURCE_EXHAUSTED,
                             "cpu: cannot start %u PE threads (error %d)", n, rc);
    }
    *state_out = s;
    *n_pes_out = n;
    return EIE_STATUS_OK;
}

static const char *cpu_engine_describe(const void *state)
{
    return ((const cpu_state_t *)state)->describe;
}

static void cpu_engine_free(void *state)
{
    cpu_state_t *s = state;
    eie_pool_free(s->pool);
    free(s);
}

/* ---- net preparation (load time) ---------------------------------------- */

static void cpu_net_free(void *netp)
{
    cpu_net_t *net = netp;
    if (net == NULL)
        return;
    eie_cpu_graph_free(net->graph);
    for (size_t i = 0; i < net->n_fcs; i++)
        eie_cpu_fc_clear(&net->fcs[i]);
    free(net->fcs);
    free(net->steps);
    free(net->buf[0]);
    free(net->buf[1]);
    if (net->pe != NULL)
        for (unsigned p = 0; p < net->n; p++) {
            free(net->pe[p].acc);
            free(net->pe[p].active);
            if (p == 0 || !xt_shared(net))
                free(net->pe[p].xt);
        }
    free(net->pe);
    free(net->acc);
    free(net);
}

/* The layout bytes a net of model may take (eie_engine_opts_t); UINT64_MAX = no limit. */
static uint64_t layout_limit(const cpu_state_t *s, const eie_model_t *model)
{
    uint64_t limit = s->max_layout_bytes ? s->max_layout_bytes : UINT64_MAX;
    if (s->max_layout_ratio != 0) {
        uint64_t file = eie_model_file_bytes(model);
        if (file < 256 * 1024)
            file = 256 * 1024;
        uint64_t by_file = file > UINT64_MAX / s->max_layout_ratio ? UINT64_MAX
                                                                   : file * s->max_layout_ratio;
        if (by_file < limit)
            limit = by_file;
    }
    return limit;
}

/* Refuses layer l of model before it is packed if the layout would outgrow the limit. */
static eie_status_t layout_fits(const cpu_state_t *s, const eie_model_t *model, size_t l,
                                const eie_fc_t *fc, bool rows, uint64_t used, eie_error_t *err)
{
    uint64_t limit = layout_limit(s, model);
    uint64_t need = eie_cpu_fc_layout_estimate(fc, s->n_pes, rows);
    if (used + need <= limit)
        return EIE_STATUS_OK;
    return eie_error_set(err, EIE_STATUS_LIMIT,
                         "cpu: layer %zu (%ux%u, %llu nonzeros) needs %llu layout bytes on %u "
                         "PEs; with the layers before it that is over the limit of %llu for "
                         "this %llu-byte file",
                         l, fc->rows, fc->cols, (unsigned long long)fc->nnz,
                         (unsigned long long)need, s->n_pes, (unsigned long long)limit,
                         (unsigned long long)eie_model_file_bytes(model));
}

/* Refuses a graph whose whole layout (estimated) would outgrow the limit. */
static eie_status_t layout_fits_total(const cpu_state_t *s, const eie_model_t *model,
                                      uint64_t need, eie_error_t *err)
{
    uint64_t limit = layout_limit(s, model);
    if (need <= limit)
        return EIE_STATUS_OK;
    return eie_error_set(err, EIE_STATUS_LIMIT,
                         "cpu: the graph's layers need %llu layout bytes on %u PEs, over the "
                         "limit of %llu for this %llu-byte file",
                         (unsigned long long)need, s->n_pes, (unsigned long long)limit,
                         (unsigned long long)eie_model_file_bytes(model));
}

static eie_status_t cpu_net_init(void *state, const eie_model_t *model, void **net_out,
                                 uint64_t *layout_bytes_out, eie_error_t *err)
{
    cpu_state_t *s = state;
    eie_status_t st = EIE_STATUS_OK;
    size_t nl = eie_model_layer_count(model);
    cpu_net_t *net = calloc(1, sizeof *net);
    if (net == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    net->s = s;
    net->n = s->n_pes;
    if (eie_model_format_version(model) == EIE_FORMAT_VERSION_GRAPH) {
        /* The same limit as for a chain, before anything is packed: a grouped
         * convolution keeps a per-PE layout per group, exact storage keeps a
         * float per nonzero besides the entry. */
        uint64_t need = 0, rows_need = 0;
        for (size_t l = 0; l < nl; l++) {
            const eie_fc_t *fc = eie_model_fc(model, l);
            if (fc == NULL)
                continue;
            eie_layer_info_t li;
            eie_model_layer_info(model, l, &li);
            uint64_t groups = li.kind == EIE_LAYER_CONV2D && li.conv.groups > 1 ? li.conv.groups : 1;
            uint64_t extra = li.storage == EIE_STORAGE_EXACT ? fc->nnz * sizeof(float) : 0;
            if ((st = layout_fits(s, model, l, fc, false, need, err)) != EIE_STATUS_OK)
                goto error;
            need += groups * eie_cpu_fc_layout_estimate(fc, s->n_pes, 0) + extra;
            if (li.storage != EIE_STORAGE_EXACT)
                rows_need += groups * (eie_cpu_fc_layout_estimate(fc, s->n_pes, 1) -
                                       eie_cpu_fc_layout_estimate(fc, s->n_pes, 0));
        }
        if ((st = layout_fits_total(s, model, need, err)) != EIE_STATUS_OK)
            goto error;
        /* Every shared-weight layer keeps the row form too (graph.c), as in a
         * chain, where the limit allows it for the whole graph. */
        int rows = !s->column_only && need + rows_need <= layout_limit(s, model);
        /* a one-PE copy where it may be made (graph.c) and both fit */
        bool one_pe_copy =
            !s->one_layout && need + (rows ? rows_need : 0) <= layout_limit(s, model) / 2;
        if ((st = eie_cpu_graph_init(model, s->n_pes, s->kernel, rows, s->fused_b1, one_pe_copy,
                                     &net->graph, layout_bytes_out, err)) != EIE_STATUS_OK)
            goto error;
        *net_out = net;
        return EIE_STATUS_OK;
    }
    net->in_dim = eie_model_input_dim(model);
    net->out_dim = eie_model_output_dim(model);
    net->steps = calloc(nl, sizeof *net->steps);
    net->fcs = calloc(nl, sizeof *net->fcs);
    net->pe = alloc_aligned(net->n * sizeof *net->pe);
    if (!net->steps || !net->fcs || !net->pe)
        goto nomem;
    memset(net->pe, 0, net->n * sizeof *net->pe);
    uint32_t dim = net->in_dim, max_dim = dim, max_cols = 1, max_local = 1;
    uint64_t bytes = 0;
    /* A ReLU's output is sparse (EIE's premise); the model's input and other
     * activations' outputs may be dense. */
    bool after_relu = false;
    /* The row form serves batches on every layer, and batch 1 on layers
     * whose input is dense (layout.h); where the net would outgrow the
     * layout limit with it, every layer keeps the column form alone. */
    bool rows = !s->column_only;
    uint64_t with_rows = 0;
    for (size_t l = 0; rows && l < nl; l++)
        if (eie_model_fc(model, l) != NULL)
            with_rows += eie_cpu_fc_layout_estimate(eie_model_fc(model, l), s->n_pes, 1);
    if (with_rows > layout_limit(s, model))
        rows = false;
    for (size_t l = 0; l < nl; l++) {
        const eie_fc_t *fc = eie_model_fc(model, l);
        eie_layer_info_t li;
        eie_model_layer_info(model, l, &li);
        step_t *prev = net->n_steps ? &net->steps[net->n_steps - 1] : NULL;
        if (fc != NULL) {
            eie_cpu_fc_t *cf = &net->fcs[net->n_fcs];
            if ((st = layout_fits(s, model, l, fc, rows, bytes, err)) != EIE_STATUS_OK)
                goto error;
            if ((st = eie_cpu_fc_init(fc, net->n, 0, rows, cf, err)) != EIE_STATUS_OK)
                goto error;
            net->n_fcs++;
            bytes += cf->layout_bytes;
            net->nnz += cf->nnz;
            step_t *stp = &net->steps[net->n_steps++];
            stp->kind = STEP_FC;
            stp->fc = net->n_fcs - 1;
            stp->dense_in = !after_relu && s->fused_b1;
            stp->in_dim = fc->cols;
            stp->out_dim = fc->rows;
            dim = fc->rows;
            if (fc->cols > max_cols)
                max_cols = fc->cols;
            if (cf->pe[0].n_rows > max_local)
                max_local = cf->pe[0].n_rows;
        } else if (li.act != EIE_ACT_SOFTMAX && prev != NULL && prev->kind == STEP_FC &&
                   prev->n_fused < MAX_FUSED) {
            /* Element-wise activations fuse into the FC's write-out. */
            prev->fused[prev->n_fused++] = li.act;
        } else {
            step_t *stp = &net->steps[net->n_steps++];
            stp->kind = li.act == EIE_ACT_SOFTMAX ? STEP_SOFTMAX : STEP_ACT;
            stp->act = li.act;
            stp->in_dim = stp->out_dim = dim;
        }
        after_relu = fc == NULL && li.act == EIE_ACT_RELU;
        if (dim > max_dim)
            max_dim = dim;
    }
    /* zeroed: lanes past a batch's B are read (kernels.h) before any run
     * wrote them */
    size_t buf_bytes = (size_t)max_dim * EIE_KERNEL_MAX_BATCH * sizeof(float);
    for (int k = 0; k < 2; k++)
        if ((net->buf[k] = alloc_aligned(buf_bytes)) == NULL)
            goto nomem;
    memset(net->buf[0], 0, buf_bytes);
    memset(net->buf[1], 0, buf_bytes);
    if ((net->acc = malloc(net->n * sizeof *net->acc)) == NULL)
        goto nomem;
    /* zeroed, as buf: the lanes past B are read */
    size_t xt_bytes = (size_t)net->in_dim * EIE_KERNEL_MAX_BATCH * sizeof(float);
    for (unsigned p = 0; p < net->n; p++) {
        net->pe[p].acc = alloc_aligned(((size_t)max_local * EIE_KERNEL_MAX_BATCH + EIE_ACC_SLACK) *
                                       sizeof(float));
        net->pe[p].active =
            alloc_aligned(2 * ((size_t)max_cols + EIE_ACTIVE_SLACK) * sizeof(uint32_t));
        if (p == 0 || !xt_shared(net)) {
            if ((net->pe[p].xt = alloc_aligned(xt_bytes)) != NULL)
                memset(net->pe[p].xt, 0, xt_bytes);
        } else {
            net->pe[p].xt = net->pe[0].xt;
        }
        if (!net->pe[p].acc || !net->pe[p].active || !net->pe[p].xt)
            goto nomem;
        net->acc[p] = net->pe[p].acc;
    }
    *layout_bytes_out = bytes;
    *net_out = net;
    return EIE_STATUS_OK;
nomem:
    st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory preparing the net");
error:
    cpu_net_free(net);
    return st;
}

/* ---- running ------------------------------------------------------------ */

/* A view of activations: element (i, b) at p[i * si + b * sb]. */
typedef struct view {
    float *p;
    size_t si, sb;
} view_t;

#define OUT_BLOCK 16u

/* The bias into a PE's sums in place: row r's S lanes at acc + r S, its
 * bias every N floats (rows interleave over the PEs). */
static void bias_into_acc(float *acc, const float *bias, uint32_t n_rows, size_t S, unsigned N)
{
    for (uint32_t r = 0; r < n_rows; r++) {
        float *a = acc + (size_t)r * S, bv = bias[(size_t)r * N];
        for (size_t b = 0; b < S; b++)
            a[b] += bv;
    }
}

/* A step's fused activations over n contiguous values, through the
 * variant's vector loop (kernels.h, act_n): eie_act_apply1's bits. */
static void fused_acts(const eie_cpu_kernel_t *k, const step_t *stp, float *x, size_t n)
{
    for (unsigned f = 0; f < stp->n_fused; f++)
        k->act_n(stp->fused[f], x, x, n);
}

static void run_fc(cpu_job_t *job, const step_t *stp, unsigned pe, view_t in, view_t out,
                   size_t B)
{
    cpu_net_t *net = job->net;
    const eie_cpu_fc_t *cf = &net->fcs[stp->fc];
    const eie_pe_layer_t *L = &cf->pe[pe];
    pe_scratch_t *sc = &net->pe[pe];
    /* EIE sec. III-A: only nonzero activations are broadcast. A column is
     * skipped when all B inputs are zero there. */
    const eie_cpu_kernel_t *k = net->s->kernel;
    size_t n_active = k->active(in.p, cf->cols, in.si, in.sb, B, sc->active);
    if (pe == 0)
        job->nonzero_acts += n_active;
    float *acc = sc->acc;
    size_t S = eie_cpu_batch_stride(B);
    /* the batch row form: a batch read feature-major, most columns active */
    bool batch_rows = B > 1 && in.si == S && in.sb == 1 && (L->rent || L->rentw) &&
                      eie_cpu_rows_pay(S, n_active, cf->cols, cf->rows);
    if (B == 1 && stp->dense_in && in.si == 1 && eie_cpu_rows_b1_fits(L) &&
        eie_cpu_rows_pay(1, n_active, cf->cols, cf->rows)) {
        /* Nearly every activation nonzero: skipping would save at most an
         * eighth of the work, and the row form computes each row's sum
         * without an accumulator store per entry (unless the layer has
         * twice as many rows as columns: kernels.c, eie_cpu_rows_pay). Only
         * where the input may be dense: this form fuses its multiply-adds,
         * and after a ReLU a batch-1 run keeps the bits of the same row in a
         * batch (everywhere with cpu_batch_invariant). */
        sc->entries += k->rows_b1(L, cf->codebook, in.p, acc);
    } else if (eie_cpu_split_pays(k, cf, L, in.p, in.si, in.sb, B, n_active, batch_rows,
                                  sc->active + cf->cols + EIE_ACTIVE_SLACK)) {
        sc->entries += eie_cpu_run_split(k, cf, L, in.p, in.si, in.sb, B, sc->active, acc);
    } else if (batch_rows) {
        sc->entries += k->rows_batch(L, cf->codebook, in.p, B, acc);
    } else {
        memset(acc, 0, (size_t)L->n_rows * S * sizeof(float));
        sc->entries += eie_cpu_spmv(k, cf, L, sc->active, n_active, in.p, in.si, in.sb, B, acc);
    }
    /* Into a feature-major output a row's B values are contiguous. Into a
     * batch-major one they go dim floats apart, and with a power-of-two dim
     * they all fall in one L1 set: sixteen rows at a time, input by input
     * (VGG-7-sized, batch 16, 1 PE: 49 us against 160 row by row, a third
     * of the run). The fused activations run apart from the bias loop, so
     * that it stays plain loads, adds and stores (NT-Wd-sized, 140k
     * outputs: about 0.75 ns an output with them in the loop), over
     * contiguous values through the variant's act_n (4096 values, avx512:
     * sigmoid 1.3 us against 17.9 one at a time): over acc with the bias
     * added in place, before the copy out, except at one PE and batch 1,
     * whose output is itself contiguous. */
    unsigned N = net->n;
    const float *bias = cf->bias + pe;
    if (out.p == NULL) {
        /* staged: the results stay in acc, a row's lanes one vector (gathered out) */
        bias_into_acc(acc, bias, L->n_rows, S, N);
        fused_acts(k, stp, acc, (size_t)L->n_rows * S);
        return;
    }
    if (N == 1 && out.si == 1 && B > 1) {
        /* batch-major, one PE: the rows are contiguous, so sixteen at a
         * time go out through the variant's transpose (AVX-512: in
         * registers; NT-Wd-sized, batch 16: 140k outputs, a fifth of the
         * run as scalar moves), the bias added in place first */
        for (uint32_t r0 = 0; r0 < L->n_rows; r0 += OUT_BLOCK) {
            uint32_t nr = L->n_rows - r0 < OUT_BLOCK ? L->n_rows - r0 : OUT_BLOCK;
            const float *rows[OUT_BLOCK];
            for (uint32_t r = 0; r < nr; r++) {
                float *a = acc + (size_t)(r0 + r) * S, bv = bias[r0 + r];
                for (size_t b = 0; b < B; b++)
                    a[b] += bv;
                rows[r] = a;
            }
            fused_acts(k, stp, acc + (size_t)r0 * S, (size_t)nr * S);
            k->transpose16(rows, nr, B, out.p + r0, out.sb);
        }
        return;
    }
    if (N == 1 && B == 1) {
        /* One PE at batch 1: acc, bias and output are plain vectors, in a
         * loop the compiler vectorizes (the strided loop below took 6.5 us
         * of NT-Wd's 193 for its 8791 outputs). */
        float *o = out.p;
        for (uint32_t r = 0; r < L->n_rows; r++)
            o[r] = acc[r] + bias[r];
        fused_acts(k, stp, o, L->n_rows);
        return;
    }
    /* With fused activations, the bias and they go over acc, contiguous,
     * before the strided copy; without, the copy adds the bias. */
    bool in_acc = stp->n_fused > 0;
    if (in_acc) {
        bias_into_acc(acc, bias, L->n_rows, S, N);
        fused_acts(k, stp, acc, (size_t)L->n_rows * S);
    }
    uint32_t block = out.sb == 1 ? 1 : OUT_BLOCK;
    for (uint32_t r0 = 0; r0 < L->n_rows; r0 += block) {
        uint32_t nr = L->n_rows - r0 < block ? L->n_rows - r0 : block;
        for (size_t b = 0; b < B; b++) {
            const float *a = acc + (size_t)r0 * S + b;
            float *o = out.p + ((size_t)r0 * N + pe) * out.si + b * out.sb;
            size_t os = N * out.si;
            if (in_acc) {
                for (uint32_t r = 0; r < nr; r++)
                    o[r * os] = a[r * S];
            } else {
                const float *bi = bias + (size_t)r0 * N;
                for (uint32_t r = 0; r < nr; r++)
                    o[r * os] = a[r * S] + bi[(size_t)r * N];
            }
        }
    }
}

static void run_act(const step_t *stp, unsigned pe, unsigned N, view_t in, view_t out, size_t B)
{
    if (stp->kind == STEP_ACT) {
        for (size_t i = pe; i < stp->out_dim; i += N)
            for (size_t b = 0; b < B; b++)
                out.p[i * out.si + b * out.sb] =
                    eie_act_apply1(stp->act, in.p[i * in.si + b * in.sb]);
        return;
    }
    /* Softmax needs a whole vector: PE p takes inputs b = p mod N. */
    for (size_t b = pe; b < B; b += N) {
        for (size_t i = 0; i < stp->out_dim; i++)
            out.p[i * out.si + b * out.sb] = in.p[i * in.si + b * in.sb];
        eie_act_softmax(out.p + b * out.sb, stp->out_dim, out.si);
    }
}

/*
 * Runs PEs p0..p1-1 through every chunk of the job and every step of the
 * net. With a pool, this is one PE's share and the PEs meet at a barrier
 * after each step; without one, a single thread walks every PE in turn.
 */
static void run_steps(cpu_job_t *job, unsigned p0, unsigned p1, eie_pool_t *pool)
{
    cpu_net_t *net = job->net;
    for (size_t s0 = 0; s0 < job->batch; s0 += EIE_KERNEL_MAX_BATCH) {
        size_t B = job->batch - s0 < EIE_KERNEL_MAX_BATCH ? job->batch - s0
                                                           : EIE_KERNEL_MAX_BATCH;
        size_t S = eie_cpu_batch_stride(B);
        if (pool != NULL && s0 > 0)
            eie_pool_barrier(pool); /* the previous chunk still reads the buffers */
        view_t x = {(float *)job->in + s0 * net->in_dim, 1, net->in_dim};
        if (B > 1 && net->n_steps > 0 && net->steps[0].kind == STEP_FC) {
            /* The batch-major input to [col][S], so that every kernel reads
             * a column as one vector: each PE the whole into its own copy
             * (one thread running every PE, once). Shares of one copy met
             * at a barrier and wrote lines the other PE had read the run
             * before: NT-We at batch 16 on 2 PEs, 18 us a share against
             * 6 for the whole on one. Past XT_PRIVATE_MAX_COLS the copies
             * would cost each PE more memory than its L2 holds, so there
             * the PEs still share one. */
            float *xt = net->pe[p0].xt;
            if (xt_shared(net)) {
                eie_cpu_transpose_share(net->s->kernel, x.p, net->in_dim, B, S, p0, p1, net->n,
                                        xt);
                if (pool != NULL)
                    eie_pool_barrier(pool);
            } else {
                eie_cpu_transpose_share(net->s->kernel, x.p, net->in_dim, B, S, 0, 1, 1, xt);
            }
            x = (view_t){xt, S, 1};
        }
        for (size_t k = 0; k < net->n_steps; k++) {
            const step_t *stp = &net->steps[k];
            bool last = k + 1 == net->n_steps;
            /* The PEs' rows interleave (row i on PE i mod N), so into the
             * batch-major output two PEs would write every cache line of it,
             * and neighbouring lines of a feature-major one (NT-Wd-sized,
             * batch 16, 2 PEs: 778 us against 342 on one). A pooled batch's
             * last fc leaves its results in each PE's accumulators, and
             * after a barrier the PEs copy contiguous shares out. At batch
             * 1 the barrier and the copy cost more than the shared lines:
             * staged, NT-LSTM-sized on 2 PEs took 72-78 us against 62-68,
             * NT-We-sized 59-62 against 50-53 (builds alternating). */
            bool stage = last && pool != NULL && net->n > 1 && B > 1 && stp->kind == STEP_FC;
            view_t in, out;
            if (k == 0)
                in = x;
            else
                in = (view_t){net->buf[(k - 1) & 1], S, 1};
            if (stage)
                out = (view_t){NULL, 0, 0};
            else if (last)
                out = (view_t){job->out + s0 * net->out_dim, 1, net->out_dim};
            else
                out = (view_t){net->buf[k & 1], S, 1};
            for (unsigned p = p0; p < p1; p++) {
                if (stp->kind == STEP_FC)
                    run_fc(job, stp, p, in, out, B);
                else
                    run_act(stp, p, net->n, in, out, B);
            }
            if (pool != NULL && (!last || stage))
                eie_pool_barrier(pool);
            if (stage)
                eie_cpu_gather_share(net->s->kernel, net->acc, net->n, net->out_dim, B, S, p0, p1,
                                     job->out + s0 * net->out_dim);
        }
    }
}

static void job_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    cpu_job_t *job = (cpu_job_t *)base;
    cpu_net_t *net = job->net;
    net->pe[pe].entries = 0;
    run_steps(job, pe, pe + 1, pool);
    /* The pool's completion count orders this before finish (acq_rel). */
    atomic_fetch_add_explicit(&job->entries, net->pe[pe].entries, memory_order_relaxed);
}

/* The whole job on one thread: every PE in turn, no barriers. */
static void job_run_serial(eie_pool_job_t *base, unsigned slot, eie_pool_t *pool)
{
    cpu_job_t *job = (cpu_job_t *)base;
    cpu_net_t *net = job->net;
    (void)slot;
    (void)pool;
    for (unsigned p = 0; p < net->n; p++)
        net->pe[p].entries = 0;
    run_steps(job, 0, net->n, NULL);
    uint64_t entries = 0;
    for (unsigned p = 0; p < net->n; p++)
        entries += net->pe[p].entries;
    atomic_fetch_add_explicit(&job->entries, entries, memory_order_relaxed);
}

/* Chooses between the PE-parallel and the one-thread form of a run. */
static void job_shape(cpu_job_t *job)
{
    bool serial = job->net->n > 1 && !job_is_parallel(job->net, job->batch);
    job->base.run = serial ? job_run_serial : job_run;
    job->base.slots = serial ? 1 : 0;
}

static void job_finish(eie_pool_job_t *base)
{
    cpu_job_t *job = (cpu_job_t *)base;
    eie_run_info_t info = {
        .nonzero_acts = job->nonzero_acts,
        .entries = atomic_load_explicit(&job->entries, memory_order_relaxed),
        .pe_busy_max_ns = atomic_load_explicit(&job->base.busy_max_ns, memory_order_relaxed),
        .pe_busy_min_ns = atomic_load_explicit(&job->base.busy_min_ns, memory_order_relaxed)};
    eie_run_done_fn done = job->done;
    void *user = job->user;
    free(job);
    done(user, EIE_STATUS_OK, &info, NULL);
}

/* A job for one run, shaped (parallel or one-thread); NULL when out of memory. */
static cpu_job_t *job_new(void *netp, const float *input, size_t batch, float *output,
                          eie_run_done_fn done, void *user)
{
    cpu_job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->base.finish = job_finish;
    job->net = netp;
    job->in = input;
    job->out = output;
    job->batch = batch;
    job->done = done;
    job->user = user;
    job_shape(job);
    return job;
}

static eie_status_t cpu_net_submit(void *state, void *netp, const float *input, size_t batch,
                                   float *output, eie_run_done_fn done, void *user,
                                   eie_error_t *err)
{
    cpu_state_t *s = state;
    cpu_net_t *net = netp;
    if (net->graph != NULL)
        return eie_cpu_graph_submit(s->pool, net->graph, &input, batch, &output, done, user, 0,
                                    err);
    cpu_job_t *job = job_new(netp, input, batch, output, done, user);
    if (job == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory queueing a run");
    eie_pool_submit(s->pool, &job->base);
    return EIE_STATUS_OK;
}

/* The synchronous run: the caller works as one of the PEs when the pool is
 * idle (no wake-up of a sleeping thread on the critical path, and with one
 * PE no hand-off at all), then waits for the other PEs' share. Having done
 * its share, it spins a while before sleeping: with balanced rows the
 * others end within microseconds, sooner than a condition-variable wake-up
 * (tens of microseconds on a VM, where the sleeping vCPU must be woken). */
static eie_status_t cpu_net_run(void *state, void *netp, const float *input, size_t batch,
                                float *output, eie_run_info_t *info_out, eie_error_t *err)
{
    cpu_state_t *s = state;
    eie_waiter_t w;
    cpu_net_t *net = netp;
    if (net->graph != NULL) {
        eie_waiter_init(&w);
        eie_status_t st = eie_cpu_graph_submit(s->pool, net->graph, &input, batch, &output,
                                               eie_waiter_done, &w, 1, err);
        if (st != EIE_STATUS_OK)
            eie_waiter_done(&w, st, NULL, err);
        return eie_waiter_wait(&w, 8 * eie_pool_spin(s->pool), info_out, err);
    }
    cpu_job_t *job = job_new(netp, input, batch, output, eie_waiter_done, &w);
    if (job == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory queueing a run");
    eie_waiter_init(&w);
    eie_pool_submit_join(s->pool, &job->base);
    return eie_waiter_wait(&w, 8 * eie_pool_spin(s->pool), info_out, err);
}

/* Several inputs/outputs: graphs only (a version-1 chain has one of each). */
static eie_status_t cpu_net_submit_multi(void *state, void *netp, const float *const *inputs,
                                         size_t batch, float *const *outputs,
                                         eie_run_done_fn done, void *user, eie_error_t *err)
{
    cpu_state_t *s = state;
    cpu_net_t *net = netp;
    if (net->graph != NULL)
        return eie_cpu_graph_submit(s->pool, net->graph, inputs, batch, outputs, done, user, 0,
                                    err);
    return cpu_net_submit(state, netp, inputs[0], batch, outputs[0], done, user, err);
}

static eie_status_t cpu_net_run_multi(void *state, void *netp, const float *const *inputs,
                                      size_t batch, float *const *outputs,
                                      eie_run_info_t *info_out, eie_error_t *err)
{
    cpu_state_t *s = state;
    cpu_net_t *net = netp;
    if (net->graph == NULL)
        return cpu_net_run(state, netp, inputs[0], batch, outputs[0], info_out, err);
    eie_waiter_t w;
    eie_waiter_init(&w);
    eie_status_t st = eie_cpu_graph_submit(s->pool, net->graph, inputs, batch, outputs,
                                           eie_waiter_done, &w, 1, err);
    if (st != EIE_STATUS_OK)
        eie_waiter_done(&w, st, NULL, err);
    return eie_waiter_wait(&w, 8 * eie_pool_spin(s->pool), info_out, err);
}

static const eie_backend_option_t cpu_options[] = {
    {"kernel", EIE_OPTION_STRING, "", 0, 0,
     "kernel variant: scalar, avx2 or avx512; empty: EIE_KERNEL, else the fastest this CPU runs",
     offsetof(eie_engine_opts_t, cpu_kernel)},
    {"column_only", EIE_OPTION_BOOL, "false", 0, 0,
     "keep only the column form, also for layers whose input may be dense (less memory, "
     "slower batch-1 runs on dense activations)",
     offsetof(eie_engine_opts_t, cpu_column_only)},
    {"batch_invariant", EIE_OPTION_BOOL, "false", 0, 0,
     "a sample's outputs are the same bits in any batch: batch-1 runs on dense inputs take the "
     "column walk, not the faster row form that fuses its multiply-adds",
     offsetof(eie_engine_opts_t, cpu_batch_invariant)},
    {"one_layout", EIE_OPTION_BOOL, "false", 0, 0,
     "one layout per net: no one-PE copy of a small graph with an lstm node, whose runs too "
     "small for the PE pool then walk the PEs' layout on one thread (less memory, slower)",
     offsetof(eie_engine_opts_t, cpu_one_layout)},
    {"max_layout_bytes", EIE_OPTION_UINT64, "0", 0, 1e15,
     "refuse a net whose run-time layout needs more bytes; 0: no limit",
     offsetof(eie_engine_opts_t, max_layout_bytes)},
    {"max_layout_ratio", EIE_OPTION_UINT64, "0", 0, 1e6,
     "refuse a layout over this many times the file's bytes (a file counts as 256 KiB at "
     "least); 0: no limit",
     offsetof(eie_engine_opts_t, max_layout_ratio)},
};

/* Several sequences in one run: graphs only (a chain has no lstm node). */
static eie_status_t cpu_net_submit_sequences(void *state, void *netp, const float *const *inputs,
                                             size_t n_seq, size_t steps, const size_t *lengths,
                                             float *const *outputs, eie_run_done_fn done,
                                             void *user, eie_error_t *err)
{
    cpu_state_t *s = state;
    cpu_net_t *net = netp;
    return eie_cpu_graph_submit_sequences(s->pool, net->graph, inputs, n_seq, steps, lengths,
                                          outputs, done, user, 0, err);
}

/* The synchronous form, as cpu_net_run_multi: the caller takes a PE slot. */
static eie_status_t cpu_net_run_sequences(void *state, void *netp, const float *const *inputs,
                                          size_t n_seq, size_t steps, const size_t *lengths,
                                          float *const *outputs, eie_run_info_t *info_out,
                                          eie_error_t *err)
{
    cpu_state_t *s = state;
    cpu_net_t *net = netp;
    eie_waiter_t w;
    eie_waiter_init(&w);
    eie_status_t st = eie_cpu_graph_submit_sequences(s->pool, net->graph, inputs, n_seq, steps,
                                                     lengths, outputs, eie_waiter_done, &w, 1,
                                                     err);
    if (st != EIE_STATUS_OK)
        eie_waiter_done(&w, st, NULL, err);
    return eie_waiter_wait(&w, 8 * eie_pool_spin(s->pool), info_out, err);
}

static size_t cpu_net_max_sequences(const void *netp)
{
    const cpu_net_t *net = netp;
    return net->graph != NULL ? eie_cpu_graph_max_sequences(net->graph) : 1;
}

const eie_backend_t eie_backend_cpu = {
    .name = "cpu",
    .options = cpu_options,
    .n_options = sizeof cpu_options / sizeof cpu_options[0],
    .tolerance = 1e-5f,
    .engine_init = cpu_engine_init,
    .engine_free = cpu_engine_free,
    .engine_describe = cpu_engine_describe,
    .net_init = cpu_net_init,
    .net_free = cpu_net_free,
    .net_submit = cpu_net_submit,
    .net_run = cpu_net_run,
    .net_submit_multi = cpu_net_submit_multi,
    .net_run_multi = cpu_net_run_multi,
    .net_submit_sequences = cpu_net_submit_sequences,
    .net_run_sequences = cpu_net_run_sequences,
    .net_max_sequences = cpu_net_max_sequences,
};
