/*
 * make-test-model OUT.eie: writes the small model the end-to-end tests of
 * eiectl serve. One fully connected layer of 3 x 4 whose weights are known
 * exactly, so the tests compute the reference in Python:
 *   W[r][c] = codebook[(r + c) % 4], codebook = {0, 0.5, -1, 2},
 *   b = {0.1, -0.2, 0.3}, y = W x + b.
 * Input tensor "input" (4 features), output "output" (3 values), model "toy".
 */
#include <stdio.h>

#include "eie/model.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-test-model OUT.eie\n");
        return 2;
    }
    static const float codebook[4] = {0.0f, 0.5f, -1.0f, 2.0f};
    static const float bias[3] = {0.1f, -0.2f, 0.3f};
    uint8_t codes[3 * 4];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            codes[r * 4 + c] = (uint8_t)((r + c) % 4);
    eie_error_t err;
    eie_builder_t *b = NULL;
    if (eie_builder_init("toy", "eiectl end-to-end test model", "input", "output", &b, &err) !=
            EIE_STATUS_OK ||
        eie_builder_add_fc(b, 3, 4, 2, codebook, codes, bias, &err) != EIE_STATUS_OK ||
        eie_builder_write_file(b, argv[1], &err) != EIE_STATUS_OK) {
        fprintf(stderr, "make-test-model: %s: %s\n", argv[1], err.msg);
        eie_builder_free(b);
        return 1;
    }
    eie_builder_free(b);
    return 0;
}
