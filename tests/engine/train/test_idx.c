/* IDX datasets: good files raw and gzip'd, and every bad-file class with its message. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "eie/train.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/eie-idx-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Every test's files and directory go when it ends, passed or failed. */
static void remove_dir(void)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes an IDX file; gz selects gzip. Returns its path (static buffer per name). */
static void write_file(const char *name, int gz, const unsigned char *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(gzwrite(f, data, (unsigned)len), (int)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

static void write_images(const char *name, int gz, uint32_t magic, uint32_t count, uint32_t rows,
                         uint32_t cols, size_t data_len)
{
    unsigned char *buf = calloc(1, 16 + data_len);
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i < data_len; i++)
        buf[16 + i] = (unsigned char)(i * 37);
    write_file(name, gz, buf, 16 + data_len);
    free(buf);
}

static void write_labels(const char *name, int gz, uint32_t magic, uint32_t count,
                         const unsigned char *labels, size_t n)
{
    unsigned char *buf = calloc(1, 8 + n);
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    memcpy(buf + 8, labels, n);
    write_file(name, gz, buf, 8 + n);
    free(buf);
}

static const unsigned char good_labels[3] = {0, 9, 4};

static eie_status_t load(const char *images, const char *labels, eie_dataset_t **ds,
                         eie_error_t *err)
{
    char pi[256], pl[256];
    snprintf(pi, sizeof pi, "%s/%s", dir, images);
    snprintf(pl, sizeof pl, "%s/%s", dir, labels);
    return eie_dataset_load(pi, pl, 10, 0, ds, err);
}

Test(idx, gzip_dir_loads_and_scales_pixels, .init = make_dir, .fini = remove_dir)
{
    write_images("train-images-idx3-ubyte.gz", 1, 0x803, 3, 2, 2, 12);
    write_labels("train-labels-idx1-ubyte.gz", 1, 0x801, 3, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(eie_dataset_load_dir(dir, "train", 10, 0, &ds, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(ds->count, 3);
    cr_assert_eq(ds->rows * ds->cols, 4);
    cr_assert_eq(ds->labels[1], 9);
    cr_assert_float_eq(ds->images[1], 37.0f / 255.0f, 1e-6);
    eie_dataset_free(ds);
}

Test(idx, raw_files_load_and_limit_keeps_first_examples, .init = make_dir, .fini = remove_dir)
{
    write_images("t10k-images-idx3-ubyte", 0, 0x803, 3, 2, 2, 12);
    write_labels("t10k-labels-idx1-ubyte", 0, 0x801, 3, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(eie_dataset_load_dir(dir, "t10k", 10, 2, &ds, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(ds->count, 2);
    eie_dataset_free(ds);
}

Test(idx, wrong_magic_is_named, .init = make_dir, .fini = remove_dir)
{
    write_images("i", 0, 0x801, 3, 2, 2, 12);
    write_labels("l", 0, 0x801, 3, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "wrong magic 0x00000801, expected 0x00000803") != NULL, "%s",
              err.msg);
}

Test(idx, count_mismatch_names_both_counts, .init = make_dir, .fini = remove_dir)
{
    write_images("i", 0, 0x803, 3, 2, 2, 12);
    write_labels("l", 0, 0x801, 2, good_labels, 2);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "count mismatch") && strstr(err.msg, "3 images") &&
                  strstr(err.msg, "2 labels"),
              "%s", err.msg);
}

Test(idx, label_out_of_range_names_example_and_value, .init = make_dir, .fini = remove_dir)
{
    const unsigned char bad[3] = {0, 12, 1};
    write_images("i", 0, 0x803, 3, 2, 2, 12);
    write_labels("l", 0, 0x801, 3, bad, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "label 12 of example 1 out of range") != NULL, "%s", err.msg);
}

Test(idx, truncated_images_are_reported, .init = make_dir, .fini = remove_dir)
{
    write_images("i", 1, 0x803, 3, 2, 2, 7);
    write_labels("l", 0, 0x801, 3, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
}

Test(idx, huge_announced_count_hits_the_limit, .init = make_dir, .fini = remove_dir)
{
    write_images("i", 0, 0x803, 0xffffffffu, 28, 28, 12);
    write_labels("l", 0, 0x801, 0xffffffffu, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_LIMIT);
    cr_assert(strstr(err.msg, "outside the limits") != NULL, "%s", err.msg);
}

Test(idx, missing_file_names_the_path, .init = make_dir, .fini = remove_dir)
{
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(eie_dataset_load_dir(dir, "train", 10, 0, &ds, &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, "train-images-idx3-ubyte") != NULL, "%s", err.msg);
}

Test(idx, image_size_not_matching_model_input_is_refused, .init = make_dir, .fini = remove_dir)
{
    write_images("i", 0, 0x803, 3, 2, 2, 12);
    write_labels("l", 0, 0x801, 3, good_labels, 3);
    eie_dataset_t *ds;
    eie_error_t err;
    cr_assert_eq(load("i", "l", &ds, &err), EIE_STATUS_OK);
    uint32_t dims[] = {784, 10};
    eie_mlp_t *net;
    cr_assert_eq(eie_mlp_init_layers(dims, 2, 1, &net, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_dataset_check(ds, net, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "2 x 2 = 4 pixels does not match the model input width 784"), "%s",
              err.msg);
    eie_mlp_free(net);
    eie_dataset_free(ds);
}
