/* Partitioning an FC layer over PEs and packing the per-PE CSC; see layout.h. */
#include "pe/layout.h"

#include <stdlib.h>
#include <string.h>

void eie_cpu_fc_clear(eie_cpu_fc_t *fc)
{
    if (fc->pe != NULL)
        for (unsigned p = 0; p < fc->n_pes; p++) {
            free(fc->pe[p].ptr);
            free(fc->pe[p].ent);
            free(fc->pe[p].rptr);
            free(fc->pe[p].rent);
            free(fc->pe[p].rentw);
            free(fc->pe[p].rspan);
            for (uint32_t b = 0; b < fc->pe[p].n_blocks; b++) {
                free(fc->pe[p].blocks[b].ptr);
                free(fc->pe[p].blocks[b].ent);
            }
            free(fc->pe[p].blocks);
        }
    free(fc->pe);
    free(fc->codebook);
    free(fc->bias);
    memset(fc, 0, sizeof *fc);
}

/* Whether the row form's entries are narrow (else wide): codes of at most
 * 5 bits, in spans where the input is wider than they name; whole, for a
 * caller that splits the rows itself (EIE_ROWS_WHOLE), only 4-bit codes
 * over at most 4096 columns. */
static int rows_narrow(uint32_t cols, uint32_t code_bits, int with_rows)
{
    if (with_rows == EIE_ROWS_WHOLE)
        return code_bits <= 4 && cols <= EIE_ROW_SPAN_COLS;
    return code_bits <= 5;
}

/* The columns of a span of the row form (layout.h). */
static uint32_t row_span_cols(uint32_t cols, uint32_t code_bits, int with_rows)
{
    return rows_narrow(cols, code_bits, with_rows) ? eie_narrow_max_rows(code_bits)
                                                   : EIE_ROW_SPAN_COLS;
}

/* The spans of the row form (layout.h): narrow entries over the columns
 * they name, wide ones where the input is wider than EIE_ROW_SPAN_MIN_COLS. */
static uint32_t row_spans_for(uint32_t cols, uint32_t code_bits, int with_rows)
{
    uint32_t span = row_span_cols(cols, code_bits, with_rows);
    if (with_rows != EIE_ROWS)
        return 0;
    if (rows_narrow(cols, code_bits, with_rows))
        return cols > span ? (cols + span - 1) / span : 0;
    return cols > EIE_ROW_SPAN_MIN_COLS ? (cols + span - 1) / span : 0;
}

/* The wide row form's column field: 24 bits. */
#define ROWS_WIDE_MAX_COLS (1u << 24)

/* The row form of one PE: a counting sort of its column-major entries by
 * local row, which keeps each row's entries in column order; with n_spans,
 * each row's span starts are taken on the way (a span starts at the row's
 * first entry in or past its columns) and narrow entries count their
 * columns from their span's first. */
static int pack_rows(eie_pe_layer_t *L, uint32_t cols, int wide, uint32_t cs, int rows_wide,
                     uint32_t n_spans, uint32_t span_cols)
{
    const uint32_t nr = L->n_rows;
    L->rptr = calloc((size_t)nr + 1, sizeof(uint32_t));
    /* slack: EIE_ENTRY_SLACK (layout.h) */
    if (rows_wide)
        L->rentw = calloc(L->n_ent + EIE_ENTRY_SLACK, sizeof(uint32_t));
    else
        L->rent = calloc(L->n_ent + EIE_ENTRY_SLACK, sizeof(uint16_t));
    uint32_t *at = malloc(((size_t)nr + 1) * sizeof(uint32_t));
    uint32_t *next = NULL; /* per row: its first span not yet started */
    if (n_spans > 0) {
        /* + 1: a PE without rows still gets a pointer */
        L->rspan = malloc(((size_t)n_spans + 1) * nr * sizeof(uint32_t) + 1);
        L->n_rspans = n_spans;
        next = calloc((size_t)nr + 1, sizeof(uint32_t));
    }
    if (!L->rptr || !(L->rent || L->rentw) || !at || (n_spans > 0 && (!L->rspan || !next))) {
        free(at);
        free(next);
        return -1;
    }
    for (uint64_t q = 0; q < L->n_ent; q++) {
        uint32_t e = wide ? ((const uint32_t *)L->ent)[q] : ((const uint16_t *)L->ent)[q];
        L->rptr[(wide ? e >> 8 : e >> cs) + 1]++;
    }
    for (uint32_t r = 0; r < nr; r++)
        L->rptr[r + 1] += L->rptr[r];
    memcpy(at, L->rptr, ((size_t)nr + 1) * sizeof(uint32_t));
    for (uint32_t j = 0; j < cols; j++) {
        uint32_t t = j / span_cols;
        uint32_t c = n_spans > 0 && !rows_wide ? j - t * span_cols : j;
        for (uint32_t q = L->ptr[j]; q < L->ptr[j + 1]; q++) {
            uint32_t e = wide ? ((const uint32_t *)L->ent)[q] : ((const uint16_t *)L->ent)[q];
            uint32_t row = wide ? e >> 8 : e >> cs, code = wide ? e & 255 : e & ((1u << cs) - 1);
            for (; next != NULL && next[row] <= t; next[row]++)
                L->rspan[(size_t)next[row] * nr + row] = at[row];
            if (rows_wide)
                L->rentw[at[row]++] = c << 8 | code;
            else
                L->rent[at[row]++] = (uint16_t)(c << cs | code);
        }
    }
    for (uint32_t r = 0; next != NULL && r < nr; r++)
        for (; next[r] <= n_spans; next[r]++)
            L->rspan[(size_t)next[r] * nr + r] = L->rptr[r + 1];
    free(at);
    free(next);
    return 0;
}

