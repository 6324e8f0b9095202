/*
 * graph.c - running a version-2 graph on the cpu backend.
 *
 * Nodes run in the file's (topological) order; all PEs take part in each
 * node and meet at a barrier after it. Tensors live in per-net buffers of a
 * chunk of up to EIE_KERNEL_MAX_BATCH samples, each sample row-major.
 *
 * Sparse nodes run on the compressed weights, never expanded:
 *  - fc: as in the chain path, row i on PE i mod N (EIE sec. III-B), the B
 *    samples of a chunk through the batch kernels;
 *  - conv2d: the weight matrix Cout x (C/groups*kh*kw) is an fc matrix whose
 *    rows (output channels) are interleaved over the PEs the same way,
 *    channel i on PE i mod N (a group is packed as its own matrix of
 *    Cout/groups rows; eie_cpu_group_slot picks each PE's part of it). The
 *    input is lowered to patches (im2col) a tile of output positions at a
 *    time, 16 positions to a block stored column-major ([col][16]), so one
 *    kernel call applies the matrix to 16 positions as the batch kernels do
 *    to 16 samples: each entry is decoded once per block, and a column whose
 *    16 patch values are all zero (a ReLU's zeros, the padding) is skipped
 *    (EIE sec. III-A, the LNZD, at block granularity).
 *    Where a sixteenth or more of a sample's input is nonzero, few blocks
 *    would have a zero column, and the convolution runs direct instead
 *    (the conv form, kernels.h): the input is padded and split by stride
 *    phase once (conv_phases), so that the activations an entry meets at
 *    32 consecutive output positions are 32 consecutive floats at an
 *    offset fixed per column, which the entry holds in place of its column
 *    (as in Park et al., ICLR 2017, direct sparse convolution). No patch
 *    matrix is built, and each output channel's 32 sums stay in registers.
 *    Positions run over the phase image's full width, Wq >= Wo, and the
 *    lanes past Wo are dropped; every load is aligned (shifted copies of
 *    the phased input, conv_direct_prep), and a row is walked a span of
 *    input channels at a time so that a block's reads stay in L1. Both ways
 *    a row sums its entries in column order with rounded products: the
 *    same bits (kernels.h).
 * The PE that lowers a block also finds its nonzero columns, once for all
 * PEs. Every row sums its entries in increasing column order whatever N is,
 * so results are bit-identical on any number of PEs.
 *
 * Pooling, add, concat, reshape and activations are plain loops, split over
 * the PEs by channel or element range.
 */
#include "cpu/graph.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act.h"
#include "backend.h"
#include "cpu/exact.h"
#include "pe/layout.h"
#include "format/format.h"
#include "graph_ops.h"

#define CACHE_LINE 64
/* Floats of one im2col tile (4 MiB): a tile of an early, wide layer stays in L2/L3. */
#define TILE_FLOATS (1u << 20)
/* Floats of all tensor buffers of a net, which bounds the samples of a chunk. */
#define CHUNK_FLOATS (1u << 24)
/* See cpu.c: below this many entry visits per barrier, one thread runs it all. */
#define PARALLEL_MIN_WORK (1u << 15)
#define BLK 16u /* output positions per kernel call */
/* Lanes of an LSTM that one run of several sequences takes at most
 * (eie_net_submit_sequences): the batch kernels' width, so a step of 16
 * one-lane sequences is one kernel call per PE. */
#define SEQ_LANES 16u

typedef struct gnode {
    eie_layer_kind_t kind;
    eie_act_t act;
    int32_t axis;
    eie_conv2d_params_t conv;
    eie_pool2d_params_t pool;
    uint32_t n_inputs;
    uint32_t *inputs;
    uint32_t output;
    /* FC, CONV2D: one matrix per group, rows_g rows each */
    bool exact;
    bool dense_in; /* FC, LSTM: the input may be dense (not a ReLU's output), and a
                      batch-1 run may take the fused row form (not batch-invariant) */
    uint32_t groups, rows_g, cols;
    eie_cpu_fc_t *sh;
    eie_cpu_exact_t *ex;
    float *bias; /* all rows; an LSTM's PE by PE, PE p's local rows from p x rows / N */
    uint32_t tile; /* CONV2D: output positions per tile, a multiple of BLK */
    /* CONV2D with the conv form (sh[q].pe[p].rentw holds off << 8 | code) */
    bool direct;
    uint32_t Hq, Wq;    /* a phase image (Wq a multiple of 16) */
    uint32_t n_copies;  /* of the phased input, copy s shifted by s floats */
    size_t copy_floats; /* each copy's floats, a multiple of 16 */
    bool own_xq;        /* on several threads each PE phases the whole input into
                           a copy of its own (conv_phases) */
    uint32_t n_spans;   /* spans of input channels a row is walked in (conv_direct_prep) */
    uint32_t **span;    /* per group q and slot v: span t of row r starts at
                           span[q * n + v][t * rows + r], t = 0 .. n_spans */
    /* LSTM: the matrix laid out by units (eie_fc_lstm_rows), state carried over steps */
    uint32_t hidden, lanes;
    uint32_t seq_cap;  /* sequences a run takes side by side: SEQ_LANES / lanes, at least 1 */
    /* Below, "all lanes" is seq_cap x lanes lanes, sequence by sequence. The
       state is kept PE by PE (state_at): unit j = p + k N is PE p's unit k,
       and PE p's units of every lane lie in a block of its own, unit_stride
       (ceil(H / N) rounded up to a cache line) floats a lane. A PE then writes
       only cache lines of its own. With units interleaved across the PEs, as
       their rows are, both PEs wrote every line of h, c and y each step, and
       the final state was copied by one: NT-LSTM's step on two PEs spent
       12-26k cycles a PE outside its matrix walk, against 3k on one, and
       took 67-70 us at batch 1 and 364-427 at 16 lanes; kept PE by PE,
       56-58 and 119-121 (eie-bench --lstm, builds alternating). h_t is read
       whole by every PE at the next step; y_t and the final state are
       written in unit order from it, each PE a share (lstm_out). */
    float *h[2];       /* h_{t-1} and h_t by step parity, N x all lanes x unit_stride */
    float *c;          /* N x all lanes x unit_stride; a PE's block touched by it alone */
    uint32_t unit_stride;
    float *h0, *c0;    /* the stored initial state, copied for every sequence, or NULL:
                          all lanes x H in unit order, as a fed state */
    uint32_t init_in[2];  /* graph inputs giving h0, c0 each run, or UINT32_MAX */
    float *zeros;      /* all lanes x H zeros: h_{-1} when none is stored */
} gnode_t;

typedef struct gtensor {
    eie_shape_t shape;
    size_t numel;  /* one sample */
    float *buf;    /* numel * chunk; NULL for graph inputs (read in place) */
    int input;     /* graph input index, or -1 */
    int output;    /* graph output index when written in place (the caller's buffer), or -1 */
} gtensor_t;

typedef struct gpe {
    float *acc;       /* max local rows * EIE_CONV_LANES (>= BLK) + EIE_ACC_SLACK */
    float *z;         /* up to BLK lanes feature-major (col * S + b), BLK x max cols: an
                         LSTM's [x_t, h_{t-1}], an fc's input for the row form */
    uint32_t *active; /* 2 x (max cols + EIE_ACTIVE_SLACK): a node's active columns, and
                         past cols + EIE_ACTIVE_SLACK eie_cpu_split_pays's scratch */
    uint64_t entries, acts;
    uint64_t nz; /* nonzero inputs of the channels this PE phased last */
    char pad[CACHE_LINE];
} gpe_t;

struct eie_cpu_graph {
    unsigned n;
    const eie_cpu_kernel_t *k;
    bool fused_b1; /* eie_cpu_graph_init */
    gnode_t *nodes;
    size_t n_nodes;
    gtensor_t *t;
    size_t n_t;
    uint32_t *inputs, *outputs;
    size_t n_inputs, n_outputs;
    size_t chunk;        /* samples per chunk */
    size_t max_seq;      /* sequences a run takes side by side (eie_cpu_graph_max_sequences) */
    float *patch;        /* the im2col tile, shared by the PEs */
    float *xq;           /* a direct conv's phased input, shared by the PEs, or one
                            per PE (gnode_t.own_xq) */
    uint32_t *blk_active; /* per block of a tile: its nonzero columns */
    uint32_t *blk_n;      /* per block: how many */
    size_t blk_stride;    /* max cols + EIE_ACTIVE_SLACK */
    gpe_t *pe;
    float **acc; /* pe[q].acc for every PE q (eie_cpu_gather_share) */
    uint64_t work;            /* entry visits of one sample */
    uint64_t node_barriers;   /* per chunk, nodes other than conv */
    uint64_t conv_barriers;   /* per sample */
    const float **out_state;  /* per graph output: an LSTM's final h or c, else NULL */
    size_t z_floats;          /* floats of a PE's z */
    /* The same graph laid out for one PE, which runs what would run on one
       thread (a run too small for the pool: submit), or NULL. On one thread
       the N-PE layout walks every active column once a PE, and a column's
       fixed costs N times: the bundled charlm's step (8,192 weights, 160
       columns) took 5.7-8.2 us on 2 PEs' layout against 4.1-4.5 on one, and
       16 lanes 14.6-15.1 against 11.8. Kept for graphs with an lstm node,
       whose every step is a run's barrier, when one step of one sequence
       is such a run (and not cpu_one_layout); their bits are the same on any
       PE count. */
    struct eie_cpu_graph *one_pe;
};

/* Whether a run of batch samples (n_seq sequences side by side) is too
 * small for the pool: waking PEs and barriers cost microseconds (cpu.c). */
static bool run_is_serial(const struct eie_cpu_graph *g, size_t n_seq, size_t batch)
{
    size_t chunk = g->chunk / n_seq * n_seq, chunks = (batch + chunk - 1) / chunk;
    uint64_t barriers = chunks * (g->node_barriers + 1) + batch * g->conv_barriers;
    return g->n > 1 && g->work * batch < (uint64_t)PARALLEL_MIN_WORK * barriers;
}

