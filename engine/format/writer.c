/*
 * The .eie writer: the exact inverse of reader.c (engine/FORMAT.md).
 * Little-endian throughout; a SHA-256 trailer over all preceding bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "format/format.h"
#include "format/huffman.h"

typedef struct buf {
    uint8_t *d;
    size_t len, cap;
    int failed;
} buf_t;

static uint8_t *buf_grow(buf_t *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->d, cap);
        if (d == NULL) {
            b->failed = 1;
            return NULL;
        }
        b->d = d;
        b->cap = cap;
    }
    uint8_t *p = b->d + b->len;
    b->len += n;
    return p;
}

static void put_bytes(buf_t *b, const void *src, size_t n)
{
    uint8_t *p = buf_grow(b, n);
    if (p && n)
        memcpy(p, src, n);
}

static void put_le(buf_t *b, uint64_t v, unsigned n)
{
    uint8_t *p = buf_grow(b, n);
    if (p)
        for (unsigned i = 0; i < n; i++)
            p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u16(buf_t *b, uint16_t v) { put_le(b, v, 2); }
static void put_u32(buf_t *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(buf_t *b, uint64_t v) { put_le(b, v, 8); }

static void put_f32(buf_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

static void put_str(buf_t *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
}

/* Huffman codes one stream (the codes or the runs of a layer) and writes its
 * table (u16 nsym + nsym lengths); the coded bytes go to *bw. */
static void put_stream_table(buf_t *b, const uint8_t *syms, uint64_t n, unsigned nsym,
                             eie_bitwriter_t *bw)
{
    uint64_t counts[EIE_HUFF_MAX_SYMS] = {0};
    uint8_t lens[EIE_HUFF_MAX_SYMS];
    eie_huff_enc_t enc;
    for (uint64_t i = 0; i < n; i++)
        counts[syms[i]]++;
    eie_huff_lengths(counts, nsym, lens);
    int rc = eie_huff_enc_init(lens, nsym, &enc);
    (void)rc; /* eie_huff_lengths always yields a valid code */
    put_u16(b, (uint16_t)nsym);
    put_bytes(b, lens, nsym);
    for (uint64_t i = 0; i < n; i++)
        eie_bitwriter_put(bw, enc.code[syms[i]], enc.len[syms[i]]);
}

static void put_fc(buf_t *b, const eie_fc_t *fc)
{
    unsigned ncb = 1u << fc->code_bits;
    put_u32(b, fc->rows);
    put_u32(b, fc->cols);
    put_u32(b, fc->code_bits);
    put_u32(b, fc->storage); /* version 1: reserved, always 0 (shared) */
    put_u64(b, fc->nnz);
    put_u64(b, fc->entries);
    if (fc->storage == EIE_STORAGE_EXACT)
        for (uint64_t k = 0; k < fc->nnz; k++)
            put_f32(b, fc->values[k]);
    else
        for (unsigned k = 0; k < ncb; k++)
            put_f32(b, fc->codebook[k]);
    for (uint32_t r = 0; r < fc->rows; r++)
        put_f32(b, fc->bias[r]);
    eie_bitwriter_t cw = {0}, rw = {0};
    put_stream_table(b, fc->codes, fc->entries, ncb, &cw);
    put_stream_table(b, fc->runs, fc->entries, EIE_RUN_MAX + 1, &rw);
    if (cw.failed || rw.failed)
        b->failed = 1;
    size_t cn = (size_t)((cw.bit + 7) / 8), rn = (size_t)((rw.bit + 7) / 8);
    put_u64(b, cn);
    put_bytes(b, cw.data, cn);
    put_u64(b, rn);
    put_bytes(b, rw.data, rn);
    free(cw.data);
    free(rw.data);
}

static void put_i32(buf_t *b, int32_t v) { put_u32(b, (uint32_t)v); }

