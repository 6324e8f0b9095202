/* onnx_internal.h - TensorProto conversion shared by import and tensor loading. */
#ifndef EIE_ONNX_INTERNAL_H
#define EIE_ONNX_INTERNAL_H

#include "eie/file.h"
#include "eie/onnx.h"
#include "onnx/onnx.pb-c.h"

/* ONNX TensorProto.DataType values this code reads. */
#define EIE_ONNX_FLOAT  1
#define EIE_ONNX_INT64  7
#define EIE_ONNX_DOUBLE 11

/* Checks rank and dims of t, stores them and the element count; what names the tensor in errors. */
eie_status_t eie_onnx_tensor_shape(const Onnx__TensorProto *t, const char *what, uint32_t *rank_out,
                                   int64_t *dims_out, size_t *count_out, eie_error_t *err);
/* Converts a float or double tensor to count floats (malloc'd, caller frees). */
eie_status_t eie_onnx_tensor_floats(const Onnx__TensorProto *t, const char *what, size_t count,
                                    float **data_out, eie_error_t *err);
/* A constant's shape and floats (malloc'd, the caller frees *data_out): from bound when
   not NULL (a binding or a folded tensor), else from the TensorProto t. */
eie_status_t eie_onnx_const_floats(const Onnx__TensorProto *t, const eie_onnx_tensor_t *bound,
                                   const char *what, uint32_t *rank_out, int64_t *dims_out,
                                   size_t *count_out, float **data_out, eie_error_t *err);
/* Converts an int64 tensor to count int64s (malloc'd, caller frees). */
eie_status_t eie_onnx_tensor_int64s(const Onnx__TensorProto *t, const char *what, size_t count,
                                    int64_t **data_out, eie_error_t *err);

#endif
