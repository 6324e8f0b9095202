/*
 * rpc.h - the RPCs eied serves, one file each; each registers its methods
 * with the app's server before it starts (main.c). Handlers get the app.
 */
#ifndef EIED_RPC_H
#define EIED_RPC_H

#include "app.h"

/* grpc.health.v1 Check and Watch, on both ports (rpc_health.c). */
void eied_rpc_health_register(eied_app_t *app);
/* ModelInfer (rpc_infer.c), and the app's batcher; false when out of memory. */
bool eied_rpc_infer_register(eied_app_t *app);
/* ModelStreamInfer (rpc_stream.c): ModelInfer over a bidirectional stream. */
bool eied_rpc_stream_register(eied_app_t *app);
/* ServerLive, ServerReady, ServerMetadata (rpc_server.c). */
void eied_rpc_server_register(eied_app_t *app);
/* ModelReady, ModelMetadata (rpc_model.c). */
void eied_rpc_model_register(eied_app_t *app);
/* ModelStatistics (rpc_stats.c). */
void eied_rpc_stats_register(eied_app_t *app);
/* RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload (rpc_repository.c). */
void eied_rpc_repository_register(eied_app_t *app);
/* grpc.reflection.v1 and v1alpha ServerReflectionInfo (reflection.c). */
void eied_reflection_register(eied_app_t *app);

#endif
