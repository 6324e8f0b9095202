/* Shared pieces of eiectl's remote commands; see remote.h. */
#include "remote.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "report.h"

void eiectl_remote_opts_init(eiectl_remote_opts_t *opts)
{
    const char *env_addr = getenv("EIECTL_ADDR");
    opts->addr = env_addr != NULL ? env_addr : "127.0.0.1:8001";
    opts->timeout_s = 10.0;
    opts->token_file = NULL;
    eiectl_tls_opts_init(&opts->tls);
}

bool eiectl_parse_seconds(const char *s, double max, double *seconds_out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0)
        return false;
    double scale = 1;
    if (strcmp(end, "ms") == 0)
        scale = 1e-3;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60;
    else if (strcmp(end, "h") == 0)
        scale = 3600;
    else
        return false;
    v *= scale;
    if (!(v > 0 && v <= max)) /* also refuses NaN */
        return false;
    *seconds_out = v;
    return true;
}

int eiectl_remote_opt(const char *cmd, int opt, const char *arg, eiectl_remote_opts_t *opts)
{
    switch (opt) {
    case 'a':
        if (arg[0] == '\0')
            return eiectl_usage_error(cmd, "--addr is empty");
        opts->addr = arg;
        return 1;
    case 't':
        if (!eiectl_parse_seconds(arg, 3600, &opts->timeout_s))
            return eiectl_usage_error(cmd, "--timeout '%s' is not a number of seconds in "
                                       "(0, 3600]", arg);
        return 1;
    case 'T':
        opts->token_file = arg;
        return 1;
    default:
        return eiectl_tls_opt(cmd, opt, arg, &opts->tls);
    }
}

eie_status_t eiectl_token_read_file(const char *path, char *token_out, size_t cap, eie_error_t *err)
{
    uint8_t *data;
    size_t len;
    eie_status_t st = eiectl_read_file_limited(path, EIECTL_TOKEN_MAX_BYTES, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    size_t a = 0, b = 0;
    while (a < len && (data[a] == ' ' || data[a] == '\t'))
        a++;
    b = a;
    while (b < len && data[b] != '\n' && data[b] != '\r')
        b++;
    while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t'))
        b--;
    if (a == b) {
        st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                           "%s: the first line is empty; expected a token", path);
    } else if (b - a >= cap) {
        st = eie_error_set(err, EIE_STATUS_LIMIT,
                           "%s: token of %zu bytes is longer than the %zu allowed", path, b - a,
                           cap - 1);
    } else {
        for (size_t i = a; i < b; i++) {
            if (data[i] < 0x21 || data[i] > 0x7E) {
                st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                   "%s: byte %zu of the token (0x%02x) is not visible ASCII", path,
                                   i - a + 1, data[i]);
                break;
            }
        }
        if (st == EIE_STATUS_OK) {
            memcpy(token_out, data + a, b - a);
            token_out[b - a] = '\0';
        }
    }
    free(data);
    return st;
}

