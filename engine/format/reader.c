/*
 * The .eie reader (engine/FORMAT.md). A file is untrusted: every read is
 * bounds checked, every size is checked against eie_limits_t before anything
 * is allocated from it, and every error names the layer, the field and the
 * byte offset.
 *
 * Order: (1) magic and version, (2) header and the layer framing (kind and
 * byte length of each layer), so truncation is reported as such, (3) the
 * SHA-256 trailer, (4) the contents of each layer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "eie/file.h"
#include "format/format.h"
#include "format/huffman.h"

typedef struct cur {
    const uint8_t *d;
    size_t off, end;
    char where[128]; /* "header", "layer 3 (fc)" or "node 3 (conv2d \"c1\")" */
    eie_error_t *err;
} cur_t;

static eie_status_t cur_fail(cur_t *c, eie_status_t st, const char *field, size_t off,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static eie_status_t cur_fail(cur_t *c, eie_status_t st, const char *field, size_t off,
                             const char *fmt, ...)
{
    char detail[EIE_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return eie_error_set(c->err, st, "%s, field %s, byte offset %zu: %s", c->where, field, off,
                         detail);
}

static eie_status_t cur_need(cur_t *c, size_t n, const char *field)
{
    if (c->end - c->off < n)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off,
                        "needs %zu bytes but only %zu remain (file truncated?)", n,
                        c->end - c->off);
    return EIE_STATUS_OK;
}

static uint64_t get_le(cur_t *c, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)c->d[c->off + i] << (8 * i);
    c->off += n;
    return v;
}

#define READ(c, n, field, dst)                                                                 \
    do {                                                                                       \
        eie_status_t st_ = cur_need((c), (n), (field));                                        \
        if (st_ != EIE_STATUS_OK)                                                              \
            return st_;                                                                        \
        (dst) = get_le((c), (n));                                                              \
    } while (0)

/* READ for functions that clean up: sets st and jumps to done. */
#define READ_OR(c, n, field, dst)                                                              \
    do {                                                                                       \
        if ((st = cur_need((c), (n), (field))) != EIE_STATUS_OK)                               \
            goto done;                                                                         \
        (dst) = get_le((c), (n));                                                              \
    } while (0)

static eie_status_t read_str(cur_t *c, const char *field, char **out)
{
    uint64_t n;
    size_t at = c->off;
    READ(c, 4, field, n);
    if (n > EIE_FORMAT_MAX_STRING)
        return cur_fail(c, EIE_STATUS_LIMIT, field, at, "length %" PRIu64 " over the limit %u", n,
                        EIE_FORMAT_MAX_STRING);
    eie_status_t st = cur_need(c, (size_t)n, field);
    if (st != EIE_STATUS_OK)
        return st;
    if (memchr(c->d + c->off, 0, (size_t)n) != NULL)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off, "contains a NUL byte");
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return eie_error_set(c->err, EIE_STATUS_NO_MEMORY, "out of memory");
    memcpy(s, c->d + c->off, (size_t)n);
    s[n] = 0;
    c->off += (size_t)n;
    *out = s;
    return EIE_STATUS_OK;
}

static eie_status_t read_floats(cur_t *c, size_t n, const char *field, float **out)
{
    eie_status_t st = cur_need(c, n * 4, field); /* n is bounded by the limits already */
    if (st != EIE_STATUS_OK)
        return st;
    float *f = malloc((n ? n : 1) * sizeof(float));
    if (f == NULL)
        return eie_error_set(c->err, EIE_STATUS_NO_MEMORY, "%s: out of memory for %s", c->where,
                             field);
    for (size_t i = 0; i < n; i++) {
        size_t at = c->off;
        uint32_t u = (uint32_t)get_le(c, 4);
        memcpy(&f[i], &u, 4);
        if (!isfinite(f[i])) {
            free(f);
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, at, "value %zu is not finite", i);
        }
    }
    *out = f;
    return EIE_STATUS_OK;
}

static eie_status_t read_table(cur_t *c, const char *field, unsigned max_sym, uint8_t *lens,
                               unsigned *nsym_out, eie_huff_dec_t *dec)
{
    uint64_t nsym;
    size_t at = c->off;
    READ(c, 2, field, nsym);
    if (nsym == 0 || nsym > max_sym)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, at,
                        "invalid Huffman table: %" PRIu64 " symbols, must be 1..%u", nsym,
                        max_sym);
    eie_status_t st = cur_need(c, (size_t)nsym, field);
    if (st != EIE_STATUS_OK)
        return st;
    memcpy(lens, c->d + c->off, (size_t)nsym);
    const char *why = NULL;
    if (eie_huff_dec_init(lens, (unsigned)nsym, dec, &why) != 0)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off, "invalid Huffman table: %s",
                        why);
    c->off += (size_t)nsym;
    *nsym_out = (unsigned)nsym;
    return EIE_STATUS_OK;
}