static void *alloc_aligned(size_t n)
{
    void *p = NULL;
    n = (n + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    if (posix_memalign(&p, CACHE_LINE, n ? n : CACHE_LINE) != 0)
        return NULL;
    return p;
}

void eie_cpu_graph_free(eie_cpu_graph_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        gnode_t *nd = &g->nodes[i];
        for (uint32_t q = 0; q < nd->groups; q++) {
            if (nd->sh != NULL)
                eie_cpu_fc_clear(&nd->sh[q]);
            if (nd->ex != NULL)
                eie_cpu_exact_clear(&nd->ex[q]);
        }
        if (nd->span != NULL)
            for (uint32_t k = 0; k < nd->groups * g->n; k++)
                free(nd->span[k]);
        free(nd->span);
        free(nd->sh);
        free(nd->ex);
        free(nd->bias);
        free(nd->inputs);
        free(nd->h[0]);
        free(nd->h[1]);
        free(nd->c);
        free(nd->zeros);
        free(nd->h0);
        free(nd->c0);
    }
    free(g->out_state);
    eie_cpu_graph_free(g->one_pe);
    free(g->nodes);
    if (g->t != NULL)
        for (size_t i = 0; i < g->n_t; i++)
            free(g->t[i].buf);
    free(g->t);
    free(g->inputs);
    free(g->outputs);
    free(g->patch);
    free(g->xq);
    free(g->blk_active);
    free(g->blk_n);
    if (g->pe != NULL)
        for (unsigned p = 0; p < g->n; p++) {
            free(g->pe[p].acc);
            free(g->pe[p].active);
            free(g->pe[p].z);
        }
    free(g->pe);
    free(g->acc);
    free(g);
}

