/*
 * rpc.h - the RPCs eied serves, one file each; each registers its methods
 * with the server before it starts.
 */
#ifndef EIED_RPC_H
#define EIED_RPC_H

#include "server.h"

/* ModelInfer (rpc_infer.c). */
void eied_rpc_infer_register(eied_server_t *srv);
/* ServerLive, ServerReady, ServerMetadata (rpc_server.c). */
void eied_rpc_server_register(eied_server_t *srv);
/* ModelReady, ModelMetadata (rpc_model.c). */
void eied_rpc_model_register(eied_server_t *srv);
/* ModelStatistics (rpc_stats.c). */
void eied_rpc_stats_register(eied_server_t *srv);
/* RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload (rpc_repository.c). */
void eied_rpc_repository_register(eied_server_t *srv);
/* grpc.reflection.v1 and v1alpha ServerReflectionInfo (reflection.c). */
void eied_reflection_register(eied_server_t *srv);

#endif