bool eiectl_remote_open(const char *cmd, const eiectl_remote_opts_t *opts, eiectl_rpc_t *rpc)
{
    char token[EIECTL_TOKEN_MAX_BYTES + 1];
    eie_error_t err;
    eiectl_channel_t conn;
    if (opts->addr[0] == '\0') {
        fprintf(stderr, "eiectl %s: EIECTL_ADDR is empty; expected HOST:PORT\n", cmd);
        return false;
    }
    if (eiectl_channel_init(&conn, opts->addr, &opts->tls, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl %s: %s\n", cmd, err.msg);
        return false;
    }
    if (opts->token_file != NULL &&
        (eiectl_token_allowed(&conn, opts->tls.insecure_token, opts->token_file, &err) !=
             EIE_STATUS_OK ||
         eiectl_token_read_file(opts->token_file, token, sizeof token, &err) != EIE_STATUS_OK)) {
        fprintf(stderr, "eiectl %s: %s\n", cmd, err.msg);
        eiectl_channel_free(&conn);
        return false;
    }
    if (!eiectl_rpc_open_channel(rpc, &conn, opts->timeout_s)) {
        fprintf(stderr, "eiectl %s: cannot open a channel to %s\n", cmd, opts->addr);
        eiectl_rpc_close(rpc);
        return false;
    }
    if (opts->token_file != NULL) {
        char value[sizeof token + 8];
        snprintf(value, sizeof value, "Bearer %s", token);
        if (!eiectl_rpc_add_metadata(rpc, "authorization", value)) {
            fprintf(stderr, "eiectl %s: %s: cannot send the token as metadata\n", cmd,
                    opts->token_file);
            eiectl_rpc_close(rpc);
            return false;
        }
    }
    return true;
}

void eiectl_remote_print_error(const char *cmd, const char *addr, const eiectl_rpc_status_t *st)
{
    fprintf(stderr, "eiectl %s: %s: %s%s%s\n", cmd, addr, eiectl_rpc_code_name(st->code),
            st->detail[0] ? ": " : "", st->detail);
}

eie_status_t eiectl_model_input_from_metadata(const Inference__ModelMetadataResponse *md,
                                              eiectl_model_input_t *input_out, eie_error_t *err)
{
    const char *model = md->name != NULL ? md->name : "";
    if (md->n_inputs == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "model '%s' declares no inputs",
                             model);
    if (md->n_inputs > 1)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "model '%s' declares %zu inputs; eiectl sends one", model,
                             md->n_inputs);
    const Inference__ModelMetadataResponse__TensorMetadata *t = md->inputs[0];
    const char *name = t->name != NULL ? t->name : "";
    if (name[0] == '\0' || strlen(name) >= sizeof input_out->name)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "model '%s' input name '%.64s' is empty or longer than %zu "
                             "bytes",
                             model, name, sizeof input_out->name - 1);
    if (t->datatype == NULL || strcmp(t->datatype, "FP32") != 0)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "model '%s' input '%s' has datatype '%s'; eiectl sends FP32", model,
                             name, t->datatype != NULL ? t->datatype : "");
    int64_t features;
    if (t->n_shape == 2) {
        features = t->shape[1];
    } else if (t->n_shape == 1) {
        features = t->shape[0];
    } else if (t->n_shape >= 3 && t->n_shape <= 8) {
        /* [B, C, H, W] and the like: a row is one sample */
        features = 1;
        for (size_t d = 1; d < t->n_shape; d++) {
            if (t->shape[d] <= 0 || (uint64_t)t->shape[d] > EIECTL_INPUT_MAX_COLS)
                return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                                     "model '%s' input '%s' has dimension %zu of %" PRId64
                                     "; eiectl needs fixed sizes",
                                     model, name, d, t->shape[d]);
            features *= t->shape[d];
            if ((uint64_t)features > EIECTL_INPUT_MAX_COLS)
                break;
        }
    } else {
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "model '%s' input '%s' has %zu dimensions; eiectl sends "
                             "1 to 8",
                             model, name, t->n_shape);
    }
    if (features <= 0 || (uint64_t)features > EIECTL_INPUT_MAX_COLS)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "model '%s' input '%s' has %" PRId64 " features; eiectl "
                             "needs a fixed count in [1, %zu]",
                             model, name, features, EIECTL_INPUT_MAX_COLS);
    strcpy(input_out->name, name);
    input_out->features = (size_t)features;
    input_out->rank = t->n_shape;
    for (size_t d = 0; d < t->n_shape; d++)
        input_out->shape[d] = t->shape[d];
    return EIE_STATUS_OK;
}

void eiectl_infer_request_set_shape(eiectl_infer_request_t *req, size_t rank,
                                    const int64_t *shape)
{
    for (size_t d = 1; d < rank && d < 8; d++)
        req->shape[d] = shape[d];
    req->input.n_shape = rank < 8 ? rank : 8;
}

bool eiectl_model_metadata_fetch(const char *cmd, eiectl_rpc_t *rpc, const char *addr,
                                 const char *model, const char *version,
                                 Inference__ModelMetadataResponse **md_out)
{
    Inference__ModelMetadataRequest req = INFERENCE__MODEL_METADATA_REQUEST__INIT;
    req.name = (char *)model;
    req.version = (char *)version;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    if (!eiectl_rpc_call(rpc, "/inference.GRPCInferenceService/ModelMetadata", &req.base,
                         &inference__model_metadata_response__descriptor, &resp, &st)) {
        eiectl_remote_print_error(cmd, addr, &st);
        return false;
    }
    *md_out = (Inference__ModelMetadataResponse *)resp;
    return true;
}

