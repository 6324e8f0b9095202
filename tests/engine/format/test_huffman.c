/* The canonical Huffman codec of engine/format. */
#include <criterion/criterion.h>
#include <string.h>

#include "format/huffman.h"

Test(huffman, skewed_counts_round_trip_within_16_bits)
{
    /* Fibonacci counts force a deep tree; lengths must be limited to 16. */
    uint64_t counts[40];
    uint64_t a = 1, b = 1;
    for (int i = 0; i < 40; i++) {
        counts[i] = a;
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    uint8_t lens[40];
    eie_huff_lengths(counts, 40, lens);
    eie_huff_enc_t enc;
    eie_huff_dec_t dec;
    const char *why;
    cr_assert_eq(eie_huff_enc_init(lens, 40, &enc), 0);
    cr_assert_eq(eie_huff_dec_init(lens, 40, &dec, &why), 0);
    eie_bitwriter_t bw = {0};
    for (unsigned s = 0; s < 40; s++)
        eie_bitwriter_put(&bw, enc.code[s], enc.len[s]);
    eie_bitreader_t br = {.data = bw.data, .len = (size_t)((bw.bit + 7) / 8)};
    for (unsigned s = 0; s < 40; s++) {
        unsigned got;
        cr_assert_eq(eie_huff_decode(&dec, &br, &got), 0);
        cr_assert_eq(got, s);
    }
    cr_assert_eq(br.bit, bw.bit);
    free(bw.data);
}

Test(huffman, lone_symbol_gets_one_bit)
{
    uint64_t counts[16] = {0};
    counts[7] = 1000;
    uint8_t lens[16];
    eie_huff_lengths(counts, 16, lens);
    cr_assert_eq(lens[7], 1);
    for (int s = 0; s < 16; s++)
        if (s != 7)
            cr_assert_eq(lens[s], 0);
}

Test(huffman, oversubscribed_lengths_are_invalid)
{
    uint8_t lens[3] = {1, 1, 1};
    eie_huff_dec_t dec;
    const char *why = NULL;
    cr_assert_eq(eie_huff_dec_init(lens, 3, &dec, &why), -1);
    cr_assert_not_null(why);
}
