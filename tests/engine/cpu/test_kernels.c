/* The kernel list and the per-PE layout of engine/cpu. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "../format/model_helpers.h"
#include "cpu/kernels.h"
#include "pe/layout.h"

Test(layout, rows_interleave_over_pes_and_local_fillers_are_counted)
{
    /* One column, 70 rows, nonzeros at rows 0 and 68: on 2 PEs both land on
     * PE 0 at local rows 0 and 34, a local run of 33 needing 2 fillers. */
    uint8_t codes[70] = {0};
    float cb[2] = {0.0f, 1.0f};
    codes[0] = codes[68] = 1;
    eie_builder_t *b;
    eie_error_t err;
    eie_builder_init("", "", "", "", &b, &err);
    eie_builder_add_fc(b, 70, 1, 1, cb, codes, NULL, &err);
    eie_model_t *m = th_load_builder(b);
    eie_cpu_fc_t cf;
    cr_assert_eq(eie_cpu_fc_init(eie_model_fc(m, 0), 2, 0, 0, &cf, &err), 0);
    cr_assert_eq(cf.pe[0].n_rows, 35);
    cr_assert_eq(cf.pe[1].n_rows, 35);
    cr_assert_eq(cf.pe[0].n_ent, 2);
    cr_assert_eq(cf.pe[1].n_ent, 0);
    cr_assert_eq(((uint16_t *)cf.pe[0].ent)[1] >> 4, 34);
    cr_assert_eq(cf.eie_entries, 4);
    eie_cpu_fc_clear(&cf);
    eie_model_free(m);
    eie_builder_free(b);
}

/* The conv form of every PE of cf at 16, 32 and 64 lanes, made from its row
 * form with offset = col * lanes, on xt ([col][16]) widened to that many
 * lanes (lane b repeats lane b mod 16): every lane is the column form's
 * bits y (batch-major, R rows). With the layer's code count (the AVX-512
 * variant holds books of up to 16 or 32 codes in registers) and with none
 * given (the codebook read from memory). */
static void check_conv_form(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf, unsigned n,
                            const float *xt, const float *y, uint32_t R)
{
    static const unsigned lane_counts[] = {16, 32, EIE_CONV_LANES};
    uint32_t cols = cf->cols;
    for (size_t li = 0; li < 3; li++) {
        unsigned lanes = lane_counts[li];
        float *xw = malloc(((size_t)cols * lanes + lanes) * sizeof(float));
        for (uint32_t j = 0; j < cols; j++)
            for (size_t b = 0; b < lanes; b++)
                xw[j * lanes + b] = xt[j * 16 + b % 16];
        for (unsigned p = 0; p < n; p++) {
            eie_pe_layer_t L = cf->pe[p];
            uint32_t *o = calloc(L.n_ent + EIE_ENTRY_SLACK, sizeof *o);
            for (uint64_t e = 0; e < L.n_ent; e++) {
                uint32_t w = L.rent != NULL ? L.rent[e] : L.rentw[e];
                uint32_t sh = L.rent != NULL ? eie_pe_row_shift(&L) : 8;
                uint32_t col = w >> sh, code = w & ((1u << sh) - 1);
                o[e] = col * lanes << 8 | code;
            }
            float *acc = malloc(((size_t)L.n_rows * lanes + 1) * sizeof(float));
            /* whole rows, then each row in two spans split at its middle
             * entry (and an empty span first): the same bits */
            uint32_t *mid = malloc(((size_t)L.n_rows + 1) * sizeof *mid);
            for (uint32_t r = 0; r < L.n_rows; r++)
                mid[r] = L.rptr[r] + (L.rptr[r + 1] - L.rptr[r]) / 2;
            for (int split = 0; split < 4; split++) {
                uint32_t nc = split < 2 ? L.n_codes : 0;
                eie_conv_rows_t whole = {o, L.rptr, L.rptr + 1, L.n_rows, nc};
                eie_conv_rows_t none = {o, L.rptr, L.rptr, L.n_rows, nc};
                eie_conv_rows_t first = {o, L.rptr, mid, L.n_rows, nc};
                eie_conv_rows_t second = {o, mid, L.rptr + 1, L.n_rows, nc};
                const float *cb = cf->codebook;
                uint64_t walked;
                if (split & 1) {
                    memset(acc, 0x7f, (size_t)L.n_rows * lanes * sizeof(float));
                    walked = k->rows_conv(&none, cb, xw, acc, 0, lanes);
                    walked += k->rows_conv(&first, cb, xw, acc, 1, lanes);
                    walked += k->rows_conv(&second, cb, xw, acc, 1, lanes);
                } else {
                    walked = k->rows_conv(&whole, cb, xw, acc, 0, lanes);
                }
                cr_assert_eq(walked, L.n_ent, "kernel %s conv form walked", k->name);
                for (uint32_t r = 0; r < L.n_rows; r++)
                    for (size_t b = 0; b < lanes; b++) {
                        float want = y[(b % 16) * R + r * n + p], got = acc[r * lanes + b];
                        cr_assert(memcmp(&want, &got, sizeof got) == 0,
                                  "kernel %s conv form, %u lanes, pes %u, codes %u%s: row %u "
                                  "lane %zu is %a, the column form %a",
                                  k->name, lanes, n, nc, split & 1 ? " in spans" : "", r * n + p, b,
                                  got, want);
                    }
            }
            free(mid);
            free(acc);
            free(o);
        }
        free(xw);
    }
}

