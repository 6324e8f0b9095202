/*
 * call.h - one server call and the batches started on it.
 *
 * Reference counting (GRPC_NOTES.md "Server call lifecycle"): one atomic
 * count per call; +1 for the handler that owns it, +1 for the
 * RECV_CLOSE_ON_SERVER batch, +1 per send batch in flight. grpc_call_unref
 * happens exactly once, when the count reaches zero.
 *
 * Only one thread touches a call's batches at a time: the loop thread until
 * it hands the call to a worker, then that worker.
 */
#ifndef EIED_CALL_H
#define EIED_CALL_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "eie/status.h"

typedef struct eied_call eied_call_t;
struct eied_wire_status;
typedef struct eied_server eied_server_t;
struct eied_listener;
struct method_slot;

/* A completion-queue tag: the CQ thread calls fn with the event's success. */
typedef struct eied_tag {
    void (*fn)(struct eied_tag *tag, bool ok);
} eied_tag_t;

/* Called once when a call object is freed (any thread); the server's live-call count. */
typedef void (*eied_call_freed_fn)(eied_call_t *call);

/* Called with the next client message (NULL at the end of the stream or on error); CQ thread.
   The callee owns msg. */
typedef void (*eied_recv_done_fn)(eied_call_t *call, grpc_byte_buffer *msg);

/* Called when a streamed message has been sent (ok) or the call died (!ok); CQ thread. */
typedef void (*eied_send_done_fn)(eied_call_t *call, bool ok);

struct eied_call {
    atomic_int refs;
    eied_server_t *srv;              /* the transport that accepted it (opaque here) */
    struct eied_listener *listener;  /* the port it arrived on (opaque here) */
    const struct method_slot *slot; /* NULL for an unregistered (unknown) method */
    eied_call_freed_fn freed;        /* the server's bookkeeping, run as the object goes */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_call_details details; /* unregistered calls only */
    grpc_byte_buffer *payload;
    uint64_t arrived_ns; /* CLOCK_MONOTONIC */

    eied_tag_t new_tag, close_tag, send_tag, recv_tag;
    grpc_byte_buffer *recv_buf;
    eied_recv_done_fn recv_done;
    int close_cancelled; /* filled by RECV_CLOSE_ON_SERVER */
    atomic_bool closed;  /* the client or deadline ended the call */
    bool sent_initial_md;
    bool finished; /* status sent */
    grpc_byte_buffer *send_buf;
    grpc_slice status_details;
    bool has_status_details;
    eied_send_done_fn send_done;
    /* Called once on the CQ thread when the client or deadline ends the call early. */
    void (*on_close)(eied_call_t *call);

    void *user; /* the handler's state (e.g. a Watch stream) */
    /* A local call (eied_call_new_local): no grpc_call; the answer goes to local_done. */
    void (*local_done)(void *ctx, const struct eied_wire_status *failed, const uint8_t *reply,
                       size_t len);
    void *local_ctx;
    char *local_peer_names; /* a local call's verified client certificate names, or NULL */
    eied_call_t *next; /* inbox and handler lists */
    /* Every live call, for the send timeout (server.c, under srv->live_lock). */
    eied_call_t *live_prev, *live_next;
    bool in_live_list;
    bool send_cancelled;
    atomic_uint_fast64_t send_started_ns; /* a send batch pending since; 0: none */
};

/* Allocates a call object for srv's listener and a registered method (slot) or an unknown one
   (NULL); freed runs when the last reference goes. */
eied_call_t *eied_call_new(eied_server_t *srv, struct eied_listener *listener,
                           const struct method_slot *slot, eied_call_freed_fn freed);

/*
 * A call that did not come over gRPC: another front end (REST) hands a
 * serialised request to a unary method's handler as if it had. The handler
 * runs unchanged; its answer reaches done (any thread, exactly once) as the
 * serialised reply, or with failed set (gRPC code, HTTP status, message).
 * deadline: gpr_inf_future(GPR_CLOCK_REALTIME) for none. NULL when out of
 * memory. Streaming sends and receives are refused on a local call.
 */
eied_call_t *eied_call_new_local(const uint8_t *request, size_t len, gpr_timespec deadline,
                                 void (*done)(void *ctx, const struct eied_wire_status *failed,
                                              const uint8_t *reply, size_t len),
                                 void *ctx);
/* The names of a local call's verified client certificate (comma-separated CN and SANs),
   for the admin check; false when out of memory. */
bool eied_call_local_peer(eied_call_t *call, const char *names);
/* Adds a request metadata entry (e.g. "authorization") to a local call; false when out of
   memory. */
bool eied_call_local_metadata(eied_call_t *call, const char *key, const char *value);

void eied_call_ref(eied_call_t *call);
/* Drops a reference; the last one releases the grpc_call and frees the object. */
void eied_call_unref(eied_call_t *call);

/*
 * Unpacks the request payload as desc. On failure answers the call itself
 * (INVALID_ARGUMENT naming what was wrong) and returns NULL. The caller frees
 * the message with protobuf_c_message_free_unpacked.
 */
ProtobufCMessage *eied_call_read(eied_call_t *call, const ProtobufCMessageDescriptor *desc);

/* Sends msg with status OK and ends the call (unary). Drops the handler's reference. */
void eied_call_reply(eied_call_t *call, const ProtobufCMessage *msg);

/* Ends the call with status and a message naming what was wrong (gRPC code from
   wire_status.c). Drops the handler's reference. */
void eied_call_fail(eied_call_t *call, eie_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an error filled by a callee. */
void eied_call_fail_error(eied_call_t *call, const eie_error_t *err);

/* Streams one message; done runs on the CQ thread. False if a send is already in flight. */
bool eied_call_send(eied_call_t *call, const ProtobufCMessage *msg, eied_send_done_fn done);

/* Reads the next message of a client stream; done runs on the CQ thread. */
bool eied_call_recv(eied_call_t *call, eied_recv_done_fn done);

/* Unpacks a byte buffer as desc (NULL if malformed); destroys buf. */
ProtobufCMessage *eied_unpack_buffer(grpc_byte_buffer *buf, const ProtobufCMessageDescriptor *desc,
                                     size_t *len_out);

/* Ends a stream with status and detail (may be NULL). Drops the handler's reference. */
void eied_call_finish(eied_call_t *call, eie_status_t status, const char *detail);

/* The request's metadata value for key (e.g. "authorization"), or false. */
bool eied_call_metadata(const eied_call_t *call, const char *key, const char **value_out,
                        size_t *len_out);

#endif
