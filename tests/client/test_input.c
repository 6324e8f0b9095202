/* Input parsers of eiectl: every good shape and every bad input class. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"

static eie_error_t error;

static bool json(const char *s, eiectl_input_t *in)
{
    error.msg[0] = '\0';
    return eiectl_input_parse_json(s, strlen(s), "--input", in, &error) == EIE_STATUS_OK;
}

static bool csv(const char *s, eiectl_input_t *in)
{
    error.msg[0] = '\0';
    return eiectl_input_parse_csv(s, strlen(s), "x.csv", in, &error) == EIE_STATUS_OK;
}

/* A .npy image: magic, version, header dict padded to 64 bytes, then data. */
static size_t make_npy(uint8_t *buf, int major, const char *dict, const void *data, size_t n)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t hlen = ((pre + dl + 1 + 63) / 64) * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (uint8_t)hlen;
        buf[9] = (uint8_t)(hlen >> 8);
    } else {
        buf[8] = (uint8_t)hlen;
        buf[9] = (uint8_t)(hlen >> 8);
        buf[10] = buf[11] = 0;
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, n);
    return pre + hlen + n;
}

static bool npy(const uint8_t *buf, size_t len, eiectl_input_t *in)
{
    error.msg[0] = '\0';
    return eiectl_input_parse_npy(buf, len, "x.npy", in, &error) == EIE_STATUS_OK;
}

Test(input_json, one_row_is_a_batch_of_one)
{
    eiectl_input_t in;
    cr_assert(json(" [1, -2.5, 3e2, 0, -0.0, 1E-3] ", &in), "%s", error.msg);
    cr_assert_eq(in.rows, 1);
    cr_assert_eq(in.cols, 6);
    cr_assert_float_eq(in.data[1], -2.5f, 0);
    cr_assert_float_eq(in.data[2], 300.0f, 0);
    cr_assert_float_eq(in.data[5], 0.001f, 1e-9);
    eiectl_input_free(&in);
}

Test(input_json, array_of_arrays_is_a_batch)
{
    eiectl_input_t in;
    cr_assert(json("[[1,2,3],\n [4,5,6]]\n", &in), "%s", error.msg);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.cols, 3);
    cr_assert_float_eq(in.data[5], 6.0f, 0);
    eiectl_input_free(&in);
}

Test(input_json, every_bad_input_names_the_place)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "expected '['"},
        {"{}", "expected '['"},
        {"[]", "empty array"},
        {"[[]]", "empty array"},
        {"[1, 2", "found the end of the input"},
        {"[1,,2]", "expected a number"},
        {"[1, 2,]", "expected a number"},
        {"[1 2]", "expected ',' or ']'"},
        {"[nan]", "found 'nan'"},
        {"[Infinity]", "expected a number"},
        {"[0x10]", "expected ',' or ']'"},
        {"[+1]", "expected a number"},
        {"[01]", "expected ',' or ']'"},
        {"[1.]", "expected a number"},
        {"[1e]", "expected a number"},
        {"[\"1\"]", "expected a number"},
        {"[1e39]", "outside the float32 range"},
        {"[-1e400]", "outside the float32 range"},
        {"[[1,2],[3]]", "row 1 has 1 values, row 0 has 2"},
        {"[[1],2]", "expected '[' starting a row"},
        {"[1,[2]]", "expected a number"},
        {"[[[1]]]", "expected a number"},
        {"[1] [2]", "unexpected text after the array"},
        {"[1]x", "unexpected text after the array"},
        {"[1.000000000000000000000000000000000000000000000000000000000000001]", "longer than 63"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eiectl_input_t in = {0};
        cr_assert_not(json(cases[i].text, &in), "accepted %s", cases[i].text);
        cr_assert(strstr(error.msg, cases[i].want) != NULL, "%s: got '%s', want '%s'",
                  cases[i].text, error.msg, cases[i].want);
        cr_assert(strncmp(error.msg, "--input:", 8) == 0, "%s: '%s' does not name the input",
                  cases[i].text, error.msg);
    }
}

