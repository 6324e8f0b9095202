/*
 * eie/eie.h - libeie, the engine: compressed models, their run-time layout
 * and the backends that compute on it. Include this one header.
 *
 *     #include <eie/eie.h>
 *     eie_error_t err;  eie_model_t *m;  eie_engine_t *e;  eie_net_t *net;
 *     eie_engine_opts_t o = eie_engine_opts_default();
 *     if (eie_model_load_file("model.eie", NULL, &m, &err) ||
 *         eie_engine_init(&o, &e, &err) || eie_net_init(e, m, &net, &err))
 *         die(err.msg);
 *     float x[784] = {0}, y[10];
 *     eie_net_run(net, x, 1, y, NULL, &err);
 *     eie_net_free(net); eie_model_free(m); eie_engine_free(e);
 */
#ifndef EIE_EIE_H
#define EIE_EIE_H

#include "eie/status.h"
#include "eie/model.h"
#include "eie/engine.h"

#define EIE_VERSION_STRING "0.1.0"

#endif
