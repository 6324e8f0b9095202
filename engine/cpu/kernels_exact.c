/* Packing and the kernel of exactly stored sparse layers; see exact.h. */
#include "cpu/exact.h"
#include "cpu/kernels.h"

#include <stdlib.h>
#include <string.h>

void eie_cpu_exact_clear(eie_cpu_exact_t *x)
{
    if (x->pe != NULL)
        for (unsigned p = 0; p < x->n_pes; p++) {
            free(x->pe[p].ptr);
            free(x->pe[p].row);
            free(x->pe[p].val);
        }
    free(x->pe);
    memset(x, 0, sizeof *x);
}

eie_status_t eie_cpu_exact_init(const eie_fc_t *fc, unsigned n_pes, eie_cpu_exact_t *out,
                                eie_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->rows = fc->rows;
    out->cols = fc->cols;
    out->n_pes = n_pes;
    out->nnz = fc->nnz;
    if ((out->pe = calloc(n_pes, sizeof *out->pe)) == NULL)
        goto nomem;
    for (unsigned p = 0; p < n_pes; p++) {
        out->pe[p].n_rows = fc->rows > p ? (fc->rows - p + n_pes - 1) / n_pes : 0;
        if ((out->pe[p].ptr = calloc((size_t)fc->cols + 1, sizeof(uint32_t))) == NULL)
            goto nomem;
    }
    /* Pass 1: each PE's entries per column (fillers dropped). */
    uint64_t pos = (uint64_t)-1;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] != 0)
            out->pe[(pos % fc->rows) % n_pes].ptr[pos / fc->rows + 1]++;
    }
    for (unsigned p = 0; p < n_pes; p++) {
        eie_pe_exact_t *L = &out->pe[p];
        for (uint32_t c = 0; c < fc->cols; c++)
            L->ptr[c + 1] += L->ptr[c];
        L->n_ent = L->ptr[fc->cols];
        L->row = malloc((L->n_ent ? L->n_ent : 1) * sizeof *L->row);
        L->val = malloc((L->n_ent ? L->n_ent : 1) * sizeof *L->val);
        if (L->row == NULL || L->val == NULL)
            goto nomem;
        out->layout_bytes += L->n_ent * 8 + ((size_t)fc->cols + 1) * 4;
    }
    /* Pass 2: fill; ptr[c] is the cursor, restored below. Entries of a column
     * come in row order, so each PE's column stays sorted by row. */
    pos = (uint64_t)-1;
    uint64_t k = 0;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] == 0)
            continue;
        uint32_t row = (uint32_t)(pos % fc->rows), col = (uint32_t)(pos / fc->rows);
        eie_pe_exact_t *L = &out->pe[row % n_pes];
        uint32_t at = L->ptr[col]++;
        L->row[at] = row / n_pes;
        L->val[at] = fc->values[k++];
    }
    for (unsigned p = 0; p < n_pes; p++) {
        uint32_t *ptr = out->pe[p].ptr;
        memmove(ptr + 1, ptr, fc->cols * sizeof(uint32_t));
        ptr[0] = 0;
    }
    return EIE_STATUS_OK;
nomem:
    eie_cpu_exact_clear(out);
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "cpu: out of memory packing a %ux%u layer",
                         fc->rows, fc->cols);
}

uint64_t eie_cpu_spmv_exact(const eie_pe_exact_t *L, const uint32_t *active, size_t n_active,
                            const float *in, size_t is_j, size_t is_b, size_t B, size_t S,
                            float *acc)
{
    uint64_t walked = 0;
    eie_cpu_prefetch_heads(L->row, sizeof *L->row, L->ptr, active, n_active);
    eie_cpu_prefetch_heads(L->val, sizeof *L->val, L->ptr, active, n_active);
    for (size_t a = 0; a < n_active; a++) {
        uint32_t j = active[a];
        const float *x = in + (size_t)j * is_j;
        uint32_t e0 = L->ptr[j], e1 = L->ptr[j + 1];
        walked += e1 - e0;
        if (B == 1) {
            float xj = x[0];
            for (uint32_t e = e0; e < e1; e++)
                acc[(size_t)L->row[e] * S] += L->val[e] * xj;
            continue;
        }
        for (uint32_t e = e0; e < e1; e++) {
            float v = L->val[e];
            float *ar = acc + (size_t)L->row[e] * S;
            for (size_t b = 0; b < B; b++)
                ar[b] += v * x[b * is_b];
        }
    }
    return walked;
}