/* Every kernel of the list, narrow and wide layouts, every batch-stride
 * class (1, 2, 3-4, 5-8, 9-16, exact and padded),
 * against the dense decoding of the layer. */
/* Two weight densities: columns of ~12 entries a PE at 1 PE, and of 13 to
 * 43 at 1 to 3 PEs, so every batch-1 kernel runs its tail alone and its
 * unrolled step (16 narrow or 8 wide entries) followed by a tail. Codes of
 * 4 or 5 bits give narrow column and row forms (5: 5-bit code fields), of
 * 6 bits wide ones; the batch-1 row form takes both narrow ones (rows of 33
 * entries at density 0.7 on one PE: its 24-entry step and a tail). At
 * B > 1 the row form must give the column form's bits (kernels.h). */
static void check_kernels_against_dense(double density, uint32_t bits)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 21;
    enum { R = 61, C = 47 };
    eie_builder_init("", "", "", "", &b, &err);
    th_add_random_fc(b, R, C, density, bits, &seed, &err);
    eie_model_t *m = th_load_builder(b);
    float *w = malloc(R * C * sizeof(float));
    eie_model_fc_dense(m, 0, w);
    const eie_fc_t *fc = eie_model_fc(m, 0);
    static const size_t batches[] = {1, 2, 3, 4, 5, 8, 9, 15, 16};
    cr_assert(eie_cpu_kernel_count >= 1);
    cr_assert_str_eq(eie_cpu_kernels[0].name, "scalar");
    cr_assert_not_null(eie_cpu_kernel_best());
    for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
        const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
        if (!k->supported())
            continue;
        for (int wide = bits > 5; wide < 2; wide++)
            for (unsigned n = 1; n <= 3; n++) {
                eie_cpu_fc_t cf;
                cr_assert_eq(eie_cpu_fc_init(fc, n, wide, 1, &cf, &err), 0);
                cr_assert_eq(cf.wide, wide);
                cr_assert_eq(cf.narrow_shift, bits <= 4 ? 4 : 5);
                for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
                    size_t B = batches[bi];
                    float x[16 * C], y[16 * R], ref[16 * R];
                    uint32_t active[C];
                    th_random_input(x, B * C, 0.5, &seed);
                    size_t na = 0;
                    for (uint32_t j = 0; j < C; j++) {
                        int nz = 0;
                        for (size_t bb = 0; bb < B; bb++)
                            nz |= x[bb * C + j] != 0.0f;
                        if (nz)
                            active[na++] = j;
                    }
                    for (unsigned p = 0; p < n; p++) {
                        float acc[16 * R + EIE_ACC_SLACK] = {0};
                        uint64_t walked =
                            eie_cpu_spmv(k, &cf, &cf.pe[p], active, na, x, 1, C, B, acc);
                        uint64_t expect = 0;
                        for (size_t a = 0; a < na; a++)
                            expect += cf.pe[p].ptr[active[a] + 1] - cf.pe[p].ptr[active[a]];
                        cr_assert_eq(walked, expect, "kernel %s entries walked", k->name);
                        /* the scalar reference's bits, whatever the variant (kernels.h) */
                        float ref_acc[16 * R + EIE_ACC_SLACK] = {0};
                        eie_cpu_spmv(&eie_cpu_kernels[0], &cf, &cf.pe[p], active, na, x, 1, C, B,
                                     ref_acc);
                        size_t nS = (size_t)cf.pe[p].n_rows * eie_cpu_batch_stride(B);
                        cr_assert(memcmp(acc, ref_acc, nS * sizeof(float)) == 0,
                                  "kernel %s wide %d pes %u batch %zu: not the scalar bits",
                                  k->name, wide, n, B);
                        for (uint32_t r = 0; r < cf.pe[p].n_rows; r++) {
                            size_t S = eie_cpu_batch_stride(B);
                            for (size_t bb = 0; bb < B; bb++)
                                y[bb * R + r * n + p] = acc[r * S + bb];
                            for (size_t bb = B; bb < S; bb++) /* padding: zero activations */
                                cr_assert_eq(acc[r * S + bb], 0.0f, "kernel %s B %zu lane %zu",
                                             k->name, B, bb);
                        }
                    }
                    for (size_t bb = 0; bb < B; bb++)
                        for (size_t r = 0; r < R; r++) {
                            float s = 0.0f;
                            for (size_t j = 0; j < C; j++)
                                s += w[r * C + j] * x[bb * C + j];
                            ref[bb * R + r] = s;
                        }
                    cr_assert_eq(th_mismatch(y, ref, B * R, 1e-5f), -1,
                                 "kernel %s wide %d pes %u batch %zu density %.1f", k->name, wide,
                                 n, B, density);
                    if (B != 1) {
                        /* the batch as [col][S], NaN in the lanes past B */
                        size_t S = eie_cpu_batch_stride(B);
                        float xt[16 * C];
                        for (uint32_t j = 0; j < C; j++)
                            for (size_t bb = 0; bb < S; bb++)
                                xt[j * S + bb] = bb < B ? x[bb * C + j] : NAN;
                        for (unsigned p = 0; p < n; p++) {
                            cr_assert((cf.pe[p].rent != NULL) == (bits <= 5));
                            cr_assert((cf.pe[p].rentw != NULL) == (bits > 5));
                            float acc[16 * R];
                            uint64_t walked = k->rows_batch(&cf.pe[p], cf.codebook, xt, B, acc);
                            cr_assert_eq(walked, cf.pe[p].n_ent, "kernel %s rows walked", k->name);
                            for (uint32_t r = 0; r < cf.pe[p].n_rows; r++)
                                for (size_t bb = 0; bb < B; bb++) {
                                    float want = y[bb * R + r * n + p], got = acc[r * S + bb];
                                    cr_assert(memcmp(&want, &got, sizeof got) == 0,
                                              "kernel %s rows batch %zu pes %u bits %u: row %u "
                                              "lane %zu is %a, the column form %a",
                                              k->name, B, n, bits, r * n + p, bb, got, want);
                                }
                        }
                        if (B == 16)
                            check_conv_form(k, &cf, n, xt, y, R);
                        continue;
                    }
                    cr_assert_eq(eie_cpu_rows_b1_fits(&cf.pe[0]), bits <= 5);
                    if (bits > 5)
                        continue; /* rows_b1 needs the narrow row form */
                    /* The row form, built from either entry width, over every
                     * column (the zero activations add nothing). */
                    for (unsigned p = 0; p < n; p++) {
                        cr_assert_not_null(cf.pe[p].rent);
                        float acc[R];
                        uint64_t walked = k->rows_b1(&cf.pe[p], cf.codebook, x, acc);
                        cr_assert_eq(walked, cf.pe[p].n_ent, "kernel %s row form walked", k->name);
                        for (uint32_t r = 0; r < cf.pe[p].n_rows; r++)
                            y[r * n + p] = acc[r];
                    }
                    cr_assert_eq(th_mismatch(y, ref, R, 1e-5f), -1,
                                 "kernel %s row form, wide %d pes %u density %.1f", k->name, wide,
                                 n, density);
                }
                eie_cpu_fc_clear(&cf);
            }
    }
    free(w);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(kernels, every_kernel_matches_dense_for_every_batch_and_layout)
{
    check_kernels_against_dense(0.2, 4);
    check_kernels_against_dense(0.7, 4);
    check_kernels_against_dense(0.2, 5);
    check_kernels_against_dense(0.5, 5);
    check_kernels_against_dense(0.7, 5);
    check_kernels_against_dense(0.5, 6);
}