Test(input_json, error_gives_line_and_column)
{
    eiectl_input_t in;
    cr_assert_not(json("[\n  1,\n  x]", &in));
    cr_assert_str_eq(error.msg, "--input:3:3: expected a number, found 'x'");
}

Test(input_json, too_many_values_is_refused)
{
    /* One more than the limit, as "0," repeated. */
    size_t n = EIECTL_INPUT_MAX_VALUES + 1;
    char *s = malloc(2 * n + 2);
    cr_assert_not_null(s);
    s[0] = '[';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = '0';
        s[2 + 2 * i] = ',';
    }
    s[2 * n] = ']';
    s[2 * n + 1] = '\0';
    eiectl_input_t in;
    cr_assert_not(json(s, &in));
    cr_assert(strstr(error.msg, "values") != NULL, "%s", error.msg);
    free(s);
}

Test(input_csv, rows_with_header_comments_blank_lines_and_crlf)
{
    eiectl_input_t in;
    cr_assert(csv("# made by hand\r\na,b,c\r\n1, 2 ,3\r\n\r\n4,5,6e-1\r\n", &in), "%s", error.msg);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.cols, 3);
    cr_assert_float_eq(in.data[1], 2.0f, 0);
    cr_assert_float_eq(in.data[5], 0.6f, 1e-7);
    eiectl_input_free(&in);
}

Test(input_csv, no_trailing_newline_and_single_column)
{
    eiectl_input_t in;
    cr_assert(csv("1\n2\n3", &in), "%s", error.msg);
    cr_assert_eq(in.rows, 3);
    cr_assert_eq(in.cols, 1);
    eiectl_input_free(&in);
}

Test(input_csv, every_bad_input_names_line_and_field)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "x.csv: no rows of numbers"},
        {"# only a comment\n\n", "x.csv: no rows of numbers"},
        {"a,b\n", "x.csv: no rows of numbers (line 1, 'a,b', was taken as a header)"},
        {"1,2\n3,x\n", "x.csv:2: field 2 'x' is not a finite float32 number"},
        {"1,2\n3\n", "x.csv:2: 1 fields, the first row has 2"},
        {"1,,2\n", "x.csv:1: field 2 is empty"},
        {"1,2,\n", "x.csv:1: field 3 is empty"},
        {"1,nan\n", "field 2 'nan'"},
        {"1,inf\n", "field 2 'inf'"},
        {"1,1e39\n", "field 2 '1e39'"},
        {"1,2\nh1,h2\n", "x.csv:2: field 1 'h1'"},
        {"1 2\n", "(line 1, '1 2', was taken as a header)"},
        {"x\n1 2\n", "x.csv:2: field 1 '1 2' is not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eiectl_input_t in = {0};
        cr_assert_not(csv(cases[i].text, &in), "accepted %s", cases[i].text);
        cr_assert(strstr(error.msg, cases[i].want) != NULL, "case %zu: got '%s', want '%s'", i,
                  error.msg, cases[i].want);
    }
}

Test(input_csv, nul_byte_is_refused)
{
    eiectl_input_t in;
    cr_assert_eq(eiectl_input_parse_csv("1,2\n3\0,4\n", 9, "x.csv", &in, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "x.csv:2: contains a NUL byte") != NULL, "%s", error.msg);
}

Test(input_csv, long_bad_field_is_shortened)
{
    char s[200];
    memset(s, 'z', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    eiectl_input_t in;
    cr_assert_not(csv(s, &in));
    cr_assert(strstr(error.msg, "...', was taken as a header") != NULL, "%s", error.msg);
    cr_assert_lt(strlen(error.msg), 120);
}

Test(input_npy, float32_2d_v1)
{
    float v[6] = {1, 2, 3, 4, 5, 6.5f};
    uint8_t buf[256];
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                        v, sizeof v);
    eiectl_input_t in;
    cr_assert(npy(buf, n, &in), "%s", error.msg);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.cols, 3);
    cr_assert_float_eq(in.data[5], 6.5f, 0);
    eiectl_input_free(&in);
}

