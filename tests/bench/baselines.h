/*
 * baselines.h - the float baselines eie-bench measures the cpu backend
 * against, written as a competitor would write them and compiled with
 * -O3 -march=native -ffast-math (BL_CFLAGS, see meson.build); the engine is
 * built as the project builds it.
 *
 * A layer y = W x + b (W rows x cols, x and y batch-major: x[b * cols + j],
 * y[b * rows + i], as eie_net_run takes them) is kept in two float forms:
 *   csc    float CSC (int32 row, float value), skipping zero activations:
 *          the list of nonzero activations is built once per run, columns
 *          are walked unrolled with a prefetch of the next one; for a batch
 *          B > 1 the accumulators are [row][S] (S = B rounded up to 2, 4, 8,
 *          16), one packed FMA per entry.
 *   csc-s  csc at batch 1, 16 entries of a column at once on AVX-512: gather
 *          their accumulators, one FMA, scatter back (a column's rows are
 *          distinct, so no conflicts); absent without AVX-512F.
 *   csr    float CSR (int32 column, float value), every column: four partial
 *          sums per row at batch 1, the input transposed to [col][S] and S
 *          lanes at once (four partial sums) for B > 1.
 *   csr-g  csr at batch 1 with the activations gathered (AVX-512 or AVX2
 *          gathers, two partial sums); absent where neither is compiled in.
 * With 2 threads the rows are split into two blocks of equal nonzeros, each
 * its own CSC/CSR, run on the engine's spin-then-sleep PE pool
 * (engine/pe/pool.h): the caller takes one block, a pool thread the other.
 * CSC: each thread lists the nonzero columns itself (no barrier); CSR at
 * B > 1: the two transpose half the input each and meet at the pool's
 * barrier. Below 2^15 entries of work a run stays on the calling thread,
 * as the engine's does.
 */
#ifndef EIE_BENCH_BASELINES_H
#define EIE_BENCH_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "pe/pool.h"

#define BL_MAX_BATCH   16u
#define BL_MAX_THREADS 2u

typedef enum bl_method {
    BL_CSC,
    BL_CSC_SCATTER,
    BL_CSR,
    BL_CSR_GATHER,
    BL_METHOD_COUNT
} bl_method_t;

typedef struct bl_fc bl_fc_t;

/* The flags the baselines were compiled with, and the widest vector ISA
 * they use ("avx512f", "avx2", "sse2"). */
const char *bl_cflags(void);
const char *bl_isa(void);
/* The method's name ("csc", "csc-s", "csr", "csr-g"). */
const char *bl_method_name(bl_method_t m);
/* Whether m runs at batch B in this build (csc-s, csr-g: batch 1 only). */
int bl_method_available(bl_method_t m, size_t B);

/*
 * Builds both forms of the layer (w row-major, rows x cols; bias rows),
 * split into threads row blocks (1..BL_MAX_THREADS); with 2, pool must be a
 * pool of 2 PEs, used for every run. Copies what it needs; NULL on out of
 * memory. Free with bl_fc_free.
 */
bl_fc_t *bl_fc_init(const float *w, const float *bias, uint32_t rows, uint32_t cols,
                    unsigned threads, eie_pool_t *pool);
void bl_fc_free(bl_fc_t *fc);
/* y = W x + b for B inputs (1..BL_MAX_BATCH) by method m (available at B). */
void bl_fc_run(bl_fc_t *fc, bl_method_t m, const float *x, size_t B, float *y);
/* The last run's busiest and least busy thread's time in it (ns), as the
 * engine reports its PEs' (eie_run_info_t); 0 when it ran on one thread. */
void bl_fc_busy(const bl_fc_t *fc, uint64_t *max_ns, uint64_t *min_ns);
/* Bytes of the CSC form (entries and column pointers of every block). */
uint64_t bl_fc_csc_bytes(const bl_fc_t *fc);

#endif
