/* Server calls: reference counting, reading requests, sending replies; see call.h. */
#include "call.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "wire_status.h"

eied_call_t *eied_call_new(eied_server_t *srv, struct eied_listener *listener,
                           const struct method_slot *slot, eied_call_freed_fn freed)
{
    eied_call_t *call = calloc(1, sizeof *call);
    if (call == NULL)
        return NULL;
    atomic_init(&call->refs, 1);
    call->srv = srv;
    call->listener = listener;
    call->freed = freed;
    call->slot = slot;
    grpc_metadata_array_init(&call->request_md);
    if (slot == NULL)
        grpc_call_details_init(&call->details);
    return call;
}

eied_call_t *eied_call_new_local(const uint8_t *request, size_t len, gpr_timespec deadline,
                                 void (*done)(void *ctx, const struct eied_wire_status *failed,
                                              const uint8_t *reply, size_t len),
                                 void *ctx)
{
    eied_call_t *call = eied_call_new(NULL, NULL, NULL, NULL);
    if (call == NULL)
        return NULL;
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)request, len);
    call->payload = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    call->deadline = deadline;
    call->arrived_ns = eied_now_ns();
    call->local_done = done;
    call->local_ctx = ctx;
    call->sent_initial_md = true;
    return call;
}

bool eied_call_local_peer(eied_call_t *call, const char *names)
{
    free(call->local_peer_names);
    call->local_peer_names = strdup(names);
    return call->local_peer_names != NULL;
}

bool eied_call_local_metadata(eied_call_t *call, const char *key, const char *value)
{
    grpc_metadata_array *md = &call->request_md;
    if (md->count == md->capacity) {
        size_t cap = md->capacity ? md->capacity * 2 : 4;
        grpc_metadata *grown = gpr_realloc(md->metadata, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        md->metadata = grown;
        md->capacity = cap;
    }
    grpc_metadata *m = &md->metadata[md->count++];
    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_copied_string(key);
    m->value = grpc_slice_from_copied_string(value);
    return true;
}

/* A local call's answer, serialised, to its front end; ends the call. */
static void local_answer(eied_call_t *call, const ProtobufCMessage *msg,
                         const eied_wire_status_t *failed)
{
    if (call->finished)
        return;
    call->finished = true;
    uint8_t *bytes = NULL;
    size_t n = 0;
    eied_wire_status_t oom = {.grpc_code = GRPC_STATUS_RESOURCE_EXHAUSTED, .http_status = 503,
                              .message = "out of memory"};
    if (msg != NULL) {
        n = protobuf_c_message_get_packed_size(msg);
        if ((bytes = malloc(n ? n : 1)) == NULL)
            failed = &oom;
        else
            protobuf_c_message_pack(msg, bytes);
    }
    call->local_done(call->local_ctx, failed, failed ? NULL : bytes, failed ? 0 : n);
    free(bytes);
}

void eied_call_ref(eied_call_t *call)
{
    atomic_fetch_add(&call->refs, 1);
}

static void call_destroy(eied_call_t *call)
{
    if (call->freed != NULL)
        call->freed(call); /* before the grpc_call goes: the server reads call->call */
    if (call->call != NULL)
        grpc_call_unref(call->call);
    if (call->payload != NULL)
        grpc_byte_buffer_destroy(call->payload);
    if (call->send_buf != NULL)
        grpc_byte_buffer_destroy(call->send_buf);
    if (call->recv_buf != NULL)
        grpc_byte_buffer_destroy(call->recv_buf);
    if (call->has_status_details)
        grpc_slice_unref(call->status_details);
    free(call->local_peer_names);
    if (call->local_done != NULL) /* a local call's metadata slices are its own */
        for (size_t i = 0; i < call->request_md.count; i++) {
            grpc_slice_unref(call->request_md.metadata[i].key);
            grpc_slice_unref(call->request_md.metadata[i].value);
        }
    grpc_metadata_array_destroy(&call->request_md);
    if (call->slot == NULL)
        grpc_call_details_destroy(&call->details);
    free(call);
}

void eied_call_unref(eied_call_t *call)
{
    if (atomic_fetch_sub(&call->refs, 1) == 1)
        call_destroy(call);
}

ProtobufCMessage *eied_unpack_buffer(grpc_byte_buffer *buf, const ProtobufCMessageDescriptor *desc,
                                     size_t *len_out)
{
    grpc_byte_buffer_reader reader;
    *len_out = 0;
    if (!grpc_byte_buffer_reader_init(&reader, buf)) {
        grpc_byte_buffer_destroy(buf);
        return NULL;
    }
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
    *len_out = GRPC_SLICE_LENGTH(slice);
    grpc_slice_unref(slice);
    grpc_byte_buffer_destroy(buf);
    return msg;
}

/* Message size is capped by gRPC (max_receive_message_size) before it reaches here. */
ProtobufCMessage *eied_call_read(eied_call_t *call, const ProtobufCMessageDescriptor *desc)
{
    if (call->payload == NULL) {
        eied_call_fail(call, EIE_STATUS_INVALID_ARGUMENT, "request has no message");
        return NULL;
    }
    size_t len;
    ProtobufCMessage *msg = eied_unpack_buffer(call->payload, desc, &len);
    call->payload = NULL;
    if (msg == NULL) {
        eied_call_fail(call, EIE_STATUS_INVALID_ARGUMENT,
                       "request message (%zu bytes) is not a valid %s", len, desc->name);
        return NULL;
    }
    return msg;
}

static void send_tag_done(eied_tag_t *tag, bool ok)
{
    eied_call_t *call = (eied_call_t *)((char *)tag - offsetof(eied_call_t, send_tag));
    if (call->send_buf != NULL) {
        grpc_byte_buffer_destroy(call->send_buf);
        call->send_buf = NULL;
    }
    atomic_store(&call->send_started_ns, 0);
    eied_send_done_fn done = call->send_done;
    call->send_done = NULL;
    if (done != NULL)
        done(call, ok);
    eied_call_unref(call);
}

static grpc_byte_buffer *pack(const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice slice = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *buf = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice); /* the byte buffer holds its own reference */
    return buf;
}