Test(input_npy, float32_4d_rows_are_flattened_samples)
{
    float v[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    uint8_t buf[256];
    size_t n = make_npy(buf, 1,
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 3), }", v,
                        sizeof v);
    eiectl_input_t in;
    cr_assert(npy(buf, n, &in), "%s", error.msg);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.cols, 6);
    cr_assert_float_eq(in.data[7], 7.0f, 0);
    eiectl_input_free(&in);
}

Test(input_npy, float64_1d_v2_is_one_row)
{
    double v[4] = {0.5, -1, 1e30, 3};
    uint8_t buf[256];
    size_t n = make_npy(buf, 2, "{\"descr\": \"<f8\", \"shape\": (4,), \"fortran_order\": False}",
                        v, sizeof v);
    eiectl_input_t in;
    cr_assert(npy(buf, n, &in), "%s", error.msg);
    cr_assert_eq(in.rows, 1);
    cr_assert_eq(in.cols, 4);
    cr_assert_float_eq(in.data[2], 1e30f, 1e24);
    eiectl_input_free(&in);
}

Test(input_npy, every_bad_file_says_what_is_wrong)
{
    float v[6] = {0};
    double big = 1e300;
    float nan = __builtin_nanf("");
#define GOOD_DICT "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    static const struct {
        int major;
        const char *dict;
        size_t data_bytes;
        int data; /* 0 zeros, 1 one huge double, 2 a NaN float */
        const char *want;
        eie_status_t status;
    } cases[] = {
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24, 0,
         "dtype '>f4' is not supported", EIE_STATUS_UNSUPPORTED},
        {1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24, 0,
         "dtype '<i4' is not supported", EIE_STATUS_UNSUPPORTED},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", 12, 0, "dtype '<f2'",
         EIE_STATUS_UNSUPPORTED},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, 0,
         "structured arrays", EIE_STATUS_UNSUPPORTED},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, 0, "Fortran order",
         EIE_STATUS_UNSUPPORTED},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3000, 1000), }", 24, 0,
         "a sample of this 3-D array holds more than", EIE_STATUS_LIMIT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, 0, "a scalar",
         EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, 0, "no values",
         EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, 0,
         "20 bytes of data, the shape (2 x 3 of <f4) needs 24", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, 0,
         "28 bytes of data", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9999999, 3), }", 24, 0,
         "larger than", EIE_STATUS_LIMIT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 3), }", 24,
         0, "too large", EIE_STATUS_LIMIT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4097, 4096), }", 24, 0,
         "more than the", EIE_STATUS_LIMIT},
        {1, "{'descr': '<f4', 'fortran_order': False}", 24, 0, "header is not a dict",
         EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24, 0,
         "unexpected or repeated key 'x'", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 24, 0,
         "repeated key 'descr'", EIE_STATUS_INVALID_ARGUMENT},
        {1, "['descr', '<f4']", 24, 0, "header is not a dict", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", 24, 0,
         "header is not a dict", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24, 0,
         "header is not a dict", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 8, 1,
         "value [0, 0] = 1e+300 is not a finite float32", EIE_STATUS_INVALID_ARGUMENT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4, 2, "value [0, 0] = nan",
         EIE_STATUS_INVALID_ARGUMENT},
        {4, GOOD_DICT, 24, 0, "version 4.0 is not supported", EIE_STATUS_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[512];
        uint8_t data[32] = {0};
        if (cases[i].data == 1)
            memcpy(data, &big, sizeof big);
        else if (cases[i].data == 2)
            memcpy(data, &nan, sizeof nan);
        size_t n = make_npy(buf, cases[i].major, cases[i].dict, data, cases[i].data_bytes);
        eiectl_input_t in = {0};
        cr_assert_not(npy(buf, n, &in), "case %zu accepted", i);
        cr_assert(strstr(error.msg, cases[i].want) != NULL, "case %zu: got '%s', want '%s'", i,
                  error.msg, cases[i].want);
        cr_assert_eq(error.status, cases[i].status, "case %zu: status %s", i,
                     eie_status_name(error.status));
        cr_assert(strncmp(error.msg, "x.npy: ", 7) == 0, "case %zu: '%s' does not name the file", i,
                  error.msg);
    }
    (void)v;
}

