/*
 * IDX datasets (the MNIST file format): a big-endian header of magic
 * 0x000008TT (TT = 0x03 images, 0x01 labels), dimension sizes, then bytes.
 * zlib reads gzip'd and raw files alike.
 */
#include "eie/train.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Limits on what a dataset file may announce. */
#define EIE_IDX_MAX_COUNT 10000000u
#define EIE_IDX_MAX_SIDE  4096u
#define EIE_IDX_MAX_PIXELS (1u << 20)

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u

/* Reads exactly len bytes; returns how many it got (fewer at the end of the file), or -1. */
static long long read_full(gzFile f, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t want = len - got > (1u << 30) ? (1u << 30) : len - got;
        int n = gzread(f, (char *)buf + got, (unsigned)want);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (long long)got;
}

static eie_status_t open_idx(const char *path, gzFile *f_out, eie_error_t *err)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return eie_error_set(err, errno == ENOENT ? EIE_STATUS_NOT_FOUND : EIE_STATUS_IO,
                             "cannot open %s: %s", path, strerror(errno ? errno : EIO));
    *f_out = f;
    return EIE_STATUS_OK;
}

static eie_status_t read_header(gzFile f, const char *path, uint32_t magic, unsigned n_dims,
                                uint32_t *dims, eie_error_t *err)
{
    unsigned char h[16];
    size_t len = 4 + 4 * (size_t)n_dims;
    long long got = read_full(f, h, len);
    if (got < 0)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT, "%s: not a readable gzip or raw file",
                             path);
    if (got < 4)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: %lld bytes is too short for an IDX header", path, got);
    uint32_t m = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (m != magic)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: wrong magic 0x%08x, expected 0x%08x (IDX %s)", path, m, magic,
                             magic == IDX_MAGIC_IMAGES ? "unsigned byte images, 3 dimensions"
                                                       : "unsigned byte labels, 1 dimension");
    if ((size_t)got < len)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: header truncated after %lld of %zu bytes", path, got, len);
    for (unsigned i = 0; i < n_dims; i++) {
        const unsigned char *p = h + 4 + 4 * i;
        dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    }
    return EIE_STATUS_OK;
}

void eie_dataset_free(eie_dataset_t *ds)
{
    if (ds == NULL)
        return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}