bool eiectl_model_input_fetch(const char *cmd, eiectl_rpc_t *rpc, const char *addr,
                              const char *model, const char *version,
                              eiectl_model_input_t *input_out)
{
    Inference__ModelMetadataResponse *md;
    if (!eiectl_model_metadata_fetch(cmd, rpc, addr, model, version, &md))
        return false;
    eie_error_t err;
    bool ok = eiectl_model_input_from_metadata(md, input_out, &err) == EIE_STATUS_OK;
    if (!ok)
        fprintf(stderr, "eiectl %s: %s: %s\n", cmd, addr, err.msg);
    protobuf_c_message_free_unpacked(&md->base, NULL);
    return ok;
}

bool eiectl_infer_request_init(eiectl_infer_request_t *req, const char *model,
                               const char *version, const char *id, const char *input_name,
                               const float *values, size_t rows, size_t cols)
{
    inference__model_infer_request__init(&req->msg);
    inference__model_infer_request__infer_input_tensor__init(&req->input);
    size_t count = rows * cols;
    uint8_t *raw = malloc(count * 4 + 1);
    if (raw == NULL)
        return false;
    /* The protocol's raw contents are little-endian whatever the host is. */
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &values[i], 4);
        raw[4 * i] = (uint8_t)u;
        raw[4 * i + 1] = (uint8_t)(u >> 8);
        raw[4 * i + 2] = (uint8_t)(u >> 16);
        raw[4 * i + 3] = (uint8_t)(u >> 24);
    }
    req->shape[0] = (int64_t)rows;
    req->shape[1] = (int64_t)cols;
    req->input.name = (char *)input_name;
    req->input.datatype = (char *)"FP32";
    req->input.n_shape = 2;
    req->input.shape = req->shape;
    req->inputs[0] = &req->input;
    req->raw[0].data = raw;
    req->raw[0].len = count * 4;
    req->msg.model_name = (char *)model;
    req->msg.model_version = (char *)(version != NULL ? version : "");
    req->msg.id = (char *)(id != NULL ? id : "");
    req->msg.n_inputs = 1;
    req->msg.inputs = req->inputs;
    req->msg.n_raw_input_contents = 1;
    req->msg.raw_input_contents = req->raw;
    return true;
}

void eiectl_infer_request_free(eiectl_infer_request_t *req)
{
    free(req->raw[0].data);
    req->raw[0].data = NULL;
}

void eiectl_infer_outputs_free(eiectl_infer_output_t *outputs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(outputs[i].data);
        outputs[i].data = NULL;
    }
}

/* Values of one sample of an N-D output, or 0 if a dimension is negative or it is too big. */
static size_t nd_sample(const Inference__ModelInferResponse__InferOutputTensor *t)
{
    uint64_t n = 1;
    for (size_t d = 1; d < t->n_shape; d++) {
        if (t->shape[d] < 0 || (uint64_t)t->shape[d] > EIECTL_INPUT_MAX_VALUES)
            return 0;
        n *= (uint64_t)t->shape[d];
        if (n > EIECTL_INPUT_MAX_VALUES)
            return 0;
    }
    return (size_t)n;
}

/* The rows output name has: the batch's, or the fixed leading dimension md declares. */
static size_t output_rows(const Inference__ModelMetadataResponse *md, const char *name,
                          size_t rows)
{
    for (size_t i = 0; md != NULL && i < md->n_outputs; i++) {
        const Inference__ModelMetadataResponse__TensorMetadata *o = md->outputs[i];
        if (o->name != NULL && strcmp(o->name, name) == 0 && o->n_shape >= 2 &&
            o->shape[0] >= 0)
            return (size_t)o->shape[0];
    }
    return rows;
}