/* PE L's wide column form (local_row << 8 | code, codes of code_bits <= 5)
 * into narrow blocks of consecutive rows (layout.h), where they pay. */
static int pack_blocks(eie_pe_layer_t *L, uint32_t cols, uint32_t code_bits)
{
    uint32_t max_rows = eie_narrow_max_rows(code_bits), cs = eie_narrow_shift(code_bits);
    uint32_t nb = (L->n_rows + max_rows - 1) / max_rows;
    if (nb < 2 || L->n_ent < (uint64_t)EIE_BLOCK_MIN_ENTRIES * nb * cols)
        return 0;
    uint32_t br = (L->n_rows + nb - 1) / nb; /* at most max_rows */
    L->blocks = calloc(nb, sizeof *L->blocks);
    if (L->blocks == NULL)
        return -1;
    L->n_blocks = nb;
    L->block_rows = br;
    for (uint32_t b = 0; b < nb; b++) {
        eie_pe_layer_t *K = &L->blocks[b];
        K->n_rows = L->n_rows - b * br < br ? L->n_rows - b * br : br;
        K->n_codes = L->n_codes;
        if ((K->ptr = calloc((size_t)cols + 1, sizeof(uint32_t))) == NULL)
            return -1;
    }
    const uint32_t *ent = L->ent;
    for (uint32_t j = 0; j < cols; j++)
        for (uint32_t q = L->ptr[j]; q < L->ptr[j + 1]; q++)
            L->blocks[(ent[q] >> 8) / br].ptr[j + 1]++;
    for (uint32_t b = 0; b < nb; b++) {
        eie_pe_layer_t *K = &L->blocks[b];
        for (uint32_t j = 0; j < cols; j++)
            K->ptr[j + 1] += K->ptr[j];
        K->n_ent = K->ptr[cols];
        /* EIE_ENTRY_SLACK zeroed entries past the end */
        if ((K->ent = calloc(K->n_ent + EIE_ENTRY_SLACK, sizeof(uint16_t))) == NULL)
            return -1;
        K->n_ent = 0; /* the fill cursor: columns come in order */
    }
    for (uint32_t j = 0; j < cols; j++)
        for (uint32_t q = L->ptr[j]; q < L->ptr[j + 1]; q++) {
            uint32_t row = ent[q] >> 8, b = row / br;
            eie_pe_layer_t *K = &L->blocks[b];
            ((uint16_t *)K->ent)[K->n_ent++] = (uint16_t)((row - b * br) << cs | (ent[q] & 255));
        }
    free(L->ptr);
    free(L->ent);
    L->ptr = NULL;
    L->ent = NULL;
    return 0;
}