/* The row form of a C-column layer with bits-bit codes packed as with_rows
 * asks (layout.h) on 1-3 PEs: narrow entries or wide as expected, spans of
 * EIE_ROW_SPAN_COLS columns as expected (n_spans, 0 for none), the spans
 * covering each row in column order with a narrow entry's column counted
 * from its span's first, every entry the column form's (row, column, code),
 * the estimate bounding the layout, every variant's batch row form giving
 * the column form's bits, and its batch-1 row form (narrow entries) the
 * column form's sums within rounding, with the same bits on every PE
 * count. */
static void check_row_spans(uint32_t C, uint32_t bits, int with_rows, int narrow, uint32_t n_spans)
{
    enum { R = 400 }; /* rows enough that span tables outweigh the estimate's other slack */
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 5;
    eie_builder_init("", "", "", "", &b, &err);
    th_add_random_fc(b, R, C, 0.01, bits, &seed, &err);
    eie_model_t *m = th_load_builder(b);
    const eie_fc_t *fc = eie_model_fc(m, 0);
    float *x = malloc(16 * (size_t)C * sizeof(float)), *xt = malloc(16 * (size_t)C * sizeof(float));
    uint32_t *active = malloc((C + EIE_ACTIVE_SLACK) * sizeof(uint32_t));
    uint8_t *code_at = malloc((size_t)R * C); /* a PE's codes by [local row][col] */
    float *x1 = malloc((size_t)C * sizeof(float)); /* batch 1: every activation nonzero */
    cr_assert(x && xt && active && code_at && x1);
    uint64_t seed1 = 9;
    th_random_input(x1, C, 1.0, &seed1);
    x1[0] = -0.0f;
    uint32_t *cols1 = malloc((size_t)C * sizeof(uint32_t));
    cr_assert_not_null(cols1);
    for (uint32_t j = 0; j < C; j++)
        cols1[j] = j;
    /* each variant's batch-1 row form by global row, from one PE */
    float b1_one[8][R];
    cr_assert_leq(eie_cpu_kernel_count, 8);
    for (unsigned n = 1; n <= 3; n++) {
        eie_cpu_fc_t cf;
        cr_assert_eq(eie_cpu_fc_init(fc, n, 0, with_rows, &cf, &err), 0);
        /* the estimate a load refuses by counts the span tables too */
        cr_assert_geq(eie_cpu_fc_layout_estimate(fc, n, with_rows), cf.layout_bytes);
        for (unsigned p = 0; p < n; p++) {
            const eie_pe_layer_t *L = &cf.pe[p];
            cr_assert_eq(L->rent != NULL, narrow, "C %u bits %u: narrow row form", C, bits);
            cr_assert_eq(L->rentw != NULL, !narrow, "C %u bits %u: wide row form", C, bits);
            cr_assert_eq(L->rspan != NULL, n_spans > 0, "C %u bits %u: spans", C, bits);
            cr_assert_eq(L->n_rspans, n_spans);
            memset(code_at, 0, (size_t)R * C);
            for (uint32_t j = 0; j < C; j++)
                for (uint32_t q = L->ptr[j]; q < L->ptr[j + 1]; q++) {
                    uint32_t e =
                        cf.wide ? ((const uint32_t *)L->ent)[q] : ((const uint16_t *)L->ent)[q];
                    uint32_t cs = cf.wide ? 8 : cf.narrow_shift;
                    code_at[(size_t)(e >> cs) * C + j] = (uint8_t)(e & ((1u << cs) - 1));
                }
            uint32_t spans = n_spans > 0 ? n_spans : 1;
            for (uint32_t r = 0; r < L->n_rows; r++) {
                uint32_t first = n_spans > 0 ? L->rspan[r] : L->rptr[r];
                uint32_t last = n_spans > 0 ? L->rspan[n_spans * L->n_rows + r] : L->rptr[r + 1];
                cr_assert_eq(first, L->rptr[r]);
                cr_assert_eq(last, L->rptr[r + 1]);
                int64_t prev = -1;
                for (uint32_t t = 0; t < spans; t++) {
                    uint32_t e0 = n_spans > 0 ? L->rspan[t * L->n_rows + r] : L->rptr[r];
                    uint32_t e1 = n_spans > 0 ? L->rspan[(t + 1) * L->n_rows + r] : L->rptr[r + 1];
                    for (uint32_t e = e0; e < e1; e++) {
                        uint32_t w = narrow ? L->rent[e] : L->rentw[e];
                        uint32_t sh = narrow ? (bits <= 4 ? 4 : 5) : 8;
                        uint32_t col = (uint32_t)eie_pe_span_base(L, t) + (w >> sh);
                        uint32_t code = w & ((1u << sh) - 1);
                        cr_assert_lt(col, C);
                        cr_assert(n_spans == 0 || col / eie_pe_span_cols(L) == t,
                                  "pes %u row %u entry %u: column %u in span %u", n, r, e, col, t);
                        cr_assert_gt((int64_t)col, prev, "row %u: columns in order", r);
                        prev = col;
                        cr_assert_eq(code_at[(size_t)r * C + col], code,
                                     "pes %u row %u column %u: the column form's code", n, r, col);
                        code_at[(size_t)r * C + col] = 0; /* each entry once */
                    }
                }
            }
            for (size_t i = 0; i < (size_t)R * C; i++)
                cr_assert_eq(code_at[i], 0, "an entry of the column form is missing from the rows");
        }
        /* The batch-1 row form walks narrow rows whole or span by span: near
         * the column form's sums (it fuses), and its own bits on every PE
         * count. */
        cr_assert_eq(eie_cpu_rows_b1_fits(&cf.pe[0]), narrow);
        for (unsigned p = 0; narrow && p < n; p++) {
            float want[R + EIE_ACC_SLACK] = {0}, got[R];
            eie_cpu_spmv(&eie_cpu_kernels[0], &cf, &cf.pe[p], cols1, C, x1, 1, C, 1, want);
            for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
                const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
                if (!k->supported())
                    continue;
                uint64_t walked = k->rows_b1(&cf.pe[p], cf.codebook, x1, got);
                cr_assert_eq(walked, cf.pe[p].n_ent, "kernel %s batch 1 walked", k->name);
                long bad = th_mismatch(got, want, cf.pe[p].n_rows, 1e-5f);
                cr_assert_eq(bad, -1,
                             "kernel %s C %u bits %u pes %u: batch-1 row %ld is %a, the "
                             "column form %a",
                             k->name, C, bits, n, bad, got[bad < 0 ? 0 : bad],
                             want[bad < 0 ? 0 : bad]);
                for (uint32_t r = 0; r < cf.pe[p].n_rows; r++) {
                    uint32_t g = r * n + p;
                    if (n == 1)
                        b1_one[ki][g] = got[r];
                    else
                        cr_assert(memcmp(&b1_one[ki][g], &got[r], sizeof got[r]) == 0,
                                  "kernel %s C %u bits %u: batch-1 row %u on %u PEs is %a, on one "
                                  "%a",
                                  k->name, C, bits, g, n, got[r], b1_one[ki][g]);
                }
            }
        }
        static const size_t batches[] = {2, 5, 16};
        for (size_t bi = 0; bi < 3; bi++) {
            size_t B = batches[bi], S = eie_cpu_batch_stride(B);
            th_random_input(x, B * C, 0.5, &seed);
            size_t na = eie_cpu_kernels[0].active(x, C, 1, C, B, active);
            for (uint32_t j = 0; j < C; j++)
                for (size_t bb = 0; bb < S; bb++)
                    xt[j * S + bb] = bb < B ? x[bb * C + j] : NAN;
            for (unsigned p = 0; p < n; p++) {
                float want[16 * R + EIE_ACC_SLACK] = {0}, got[16 * R];
                eie_cpu_spmv(&eie_cpu_kernels[0], &cf, &cf.pe[p], active, na, x, 1, C, B, want);
                for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
                    const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
                    if (!k->supported())
                        continue;
                    uint64_t walked = k->rows_batch(&cf.pe[p], cf.codebook, xt, B, got);
                    cr_assert_eq(walked, cf.pe[p].n_ent, "kernel %s walked", k->name);
                    for (uint32_t r = 0; r < cf.pe[p].n_rows; r++)
                        for (size_t bb = 0; bb < B; bb++)
                            cr_assert(
                                memcmp(&want[r * S + bb], &got[r * S + bb], sizeof(float)) == 0,
                                "kernel %s C %u bits %u pes %u batch %zu row %u lane %zu: "
                                "%a, the column form %a",
                                k->name, C, bits, n, B, r, bb, got[r * S + bb], want[r * S + bb]);
                }
            }
        }
        eie_cpu_fc_clear(&cf);
    }
    free(x);
    free(xt);
    free(x1);
    free(cols1);
    free(active);
    free(code_at);
    eie_model_free(m);
    eie_builder_free(b);
}

