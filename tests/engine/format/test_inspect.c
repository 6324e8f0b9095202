/*
 * eiectl inspect on models written by the builder: the real binary, its
 * real output (EIECTL names the binary; meson sets it).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "model_helpers.h"

static char *run_capture(const char *cmd, int *status_out)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    *status_out = pclose(p);
    return out;
}

static void write_model(const char *path)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 8;
    eie_builder_init("lenet", "a small net", "x", "y", &b, &err);
    th_add_random_fc(b, 30, 50, 0.1, 4, &seed, &err);
    eie_builder_add_activation(b, EIE_ACT_RELU, &err);
    th_add_random_fc(b, 10, 30, 0.5, 5, &seed, &err);
    cr_assert_eq(eie_builder_write_file(b, path, &err), 0, "%s", err.msg);
    eie_builder_free(b);
}

Test(inspect, prints_layers_and_checksum)
{
    char path[] = "/tmp/eie-inspect-XXXXXX";
    close(mkstemp(path));
    write_model(path);
    char cmd[512];
    int st;
    snprintf(cmd, sizeof cmd, "%s inspect %s", getenv("EIECTL"), path);
    char *out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "model       lenet") != NULL, "%s", out);
    cr_assert(strstr(out, "checksum    sha256 ok ") != NULL, "%s", out);
    cr_assert(strstr(out, "fc         30x50") != NULL, "%s", out);
    cr_assert(strstr(out, "activation relu") != NULL, "%s", out);
    cr_assert(strstr(out, "fc         10x30") != NULL, "%s", out);

    snprintf(cmd, sizeof cmd, "%s inspect %s --json", getenv("EIECTL"), path);
    out = run_capture(cmd, &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "\"name\":\"lenet\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\"rows\":30,\"cols\":50") != NULL, "%s", out);
    cr_assert(strstr(out, "\"code_bits\":5") != NULL, "%s", out);
    cr_assert(strstr(out, "\"status\":\"ok\"") != NULL, "%s", out);
    unlink(path);
}

Test(inspect, bad_file_is_a_clear_error)
{
    char path[] = "/tmp/eie-inspect-XXXXXX";
    close(mkstemp(path));
    write_model(path);
    FILE *f = fopen(path, "r+b");
    fseek(f, -40, SEEK_END);
    fputc('!', f);
    fclose(f);
    char cmd[512];
    int st;
    snprintf(cmd, sizeof cmd, "%s inspect %s 2>&1", getenv("EIECTL"), path);
    char *out = run_capture(cmd, &st);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "checksum") != NULL, "%s", out);
    cr_assert(strstr(out, "BAD_CHECKSUM") != NULL, "%s", out);
    snprintf(cmd, sizeof cmd, "%s inspect --help", getenv("EIECTL"));
    out = run_capture(cmd, &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "usage: eiectl inspect") != NULL);
    unlink(path);
}

/* An LSTM node is a weighted layer: its [W | R] matrix (4H x (I + H)) is a
 * row of the table and counts in the totals, as fc and conv layers do. */
Test(inspect, lstm_node_counts_its_matrix)
{
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "%s inspect %s/models/charlm/1/model.eie", getenv("EIECTL"),
             getenv("EIE_SOURCE_ROOT"));
    char *out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    /* charlm: We 32x84, an LSTM of 128 units over 32 inputs, Wd 84x128 */
    cr_assert(strstr(out, "lstm       512x160        10.00%    4       8192") != NULL, "%s",
              out);
    /* dense float32: (32x84 + 32) + (512x160 + 512) + (84x128 + 84), 4 bytes each */
    cr_assert(strstr(out, "weights+bias: 383952 bytes dense float32") != NULL, "%s", out);

    snprintf(cmd, sizeof cmd, "%s inspect %s/models/charlm/1/model.eie --json",
             getenv("EIECTL"), getenv("EIE_SOURCE_ROOT"));
    out = run_capture(cmd, &st);
    cr_assert_eq(st, 0);
    cr_assert(strstr(out, "\"kind\":\"lstm\",\"rows\":512,\"cols\":160,\"nnz\":8192") != NULL,
              "%s", out);
    cr_assert(strstr(out, "\"hidden_size\":128}") != NULL, "%s", out);
    cr_assert(strstr(out, "\"dense_fp32_bytes\":383952,") != NULL, "%s", out);
}
