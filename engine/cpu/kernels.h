/*
 * kernels.h - the sparse kernels of the cpu backend (internal).
 *
 * One family, spmv: for every nonzero input activation a_j (the list that
 * EIE's leading-non-zero detection would broadcast, sec. III-A), a PE adds
 * codebook[code] * a_j into its private accumulator of each entry's local
 * row, for B inputs at once (each entry decoded once for the whole batch).
 * Like XNNPACK's kernel families: a scalar reference variant is always
 * present, SIMD variants are chosen once at start-up, and this one list
 * feeds dispatch, tests and benchmarks.
 */
#ifndef EIE_CPU_KERNELS_H
#define EIE_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/layout.h"
#include "eie/model.h"
#include "eie/status.h"

/* Most inputs one kernel call handles; larger batches run in chunks. */
#define EIE_KERNEL_MAX_BATCH 16u

/*
 * acc[r * S + b] += sum over active j of codebook[code(r, j)] * in[j*is_j + b*is_b]
 * for b < B, where S = eie_cpu_batch_stride(B): a kernel computes S lanes
 * (1, 2, 4, 8 or 16), the lanes past B on zero activations. acc has
 * L->n_rows * S + EIE_ACC_SLACK floats (the slack is scratch, left
 * undefined); B in 1..EIE_KERNEL_MAX_BATCH. codebook has 256 floats, zero
 * past 2^code_bits (eie_cpu_fc_t.codebook): kernels read whole 16-entry
 * books. Each product is rounded before it is added, in every variant, so
 * outputs are the same bits whatever the variant and the batch. Returns the
 * entries walked (the work EIE would do on this PE).
 */
typedef uint64_t (*eie_spmv_fn)(const eie_pe_layer_t *L, const float *codebook,
                                const uint32_t *active, size_t n_active, const float *in,
                                size_t is_j, size_t is_b, size_t B, float *acc);

/* Accumulator slots past a PE's rows that the batch-1 kernels use as sinks
 * (the AVX-512 one sends a column's masked-off tail lanes to 16 of them). */
#define EIE_ACC_SLACK 16u

/* The accumulator stride of a batch of B (see eie_spmv_fn). */
size_t eie_cpu_batch_stride(size_t B);

/* Whether a run of stride S (1 at batch 1) over a layer of rows x cols that
 * finds n_active columns active takes the row form: it walks every entry,
 * the column form only the active columns'. */
bool eie_cpu_rows_pay(size_t S, size_t n_active, size_t cols, size_t rows);

struct eie_cpu_kernel; /* below; its transpose16 moves the columns and rows */

/* Columns [dim p0 / N, dim p1 / N) of the B x dim batch-major x into xt,
 * column j's B values at xt[j * S] (the S - B lanes after them keep what
 * they hold): PE p's share of the copy a batch's row form reads. */
void eie_cpu_transpose_share(const struct eie_cpu_kernel *k, const float *x, size_t dim,
                             size_t B, size_t S, unsigned p0, unsigned p1, unsigned N, float *xt);

/* Rows [dim p0 / N, dim p1 / N) of a layer's output, left in each PE's
 * accumulators (acc[q]: PE q's, row r's B lanes at acc[q][r * S]), into the
 * B x dim batch-major x: row j is PE j mod N's local row j / N. The shares
 * start on 16-float boundaries, so two PEs write one cache line of x only
 * where a share ends mid-line (written by the PEs in turn, rows interleaved,
 * they would share every line). */
void eie_cpu_gather_share(const struct eie_cpu_kernel *k, float *const *acc, unsigned N,
                          size_t dim, size_t B, size_t S, unsigned p0, unsigned p1, float *x);

/*
 * EIE's leading-non-zero detection (sec. III-A): writes to active, in
 * increasing order, every j < n where some in[j*is_j + b*is_b] (b < B) is not
 * zero (NaN counts as nonzero, -0.0 as zero), and returns how many. active
 * needs room for n + EIE_ACTIVE_SLACK entries: SIMD variants store whole
 * vectors past the count.
 */
#define EIE_ACTIVE_SLACK 8u
typedef size_t (*eie_active_fn)(const float *in, size_t n, size_t is_j, size_t is_b, size_t B,
                                uint32_t *active);

/*
 * The row form at batch 1 (layout.h): acc[r] = sum over row r's entries of
 * codebook[code] * in[col], every column, zero or not, with in contiguous.
 * For layers whose activations are dense, where skipping saves nothing: a
 * row's sum stays in registers, with no load and store of an accumulator
 * per entry. Returns the entries walked (all of the PE's). Needs narrow
 * entries (4- or 5-bit codes; eie_cpu_rows_b1_fits), whole rows or spans.
 */
typedef uint64_t (*eie_rows_fn)(const eie_pe_layer_t *L, const float *codebook, const float *in,
                                float *acc);
/* Whether L's row form is one the batch-1 row form reads (layout.h). */
static inline bool eie_cpu_rows_b1_fits(const eie_pe_layer_t *L)
{
    return L->rent != NULL;
}

