/*
 * The configuration table and its parsers; see config.h. A key exists in one
 * place only: its row below. Adding a key = adding a row (and documenting it
 * in conf/eied.conf, which a test checks against this table).
 */
#include "config.h"

#include "eie/engine.h"
#include "eie/file.h"

#include <ctype.h>
#include <errno.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    KEY_STRING,
    KEY_DURATION, /* uint64_t milliseconds */
    KEY_SIZE,     /* uint64_t bytes */
    KEY_UINT,     /* uint64_t */
    KEY_BOOL,     /* bool */
    KEY_LOG_LEVEL,
    KEY_LOG_FORMAT,
    KEY_POLICY,
    KEY_CONTROL_MODE,
    KEY_LOAD_MODE,
} key_type_t;

typedef struct key_row {
    const char *section;
    const char *name;
    key_type_t type;
    size_t offset;
    size_t size; /* KEY_STRING: buffer size */
    uint64_t min, max;
    const char *def;
    bool secret;
} key_row_t;

#define FIELD(f) offsetof(eied_config_t, f), sizeof(((eied_config_t *)0)->f)

static const key_row_t key_table[] = {
    {"server", "listen", KEY_STRING, FIELD(listen), 0, 0, "0.0.0.0:8001", false},
    {"server", "drain_delay", KEY_DURATION, FIELD(drain_delay_ms), 0, 3600000, "5s", false},
    {"server", "exit_timeout", KEY_DURATION, FIELD(exit_timeout_ms), 0, 3600000, "30s", false},
    {"server", "log_level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, "info", false},
    {"server", "log_format", KEY_LOG_FORMAT, FIELD(log_format), 0, 0, "logfmt", false},
    {"server", "metrics_listen", KEY_STRING, FIELD(metrics_listen), 0, 0, "0.0.0.0:8002", false},
    {"server", "health_listen", KEY_STRING, FIELD(health_listen), 0, 0, "0.0.0.0:8003", false},
    {"server", "http_listen", KEY_STRING, FIELD(http_listen), 0, 0, "0.0.0.0:8000", false},
    {"server", "http_max_body", KEY_SIZE, FIELD(http_max_body), 1024, 1ull << 32, "64MiB", false},
    {"server", "max_concurrent_streams", KEY_UINT, FIELD(max_concurrent_streams), 1, 1000000,
     "1024", false},
    {"server", "max_receive_message_size", KEY_SIZE, FIELD(max_receive_message_size), 1024,
     1024ull * 1024 * 1024, "64MiB", false},
    {"server", "max_streams", KEY_UINT, FIELD(max_streams), 1, 1000000, "4096", false},
    {"server", "max_watch_streams", KEY_UINT, FIELD(max_watch_streams), 0, 1000000, "256",
     false},
    {"server", "send_timeout", KEY_DURATION, FIELD(send_timeout_ms), 100, 3600000, "30s", false},
    {"server", "max_connections", KEY_UINT, FIELD(max_connections), 1, 1000000, "1024", false},
    {"server", "idle_timeout", KEY_DURATION, FIELD(idle_timeout_ms), 0, 86400000, "5m", false},
    {"server", "max_connection_age", KEY_DURATION, FIELD(max_connection_age_ms), 0, 86400000,
     "0s", false},
    {"server", "max_connection_age_grace", KEY_DURATION, FIELD(max_connection_age_grace_ms), 0,
     86400000, "30s", false},
    {"server", "probe_interval", KEY_DURATION, FIELD(probe_interval_ms), 0, 3600000, "2s",
     false},
    {"server", "liveness_grace", KEY_DURATION, FIELD(liveness_grace_ms), 0, 3600000, "30s",
     false},
    {"inference", "max_batch", KEY_UINT, FIELD(max_batch), 1, 4096, "64", false},
    {"inference", "max_sequence", KEY_UINT, FIELD(max_sequence), 1, 4096, "1024", false},
    {"inference", "queue_depth", KEY_UINT, FIELD(queue_depth), 1, 1000000, "1024", false},
    {"inference", "batch_window_us", KEY_UINT, FIELD(batch_window_us), 0, 1000000, "500", false},
    {"inference", "max_inflight_batches", KEY_UINT, FIELD(max_inflight_batches), 1, 64, "1",
     false},
    {"inference", "reject_non_finite", KEY_BOOL, FIELD(reject_non_finite), 0, 0, "false", false},
    {"inference", "max_tensor_elements", KEY_UINT, FIELD(max_tensor_elements), 1,
     1ull << 32, "16777216", false},
    {"inference", "default_timeout", KEY_DURATION, FIELD(default_timeout_ms), 0, 3600000, "0s",
     false},
    {"inference", "max_timeout", KEY_DURATION, FIELD(max_timeout_ms), 0, 3600000, "0s", false},
    {"tls", "cert", KEY_STRING, FIELD(tls_cert), 0, 0, "", false},
    {"tls", "key", KEY_STRING, FIELD(tls_key), 0, 0, "", false},
    {"tls", "client_ca", KEY_STRING, FIELD(tls_client_ca), 0, 0, "", false},
    {"tls", "require_client_cert", KEY_BOOL, FIELD(tls_require_client_cert), 0, 0, "false",
     false},
    {"admin", "token_file", KEY_STRING, FIELD(admin_token_file), 0, 0, "", false},
    {"admin", "token", KEY_STRING, FIELD(admin_token), 0, 0, "", true},
    {"admin", "allowed_identities", KEY_STRING, FIELD(admin_identities), 0, 0, "", false},
    {"admin", "allow_unauthenticated", KEY_BOOL, FIELD(admin_allow_unauthenticated), 0, 0,
     "false", false},
    {"repository", "path", KEY_STRING, FIELD(repository), 0, 0, "", false},
    {"repository", "control_mode", KEY_CONTROL_MODE, FIELD(control_mode), 0, 0, "poll", false},
    {"repository", "poll_interval", KEY_DURATION, FIELD(poll_interval_ms), 100, 3600000, "2s",
     false},
    {"repository", "version_policy", KEY_POLICY, FIELD(version_policy), 0, 0, "latest 1", false},
    {"repository", "warmup", KEY_BOOL, FIELD(warmup), 0, 0, "true", false},
    {"repository", "load_mode", KEY_LOAD_MODE, FIELD(load_mode), 0, 0, "availability", false},
    {"repository", "memory_budget", KEY_SIZE, FIELD(memory_budget), 0, UINT64_MAX, "4GiB",
     false},
    {"repository", "max_models", KEY_UINT, FIELD(max_models), 1, 65536, "1024", false},
    {"repository", "max_versions", KEY_UINT, FIELD(max_versions), 1, 4096, "64", false},
    {"repository", "forget_after", KEY_DURATION, FIELD(forget_after_ms), 0, 86400000, "10m",
     false},
    {"repository", "follow_symlinks", KEY_BOOL, FIELD(follow_symlinks), 0, 0, "false", false},
    {"repository", "require_signed", KEY_BOOL, FIELD(require_signed), 0, 0, "false", false},
    {"repository", "public_keys", KEY_STRING, FIELD(public_keys), 0, 0, "", false},
    {"limits", "max_layout_bytes", KEY_SIZE, FIELD(max_layout_bytes), 0, UINT64_MAX, "1GiB",
     false},
    {"limits", "max_layout_ratio", KEY_UINT, FIELD(max_layout_ratio), 0, 1000000, "64", false},
    {"engine", "backend", KEY_STRING, FIELD(backend), 0, 0, "cpu", false},
    {"engine", "extra_backends", KEY_STRING, FIELD(extra_backends), 0, 0, "", false},
    {"engine", "pes", KEY_UINT, FIELD(pes), 0, 1024, "0", false},
    {"engine", "row_form", KEY_BOOL, FIELD(row_form), 0, 0, "true", false},
    {"engine", "kernel", KEY_STRING, FIELD(cpu_kernel), 0, 0, "", false},
    {"engine", "sim_fifo_depth", KEY_UINT, FIELD(sim_fifo_depth), 0, 1024, "0", false},
    {"engine", "sim_pipeline_depth", KEY_UINT, FIELD(sim_pipeline_depth), 0, 64, "0", false},
    {"engine", "sim_clock_mhz", KEY_UINT, FIELD(sim_clock_mhz), 0, 100000, "0", false},
    {"engine", "sim_act_regs", KEY_UINT, FIELD(sim_act_regs), 0, 1024, "0", false},
};

#define N_KEYS (sizeof key_table / sizeof key_table[0])

typedef struct unit {
    const char *suffix;
    uint64_t mult;
} unit_t;

/* A whole number followed by exactly one of units' suffixes, scaled without overflow. */
static bool parse_with_unit(const char *text, const unit_t *units, size_t n_units,
                            uint64_t *value_out)
{
    char *end;
    if (!isdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return false;
            *value_out = (uint64_t)v * units[i].mult;
            return true;
        }
    }
    return false;
}

