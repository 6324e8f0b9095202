/* Unit tests of daemon/config.c: every source of configuration and every kind of bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static eied_config_t cfg;
static eie_error_t err;

static void setup(void)
{
    eied_config_defaults(&cfg);
    err.msg[0] = '\0';
}

TestSuite(config, .init = setup);

static bool load(const char *text)
{
    return eied_config_load_text(&cfg, text, strlen(text), "test.conf", &err) == EIE_STATUS_OK;
}

Test(config, defaults_are_documented_values)
{
    cr_assert_str_eq(cfg.listen, "0.0.0.0:8001");
    cr_assert_eq(cfg.drain_delay_ms, 5000);
    cr_assert_eq(cfg.exit_timeout_ms, 30000);
    cr_assert_eq(cfg.log_level, EIED_LOG_INFO);
    cr_assert_eq(cfg.log_format, EIED_LOG_FORMAT_LOGFMT);
    cr_assert_str_eq(cfg.backend, "cpu");
    cr_assert_eq(cfg.pes, 0);
    cr_assert_eq(cfg.n_models, 0);
}

Test(config, good_file_with_comments_quotes_and_blank_lines)
{
    cr_assert(load("# comment\n\n[server]\n  listen = 127.0.0.1:9000  # trailing\n"
                   "drain_delay=250ms\nexit_timeout = 2m\nlog_level = debug\n"
                   "log_format = json\n; other comment\n[engine]\npes = 3\n"
                   "[models]\nlenet = \"/models/with space/model.eie\"\n"),
              "%s", err.msg);
    cr_assert_str_eq(cfg.listen, "127.0.0.1:9000");
    cr_assert_eq(cfg.drain_delay_ms, 250);
    cr_assert_eq(cfg.exit_timeout_ms, 120000);
    cr_assert_eq(cfg.log_level, EIED_LOG_DEBUG);
    cr_assert_eq(cfg.log_format, EIED_LOG_FORMAT_JSON);
    cr_assert_eq(cfg.pes, 3);
    cr_assert_eq(cfg.n_models, 1);
    cr_assert_str_eq(cfg.models[0].name, "lenet");
    cr_assert_str_eq(cfg.models[0].path, "/models/with space/model.eie");
}

Test(config, crlf_line_endings_are_accepted)
{
    cr_assert(load("[server]\r\nlisten = 127.0.0.1:1\r\n"), "%s", err.msg);
    cr_assert_str_eq(cfg.listen, "127.0.0.1:1");
}

Test(config, unknown_key_names_file_line_key_and_section)
{
    cr_assert_not(load("[server]\n\nlisen = x\n"));
    cr_assert_str_eq(err.msg, "test.conf:3: unknown key 'lisen' in section [server]");
}

/* A backend's own option among the flat [engine] keys is still an error,
   and the message says where it goes. */
Test(config, a_backend_option_among_the_engine_keys_names_its_section)
{
    cr_assert_not(load("[engine]\nbatch_invariant = true\n"));
    cr_assert_str_eq(err.msg, "test.conf:2: unknown key 'batch_invariant' in section [engine]; "
                              "'batch_invariant' is an option of backend cpu: set it in "
                              "[engine.cpu]");
    cr_assert(load("[engine.cpu]\nbatch_invariant = true\n"), "%s", err.msg);
}

Test(config, unknown_section_is_an_error)
{
    cr_assert_not(load("[sever]\nlisten = x\n"));
    cr_assert(strstr(err.msg, "test.conf:1: unknown section [sever]") != NULL, "%s", err.msg);
}

Test(config, key_before_any_section_is_an_error)
{
    cr_assert_not(load("listen = x\n"));
    cr_assert_str_eq(err.msg, "test.conf:1: key 'listen' before any [section] header");
}

Test(config, line_without_equals_is_an_error_that_does_not_quote_it)
{
    cr_assert_not(load("[admin]\ntoken s3cret-value\n"));
    cr_assert_str_eq(err.msg, "test.conf:2: expected 'key = value' (the 18-byte line is not shown)");
    cr_assert(strstr(err.msg, "s3cret") == NULL);
}

