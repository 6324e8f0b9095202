/* Blocking unary gRPC calls for eiectl; see rpc.h. */
#include "rpc.h"

#include "eie/status.h"

#include <grpc/byte_buffer_reader.h>
#include <stdio.h>
#include <string.h>

bool eiectl_rpc_open(eiectl_rpc_t *rpc, const char *addr, double timeout_s)
{
    eiectl_channel_t plain = {.addr = addr};
    return eiectl_rpc_open_channel(rpc, &plain, timeout_s);
}

bool eiectl_rpc_open_channel(eiectl_rpc_t *rpc, const eiectl_channel_t *conn, double timeout_s)
{
    grpc_init();
    rpc->conn = *conn;
    rpc->channel = eiectl_channel_create(&rpc->conn, false);
    rpc->cq = grpc_completion_queue_create_for_pluck(NULL);
    rpc->timeout_s = timeout_s;
    rpc->md_count = 0;
    return rpc->channel != NULL && rpc->cq != NULL;
}

bool eiectl_rpc_add_metadata(eiectl_rpc_t *rpc, const char *key, const char *value)
{
    if (rpc->md_count >= EIECTL_RPC_MAX_METADATA || key[0] == '\0')
        return false;
    for (const char *k = key; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '-' || *k == '_' ||
              *k == '.'))
            return false;
    for (const char *v = value; *v; v++)
        if (*v < 0x20 || *v > 0x7E)
            return false;
    grpc_metadata *md = &rpc->md[rpc->md_count++];
    memset(md, 0, sizeof *md);
    md->key = grpc_slice_from_copied_string(key);
    md->value = grpc_slice_from_copied_string(value);
    return true;
}

void eiectl_rpc_close(eiectl_rpc_t *rpc)
{
    if (rpc->channel != NULL)
        grpc_channel_destroy(rpc->channel);
    if (rpc->cq != NULL) {
        grpc_completion_queue_shutdown(rpc->cq);
        while (grpc_completion_queue_pluck(rpc->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(rpc->cq);
    }
    for (size_t i = 0; i < rpc->md_count; i++) {
        grpc_slice_unref(rpc->md[i].key);
        grpc_slice_unref(rpc->md[i].value);
    }
    rpc->md_count = 0;
    rpc->channel = NULL;
    rpc->cq = NULL;
    eiectl_channel_free(&rpc->conn);
    grpc_shutdown();
}

const char *eiectl_rpc_code_name(grpc_status_code code)
{
    return eie_grpc_code_name((int)code);
}

bool eiectl_rpc_call(eiectl_rpc_t *rpc, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
                     eiectl_rpc_status_t *status_out)
{
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                     gpr_time_from_millis((int64_t)(rpc->timeout_s * 1000), GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(rpc->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                               rpc->cq, method_slice, NULL, deadline, NULL);
    *resp_out = NULL;
    status_out->detail[0] = '\0';

    size_t n = protobuf_c_message_get_packed_size(req);
    grpc_slice slice = grpc_slice_malloc(n);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);

    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_byte_buffer *recv = NULL;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = rpc->md_count;
    ops[0].data.send_initial_metadata.metadata = rpc->md_count ? rpc->md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    grpc_call_error rc = grpc_call_start_batch(call, ops, 6, call, NULL);
    if (rc == GRPC_CALL_OK)
        grpc_completion_queue_pluck(rpc->cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    else
        snprintf(status_out->detail, sizeof status_out->detail, "cannot start call: %s",
                 grpc_call_error_to_string(rc));

    status_out->code = code;
    if (GRPC_SLICE_LENGTH(details) > 0) {
        size_t dn = GRPC_SLICE_LENGTH(details);
        if (dn >= sizeof status_out->detail)
            dn = sizeof status_out->detail - 1;
        memcpy(status_out->detail, GRPC_SLICE_START_PTR(details), dn);
        status_out->detail[dn] = '\0';
    }
    bool ok = rc == GRPC_CALL_OK && code == GRPC_STATUS_OK;
    if (ok) {
        if (recv == NULL) {
            ok = false;
            status_out->code = GRPC_STATUS_INTERNAL;
            snprintf(status_out->detail, sizeof status_out->detail, "server sent no message");
        } else {
            grpc_byte_buffer_reader reader;
            grpc_byte_buffer_reader_init(&reader, recv);
            grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
            *resp_out = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(all),
                                                  GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
            if (*resp_out == NULL) {
                ok = false;
                status_out->code = GRPC_STATUS_INTERNAL;
                snprintf(status_out->detail, sizeof status_out->detail,
                         "reply is not a valid %s", resp_desc->name);
            }
        }
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    return ok;
}