bool eied_parse_duration_ms(const char *text, uint64_t *ms_out)
{
    static const unit_t units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    return parse_with_unit(text, units, sizeof units / sizeof units[0], ms_out);
}

bool eied_parse_size(const char *text, uint64_t *bytes_out)
{
    static const unit_t units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024ull * 1024 * 1024}};
    return parse_with_unit(text, units, sizeof units / sizeof units[0], bytes_out);
}

static bool parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static const key_row_t *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(key_table[i].section, section) == 0 && strcmp(key_table[i].name, key) == 0)
            return &key_table[i];
    return NULL;
}

static bool backend_known(const char *name)
{
    return eie_backend_find(name) != NULL;
}

static bool section_known(const char *section)
{
    if (strcmp(section, "models") == 0 || strcmp(section, "version_policy") == 0 ||
        strcmp(section, "model_backend") == 0)
        return true;
    if (strncmp(section, "engine.", 7) == 0)
        return backend_known(section + 7);
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(key_table[i].section, section) == 0)
            return true;
    return false;
}

static eie_status_t set_model(eied_config_t *cfg, const char *name, const char *path,
                              const char *where, eie_error_t *err)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len >= sizeof cfg->models[0].name) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model name '%s' must be 1 to %zu characters", where, name,
                             sizeof cfg->models[0].name - 1);
    }
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
            return eie_error_set(
                err, EIE_STATUS_BAD_CONFIG,
                "%s: model name '%s' has character '%c'; use letters, digits, '_', '-', '.'", where,
                name, *p);
        }
    }
    if (strlen(path) == 0 || strlen(path) >= sizeof cfg->models[0].path) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model '%s': path must be 1 to %zu characters", where, name,
                             sizeof cfg->models[0].path - 1);
    }
    for (size_t i = 0; i < cfg->n_models; i++) {
        if (strcmp(cfg->models[i].name, name) == 0) {
            /* a later source (env, flag) replaces the path of a model */
            snprintf(cfg->models[i].path, sizeof cfg->models[i].path, "%s", path);
            return EIE_STATUS_OK;
        }
    }
    if (cfg->n_models == EIED_CONFIG_MAX_MODELS) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model '%s': more than %d models configured", where, name,
                             EIED_CONFIG_MAX_MODELS);
    }
    eied_config_model_t *m = &cfg->models[cfg->n_models++];
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", path);
    return EIE_STATUS_OK;
}

