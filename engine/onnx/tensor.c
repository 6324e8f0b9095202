/* TensorProto -> floats with every size checked; raw_data is little-endian. */
#include "onnx/onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

eie_status_t eie_onnx_tensor_shape(const Onnx__TensorProto *t, const char *what, uint32_t *rank_out,
                                   int64_t *dims_out, size_t *count_out, eie_error_t *err)
{
    if (t->n_external_data > 0 ||
        (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%s keeps its data in an external file; eie imports self-contained "
                             "models only (save the model without external data)",
                             what);
    if (t->segment != NULL)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED, "%s is a segmented tensor", what);
    if (t->n_dims > EIE_ONNX_MAX_RANK)
        return eie_error_set(err, EIE_STATUS_LIMIT, "%s has rank %zu, more than %d", what,
                             t->n_dims, EIE_ONNX_MAX_RANK);
    uint64_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (uint64_t)t->dims[i] > EIE_ONNX_MAX_ELEMENTS)
            return eie_error_set(err, EIE_STATUS_BAD_FORMAT, "%s: dimension %zu is %lld", what, i,
                                 (long long)t->dims[i]);
        count *= (uint64_t)t->dims[i];
        if (count > EIE_ONNX_MAX_ELEMENTS)
            return eie_error_set(err, EIE_STATUS_LIMIT, "%s has more than %llu elements", what,
                                 (unsigned long long)EIE_ONNX_MAX_ELEMENTS);
        dims_out[i] = t->dims[i];
    }
    *rank_out = (uint32_t)t->n_dims;
    *count_out = (size_t)count;
    return EIE_STATUS_OK;
}

static eie_status_t wrong_length(const char *what, const char *field, size_t have, size_t want,
                                 eie_error_t *err)
{
    return eie_error_set(err, EIE_STATUS_BAD_FORMAT, "%s: %s holds %zu values, its shape says %zu",
                         what, field, have, want);
}

eie_status_t eie_onnx_tensor_floats(const Onnx__TensorProto *t, const char *what, size_t count,
                                    float **data_out, eie_error_t *err)
{
    int32_t type = t->has_data_type ? t->data_type : 0;
    if (type != EIE_ONNX_FLOAT && type != EIE_ONNX_DOUBLE)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "%s has data type %d; eie reads float (1) and double (11) weights",
                             what, (int)type);
    /* The data must be there before anything is allocated for it: count comes
     * from the dims, which cost a few bytes however large they claim to be. */
    size_t elem = type == EIE_ONNX_FLOAT ? 4 : 8;
    int raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw && t->raw_data.len != count * elem)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: raw_data has %zu bytes, its shape needs %zu", what,
                             t->raw_data.len, count * elem);
    if (!raw && type == EIE_ONNX_FLOAT && t->n_float_data != count)
        return wrong_length(what, "float_data", t->n_float_data, count, err);
    if (!raw && type == EIE_ONNX_DOUBLE && t->n_double_data != count)
        return wrong_length(what, "double_data", t->n_double_data, count, err);
    float *out = malloc(count ? count * sizeof *out : 1);
    if (out == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %s", what);
    if (raw) {
        /* ONNX raw_data is little-endian, as is every host eie builds on. */
        for (size_t i = 0; i < count; i++) {
            if (type == EIE_ONNX_FLOAT) {
                memcpy(&out[i], t->raw_data.data + 4 * i, 4);
            } else {
                double d;
                memcpy(&d, t->raw_data.data + 8 * i, 8);
                out[i] = (float)d;
            }
        }
    } else if (type == EIE_ONNX_FLOAT) {
        if (count)
            memcpy(out, t->float_data, count * sizeof *out);
    } else {
        for (size_t i = 0; i < count; i++)
            out[i] = (float)t->double_data[i];
    }
    *data_out = out;
    return EIE_STATUS_OK;
}

eie_status_t eie_onnx_tensor_int64s(const Onnx__TensorProto *t, const char *what, size_t count,
                                    int64_t **data_out, eie_error_t *err)
{
    int32_t type = t->has_data_type ? t->data_type : 0;
    if (type != EIE_ONNX_INT64)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED, "%s has data type %d, expected int64 (7)",
                             what, (int)type);
    int raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw && t->raw_data.len != count * 8)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT,
                             "%s: raw_data has %zu bytes, its shape needs %zu", what,
                             t->raw_data.len, count * 8);
    if (!raw && t->n_int64_data != count)
        return wrong_length(what, "int64_data", t->n_int64_data, count, err);
    int64_t *out = malloc(count ? count * sizeof *out : 1);
    if (out == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %s", what);
    if (count)
        memcpy(out, raw ? (const void *)t->raw_data.data : (const void *)t->int64_data,
               count * sizeof *out);
    *data_out = out;
    return EIE_STATUS_OK;
}

eie_status_t eie_onnx_tensor_load_memory(const void *data, size_t len,
                                         eie_onnx_tensor_t **tensor_out, eie_error_t *err)
{
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, data);
    if (t == NULL)
        return eie_error_set(err, EIE_STATUS_BAD_FORMAT, "not a TensorProto (protobuf parse failed)");
    eie_onnx_tensor_t *out = calloc(1, sizeof *out);
    eie_status_t st;
    if (out == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a tensor");
        goto error;
    }
    snprintf(out->name, sizeof out->name, "%s", t->name ? t->name : "");
    if ((st = eie_onnx_tensor_shape(t, "tensor", &out->rank, out->dims, &out->count, err)) ||
        (st = eie_onnx_tensor_floats(t, "tensor", out->count, &out->data, err)))
        goto error;
    onnx__tensor_proto__free_unpacked(t, NULL);
    *tensor_out = out;
    return EIE_STATUS_OK;
error:
    onnx__tensor_proto__free_unpacked(t, NULL);
    eie_onnx_tensor_free(out);
    return st;
}

eie_status_t eie_onnx_tensor_load_file(const char *path, eie_onnx_tensor_t **tensor_out,
                                       eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st = eie_file_read(path, EIE_ONNX_MAX_FILE, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eie_onnx_tensor_load_memory(data, len, tensor_out, err);
    if (st != EIE_STATUS_OK)
        eie_error_prefix(err, "%s: ", path);
    free(data);
    return st;
}

void eie_onnx_tensor_free(eie_onnx_tensor_t *tensor)
{
    if (tensor == NULL)
        return;
    free(tensor->data);
    free(tensor);
}

eie_status_t eie_onnx_const_floats(const Onnx__TensorProto *t, const eie_onnx_tensor_t *bound,
                                   const char *what, uint32_t *rank_out, int64_t *dims_out,
                                   size_t *count_out, float **data_out, eie_error_t *err)
{
    if (bound != NULL) {
        *rank_out = bound->rank;
        memcpy(dims_out, bound->dims, sizeof bound->dims);
        *count_out = bound->count;
        *data_out = malloc(*count_out ? *count_out * sizeof **data_out : 1);
        if (*data_out == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for %s", what);
        if (*count_out)
            memcpy(*data_out, bound->data, *count_out * sizeof **data_out);
        return EIE_STATUS_OK;
    }
    eie_status_t st = eie_onnx_tensor_shape(t, what, rank_out, dims_out, count_out, err);
    if (st == EIE_STATUS_OK)
        st = eie_onnx_tensor_floats(t, what, *count_out, data_out, err);
    return st;
}
