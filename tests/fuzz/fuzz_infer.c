/*
 * Fuzz target: a ModelInfer request as it arrives off the wire, decoded by
 * protobuf-c and checked by eied_infer_validate (daemon/infer_validate.c)
 * against fixed model specs. When validation says OK, the input it hands to
 * the engine must be exactly rows x input_dim floats, all readable.
 */
#include <grpc/status.h>
#include <string.h>

#include "fuzz.h"
#include "infer_validate.h"

static const eied_infer_spec_t specs[] = {
    /* the seeds are written for this one */
    {.model = "fuzz", .input_name = "input", .output_name = "output", .input_dim = 4,
     .max_batch = 8, .max_tensor_elements = 1u << 20, .reject_non_finite = true},
    /* batch limit above the element limit; NaN and Inf allowed */
    {.model = "fuzz", .input_name = "input", .output_name = "output", .input_dim = 3,
     .max_batch = 4096, .max_tensor_elements = 12, .reject_non_finite = false},
    /* a wide input */
    {.model = "wide", .input_name = "x", .output_name = "y", .input_dim = 784, .max_batch = 64,
     .max_tensor_elements = 16777216, .reject_non_finite = true},
};

static void check(const Inference__ModelInferRequest *req, const eied_infer_spec_t *spec)
{
    eie_error_t err;
    eied_infer_input_t in = {0};
    err.msg[0] = '\0';
    eie_status_t st = eied_infer_validate(req, spec, &in, &err);
    if (st != EIE_STATUS_OK) {
        FUZZ_CHECK(st == EIE_STATUS_INVALID_ARGUMENT || st == EIE_STATUS_RESOURCE_EXHAUSTED,
                   "status %d", (int)st);
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
        return;
    }
    FUZZ_CHECK(in.rows >= 1 && in.rows <= spec->max_batch, "rows %u", in.rows);
    FUZZ_CHECK(in.n == (size_t)in.rows * spec->input_dim, "n %zu for %u rows of %u", in.n, in.rows,
               spec->input_dim);
    FUZZ_CHECK(in.n <= spec->max_tensor_elements, "n %zu", in.n);
    FUZZ_CHECK(in.data != NULL, "no data");
    /* Touch every byte the engine will read: ASan catches a short buffer. */
    const volatile unsigned char *p = in.data;
    unsigned sum = 0;
    for (size_t i = 0; i < in.n * 4; i++)
        sum += p[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(&inference__model_infer_request__descriptor, NULL, size, data);
    if (msg == NULL)
        return 0;
    const Inference__ModelInferRequest *req = (const Inference__ModelInferRequest *)msg;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        check(req, &specs[i]);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}
