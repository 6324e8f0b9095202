/*
 * eied - serves deep-compressed neural networks over gRPC.
 * Start-up: configuration (defaults < file < environment < flags), then
 * the server on the libuv loop; the loop runs until a graceful shutdown.
 */
#include <getopt.h>
#include <malloc.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app.h"
#include "config.h"
#include "eie/eie.h"
#include "log.h"
#include "rpc.h"

extern char **environ;

/* Every service eied serves; a new RPC file adds its line here. */
static bool register_services(eied_app_t *app)
{
    eied_rpc_health_register(app);
    if (!eied_rpc_infer_register(app))
        return false;
    if (!eied_rpc_stream_register(app))
        return false;
    eied_rpc_server_register(app);
    eied_rpc_model_register(app);
    eied_rpc_stats_register(app);
    eied_rpc_repository_register(app);
    eied_reflection_register(app);
    return true;
}

/* A configuration refused at start-up: exit status 2, the reason on stderr, as a JSON event
   when the configuration read so far asked for JSON lines. */
static int config_error(const eied_config_t *cfg, const char *why)
{
    if (cfg->log_format == EIED_LOG_FORMAT_JSON) {
        eied_log_configure(EIED_LOG_ERROR, EIED_LOG_FORMAT_JSON);
        eied_log(EIED_LOG_ERROR, "configuration refused", "error", why, NULL);
    } else {
        fprintf(stderr, "eied: %s\n", why);
    }
    return 2;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eied [OPTIONS]\n\n"
            "Serves deep-compressed neural networks over gRPC (KServe Open Inference\n"
            "Protocol v2, grpc.health.v1).\n\n"
            "Options:\n"
            "  -c, --config FILE      read FILE (see conf/eied.conf for every key)\n"
            "  -l, --listen ADDR      gRPC address, host:port (default 0.0.0.0:8001;\n"
            "                         port 0 picks a free one and prints it)\n"
            "  -s, --set S.KEY=VALUE  set any key of section S, e.g. --set server.drain_delay=0s\n"
            "      --check-config     validate, print the effective configuration, exit\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n\n"
            "Every key can also be set in the environment as EIED_<SECTION>_<KEY>,\n"
            "e.g. EIED_SERVER_LISTEN=127.0.0.1:9000. Precedence: defaults < file <\n"
            "environment < flags.\n"
            "Signals: SIGTERM/SIGINT drain gracefully (a second one stops at once).\n");
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"set", required_argument, NULL, 's'},    {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    const char *listen = NULL;
    const char *sets[64];
    size_t n_sets = 0;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:s:hV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 's':
            if (n_sets == sizeof sets / sizeof sets[0]) {
                fprintf(stderr, "eied: more than %zu --set flags\n", sizeof sets / sizeof sets[0]);
                return 2;
            }
            sets[n_sets++] = optarg;
            break;
        case 'C':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("eied %s (gRPC %s, libuv %s)\n", EIE_VERSION_STRING, grpc_version_string(),
                   uv_version_string());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "eied: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    static eied_config_t cfg;
    eie_error_t err;
    eied_config_defaults(&cfg);
    if (config_path != NULL && eied_config_load_file(&cfg, config_path, &err) != EIE_STATUS_OK) {
        return config_error(&cfg, err.msg);
    }
    if (eied_config_load_env(&cfg, environ, &err) != EIE_STATUS_OK) {
        return config_error(&cfg, err.msg);
    }
    for (size_t i = 0; i < n_sets; i++) {
        if (eied_config_set_arg(&cfg, sets[i], &err) != EIE_STATUS_OK) {
            return config_error(&cfg, err.msg);
        }
    }
    if (listen != NULL &&
        eied_config_set(&cfg, "server", "listen", listen, "flag --listen", &err) != EIE_STATUS_OK) {
        return config_error(&cfg, err.msg);
    }
    if (check_only) {
        eied_config_print(&cfg, stdout);
        return 0;
    }
    eied_log_configure(cfg.log_level, cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    /* gRPC's threads would each get a malloc arena of their own; requests freed on other
       threads then fragment them and RSS creeps up under load (the soak test measured 11%
       in a minute). Two arenas keep it flat. MALLOC_ARENA_MAX in the environment wins. */
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, 2);

    grpc_init();
    uv_loop_t *loop = uv_default_loop();
    int status = 1;
    eied_app_t *app = eied_app_create(loop, &cfg);
    if (app != NULL && register_services(app))
        status = eied_app_run(app);
    else if (app != NULL)
        eied_log(EIED_LOG_ERROR, "out of memory registering the services", NULL);
    eied_app_free(app);
    uv_loop_close(loop);
    grpc_shutdown();
    return status;
}