/* Decodes one Huffman stream of exactly `entries` symbols into out. */
static eie_status_t read_stream(cur_t *c, const char *field, const eie_huff_dec_t *dec,
                                uint64_t entries, uint8_t *out, uint64_t *bits_out,
                                uint64_t *bytes_out)
{
    uint64_t n;
    size_t at = c->off;
    READ(c, 8, field, n);
    eie_status_t st = cur_need(c, n > SIZE_MAX ? SIZE_MAX : (size_t)n, field);
    if (st != EIE_STATUS_OK)
        return st;
    if (entries > 0 && dec->used == 0)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, at,
                        "invalid Huffman table: no symbol has a code but %" PRIu64
                        " entries are stored",
                        entries);
    /* Each symbol takes at least one bit: a stream cannot hold more. */
    if (entries > n * 8)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, at,
                        "stream of %" PRIu64 " bytes cannot hold %" PRIu64 " entries", n,
                        entries);
    eie_bitreader_t br = {.data = c->d + c->off, .len = (size_t)n, .bit = 0};
    for (uint64_t i = 0; i < entries; i++) {
        unsigned sym;
        int rc = eie_huff_decode(dec, &br, &sym);
        if (rc == -1)
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off + (size_t)n,
                            "stream decodes to %" PRIu64 " entries, expected %" PRIu64, i,
                            entries);
        if (rc == -2)
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off + (size_t)(br.bit / 8),
                            "bit pattern of entry %" PRIu64 " is no Huffman code", i);
        out[i] = (uint8_t)sym;
    }
    uint64_t used = (br.bit + 7) / 8;
    if (used != n)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, c->off + (size_t)used,
                        "stream decodes to more than the %" PRIu64
                        " expected entries (%" PRIu64 " of %" PRIu64 " bytes used)",
                        entries, used, n);
    *bits_out = br.bit;
    *bytes_out = n;
    c->off += (size_t)n;
    return EIE_STATUS_OK;
}

static eie_status_t read_fc(cur_t *c, const eie_limits_t *lim, uint32_t version, eie_fc_t *fc)
{
    uint64_t rows, cols, bits, reserved, nnz, entries;
    size_t at_rows = c->off;
    READ(c, 4, "rows", rows);
    size_t at_cols = c->off;
    READ(c, 4, "cols", cols);
    size_t at_bits = c->off;
    READ(c, 4, "code_bits", bits);
    size_t at_res = c->off;
    READ(c, 4, version == EIE_FORMAT_VERSION ? "reserved" : "storage", reserved);
    size_t at_nnz = c->off;
    READ(c, 8, "nnz", nnz);
    size_t at_entries = c->off;
    READ(c, 8, "entries", entries);
    if (rows == 0 || rows > lim->max_dim)
        return cur_fail(c, EIE_STATUS_LIMIT, "rows", at_rows, "%" PRIu64 " not in 1..%u", rows,
                        lim->max_dim);
    if (cols == 0 || cols > lim->max_dim)
        return cur_fail(c, EIE_STATUS_LIMIT, "cols", at_cols, "%" PRIu64 " not in 1..%u", cols,
                        lim->max_dim);
    if (rows * cols > lim->max_weights)
        return cur_fail(c, EIE_STATUS_LIMIT, "cols", at_cols,
                        "%" PRIu64 "x%" PRIu64 " weights over the limit %" PRIu64, rows, cols,
                        lim->max_weights);
    if (bits < 1 || bits > 8)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "code_bits", at_bits, "%" PRIu64
                        " not in 1..8", bits);
    if (version == EIE_FORMAT_VERSION && reserved != 0)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "reserved", at_res, "is %" PRIu64
                        ", must be 0", reserved);
    if (reserved > EIE_STORAGE_EXACT)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "storage", at_res, "is %" PRIu64
                        ", must be 0 (shared) or 1 (exact)", reserved);
    if (reserved == EIE_STORAGE_EXACT && bits != 1)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "code_bits", at_bits, "is %" PRIu64
                        ", must be 1 for exact storage", bits);
    if (entries > rows * cols)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "entries", at_entries,
                        "%" PRIu64 " entries for %" PRIu64 " weights", entries, rows * cols);
    if (nnz > entries)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "nnz", at_nnz,
                        "%" PRIu64 " nonzeros but only %" PRIu64 " entries", nnz, entries);
    fc->rows = (uint32_t)rows;
    fc->cols = (uint32_t)cols;
    fc->code_bits = (uint32_t)bits;
    fc->storage = (uint32_t)reserved;
    unsigned ncb = 1u << bits;
    size_t at_cb = c->off;
    eie_status_t st;
    if (fc->storage == EIE_STORAGE_EXACT) {
        /* nnz <= entries <= rows*cols <= max_weights; read_floats checks the bytes first. */
        if ((st = read_floats(c, (size_t)nnz, "values", &fc->values)) != EIE_STATUS_OK)
            return st;
    } else if ((st = read_floats(c, ncb, "codebook", &fc->codebook)) != EIE_STATUS_OK) {
        return st;
    } else if (fc->codebook[0] != 0.0f) {
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "codebook", at_cb,
                        "codebook[0] is %g, must be 0.0 (the filler)", (double)fc->codebook[0]);
    }
    if ((st = read_floats(c, (size_t)rows, "bias", &fc->bias)) != EIE_STATUS_OK)
        return st;
    uint8_t clens[EIE_HUFF_MAX_SYMS], rlens[EIE_HUFF_MAX_SYMS];
    unsigned cn, rn;
    eie_huff_dec_t cdec, rdec;
    if ((st = read_table(c, "code_table", EIE_HUFF_MAX_SYMS, clens, &cn, &cdec)) != 0 ||
        (st = read_table(c, "run_table", EIE_RUN_MAX + 1, rlens, &rn, &rdec)) != 0)
        return st;
    /* entries <= rows*cols <= max_weights; the code stream's length field is
     * read ahead and checked against the bytes present (as read_stream does),
     * so this allocation is bounded by the file size too: each entry takes at
     * least one bit. */
    size_t at_cstream = c->off;
    uint64_t peek_bytes;
    cur_t peek = *c;
    READ(&peek, 8, "code_stream", peek_bytes);
    if ((st = cur_need(&peek, peek_bytes > SIZE_MAX ? SIZE_MAX : (size_t)peek_bytes,
                       "code_stream")) != EIE_STATUS_OK)
        return st;
    if (entries > peek_bytes * 8)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "code_stream", at_cstream,
                        "stream of %" PRIu64 " bytes cannot hold %" PRIu64 " entries", peek_bytes,
                        entries);
    fc->codes = malloc(entries ? (size_t)entries : 1);
    fc->runs = malloc(entries ? (size_t)entries : 1);
    if (fc->codes == NULL || fc->runs == NULL)
        return eie_error_set(c->err, EIE_STATUS_NO_MEMORY, "%s: out of memory for %" PRIu64
                             " entries", c->where, entries);
    uint64_t cbytes, rbytes;
    if ((st = read_stream(c, "code_stream", &cdec, entries, fc->codes, &fc->code_stream_bits,
                          &cbytes)) != 0)
        return st;
    size_t at_rstream = c->off;
    if ((st = read_stream(c, "run_stream", &rdec, entries, fc->runs, &fc->run_stream_bits,
                          &rbytes)) != 0)
        return st;
    fc->stream_bytes = cbytes + rbytes;
    fc->entries = entries;
    /* Walk the entries: every code must exist in the codebook and every
     * position must stay inside the matrix. */
    uint64_t pos = (uint64_t)-1, count = 0, total = rows * cols;
    for (uint64_t e = 0; e < entries; e++) {
        if (fc->codes[e] >= ncb)
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, "code_stream", at_cstream,
                            "entry %" PRIu64 " has code %u, codebook has %u entries", e,
                            fc->codes[e], ncb);
        pos += (uint64_t)fc->runs[e] + 1;
        if (pos >= total)
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, "run_stream", at_rstream,
                            "entry %" PRIu64 " lands at row %" PRIu64 " of column %" PRIu64
                            ", outside the %" PRIu64 "x%" PRIu64 " matrix",
                            e, pos % rows, pos / rows, rows, cols);
        count += fc->codes[e] != 0;
    }
    if (count != nnz)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "nnz", at_nnz,
                        "says %" PRIu64 " but the streams hold %" PRIu64 " nonzeros", nnz, count);
    fc->nnz = nnz;
    return EIE_STATUS_OK;
}

