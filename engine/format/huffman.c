/* Canonical Huffman codes for the .eie code and run streams; see huffman.h. */
#include "format/huffman.h"

#include <stdlib.h>
#include <string.h>

/* Plain Huffman construction; n <= 256, so the O(n^2) pairing is cheap. */
static unsigned huff_depths(const uint64_t *w, unsigned nsym, uint8_t *lens_out)
{
    uint64_t weight[2 * EIE_HUFF_MAX_SYMS];
    int parent[2 * EIE_HUFF_MAX_SYMS];
    int alive[2 * EIE_HUFF_MAX_SYMS];
    unsigned n = 0, leaves[EIE_HUFF_MAX_SYMS], used = 0;

    for (unsigned s = 0; s < nsym; s++) {
        lens_out[s] = 0;
        if (w[s] > 0) {
            leaves[used++] = s;
            weight[n] = w[s];
            parent[n] = -1;
            alive[n] = 1;
            n++;
        }
    }
    if (used == 0)
        return 0;
    if (used == 1) {
        lens_out[leaves[0]] = 1;
        return 1;
    }
    unsigned live = used;
    while (live > 1) {
        int a = -1, b = -1;
        for (unsigned i = 0; i < n; i++) {
            if (!alive[i])
                continue;
            if (a < 0 || weight[i] < weight[a]) {
                b = a;
                a = (int)i;
            } else if (b < 0 || weight[i] < weight[b]) {
                b = (int)i;
            }
        }
        alive[a] = alive[b] = 0;
        weight[n] = weight[a] + weight[b];
        parent[n] = -1;
        alive[n] = 1;
        parent[a] = parent[b] = (int)n;
        n++;
        live--;
    }
    unsigned maxlen = 0;
    for (unsigned k = 0; k < used; k++) {
        unsigned d = 0;
        for (int i = (int)k; parent[i] >= 0; i = parent[i])
            d++;
        lens_out[leaves[k]] = (uint8_t)(d > 255 ? 255 : d);
        if (d > maxlen)
            maxlen = d;
    }
    return maxlen;
}

void eie_huff_lengths(const uint64_t *counts, unsigned nsym, uint8_t *lens_out)
{
    uint64_t w[EIE_HUFF_MAX_SYMS];
    memcpy(w, counts, nsym * sizeof w[0]);
    /* Limit the length the way zlib's callers often do: flatten the counts
     * until the tree is shallow enough. Costs a little size, never validity. */
    while (huff_depths(w, nsym, lens_out) > EIE_HUFF_MAX_LEN)
        for (unsigned s = 0; s < nsym; s++)
            if (w[s] > 0)
                w[s] = (w[s] >> 1) | 1;
}

int eie_huff_enc_init(const uint8_t *lens, unsigned nsym, eie_huff_enc_t *enc_out)
{
    uint16_t count[EIE_HUFF_MAX_LEN + 2] = {0};
    uint32_t next[EIE_HUFF_MAX_LEN + 2];
    memset(enc_out, 0, sizeof *enc_out);
    for (unsigned s = 0; s < nsym; s++) {
        if (lens[s] > EIE_HUFF_MAX_LEN)
            return -1;
        count[lens[s]]++;
    }
    count[0] = 0;
    uint32_t code = 0;
    int64_t left = 1;
    for (unsigned l = 1; l <= EIE_HUFF_MAX_LEN; l++) {
        left = left * 2 - count[l];
        if (left < 0)
            return -1;
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    for (unsigned s = 0; s < nsym; s++) {
        if (lens[s] != 0) {
            enc_out->len[s] = lens[s];
            enc_out->code[s] = (uint16_t)next[lens[s]]++;
        }
    }
    return 0;
}

int eie_huff_dec_init(const uint8_t *lens, unsigned nsym, eie_huff_dec_t *dec_out,
                      const char **why)
{
    uint16_t offs[EIE_HUFF_MAX_LEN + 2];
    memset(dec_out, 0, sizeof *dec_out);
    for (unsigned s = 0; s < nsym; s++) {
        if (lens[s] > EIE_HUFF_MAX_LEN) {
            *why = "a code length exceeds 16 bits";
            return -1;
        }
        dec_out->count[lens[s]]++;
    }
    dec_out->used = nsym - dec_out->count[0];
    dec_out->count[0] = 0;
    /* Kraft: more codes of a length than the shorter ones leave room for is
     * no prefix code. Incomplete codes are allowed (one symbol has length 1);
     * bit patterns without a symbol fail at decode time. */
    int64_t left = 1;
    for (unsigned l = 1; l <= EIE_HUFF_MAX_LEN; l++) {
        left = left * 2 - dec_out->count[l];
        if (left < 0) {
            *why = "code lengths are oversubscribed (Kraft sum > 1)";
            return -1;
        }
    }
    offs[1] = 0;
    for (unsigned l = 1; l < EIE_HUFF_MAX_LEN; l++)
        offs[l + 1] = (uint16_t)(offs[l] + dec_out->count[l]);
    for (unsigned s = 0; s < nsym; s++)
        if (lens[s] != 0)
            dec_out->symbol[offs[lens[s]]++] = (uint16_t)s;
    return 0;
}

int eie_huff_decode(const eie_huff_dec_t *dec, eie_bitreader_t *br, unsigned *sym_out)
{
    /* Canonical decoding as in zlib's puff.c: walk lengths, comparing the
     * code read so far against the first code of each length. */
    int32_t code = 0, first = 0, index = 0;
    uint64_t total = (uint64_t)br->len * 8;
    for (unsigned l = 1; l <= EIE_HUFF_MAX_LEN; l++) {
        if (br->bit >= total)
            return -1;
        code |= (br->data[br->bit >> 3] >> (7 - (br->bit & 7))) & 1;
        br->bit++;
        int32_t count = dec->count[l];
        if (code - count < first) {
            *sym_out = dec->symbol[index + (code - first)];
            return 0;
        }
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -2;
}

void eie_bitwriter_put(eie_bitwriter_t *bw, uint32_t code, unsigned len)
{
    if (bw->failed)
        return;
    size_t need = (size_t)((bw->bit + len + 7) >> 3);
    if (need > bw->cap) {
        size_t cap = bw->cap ? bw->cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *d = realloc(bw->data, cap);
        if (d == NULL) {
            bw->failed = 1;
            return;
        }
        memset(d + bw->cap, 0, cap - bw->cap);
        bw->data = d;
        bw->cap = cap;
    }
    for (unsigned i = len; i-- > 0;) {
        if ((code >> i) & 1)
            bw->data[bw->bit >> 3] |= (uint8_t)(0x80u >> (bw->bit & 7));
        bw->bit++;
    }
}
