/*
 * exact.h - the run-time form of a sparse layer stored exactly (internal):
 * each nonzero keeps its own float32 (FORMAT.md, "Sparse layer", storage 1).
 *
 * Rows are partitioned over PEs as for shared layers (EIE sec. III-B: row i
 * on PE i mod N), each PE in CSC form: column j's entries are
 * [ptr[j], ptr[j+1]), each a local row and its value. There is no codebook
 * to decode; the kernel is the spmv of kernels.h with the value read from
 * the entry instead of looked up.
 */
#ifndef EIE_CPU_EXACT_H
#define EIE_CPU_EXACT_H

#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"
#include "format/format.h"

typedef struct eie_pe_exact {
    uint32_t n_rows; /* local rows r; global row i = r * N + pe */
    uint32_t *ptr;   /* cols + 1 */
    uint32_t *row;   /* local row of each entry */
    float *val;      /* value of each entry */
    uint64_t n_ent;
} eie_pe_exact_t;

typedef struct eie_cpu_exact {
    uint32_t rows, cols;
    unsigned n_pes;
    eie_pe_exact_t *pe;
    uint64_t nnz;
    uint64_t layout_bytes;
} eie_cpu_exact_t;

/* Partitions and packs an EXACT fc over n_pes PEs into out. */
eie_status_t eie_cpu_exact_init(const eie_fc_t *fc, unsigned n_pes, eie_cpu_exact_t *out,
                                eie_error_t *err);
/* Frees what eie_cpu_exact_init allocated. */
void eie_cpu_exact_clear(eie_cpu_exact_t *x);

/*
 * acc[r * S + b] += sum over active j of val(r, j) * in[j*is_j + b*is_b], b < B
 * (S >= B: the accumulator stride); returns the entries walked. Each row
 * sums its entries in increasing column order, whatever N is.
 */
uint64_t eie_cpu_spmv_exact(const eie_pe_exact_t *L, const uint32_t *active, size_t n_active,
                            const float *in, size_t is_j, size_t is_b, size_t B, size_t S,
                            float *acc);

#endif