static eie_status_t prep_sparse(eie_cpu_graph_t *g, gnode_t *nd, const eie_fc_t *fc,
                                uint32_t groups, int rows, uint64_t *bytes, uint32_t *max_local,
                                eie_error_t *err)
{
    nd->groups = groups;
    nd->rows_g = fc->rows / groups;
    nd->cols = fc->cols;
    nd->exact = fc->storage == EIE_STORAGE_EXACT;
    nd->bias = malloc(fc->rows * sizeof(float));
    if (nd->exact)
        nd->ex = calloc(groups, sizeof *nd->ex);
    else
        nd->sh = calloc(groups, sizeof *nd->sh);
    if (nd->bias == NULL || (nd->exact ? (void *)nd->ex : (void *)nd->sh) == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    memcpy(nd->bias, fc->bias, fc->rows * sizeof(float));
    for (uint32_t q = 0; q < groups; q++) {
        eie_fc_t sub;
        const eie_fc_t *src = fc;
        if (groups > 1) {
            if (eie_fc_rows(fc, q * nd->rows_g, nd->rows_g, &sub) != 0) {
                eie_fc_rows_free(&sub);
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
            }
            src = &sub;
        }
        eie_status_t st = nd->exact ? eie_cpu_exact_init(src, g->n, &nd->ex[q], err)
                                    : eie_cpu_fc_init(src, g->n, 0, rows, &nd->sh[q], err);
        if (groups > 1)
            eie_fc_rows_free(&sub);
        if (st != EIE_STATUS_OK)
            return st;
        *bytes += nd->exact ? nd->ex[q].layout_bytes : nd->sh[q].layout_bytes;
    }
    uint32_t local = (nd->rows_g + g->n - 1) / g->n;
    if (local > *max_local)
        *max_local = local;
    return EIE_STATUS_OK;
}

/* The phased input one span of a direct conv's rows reads at a block: two
 * thirds of the L1 data cache (32 KiB of Zen 5's 48), 32 KiB where its
 * size is not known, between 16 and 64 KiB. eie-bench --conv on Zen 5,
 * one thread, us, two runs each: Alex-c3 16 KiB 1366-1370, 32 KiB
 * 1156-1263, 40 KiB 1159-1210, 64 KiB 1224-1262; Alex-c5 713-717,
 * 643-687, 648-655, 676-680. Spans change no bit (kernels.h). */
static uint64_t span_bytes(void)
{
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    uint64_t b = l1 > 0 ? (uint64_t)l1 / 3 * 2 : UINT64_C(32) << 10;
    return b < (UINT64_C(16) << 10)   ? UINT64_C(16) << 10
           : b > (UINT64_C(64) << 10) ? UINT64_C(64) << 10
                                      : b;
}
/* The largest phased input (all copies) that each PE of a pooled run
 * phases whole into a copy of its own (conv_phases): 4 MiB, every AlexNet
 * convolution's (Alex-c2 1.9 MB, Alex-c1 2.1 MB); N of them, at most 64
 * MiB in all (scratch of the net, not counted in its layout bytes). */
#define OWN_XQ_FLOATS       (UINT64_C(1) << 20)
#define OWN_XQ_TOTAL_FLOATS (UINT64_C(1) << 24)
/* Floats a phased input may be read past its end (conv_phases). */
#define XQ_SLACK(Wq) ((size_t)(Wq) + 2 * EIE_CONV_LANES)

/*
 * The conv form of node nd, whose weights have the row form: each entry's
 * column (ci, ky, kx) becomes the offset of its activation for output
 * position 0 in the phased input, phase (ky dh mod sh, kx dw mod sw),
 * channel q Cg + ci, row ky dh / sh, column kx dw / sw: output position
 * (oy, ox) then reads offset + oy Wq + ox.
 * Aligned reads: a 64-byte load that straddles two cache lines costs two
 * (on Zen 5, 0.9 such loads a cycle against 1.9 aligned ones), and a
 * column's offset is off by kx dw / sw mod 16 floats from a multiple of 16
 * when Wq and the blocks' first positions are multiples of 16. So the
 * phased input is kept in n_copies copies, copy s shifted left by s floats
 * (conv_phases), and an entry with column remainder s reads copy s at
 * offset - s: every load of the kernel is aligned.
 * *phased_out: the floats of all copies (0: the node keeps the patch path,
 * its offsets being too large for 24 bits).
 */
static eie_status_t conv_direct_prep(gnode_t *nd, const eie_shape_t *xs, unsigned n_pes,
                                     uint64_t *bytes, size_t *phased_out, eie_error_t *err)
{
    const eie_conv2d_params_t *c = &nd->conv;
    uint64_t C = (uint64_t)xs->dims[1], H = (uint64_t)xs->dims[2], W = (uint64_t)xs->dims[3];
    uint64_t Hp = H + c->pad_top + c->pad_bottom, Wp = W + c->pad_left + c->pad_right;
    uint64_t Hq = (Hp + c->stride_h - 1) / c->stride_h, Wq = (Wp + c->stride_w - 1) / c->stride_w;
    /* aligned where rounding Wq up adds at most a quarter more positions:
     * not on a narrow image (LeNet-5's conv2: 12 wide) */
    uint64_t Wq16 = (Wq + 15) / 16 * 16;
    bool aligned = Wq16 * 4 <= Wq * 5;
    uint64_t max_s = (uint64_t)(c->kernel_w - 1) * c->dilation_w / c->stride_w;
    uint64_t copies = !aligned ? 1 : max_s < 16 ? max_s + 1 : 16;
    Wq = aligned ? Wq16 : Wq;
    uint64_t plane = Hq * Wq, total = (uint64_t)c->stride_h * c->stride_w * C * plane;
    uint64_t copy_floats = (total + XQ_SLACK(Wq) + 15) / 16 * 16;
    *phased_out = 0;
    if (copies * copy_floats >= (UINT64_C(1) << 24)) {
        for (uint32_t q = 0; q < nd->groups; q++)
            for (unsigned p = 0; p < n_pes; p++) {
                eie_pe_layer_t *L = &nd->sh[q].pe[p];
                *bytes -= L->n_ent * (L->rent != NULL ? 2 : 4) +
                          ((uint64_t)L->n_rows + 1) * sizeof(uint32_t);
                if (L->rspan != NULL)
                    *bytes -= ((uint64_t)L->n_rspans + 1) * L->n_rows * sizeof(uint32_t);
                free(L->rent);
                free(L->rentw);
                free(L->rptr);
                free(L->rspan);
                L->rent = NULL;
                L->rentw = NULL;
                L->rptr = NULL;
                L->rspan = NULL;
                L->n_rspans = 0;
            }
        return EIE_STATUS_OK;
    }
    uint32_t Cg = (uint32_t)(C / nd->groups), khw = c->kernel_h * c->kernel_w;
    /* Input channels a span: as many as keep the phased input one block
     * reads (every copy and phase, the block's rows of Wq and the kernel's
     * extent below them) within span_bytes(). */
    uint64_t rows_read = (EIE_CONV_LANES + Wq - 1) / Wq + 1 +
                         (uint64_t)(c->kernel_h - 1) * c->dilation_h / c->stride_h;
    uint64_t ch_bytes =
        copies * c->stride_h * c->stride_w * rows_read * Wq * sizeof(float);
    uint64_t span = span_bytes();
    uint32_t span_ch = ch_bytes >= span ? 1 : (uint32_t)(span / ch_bytes);
    nd->n_spans = (Cg + span_ch - 1) / span_ch;
    if ((nd->span = calloc((size_t)nd->groups * n_pes, sizeof *nd->span)) == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    for (uint32_t q = 0; q < nd->groups; q++)
        for (unsigned p = 0; p < n_pes; p++) {
            eie_pe_layer_t *L = &nd->sh[q].pe[p];
            uint32_t *o = calloc(L->n_ent + EIE_ENTRY_SLACK, sizeof *o);
            /* + 1 byte: a PE without rows still gets a pointer */
            uint32_t *sp = malloc(((size_t)nd->n_spans + 1) * L->n_rows * sizeof *sp + 1);
            nd->span[(size_t)q * n_pes + p] = sp;
            *bytes += ((uint64_t)nd->n_spans + 1) * L->n_rows * sizeof *sp;
            if (o == NULL || sp == NULL) {
                free(o);
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
            }
            /* span t of row r starts at its first entry of channel t span_ch or more:
               a column is ci * khw + ky * kernel_w + kx */
            uint64_t span_cols = (uint64_t)khw * span_ch;
            eie_pe_row_spans(L, span_cols > UINT32_MAX ? UINT32_MAX : (uint32_t)span_cols,
                             nd->n_spans, sp);
            for (uint64_t e = 0; e < L->n_ent; e++) {
                uint32_t w = L->rent != NULL ? L->rent[e] : L->rentw[e];
                uint32_t col = L->rent != NULL ? w >> 4 : w >> 8;
                uint32_t code = L->rent != NULL ? w & 15 : w & 255;
                uint32_t ci = col / khw, ky = col / c->kernel_w % c->kernel_h;
                uint32_t kx = col % c->kernel_w;
                uint64_t dy = (uint64_t)ky * c->dilation_h, dx = (uint64_t)kx * c->dilation_w;
                uint64_t ph = dy % c->stride_h * c->stride_w + dx % c->stride_w;
                uint64_t off = (ph * C + (uint64_t)q * Cg + ci) * plane + dy / c->stride_h * Wq +
                               dx / c->stride_w;
                uint64_t sft = aligned ? dx / c->stride_w % 16 : 0;
                off = sft * copy_floats + off - sft;
                o[e] = (uint32_t)(off << 8 | code);
            }
            if (L->rent != NULL)
                *bytes += L->n_ent * 2; /* 4 bytes an entry now, not 2 */
            free(L->rent);
            free(L->rentw);
            L->rent = NULL;
            L->rentw = o;
        }
    nd->direct = true;
    nd->Hq = (uint32_t)Hq;
    nd->Wq = (uint32_t)Wq;
    nd->n_copies = (uint32_t)copies;
    nd->copy_floats = (size_t)copy_floats;
    uint64_t phased = copies * copy_floats;
    nd->own_xq = n_pes > 1 && phased <= OWN_XQ_FLOATS && n_pes * phased <= OWN_XQ_TOTAL_FLOATS;
    *phased_out = (size_t)(nd->own_xq ? n_pes * phased : phased);
    return EIE_STATUS_OK;
}

/*
 * An LSTM node: its matrix laid out so each PE holds whole hidden units
 * (eie_fc_lstm_rows), then packed like an fc; the state buffers.
 */
static eie_status_t prep_lstm(eie_cpu_graph_t *g, gnode_t *nd, const eie_layer_t *l, int rows,
                              uint64_t *bytes, uint32_t *max_local, eie_error_t *err)
{
    eie_fc_t pe_fc;
    nd->hidden = l->lstm.hidden;
    nd->lanes = l->lstm.lanes;
    nd->seq_cap = nd->lanes == 0 || nd->lanes >= SEQ_LANES ? 1 : SEQ_LANES / nd->lanes;
    nd->init_in[0] = l->lstm.initial_in[0];
    nd->init_in[1] = l->lstm.initial_in[1];
    nd->dense_in = g->fused_b1; /* h_{t-1} is dense */
    if (eie_fc_lstm_rows(&l->fc, g->n, &pe_fc) != 0) {
        eie_fc_lstm_rows_free(&pe_fc);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    }
    eie_status_t st = prep_sparse(g, nd, &pe_fc, 1, rows, bytes, max_local, err);
    uint32_t all_rows = pe_fc.rows, local = all_rows / g->n; /* 4 U each (format.h) */
    eie_fc_lstm_rows_free(&pe_fc);
    if (st != EIE_STATUS_OK)
        return st;
    /* the bias PE by PE, so a PE's gates add theirs as one run (run_lstm_step) */
    float *by_pe = malloc((size_t)all_rows * sizeof(float));
    if (by_pe == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    for (unsigned p = 0; p < g->n; p++)
        for (uint32_t r = 0; r < local; r++)
            by_pe[(size_t)p * local + r] = nd->bias[(size_t)r * g->n + p];
    free(nd->bias);
    nd->bias = by_pe;
    size_t one = (size_t)nd->lanes * nd->hidden, n = nd->seq_cap * one;
    uint32_t per_pe = (nd->hidden + g->n - 1) / g->n, line = CACHE_LINE / sizeof(float);
    nd->unit_stride = (per_pe + line - 1) / line * line;
    size_t state = (size_t)g->n * nd->seq_cap * nd->lanes * nd->unit_stride;
    nd->h[0] = alloc_aligned(state * sizeof(float));
    nd->h[1] = alloc_aligned(state * sizeof(float));
    nd->c = alloc_aligned(state * sizeof(float));
    nd->zeros = calloc(n, sizeof(float));
    if (!nd->h[0] || !nd->h[1] || !nd->c || !nd->zeros)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    /* zeroed once, so that no float of it is ever undefined */
    memset(nd->h[0], 0, state * sizeof(float));
    memset(nd->h[1], 0, state * sizeof(float));
    memset(nd->c, 0, state * sizeof(float));
    /* a stored state, once for each sequence a run may take */
    float **init[2] = {&nd->h0, &nd->c0};
    for (int k = 0; k < 2; k++)
        if (l->lstm.initial[k] != NULL) {
            if ((*init[k] = malloc(n * sizeof(float))) == NULL)
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
            for (uint32_t q = 0; q < nd->seq_cap; q++)
                memcpy(*init[k] + q * one, l->lstm.initial[k], one * sizeof(float));
        }
    size_t z = (size_t)BLK * l->fc.cols;
    if (z > g->z_floats)
        g->z_floats = z;
    return EIE_STATUS_OK;
}

/* Whether layer l's input may be dense: not a ReLU's output, through any
 * max pooling and reshapes after it (EIE's premise: a ReLU's output is
 * sparse). A dense input lets a batch-1 run take the fused row form, as a
 * chain's dense_in layers do (cpu.c). */
static bool input_may_be_dense(const eie_model_t *m, const eie_layer_t *l)
{
    uint32_t t = l->inputs[0];
    for (size_t hops = 0; hops <= m->n_layers; hops++) {
        const eie_layer_t *src = NULL;
        for (size_t i = 0; i < m->n_layers && src == NULL; i++)
            if (m->layers[i].output == t)
                src = &m->layers[i];
        if (src == NULL)
            return true; /* a graph input */
        if (src->kind == EIE_LAYER_ACTIVATION)
            return src->act != EIE_ACT_RELU;
        if (src->kind != EIE_LAYER_MAXPOOL2D && src->kind != EIE_LAYER_FLATTEN &&
            src->kind != EIE_LAYER_RESHAPE)
            return true;
        t = src->inputs[0];
    }
    return true;
}

eie_status_t eie_cpu_graph_init(const eie_model_t *m, unsigned n_pes, const eie_cpu_kernel_t *k,
                                int with_rows, bool fused_b1, bool one_pe_copy,
                                eie_cpu_graph_t **graph_out, uint64_t *layout_bytes_out,
                                eie_error_t *err)
{
    eie_status_t st;
    eie_cpu_graph_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory");
    g->n = n_pes;
    g->fused_b1 = fused_b1;
    g->k = k;
    g->n_t = m->n_tensors;
    g->n_nodes = m->n_layers;
    g->n_inputs = m->n_inputs;
    g->n_outputs = m->n_outputs;
    g->t = calloc(g->n_t, sizeof *g->t);
    g->nodes = calloc(g->n_nodes, sizeof *g->nodes);
    g->inputs = malloc(g->n_inputs * sizeof *g->inputs);
    g->outputs = malloc(g->n_outputs * sizeof *g->outputs);
    g->pe = alloc_aligned(n_pes * sizeof *g->pe);
    if (!g->t || !g->nodes || !g->inputs || !g->outputs || !g->pe)
        goto nomem;
    memset(g->pe, 0, n_pes * sizeof *g->pe);
    memcpy(g->inputs, m->inputs, g->n_inputs * sizeof *g->inputs);
    memcpy(g->outputs, m->outputs, g->n_outputs * sizeof *g->outputs);
    uint64_t total = 0, bytes = 0, patch = 0;
    size_t phased = 0;
    for (size_t i = 0; i < g->n_t; i++) {
        g->t[i].shape = m->tensors[i].shape;
        g->t[i].numel = eie_shape_sample_elements(&m->tensors[i].shape);
        g->t[i].input = -1;
        total += g->t[i].numel;
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        g->t[g->inputs[i]].input = (int)i;
    uint32_t max_local = 1, max_cols = 1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const eie_layer_t *l = &m->layers[i];
        gnode_t *nd = &g->nodes[i];
        nd->kind = l->kind;
        nd->act = l->act;
        nd->axis = l->axis;
        nd->conv = l->conv;
        nd->pool = l->pool;
        nd->n_inputs = l->n_inputs;
        nd->output = l->output;
        if ((nd->inputs = malloc(l->n_inputs * sizeof *nd->inputs)) == NULL)
            goto nomem;
        memcpy(nd->inputs, l->inputs, l->n_inputs * sizeof *nd->inputs);
        if (l->kind == EIE_LAYER_LSTM) {
            if ((st = prep_lstm(g, nd, l, with_rows, &bytes, &max_local, err)) != 0) {
                eie_error_prefix(err, "node %zu: ", i);
                goto error;
            }
            if (l->fc.cols > max_cols)
                max_cols = l->fc.cols;
        }
        if (l->kind == EIE_LAYER_FC || l->kind == EIE_LAYER_CONV2D) {
            bool conv = l->kind == EIE_LAYER_CONV2D;
            uint32_t groups = conv ? l->conv.groups : 1;
            /* the direct convolution splits the row form its own way */
            int rows = conv && with_rows ? EIE_ROWS_WHOLE : with_rows;
            if ((st = prep_sparse(g, nd, &l->fc, groups, rows, &bytes, &max_local, err)) != 0) {
                eie_error_prefix(err, "node %zu: ", i);
                goto error;
            }
            if (l->fc.cols > max_cols)
                max_cols = l->fc.cols;
            if (!conv && with_rows && !nd->exact) {
                /* the row form of a batch reads its input feature-major (run_fc) */
                nd->dense_in = g->fused_b1 && input_may_be_dense(m, l);
                if ((size_t)BLK * l->fc.cols > g->z_floats)
                    g->z_floats = (size_t)BLK * l->fc.cols;
            }
            if (conv && with_rows && !nd->exact) {
                size_t ph;
                if ((st = conv_direct_prep(nd, &g->t[l->inputs[0]].shape, g->n, &bytes, &ph,
                                           err)) != 0)
                    goto error;
                if (ph > phased)
                    phased = ph;
            }
        }
        if (l->kind == EIE_LAYER_CONV2D) {
            uint64_t P = g->t[l->output].numel / l->fc.rows;
            uint64_t tile = TILE_FLOATS / ((uint64_t)l->fc.cols * BLK) * BLK;
            uint64_t need = (P + BLK - 1) / BLK * BLK;
            if (tile < BLK)
                tile = BLK;
            if (tile > need)
                tile = need;
            nd->tile = (uint32_t)tile;
            if (tile * l->fc.cols > patch)
                patch = tile * l->fc.cols;
            uint64_t tiles = (P + tile - 1) / tile;
            /* run direct (as a dense-enough input is): two barriers, and
             * a quarter the work a multiply-add (64 lanes an entry step,
             * where the fc kernels take 1 to 16) */
            g->conv_barriers += nd->direct ? (nd->own_xq ? 1 : 2) : 2 * tiles * l->conv.groups;
            g->work += nd->direct ? l->fc.nnz * P / 4 : l->fc.nnz * P;
        } else if (l->kind == EIE_LAYER_LSTM) {
            g->conv_barriers++; /* one a step */
            g->node_barriers++; /* and y_t of the chunk's last step (lstm_out) */
            g->work += l->fc.nnz * nd->lanes;
        } else {
            g->node_barriers++;
            if (l->kind == EIE_LAYER_FC)
                g->work += l->fc.nnz * (g->t[l->inputs[0]].numel / l->fc.cols);
        }
    }
    g->chunk = total ? CHUNK_FLOATS / total : 1;
    if (g->chunk < 1)
        g->chunk = 1;
    if (g->chunk > EIE_KERNEL_MAX_BATCH)
        g->chunk = EIE_KERNEL_MAX_BATCH;
    /* a chunk holds whole steps of every sequence of a run (run_graph) */
    g->max_seq = g->chunk;
    bool has_lstm = false;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].kind == EIE_LAYER_LSTM) {
            has_lstm = true;
            if (g->nodes[i].seq_cap < g->max_seq)
                g->max_seq = g->nodes[i].seq_cap;
        }
    for (size_t i = 0; i < g->n_t; i++)
        if (g->t[i].input < 0 &&
            (g->t[i].buf = alloc_aligned(g->t[i].numel * g->chunk * sizeof(float))) == NULL)
            goto nomem;
    g->blk_stride = (size_t)max_cols + EIE_ACTIVE_SLACK;
    if (patch > 0) {
        size_t blocks = 0;
        for (size_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].kind == EIE_LAYER_CONV2D && g->nodes[i].tile / BLK > blocks)
                blocks = g->nodes[i].tile / BLK;
        g->patch = alloc_aligned(patch * sizeof(float));
        g->blk_active = alloc_aligned(blocks * g->blk_stride * sizeof(uint32_t));
        g->blk_n = calloc(blocks, sizeof *g->blk_n);
        if (!g->patch || !g->blk_active || !g->blk_n)
            goto nomem;
    }
    /* zeroed: the slack past a phased input is read, never written */
    if (phased > 0) {
        if ((g->xq = alloc_aligned(phased * sizeof(float))) == NULL)
            goto nomem;
        memset(g->xq, 0, phased * sizeof(float));
    }
    if ((g->acc = malloc(n_pes * sizeof *g->acc)) == NULL)
        goto nomem;
    for (unsigned p = 0; p < n_pes; p++) {
        g->pe[p].acc = alloc_aligned(((size_t)max_local * EIE_CONV_LANES + EIE_ACC_SLACK) *
                                     sizeof(float));
        /* twice: the second half is eie_cpu_split_pays's scratch */
        g->pe[p].active = alloc_aligned(2 * g->blk_stride * sizeof(uint32_t));
        if (!g->pe[p].acc || !g->pe[p].active)
            goto nomem;
        g->acc[p] = g->pe[p].acc;
        if (g->z_floats > 0) {
            /* zeroed once: lanes past a batch are read, their sums dropped */
            if ((g->pe[p].z = alloc_aligned(g->z_floats * sizeof(float))) == NULL)
                goto nomem;
            memset(g->pe[p].z, 0, g->z_floats * sizeof(float));
        }
    }
    if ((g->out_state = calloc(g->n_outputs, sizeof *g->out_state)) == NULL)
        goto nomem;
    for (size_t o = 0; o < g->n_outputs; o++)
        for (size_t i = 0; i < g->n_nodes; i++) {
            const eie_layer_t *l = &m->layers[i];
            if (l->kind == EIE_LAYER_LSTM && l->lstm.state[0] == g->outputs[o])
                g->out_state[o] = g->nodes[i].h[0]; /* the parity is chosen at run time */
            if (l->kind == EIE_LAYER_LSTM && l->lstm.state[1] == g->outputs[o])
                g->out_state[o] = g->nodes[i].c;
        }
    /* a node writes a graph output straight into the caller's buffer (an
     * LSTM's final state and a graph input given back are copied instead) */
    for (size_t i = 0; i < g->n_t; i++)
        g->t[i].output = -1;
    for (size_t o = 0; o < g->n_outputs; o++)
        if (g->out_state[o] == NULL && g->t[g->outputs[o]].input < 0)
            g->t[g->outputs[o]].output = (int)o;
    if (one_pe_copy && n_pes > 1 && has_lstm && run_is_serial(g, 1, 1)) {
        uint64_t one_bytes;
        st = eie_cpu_graph_init(m, 1, k, with_rows, fused_b1, false, &g->one_pe, &one_bytes,
                                err);
        if (st != EIE_STATUS_OK)
            goto error;
        bytes += one_bytes;
    }
    *layout_bytes_out = bytes;
    *graph_out = g;
    return EIE_STATUS_OK;
nomem:
    st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory preparing the graph");
error:
    eie_cpu_graph_free(g);
    return st;
}

