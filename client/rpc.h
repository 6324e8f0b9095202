/*
 * rpc.h - eiectl's gRPC client: one channel, blocking unary calls with a
 * deadline, protobuf-c messages in and out.
 */
#ifndef EIECTL_RPC_H
#define EIECTL_RPC_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

typedef struct eiectl_rpc {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    double timeout_s;
} eiectl_rpc_t;

typedef struct eiectl_rpc_status {
    grpc_status_code code;
    char detail[1024];
} eiectl_rpc_status_t;

/* Opens a plaintext channel to addr (host:port); calls grpc_init. */
bool eiectl_rpc_open(eiectl_rpc_t *rpc, const char *addr, double timeout_s);
void eiectl_rpc_close(eiectl_rpc_t *rpc);

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