Test(config, a_file_that_is_not_a_config_is_refused_without_its_lines)
{
    eie_error_t w;
    /* a shadow-like file: its first line must not be printed */
    char path[] = "/tmp/eied-shadow-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char line[] = "root:$y$j9T$secrethash:19000:0:99999:7:::\n";
    cr_assert(write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1));
    close(fd);
    cr_assert_not(eied_config_load_file(&cfg, path, &w) == EIE_STATUS_OK);
    cr_assert(strstr(w.msg, "secrethash") == NULL, "%s", w.msg);
    unlink(path);
    /* a directory and a FIFO are refused at once (a FIFO must not block) */
    cr_assert_not(eied_config_load_file(&cfg, "/tmp", &w) == EIE_STATUS_OK);
    cr_assert(strstr(w.msg, "not a regular file (a directory)") != NULL, "%s", w.msg);
    char fifo[] = "/tmp/eied-fifo-XXXXXX";
    fd = mkstemp(fifo);
    close(fd);
    unlink(fifo);
    cr_assert(mkfifo(fifo, 0600) == 0);
    cr_assert_not(eied_config_load_file(&cfg, fifo, &w) == EIE_STATUS_OK);
    cr_assert(strstr(w.msg, "not a regular file (a FIFO)") != NULL, "%s", w.msg);
    unlink(fifo);
}

Test(config, binary_or_oversized_config_file_is_refused_naming_the_limit)
{
    char path[] = "/tmp/eied-binary-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, "[server]\0\n", 10) == 10);
    close(fd);
    cr_assert_eq(eied_config_load_file(&cfg, path, &err), EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(err.msg, path) != NULL && strstr(err.msg, "binary content") != NULL, "%s",
              err.msg);
    cr_assert(truncate(path, (2 << 20)) == 0);
    cr_assert_eq(eied_config_load_file(&cfg, path, &err), EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(err.msg, "is larger than the 1048576 bytes allowed") != NULL, "%s", err.msg);
    unlink(path);
}

Test(config, a_file_a_key_names_is_read_with_the_key_in_its_errors)
{
    uint8_t *data = NULL;
    size_t len;
    cr_assert_eq(eied_config_file_read("tls.cert", "/nonexistent/c.pem", 100, 0, &data, &len, &err),
                 EIE_STATUS_BAD_CONFIG);
    cr_assert_eq(err.status, EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(err.msg, "tls.cert: /nonexistent/c.pem: cannot open") == err.msg, "%s",
              err.msg);
    cr_assert_null(data);
}

Test(config, malformed_section_header_is_an_error)
{
    cr_assert_not(load("[server\n"));
    cr_assert(strstr(err.msg, "test.conf:1: malformed section header") != NULL, "%s", err.msg);
}

Test(config, empty_key_is_an_error)
{
    cr_assert_not(load("[server]\n = 5\n"));
    cr_assert_str_eq(err.msg, "test.conf:2: empty key before '='");
}

Test(config, bad_duration_names_key_and_value)
{
    cr_assert_not(load("[server]\ndrain_delay = 5x\n"));
    cr_assert(strstr(err.msg, "test.conf:2: key 'drain_delay': '5x' is not a duration") != NULL, "%s",
              err.msg);
    setup();
    cr_assert_not(load("[server]\ndrain_delay = -1s\n"));
    setup();
    cr_assert_not(load("[server]\ndrain_delay = 5\n"), "a duration needs a unit");
}