void eie_pe_row_spans(const eie_pe_layer_t *L, uint32_t span_cols, uint32_t n_spans,
                      uint32_t *sp)
{
    for (uint32_t r = 0; r < L->n_rows; r++) {
        uint32_t t = 0;
        for (uint32_t e = L->rptr[r]; e < L->rptr[r + 1]; e++) {
            uint32_t col = L->rent != NULL ? (uint32_t)L->rent[e] >> 4 : L->rentw[e] >> 8;
            for (; t <= col / span_cols; t++)
                sp[(size_t)t * L->n_rows + r] = e;
        }
        for (; t <= n_spans; t++)
            sp[(size_t)t * L->n_rows + r] = L->rptr[r + 1];
    }
}

/* Bytes of the row form with_rows asks for, over n_pes PEs (an upper bound). */
static uint64_t rows_estimate(const eie_fc_t *fc, unsigned n_pes, int with_rows)
{
    uint64_t rsz = rows_narrow(fc->cols, fc->code_bits, with_rows) ? 2 : 4;
    uint32_t spans = row_spans_for(fc->cols, fc->code_bits, with_rows);
    return (fc->nnz + (uint64_t)n_pes * EIE_ENTRY_SLACK) * rsz +
           ((uint64_t)fc->rows + n_pes) * sizeof(uint32_t) +
           (spans > 0 ? ((uint64_t)spans + 1) * (fc->rows + n_pes) * sizeof(uint32_t) : 0);
}

uint64_t eie_cpu_fc_layout_estimate(const eie_fc_t *fc, unsigned n_pes, int with_rows)
{
    uint32_t max_local = (fc->rows + n_pes - 1) / n_pes;
    uint64_t esz = fc->code_bits > 5 || max_local > eie_narrow_max_rows(fc->code_bits) ? 4 : 2;
    /* codebook, bias, and per PE: cols + 1 column pointers and its entries
       (a PE's narrow blocks, with EIE_BLOCK_MIN_ENTRIES, take less than its
       wide form: 2 bytes an entry and cols + 1 pointers a block) */
    uint64_t bytes = 256 * sizeof(float) + (uint64_t)fc->rows * sizeof(float) +
                     (uint64_t)n_pes * ((uint64_t)fc->cols + 1) * sizeof(uint32_t) +
                     (fc->nnz + (uint64_t)n_pes * EIE_ENTRY_SLACK) * esz;
    if (with_rows != EIE_ROWS_NONE && fc->cols < ROWS_WIDE_MAX_COLS) {
        uint64_t a = rows_estimate(fc, n_pes, EIE_ROWS);
        uint64_t b = rows_estimate(fc, n_pes, EIE_ROWS_WHOLE);
        bytes += a > b ? a : b;
    }
    return bytes;
}