/* Over 4096 columns, 4-bit codes keep narrow entries in spans of 4096
 * columns, each counting from its span's first; 5-bit codes the same over
 * 2048; wider codes keep wide entries, in spans of 4096 only past
 * EIE_ROW_SPAN_MIN_COLS; EIE_ROWS_WHOLE keeps one span with columns from 0
 * (the direct convolution's), narrow only for 4-bit codes. */
Test(kernels, row_form_in_column_spans_gives_the_column_form_bits)
{
    enum { W = EIE_ROW_SPAN_COLS, WIDE_MIN = EIE_ROW_SPAN_MIN_COLS };
    check_row_spans(WIDE_MIN + 500, 4, EIE_ROWS, 1, WIDE_MIN / W + 1);
    check_row_spans(WIDE_MIN + 500, 5, EIE_ROWS, 1, WIDE_MIN / (W / 2) + 1);
    check_row_spans(WIDE_MIN + 500, 6, EIE_ROWS, 0, WIDE_MIN / W + 1);
    check_row_spans(2 * W + 100, 4, EIE_ROWS, 1, 3);
    check_row_spans(2 * W + 100, 5, EIE_ROWS, 1, 5);
    check_row_spans(2 * W, 4, EIE_ROWS, 1, 2);
    check_row_spans(W, 4, EIE_ROWS, 1, 0);
    check_row_spans(W / 2, 5, EIE_ROWS, 1, 0);
    check_row_spans(W / 2 + 1, 5, EIE_ROWS, 1, 2);
    check_row_spans(2 * W + 100, 6, EIE_ROWS, 0, 0);
    check_row_spans(2 * W + 100, 4, EIE_ROWS_WHOLE, 0, 0);
    check_row_spans(W / 2, 5, EIE_ROWS_WHOLE, 0, 0);
    check_row_spans(WIDE_MIN + 500, 4, EIE_ROWS_WHOLE, 0, 0);
    check_row_spans(W, 4, EIE_ROWS_WHOLE, 1, 0);
}

