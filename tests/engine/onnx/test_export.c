/* ONNX export: what is written imports back to the same function. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "eie/onnx.h"

Test(onnx_export, round_trip_keeps_weights_biases_and_activations)
{
    uint32_t dims[] = {6, 5, 4, 3};
    eie_mlp_t *net, *back;
    eie_error_t err;
    cr_assert_eq(eie_mlp_init_layers(dims, 4, 5, &net, &err), EIE_STATUS_OK);
    net->layers[0].b[2] = 0.25f;
    net->layers[1].act = EIE_ACT_TANH;
    char path[] = "/tmp/eie-export-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(eie_onnx_export_file(net, "net", "in", "out", path, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    eie_onnx_info_t info;
    cr_assert_eq(eie_onnx_import_file(path, NULL, &back, &info, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    unlink(path);
    cr_assert_str_eq(info.input_name, "in");
    cr_assert_str_eq(info.output_name, "out");
    cr_assert_eq(info.opset, 13);
    cr_assert_eq(back->n_layers, net->n_layers);
    for (size_t i = 0; i < net->n_layers; i++) {
        cr_assert_eq(back->layers[i].kind, net->layers[i].kind);
        cr_assert_eq(back->layers[i].act, net->layers[i].act);
    }
    float x[2 * 6], y0[2 * 3], y1[2 * 3];
    for (int i = 0; i < 12; i++)
        x[i] = cosf((float)i);
    cr_assert_eq(eie_mlp_forward(net, x, 2, y0, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_forward(back, x, 2, y1, NULL), EIE_STATUS_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(y0[i], y1[i], 1e-6);
    eie_mlp_free(net);
    eie_mlp_free(back);
}
