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

#include "log.h"

#define EIED_CONFIG_STR_MAX 512
#define EIED_CONFIG_MAX_MODELS 64
#define EIED_CONFIG_LINE_MAX 4096

typedef struct eied_config_model {
    char name[128];
    char path[EIED_CONFIG_STR_MAX];
} eied_config_model_t;

typedef struct eied_config {
    /* [server] */
    char listen[EIED_CONFIG_STR_MAX];
    uint64_t drain_delay_ms;
    uint64_t exit_timeout_ms;
    eied_log_level_t log_level;
    eied_log_format_t log_format;
    char metrics_listen[EIED_CONFIG_STR_MAX];
    uint64_t max_receive_message_size;
    /* [inference] */
    uint64_t max_batch;
    uint64_t queue_depth;
    uint64_t batch_window_us;
    uint64_t max_inflight_batches;
    bool reject_non_finite;
    /* [engine] */
    char backend[64];
    uint64_t pes;
    /* [models]: NAME = PATH, loaded at start */
    eied_config_model_t models[EIED_CONFIG_MAX_MODELS];
    size_t n_models;
} eied_config_t;

/* Fills cfg with every key's documented default. */
void eied_config_defaults(eied_config_t *cfg);

/*
 * Sets one key from text. where names the source for messages ("eied.conf:12",
 * "environment EIED_SERVER_LISTEN", "flag --set"). On error writes a message
 * naming the source, the key and the bad value into why and returns false.
 */
bool eied_config_set(eied_config_t *cfg, const char *section, const char *key, const char *value,
                     const char *where, char *why, size_t why_len);

/* Parses a config file into cfg (on top of what it holds). */
bool eied_config_load_file(eied_config_t *cfg, const char *path, char *why, size_t why_len);

/* Parses text as if it were the file named path (for tests and stdin). */
bool eied_config_load_text(eied_config_t *cfg, const char *text, size_t len, const char *path,
                           char *why, size_t why_len);

/* Applies every EIED_<SECTION>_<KEY> variable of envp (NULL-terminated). */
bool eied_config_load_env(eied_config_t *cfg, char *const *envp, char *why, size_t why_len);

/* Applies "section.key=value" (the --set flag). */
bool eied_config_set_arg(eied_config_t *cfg, const char *arg, char *why, size_t why_len);

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