/* Every kernel's leading-non-zero detection against a plain loop: batch 1, 5
 * and 16, batch-major and feature-major inputs, lengths around the vector
 * width, NaN (nonzero) and -0.0 (zero), and the all-dense fast case. */
Test(kernels, active_columns_match_a_plain_scan)
{
    enum { MAXN = 37, MAXB = 16 };
    static const size_t batches[] = {1, 5, 8, 16};
    uint64_t seed = 5;
    for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
        const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
        if (!k->supported())
            continue;
        for (size_t n = 0; n <= MAXN; n++)
            for (size_t bi = 0; bi < 4; bi++)
                for (int feature_major = 0; feature_major < 2; feature_major++)
                    for (int dense = 0; dense < 2; dense++) {
                        size_t B = batches[bi];
                        float x[MAXN * MAXB];
                        th_random_input(x, n * B, dense ? 1.0 : 0.3, &seed);
                        if (n > 3) {
                            x[1] = -0.0f;
                            x[n * B - 2] = __builtin_nanf("");
                        }
                        size_t is_j = feature_major ? B : 1, is_b = feature_major ? 1 : n;
                        uint32_t got[MAXN + EIE_ACTIVE_SLACK], want[MAXN];
                        size_t nw = 0;
                        for (size_t j = 0; j < n; j++) {
                            int nz = 0;
                            for (size_t b = 0; b < B; b++) {
                                float v = x[j * is_j + b * is_b];
                                nz |= v != 0.0f;
                            }
                            if (nz)
                                want[nw++] = (uint32_t)j;
                        }
                        size_t ng = k->active(x, n, is_j, is_b, B, got);
                        cr_assert_eq(ng, nw, "kernel %s n %zu B %zu fm %d: %zu active, want %zu",
                                     k->name, n, B, feature_major, ng, nw);
                        for (size_t a = 0; a < nw; a++)
                            cr_assert_eq(got[a], want[a], "kernel %s n %zu B %zu at %zu", k->name,
                                         n, B, a);
                    }
    }
}