eie_status_t eied_policy_parse(const char *text, eied_policy_t *policy_out, eie_error_t *err)
{
    eied_policy_t p;
    memset(&p, 0, sizeof p);
    char *end;
    if (strcmp(text, "all") == 0) {
        p.kind = EIED_POLICY_ALL;
    } else if (strncmp(text, "latest ", 7) == 0) {
        p.kind = EIED_POLICY_LATEST;
        errno = 0;
        p.count = strtoull(text + 7, &end, 10);
        if (!isdigit((unsigned char)text[7]) || errno != 0 || *end != '\0' || p.count < 1 ||
            p.count > EIED_POLICY_MAX_VERSIONS) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "'%s': latest needs a count from 1 to %d", text,
                                 EIED_POLICY_MAX_VERSIONS);
        }
    } else if (strncmp(text, "specific ", 9) == 0) {
        p.kind = EIED_POLICY_SPECIFIC;
        const char *q = text + 9;
        while (*q != '\0') {
            errno = 0;
            unsigned long long v = strtoull(q, &end, 10);
            if (!isdigit((unsigned char)*q) || errno != 0 || v == 0 || end == q ||
                (*end != ',' && *end != '\0') || p.n_versions == EIED_POLICY_MAX_VERSIONS) {
                return eie_error_set(
                    err, EIE_STATUS_BAD_CONFIG,
                    "'%s': specific needs up to %d positive versions separated by commas", text,
                    EIED_POLICY_MAX_VERSIONS);
            }
            p.versions[p.n_versions++] = v;
            q = *end == ',' ? end + 1 : end;
        }
        if (p.n_versions == 0) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "'%s': specific needs at least one version", text);
        }
    } else {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "'%s' is not a version policy (all, latest N, specific V1,V2)", text);
    }
    *policy_out = p;
    return EIE_STATUS_OK;
}

