/*
 * Every class of malformed .eie file gets a crafted file and must give an
 * error that names the layer, the field and the byte offset (FORMAT.md).
 * Crafted files carry a correct SHA-256 unless the test is about it, so
 * the reader gets past the checksum to the fault.
 */
#include <criterion/criterion.h>

#include "model_helpers.h"

/* A one-layer file: 2x2 FC, 1-bit codes, by default one entry (code 1, run 0). */
typedef struct craft {
    uint32_t kind, rows, cols, bits;
    uint64_t nnz, entries;
    uint16_t cn, rn;
    uint8_t clens[256], rlens[16];
    uint64_t csz, rsz;
    uint8_t cs[8], rs[8];
} craft_t;

static craft_t craft_default(void)
{
    craft_t c = {.kind = 1, .rows = 2, .cols = 2, .bits = 1, .nnz = 1, .entries = 1};
    c.cn = 2;
    c.clens[1] = 1; /* symbol 1 = "0" */
    c.rn = 16;
    c.rlens[0] = 1; /* run 0 = "0" */
    c.csz = c.rsz = 1;
    return c;
}

static void put(uint8_t *d, size_t *o, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        d[(*o)++] = (uint8_t)(v >> (8 * i));
}

/* Header offsets with empty strings: layer 0's kind at 44, byte_length at 48,
 * its payload (rows) at 56. */
static uint8_t *craft_file(const craft_t *c, size_t *len_out)
{
    uint8_t *d = calloc(1, 4096);
    size_t o = 0;
    memcpy(d, "EIEMODEL", 8);
    o = 8;
    put(d, &o, 1, 4);       /* version */
    put(d, &o, 1, 4);       /* dtype */
    put(d, &o, c->cols, 4); /* input_dim */
    put(d, &o, c->rows, 4); /* output_dim */
    put(d, &o, 1, 4);       /* layer_count */
    for (int s = 0; s < 4; s++)
        put(d, &o, 0, 4);
    put(d, &o, c->kind, 4);
    size_t len_at = o;
    put(d, &o, 0, 8);
    size_t start = o;
    put(d, &o, c->rows, 4);
    put(d, &o, c->cols, 4);
    put(d, &o, c->bits, 4);
    put(d, &o, 0, 4);
    put(d, &o, c->nnz, 8);
    put(d, &o, c->entries, 8);
    put(d, &o, 0, 4); /* codebook[0] = 0.0f */
    for (unsigned k = 1; k < (1u << c->bits); k++)
        put(d, &o, 0x3f800000u, 4); /* 1.0f */
    for (unsigned r = 0; r < c->rows && r < 64; r++) /* huge rows: cut, refused before */
        put(d, &o, 0, 4);
    put(d, &o, c->cn, 2);
    memcpy(d + o, c->clens, c->cn);
    o += c->cn;
    put(d, &o, c->rn, 2);
    memcpy(d + o, c->rlens, c->rn);
    o += c->rn;
    put(d, &o, c->csz, 8);
    memcpy(d + o, c->cs, c->csz);
    o += c->csz;
    put(d, &o, c->rsz, 8);
    memcpy(d + o, c->rs, c->rsz);
    o += c->rsz;
    size_t blen = o - start;
    put(d, &len_at, blen, 8);
    o += 32;
    th_fix_checksum(d, o);
    *len_out = o;
    return d;
}

static eie_status_t load_crafted(const craft_t *c, const eie_limits_t *lim, eie_error_t *err)
{
    size_t len;
    uint8_t *d = craft_file(c, &len);
    eie_model_t *m = NULL;
    eie_status_t st = eie_model_load_memory(d, len, lim, &m, err);
    eie_model_free(m);
    free(d);
    return st;
}

#define assert_msg_has(err, s) cr_assert(strstr((err).msg, (s)) != NULL, "message: %s", (err).msg)

static uint8_t *valid_file(size_t *len)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 3;
    eie_builder_init("", "", "", "", &b, &err);
    th_add_random_fc(b, 8, 8, 0.5, 2, &seed, &err);
    uint8_t *d;
    eie_builder_write_memory(b, &d, len, &err);
    eie_builder_free(b);
    return d;
}

Test(malformed, crafted_baseline_file_loads)
{
    craft_t c = craft_default();
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
}