/* Every variant's transpose16 against the definition, on rows of B floats
 * each (a masked variant must not read past them: ASan would see it),
 * every n and B, the output's other floats left as they were. */
Test(kernels, transpose16_moves_every_lane_and_nothing_else)
{
    enum { OB = 21 };
    for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
        const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
        if (!k->supported())
            continue;
        for (size_t n = 1; n <= 16; n++)
            for (size_t B = 1; B <= 16; B++) {
                float *row[16];
                const float *crow[16];
                for (size_t t = 0; t < n; t++) {
                    row[t] = malloc(B * sizeof(float));
                    for (size_t b = 0; b < B; b++)
                        row[t][b] = (float)(100 * t + b) + 0.5f;
                    crow[t] = row[t];
                }
                float out[16 * OB];
                for (size_t i = 0; i < 16 * OB; i++)
                    out[i] = -1.0f;
                k->transpose16(crow, n, B, out, OB);
                for (size_t b = 0; b < 16; b++)
                    for (size_t t = 0; t < OB; t++) {
                        float want = b < B && t < n ? (float)(100 * t + b) + 0.5f : -1.0f;
                        cr_assert_eq(out[b * OB + t], want,
                                     "kernel %s, n %zu, B %zu: out[%zu][%zu] is %g, want %g",
                                     k->name, n, B, b, t, (double)out[b * OB + t], (double)want);
                    }
                for (size_t t = 0; t < n; t++)
                    free(row[t]);
            }
    }
}