eie_status_t eiectl_infer_response_decode(const Inference__ModelInferResponse *resp,
                                          size_t batch_rows,
                                          const Inference__ModelMetadataResponse *md,
                                          eiectl_infer_output_t *outputs_out, size_t *count_out,
                                          eie_error_t *err)
{
    eie_status_t st;
    *count_out = 0;
    if (resp->n_outputs == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "reply has no outputs");
    if (resp->n_outputs > EIECTL_INFER_MAX_OUTPUTS)
        return eie_error_set(err, EIE_STATUS_LIMIT,
                             "reply has %zu outputs, more than the %d eiectl reads",
                             resp->n_outputs, EIECTL_INFER_MAX_OUTPUTS);
    if (resp->n_raw_output_contents != 0 && resp->n_raw_output_contents != resp->n_outputs)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "reply has %zu outputs but %zu raw_output_contents", resp->n_outputs,
                             resp->n_raw_output_contents);
    for (size_t o = 0; o < resp->n_outputs; o++) {
        const Inference__ModelInferResponse__InferOutputTensor *t = resp->outputs[o];
        const char *name = t->name != NULL ? t->name : "";
        eiectl_infer_output_t *out = &outputs_out[o];
        memset(out, 0, sizeof *out);
        out->name = name;
        size_t rows = output_rows(md, name, batch_rows);
        if (t->datatype == NULL || strcmp(t->datatype, "FP32") != 0) {
            st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                               "output '%s' has datatype '%s'; eiectl reads FP32", name,
                               t->datatype != NULL ? t->datatype : "");
            goto error;
        }
        size_t cols;
        if (t->n_shape == 2 && t->shape[0] >= 0 && (uint64_t)t->shape[0] == rows &&
            t->shape[1] >= 0 && (uint64_t)t->shape[1] <= EIECTL_INPUT_MAX_VALUES) {
            cols = (size_t)t->shape[1];
        } else if (t->n_shape == 1 && rows == 1 && t->shape[0] >= 0 &&
                   (uint64_t)t->shape[0] <= EIECTL_INPUT_MAX_VALUES) {
            cols = (size_t)t->shape[0];
        } else if (t->n_shape > 2 && t->shape[0] >= 0 && (uint64_t)t->shape[0] == rows &&
                   (cols = nd_sample(t)) > 0) {
            /* [rows, d1, d2, ...]: a row is one flattened sample */
        } else {
            char shape[96] = "";
            size_t used = 0;
            for (size_t d = 0; d < t->n_shape && d < 4 && used < sizeof shape; d++)
                used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%" PRId64,
                                         d ? ", " : "", t->shape[d]);
            st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                               "output '%s' has shape [%s%s]; expected [%zu, N] for %zu rows", name,
                               shape, t->n_shape > 4 ? ", ..." : "", rows, rows);
            goto error;
        }
        size_t count = rows * cols;
        if (count > EIECTL_INPUT_MAX_VALUES) {
            st = eie_error_set(err, EIE_STATUS_LIMIT,
                               "output '%s' has %zu values, more than the %zu eiectl reads", name,
                               count, EIECTL_INPUT_MAX_VALUES);
            goto error;
        }
        out->data = malloc(count * sizeof(float) + 1);
        if (out->data == NULL) {
            st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "output '%s': out of memory", name);
            goto error;
        }
        if (resp->n_raw_output_contents != 0) {
            const ProtobufCBinaryData *raw = &resp->raw_output_contents[o];
            if (raw->len != count * 4) {
                st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                   "output '%s' has %zu bytes of raw contents, its shape "
                                   "needs %zu",
                                   name, raw->len, count * 4);
                free(out->data);
                out->data = NULL;
                goto error;
            }
            for (size_t i = 0; i < count; i++) {
                const uint8_t *p = raw->data + 4 * i;
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24;
                memcpy(&out->data[i], &u, 4);
            }
        } else {
            size_t have = t->contents != NULL ? t->contents->n_fp32_contents : 0;
            if (have != count) {
                st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                   "output '%s' has %zu fp32_contents, its shape needs %zu", name,
                                   have, count);
                free(out->data);
                out->data = NULL;
                goto error;
            }
            if (count)
                memcpy(out->data, t->contents->fp32_contents, count * sizeof(float));
        }
        out->rows = rows;
        out->cols = cols;
        *count_out = o + 1;
    }
    return EIE_STATUS_OK;
error:
    eiectl_infer_outputs_free(outputs_out, *count_out);
    *count_out = 0;
    return st;
}

void eiectl_print_cell(FILE *out, const char *s, int width)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++, n++)
        fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, out);
    for (; n < width; n++)
        fputc(' ', out);
}

void eiectl_infer_print_text(FILE *out, const eiectl_infer_output_t *outputs, size_t n,
                             size_t top_k)
{
    for (size_t o = 0; o < n; o++) {
        const eiectl_infer_output_t *t = &outputs[o];
        if (n > 1) {
            fputs(o ? "\noutput " : "output ", out);
            eiectl_print_cell(out, t->name, 0);
            fputc('\n', out);
        }
        if (top_k == 0) {
            for (size_t r = 0; r < t->rows; r++) {
                for (size_t c = 0; c < t->cols; c++)
                    fprintf(out, "%s%.9g", c ? " " : "", (double)t->data[r * t->cols + c]);
                fputc('\n', out);
            }
            continue;
        }
        size_t k = top_k < t->cols ? top_k : t->cols;
        size_t *idx = malloc((k ? k : 1) * sizeof *idx);
        if (idx == NULL)
            return;
        fprintf(out, "%-6s %-5s %-8s %s\n", "row", "rank", "index", "score");
        for (size_t r = 0; r < t->rows; r++) {
            const float *v = t->data + r * t->cols;
            size_t got = eiectl_top_k(v, t->cols, k, idx);
            for (size_t j = 0; j < got; j++)
                fprintf(out, "%-6zu %-5zu %-8zu %.9g\n", r, j + 1, idx[j], (double)v[idx[j]]);
        }
        free(idx);
    }
}

