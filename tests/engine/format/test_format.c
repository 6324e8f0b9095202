/* Round trips of the .eie reader and writer (engine/format). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "model_helpers.h"

static eie_builder_t *two_layer_builder(uint64_t seed)
{
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init("mlp", "a test model", "pixels", "probs", &b, &err), 0);
    cr_assert_eq(th_add_random_fc(b, 40, 70, 0.1, 4, &seed, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_RELU, &err), 0);
    cr_assert_eq(th_add_random_fc(b, 10, 40, 0.3, 6, &seed, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_SOFTMAX, &err), 0);
    return b;
}

Test(format, round_trip_write_read_is_identical)
{
    eie_builder_t *b = two_layer_builder(7);
    uint8_t *data, *again;
    size_t len, len2;
    eie_error_t err;
    eie_model_t *m;
    cr_assert_eq(eie_builder_write_memory(b, &data, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_model_load_memory(data, len, NULL, &m, &err), 0, "%s", err.msg);
    cr_assert_str_eq(eie_model_name(m), "mlp");
    cr_assert_str_eq(eie_model_description(m), "a test model");
    cr_assert_str_eq(eie_model_input_name(m), "pixels");
    cr_assert_str_eq(eie_model_output_name(m), "probs");
    cr_assert_eq(eie_model_input_dim(m), 70);
    cr_assert_eq(eie_model_output_dim(m), 10);
    cr_assert_eq(eie_model_layer_count(m), 4);
    cr_assert_eq(eie_model_file_bytes(m), len);
    cr_assert_eq(strlen(eie_model_checksum_hex(m)), 64);

    /* Same content: the codes the builder got are the codes the reader gives. */
    uint64_t seed = 7;
    eie_builder_t *b2;
    cr_assert_eq(eie_builder_init("x", "", "", "", &b2, &err), 0);
    th_add_random_fc(b2, 40, 70, 0.1, 4, &seed, &err);
    eie_model_t *m2 = th_load_builder(b2);
    uint8_t *c1 = malloc(40 * 70), *c2 = malloc(40 * 70);
    eie_model_fc_codes(m, 0, c1);
    eie_model_fc_codes(m2, 0, c2);
    cr_assert_eq(memcmp(c1, c2, 40 * 70), 0);
    cr_assert_eq(memcmp(eie_model_fc_codebook(m, 0), eie_model_fc_codebook(m2, 0), 16 * 4), 0);
    cr_assert_eq(memcmp(eie_model_fc_bias(m, 0), eie_model_fc_bias(m2, 0), 40 * 4), 0);

    eie_layer_info_t li;
    cr_assert_eq(eie_model_layer_info(m, 1, &li), 0);
    cr_assert_eq(li.kind, EIE_LAYER_ACTIVATION);
    cr_assert_eq(li.act, EIE_ACT_RELU);
    cr_assert_eq(eie_model_layer_info(m, 2, &li), 0);
    cr_assert_eq(li.kind, EIE_LAYER_FC);
    cr_assert_eq(li.code_bits, 6);
    cr_assert(li.nnz > 0 && li.entries >= li.nnz);

    /* Writing what was read gives the same bytes: the writer inverts the reader. */
    eie_builder_t *b3;
    cr_assert_eq(eie_builder_init("mlp", "a test model", "pixels", "probs", &b3, &err), 0);
    for (size_t l = 0; l < eie_model_layer_count(m); l++) {
        eie_model_layer_info(m, l, &li);
        if (li.kind == EIE_LAYER_ACTIVATION) {
            eie_builder_add_activation(b3, li.act, &err);
            continue;
        }
        uint8_t *codes = malloc((size_t)li.rows * li.cols);
        eie_model_fc_codes(m, l, codes);
        cr_assert_eq(eie_builder_add_fc(b3, li.rows, li.cols, li.code_bits,
                                        eie_model_fc_codebook(m, l), codes,
                                        eie_model_fc_bias(m, l), &err), 0, "%s", err.msg);
        free(codes);
    }
    cr_assert_eq(eie_builder_write_memory(b3, &again, &len2, &err), 0);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(data, again, len), 0);

    free(c1);
    free(c2);
    free(data);
    free(again);
    eie_model_free(m);
    eie_model_free(m2);
    eie_builder_free(b);
    eie_builder_free(b2);
    eie_builder_free(b3);
}

Test(format, file_round_trip_is_atomic_and_loads)
{
    eie_builder_t *b = two_layer_builder(11);
    eie_error_t err;
    char path[] = "/tmp/eie-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(eie_builder_write_file(b, path, &err), 0, "%s", err.msg);
    eie_model_t *m;
    cr_assert_eq(eie_model_load_file(path, NULL, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_model_output_dim(m), 10);
    eie_model_free(m);
    unlink(path);
    eie_builder_free(b);
}

Test(format, run_longer_than_15_inserts_filler)
{
    /* One column of 40 rows with nonzeros at rows 0 and 35: 34 zeros between
     * need two fillers (16 positions each) and a run of 2. */
    uint8_t codes[40] = {0};
    float cb[2] = {0.0f, 1.5f};
    codes[0] = 1;
    codes[35] = 1;
    eie_builder_t *b;
    eie_error_t err;
    eie_builder_init("f", "", "", "", &b, &err);
    cr_assert_eq(eie_builder_add_fc(b, 40, 1, 1, cb, codes, NULL, &err), 0, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    cr_assert_eq(li.nnz, 2);
    cr_assert_eq(li.entries, 4);
    uint8_t back[40];
    eie_model_fc_codes(m, 0, back);
    cr_assert_eq(memcmp(back, codes, 40), 0);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(format, empty_layer_has_no_entries_and_round_trips)
{
    uint8_t codes[6] = {0};
    float cb[2] = {0.0f, 1.0f};
    eie_builder_t *b;
    eie_error_t err;
    eie_builder_init("z", "", "", "", &b, &err);
    cr_assert_eq(eie_builder_add_fc(b, 2, 3, 1, cb, codes, NULL, &err), 0);
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    cr_assert_eq(li.entries, 0);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(builder, rejects_codebook_zero_not_zero_and_code_out_of_range)
{
    eie_builder_t *b;
    eie_error_t err;
    eie_builder_init("z", "", "", "", &b, &err);
    float cb[2] = {0.5f, 1.0f};
    uint8_t codes[1] = {1};
    cr_assert_eq(eie_builder_add_fc(b, 1, 1, 1, cb, codes, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "codebook[0]") != NULL, "%s", err.msg);
    cb[0] = 0.0f;
    codes[0] = 2;
    cr_assert_eq(eie_builder_add_fc(b, 1, 1, 1, cb, codes, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "code 2") != NULL, "%s", err.msg);
    uint8_t *data;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &data, &len, &err), EIE_STATUS_INVALID_ARGUMENT);
    eie_builder_free(b);
}
