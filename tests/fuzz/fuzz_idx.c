/*
 * Fuzz target: the IDX dataset reader (engine/train/idx.c), raw and gzip'd.
 * The reader takes paths, so the input is split into an images file and a
 * labels file written to two memfds and read through /proc/self/fd.
 *
 * Input: byte 0 = classes - 1, byte 1 = limit (0 = all), bytes 2..5 =
 * length of the images file (little-endian, clamped), then the images file,
 * then the labels file.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "eie/train.h"
#include "fuzz.h"

static int memfd(const char *name)
{
    int fd = memfd_create(name, 0);
    FUZZ_CHECK(fd >= 0, "memfd_create");
    return fd; /* lives for the process */
}

static void fill(int fd, const uint8_t *data, size_t len)
{
    FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
        FUZZ_CHECK(n > 0, "pwrite");
        done += (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int images_fd = -1, labels_fd = -1;
    if (images_fd < 0) {
        images_fd = memfd("images");
        labels_fd = memfd("labels");
    }
    if (size < 6)
        return 0;
    uint32_t classes = (uint32_t)data[0] + 1, limit = data[1];
    size_t images_len = (size_t)data[2] | (size_t)data[3] << 8 | (size_t)data[4] << 16 |
                        (size_t)data[5] << 24;
    data += 6;
    size -= 6;
    if (images_len > size)
        images_len = size;
    fill(images_fd, data, images_len);
    fill(labels_fd, data + images_len, size - images_len);
    char images[64], labels[64];
    snprintf(images, sizeof images, "/proc/self/fd/%d", images_fd);
    snprintf(labels, sizeof labels, "/proc/self/fd/%d", labels_fd);

    eie_dataset_t *ds = NULL;
    eie_error_t err;
    if (eie_dataset_load(images, labels, classes, limit, &ds, &err) != EIE_STATUS_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
        return 0;
    }
    FUZZ_CHECK(limit == 0 || ds->count <= limit, "%u examples for limit %u", ds->count, limit);
    FUZZ_CHECK(ds->classes == classes && ds->rows > 0 && ds->cols > 0, "shape");
    for (uint32_t i = 0; i < ds->count; i++)
        FUZZ_CHECK(ds->labels[i] < classes, "label %u of %u", ds->labels[i], i);
    size_t n = (size_t)ds->count * ds->rows * ds->cols;
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ds->images[i] >= 0.0f && ds->images[i] <= 1.0f, "pixel %zu", i);
    eie_dataset_free(ds);
    return 0;
}