static eie_status_t set_policy(eied_config_t *cfg, const char *name, const char *value,
                               const char *where, eie_error_t *err)
{
    eied_policy_t p;
    eie_error_t detail;
    if (eied_policy_parse(value, &p, &detail) != EIE_STATUS_OK)
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: model '%s': %s", where, name,
                             detail.msg);
    size_t i = 0;
    while (i < cfg->n_policies && strcmp(cfg->policies[i].model, name) != 0)
        i++;
    if (i == EIED_CONFIG_MAX_MODELS || strlen(name) >= sizeof cfg->policies[0].model) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model '%s': too many version policies or name too long", where,
                             name);
    }
    if (i == cfg->n_policies)
        cfg->n_policies++;
    snprintf(cfg->policies[i].model, sizeof cfg->policies[i].model, "%s", name);
    cfg->policies[i].policy = p;
    return EIE_STATUS_OK;
}

/* "cpu, eie-sim": the registered backends, for messages. */
static const char *backends_known(void)
{
    static char list[256];
    if (list[0] == '\0') {
        size_t at = 0;
        for (const char *const *b = eie_backend_names(); *b != NULL && at < sizeof list; b++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", *b);
    }
    return list;
}

/* [engine.<backend>] KEY = VALUE: checked against the backend's own option table. */
static eie_status_t set_backend_option(eied_config_t *cfg, const char *backend, const char *key,
                                       const char *value, const char *where, eie_error_t *err)
{
    if (!backend_known(backend))
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: section [engine.%s]: unknown backend '%s' (known: %s)", where,
                             backend, backend, backends_known());
    eie_engine_opts_t scratch = eie_engine_opts_default();
    eie_error_t e;
    if (eie_engine_opts_set(&scratch, backend, key, value, &e) != EIE_STATUS_OK)
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: [engine.%s] %s", where, backend,
                             e.msg);
    size_t i = 0;
    while (i < cfg->n_backend_options && (strcmp(cfg->backend_options[i].backend, backend) != 0 ||
                                          strcmp(cfg->backend_options[i].key, key) != 0))
        i++;
    if (i == EIED_CONFIG_MAX_BACKEND_OPTIONS || strlen(backend) >= sizeof cfg->backend_options[0].backend ||
        strlen(key) >= sizeof cfg->backend_options[0].key ||
        strlen(value) >= sizeof cfg->backend_options[0].value)
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: [engine.%s] %s: more than %d backend options, or too long",
                             where, backend, key, EIED_CONFIG_MAX_BACKEND_OPTIONS);
    snprintf(cfg->backend_options[i].backend, sizeof cfg->backend_options[i].backend, "%s",
             backend);
    snprintf(cfg->backend_options[i].key, sizeof cfg->backend_options[i].key, "%s", key);
    snprintf(cfg->backend_options[i].value, sizeof cfg->backend_options[i].value, "%s", value);
    if (i == cfg->n_backend_options)
        cfg->n_backend_options++;
    return EIE_STATUS_OK;
}

static eie_status_t set_model_backend(eied_config_t *cfg, const char *name, const char *value,
                                      const char *where, eie_error_t *err)
{
    if (!backend_known(value)) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model '%s': unknown backend '%s' (known: %s)", where,
                             name, value, backends_known());
    }
    size_t i = 0;
    while (i < cfg->n_model_backends && strcmp(cfg->model_backends[i].name, name) != 0)
        i++;
    if (i == EIED_CONFIG_MAX_MODELS || strlen(name) >= sizeof cfg->model_backends[0].name) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: model '%s': too many entries or name too long", where, name);
    }
    if (i == cfg->n_model_backends)
        cfg->n_model_backends++;
    snprintf(cfg->model_backends[i].name, sizeof cfg->model_backends[i].name, "%s", name);
    snprintf(cfg->model_backends[i].path, sizeof cfg->model_backends[i].path, "%s", value);
    return EIE_STATUS_OK;
}

