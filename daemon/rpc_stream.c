/*
 * rpc_stream.c - ModelStreamInfer, Triton's bidirectional inference stream:
 * each ModelInferRequest the client sends is answered by one
 * ModelStreamInferResponse, in order; a failed request is answered with
 * its error_message and the stream goes on.
 *
 * Each request runs through ModelInfer's own handler as a local call
 * (call.h), so validation, batching and messages are ModelInfer's. A stream
 * takes one request at a time (receive, run, send, then receive the next):
 * the order needs no bookkeeping, and a client that wants more in flight
 * opens more streams, as it would open more calls.
 */
#include <grpc/byte_buffer_reader.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "wire_status.h"

#define INFER_PATH "/inference.GRPCInferenceService/ModelInfer"

typedef struct {
    eied_app_t *app;
    eied_call_t *call;       /* the stream; its handler reference is ours */
    grpc_byte_buffer *next;  /* the request just received (CQ thread -> loop) */
    bool running;            /* a request's local call is outstanding */
    bool dead;               /* a send failed: the client is gone (CQ thread -> loop) */
    bool finished;           /* the stream's status has been sent */
    /* the answer of the request that ran (any thread -> loop) */
    bool failed;
    char error[EIE_ERROR_MSG_MAX];
    uint8_t *reply;
    size_t reply_len;
} stream_t;

static void on_message(eied_call_t *call, grpc_byte_buffer *msg);
static void on_sent(eied_call_t *call, bool ok);

/* Loop thread: ends the stream with status; frees it once nothing runs. */
static void end(stream_t *s, eie_status_t status, const char *detail)
{
    if (!s->finished) {
        s->finished = true;
        s->call->user = NULL;
        eied_call_finish(s->call, status, detail); /* drops the handler's reference */
    }
    if (!s->running) {
        free(s->reply);
        free(s);
    }
}

/* Loop thread: the answer is in; send it, then take the next request. */
static void after_run(void *arg)
{
    stream_t *s = arg;
    s->running = false;
    if (s->finished) { /* the stream ended while this request ran */
        end(s, EIE_STATUS_OK, NULL);
        return;
    }
    Inference__ModelStreamInferResponse resp = INFERENCE__MODEL_STREAM_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse *inner = NULL;
    if (s->failed) {
        resp.error_message = s->error;
    } else {
        inner = inference__model_infer_response__unpack(NULL, s->reply_len, s->reply);
        if (inner == NULL)
            resp.error_message = "internal error: the inference response does not parse";
        resp.infer_response = inner;
    }
    bool sent = eied_call_send(s->call, &resp.base, on_sent); /* packs resp at once */
    if (inner != NULL)
        inference__model_infer_response__free_unpacked(inner, NULL);
    free(s->reply);
    s->reply = NULL;
    if (!sent)
        end(s, EIE_STATUS_CANCELLED, "the stream could not send");
}

/* Any thread: the local call's answer. */
static void run_done(void *ctx, const eied_wire_status_t *failed, const uint8_t *reply,
                     size_t len)
{
    stream_t *s = ctx;
    s->failed = failed != NULL;
    if (failed != NULL) {
        snprintf(s->error, sizeof s->error, "%s", failed->message);
    } else if ((s->reply = malloc(len ? len : 1)) == NULL) {
        s->failed = true;
        snprintf(s->error, sizeof s->error, "out of memory");
    } else {
        memcpy(s->reply, reply, len);
        s->reply_len = len;
    }
    eied_server_post(s->app->server, after_run, s);
}

/* Loop thread: run the request just received, or end at the client's end of stream. */
static void after_recv(void *arg)
{
    stream_t *s = arg;
    grpc_byte_buffer *msg = s->next;
    s->next = NULL;
    if (s->dead) {
        end(s, EIE_STATUS_CANCELLED, "the stream could not send");
        return;
    }
    if (msg == NULL) { /* the client closed its side: every request has been answered */
        end(s, EIE_STATUS_OK, NULL);
        return;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, msg)) {
        grpc_byte_buffer_destroy(msg);
        end(s, EIE_STATUS_INVALID_ARGUMENT, "the request could not be read");
        return;
    }
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(msg);
    eied_handler_fn infer = eied_server_method_handler(s->app->server, INFER_PATH);
    eied_call_t *local =
        infer == NULL ? NULL
                      : eied_call_new_local(GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice),
                                            s->call->deadline, run_done, s);
    grpc_slice_unref(slice);
    if (local == NULL) {
        end(s, EIE_STATUS_NO_MEMORY, "out of memory");
        return;
    }
    s->running = true;
    infer(s->app, local); /* answers through run_done, now or later */
}

/* CQ thread: the next request (NULL at the end of the stream or on error). */
static void on_message(eied_call_t *call, grpc_byte_buffer *msg)
{
    stream_t *s = call->user;
    s->next = msg;
    eied_server_post(s->app->server, after_recv, s);
}

/* CQ thread: an answer went out (ok) or the stream died. */
static void on_sent(eied_call_t *call, bool ok)
{
    stream_t *s = call->user;
    if (!ok || !eied_call_recv(call, on_message)) {
        s->next = NULL;
        s->dead = true; /* after_recv ends it on the loop */
        eied_server_post(s->app->server, after_recv, s);
    }
}

static void on_stream(eied_app_t *app, eied_call_t *call)
{
    stream_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        eied_call_finish(call, EIE_STATUS_NO_MEMORY, "out of memory");
        return;
    }
    s->app = app;
    s->call = call;
    call->user = s;
    /* the server reads a method's first message with the call (server.c): it is the
       payload, NULL for a stream the client closed without sending */
    s->next = call->payload;
    call->payload = NULL;
    after_recv(s);
}

bool eied_rpc_stream_register(eied_app_t *app)
{
    static const eied_method_t stream = {"/inference.GRPCInferenceService/ModelStreamInfer",
                                         on_stream, 0};
    return eied_server_add_method(app->server, &stream);
}