/* Starts one batch of up to three ops: initial metadata, a message, a status. */
static void start_send(eied_call_t *call, const ProtobufCMessage *msg, bool with_status,
                       grpc_status_code code, const char *detail)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!call->sent_initial_md) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 0;
        n++;
        call->sent_initial_md = true;
    }
    if (msg != NULL) {
        call->send_buf = pack(msg);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = call->send_buf;
        n++;
    }
    if (with_status) {
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.trailing_metadata_count = 0;
        ops[n].data.send_status_from_server.status = code;
        if (detail != NULL && *detail != '\0') {
            call->status_details = grpc_slice_from_copied_string(detail);
            call->has_status_details = true;
            ops[n].data.send_status_from_server.status_details = &call->status_details;
        }
        n++;
        call->finished = true;
    }
    call->send_tag.fn = send_tag_done;
    eied_call_ref(call);
    atomic_store(&call->send_started_ns, eied_now_ns());
    grpc_call_error rc = grpc_call_start_batch(call->call, ops, n, &call->send_tag, NULL);
    if (rc != GRPC_CALL_OK) {
        /* a programming error (e.g. two sends at once); the tag will never fire */
        eied_log(EIED_LOG_ERROR, "grpc_call_start_batch failed", "error",
                 grpc_call_error_to_string(rc), NULL);
        if (call->send_buf != NULL) {
            grpc_byte_buffer_destroy(call->send_buf);
            call->send_buf = NULL;
        }
        call->send_done = NULL;
        atomic_store(&call->send_started_ns, 0);
        eied_call_unref(call);
    }
}

void eied_call_reply(eied_call_t *call, const ProtobufCMessage *msg)
{
    if (call->local_done != NULL)
        local_answer(call, msg, NULL);
    else
        start_send(call, msg, true, GRPC_STATUS_OK, NULL);
    eied_call_unref(call);
}

void eied_call_fail_error(eied_call_t *call, const eie_error_t *err)
{
    eied_wire_status_t w = eied_wire_status(err);
    if (call->local_done != NULL)
        local_answer(call, NULL, &w);
    else
        start_send(call, NULL, true, (grpc_status_code)w.grpc_code, w.message);
    eied_call_unref(call);
}

void eied_call_fail(eied_call_t *call, eie_status_t status, const char *fmt, ...)
{
    eie_error_t err = {.status = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    eied_call_fail_error(call, &err);
}

bool eied_call_send(eied_call_t *call, const ProtobufCMessage *msg, eied_send_done_fn done)
{
    if (call->send_buf != NULL || call->finished || call->local_done != NULL)
        return false;
    call->send_done = done;
    start_send(call, msg, false, GRPC_STATUS_OK, NULL);
    return true;
}

static void recv_tag_done(eied_tag_t *tag, bool ok)
{
    eied_call_t *call = (eied_call_t *)((char *)tag - offsetof(eied_call_t, recv_tag));
    grpc_byte_buffer *msg = call->recv_buf;
    call->recv_buf = NULL;
    if (!ok && msg != NULL) {
        grpc_byte_buffer_destroy(msg);
        msg = NULL;
    }
    eied_recv_done_fn done = call->recv_done;
    call->recv_done = NULL;
    done(call, msg);
    eied_call_unref(call);
}

bool eied_call_recv(eied_call_t *call, eied_recv_done_fn done)
{
    if (call->local_done != NULL)
        return false;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &call->recv_buf;
    call->recv_done = done;
    call->recv_tag.fn = recv_tag_done;
    eied_call_ref(call);
    if (grpc_call_start_batch(call->call, &op, 1, &call->recv_tag, NULL) != GRPC_CALL_OK) {
        call->recv_done = NULL;
        eied_call_unref(call);
        return false;
    }
    return true;
}

void eied_call_finish(eied_call_t *call, eie_status_t status, const char *detail)
{
    eie_error_t err = {.status = status};
    if (detail != NULL)
        snprintf(err.msg, sizeof err.msg, "%s", detail);
    eied_wire_status_t w = eied_wire_status(&err);
    if (call->local_done != NULL)
        local_answer(call, NULL, &w);
    else
        start_send(call, NULL, true, (grpc_status_code)w.grpc_code,
                   status == EIE_STATUS_OK ? detail : w.message);
    eied_call_unref(call);
}

bool eied_call_metadata(const eied_call_t *call, const char *key, const char **value_out,
                        size_t *len_out)
{
    size_t key_len = strlen(key);
    for (size_t i = 0; i < call->request_md.count; i++) {
        const grpc_metadata *md = &call->request_md.metadata[i];
        if (GRPC_SLICE_LENGTH(md->key) == key_len &&
            memcmp(GRPC_SLICE_START_PTR(md->key), key, key_len) == 0) {
            *value_out = (const char *)GRPC_SLICE_START_PTR(md->value);
            *len_out = GRPC_SLICE_LENGTH(md->value);
            return true;
        }
    }
    return false;
}
