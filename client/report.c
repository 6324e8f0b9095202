/* Percentiles, top-K and JSON output of eiectl; see report.h. */
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void eiectl_latency_sort(uint64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_u64);
}

uint64_t eiectl_percentile(const uint64_t *sorted, size_t n, double p)
{
    /* p * n first, so whole percentages of whole counts stay exact. */
    double r = ceil(p * (double)n / 100.0);
    size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;
    return sorted[rank - 1];
}

void eiectl_latency_summarize(uint64_t *v, size_t n, eiectl_latency_summary_t *summary_out)
{
    memset(summary_out, 0, sizeof *summary_out);
    if (n == 0)
        return;
    eiectl_latency_sort(v, n);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    summary_out->count = n;
    summary_out->min = v[0];
    summary_out->p50 = eiectl_percentile(v, n, 50);
    summary_out->p90 = eiectl_percentile(v, n, 90);
    summary_out->p99 = eiectl_percentile(v, n, 99);
    summary_out->max = v[n - 1];
    summary_out->mean = sum / (double)n;
}

typedef struct {
    float v;
    size_t i;
} scored_t;

static int cmp_scored(const void *a, const void *b)
{
    const scored_t *x = a, *y = b;
    bool xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn)
        return xn ? 1 : -1;
    if (!xn && x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

size_t eiectl_top_k(const float *v, size_t n, size_t k, size_t *idx_out)
{
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    scored_t *s = malloc(n * sizeof *s);
    if (s == NULL) {
        /* Fall back to selection, O(n k), rather than fail a print. */
        for (size_t j = 0; j < k; j++) {
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < n; i++) {
                bool used = false;
                for (size_t u = 0; u < j && !used; u++)
                    used = idx_out[u] == i;
                if (used)
                    continue;
                scored_t a = {v[i], i}, b = {best == SIZE_MAX ? 0 : v[best], best};
                if (best == SIZE_MAX || cmp_scored(&a, &b) < 0)
                    best = i;
            }
            idx_out[j] = best;
        }
        return k;
    }
    for (size_t i = 0; i < n; i++)
        s[i] = (scored_t){v[i], i};
    qsort(s, n, sizeof *s, cmp_scored);
    for (size_t j = 0; j < k; j++)
        idx_out[j] = s[j].i;
    free(s);
    return k;
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void eiectl_json_string_n(FILE *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\r') {
            fputs("\\r", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(p + i, 1, len, out);
                i += len;
            }
        }
    }
    fputc('"', out);
}

void eiectl_json_string(FILE *out, const char *s)
{
    eiectl_json_string_n(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void eiectl_json_float(FILE *out, float v)
{
    if (!isfinite(v))
        fputs("null", out);
    else
        fprintf(out, "%.9g", (double)v);
}

void eiectl_json_double(FILE *out, double v)
{
    if (!isfinite(v))
        fputs("null", out);
    else
        fprintf(out, "%.17g", v);
}

int eiectl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "eiectl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'eiectl %s --help' for usage.\n", cmd);
    return 2;
}
