/* ServerLive, ServerReady, ServerMetadata of the Open Inference Protocol. */
#include "call.h"
#include "eie/eie.h"
#include "inference.pb-c.h"
#include "models.h"
#include "rpc.h"

static void on_server_live(eied_app_t *app, eied_call_t *call)
{
    ProtobufCMessage *req = eied_call_read(call, &inference__server_live_request__descriptor);
    if (req == NULL)
        return;
    protobuf_c_message_free_unpacked(req, NULL);
    Inference__ServerLiveResponse resp = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    resp.live = eied_server_state(app->server) < EIED_SERVER_STOPPED;
    eied_call_reply(call, &resp.base);
}

static void on_server_ready(eied_app_t *app, eied_call_t *call)
{
    ProtobufCMessage *req = eied_call_read(call, &inference__server_ready_request__descriptor);
    if (req == NULL)
        return;
    protobuf_c_message_free_unpacked(req, NULL);
    Inference__ServerReadyResponse resp = INFERENCE__SERVER_READY_RESPONSE__INIT;
    resp.ready = eied_server_state(app->server) == EIED_SERVER_RUNNING &&
                 eied_models_all_ready(app->models);
    eied_call_reply(call, &resp.base);
}

static void on_server_metadata(eied_app_t *app, eied_call_t *call)
{
    (void)app;
    ProtobufCMessage *req = eied_call_read(call, &inference__server_metadata_request__descriptor);
    if (req == NULL)
        return;
    protobuf_c_message_free_unpacked(req, NULL);
    static char *extensions[] = {"model_repository", "statistics", "eie_compression"};
    Inference__ServerMetadataResponse resp = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    resp.name = "eied";
    resp.version = EIE_VERSION_STRING;
    resp.n_extensions = sizeof extensions / sizeof extensions[0];
    resp.extensions = extensions;
    eied_call_reply(call, &resp.base);
}

void eied_rpc_server_register(eied_app_t *app)
{
    static const eied_method_t methods[] = {
        {.path = "/inference.GRPCInferenceService/ServerLive", .handler = on_server_live},
        {.path = "/inference.GRPCInferenceService/ServerReady", .handler = on_server_ready},
        {.path = "/inference.GRPCInferenceService/ServerMetadata", .handler = on_server_metadata},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        eied_server_add_method(app->server, &methods[i]);
}