eie_status_t eied_config_set(eied_config_t *cfg, const char *section, const char *key,
                             const char *value, const char *where, eie_error_t *err)
{
    /* A value is one line of text: a newline or other control byte (which
     * only the environment or --set can carry) would print a configuration
     * (--check-config) that does not parse back. Tabs are text. */
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
            return eie_error_set(
                err, EIE_STATUS_BAD_CONFIG,
                "%s: key '%s': value has control byte 0x%02x at offset %zu (values are one "
                "line of text)",
                where, key, *c, (size_t)(c - (const unsigned char *)value));
        }
    if (strcmp(section, "models") == 0)
        return set_model(cfg, key, value, where, err);
    if (strcmp(section, "version_policy") == 0)
        return set_policy(cfg, key, value, where, err);
    if (strcmp(section, "model_backend") == 0)
        return set_model_backend(cfg, key, value, where, err);
    if (strncmp(section, "engine.", 7) == 0)
        return set_backend_option(cfg, section + 7, key, value, where, err);
    const key_row_t *row = find_key(section, key);
    if (row == NULL) {
        if (!section_known(section))
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: unknown section [%s]", where,
                                 section);
        /* a backend's own option written among the flat [engine] keys */
        for (size_t b = 0; strcmp(section, "engine") == 0 && b < eie_backend_count(); b++) {
            const eie_backend_info_t *be = eie_backend_info(b);
            if (eie_backend_option_find(be, key) != NULL)
                return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                     "%s: unknown key '%s' in section [%s]; '%s' is an option of "
                                     "backend %s: set it in [engine.%s]",
                                     where, key, section, key, be->name, be->name);
        }
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: unknown key '%s' in section [%s]",
                             where, key, section);
    }
    void *field = (char *)cfg + row->offset;
    uint64_t u = 0;
    switch (row->type) {
    case KEY_STRING:
        if (strcmp(row->section, "engine") == 0 && strcmp(row->name, "backend") == 0 &&
            !backend_known(value)) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key 'backend': unknown backend '%s' (known: %s)",
                                 where, value, backends_known());
        }
        if (strcmp(row->section, "engine") == 0 && strcmp(row->name, "extra_backends") == 0) {
            char list[EIED_CONFIG_STR_MAX];
            snprintf(list, sizeof list, "%s", value);
            char *save = NULL;
            for (char *b = strtok_r(list, ", ", &save); b != NULL;
                 b = strtok_r(NULL, ", ", &save)) {
                if (!backend_known(b)) {
                    return eie_error_set(
                        err, EIE_STATUS_BAD_CONFIG,
                        "%s: key 'extra_backends': unknown backend '%s' (known: %s)",
                        where, b, backends_known());
                }
            }
        }
        if (strlen(value) >= row->size) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': value is %zu characters, the limit is %zu", where,
                                 key, strlen(value), row->size - 1);
        }
        memcpy(field, value, strlen(value) + 1);
        return EIE_STATUS_OK;
    case KEY_DURATION:
        if (!eied_parse_duration_ms(value, &u)) {
            return eie_error_set(
                err, EIE_STATUS_BAD_CONFIG,
                "%s: key '%s': '%s' is not a duration (a whole number with unit ms, s, m or "
                "h, e.g. 5s)",
                where, key, value);
        }
        break;
    case KEY_SIZE:
        if (!eied_parse_size(value, &u)) {
            return eie_error_set(
                err, EIE_STATUS_BAD_CONFIG,
                "%s: key '%s': '%s' is not a size (bytes, or a whole number with KiB, MiB or "
                "GiB)",
                where, key, value);
        }
        break;
    case KEY_UINT: {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)value[0]) ||
            (u = strtoull(value, &end, 10), errno != 0 || *end != '\0')) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': '%s' is not a non-negative integer", where, key,
                                 value);
        }
        break;
    }
    case KEY_BOOL:
        if (!parse_bool(value, (bool *)field)) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': '%s' is not a boolean (true or false)", where, key,
                                 value);
        }
        return EIE_STATUS_OK;
    case KEY_LOG_LEVEL:
        if (!eied_log_level_parse(value, (eied_log_level_t *)field)) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': '%s' is not one of debug, info, warn, error", where,
                                 key, value);
        }
        return EIE_STATUS_OK;
    case KEY_LOG_FORMAT:
        if (!eied_log_format_parse(value, (eied_log_format_t *)field)) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': '%s' is not one of logfmt, json", where, key,
                                 value);
        }
        return EIE_STATUS_OK;
    case KEY_POLICY: {
        eie_error_t detail;
        if (eied_policy_parse(value, (eied_policy_t *)field, &detail) != EIE_STATUS_OK)
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: key '%s': %s", where, key,
                                 detail.msg);
        return EIE_STATUS_OK;
    }
    case KEY_CONTROL_MODE: {
        static const char *const modes[] = {"poll", "explicit", "none"};
        for (int i = 0; i < 3; i++) {
            if (strcmp(value, modes[i]) == 0) {
                *(eied_control_mode_t *)field = (eied_control_mode_t)i;
                return EIE_STATUS_OK;
            }
        }
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: key '%s': '%s' is not one of poll, explicit, none", where, key,
                             value);
    }
    case KEY_LOAD_MODE:
        if (strcmp(value, "availability") == 0)
            *(eied_load_mode_t *)field = EIED_LOAD_AVAILABILITY;
        else if (strcmp(value, "resource") == 0)
            *(eied_load_mode_t *)field = EIED_LOAD_RESOURCE;
        else {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s': '%s' is not one of availability, resource", where,
                                 key, value);
        }
        return EIE_STATUS_OK;
    }
    if (u < row->min || u > row->max) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "%s: key '%s': %s is out of range [%" PRIu64 ", %" PRIu64 "]", where,
                             key, value, row->min, row->max);
    }
    memcpy(field, &u, sizeof u);
    return EIE_STATUS_OK;
}