eie_status_t eie_dataset_load(const char *images_path, const char *labels_path, uint32_t classes,
                              uint32_t limit, eie_dataset_t **ds_out, eie_error_t *err)
{
    eie_status_t st;
    gzFile fi = NULL, fl = NULL;
    uint8_t *raw = NULL;
    eie_dataset_t *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a dataset");
    if (classes == 0 || classes > EIE_DATASET_MAX_CLASSES) {
        st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%u classes outside 1..%d", classes,
                           EIE_DATASET_MAX_CLASSES);
        goto error;
    }
    uint32_t di[3] = {0, 0, 0}, dl[1] = {0};
    if ((st = open_idx(images_path, &fi, err)) != EIE_STATUS_OK ||
        (st = read_header(fi, images_path, IDX_MAGIC_IMAGES, 3, di, err)) != EIE_STATUS_OK ||
        (st = open_idx(labels_path, &fl, err)) != EIE_STATUS_OK ||
        (st = read_header(fl, labels_path, IDX_MAGIC_LABELS, 1, dl, err)) != EIE_STATUS_OK)
        goto error;
    if (di[0] > EIE_IDX_MAX_COUNT || di[1] == 0 || di[2] == 0 || di[1] > EIE_IDX_MAX_SIDE ||
        di[2] > EIE_IDX_MAX_SIDE || (uint64_t)di[1] * di[2] > EIE_IDX_MAX_PIXELS) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "%s: %u images of %u x %u outside the limits (at most %u images, "
                           "sides 1..%u, %u pixels)",
                           images_path, di[0], di[1], di[2], EIE_IDX_MAX_COUNT, EIE_IDX_MAX_SIDE,
                           EIE_IDX_MAX_PIXELS);
        goto error;
    }
    if (di[0] != dl[0]) {
        st = eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                           "count mismatch: %s has %u images but %s has %u labels", images_path,
                           di[0], labels_path, dl[0]);
        goto error;
    }
    uint32_t count = limit && limit < di[0] ? limit : di[0];
    size_t pixels = (size_t)di[1] * di[2];
    ds->count = count;
    ds->rows = di[1];
    ds->cols = di[2];
    ds->classes = classes;
    /* The header costs 16 bytes whatever it announces (up to 10^7 images of
     * 2^20 pixels), so the pixel buffer grows with the data actually read and
     * the float images are allocated only once every byte is there. */
    size_t want = (size_t)count * pixels, have = 0, cap = 0;
    long long got = 0;
    while (have < want) {
        size_t grow = cap < (1u << 20) ? (1u << 20) : cap;
        cap = want - cap < grow ? want : cap + grow;
        uint8_t *bigger = realloc(raw, cap);
        if (bigger == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %u images", count);
            goto error;
        }
        raw = bigger;
        got = read_full(fi, raw + have, cap - have);
        if (got < 0 || (size_t)got < cap - have) {
            st = eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                               "%s: truncated: %u images of %zu bytes announced, %s after %lld "
                               "bytes",
                               images_path, count, pixels, got < 0 ? "gzip error" : "data ends",
                               got < 0 ? 0 : (long long)have + got);
            goto error;
        }
        have = cap;
    }
    ds->labels = malloc(count ? count : 1);
    ds->images = malloc(want * sizeof(float) + 1);
    if (ds->labels == NULL || ds->images == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %u images", count);
        goto error;
    }
    got = read_full(fl, ds->labels, count);
    if (got < 0 || (size_t)got < count) {
        st = eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                           "%s: truncated: %u labels announced, %s after %lld", labels_path, count,
                           got < 0 ? "gzip error" : "data ends", got < 0 ? 0 : got);
        goto error;
    }
    for (uint32_t i = 0; i < count; i++)
        if (ds->labels[i] >= classes) {
            st = eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                               "%s: label %u of example %u out of range (model has %u classes)",
                               labels_path, ds->labels[i], i, classes);
            goto error;
        }
    for (size_t i = 0; i < (size_t)count * pixels; i++)
        ds->images[i] = raw[i] * (1.0f / 255.0f);
    free(raw);
    gzclose(fi);
    gzclose(fl);
    *ds_out = ds;
    return EIE_STATUS_OK;
error:
    free(raw);
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    eie_dataset_free(ds);
    return st;
}

/* DIR/NAME, or DIR/NAME.gz when only that exists. */
static eie_status_t find_file(const char *dir, const char *name, char *path, size_t cap,
                              eie_error_t *err)
{
    struct stat sb;
    int n = snprintf(path, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n + 3 >= cap)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "dataset path too long: %s", dir);
    if (stat(path, &sb) == 0)
        return EIE_STATUS_OK;
    strcat(path, ".gz");
    if (stat(path, &sb) == 0)
        return EIE_STATUS_OK;
    return eie_error_set(err, EIE_STATUS_NOT_FOUND, "%s: no %s or %s.gz", dir, name, name);
}

eie_status_t eie_dataset_load_dir(const char *dir, const char *split, uint32_t classes,
                                  uint32_t limit, eie_dataset_t **ds_out, eie_error_t *err)
{
    char name[64], images[PATH_MAX], labels[PATH_MAX];
    eie_status_t st;
    if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "dataset split '%s' is neither 'train' nor 't10k'", split);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    if ((st = find_file(dir, name, images, sizeof images, err)) != EIE_STATUS_OK)
        return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    if ((st = find_file(dir, name, labels, sizeof labels, err)) != EIE_STATUS_OK)
        return st;
    return eie_dataset_load(images, labels, classes, limit, ds_out, err);
}

eie_status_t eie_dataset_check(const eie_dataset_t *ds, const eie_mlp_t *mlp, eie_error_t *err)
{
    uint64_t pixels = (uint64_t)ds->rows * ds->cols;
    if (pixels != mlp->input_dim)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "image size %u x %u = %llu pixels does not match the model input "
                             "width %u",
                             ds->rows, ds->cols, (unsigned long long)pixels, mlp->input_dim);
    uint32_t out = eie_mlp_output_dim(mlp);
    if (ds->classes > out)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "dataset has %u classes but the model has %u outputs", ds->classes,
                             out);
    return EIE_STATUS_OK;
}