/*
 * The row form at batch B (2..EIE_KERNEL_MAX_BATCH), S = eie_cpu_batch_stride(B):
 * acc[r * S + b] = sum over row r's entries, in column order, of
 * codebook[code] * in[col * S + b], for b < S. in holds the batch
 * feature-major with stride S; lanes past B may hold anything, they reach
 * only acc's lanes past B. Each product is rounded, then added to one
 * running sum per lane that starts at +0, as in the column kernels; a
 * column whose activations are zero adds w * ±0 = ±0 to a sum that is never
 * -0 (it starts at +0, and x + y is -0 only when both are), which changes
 * no bit (codebooks are finite: the format refuses others). So the outputs
 * are those of the column form, on any PE count and at any batch, while a
 * row's S sums stay in registers: no accumulator load and store per entry.
 * Needs L->rent or L->rentw. Returns the entries walked (all of the PE's).
 */
typedef uint64_t (*eie_rows_batch_fn)(const eie_pe_layer_t *L, const float *codebook,
                                      const float *in, size_t B, float *acc);

/*
 * The conv form: as eie_rows_batch_fn, for lanes = 16, 32 or
 * EIE_CONV_LANES (64) lanes, but an entry is off << 8 | code, and its
 * lanes' activations are in[off + b]: a convolution's input, padded and
 * split by stride phase, read in place for consecutive output positions
 * (graph.c). Row r walks R->ent[R->beg[r]] .. R->ent[R->end[r] - 1], a
 * span of its entries in column order: a row's entries may be walked a
 * span (a range of input channels) at a time, so that the activations one
 * call reads stay in L1 (graph.c).
 * acc[r * lanes + b] is row r's sum for lane b, in column order, products
 * rounded, as in eie_rows_batch_fn (the bits of the patch-matrix forms);
 * it starts at +0, or with add at acc's value, the sum of the row's
 * earlier spans, so walking a row in spans gives the bits of walking it
 * whole. Returns the entries walked.
 */
#define EIE_CONV_LANES 64u
typedef struct eie_conv_rows {
    const uint32_t *ent;
    const uint32_t *beg, *end; /* row r: ent[beg[r]] .. ent[end[r] - 1] */
    uint32_t n_rows;
    uint32_t n_codes; /* every entry's code is below it (0: not known) */
} eie_conv_rows_t;
typedef uint64_t (*eie_rows_conv_fn)(const eie_conv_rows_t *R, const float *codebook,
                                     const float *in, float *acc, int add, unsigned lanes);

/*
 * A direct conv block's outputs: run k is len lanes from lane on, output
 * positions at .. at + len - 1 of one output row; row r of the n_rows
 * gets dst[r * dst_stride + at + i] = acc[r * lanes + lane + i] +
 * bias[r * bias_stride] for each run (rows interleave over the PEs, so a
 * PE's consecutive rows are dst_stride floats apart). At most
 * EIE_CONV_LANES lanes a run.
 */
typedef struct eie_conv_run {
    uint32_t lane, len;
    size_t at;
} eie_conv_run_t;
typedef void (*eie_conv_out_fn)(const float *acc, unsigned lanes, uint32_t n_rows,
                                const eie_conv_run_t *runs, size_t n_runs, const float *bias,
                                size_t bias_stride, float *dst, size_t dst_stride);

/*
 * One plane of a direct conv's phased input (graph.c, conv_phases): row i
 * of the Hq x Wq plane dst is row y0 + i sy of the H x W channel src, its
 * element j that row's element x0 + j sx, +0 where either lies outside
 * the channel (the padding); then copy s = 1 .. n_copies - 1, at dst + s
 * copy_floats, gets the plane from its element s on (Hq Wq - s floats; its
 * last s are not written). Returns the channel's nonzero floats (NaN
 * counts, -0.0 does not) where count, else 0. Moves only: the same bits
 * in every variant.
 */
typedef struct eie_conv_plane {
    const float *src;
    int64_t H, W, y0, sy, x0, sx;
    float *dst;
    size_t Hq, Wq, copy_floats;
    uint32_t n_copies;
} eie_conv_plane_t;
typedef uint64_t (*eie_conv_plane_fn)(const eie_conv_plane_t *P, int count);

/*
 * Sixteen rows' lanes to batch-major: out[b * ob + t] = rows[t][b] for t <
 * n <= 16 and b < B <= 16. Moves, no arithmetic: the same bits in every
 * variant.
 */
typedef void (*eie_transpose16_fn)(const float *const *rows, size_t n, size_t B, float *out,
                                   size_t ob);

/*
 * n LSTM units' element-wise steps (graph_ops.h, eie_op_lstm_cells): the
 * gates' pre-activations split by kind, the cells updated, h_t out. The
 * same C in every variant, compiled for its registers; no fused
 * multiply-adds, so the same bits.
 */
typedef void (*eie_lstm_cells_fn)(const float *gi, const float *go, const float *gf,
                                  const float *gc, float *c, float *h, size_t n);

/* y[i] = act(x[i]) for i < n, y may be x, not softmax (act.h,
 * eie_act_apply_n): eie_act_apply1's bits in every variant. */
