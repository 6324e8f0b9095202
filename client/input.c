/* Input parsers of eiectl: JSON, .npy and CSV into a float32 batch; see input.h. */
#include "input.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eie/file.h"

void eiectl_input_free(eiectl_input_t *in)
{
    if (in == NULL)
        return;
    free(in->data);
    in->data = NULL;
    in->rows = in->cols = 0;
}

/* A growing list of values, bounded by EIECTL_INPUT_MAX_VALUES. */
typedef struct {
    float *v;
    size_t n, cap;
} fvec_t;

static eie_status_t fvec_push(fvec_t *f, float x, const char *name, eie_error_t *err)
{
    if (f->n == f->cap) {
        if (f->cap >= EIECTL_INPUT_MAX_VALUES)
            return eie_error_set(err, EIE_STATUS_LIMIT, "%s: more than %zu values", name,
                                 EIECTL_INPUT_MAX_VALUES);
        size_t cap = f->cap ? f->cap * 2 : 256;
        if (cap > EIECTL_INPUT_MAX_VALUES)
            cap = EIECTL_INPUT_MAX_VALUES;
        float *v = realloc(f->v, cap * sizeof *v);
        if (v == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory", name);
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = x;
    return EIE_STATUS_OK;
}

/*
 * Converts a parsed double to float32, refusing what float32 cannot hold:
 * the server would otherwise see an infinity the user never wrote.
 */
static bool to_float(double d, float *out)
{
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return false;
    *out = (float)d;
    return true;
}

/* Line and column (1-based) of byte pos, for messages about text input. */
static void text_where(const char *text, size_t pos, size_t *line_out, size_t *col_out)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    *line_out = line;
    *col_out = col;
}

/* ---- JSON ---------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len, pos;
    const char *name;
    eie_error_t *err;
} json_t;

static void json_ws(json_t *j)
{
    while (j->pos < j->len &&
           (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
            j->s[j->pos] == '\r'))
        j->pos++;
}

static eie_status_t json_error(json_t *j, const char *what)
{
    size_t line, col;
    text_where(j->s, j->pos, &line, &col);
    if (j->pos >= j->len)
        return eie_error_set(j->err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s:%zu:%zu: %s, found the end of the input", j->name, line, col,
                             what);
    /* Show a little of what is there, up to the next delimiter. */
    size_t n = 0;
    while (j->pos + n < j->len && n < 20 && !strchr(",[]{} \t\r\n", j->s[j->pos + n]))
        n++;
    if (n == 0)
        n = 1;
    return eie_error_set(j->err, EIE_STATUS_INVALID_ARGUMENT, "%s:%zu:%zu: %s, found '%.*s'",
                         j->name, line, col, what, (int)n, j->s + j->pos);
}

static eie_status_t json_expect(json_t *j, char c, const char *what)
{
    json_ws(j);
    if (j->pos < j->len && j->s[j->pos] == c) {
        j->pos++;
        return EIE_STATUS_OK;
    }
    return json_error(j, what);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One JSON number (RFC 8259 grammar, so no NaN, Infinity, hex or leading '+'). */
static eie_status_t json_number(json_t *j, float *out)
{
    json_ws(j);
    size_t start = j->pos, p = j->pos;
    const char *s = j->s;
    if (p < j->len && s[p] == '-')
        p++;
    if (p < j->len && s[p] == '0') {
        p++;
    } else if (p < j->len && s[p] >= '1' && s[p] <= '9') {
        while (p < j->len && is_digit(s[p]))
            p++;
    } else {
        return json_error(j, "expected a number");
    }
    if (p < j->len && s[p] == '.') {
        p++;
        if (p >= j->len || !is_digit(s[p]))
            return json_error(j, "expected a number");
        while (p < j->len && is_digit(s[p]))
            p++;
    }
    if (p < j->len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < j->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= j->len || !is_digit(s[p]))
            return json_error(j, "expected a number");
        while (p < j->len && is_digit(s[p]))
            p++;
    }
    char buf[64];
    if (p - start >= sizeof buf)
        return json_error(j, "number longer than 63 characters");
    memcpy(buf, s + start, p - start);
    buf[p - start] = '\0';
    double d = strtod(buf, NULL);
    if (!to_float(d, out))
        return json_error(j, "number outside the float32 range");
    j->pos = p;
    return EIE_STATUS_OK;
}

