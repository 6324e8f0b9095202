/*
 * layout.h - the run-time form of an FC layer on N PEs (internal).
 *
 * EIE sec. III-B: row i belongs to PE i mod N, and each PE keeps its rows in
 * CSC form: per column j its entries are ent[ptr[j] .. ptr[j+1]). The file
 * stores (code, 4-bit zero-run) entries with fillers; at load time they are
 * pre-decoded once into absolute PE-local row offsets (BENCH_NOTES: the
 * serial run sum and nibble unpacking bound a naive decoder), fillers
 * dropped, still compressed:
 *   narrow: uint16 = local_row << 4 | code   (code_bits <= 4, <= 4096 local rows)
 *           or local_row << 5 | code          (5-bit codes, <= 2048 local rows:
 *           Deep Compression's fc layers), eie_cpu_fc_t.narrow_shift
 *   wide:   uint32 = local_row << 8 | code   (otherwise; but a taller PE with
 *           codes of at most 5 bits keeps narrow blocks of rows,
 *           eie_pe_layer_t.blocks)
 * The codebook is expanded to float once per layer.
 *
 * A layer may also keep each PE's entries row by row (the row form), in
 * column order, for runs that find most columns active: a batch-1 run with
 * nearly every activation nonzero (LSTM gates), a batch of 4 or more (a
 * column is skipped only if all its lanes are zero), a convolution
 * (graph.c). Skipping saves little there, and a row's sums need no store
 * per entry (kernels.h). Narrow: uint16 = col << 4 | code (code_bits <= 4)
 * or col << 5 | code (5-bit codes); over 4096 (2048) columns the row form
 * is split into spans of that many, and col counts from the entry's span's
 * first column (eie_pe_span_base); else wide: uint32 = col << 8 | code
 * (cols < 2^24). It costs the entries once more in memory.
 */
#ifndef EIE_CPU_LAYOUT_H
#define EIE_CPU_LAYOUT_H

#include <stdint.h>

#include "eie/status.h"
#include "format/format.h"

/* Entries past the last column (or row, in the row form) that a PE's entry
 * array keeps readable (zero): a kernel may load a column's or row's last
 * entries as one word or vector (the AVX2 batch-1 kernel reads 8), so every
 * layout allocates them. */
#define EIE_ENTRY_SLACK 8u

typedef struct eie_pe_layer {
    uint32_t n_rows; /* local rows r; global row i = r * N + pe */
    uint32_t *ptr;   /* cols + 1 */
    void *ent;       /* uint16_t (narrow) or uint32_t (wide) entries */
    uint64_t n_ent;
    /* 2^code_bits of the layer: every entry's code is below it (0: not
       known, up to 256). */
    uint32_t n_codes;
    /* The row form, or NULL: row r's entries are rent (or rentw)
       [rptr[r] .. rptr[r+1]), in column order. */
    uint32_t *rptr; /* n_rows + 1 */
    uint16_t *rent;  /* narrow: col << 4 | code */
    uint32_t *rentw; /* wide: col << 8 | code; at most one of rent, rentw */
    /* The row form split by column into n_rspans spans of
       eie_pe_span_cols columns, where the input is wider than a narrow
       entry names (4096 columns, 2048 with 5-bit codes) and entries are
       narrow, or wider than EIE_ROW_SPAN_MIN_COLS (wide ones); else NULL
       and n_rspans 0 (one span: rptr). */
    uint32_t n_rspans;
    uint32_t *rspan; /* (n_rspans + 1) * n_rows */
    /* A PE of more local rows than a narrow entry names
       (eie_narrow_max_rows) whose codes fit 5 bits keeps its column form
       in n_blocks blocks of block_rows
       consecutive local rows (the last may have fewer), each a narrow column
       form of its own, rows counted from the block's first; ptr and ent are
       then NULL, and eie_cpu_spmv (kernels.h) walks the blocks in turn.
       Otherwise 0 and NULL. */
    uint32_t n_blocks, block_rows;
    struct eie_pe_layer *blocks;
} eie_pe_layer_t;

/* A narrow entry's code field for codes of code_bits (at most 5): 4 bits,
 * or 5; the local row takes the other 16 - shift. */
static inline uint32_t eie_narrow_shift(uint32_t code_bits)
{
    return code_bits <= 4 ? 4 : 5;
}
/* Local rows a narrow entry names for codes of code_bits (4096 with 4-bit
 * codes, 2048 with 5-bit); 0 past 5 bits (wide entries only). A taller
 * PE's entries would be 32-bit; its column form is split into blocks of at
 * most this many rows instead (2 bytes an entry, not 4): NT-Wd-sized (8791
 * x 600), 4-bit codes, one PE's column walk at batch 1, kernel alone,
 * medians: 0.43-0.45 ns an entry wide, 0.40-0.42 in 3 narrow blocks; a
 * 2-PE slice (4396 rows) 0.31-0.33 against 0.29-0.31 in 2. Each block walks
 * every active column, so a layer keeps one wide form where its blocks'
 * columns would average fewer than EIE_BLOCK_MIN_ENTRIES entries. */
#define EIE_BLOCK_MIN_ENTRIES 8u
static inline uint32_t eie_narrow_max_rows(uint32_t code_bits)
{
    return code_bits > 5 ? 0 : UINT32_C(1) << (16 - eie_narrow_shift(code_bits));
}