Test(malformed, truncated_file_names_layer_field_and_offset)
{
    size_t len;
    uint8_t *d = valid_file(&len);
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len - 40, NULL, &m, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0, field byte_length, byte offset 48");
    assert_msg_has(err, "truncated");
    cr_assert_eq(eie_model_load_memory(d, 20, NULL, &m, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "header, field checksum");
    assert_msg_has(err, "truncated");
    cr_assert_eq(eie_model_load_memory(d, 5, NULL, &m, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "header, field magic, byte offset 0");
    free(d);
}

Test(malformed, wrong_magic_is_not_an_eie_file)
{
    size_t len;
    uint8_t *d = valid_file(&len);
    d[0] = 'X';
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "header, field magic, byte offset 0");
    free(d);
}

Test(malformed, unsupported_version_is_named)
{
    size_t len;
    uint8_t *d = valid_file(&len);
    d[8] = 3;
    th_fix_checksum(d, len);
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_UNSUPPORTED);
    assert_msg_has(err, "header, field format_version, byte offset 8");
    assert_msg_has(err, "version 3");
    free(d);
}

Test(malformed, unknown_layer_kind_is_a_clear_error)
{
    craft_t c = craft_default();
    c.kind = 9;
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_UNSUPPORTED);
    assert_msg_has(err, "layer 0, field kind, byte offset 44");
    assert_msg_has(err, "unknown layer kind 9");
}

Test(malformed, dims_over_limits_are_refused_before_allocating)
{
    craft_t c = craft_default();
    eie_limits_t lim = eie_limits_default();
    lim.max_dim = 1;
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, &lim, &err), EIE_STATUS_LIMIT);
    assert_msg_has(err, "layer 0 (fc), field rows, byte offset 56");

    lim = eie_limits_default();
    lim.max_weights = 3;
    cr_assert_eq(load_crafted(&c, &lim, &err), EIE_STATUS_LIMIT);
    assert_msg_has(err, "field cols, byte offset 60");

    c = craft_default();
    c.rows = 1u << 21; /* over the default max_dim; no bias bytes are read or allocated */
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_LIMIT);
    assert_msg_has(err, "field rows");

    lim = eie_limits_default();
    lim.max_file_bytes = 10;
    c = craft_default();
    cr_assert_eq(load_crafted(&c, &lim, &err), EIE_STATUS_LIMIT);
    assert_msg_has(err, "field file, byte offset 0");
}

Test(malformed, code_out_of_range_names_the_code)
{
    craft_t c = craft_default();
    c.cn = 4;
    c.clens[1] = 0;
    c.clens[3] = 1; /* decodes to code 3, codebook has 2 entries */
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0 (fc), field code_stream, byte offset");
    assert_msg_has(err, "code 3");
}

Test(malformed, row_index_out_of_range_names_the_entry)
{
    craft_t c = craft_default();
    c.rlens[0] = 0;
    c.rlens[15] = 1; /* run 15 lands at position 15 of a 2x2 matrix */
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0 (fc), field run_stream, byte offset");
    assert_msg_has(err, "outside the 2x2 matrix");
}

Test(malformed, invalid_huffman_table_is_refused)
{
    craft_t c = craft_default();
    c.cn = 2;
    c.clens[0] = 1;
    c.clens[1] = 1;
    c.rlens[0] = 1;
    c.rlens[1] = 1;
    c.rlens[2] = 1; /* three 1-bit codes: Kraft sum 3/2 */
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0 (fc), field run_table, byte offset");
    assert_msg_has(err, "invalid Huffman table");

    c = craft_default();
    c.clens[1] = 17;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "field code_table");

    c = craft_default();
    c.rn = 17;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "field run_table");
}

Test(malformed, stream_decoding_to_wrong_count_is_refused)
{
    craft_t c = craft_default();
    c.csz = 2; /* one entry needs one bit: a second byte is left over */
    eie_error_t err;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0 (fc), field code_stream, byte offset");
    assert_msg_has(err, "more than the 1 expected entries");

    c = craft_default();
    c.clens[1] = 8; /* two 8-bit codes need two bytes, the stream has one */
    c.nnz = c.entries = 2;
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "field code_stream");
    assert_msg_has(err, "decodes to 1 entries, expected 2");

    c = craft_default();
    c.nnz = 0; /* the streams hold one nonzero */
    cr_assert_eq(load_crafted(&c, NULL, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(err, "layer 0 (fc), field nnz, byte offset 72");
}

Test(malformed, checksum_mismatch_is_detected)
{
    size_t len;
    uint8_t *d = valid_file(&len);
    d[len - 40] ^= 1; /* a stream byte */
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_BAD_CHECKSUM);
    assert_msg_has(err, "trailer, field checksum, byte offset");
    char want[64];
    snprintf(want, sizeof want, "byte offset %zu", len - 32);
    assert_msg_has(err, want);
    free(d);
}

Test(malformed, missing_file_names_the_path)
{
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_file("/nonexistent/x.eie", NULL, &m, &err),
                 EIE_STATUS_NOT_FOUND);
    assert_msg_has(err, "/nonexistent/x.eie");
}
