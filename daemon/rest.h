/*
 * rest.h - the KServe v2 REST front end (rest.c) on server.http_listen.
 */
#ifndef EIED_REST_H
#define EIED_REST_H

#include "app.h"
#include "eie/status.h"

typedef struct eied_rest eied_rest_t;

/* Listens on app->cfg->http_listen and announces "http on HOST:PORT"; *out stays NULL when
   http_listen is empty. */
eie_status_t eied_rest_start(eied_app_t *app, eied_rest_t **out, eie_error_t *err);
/* Stops accepting and closes the connections (loop thread); answers still on their way are
   dropped. */
void eied_rest_stop(eied_rest_t *rest);
/* Frees rest after the loop has returned. NULL is fine. */
void eied_rest_free(eied_rest_t *rest);

#endif