/* The numbers of one array whose '[' has been consumed, up to and including ']'. */
static eie_status_t json_row(json_t *j, fvec_t *vals, size_t *count_out)
{
    size_t count = 0;
    json_ws(j);
    if (j->pos < j->len && j->s[j->pos] == ']')
        return json_error(j, "empty array; a row needs at least one number");
    for (;;) {
        float x = 0;
        eie_status_t st;
        if ((st = json_number(j, &x)) != EIE_STATUS_OK ||
            (st = fvec_push(vals, x, j->name, j->err)) != EIE_STATUS_OK)
            return st;
        if (++count > EIECTL_INPUT_MAX_COLS)
            return eie_error_set(j->err, EIE_STATUS_LIMIT, "%s: a row has more than %zu values",
                                 j->name, EIECTL_INPUT_MAX_COLS);
        json_ws(j);
        if (j->pos < j->len && j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if ((st = json_expect(j, ']', "expected ',' or ']'")) != EIE_STATUS_OK)
            return st;
        break;
    }
    *count_out = count;
    return EIE_STATUS_OK;
}

eie_status_t eiectl_input_parse_json(const char *text, size_t len, const char *name,
                                     eiectl_input_t *in_out, eie_error_t *err)
{
    eie_error_t local;
    if (err == NULL)
        err = &local; /* the status of a failed step is read back from err */
    json_t j = {.s = text, .len = len, .name = name, .err = err};
    fvec_t vals = {0};
    size_t rows = 0, cols = 0;

    /* A UTF-8 byte order mark is allowed before the value. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        j.pos = 3;
    if (json_expect(&j, '[', "expected '[' (an array of numbers or of arrays)") != EIE_STATUS_OK)
        goto error;
    json_ws(&j);
    if (j.pos < j.len && j.s[j.pos] == '[') {
        /* A batch: [[...], [...]] */
        for (;;) {
            if (json_expect(&j, '[', "expected '[' starting a row") != EIE_STATUS_OK)
                goto error;
            size_t n;
            if (json_row(&j, &vals, &n) != EIE_STATUS_OK)
                goto error;
            if (rows == 0) {
                cols = n;
            } else if (n != cols) {
                eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                              "%s: row %zu has %zu values, row 0 has %zu", name, rows, n, cols);
                goto error;
            }
            if (++rows > EIECTL_INPUT_MAX_ROWS) {
                eie_error_set(err, EIE_STATUS_LIMIT, "%s: more than %zu rows", name,
                              EIECTL_INPUT_MAX_ROWS);
                goto error;
            }
            json_ws(&j);
            if (j.pos < j.len && j.s[j.pos] == ',') {
                j.pos++;
                continue;
            }
            if (json_expect(&j, ']', "expected ',' or ']' after a row") != EIE_STATUS_OK)
                goto error;
            break;
        }
    } else {
        if (json_row(&j, &vals, &cols) != EIE_STATUS_OK)
            goto error;
        rows = 1;
    }
    json_ws(&j);
    if (j.pos != j.len) {
        json_error(&j, "unexpected text after the array");
        goto error;
    }
    in_out->data = vals.v;
    in_out->rows = rows;
    in_out->cols = cols;
    return EIE_STATUS_OK;
error:
    free(vals.v);
    return err->status;
}

/* ---- CSV ----------------------------------------------------------------- */

/* Parses one trimmed CSV field as a float; false if it is not a finite number. */
static bool csv_field(const char *s, size_t n, float *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != '\0' || end == buf)
        return false;
    return to_float(d, out);
}