void eied_config_defaults(eied_config_t *cfg)
{
    eie_error_t err;
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        /* the table's own defaults must parse: a programmer error otherwise */
        if (eied_config_set(cfg, key_table[i].section, key_table[i].name, key_table[i].def,
                            "default", &err) != EIE_STATUS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

eie_status_t eied_config_load_text(eied_config_t *cfg, const char *text, size_t len,
                                   const char *path, eie_error_t *err)
{
    char section[64] = "";
    char line[EIED_CONFIG_LINE_MAX];
    char where[600];
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < len) {
        lineno++;
        size_t start = pos;
        while (pos < len && text[pos] != '\n')
            pos++;
        size_t n = pos - start;
        if (pos < len)
            pos++; /* the newline */
        snprintf(where, sizeof where, "%s:%u", path, lineno);
        if (n >= sizeof line) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: line is longer than %zu bytes",
                                 where, sizeof line - 1);
        }
        memcpy(line, text + start, n);
        line[n] = '\0';
        if (memchr(line, '\0', n) != NULL) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: line contains a NUL byte", where);
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close == NULL || *trim(close + 1) != '\0') {
                return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                     "%s: malformed section header '%s' (expected [name])", where,
                                     s);
            }
            *close = '\0';
            char *name = trim(s + 1);
            if (!section_known(name)) {
                return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                     "%s: unknown section [%s] (known: [server], [inference], "
                                     "[repository], [limits], [tls], [admin], [engine], [engine.<backend>], "
                                     "[model_backend], [version_policy], [models])",
                                     where, name);
            }
            snprintf(section, sizeof section, "%s", name);
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            /* not quoted: a line without '=' may be a secret (a token pasted alone, or the
               line of a file that is not a config at all, e.g. --config /etc/shadow) */
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: expected 'key = value' (the %zu-byte line is not shown)",
                                 where, strlen(s));
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        /* a value may be quoted to keep spaces or '#' */
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        } else {
            char *hash = strstr(value, " #");
            if (hash != NULL)
                *trim(hash) = '\0', value = trim(value);
        }
        if (*key == '\0') {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: empty key before '='", where);
        }
        if (section[0] == '\0') {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                                 "%s: key '%s' before any [section] header", where, key);
        }
        if (eied_config_set(cfg, section, key, value, where, err) != EIE_STATUS_OK)
            return EIE_STATUS_BAD_CONFIG;
    }
    return EIE_STATUS_OK;
}