void eiectl_json_infer_parameter(FILE *out, const Inference__InferParameter *p)
{
    if (p == NULL) {
        fputs("null", out);
        return;
    }
    switch (p->parameter_choice_case) {
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM:
        fputs(p->bool_param ? "true" : "false", out);
        break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM:
        fprintf(out, "%" PRId64, p->int64_param);
        break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM:
        eiectl_json_string(out, p->string_param);
        break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM:
        eiectl_json_double(out, p->double_param);
        break;
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM:
        fprintf(out, "%" PRIu64, p->uint64_param);
        break;
    default:
        fputs("null", out);
        break;
    }
}

void eiectl_infer_print_json(FILE *out, const Inference__ModelInferResponse *resp,
                             const eiectl_infer_output_t *outputs, size_t n, size_t top_k)
{
    fputs("{\"model_name\":", out);
    eiectl_json_string(out, resp->model_name);
    fputs(",\"model_version\":", out);
    eiectl_json_string(out, resp->model_version);
    fputs(",\"id\":", out);
    eiectl_json_string(out, resp->id);
    fputs(",\"parameters\":{", out);
    for (size_t i = 0; i < resp->n_parameters; i++) {
        fputs(i ? "," : "", out);
        eiectl_json_string(out, resp->parameters[i]->key);
        fputc(':', out);
        eiectl_json_infer_parameter(out, resp->parameters[i]->value);
    }
    fputs("},\"outputs\":[", out);
    for (size_t o = 0; o < n; o++) {
        const eiectl_infer_output_t *t = &outputs[o];
        fputs(o ? ",{\"name\":" : "{\"name\":", out);
        eiectl_json_string(out, t->name);
        fprintf(out, ",\"datatype\":\"FP32\",\"shape\":[%zu,%zu],\"data\":[", t->rows, t->cols);
        for (size_t r = 0; r < t->rows; r++) {
            fputs(r ? ",[" : "[", out);
            for (size_t c = 0; c < t->cols; c++) {
                fputs(c ? "," : "", out);
                eiectl_json_float(out, t->data[r * t->cols + c]);
            }
            fputc(']', out);
        }
        fputc(']', out);
        if (top_k > 0) {
            size_t k = top_k < t->cols ? top_k : t->cols;
            size_t *idx = malloc((k ? k : 1) * sizeof *idx);
            fputs(",\"top_k\":[", out);
            for (size_t r = 0; idx != NULL && r < t->rows; r++) {
                const float *v = t->data + r * t->cols;
                size_t got = eiectl_top_k(v, t->cols, k, idx);
                fputs(r ? ",[" : "[", out);
                for (size_t j = 0; j < got; j++) {
                    fprintf(out, "%s{\"index\":%zu,\"score\":", j ? "," : "", idx[j]);
                    eiectl_json_float(out, v[idx[j]]);
                    fputc('}', out);
                }
                fputc(']', out);
            }
            fputc(']', out);
            free(idx);
        }
        fputc('}', out);
    }
    fputs("]}\n", out);
}

int eiectl_model_opts_parse(const char *cmd, int argc, char **argv, void (*usage)(FILE *out),
                            eiectl_remote_opts_t *ro, eiectl_model_opts_t *mo)
{
    static const struct option opts[] = {
        EIECTL_REMOTE_LONG_OPTS,
        {"model", required_argument, NULL, 'm'},
        {"version", required_argument, NULL, 'V'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    eiectl_remote_opts_init(ro);
    mo->model = NULL;
    mo->version = "";
    mo->json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:T:m:V:jh", opts, NULL)) != -1) {
        int r = eiectl_remote_opt(cmd, opt, optarg, ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        switch (opt) {
        case 'm':
            mo->model = optarg;
            break;
        case 'V':
            mo->version = optarg;
            break;
        case 'j':
            mo->json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}