/* ---- running ------------------------------------------------------------ */

typedef struct gjob {
    eie_pool_job_t base;
    eie_cpu_graph_t *g;
    size_t batch; /* samples: n_seq x steps, time-major */
    size_t n_seq; /* sequences side by side (1 but for eie_net_submit_sequences) */
    size_t len[SEQ_LANES]; /* each sequence's steps: from its len[k]-th on it has ended */
    eie_run_done_fn done;
    void *user;
    _Atomic uint64_t entries, acts;
    const float **in; /* n_inputs */
    float **out;      /* n_outputs */
} gjob_t;

/* Samples [s0, s0 + B) of tensor t: its chunk buffer, or the caller's
 * input or output. */
static float *tensor_at(const gjob_t *job, size_t t, size_t s0)
{
    const gtensor_t *x = &job->g->t[t];
    if (x->input >= 0)
        return (float *)job->in[x->input] + s0 * x->numel;
    if (x->output >= 0)
        return job->out[x->output] + s0 * x->numel;
    return x->buf;
}

/* A PE's share of an element range of n: [*a, *b). */
static void share(size_t n, unsigned p, unsigned N, size_t *a, size_t *b)
{
    *a = n * p / N;
    *b = n * (p + 1) / N;
}

/* Sparse matrix q of nd on PE p: acc = W_q x for B lanes of in (is_j, is_b). */
static uint64_t spmv(const eie_cpu_graph_t *g, const gnode_t *nd, uint32_t q, unsigned p,
                     const uint32_t *active, size_t n_active, const float *in, size_t is_j,
                     size_t is_b, size_t B, float *acc, size_t *S_out, uint32_t *n_rows_out)
{
    size_t S = eie_cpu_batch_stride(B);
    *S_out = S;
    if (nd->exact) {
        const eie_pe_exact_t *L = &nd->ex[q].pe[p];
        *n_rows_out = L->n_rows;
        memset(acc, 0, (size_t)L->n_rows * S * sizeof(float));
        return eie_cpu_spmv_exact(L, active, n_active, in, is_j, is_b, B, S, acc);
    }
    const eie_cpu_fc_t *cf = &nd->sh[q];
    const eie_pe_layer_t *L = &cf->pe[p];
    *n_rows_out = L->n_rows;
    memset(acc, 0, (size_t)L->n_rows * S * sizeof(float));
    return eie_cpu_spmv(g->k, cf, L, active, n_active, in, is_j, is_b, B, acc);
}

/*
 * As spmv, for an fc or lstm node (one group), taking the row form where it
 * pays (kernels.h, eie_cpu_rows_pay), as a chain does (cpu.c): at batch 1 on
 * a dense input with nearly every column active (and fewer than twice as
 * many rows as columns), and for a batch read
 * feature-major (is_j == S, is_b == 1). Both leave acc as the column form
 * would: rows_batch the same bits, rows_b1 (dense inputs only) fused.
 */
/* The rows of nd's matrix as the model has them, which decide its form
 * (eie_cpu_rows_pay): an LSTM's are padded to 4 ceil(H / N) on each of the
 * N PEs (eie_fc_lstm_rows), a count that grows with N, and a form chosen by
 * it would give other bits on other PE counts. */
static uint32_t model_rows(const gnode_t *nd)
{
    return nd->kind == EIE_LAYER_LSTM ? 4 * nd->hidden : nd->rows_g;
}

static uint64_t spmv_rows(const eie_cpu_graph_t *g, const gnode_t *nd, unsigned p,
                          const uint32_t *active, size_t n_active, const float *in,
                          size_t is_j, size_t is_b, size_t B, float *acc, size_t *S_out,
                          uint32_t *n_rows_out)
{
    size_t S = eie_cpu_batch_stride(B);
    if (!nd->exact && eie_cpu_rows_pay(S, n_active, nd->cols, model_rows(nd))) {
        const eie_cpu_fc_t *cf = &nd->sh[0];
        const eie_pe_layer_t *L = &cf->pe[p];
        if (B == 1 && nd->dense_in && is_j == 1 && eie_cpu_rows_b1_fits(L)) {
            *S_out = S;
            *n_rows_out = L->n_rows;
            return g->k->rows_b1(L, cf->codebook, in, acc);
        }
        if (B > 1 && is_j == S && is_b == 1 && (L->rent != NULL || L->rentw != NULL)) {
            *S_out = S;
            *n_rows_out = L->n_rows;
            return g->k->rows_batch(L, cf->codebook, in, B, acc);
        }
    }
    return spmv(g, nd, 0, p, active, n_active, in, is_j, is_b, B, acc, S_out, n_rows_out);
}