/* Config files are small; anything bigger is a mistake, not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)

eie_status_t eied_config_file_read(const char *key, const char *path, uint64_t max,
                                   unsigned flags, uint8_t **data_out, size_t *len_out,
                                   eie_error_t *err)
{
    if (eie_file_read_ex(path, max, flags, data_out, len_out, err) == EIE_STATUS_OK)
        return EIE_STATUS_OK;
    if (key != NULL)
        eie_error_prefix(err, "%s: ", key);
    if (err != NULL)
        err->status = EIE_STATUS_BAD_CONFIG;
    return EIE_STATUS_BAD_CONFIG;
}

eie_status_t eied_config_load_file(eied_config_t *cfg, const char *path, eie_error_t *err)
{
    uint8_t *text;
    size_t len;
    eie_status_t st =
        eied_config_file_read(NULL, path, CONFIG_FILE_MAX, EIE_FILE_TEXT, &text, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    st = eied_config_load_text(cfg, (const char *)text, len, path, err);
    free(text);
    return st;
}

eie_status_t eied_config_load_env(eied_config_t *cfg, char *const *envp, eie_error_t *err)
{
    for (char *const *e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "EIED_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        char name[256];
        size_t name_len = (size_t)(eq - *e);
        if (name_len >= sizeof name)
            continue;
        memcpy(name, *e, name_len);
        name[name_len] = '\0';
        char where[300];
        snprintf(where, sizeof where, "environment %s", name);
        /* EIED_<SECTION>_<KEY>: the section is the first word, the key the rest, lower case */
        const char *rest = name + 5;
        const char *us = strchr(rest, '_');
        if (us == NULL || us == rest || us[1] == '\0')
            continue; /* not EIED_<SECTION>_<KEY>: not ours (see below) */
        char section[64], key[192];
        size_t sl = (size_t)(us - rest);
        if (sl >= sizeof section || strlen(us + 1) >= sizeof key) {
            return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "%s: name too long", where);
        }
        for (size_t i = 0; i < sl; i++)
            section[i] = (char)tolower((unsigned char)rest[i]);
        section[sl] = '\0';
        size_t kl = strlen(us + 1);
        for (size_t i = 0; i <= kl; i++)
            key[i] = (char)(strcmp(section, "models") == 0 || strcmp(section, "version_policy") == 0
                                ? us[1 + i]
                                : tolower((unsigned char)us[1 + i]));
        /* Kubernetes puts EIED_SERVICE_HOST, EIED_PORT_8001_TCP... into every pod of a Service
           named eied: variables of no known section are not ours and are left alone. A known
           section with an unknown key is a typo and an error. */
        if (!section_known(section))
            continue;
        if (eied_config_set(cfg, section, key, eq + 1, where, err) != EIE_STATUS_OK)
            return EIE_STATUS_BAD_CONFIG;
    }
    return EIE_STATUS_OK;
}

eie_status_t eied_config_set_arg(eied_config_t *cfg, const char *arg, eie_error_t *err)
{
    const char *dot = strchr(arg, '.');
    const char *eq = strchr(arg, '=');
    /* engine.<backend>.KEY=VALUE: the section is [engine.<backend>] */
    if (dot != NULL && eq != NULL && strncmp(arg, "engine.", 7) == 0) {
        const char *second = strchr(dot + 1, '.');
        if (second != NULL && second < eq)
            dot = second;
    }
    if (dot == NULL || eq == NULL || dot > eq || dot == arg || eq == dot + 1) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "flag --set: '%s' is not SECTION.KEY=VALUE", arg);
    }
    char section[64], key[192];
    size_t sl = (size_t)(dot - arg), kl = (size_t)(eq - dot - 1);
    if (sl >= sizeof section || kl >= sizeof key) {
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG, "flag --set: '%s': name too long", arg);
    }
    memcpy(section, arg, sl);
    section[sl] = '\0';
    memcpy(key, dot + 1, kl);
    key[kl] = '\0';
    return eied_config_set(cfg, section, key, eq + 1, "flag --set", err);
}

eie_status_t eied_config_backend_opts(const eied_config_t *cfg, eie_engine_opts_t *opts,
                                      eie_error_t *err)
{
    for (size_t i = 0; i < cfg->n_backend_options; i++) {
        const struct eied_backend_option *o = &cfg->backend_options[i];
        if (strcmp(o->backend, opts->backend) != 0)
            continue;
        if (eie_engine_opts_set(opts, o->backend, o->key, o->value, err) != EIE_STATUS_OK)
            return EIE_STATUS_BAD_CONFIG;
    }
    return EIE_STATUS_OK;
}

void eied_policy_print(const eied_policy_t *p, FILE *out)
{
    if (p->kind == EIED_POLICY_ALL) {
        fprintf(out, "all");
    } else if (p->kind == EIED_POLICY_LATEST) {
        fprintf(out, "latest %" PRIu64, p->count);
    } else {
        fprintf(out, "specific ");
        for (size_t i = 0; i < p->n_versions; i++)
            fprintf(out, "%s%" PRIu64, i ? "," : "", p->versions[i]);
    }
}