eie_status_t eiectl_input_parse_csv(const char *text, size_t len, const char *name,
                                    eiectl_input_t *in_out, eie_error_t *err)
{
    eie_error_t local;
    if (err == NULL)
        err = &local; /* the status of a failed step is read back from err */
    fvec_t vals = {0};
    size_t rows = 0, cols = 0, lineno = 0;
    bool seen_content = false;
    size_t pos = 0, header_line = 0, header_a = 0, header_n = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t next = eol < len ? eol + 1 : eol;
        lineno++;
        size_t a = pos, b = eol;
        if (b > a && text[b - 1] == '\r')
            b--;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        pos = next;
        if (a == b || text[a] == '#')
            continue;
        if (memchr(text + a, '\0', b - a) != NULL) {
            eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                          "%s:%zu: contains a NUL byte; is it a text file?", name, lineno);
            goto error;
        }
        /* Split into fields and parse each; the first content line may be a header. */
        size_t start_n = vals.n, n = 0, numeric = 0, bad_at = 0, bad_a = 0, bad_b = 0;
        bool any_bad = false;
        for (size_t f = a;;) {
            size_t e = f;
            while (e < b && text[e] != ',')
                e++;
            size_t fa = f, fb = e;
            while (fa < fb && (text[fa] == ' ' || text[fa] == '\t'))
                fa++;
            while (fb > fa && (text[fb - 1] == ' ' || text[fb - 1] == '\t'))
                fb--;
            float x = 0;
            if (csv_field(text + fa, fb - fa, &x)) {
                numeric++;
            } else if (!any_bad) {
                any_bad = true;
                bad_at = n;
                bad_a = fa;
                bad_b = fb;
            }
            if (++n > EIECTL_INPUT_MAX_COLS) {
                eie_error_set(err, EIE_STATUS_LIMIT, "%s:%zu: more than %zu fields", name, lineno,
                              EIECTL_INPUT_MAX_COLS);
                goto error;
            }
            if (fvec_push(&vals, x, name, err) != EIE_STATUS_OK)
                goto error;
            if (e >= b)
                break;
            f = e + 1;
        }
        if (!seen_content && numeric == 0) {
            /* A header: no field is a number. */
            vals.n = start_n;
            header_line = lineno;
            header_a = a;
            header_n = b - a;
            seen_content = true;
            continue;
        }
        seen_content = true;
        if (any_bad) {
            size_t shown = bad_b - bad_a > 40 ? 40 : bad_b - bad_a;
            if (bad_b == bad_a)
                eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s:%zu: field %zu is empty", name,
                              lineno, bad_at + 1);
            else
                eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                              "%s:%zu: field %zu '%.*s%s' is not a finite float32 number", name,
                              lineno, bad_at + 1, (int)shown, text + bad_a,
                              shown < bad_b - bad_a ? "..." : "");
            goto error;
        }
        if (rows == 0) {
            cols = n;
        } else if (n != cols) {
            eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                          "%s:%zu: %zu fields, the first row has %zu", name, lineno, n, cols);
            goto error;
        }
        if (++rows > EIECTL_INPUT_MAX_ROWS) {
            eie_error_set(err, EIE_STATUS_LIMIT, "%s: more than %zu rows", name,
                          EIECTL_INPUT_MAX_ROWS);
            goto error;
        }
    }
    if (rows == 0) {
        if (header_line != 0)
            eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                          "%s: no rows of numbers (line %zu, '%.*s%s', was taken as a "
                          "header)",
                          name, header_line, (int)(header_n > 40 ? 40 : header_n), text + header_a,
                          header_n > 40 ? "..." : "");
        else
            eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s: no rows of numbers", name);
        goto error;
    }
    in_out->data = vals.v;
    in_out->rows = rows;
    in_out->cols = cols;
    return EIE_STATUS_OK;
error:
    free(vals.v);
    return err->status;
}