/* Whether node nd's PE p has the row form (layout.h). */
static bool has_rows(const gnode_t *nd, unsigned p)
{
    return !nd->exact && (nd->sh[0].pe[p].rent != NULL || nd->sh[0].pe[p].rentw != NULL);
}

/* Kernel lanes of an fc node's run over a chunk of B samples: a sample of
   [N, ..., cols] is numel / cols vectors, all lanes. */
static size_t fc_lanes(const eie_cpu_graph_t *g, const gnode_t *nd, size_t B)
{
    return B * (g->t[nd->inputs[0]].numel / nd->cols);
}

/* Whether an fc node's run is staged: its rows interleave over the PEs (row i
   on PE i mod N), so two PEs writing a batch-major output would write every
   cache line of it (a chain's NT-Wd at batch 16, 2 PEs: 778 us against 342
   on one, cpu.c). A batch of one kernel call leaves its sums in each PE's
   accumulators and fc_gather copies contiguous shares out after a barrier. */
static bool fc_staged(const eie_cpu_graph_t *g, const gnode_t *nd, size_t B)
{
    size_t lanes = fc_lanes(g, nd, B);
    return g->n > 1 && lanes > 1 && lanes <= EIE_KERNEL_MAX_BATCH;
}

/* PE p's share of a staged fc's output rows, from every PE's accumulators. */
static void fc_gather(gjob_t *job, const gnode_t *nd, unsigned p, size_t s0, size_t B)
{
    eie_cpu_graph_t *g = job->g;
    size_t L = fc_lanes(g, nd, B);
    eie_cpu_gather_share(g->k, g->acc, g->n, nd->rows_g, L, eie_cpu_batch_stride(L), p, p + 1,
                         tensor_at(job, nd->output, s0));
}

static void run_fc(gjob_t *job, const gnode_t *nd, unsigned p, size_t s0, size_t B)
{
    eie_cpu_graph_t *g = job->g;
    gpe_t *sc = &g->pe[p];
    size_t cols = nd->cols, rows = nd->rows_g;
    /* A sample of [N, ..., cols] is numel / cols vectors: all are lanes of the kernel,
       up to EIE_KERNEL_MAX_BATCH at a time. */
    size_t lanes = fc_lanes(g, nd, B);
    for (size_t l0 = 0; l0 < lanes; l0 += EIE_KERNEL_MAX_BATCH) {
        size_t L = lanes - l0 < EIE_KERNEL_MAX_BATCH ? lanes - l0 : EIE_KERNEL_MAX_BATCH;
        const float *in = tensor_at(job, nd->inputs[0], s0) + l0 * cols;
        float *out = tensor_at(job, nd->output, s0) + l0 * rows;
        /* EIE sec. III-A: a column is skipped when all L inputs are zero there. */
        size_t n_active = g->k->active(in, cols, 1, cols, L, sc->active);
        if (p == 0)
            sc->acts += n_active;
        size_t S = eie_cpu_batch_stride(L), is_j = 1, is_b = cols;
        bool batch_rows = L > 1 && has_rows(nd, p) && eie_cpu_rows_pay(S, n_active, cols, rows);
        const eie_cpu_fc_t *cf = nd->exact ? NULL : &nd->sh[0];
        uint32_t n_rows;
        if (cf != NULL && eie_cpu_split_pays(g->k, cf, &cf->pe[p], in, is_j, is_b, L, n_active,
                                             batch_rows, sc->active + cols + EIE_ACTIVE_SLACK)) {
            /* sparse pairs sample by sample (kernels.h): acc as the batch leaves it */
            n_rows = cf->pe[p].n_rows;
            sc->entries +=
                eie_cpu_run_split(g->k, cf, &cf->pe[p], in, is_j, is_b, L, sc->active, sc->acc);
        } else {
            if (batch_rows) {
                /* the row form reads a batch feature-major: this PE's copy of it */
                eie_cpu_transpose_share(g->k, in, cols, L, S, 0, 1, 1, sc->z);
                in = sc->z;
                is_j = S;
                is_b = 1;
            }
            sc->entries +=
                spmv_rows(g, nd, p, sc->active, n_active, in, is_j, is_b, L, sc->acc, &S, &n_rows);
        }
        if (fc_staged(g, nd, B)) { /* the bias in place; fc_gather writes out */
            for (uint32_t r = 0; r < n_rows; r++) {
                float *a = sc->acc + r * S, bv = nd->bias[(size_t)r * g->n + p];
                for (size_t b = 0; b < S; b++)
                    a[b] += bv;
            }
            continue;
        }
        for (uint32_t r = 0; r < n_rows; r++) {
            size_t i = (size_t)r * g->n + p;
            for (size_t b = 0; b < L; b++)
                out[b * rows + i] = sc->acc[r * S + b] + nd->bias[i];
        }
    }
}

/* Where lane n's unit k of PE p sits in an LSTM's h or c (gnode_t.h). */
static inline size_t state_at(const gnode_t *nd, unsigned p, size_t n, uint32_t k)
{
    return ((size_t)p * nd->seq_cap * nd->lanes + n) * nd->unit_stride + k;
}

/* Units of an LSTM's H that PE p holds: j = p, p + N, ... */
static inline uint32_t lstm_own(uint32_t H, unsigned p, unsigned N)
{
    return p < H ? (H - p + N - 1) / N : 0;
}

/* h_{t-1} of lanes n0 .. n0 + B - 1 from the PE-major state into z's rows
 * I .. I + H - 1 (z[(I + j) S + b], unit order): sixteen units of a PE's
 * block at a time through the variant's transpose, each unit's S floats
 * to its row, N rows apart. */
static void lstm_z_h(const eie_cpu_graph_t *g, const gnode_t *nd, const float *h, size_t n0,
                     size_t B, size_t S, float *z)
{
    uint32_t H = nd->hidden, I = nd->cols - H, N = g->n;
    const float *rows[BLK];
    for (unsigned q = 0; q < N; q++) {
        const float *blk = h + state_at(nd, q, n0, 0);
        uint32_t own = lstm_own(H, q, N);
        for (uint32_t k0 = 0; k0 < own; k0 += BLK) {
            size_t n = own - k0 < BLK ? own - k0 : BLK;
            for (size_t b = 0; b < B; b++)
                rows[b] = blk + b * nd->unit_stride + k0;
            g->k->transpose16(rows, B, n, z + (I + q + (size_t)k0 * N) * S, (size_t)N * S);
        }
    }
}

/*
 * Step t of an LSTM on PE p (the sample t - s0 of the chunk): for each group
 * of up to BLK lanes, z = [x_t, h_{t-1}] in the PE's own buffer, the PE's
 * rows of the matrix over z's nonzero columns (EIE sec. III-A), then the
 * element-wise unit of each of its hidden units: the four gate rows of its
 * unit k are its own local rows k, U + k, 2U + k and 3U + k, so no exchange
 * is needed before the next step's barrier. Its h_t and c_t go to its own
 * block of the state; y_t is written after the barrier (lstm_out).
 */
static void run_lstm_step(gjob_t *job, gnode_t *nd, unsigned p, size_t s0, size_t t)
{
    eie_cpu_graph_t *g = job->g;
    gpe_t *sc = &g->pe[p];
    const gtensor_t *xt = &g->t[nd->inputs[0]];
    uint32_t H = nd->hidden, I = nd->cols - H, N = g->n;
    /* step t of each of the run's sequences: samples t K .. t K + K - 1
       (time-major), so its K x lanes lanes are consecutive, sequence by
       sequence, as in the state buffers and a fed state's K samples */
    size_t K = job->n_seq;
    uint32_t lanes = (uint32_t)(K * nd->lanes), own = lstm_own(H, p, N);
    const float *x = tensor_at(job, nd->inputs[0], s0) + (t * K - s0) * xt->numel;
    /* the initial state, in unit order: fed by a graph input this run (one
       sample), stored, or zeros */
    const float *h0 = nd->init_in[0] != UINT32_MAX ? tensor_at(job, nd->init_in[0], 0) : nd->h0;
    const float *c0 = nd->init_in[1] != UINT32_MAX ? tensor_at(job, nd->init_in[1], 0) : nd->c0;
    const float *hp = t > 0 ? nd->h[t & 1] : h0 ? h0 : nd->zeros;
    float *hn = nd->h[(t + 1) & 1];
    if (t == 0)
        for (uint32_t n = 0; n < lanes; n++)
            for (uint32_t k = 0; k < own; k++)
                nd->c[state_at(nd, p, n, k)] = c0 ? c0[(size_t)n * H + p + k * N] : 0.0f;
    for (uint32_t n0 = 0; n0 < lanes; n0 += BLK) {
        size_t B = lanes - n0 < BLK ? lanes - n0 : BLK;
        size_t S = eie_cpu_batch_stride(B); /* z is feature-major: z[j * S + b] */
        /* x_t and h_{t-1} of the lanes into z through the variant's
           transpose: element by element, 16 lanes of NT-LSTM (2 x 600 x 16
           floats) took 110-200 us a step, as long as the matrix and the
           gates together */
        eie_cpu_transpose_share(g->k, x + (size_t)n0 * I, I, B, S, 0, 1, 1, sc->z);
        if (t == 0)
            eie_cpu_transpose_share(g->k, hp + (size_t)n0 * H, H, B, S, 0, 1, 1,
                                    sc->z + (size_t)I * S);
        else
            lstm_z_h(g, nd, hp, n0, B, S, sc->z);
        size_t n_active = g->k->active(sc->z, nd->cols, S, 1, B, sc->active);
        if (p == 0)
            sc->acts += n_active;
        uint32_t n_rows;
        sc->entries += spmv_rows(g, nd, p, sc->active, n_active, sc->z, S, 1, B, sc->acc, &S,
                                 &n_rows);
        /* The PE's units (j = p + k N), lane by lane: its local rows come
         * gate by gate (eie_fc_lstm_rows: row g U + k is gate g of unit k),
         * so a lane's four gates are four runs of its sums; with the bias
         * added in place the variant's vector cells take them, and the
         * lane's c and h blocks, as they are. */
        uint32_t U = n_rows / 4;
        /* The sums lane by lane (acc's rows are S lanes each; past them acc
           holds EIE_CONV_LANES a row): a lane's gates then read its rows in
           order, not one cache line a row (16 lanes of NT-LSTM's 1200 rows
           a PE are 77 KB). */
        float *sums = sc->acc; /* row r of lane b at sums[r + b * bs] */
        size_t bs = 1;
        if (B > 1) {
            float *lanes_t = sc->acc + (size_t)n_rows * S + EIE_ACC_SLACK;
            const float *rows[BLK];
            for (uint32_t r0 = 0; r0 < n_rows; r0 += BLK) {
                size_t n = n_rows - r0 < BLK ? n_rows - r0 : BLK;
                for (size_t r = 0; r < n; r++)
                    rows[r] = sc->acc + (r0 + r) * S;
                g->k->transpose16(rows, n, B, lanes_t + r0, n_rows);
            }
            sums = lanes_t;
            bs = n_rows;
        }
        const float *bias = nd->bias + (size_t)p * n_rows;
        for (size_t b = 0; b < B; b++) {
            float *h = hn + state_at(nd, p, n0 + b, 0);
            /* a sequence that has ended keeps its state (its final one; t > 0,
               as a length is at least 1); its lanes still ran through the
               matrix, so the batch's forms stay */
            if (t >= job->len[(n0 + b) / nd->lanes]) {
                memcpy(h, hp + state_at(nd, p, n0 + b, 0), own * sizeof(float));
                continue;
            }
            float *gs = sums + b * bs;
            for (uint32_t r = 0; r < n_rows; r++)
                gs[r] += bias[r];
            g->k->lstm_cells(gs, gs + U, gs + 2 * U, gs + 3 * U,
                             nd->c + state_at(nd, p, n0 + b, 0), h, own);
        }
    }
}

