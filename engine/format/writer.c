/*
 * The .eie writer: the exact inverse of reader.c (engine/FORMAT.md).
 * Little-endian throughout; a SHA-256 trailer over all preceding bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    put_u32(b, 0); /* reserved */
    put_u64(b, fc->nnz);
    put_u64(b, fc->entries);
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

eie_status_t eie_format_write(const eie_model_t *m, uint8_t **data_out, size_t *len_out,
                              eie_error_t *err)
{
    buf_t b = {0};
    put_bytes(&b, EIE_FORMAT_MAGIC, 8);
    put_u32(&b, EIE_FORMAT_VERSION);
    put_u32(&b, EIE_FORMAT_DTYPE_FP32);
    put_u32(&b, m->input_dim);
    put_u32(&b, m->output_dim);
    put_u32(&b, (uint32_t)m->n_layers);
    put_str(&b, m->name);
    put_str(&b, m->description);
    put_str(&b, m->input_name);
    put_str(&b, m->output_name);
    for (size_t i = 0; i < m->n_layers; i++) {
        const eie_layer_t *l = &m->layers[i];
        put_u32(&b, (uint32_t)l->kind);
        size_t len_at = b.len;
        put_u64(&b, 0); /* byte length, patched below */
        size_t start = b.len;
        if (l->kind == EIE_LAYER_FC)
            put_fc(&b, &l->fc);
        else
            put_u32(&b, (uint32_t)l->act);
        if (!b.failed) {
            uint64_t n = b.len - start;
            for (unsigned k = 0; k < 8; k++)
                b.d[len_at + k] = (uint8_t)(n >> (8 * k));
        }
    }
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

eie_status_t eie_builder_write_file(const eie_builder_t *builder, const char *path,
                                    eie_error_t *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char *tmp = NULL;
    int fd = -1;
    eie_status_t st = eie_builder_write_memory(builder, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    size_t pl = strlen(path);
    tmp = malloc(pl + 16);
    if (tmp == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "writer: out of memory");
        goto error;
    }
    /* Write beside the target and rename: readers see the old file or the
     * whole new one, never a partial write. */
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: cannot create temporary file: %s", path,
                           strerror(errno));
        goto error;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = eie_error_set(err, EIE_STATUS_IO, "%s: write failed: %s", tmp, strerror(errno));
            goto error;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: %s", tmp, strerror(errno));
        goto error;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = eie_error_set(err, EIE_STATUS_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto error;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: rename to %s failed: %s", tmp, path,
                           strerror(errno));
        goto error;
    }
    free(tmp);
    free(data);
    return EIE_STATUS_OK;
error:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL && st != EIE_STATUS_NO_MEMORY)
        unlink(tmp);
    free(tmp);
    free(data);
    return st;
}