/* ---- .npy ---------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len, pos;
} npyh_t;

static void npyh_ws(npyh_t *h)
{
    while (h->pos < h->len && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' ||
                               h->s[h->pos] == '\n' || h->s[h->pos] == '\r'))
        h->pos++;
}

static bool npyh_char(npyh_t *h, char c)
{
    npyh_ws(h);
    if (h->pos < h->len && h->s[h->pos] == c) {
        h->pos++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes (no escapes in npy headers). */
static bool npyh_string(npyh_t *h, const char **s_out, size_t *n_out)
{
    npyh_ws(h);
    if (h->pos >= h->len || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return false;
    char q = h->s[h->pos++];
    size_t start = h->pos;
    while (h->pos < h->len && h->s[h->pos] != q) {
        if (h->s[h->pos] == '\\')
            return false;
        h->pos++;
    }
    if (h->pos >= h->len)
        return false;
    *s_out = h->s + start;
    *n_out = h->pos - start;
    h->pos++;
    return true;
}

static bool npyh_word(npyh_t *h, const char *w)
{
    npyh_ws(h);
    size_t n = strlen(w);
    if (h->len - h->pos >= n && memcmp(h->s + h->pos, w, n) == 0) {
        h->pos += n;
        return true;
    }
    return false;
}

/* A shape tuple: (), (n,), (r, c), (a, b, c) ...; at most 8 dims are read. */
static bool npyh_shape(npyh_t *h, uint64_t *dims, size_t *ndim_out, bool *overflow_out)
{
    *overflow_out = false;
    if (!npyh_char(h, '('))
        return false;
    size_t nd = 0;
    for (;;) {
        npyh_ws(h);
        if (h->pos < h->len && h->s[h->pos] == ')') {
            h->pos++;
            break;
        }
        if (h->pos >= h->len || !is_digit(h->s[h->pos]))
            return false;
        uint64_t v = 0;
        while (h->pos < h->len && is_digit(h->s[h->pos])) {
            if (v > (UINT64_MAX - 9) / 10)
                *overflow_out = true;
            else
                v = v * 10 + (uint64_t)(h->s[h->pos] - '0');
            h->pos++;
        }
        if (h->pos < h->len && h->s[h->pos] == 'L') /* Python 2 long */
            h->pos++;
        if (nd >= 8)
            return false;
        dims[nd++] = v;
        npyh_ws(h);
        if (h->pos < h->len && h->s[h->pos] == ',') {
            h->pos++;
            continue;
        }
        if (!npyh_char(h, ')'))
            return false;
        break;
    }
    *ndim_out = nd;
    return true;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

eie_status_t eiectl_input_parse_npy(const uint8_t *data, size_t len, const char *name,
                                    eiectl_input_t *in_out, eie_error_t *err)
{
    if (len < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: not a .npy file (no \\x93NUMPY magic)", name);
    unsigned major = data[6], minor = data[7];
    size_t hstart, hlen;
    if (major == 1) {
        hstart = 10;
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s: .npy header is truncated",
                                 name);
        hstart = 12;
        hlen = le32(data + 8);
    } else {
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%s: .npy format version %u.%u is not supported (1.0-3.0 are)", name,
                             major, minor);
    }
    if (hlen > EIECTL_NPY_MAX_HEADER)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "%s: .npy header of %zu bytes is larger than the %zu allowed", name,
                             hlen, EIECTL_NPY_MAX_HEADER);
    if (hlen > len - hstart)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: .npy header of %zu bytes runs past the end of the file", name,
                             hlen);

    /* The header is a Python dict literal with exactly these three keys. */
    npyh_t h = {.s = (const char *)data + hstart, .len = hlen};
    bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
    bool overflow = false;
    char descr[16] = "";
    uint64_t dims[8];
    size_t ndim = 0;
    if (!npyh_char(&h, '{'))
        goto bad_header;
    for (;;) {
        if (npyh_char(&h, '}'))
            break;
        const char *key;
        size_t kn;
        if (!npyh_string(&h, &key, &kn) || !npyh_char(&h, ':'))
            goto bad_header;
        if (kn == 5 && memcmp(key, "descr", 5) == 0 && !have_descr) {
            const char *v;
            size_t vn;
            if (!npyh_string(&h, &v, &vn))
                return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                                     "%s: .npy 'descr' is not a simple dtype string "
                                     "(structured arrays are not supported)",
                                     name);
            if (vn >= sizeof descr)
                vn = sizeof descr - 1;
            memcpy(descr, v, vn);
            descr[vn] = '\0';
            have_descr = true;
        } else if (kn == 13 && memcmp(key, "fortran_order", 13) == 0 && !have_fortran) {
            if (npyh_word(&h, "True"))
                fortran = true;
            else if (npyh_word(&h, "False"))
                fortran = false;
            else
                goto bad_header;
            have_fortran = true;
        } else if (kn == 5 && memcmp(key, "shape", 5) == 0 && !have_shape) {
            if (!npyh_shape(&h, dims, &ndim, &overflow))
                goto bad_header;
            have_shape = true;
        } else {
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s: .npy header has an unexpected or repeated key '%.*s'", name,
                                 (int)(kn > 40 ? 40 : kn), key);
        }
        if (npyh_char(&h, ','))
            continue;
        if (!npyh_char(&h, '}'))
            goto bad_header;
        break;
    }
    npyh_ws(&h);
    if (h.pos != h.len || !have_descr || !have_fortran || !have_shape)
        goto bad_header;

    size_t esize;
    if (strcmp(descr, "<f4") == 0)
        esize = 4;
    else if (strcmp(descr, "<f8") == 0)
        esize = 8;
    else
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%s: dtype '%s' is not supported (eiectl reads little-endian "
                             "float32 '<f4' or float64 '<f8')",
                             name, descr);
    if (fortran)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%s: array is in Fortran order; save it in C order "
                             "(numpy.ascontiguousarray)",
                             name);
    if (overflow)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "%s: .npy shape has a dimension too large to read", name);
    size_t rows, cols;
    if (ndim == 1) {
        rows = 1;
        cols = dims[0];
    } else if (ndim == 2) {
        if (dims[0] > EIECTL_INPUT_MAX_ROWS || dims[1] > EIECTL_INPUT_MAX_COLS)
            return eie_error_set(err, EIE_STATUS_LIMIT,
                                 "%s: shape (%llu, %llu) is larger than the %zu x %zu "
                                 "allowed",
                                 name, (unsigned long long)dims[0], (unsigned long long)dims[1],
                                 EIECTL_INPUT_MAX_ROWS, EIECTL_INPUT_MAX_COLS);
        rows = dims[0];
        cols = dims[1];
    } else if (ndim >= 3) {
        /* (rows, C, H, W) and the like: each row is one sample, flattened in C order */
        uint64_t per = 1;
        for (size_t d = 1; d < ndim; d++) {
            per *= dims[d];
            if (dims[d] > EIECTL_INPUT_MAX_COLS || per > EIECTL_INPUT_MAX_COLS)
                return eie_error_set(err, EIE_STATUS_LIMIT,
                                     "%s: a sample of this %zu-D array holds more than the "
                                     "%zu values allowed",
                                     name, ndim, EIECTL_INPUT_MAX_COLS);
        }
        if (dims[0] > EIECTL_INPUT_MAX_ROWS)
            return eie_error_set(err, EIE_STATUS_LIMIT, "%s: %llu rows, more than the %zu allowed",
                                 name, (unsigned long long)dims[0], EIECTL_INPUT_MAX_ROWS);
        rows = dims[0];
        cols = (size_t)per;
    } else {
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: array has no dimensions (a scalar); eiectl takes rows", name);
    }
    if (cols > EIECTL_INPUT_MAX_COLS)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "%s: %zu values per row, more than the %zu allowed", name, cols,
                             EIECTL_INPUT_MAX_COLS);
    if (rows == 0 || cols == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: array has no values (a dimension of its shape is 0)", name);
    if (rows * cols > EIECTL_INPUT_MAX_VALUES) /* both <= 2^20: no overflow */
        return eie_error_set(err, EIE_STATUS_LIMIT, "%s: %zu values, more than the %zu allowed",
                             name, rows * cols, EIECTL_INPUT_MAX_VALUES);
    size_t count = rows * cols, have = len - hstart - hlen;
    if (have != count * esize)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: %zu bytes of data, the shape (%zu x %zu of %s) needs %zu", name,
                             have, rows, cols, descr, count * esize);

    float *v = malloc(count * sizeof *v);
    if (v == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "%s: out of memory", name);
    const uint8_t *p = data + hstart + hlen;
    for (size_t i = 0; i < count; i++) {
        double d;
        if (esize == 4) {
            uint32_t u = le32(p + 4 * i);
            float f;
            memcpy(&f, &u, sizeof f);
            d = f;
        } else {
            uint64_t u = le64(p + 8 * i);
            memcpy(&d, &u, sizeof d);
        }
        if (!to_float(d, &v[i])) {
            free(v);
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s: value [%zu, %zu] = %g is not a finite float32 number", name,
                                 i / cols, i % cols, d);
        }
    }
    in_out->data = v;
    in_out->rows = rows;
    in_out->cols = cols;
    return EIE_STATUS_OK;