eie_status_t eie_cpu_fc_init(const eie_fc_t *fc, unsigned n_pes, int force_wide, int with_rows,
                             eie_cpu_fc_t *out, eie_error_t *err)
{
    uint32_t *prev = NULL;
    memset(out, 0, sizeof *out);
    out->rows = fc->rows;
    out->cols = fc->cols;
    out->code_bits = fc->code_bits;
    out->n_pes = n_pes;
    out->nnz = fc->nnz;
    uint32_t max_local = (fc->rows + n_pes - 1) / n_pes;
    out->wide = force_wide || fc->code_bits > 5 || max_local > eie_narrow_max_rows(fc->code_bits);
    out->narrow_shift = eie_narrow_shift(fc->code_bits);
    out->codebook = calloc(256, sizeof(float));
    out->bias = malloc(fc->rows * sizeof(float));
    out->pe = calloc(n_pes, sizeof *out->pe);
    prev = malloc(n_pes * sizeof *prev);
    if (!out->codebook || !out->bias || !out->pe || !prev)
        goto nomem;
    memcpy(out->codebook, fc->codebook, ((size_t)1 << fc->code_bits) * sizeof(float));
    memcpy(out->bias, fc->bias, fc->rows * sizeof(float));
    for (unsigned p = 0; p < n_pes; p++) {
        out->pe[p].n_rows = fc->rows > p ? (fc->rows - p + n_pes - 1) / n_pes : 0;
        out->pe[p].n_codes = (uint32_t)1 << fc->code_bits;
        out->pe[p].ptr = calloc((size_t)fc->cols + 1, sizeof(uint32_t));
        if (out->pe[p].ptr == NULL)
            goto nomem;
    }
    /* Pass 1: count each PE's entries per column (fillers dropped), and the
     * entries the 1-byte EIE form would need: a local zero-run over 15 needs
     * a filler (EIE sec. III-B). */
    uint64_t pos = (uint64_t)-1;
    uint32_t cur_col = UINT32_MAX;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] == 0)
            continue;
        uint32_t col = (uint32_t)(pos / fc->rows), row = (uint32_t)(pos % fc->rows);
        if (col != cur_col) {
            for (unsigned p = 0; p < n_pes; p++)
                prev[p] = UINT32_MAX;
            cur_col = col;
        }
        unsigned p = row % n_pes;
        uint32_t local = row / n_pes;
        uint32_t gap = local - prev[p] - 1; /* prev = -1 starts a column */
        out->eie_entries += gap / 16 + 1;
        prev[p] = local;
        out->pe[p].ptr[col + 1]++;
    }
    size_t esz = out->wide ? 4 : 2;
    for (unsigned p = 0; p < n_pes; p++) {
        uint32_t *ptr = out->pe[p].ptr;
        for (uint32_t c = 0; c < fc->cols; c++)
            ptr[c + 1] += ptr[c];
        out->pe[p].n_ent = ptr[fc->cols];
        /* EIE_ENTRY_SLACK zeroed entries past the end (layout.h) */
        out->pe[p].ent = calloc((size_t)ptr[fc->cols] + EIE_ENTRY_SLACK, esz);
        if (out->pe[p].ent == NULL)
            goto nomem;
    }
    /* Pass 2: fill; ptr[c] serves as the fill cursor and is restored below. */
    pos = (uint64_t)-1;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] == 0)
            continue;
        uint32_t col = (uint32_t)(pos / fc->rows), row = (uint32_t)(pos % fc->rows);
        unsigned p = row % n_pes;
        uint32_t local = row / n_pes;
        uint32_t at = out->pe[p].ptr[col]++;
        if (out->wide)
            ((uint32_t *)out->pe[p].ent)[at] = local << 8 | fc->codes[e];
        else
            ((uint16_t *)out->pe[p].ent)[at] =
                (uint16_t)(local << out->narrow_shift | fc->codes[e]);
    }
    out->layout_bytes = ((size_t)1 << fc->code_bits) * sizeof(float) + fc->rows * sizeof(float);
    for (unsigned p = 0; p < n_pes; p++) {
        uint32_t *ptr = out->pe[p].ptr;
        memmove(ptr + 1, ptr, fc->cols * sizeof(uint32_t));
        ptr[0] = 0;
        if (with_rows != EIE_ROWS_NONE && fc->cols < ROWS_WIDE_MAX_COLS) {
            int rows_wide = !rows_narrow(fc->cols, fc->code_bits, with_rows);
            if (pack_rows(&out->pe[p], fc->cols, out->wide, out->narrow_shift, rows_wide,
                          row_spans_for(fc->cols, fc->code_bits, with_rows),
                          row_span_cols(fc->cols, fc->code_bits, with_rows)) != 0)
                goto nomem;
            out->layout_bytes += out->pe[p].n_ent * (rows_wide ? 4 : 2) +
                                 ((size_t)out->pe[p].n_rows + 1) * sizeof(uint32_t);
            if (out->pe[p].rspan != NULL)
                out->layout_bytes += ((size_t)out->pe[p].n_rspans + 1) * out->pe[p].n_rows *
                                     sizeof(uint32_t);
        }
        /* after the row form, which is packed from the one wide column form */
        if (!force_wide && fc->code_bits <= 5 &&
            pack_blocks(&out->pe[p], fc->cols, fc->code_bits) != 0)
            goto nomem;
        for (uint32_t b = 0; b < out->pe[p].n_blocks; b++)
            out->layout_bytes += out->pe[p].blocks[b].n_ent * sizeof(uint16_t) +
                                 ((size_t)fc->cols + 1) * sizeof(uint32_t);
        if (out->pe[p].n_blocks == 0)
            out->layout_bytes += out->pe[p].n_ent * esz + ((size_t)fc->cols + 1) * sizeof(uint32_t);
    }
    free(prev);
    return EIE_STATUS_OK;
nomem:
    free(prev);
    eie_cpu_fc_clear(out);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory packing a %ux%u layer",
                         fc->rows, fc->cols);
}