typedef void (*eie_act_n_fn)(eie_act_t act, const float *x, float *y, size_t n);

typedef struct eie_cpu_kernel {
    const char *name;        /* "scalar", "avx2", "avx512" */
    int (*supported)(void);  /* whether this CPU runs it */
    eie_spmv_fn spmv_narrow; /* uint16 entries, 4-bit codes */
    eie_spmv_fn spmv_narrow5; /* uint16 entries, 5-bit codes */
    eie_spmv_fn spmv_wide;   /* uint32 entries */
    eie_active_fn active;    /* the nonzero columns of an input */
    eie_rows_fn rows_b1;     /* the row form, batch 1 */
    eie_rows_batch_fn rows_batch; /* the row form, batch 2..16 */
    eie_rows_conv_fn rows_conv;   /* the conv form, 32 or 64 output positions */
    eie_conv_out_fn conv_out;     /* a conv block's outputs, with the bias */
    eie_conv_plane_fn conv_plane; /* a plane of a direct conv's phased input */
    eie_transpose16_fn transpose16; /* a batch's sums out to batch-major */
    eie_lstm_cells_fn lstm_cells;   /* LSTM units' gates and cells */
    eie_act_n_fn act_n;             /* an element-wise activation over an array */
} eie_cpu_kernel_t;

/* All kernels, the scalar reference first. */
extern const eie_cpu_kernel_t eie_cpu_kernels[];
extern const size_t eie_cpu_kernel_count;

/* The fastest kernel this CPU supports (chosen once, cached). */
const eie_cpu_kernel_t *eie_cpu_kernel_best(void);

/* A kernel by name, or NULL if unknown or unsupported here. */
const eie_cpu_kernel_t *eie_cpu_kernel_find(const char *name);

/* The kernel an engine runs: the one named by name (the engine option
 * cpu_kernel) if not NULL or empty, else by the environment variable
 * EIE_KERNEL if set and not empty, else the best. Fails, with err naming the
 * value and the kernels this CPU runs, when the name is unknown or not
 * supported here. */
eie_status_t eie_cpu_kernel_select(const char *name, const eie_cpu_kernel_t **out,
                                   eie_error_t *err);

/*
 * The first line of each active column's entries (ent, esz bytes an entry,
 * column j from ptr[j]), prefetched in one pass before a column walk.
 * Columns are visited in activation order, each on a page of its own more
 * often than not (Alex-6: 738-byte columns at one PE, a third of them
 * active), and with caches and TLBs cold the walk's own prefetches, a few
 * columns ahead (kernels.c, prefetch_stream_start), left most of the misses
 * on its path. eie-bench --cold, one thread, the float CSC in the same
 * process, four runs: Alex-6 552-594 us -> 407-459, Alex-7 245-293 ->
 * 191-214, VGG-6 602-661 -> 347-404, VGG-7 134-165 -> 107-123. The same
 * prefetch 16 or 64 columns ahead inside the walk measured as none at all
 * (Alex-6 620-679, VGG-6 599-630): it is the burst that pays. Warm, the
 * pass costs a prefetch of a cached line a column (about 1% of VGG-7).
 */
void eie_cpu_prefetch_heads(const void *ent, size_t esz, const uint32_t *ptr,
                            const uint32_t *active, size_t n_active);

/* acc += PE layer L of cf applied to B lanes of in (eie_spmv_fn), with the
 * column walk cf's entries take: narrow, wide, or L's narrow row blocks
 * (layout.h) one after the other. acc as for eie_spmv_fn. */
uint64_t eie_cpu_spmv(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf, const eie_pe_layer_t *L,
                      const uint32_t *active, size_t n_active, const float *in, size_t is_j,
                      size_t is_b, size_t B, float *acc);

/* Whether a batch of B samples over PE layer L of cf, sample b's column j
 * at in[j * is_j + b * is_b], with n_active columns active in some sample,
 * walks fewer entry-nanoseconds sample by sample through the batch-1
 * column walk than as a batch (rows: the batch would take the row form).
 * Only batches of 2 (kernels.c). Counts each sample's active columns in
 * scratch (cf->cols + EIE_ACTIVE_SLACK). */
bool eie_cpu_split_pays(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf, const eie_pe_layer_t *L,
                        const float *in, size_t is_j, size_t is_b, size_t B, size_t n_active,
                        bool rows, uint32_t *scratch);

/* The run eie_cpu_split_pays chose: acc as the batch leaves it (row r's
 * lane b at acc[r * S + b], lanes past B zero), the same bits; acc needs
 * room past those for the samples' batch-1 sums, B x (L->n_rows +
 * EIE_ACC_SLACK), which a PE's EIE_KERNEL_MAX_BATCH lanes a row hold from 8
 * rows on. active: cf->cols + EIE_ACTIVE_SLACK. Returns the entries
 * walked. */
uint64_t eie_cpu_run_split(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf,
                           const eie_pe_layer_t *L, const float *in, size_t is_j, size_t is_b,
                           size_t B, uint32_t *active, float *acc);

#endif
