/*
 * input.h - the rows eiectl sends to a model: parsed from a JSON array, a
 * .npy file (float32/float64, little-endian, C order; 1-D is one row, 2-D
 * rows x features, N-D rows of samples flattened in C order) or CSV.
 * Every size the input controls is bounded by the limits below; errors name
 * the source (file name or "--input") and what is wrong with it, and come
 * back as a status (INVALID_ARGUMENT for malformed input, UNSUPPORTED for a
 * dtype or version eiectl does not read, LIMIT past a limit, IO, NO_MEMORY)
 * with the message in an eie_error_t.
 */
#ifndef EIECTL_INPUT_H
#define EIECTL_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"

/* Largest input file or stdin payload eiectl reads. */
#define EIECTL_INPUT_MAX_BYTES ((size_t)64 << 20)
/* Largest number of values in one input (64 MiB of float32). */
#define EIECTL_INPUT_MAX_VALUES ((size_t)16 << 20)
/* Largest number of rows (the batch) and of values per row. */
#define EIECTL_INPUT_MAX_ROWS ((size_t)1 << 20)
#define EIECTL_INPUT_MAX_COLS ((size_t)1 << 20)
/* Largest .npy header (the format's v1 limit is 64 KiB; v2/v3 could say 4 GiB). */
#define EIECTL_NPY_MAX_HEADER ((size_t)1 << 16)

typedef enum {
    EIECTL_INPUT_AUTO = 0, /* by extension, else by content */
    EIECTL_INPUT_JSON,
    EIECTL_INPUT_NPY,
    EIECTL_INPUT_CSV,
} eiectl_input_format_t;

/* A dense row-major batch of float32 values: rows x cols. */
typedef struct eiectl_input {
    float *data;
    size_t rows, cols;
} eiectl_input_t;

/* Frees the values of in (not in itself); NULL and empty inputs are fine. */
void eiectl_input_free(eiectl_input_t *in);

/*
 * Parses a JSON array of numbers (one row) or an array of equally long
 * arrays of numbers (a batch). name labels errors ("--input", a path).
 * On failure fills err (may be NULL) and returns its status.
 */
eie_status_t eiectl_input_parse_json(const char *text, size_t len, const char *name,
                                     eiectl_input_t *in_out, eie_error_t *err);

/* Parses CSV rows of numbers; '#' lines, blank lines and one header line are skipped. */
eie_status_t eiectl_input_parse_csv(const char *text, size_t len, const char *name,
                                    eiectl_input_t *in_out, eie_error_t *err);

/* Parses a .npy file image (versions 1-3, '<f4' or '<f8', C order, 1-D to 8-D). */
eie_status_t eiectl_input_parse_npy(const uint8_t *data, size_t len, const char *name,
                                    eiectl_input_t *in_out, eie_error_t *err);

/* Parses a buffer in the given format; AUTO looks at the name's extension, then the content. */
eie_status_t eiectl_input_parse(const uint8_t *data, size_t len, const char *name,
                                eiectl_input_format_t format, eiectl_input_t *in_out,
                                eie_error_t *err);

/*
 * Reads path ("-" is stdin) up to max_bytes into a malloc'd buffer the caller
 * frees (eie_file_read_ex; a pipe or FIFO is read to its end too); refuses
 * larger inputs naming the path and the limit.
 */
eie_status_t eiectl_read_file_limited(const char *path, size_t max_bytes, uint8_t **data_out,
                                      size_t *len_out, eie_error_t *err);

/* Reads and parses path ("-" is stdin) in the given format. */
eie_status_t eiectl_input_load(const char *path, eiectl_input_format_t format,
                               eiectl_input_t *in_out, eie_error_t *err);

#endif