/* Units [a, e) of lane n of an LSTM's PE-major state st, in unit order, to
 * row[a .. e). */
static void state_to_units(const gnode_t *nd, unsigned N, const float *st, size_t n, size_t a,
                           size_t e, float *row)
{
    if (N == 1) {
        memcpy(row + a, st + state_at(nd, 0, n, (uint32_t)a), (e - a) * sizeof(float));
        return;
    }
    /* unit j = q + k N at st[state_at(q, n, k)]: q steps blocks, k units */
    size_t block = state_at(nd, 1, 0, 0);
    const float *k_at = st + state_at(nd, 0, n, (uint32_t)(a / N));
    unsigned q = (unsigned)(a % N);
    for (size_t j = a; j < e; j++) {
        row[j] = k_at[q * block];
        if (++q == N) {
            q = 0;
            k_at++;
        }
    }
}

/* PE p's share of an LSTM's H units: a whole number of cache lines of a
 * lane's row, so two PEs write one line of an output only where a lane's
 * row ends mid-line. */
static void lstm_share(uint32_t H, unsigned p, unsigned N, size_t *a, size_t *e)
{
    size_t line = CACHE_LINE / sizeof(float), lines = (H + line - 1) / line;
    share(lines, p, N, a, e);
    *a *= line;
    *e = *e * line < H ? *e * line : H;
}

/* y_t of an LSTM in unit order from its PE-major h_t (after step t's
 * barrier), PE p's share of the units of every lane; a sequence that has
 * ended gives zeros. */
static void lstm_out(gjob_t *job, const gnode_t *nd, unsigned p, size_t s0, size_t t)
{
    const eie_cpu_graph_t *g = job->g;
    uint32_t H = nd->hidden;
    size_t K = job->n_seq, lanes = K * nd->lanes, a, e;
    lstm_share(H, p, g->n, &a, &e);
    if (e <= a)
        return;
    const float *h = nd->h[(t + 1) & 1];
    float *y = tensor_at(job, nd->output, s0) + (t * K - s0) * g->t[nd->output].numel;
    for (size_t n = 0; n < lanes; n++) {
        if (t >= job->len[n / nd->lanes])
            memset(y + n * H + a, 0, (e - a) * sizeof(float));
        else
            state_to_units(nd, g->n, h, n, a, e, y + n * H);
    }
}

/* Graph output i, if it is an LSTM's final h or c after a run of steps
 * steps of K sequences: PE p's share of it (one sample a sequence) to out. */
static void final_state(const eie_cpu_graph_t *g, size_t i, size_t steps, size_t K, unsigned p,
                        float *out)
{
    for (size_t k = 0; k < g->n_nodes; k++) {
        const gnode_t *nd = &g->nodes[k];
        if (nd->kind != EIE_LAYER_LSTM ||
            (g->out_state[i] != nd->h[0] && g->out_state[i] != nd->c))
            continue;
        const float *st = g->out_state[i] == nd->h[0] ? nd->h[steps & 1] : nd->c;
        size_t a, e, lanes = K * nd->lanes;
        lstm_share(nd->hidden, p, g->n, &a, &e);
        for (size_t n = 0; e > a && n < lanes; n++)
            state_to_units(nd, g->n, st, n, a, e, out + n * nd->hidden);
        return;
    }
}

/* Lowers block blk of a tile (positions pos0 .. pos0 + nb) of group q to patch columns. */
static void im2col_block(const gnode_t *nd, const eie_shape_t *xs, const float *x, uint32_t q,
                         size_t pos0, size_t nb, size_t Wo, float *blk)
{
    const eie_conv2d_params_t *c = &nd->conv;
    int64_t H = xs->dims[2], W = xs->dims[3];
    int64_t Cg = xs->dims[1] / c->groups;
    int64_t iy0[BLK], ix0[BLK];
    for (size_t b = 0; b < nb; b++) {
        size_t pos = pos0 + b;
        iy0[b] = (int64_t)(pos / Wo) * c->stride_h - c->pad_top;
        ix0[b] = (int64_t)(pos % Wo) * c->stride_w - c->pad_left;
    }
    size_t col = 0;
    for (int64_t ci = 0; ci < Cg; ci++) {
        const float *xc = x + (size_t)(q * Cg + ci) * (size_t)(H * W);
        for (uint32_t ky = 0; ky < c->kernel_h; ky++)
            for (uint32_t kx = 0; kx < c->kernel_w; kx++, col++) {
                float *dst = blk + col * BLK;
                for (size_t b = 0; b < nb; b++) {
                    int64_t iy = iy0[b] + (int64_t)ky * c->dilation_h;
                    int64_t ix = ix0[b] + (int64_t)kx * c->dilation_w;
                    dst[b] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f
                                                                      : xc[iy * W + ix];
                }
                for (size_t b = nb; b < BLK; b++)
                    dst[b] = 0.0f;
            }
    }
}

typedef struct conv_pass {
    const gnode_t *nd;
    const eie_shape_t *xs;
    const float *x; /* one sample */
    float *y;       /* one sample */
    uint32_t q;     /* group */
    size_t t0, P, Wo;
    bool own; /* each PE phases the whole input into its own copy (own_xq) */
} conv_pass_t;

/* Phase 1 of a tile: PE p lowers blocks p, p + N, ... and finds their nonzero columns. */
static void conv_lower(gjob_t *job, const conv_pass_t *cp, unsigned p)
{
    eie_cpu_graph_t *g = job->g;
    size_t nblk = (cp->nd->tile + BLK - 1) / BLK;
    for (size_t bi = p; bi < nblk; bi += g->n) {
        size_t pos0 = cp->t0 + bi * BLK;
        if (pos0 >= cp->P)
            break;
        size_t nb = cp->P - pos0 < BLK ? cp->P - pos0 : BLK;
        float *blk = g->patch + bi * (size_t)cp->nd->cols * BLK;
        im2col_block(cp->nd, cp->xs, cp->x, cp->q, pos0, nb, cp->Wo, blk);
        g->blk_n[bi] = (uint32_t)g->k->active(blk, cp->nd->cols, BLK, 1, nb,
                                              g->blk_active + bi * g->blk_stride);
        g->pe[p].acts += g->blk_n[bi];
    }
}

/* Phase 2 of a tile: PE p applies its rows of the matrix to every block. */
static void conv_apply(gjob_t *job, const conv_pass_t *cp, unsigned p)
{
    eie_cpu_graph_t *g = job->g;
    gpe_t *sc = &g->pe[p];
    const gnode_t *nd = cp->nd;
    size_t nblk = (nd->tile + BLK - 1) / BLK;
    for (size_t bi = 0; bi < nblk; bi++) {
        size_t pos0 = cp->t0 + bi * BLK;
        if (pos0 >= cp->P)
            break;
        size_t nb = cp->P - pos0 < BLK ? cp->P - pos0 : BLK;
        const float *blk = g->patch + bi * (size_t)nd->cols * BLK;
        size_t S;
        uint32_t n_rows;
        unsigned v = eie_cpu_group_slot(g->n, cp->q, nd->rows_g, p);
        sc->entries += spmv(g, nd, cp->q, v, g->blk_active + bi * g->blk_stride, g->blk_n[bi],
                            blk, BLK, 1, nb, sc->acc, &S, &n_rows);
        for (uint32_t r = 0; r < n_rows; r++) {
            size_t co = (size_t)cp->q * nd->rows_g + (size_t)r * g->n + v;
            float bias = nd->bias[co];
            float *dst = cp->y + co * cp->P + pos0;
            for (size_t b = 0; b < nb; b++)
                dst[b] = sc->acc[r * S + b] + bias;
        }
    }
}

/* PE p's phased input of the conv cp: its own copy, or the shared one. */
static float *conv_xq(const eie_cpu_graph_t *g, const conv_pass_t *cp, unsigned p)
{
    return g->xq + (cp->own ? p * cp->nd->n_copies * cp->nd->copy_floats : 0);
}