typedef struct frame {
    uint32_t kind;
    size_t kind_off, start, len;
} frame_t;

/* Checks the SHA-256 trailer at c->end against everything before it. */
static eie_status_t check_sum(cur_t *c, eie_model_t *m)
{
    uint8_t sum[EVP_MAX_MD_SIZE];
    unsigned sl = 0;
    if (!EVP_Digest(c->d, c->end, sum, &sl, EVP_sha256(), NULL) || sl != 32)
        return eie_error_set(c->err, EIE_STATUS_INTERNAL, "SHA-256 failed");
    if (memcmp(sum, c->d + c->end, 32) != 0) {
        snprintf(c->where, sizeof c->where, "trailer");
        return cur_fail(c, EIE_STATUS_BAD_CHECKSUM, "checksum", c->end,
                        "SHA-256 of the file does not match the stored checksum (file corrupted)");
    }
    for (unsigned k = 0; k < 32; k++)
        snprintf(m->checksum_hex + 2 * k, 3, "%02x", sum[k]);
    return EIE_STATUS_OK;
}

/* Reads a tensor index and checks it is < n. */
static eie_status_t read_index(cur_t *c, const char *field, size_t n, uint32_t *out)
{
    uint64_t v;
    size_t at = c->off;
    READ(c, 4, field, v);
    if (v >= n)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, field, at,
                        "tensor %" PRIu64 " but the graph has %zu tensors", v, n);
    *out = (uint32_t)v;
    return EIE_STATUS_OK;
}

static eie_status_t read_u32s(cur_t *c, const char *field, uint32_t *v, size_t n)
{
    eie_status_t st = cur_need(c, 4 * n, field);
    if (st != EIE_STATUS_OK)
        return st;
    for (size_t k = 0; k < n; k++)
        v[k] = (uint32_t)get_le(c, 4);
    return EIE_STATUS_OK;
}

/* defined[t] of a tensor that is an LSTM's final state (FORMAT.md, "LSTM"). */
#define DEFINED_STATE 2