/* Every kernel's plane of a phased input (kernels.h, eie_conv_plane_fn)
 * against its definition: row i, element j is the channel's (y0 + i sy,
 * x0 + j sx) or +0 outside it; copy s the plane from element s on, its
 * last s floats and everything past the copies untouched; the count of
 * nonzeros takes NaN and leaves -0.0. Strides 1, 2 and 3, pads on both
 * sides, rows shorter than, equal to and longer than 16 floats, one to
 * sixteen copies, planes wholly in the padding. */
Test(kernels, conv_plane_pads_splits_and_copies_as_defined)
{
    enum { H = 7, W = 21 };
    float src[H * W];
    uint64_t want_nz = 0;
    for (int i = 0; i < H * W; i++)
        src[i] = i % 5 == 0 ? 0.0f : (float)i - 40.5f;
    src[6] = -0.0f;
    src[11] = NAN;
    for (int i = 0; i < H * W; i++)
        want_nz += src[i] != 0.0f;
    static const struct {
        int64_t y0, sy, x0, sx;
        size_t Hq, Wq;
        uint32_t copies;
    } cases[] = {
        {-1, 1, -1, 1, 9, 32, 3}, {-2, 1, -2, 1, 11, 25, 1}, {0, 2, 1, 2, 4, 16, 2},
        {-1, 3, -2, 3, 3, 8, 1},  {-3, 1, 5, 1, 5, 48, 5},   {0, 1, -20, 1, 7, 16, 16},
        {9, 1, 0, 1, 2, 16, 2},   {-1, 1, 30, 1, 3, 12, 1},  {1, 1, -1, 1, 6, 7, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        size_t Hq = cases[ci].Hq, Wq = cases[ci].Wq, n = Hq * Wq;
        size_t cf = (n + 16 + 15) / 16 * 16, total = cf * cases[ci].copies + 16;
        float *want = malloc(total * sizeof(float)), *got = malloc(total * sizeof(float));
        for (size_t i = 0; i < total; i++)
            want[i] = -7.25f;
        for (size_t i = 0; i < Hq; i++)
            for (size_t j = 0; j < Wq; j++) {
                int64_t y = cases[ci].y0 + (int64_t)i * cases[ci].sy;
                int64_t x = cases[ci].x0 + (int64_t)j * cases[ci].sx;
                want[i * Wq + j] = y >= 0 && y < H && x >= 0 && x < W ? src[y * W + x] : 0.0f;
            }
        for (uint32_t c = 1; c < cases[ci].copies; c++)
            for (size_t k = 0; k + c < n; k++)
                want[c * cf + k] = want[k + c];
        for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
            const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
            if (!k->supported())
                continue;
            for (int count = 0; count < 2; count++) {
                for (size_t i = 0; i < total; i++)
                    got[i] = -7.25f;
                eie_conv_plane_t P = {.src = src,
                                      .H = H,
                                      .W = W,
                                      .y0 = cases[ci].y0,
                                      .sy = cases[ci].sy,
                                      .x0 = cases[ci].x0,
                                      .sx = cases[ci].sx,
                                      .dst = got,
                                      .Hq = Hq,
                                      .Wq = Wq,
                                      .copy_floats = cf,
                                      .n_copies = cases[ci].copies};
                uint64_t nz = k->conv_plane(&P, count);
                cr_assert_eq(nz, count ? want_nz : 0, "kernel %s, case %zu: %" PRIu64 " nonzeros",
                             k->name, ci, nz);
                for (size_t i = 0; i < total; i++)
                    cr_assert(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                              "kernel %s, case %zu: float %zu is %a, want %a", k->name, ci, i,
                              got[i], want[i]);
            }
        }
        free(want);
        free(got);
    }
}