/* Writes a value so that eied_config_load_text reads back exactly it: quoted
 * when trimming, a " #" comment or its own outer quotes would change it. */
static void print_value(FILE *out, const char *v)
{
    size_t n = strlen(v);
    bool quote = n > 0 && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]) ||
                           strstr(v, " #") != NULL || (n >= 2 && v[0] == '"' && v[n - 1] == '"'));
    fprintf(out, quote ? "\"%s\"" : "%s", v);
}

static void print_ms(FILE *out, uint64_t ms)
{
    if (ms % 1000 == 0)
        fprintf(out, "%" PRIu64 "s", ms / 1000);
    else
        fprintf(out, "%" PRIu64 "ms", ms);
}

void eied_config_print(const eied_config_t *cfg, FILE *out)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *section = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_row_t *row = &key_table[i];
        const void *field = (const char *)cfg + row->offset;
        if (strcmp(section, row->section) != 0) {
            fprintf(out, "%s[%s]\n", i == 0 ? "" : "\n", row->section);
            section = row->section;
        }
        fprintf(out, "%s = ", row->name);
        uint64_t u;
        if (row->secret) {
            fprintf(out, "%s\n", *(const char *)field ? "********" : "");
            continue;
        }
        switch (row->type) {
        case KEY_STRING:
            print_value(out, (const char *)field);
            break;
        case KEY_DURATION:
            memcpy(&u, field, sizeof u);
            print_ms(out, u);
            break;
        case KEY_SIZE:
        case KEY_UINT:
            memcpy(&u, field, sizeof u);
            fprintf(out, "%" PRIu64, u);
            break;
        case KEY_BOOL:
            fprintf(out, "%s", *(const bool *)field ? "true" : "false");
            break;
        case KEY_LOG_LEVEL:
            fprintf(out, "%s", levels[*(const eied_log_level_t *)field]);
            break;
        case KEY_LOG_FORMAT:
            fprintf(out, "%s",
                    *(const eied_log_format_t *)field == EIED_LOG_FORMAT_JSON ? "json" : "logfmt");
            break;
        case KEY_POLICY:
            eied_policy_print((const eied_policy_t *)field, out);
            break;
        case KEY_CONTROL_MODE: {
            static const char *const modes[] = {"poll", "explicit", "none"};
            fprintf(out, "%s", modes[*(const eied_control_mode_t *)field]);
            break;
        }
        case KEY_LOAD_MODE:
            fprintf(out, "%s",
                    *(const eied_load_mode_t *)field == EIED_LOAD_RESOURCE ? "resource"
                                                                           : "availability");
            break;
        }
        fputc('\n', out);
    }
    for (const char *const *b = eie_backend_names(); *b != NULL; b++) {
        bool any = false;
        for (size_t i = 0; i < cfg->n_backend_options; i++) {
            if (strcmp(cfg->backend_options[i].backend, *b) != 0)
                continue;
            if (!any)
                fprintf(out, "\n[engine.%s]\n", *b);
            any = true;
            fprintf(out, "%s = ", cfg->backend_options[i].key);
            print_value(out, cfg->backend_options[i].value);
            fputc('\n', out);
        }
    }
    fprintf(out, "\n[model_backend]\n");
    for (size_t i = 0; i < cfg->n_model_backends; i++)
        fprintf(out, "%s = %s\n", cfg->model_backends[i].name, cfg->model_backends[i].path);
    fprintf(out, "\n[version_policy]\n");
    for (size_t i = 0; i < cfg->n_policies; i++) {
        fprintf(out, "%s = ", cfg->policies[i].model);
        eied_policy_print(&cfg->policies[i].policy, out);
        fputc('\n', out);
    }
    fprintf(out, "\n[models]\n");
    for (size_t i = 0; i < cfg->n_models; i++) {
        fprintf(out, "%s = ", cfg->models[i].name);
        print_value(out, cfg->models[i].path);
        fputc('\n', out);
    }
}

size_t eied_config_key_count(void)
{
    return N_KEYS;
}

void eied_config_key(size_t i, const char **section_out, const char **name_out,
                     const char **default_out)
{
    *section_out = key_table[i].section;
    *name_out = key_table[i].name;
    *default_out = key_table[i].def;
}