Test(input_npy, truncated_and_foreign_files)
{
    eiectl_input_t in;
    cr_assert_not(npy((const uint8_t *)"PK\3\4 a zip", 11, &in));
    cr_assert(strstr(error.msg, "not a .npy file") != NULL, "%s", error.msg);
    cr_assert_not(npy((const uint8_t *)"\x93NUMPY\x01\x00\xff\x00{", 11, &in));
    cr_assert(strstr(error.msg, "runs past the end") != NULL, "%s", error.msg);
    cr_assert_not(npy((const uint8_t *)"\x93NUMPY\x02\x00\xff", 9, &in));
    cr_assert(strstr(error.msg, "not a .npy file") != NULL, "%s", error.msg);
    uint8_t huge[16] = "\x93NUMPY\x02\x00\x00\x00\x10\x00";
    cr_assert_not(npy(huge, 16, &in));
    cr_assert(strstr(error.msg, "larger than the 65536 allowed") != NULL, "%s", error.msg);
}

Test(input_auto, extension_then_content)
{
    eiectl_input_t in;
    const char *j = "[[1,2]]";
    cr_assert_eq(eiectl_input_parse((const uint8_t *)j, strlen(j), "rows.txt", EIECTL_INPUT_AUTO,
                                    &in, &error),
                 EIE_STATUS_OK, "%s", error.msg);
    cr_assert_eq(in.cols, 2);
    eiectl_input_free(&in);
    const char *c = "1,2,3\n";
    cr_assert_eq(
        eiectl_input_parse((const uint8_t *)c, strlen(c), "stdin", EIECTL_INPUT_AUTO, &in, &error),
        EIE_STATUS_OK, "%s", error.msg);
    cr_assert_eq(in.cols, 3);
    eiectl_input_free(&in);
    /* A .csv name wins over JSON-looking content. */
    cr_assert_eq(
        eiectl_input_parse((const uint8_t *)j, strlen(j), "x.CSV", EIECTL_INPUT_AUTO, &in, &error),
        EIE_STATUS_INVALID_ARGUMENT);
}

Test(input_file, missing_empty_and_too_large)
{
    eiectl_input_t in;
    cr_assert_eq(eiectl_input_load("/nonexistent/in.npy", EIECTL_INPUT_AUTO, &in, &error),
                 EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(error.msg, "/nonexistent/in.npy: cannot open") != NULL, "%s", error.msg);

    char path[] = "/tmp/eiectl-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(eiectl_input_load(path, EIECTL_INPUT_AUTO, &in, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "is empty") != NULL, "%s", error.msg);

    FILE *f = fdopen(fd, "w");
    cr_assert(fputs("[1, 2, 3]", f) >= 0);
    fclose(f);
    cr_assert_eq(eiectl_input_load(path, EIECTL_INPUT_AUTO, &in, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_eq(in.cols, 3);
    eiectl_input_free(&in);

    uint8_t *data;
    size_t len;
    cr_assert_eq(eiectl_read_file_limited(path, 8, &data, &len, &error), EIE_STATUS_LIMIT);
    cr_assert(strstr(error.msg, "is larger than the 8 bytes allowed") != NULL, "%s", error.msg);
    cr_assert_eq(eiectl_read_file_limited(path, 9, &data, &len, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_eq(len, 9);
    free(data);
    unlink(path);
}