Test(layout, tall_pes_keep_narrow_row_blocks_with_the_wide_forms_bits)
{
    /* 9000 rows, 4-bit codes: 3 blocks of 3000 on 1 PE, 2 of 2250 on 2,
     * none on 3 (3000 local rows fit 16-bit entries); 5-bit codes (2048
     * rows a block): 5 blocks of 1800, 3 of 1500, 2 of 1500; 6-bit codes
     * never split */
    enum { R = 9000, C = 30 };
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 17;
    for (uint32_t bits = 4; bits <= 6; bits++) {
        eie_builder_init("", "", "", "", &b, &err);
        th_add_random_fc(b, R, C, 0.05, bits, &seed, &err);
        eie_model_t *m = th_load_builder(b);
        const eie_fc_t *fc = eie_model_fc(m, 0);
        float *x = malloc(16 * C * sizeof(float));
        float *got = malloc((16 * R + EIE_ACC_SLACK) * sizeof(float));
        float *want = malloc((16 * R + EIE_ACC_SLACK) * sizeof(float));
        uint32_t active[C + EIE_ACTIVE_SLACK];
        cr_assert(x && got && want);
        for (unsigned n = 1; n <= 3; n++) {
            eie_cpu_fc_t cf, wide;
            cr_assert_eq(eie_cpu_fc_init(fc, n, 0, 1, &cf, &err), 0);
            cr_assert_eq(eie_cpu_fc_init(fc, n, 1, 1, &wide, &err), 0);
            cr_assert_geq(eie_cpu_fc_layout_estimate(fc, n, 1), cf.layout_bytes);
            uint32_t want_blocks = bits == 4   ? (n == 3   ? 0
                                                  : n == 1 ? 3
                                                           : 2)
                                   : bits == 5 ? (n == 3   ? 2
                                                  : n == 1 ? 5
                                                           : 3)
                                               : 0;
            if (want_blocks > 0)
                cr_assert_lt(cf.layout_bytes, wide.layout_bytes, "pes %u", n);
            for (unsigned p = 0; p < n; p++) {
                const eie_pe_layer_t *L = &cf.pe[p];
                cr_assert_eq(L->n_blocks, want_blocks, "bits %u pes %u", bits, n);
                uint64_t total = 0;
                for (uint32_t k = 0; k < L->n_blocks; k++) {
                    cr_assert_leq(L->blocks[k].n_rows, eie_narrow_max_rows(bits));
                    total += L->blocks[k].n_ent;
                }
                if (L->n_blocks > 0) {
                    cr_assert_eq(total, L->n_ent);
                    cr_assert_null(L->ent);
                }
            }
            static const size_t batches[] = {1, 2, 3, 16};
            for (size_t bi = 0; bi < 4; bi++) {
                size_t B = batches[bi], S = eie_cpu_batch_stride(B);
                th_random_input(x, B * C, 0.6, &seed);
                x[0] = NAN;
                x[1] = -0.0f;
                size_t na = eie_cpu_kernels[0].active(x, C, 1, C, B, active);
                for (size_t ki = 0; ki < eie_cpu_kernel_count; ki++) {
                    const eie_cpu_kernel_t *k = &eie_cpu_kernels[ki];
                    if (!k->supported())
                        continue;
                    for (unsigned p = 0; p < n; p++) {
                        size_t nS = (size_t)cf.pe[p].n_rows * S;
                        memset(got, 0, (nS + EIE_ACC_SLACK) * sizeof(float));
                        memset(want, 0, (nS + EIE_ACC_SLACK) * sizeof(float));
                        uint64_t wg = eie_cpu_spmv(k, &cf, &cf.pe[p], active, na, x, 1, C, B, got);
                        uint64_t ww =
                            eie_cpu_spmv(k, &wide, &wide.pe[p], active, na, x, 1, C, B, want);
                        cr_assert_eq(wg, ww, "kernel %s entries walked", k->name);
                        cr_assert(memcmp(got, want, nS * sizeof(float)) == 0,
                                  "kernel %s bits %u pes %u batch %zu: blocks differ from the "
                                  "wide form",
                                  k->name, bits, n, B);
                    }
                }
            }
            eie_cpu_fc_clear(&cf);
            eie_cpu_fc_clear(&wide);
        }
        free(x);
        free(got);
        free(want);
        eie_model_free(m);
        eie_builder_free(b);
    }
}