/* Phase 1 of a direct conv: PE p pads and splits the input's channels by
 * stride phase: phase (ry, rx), channel c, element (i, j) is the padded
 * input's (i sh + ry, j sw + rx); and counts their nonzero inputs.
 * Every PE's rows read every channel. Where each PE phased a share of the
 * channels into one shared copy, a PE on N read (N - 1) / N of it from
 * other cores' caches, and phasing its share next run took those lines
 * back. So on several threads (cp->own) each PE phases every channel into
 * a copy of its own (up to OWN_XQ_FLOATS); one thread running all PEs
 * phases once, shared. Instrumented, eie-bench --conv, two threads, us a
 * run, phase + walk per PE: Alex-c5 shared 95-100 + 380-400 (one thread:
 * 57 + 609), own 68-107 + 304-314; Alex-c3 63-64 + 648 -> 55-69 + 585.
 * The PE that did not write the input reads it from the other core: the
 * slower phase of the two. */
static void conv_phases(gjob_t *job, const conv_pass_t *cp, unsigned p)
{
    eie_cpu_graph_t *g = job->g;
    const gnode_t *nd = cp->nd;
    const eie_conv2d_params_t *c = &nd->conv;
    int64_t C = cp->xs->dims[1], H = cp->xs->dims[2], W = cp->xs->dims[3];
    int64_t sh = c->stride_h, sw = c->stride_w;
    size_t c0 = 0, c1 = (size_t)C, plane = (size_t)nd->Hq * nd->Wq;
    if (!cp->own)
        share((size_t)C, p, g->n, &c0, &c1);
    float *xq = conv_xq(g, cp, p);
    uint64_t nz = 0;
    for (size_t ch = c0; ch < c1; ch++)
        for (int64_t ry = 0; ry < sh; ry++)
            for (int64_t rx = 0; rx < sw; rx++) {
                eie_conv_plane_t P = {.src = cp->x + ch * (size_t)(H * W),
                                      .H = H,
                                      .W = W,
                                      .y0 = ry - c->pad_top,
                                      .sy = sh,
                                      .x0 = rx - c->pad_left,
                                      .sx = sw,
                                      .dst = xq + ((size_t)((ry * sw + rx) * C) + ch) * plane,
                                      .Hq = nd->Hq,
                                      .Wq = nd->Wq,
                                      .copy_floats = nd->copy_floats,
                                      .n_copies = nd->n_copies};
                nz += g->k->conv_plane(&P, ry == 0 && rx == 0);
            }
    g->pe[p].nz = nz;
}

/* The nonzero inputs of the conv phased last, as PE p sees them: its own
 * count of every channel, or every PE's count of its share (after the
 * barrier). */
static uint64_t conv_nonzeros(const eie_cpu_graph_t *g, const conv_pass_t *cp, unsigned p)
{
    if (cp->own)
        return g->pe[p].nz;
    uint64_t nz = 0;
    for (unsigned pp = 0; pp < g->n; pp++)
        nz += g->pe[pp].nz;
    return nz;
}

/* Whether the conv phased last runs direct: a sixteenth or more of its
 * input nonzero (every PE finds the same count). */
static bool conv_goes_direct(const eie_cpu_graph_t *g, const conv_pass_t *cp, unsigned p)
{
    return conv_nonzeros(g, cp, p) * 16 >= g->t[cp->nd->inputs[0]].numel;
}

/* Entries of a PE's rows that one pass over the blocks of a direct conv
 * takes (256 KiB of entries: they stay in L2 while the pass reads the
 * phased input, which each pass reads again; block by block over all rows,
 * Alex-c3's 1.2 MB of entries would come from L3 at every block; 64 KiB
 * passes read Alex-c5's input five times a group, 2-4% slower at one
 * thread). */
#define DIRECT_CHUNK_ENTRIES (1u << 16)

/* Rows r0 .. r0 + n_rows - 1 of PE p (slot v), group q, of a direct conv
 * at the block of phase-image positions p0 .. p0 + lanes - 1: the conv form
 * a span of input channels at a time, then the lanes that are output
 * positions (column < Wo) written with the bias. */
static void conv_direct_block(eie_cpu_graph_t *g, const conv_pass_t *cp, uint32_t q, unsigned p,
                              unsigned v, uint32_t r0, uint32_t n_rows, size_t p0, unsigned lanes)
{
    const gnode_t *nd = cp->nd;
    const eie_pe_layer_t *L = &nd->sh[q].pe[v];
    const uint32_t *sp = nd->span[(size_t)q * g->n + v];
    gpe_t *sc = &g->pe[p];
    size_t Wq = nd->Wq, Wo = cp->Wo, Pq = cp->P / Wo * Wq;
    /* the block's output positions: runs of lanes within one output row */
    eie_conv_run_t run[EIE_CONV_LANES];
    size_t ns = 0;
    for (size_t b = 0; b < lanes && p0 + b < Pq;) {
        size_t oy = (p0 + b) / Wq, ox = (p0 + b) % Wq;
        size_t n = Wq - ox < lanes - b ? Wq - ox : lanes - b;
        if (ox < Wo)
            run[ns++] = (eie_conv_run_t){
                .lane = (uint32_t)b, .len = (uint32_t)(Wo - ox < n ? Wo - ox : n), .at = oy * Wo + ox};
        b += n;
    }
    for (uint32_t t = 0; t < nd->n_spans; t++) {
        eie_conv_rows_t R = {.ent = L->rentw,
                             .beg = sp + (size_t)t * L->n_rows + r0,
                             .end = sp + (size_t)(t + 1) * L->n_rows + r0,
                             .n_rows = n_rows,
                             .n_codes = L->n_codes};
        sc->entries +=
            g->k->rows_conv(&R, nd->sh[q].codebook, conv_xq(g, cp, p) + p0, sc->acc, t > 0, lanes);
    }
    size_t co = (size_t)q * nd->rows_g + (size_t)r0 * g->n + v; /* row r0's channel */
    g->k->conv_out(sc->acc, lanes, n_rows, run, ns, nd->bias + co, g->n, cp->y + co * cp->P,
                   (size_t)g->n * cp->P);
}

/* Phase 2 of a direct conv: PE p's rows of every group at every block of
 * EIE_CONV_LANES positions of the phase image's rows (the last block 32,
 * or 16, where no more are left), a chunk of rows at a time. AlexNet's
 * 13-wide conv3-conv5 (208 positions of 16-float rows) end on 16: a last
 * block of 32 walked their every entry for 16 lanes dropped. */
static void conv_direct(gjob_t *job, const conv_pass_t *cp, unsigned p)
{
    eie_cpu_graph_t *g = job->g;
    const gnode_t *nd = cp->nd;
    size_t Pq = cp->P / cp->Wo * nd->Wq;
    if (p == 0) /* here the nonzero inputs, not the active patch columns */
        g->pe[p].acts += conv_nonzeros(g, cp, p);
    for (uint32_t q = 0; q < nd->groups; q++) {
        unsigned v = eie_cpu_group_slot(g->n, q, nd->rows_g, p);
        const eie_pe_layer_t *L = &nd->sh[q].pe[v];
        uint64_t chunk = L->n_ent > 0 ? (uint64_t)DIRECT_CHUNK_ENTRIES * L->n_rows / L->n_ent
                                      : L->n_rows;
        chunk = chunk < 4 ? 4 : chunk / 4 * 4;
        for (uint32_t r0 = 0; r0 < L->n_rows; r0 += (uint32_t)chunk) {
            uint32_t n_rows = L->n_rows - r0 < chunk ? L->n_rows - r0 : (uint32_t)chunk;
            for (size_t p0 = 0; p0 < Pq;) {
                unsigned lanes = Pq - p0 > 32 ? EIE_CONV_LANES : Pq - p0 > 16 ? 32 : 16;
                conv_direct_block(g, cp, q, p, v, r0, n_rows, p0, lanes);
                p0 += lanes;
            }
        }
    }
}

/* A direct conv on PE p alone: its own phased input, then its walk. */
static void conv_own(gjob_t *job, const conv_pass_t *cp, unsigned p)
{
    conv_phases(job, cp, p);
    if (conv_goes_direct(job->g, cp, p))
        conv_direct(job, cp, p);
}

/* Plain-loop nodes: PE p's share of the chunk. */
static void run_plain(gjob_t *job, const gnode_t *nd, unsigned p, size_t s0, size_t B)
{
    eie_cpu_graph_t *g = job->g;
    unsigned N = g->n;
    const gtensor_t *xt = &g->t[nd->inputs[0]], *yt = &g->t[nd->output];
    const float *x = tensor_at(job, nd->inputs[0], s0);
    float *y = tensor_at(job, nd->output, s0);
    size_t a, e;
    switch (nd->kind) {
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
        for (size_t b = 0; b < B; b++)
            eie_op_pool2d(nd->kind == EIE_LAYER_MAXPOOL2D, &nd->pool, x + b * xt->numel,
                          (uint32_t)xt->shape.dims[1], (uint32_t)xt->shape.dims[2],
                          (uint32_t)xt->shape.dims[3], y + b * yt->numel,
                          (uint32_t)yt->shape.dims[2], (uint32_t)yt->shape.dims[3], p, N);
        break;
    case EIE_LAYER_GLOBAL_AVGPOOL:
        for (size_t b = 0; b < B; b++)
            eie_op_global_avgpool(x + b * xt->numel, (uint32_t)xt->shape.dims[1],
                                  (size_t)(xt->shape.dims[2] * xt->shape.dims[3]),
                                  y + b * yt->numel, p, N);
        break;
    case EIE_LAYER_ADD: {
        const float *x2 = tensor_at(job, nd->inputs[1], s0);
        share(B * yt->numel, p, N, &a, &e);
        for (size_t i = a; i < e; i++)
            y[i] = x[i] + x2[i];
        break;
    }
    case EIE_LAYER_CONCAT: {
        size_t outer, n, inner;
        eie_op_axis_split(&yt->shape, nd->axis, &outer, &n, &inner);
        for (size_t it = p; it < B * nd->n_inputs; it += N) {
            size_t b = it / nd->n_inputs, k = it % nd->n_inputs, off = 0;
            for (size_t k2 = 0; k2 < k; k2++)
                off += (size_t)g->t[nd->inputs[k2]].shape.dims[nd->axis] * inner;
            const gtensor_t *it_t = &g->t[nd->inputs[k]];
            size_t chunk = (size_t)it_t->shape.dims[nd->axis] * inner;
            eie_op_concat_one(tensor_at(job, nd->inputs[k], s0) + b * it_t->numel, chunk, outer,
                              n * inner, y + b * yt->numel + off, 0, 1);
        }
        break;
    }
    case EIE_LAYER_FLATTEN:
    case EIE_LAYER_RESHAPE:
        share(B * yt->numel, p, N, &a, &e);
        memcpy(y + a, x + a, (e - a) * sizeof(float));
        break;
    case EIE_LAYER_ACTIVATION:
        if (nd->act == EIE_ACT_SOFTMAX) {
            for (size_t b = 0; b < B; b++) {
                share(yt->numel, p, N, &a, &e);
                memcpy(y + b * yt->numel + a, x + b * xt->numel + a, (e - a) * sizeof(float));
            }
            break; /* the softmax itself runs after a barrier: see run_graph */
        }
        share(B * yt->numel, p, N, &a, &e);
        g->k->act_n(nd->act, x + a, y + a, e - a);
        break;
    default:
        break;
    }
}