/* An LSTM node's attributes, matrix and stored initial state (FORMAT.md, "LSTM"). */
static eie_status_t read_lstm(cur_t *c, const eie_limits_t *lim, eie_model_t *m, eie_layer_t *l)
{
    eie_status_t st;
    uint32_t v[2];
    size_t at = c->off;
    if ((st = read_u32s(c, "hidden_size", v, 2)) != EIE_STATUS_OK)
        return st;
    l->lstm.hidden = v[0];
    if (v[0] < 1 || v[0] > lim->max_dim / 4)
        return cur_fail(c, EIE_STATUS_LIMIT, "hidden_size", at, "hidden_size %u not in 1..%u",
                        v[0], lim->max_dim / 4);
    if (v[1] > 15 || (v[1] & 5) == 5 || (v[1] & 10) == 10)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "initial", at + 4,
                        "flags %u: bits 0, 1 store initial_h, initial_c, bits 2, 3 feed them "
                        "from the node's inputs; a state is stored or fed, not both",
                        v[1]);
    /* a fed state is the node's next input after X: initial_h first, then initial_c */
    uint32_t next = 1;
    for (int k = 0; k < 2; k++) {
        l->lstm.initial_in[k] = UINT32_MAX;
        if (!(v[1] & (4u << k)))
            continue;
        if (next >= l->n_inputs)
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, "initial", at + 4,
                            "flags %u feed initial_%c from input %u but the node has %u inputs",
                            v[1], k ? 'c' : 'h', next, l->n_inputs);
        l->lstm.initial_in[k] = l->inputs[next++];
    }
    if (next != l->n_inputs)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "inputs", at + 4,
                        "%u inputs but the initial flags %u name %u (X, then the fed initial_h "
                        "and initial_c)",
                        l->n_inputs, v[1], next);
    if (l->lstm.state[1] != UINT32_MAX && l->lstm.state[0] == UINT32_MAX)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "outputs", at, "Y_c needs Y_h");
    if ((st = read_fc(c, lim, EIE_FORMAT_VERSION_GRAPH, &l->fc)) != EIE_STATUS_OK)
        return st;
    const eie_shape_t *x = &m->tensors[l->inputs[0]].shape;
    if ((v[1] & 3) != 0 && x->rank != 3)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "inputs", at,
                        "input \"%s\" is not [T,N,I], so the lanes of the initial state are "
                        "unknown",
                        m->tensors[l->inputs[0]].name);
    l->lstm.lanes = x->rank == 3 ? (uint32_t)x->dims[1] : 0;
    for (int k = 0; k < 2; k++)
        if (v[1] & (1u << k)) {
            size_t n = (size_t)x->dims[1] * l->lstm.hidden;
            if ((st = read_floats(c, n, k ? "initial_c" : "initial_h", &l->lstm.initial[k])) !=
                EIE_STATUS_OK)
                return st;
        }
    return EIE_STATUS_OK;
}

/* One node's payload (FORMAT.md, "Nodes"), up to but not including the checks against the
 * graph that need the other nodes; defined[t] says whether tensor t has a value yet. */
static eie_status_t read_node(cur_t *c, const eie_limits_t *lim, eie_model_t *m, size_t index,
                              eie_layer_t *l, uint8_t *defined)
{
    eie_status_t st;
    uint64_t n_in, n_out;
    if ((st = read_str(c, "name", &l->name)) != EIE_STATUS_OK)
        return st;
    if (l->name[0] != 0) /* later messages name the node */
        snprintf(c->where, sizeof c->where, "node %zu (%s \"%.64s\")", index,
                 eie_layer_kind_name(l->kind), l->name);
    size_t at_in = c->off;
    READ(c, 4, "inputs", n_in);
    if (n_in == 0 || n_in > lim->max_tensors)
        return cur_fail(c, EIE_STATUS_LIMIT, "inputs", at_in, "%" PRIu64 " inputs, must be 1..%u",
                        n_in, lim->max_tensors);
    if ((st = cur_need(c, 4 * (size_t)n_in, "inputs")) != EIE_STATUS_OK)
        return st;
    if ((l->inputs = malloc((size_t)n_in * sizeof *l->inputs)) == NULL)
        return eie_error_set(c->err, EIE_STATUS_NO_MEMORY, "out of memory");
    l->n_inputs = (uint32_t)n_in;
    for (uint32_t k = 0; k < l->n_inputs; k++) {
        size_t at = c->off;
        if ((st = read_index(c, "inputs", m->n_tensors, &l->inputs[k])) != EIE_STATUS_OK)
            return st;
        if (!defined[l->inputs[k]])
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, "inputs", at,
                            "tensor %u \"%s\" is read before any node writes it (nodes must be in "
                            "topological order)",
                            l->inputs[k], m->tensors[l->inputs[k]].name);
        /* An LSTM's final state is written once per run, not per step: only a graph
           output may take it. */
        if (defined[l->inputs[k]] == DEFINED_STATE)
            return cur_fail(c, EIE_STATUS_UNSUPPORTED, "inputs", at,
                            "tensor %u \"%s\" is an lstm's final state (Y_h or Y_c), which only "
                            "a graph output may take",
                            l->inputs[k], m->tensors[l->inputs[k]].name);
    }
    size_t at_out = c->off;
    uint64_t max_out = l->kind == EIE_LAYER_LSTM ? 3 : 1;
    READ(c, 4, "outputs", n_out);
    if (n_out < 1 || n_out > max_out)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "outputs", at_out,
                        "%" PRIu64 " outputs, must be %s", n_out,
                        max_out == 1 ? "1" : "1..3 (Y, Y_h, Y_c)");
    l->lstm.state[0] = l->lstm.state[1] = UINT32_MAX;
    for (uint64_t o = 0; o < n_out; o++) {
        uint32_t *dst = o == 0 ? &l->output : &l->lstm.state[o - 1];
        at_out = c->off;
        if ((st = read_index(c, "output", m->n_tensors, dst)) != EIE_STATUS_OK)
            return st;
        if (defined[*dst])
            return cur_fail(c, EIE_STATUS_BAD_FORMAT, "output", at_out,
                            "tensor %u \"%s\" already has a value (a graph input or another "
                            "node's output)",
                            *dst, m->tensors[*dst].name);
        defined[*dst] = o == 0 ? 1 : DEFINED_STATE;
    }
    uint32_t v[11];
    switch (l->kind) {
    case EIE_LAYER_FC:
        return read_fc(c, lim, EIE_FORMAT_VERSION_GRAPH, &l->fc);
    case EIE_LAYER_CONV2D:
        if ((st = read_u32s(c, "params", v, 11)) != EIE_STATUS_OK)
            return st;
        l->conv = (eie_conv2d_params_t){v[0], v[1], v[2], v[3], v[4], v[5],
                                        v[6], v[7], v[8], v[9], v[10]};
        return read_fc(c, lim, EIE_FORMAT_VERSION_GRAPH, &l->fc);
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D:
        if ((st = read_u32s(c, "params", v, 10)) != EIE_STATUS_OK)
            return st;
        l->pool = (eie_pool2d_params_t){v[0], v[1], v[2], v[3], v[4],
                                        v[5], v[6], v[7], v[8], v[9]};
        return EIE_STATUS_OK;
    case EIE_LAYER_ACTIVATION:
        if ((st = read_u32s(c, "act", v, 2)) != EIE_STATUS_OK)
            return st;
        l->act = (eie_act_t)v[0];
        l->axis = (int32_t)v[1];
        return EIE_STATUS_OK;
    case EIE_LAYER_CONCAT:
        if ((st = read_u32s(c, "axis", v, 1)) != EIE_STATUS_OK)
            return st;
        l->axis = (int32_t)v[0];
        return EIE_STATUS_OK;
    case EIE_LAYER_LSTM:
        return read_lstm(c, lim, m, l);
    default:
        return EIE_STATUS_OK;
    }
}

