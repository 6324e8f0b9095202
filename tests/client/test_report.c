/* Latency percentiles, top-K and the JSON writer of eiectl. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* Captures what f writes to a FILE into a string the caller frees. */
#define CAPTURE(buf, stmt)                                                                     \
    do {                                                                                       \
        size_t len_;                                                                           \
        FILE *out = open_memstream(&(buf), &len_);                                             \
        stmt;                                                                                  \
        fclose(out);                                                                           \
    } while (0)

Test(percentile, nearest_rank_of_1_to_100)
{
    uint64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)(100 - i); /* unsorted on purpose */
    eiectl_latency_sort(v, 100);
    cr_assert_eq(eiectl_percentile(v, 100, 50), 50);
    cr_assert_eq(eiectl_percentile(v, 100, 90), 90);
    cr_assert_eq(eiectl_percentile(v, 100, 99), 99);
    cr_assert_eq(eiectl_percentile(v, 100, 100), 100);
    cr_assert_eq(eiectl_percentile(v, 100, 0), 1);
    cr_assert_eq(eiectl_percentile(v, 100, 99.5), 100);
}

Test(percentile, small_counts_pick_recorded_values)
{
    uint64_t one[1] = {7};
    cr_assert_eq(eiectl_percentile(one, 1, 50), 7);
    cr_assert_eq(eiectl_percentile(one, 1, 99), 7);
    uint64_t two[2] = {10, 20};
    cr_assert_eq(eiectl_percentile(two, 2, 50), 10);
    cr_assert_eq(eiectl_percentile(two, 2, 51), 20);
    uint64_t ten[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1000};
    cr_assert_eq(eiectl_percentile(ten, 10, 90), 9);
    cr_assert_eq(eiectl_percentile(ten, 10, 99), 1000);
}

Test(percentile, p99_of_1000_with_ties)
{
    uint64_t *v = malloc(1000 * sizeof *v);
    for (int i = 0; i < 1000; i++)
        v[i] = i < 985 ? 5 : (uint64_t)i;
    eiectl_latency_sort(v, 1000);
    cr_assert_eq(eiectl_percentile(v, 1000, 50), 5);
    cr_assert_eq(eiectl_percentile(v, 1000, 99), 989); /* the 990th value */
    free(v);
}

Test(latency_summary, exact_min_mean_max_and_empty)
{
    uint64_t v[5] = {50, 10, 40, 20, 30};
    eiectl_latency_summary_t s;
    eiectl_latency_summarize(v, 5, &s);
    cr_assert_eq(s.count, 5);
    cr_assert_eq(s.min, 10);
    cr_assert_eq(s.max, 50);
    cr_assert_eq(s.p50, 30);
    cr_assert_eq(s.p90, 50);
    cr_assert_float_eq(s.mean, 30.0, 1e-12);
    eiectl_latency_summarize(NULL, 0, &s);
    cr_assert_eq(s.count, 0);
    cr_assert_eq(s.max, 0);
}

Test(top_k, best_first_ties_to_lower_index_nan_last)
{
    float v[6] = {0.1f, 0.7f, NAN, 0.7f, -1.0f, 0.2f};
    size_t idx[6];
    cr_assert_eq(eiectl_top_k(v, 6, 3, idx), 3);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 3);
    cr_assert_eq(idx[2], 5);
    cr_assert_eq(eiectl_top_k(v, 6, 10, idx), 6);
    cr_assert_eq(idx[4], 4);
    cr_assert_eq(idx[5], 2);
    cr_assert_eq(eiectl_top_k(v, 6, 0, idx), 0);
}

Test(json, strings_are_escaped_and_invalid_utf8_replaced)
{
    char *s = NULL;
    CAPTURE(s, eiectl_json_string(out, "a\"b\\c\n\t\x01 é €"));
    cr_assert_str_eq(s, "\"a\\\"b\\\\c\\n\\t\\u0001 é €\"");
    free(s);
    CAPTURE(s, eiectl_json_string(out, "bad\xff\xc3(\xed\xa0\x80"));
    cr_assert_str_eq(s, "\"bad\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\"");
    free(s);
    CAPTURE(s, eiectl_json_string(out, NULL));
    cr_assert_str_eq(s, "\"\"");
    free(s);
}

Test(json, floats_round_trip_and_non_finite_become_null)
{
    char *s = NULL;
    float x = 0.1f;
    CAPTURE(s, eiectl_json_float(out, x));
    cr_assert_eq(strtof(s, NULL), x);
    free(s);
    CAPTURE(s, (eiectl_json_float(out, NAN), fputc(',', out), eiectl_json_float(out, INFINITY),
                fputc(',', out), eiectl_json_double(out, -INFINITY)));
    cr_assert_str_eq(s, "null,null,null");
    free(s);
}
