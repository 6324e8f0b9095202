/*
 * config.h - eied's configuration: one table of keys (section, name, type,
 * default, limits, help) drives the file parser, environment overrides
 * (EIED_<SECTION>_<KEY>), command-line overrides, validation and the
 * printout of --check-config. Precedence: defaults < file < environment <
 * flags. conf/eied.conf documents every key with its default.
 */
#ifndef EIED_CONFIG_H
#define EIED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eie/engine.h"
#include "eie/status.h"
#include "log.h"

#define EIED_CONFIG_STR_MAX 512
#define EIED_CONFIG_MAX_MODELS 64
#define EIED_CONFIG_MAX_BACKEND_OPTIONS 32
#define EIED_CONFIG_LINE_MAX 4096

typedef struct eied_config_model {
    char name[128];
    char path[EIED_CONFIG_STR_MAX];
} eied_config_model_t;

/* Which versions of a model serve (TF Serving's and Triton's version policies). */
typedef enum {
    EIED_POLICY_LATEST = 0, /* the newest count versions */
    EIED_POLICY_ALL,
    EIED_POLICY_SPECIFIC,
} eied_policy_kind_t;

#define EIED_POLICY_MAX_VERSIONS 16

typedef struct eied_policy {
    eied_policy_kind_t kind;
    uint64_t count; /* LATEST */
    uint64_t versions[EIED_POLICY_MAX_VERSIONS]; /* SPECIFIC */
    size_t n_versions;
} eied_policy_t;

/* Writes a policy in the syntax eied_policy_parse reads. */
void eied_policy_print(const eied_policy_t *policy, FILE *out);

/* Parses "latest N", "all" or "specific 1,3"; BAD_CONFIG with a message in err. */
eie_status_t eied_policy_parse(const char *text, eied_policy_t *policy_out, eie_error_t *err);

typedef enum {
    EIED_CONTROL_POLL = 0, /* watch the repository (uv_fs_event + periodic rescan) */
    EIED_CONTROL_EXPLICIT, /* only RepositoryModelLoad/Unload change what serves */
    EIED_CONTROL_NONE,     /* load at start only */
} eied_control_mode_t;

typedef enum {
    EIED_LOAD_AVAILABILITY = 0, /* old serves until new is ready (memory briefly holds both) */
    EIED_LOAD_RESOURCE,         /* retire old versions first */
} eied_load_mode_t;

typedef struct eied_config_policy {
    char model[128];
    eied_policy_t policy;
} eied_config_policy_t;

typedef struct eied_config {
    /* [server] */
    char listen[EIED_CONFIG_STR_MAX];
    uint64_t drain_delay_ms;
    uint64_t exit_timeout_ms;
    eied_log_level_t log_level;
    eied_log_format_t log_format;
    char metrics_listen[EIED_CONFIG_STR_MAX];
    char health_listen[EIED_CONFIG_STR_MAX];
    char http_listen[EIED_CONFIG_STR_MAX]; /* REST; "" = off */
    uint64_t http_max_body;                /* bytes of one REST request body */
    uint64_t max_concurrent_streams;
    uint64_t max_receive_message_size;
    uint64_t max_streams;        /* calls in flight on all ports, Watch included */
    uint64_t max_watch_streams;  /* health Watch streams (free for anyone on the health port) */
    uint64_t send_timeout_ms;    /* a reply the client does not take in time cancels the call */
    uint64_t max_connections;    /* per plaintext port; clamped under the fd limit */
    uint64_t idle_timeout_ms;    /* a connection without calls this long is closed */
    uint64_t max_connection_age_ms;       /* 0: connections live as long as they are used */
    uint64_t max_connection_age_grace_ms; /* calls in flight get this long after the age */
    uint64_t probe_interval_ms;  /* self-probe of the main port's listener */
    uint64_t liveness_grace_ms;  /* main port unreachable this long: liveness NOT_SERVING */
    /* [inference] */
    uint64_t max_batch;
    uint64_t max_sequence; /* steps of one request to a sequence (lstm) model */
    uint64_t queue_depth;
    uint64_t batch_window_us;
    uint64_t max_inflight_batches;
    bool reject_non_finite;
    uint64_t max_tensor_elements;
    uint64_t default_timeout_ms;
    uint64_t max_timeout_ms;
    /* [tls] */
    char tls_cert[EIED_CONFIG_STR_MAX];
    char tls_key[EIED_CONFIG_STR_MAX];
    char tls_client_ca[EIED_CONFIG_STR_MAX];
    bool tls_require_client_cert;
    /* [admin] */
    char admin_token_file[EIED_CONFIG_STR_MAX];
    char admin_token[EIED_CONFIG_STR_MAX];
    char admin_identities[EIED_CONFIG_STR_MAX];
    bool admin_allow_unauthenticated;
    /* [engine] */
    char backend[64];
    char extra_backends[EIED_CONFIG_STR_MAX];
    uint64_t pes;
    bool row_form;
    char cpu_kernel[32]; /* "" = EIE_KERNEL, else the fastest */
    uint64_t sim_fifo_depth, sim_pipeline_depth, sim_clock_mhz, sim_act_regs;
    /* [limits] */
    uint64_t max_layout_bytes; /* run-time layout of one version on one backend */
    uint64_t max_layout_ratio; /* ... and at most this many times its file (>= 256 KiB) */
    /* [repository] */
    char repository[EIED_CONFIG_STR_MAX];
    eied_control_mode_t control_mode;
    uint64_t poll_interval_ms;
    eied_policy_t version_policy;
    bool warmup;
    eied_load_mode_t load_mode;
    uint64_t memory_budget;
    uint64_t max_models;    /* model folders served; new ones beyond are refused loudly */
    uint64_t max_versions;  /* version folders considered per model: the newest ones */
    uint64_t forget_after_ms; /* a removed model's row stays this long */
    bool follow_symlinks;   /* entries that lead out of the repository */
    bool require_signed;
    char public_keys[EIED_CONFIG_STR_MAX];
    /* [model_backend]: NAME = BACKEND (overrides engine.backend for one model) */
    eied_config_model_t model_backends[EIED_CONFIG_MAX_MODELS];
    size_t n_model_backends;
    /* [version_policy]: NAME = POLICY */
    eied_config_policy_t policies[EIED_CONFIG_MAX_MODELS];
    size_t n_policies;
    /* [models]: NAME = PATH, loaded at start */
    eied_config_model_t models[EIED_CONFIG_MAX_MODELS];
    size_t n_models;
    /* [engine.<backend>]: the options a backend declares (eie_backend_info), passed to it
       unread; checked against its table when set. */
    struct eied_backend_option {
        char backend[32];
        char key[64];
        char value[EIED_CONFIG_STR_MAX];
    } backend_options[EIED_CONFIG_MAX_BACKEND_OPTIONS];
    size_t n_backend_options;
} eied_config_t;