/* A batch's row form reads a column's 16 activations (64 bytes) an entry,
 * in no order. Inputs of more than 16384 columns (1 MiB at 16 lanes, a
 * Zen 5 core's L2; VGG-6's 25088 are 1.6 MiB) are walked a span of 4096
 * columns (256 KiB) at a time, every row's sums carried from span to
 * span. Batch 16, VGG-6, builds with and without spans alternating three
 * times: 1 thread 3720-4462 us against 4422-4680, 2 threads 1896-2036
 * against 2757-2996. Alex-6 (9216 columns, 576 KiB) in three spans of wide
 * entries was 5-15% slower than whole.
 *
 * A span's columns fit a narrow entry's 12 bits counted from its first, so
 * where codes fit 4 bits every input over 4096 columns is walked in spans
 * of narrow entries: 2 bytes an entry, not 4. eie-bench, builds before
 * and after alternating three times, medians, us, 1 / 2 threads: VGG-6 at
 * batch 16 3653-3953 -> 2832-3457 / 1809-1873 -> 1635-1763; Alex-6 (now 3
 * spans) at batch 16 2040-2422 -> 1916-2161 / 1030-1282 -> 987-1105, at
 * batch 4 1426-1805 -> 1515-1646 / 725-848 -> 752-887: level to 15%
 * slower at 2 threads there, kept for the batch-16 gain and the bytes. */
#define EIE_ROW_SPAN_COLS     4096u
#define EIE_ROW_SPAN_MIN_COLS (4 * EIE_ROW_SPAN_COLS)

/* The code field of L's narrow row-form entries: 4 bits, or 5 for 5-bit
 * codes (n_codes is set wherever rent is). 5-bit codes in 16-bit row
 * entries, spans of 2048 columns, against 32-bit whole rows: eie-bench
 * --bits 5, one thread, builds alternating twice, per round against the
 * best float method at batch 16: Alex-6 0.82-0.87 -> 0.77-0.78, Alex-7
 * 0.99-1.05 -> 0.89-0.90, VGG-6 0.87 -> 0.74-0.77, NT-Wd 1.02-1.10 ->
 * 0.91-0.97, VGG-7 1.09-1.12 -> 1.11-1.13 (its 2 spans of 82 entries a
 * row); bytes a nonzero 6.0-6.1 -> 4.1. */
static inline uint32_t eie_pe_row_shift(const eie_pe_layer_t *L)
{
    return L->n_codes > 16 ? 5 : 4;
}
/* The columns of a span of L's row form: as many as a narrow entry names,
 * or EIE_ROW_SPAN_COLS for wide entries. */
static inline uint32_t eie_pe_span_cols(const eie_pe_layer_t *L)
{
    return L->rent != NULL ? UINT32_C(1) << (16 - eie_pe_row_shift(L)) : EIE_ROW_SPAN_COLS;
}
/* The column that row-form entries of L in span t count from. */
static inline size_t eie_pe_span_base(const eie_pe_layer_t *L, uint32_t t)
{
    return L->rent != NULL && L->rspan != NULL ? (size_t)t * eie_pe_span_cols(L) : 0;
}

/* Row r's entries split by column into spans of span_cols columns:
 * sp[t * n_rows + r] is the first of row r's entries at column
 * t * span_cols or more, for t = 0 .. n_spans (the last is the row's end).
 * sp has (n_spans + 1) * n_rows entries. Needs the row form (rptr) without
 * spans of its own (EIE_ROWS_WHOLE). */
void eie_pe_row_spans(const eie_pe_layer_t *L, uint32_t span_cols, uint32_t n_spans,
                      uint32_t *sp);

typedef struct eie_cpu_fc {
    uint32_t rows, cols, code_bits;
    unsigned n_pes;
    int wide;
    uint32_t narrow_shift; /* narrow entries: row << narrow_shift | code */
    float *codebook;       /* 256 floats, zero-padded past 2^code_bits */
    float *bias;     /* rows */
    eie_pe_layer_t *pe;
    uint64_t nnz;
    uint64_t eie_entries; /* entries of the 1-byte EIE form, local fillers included */
    uint64_t layout_bytes;
} eie_cpu_fc_t;

/* with_rows of eie_cpu_fc_init: the column form alone; the row form too,
 * in spans where the input is wide (layout.h); or the row form too, whole,
 * its columns counted from 0, for a caller that splits it its own way (the
 * direct convolution, graph.c). */
enum { EIE_ROWS_NONE = 0, EIE_ROWS = 1, EIE_ROWS_WHOLE = 2 };

/* Partitions and packs fc over n_pes PEs into out (which the caller clears);
 * with_rows (EIE_ROWS_*) asks for the row form too: narrow where the layer
 * allows it, else wide. */
eie_status_t eie_cpu_fc_init(const eie_fc_t *fc, unsigned n_pes, int force_wide, int with_rows,
                             eie_cpu_fc_t *out, eie_error_t *err);
/* Bytes eie_cpu_fc_init would allocate for fc (an upper bound, with either
 * row form where with_rows is not EIE_ROWS_NONE), worked out from the header
 * alone, so a caller can refuse before allocating. */
uint64_t eie_cpu_fc_layout_estimate(const eie_fc_t *fc, unsigned n_pes, int with_rows);
/* Frees what eie_cpu_fc_init allocated. */
void eie_cpu_fc_clear(eie_cpu_fc_t *fc);

#endif