static const eie_shape_t *in_shape0(const eie_model_t *m, const eie_layer_t *l)
{
    return &m->tensors[l->inputs[0]].shape;
}

/* The body of a version-2 file, from the name on (c->end excludes the trailer). */
static eie_status_t load_graph(cur_t *c, const eie_limits_t *lim, eie_model_t *m)
{
    eie_status_t st;
    eie_error_t *err = c->err;
    uint64_t n_tensors, n_inputs, n_outputs, n_nodes;
    frame_t *frames = NULL;
    uint8_t *defined = NULL;
    char why[400];
    if ((st = read_str(c, "name", &m->name)) != 0 ||
        (st = read_str(c, "description", &m->description)) != 0)
        return st;
    size_t at_counts = c->off;
    READ(c, 4, "tensor_count", n_tensors);
    READ(c, 4, "input_count", n_inputs);
    READ(c, 4, "output_count", n_outputs);
    READ(c, 4, "node_count", n_nodes);
    if (n_tensors < 2 || n_tensors > lim->max_tensors)
        return cur_fail(c, EIE_STATUS_LIMIT, "tensor_count", at_counts,
                        "%" PRIu64 " tensors, must be 2..%u", n_tensors, lim->max_tensors);
    if (n_inputs == 0 || n_inputs >= n_tensors)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "input_count", at_counts + 4,
                        "%" PRIu64 " inputs, must be 1..%" PRIu64, n_inputs, n_tensors - 1);
    if (n_outputs == 0 || n_outputs >= n_tensors)
        return cur_fail(c, EIE_STATUS_BAD_FORMAT, "output_count", at_counts + 8,
                        "%" PRIu64 " outputs, must be 1..%" PRIu64, n_outputs, n_tensors - 1);
    if (n_nodes == 0 || n_nodes > lim->max_layers)
        return cur_fail(c, EIE_STATUS_LIMIT, "node_count", at_counts + 12,
                        "%" PRIu64 " nodes, must be 1..%u", n_nodes, lim->max_layers);
    m->tensors = calloc((size_t)n_tensors, sizeof *m->tensors);
    m->inputs = calloc((size_t)n_inputs, sizeof *m->inputs);
    m->outputs = calloc((size_t)n_outputs, sizeof *m->outputs);
    m->layers = calloc((size_t)n_nodes, sizeof *m->layers);
    frames = calloc((size_t)n_nodes, sizeof *frames);
    defined = calloc((size_t)n_tensors, 1);
    if (!m->tensors || !m->inputs || !m->outputs || !m->layers || !frames || !defined) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto done;
    }
    m->cap_tensors = (size_t)n_tensors;
    m->cap_inputs = (size_t)n_inputs;
    m->cap_outputs = (size_t)n_outputs;
    m->cap_layers = (size_t)n_nodes;
    for (size_t t = 0; t < n_tensors; t++) {
        eie_tensor_t *x = &m->tensors[t];
        uint64_t dtype, rank;
        snprintf(c->where, sizeof c->where, "tensor %zu", t);
        size_t at_name = c->off;
        if ((st = read_str(c, "name", &x->name)) != EIE_STATUS_OK)
            goto done;
        m->n_tensors = t + 1;
        if (x->name[0] == 0 || eie_model_find_tensor(m, x->name) != (long)t) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "name", at_name, "name \"%s\" is %s", x->name,
                          x->name[0] ? "used by an earlier tensor" : "empty");
            goto done;
        }
        size_t at_dtype = c->off;
        READ_OR(c, 4, "dtype", dtype);
        if (dtype != EIE_DTYPE_FP32) {
            st = cur_fail(c, EIE_STATUS_UNSUPPORTED, "dtype", at_dtype,
                          "tensor \"%s\": datatype %" PRIu64 " is not supported (1 = FP32)",
                          x->name, dtype);
            goto done;
        }
        x->dtype = EIE_DTYPE_FP32;
        size_t at_rank = c->off;
        READ_OR(c, 4, "rank", rank);
        if (rank < 1 || rank > EIE_MAX_RANK) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "rank", at_rank,
                          "tensor \"%s\": rank %" PRIu64 " not in 1..%u", x->name, rank,
                          EIE_MAX_RANK);
            goto done;
        }
        x->shape.rank = (uint32_t)rank;
        size_t at_dims = c->off;
        for (uint32_t k = 0; k < rank; k++) {
            uint64_t d;
            READ_OR(c, 8, "dims", d);
            x->shape.dims[k] = (int64_t)d;
        }
        if (eie_shape_check(&x->shape, lim, why, sizeof why) != 0) {
            st = cur_fail(c, EIE_STATUS_LIMIT, "dims", at_dims, "tensor \"%s\": %s", x->name, why);
            goto done;
        }
    }
    snprintf(c->where, sizeof c->where, "header");
    size_t at_inputs = c->off;
    for (size_t i = 0; i < n_inputs; i++) {
        size_t at = c->off;
        if ((st = read_index(c, "inputs", (size_t)n_tensors, &m->inputs[i])) != EIE_STATUS_OK)
            goto done;
        m->n_inputs = i + 1;
        const eie_tensor_t *x = &m->tensors[m->inputs[i]];
        if (defined[m->inputs[i]]) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "inputs", at, "tensor \"%s\" is listed twice",
                          x->name);
            goto done;
        }
        defined[m->inputs[i]] = 1;
    }
    for (size_t i = 0; i < n_outputs; i++) {
        size_t at = c->off;
        if ((st = read_index(c, "outputs", (size_t)n_tensors, &m->outputs[i])) != EIE_STATUS_OK)
            goto done;
        m->n_outputs = i + 1;
        for (size_t k = 0; k < i; k++)
            if (m->outputs[k] == m->outputs[i]) {
                st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "outputs", at,
                              "tensor \"%s\" is listed twice", m->tensors[m->outputs[i]].name);
                goto done;
            }
        if (defined[m->outputs[i]]) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "outputs", at,
                          "tensor \"%s\" is a graph input, not computed by a node",
                          m->tensors[m->outputs[i]].name);
            goto done;
        }
    }
    /* The framing of every node, so that truncation is reported as such. */
    for (size_t i = 0; i < n_nodes; i++) {
        uint64_t kind, blen;
        snprintf(c->where, sizeof c->where, "node %zu", i);
        frames[i].kind_off = c->off;
        READ_OR(c, 4, "kind", kind);
        size_t at_len = c->off;
        READ_OR(c, 8, "byte_length", blen);
        if (blen > c->end - c->off) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "byte_length", at_len,
                          "node of %" PRIu64 " bytes but only %zu remain (file truncated?)", blen,
                          c->end - c->off);
            goto done;
        }
        frames[i].kind = (uint32_t)kind;
        frames[i].start = c->off;
        frames[i].len = (size_t)blen;
        c->off += (size_t)blen;
    }
    if (c->off != c->end) {
        snprintf(c->where, sizeof c->where, "trailer");
        st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "checksum", c->off,
                      "%zu unexpected bytes after the last node", c->end - c->off);
        goto done;
    }
    if ((st = check_sum(c, m)) != EIE_STATUS_OK)
        goto done;
    for (size_t i = 0; i < n_nodes; i++) {
        eie_layer_t *l = &m->layers[i];
        cur_t lc = {.d = c->d, .off = frames[i].start, .end = frames[i].start + frames[i].len,
                    .err = err};
        const char *kname = eie_layer_kind_name((eie_layer_kind_t)frames[i].kind);
        m->n_layers = i + 1; /* so eie_model_clear frees what this node got */
        if (kname == NULL) {
            snprintf(lc.where, sizeof lc.where, "node %zu", i);
            st = cur_fail(&lc, EIE_STATUS_UNSUPPORTED, "kind", frames[i].kind_off,
                          "unknown node kind %u (this reader knows 1 = fc, 2 = activation, "
                          "3 = conv2d, 4 = maxpool2d, 5 = avgpool2d, 6 = global_avgpool, 7 = add, "
                          "8 = concat, 9 = flatten, 10 = reshape, 11 = lstm)",
                          frames[i].kind);
            goto done;
        }
        l->kind = (eie_layer_kind_t)frames[i].kind;
        snprintf(lc.where, sizeof lc.where, "node %zu (%s)", i, kname);
        if ((st = read_node(&lc, lim, m, i, l, defined)) != EIE_STATUS_OK)
            goto done;
        if (lc.off != lc.end) {
            st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "byte_length", frames[i].start - 8,
                          "node says %zu bytes but its fields use %zu", frames[i].len,
                          lc.off - frames[i].start);
            goto done;
        }
        if (l->kind == EIE_LAYER_FC || l->kind == EIE_LAYER_CONV2D || l->kind == EIE_LAYER_LSTM)
            l->fc.layer_bytes = frames[i].len;
        eie_shape_t out;
        const char *field;
        const eie_shape_t *declared = &m->tensors[l->output].shape;
        if (eie_graph_infer(m, l, lim, declared, &out, &field, why, sizeof why) != 0) {
            st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, field, frames[i].start, "%s", why);
            goto done;
        }
        if (!eie_shape_equal(&out, declared)) {
            char a[160], b[160];
            eie_shape_format(declared, a, sizeof a);
            eie_shape_format(&out, b, sizeof b);
            st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "output", frames[i].start,
                          "tensor \"%s\" is declared %s but the node gives %s",
                          m->tensors[l->output].name, a, b);
            goto done;
        }
        for (int k = 0; l->kind == EIE_LAYER_LSTM && k < 2; k++) {
            uint32_t t = l->lstm.state[k];
            eie_shape_t want = eie_lstm_state_shape(in_shape0(m, l), l->lstm.hidden);
            if (t != UINT32_MAX && !eie_shape_equal(&want, &m->tensors[t].shape)) {
                char a[160], b[160];
                eie_shape_format(&m->tensors[t].shape, a, sizeof a);
                eie_shape_format(&want, b, sizeof b);
                st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "output", frames[i].start,
                              "tensor \"%s\" (%s) is declared %s but the node gives %s",
                              m->tensors[t].name, k ? "Y_c" : "Y_h", a, b);
                goto done;
            }
        }
    }
    snprintf(c->where, sizeof c->where, "header");
    /* the inputs' batch dimension, once the nodes say which are an lstm's initial state */
    if (eie_graph_check_inputs(m, why, sizeof why) != 0) {
        st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "inputs", at_inputs, "%s", why);
        goto done;
    }
    for (size_t i = 0; i < n_outputs; i++)
        if (!defined[m->outputs[i]]) {
            st = cur_fail(c, EIE_STATUS_BAD_FORMAT, "outputs", at_counts + 16,
                          "output \"%s\" is not computed by any node",
                          m->tensors[m->outputs[i]].name);
            goto done;
        }
    st = eie_model_graph_summary(m, err);
