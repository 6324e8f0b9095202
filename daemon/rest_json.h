/*
 * rest_json.h - the KServe v2 REST inference body <-> the gRPC messages.
 *
 * The REST front end transcodes: a JSON inference request (with Triton's
 * binary tensor extension) becomes the serialised inference.ModelInferRequest
 * the gRPC front end receives, and the serialised ModelInferResponse becomes
 * the JSON (and binary) answer. Validation, batching and errors are then the
 * gRPC path's own, so both protocols answer alike, bit for bit. JSON is
 * parsed with jansson; float32 values are written with 9 significant digits,
 * which read back to the same float.
 *
 *     eied_rest_infer_t t;
 *     if (eied_rest_infer_decode(body, len, json_len, "lenet", "", &t, &err) != EIE_STATUS_OK)
 *         answer 400 {"error": err.msg};
 *     ... run t.request (t.request_len bytes) as a ModelInfer call, get resp ...
 *     eied_rest_infer_encode(&t, resp, resp_len, &out, &out_len, &out_json_len, &err);
 *     eied_rest_infer_free(&t);
 */
#ifndef EIED_REST_JSON_H
#define EIED_REST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"

/* Depth of nested "data" arrays accepted (a tensor of rank up to this). */
#define EIED_REST_MAX_DEPTH 32

typedef struct {
    uint8_t *request;        /* serialised inference.ModelInferRequest */
    size_t request_len;
    void *outputs;           /* the request's "outputs" (a jansson array), or NULL */
    bool binary_all;         /* "parameters": {"binary_data_output": true} */
} eied_rest_infer_t;

/*
 * Decodes an inference request body. json_len: the length of its JSON part
 * (Triton's Inference-Header-Content-Length), the rest being the binary
 * tensors its inputs' "binary_data_size" parameters announce; 0: the whole
 * body is JSON. model, version: from the URL ("" for any version). Errors
 * name the field and say what was expected.
 */
eie_status_t eied_rest_infer_decode(const uint8_t *body, size_t len, size_t json_len,
                                    const char *model, const char *version,
                                    eied_rest_infer_t *out, eie_error_t *err);

/*
 * Encodes a serialised ModelInferResponse as the REST answer: JSON, then the
 * binary data of the outputs asked for in binary (request-wide or per
 * output "binary_data"), in output order. *json_len_out: the JSON part's
 * length, equal to *len_out when nothing is binary (otherwise send it as
 * Inference-Header-Content-Length). The caller frees *body_out.
 */
eie_status_t eied_rest_infer_encode(const eied_rest_infer_t *req, const uint8_t *response,
                                    size_t response_len, uint8_t **body_out, size_t *len_out,
                                    size_t *json_len_out, eie_error_t *err);

void eied_rest_infer_free(eied_rest_infer_t *t);

/*
 * Any reply message as JSON by the proto3 JSON mapping with the proto's own
 * field names (as KServe's REST API spells them): scalars, strings, repeated
 * fields as arrays, maps as objects, a oneof by its set member, nested
 * messages as objects. Returns a jansson json_t * (as void *, so callers need
 * not include jansson); NULL when out of memory. Free with eied_rest_json_free.
 */
struct ProtobufCMessage;
void *eied_rest_message_json(const struct ProtobufCMessage *msg);
/* Serialises what eied_rest_message_json returned (compact) and frees it; NULL when out of
   memory. */
char *eied_rest_json_dump_free(void *json);

/* Takes member key out of the JSON object json (freeing the rest); NULL if absent. */
void *eied_rest_json_take(void *json, const char *key);
/* Reads boolean member key of a JSON object body into *out (absent: false); false if the
   body is not an object or the member not a bool. */
bool eied_rest_body_flag(const uint8_t *body, size_t len, const char *key, int *out);

/* {"error": msg} as a malloc'd string (msg escaped). */
char *eied_rest_error_body(const char *msg);

#endif