/* A version-2 node's payload (FORMAT.md, "Nodes"). */
static void put_node(buf_t *b, const eie_layer_t *l)
{
    put_str(b, l->name);
    put_u32(b, l->n_inputs);
    for (uint32_t k = 0; k < l->n_inputs; k++)
        put_u32(b, l->inputs[k]);
    uint32_t n_out = 1;
    if (l->kind == EIE_LAYER_LSTM)
        n_out += (l->lstm.state[0] != UINT32_MAX) + (l->lstm.state[1] != UINT32_MAX);
    put_u32(b, n_out); /* outputs */
    put_u32(b, l->output);
    for (uint32_t o = 1; o < n_out; o++)
        put_u32(b, l->lstm.state[o - 1]);
    switch (l->kind) {
    case EIE_LAYER_FC:
        put_fc(b, &l->fc);
        break;
    case EIE_LAYER_CONV2D: {
        const eie_conv2d_params_t *p = &l->conv;
        uint32_t v[] = {p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top,
                        p->pad_left, p->pad_bottom, p->pad_right, p->dilation_h, p->dilation_w,
                        p->groups};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            put_u32(b, v[k]);
        put_fc(b, &l->fc);
        break;
    }
    case EIE_LAYER_MAXPOOL2D:
    case EIE_LAYER_AVGPOOL2D: {
        const eie_pool2d_params_t *p = &l->pool;
        uint32_t v[] = {p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_top,
                        p->pad_left, p->pad_bottom, p->pad_right, p->ceil_mode,
                        p->count_include_pad};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            put_u32(b, v[k]);
        break;
    }
    case EIE_LAYER_ACTIVATION:
        put_u32(b, (uint32_t)l->act);
        put_i32(b, l->axis);
        break;
    case EIE_LAYER_CONCAT:
        put_i32(b, l->axis);
        break;
    case EIE_LAYER_LSTM: {
        put_u32(b, l->lstm.hidden);
        put_u32(b, (l->lstm.initial[0] != NULL) | (uint32_t)(l->lstm.initial[1] != NULL) << 1 |
                       (uint32_t)(l->lstm.initial_in[0] != UINT32_MAX) << 2 |
                       (uint32_t)(l->lstm.initial_in[1] != UINT32_MAX) << 3);
        put_fc(b, &l->fc);
        /* the lanes of the state: the input's dims[1], recorded as n_lanes by the builder */
        for (int k = 0; k < 2; k++)
            if (l->lstm.initial[k] != NULL)
                for (size_t i = 0; i < (size_t)l->lstm.lanes * l->lstm.hidden; i++)
                    put_f32(b, l->lstm.initial[k][i]);
        break;
    }
    default: /* GLOBAL_AVGPOOL, ADD, FLATTEN, RESHAPE: no attributes */
        break;
    }
}

static void put_framed(buf_t *b, const eie_layer_t *l, int graph)
{
    put_u32(b, (uint32_t)l->kind);
    size_t len_at = b->len;
    put_u64(b, 0); /* byte length, patched below */
    size_t start = b->len;
    if (graph)
        put_node(b, l);
    else if (l->kind == EIE_LAYER_FC)
        put_fc(b, &l->fc);
    else
        put_u32(b, (uint32_t)l->act);
    if (!b->failed) {
        uint64_t n = b->len - start;
        for (unsigned k = 0; k < 8; k++)
            b->d[len_at + k] = (uint8_t)(n >> (8 * k));
    }
}

static void put_graph_header(buf_t *b, const eie_model_t *m)
{
    put_u32(b, EIE_FORMAT_VERSION_GRAPH);
    put_str(b, m->name);
    put_str(b, m->description);
    put_u32(b, (uint32_t)m->n_tensors);
    put_u32(b, (uint32_t)m->n_inputs);
    put_u32(b, (uint32_t)m->n_outputs);
    put_u32(b, (uint32_t)m->n_layers);
    for (size_t t = 0; t < m->n_tensors; t++) {
        const eie_tensor_t *x = &m->tensors[t];
        put_str(b, x->name);
        put_u32(b, (uint32_t)x->dtype);
        put_u32(b, x->shape.rank);
        for (uint32_t k = 0; k < x->shape.rank; k++)
            put_u64(b, (uint64_t)x->shape.dims[k]);
    }
    for (size_t i = 0; i < m->n_inputs; i++)
        put_u32(b, m->inputs[i]);
    for (size_t i = 0; i < m->n_outputs; i++)
        put_u32(b, m->outputs[i]);
}

eie_status_t eie_format_write(const eie_model_t *m, uint8_t **data_out, size_t *len_out,
                              eie_error_t *err)
{
    buf_t b = {0};
    put_bytes(&b, EIE_FORMAT_MAGIC, 8);
    if (m->version == EIE_FORMAT_VERSION_GRAPH) {
        put_graph_header(&b, m);
        for (size_t i = 0; i < m->n_layers; i++)
            put_framed(&b, &m->layers[i], 1);
        goto trailer;
    }
    put_u32(&b, EIE_FORMAT_VERSION);
    put_u32(&b, EIE_FORMAT_DTYPE_FP32);
    put_u32(&b, m->input_dim);
    put_u32(&b, m->output_dim);
    put_u32(&b, (uint32_t)m->n_layers);
    put_str(&b, m->name);
    put_str(&b, m->description);
    put_str(&b, m->input_name);
    put_str(&b, m->output_name);
    for (size_t i = 0; i < m->n_layers; i++)
        put_framed(&b, &m->layers[i], 0);
trailer:;
    uint8_t *sum = buf_grow(&b, EIE_FORMAT_CHECKSUM_BYTES);
    if (b.failed) {
        free(b.d);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "writer: out of memory");
    }
    unsigned sl = 0;
    if (!EVP_Digest(b.d, b.len - EIE_FORMAT_CHECKSUM_BYTES, sum, &sl, EVP_sha256(), NULL)) {
        free(b.d);
        return eie_error_set(err, EIE_STATUS_INTERNAL, "writer: SHA-256 failed");
    }
    *data_out = b.d;
    *len_out = b.len;
    return EIE_STATUS_OK;
}