done:
    free(frames);
    free(defined);
    return st;
}

eie_status_t eie_model_load_memory(const void *data, size_t len, const eie_limits_t *limits,
                                   eie_model_t **model_out, eie_error_t *err)
{
    eie_limits_t lim = eie_limits_or_default(limits);
    eie_model_t *m = NULL;
    frame_t *frames = NULL;
    eie_status_t st;
    cur_t c = {.d = data, .off = 0, .end = len, .err = err};
    snprintf(c.where, sizeof c.where, "header");

    if (len > lim.max_file_bytes) {
        st = cur_fail(&c, EIE_STATUS_LIMIT, "file", 0, "%zu bytes over the limit %" PRIu64, len,
                      lim.max_file_bytes);
        goto error;
    }
    if ((st = cur_need(&c, 8, "magic")) != EIE_STATUS_OK)
        goto error;
    if (memcmp(c.d, EIE_FORMAT_MAGIC, 8) != 0) {
        st = cur_fail(&c, EIE_STATUS_BAD_FORMAT, "magic", 0, "expected \"%s\", not an .eie file",
                      EIE_FORMAT_MAGIC);
        goto error;
    }
    c.off = 8;
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto error;
    }
    uint64_t version, dtype, in_dim, out_dim, n_layers;
#undef READ
#define READ(c, n, field, dst)                                                                 \
    do {                                                                                       \
        if ((st = cur_need((c), (n), (field))) != EIE_STATUS_OK)                               \
            goto error;                                                                        \
        (dst) = get_le((c), (n));                                                              \
    } while (0)
    READ(&c, 4, "format_version", version);
    if (version != EIE_FORMAT_VERSION && version != EIE_FORMAT_VERSION_GRAPH) {
        st = cur_fail(&c, EIE_STATUS_UNSUPPORTED, "format_version", 8,
                      "version %" PRIu64 " is not supported (this reader knows %u and %u)",
                      version, EIE_FORMAT_VERSION, EIE_FORMAT_VERSION_GRAPH);
        goto error;
    }
    m->version = (uint32_t)version;
    /* The checksum trailer is not part of the parsed body. */
    if (len < 12 + EIE_FORMAT_CHECKSUM_BYTES) {
        st = cur_fail(&c, EIE_STATUS_BAD_FORMAT, "checksum", len,
                      "file of %zu bytes has no room for the checksum (file truncated?)", len);
        goto error;
    }
    c.end = len - EIE_FORMAT_CHECKSUM_BYTES;
    if (version == EIE_FORMAT_VERSION_GRAPH) {
        if ((st = load_graph(&c, &lim, m)) != EIE_STATUS_OK)
            goto error;
        m->file_bytes = len;
        *model_out = m;
        return EIE_STATUS_OK;
    }
    READ(&c, 4, "dtype", dtype);
    if (dtype != EIE_FORMAT_DTYPE_FP32) {
        st = cur_fail(&c, EIE_STATUS_UNSUPPORTED, "dtype", c.off - 4,
                      "datatype %" PRIu64 " is not supported (1 = FP32)", dtype);
        goto error;
    }
    READ(&c, 4, "input_dim", in_dim);
    READ(&c, 4, "output_dim", out_dim);
    READ(&c, 4, "layer_count", n_layers);
    if (n_layers == 0 || n_layers > lim.max_layers) {
        st = cur_fail(&c, EIE_STATUS_LIMIT, "layer_count", c.off - 4,
                      "%" PRIu64 " layers, must be 1..%u", n_layers, lim.max_layers);
        goto error;
    }
    if ((st = read_str(&c, "name", &m->name)) != 0 ||
        (st = read_str(&c, "description", &m->description)) != 0 ||
        (st = read_str(&c, "input_name", &m->input_name)) != 0 ||
        (st = read_str(&c, "output_name", &m->output_name)) != 0)
        goto error;
    frames = calloc((size_t)n_layers, sizeof *frames);
    m->layers = calloc((size_t)n_layers, sizeof *m->layers);
    if (frames == NULL || m->layers == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory");
        goto error;
    }
    for (size_t i = 0; i < n_layers; i++) {
        uint64_t kind, blen;
        snprintf(c.where, sizeof c.where, "layer %zu", i);
        frames[i].kind_off = c.off;
        READ(&c, 4, "kind", kind);
        size_t at_len = c.off;
        READ(&c, 8, "byte_length", blen);
        if (blen > c.end - c.off) {
            st = cur_fail(&c, EIE_STATUS_BAD_FORMAT, "byte_length", at_len,
                          "layer of %" PRIu64 " bytes but only %zu remain (file truncated?)",
                          blen, c.end - c.off);
            goto error;
        }
        frames[i].kind = (uint32_t)kind;
        frames[i].start = c.off;
        frames[i].len = (size_t)blen;
        c.off += (size_t)blen;
    }
    if (c.off != c.end) {
        snprintf(c.where, sizeof c.where, "trailer");
        st = cur_fail(&c, EIE_STATUS_BAD_FORMAT, "checksum", c.off,
                      "%zu unexpected bytes after the last layer", c.end - c.off);
        goto error;
    }

    if ((st = check_sum(&c, m)) != EIE_STATUS_OK)
        goto error;
    m->file_bytes = len;

    uint64_t dim = in_dim;
    int seen_fc = 0;
    for (size_t i = 0; i < n_layers; i++) {
        eie_layer_t *l = &m->layers[i];
        cur_t lc = {.d = c.d, .off = frames[i].start, .end = frames[i].start + frames[i].len,
                    .err = err};
        m->n_layers = i + 1; /* so eie_model_clear frees what this layer got */
        if (frames[i].kind == EIE_LAYER_FC) {
            snprintf(lc.where, sizeof lc.where, "layer %zu (fc)", i);
            l->kind = EIE_LAYER_FC;
            if ((st = read_fc(&lc, &lim, EIE_FORMAT_VERSION, &l->fc)) != EIE_STATUS_OK)
                goto error;
            if (l->fc.cols != dim) {
                st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "cols", frames[i].start + 4,
                              "%u inputs but the previous layer gives %" PRIu64, l->fc.cols,
                              dim);
                goto error;
            }
            dim = l->fc.rows;
            seen_fc = 1;
            l->fc.layer_bytes = frames[i].len;
        } else if (frames[i].kind == EIE_LAYER_ACTIVATION) {
            uint64_t act;
            snprintf(lc.where, sizeof lc.where, "layer %zu (activation)", i);
            l->kind = EIE_LAYER_ACTIVATION;
            READ(&lc, 4, "act", act);
            if (eie_act_name((eie_act_t)act) == NULL || act > EIE_ACT_SOFTMAX) {
                st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "act", lc.off - 4,
                              "unknown activation %" PRIu64, act);
                goto error;
            }
            l->act = (eie_act_t)act;
        } else {
            snprintf(lc.where, sizeof lc.where, "layer %zu", i);
            st = cur_fail(&lc, EIE_STATUS_UNSUPPORTED, "kind", frames[i].kind_off,
                          "unknown layer kind %u (this reader knows 1 = fc, 2 = activation)",
                          frames[i].kind);
            goto error;
        }
        if (lc.off != lc.end) {
            st = cur_fail(&lc, EIE_STATUS_BAD_FORMAT, "byte_length", frames[i].start - 8,
                          "layer says %zu bytes but its fields use %zu", frames[i].len,
                          lc.off - frames[i].start);
            goto error;
        }
    }
    if (!seen_fc || dim != out_dim) {
        snprintf(c.where, sizeof c.where, "header");
        st = cur_fail(&c, EIE_STATUS_BAD_FORMAT, "output_dim", 20,
                      seen_fc ? "is %" PRIu64 " but the last layer gives %" PRIu64
                              : "is %" PRIu64 " and the model has no fc layer (%" PRIu64 ")",
                      out_dim, dim);
        goto error;
    }
    m->input_dim = (uint32_t)in_dim;
    m->output_dim = (uint32_t)out_dim;
    m->cap_layers = m->n_layers;
    if ((st = eie_model_chain_graph(m, err)) != EIE_STATUS_OK)
        goto error;
    free(frames);
    *model_out = m;
    return EIE_STATUS_OK;
error:
    free(frames);
    eie_model_free(m);
    return st;
}

eie_status_t eie_model_load_file(const char *path, const eie_limits_t *limits,
                                 eie_model_t **model_out, eie_error_t *err)
{
    eie_limits_t lim = eie_limits_or_default(limits);
    uint8_t *data;
    size_t len;
    eie_status_t st = eie_file_read(path, lim.max_file_bytes, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eie_model_load_memory(data, len, &lim, model_out, err);
    if (st != EIE_STATUS_OK)
        eie_error_prefix(err, "%s: ", path);
    free(data);
    return st;
}
