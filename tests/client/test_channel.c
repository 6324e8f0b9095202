/* eiectl's channel settings without a server: what counts as local, when a token may go,
   how options and the environment combine. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

static eie_error_t error;

Test(channel, loopback_addresses_and_unix_sockets_are_local)
{
    const char *local[] = {
        "127.0.0.1:8001",      "127.8.9.10:1",          "localhost:8001",
        "LOCALHOST:8001",      "localhost.:8001",       "[::1]:8001",
        "::1",                 "[::ffff:127.0.0.1]:80", "dns:///localhost:8001",
        "dns:localhost:8001",  "dns://8.8.8.8/127.0.0.1:8001",
        "ipv4:127.0.0.1:1,127.0.0.2:2",                 "ipv6:[::1]:8001",
        "unix:/run/eied.sock", "unix-abstract:eied",
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        cr_expect(eiectl_addr_is_local(local[i]), "%s should be local", local[i]);
}

Test(channel, other_addresses_and_names_are_remote)
{
    const char *remote[] = {
        "10.0.0.1:8001",         "128.0.0.1:8001",  "eied.example:8001",
        "localhost.example:1",   "[2001:db8::1]:8001", "dns:///eied.example:8001",
        "ipv4:127.0.0.1:1,10.0.0.1:2", "0.0.0.0:8001", "[::]:8001",
        "mylocalhost:8001",
    };
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++)
        cr_expect_not(eiectl_addr_is_local(remote[i]), "%s should be remote", remote[i]);
}

Test(channel, token_goes_over_tls_or_to_loopback_or_when_told)
{
    eiectl_channel_t tls = {.addr = "eied.example:8001", .tls = true};
    eiectl_channel_t plain_remote = {.addr = "eied.example:8001"};
    eiectl_channel_t plain_local = {.addr = "127.0.0.1:8001"};
    cr_assert_eq(eiectl_token_allowed(&tls, false, "t", &error), EIE_STATUS_OK);
    cr_assert_eq(eiectl_token_allowed(&plain_local, false, "t", &error), EIE_STATUS_OK);
    cr_assert_eq(eiectl_token_allowed(&plain_remote, true, "t", &error), EIE_STATUS_OK);
    cr_assert_eq(eiectl_token_allowed(&plain_remote, false, "/etc/tok", &error),
                 EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(error.msg, "/etc/tok") && strstr(error.msg, "eied.example:8001") &&
                  strstr(error.msg, "--insecure-token"),
              "%s", error.msg);
}

static void clear_env(void)
{
    const char *vars[] = {"EIECTL_TLS", "EIECTL_CA", "EIECTL_CERT", "EIECTL_KEY",
                          "EIECTL_SERVER_NAME"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

Test(channel, plaintext_unless_told_and_options_imply_tls, .init = clear_env)
{
    eiectl_tls_opts_t o;
    eiectl_channel_t ch;
    eiectl_tls_opts_init(&o);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_OK, "%s", error.msg);
    cr_assert_not(ch.tls);
    eiectl_channel_free(&ch);

    cr_assert_eq(eiectl_tls_opt("x", EIECTL_OPT_SERVER_NAME, "eied.example", &o), 1);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_OK, "%s", error.msg);
    cr_assert(ch.tls);
    cr_assert_str_eq(ch.server_name, "eied.example");
    cr_assert_null(ch.ca_pem);
    eiectl_channel_free(&ch);
    cr_assert_null(ch.server_name);

    cr_assert_eq(eiectl_tls_opt("x", 'z', "v", &o), 0, "not a TLS option");
}

Test(channel, environment_sets_tls_and_no_tls_overrides_only_the_environment,
     .init = clear_env)
{
    eiectl_tls_opts_t o;
    eiectl_channel_t ch;
    setenv("EIECTL_TLS", "yes", 1);
    setenv("EIECTL_SERVER_NAME", "eied.example", 1);
    eiectl_tls_opts_init(&o);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_OK, "%s", error.msg);
    cr_assert(ch.tls);
    eiectl_channel_free(&ch);

    o.no_tls = true;
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_OK, "%s", error.msg);
    cr_assert_not(ch.tls);
    cr_assert_null(ch.server_name);

    cr_assert_eq(eiectl_tls_opt("x", EIECTL_OPT_SERVER_NAME, "eied.example", &o), 1);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(error.msg, "--server-name needs TLS") != NULL, "%s", error.msg);

    setenv("EIECTL_TLS", "0", 1);
    unsetenv("EIECTL_SERVER_NAME");
    eiectl_tls_opts_init(&o);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_OK, "%s", error.msg);
    cr_assert_not(ch.tls);

    setenv("EIECTL_TLS", "on", 1);
    eiectl_tls_opts_init(&o);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(error.msg, "EIECTL_TLS 'on'") != NULL, "%s", error.msg);
}

Test(channel, bad_option_values_are_usage_errors, .init = clear_env)
{
    eiectl_tls_opts_t o;
    eiectl_channel_t ch;
    eiectl_tls_opts_init(&o);
    cr_redirect_stderr();
    cr_assert_eq(eiectl_tls_opt("x", EIECTL_OPT_CA, "", &o), 2);
    cr_assert_eq(eiectl_tls_opt("x", EIECTL_OPT_SERVER_NAME, "a b", &o), 1);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "--server-name 'a b'") != NULL, "%s", error.msg);
    eiectl_tls_opts_init(&o);
    cr_assert_eq(eiectl_tls_opt("x", EIECTL_OPT_KEY, "/k.pem", &o), 1);
    cr_assert_eq(eiectl_channel_init(&ch, "a:1", &o, &error), EIE_STATUS_BAD_CONFIG);
    cr_assert(strstr(error.msg, "--key is set but --cert") != NULL, "%s", error.msg);
}
