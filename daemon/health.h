/*
 * health.h - the daemon's health state: the serving status of "",
 * "liveness" and "readiness", and the Watch streams that follow it. The
 * application core (app.c) sets it; rpc_health.c answers Check and Watch
 * from it. Loop thread only.
 */
#ifndef EIED_HEALTH_H
#define EIED_HEALTH_H

#include <stdbool.h>

#include "call.h"
#include "eie/status.h"
#include "health.pb-c.h"

typedef struct eied_health eied_health_t;
typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_t;

/* Liveness SERVING, readiness NOT_SERVING until eied_health_set_ready. NULL when out of memory. */
eied_health_t *eied_health_create(void);
/* Frees the state (the watchers were closed). NULL is fine. */
void eied_health_free(eied_health_t *health);

/* The status of service ("", "liveness", "readiness"); false for any other name. */
bool eied_health_status(const eied_health_t *health, const char *service, serving_t *status_out);
/* Makes call a Watch stream of service (an unknown one reads SERVICE_UNKNOWN) and sends its
   status now and at each change; the stream owns the call. Refused over max_watchers. */
eie_status_t eied_health_watch(eied_health_t *health, eied_call_t *call, const char *service,
                               unsigned max_watchers, eie_error_t *err);

/* Sets readiness (and the overall "" service) SERVING or NOT_SERVING. */
void eied_health_set_ready(eied_health_t *health, bool ready);
/* The main port's listener answers (ok) or not; readiness follows at once, liveness
   once it has not answered for server.liveness_grace. */
void eied_health_set_port(eied_health_t *health, bool ok, bool liveness_ok);
/* Watch streams open now. */
unsigned eied_health_watch_count(const eied_health_t *health);
/* Ends every Watch stream (server stopping). */
void eied_health_close_watches(eied_health_t *health);

#endif
