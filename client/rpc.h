/*
 * rpc.h - eiectl's gRPC client: one channel, blocking unary calls with a
 * deadline, protobuf-c messages in and out.
 */
#ifndef EIECTL_RPC_H
#define EIECTL_RPC_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "channel.h"

/* Most metadata entries one channel sends with every call. */
#define EIECTL_RPC_MAX_METADATA 4
/* Largest reply eiectl accepts (an infer reply of 16 Mi float32 values fits). */
#define EIECTL_RPC_MAX_RECEIVE_BYTES (80 << 20)

typedef struct eiectl_rpc {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    double timeout_s;
    grpc_metadata md[EIECTL_RPC_MAX_METADATA]; /* sent with every call; slices owned */
    size_t md_count;
    eiectl_channel_t conn; /* how channel was made; more channels like it: eiectl_channel_create */
} eiectl_rpc_t;

typedef struct eiectl_rpc_status {
    grpc_status_code code;
    char detail[1024];
} eiectl_rpc_status_t;

/* Opens a plaintext channel to addr (host:port); calls grpc_init. */
bool eiectl_rpc_open(eiectl_rpc_t *rpc, const char *addr, double timeout_s);
/*
 * Opens a channel as conn says (plaintext or TLS); calls grpc_init. Takes
 * over conn's memory whether it succeeds or not; eiectl_rpc_close frees it.
 */
bool eiectl_rpc_open_channel(eiectl_rpc_t *rpc, const eiectl_channel_t *conn, double timeout_s);
/* Closes the channel and frees the metadata; calls grpc_shutdown. */
void eiectl_rpc_close(eiectl_rpc_t *rpc);

/*
 * Adds a metadata entry (key lower case, value printable ASCII) that every
 * later call sends; copies both. False if full or either is invalid.
 */
bool eiectl_rpc_add_metadata(eiectl_rpc_t *rpc, const char *key, const char *value);

/*
 * Calls method with req; on OK unpacks the reply as resp_desc into *resp_out
 * (caller frees with protobuf_c_message_free_unpacked). Returns true if the
 * call completed with status OK.
 */
bool eiectl_rpc_call(eiectl_rpc_t *rpc, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
                     eiectl_rpc_status_t *status_out);

/* "NOT_FOUND" for a code. */
const char *eiectl_rpc_code_name(grpc_status_code code);

#endif