/* Fills cfg with every key's documented default. */
void eied_config_defaults(eied_config_t *cfg);

/*
 * Sets one key from text. where names the source for messages ("eied.conf:12",
 * "environment EIED_SERVER_LISTEN", "flag --set"). On error returns BAD_CONFIG
 * with a message naming the source, the key and the bad value in err.
 */
eie_status_t eied_config_set(eied_config_t *cfg, const char *section, const char *key,
                             const char *value, const char *where, eie_error_t *err);

/*
 * Reads a file that the configuration names (key, e.g. "tls.cert"; NULL for the config file
 * itself) with eie_file_read_ex: a regular file only, a FIFO refused without blocking, at most
 * max bytes. BAD_CONFIG on any failure, the message "key: " + the read's (naming path).
 * The caller frees *data_out.
 */
eie_status_t eied_config_file_read(const char *key, const char *path, uint64_t max,
                                   unsigned flags, uint8_t **data_out, size_t *len_out,
                                   eie_error_t *err);

/* Parses a config file into cfg (on top of what it holds). */
eie_status_t eied_config_load_file(eied_config_t *cfg, const char *path, eie_error_t *err);

/* Parses text as if it were the file named path (for tests and stdin). */
eie_status_t eied_config_load_text(eied_config_t *cfg, const char *text, size_t len,
                                   const char *path, eie_error_t *err);

/* Applies every EIED_<SECTION>_<KEY> variable of envp (NULL-terminated). */
eie_status_t eied_config_load_env(eied_config_t *cfg, char *const *envp, eie_error_t *err);

/* Applies the [engine.<opts->backend>] options of cfg to opts (values kept by reference). */
eie_status_t eied_config_backend_opts(const eied_config_t *cfg, eie_engine_opts_t *opts,
                                      eie_error_t *err);

/* Applies "section.key=value" (the --set flag; engine.<backend>.key=value for a backend's
   option). */
eie_status_t eied_config_set_arg(eied_config_t *cfg, const char *arg, eie_error_t *err);

/* Writes the effective configuration in the file's syntax, secrets masked. */
void eied_config_print(const eied_config_t *cfg, FILE *out);

/* The table's rows, for documentation checks: section, key name and default text. */
size_t eied_config_key_count(void);
void eied_config_key(size_t i, const char **section_out, const char **name_out,
                     const char **default_out);

/* Parsers shared with the flags: "500ms", "5s", "2m"; "64MiB", "4096". */
bool eied_parse_duration_ms(const char *text, uint64_t *ms_out);
bool eied_parse_size(const char *text, uint64_t *bytes_out);

#endif