/* Runs every phase of the job for PEs p0 .. p1 - 1, meeting at barriers when pooled. */
static void run_graph(gjob_t *job, unsigned p0, unsigned p1, eie_pool_t *pool)
{
    eie_cpu_graph_t *g = job->g;
#define PHASE(CALL)                                                                            \
    do {                                                                                       \
        for (unsigned p = p0; p < p1; p++)                                                     \
            CALL;                                                                              \
        if (pool != NULL)                                                                      \
            eie_pool_barrier(pool);                                                            \
    } while (0)
    /* whole steps of the run's sequences a chunk (n_seq <= g->max_seq <= g->chunk) */
    size_t K = job->n_seq, chunk = g->chunk / K * K;
    for (size_t s0 = 0; s0 < job->batch; s0 += chunk) {
        size_t B = job->batch - s0 < chunk ? job->batch - s0 : chunk;
        for (size_t i = 0; i < g->n_nodes; i++) {
            const gnode_t *nd = &g->nodes[i];
            if (nd->kind == EIE_LAYER_FC) {
                PHASE(run_fc(job, nd, p, s0, B));
                if (fc_staged(g, nd, B))
                    PHASE(fc_gather(job, nd, p, s0, B));
            } else if (nd->kind == EIE_LAYER_LSTM) {
                /* steps in order, one barrier each: every PE reads all of h_{t-1};
                   y_t in unit order after it, with the next step */
                size_t t0 = s0 / K, t1 = (s0 + B) / K;
                for (size_t t = t0; t < t1; t++)
                    PHASE({
                        if (t > t0)
                            lstm_out(job, nd, p, s0, t - 1);
                        run_lstm_step(job, (gnode_t *)nd, p, s0, t);
                    });
                PHASE(lstm_out(job, nd, p, s0, t1 - 1));
            } else if (nd->kind == EIE_LAYER_CONV2D) {
                const gtensor_t *xt = &g->t[nd->inputs[0]], *yt = &g->t[nd->output];
                conv_pass_t cp = {.nd = nd, .xs = &xt->shape, .Wo = (size_t)yt->shape.dims[3]};
                cp.P = (size_t)(yt->shape.dims[2] * yt->shape.dims[3]);
                for (size_t b = 0; b < B; b++) {
                    cp.x = tensor_at(job, nd->inputs[0], s0) + b * xt->numel;
                    cp.y = tensor_at(job, nd->output, s0) + b * yt->numel;
                    /* each PE's own phased input needs no barrier before its walk */
                    cp.own = nd->own_xq && pool != NULL;
                    if (nd->direct && cp.own) {
                        PHASE(conv_own(job, &cp, p));
                        if (conv_goes_direct(g, &cp, p0))
                            continue;
                    } else if (nd->direct) {
                        PHASE(conv_phases(job, &cp, p));
                        if (conv_goes_direct(g, &cp, p0)) {
                            PHASE(conv_direct(job, &cp, p));
                            continue;
                        }
                    }
                    for (cp.q = 0; cp.q < nd->groups; cp.q++)
                        for (cp.t0 = 0; cp.t0 < cp.P; cp.t0 += nd->tile) {
                            PHASE(conv_lower(job, &cp, p));
                            PHASE(conv_apply(job, &cp, p));
                        }
                }
            } else {
                PHASE(run_plain(job, nd, p, s0, B));
                if (nd->kind == EIE_LAYER_ACTIVATION && nd->act == EIE_ACT_SOFTMAX) {
                    const gtensor_t *yt = &g->t[nd->output];
                    size_t outer, n, inner;
                    eie_op_axis_split(&yt->shape, nd->axis, &outer, &n, &inner);
                    for (size_t b = 0; b < B; b++)
                        PHASE(eie_op_softmax_axis(tensor_at(job, nd->output, s0) + b * yt->numel,
                                                  &yt->shape, nd->axis,
                                                  p, g->n));
                }
            }
        }
        if (p0 == 0)
            for (size_t i = 0; i < g->n_outputs; i++) {
                const gtensor_t *yt = &g->t[g->outputs[i]];
                if (yt->input >= 0)
                    memcpy(job->out[i] + s0 * yt->numel, tensor_at(job, g->outputs[i], s0),
                           B * yt->numel * sizeof(float));
            }
        /* an LSTM's final state, each PE its share */
        for (size_t i = 0; i < g->n_outputs && s0 + B == job->batch; i++)
            if (g->out_state[i] != NULL)
                for (unsigned p = p0; p < p1; p++)
                    final_state(g, i, job->batch / K, K, p, job->out[i]);
        if (pool != NULL)
            eie_pool_barrier(pool); /* the next chunk reuses the buffers */
    }
#undef PHASE
}

static void job_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    gjob_t *job = (gjob_t *)base;
    gpe_t *sc = &job->g->pe[pe];
    sc->entries = sc->acts = 0;
    run_graph(job, pe, pe + 1, pool);
    atomic_fetch_add_explicit(&job->entries, sc->entries, memory_order_relaxed);
    atomic_fetch_add_explicit(&job->acts, sc->acts, memory_order_relaxed);
}

static void job_run_serial(eie_pool_job_t *base, unsigned slot, eie_pool_t *pool)
{
    gjob_t *job = (gjob_t *)base;
    eie_cpu_graph_t *g = job->g;
    (void)slot;
    (void)pool;
    for (unsigned p = 0; p < g->n; p++)
        g->pe[p].entries = g->pe[p].acts = 0;
    run_graph(job, 0, g->n, NULL);
    for (unsigned p = 0; p < g->n; p++) {
        atomic_fetch_add_explicit(&job->entries, g->pe[p].entries, memory_order_relaxed);
        atomic_fetch_add_explicit(&job->acts, g->pe[p].acts, memory_order_relaxed);
    }
}

static void job_finish(eie_pool_job_t *base)
{
    gjob_t *job = (gjob_t *)base;
    eie_run_info_t info = {
        .entries = atomic_load_explicit(&job->entries, memory_order_relaxed),
        .nonzero_acts = atomic_load_explicit(&job->acts, memory_order_relaxed),
        .pe_busy_max_ns = atomic_load_explicit(&job->base.busy_max_ns, memory_order_relaxed),
        .pe_busy_min_ns = atomic_load_explicit(&job->base.busy_min_ns, memory_order_relaxed)};
    eie_run_done_fn done = job->done;
    void *user = job->user;
    free(job);
    done(user, EIE_STATUS_OK, &info, NULL);
}

size_t eie_cpu_graph_max_sequences(const eie_cpu_graph_t *g)
{
    return g->max_seq;
}

/* Queues a run of n_seq sequences (1: a plain batch) of steps each, lengths as
 * eie_cpu_graph_submit_sequences. */
static eie_status_t submit(eie_pool_t *pool, eie_cpu_graph_t *g, const float *const *inputs,
                           size_t n_seq, size_t steps, const size_t *lengths,
                           float *const *outputs, eie_run_done_fn done, void *user, int join,
                           eie_error_t *err)
{
    if (n_seq == 0 || n_seq > g->max_seq) /* max_seq is at least 1 */
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "cpu: %zu sequences in one run, over the %zu this graph takes",
                             n_seq, g->max_seq);
    size_t batch = n_seq * steps; /* samples, time-major */
    bool serial = run_is_serial(g, n_seq, batch);
    if (serial && g->one_pe != NULL)
        g = g->one_pe;
    size_t arrays = (g->n_inputs + g->n_outputs) * sizeof(float *);
    gjob_t *job = calloc(1, sizeof *job + arrays);
    if (job == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory queueing a run");
    job->in = (const float **)(job + 1);
    job->out = (float **)(job->in + g->n_inputs);
    memcpy(job->in, inputs, g->n_inputs * sizeof *job->in);
    memcpy(job->out, outputs, g->n_outputs * sizeof *job->out);
    job->g = g;
    job->n_seq = n_seq;
    for (size_t k = 0; k < n_seq; k++)
        job->len[k] = lengths != NULL ? lengths[k] : steps;
    job->batch = batch;
    job->done = done;
    job->user = user;
    job->base.finish = job_finish;
    job->base.run = serial ? job_run_serial : job_run;
    job->base.slots = serial ? 1 : 0;
    if (join)
        eie_pool_submit_join(pool, &job->base);
    else
        eie_pool_submit(pool, &job->base);
    return EIE_STATUS_OK;
}

eie_status_t eie_cpu_graph_submit(eie_pool_t *pool, eie_cpu_graph_t *g,
                                  const float *const *inputs, size_t batch,
                                  float *const *outputs, eie_run_done_fn done, void *user,
                                  int join, eie_error_t *err)
{
    return submit(pool, g, inputs, 1, batch, NULL, outputs, done, user, join, err);
}

eie_status_t eie_cpu_graph_submit_sequences(eie_pool_t *pool, eie_cpu_graph_t *g,
                                            const float *const *inputs, size_t n_seq,
                                            size_t steps, const size_t *lengths,
                                            float *const *outputs, eie_run_done_fn done,
                                            void *user, int join, eie_error_t *err)
{
    return submit(pool, g, inputs, n_seq, steps, lengths, outputs, done, user, join, err);
}