Test(config, duration_out_of_range_is_an_error)
{
    cr_assert_not(load("[server]\nexit_timeout = 2h\n"));
    cr_assert(strstr(err.msg, "out of range [0, 3600000]") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[server]\nexit_timeout = 99999999999999999999999s\n"));
}

Test(config, bad_integer_and_range_are_errors)
{
    cr_assert_not(load("[engine]\npes = many\n"));
    cr_assert(strstr(err.msg, "key 'pes': 'many' is not a non-negative integer") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[engine]\npes = 4096\n"));
    cr_assert(strstr(err.msg, "key 'pes': 4096 is out of range [0, 1024]") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[engine]\npes = 3abc\n"));
}

Test(config, bad_enum_values_list_the_choices)
{
    cr_assert_not(load("[server]\nlog_level = loud\n"));
    cr_assert(strstr(err.msg, "'loud' is not one of debug, info, warn, error") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[server]\nlog_format = xml\n"));
    cr_assert(strstr(err.msg, "'xml' is not one of logfmt, json") != NULL, "%s", err.msg);
}

Test(config, overlong_value_and_line_are_errors)
{
    char text[EIED_CONFIG_LINE_MAX + 64];
    snprintf(text, sizeof text, "[server]\nlisten = %0*d\n", EIED_CONFIG_STR_MAX + 10, 1);
    cr_assert_not(load(text));
    cr_assert(strstr(err.msg, "the limit is 511") != NULL, "%s", err.msg);
    setup();
    char *big = malloc(EIED_CONFIG_LINE_MAX + 100);
    memset(big, 'a', EIED_CONFIG_LINE_MAX + 99);
    big[EIED_CONFIG_LINE_MAX + 99] = '\0';
    cr_assert_not(load(big));
    cr_assert(strstr(err.msg, "line is longer than") != NULL, "%s", err.msg);
    free(big);
}

Test(config, nul_byte_is_an_error)
{
    const char text[] = "[server]\nlis\0ten = x\n";
    cr_assert_not(eied_config_load_text(&cfg, text, sizeof text - 1, "t", &err) == EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "NUL") != NULL, "%s", err.msg);
}

Test(config, bad_model_names_are_errors)
{
    cr_assert_not(load("[models]\nbad/name = x.eie\n"));
    cr_assert(strstr(err.msg, "model name 'bad/name' has character '/'") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[models]\nok = \n"));
    cr_assert(strstr(err.msg, "model 'ok': path must be") != NULL, "%s", err.msg);
}

Test(config, missing_file_names_the_path)
{
    cr_assert_not(eied_config_load_file(&cfg, "/nonexistent/eied.conf", &err) == EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "/nonexistent/eied.conf: cannot open") != NULL, "%s", err.msg);
}

Test(config, environment_overrides_file_and_flags_override_environment)
{
    cr_assert(load("[server]\nlisten = 127.0.0.1:1\ndrain_delay = 1s\n"), "%s", err.msg);
    char *env[] = {"PATH=/bin", "EIED_SERVER_LISTEN=127.0.0.1:2", "EIED_ENGINE_PES=2",
                   "EIED_MODELS_lenet=/m.eie", NULL};
    cr_assert(eied_config_load_env(&cfg, env, &err) == EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.listen, "127.0.0.1:2");
    cr_assert_eq(cfg.drain_delay_ms, 1000, "not overridden, file value stays");
    cr_assert_eq(cfg.pes, 2);
    cr_assert_str_eq(cfg.models[0].name, "lenet");
    cr_assert(eied_config_set_arg(&cfg, "server.listen=127.0.0.1:3", &err) == EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.listen, "127.0.0.1:3");
}

Test(config, bad_environment_variable_is_named)
{
    char *env[] = {"EIED_SERVER_NOPE=1", NULL};
    cr_assert_not(eied_config_load_env(&cfg, env, &err) == EIE_STATUS_OK);
    cr_assert_str_eq(err.msg, "environment EIED_SERVER_NOPE: unknown key 'nope' in section [server]");
    char *env2[] = {"EIED_SERVER_DRAIN_DELAY=soon", NULL};
    cr_assert_not(eied_config_load_env(&cfg, env2, &err) == EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "environment EIED_SERVER_DRAIN_DELAY: key 'drain_delay'") != NULL, "%s",
              err.msg);
}

Test(config, environment_of_unknown_sections_is_left_alone)
{
    /* what Kubernetes injects for a Service named eied */
    char *env[] = {"EIED_SERVICE_HOST=10.0.0.1", "EIED_PORT=tcp://10.0.0.1:8001",
                   "EIED_PORT_8001_TCP_PORT=8001", NULL};
    cr_assert(eied_config_load_env(&cfg, env, &err) == EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(cfg.listen, "0.0.0.0:8001");
}

Test(config, backends_are_checked_by_name)
{
    cr_assert(load("[engine]\nbackend = eie-sim\n[model_backend]\nlenet = cpu\n"), "%s", err.msg);
    cr_assert_str_eq(cfg.backend, "eie-sim");
    cr_assert_eq(cfg.n_model_backends, 1);
    setup();
    cr_assert_not(load("[engine]\nbackend = gpu\n"));
    cr_assert(strstr(err.msg, "unknown backend 'gpu'") != NULL, "%s", err.msg);
    setup();
    cr_assert_not(load("[model_backend]\nlenet = tpu\n"));
    cr_assert(strstr(err.msg, "model 'lenet': unknown backend 'tpu'") != NULL, "%s", err.msg);
}

Test(config, check_config_masks_the_inline_admin_token)
{
    cr_assert(load("[admin]\ntoken = hunter2\n"), "%s", err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    eied_config_print(&cfg, f);
    fclose(f);
    cr_assert(strstr(buf, "hunter2") == NULL);
    cr_assert(strstr(buf, "token = ********") != NULL, "%s", buf);
    free(buf);
}

Test(config, malformed_set_flag_is_an_error)
{
    cr_assert_not(eied_config_set_arg(&cfg, "listen=1", &err) == EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "is not SECTION.KEY=VALUE") != NULL, "%s", err.msg);
    cr_assert_not(eied_config_set_arg(&cfg, "server.=1", &err) == EIE_STATUS_OK);
}

Test(config, control_bytes_in_environment_or_flag_values_are_errors)
{
    char *env[] = {"EIED_SERVER_LISTEN=127.0.0.1:1\n[admin]", NULL};
    cr_assert_not(eied_config_load_env(&cfg, env, &err) == EIE_STATUS_OK);
    cr_assert_str_eq(err.msg, "environment EIED_SERVER_LISTEN: key 'listen': value has control byte "
                          "0x0a at offset 11 (values are one line of text)");
    cr_assert_not(eied_config_set_arg(&cfg, "models.m=/a\rb.eie", &err) == EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "key 'm': value has control byte 0x0d at offset 2") != NULL, "%s", err.msg);
    cr_assert(eied_config_set_arg(&cfg, "tls.cert=/etc/a\tb.pem", &err) == EIE_STATUS_OK,
              "a tab is text: %s", err.msg);
    cr_assert_str_eq(cfg.tls_cert, "/etc/a\tb.pem");
}

Test(config, print_round_trips_through_the_parser)
{
    cr_assert(load("[server]\ndrain_delay = 1500ms\n[models]\na = /x.eie\n"), "%s", err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    eied_config_print(&cfg, f);
    fclose(f);
    eied_config_t again;
    eied_config_defaults(&again);
    cr_assert(eied_config_load_text(&again, buf, len, "printed", &err) == EIE_STATUS_OK, "%s\n%s", err.msg,
              buf);
    cr_assert_eq(again.drain_delay_ms, 1500);
    cr_assert_eq(again.n_models, 1);
    free(buf);
}

/* engine.kernel names the cpu kernel variant; empty (the default) lets the
 * engine choose. The name is checked by the engine, against what the CPU
 * runs; here only its length. */
Test(config, engine_kernel_is_a_name_empty_by_default)
{
    cr_assert_str_eq(cfg.cpu_kernel, "");
    cr_assert(load("[engine]\nkernel = scalar\n"), "%s", err.msg);
    cr_assert_str_eq(cfg.cpu_kernel, "scalar");
    cr_assert_not(load("[engine]\nkernel = avx512avx512avx512avx512avx512avx512\n"));
    cr_assert(strstr(err.msg, "test.conf:2: key 'kernel': value is 36 characters, the limit is 31") !=
                  NULL,
              "%s", err.msg);
}

/* conf/eied.conf is the documentation: it must parse and list every key with its default. */
Test(config, shipped_eied_conf_documents_every_key_with_its_default)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/conf/eied.conf", getenv("EIE_SOURCE_ROOT"));
    cr_assert(eied_config_load_file(&cfg, path, &err) == EIE_STATUS_OK, "%s", err.msg);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < eied_config_key_count(); i++) {
        const char *section, *name, *def;
        eied_config_key(i, &section, &name, &def);
        char line[256], header[128];
        if (def[0] == '\0')
            snprintf(line, sizeof line, "\n%s =\n", name); /* editors strip the space */
        else
            snprintf(line, sizeof line, "\n%s = %s\n", name, def);
        snprintf(header, sizeof header, "[%s]", section);
        cr_assert(strstr(text, line) != NULL, "conf/eied.conf lacks '%s = %s'", name, def);
        cr_assert(strstr(text, header) != NULL && strstr(text, header) < strstr(text, line),
                  "key %s is not under [%s]", name, section);
    }
}

Test(config, a_backend_section_is_checked_against_the_backends_own_options)
{
    cr_assert(load("[engine.eie-sim]\nfifo_depth = 16\nclock_mhz = 500\n[engine.cpu]\n"
                   "kernel = scalar\n"),
              "%s", err.msg);
    cr_assert_eq(cfg.n_backend_options, 3);
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = "eie-sim";
    cr_assert(eied_config_backend_opts(&cfg, &o, &err) == EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(o.sim_fifo_depth, 16);
    cr_assert_float_eq(o.sim_clock_mhz, 500.0, 1e-9);
    cr_assert_null(o.cpu_kernel); /* the cpu section is the cpu backend's */
    cr_assert_not(load("[engine.eie-sim]\nfifo_depth = 5000\n"));
    cr_assert(strstr(err.msg, "test.conf:2:") != NULL && strstr(err.msg, "fifo_depth") != NULL &&
                  strstr(err.msg, "5000") != NULL,
              "%s", err.msg);
    cr_assert_not(load("[engine.cpu]\nfifo_depth = 8\n"));
    cr_assert(strstr(err.msg, "backend cpu has no option 'fifo_depth'") != NULL, "%s", err.msg);
    cr_assert_not(load("[engine.gpu]\nx = 1\n"));
    cr_assert(strstr(err.msg, "unknown section [engine.gpu]") != NULL, "%s", err.msg);
    cr_assert(eied_config_set_arg(&cfg, "engine.eie-sim.pipeline_depth=6", &err) == EIE_STATUS_OK,
              "%s", err.msg);
}

static char *read_source(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("EIE_SOURCE_ROOT"), rel);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char text[2][262144];
    static int which;
    char *buf = text[which++ % 2];
    size_t n = fread(buf, 1, sizeof text[0] - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The backend options are listed from the registry's tables: conf/eied.conf and the README
   must name every one with its default, under its backend. */
Test(config, eied_conf_and_readme_list_every_backend_option_of_the_registry)
{
    const char *conf = read_source("conf/eied.conf");
    const char *readme = read_source("README.md");
    for (size_t b = 0; b < eie_backend_count(); b++) {
        const eie_backend_info_t *be = eie_backend_info(b);
        char header[64];
        snprintf(header, sizeof header, "# [engine.%s]\n", be->name);
        const char *section = strstr(conf, header);
        cr_assert_not_null(section, "conf/eied.conf lacks '%s'", header);
        for (size_t i = 0; i < be->n_options; i++) {
            const eie_backend_option_t *o = &be->options[i];
            char line[160], row[256];
            if (o->def[0] == '\0')
                snprintf(line, sizeof line, "\n# %s =\n", o->name);
            else
                snprintf(line, sizeof line, "\n# %s = %s\n", o->name, o->def);
            const char *at = strstr(section, line);
            const char *next = strstr(section + 1, "# [engine.");
            cr_assert(at != NULL && (next == NULL || at < next),
                      "conf/eied.conf lacks '%s = %s' under [engine.%s]", o->name, o->def,
                      be->name);
            if (o->def[0] == '\0')
                snprintf(row, sizeof row, "| `%s` | `%s` | (empty) |", be->name, o->name);
            else
                snprintf(row, sizeof row, "| `%s` | `%s` | `%s` |", be->name, o->name, o->def);
            cr_assert(strstr(readme, row) != NULL, "README lacks the row '%s'", row);
        }
    }
}