bad_header:
    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                         "%s: .npy header is not a dict of 'descr', 'fortran_order' and "
                         "'shape' (byte %zu of the header: '%.*s')",
                         name, h.pos, (int)(h.len - h.pos > 20 ? 20 : h.len - h.pos), h.s + h.pos);
}

/* ---- files --------------------------------------------------------------- */

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

eie_status_t eiectl_input_parse(const uint8_t *data, size_t len, const char *name,
                                eiectl_input_format_t format, eiectl_input_t *in_out,
                                eie_error_t *err)
{
    if (format == EIECTL_INPUT_AUTO) {
        if (has_ext(name, ".npy"))
            format = EIECTL_INPUT_NPY;
        else if (has_ext(name, ".json"))
            format = EIECTL_INPUT_JSON;
        else if (has_ext(name, ".csv"))
            format = EIECTL_INPUT_CSV;
        else if (len >= 6 && memcmp(data, "\x93NUMPY", 6) == 0)
            format = EIECTL_INPUT_NPY;
        else {
            size_t i = 0;
            while (i < len && isspace(data[i]))
                i++;
            format = i < len && data[i] == '[' ? EIECTL_INPUT_JSON : EIECTL_INPUT_CSV;
        }
    }
    switch (format) {
    case EIECTL_INPUT_NPY:
        return eiectl_input_parse_npy(data, len, name, in_out, err);
    case EIECTL_INPUT_JSON:
        return eiectl_input_parse_json((const char *)data, len, name, in_out, err);
    case EIECTL_INPUT_CSV:
    default:
        return eiectl_input_parse_csv((const char *)data, len, name, in_out, err);
    }
}

eie_status_t eiectl_read_file_limited(const char *path, size_t max_bytes, uint8_t **data_out,
                                      size_t *len_out, eie_error_t *err)
{
    if (strcmp(path, "-") == 0)
        return eie_file_read_stream(stdin, "stdin", max_bytes, 0, data_out, len_out, err);
    return eie_file_read_ex(path, max_bytes, EIE_FILE_STREAMS, data_out, len_out, err);
}

eie_status_t eiectl_input_load(const char *path, eiectl_input_format_t format,
                               eiectl_input_t *in_out, eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st = eiectl_read_file_limited(path, EIECTL_INPUT_MAX_BYTES, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
    if (len == 0) {
        free(data);
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s is empty", name);
    }
    st = eiectl_input_parse(data, len, name, format, in_out, err);
    free(data);
    return st;
}
