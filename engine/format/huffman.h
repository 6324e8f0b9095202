/*
 * huffman.h - canonical Huffman codes for the .eie streams (internal).
 *
 * Deep Compression sec. 4: Huffman coding of the quantized codes and of the
 * relative-index runs saves 20-30%. A code is stored as its lengths only
 * (canonical form, as DEFLATE does): codes of one length are consecutive
 * integers in symbol order, shorter codes first. Bits are written most
 * significant bit first into each byte.
 */
#ifndef EIE_FORMAT_HUFFMAN_H
#define EIE_FORMAT_HUFFMAN_H

#include <stddef.h>
#include <stdint.h>

#define EIE_HUFF_MAX_LEN 16
#define EIE_HUFF_MAX_SYMS 256

/* Code lengths (<= EIE_HUFF_MAX_LEN) for counts; unused symbols get 0, a lone symbol gets 1. */
void eie_huff_lengths(const uint64_t *counts, unsigned nsym, uint8_t *lens_out);

/* Canonical codes from lengths; returns 0, or -1 if the lengths are oversubscribed or too long. */
typedef struct eie_huff_enc {
    uint16_t code[EIE_HUFF_MAX_SYMS];
    uint8_t len[EIE_HUFF_MAX_SYMS];
} eie_huff_enc_t;
int eie_huff_enc_init(const uint8_t *lens, unsigned nsym, eie_huff_enc_t *enc_out);

/* Decoding tables; init returns 0 or -1 and sets *why to a static reason. */
typedef struct eie_huff_dec {
    uint16_t count[EIE_HUFF_MAX_LEN + 1]; /* codes of each length */
    uint16_t symbol[EIE_HUFF_MAX_SYMS];   /* symbols in canonical order */
    unsigned used;                        /* symbols with a code */
} eie_huff_dec_t;
int eie_huff_dec_init(const uint8_t *lens, unsigned nsym, eie_huff_dec_t *dec_out,
                      const char **why);

/* Reads bits MSB first from a byte range. */
typedef struct eie_bitreader {
    const uint8_t *data;
    size_t len;
    uint64_t bit; /* next bit position */
} eie_bitreader_t;

/* Decodes one symbol; 0 ok, -1 out of bits, -2 bit pattern that is no code. */
int eie_huff_decode(const eie_huff_dec_t *dec, eie_bitreader_t *br, unsigned *sym_out);

/* Appends bits MSB first to a growable buffer. */
typedef struct eie_bitwriter {
    uint8_t *data;
    size_t cap;
    uint64_t bit; /* bits written */
    int failed;   /* an allocation failed */
} eie_bitwriter_t;

/* Appends the low len bits of code, most significant first. */
void eie_bitwriter_put(eie_bitwriter_t *bw, uint32_t code, unsigned len);

#endif
